# The SQL seam (src/store/sql.h) on SQLite; integ.pg_unit runs the same binary on PostgreSQL.
gs_unit_test(test_sql SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sql.c LIBS gs_sql)
# The PostgreSQL schema, partitions and ingest (src/store/pg.h): needs a server, so it is not a
# unit.* test; integ.pg_unit runs it against a throwaway cluster.
add_executable(test_pg ${CMAKE_SOURCE_DIR}/tests/unit/test_pg.c ${CMAKE_SOURCE_DIR}/tests/unit/ut_tmp.c)
target_link_libraries(test_pg PRIVATE gs_sql gs_store PkgConfig::CMOCKA Threads::Threads)
target_include_directories(test_pg PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
gs_strict(test_pg)
set_target_properties(test_pg PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
# pg_ingest_tool drives the PostgreSQL block ingest for integ.pg_crash and for a rate figure.
add_executable(pg_ingest_tool ${CMAKE_SOURCE_DIR}/tests/unit/pg_ingest_tool.c)
target_link_libraries(pg_ingest_tool PRIVATE gs_sql)
target_include_directories(pg_ingest_tool PRIVATE ${CMAKE_SOURCE_DIR}/src)
gs_strict(pg_ingest_tool)
set_target_properties(pg_ingest_tool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
