/* mms_client: an IEC 61850 / MMS client on gridsense's own codecs (src/iec61850, gs_mms), for
 * the integration tests and for people (docs/iec61850.md, section "Test client").
 *
 *   mms_client [--host H] --port P [--password PW] [--timeout S] [--max-pdu N] [--abort]
 *              CMD [ARGS...]
 *   mms_client --decode-vectors FILE      (decode every server TPKT of a tests/vectors/mms file)
 *
 * Commands: identify, status, domains, names DOMAIN [--class vars|lists|journals],
 * attrs DOMAIN ITEM, read DOMAIN ITEM..., read-list DOMAIN LIST, write DOMAIN ITEM JSON,
 * define-list DOMAIN NAME ITEM..., delete-list DOMAIN NAME, list-attrs DOMAIN NAME,
 * reports --enable DOMAIN/RCB [options], files DIR, get-file REMOTE LOCAL, sleep S, conclude,
 * abort, batch (commands read from stdin, one per line, all on one association).
 *
 * Output: one JSON object per line on stdout ("cmd" says which command printed it; every
 * InformationReport received at any time is a "report" line). Errors: a message on stderr and
 * an exit code: 1 transport / protocol / malformed answer, 2 association refused, 3 a service
 * answered with an error (confirmed-Error, Reject, a DataAccessError; also printed on stdout as
 * an "error" member, and a batch goes on with its next command), 4 usage.
 *
 * Everything the server sends is decoded with bounded readers (gs_mms): TPKTs up to 65,535
 * octets, a TSDU reassembled into a buffer of the proposed PDU size plus the upper layers'
 * headroom, an MMS PDU no longer than the negotiated size, BER nesting bounded by the reader's
 * depth limit, strings copied with explicit caps, file downloads bounded by --max-file.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/err.h"
#include "iec61850/mms.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CTX  MMS_BER_CONTEXT
#define UNI  MMS_BER_UNIVERSAL
#define APP  MMS_BER_APPLICATION
#define CONS MMS_BER_CONSTRUCTED

/* Exit codes / error kinds. */
enum { E_OK = 0, E_IO = 1, E_ASSOC = 2, E_SVC = 3, E_USAGE = 4 };

#define NAME_MAX_LEN 256         /* identifiers and object references we accept from a server */
#define STR_MAX_LEN  65536       /* string values */
#define OUT_MAX      (64u << 20) /* one JSON line */
#define REQ_MAX      65536       /* our largest request */
#define MAX_ITEMS    256         /* items of one read / define-list */
#define MAX_PAGES    100000      /* GetNameList / FileDirectory pages of one command */

static char g_err[1024];

static int fail(int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -kind;
}

/* ---- JSON output ------------------------------------------------------------------------------
 */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sb_t;

