# Analysis engine: accuracy against the synthetic generator's truth (IEC 61000-4-30/4-7, C37.118.1).
gs_unit_test(test_dsp SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_dsp.c
             ${CMAKE_SOURCE_DIR}/tests/unit/dsp_siggen.c LIBS gs_dsp m)
