# src/cli is not a library: config.c and verbs.c are compiled into the test directly.
gs_unit_test(test_cli_config
             SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_cli_config.c
                     ${CMAKE_SOURCE_DIR}/src/cli/config.c ${CMAKE_SOURCE_DIR}/src/cli/verbs.c
             LIBS gs_gw gs_web gs_store gs_gstp gs_core PkgConfig::INIH PkgConfig::JANSSON)
