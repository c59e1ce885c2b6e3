/* ied SCL export (IEC 61850-6). */
#include "core/err.h"
#include "ied/ied_int.h"

int ied_scl_write(const ied_t *m, int (*write)(void *ud, const char *s, size_t n), void *ud)
{
    (void)m;
    (void)write;
    (void)ud;
    return GS_ENOTSUP; /* slice 2: not built yet (docs/iec61850.md "SCL") */
}