static void sb_put(sb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = cap <= OUT_MAX ? realloc(b->p, cap) : NULL;
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_s(sb_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_f(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_f(sb_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string from octets that are valid UTF-8 (or ASCII). */
static void sb_str(sb_t *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20 || c == 0x7F) {
            sb_f(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&s[i], 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void sb_cstr(sb_t *b, const char *s)
{
    sb_str(b, s, strlen(s));
}

static void sb_hex(sb_t *b, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {hx[p[i] >> 4], hx[p[i] & 15]};
        sb_put(b, h, 2);
    }
    sb_put(b, "\"", 1);
}

static void sb_double(sb_t *b, double v, bool dbl)
{
    if (isnan(v))
        sb_s(b, "\"NaN\"");
    else if (isinf(v))
        sb_s(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else {
        /* always with a '.' or an exponent, so a float is never read back as an integer */
        char t[40];
        snprintf(t, sizeof t, dbl ? "%.17g" : "%.9g", v);
        sb_s(b, t);
        if (!strpbrk(t, ".eEn"))
            sb_s(b, ".0");
    }
}

/* Prints a finished line on stdout (one JSON object), flushed so a reading test sees it now. */
static int emit(sb_t *b)
{
    if (b->oom) {
        free(b->p);
        *b = (sb_t){0};
        return fail(E_IO, "output line above %u octets", OUT_MAX);
    }
    if (b->p) {
        fputs(b->p, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(b->p);
    *b = (sb_t){0};
    return 0;
}

/* ---- Names of codes ----------------------------------------------------------------------------
 */

static const char *data_access_error_name(int64_t c)
{
    static const char *n[] = {
        "object-invalidated",        "hardware-fault",      "temporarily-unavailable",
        "object-access-denied",      "object-undefined",    "invalid-address",
        "type-unsupported",          "type-inconsistent",   "object-attribute-inconsistent",
        "object-access-unsupported", "object-non-existent", "object-value-invalid"};
    return c >= 0 && c < (int64_t)(sizeof n / sizeof n[0]) ? n[c] : "unknown";
}

static const char *error_class_name(int32_t c)
{
    static const char *n[] = {"vmd-state",       "application-reference",
                              "definition",      "resource",
                              "service",         "service-preempt",
                              "time-resolution", "access",
                              "initiate",        "conclude",
                              "cancel",          "file",
                              "others"};
    return c >= 0 && c < (int32_t)(sizeof n / sizeof n[0]) ? n[c] : "unknown";
}

/* ServiceError codes of the classes an IEC 61850 server answers with (ISO 9506-2 7.4.1.3). */
static const char *error_code_name(int32_t cls, int32_t code)
{
    static const char *def[] = {"other",
                                "object-undefined",
                                "invalid-address",
                                "type-unsupported",
                                "type-inconsistent",
                                "object-exists",
                                "object-attribute-inconsistent"};
    static const char *res[] = {"other",
                                "memory-unavailable",
                                "processor-resource-unavailable",
                                "mass-storage-unavailable",
                                "capability-unavailable",
                                "capability-unknown"};
    static const char *svc[] = {
        "other",    "primitives-out-of-sequence", "object-state-conflict",
        "pdu-size", "continuation-invalid",       "object-constraint-conflict"};
    static const char *acc[] = {"other", "object-access-unsupported", "object-non-existent",
                                "object-access-denied", "object-invalidated"};
    static const char *file[] = {"other",
                                 "filename-ambiguous",
                                 "file-busy",
                                 "filename-syntax-error",
                                 "content-type-invalid",
                                 "position-invalid",
                                 "file-access-denied",
                                 "file-non-existent",
                                 "duplicate-filename",
                                 "insufficient-space-in-filestore"};
#define PICK(t) return code >= 0 && code < (int32_t)(sizeof t / sizeof t[0]) ? t[code] : "unknown"
    switch (cls) {
    case 2:
        PICK(def);
    case 3:
        PICK(res);
    case 4:
        PICK(svc);
    case 7:
        PICK(acc);
    case 11:
        PICK(file);
    default:
        return code == 0 ? "other" : "unknown";
    }
#undef PICK
}

static const char *reject_class_name(int32_t c)
{
    static const char *n[] = {"?",
                              "confirmed-requestPDU",
                              "confirmed-responsePDU",
                              "confirmed-errorPDU",
                              "unconfirmedPDU",
                              "pdu-error",
                              "cancel-requestPDU",
                              "cancel-responsePDU",
                              "cancel-errorPDU",
                              "conclude-requestPDU",
                              "conclude-responsePDU",
                              "conclude-errorPDU"};
    return c >= 0 && c < (int32_t)(sizeof n / sizeof n[0]) ? n[c] : "unknown";
}

static const char *acse_diag_name(int32_t d)
{
    switch (d) {
    case 0:
        return "null";
    case 1:
        return "no-reason-given";
    case 2:
        return "application-context-name-not-supported";
    case 3:
        return "calling-AP-title-not-recognized";
    case 5:
        return "calling-AE-qualifier-not-recognized";
    case 7:
        return "called-AP-title-not-recognized";
    case 9:
        return "called-AE-qualifier-not-recognized";
    case 11:
        return "authentication-mechanism-name-not-recognized";
    case 12:
        return "authentication-mechanism-name-required";
    case 13:
        return "authentication-failure";
    case 14:
        return "authentication-required";
    default:
        return "unknown";
    }
}

/* ---- Time ----------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(char *out, size_t cap, int64_t secs, long usec)
{
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "invalid");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

/* IEC 61850-8-1 8.1.3.7 UtcTime: {"utc": ISO, "ns": integer, "tq": {flags, accuracy}}. */
static void sb_utctime(sb_t *b, const mms_utctime_t *u)
{
    uint64_t ns = ((uint64_t)u->frac * 1000000000u + (1u << 23)) >> 24;
    char iso[64];
    iso_time(iso, sizeof iso, u->secs, (long)(ns / 1000));
    sb_s(b, "{\"utc\":");
    sb_cstr(b, iso);
    sb_f(b, ",\"ns\":%lld", (long long)((int64_t)u->secs * 1000000000 + (int64_t)ns));
    sb_f(b, ",\"tq\":{\"leap_known\":%s,\"clock_failure\":%s,\"not_synced\":%s,\"accuracy\":%u}}",
         u->quality & MMS_TQ_LEAP_KNOWN ? "true" : "false",
         u->quality & MMS_TQ_CLOCK_FAILURE ? "true" : "false",
         u->quality & MMS_TQ_NOT_SYNCED ? "true" : "false", u->quality & 0x1F);
}

/* ISO 9506-2 TimeOfDay: days since 1984-01-01 when present. */
static void sb_bintime(sb_t *b, const mms_bintime_t *t)
{
    char iso[64];
    if (t->has_days) {
        int64_t secs = INT64_C(441763200) + (int64_t)t->days * 86400 + t->ms / 1000;
        iso_time(iso, sizeof iso, secs, (long)(t->ms % 1000) * 1000);
        sb_s(b, "{\"btime\":");
        sb_cstr(b, iso);
        sb_s(b, "}");
    } else {
        sb_f(b, "{\"btime_ms\":%u}", t->ms);
    }
}

/* ---- BER helpers on server data ------------------------------------------------------------- */

static int read_name(const mms_tlv_t *t, char *out, size_t cap)
{
    int r = mms_ber_get_visible(t, out, cap);
    if (r < 0)
        return fail(E_IO, "malformed identifier from the server (%s)", err_str(r));
    return 0;
}

/* ObjectName (ISO 9506-2 7.5.2) as text: "item" (vmd-specific), "dom/item", "@item" (aa). */
static int object_name(const mms_ber_reader_t *r, const mms_tlv_t *t, char *out, size_t cap)
{
    char a[NAME_MAX_LEN], b2[NAME_MAX_LEN];
    if (t->cls != CTX)
        return fail(E_IO, "malformed ObjectName");
    if (t->tag == 0 && !t->constructed)
        return read_name(t, out, cap);
    if (t->tag == 2 && !t->constructed) {
        if (read_name(t, a, sizeof a) < 0)
            return -E_IO;
        snprintf(out, cap, "@%s", a);
        return 0;
    }
    if (t->tag == 1 && t->constructed) {
        mms_ber_reader_t c;
        mms_tlv_t d, i;
        if (mms_ber_enter(r, t, &c) < 0 || mms_ber_expect(&c, UNI, false, 26, &d) < 0 ||
            mms_ber_expect(&c, UNI, false, 26, &i) < 0)
            return fail(E_IO, "malformed domain-specific ObjectName");
        if (read_name(&d, a, sizeof a) < 0 || read_name(&i, b2, sizeof b2) < 0)
            return -E_IO;
        snprintf(out, cap, "%s/%s", a, b2);
        return 0;
    }
    return fail(E_IO, "malformed ObjectName (tag %u)", t->tag);
}

/* ISO 9506-2 Data (with the IEC 61850-8-1 types) as JSON: structure and array as JSON arrays,
 * booleans, integers, floats, bit strings {"bits": hex, "n": count}, octet strings
 * {"octets": hex}, visible and MMS strings, UtcTime, TimeOfDay. */
static int data_json(const mms_ber_reader_t *r, const mms_tlv_t *t, sb_t *b)
{
    int rc = 0;
    if (t->cls != CTX)
        return fail(E_IO, "Data element with a non-context tag");
    if (t->constructed) {
        if (t->tag != 1 && t->tag != 2)
            return fail(E_IO, "constructed Data element with tag [%u]", t->tag);
        mms_ber_reader_t c;
        mms_tlv_t e;
        int n = 0;
        rc = mms_ber_enter(r, t, &c);
        if (rc < 0)
            return fail(E_IO, "Data nested too deep or malformed (%s)", err_str(rc));
        sb_s(b, "[");
        while ((rc = mms_ber_next(&c, &e)) == 1) {
            if (n++)
                sb_s(b, ",");
            if (data_json(&c, &e, b) < 0)
                return -E_IO;
        }
        if (rc < 0)
            return fail(E_IO, "malformed structure/array (%s)", c.why ? c.why : err_str(rc));
        sb_s(b, "]");
        return 0;
    }
    switch (t->tag) {
    case 3: {
        bool v;
        rc = mms_ber_get_bool(t, &v);
        if (rc == 0)
            sb_s(b, v ? "true" : "false");
        break;
    }
    case 4: {
        const uint8_t *bits;
        size_t nbits;
        rc = mms_ber_get_bits(t, &bits, &nbits);
        if (rc == 0) {
            sb_s(b, "{\"bits\":");
            sb_hex(b, bits, (nbits + 7) / 8);
            sb_f(b, ",\"n\":%zu}", nbits);
        }
        break;
    }
    case 5: {
        int64_t v;
        rc = mms_ber_get_int(t, &v);
        if (rc == 0)
            sb_f(b, "%lld", (long long)v);
        break;
    }
    case 6: {
        uint64_t v;
        rc = mms_ber_get_uint(t, &v);
        if (rc == 0)
            sb_f(b, "%llu", (unsigned long long)v);
        break;
    }
    case 7: {
        double v;
        bool dbl;
        rc = mms_ber_get_float(t, &v, &dbl);
        if (rc == 0)
            sb_double(b, v, dbl);
        break;
    }
    case 9: {
        const uint8_t *p;
        size_t n;
        rc = mms_ber_get_octets(t, STR_MAX_LEN, &p, &n);
        if (rc == 0) {
            sb_s(b, "{\"octets\":");
            sb_hex(b, p, n);
            sb_s(b, "}");
        }
        break;
    }
    case 10: {
        char *s = malloc(STR_MAX_LEN + 1);
        if (!s)
            return fail(E_IO, "out of memory");
        rc = mms_ber_get_visible(t, s, STR_MAX_LEN + 1);
        if (rc == 0)
            sb_cstr(b, s);
        free(s);
        break;
    }
    case 12: {
        mms_bintime_t v;
        rc = mms_ber_get_bintime(t, &v);
        if (rc == 0)
            sb_bintime(b, &v);
        break;
    }
    case 16: {
        const uint8_t *p;
        size_t n;
        rc = mms_ber_get_mmsstring(t, STR_MAX_LEN, &p, &n);
        if (rc == 0)
            sb_str(b, (const char *)p, n);
        break;
    }
    case 17: {
        mms_utctime_t v;
        rc = mms_ber_get_utctime(t, &v);
        if (rc == 0)
            sb_utctime(b, &v);
        break;
    }
    default:
        /* BCD, objId, generalized time, ...: not used by IEC 61850-8-1 values we print; shown
         * raw so the line stays useful and the rest of the answer still decodes. */
        sb_f(b, "{\"tag\":%u,\"raw\":", t->tag);
        sb_hex(b, t->val, t->len);
        sb_s(b, "}");
        break;
    }
    if (rc < 0)
        return fail(E_IO, "malformed Data [%u] from the server (%s)", t->tag, err_str(rc));
    return 0;
}

/* AccessResult (ISO 9506-2 14.5): failure [0] DataAccessError or a Data. Prints
 * {"value": V} or {"error": {"code": n, "name": s}}; *failed set on a failure. */
static int access_result_json(const mms_ber_reader_t *r, const mms_tlv_t *t, sb_t *b, bool *failed)
{
    if (t->cls == CTX && t->tag == 0 && !t->constructed) {
        int64_t code;
        if (mms_ber_get_int(t, &code) < 0)
            return fail(E_IO, "malformed DataAccessError");
        sb_f(b, "\"error\":{\"code\":%lld,\"name\":", (long long)code);
        sb_cstr(b, data_access_error_name(code));
        sb_s(b, "}");
        if (failed)
            *failed = true;
        return 0;
    }
    sb_s(b, "\"value\":");
    return data_json(r, t, b);
}

/* TypeSpecification (ISO 9506-2 14.1) as a JSON type tree: {"struct": {name: T, ...}},
 * {"array": n, "of": T}, or a string for a simple type ("boolean", "int32", "uint8",
 * "float32", "bitstring(13)", "vstring(-255)" = variable up to 255, "utctime", ...). */
static int type_json(const mms_ber_reader_t *r, const mms_tlv_t *t, sb_t *b)
{
    mms_ber_reader_t c;
    mms_tlv_t e;
    int rc;
    if (t->cls != CTX)
        return fail(E_IO, "TypeSpecification with a non-context tag");
    if (t->tag == 0) { /* typeName */
        char nm[2 * NAME_MAX_LEN];
        mms_tlv_t on;
        if (!t->constructed || mms_ber_enter(r, t, &c) < 0 || mms_ber_next(&c, &on) != 1)
            return fail(E_IO, "malformed typeName");
        if (object_name(&c, &on, nm, sizeof nm) < 0)
            return -E_IO;
        sb_s(b, "{\"typename\":");
        sb_cstr(b, nm);
        sb_s(b, "}");
        return 0;
    }
    if (t->tag == 1 || t->tag == 2) {
        if (!t->constructed || mms_ber_enter(r, t, &c) < 0)
            return fail(E_IO, "malformed array/structure type");
        rc = mms_ber_next(&c, &e);
        if (rc == 1 && mms_tlv_is(&e, CTX, false, 0)) /* packed */
            rc = mms_ber_next(&c, &e);
        if (t->tag == 1) {
            uint32_t n;
            mms_tlv_t et, inner;
            mms_ber_reader_t ec;
            if (rc != 1 || !mms_tlv_is(&e, CTX, false, 1) || mms_ber_get_u32(&e, &n) < 0 ||
                mms_ber_expect(&c, CTX, true, 2, &et) < 0 || mms_ber_enter(&c, &et, &ec) < 0 ||
                mms_ber_next(&ec, &inner) != 1)
                return fail(E_IO, "malformed array type");
            sb_f(b, "{\"array\":%u,\"of\":", n);
            if (type_json(&ec, &inner, b) < 0)
                return -E_IO;
            sb_s(b, "}");
            return 0;
        }
        mms_ber_reader_t lc;
        mms_tlv_t comp;
        int n = 0;
        if (rc != 1 || !mms_tlv_is(&e, CTX, true, 1) || mms_ber_enter(&c, &e, &lc) < 0)
            return fail(E_IO, "malformed structure type");
        sb_s(b, "{\"struct\":{");
        while ((rc = mms_ber_next(&lc, &comp)) == 1) {
            mms_ber_reader_t cc, tc;
            mms_tlv_t f, ty, inner;
            char nm[NAME_MAX_LEN] = "";
            if (!mms_tlv_is(&comp, UNI, true, 16) || mms_ber_enter(&lc, &comp, &cc) < 0 ||
                mms_ber_next(&cc, &f) != 1)
                return fail(E_IO, "malformed structure component");
            if (mms_tlv_is(&f, CTX, false, 0)) {
                if (read_name(&f, nm, sizeof nm) < 0)
                    return -E_IO;
                if (mms_ber_next(&cc, &f) != 1)
                    return fail(E_IO, "structure component without a type");
            }
            ty = f;
            if (!mms_tlv_is(&ty, CTX, true, 1) || mms_ber_enter(&cc, &ty, &tc) < 0 ||
                mms_ber_next(&tc, &inner) != 1)
                return fail(E_IO, "malformed componentType");
            if (n++)
                sb_s(b, ",");
            sb_cstr(b, nm);
            sb_s(b, ":");
            if (type_json(&tc, &inner, b) < 0)
                return -E_IO;
        }
        if (rc < 0)
            return fail(E_IO, "malformed component list");
        sb_s(b, "}}");
        return 0;
    }
    switch (t->tag) {
    case 3:
        sb_s(b, "\"boolean\"");
        return 0;
    case 4:
    case 9:
    case 10:
    case 16: {
        int32_t n;
        if (mms_ber_get_i32(t, &n) < 0)
            return fail(E_IO, "malformed string type size");
        sb_f(b, "\"%s(%d)\"",
             t->tag == 4    ? "bitstring"
             : t->tag == 9  ? "octets"
             : t->tag == 10 ? "vstring"
                            : "mmsstring",
             n);
        return 0;
    }
    case 5:
    case 6: {
        uint32_t n;
        if (mms_ber_get_u32(t, &n) < 0)
            return fail(E_IO, "malformed integer type size");
        sb_f(b, "\"%s%u\"", t->tag == 5 ? "int" : "uint", n);
        return 0;
    }
    case 7: {
        mms_tlv_t fw, ew;
        uint32_t f, x;
        if (!t->constructed || mms_ber_enter(r, t, &c) < 0 ||
            mms_ber_expect(&c, UNI, false, 2, &fw) < 0 || mms_ber_get_u32(&fw, &f) < 0 ||
            mms_ber_expect(&c, UNI, false, 2, &ew) < 0 || mms_ber_get_u32(&ew, &x) < 0)
            return fail(E_IO, "malformed floating-point type");
        if (f == 32 && x == 8)
            sb_s(b, "\"float32\"");
        else if (f == 64 && x == 11)
            sb_s(b, "\"float64\"");
        else
            sb_f(b, "\"float(%u,%u)\"", f, x);
        return 0;
    }
    case 12: {
        bool d;
        if (mms_ber_get_bool(t, &d) < 0)
            return fail(E_IO, "malformed binary-time type");
        sb_s(b, d ? "\"btime6\"" : "\"btime4\"");
        return 0;
    }
    case 17:
        sb_s(b, "\"utctime\"");
        return 0;
    default:
        sb_f(b, "\"tag%u\"", t->tag);
        return 0;
    }
}

/* ---- Transport: TCP + TPKT + COTP, session, presentation --------------------------------------
 */

typedef struct {
    const char *host;
    const char *port;
    const char *password;
    int timeout_ms;
    uint32_t max_pdu;  /* proposed (Initiate localDetailCalling) */
    uint32_t neg_pdu;  /* negotiated */
    uint64_t max_file; /* largest file get-file accepts */
    int fd;
    uint8_t in[MMS_TPKT_MAX + 16];
    size_t in_len;
    size_t drop; /* octets of the last TPKT handed out, dropped at the next read */
    uint8_t *tsdu;
    size_t tsdu_cap;
    mms_cotp_reasm_t ra;
    uint32_t tpdu_size;
    uint32_t invoke;
    bool associated;
    unsigned reports; /* InformationReports received so far */
    bool decode_only; /* --decode-vectors */
} cli_t;

static cli_t C;

static int set_timeout_err(void)
{
    return fail(E_IO, "timed out after %.1f s waiting for the server", C.timeout_ms / 1000.0);
}

static int tcp_connect(void)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    int rc, fd = -1;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    rc = getaddrinfo(C.host, C.port, &hints, &res);
    if (rc != 0)
        return fail(E_IO, "cannot resolve %s:%s: %s", C.host, C.port, gai_strerror(rc));
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int e = 0;
            socklen_t el = sizeof e;
            if (poll(&p, 1, C.timeout_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
                break;
            errno = e ? e : ETIMEDOUT;
        }
        rc = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(E_IO, "cannot connect to %s:%s: %s", C.host, C.port, strerror(rc ? rc : EIO));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    C.fd = fd;
    C.in_len = 0;
    C.drop = 0;
    return 0;
}

static int send_all(const uint8_t *p, size_t n)
{
    int64_t deadline = mono_ms() + C.timeout_ms;
    while (n > 0) {
        ssize_t w = send(C.fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return fail(E_IO, "send to the server failed: %s", strerror(errno));
        int64_t left = deadline - mono_ms();
        struct pollfd pf = {C.fd, POLLOUT, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) == 0)
            return set_timeout_err();
    }
    return 0;
}

/* Next complete TPKT from the stream (its TPDU in *tpdu), waiting until deadline (monotonic ms).
 * The TPDU stays valid until the next call. */
static int recv_tpkt(int64_t deadline, const uint8_t **tpdu, size_t *n)
{
    if (C.drop) {
        memmove(C.in, C.in + C.drop, C.in_len - C.drop);
        C.in_len -= C.drop;
        C.drop = 0;
    }
    for (;;) {
        int r = mms_tpkt_frame(C.in, C.in_len, MMS_TPKT_MAX, tpdu, n);
        if (r > 0) {
            C.drop = (size_t)r;
            return 0;
        }
        if (r < 0)
            return fail(E_IO, "malformed TPKT from the server (%s)", err_str(r));
        int64_t left = deadline - mono_ms();
        struct pollfd pf = {C.fd, POLLIN, 0};
        if (left <= 0)
            return -E_USAGE - 10; /* timeout marker, turned into a message by callers */
        int pr = poll(&pf, 1, (int)left);
        if (pr == 0)
            return -E_USAGE - 10;
        if (pr < 0 && errno != EINTR)
            return fail(E_IO, "poll: %s", strerror(errno));
        ssize_t got = recv(C.fd, C.in + C.in_len, sizeof C.in - C.in_len, 0);
        if (got == 0)
            return fail(E_IO, "connection closed by the server");
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return fail(E_IO, "receive from the server failed: %s", strerror(errno));
        }
        C.in_len += (size_t)got;
    }
}
#define E_TIMEOUT (-E_USAGE - 10)

/* Next TSDU (reassembled from DTs) into C.tsdu. */
static int recv_tsdu(int64_t deadline, const uint8_t **tsdu, size_t *n)
{
    for (;;) {
        const uint8_t *p;
        size_t len;
        mms_cotp_t c;
        int r = recv_tpkt(deadline, &p, &len);
        if (r < 0)
            return r;
        r = mms_cotp_decode(p, len, &c);
        if (r < 0)
            return fail(E_IO, "malformed COTP TPDU from the server: %s",
                        c.why ? c.why : err_str(r));
        if (c.type == MMS_COTP_DR)
            return fail(E_IO, "the server disconnected the transport (COTP DR, reason %u)",
                        c.reason);
        if (c.type == MMS_COTP_ER)
            return fail(E_IO, "the server rejected our TPDU (COTP ER, cause %u)", c.reason);
        if (c.type != MMS_COTP_DT)
            return fail(E_IO, "unexpected COTP TPDU 0x%02x from the server", c.type);
        r = mms_cotp_reasm_add(&C.ra, &c);
        if (r == GS_ELIMIT)
            return fail(E_IO, "the server sent a TSDU above %zu octets (proposed PDU size %u)",
                        C.tsdu_cap, C.max_pdu);
        if (r < 0)
            return fail(E_IO, "COTP reassembly failed (%s)", err_str(r));
        if (r == 1) {
            *tsdu = C.ra.buf;
            *n = C.ra.len;
            return 0;
        }
    }
}

static int send_tsdu(const uint8_t *tsdu, size_t n)
{
    static uint8_t out[65536 + 16];
    size_t off = 0;
    bool last = false;
    while (!last) {
        int len = mms_cotp_segment(out, sizeof out, C.tpdu_size, tsdu, n, &off, &last);
        if (len < 0)
            return fail(E_IO, "COTP segmentation failed (%s)", err_str(len));
        if (send_all(out, (size_t)len) < 0)
            return -E_IO;
    }
    return 0;
}

/* Sends one MMS PDU as presentation fully-encoded-data (context 3) in a session DATA TRANSFER. */
static int send_mms(const uint8_t *pdu, size_t n)
{
    static uint8_t pbuf[REQ_MAX + 256], sbuf[REQ_MAX + 256];
    mms_ber_writer_t w;
    mms_ppdu_t pp = {0};
    mms_spdu_t s = {0};
    if (C.associated && n > C.neg_pdu)
        return fail(E_IO, "request of %zu octets exceeds the negotiated PDU size %u", n, C.neg_pdu);
    pp.type = MMS_PPDU_DATA;
    pp.n_pdv = 1;
    pp.pdv[0] = (mms_pdv_t){MMS_PCTX_MMS, pdu, n};
    mms_bw_init(&w, pbuf, sizeof pbuf);
    mms_pres_encode_data(&w, &pp);
    if (w.err)
        return fail(E_IO, "request too large (%s)", err_str(w.err));
    s.si = MMS_SPDU_DT;
    s.has_user_data = true;
    s.user_data = mms_bw_data(&w);
    s.user_len = mms_bw_len(&w);
    int len = mms_spdu_encode(sbuf, sizeof sbuf, &s);
    if (len < 0)
        return fail(E_IO, "session encoding failed (%s)", err_str(len));
    return send_tsdu(sbuf, (size_t)len);
}

/* ---- InformationReport (IEC 61850-8-1 17.2.3: the RPT list) -------------------------------- */

static const char *reason_names[] = {"reserved",           "data-change", "quality-change",
                                     "data-update",        "integrity",   "general-interrogation",
                                     "application-trigger"};

/* A report's values: the listOfAccessResult of an InformationReport named "RPT". Fields as
 * OptFlds says (8-1 17.2.3.2 / 7-2 17.2.3.3): RptID, OptFlds, [SeqNum], [TimeOfEntry],
 * [DatSet], [BufOvfl], [EntryID], [ConfRev], [SubSeqNum, MoreSegmentsFollow], Inclusion,
 * [data references], values, [reason codes]. */
#define MAX_REPORT_ELEMS 4096
static int report_json(const mms_ber_reader_t *lr, sb_t *b)
{
    mms_ber_reader_t r = *lr;
    mms_tlv_t *el = malloc(sizeof *el * MAX_REPORT_ELEMS);
    size_t n = 0, k = 0, i;
    int rc;
    const uint8_t *opt = NULL, *inc = NULL;
    size_t nopt = 0, ninc = 0;
    char s[NAME_MAX_LEN * 2];
    if (!el)
        return fail(E_IO, "out of memory");
    while ((rc = mms_ber_next(&r, &el[n])) == 1) {
        if (++n == MAX_REPORT_ELEMS) {
            free(el);
            return fail(E_IO, "report with more than %d elements", MAX_REPORT_ELEMS);
        }
    }
    if (rc < 0)
        goto bad;
#define NEED(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            free(el);                                                                              \
            return fail(E_IO, "malformed report: %s", what);                                       \
        }                                                                                          \
    } while (0)
    NEED(n >= 3, "fewer than 3 elements");
    NEED(mms_tlv_is(&el[0], CTX, false, 10) && mms_ber_get_visible(&el[0], s, sizeof s) == 0,
         "RptID");
    sb_s(b, "\"rpt_id\":");
    sb_cstr(b, s);
    NEED(mms_tlv_is(&el[1], CTX, false, 4) && mms_ber_get_bits(&el[1], &opt, &nopt) == 0,
         "OptFlds");
    sb_s(b, ",\"opt_flds\":{\"bits\":");
    sb_hex(b, opt, (nopt + 7) / 8);
    sb_f(b, ",\"n\":%zu}", nopt);
    k = 2;
    if (mms_bits_get(opt, nopt, 1)) {
        uint64_t v;
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 6) && mms_ber_get_uint(&el[k], &v) == 0,
             "SeqNum");
        sb_f(b, ",\"seq_num\":%llu", (unsigned long long)v);
        k++;
    }
    if (mms_bits_get(opt, nopt, 2)) {
        mms_bintime_t t;
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 12) && mms_ber_get_bintime(&el[k], &t) == 0,
             "TimeOfEntry");
        sb_s(b, ",\"time_of_entry\":");
        sb_bintime(b, &t);
        k++;
    }
    if (mms_bits_get(opt, nopt, 4)) {
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 10) &&
                 mms_ber_get_visible(&el[k], s, sizeof s) == 0,
             "DatSet");
        sb_s(b, ",\"dat_set\":");
        sb_cstr(b, s);
        k++;
    }
    if (mms_bits_get(opt, nopt, 6)) {
        bool v;
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 3) && mms_ber_get_bool(&el[k], &v) == 0,
             "BufOvfl");
        sb_f(b, ",\"buf_ovfl\":%s", v ? "true" : "false");
        k++;
    }
    if (mms_bits_get(opt, nopt, 7)) {
        const uint8_t *p;
        size_t len;
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 9) &&
                 mms_ber_get_octets(&el[k], 64, &p, &len) == 0,
             "EntryID");
        sb_s(b, ",\"entry_id\":");
        sb_hex(b, p, len);
        k++;
    }
    if (mms_bits_get(opt, nopt, 8)) {
        uint64_t v;
        NEED(k < n && mms_tlv_is(&el[k], CTX, false, 6) && mms_ber_get_uint(&el[k], &v) == 0,
             "ConfRev");
        sb_f(b, ",\"conf_rev\":%llu", (unsigned long long)v);
        k++;
    }
    if (mms_bits_get(opt, nopt, 9)) {
        uint64_t v;
        bool more;
        NEED(k + 1 < n && mms_tlv_is(&el[k], CTX, false, 6) && mms_ber_get_uint(&el[k], &v) == 0 &&
                 mms_tlv_is(&el[k + 1], CTX, false, 3) && mms_ber_get_bool(&el[k + 1], &more) == 0,
             "SubSeqNum/MoreSegmentsFollow");
        sb_f(b, ",\"sub_seq_num\":%llu,\"more_segments\":%s", (unsigned long long)v,
             more ? "true" : "false");
        k += 2;
    }
    NEED(k < n && mms_tlv_is(&el[k], CTX, false, 4) && mms_ber_get_bits(&el[k], &inc, &ninc) == 0,
         "inclusion bit string");
    k++;
    size_t nin = 0;
    for (i = 0; i < ninc; i++)
        nin += mms_bits_get(inc, ninc, i);
    sb_s(b, ",\"inclusion\":{\"bits\":");
    sb_hex(b, inc, (ninc + 7) / 8);
    sb_f(b, ",\"n\":%zu}", ninc);
    bool has_ref = mms_bits_get(opt, nopt, 5), has_reason = mms_bits_get(opt, nopt, 3);
    size_t need = nin * (1 + (has_ref ? 1 : 0) + (has_reason ? 1 : 0));
    NEED(n - k == need, "element count does not match the inclusion bit string and OptFlds");
    size_t kref = k, kval = k + (has_ref ? nin : 0), kreason = kval + nin;
    sb_s(b, ",\"entries\":[");
    size_t j = 0;
    for (i = 0; i < ninc; i++) {
        if (!mms_bits_get(inc, ninc, i))
            continue;
        if (j)
            sb_s(b, ",");
        sb_f(b, "{\"index\":%zu", i);
        if (has_ref) {
            NEED(mms_tlv_is(&el[kref + j], CTX, false, 10) &&
                     mms_ber_get_visible(&el[kref + j], s, sizeof s) == 0,
                 "data reference");
            sb_s(b, ",\"ref\":");
            sb_cstr(b, s);
        }
        sb_s(b, ",\"value\":");
        if (data_json(lr, &el[kval + j], b) < 0) {
            free(el);
            return -E_IO;
        }
        if (has_reason) {
            const uint8_t *rb;
            size_t rn;
            int m = 0;
            NEED(mms_tlv_is(&el[kreason + j], CTX, false, 4) &&
                     mms_ber_get_bits(&el[kreason + j], &rb, &rn) == 0,
                 "reason code");
            sb_s(b, ",\"reason\":[");
            for (size_t q = 0; q < rn; q++) {
                if (!mms_bits_get(rb, rn, q))
                    continue;
                if (m++)
                    sb_s(b, ",");
                if (q < sizeof reason_names / sizeof reason_names[0])
                    sb_cstr(b, reason_names[q]);
                else
                    sb_f(b, "\"bit%zu\"", q);
            }
            sb_s(b, "]");
        }
        sb_s(b, "}");
        j++;
    }
    sb_s(b, "]");
    free(el);
    return 0;
