# The MMS server's record cache (src/mmsd/files.h mmsd_fcache_*): names, listing and paging,
# caps and eviction. The renderer runs in integ.mms_files.
if(CMOCKA_FOUND AND TARGET gs_mmsd)
  gs_unit_test(test_mmsd_files SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mmsd_files.c
               LIBS gs_mmsd gs_ied gs_mms gs_core)
endif()
