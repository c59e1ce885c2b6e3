# src/cluster (several nodes on one PostgreSQL database): needs a server, so it is not a unit.*
# test; integ.pg_unit runs it against a throwaway cluster (GS_PG_URL).
add_executable(test_cluster ${CMAKE_SOURCE_DIR}/tests/unit/test_cluster.c)
target_link_libraries(test_cluster PRIVATE gs_cluster gs_sql PkgConfig::CMOCKA)
target_include_directories(test_cluster PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
gs_strict(test_cluster)
set_target_properties(test_cluster PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
