/* mmsd internals shared by mmsd.c and files.c (not part of the module's contract). */
#ifndef GS_MMSD_MMSD_INT_H
#define GS_MMSD_MMSD_INT_H

#include "core/hmap.h"
#include "core/log.h"
#include "ied/ied.h"
#include "mmsd/mmsd.h"

/* Largest COMTRADE file the file provider builds in memory. */
#define MMSD_FILE_MAX (64u << 20)

/* The MMS thread's read-only store connection. */
store_t *mmsd__store(mmsd_t *m);
/* Event id (decimal) -> sizes of its record, kept for directory listings (files.c). */
hmap_t *mmsd__size_cache(mmsd_t *m);
/* The file provider (files.c), set on the model with the mmsd_t as ud. */
extern const ied_file_ops_t mmsd__file_ops;

#endif
