# The SQL seam (src/store/sql.h) on SQLite; integ.pg_unit runs the same binary on PostgreSQL.
gs_unit_test(test_sql SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sql.c LIBS gs_sql)
