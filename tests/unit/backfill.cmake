# ana_rebuild_range (src/ana/backfill.c) on blocks written through a real store.
gs_unit_test(test_backfill SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_backfill.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c LIBS gs_ana m)
