# IEC 61850 / MMS stack codecs (src/iec61850) unit tests (cmocka): BER, and every layer on the
# TPKTs extracted from the shared reference captures (tests/vectors/mms, see its README).
if(CMOCKA_FOUND AND TARGET gs_mms)
  gs_unit_test(test_mms_ber SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mms_ber.c LIBS gs_mms)
  gs_unit_test(test_mms_stack SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mms_stack.c
               LIBS gs_mms gs_core)
  target_compile_definitions(test_mms_stack PRIVATE
                             MMS_VECTORS_DIR="${CMAKE_SOURCE_DIR}/tests/vectors/mms")
endif()
# Our encoders' answers checked by Wireshark's dissectors (tshark, text2pcap; skipped without).
if(CMOCKA_FOUND AND TARGET gs_mms)
  add_test(NAME unit.mms_tshark_answers
           COMMAND ${CMAKE_SOURCE_DIR}/tests/unit/mms_tshark_answers.sh $<TARGET_FILE:test_mms_stack>)
  set_tests_properties(unit.mms_tshark_answers PROPERTIES TIMEOUT 120 LABELS unit
                       SKIP_RETURN_CODE 77)
endif()
# The server-side association state machine (src/iec61850/assoc.c) on the captures' client side.
if(CMOCKA_FOUND AND TARGET gs_mms)
  gs_unit_test(test_mms_assoc SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mms_assoc.c LIBS gs_mms)
  target_compile_definitions(test_mms_assoc PRIVATE
                             MMS_VECTORS_DIR="${CMAKE_SOURCE_DIR}/tests/vectors/mms")
endif()
