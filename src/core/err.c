#define _GNU_SOURCE /* strerrorname_np (glibc 2.32) */
#include "err.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

/* libuv returns a freshly allocated string for codes it has no name for (leaked by the caller,
 * and not the static string our contract promises); ask its reentrant variant first. */
static int uv_knows(int code)
{
    char name[64];
    uv_err_name_r(code, name, sizeof name);
    return strncmp(name, "Unknown system error", 20) != 0;
}

const char *err_str(int code)
{
    switch (code) {
    case 0:
        return "success";
#define X(name, text)                                                                              \
    case GS_E##name:                                                                               \
        return text;
        GS_ERR_MAP(X)
#undef X
    default:
        break;
    }
    if (code < 0 && code > GS_ERR_BASE_)
        return uv_knows(code) ? uv_strerror(code) : strerror(-code);
    return "unknown error";
}

const char *err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define X(name, text)                                                                              \
    case GS_E##name:                                                                               \
        return "GS_E" #name;
        GS_ERR_MAP(X)
#undef X
    default:
        break;
    }
    if (code < 0 && code > GS_ERR_BASE_) {
        if (uv_knows(code))
            return uv_err_name(code);
        const char *n = strerrorname_np(-code);
        if (n)
            return n;
    }
    return "UNKNOWN";
}
