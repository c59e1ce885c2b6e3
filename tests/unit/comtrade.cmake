# COMTRADE reader/writer unit tests (cmocka).
if(CMOCKA_FOUND AND TARGET gs_comtrade)
  gs_unit_test(test_comtrade SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_comtrade.c
               LIBS gs_comtrade gs_core m)
endif()
