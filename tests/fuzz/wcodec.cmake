# Codecs 1 and 2 (src/wcodec) fuzzing (codec 2: bit 6 of an input's first byte, see
# targets/fuzz_wcodec.c). The replay driver always builds and runs the committed corpus under
# ctest; the libFuzzer binary builds only with -DGS_FUZZ=ON and clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_wcodec
#   build-fuzz/fuzz_wcodec -max_total_time=180 /tmp/wcodec-corpus tests/fuzz/corpus/wcodec
# Seeds (real encodings): build/gen_wcodec_corpus tests/fuzz/corpus/wcodec
set(GS_WCODEC_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_wcodec.c)
set(GS_WCODEC_CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/wcodec)

if(TARGET wcodec)
  add_executable(replay_wcodec ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c ${GS_WCODEC_FUZZ_SRC})
  target_link_libraries(replay_wcodec PRIVATE wcodec)
  target_include_directories(replay_wcodec PRIVATE ${CMAKE_SOURCE_DIR}/src)
  gs_strict(replay_wcodec)
  add_test(NAME fuzz.wcodec_corpus COMMAND replay_wcodec ${GS_WCODEC_CORPUS})
  set_tests_properties(fuzz.wcodec_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)

  add_executable(gen_wcodec_corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/gen_wcodec_corpus.c)
  target_link_libraries(gen_wcodec_corpus PRIVATE wcodec m)
  target_include_directories(gen_wcodec_corpus PRIVATE ${CMAKE_SOURCE_DIR}/src)
  gs_strict(gen_wcodec_corpus)
endif()

if(GS_FUZZ)
  # The codec source is compiled into the fuzzer itself so it gets coverage instrumentation.
  add_executable(fuzz_wcodec ${GS_WCODEC_FUZZ_SRC} ${CMAKE_SOURCE_DIR}/src/wcodec/wcodec.c)
  target_include_directories(fuzz_wcodec PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(fuzz_wcodec PRIVATE m)
  target_compile_options(fuzz_wcodec PRIVATE -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_wcodec PRIVATE -fsanitize=fuzzer,address,undefined)
  gs_strict(fuzz_wcodec)
endif()
