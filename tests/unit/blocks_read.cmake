gs_unit_test(test_blocks_read SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_blocks_read.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c LIBS gs_store)
