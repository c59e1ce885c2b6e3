# Fuzzing of the HTTP front's request head check (src/web/admit.c head_check), the first code
# that reads every HTTP connection's bytes. The target includes admit.c to reach the static,
# pure head_check. The replay driver always builds and runs the committed corpus under ctest;
# the libFuzzer binary builds only with -DGS_FUZZ=ON and clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_web_head
#   build-fuzz/fuzz_web_head -max_total_time=180 -max_len=8200 /tmp/head-corpus \
#       tests/fuzz/corpus/web_head
set(GS_WEB_HEAD_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_web_head.c)

if(TARGET gs_web)
  add_executable(replay_web_head ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c ${GS_WEB_HEAD_FUZZ_SRC})
  target_link_libraries(replay_web_head PRIVATE gs_web)
  target_include_directories(replay_web_head SYSTEM PRIVATE ${LWS_INCLUDE_DIRS})
  gs_strict(replay_web_head)
  add_test(NAME fuzz.web_head_corpus COMMAND replay_web_head
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/web_head)
  set_tests_properties(fuzz.web_head_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)
endif()

if(GS_FUZZ AND TARGET gs_web)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GS_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  # admit.c is compiled into the fuzzer itself (the #include) so it gets coverage.
  add_executable(fuzz_web_head ${GS_WEB_HEAD_FUZZ_SRC})
  target_link_libraries(fuzz_web_head PRIVATE gs_web)
  target_include_directories(fuzz_web_head SYSTEM PRIVATE ${LWS_INCLUDE_DIRS})
  target_compile_options(fuzz_web_head PRIVATE -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_web_head PRIVATE -fsanitize=fuzzer,address,undefined)
  gs_strict(fuzz_web_head)
endif()
