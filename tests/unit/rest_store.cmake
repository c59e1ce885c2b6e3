gs_unit_test(test_rest_store SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_rest_store.c LIBS gs_store)
