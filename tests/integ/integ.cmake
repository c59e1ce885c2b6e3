# Integration tests: Python 3 scripts that start the real binaries on 127.0.0.1. Each records its
# HTTP API answers (gslib Server.http) in api-record/<name>.jsonl of the build directory, which
# integ.openapi validates against docs/openapi.json.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
function(gs_integ_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME integ.${name}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/integ/test_${name}.py)
  set_tests_properties(integ.${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS integ
                       ENVIRONMENT "GS_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1;GS_API_RECORD=${CMAKE_BINARY_DIR}/api-record/${name}.jsonl")
endfunction()

file(GLOB GS_INTEG_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integ/test_*.py)
foreach(script ${GS_INTEG_SCRIPTS})
  get_filename_component(n ${script} NAME_WE)
  string(REGEX REPLACE "^test_" "" n ${n})
  gs_integ_test(${n})
endforeach()

# integ.openapi validates the answers the other integration tests recorded: in a full run it goes
# after them (DEPENDS orders only; run alone, it validates what an earlier run left, and its own).
if(TEST integ.openapi)
  set(GS_INTEG_OTHERS "")
  foreach(script ${GS_INTEG_SCRIPTS})
    get_filename_component(n ${script} NAME_WE)
    string(REGEX REPLACE "^test_" "" n ${n})
    if(NOT n STREQUAL "openapi")
      list(APPEND GS_INTEG_OTHERS integ.${n})
    endif()
  endforeach()
  set_tests_properties(integ.openapi PROPERTIES DEPENDS "${GS_INTEG_OTHERS}")
endif()
