# Cross-thread call queue (src/core/xcall.c), with real loops and threads.
gs_unit_test(test_xcall SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_xcall.c LIBS gs_core)
