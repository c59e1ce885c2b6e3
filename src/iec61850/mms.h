/* gridsense IEC 61850-8-1 stack, sans-I/O codecs: BER, TPKT, COTP class 0, ISO session,
 * ISO presentation, ACSE and the MMS PDU envelope (docs/iec61850.md).
 *
 * Every function here is a pure function over caller memory: no sockets, no allocation, no
 * global state, callable from any thread. Decoders take outside bytes and never read past the
 * span they are given; what they hand back points into that input (borrowed, valid while the
 * input is). Encoders write into a caller buffer. Return values: 0 (or a length) on success,
 * a negative GS_E* code of core/err.h on failure:
 *   GS_ETRUNC  a length or element runs past the end of its enclosing span
 *   GS_EPROTO  malformed or wrong element (tag, length form, value outside its ASN.1 type)
 *   GS_ELIMIT  a configured bound exceeded (length, nesting depth, reassembly, output buffer)
 *   GS_ERANGE  an integer does not fit the type it is decoded into
 *   GS_ENOTSUP valid in the standard but not accepted here (BER indefinite length, session SPDUs
 *              MMS does not use, presentation data other than single-ASN1-type, X.410 mode,
 *              AP-title/AE-qualifier form 1, authentication values other than a password,
 *              FloatingPoint exponent widths other than 8 and 11)
 *   GS_EINVAL  bad arguments from our own code (NULL, impossible sizes)
 * Decoders that fail also leave a static reason string in the `why` field of their reader or
 * result struct where one exists (never allocated).
 */
#ifndef GS_IEC61850_MMS_H
#define GS_IEC61850_MMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits --------------------------------------------------------------------------------- */

#define MMS_BER_MAX_DEPTH     32         /* nesting of constructed elements (ISO 8825-1 8.1.2.5) */
#define MMS_BER_MAX_LEN       (1u << 20) /* largest length accepted in any BER header */
#define MMS_BER_MAX_TAG       ((1u << 21) - 1) /* tag numbers in at most 3 subsequent octets */
#define MMS_OID_MAX_ARCS      16               /* object identifier arcs kept */
#define MMS_TPKT_MAX          65535u /* RFC 1006 section 6: 16-bit length incl. its header */
#define MMS_COTP_MAX_TSAP     32     /* longest TSAP accepted in CR/CC */
#define MMS_SESSION_MAX_SSEL  16     /* ISO 8327-1 8.3.1.13: session selector up to 16 octets */
#define MMS_PRES_MAX_CONTEXTS 8      /* presentation contexts kept from a CP-type */
#define MMS_PRES_MAX_PDV      4      /* PDV-lists kept from one fully-encoded-data */

/* ---- BER (ISO/IEC 8825-1) ------------------------------------------------------------------- */

/* Tag classes (ISO 8825-1 8.1.2.2), already shifted as they appear in the identifier octet. */
#define MMS_BER_UNIVERSAL   0x00
#define MMS_BER_APPLICATION 0x40
#define MMS_BER_CONTEXT     0x80
#define MMS_BER_PRIVATE     0xC0
#define MMS_BER_CONSTRUCTED 0x20

/* One decoded TLV. `val` points into the reader's input. */
typedef struct {
    uint8_t cls;        /* MMS_BER_UNIVERSAL .. MMS_BER_PRIVATE */
    bool constructed;   /* bit 6 of the identifier octet */
    uint32_t tag;       /* tag number, <= MMS_BER_MAX_TAG */
    const uint8_t *val; /* contents octets */
    size_t len;         /* number of contents octets */
    const uint8_t *raw; /* first identifier octet: raw..val+len is the whole TLV */
    bool len_minimal;   /* false when the length used more octets than needed (valid BER,
                           not canonical: a re-encode would be shorter) */
} mms_tlv_t;

/* A bounded cursor over a span of BER elements. */
typedef struct {
    const uint8_t *p;   /* next unread octet */
    const uint8_t *end; /* one past the last octet of the span */
    unsigned depth;     /* nesting depth of this span (0 for a top-level reader) */
    size_t max_len;     /* largest length accepted (<= MMS_BER_MAX_LEN) */
    const char *why;    /* reason of the last failure (static string), NULL if none */
} mms_ber_reader_t;

/* Starts a reader over buf[0..n) at depth 0 with the default MMS_BER_MAX_LEN. */
void mms_ber_reader_init(mms_ber_reader_t *r, const void *buf, size_t n);

/* Reads the next element. Returns 1 with *t filled, 0 at the end of the span, or a negative code
 * (GS_ETRUNC, GS_EPROTO for a bad identifier/length form, GS_ENOTSUP for indefinite length,
 * GS_ELIMIT for a length above max_len). Definite lengths only: none of the reference captures
 * uses the indefinite form and MMS over 8-1 needs none (docs/iec61850.md). After an error the
 * reader stays at the failed element. */
int mms_ber_next(mms_ber_reader_t *r, mms_tlv_t *t);

/* Like mms_ber_next, but the element must exist and have class `cls`, tag `tag` and the given
 * constructed bit; GS_EPROTO ("unexpected tag") otherwise, GS_ETRUNC at the end of the span. */
int mms_ber_expect(mms_ber_reader_t *r, uint8_t cls, bool constructed, uint32_t tag, mms_tlv_t *t);

/* Opens a child reader over the contents of constructed element t found by parent. Returns
 * GS_EPROTO if t is primitive, GS_ELIMIT if the child would exceed MMS_BER_MAX_DEPTH. */
