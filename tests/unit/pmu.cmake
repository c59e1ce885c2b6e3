# Reporting-rate synchrophasors (src/dsp/pmu.c): C37.118.1 M-class limits against analytic truth.
gs_unit_test(test_pmu SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_pmu.c LIBS gs_dsp m)