#undef NEED
bad:
    free(el);
    return fail(E_IO, "malformed report element list (%s)", r.why ? r.why : err_str(rc));
}

/* An InformationReport (ISO 9506-2 15.4): variableAccessSpecification + listOfAccessResult [0].
 * IEC 61850 reports (variableListName "RPT") are decoded field by field; any other report is
 * printed as its list name and values. Writes a whole line into b. */
static int info_report_json(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r, vr, lr;
    mms_tlv_t vas, on, list, e;
    char name[2 * NAME_MAX_LEN] = "";
    int rc, n = 0;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &vas) != 1 || vas.cls != CTX || !vas.constructed)
        return fail(E_IO, "malformed InformationReport: variableAccessSpecification");
    if (vas.tag == 1) { /* variableListName */
        if (mms_ber_enter(&r, &vas, &vr) < 0 || mms_ber_next(&vr, &on) != 1 ||
            object_name(&vr, &on, name, sizeof name) < 0)
            return fail(E_IO, "malformed InformationReport: variableListName");
    } else if (vas.tag != 0) {
        return fail(E_IO, "malformed InformationReport: variableAccessSpecification [%u]", vas.tag);
    }
    if (mms_ber_expect(&r, CTX, true, 0, &list) < 0 || mms_ber_enter(&r, &list, &lr) < 0)
        return fail(E_IO, "malformed InformationReport: listOfAccessResult");
    if (strcmp(name, "RPT") == 0) {
        sb_s(b, "{\"cmd\":\"report\",");
        if (report_json(&lr, b) < 0)
            return -E_IO;
        sb_s(b, "}");
        return 0;
    }
    sb_s(b, "{\"cmd\":\"info-report\",\"name\":");
    sb_cstr(b, name);
    sb_s(b, ",\"results\":[");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        sb_s(b, n++ ? ",{" : "{");
        if (access_result_json(&lr, &e, b, NULL) < 0)
            return -E_IO;
        sb_s(b, "}");
    }
    if (rc < 0)
        return fail(E_IO, "malformed InformationReport values");
    sb_s(b, "]}");
    return 0;
}

static int handle_unconfirmed(const mms_pdu_t *p)
{
    sb_t b = {0};
    if (p->service != MMS_USVC_INFORMATION_REPORT)
        return fail(E_IO, "unconfirmed service %d from the server is not one we know", p->service);
    if (info_report_json(p->body, p->body_len, &b) < 0) {
        free(b.p);
        return -E_IO;
    }
    C.reports++;
    return emit(&b);
}

/* ---- Association ------------------------------------------------------------------------------
 */

static const uint8_t TSAP[2] = {0x00, 0x01}, SSEL[2] = {0x00, 0x01};
static const uint8_t PSEL[4] = {0x00, 0x00, 0x00, 0x01};
static const uint32_t CALLED_AP[5] = {1, 1, 1, 999, 1}, CALLING_AP[4] = {1, 1, 1, 999};
/* ISO 9506-2 ParameterSupportOptions (str1 str2 vnam valt vlis) and ServiceSupportOptions exactly
 * as the reference client proposes them: status, getNameList, identify, read, write,
 * getVariableAccessAttributes, define/get/deleteNamedVariableList, the file services,
 * informationReport, conclude and a few more (the byte-for-byte comparison with the captures
 * covers these octets). */
static const uint8_t PARAM_CBB[2] = {0xF1, 0x00};
static const uint8_t SERVICES[11] = {0xEE, 0x1C, 0x00, 0x00, 0x04, 0x08,
                                     0x00, 0x00, 0x79, 0xEF, 0x18};

static void oid_set(mms_oid_t *o, const uint32_t *arcs, unsigned n)
{
    memcpy(o->arc, arcs, n * sizeof *arcs);
    o->n = n;
}

/* Decodes the server's answer to our CONNECT; returns 0 when associated. */
static int assoc_answer(const mms_spdu_t *s)
{
    mms_ppdu_t pp;
    mms_apdu_t a;
    mms_pdu_t pdu;
    int r;
    if (s->si == MMS_SPDU_RF) {
        if (s->has_user_data && mms_pres_decode_cpa(s->user_data, s->user_len, &pp) == 0 &&
            pp.n_pdv && mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &a) == 0 &&
            a.kind == MMS_APDU_AARE)
            return fail(E_ASSOC,
                        "association refused by the server (session REFUSE, AARE result %d, "
                        "diagnostic %s (%d))",
                        a.result, acse_diag_name(a.diag), a.diag);
        return fail(E_ASSOC, "association refused by the server (session REFUSE%s%u)",
                    s->has_reason ? ", reason " : "", s->has_reason ? s->reason : 0);
    }
    if (s->si == MMS_SPDU_AB)
        return fail(E_ASSOC, "association refused: the server aborted the connection");
    if (s->si != MMS_SPDU_AC)
        return fail(E_IO, "unexpected session SPDU %u in answer to CONNECT", s->si);
    if (!s->has_user_data)
        return fail(E_IO, "session ACCEPT without user data");
    r = mms_pres_decode_cpa(s->user_data, s->user_len, &pp);
    if (r < 0)
        return fail(E_ASSOC, "presentation connect refused or malformed CPA (%s)",
                    pp.why ? pp.why : err_str(r));
    for (unsigned i = 0; i < pp.n_ctx; i++)
        if (pp.ctx[i].result != 0)
            return fail(E_ASSOC, "the server rejected presentation context %u (result %d)", i,
                        pp.ctx[i].result);
    if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_ACSE)
        return fail(E_IO, "CPA without the ACSE PDV");
    r = mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &a);
    if (r < 0 || a.kind != MMS_APDU_AARE)
        return fail(E_IO, "malformed AARE (%s)", a.why ? a.why : err_str(r));
    if (a.result != MMS_ACSE_ACCEPTED)
        return fail(
            E_ASSOC, "association rejected by the server (AARE result %s, diagnostic %s (%d))%s",
            a.result == 1 ? "rejected-permanent" : "rejected-transient", acse_diag_name(a.diag),
            a.diag, a.diag == 13 || a.diag == 14 ? ": wrong or missing password" : "");
    if (!a.user_info)
        return fail(E_IO, "AARE accepted without an MMS initiate response");
    r = mms_pdu_decode(a.user_info, a.user_len, &pdu, NULL);
    if (r < 0)
        return fail(E_IO, "malformed MMS initiate response (%s)", pdu.why ? pdu.why : err_str(r));
    if (pdu.type == MMS_PDU_INITIATE_ERR)
        return fail(E_ASSOC, "MMS initiate refused (error class %s, code %d)",
                    error_class_name(pdu.err_class), pdu.err_code);
    if (pdu.type != MMS_PDU_INITIATE_RESP)
        return fail(E_IO, "AARE carries MMS PDU type %d, not an initiate response", pdu.type);
    C.neg_pdu = pdu.init.has_local_detail ? (uint32_t)pdu.init.local_detail : C.max_pdu;
    if (!pdu.init.has_local_detail || pdu.init.local_detail <= 0 ||
        (uint32_t)pdu.init.local_detail > C.max_pdu)
        return fail(E_IO, "the server negotiated an MMS PDU size of %d, not within 1..%u",
                    pdu.init.local_detail, C.max_pdu);
    sb_t b = {0};
    sb_f(&b,
         "{\"cmd\":\"associate\",\"max_pdu\":%u,\"tpdu_size\":%u,\"nesting\":%d,"
         "\"max_serv_calling\":%d,\"max_serv_called\":%d,\"version\":%d,\"services\":",
         C.neg_pdu, C.tpdu_size, pdu.init.has_nesting ? pdu.init.nesting : -1,
         pdu.init.max_serv_calling, pdu.init.max_serv_called, pdu.init.version);
    sb_hex(&b, pdu.init.services, (pdu.init.services_bits + 7) / 8);
    sb_s(&b, ",\"param_cbb\":");
    sb_hex(&b, pdu.init.param_cbb, (pdu.init.param_cbb_bits + 7) / 8);
    sb_s(&b, "}");
    return emit(&b);
}

