/* ied — the IEC 61850 server model gridsense publishes over MMS, and the MMS services on it.
 *
 * The model (IEC 61850-7-4 logical nodes, 7-3 common data classes, mapped onto MMS named
 * variables by IEC 61850-8-1 clause 8.1) has one logical device per provisioned terminal, named
 * from the terminal id by the reversible mapping documented in docs/iec61850.md. Its values come
 * from the analysis' latest results, the terminals' state and status, and the stored voltage
 * events, each with its quality and the terminal's own timestamp and time quality.
 *
 * Sans-I/O like src/iec61850: no sockets, no libuv, no database. The MMS server (src/mmsd) owns
 * one ied_t on its own thread and calls every function here from that thread only (no locks
 * inside). It feeds the model (ied_set_terminals, ied_update_latest, ied_add_event), and for each
 * association holds an ied_client_t through which it hands over the decoded confirmed requests
 * and asks for the unconfirmed PDUs (reports) to send. The MMS envelope (invokeID, Reject,
 * confirmed-Error PDUs) and every layer below are the server's: ied sees and writes service
 * bodies only (ISO 9506-2 ConfirmedServiceRequest/Response contents).
 *
 * Errors: 0 or a negative GS_E* code of core/err.h.
 */
#ifndef GS_IED_IED_H
#define GS_IED_IED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gstp/gstp.h"
#include "iec61850/mms.h"

typedef struct ied ied_t;
typedef struct ied_client ied_client_t;

typedef struct {
    char ied_name[33]; /* [mms] ied_name: IED name, the prefix of every domain (LD) name;
                          default "GRIDSENSE" */
    char vendor[65];   /* Identify response (ISO 9506-2 10.2): "gridsense" */
    char model[65];    /* "gridsense" */
    char revision[65]; /* the server's version (GS_VERSION) */
} ied_opts_t;

/* Fills the defaults documented in ied_opts_t (revision ""). */
void ied_opts_default(ied_opts_t *o);

/* Creates an empty model (no logical devices). Returns 0, GS_EINVAL with a message in err when
 * ied_name is not a valid IEC 61850 IED name (docs/iec61850.md), or GS_ENOMEM. */
int ied_new(const ied_opts_t *o, ied_t **out, char *err, size_t errlen);

/* Frees the model. Every ied_client_t of it must have been freed first. NULL is a no-op. */
void ied_free(ied_t *m);

/* One terminal as the model needs it: what was provisioned (store_terminal_t) and its live
 * state (gw_term_info_t), copied by the server. */
typedef struct {
    char id[GSTP_MAX_ID + 1];
    char name[65];          /* provisioned display name ("" if none) */
    int nominal_hz;         /* 50 or 60 */
    double vt_ratio;        /* provisioned, 1 = not provisioned */
    double ct_ratio;        /* provisioned, 1 = not provisioned */
    double declared_v;      /* Udin, secondary volts phase-to-neutral; 0 = not declared */
    int online;             /* a session is up (on any node) */
    int64_t last_seen_ns;   /* last frame received, 0 = never since the server started */
    uint32_t sample_rate;   /* from the last HELLO, 0 = unknown */
    int nchannels;          /* from the last HELLO, 0 = unknown */
    int has_status;         /* status below is valid */
    int64_t status_received_ns;
    gstp_status_t status;   /* the last STATUS (time quality, supply, temperature, signal) */
} ied_terminal_t;

/* Makes the model's logical devices exactly the terminals of list[0..n) (the provisioned ones):
 * adds the new, removes the gone (their clients' dynamic lists and report state with them:
 * a report control block of a removed LD stops), and updates the others' descriptions and live
 * state (online, status). A terminal going offline marks its values questionable/oldData
 * (IEC 61850-7-3 6.2) from then on; it never leaves them looking fresh. now_ns: UTC. Returns 0
 * or GS_ENOMEM (the model is then unchanged). */
int ied_set_terminals(ied_t *m, const ied_terminal_t *list, size_t n, int64_t now_ns);

/* New latest analysis values of a terminal: the JSON object of GET /terminals/{id}/latest
 * (docs/api.md: window values, sequence components, power, harmonic groups, the latest
 * synchrophasor report as "phasor"). Values take their timestamps from the window's own time
 * (t_ref_ns) and their time quality from the window's flags and the terminal's status, never
 * from now_ns, which only drives reporting. Returns 0, GS_ENOTFOUND (no LD for the terminal:
 * ignored), GS_EPROTO (malformed: the LD's values unchanged). */
int ied_update_latest(ied_t *m, const char *terminal_id, const char *json, int64_t now_ns);

/* A voltage event once stored: the JSON object E of GET /api/v1/events (docs/api.md: id, kind
 * dip|swell|interruption, start_ns, duration_s, residual/maximum and their _pct, channels).
 * Updates the LD's QVVR1 (and triggers its reports). Returns 0, GS_ENOTFOUND, GS_EPROTO. */
int ied_add_event(ied_t *m, const char *terminal_id, const char *json, int64_t now_ns);

/* Number of logical devices, and of the model's named variables (for metrics and benchmarks). */
size_t ied_ld_count(const ied_t *m);

/* ---- Associations ---------------------------------------------------------------------------- */

/* Creates the per-association state (dynamic association-specific named variable lists,
 * reservations and enabled report control blocks, the negotiated PDU size). `max_pdu`: the
 * negotiated MMS PDU size (Initiate localDetail) bounding every response and report. */
int ied_client_new(ied_t *m, uint32_t max_pdu, ied_client_t **out);

/* Ends an association: its association-specific lists are deleted, its unbuffered report
 * control blocks released; buffered ones keep their buffer for the next association that
 * enables them (IEC 61850-7-2 17.2). NULL is a no-op. */