int mms_ber_enter(const mms_ber_reader_t *parent, const mms_tlv_t *t, mms_ber_reader_t *child);

/* True when t has this class, constructed bit and tag number. */
bool mms_tlv_is(const mms_tlv_t *t, uint8_t cls, bool constructed, uint32_t tag);

/* Walks every element below t (t included) and checks the whole tree is well-formed within the
 * depth limit of r. Returns 0 or the first error. Used on values passed through undecoded. */
int mms_ber_check_tree(const mms_ber_reader_t *r, const mms_tlv_t *t);

/* Primitive value decoders (contents octets of a primitive element; ISO 8825-1 clause 8). Each
 * returns GS_EPROTO on a constructed t or a malformed value. */
int mms_ber_get_int(const mms_tlv_t *t, int64_t *v);   /* INTEGER, 8.3; GS_ERANGE > 64 bit */
int mms_ber_get_uint(const mms_tlv_t *t, uint64_t *v); /* Unsigned (non-negative INTEGER) */
int mms_ber_get_i32(const mms_tlv_t *t, int32_t *v);   /* Integer32 etc. with range check */
int mms_ber_get_u32(const mms_tlv_t *t, uint32_t *v);  /* Unsigned32 */
int mms_ber_get_bool(const mms_tlv_t *t, bool *v);     /* BOOLEAN, 8.2: one octet */
int mms_ber_get_null(const mms_tlv_t *t);              /* NULL, 8.8: no contents */
/* BIT STRING, 8.6 (primitive form only): *bits points at the data octets, *nbits counts bits.
 * The initial octet (unused bits) must be 0..7, and 0 when there are no data octets. */
int mms_ber_get_bits(const mms_tlv_t *t, const uint8_t **bits, size_t *nbits);
/* Value of bit `i` (bit 0 is the first, most significant bit) of a decoded BIT STRING. */
bool mms_bits_get(const uint8_t *bits, size_t nbits, size_t i);
/* OCTET STRING (primitive form only): borrowed pointer and length, len <= max. */
int mms_ber_get_octets(const mms_tlv_t *t, size_t max, const uint8_t **p, size_t *n);
/* VisibleString (ISO 646 printable 0x20..0x7E), copied NUL-terminated into out[cap]; GS_ELIMIT
 * if it does not fit, GS_EPROTO on a character outside the set. */
int mms_ber_get_visible(const mms_tlv_t *t, char *out, size_t cap);

/* MMSString (ISO 9506-2: UTF8String): borrowed pointer and length (octets), len <= max; GS_EPROTO
 * on invalid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
int mms_ber_get_mmsstring(const mms_tlv_t *t, size_t max, const uint8_t **p, size_t *n);
/* OBJECT IDENTIFIER, 8.19. */
typedef struct {
    uint32_t arc[MMS_OID_MAX_ARCS];
    unsigned n;
} mms_oid_t;
int mms_ber_get_oid(const mms_tlv_t *t, mms_oid_t *oid); /* GS_ELIMIT past MMS_OID_MAX_ARCS */
bool mms_oid_eq(const mms_oid_t *a, const uint32_t *arcs, unsigned n);

/* IEC 61850-8-1 8.1.3.7 UtcTime: 8 octets = seconds since 1970 (32 bit), fraction of a second
 * (24 bit binary fraction) and the time quality octet (leap seconds known, clock failure, clock
 * not synchronised, 5 bits of accuracy). */
typedef struct {
    uint32_t secs;
    uint32_t frac;   /* 0 .. 2^24-1, units of 2^-24 s */
    uint8_t quality; /* raw TimeQuality octet */
} mms_utctime_t;
#define MMS_TQ_LEAP_KNOWN    0x80
#define MMS_TQ_CLOCK_FAILURE 0x40
#define MMS_TQ_NOT_SYNCED    0x20
int mms_ber_get_utctime(const mms_tlv_t *t, mms_utctime_t *v);

/* ISO 9506-2 TimeOfDay (BinaryTime): 4 octets = ms since midnight, or 6 octets = ms since
 * midnight + days since 1984-01-01. */
typedef struct {
    uint32_t ms;   /* 0 .. 86399999 */
    uint16_t days; /* valid when has_days */
    bool has_days;
} mms_bintime_t;
int mms_ber_get_bintime(const mms_tlv_t *t, mms_bintime_t *v);

/* ISO 9506-2 FloatingPoint: a format octet (exponent width: 8 for IEEE 754 single, 11 for
 * double) followed by the IEEE value, big-endian. Other widths are GS_ENOTSUP. */
int mms_ber_get_float(const mms_tlv_t *t, double *v, bool *is_double);

/* Reverse (prepending) BER writer over a caller buffer: elements are written back to front, so a
 * constructed element is closed after its children (written last child first) and its length is
 * known. The first failure sticks in `err` (GS_ELIMIT: buffer too small) and later writes are
 * no-ops, so callers check once at the end. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t pos; /* data lives in buf[pos..cap) */
    int err;    /* 0 or the first error */
} mms_ber_writer_t;

void mms_bw_init(mms_ber_writer_t *w, void *buf, size_t cap);
/* Current position, to be passed to mms_bw_wrap after the children were prepended. */
size_t mms_bw_mark(const mms_ber_writer_t *w);
/* Prepends raw octets. */
void mms_bw_raw(mms_ber_writer_t *w, const void *p, size_t n);
/* Prepends an identifier and a definite, minimal length (ISO 8825-1 8.1.3.3/8.1.3.5). */
void mms_bw_hdr(mms_ber_writer_t *w, uint8_t cls_cons, uint32_t tag, size_t len);
/* Prepends the header of a constructed element whose contents are everything written since
 * `mark`. */
