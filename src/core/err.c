#include "err.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

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
        return uv_strerror(code);
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
    if (code < 0 && code > GS_ERR_BASE_)
        return uv_err_name(code);
    return "UNKNOWN";
}