static int associate(void)
{
    uint8_t out[2048];
    static uint8_t mbuf[512], abuf[1024], pbuf[2048];
    mms_cotp_t c = {0};
    mms_ber_writer_t w;
    mms_initiate_t in = {0};
    mms_apdu_t a = {0};
    mms_ppdu_t pp = {0};
    mms_spdu_t s = {0};
    const uint8_t *tp;
    size_t tn;
    int n, r;

    if (tcp_connect() < 0)
        return -E_IO;
    /* COTP CR (ISO 8073 13.3): class 0, TPDU size 8192 (code 13), TSAPs 0001 as 8-1 peers use. */
    c.type = MMS_COTP_CR;
    c.dst_ref = 0;
    c.src_ref = 1;
    c.class_opt = 0;
    c.tpdu_size_code = 0x0D;
    memcpy(c.called_tsap, TSAP, 2);
    c.called_tsap_len = 2;
    c.has_called_tsap = true;
    memcpy(c.calling_tsap, TSAP, 2);
    c.calling_tsap_len = 2;
    c.has_calling_tsap = true;
    n = mms_cotp_encode_cr_cc(out, sizeof out, &c);
    if (n < 0 || send_all(out, (size_t)n) < 0)
        return n < 0 ? fail(E_IO, "CR encoding failed") : -E_IO;
    r = recv_tpkt(mono_ms() + C.timeout_ms, &tp, &tn);
    if (r == E_TIMEOUT)
        return set_timeout_err();
    if (r < 0)
        return r;
    r = mms_cotp_decode(tp, tn, &c);
    if (r < 0)
        return fail(E_IO, "malformed COTP answer to CR (%s)", c.why ? c.why : err_str(r));
    if (c.type == MMS_COTP_DR)
        return fail(E_ASSOC, "transport connection refused by the server (COTP DR, reason %u)",
                    c.reason);
    if (c.type != MMS_COTP_CC)
        return fail(E_IO, "expected COTP CC, got TPDU 0x%02x", c.type);
    C.tpdu_size = c.tpdu_size ? c.tpdu_size : 128; /* 13.3.4 b: 128 when absent */
    if (C.tpdu_size > 8192)
        return fail(E_IO, "the server chose TPDU size %u above our proposed 8192", C.tpdu_size);

    /* MMS Initiate-RequestPDU (ISO 9506-2 8.2.1). */
    in.has_local_detail = true;
    in.local_detail = (int32_t)C.max_pdu;
    in.max_serv_calling = 5;
    in.max_serv_called = 5;
    in.has_nesting = true;
    in.nesting = 10;
    in.version = 1;
    memcpy(in.param_cbb, PARAM_CBB, sizeof PARAM_CBB);
    in.param_cbb_bits = 11;
    memcpy(in.services, SERVICES, sizeof SERVICES);
    in.services_bits = 85;
    mms_bw_init(&w, mbuf, sizeof mbuf);
    mms_pdu_encode_initiate(&w, false, &in);
    if (w.err)
        return fail(E_IO, "initiate encoding failed");
    /* ACSE AARQ (ISO 8650-1) with the MMS application context, AP titles/AE qualifiers like
     * the reference client, and the password (mechanism 2.2.3.1) when given. */
    a.kind = MMS_APDU_AARQ;
    a.has_app_ctx = true;
    oid_set(&a.app_ctx, MMS_OID_MMS_CTX, 5);
    a.has_called_ap_title = true;
    oid_set(&a.called_ap_title, CALLED_AP, 5);
    a.has_called_ae_qual = true;
    a.called_ae_qual = 12;
    a.has_calling_ap_title = true;
    oid_set(&a.calling_ap_title, CALLING_AP, 4);
    a.has_calling_ae_qual = true;
    a.calling_ae_qual = 12;
    a.reason = -1;
    a.user_ctx_id = MMS_PCTX_MMS;
    a.user_info = mms_bw_data(&w);
    a.user_len = mms_bw_len(&w);
    if (C.password) {
        a.auth_required = true;
        a.has_mechanism = true;
        oid_set(&a.mechanism, MMS_OID_PASSWORD, 4);
        a.has_auth = true;
        a.auth_value = (const uint8_t *)C.password;
        a.auth_len = strlen(C.password);
    }
    mms_ber_writer_t aw;
    mms_bw_init(&aw, abuf, sizeof abuf);
    mms_acse_encode(&aw, &a);
    if (aw.err)
        return fail(E_IO, "AARQ encoding failed (password too long?)");
    /* Presentation CP-type (ISO 8823): normal mode, selectors, the ACSE and MMS contexts. */
    pp.type = MMS_PPDU_CP;
    pp.mode = 1;
    memcpy(pp.calling_sel, PSEL, 4);
    pp.calling_sel_len = 4;
    pp.has_calling_sel = true;
    memcpy(pp.called_sel, PSEL, 4);
    pp.called_sel_len = 4;
    pp.has_called_sel = true;
    pp.n_ctx = 2;
    pp.ctx[0].id = MMS_PCTX_ACSE;
    oid_set(&pp.ctx[0].abstract, MMS_OID_ACSE, 5);
    pp.ctx[0].ber = true;
    pp.ctx[1].id = MMS_PCTX_MMS;
    oid_set(&pp.ctx[1].abstract, MMS_OID_MMS, 5);
    pp.ctx[1].ber = true;
    pp.provider_reason = -1;
    pp.n_pdv = 1;
    pp.pdv[0] = (mms_pdv_t){MMS_PCTX_ACSE, mms_bw_data(&aw), mms_bw_len(&aw)};
    mms_ber_writer_t pw;
    mms_bw_init(&pw, pbuf, sizeof pbuf);
    mms_pres_encode_cp(&pw, &pp);
    if (pw.err)
        return fail(E_IO, "CP encoding failed");
    /* Session CONNECT (ISO 8327-1 8.3.1): version 2, duplex, selectors 0001. */
    s.si = MMS_SPDU_CN;
    s.has_protocol_options = true;
    s.protocol_options = 0;
    s.has_version = true;
    s.version = 2;
    s.has_requirements = true;
    s.requirements = 2;
    memcpy(s.calling_ssel, SSEL, 2);
    s.calling_ssel_len = 2;
    s.has_calling_ssel = true;
    memcpy(s.called_ssel, SSEL, 2);
    s.called_ssel_len = 2;
    s.has_called_ssel = true;
    s.has_user_data = true;
    s.user_data = mms_bw_data(&pw);
    s.user_len = mms_bw_len(&pw);
    n = mms_spdu_encode(out, sizeof out, &s);
    if (n < 0)
        return fail(E_IO, "CONNECT encoding failed");
    if (send_tsdu(out, (size_t)n) < 0)
        return -E_IO;
    const uint8_t *ts;
    size_t tl;
    r = recv_tsdu(mono_ms() + C.timeout_ms, &ts, &tl);
    if (r == E_TIMEOUT)
        return set_timeout_err();
    if (r < 0) {
        if (strstr(g_err, "closed by the server"))
            return fail(E_ASSOC,
                        "association refused: the server closed the connection after our "
                        "association request%s",
                        C.password ? " (wrong password?)" : "");
        return r;
    }
    r = mms_spdu_decode(ts, tl, &s);
    if (r < 0)
        return fail(E_IO, "malformed session SPDU in answer to CONNECT (%s)",
                    s.why ? s.why : err_str(r));
    r = assoc_answer(&s);
    if (r < 0)
        return r;
    C.associated = true;
    return 0;
}

/* Next MMS PDU of a DATA TRANSFER; other SPDUs are errors here except as *spdu_out says. */
static int recv_mms(int64_t deadline, mms_pdu_t *pdu, mms_spdu_t *s)
{
    const uint8_t *ts;
    size_t tl;
    mms_ppdu_t pp;
    int r = recv_tsdu(deadline, &ts, &tl);
    if (r < 0)
        return r;
    r = mms_spdu_decode(ts, tl, s);
    if (r < 0)
        return fail(E_IO, "malformed session SPDU (%s)", s->why ? s->why : err_str(r));
    if (s->si == MMS_SPDU_AB) {
        mms_apdu_t a;
        if (s->has_user_data && mms_pres_decode_aru(s->user_data, s->user_len, &pp) == 0 &&
            pp.n_pdv && mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &a) == 0)
            return fail(E_IO, "the server aborted the association (ACSE ABRT, source %d)",
                        a.reason);
        return fail(E_IO, "the server aborted the association (session ABORT)");
    }
    if (s->si != MMS_SPDU_DT)
        return 1; /* FINISH/DISCONNECT...: the caller decides */
    r = mms_pres_decode_data(s->user_data, s->user_len, &pp);
    if (r < 0)
        return fail(E_IO, "malformed presentation data (%s)", pp.why ? pp.why : err_str(r));
    if (pp.n_pdv != 1 || pp.pdv[0].ctx_id != MMS_PCTX_MMS)
        return fail(E_IO, "presentation data not in the MMS context");
    if (pp.pdv[0].len > C.neg_pdu)
        return fail(E_IO, "the server sent an MMS PDU of %zu octets, above the negotiated %u",
                    pp.pdv[0].len, C.neg_pdu);
    r = mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, pdu, NULL);
    if (r < 0)
        return fail(E_IO, "malformed MMS PDU from the server (%s)",
                    pdu->why ? pdu->why : err_str(r));
    return 0;
}

/* Service error of the last call, for the caller to print. */
typedef struct {
    int kind; /* 0 none, 1 confirmed-error, 2 reject */
    int32_t cls, code;
} svc_err_t;

static void sb_svc_err(sb_t *b, const svc_err_t *e)
{
    if (e->kind == 1) {
        sb_f(b, "\"error\":{\"kind\":\"confirmed-error\",\"class\":%d,\"class_name\":", e->cls);
        sb_cstr(b, error_class_name(e->cls));
        sb_f(b, ",\"code\":%d,\"code_name\":", e->code);
        sb_cstr(b, error_code_name(e->cls, e->code));
        sb_s(b, "}");
    } else {
        sb_f(b, "\"error\":{\"kind\":\"reject\",\"class\":%d,\"class_name\":", e->cls);
        sb_cstr(b, reject_class_name(e->cls));
        sb_f(b, ",\"code\":%d}", e->code);
    }
}

/* Confirmed request (ISO 9506-2 7.4): sends service `svc` with contents body[0..len) and waits
 * for its response, printing InformationReports that arrive meanwhile. Returns 0 with *resp
 * (body borrowed until the next receive), -E_SVC with *se filled, or -E_IO. */
static int call(int svc, bool constructed, const uint8_t *body, size_t len, mms_pdu_t *resp,
                svc_err_t *se)
{
    static uint8_t buf[REQ_MAX + 64];
    mms_ber_writer_t w;
    mms_spdu_t s;
    uint32_t id = ++C.invoke;
    *se = (svc_err_t){0};
    if (!C.associated)
        return fail(E_IO, "not associated");
    mms_bw_init(&w, buf, sizeof buf);
    mms_pdu_encode_confirmed(&w, false, id, svc, constructed, body, len);
    if (w.err)
        return fail(E_IO, "request too large");
    if (send_mms(mms_bw_data(&w), mms_bw_len(&w)) < 0)
        return -E_IO;
    int64_t deadline = mono_ms() + C.timeout_ms;
    for (;;) {
        int r = recv_mms(deadline, resp, &s);
        if (r == E_TIMEOUT)
            return set_timeout_err();
        if (r < 0)
            return r;
        if (r == 1)
            return fail(E_IO, "unexpected session SPDU %u while waiting for a response", s.si);
        if (resp->type == MMS_PDU_UNCONFIRMED) {
            if (handle_unconfirmed(resp) < 0)
                return -E_IO;
            continue;
        }
        if (resp->type == MMS_PDU_REJECT) {
            se->kind = 2;
            se->cls = resp->rej_class;
            se->code = resp->rej_code;
            return fail(E_SVC, "the server rejected the request (%s, code %d)",
                        reject_class_name(resp->rej_class), resp->rej_code);
        }
        if ((resp->type == MMS_PDU_CONFIRMED_RESP || resp->type == MMS_PDU_CONFIRMED_ERR) &&
            resp->invoke_id != id)
            return fail(E_IO, "response with invokeID %u, expected %u", resp->invoke_id, id);
        if (resp->type == MMS_PDU_CONFIRMED_ERR) {
            se->kind = 1;
            se->cls = resp->err_class;
            se->code = resp->err_code;
            return fail(E_SVC, "the server answered with a confirmed-Error (class %s, code %d %s)",
                        error_class_name(resp->err_class), resp->err_code,
                        error_code_name(resp->err_class, resp->err_code));
        }
        if (resp->type != MMS_PDU_CONFIRMED_RESP)
            return fail(E_IO, "unexpected MMS PDU type %d while waiting for a response",
                        resp->type);
        if (resp->service != svc)
            return fail(E_IO, "response of service %d to a request of service %d", resp->service,
                        svc);
        return 0;
    }
}

/* Orderly release: MMS conclude (ISO 9506-2 8.4) then ACSE release in a session FINISH. */
static int conclude(void)
{
    uint8_t cbuf[8], out[256];
    static uint8_t pbuf[256], abuf[64];
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_spdu_t s = {0};
    int r;
    mms_bw_init(&w, cbuf, sizeof cbuf);
    mms_pdu_encode_conclude(&w, false);
    if (send_mms(mms_bw_data(&w), mms_bw_len(&w)) < 0)
        return -E_IO;
    int64_t deadline = mono_ms() + C.timeout_ms;
    for (;;) {
        r = recv_mms(deadline, &p, &s);
        if (r == E_TIMEOUT)
            return set_timeout_err();
        if (r < 0)
            return r;
        if (r == 1)
            return fail(E_IO, "unexpected session SPDU %u in answer to conclude", s.si);
        if (p.type == MMS_PDU_UNCONFIRMED) {
            if (handle_unconfirmed(&p) < 0)
                return -E_IO;
            continue;
        }
        if (p.type == MMS_PDU_CONCLUDE_ERR)
            return fail(E_SVC, "the server refused to conclude (class %s, code %d)",
                        error_class_name(p.err_class), p.err_code);
        if (p.type != MMS_PDU_CONCLUDE_RESP)
            return fail(E_IO, "unexpected MMS PDU type %d in answer to conclude", p.type);
        break;
    }
    mms_apdu_t a = {0};
    a.kind = MMS_APDU_RLRQ;
    a.reason = 0;
    a.user_ctx_id = -1;
    mms_ber_writer_t aw, pw;
    mms_bw_init(&aw, abuf, sizeof abuf);
    mms_acse_encode(&aw, &a);
    mms_ppdu_t pp = {0};
    pp.type = MMS_PPDU_DATA;
    pp.n_pdv = 1;
    pp.pdv[0] = (mms_pdv_t){MMS_PCTX_ACSE, mms_bw_data(&aw), mms_bw_len(&aw)};
    mms_bw_init(&pw, pbuf, sizeof pbuf);
    mms_pres_encode_data(&pw, &pp);
    s = (mms_spdu_t){0};
    s.si = MMS_SPDU_FN;
    s.has_user_data = true;
    s.user_data = mms_bw_data(&pw);
    s.user_len = mms_bw_len(&pw);
    int n = mms_spdu_encode(out, sizeof out, &s);
    if (aw.err || pw.err || n < 0)
        return fail(E_IO, "FINISH encoding failed");
    if (send_tsdu(out, (size_t)n) < 0)
        return -E_IO;
    for (;;) {
        r = recv_mms(deadline, &p, &s);
        if (r == E_TIMEOUT)
            return set_timeout_err();
        if (r < 0)
            return r;
        if (r == 0 && p.type == MMS_PDU_UNCONFIRMED) {
            if (handle_unconfirmed(&p) < 0)
                return -E_IO;
            continue;
        }
        if (r == 0)
            return fail(E_IO, "unexpected MMS PDU after the release request");
        break;
    }
    if (s.si != MMS_SPDU_DN)
        return fail(E_IO, "expected session DISCONNECT, got SPDU %u", s.si);
    mms_ppdu_t dp;
    mms_apdu_t ra;
    if (!s.has_user_data || mms_pres_decode_data(s.user_data, s.user_len, &dp) < 0 ||
        dp.n_pdv != 1 || mms_acse_decode(dp.pdv[0].data, dp.pdv[0].len, &ra) < 0 ||
        ra.kind != MMS_APDU_RLRE)
        return fail(E_IO, "DISCONNECT without a valid ACSE release response");
    C.associated = false;
    close(C.fd);
    C.fd = -1;
    sb_t b = {0};
    sb_f(&b, "{\"cmd\":\"conclude\",\"ok\":true,\"rlre_reason\":%d}", ra.reason);
    return emit(&b);
}

/* ABORT: session ABORT (transport disconnect) carrying ARU with ACSE ABRT source
 * acse-service-user, then close. */
static int do_abort(void)
{
    static uint8_t pbuf[256], abuf[64];
    uint8_t out[256];
    mms_apdu_t a = {0};
    mms_ber_writer_t aw, pw;
    mms_ppdu_t pp = {0};
    mms_spdu_t s = {0};
    a.kind = MMS_APDU_ABRT;
    a.reason = 0;
    a.diag = -1;
    a.user_ctx_id = -1;
    mms_bw_init(&aw, abuf, sizeof abuf);
    mms_acse_encode(&aw, &a);
    pp.type = MMS_PPDU_ARU;
    pp.n_pdv = 1;
    pp.pdv[0] = (mms_pdv_t){MMS_PCTX_ACSE, mms_bw_data(&aw), mms_bw_len(&aw)};
    mms_bw_init(&pw, pbuf, sizeof pbuf);
    mms_pres_encode_aru(&pw, &pp);
    s.si = MMS_SPDU_AB;
    s.has_disconnect = true;
    s.disconnect = 0x0B; /* ISO 8327-1 8.3.9 PI 17: transport connection released, user abort,
                            no reason (the reference client's value) */
    s.has_user_data = true;
    s.user_data = mms_bw_data(&pw);
    s.user_len = mms_bw_len(&pw);
    int n = mms_spdu_encode(out, sizeof out, &s);
    if (aw.err || pw.err || n < 0)
        return fail(E_IO, "ABORT encoding failed");
    int r = send_tsdu(out, (size_t)n);
    C.associated = false;
    close(C.fd);
    C.fd = -1;
    if (r < 0)
        return r;
    sb_t b = {0};
    sb_s(&b, "{\"cmd\":\"abort\",\"ok\":true}");
    return emit(&b);
}

/* ---- Request encoders (ISO 9506-2 clauses 10-14, 15; reverse writer: last element first) ---- */

/* ObjectName: domain-specific [1] {domainId, itemId}, or vmd-specific [0] when dom is "". */
static void enc_object_name(mms_ber_writer_t *w, const char *dom, const char *item)
{
    if (!dom || !*dom) {
        mms_bw_octets(w, CTX, 0, item, strlen(item));
        return;
    }
    size_t m = mms_bw_mark(w);
    mms_bw_octets(w, UNI, 26, item, strlen(item));
    mms_bw_octets(w, UNI, 26, dom, strlen(dom));
    mms_bw_wrap(w, CTX | CONS, 1, m);
}

