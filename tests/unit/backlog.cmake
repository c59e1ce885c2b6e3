gs_unit_test(test_backlog SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_backlog.c LIBS gs_store)
