# GSTP codec fuzzing. The replay driver always builds and runs the committed corpus under ctest;
# the libFuzzer binary builds only with -DGS_FUZZ=ON and clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_gstp
#   build-fuzz/fuzz_gstp -max_total_time=180 /tmp/gstp-corpus tests/fuzz/corpus/gstp
set(GS_GSTP_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_gstp.c)
set(GS_GSTP_CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/gstp)

if(TARGET gs_gstp)
  add_executable(replay_gstp ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c ${GS_GSTP_FUZZ_SRC})
  target_link_libraries(replay_gstp PRIVATE gs_gstp)
  gs_strict(replay_gstp)
  add_test(NAME fuzz.gstp_corpus COMMAND replay_gstp ${GS_GSTP_CORPUS})
  set_tests_properties(fuzz.gstp_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)

  # Seed corpus generator (also prints the worked examples of docs/protocol.md with --doc).
  add_executable(gen_gstp_corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/gen_gstp_corpus.c)
  target_link_libraries(gen_gstp_corpus PRIVATE gs_gstp)
  gs_strict(gen_gstp_corpus)
endif()

if(GS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GS_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  # The codec sources are compiled into the fuzzer itself so they get coverage instrumentation.
  add_executable(fuzz_gstp ${GS_GSTP_FUZZ_SRC} ${CMAKE_SOURCE_DIR}/src/gstp/gstp.c
                           ${CMAKE_SOURCE_DIR}/src/gstp/crc32c.c)
  target_include_directories(fuzz_gstp PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(fuzz_gstp PRIVATE -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_gstp PRIVATE -fsanitize=fuzzer,address,undefined)
  gs_strict(fuzz_gstp)
endif()
