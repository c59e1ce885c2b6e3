# The MMS server (src/mmsd): password file and [mms] settings (src/cli/config.c compiled in, as
# tests/unit/cli.cmake does). The server itself: integ.mms_replay, integ.mms_abuse.
if(CMOCKA_FOUND AND TARGET gs_mmsd)
  gs_unit_test(test_mmsd
               SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mmsd.c ${CMAKE_SOURCE_DIR}/src/cli/config.c
               LIBS gs_mmsd gs_api gs_gw gs_web gs_store gs_gstp gs_core PkgConfig::INIH
                    PkgConfig::JANSSON PkgConfig::SODIUM)
  target_compile_definitions(test_mmsd PRIVATE _GNU_SOURCE)
endif()
