/* ana internals shared by ana.c and backfill.c; not part of the contract. */
#ifndef GS_ANA_INTERNAL_H
#define GS_ANA_INTERNAL_H

#include "ana/ana.h"

typedef struct ana_bf ana_bf_t;

/* Starts the backfill thread (ana.h, "Backfill and re-analysis") submitting to `writer`.
 * Returns 0 or a negative code (logged; the server runs on without backfill). */
int ana__bf_start(const ana_opts_t *o, store_t *writer, ana_bf_t **out);

/* Stops and joins the thread (an analysis in progress ends at its next block; a rebuild
 * submitted is waited for), then frees. NULL is a no-op. */
void ana__bf_stop(ana_bf_t *b);

/* Adds the backfill's counters to *out. Any thread. */
void ana__bf_stats(ana_bf_t *b, ana_stats_t *out);

#endif