void mms_bw_wrap(mms_ber_writer_t *w, uint8_t cls_cons, uint32_t tag, size_t mark);
/* Primitive elements with the given identifier (class bits | tag), minimal encodings. */
void mms_bw_int(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, int64_t v);
void mms_bw_uint(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, uint64_t v);
void mms_bw_bool(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, bool v);
void mms_bw_null(mms_ber_writer_t *w, uint8_t cls, uint32_t tag);
void mms_bw_octets(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const void *p, size_t n);
void mms_bw_bits(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const uint8_t *bits, size_t nbits);
void mms_bw_oid(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const uint32_t *arcs, unsigned n);
void mms_bw_utctime(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const mms_utctime_t *v);
void mms_bw_bintime(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, const mms_bintime_t *v);
void mms_bw_float(mms_ber_writer_t *w, uint8_t cls, uint32_t tag, double v, bool is_double);
/* Length of the encoding so far (cap - pos) and its first octet. */
size_t mms_bw_len(const mms_ber_writer_t *w);
const uint8_t *mms_bw_data(const mms_ber_writer_t *w);

/* ---- TPKT (RFC 1006 section 6) -------------------------------------------------------------- */

#define MMS_TPKT_HDR 4

/* Looks for one TPKT at the start of a stream buffer p[0..n). Returns its total length (> 0)
 * when complete (*payload and *plen give the TPDU inside), 0 when more bytes are needed, GS_EPROTO
 * on a version other than 3 or a length below 7 (RFC 1006: header + the smallest TPDU), GS_ELIMIT
 * on a length above max_len. */
int mms_tpkt_frame(const uint8_t *p, size_t n, size_t max_len, const uint8_t **payload,
                   size_t *plen);
/* Writes the 4-octet header for a TPDU of tpdu_len octets; GS_ELIMIT if too long. */
int mms_tpkt_hdr(uint8_t out[MMS_TPKT_HDR], size_t tpdu_len);

/* ---- COTP, ISO 8073 class 0 (RFC 1006 profile) ---------------------------------------------- */

enum {
    MMS_COTP_CR = 0xE0, /* connection request, 13.3 */
    MMS_COTP_CC = 0xD0, /* connection confirm, 13.4 */
    MMS_COTP_DR = 0x80, /* disconnect request, 13.5 */
    MMS_COTP_DT = 0xF0, /* data, 13.7 */
    MMS_COTP_ER = 0x70, /* TPDU error, 13.12 */
};
/* ER reject causes (13.12.3 d) */
enum {
    MMS_COTP_ER_UNSPEC = 0,
    MMS_COTP_ER_BAD_PARAM = 1,
    MMS_COTP_ER_BAD_TYPE = 2,
    MMS_COTP_ER_BAD_VALUE = 3
};

typedef struct {
    uint8_t type;           /* MMS_COTP_* */
    uint16_t dst_ref;       /* CR/CC/DR */
    uint16_t src_ref;       /* CR/CC/DR */
    uint8_t class_opt;      /* CR/CC: class (high nibble) and options */
    uint32_t tpdu_size;     /* CR/CC parameter 0xC0 in octets (128..8192), 0 if absent */
    uint8_t tpdu_size_code; /* its code (7..13) */
    uint8_t calling_tsap[MMS_COTP_MAX_TSAP]; /* CR/CC parameter 0xC1 */
    uint8_t calling_tsap_len;
    uint8_t called_tsap[MMS_COTP_MAX_TSAP]; /* CR/CC parameter 0xC2 */
    uint8_t called_tsap_len;
    bool has_calling_tsap, has_called_tsap;
    uint8_t reason;      /* DR reason (13.5.3 e) or ER reject cause */
    bool eot;            /* DT: last TPDU of the TSDU */
    const uint8_t *data; /* DT user data / ER invalid TPDU parameter value, borrowed */
    size_t data_len;
    uint8_t bad_cause; /* on GS_EPROTO: the ER cause to answer with */
    const char *why;
} mms_cotp_t;

/* Decodes one TPDU p[0..n) (a TPKT payload). Unknown CR/CC parameters are skipped (13.3.4:
 * they are ignored), bounded by the LI. On GS_EPROTO c->bad_cause and c->why say why. */
int mms_cotp_decode(const uint8_t *p, size_t n, mms_cotp_t *c);
/* Encoders: write a whole TPKT + TPDU into out[cap]; return the length or GS_ELIMIT/GS_EINVAL.
 * CR/CC take type, refs, class_opt, tpdu_size_code (0 = omit) and the TSAPs from c. */
int mms_cotp_encode_cr_cc(uint8_t *out, size_t cap, const mms_cotp_t *c);
int mms_cotp_encode_dr(uint8_t *out, size_t cap, uint16_t dst_ref, uint16_t src_ref,
                       uint8_t reason);
/* ER answering a bad TPDU: cause and the offending TPDU header (up to its LI) as parameter 0xC1. */
int mms_cotp_encode_er(uint8_t *out, size_t cap, uint16_t dst_ref, uint8_t cause,
                       const uint8_t *bad, size_t bad_len);
