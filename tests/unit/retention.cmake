gs_unit_test(test_retention SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_retention.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c LIBS gs_store)
