gs_unit_test(test_core SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_core.c LIBS gs_core
             PkgConfig::JANSSON)