void ied_client_free(ied_client_t *c);

/* What the server sends back for one confirmed request. */
enum {
    IED_RESP = 0,  /* a confirmed-ResponsePDU: service tag `service`, contents written into w */
    IED_ERROR = 1, /* a confirmed-ErrorPDU with err_class / err_code (ISO 9506-2 7.4.1.3) */
    IED_REJECT = 2 /* a RejectPDU confirmed-requestPDU with reject_code (e.g. invalid-argument) */
};
typedef struct {
    int kind;               /* IED_RESP, IED_ERROR, IED_REJECT */
    int service;            /* IED_RESP: the response's CHOICE tag (MMS_SVC_*) */
    bool constructed;       /* IED_RESP: its constructed bit */
    int32_t err_class;      /* IED_ERROR: ServiceError errorClass CHOICE tag */
    int32_t err_code;       /* IED_ERROR: and its value */
    int32_t reject_code;    /* IED_REJECT: MMS_REJ_REQ_* */
} ied_answer_t;

/* Handles one confirmed service request: `service` and `constructed` are the request's CHOICE
 * tag and constructed bit, body[0..len) its contents (mms_pdu_t.service/body). Writes the
 * response contents into w (prepending, as mms_ber_writer_t does: the server then wraps them in
 * the envelope) and fills *a. Services: Identify, Status, GetNameList, GetVariableAccessAttributes,
 * Read, Write, Define/Delete/GetNamedVariableListAttributes; file services are answered once
 * implemented (docs/iec61850.md says which), others get a Reject unrecognized-service. A response
 * that would exceed the negotiated PDU size is answered as ISO 9506-2 and 8-1 say (docs). Returns
 * 0 whenever *a says what to send (malformed requests included: their Reject is an answer), a
 * negative code only on our own failure (GS_ENOMEM, w too small: w->err). */
int ied_confirmed(ied_client_t *c, int service, bool constructed, const uint8_t *body, size_t len,
                  mms_ber_writer_t *w, ied_answer_t *a);

/* The next unconfirmed PDU this association should receive now (a report: InformationReport,
 * ISO 9506-2 15.4 / IEC 61850-8-1 17.2), written into w as the UnconfirmedService contents of
 * service *service (MMS_USVC_INFORMATION_REPORT). Returns 1 when one was written, 0 when
 * nothing is due, or a negative code. The server calls it after feeding new values and on a
 * timer (see ied_client_next_due), until it returns 0 or the connection's send queue is full
 * (a report not taken stays due: buffered reports stay in their buffer). */
int ied_client_next_report(ied_client_t *c, int64_t now_ns, mms_ber_writer_t *w, int *service);

/* When this association next has something due (integrity period, buffer time), UTC ns, or
 * INT64_MAX if nothing is scheduled. */
int64_t ied_client_next_due(const ied_client_t *c);

/* ---- Files (added by the ied helper: see below) ------------------------------------------------ */

/* MMS file services (ISO 9506-2 clause 19-20 as IEC 61850-8-1 clause 23 uses them: FileDirectory,
 * FileOpen, FileRead, FileClose) serve the files of a provider the server sets: ied is sans-I/O and
 * has no store, so the disturbance records (COMTRADE files of each stored event, a directory per
 * terminal) come from the server, which knows how to build them. Without a provider the file
 * services get a Reject unrecognized-service. Names are '/'-separated paths of printable ASCII
 * (no "." or ".." component, at most IED_FILE_NAME_MAX octets; ied refuses others with
 * filename-syntax-error before calling the provider). Every callback runs on the server's thread
 * inside ied_confirmed or ied_client_free. Errors: GS_ENOTFOUND (file-non-existent), GS_EBUSY
 * (file-busy), GS_EINVAL (filename-syntax-error), anything else (other). */
#define IED_FILE_NAME_MAX 255
typedef struct {
    char name[IED_FILE_NAME_MAX + 1]; /* the entry's full path, as FileOpen takes it */
    uint64_t size;                    /* octets (a directory: 0) */
    int64_t mtime_ns;                 /* last modified, UTC; 0 = unknown (not sent) */
} ied_file_info_t;

typedef struct {
    /* Entries of directory `dir` ("" = the top) in a stable order, starting after the entry
     * named `after` (NULL: from the first): at most `max` into out. Returns how many (0..max)
     * and sets *more when entries remain, or a negative code (GS_ENOTFOUND: no such directory;
     * a file name: its own entry alone). */
    int (*list)(void *ud, const char *dir, const char *after, ied_file_info_t *out, size_t max,
                bool *more);
    /* Opens file `name` for reading: *h and its *info. */
    int (*open)(void *ud, const char *name, void **h, ied_file_info_t *info);
    /* Reads up to cap octets at the current position: the count, 0 at the end, or negative. */
    int (*read)(void *ud, void *h, uint8_t *buf, size_t cap);
    void (*close)(void *ud, void *h);
} ied_file_ops_t;

/* Sets (or with NULL removes) the file provider. Associations keep their open files until they
 * close them; call it before any association exists or only to add a provider. */
void ied_set_file_ops(ied_t *m, const ied_file_ops_t *ops, void *ud);

/* ---- SCL (IEC 61850-6) --------------------------------------------------------------------- */

/* Writes the model as an SCL file (an ICD: Header, Communication with the access point,
 * IED/AccessPoint/Server/LDevice/LN0/LN with DataSets and report control blocks, and the
 * DataTypeTemplates of every LN, DO and DA type), consistent with GetNameList and
 * GetVariableAccessAttributes. `write` receives the XML text in pieces. Returns 0 or the first
 * negative code `write` returned. */
int ied_scl_write(const ied_t *m, int (*write)(void *ud, const char *s, size_t n), void *ud);

#endif
