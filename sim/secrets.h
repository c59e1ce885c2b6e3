/* gridsense-sim: the terminal secrets file written by `gridsense terminal add --secrets-out`.
 *
 * Format: text, one terminal per line, "ID HEX64" separated by whitespace (ID: 1..32 bytes of
 * [A-Za-z0-9._-]; HEX64: the 32-byte secret in hex). Blank lines and lines starting with '#'
 * (after leading whitespace) are ignored.
 */
#ifndef GS_SIM_SECRETS_H
#define GS_SIM_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "gstp/gstp.h"

typedef struct {
    char id[GSTP_MAX_ID + 1];
    uint8_t secret[GSTP_SECRET_LEN];
} secret_entry_t;

/* Reads up to `max` entries (0 = no limit) from path into a new array *out (caller frees with
 * free()) and their count into *n. Returns 0, -errno if the file cannot be read, or GS_EINVAL
 * with "PATH:LINE: reason" in err for a malformed line or a duplicate id. */
int secrets_load(const char *path, size_t max, secret_entry_t **out, size_t *n, char *err,
                 size_t errcap);

#endif
