/* Helpers shared by the unit tests that work in temporary directories (a real store in a
 * mkdtemp directory). */
#ifndef GS_TESTS_UT_TMP_H
#define GS_TESTS_UT_TMP_H

/* Removes path and, if it is a directory, everything under it (errors are ignored: used at
 * teardown on the test's own temporary directory). */
void ut_rm_rf(const char *path);

#endif