/* DT: TPKT + 3-octet DT header + data. */
int mms_cotp_encode_dt(uint8_t *out, size_t cap, bool eot, const uint8_t *data, size_t n);
#define MMS_COTP_DT_OVERHEAD (MMS_TPKT_HDR + 3)
/* Segmentation of a TSDU into DTs (ISO 8073 13.7, 6.3): writes the next DT TPKT carrying
 * tsdu[*off ..] (at most tpdu_size - 3 octets, tpdu_size being the negotiated TPDU size, 128 ..
 * 65531) into out[cap], advances *off and sets *last when this DT carries EOT. Call until *last;
 * an empty TSDU gives one empty DT with EOT. Returns the TPKT length or GS_EINVAL / GS_ELIMIT. */
int mms_cotp_segment(uint8_t *out, size_t cap, uint32_t tpdu_size, const uint8_t *tsdu, size_t n,
                     size_t *off, bool *last);
/* TPDU size in octets for code 7..13 (128..8192), 0 for any other code. */
uint32_t mms_cotp_size_of_code(uint8_t code);

/* DT reassembly (13.7: a TSDU spans DTs until the one with EOT), into caller memory. */
typedef struct {
    uint8_t *buf;
    size_t cap; /* the bound: a TSDU longer than this is GS_ELIMIT */
    size_t len;
    bool done;
} mms_cotp_reasm_t;
void mms_cotp_reasm_init(mms_cotp_reasm_t *r, uint8_t *buf, size_t cap);
/* Adds a decoded DT. Returns 1 when the TSDU is complete (buf[0..len)), 0 when more DTs are
 * needed, GS_ELIMIT past cap, GS_EINVAL for a TPDU other than DT. A completed TSDU is dropped by
 * the next call. */
int mms_cotp_reasm_add(mms_cotp_reasm_t *r, const mms_cotp_t *dt);

/* ---- ISO session, ISO 8327-1 kernel ------------------------------------------------------- */

enum {
    MMS_SPDU_DT = 1,  /* DATA TRANSFER (preceded by GIVE TOKENS, also SI 1), 8.3.11 */
    MMS_SPDU_FN = 9,  /* FINISH, 8.3.7 */
    MMS_SPDU_DN = 10, /* DISCONNECT, 8.3.8 */
    MMS_SPDU_RF = 12, /* REFUSE, 8.3.5 */
    MMS_SPDU_CN = 13, /* CONNECT, 8.3.1 */
    MMS_SPDU_AC = 14, /* ACCEPT, 8.3.4 */
    MMS_SPDU_AB = 25, /* ABORT, 8.3.9 */
    MMS_SPDU_AA = 26, /* ABORT ACCEPT, 8.3.10 */
};

typedef struct {
    uint8_t si;                /* MMS_SPDU_* */
    bool has_protocol_options; /* PI 19 */
    uint8_t protocol_options;
    bool has_version;      /* PI 22 */
    uint8_t version;       /* bit mask, 2 = version 2 */
    bool has_requirements; /* PI 20 session user requirements */
    uint16_t requirements;
    bool has_tsdu_max; /* PI 21 */
    uint32_t tsdu_max;
    uint8_t calling_ssel[MMS_SESSION_MAX_SSEL]; /* PI 51 */
    uint8_t calling_ssel_len;
    bool has_calling_ssel;
    uint8_t called_ssel[MMS_SESSION_MAX_SSEL]; /* PI 52 (called in CN, responding in AC) */
    uint8_t called_ssel_len;
    bool has_called_ssel;
    bool has_disconnect; /* PI 17 transport disconnect (FN, AB) */
    uint8_t disconnect;
    bool has_reason; /* PI 50 reason code (RF) */
    uint8_t reason;
    const uint8_t *user_data; /* PGI 193 / 194 or the DT's user information, borrowed */
    size_t user_len;
    bool has_user_data;
    const char *why;
} mms_spdu_t;

/* Decodes one SPDU (a whole TSDU). For DT the input must be GIVE TOKENS (01 00) + DATA TRANSFER
 * (01 00) + user information, as ISO 8327-1 7.36 concatenates them and every MMS peer sends.
 * Unknown PIs/PGIs are skipped, bounded by their LI. */
int mms_spdu_decode(const uint8_t *p, size_t n, mms_spdu_t *s);
/* Encodes s: parameters that are set (has_*) in the standard order, user data last (PGI 193,
 * or for DT the bare user information after 01 00 01 00). Returns the length or GS_ELIMIT. */
int mms_spdu_encode(uint8_t *out, size_t cap, const mms_spdu_t *s);

/* ---- Presentation, ISO 8823 (normal mode, BER transfer syntax) ---------------------------- */

enum { MMS_PCTX_ACSE = 1, MMS_PCTX_MMS = 3 }; /* context identifiers the captures use */
extern const uint32_t MMS_OID_ACSE[5];        /* 2.2.1.0.1 */
extern const uint32_t MMS_OID_MMS[5];         /* 1.0.9506.2.1 */
extern const uint32_t MMS_OID_BER[3];         /* 2.1.1 */
extern const uint32_t MMS_OID_MMS_CTX[5];     /* 1.0.9506.2.3, the MMS application context */

typedef struct {
    int32_t id;         /* presentation-context-identifier */
    mms_oid_t abstract; /* CP: abstract syntax name */
    bool ber;           /* CP: the transfer syntax list holds BER (2.1.1) */
    int32_t result;     /* CPA: 0 acceptance, 1 user-rejection, 2 provider-rejection */
} mms_pctx_t;

typedef struct {
    int32_t ctx_id;      /* presentation-context-identifier */
    const uint8_t *data; /* single-ASN1-type contents (a BER element), borrowed */
    size_t len;
} mms_pdv_t;