/* listOfVariable [0] SEQUENCE OF SEQUENCE { variableSpecification name [0] ObjectName }. */
static void enc_var_list(mms_ber_writer_t *w, const char *dom, char **items, int n)
{
    size_t m = mms_bw_mark(w);
    for (int i = n; i-- > 0;) {
        size_t e = mms_bw_mark(w);
        enc_object_name(w, dom, items[i]);
        mms_bw_wrap(w, CTX | CONS, 0, e);
        mms_bw_wrap(w, UNI | CONS, 16, e);
    }
    mms_bw_wrap(w, CTX | CONS, 0, m);
}

/* FileName ::= SEQUENCE OF GraphicString, one component. */
static void enc_file_name(mms_ber_writer_t *w, uint32_t tag, const char *name)
{
    size_t m = mms_bw_mark(w);
    mms_bw_octets(w, UNI, 25, name, strlen(name));
    mms_bw_wrap(w, CTX | CONS, tag, m);
}

/* Contents of a primitive INTEGER (for FileRead/FileClose whose request is a bare Integer32). */
static size_t int_contents(int64_t v, uint8_t out[9])
{
    uint8_t tmp[16];
    mms_ber_writer_t w;
    mms_bw_init(&w, tmp, sizeof tmp);
    mms_bw_int(&w, UNI, 2, v);
    size_t n = mms_bw_len(&w) - 2;
    memcpy(out, mms_bw_data(&w) + 2, n);
    return n;
}

/* ---- JSON values for Write ------------------------------------------------------------------ */

/* A small JSON reader into a node tree (bounded: 4096 nodes, depth 32), then encoded as MMS
 * Data: true/false -> boolean; a number with a fraction or exponent -> floating-point (single);
 * other numbers -> integer; "text" -> visible-string; [..] -> structure; and the typed forms
 * {"bits":"hex","n":N} {"octets":"hex"} {"int":N} {"uint":N} {"float":x} {"double":x}
 * {"vstring":"s"} {"mmsstring":"s"} {"array":[..]} (the forms read prints). */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct {
    int type;
    bool b;
    bool isint;
    double num;
    const char *s; /* string contents (unescaped copy in pool) */
    size_t slen;
    int first, next; /* first child, next sibling (-1 none) */
    const char *key;
    size_t klen;
} jnode_t;

typedef struct {
    const char *p, *e;
    jnode_t *nodes;
    int n, cap;
    char *pool;
    size_t pn, pcap;
    const char *err;
} jparse_t;

static void jws(jparse_t *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int jnew(jparse_t *j, int type)
{
    if (j->n >= j->cap) {
        j->err = "value too large";
        return -1;
    }
    j->nodes[j->n] = (jnode_t){.type = type, .first = -1, .next = -1};
    return j->n++;
}

static int jstring(jparse_t *j, const char **s, size_t *n)
{
    if (j->p >= j->e || *j->p != '"') {
        j->err = "expected a string";
        return -1;
    }
    j->p++;
    char *out = j->pool + j->pn;
    size_t k = 0;
    while (j->p < j->e && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->e)
                break;
            c = *j->p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    if (j->p >= j->e) {
                        j->err = "bad \\u escape";
                        return -1;
                    }
                    char h = *j->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                   : 0);
                }
                if (v > 0x7F) {
                    j->err = "only ASCII \\u escapes are supported";
                    return -1;
                }
                c = (char)v;
                break;
            }
            default:
                break; /* \" \\ \/ */
            }
        }
        if (j->pn + k + 1 >= j->pcap) {
            j->err = "string too long";
            return -1;
        }
        out[k++] = c;
    }
    if (j->p >= j->e) {
        j->err = "unterminated string";
        return -1;
    }
    j->p++;
    out[k] = 0;
    j->pn += k + 1;
    *s = out;
    *n = k;
    return 0;
}

static int jvalue(jparse_t *j, int depth)
{
    int id;
    jws(j);
    if (depth > 32) {
        j->err = "nested too deep";
        return -1;
    }
    if (j->p >= j->e) {
        j->err = "unexpected end";
        return -1;
    }
    char c = *j->p;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        int last = -1;
        id = jnew(j, obj ? J_OBJ : J_ARR);
        if (id < 0)
            return -1;
        j->p++;
        jws(j);
        if (j->p < j->e && *j->p == (obj ? '}' : ']')) {
            j->p++;
            return id;
        }
        for (;;) {
            const char *k = NULL;
            size_t kl = 0;
            jws(j);
            if (obj) {
                if (jstring(j, &k, &kl) < 0)
                    return -1;
                jws(j);
                if (j->p >= j->e || *j->p != ':') {
                    j->err = "expected ':'";
                    return -1;
                }
                j->p++;
            }
            int ch = jvalue(j, depth + 1);
            if (ch < 0)
                return -1;
            j->nodes[ch].key = k;
            j->nodes[ch].klen = kl;
            if (last < 0)
                j->nodes[id].first = ch;
            else
                j->nodes[last].next = ch;
            last = ch;
            jws(j);
            if (j->p < j->e && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->e && *j->p == (obj ? '}' : ']')) {
                j->p++;
                return id;
            }
            j->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
            return -1;
        }
    }
    if (c == '"') {
        id = jnew(j, J_STR);
        if (id < 0 || jstring(j, &j->nodes[id].s, &j->nodes[id].slen) < 0)
            return -1;
        return id;
    }
    if (j->e - j->p >= 4 && !strncmp(j->p, "true", 4)) {
        id = jnew(j, J_BOOL);
        if (id >= 0)
            j->nodes[id].b = true;
        j->p += 4;
        return id;
    }
    if (j->e - j->p >= 5 && !strncmp(j->p, "false", 5)) {
        id = jnew(j, J_BOOL);
        j->p += 5;
        return id;
    }
    if (j->e - j->p >= 4 && !strncmp(j->p, "null", 4)) {
        id = jnew(j, J_NULL);
        j->p += 4;
        return id;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t k = 0;
        bool isint = true;
        while (j->p < j->e && k < sizeof tmp - 1 && strchr("+-0123456789.eE", *j->p)) {
            if (strchr(".eE", *j->p))
                isint = false;
            tmp[k++] = *j->p++;
        }
        tmp[k] = 0;
        char *end;
        double v = strtod(tmp, &end);
        if (*end) {
            j->err = "bad number";
            return -1;
        }
        id = jnew(j, J_NUM);
        if (id < 0)
            return -1;
        j->nodes[id].num = v;
        j->nodes[id].isint = isint;
        j->nodes[id].s = NULL;
        /* keep the integer text exactly (int64 beyond 2^53) */
        if (isint) {
            if (j->pn + k + 1 >= j->pcap) {
                j->err = "number too long";
                return -1;
            }
            memcpy(j->pool + j->pn, tmp, k + 1);
            j->nodes[id].s = j->pool + j->pn;
            j->pn += k + 1;
        }
        return id;
    }
    j->err = "unexpected character";
    return -1;
}

static int hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char h = s[2 * i + (size_t)k];
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v * 16 + (unsigned)d;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static const jnode_t *jget(const jparse_t *j, const jnode_t *obj, const char *key)
{
    for (int c = obj->first; c >= 0; c = j->nodes[c].next)
        if (j->nodes[c].klen == strlen(key) && !memcmp(j->nodes[c].key, key, j->nodes[c].klen))
            return &j->nodes[c];
    return NULL;
}

static int jenc(const jparse_t *j, const jnode_t *v, mms_ber_writer_t *w);

static int jenc_children(const jparse_t *j, const jnode_t *v, mms_ber_writer_t *w, uint32_t tag)
{
    int ids[4096], n = 0;
    for (int c = v->first; c >= 0 && n < 4096; c = j->nodes[c].next)
        ids[n++] = c;
    size_t m = mms_bw_mark(w);
    for (int i = n; i-- > 0;)
        if (jenc(j, &j->nodes[ids[i]], w) < 0)
            return -1;
    mms_bw_wrap(w, CTX | CONS, tag, m);
    return 0;
}

static int jint(const jnode_t *v, int64_t *out)
{
    if (v->type != J_NUM || !v->isint || !v->s)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v->s, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

static int jenc(const jparse_t *j, const jnode_t *v, mms_ber_writer_t *w)
{
    switch (v->type) {
    case J_BOOL:
        mms_bw_bool(w, CTX, 3, v->b);
        return 0;
    case J_NUM:
        if (v->isint) {
            int64_t x;
            if (jint(v, &x) < 0)
                return fail(E_USAGE, "integer out of range");
            mms_bw_int(w, CTX, 5, x);
        } else {
            mms_bw_float(w, CTX, 7, v->num, false);
        }
        return 0;
    case J_STR:
        mms_bw_octets(w, CTX, 10, v->s, v->slen);
        return 0;
    case J_ARR:
        return jenc_children(j, v, w, 2);
    case J_OBJ: {
        const jnode_t *x;
        uint8_t raw[4096];
        size_t n;
        if ((x = jget(j, v, "bits"))) {
            const jnode_t *nb = jget(j, v, "n");
            int64_t nbits;
            if (x->type != J_STR || hex_decode(x->s, x->slen, raw, sizeof raw, &n) < 0 || !nb ||
                jint(nb, &nbits) < 0 || nbits < 0 || (size_t)nbits > n * 8 ||
                (size_t)nbits + 8 <= n * 8)
                return fail(E_USAGE, "bad {\"bits\":hex,\"n\":count} value");
            mms_bw_bits(w, CTX, 4, raw, (size_t)nbits);
            return 0;
        }
        if ((x = jget(j, v, "octets"))) {
            if (x->type != J_STR || hex_decode(x->s, x->slen, raw, sizeof raw, &n) < 0)
                return fail(E_USAGE, "bad {\"octets\":hex} value");
            mms_bw_octets(w, CTX, 9, raw, n);
            return 0;
        }
        if ((x = jget(j, v, "int")) || (x = jget(j, v, "uint"))) {
            int64_t i;
            if (jint(x, &i) < 0)
                return fail(E_USAGE, "bad integer value");
            if (jget(j, v, "uint")) {
                if (i < 0)
                    return fail(E_USAGE, "negative uint");
                mms_bw_uint(w, CTX, 6, (uint64_t)i);
            } else {
                mms_bw_int(w, CTX, 5, i);
            }
            return 0;
        }
        if ((x = jget(j, v, "float")) || (x = jget(j, v, "double"))) {
            if (x->type != J_NUM)
                return fail(E_USAGE, "bad float value");
            mms_bw_float(w, CTX, 7, x->num, jget(j, v, "double") != NULL);
            return 0;
        }
        if ((x = jget(j, v, "vstring")) || (x = jget(j, v, "mmsstring"))) {
            if (x->type != J_STR)
                return fail(E_USAGE, "bad string value");
            mms_bw_octets(w, CTX, jget(j, v, "vstring") ? 10 : 16, x->s, x->slen);
            return 0;
        }
        if ((x = jget(j, v, "array"))) {
            if (x->type != J_ARR)
                return fail(E_USAGE, "bad array value");
            return jenc_children(j, x, w, 1);
        }
        return fail(E_USAGE, "unknown typed value (use bits/octets/int/uint/float/double/"
                             "vstring/mmsstring/array)");
    }
    default:
        return fail(E_USAGE, "null is not an MMS value");
    }
}

/* Parses text as JSON and prepends its Data encoding. */
static int json_to_data(const char *text, mms_ber_writer_t *w)
{
    static jnode_t nodes[4096];
    static char pool[65536];
    jparse_t j = {text, text + strlen(text), nodes, 0, 4096, pool, 0, sizeof pool, NULL};
    int root = jvalue(&j, 0);
    if (root >= 0) {
        jws(&j);
        if (j.p != j.e) {
            j.err = "trailing characters";
            root = -1;
        }
    }
    if (root < 0)
        return fail(E_USAGE, "bad JSON value '%s': %s", text, j.err);
    if (jenc(&j, &nodes[root], w) < 0)
        return -E_USAGE;
    return 0;
}

/* ---- Response decoders ------------------------------------------------------------------------
 */

#define BAD(what) fail(E_IO, "malformed %s from the server", what)

static int resp_identify(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r;
    mms_tlv_t t;
    static const char *keys[] = {"vendor", "model", "revision"};
    char s[STR_MAX_LEN];
    mms_ber_reader_init(&r, body, len);
    for (uint32_t i = 0; i < 3; i++) {
        if (mms_ber_expect(&r, CTX, false, i, &t) < 0 || mms_ber_get_visible(&t, s, sizeof s) < 0)
            return BAD("Identify response");
        sb_f(b, ",\"%s\":", keys[i]);
        sb_cstr(b, s);
    }
    return 0;
}

static int resp_status(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r;
    mms_tlv_t t;
    int64_t lg, ph;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 || mms_ber_get_int(&t, &lg) < 0 ||
        mms_ber_expect(&r, CTX, false, 1, &t) < 0 || mms_ber_get_int(&t, &ph) < 0)
        return BAD("Status response");
    sb_f(b, ",\"logical\":%lld,\"physical\":%lld", (long long)lg, (long long)ph);
    return 0;
}

/* GetNameList response: appends the identifiers (comma-separated JSON strings, *count so far),
 * keeps the last one for continueAfter and moreFollows (DEFAULT TRUE). */
static int resp_namelist(const uint8_t *body, size_t len, sb_t *b, size_t *count, char *last,
                         size_t lcap, bool *more)
{
    mms_ber_reader_t r, lr;
    mms_tlv_t t, e;
    int rc;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, true, 0, &t) < 0 || mms_ber_enter(&r, &t, &lr) < 0)
        return BAD("GetNameList response");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        if (!mms_tlv_is(&e, UNI, false, 26) || mms_ber_get_visible(&e, last, lcap) < 0)
            return BAD("identifier in GetNameList response");
        if ((*count)++)
            sb_s(b, ",");
        sb_cstr(b, last);
    }
    if (rc < 0)
        return BAD("GetNameList identifier list");
    *more = true;
    rc = mms_ber_next(&r, &t);
    if (rc == 1) {
        if (!mms_tlv_is(&t, CTX, false, 1) || mms_ber_get_bool(&t, more) < 0)
            return BAD("GetNameList moreFollows");
    } else if (rc < 0) {
        return BAD("GetNameList response");
    }
    return 0;
}

static int resp_gvaa(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r, tr;
    mms_tlv_t t, ty;
    bool del;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 || mms_ber_get_bool(&t, &del) < 0)
        return BAD("GetVariableAccessAttributes mmsDeletable");
    if (mms_ber_next(&r, &t) != 1)
        return BAD("GetVariableAccessAttributes response");
    if (mms_tlv_is(&t, CTX, true, 1) && mms_ber_next(&r, &t) != 1) /* address */
        return BAD("GetVariableAccessAttributes response");
    if (!mms_tlv_is(&t, CTX, true, 2) || mms_ber_enter(&r, &t, &tr) < 0 ||
        mms_ber_next(&tr, &ty) != 1)
        return BAD("GetVariableAccessAttributes typeDescription");
    sb_f(b, ",\"deletable\":%s,\"type\":", del ? "true" : "false");
    return type_json(&tr, &ty, b);
}

