gs_unit_test(test_web SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_web.c LIBS gs_web)
gs_unit_test(test_ws SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ws.c LIBS gs_web)