enum { MMS_PPDU_CP = 1, MMS_PPDU_CPA, MMS_PPDU_CPR, MMS_PPDU_ARU, MMS_PPDU_DATA };

typedef struct {
    int type;     /* MMS_PPDU_* (the caller says which one it expects) */
    int32_t mode; /* CP/CPA mode-value: 1 normal */
    uint8_t calling_sel[16], called_sel[16], responding_sel[16];
    uint8_t calling_sel_len, called_sel_len, responding_sel_len;
    bool has_calling_sel, has_called_sel, has_responding_sel;
    mms_pctx_t ctx[MMS_PRES_MAX_CONTEXTS]; /* definition list (CP) or result list (CPA) */
    unsigned n_ctx;
    int32_t provider_reason;         /* CPR provider-reason, ARP abort-reason; -1 absent */
    bool has_pres_req;               /* CP/CPA presentation-requirements [8] BIT STRING */
    uint8_t pres_req;                /* its first octet */
    uint8_t pres_req_bits;           /* and its length in bits (0..8) */
    mms_pdv_t pdv[MMS_PRES_MAX_PDV]; /* fully-encoded-data */
    unsigned n_pdv;
    const char *why;
} mms_ppdu_t;

/* Decoders for each PPDU, from the session user data. */
int mms_pres_decode_cp(const uint8_t *p, size_t n, mms_ppdu_t *pp);
int mms_pres_decode_cpa(const uint8_t *p, size_t n, mms_ppdu_t *pp);
int mms_pres_decode_aru(const uint8_t *p, size_t n, mms_ppdu_t *pp);
/* User-data of data transfer / release (ISO 8823 8.4.1): fully-encoded-data only. */
int mms_pres_decode_data(const uint8_t *p, size_t n, mms_ppdu_t *pp);
/* Encoders into a reverse writer: each prepends its PPDU around the PDV(s) in pp. Callers
 * encode inner layers first (ACSE/MMS into their own buffer) and pass them as PDVs. */
void mms_pres_encode_cp(mms_ber_writer_t *w, const mms_ppdu_t *pp);
void mms_pres_encode_cpa(mms_ber_writer_t *w, const mms_ppdu_t *pp);
void mms_pres_encode_aru(mms_ber_writer_t *w, const mms_ppdu_t *pp);
void mms_pres_encode_data(mms_ber_writer_t *w, const mms_ppdu_t *pp);
/* Answers to a connect or PPDU the presentation layer cannot accept (ISO 8823 8.2, 8.6):
 * CPR-PPDU (normal mode) with provider-reason (0 not specified, 2 local limit exceeded,
 * 4 protocol version not supported, 6 user data not readable, ...), and ARP-PPDU with
 * abort-reason (1 unrecognized ppdu, 2 unexpected ppdu, 4 unrecognized ppdu parameter,
 * 6 invalid ppdu parameter value). */
void mms_pres_encode_cpr(mms_ber_writer_t *w, int32_t provider_reason);
void mms_pres_encode_arp(mms_ber_writer_t *w, int32_t abort_reason);
int mms_pres_decode_arp(const uint8_t *p, size_t n, mms_ppdu_t *pp);

/* ---- ACSE, ISO 8650-1 ------------------------------------------------------------------------ */

enum {
    MMS_APDU_AARQ = 0,
    MMS_APDU_AARE = 1,
    MMS_APDU_RLRQ = 2,
    MMS_APDU_RLRE = 3,
    MMS_APDU_ABRT = 4
};
enum { MMS_ACSE_ACCEPTED = 0, MMS_ACSE_REJ_PERMANENT = 1, MMS_ACSE_REJ_TRANSIENT = 2 };
/* acse-service-user diagnostics (ISO 8650-1 AARE result-source-diagnostic) */
enum {
    MMS_ACSE_DIAG_NULL = 0,
    MMS_ACSE_DIAG_NO_REASON = 1,
    MMS_ACSE_DIAG_CTX_NOT_SUPPORTED = 2,
    MMS_ACSE_DIAG_AUTH_MECH_NOT_RECOGNISED = 11,
    MMS_ACSE_DIAG_AUTH_REQUIRED = 14,
    MMS_ACSE_DIAG_AUTH_FAILURE = 13
};
extern const uint32_t MMS_OID_PASSWORD[4]; /* 2.2.3.1: password authentication mechanism */

typedef struct {
    int kind;          /* MMS_APDU_* */
    mms_oid_t app_ctx; /* application-context-name */
    bool has_app_ctx;
    mms_oid_t called_ap_title, calling_ap_title; /* AP-title-form2 (AARQ); responding in AARE
                                                    uses called_* */
    bool has_called_ap_title, has_calling_ap_title;
    int32_t called_ae_qual, calling_ae_qual; /* AE-qualifier-form2 */
    bool has_called_ae_qual, has_calling_ae_qual;
    bool auth_required;     /* sender-acse-requirements: authentication bit */
    uint8_t acse_req_nbits; /* its BIT STRING length as received (0 = encode 1 bit) */
    mms_oid_t mechanism;    /* mechanism-name */
    bool has_mechanism;
    const uint8_t *auth_value; /* Authentication-value charstring (password), borrowed */
    size_t auth_len;
    bool has_auth;
    int32_t result;      /* AARE: MMS_ACSE_* */
    int32_t diag_source; /* AARE: 1 acse-service-user, 2 acse-service-provider */
    int32_t diag;        /* AARE: diagnostic value */
    int32_t reason;      /* RLRQ/RLRE reason, ABRT abort-source; -1 absent */
    /* user-information: the one EXTERNAL's single-ASN1-type (the MMS PDU), borrowed */
    const uint8_t *user_info;
    size_t user_len;
    int32_t user_ctx_id; /* its indirect-reference (presentation context), -1 absent */
    const char *why;
} mms_apdu_t;

