/* Shared helpers of the MMS stack fuzz targets (tests/fuzz/mms_*.c). */
#ifndef GS_TESTS_FUZZ_MMS_FUZZ_H
#define GS_TESTS_FUZZ_MMS_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Every decoder error is one of the documented codes. */
#define CHECK_CODE(rc)                                                                             \
    CHECK((rc) >= 0 || (rc) == GS_ETRUNC || (rc) == GS_EPROTO || (rc) == GS_ELIMIT ||              \
          (rc) == GS_ERANGE || (rc) == GS_ENOTSUP)

/* The span [p, p+n) lies inside [base, base+size). */
#define CHECK_IN(p, n, base, size)                                                                 \
    CHECK((n) == 0 ||                                                                              \
          ((const uint8_t *)(p) >= (base) && (const uint8_t *)(p) + (n) <= (base) + (size)))

#endif