/* Read response: "results":[{"item":..,"value":..}|{"item":..,"error":..}]. */
static int resp_read(const uint8_t *body, size_t len, sb_t *b, char **items, int nitems,
                     bool *failed)
{
    mms_ber_reader_t r, lr;
    mms_tlv_t t, e;
    int rc, i = 0;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_next(&r, &t) != 1)
        return BAD("Read response");
    if (mms_tlv_is(&t, CTX, true, 0) && mms_ber_next(&r, &t) != 1)
        return BAD("Read response");
    if (!mms_tlv_is(&t, CTX, true, 1) || mms_ber_enter(&r, &t, &lr) < 0)
        return BAD("Read listOfAccessResult");
    sb_s(b, ",\"results\":[");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        sb_s(b, i ? ",{" : "{");
        if (items && i < nitems) {
            sb_s(b, "\"item\":");
            sb_cstr(b, items[i]);
            sb_s(b, ",");
        }
        if (access_result_json(&lr, &e, b, failed) < 0)
            return -E_IO;
        sb_s(b, "}");
        i++;
    }
    if (rc < 0)
        return BAD("Read listOfAccessResult");
    sb_s(b, "]");
    if (items && i != nitems)
        return fail(E_IO, "Read response with %d results for %d variables", i, nitems);
    return 0;
}

static int resp_write(const uint8_t *body, size_t len, sb_t *b, char **items, int nitems,
                      bool *failed)
{
    mms_ber_reader_t r;
    mms_tlv_t e;
    int rc, i = 0;
    mms_ber_reader_init(&r, body, len);
    sb_s(b, ",\"results\":[");
    while ((rc = mms_ber_next(&r, &e)) == 1) {
        sb_s(b, i ? ",{" : "{");
        if (items && i < nitems) {
            sb_s(b, "\"item\":");
            sb_cstr(b, items[i]);
            sb_s(b, ",");
        }
        if (mms_tlv_is(&e, CTX, false, 1) && mms_ber_get_null(&e) == 0) {
            sb_s(b, "\"ok\":true");
        } else if (mms_tlv_is(&e, CTX, false, 0)) {
            if (access_result_json(&r, &e, b, failed) < 0)
                return -E_IO;
        } else {
            return BAD("Write response element");
        }
        sb_s(b, "}");
        i++;
    }
    if (rc < 0)
        return BAD("Write response");
    sb_s(b, "]");
    if (items && i != nitems)
        return fail(E_IO, "Write response with %d results for %d variables", i, nitems);
    return 0;
}

static int resp_nvl_attrs(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r, lr;
    mms_tlv_t t, e;
    bool del;
    int rc, i = 0;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 || mms_ber_get_bool(&t, &del) < 0 ||
        mms_ber_expect(&r, CTX, true, 1, &t) < 0 || mms_ber_enter(&r, &t, &lr) < 0)
        return BAD("GetNamedVariableListAttributes response");
    sb_f(b, ",\"deletable\":%s,\"items\":[", del ? "true" : "false");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        mms_ber_reader_t er, vr;
        mms_tlv_t vs, on;
        char nm[2 * NAME_MAX_LEN];
        if (!mms_tlv_is(&e, UNI, true, 16) || mms_ber_enter(&lr, &e, &er) < 0 ||
            mms_ber_expect(&er, CTX, true, 0, &vs) < 0 || mms_ber_enter(&er, &vs, &vr) < 0 ||
            mms_ber_next(&vr, &on) != 1 || object_name(&vr, &on, nm, sizeof nm) < 0)
            return BAD("variable of a named variable list");
        if (i++)
            sb_s(b, ",");
        sb_cstr(b, nm);
    }
    if (rc < 0)
        return BAD("named variable list");
    sb_s(b, "]");
    return 0;
}

static int resp_delete_nvl(const uint8_t *body, size_t len, sb_t *b)
{
    mms_ber_reader_t r;
    mms_tlv_t t;
    uint32_t m, d;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 || mms_ber_get_u32(&t, &m) < 0 ||
        mms_ber_expect(&r, CTX, false, 1, &t) < 0 || mms_ber_get_u32(&t, &d) < 0)
        return BAD("DeleteNamedVariableList response");
    sb_f(b, ",\"matched\":%u,\"deleted\":%u", m, d);
    return 0;
}

/* FileName (SEQUENCE OF GraphicString) as one string (components joined). */
static int file_name(const mms_ber_reader_t *r, const mms_tlv_t *t, char *out, size_t cap)
{
    mms_ber_reader_t c;
    mms_tlv_t e;
    size_t k = 0;
    int rc;
    if (mms_ber_enter(r, t, &c) < 0)
        return BAD("FileName");
    while ((rc = mms_ber_next(&c, &e)) == 1) {
        const uint8_t *p;
        size_t n;
        if (!mms_tlv_is(&e, UNI, false, 25) || mms_ber_get_octets(&e, cap, &p, &n) < 0 ||
            k + n >= cap)
            return BAD("FileName component");
        for (size_t i = 0; i < n; i++)
            if (p[i] < 0x20 || p[i] > 0x7E)
                return BAD("FileName character");
        memcpy(out + k, p, n);
        k += n;
    }
    if (rc < 0)
        return BAD("FileName");
    out[k] = 0;
    return 0;
}

static int file_attrs(const mms_ber_reader_t *r, const mms_tlv_t *t, uint32_t *size, sb_t *b)
{
    mms_ber_reader_t c;
    mms_tlv_t e;
    if (mms_ber_enter(r, t, &c) < 0 || mms_ber_expect(&c, CTX, false, 0, &e) < 0 ||
        mms_ber_get_u32(&e, size) < 0)
        return BAD("FileAttributes");
    sb_f(b, ",\"size\":%u", *size);
    int rc = mms_ber_next(&c, &e);
    if (rc == 1 && mms_tlv_is(&e, CTX, false, 1)) {
        char s[64];
        if (mms_ber_get_visible(&e, s, sizeof s) < 0)
            return BAD("lastModified");
        sb_s(b, ",\"mtime\":");
        sb_cstr(b, s);
    } else if (rc != 0) {
        return BAD("FileAttributes");
    }
    return 0;
}

static int resp_filedir(const uint8_t *body, size_t len, sb_t *b, size_t *count, char *last,
                        size_t lcap, bool *more)
{
    mms_ber_reader_t r, lr, xr;
    mms_tlv_t t, e, x;
    int rc;
    /* ISO 9506-2 (module ISO-9506-MMS-1A, file services): listOfDirectoryEntry [0] is an
     * EXPLICIT tag around the SEQUENCE OF, as the reference server sends it. */
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, true, 0, &x) < 0 || mms_ber_enter(&r, &x, &xr) < 0 ||
        mms_ber_expect(&xr, UNI, true, 16, &t) < 0 || mms_ber_enter(&xr, &t, &lr) < 0 ||
        mms_ber_next(&xr, &e) != 0)
        return BAD("FileDirectory response");
    while ((rc = mms_ber_next(&lr, &e)) == 1) {
        mms_ber_reader_t er;
        mms_tlv_t fn, fa;
        uint32_t size;
        if (!mms_tlv_is(&e, UNI, true, 16) || mms_ber_enter(&lr, &e, &er) < 0 ||
            mms_ber_expect(&er, CTX, true, 0, &fn) < 0 || file_name(&er, &fn, last, lcap) < 0 ||
            mms_ber_expect(&er, CTX, true, 1, &fa) < 0)
            return BAD("DirectoryEntry");
        sb_s(b, (*count)++ ? ",{\"name\":" : "{\"name\":");
        sb_cstr(b, last);
        if (file_attrs(&er, &fa, &size, b) < 0)
            return -E_IO;
        sb_s(b, "}");
    }
    if (rc < 0)
        return BAD("FileDirectory list");
    *more = false;
    rc = mms_ber_next(&r, &t);
    if (rc == 1 && (!mms_tlv_is(&t, CTX, false, 1) || mms_ber_get_bool(&t, more) < 0))
        return BAD("FileDirectory moreFollows");
    if (rc < 0)
        return BAD("FileDirectory response");
    return 0;
}

static int resp_fileopen(const uint8_t *body, size_t len, int32_t *frsm, uint32_t *size, sb_t *b)
{
    mms_ber_reader_t r;
    mms_tlv_t t;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 || mms_ber_get_i32(&t, frsm) < 0 ||
        mms_ber_expect(&r, CTX, true, 1, &t) < 0)
        return BAD("FileOpen response");
    sb_f(b, ",\"frsm\":%d", *frsm);
    return file_attrs(&r, &t, size, b);
}

static int resp_fileread(const uint8_t *body, size_t len, const uint8_t **data, size_t *n,
                         bool *more)
{
    mms_ber_reader_t r;
    mms_tlv_t t;
    int rc;
    mms_ber_reader_init(&r, body, len);
    if (mms_ber_expect(&r, CTX, false, 0, &t) < 0 ||
        mms_ber_get_octets(&t, MMS_BER_MAX_LEN, data, n) < 0)
        return BAD("FileRead response");
    *more = true;
    rc = mms_ber_next(&r, &t);
    if (rc == 1 && (!mms_tlv_is(&t, CTX, false, 1) || mms_ber_get_bool(&t, more) < 0))
        return BAD("FileRead moreFollows");
    if (rc < 0)
        return BAD("FileRead response");
    return 0;
}

/* Any confirmed response as JSON members (for --decode-vectors). */
static int resp_any(int svc, const uint8_t *body, size_t len, sb_t *b)
{
    size_t count = 0;
    char last[NAME_MAX_LEN];
    bool more, failed = false;
    switch (svc) {
    case MMS_SVC_STATUS:
        return resp_status(body, len, b);
    case MMS_SVC_IDENTIFY:
        return resp_identify(body, len, b);
    case MMS_SVC_GET_NAME_LIST: {
        sb_s(b, ",\"names\":[");
        int r = resp_namelist(body, len, b, &count, last, sizeof last, &more);
        sb_f(b, "],\"more\":%s", more ? "true" : "false");
        return r;
    }
    case MMS_SVC_READ:
        return resp_read(body, len, b, NULL, 0, &failed);
    case MMS_SVC_WRITE:
        return resp_write(body, len, b, NULL, 0, &failed);
    case MMS_SVC_GET_VAR_ACCESS_ATTR:
        return resp_gvaa(body, len, b);
    case MMS_SVC_DEFINE_NVL:
        return len == 0 ? 0 : BAD("DefineNamedVariableList response");
    case MMS_SVC_GET_NVL_ATTR:
        return resp_nvl_attrs(body, len, b);
    case MMS_SVC_DELETE_NVL:
        return resp_delete_nvl(body, len, b);
    case MMS_SVC_FILE_DIRECTORY: {
        sb_s(b, ",\"entries\":[");
        int r = resp_filedir(body, len, b, &count, last, sizeof last, &more);
        sb_f(b, "],\"more\":%s", more ? "true" : "false");
        return r;
    }
    case MMS_SVC_FILE_OPEN: {
        int32_t frsm;
        uint32_t size;
        return resp_fileopen(body, len, &frsm, &size, b);
    }
    case MMS_SVC_FILE_READ: {
        const uint8_t *d;
        size_t n;
        int r = resp_fileread(body, len, &d, &n, &more);
        if (r == 0)
            sb_f(b, ",\"data_len\":%zu,\"more\":%s", n, more ? "true" : "false");
        return r;
    }
    case MMS_SVC_FILE_CLOSE:
        return len == 0 ? 0 : BAD("FileClose response");
    default:
        sb_f(b, ",\"undecoded_len\":%zu", len);
        return 0;
    }
}

/* ---- Commands ---------------------------------------------------------------------------------
 */

/* Starts a line {"cmd":NAME */
static void line_start(sb_t *b, const char *cmd)
{
    sb_s(b, "{\"cmd\":");
    sb_cstr(b, cmd);
}

/* Finishes a command that ended in a service error: prints the line with the error member. */
static int line_svc_error(sb_t *b, const svc_err_t *se)
{
    sb_s(b, ",");
    sb_svc_err(b, se);
    sb_s(b, "}");
    char keep[sizeof g_err];
    memcpy(keep, g_err, sizeof keep);
    emit(b);
    memcpy(g_err, keep, sizeof keep);
    return -E_SVC;
}

/* Runs one confirmed service for a command line b (already started); on success the caller
 * decodes resp. */
static int run(sb_t *b, int svc, bool cons, mms_ber_writer_t *w, mms_pdu_t *resp)
{
    svc_err_t se;
    if (w->err) {
        free(b->p);
        *b = (sb_t){0};
        return fail(E_USAGE, "request too large");
    }
    int r = call(svc, cons, mms_bw_data(w), mms_bw_len(w), resp, &se);
    if (r == -E_SVC)
        return line_svc_error(b, &se);
    if (r < 0) {
        free(b->p);
        *b = (sb_t){0};
    }
    return r;
}

static uint8_t g_req[REQ_MAX];

static int cmd_identify(void)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_bw_init(&w, g_req, sizeof g_req);
    line_start(&b, "identify");
    int r = run(&b, MMS_SVC_IDENTIFY, false, &w, &p);
    if (r < 0)
        return r;
    if (resp_identify(p.body, p.body_len, &b) < 0)
        return free(b.p), -E_IO;
    sb_s(&b, "}");
    return emit(&b);
}

static int cmd_status(void)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    /* Status-Request ::= BOOLEAN (extendedDerivation FALSE): the service element [0] is the
     * BOOLEAN itself, so its contents are one octet. */
    uint8_t v = 0;
    mms_bw_init(&w, g_req, sizeof g_req);
    mms_bw_raw(&w, &v, 1);
    line_start(&b, "status");
    int r = run(&b, MMS_SVC_STATUS, false, &w, &p);
    if (r < 0)
        return r;
    if (resp_status(p.body, p.body_len, &b) < 0)
        return free(b.p), -E_IO;
    sb_s(&b, "}");
    return emit(&b);
}

/* GetNameList over all pages (continueAfter = the last name received while moreFollows). */
static int cmd_names(const char *cmd, const char *dom, int objclass)
{
    sb_t b = {0};
    char last[NAME_MAX_LEN] = "";
    bool more = true;
    size_t count = 0;
    int pages = 0;
    line_start(&b, cmd);
    if (dom) {
        sb_s(&b, ",\"domain\":");
        sb_cstr(&b, dom);
    }
    sb_t nb = {0}; /* the names, apart: a service error ends the line with the header only */
    while (more) {
        mms_ber_writer_t w;
        mms_pdu_t p;
        mms_bw_init(&w, g_req, sizeof g_req);
        if (pages > 0)
            mms_bw_octets(&w, CTX, 2, last, strlen(last));
        size_t s = mms_bw_mark(&w);
        if (dom)
            mms_bw_octets(&w, CTX, 1, dom, strlen(dom));
        else
            mms_bw_null(&w, CTX, 0);
        mms_bw_wrap(&w, CTX | CONS, 1, s);
        size_t c = mms_bw_mark(&w);
        mms_bw_int(&w, CTX, 0, objclass);
        mms_bw_wrap(&w, CTX | CONS, 0, c);
        int r = -E_IO;
        size_t before = count;
        if (++pages > MAX_PAGES)
            r = fail(E_IO, "GetNameList: more than %d pages", MAX_PAGES);
        else if ((r = run(&b, MMS_SVC_GET_NAME_LIST, true, &w, &p)) < 0)
            ;
        else if ((r = resp_namelist(p.body, p.body_len, &nb, &count, last, sizeof last, &more)) < 0)
            ;
        else if (more && count == before)
            r = fail(E_IO, "GetNameList: moreFollows with an empty page");
        if (r < 0) {
            free(nb.p);
            free(b.p);
            return r;
        }
    }
    sb_s(&b, ",\"names\":[");
    if (nb.p)
        sb_s(&b, nb.p);
    if (nb.oom)
        b.oom = true;
    free(nb.p);
    sb_f(&b, "],\"count\":%zu,\"pages\":%d}", count, pages);
    return emit(&b);
}

static int cmd_attrs(const char *dom, const char *item)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_bw_init(&w, g_req, sizeof g_req);
    size_t m = mms_bw_mark(&w);
    enc_object_name(&w, dom, item);
    mms_bw_wrap(&w, CTX | CONS, 0, m);
    line_start(&b, "attrs");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    sb_s(&b, ",\"item\":");
    sb_cstr(&b, item);
    int r = run(&b, MMS_SVC_GET_VAR_ACCESS_ATTR, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_gvaa(p.body, p.body_len, &b) < 0)
        return free(b.p), -E_IO;
    sb_s(&b, "}");
    return emit(&b);
}

