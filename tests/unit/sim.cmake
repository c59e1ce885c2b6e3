# Unit tests of gridsense-sim's pure modules.
gs_unit_test(test_sim_signal SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sim_signal.c
             ${CMAKE_SOURCE_DIR}/sim/signal.c LIBS gs_core m)
