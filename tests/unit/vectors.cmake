# GSTP 1.0 test vectors (docs/vectors/gstp-1.0.json): the generator, a unit test that checks the
# committed file against the codec in both directions, and a check that the committed file is
# what the generator prints today (regenerate: build/gen_vectors > docs/vectors/gstp-1.0.json).
if(TARGET gs_gstp)
  add_executable(gen_vectors ${CMAKE_SOURCE_DIR}/tests/vectors/gen_vectors.c)
  target_link_libraries(gen_vectors PRIVATE gs_gstp PkgConfig::SODIUM)
  gs_strict(gen_vectors)

  set(GS_VECTORS_JSON ${CMAKE_SOURCE_DIR}/docs/vectors/gstp-1.0.json)
  if(CMOCKA_FOUND)
    gs_unit_test(test_vectors SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_vectors.c
                 LIBS gs_gstp PkgConfig::JANSSON PkgConfig::SODIUM)
    target_compile_definitions(test_vectors PRIVATE GS_VECTORS_JSON="${GS_VECTORS_JSON}")
  endif()
  add_test(NAME unit.vectors_up_to_date
           COMMAND sh -c "\"$1\" | cmp - \"$2\"" sh $<TARGET_FILE:gen_vectors> ${GS_VECTORS_JSON})
  set_tests_properties(unit.vectors_up_to_date PROPERTIES TIMEOUT 60 LABELS unit)
endif()
