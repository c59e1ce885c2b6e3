/* Helpers shared by the unit tests (ut_tmp.h). */
#include "tests/unit/ut_tmp.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ut_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            ut_rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}
