# Waveform summary pyramid and trends (src/store/pyramid.c, trend.c) and the long-range
# envelopes of src/wave, against a real store and writer.
gs_unit_test(test_pyramid SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_pyramid.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c
             LIBS gs_wave PkgConfig::JANSSON PkgConfig::SQLITE m)
