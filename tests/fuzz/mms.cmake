# MMS stack (src/iec61850) fuzzing: one target per layer (tests/fuzz/mms_<layer>.c). The replay
# drivers always build and run the committed corpora under ctest; libFuzzer binaries build only
# with -DGS_FUZZ=ON and clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_mms_pdu
#   build-fuzz/fuzz_mms_pdu -max_total_time=180 /tmp/mms-pdu tests/fuzz/corpus/mms_pdu
# Corpora: cap_* seeds written by `build/tests/test_mms_stack --corpus tests/fuzz/corpus` (every
# layer of every TPKT of the reference captures, and every layer's error answers) and found_*
# inputs of libFuzzer runs, minimised together with `fuzz_mms_<layer> -merge=1` (the unit test
# test_mms_stack already replays every capture PDU, so seeds adding no coverage were dropped).
set(GS_MMS_FUZZ_LAYERS ber cotp session pres acse pdu assoc)
file(GLOB GS_MMS_SRC ${CMAKE_SOURCE_DIR}/src/iec61850/*.c)

foreach(layer ${GS_MMS_FUZZ_LAYERS})
  set(src ${CMAKE_SOURCE_DIR}/tests/fuzz/mms_${layer}.c)
  if(TARGET gs_mms)
    add_executable(replay_mms_${layer} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c ${src})
    target_link_libraries(replay_mms_${layer} PRIVATE gs_mms)
    gs_strict(replay_mms_${layer})
    add_test(NAME fuzz.mms_${layer}_corpus
             COMMAND replay_mms_${layer} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/mms_${layer})
    set_tests_properties(fuzz.mms_${layer}_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)
  endif()
  if(GS_FUZZ)
    add_executable(fuzz_mms_${layer} ${src} ${GS_MMS_SRC})
    target_include_directories(fuzz_mms_${layer} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_compile_options(fuzz_mms_${layer} PRIVATE -g -O1 -fno-omit-frame-pointer
                           -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
    target_link_options(fuzz_mms_${layer} PRIVATE -fsanitize=fuzzer,address,undefined)
    gs_strict(fuzz_mms_${layer})
  endif()
endforeach()
