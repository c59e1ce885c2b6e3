# src/ied service bodies fuzzing (tests/fuzz/ied_confirmed.c). The replay driver always builds and
# runs the committed corpus under ctest; the libFuzzer binary builds only with -DGS_FUZZ=ON and
# clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_ied_confirmed
#   build-fuzz/fuzz_ied_confirmed -max_total_time=120 /tmp/ied tests/fuzz/corpus/ied_confirmed
# Corpus: cap_* seeds (every confirmed request body of the reference captures, written by
# `build/tests/test_ied --corpus tests/fuzz/corpus/ied_confirmed`) and found_* inputs of
# libFuzzer runs.
if(TARGET gs_ied)
  add_executable(replay_ied_confirmed ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c
                 ${CMAKE_SOURCE_DIR}/tests/fuzz/ied_confirmed.c)
  target_link_libraries(replay_ied_confirmed PRIVATE gs_ied gs_mms)
  gs_strict(replay_ied_confirmed)
  add_test(NAME fuzz.ied_confirmed_corpus
           COMMAND replay_ied_confirmed ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/ied_confirmed)
  set_tests_properties(fuzz.ied_confirmed_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)
endif()
if(GS_FUZZ AND TARGET gs_ied)
  file(GLOB GS_IED_FUZZ_SRC ${CMAKE_SOURCE_DIR}/src/ied/*.c ${CMAKE_SOURCE_DIR}/src/iec61850/*.c
       ${CMAKE_SOURCE_DIR}/src/core/err.c)
  add_executable(fuzz_ied_confirmed ${CMAKE_SOURCE_DIR}/tests/fuzz/ied_confirmed.c ${GS_IED_FUZZ_SRC})
  target_include_directories(fuzz_ied_confirmed PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(fuzz_ied_confirmed PRIVATE PkgConfig::JANSSON PkgConfig::UV m)
  target_compile_options(fuzz_ied_confirmed PRIVATE -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_ied_confirmed PRIVATE -fsanitize=fuzzer,address,undefined)
  gs_strict(fuzz_ied_confirmed)
endif()
