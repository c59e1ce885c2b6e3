/* mmsd files — the MMS server's file provider (ied_file_ops_t of src/ied/ied.h): every stored
 * voltage event's disturbance record as COMTRADE files, a directory per logical device
 * (docs/iec61850.md "Files": layout, names, when a record appears, caps). Private to src/mmsd.
 *
 * The ied callbacks are synchronous on the MMS thread, and that thread must never wait for the
 * database or for rendering: records are rendered beforehand (src/export, the record
 * `gridsense export comtrade ID --event EVENT` writes) on libuv's thread pool, one job at a time,
 * with a read-only store connection of their own, and kept in memory under caps. The callbacks
 * only read that cache. Two parts:
 *
 *   mmsd_fcache_*  the cache: records keyed by event id, directory listing in name order with
 *                  `after` paging, open/read/close with reference counts (a record evicted while
 *                  a client reads it stays readable until it is closed), per-directory and total
 *                  byte caps that keep the newest events (by start time). Pure: no I/O, no
 *                  libuv (unit test: test_mmsd_files).
 *   mmsd_files_*   the renderer on the MMS loop: the startup pass over the terminals' recent
 *                  events, a job per new event, re-rendering while the event's post-window may
 *                  still be in flight.
 *
 * Threads: everything on the MMS thread, except the render jobs' work functions (pool thread,
 * touching only their job and the renderer's store connection). Errors: 0 or negative GS_E*.
 */
#ifndef GS_MMSD_FILES_H
#define GS_MMSD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iec61850/mms.h"
#include "ied/ied.h"

/* Caps (docs/iec61850.md "Files"): the newest MMSD_FILES_PER_DIR records of each LD, at most
 * [mms] files_max_mb of record bytes in all (the newest events across the fleet win), and a
 * record whose files would exceed MMSD_FILES_MAX_RECORD (a long interruption) is not kept. */
#define MMSD_FILES_PER_DIR    16
#define MMSD_FILES_MAX_RECORD (16u << 20)

/* The record's window, as `gridsense export comtrade --event` and /events/{id}/export default:
 * from the event's start - 0.5 s to its end + 1 s, trigger = its start. */
#define MMSD_FILES_PRE_NS  500000000LL
#define MMSD_FILES_POST_NS 1000000000LL
/* A record is rendered when its event arrives; while its samples do not reach the window's end
 * (the post-window's blocks still in flight) it is rendered again MMSD_FILES_AFTER_NS after the
 * window's end (UTC), then 0.5, 1, 2, 3, 3, ... s apart (MMSD_FILES_RETRY_MIN_NS doubling up to
 * MMSD_FILES_RETRY_MAX_NS), until complete or the window's end is MMSD_FILES_SETTLE_NS in the past: then it is
 * kept as stored. Only complete (or settled) records are listed. */
#define MMSD_FILES_AFTER_NS     500000000LL
#define MMSD_FILES_RETRY_MIN_NS 500000000LL
#define MMSD_FILES_RETRY_MAX_NS 3000000000LL
#define MMSD_FILES_SETTLE_NS 60000000000LL
/* Every MMSD_FILES_SWEEP_NS the cached records are checked against the store: a record whose
 * event or terminal was deleted since is removed. */
#define MMSD_FILES_SWEEP_NS 600000000000LL

/* ---- the cache ---------------------------------------------------------------------------- */

typedef struct mmsd_fcache mmsd_fcache_t;

/* per_dir >= 1, max_bytes >= 1. NULL on ENOMEM. */
mmsd_fcache_t *mmsd_fcache_new(int per_dir, size_t max_bytes);
/* Frees the cache; records still open stay allocated until their last close. NULL: no-op. */
void mmsd_fcache_free(mmsd_fcache_t *c);

/* "YYYYMMDD_HHMMSS_mmm_E<id>_<kind>" (UTC start, kind reduced to [a-z0-9], "event" if empty):
 * fixed-width time first, so name order is time order. */
void mmsd_files_basename(int64_t event_id, const char *kind, int64_t start_ns, char *out,
                         size_t cap);

/* One rendered record: the cache takes the three buffers (malloc'ed; freed by the cache, also
 * on failure). dir: the LD's domain name. Replaces a record of the same event id. Returns 0;
 * GS_ELIMIT when the caps keep newer records instead (the record is dropped); GS_EINVAL (a name
 * too long); GS_ENOMEM. */
typedef struct {
    const char *dir;
    int64_t event_id;
    const char *kind;
    int64_t start_ns;
    int64_t mtime_ns; /* when rendered (UTC): the files' lastModified */
    uint8_t *cfg, *dat, *hdr;
    size_t cfg_len, dat_len, hdr_len;
} mmsd_frecord_t;
int mmsd_fcache_put(mmsd_fcache_t *c, mmsd_frecord_t *r);

/* The event ids of the cached records (at most max into out): how many. */
size_t mmsd_fcache_ids(const mmsd_fcache_t *c, int64_t *out, size_t max);
/* Removes event id's record (an open one stays readable until closed): false if absent. */
bool mmsd_fcache_remove(mmsd_fcache_t *c, int64_t id);

/* Whether the cache holds event `id`, and its totals (for tests and logs). */
bool mmsd_fcache_has(const mmsd_fcache_t *c, int64_t id);
size_t mmsd_fcache_bytes(const mmsd_fcache_t *c);
size_t mmsd_fcache_count(const mmsd_fcache_t *c);

/* The provider (ud = the cache): ied_file_ops_t semantics (src/ied/ied.h). */
void mmsd_fcache_ops(ied_file_ops_t *ops);

/* ---- the renderer --------------------------------------------------------------------------- */

typedef struct mmsd_files mmsd_files_t;

/* Starts the provider on the MMS loop (max_bytes: the total cap, [mms] files_max_mb): sets it
 * on the model (ied_set_file_ops), announces fileOpen/fileRead/fileClose/fileDirectory in
 * acfg's ServiceSupportOptions, and queues the startup pass (the newest MMSD_FILES_PER_DIR events of every stored terminal). store_url NULL
 * or "": SQLite in data_dir. Returns 0 or GS_ENOMEM (then no provider: nothing announced). */
int mmsd_files_start(uv_loop_t *loop, ied_t *ied, mms_assoc_cfg_t *acfg, const char *ied_name,
                     const char *data_dir, const char *store_url, size_t max_bytes,
                     mmsd_files_t **out);

/* A voltage event was stored (the server's event feed): its record is rendered (see above).
 * NULL f: no-op. */
void mmsd_files_event(mmsd_files_t *f, const char *terminal_id, int64_t event_id);

/* The loop is stopping: no new jobs, the timer closed (the job in flight finishes). NULL: no-op. */
void mmsd_files_stop(mmsd_files_t *f);

/* After the loop ended (and the model's associations were freed): frees everything. */
void mmsd_files_free(mmsd_files_t *f);

#endif
