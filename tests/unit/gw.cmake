# The gateway is tested over loopback with its sources (those of gs_gw, src/gw/CMakeLists.txt)
# compiled in directly, with a failed-login table small enough to fill (AUTH_MAP_MAX, handshake.c).
get_target_property(GS_GW_TEST_SOURCES gs_gw SOURCES)
list(TRANSFORM GS_GW_TEST_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/src/gw/)
gs_unit_test(test_gw
             SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gw.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c ${GS_GW_TEST_SOURCES}
             LIBS gs_store gs_gstp gs_core PkgConfig::UV PkgConfig::SODIUM PkgConfig::SQLITE)
target_compile_definitions(test_gw PRIVATE AUTH_MAP_MAX=4)
