# Stored waveforms (src/wave, src/store/blocks_read.c) against a real store and writer.
gs_unit_test(test_wave SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_wave.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c
             LIBS gs_wave PkgConfig::JANSSON PkgConfig::SQLITE m)
