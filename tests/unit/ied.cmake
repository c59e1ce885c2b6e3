# IEC 61850 model and MMS service bodies (src/ied) unit tests (cmocka); the captures' requests
# come from tests/vectors/mms.
if(CMOCKA_FOUND AND TARGET gs_ied)
  gs_unit_test(test_ied SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ied.c LIBS gs_ied gs_mms gs_core)
  target_compile_definitions(test_ied PRIVATE
                             MMS_VECTORS_DIR="${CMAKE_SOURCE_DIR}/tests/vectors/mms")
endif()
