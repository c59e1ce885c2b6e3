# Analysis service (src/ana) with a real loop, store and worker threads.
gs_unit_test(test_ana SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ana.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_store.c
             ${CMAKE_SOURCE_DIR}/tests/unit/dsp_siggen.c LIBS gs_ana PkgConfig::SQLITE m)
