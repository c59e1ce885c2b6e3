# GSTP codec unit tests (cmocka).
if(CMOCKA_FOUND AND TARGET gs_gstp)
  gs_unit_test(test_gstp SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gstp.c LIBS gs_gstp)
endif()
