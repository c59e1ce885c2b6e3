# mms_client: the MMS client of the integration tests (tests/integ/test_mms.py against the real
# server, tests/integ/test_mms_client.py against the reference captures), on our own codecs.
if(TARGET gs_mms AND TARGET gs_core)
  add_executable(mms_client ${CMAKE_SOURCE_DIR}/tests/integ/mms_client.c)
  target_link_libraries(mms_client PRIVATE gs_mms gs_core m)
  target_include_directories(mms_client PRIVATE ${CMAKE_SOURCE_DIR}/src)
  gs_strict(mms_client)
endif()
# integ.mms (tests/integ/test_mms.py) exits 77 when the server of this build has no MMS port.
if(TEST integ.mms)
  set_tests_properties(integ.mms PROPERTIES SKIP_RETURN_CODE 77)
endif()
