# Lossless waveform codec (src/wcodec) unit tests (cmocka) and its test vectors
# (docs/vectors/wcodec.json; regenerate: build/gen_wcodec_vectors > docs/vectors/wcodec.json).
if(TARGET wcodec)
  add_executable(gen_wcodec_vectors ${CMAKE_SOURCE_DIR}/tests/vectors/gen_wcodec.c)
  target_include_directories(gen_wcodec_vectors PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(gen_wcodec_vectors PRIVATE wcodec m)
  gs_strict(gen_wcodec_vectors)
  set(GS_WCODEC_VECTORS_JSON ${CMAKE_SOURCE_DIR}/docs/vectors/wcodec.json)
  add_test(NAME unit.wcodec_vectors_up_to_date
           COMMAND sh -c "\"$1\" | cmp - \"$2\"" sh $<TARGET_FILE:gen_wcodec_vectors>
                   ${GS_WCODEC_VECTORS_JSON})
  set_tests_properties(unit.wcodec_vectors_up_to_date PROPERTIES TIMEOUT 60 LABELS unit)
  if(CMOCKA_FOUND)
    gs_unit_test(test_wcodec SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_wcodec.c
                 LIBS wcodec PkgConfig::JANSSON m Threads::Threads)
    target_compile_definitions(test_wcodec PRIVATE
                               GS_WCODEC_VECTORS_JSON="${GS_WCODEC_VECTORS_JSON}")
  endif()
endif()
