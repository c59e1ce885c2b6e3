# integ.mms_replay (tests/integ/test_mms_replay.py) needs tshark to decode our answers: it exits
# 77 (skipped) where tshark is not installed.
if(TEST integ.mms_replay)
  set_tests_properties(integ.mms_replay PROPERTIES SKIP_RETURN_CODE 77)
endif()
