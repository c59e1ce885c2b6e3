# IEC 61850 model and MMS service bodies (src/ied) unit tests (cmocka); the captures' requests
# come from tests/vectors/mms.
if(CMOCKA_FOUND AND TARGET gs_ied)
  gs_unit_test(test_ied SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ied.c LIBS gs_ied gs_mms gs_core)
  target_compile_definitions(test_ied PRIVATE
                             MMS_VECTORS_DIR="${CMAKE_SOURCE_DIR}/tests/vectors/mms")
endif()
# Our answers checked by Wireshark's dissectors (tshark, text2pcap; skipped without).
if(CMOCKA_FOUND AND TARGET gs_ied)
  add_test(NAME unit.ied_tshark_answers
           COMMAND ${CMAKE_SOURCE_DIR}/tests/unit/ied_tshark_answers.sh $<TARGET_FILE:test_ied>)
  set_tests_properties(unit.ied_tshark_answers PROPERTIES TIMEOUT 120 LABELS unit
                       SKIP_RETURN_CODE 77)
endif()
# The SCL (ied_scl_write) well-formed for xmllint and equal to GetNameList / GetVAA.
if(CMOCKA_FOUND AND TARGET gs_ied)
  add_test(NAME unit.ied_scl
           COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/unit/ied_scl_check.py $<TARGET_FILE:test_ied>
                   $<TARGET_FILE:gridsense>)
  set_tests_properties(unit.ied_scl PROPERTIES TIMEOUT 120 LABELS unit SKIP_RETURN_CODE 77)
endif()
# In-process figures (not a test: run build/tests/test_ied_bench by hand).
if(TARGET gs_ied)
  add_executable(test_ied_bench ${CMAKE_SOURCE_DIR}/tests/unit/test_ied_bench.c)
  target_link_libraries(test_ied_bench PRIVATE gs_ied gs_mms gs_core)
  gs_strict(test_ied_bench)
  set_target_properties(test_ied_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()
