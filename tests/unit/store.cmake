gs_unit_test(test_store SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c LIBS gs_store)
