gs_unit_test(test_retention SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_retention.c LIBS gs_store)
