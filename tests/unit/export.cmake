# Export (src/export, src/comtrade/stream.c): blocks written through the real store writer, exported
# as COMTRADE (cfg text and .dat bytes checked exactly, gaps, cff, zip) and CSV.
if(TARGET gs_export)
  gs_unit_test(test_export SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_export.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c
               LIBS gs_export PkgConfig::JANSSON z m)
endif()
