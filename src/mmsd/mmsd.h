/* mmsd — the IEC 61850 MMS server (docs/iec61850.md "Server", docs/operations.md "[mms]").
 *
 * Its own thread with its own libuv loop (like the web thread, decision 0006: the terminals'
 * gateway loop never waits for MMS clients). On that thread: the listener, every connection (an
 * mms_assoc_t of src/iec61850 each, with its bounded buffers), connection limits and timeouts,
 * the data model (an ied_t of src/ied, fed from the gateway's terminal list, the store's
 * provisioned terminals, the analysis' latest values and the stored voltage events), the report
 * timer, and a read-only store connection of its own.
 *
 * Threads: mmsd_start/mmsd_stop on the main thread; mmsd_post_latest, mmsd_post_event and
 * mmsd_terminals_changed from the main loop's observers (any thread); mmsd_stats and
 * mmsd_metrics from any thread. Errors: 0 or a negative GS_E* code of core/err.h.
 */
#ifndef GS_MMSD_MMSD_H
#define GS_MMSD_MMSD_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "gw/gw.h"
#include "store/store.h"

typedef struct mmsd mmsd_t;

#define MMSD_MAX_PASSWORDS 64

typedef struct {
    char host[64];          /* [mms] listen address, default 127.0.0.1 */
    int port;               /* default 10102 (0: any free port, see mmsd_port) */
    int max_connections;    /* [mms] max_connections, default 32 */
    int max_per_address;    /* [mms] max_connections_per_address, default 4 */
    int assoc_timeout_s;    /* [mms] association_timeout: TCP accept to AARE, default 10 */
    int idle_timeout_s;     /* [mms] idle_timeout: no byte either way, default 300 */
    int queue_kb;           /* [mms] client_queue_kb: per-client output queue bound, default
                               1024 (a client that lets it fill is cut) */
    int max_pdu;            /* [mms] max_pdu_size: MMS PDU size offered, default 65000 */
    int refresh_s;          /* terminal list refresh period, default 5 */
    int nice;               /* [mms] thread_nice 0..19, default 5 */
    char ied_name[33];      /* [mms] ied_name, default GRIDSENSE */
    char password_file[512];/* [mms] password_file: "" = no authentication */
    int auth_fail_silent;   /* [mms] auth_failure = close: close without an AARE (the reference
                               server's behaviour); default 0 = AARE authentication-failure */
    int files_max_mb;       /* [mms] files_max_mb: memory for the disturbance records (files.c),
                               default 64; 0 = no file services */
    const char *data_dir;   /* for the MMS thread's read-only store connection */
    const char *store_url;  /* PostgreSQL URL or NULL (SQLite in data_dir) */
    const char *version;    /* Identify revision */
    /* Writes the JSON object of GET /api/v1/events/{id} for a stored event read on st (main.c
     * passes api_event_json); NULL: events are not fed to the model. */
    int (*event_json)(store_t *st, int64_t id, buf_t *out);
} mmsd_opts_t;

void mmsd_opts_default(mmsd_opts_t *o);

/* Reads a password file (docs/operations.md "[mms]"): a regular file, not a symlink, of mode
 * 0600 or stricter; one client per line, `NAME PASSWORD` (the password is the rest of the line,
 * 1..255 octets), # comments. Keeps only BLAKE2b hashes of the passwords. Returns the number of
 * entries (>= 1) or GS_ECONFIG with a message in err. Used by mmsd_start; exposed for tests. */
typedef struct {
    char name[64];
    uint8_t hash[32];
} mmsd_password_t;
int mmsd_password_file_load(const char *path, mmsd_password_t *out, int max, char *err,
                            size_t errlen);
/* Constant-time check of pw[0..n) against every entry (no early exit): the matching entry's
 * index, or -1. */
int mmsd_password_check(const mmsd_password_t *list, int count, const uint8_t *pw, size_t n);

/* Starts the thread: binds the listener (errors come back here), opens the read-only store
 * connection and the model. gw may be NULL (no live state). Returns 0 with *out, or a negative
 * code with a message in err. */
int mmsd_start(const mmsd_opts_t *o, gw_t *gw, mmsd_t **out, char *err, size_t errlen);

/* The bound port. Any thread after mmsd_start. */
int mmsd_port(const mmsd_t *m);

/* Stops the server: every association is aborted (ACSE ABRT), connections closed, the thread
 * joined; then frees everything. Main thread. NULL is a no-op. */
void mmsd_stop(mmsd_t *m);

/* A terminal's new latest values (the analysis' result observer, kind "latest"): copied and
 * handed to the MMS thread, coalesced per terminal (only the newest waits; at most one pending
 * per terminal and MMSD_MAX_PENDING_TERMINALS terminals). Any thread. */
#define MMSD_MAX_PENDING_TERMINALS 100000
void mmsd_post_latest(mmsd_t *m, const char *terminal_id, const char *json);

/* A voltage event once stored (the analysis' event observer): read back by id on the MMS
 * thread and added to the model. At most MMSD_MAX_PENDING_EVENTS wait (more are dropped and
 * counted). Any thread. */
#define MMSD_MAX_PENDING_EVENTS 10000
void mmsd_post_event(mmsd_t *m, const char *terminal_id, int64_t event_id);

/* The gateway's terminal observer: refresh the terminal list soon. Any thread. */
void mmsd_terminals_changed(mmsd_t *m);

typedef struct {
    uint64_t connections_open, connections_total, connections_refused;
    uint64_t assoc_ok, assoc_failed, auth_failures;
    uint64_t pdus_in[14], pdus_out[14]; /* by MMS_PDU_* type */
    uint64_t malformed_in;              /* PDUs answered with a Reject by the decoder */
    uint64_t protocol_errors;           /* ER / ABORT answers to malformed lower layers */
    uint64_t aborts_in, aborts_out;
    uint64_t reports_sent, clients_cut, events_dropped;
    uint64_t bytes_in, bytes_out;
    uint64_t logical_devices;
} mmsd_stats_t;

/* A snapshot of the counters. Any thread. */
void mmsd_stats(const mmsd_t *m, mmsd_stats_t *out);

/* Appends the gridsense_mms_* metrics (Prometheus text) to b: the signature of
 * api_opts_t.extra_metrics (ud = the mmsd_t). Any thread. */
void mmsd_metrics(void *ud, buf_t *b);

#endif
