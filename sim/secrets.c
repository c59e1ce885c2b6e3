/* gridsense-sim: secrets file reader. See secrets.h. */
#include "secrets.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

int secrets_load(const char *path, size_t max, secret_entry_t **out, size_t *n, char *err,
                 size_t errcap)
{
    FILE *f = fopen(path, "r");
    secret_entry_t *a = NULL;
    size_t na = 0, cap = 0, lineno = 0;
    char line[512];
    int rc;

    *out = NULL;
    *n = 0;
    if (!f) {
        rc = -errno;
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return rc;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            snprintf(err, errcap, "%s:%zu: line too long", path, lineno);
            goto invalid;
        }
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == 0 || *p == '#')
            continue;
        char *save = NULL;
        char *id = strtok_r(p, " \t\r\n", &save);
        char *hex = strtok_r(NULL, " \t\r\n", &save);
        char *extra = strtok_r(NULL, " \t\r\n", &save);
        if (!id || !hex || extra) {
            snprintf(err, errcap, "%s:%zu: expected \"ID HEX64\"", path, lineno);
            goto invalid;
        }
        if (strlen(id) > GSTP_MAX_ID || !gstp_valid_id(id)) {
            snprintf(err, errcap, "%s:%zu: invalid terminal id", path, lineno);
            goto invalid;
        }
        secret_entry_t e;
        memset(&e, 0, sizeof e);
        if (strlen(hex) != 2 * GSTP_SECRET_LEN || hex_decode(hex, e.secret, GSTP_SECRET_LEN)) {
            snprintf(err, errcap, "%s:%zu: secret must be %u hex characters", path, lineno,
                     2 * GSTP_SECRET_LEN);
            goto invalid;
        }
        strcpy(e.id, id);
        for (size_t i = 0; i < na; i++) {
            if (strcmp(a[i].id, e.id) == 0) {
                snprintf(err, errcap, "%s:%zu: duplicate terminal id %s", path, lineno, e.id);
                goto invalid;
            }
        }
        if (max && na == max)
            continue; /* keep validating the rest of the file */
        if (na == cap) {
            cap = cap ? 2 * cap : 64;
            a = xrealloc(a, cap * sizeof *a);
        }
        a[na++] = e;
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errcap, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    *out = a;
    *n = na;
    return 0;

invalid:
    rc = GS_EINVAL;
fail:
    fclose(f);
    free(a);
    return rc;
}