/* Decodes one ACSE APDU (an element of [APPLICATION 0..4]) from p[0..n). */
int mms_acse_decode(const uint8_t *p, size_t n, mms_apdu_t *a);
/* Prepends the APDU a->kind around a->user_info (already-encoded MMS PDU, may be NULL). */
void mms_acse_encode(mms_ber_writer_t *w, const mms_apdu_t *a);

/* ---- MMS PDU envelope, ISO 9506-2 ----------------------------------------------------------- */

enum {
    MMS_PDU_CONFIRMED_REQ = 0,
    MMS_PDU_CONFIRMED_RESP = 1,
    MMS_PDU_CONFIRMED_ERR = 2,
    MMS_PDU_UNCONFIRMED = 3,
    MMS_PDU_REJECT = 4,
    MMS_PDU_CANCEL_REQ = 5,
    MMS_PDU_CANCEL_RESP = 6,
    MMS_PDU_CANCEL_ERR = 7,
    MMS_PDU_INITIATE_REQ = 8,
    MMS_PDU_INITIATE_RESP = 9,
    MMS_PDU_INITIATE_ERR = 10,
    MMS_PDU_CONCLUDE_REQ = 11,
    MMS_PDU_CONCLUDE_RESP = 12,
    MMS_PDU_CONCLUDE_ERR = 13,
};

/* ConfirmedServiceRequest/Response CHOICE tags (ISO 9506-2 clause 7, IEC 61850-8-1 subset) */
enum {
    MMS_SVC_STATUS = 0,
    MMS_SVC_GET_NAME_LIST = 1,
    MMS_SVC_IDENTIFY = 2,
    MMS_SVC_READ = 4,
    MMS_SVC_WRITE = 5,
    MMS_SVC_GET_VAR_ACCESS_ATTR = 6,
    MMS_SVC_DEFINE_NVL = 11,
    MMS_SVC_GET_NVL_ATTR = 12,
    MMS_SVC_DELETE_NVL = 13,
    MMS_SVC_OBTAIN_FILE = 46,
    MMS_SVC_FILE_OPEN = 72,
    MMS_SVC_FILE_READ = 73,
    MMS_SVC_FILE_CLOSE = 74,
    MMS_SVC_FILE_RENAME = 75,
    MMS_SVC_FILE_DELETE = 76,
    MMS_SVC_FILE_DIRECTORY = 77,
};
/* Unconfirmed services */
enum { MMS_USVC_INFORMATION_REPORT = 0 };

/* RejectPDU reasons, ISO 9506-2 7.3.2: the CHOICE tag (class) and the INTEGER (code). */
enum {
    MMS_REJ_CONFIRMED_REQUEST = 1,
    MMS_REJ_CONFIRMED_RESPONSE = 2,
    MMS_REJ_CONFIRMED_ERROR = 3,
    MMS_REJ_UNCONFIRMED = 4,
    MMS_REJ_PDU_ERROR = 5,
    MMS_REJ_CANCEL_REQUEST = 6,
    MMS_REJ_CANCEL_RESPONSE = 7,
    MMS_REJ_CANCEL_ERROR = 8,
    MMS_REJ_CONCLUDE_REQUEST = 9,
    MMS_REJ_CONCLUDE_RESPONSE = 10,
    MMS_REJ_CONCLUDE_ERROR = 11,
};
enum { /* confirmed-requestPDU codes */
       MMS_REJ_REQ_OTHER = 0,
       MMS_REJ_REQ_UNRECOGNIZED_SERVICE = 1,
       MMS_REJ_REQ_INVALID_INVOKEID = 3,
       MMS_REJ_REQ_INVALID_ARGUMENT = 4,
       MMS_REJ_REQ_MAX_RECURSION = 8,
       MMS_REJ_REQ_VALUE_OUT_OF_RANGE = 9,
};
enum { /* pdu-error codes */
       MMS_REJ_PDU_UNKNOWN_TYPE = 0,
       MMS_REJ_PDU_INVALID = 1,
       MMS_REJ_PDU_ILLEGAL_ACSE = 2,
};

/* Initiate-Request/ResponsePDU (ISO 9506-2 8.2): the same fields with Calling/Called names. */
typedef struct {
    bool has_local_detail;
    int32_t local_detail;     /* proposed/negotiated max PDU size */
    int32_t max_serv_calling; /* max outstanding requests of the calling side */
    int32_t max_serv_called;
    bool has_nesting;
    int32_t nesting;      /* data structure nesting level */
    int32_t version;      /* version number */
    uint8_t param_cbb[2]; /* ParameterSupportOptions: 11 bits (up to 16 kept) */
    size_t param_cbb_bits;
    uint8_t services[12]; /* ServiceSupportOptions: 85 bits in ISO 9506-2, up to 96 kept */
    size_t services_bits;
} mms_initiate_t;

