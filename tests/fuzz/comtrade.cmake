# COMTRADE parser fuzzing (cfg text, cfg + dat, .cff). The replay driver always builds and runs
# the committed corpus under ctest; the libFuzzer binary builds only with -DGS_FUZZ=ON and clang:
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_comtrade_cfg
#   build-fuzz/fuzz_comtrade_cfg -max_total_time=180 /tmp/comtrade-corpus tests/fuzz/corpus/comtrade
# Input layout: see the comment at the top of targets/fuzz_comtrade_cfg.c.
set(GS_COMTRADE_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_comtrade_cfg.c)
set(GS_COMTRADE_CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/comtrade)

if(TARGET gs_comtrade)
  add_executable(replay_comtrade_cfg ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c
                                     ${GS_COMTRADE_FUZZ_SRC})
  target_link_libraries(replay_comtrade_cfg PRIVATE gs_comtrade)
  gs_strict(replay_comtrade_cfg)
  add_test(NAME fuzz.comtrade_cfg_corpus COMMAND replay_comtrade_cfg ${GS_COMTRADE_CORPUS})
  set_tests_properties(fuzz.comtrade_cfg_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)
endif()

if(GS_FUZZ AND TARGET gs_comtrade)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GS_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  # The parser sources are compiled into the fuzzer itself so they get coverage instrumentation.
  add_executable(fuzz_comtrade_cfg ${GS_COMTRADE_FUZZ_SRC}
                 ${CMAKE_SOURCE_DIR}/src/comtrade/comtrade.c ${CMAKE_SOURCE_DIR}/src/comtrade/dat.c
                 ${CMAKE_SOURCE_DIR}/src/comtrade/file.c)
  target_include_directories(fuzz_comtrade_cfg PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(fuzz_comtrade_cfg PRIVATE gs_core m)
  target_compile_options(fuzz_comtrade_cfg PRIVATE -g -O1 -fno-omit-frame-pointer
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_comtrade_cfg PRIVATE -fsanitize=fuzzer,address,undefined)
  gs_strict(fuzz_comtrade_cfg)
endif()