/* A command whose result list may carry DataAccessErrors: printed, then exit code 3. */
static int finish_results(sb_t *b, bool failed)
{
    sb_s(b, "}");
    int r = emit(b);
    if (r < 0)
        return r;
    return failed ? fail(E_SVC, "the server answered some variables with a DataAccessError") : 0;
}

static int cmd_read(const char *dom, char **items, int n)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    bool failed = false;
    mms_bw_init(&w, g_req, sizeof g_req);
    size_t m = mms_bw_mark(&w);
    enc_var_list(&w, dom, items, n);
    mms_bw_wrap(&w, CTX | CONS, 1, m); /* variableAccessSpecification [1] */
    line_start(&b, "read");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    int r = run(&b, MMS_SVC_READ, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_read(p.body, p.body_len, &b, items, n, &failed) < 0)
        return free(b.p), -E_IO;
    return finish_results(&b, failed);
}

static int cmd_read_list(const char *dom, const char *list)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    bool failed = false;
    mms_bw_init(&w, g_req, sizeof g_req);
    size_t m = mms_bw_mark(&w);
    enc_object_name(&w, dom, list);
    mms_bw_wrap(&w, CTX | CONS, 1, m); /* variableListName [1] */
    mms_bw_wrap(&w, CTX | CONS, 1, m); /* variableAccessSpecification [1] */
    mms_bw_bool(&w, CTX, 0, true);     /* specificationWithResult, as the reference client */
    line_start(&b, "read-list");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    sb_s(&b, ",\"list\":");
    sb_cstr(&b, list);
    int r = run(&b, MMS_SVC_READ, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_read(p.body, p.body_len, &b, NULL, 0, &failed) < 0)
        return free(b.p), -E_IO;
    return finish_results(&b, failed);
}

/* Write of n variables with values given as JSON texts (ISO 9506-2 14.7). */
static int write_items(const char *cmd, const char *dom, char **items, char **values, int n,
                       sb_t *extra)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    bool failed = false;
    mms_bw_init(&w, g_req, sizeof g_req);
    size_t m = mms_bw_mark(&w);
    for (int i = n; i-- > 0;)
        if (json_to_data(values[i], &w) < 0)
            return -E_USAGE;
    mms_bw_wrap(&w, CTX | CONS, 0, m); /* listOfData [0] */
    enc_var_list(&w, dom, items, n);   /* variableAccessSpecification: listOfVariable [0] */
    line_start(&b, cmd);
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    if (extra && extra->p)
        sb_s(&b, extra->p);
    int r = run(&b, MMS_SVC_WRITE, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_write(p.body, p.body_len, &b, items, n, &failed) < 0)
        return free(b.p), -E_IO;
    return finish_results(&b, failed);
}

static int cmd_define_list(const char *dom, const char *name, char **items, int n)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_bw_init(&w, g_req, sizeof g_req);
    enc_var_list(&w, dom, items, n);
    enc_object_name(&w, dom, name);
    line_start(&b, "define-list");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    sb_s(&b, ",\"list\":");
    sb_cstr(&b, name);
    int r = run(&b, MMS_SVC_DEFINE_NVL, true, &w, &p);
    if (r < 0)
        return r;
    if (p.body_len != 0)
        return free(b.p), BAD("DefineNamedVariableList response");
    sb_s(&b, ",\"ok\":true}");
    return emit(&b);
}

static int cmd_delete_list(const char *dom, const char *name)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_bw_init(&w, g_req, sizeof g_req);
    size_t m = mms_bw_mark(&w);
    enc_object_name(&w, dom, name);
    mms_bw_wrap(&w, CTX | CONS, 1, m); /* listOfVariableListName [1] */
    mms_bw_int(&w, CTX, 0, 0);         /* scopeOfDelete specific */
    line_start(&b, "delete-list");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    sb_s(&b, ",\"list\":");
    sb_cstr(&b, name);
    int r = run(&b, MMS_SVC_DELETE_NVL, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_delete_nvl(p.body, p.body_len, &b) < 0)
        return free(b.p), -E_IO;
    sb_s(&b, "}");
    return emit(&b);
}

static int cmd_list_attrs(const char *dom, const char *name)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    mms_bw_init(&w, g_req, sizeof g_req);
    enc_object_name(&w, dom, name);
    line_start(&b, "list-attrs");
    sb_s(&b, ",\"domain\":");
    sb_cstr(&b, dom);
    sb_s(&b, ",\"list\":");
    sb_cstr(&b, name);
    int r = run(&b, MMS_SVC_GET_NVL_ATTR, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_nvl_attrs(p.body, p.body_len, &b) < 0)
        return free(b.p), -E_IO;
    sb_s(&b, "}");
    return emit(&b);
}

static int cmd_files(const char *dir)
{
    sb_t b = {0};
    char last[NAME_MAX_LEN] = "";
    bool more = true;
    size_t count = 0;
    int pages = 0;
    line_start(&b, "files");
    sb_s(&b, ",\"dir\":");
    sb_cstr(&b, dir ? dir : "");
    sb_t eb = {0}; /* the entries, apart (see cmd_names) */
    while (more) {
        mms_ber_writer_t w;
        mms_pdu_t p;
        mms_bw_init(&w, g_req, sizeof g_req);
        if (pages > 0)
            enc_file_name(&w, 1, last);
        /* fileSpecification: absent without DIR; DIR '""' is an empty name (both forms are
         * what reference clients send for the root) */
        if (dir)
            enc_file_name(&w, 0, strcmp(dir, "\"\"") == 0 ? "" : dir);
        int r = -E_IO;
        size_t before = count;
        if (++pages > MAX_PAGES)
            r = fail(E_IO, "FileDirectory: more than %d pages", MAX_PAGES);
        else if ((r = run(&b, MMS_SVC_FILE_DIRECTORY, true, &w, &p)) < 0)
            ;
        else if ((r = resp_filedir(p.body, p.body_len, &eb, &count, last, sizeof last, &more)) < 0)
            ;
        else if (more && count == before)
            r = fail(E_IO, "FileDirectory: moreFollows with an empty page");
        if (r < 0) {
            free(eb.p);
            free(b.p);
            return r;
        }
    }
    sb_s(&b, ",\"entries\":[");
    if (eb.p)
        sb_s(&b, eb.p);
    if (eb.oom)
        b.oom = true;
    free(eb.p);
    sb_f(&b, "],\"count\":%zu,\"pages\":%d}", count, pages);
    return emit(&b);
}

/* FileOpen, FileRead until moreFollows is false, FileClose (ISO 9506-2 annex C / 8-1 23). */
static int cmd_get_file(const char *remote, const char *local)
{
    sb_t b = {0};
    mms_ber_writer_t w;
    mms_pdu_t p;
    int32_t frsm;
    uint32_t size;
    uint8_t ib[9];
    uint64_t total = 0;
    int reads = 0, r;
    bool more = true;
    FILE *f = NULL;
    mms_bw_init(&w, g_req, sizeof g_req);
    mms_bw_uint(&w, CTX, 1, 0); /* initialPosition */
    enc_file_name(&w, 0, remote);
    line_start(&b, "get-file");
    sb_s(&b, ",\"remote\":");
    sb_cstr(&b, remote);
    r = run(&b, MMS_SVC_FILE_OPEN, true, &w, &p);
    if (r < 0)
        return r;
    if (resp_fileopen(p.body, p.body_len, &frsm, &size, &b) < 0)
        return free(b.p), -E_IO;
    f = fopen(local, "wb");
    if (!f)
        return free(b.p), fail(E_IO, "cannot create %s: %s", local, strerror(errno));
    while (more) {
        const uint8_t *d;
        size_t n;
        mms_bw_init(&w, g_req, sizeof g_req);
        mms_bw_raw(&w, ib, int_contents(frsm, ib));
        r = run(&b, MMS_SVC_FILE_READ, false, &w, &p);
        if (r < 0)
            goto out;
        if (resp_fileread(p.body, p.body_len, &d, &n, &more) < 0) {
            r = -E_IO;
            goto out;
        }
        reads++;
        total += n;
        if (total > C.max_file) {
            r = fail(E_IO, "file larger than --max-file %llu", (unsigned long long)C.max_file);
            goto out;
        }
        if (more && n == 0) {
            r = fail(E_IO, "FileRead: empty data with moreFollows");
            goto out;
        }
        if (n && fwrite(d, 1, n, f) != n) {
            r = fail(E_IO, "write to %s failed", local);
            goto out;
        }
    }
    mms_bw_init(&w, g_req, sizeof g_req);
    mms_bw_raw(&w, ib, int_contents(frsm, ib));
    r = run(&b, MMS_SVC_FILE_CLOSE, false, &w, &p);
    if (r < 0)
        goto out;
    if (fclose(f) != 0) {
        f = NULL;
        return free(b.p), fail(E_IO, "write to %s failed", local);
    }
    f = NULL;
    sb_s(&b, ",\"local\":");
    sb_cstr(&b, local);
    sb_f(&b, ",\"bytes\":%llu,\"reads\":%d}", (unsigned long long)total, reads);
    if (total != size) {
        emit(&b);
        return fail(E_IO, "downloaded %llu octets, FileOpen said %u", (unsigned long long)total,
                    size);
    }
    return emit(&b);
out:
    if (f)
        fclose(f);
    if (b.p)
        free(b.p);
    return r;
}

/* Parses a bit string given as '0'/'1' characters (bit 0 first). */
static int parse_bitstr(const char *s, char *json, size_t cap)
{
    uint8_t v[8] = {0};
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return fail(E_USAGE, "bit string '%s': 1..64 characters 0/1 expected", s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '0' && s[i] != '1')
            return fail(E_USAGE, "bit string '%s': only 0 and 1", s);
        if (s[i] == '1')
            v[i / 8] |= (uint8_t)(0x80 >> (i % 8));
    }
    size_t k = (size_t)snprintf(json, cap, "{\"bits\":\"");
    for (size_t i = 0; i < (n + 7) / 8; i++)
        k += (size_t)snprintf(json + k, cap - k, "%02x", v[i]);
    snprintf(json + k, cap - k, "\",\"n\":%zu}", n);
    return 0;
}

/* reports --enable DOM/RCB: reads the RCB, writes its settings and RptEna=true in one Write,
 * GI if asked, prints every report until --count reports or --seconds passed, then writes
 * RptEna=false (unless --keep). */
static int cmd_reports(int argc, char **argv)
{
    const char *target = NULL, *optflds = NULL, *trgops = NULL, *entry = NULL;
    long intgpd = -1, buftm = -1;
    double seconds = -1;
    long count = -1;
    bool gi = false, keep = false, resv = false, purge = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--enable") && v)
            target = argv[++i];
        else if (!strcmp(a, "--optflds") && v)
            optflds = argv[++i];
        else if (!strcmp(a, "--trgops") && v)
            trgops = argv[++i];
        else if (!strcmp(a, "--intgpd") && v)
            intgpd = atol(argv[++i]);
        else if (!strcmp(a, "--buftm") && v)
            buftm = atol(argv[++i]);
        else if (!strcmp(a, "--entry-id") && v)
            entry = argv[++i];
        else if (!strcmp(a, "--seconds") && v)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "--count") && v)
            count = atol(argv[++i]);
        else if (!strcmp(a, "--gi"))
            gi = true;
        else if (!strcmp(a, "--resv"))
            resv = true;
        else if (!strcmp(a, "--purge"))
            purge = true;
        else if (!strcmp(a, "--keep"))
            keep = true;
        else
            return fail(E_USAGE, "reports: unknown or incomplete option '%s'", a);
    }
    if (!target || !strchr(target, '/'))
        return fail(E_USAGE, "reports: --enable DOMAIN/RCB-PATH is required");
    char dom[NAME_MAX_LEN], rcb[NAME_MAX_LEN];
    const char *slash = strchr(target, '/');
    if ((size_t)(slash - target) >= sizeof dom || strlen(slash + 1) >= sizeof rcb - 16)
        return fail(E_USAGE, "reports: name too long");
    memcpy(dom, target, (size_t)(slash - target));
    dom[slash - target] = 0;
    snprintf(rcb, sizeof rcb, "%s", slash + 1);

    unsigned start = C.reports;
    char *it[1] = {rcb};
    int r = cmd_read(dom, it, 1);
    if (r < 0)
        return r;

    static char names[10][NAME_MAX_LEN + 16], vals[10][160];
    char *items[10], *values[10];
    int n = 0;
#define ADD(field, ...)                                                                            \
    do {                                                                                           \
        snprintf(names[n], sizeof names[n], "%s$%s", rcb, field);                                  \
        snprintf(vals[n], sizeof vals[n], __VA_ARGS__);                                            \
        items[n] = names[n];                                                                       \
        values[n] = vals[n];                                                                       \
        n++;                                                                                       \
    } while (0)
    if (resv)
        ADD("Resv", "true");
    if (purge)
        ADD("PurgeBuf", "true");
    if (optflds) {
        snprintf(names[n], sizeof names[n], "%s$OptFlds", rcb);
        if (parse_bitstr(optflds, vals[n], sizeof vals[n]) < 0)
            return -E_USAGE;
        items[n] = names[n];
        values[n] = vals[n];
        n++;
    }
    if (trgops) {
        snprintf(names[n], sizeof names[n], "%s$TrgOps", rcb);
        if (parse_bitstr(trgops, vals[n], sizeof vals[n]) < 0)
            return -E_USAGE;
        items[n] = names[n];
        values[n] = vals[n];
        n++;
    }
    if (intgpd >= 0)
        ADD("IntgPd", "{\"uint\":%ld}", intgpd);
    if (buftm >= 0)
        ADD("BufTm", "{\"uint\":%ld}", buftm);
    if (entry)
        ADD("EntryID", "{\"octets\":\"%.64s\"}", entry);
    ADD("RptEna", "true");
#undef ADD
    r = write_items("rcb-write", dom, items, values, n, NULL);
    if (r < 0)
        return r;
    if (gi) {
        static char gname[NAME_MAX_LEN + 16];
        char *gv[1] = {"true"}, *gi_items[1] = {gname};
        snprintf(gname, sizeof gname, "%s$GI", rcb);
        r = write_items("rcb-write", dom, gi_items, gv, 1, NULL);
        if (r < 0)
            return r;
    }
    int64_t deadline =
        mono_ms() + (int64_t)((seconds >= 0 ? seconds : C.timeout_ms / 1000.0) * 1000);
    while (count < 0 || (long)(C.reports - start) < count) {
        mms_pdu_t p;
        mms_spdu_t s;
        r = recv_mms(deadline, &p, &s);
        if (r == E_TIMEOUT)
            break;
        if (r < 0)
            return r;
        if (r == 1)
            return fail(E_IO, "unexpected session SPDU %u while waiting for reports", s.si);
        if (p.type != MMS_PDU_UNCONFIRMED)
            return fail(E_IO, "unexpected MMS PDU type %d while waiting for reports", p.type);
        if (handle_unconfirmed(&p) < 0)
            return -E_IO;
    }
    unsigned got = C.reports - start;
    if (!keep) {
        static char ename[NAME_MAX_LEN + 16];
        char *ev[1] = {"false"}, *e_items[1] = {ename};
        snprintf(ename, sizeof ename, "%s$RptEna", rcb);
        r = write_items("rcb-write", dom, e_items, ev, 1, NULL);
        if (r < 0)
            return r;
    }
    sb_t b = {0};
    line_start(&b, "reports-done");
    sb_f(&b, ",\"rcb\":");
    sb_cstr(&b, target);
    sb_f(&b, ",\"reports\":%u}", got);
    r = emit(&b);
    if (r < 0)
        return r;
    if (count >= 0 && (long)got < count)
        return fail(E_SVC, "only %u of %ld reports arrived in time", got, count);
    return 0;
}

