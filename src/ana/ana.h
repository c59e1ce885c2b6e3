/* ana — the analysis service: runs the dsp engine on every terminal's live waveform stream.
 *
 * The gateway hands each new waveform block to ana_block() on the loop thread (it never waits:
 * blocks are copied into the queue of the DSP worker the terminal is pinned to; a full queue
 * skips the block for analysis only, which the stream then reports as a gap, and the terminal
 * counts as behind; the store records the skipped block in the analysis backlog, which the
 * backfill thread analyses later: see "Backfill and re-analysis" below). Workers (threads, one per core by default) own their terminals' dsp
 * streams, so no locks guard analysis state. Results:
 *   - aggregates (3 s, 10 s frequency, 10 min, 2 h) and voltage events go straight to the store
 *     writer (a thread itself) as STORE_ITEM_MEASUREMENT / STORE_ITEM_PQ_EVENT;
 *   - the latest window values (about once a second per terminal), events and gaps come back
 *     to the loop thread through uv_async_send: the loop keeps "latest" per terminal for the API
 *     and logs events.
 * Threads: ana_start, ana_block, the observers and ana_stop belong to the loop thread. The reads
 * ana_latest_json, ana_latest_phasor_json, ana_term_state and ana_stats may be called from any
 * thread (the web thread): the loop keeps its per-terminal results under a mutex that it holds
 * only to swap a pointer or bump a counter, and readers hold it for a copy of a few KB; it is
 * never held during DSP work, which happens on the workers. What a reader sees is what the loop
 * has received so far (no staleness beyond the uv_async hand-over from the workers).
 */
#ifndef GS_ANA_ANA_H
#define GS_ANA_ANA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/util.h"
#include "gw/gw.h"
#include "store/store.h"

typedef struct ana ana_t;

typedef struct {
    int workers;            /* DSP threads; 0 = one per online CPU */
    size_t max_queue_bytes; /* sample bytes waiting for analysis, all workers; default 64 MiB */
    int latest_ms;          /* minimum interval between "latest" updates per terminal, 1000 */
    char wisdom_path[512];  /* FFTW wisdom file (loaded at start, saved at stop); "" = none */
    int dc_removal;         /* remove each window's DC before RMS/power (dsp_config_t), 1 */
    int phasor_rate_50;     /* reporting-rate synchrophasors per second for 50 Hz terminals
                               (C37.118.1: 10, 25, 50), 0 = off; default 10 */
    int phasor_rate_60;     /* for 60 Hz terminals (10, 12, 15, 20, 30, 60), 0 = off; 10 */
    int start_paused;       /* workers wait for ana_resume() before taking jobs (blocks queue
                               and, beyond the queue limit, are skipped: used by tests) */
    /* Backfill (backfill.c): a background thread analysing stored blocks of the backlog. */
    char data_dir[512];   /* the store's data dir for the backfill's own read connection;
                             "" = no backfill */
    char store_url[1024]; /* the store's PostgreSQL URL ("" = SQLite under data_dir) */
    int backfill;         /* 1 (default): run it */
    int backfill_idle_s;  /* a unit of a terminal that stored no block for this long is done
                             (its blocks will not grow); default 30 */
    int backfill_grace_s; /* a unit that ended this long ago is done in any case; default 120 */
    int skip_every;       /* testing: skip every Nth block of each terminal for analysis as if
                               the queue were full (0 = never; `serve --analysis-skip-every`) */
} ana_opts_t;

/* Fills the defaults documented in ana_opts_t. */
void ana_opts_default(ana_opts_t *o);

/* Starts the workers on `loop` (for result delivery) submitting to `st` (whose writer must be
 * running while ana runs). Returns 0 or a negative code with a message in err. */
int ana_start(uv_loop_t *loop, store_t *st, const ana_opts_t *o, ana_t **out, char *err,
              size_t errlen);

/* gw_block_cb for gw_set_block_observer (ud = the ana_t). Loop thread. Copies the samples.
 * Returns its STORE_ANA_* bits for the store's analysis backlog (store_item_t.ana_pending):
 * SKIPPED when it was not queued (queue full, stopped); RESTART when it is the terminal's first
 * block since ana_start or since its stream was freed as idle (the live aggregates in progress
 * were lost or cut there, so the backfill rebuilds those units); 0 otherwise. */
int ana_block(void *ud, const char *terminal_id, const gw_block_info_t *b, const uint8_t *samples,
              size_t len);

/* Appends the latest analysis values of a terminal as a JSON object to `out` (the latest window
 * values, with the latest reporting-rate synchrophasor report as member "phasor" when there is
 * one). Returns 0, or GS_ENOTFOUND when none exist yet. Any thread. */
int ana_latest_json(ana_t *a, const char *terminal_id, buf_t *out);

/* Appends the latest reporting-rate synchrophasor report of a terminal (a JSON object, see
 * docs/api.md). Returns 0 or GS_ENOTFOUND. Any thread. */
int ana_latest_phasor_json(ana_t *a, const char *terminal_id, buf_t *out);

/* Live-feed hook for reporting-rate synchrophasors: called on the loop thread once per terminal
 * and UTC second with that second's reports, in the form stored as a `phasor` measurement row
 * (`row_json`, valid during the call). Not published anywhere yet: issue 8's live feed
 * subscribes here. cb NULL removes the observer. Loop thread. */
typedef void (*ana_phasor_cb)(void *ud, const char *terminal_id, const char *row_json);
void ana_set_phasor_observer(ana_t *a, ana_phasor_cb cb, void *ud);

