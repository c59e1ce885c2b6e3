# HTTP API fuzzing (src/api): the request router with everything behind it (api_router) and the
# input decoders (api_json: JSON bodies, query parameters, times). The replay drivers always
# build and run the committed corpora under ctest; the libFuzzer binaries build only with
# -DGS_FUZZ=ON, clang and the sanitizer build (the API is linked from gs_api, whose code, with
# gs_core's, gets coverage instrumentation in that build; GS_SANITIZE puts ASan/UBSan everywhere):
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON -DGS_SANITIZE=ON \
#       -DCMAKE_C_FLAGS=-Wno-pass-failed
# (-Wno-pass-failed: with clang 14 and the sanitizers, src/dsp/stream.c's vectorize hints fail
# to apply and -Werror stops the build of gs_dsp, which gs_api links.)
#   cmake --build build-fuzz --target fuzz_api_router fuzz_api_json
#   build-fuzz/fuzz_api_router -max_total_time=300 -detect_leaks=0 -dict=tests/fuzz/api.dict \
#       /tmp/api-corpus tests/fuzz/corpus/api_router
# (-detect_leaks=0: the router target keeps its store, gateway and API between inputs, so
# libFuzzer's per-input leak check stops the world for every input that leaves work queued
# (here ~600 exec/s fell below 400 within two minutes, and kept falling); LeakSanitizer still
# checks at exit, after an orderly shutdown.)
#   build-fuzz/fuzz_api_json -max_total_time=300 /tmp/json-corpus tests/fuzz/corpus/api_json
# Input layouts: the comments at the top of targets/fuzz_api_router.c and fuzz_api_json.c.
#
# api_handle can defer an answer (web_defer), which needs a live libwebsockets connection; the
# router target links with --wrap for src/web's deferred-answer calls and gets them from
# api_seam.c, which checks that the API keeps web.h's contract (see there).
set(GS_API_ROUTER_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_api_router.c
                           ${CMAKE_SOURCE_DIR}/tests/fuzz/api_seam.c)
set(GS_API_JSON_FUZZ_SRC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets/fuzz_api_json.c)
set(GS_API_SEAM_WRAP "LINKER:--wrap=web_defer,--wrap=web_complete,--wrap=web_complete_h,--wrap=web_stats,--wrap=web_ws_set")

if(TARGET gs_api)
  add_executable(replay_api_router ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c
                                   ${GS_API_ROUTER_FUZZ_SRC})
  target_link_libraries(replay_api_router PRIVATE gs_api PkgConfig::JANSSON)
  target_link_options(replay_api_router PRIVATE ${GS_API_SEAM_WRAP})
  gs_strict(replay_api_router)
  add_test(NAME fuzz.api_router_corpus COMMAND replay_api_router
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/api_router)
  # One login in the corpus hashes a password (argon2id, ~0.1 s each): generous on a busy box.
  set_tests_properties(fuzz.api_router_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)

  add_executable(replay_api_json ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c
                                 ${GS_API_JSON_FUZZ_SRC})
  target_link_libraries(replay_api_json PRIVATE gs_api PkgConfig::JANSSON)
  gs_strict(replay_api_json)
  add_test(NAME fuzz.api_json_corpus COMMAND replay_api_json
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/api_json)
  set_tests_properties(fuzz.api_json_corpus PROPERTIES TIMEOUT 300 LABELS fuzz)
endif()

if(GS_FUZZ AND TARGET gs_api)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GS_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  if(NOT GS_SANITIZE)
    message(STATUS "fuzz_api_*: need -DGS_SANITIZE=ON as well (the API is linked, not compiled "
                   "into the fuzzer); not built")
  else()
    # Coverage for the code under test. The sanitizer runtimes every binary of this build links
    # provide the coverage hooks, so the other programs still link.
    target_compile_options(gs_api PRIVATE -fsanitize=fuzzer-no-link)
    target_compile_options(gs_core PRIVATE -fsanitize=fuzzer-no-link)
    foreach(t api_router api_json)
      if(t STREQUAL "api_router")
        add_executable(fuzz_${t} ${GS_API_ROUTER_FUZZ_SRC})
        target_link_options(fuzz_${t} PRIVATE ${GS_API_SEAM_WRAP})
      else()
        add_executable(fuzz_${t} ${GS_API_JSON_FUZZ_SRC})
      endif()
      target_link_libraries(fuzz_${t} PRIVATE gs_api PkgConfig::JANSSON)
      target_compile_options(fuzz_${t} PRIVATE -g -O1 -fno-omit-frame-pointer
                             -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
      target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
      gs_strict(fuzz_${t})
    endforeach()
  endif()
endif()