/* ---- Dispatch, batch, main ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs(
        "usage: mms_client [--host H] --port P [--password PW] [--timeout S] [--max-pdu N]\n"
        "                  [--max-file BYTES] [--abort | --close] CMD [ARGS...]\n"
        "       mms_client --decode-vectors FILE\n"
        "commands (one association; it ends with conclude, or ABORT with --abort, or a bare\n"
        "TCP close with --close):\n"
        "  identify | status | domains\n"
        "  names DOMAIN [--class vars|lists|journals]   all pages (continueAfter)\n"
        "  attrs DOMAIN ITEM                             GetVariableAccessAttributes type tree\n"
        "  read DOMAIN ITEM [ITEM...]                    values as JSON\n"
        "  read-list DOMAIN LIST\n"
        "  write DOMAIN ITEM JSON-VALUE                  true, 1, 1.5, \"s\", [..], "
        "{\"bits\":\"hex\",\"n\":N},\n"
        "                                                {\"octets\":hex} {\"int\":N} "
        "{\"uint\":N} {\"float\":x} ...\n"
        "  define-list DOMAIN NAME ITEM...  |  delete-list DOMAIN NAME  |  list-attrs DOMAIN NAME\n"
        "  reports --enable DOMAIN/RCB [--optflds 0101..] [--trgops 0101..] [--intgpd MS]\n"
        "          [--buftm MS] [--entry-id HEX] [--resv] [--purge] [--gi] [--seconds N]\n"
        "          [--count N] [--keep]\n"
        "  files [DIR]  (DIR '\"\"': an empty name)  |  get-file REMOTE LOCAL  |  sleep S\n"
        "  conclude | abort | batch (commands from stdin, one per line, one association)\n"
        "output: one JSON object per line; exit 1 transport/protocol, 2 association refused,\n"
        "3 service error (confirmed-Error, Reject, DataAccessError), 4 usage\n",
        f);
}

static int run_cmd(int argc, char **argv)
{
    const char *c = argv[0];
    if (!strcmp(c, "identify") && argc == 1)
        return cmd_identify();
    if (!strcmp(c, "status") && argc == 1)
        return cmd_status();
    if (!strcmp(c, "domains") && argc == 1)
        return cmd_names("domains", NULL, 9);
    if (!strcmp(c, "names") && (argc == 2 || argc == 4)) {
        int cls = 0;
        if (argc == 4) {
            if (strcmp(argv[2], "--class"))
                return fail(E_USAGE, "names DOMAIN [--class vars|lists|journals]");
            if (!strcmp(argv[3], "vars"))
                cls = 0;
            else if (!strcmp(argv[3], "lists"))
                cls = 2;
            else if (!strcmp(argv[3], "journals"))
                cls = 8;
            else
                return fail(E_USAGE, "names: class vars, lists or journals");
        }
        return cmd_names("names", argv[1], cls);
    }
    if (!strcmp(c, "attrs") && argc == 3)
        return cmd_attrs(argv[1], argv[2]);
    if (!strcmp(c, "read") && argc >= 3 && argc - 2 <= MAX_ITEMS)
        return cmd_read(argv[1], argv + 2, argc - 2);
    if (!strcmp(c, "read-list") && argc == 3)
        return cmd_read_list(argv[1], argv[2]);
    if (!strcmp(c, "write") && argc == 4)
        return write_items("write", argv[1], argv + 2, argv + 3, 1, NULL);
    if (!strcmp(c, "define-list") && argc >= 4 && argc - 3 <= MAX_ITEMS)
        return cmd_define_list(argv[1], argv[2], argv + 3, argc - 3);
    if (!strcmp(c, "delete-list") && argc == 3)
        return cmd_delete_list(argv[1], argv[2]);
    if (!strcmp(c, "list-attrs") && argc == 3)
        return cmd_list_attrs(argv[1], argv[2]);
    if (!strcmp(c, "reports"))
        return cmd_reports(argc - 1, argv + 1);
    if (!strcmp(c, "files") && argc <= 2)
        return cmd_files(argc == 2 ? argv[1] : NULL);
    if (!strcmp(c, "get-file") && argc == 3)
        return cmd_get_file(argv[1], argv[2]);
    if (!strcmp(c, "sleep") && argc == 2) {
        /* waits, printing reports that arrive meanwhile */
        int64_t deadline = mono_ms() + (int64_t)(atof(argv[1]) * 1000);
        for (;;) {
            mms_pdu_t p;
            mms_spdu_t s;
            int r = recv_mms(deadline, &p, &s);
            if (r == E_TIMEOUT)
                return 0;
            if (r < 0)
                return r;
            if (r == 1 || p.type != MMS_PDU_UNCONFIRMED)
                return fail(E_IO, "unexpected PDU from the server while idle");
            if (handle_unconfirmed(&p) < 0)
                return -E_IO;
        }
    }
    if (!strcmp(c, "conclude") && argc == 1)
        return C.associated ? conclude() : fail(E_IO, "not associated");
    if (!strcmp(c, "abort") && argc == 1)
        return C.associated ? do_abort() : fail(E_IO, "not associated");
    return fail(E_USAGE, "unknown command or wrong arguments: %s (see --help)", c);
}

/* Splits a batch line into words: whitespace separates, '...' and "..." group (quotes kept
 * out, except that a word starting with [ or { runs to its matching bracket so JSON values
 * need no quoting). */
static int split_line(char *s, char **argv, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (!*s || *s == '#')
            break;
        if (n == max)
            return -1;
        if (*s == '\'') {
            argv[n++] = ++s;
            while (*s && *s != '\'')
                s++;
            if (*s)
                *s++ = 0;
            continue;
        }
        argv[n++] = s;
        if (*s == '{' || *s == '[') {
            int depth = 0;
            bool str = false;
            for (; *s; s++) {
                if (str) {
                    if (*s == '\\' && s[1])
                        s++;
                    else if (*s == '"')
                        str = false;
                } else if (*s == '"') {
                    str = true;
                } else if (*s == '{' || *s == '[') {
                    depth++;
                } else if (*s == '}' || *s == ']') {
                    if (--depth == 0) {
                        s++;
                        break;
                    }
                }
            }
        } else if (*s == '"') {
            /* a JSON string value: kept with its quotes */
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                s++;
            }
            if (*s)
                s++;
        } else {
            while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                s++;
        }
        if (*s)
            *s++ = 0;
    }
    return n;
}

static int run_batch(void)
{
    char line[65536];
    int worst = 0;
    while (fgets(line, sizeof line, stdin)) {
        char *argv[MAX_ITEMS + 8];
        int argc = split_line(line, argv, MAX_ITEMS + 8);
        if (argc == 0)
            continue;
        if (argc < 0) {
            fprintf(stderr, "mms_client: batch line with too many words\n");
            return E_USAGE;
        }
        int r = run_cmd(argc, argv);
        if (r == -E_SVC || r == -E_USAGE) {
            /* the association is still usable: report and go on */
            fprintf(stderr, "mms_client: %s: %s\n", argv[0], g_err);
            if (r == -E_USAGE) {
                sb_t b = {0};
                line_start(&b, argv[0]);
                sb_s(&b, ",\"error\":{\"kind\":\"usage\",\"message\":");
                sb_cstr(&b, g_err);
                sb_s(&b, "}}");
                emit(&b);
            }
            if (worst == 0 || worst == E_USAGE)
                worst = -r;
            continue;
        }
        if (r < 0) {
            fprintf(stderr, "mms_client: %s: %s\n", argv[0], g_err);
            return -r;
        }
        if (!C.associated && (strcmp(argv[0], "conclude") == 0 || strcmp(argv[0], "abort") == 0))
            return worst; /* the association ended: ignore the rest */
    }
    return worst;
}

/* --decode-vectors FILE: every server TPKT of a tests/vectors/mms file ("s2c STREAM IDX HEX"
 * lines) through our transport decoders and this client's answer decoders, one JSON line per
 * MMS/ACSE PDU: {"stream":s,"idx":i,"pdu":...}. Exit 1 at the first one that fails. */
static int decode_vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    static char line[1 << 18];
    static uint8_t tpkt[MMS_TPKT_MAX], tsdu[1 << 20];
    int cur_stream = -1;
    mms_cotp_reasm_t ra;
    if (!f) {
        fprintf(stderr, "mms_client: cannot open %s: %s\n", path, strerror(errno));
        return E_IO;
    }
    C.neg_pdu = 1 << 20;
    while (fgets(line, sizeof line, f)) {
        char dir[8], hex[sizeof line];
        int stream, idx;
        size_t n;
        if (sscanf(line, "%7s %d %d %s", dir, &stream, &idx, hex) != 4 || strcmp(dir, "s2c"))
            continue;
        if (stream != cur_stream) {
            mms_cotp_reasm_init(&ra, tsdu, sizeof tsdu);
            cur_stream = stream;
        }
        if (hex_decode(hex, strlen(hex), tpkt, sizeof tpkt, &n) < 0)
            goto bad;
        const uint8_t *tp;
        size_t tn;
        mms_cotp_t c;
        if (mms_tpkt_frame(tpkt, n, MMS_TPKT_MAX, &tp, &tn) <= 0 || mms_cotp_decode(tp, tn, &c) < 0)
            goto bad;
        if (c.type != MMS_COTP_DT)
            continue;
        int r = mms_cotp_reasm_add(&ra, &c);
        if (r < 0)
            goto bad;
        if (r == 0)
            continue;
        mms_spdu_t s;
        mms_ppdu_t pp;
        if (mms_spdu_decode(ra.buf, ra.len, &s) < 0)
            goto bad;
        sb_t b = {0};
        sb_f(&b, "{\"stream\":%d,\"idx\":%d,", stream, idx);
        if (s.si == MMS_SPDU_AC) {
            C.max_pdu = 1 << 20;
            C.tpdu_size = 8192;
            sb_s(&b, "\"pdu\":");
            sb_t inner = {0};
            if (assoc_answer(&s) < 0) { /* prints its own associate line */
                free(b.p);
                goto bad;
            }
            free(inner.p);
            sb_s(&b, "\"accept\"}");
            emit(&b);
            continue;
        }
        if (s.si == MMS_SPDU_DN) {
            mms_apdu_t a;
            if (mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0 || pp.n_pdv != 1 ||
                mms_acse_decode(pp.pdv[0].data, pp.pdv[0].len, &a) < 0 || a.kind != MMS_APDU_RLRE) {
                free(b.p);
                goto bad;
            }
            sb_f(&b, "\"pdu\":\"release-response\",\"reason\":%d}", a.reason);
            emit(&b);
            continue;
        }
        if (s.si != MMS_SPDU_DT || mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0 ||
            pp.n_pdv != 1) {
            free(b.p);
            goto bad;
        }
        mms_pdu_t p;
        if (mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, &p, NULL) < 0) {
            free(b.p);
            goto bad;
        }
        switch (p.type) {
        case MMS_PDU_CONFIRMED_RESP:
            sb_f(&b, "\"pdu\":\"response\",\"invoke_id\":%u,\"service\":%d", p.invoke_id,
                 p.service);
            if (resp_any(p.service, p.body, p.body_len, &b) < 0) {
                free(b.p);
                goto bad;
            }
            sb_s(&b, "}");
            break;
        case MMS_PDU_CONFIRMED_ERR: {
            svc_err_t se = {1, p.err_class, p.err_code};
            sb_f(&b, "\"pdu\":\"error\",\"invoke_id\":%u,", p.invoke_id);
            sb_svc_err(&b, &se);
            sb_s(&b, "}");
            break;
        }
        case MMS_PDU_UNCONFIRMED: {
            sb_t rb = {0};
            if (info_report_json(p.body, p.body_len, &rb) < 0) {
                free(b.p);
                free(rb.p);
                goto bad;
            }
            sb_s(&b, "\"pdu\":");
            sb_s(&b, rb.p);
            sb_s(&b, "}");
            free(rb.p);
            break;
        }
        case MMS_PDU_CONCLUDE_RESP:
            sb_s(&b, "\"pdu\":\"conclude-response\"}");
            break;
        default:
            sb_f(&b, "\"pdu\":\"type%d\"}", p.type);
            break;
        }
        if (emit(&b) < 0)
            goto bad;
        continue;
    bad:
        fprintf(stderr, "mms_client: %s: server TPKT %d/%d does not decode: %s\n", path, stream,
                idx, g_err[0] ? g_err : "malformed");
        fclose(f);
        return E_IO;
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    bool abort_end = false, close_end = false;
    C.host = "127.0.0.1";
    C.port = NULL;
    C.timeout_ms = 10000;
    C.max_pdu = 65000;
    C.max_file = UINT64_C(1) << 30;
    C.fd = -1;
    /* --abort may be given anywhere (it says how the association ends) */
    for (int k = 1; k < argc; k++)
        if (!strcmp(argv[k], "--abort") || !strcmp(argv[k], "--close")) {
            if (argv[k][2] == 'a')
                abort_end = true;
            else
                close_end = true;
            memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof *argv);
            argc--;
            k--;
        }
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mms_client: %s needs a value\n", o);
            return E_USAGE;
        }
        i++;
        if (!strcmp(o, "--host"))
            C.host = v;
        else if (!strcmp(o, "--port"))
            C.port = v;
        else if (!strcmp(o, "--password"))
            C.password = v;
        else if (!strcmp(o, "--timeout"))
            C.timeout_ms = (int)(atof(v) * 1000);
        else if (!strcmp(o, "--max-pdu"))
            C.max_pdu = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--max-file"))
            C.max_file = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--decode-vectors"))
            return decode_vectors(v);
        else {
            fprintf(stderr, "mms_client: unknown option %s\n", o);
            usage(stderr);
            return E_USAGE;
        }
    }
    if (i >= argc || !C.port) {
        usage(stderr);
        return E_USAGE;
    }
    if (C.timeout_ms <= 0 || C.max_pdu < 64 || C.max_pdu > MMS_BER_MAX_LEN) {
        fprintf(stderr, "mms_client: --timeout > 0 and --max-pdu 64..%u\n", MMS_BER_MAX_LEN);
        return E_USAGE;
    }
    if (C.password && strlen(C.password) > 255) {
        fprintf(stderr, "mms_client: password longer than 255 octets\n");
        return E_USAGE;
    }
    C.tsdu_cap = C.max_pdu + 1024; /* session + presentation headers around one MMS PDU */
    C.tsdu = malloc(C.tsdu_cap);
    if (!C.tsdu)
        return E_IO;
    mms_cotp_reasm_init(&C.ra, C.tsdu, C.tsdu_cap);

    int ar = associate();
    if (ar < 0) {
        fprintf(stderr, "mms_client: %s\n", g_err);
        return ar == -E_ASSOC ? E_ASSOC : E_IO;
    }
    int rc;
    if (!strcmp(argv[i], "batch") && i + 1 == argc) {
        rc = run_batch();
        if (rc == E_IO)
            return rc; /* the stream is not trusted any more: no conclude, the exit closes it */
    } else {
        int r = run_cmd(argc - i, argv + i);
        rc = r < 0 ? -r : 0;
        if (r < 0)
            fprintf(stderr, "mms_client: %s: %s\n", argv[i], g_err);
        if (r < 0 && r != -E_SVC && r != -E_USAGE)
            return rc;
    }
    if (C.associated && close_end) {
        /* --close: the client vanishes (TCP closed, no conclude or abort) */
        close(C.fd);
        C.fd = -1;
        C.associated = false;
    }
    if (C.associated) {
        int r = abort_end ? do_abort() : conclude();
        if (r < 0) {
            fprintf(stderr, "mms_client: %s: %s\n", abort_end ? "abort" : "conclude", g_err);
            return rc ? rc : -r;
        }
    }
    free(C.tsdu);
    return rc;
}
