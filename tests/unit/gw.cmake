# The gateway is tested over loopback with gw.c compiled in directly, with a failed-login table
# small enough to fill (AUTH_MAP_MAX).
gs_unit_test(test_gw
             SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gw.c ${CMAKE_SOURCE_DIR}/src/gw/gw.c
             LIBS gs_store gs_gstp gs_core PkgConfig::UV PkgConfig::SODIUM PkgConfig::SQLITE)
target_compile_definitions(test_gw PRIVATE AUTH_MAP_MAX=4)