/* Live-feed hook for every result the loop receives, called on the loop thread as it arrives
 * (after the value is readable through ana_latest_json & co.), with `json` valid during the
 * call only (copy it to hand it to another thread, e.g. with xcall_post):
 *   kind "latest": a terminal's new latest window values (the object ana_latest_json returns,
 *                  with the latest report as "phasor"), at most every latest_ms per terminal;
 *   kind "phasor": one UTC second of reporting-rate synchrophasor reports (the row given to the
 *                  phasor observer, once per terminal and second);
 * Independent of the phasor observer (both may be set). cb NULL removes it. Loop thread. */
typedef void (*ana_result_cb)(void *ud, const char *terminal_id, const char *kind,
                              const char *json);
void ana_set_result_observer(ana_t *a, ana_result_cb cb, void *ud);

/* Live-feed hook for voltage events once they are stored (committed: readable by id through any
 * store connection), on the loop thread, with the new row's id. An event the store already held
 * (a repeated analysis) is not reported again. cb NULL removes the observer. */
typedef void (*ana_event_cb)(void *ud, const char *terminal_id, int64_t event_id);
void ana_set_event_observer(ana_t *a, ana_event_cb cb, void *ud);

typedef struct {
    int workers;
    uint64_t blocks_analysed, blocks_skipped; /* skipped: worker queue full */
    uint64_t samples;                         /* sample sets analysed */
    uint64_t windows, events, aggregates, gaps;
    uint64_t stream_restarts; /* a terminal's stream recreated (rate or channels changed) */
    uint64_t phasor_reports;  /* reporting-rate synchrophasor reports made */
    size_t queue_bytes;       /* waiting now */
    int terminals;            /* terminals with an analysis state */
    int terminals_behind;     /* skipped a block in the last minute, or results > 5 s late */
    double max_delay_s;       /* worst time from block receipt to its analysis, last results */
    /* backfill (backfill.c) */
    int backfill_on;
    uint64_t bf_units, bf_blocks, bf_captures; /* rebuilt units, blocks/captures analysed */
    double bf_signal_s;                        /* signal seconds analysed */
    double bf_busy_s;                          /* thread time spent analysing them */
    double bf_cpu_s;                           /* CPU time of it */
    uint64_t bf_errors;
    int64_t bf_backlog_units, bf_backlog_blocks; /* backlog now (last look, every few s) */
    double bf_backlog_s;
} ana_stats_t;

/* Fills *out. Any thread. */
void ana_stats(ana_t *a, ana_stats_t *out);

/* One terminal's analysis state, for the API. */
typedef struct {
    int behind;       /* skipped a block in the last minute, or results > 5 s late */
    uint64_t skipped; /* blocks skipped for analysis since start */
    double delay_s;   /* receipt -> analysis of its latest results */
} ana_term_state_t;

/* Fills *out for a terminal; GS_ENOTFOUND if the analysis has not seen it. Any thread. */
int ana_term_state(ana_t *a, const char *terminal_id, ana_term_state_t *out);

/* Lets workers started with start_paused take jobs. Any thread. */
void ana_resume(ana_t *a);

/* Stops accepting blocks, lets the workers finish what is queued, flushes every stream (events
 * in progress are closed, partial aggregates stored flagged incomplete), joins the workers and
 * closes the async handle. Call on the loop thread before the store writer stops. */
void ana_stop(ana_t *a);

/* Frees everything after ana_stop and the loop has closed the handle. NULL is a no-op. The store
 * writer may still run: events it commits later are stored but no longer reported (the
 * event observer is the loop's, and the loop's part is gone). */
void ana_free(ana_t *a);

/* ---- Backfill and re-analysis (backfill.c) ----
 * Blocks stored but not analysed (the analysis backlog, store.h) are analysed later from the
 * store by a background thread at the lowest priority (SCHED_IDLE, else nice 19): per terminal
 * and 2-h unit (STORE_ANA_UNIT_NS), once the unit is done receiving (ended backfill_grace_s ago,
 * or the terminal stored nothing for backfill_idle_s), the whole unit is analysed again from
 * its stored blocks and its events and aggregates are replaced in one writer transaction that
 * also clears the unit from the backlog (store_rebuild_t). ana_start starts it when
 * ana_opts_t.data_dir is set and backfill is on; ana_stop stops it first. */

typedef struct {
    int64_t blocks;   /* WAVEFORM blocks analysed in [from, to) */
    int64_t captures; /* EVENT captures analysed (those no WAVEFORM block covers) */
    int64_t covered;  /* captures left out: WAVEFORM blocks hold the same samples */
    int64_t unusable; /* blocks that cannot be analysed (no channel layout, bad rate) */
    double signal_s;  /* signal seconds analysed in [from, to) */
} ana_rebuild_info_t;

/* Analyses terminal_id's stored blocks of [from_ns, to_ns) (plus a minute either side for the
 * engine's state: frequency tracking, DC offset, sliding reference; events that start inside
 * and end in the minute after are complete) into rb: the events starting in the range and the
 * aggregates (3 s, 10 s, 10 min, 2 h) ending in (from_ns, to_ns], with the span the blocks
 * cover and the highest seq read (blocks stored while it runs are left for later). The stream
 * is configured as the live one (ana.c) from each block's stored channel layout, the
 * terminal's nominal frequency and its declared voltage NOW. EVENT captures are analysed,
 * each as its own segment, where no WAVEFORM block covers them. `rd`: any connection of the
 * calling thread (a reader). *stop (may be NULL) non-zero ends the reading early (GS_ECLOSED).
 * Returns 0, GS_ENOTFOUND (no such terminal), GS_EDB, GS_ECLOSED. rb is initialised here;
 * free it with store_rebuild_clear. */
int ana_rebuild_range(store_t *rd, const char *terminal_id, int64_t from_ns, int64_t to_ns,
                      int dc_removal, const volatile int *stop, store_rebuild_t *rb,
                      ana_rebuild_info_t *info);

#endif