typedef struct {
    int type;           /* MMS_PDU_* (the MMSpdu CHOICE tag) */
    uint32_t invoke_id; /* confirmed request/response/error, cancel */
    bool has_invoke_id;
    int service;              /* confirmed request/response, unconfirmed: the service CHOICE tag
                                 (MMS_SVC_* / MMS_USVC_*), -1 otherwise */
    bool service_constructed; /* its constructed bit (e.g. identify request is a NULL) */
    const uint8_t *body;      /* the service element's contents, borrowed, undecoded */
    size_t body_len;
    const uint8_t *modifiers; /* confirmed request listOfModifiers contents, or NULL */
    size_t modifiers_len;
    mms_initiate_t init;   /* initiate request/response */
    int32_t err_class;     /* confirmed-error / initiate-, conclude-, cancel-error:
                              errorClass CHOICE tag (the ServiceError is also in body) */
    int32_t err_code;      /* and its value */
    bool has_modifier_pos; /* confirmed-error modifierPosition [1] */
    uint32_t modifier_pos;
    int32_t rej_class; /* reject: MMS_REJ_* */
    int32_t rej_code;
    const char *why;
} mms_pdu_t;

/* What the receiver of a PDU it could not decode should answer (ISO 9506-2 7.3: a RejectPDU);
 * filled by mms_pdu_decode on failure. */
typedef struct {
    bool has_invoke_id;
    uint32_t invoke_id;
    int32_t rej_class;
    int32_t rej_code;
} mms_reject_t;

/* Decodes one MMSpdu p[0..n): the envelope fields, the service CHOICE tag for dispatch and a
 * bounded well-formedness check of the (undecoded) service body. On failure, when rej is not
 * NULL, it says which RejectPDU to answer. */
int mms_pdu_decode(const uint8_t *p, size_t n, mms_pdu_t *pdu, mms_reject_t *rej);
/* Encoders prepend a whole MMSpdu. body (already-encoded service contents) may be NULL. */
void mms_pdu_encode_initiate(mms_ber_writer_t *w, bool response, const mms_initiate_t *in);
void mms_pdu_encode_confirmed(mms_ber_writer_t *w, bool response, uint32_t invoke_id, int service,
                              bool constructed, const uint8_t *body, size_t len);
void mms_pdu_encode_error(mms_ber_writer_t *w, uint32_t invoke_id, int32_t err_class,
                          int32_t err_code);
void mms_pdu_encode_reject(mms_ber_writer_t *w, const mms_reject_t *rej);
void mms_pdu_encode_unconfirmed(mms_ber_writer_t *w, int service, const uint8_t *body, size_t len);
void mms_pdu_encode_conclude(mms_ber_writer_t *w, bool response);
/* Re-encodes a decoded PDU (envelope + borrowed body) exactly: used by tests and fuzzers. */
void mms_pdu_encode(mms_ber_writer_t *w, const mms_pdu_t *pdu);

/* ---- Server-side association, sans-I/O (assoc.c) ------------------------------------------- */
/* The responder's side of one TCP connection carrying IEC 61850-8-1 MMS: every layer above TCP
 * as a state machine (docs/iec61850.md "Server"). Bytes in (the TCP stream, split anywhere),
 * whole TPKTs out through a caller callback, events and confirmed requests to the caller. It
 * knows nothing of the data model: confirmed requests go to a function pointer.
 *
 * States: wait-CR -> (CC) wait-CONNECT -> (ACCEPT with CPA + AARE + initiate-response)
 * associated -> (conclude-response) concluded -> (FINISH/RLRQ -> DISCONNECT/RLRE) closed. Any
 * state -> closed on a peer ABORT, a COTP DR, a refusal or a protocol error. Answers to
 * malformed input, layer by layer:
 *   TPKT      bad version or length: closed, nothing sent (the stream cannot be resynchronised)
 *   COTP      malformed or unexpected TPDU: ER (ISO 8073 13.12) with the decoder's cause; closed
 *   session   malformed or unexpected SPDU, TSDU above max_tsdu: ABORT, PI 17 = protocol error
 *   pres.     malformed PPDU, unknown context, no MMS/ACSE context: ABORT with ARP
 *   ACSE      undecodable AARQ, other application context, bad initiate: ACCEPT carrying an AARE
 *             rejected-permanent (diagnostic no-reason / application-context-name-not-supported);
 *             authentication failure: AARE authentication-failure (or -required), or no answer
 *             with auth_fail_silent (what the reference server does); closed after each
 *   MMS       a PDU mms_pdu_decode refuses: the RejectPDU it names; the association stays
 * Unlike the codecs above, an association allocates its buffers once, in mms_assoc_new (the
 * caller's bounds), and never again. One thread at a time per association; no global state. */

typedef struct mms_assoc mms_assoc_t;

/* Events (mms_assoc_io_t.event) */
enum {
    MMS_AEV_ASSOCIATED = 1, /* the AARE accept was sent: mms_assoc_pdu_size() is negotiated */
    MMS_AEV_REFUSED,        /* association refused (AARE rejection other than authentication) */
    MMS_AEV_AUTH_FAILED,    /* authentication failed (refused, or silently closed) */
    MMS_AEV_CONCLUDED,      /* conclude-response sent */
    MMS_AEV_RELEASED,       /* RLRQ answered by RLRE (orderly end) */
    MMS_AEV_PEER_ABORT,     /* the peer aborted (session ABORT / ACSE ABRT / COTP DR) */
    MMS_AEV_PROTOCOL_ERROR, /* we answered (or closed on) malformed input: ER / ABORT */
    MMS_AEV_CLOSE,          /* last event: flush what was sent, then close the connection */
};

