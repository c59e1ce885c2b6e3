# Integration tests: Python 3 scripts that start the real binaries on 127.0.0.1.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
function(gs_integ_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME integ.${name}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/integ/test_${name}.py)
  set_tests_properties(integ.${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS integ
                       ENVIRONMENT "GS_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
endfunction()

file(GLOB GS_INTEG_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integ/test_*.py)
foreach(script ${GS_INTEG_SCRIPTS})
  get_filename_component(n ${script} NAME_WE)
  string(REGEX REPLACE "^test_" "" n ${n})
  gs_integ_test(${n})
endforeach()
