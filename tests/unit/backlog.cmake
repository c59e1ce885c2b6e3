gs_unit_test(test_backlog SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_backlog.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c LIBS gs_store)
