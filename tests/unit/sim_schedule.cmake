# Unit tests of gridsense-sim's --schedule parser and its use of the signal generator.
gs_unit_test(test_sim_schedule SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sim_schedule.c
             ${CMAKE_SOURCE_DIR}/sim/schedule.c ${CMAKE_SOURCE_DIR}/sim/signal.c LIBS gs_core m)
