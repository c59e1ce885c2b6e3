# IEC 61850 / MMS stack codecs (src/iec61850) unit tests (cmocka): BER, and every layer on the
# TPKTs extracted from the shared reference captures (tests/vectors/mms, see its README).
if(CMOCKA_FOUND AND TARGET gs_mms)
  gs_unit_test(test_mms_ber SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mms_ber.c LIBS gs_mms)
  gs_unit_test(test_mms_stack SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mms_stack.c
               LIBS gs_mms gs_core)
  target_compile_definitions(test_mms_stack PRIVATE
                             MMS_VECTORS_DIR="${CMAKE_SOURCE_DIR}/tests/vectors/mms")
endif()
