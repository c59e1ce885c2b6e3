# src/cli is not a library: config.c is compiled into the test directly (verbs: gs_api).
gs_unit_test(test_cli_config
             SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_cli_config.c
                     ${CMAKE_SOURCE_DIR}/src/cli/config.c
             LIBS gs_mmsd gs_api gs_gw gs_web gs_store gs_gstp gs_core PkgConfig::INIH PkgConfig::JANSSON)