/* What the caller's confirmed-service function answers (same meaning as ied_answer_t). */
enum { MMS_ANS_RESP = 0, MMS_ANS_ERROR = 1, MMS_ANS_REJECT = 2 };
typedef struct {
    int kind;            /* MMS_ANS_* */
    int service;         /* RESP: response CHOICE tag */
    bool constructed;    /* RESP: its constructed bit */
    int32_t err_class;   /* ERROR: ServiceError errorClass tag and value */
    int32_t err_code;
    int32_t reject_code; /* REJECT: confirmed-requestPDU reason (MMS_REJ_REQ_*) */
} mms_answer_t;

typedef struct {
    void *ud;
    /* One whole TPKT to send. Returns 0, or a negative code when the caller's output queue is
     * full or closed: the association then closes (MMS_AEV_CLOSE; a client that does not read
     * never makes the server buffer more than the caller allows). Required. */
    int (*send)(void *ud, const uint8_t *tpkt, size_t n);
    /* MMS_AEV_* with a short static description. Optional. */
    void (*event)(void *ud, int ev, const char *what);
    /* Decides on an AARQ (password in aarq->auth_value when has_auth and the mechanism is
     * MMS_OID_PASSWORD): 0 accepts, else the ACSE diagnostic to refuse with
     * (MMS_ACSE_DIAG_AUTH_FAILURE, _AUTH_REQUIRED, _AUTH_MECH_NOT_RECOGNISED). NULL: no
     * authentication (any AARQ with the MMS context is accepted). */
    int (*authenticate)(void *ud, const mms_apdu_t *aarq);
    /* Answers one confirmed request (req: decoded envelope, service body borrowed): writes the
     * response contents into w by prepending and fills *a. Return 0, or negative on our own
     * failure (answered with a confirmed-Error resource/other). NULL: every request is
     * rejected unrecognized-service. w holds at most the negotiated PDU size: a response that
     * does not fit is answered with a confirmed-Error resource/capability-unavailable. */
    int (*confirmed)(void *ud, const mms_pdu_t *req, mms_ber_writer_t *w, mms_answer_t *a);
    /* Counts every MMS PDU received (out = false) or sent (true) by type MMS_PDU_*; type -1: a
     * received PDU that did not decode (answered with a Reject). Optional. */
    void (*pdu)(void *ud, bool out, int type);
} mms_assoc_io_t;

typedef struct {
    uint32_t max_pdu;     /* largest MMS PDU size we negotiate (Initiate localDetail), >= 256 */
    size_t max_tsdu;      /* reassembly bound of one TSDU (0: max_pdu + 1024) */
    uint8_t tpdu_code;    /* largest COTP TPDU size accepted, code 7..13 (128..8192 octets) */
    int32_t max_serv;     /* max outstanding requests offered (calling and called) */
    int32_t max_nesting;  /* data structure nesting level offered */
    uint8_t param_cbb[2]; /* ParameterSupportOptions we support (ANDed with the client's) */
    size_t param_cbb_bits;
    uint8_t services[12]; /* ServiceSupportOptions we announce */
    size_t services_bits;
    bool auth_fail_silent; /* wrong password: close without answering (reference server) */
} mms_assoc_cfg_t;

/* Defaults: max_pdu 65000, max_tsdu 0, tpdu_code 13 (8192), max_serv 5, nesting 10, CBB str1
 * str2 vnam valt vlis (IEC 61850-8-1 table 2), services: status, getNameList, identify, read,
 * write, getVariableAccessAttributes, define/get/deleteNamedVariableList, informationReport,
 * fileOpen/Read/Close, fileDirectory, conclude. auth_fail_silent false. */
void mms_assoc_cfg_default(mms_assoc_cfg_t *c);

/* Allocates an association (buffers: max_tsdu + 2 x (max_pdu + 128) + one TPDU). Returns 0,
 * GS_EINVAL (bad cfg/io), GS_ENOMEM. */
int mms_assoc_new(const mms_assoc_cfg_t *cfg, const mms_assoc_io_t *io, mms_assoc_t **out);
void mms_assoc_free(mms_assoc_t *a);

/* Feeds stream bytes p[0..n) (any split). Answers and events are emitted from inside. Returns
 * 0, or GS_ECLOSED once the association is closed (the rest of the input is ignored). */
int mms_assoc_input(mms_assoc_t *a, const uint8_t *p, size_t n);

/* True once closed (after MMS_AEV_CLOSE). */
bool mms_assoc_closed(const mms_assoc_t *a);
/* True while associated (confirmed requests are served and reports may be sent). */
bool mms_assoc_associated(const mms_assoc_t *a);
/* The negotiated MMS PDU size (0 before MMS_AEV_ASSOCIATED) and COTP TPDU size. */
uint32_t mms_assoc_pdu_size(const mms_assoc_t *a);
uint32_t mms_assoc_tpdu_size(const mms_assoc_t *a);

/* Unconfirmed PDUs (reports): begin gives a writer bounded by the negotiated PDU size for the
 * UnconfirmedService contents; end wraps them (unconfirmed-PDU, presentation, session) and sends
 * them in DTs. end returns 0, GS_ELIMIT if the PDU exceeds the negotiated size (not sent),
 * GS_ECLOSED when not associated, or the send error (the association then closes). */
int mms_assoc_unconfirmed_begin(mms_assoc_t *a, mms_ber_writer_t *w);
int mms_assoc_unconfirmed_end(mms_assoc_t *a, mms_ber_writer_t *w, int service);

/* Sends an ACSE abort (session ABORT + ARU + ABRT, source acse-service-provider) when
 * associated, then closes (the server stopping, a limit). Idempotent. */
void mms_assoc_abort(mms_assoc_t *a);

#endif
