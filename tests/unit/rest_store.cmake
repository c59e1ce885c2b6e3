gs_unit_test(test_rest_store SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_rest_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c LIBS gs_store)
