/* ISO 8327-1 session kernel as MMS uses it (IEC 61850-8-1 / ISO 9506 over the OSI stack):
 * CONNECT, ACCEPT, REFUSE, FINISH, DISCONNECT, ABORT, ABORT ACCEPT and GIVE TOKENS + DATA
 * TRANSFER. SPDU structure: ISO 8327-1 8.2 (SI, LI, parameters, user information). */
#include <string.h>

#include "core/err.h"
#include "iec61850/mms.h"

#define BAD(s, code, text)                                                                         \
    do {                                                                                           \
        (s)->why = (text);                                                                         \
        return (code);                                                                             \
    } while (0)

/* Takes the octet at p[*off] if *off < n (the bounded reader of every SPDU field). */
static int take(const uint8_t *p, size_t n, size_t *off, uint8_t *o)
{
    if (*off >= n)
        return GS_ETRUNC;
    *o = p[*off];
    *off += 1;
    return 0;
}

/* A length indicator, 8.2.4: one octet 0..254, or 0xFF followed by two octets. */
static int read_li(const uint8_t *p, size_t n, size_t *off, size_t *li)
{
    uint8_t a, b, c;

    if (take(p, n, off, &a) < 0)
        return GS_ETRUNC;
    if (a != 0xFF) {
        *li = a;
        return 0;
    }
    if (take(p, n, off, &b) < 0 || take(p, n, off, &c) < 0)
        return GS_ETRUNC;
    *li = ((size_t)b << 8) | c;
    return 0;
}

static int copy_sel(uint8_t *dst, uint8_t *dst_len, bool *has, const uint8_t *v, size_t len)
{
    if (len > MMS_SESSION_MAX_SSEL)
        return GS_ELIMIT; /* 8.3.1.13: at most 16 octets */
    memcpy(dst, v, len);
    *dst_len = (uint8_t)len;
    *has = true;
    return 0;
}

/* Reads the parameter units of v[0..n), recursing once into PGI 1 and 5 (8.3.1). */
static int params(mms_spdu_t *s, const uint8_t *v, size_t n, int in_group)
{
    size_t off = 0;
    int rc;

    while (off < n) {
        uint8_t code;
        size_t li;
        if ((rc = take(v, n, &off, &code)) < 0)
            BAD(s, rc, "parameter code runs past the SPDU");
        const uint8_t *val;
        if ((rc = read_li(v, n, &off, &li)) < 0)
            BAD(s, rc, "parameter LI runs past the SPDU");
        if (li > n - off)
            BAD(s, GS_ETRUNC, "parameter value runs past the SPDU");
        val = v + off;
        off += li;
        switch (code) {
        case 1: /* PGI connection identifier */
        case 5: /* PGI connect/accept item */
            if (in_group)
                BAD(s, GS_EPROTO, "parameter group inside a group");
            if ((rc = params(s, val, li, 1)) < 0)
                return rc;
            break;
        case 17: /* transport disconnect */
            if (li != 1)
                BAD(s, GS_EPROTO, "transport disconnect must be one octet");
            s->has_disconnect = true;
            s->disconnect = val[0];
            break;
        case 19: /* protocol options */
            if (li != 1)
                BAD(s, GS_EPROTO, "protocol options must be one octet");
            s->has_protocol_options = true;
            s->protocol_options = val[0];
            break;
        case 20: /* session user requirements */
            if (li != 2)
                BAD(s, GS_EPROTO, "session user requirements must be two octets");
            s->has_requirements = true;
            s->requirements = (uint16_t)((val[0] << 8) | val[1]);
            break;
        case 21: /* TSDU maximum size: 2 or 4 octets */
            if (li != 4)
                BAD(s, GS_EPROTO, "TSDU maximum size must be four octets");
            s->has_tsdu_max = true;
            s->tsdu_max = ((uint32_t)val[0] << 24) | ((uint32_t)val[1] << 16) |
                          ((uint32_t)val[2] << 8) | val[3];
            break;
        case 22: /* version number */
            if (li != 1)
                BAD(s, GS_EPROTO, "version number must be one octet");
            s->has_version = true;
            s->version = val[0];
            break;
        case 50: /* reason code (REFUSE): reason octet, then user data (8.3.5.13) */
            if (li < 1)
                BAD(s, GS_EPROTO, "empty reason code");
            s->has_reason = true;
            s->reason = val[0];
            if (li > 1) {
                s->user_data = val + 1;
                s->user_len = li - 1;
                s->has_user_data = true;
            }
            break;
        case 51: /* calling session selector */
            if ((rc = copy_sel(s->calling_ssel, &s->calling_ssel_len, &s->has_calling_ssel, val,
                               li)) < 0)
                BAD(s, rc, "calling session selector too long");
            break;
        case 52: /* called / responding session selector */
            if ((rc = copy_sel(s->called_ssel, &s->called_ssel_len, &s->has_called_ssel, val, li)) <
                0)
                BAD(s, rc, "called session selector too long");
            break;
        case 193: /* PGI user data */
        case 194: /* PGI extended user data */
            if (s->has_user_data)
                BAD(s, GS_EPROTO, "user data twice");
            s->user_data = val;
            s->user_len = li;
            s->has_user_data = true;
            break;
        default: /* other PIs (token items, serial numbers, ...) are not used by MMS: skipped */
            break;
        }
    }
    return 0;
}

int mms_spdu_decode(const uint8_t *p, size_t n, mms_spdu_t *s)
{
    size_t off = 0, li;
    int rc;

    memset(s, 0, sizeof *s);
    if (n < 2)
        BAD(s, GS_ETRUNC, "SPDU shorter than SI + LI");
    if ((rc = take(p, n, &off, &s->si)) < 0)
        BAD(s, rc, "empty SPDU");
    if ((rc = read_li(p, n, &off, &li)) < 0)
        BAD(s, rc, "SPDU LI runs past the end");
    if (li > n - off)
        BAD(s, GS_ETRUNC, "SPDU parameters run past the end");
    switch (s->si) {
    case MMS_SPDU_DT: {
        /* 7.36 / Table 10: GIVE TOKENS (category 0, SI 1) then DATA TRANSFER (SI 1); the
         * user information follows the DT's parameters and runs to the end of the TSDU. */
        size_t li2;
        uint8_t si2;
        if ((rc = params(s, p + off, li, 0)) < 0)
            return rc;
        off += li;
        if (take(p, n, &off, &si2) < 0 || si2 != MMS_SPDU_DT)
            BAD(s, GS_EPROTO, "GIVE TOKENS not followed by DATA TRANSFER");
        if ((rc = read_li(p, n, &off, &li2)) < 0)
            BAD(s, rc, "DT LI runs past the end");
        if (li2 > n - off)
            BAD(s, GS_ETRUNC, "DT parameters run past the end");
        if ((rc = params(s, p + off, li2, 0)) < 0)
            return rc;
        off += li2;
        s->user_data = p + off;
        s->user_len = n - off;
        s->has_user_data = true;
        return 0;
    }
    case MMS_SPDU_CN:
    case MMS_SPDU_AC:
    case MMS_SPDU_RF:
    case MMS_SPDU_FN:
    case MMS_SPDU_DN:
    case MMS_SPDU_AB:
    case MMS_SPDU_AA:
        if (off + li != n)
            BAD(s, GS_EPROTO, "octets after the SPDU"); /* one SPDU per TSDU here */
        return params(s, p + off, li, 0);
    default:
        BAD(s, GS_ENOTSUP, "SPDU type not used by MMS");
    }
}

/* Forward writer that only counts when out is NULL. */
typedef struct {
    uint8_t *out;
    size_t cap, n;
} fw_t;

static void fw_put(fw_t *f, const void *p, size_t n)
{
    if (f->out && f->n + n <= f->cap && n)
        memcpy(f->out + f->n, p, n);
    f->n += n;
}

static void fw_li(fw_t *f, size_t li)
{
    uint8_t b[3];
    if (li < 255) {
        b[0] = (uint8_t)li;
        fw_put(f, b, 1);
    } else {
        b[0] = 0xFF;
        b[1] = (uint8_t)(li >> 8);
        b[2] = (uint8_t)li;
        fw_put(f, b, 3);
    }
}

static size_t li_size(size_t li)
{
    return li < 255 ? 1 : 3;
}

static void fw_param(fw_t *f, uint8_t code, const void *v, size_t len)
{
    fw_put(f, &code, 1);
    fw_li(f, len);
    fw_put(f, v, len);
}

/* Writes the parameters of s (everything inside the SPDU's LI). */
static void write_params(fw_t *f, const mms_spdu_t *s)
{
    uint8_t b[4];
    size_t grp = 0;

    if (s->has_protocol_options)
        grp += 3;
    if (s->has_tsdu_max)
        grp += 6;
    if (s->has_version)
        grp += 3;
    if (grp) { /* PGI 5, connect/accept item */
        uint8_t code = 5;
        fw_put(f, &code, 1);
        fw_li(f, grp);
        if (s->has_protocol_options)
            fw_param(f, 19, &s->protocol_options, 1);
        if (s->has_tsdu_max) {
            b[0] = (uint8_t)(s->tsdu_max >> 24);
            b[1] = (uint8_t)(s->tsdu_max >> 16);
            b[2] = (uint8_t)(s->tsdu_max >> 8);
            b[3] = (uint8_t)s->tsdu_max;
            fw_param(f, 21, b, 4);
        }
        if (s->has_version)
            fw_param(f, 22, &s->version, 1);
    }
    if (s->has_disconnect)
        fw_param(f, 17, &s->disconnect, 1);
    if (s->has_requirements) {
        b[0] = (uint8_t)(s->requirements >> 8);
        b[1] = (uint8_t)s->requirements;
        fw_param(f, 20, b, 2);
    }
    if (s->has_calling_ssel)
        fw_param(f, 51, s->calling_ssel, s->calling_ssel_len);
    if (s->has_called_ssel)
        fw_param(f, 52, s->called_ssel, s->called_ssel_len);
    if (s->has_reason) {
        uint8_t code = 50;
        fw_put(f, &code, 1);
        fw_li(f, 1 + (s->has_user_data ? s->user_len : 0));
        fw_put(f, &s->reason, 1);
        if (s->has_user_data)
            fw_put(f, s->user_data, s->user_len);
    } else if (s->has_user_data) {
        fw_param(f, 193, s->user_data, s->user_len);
    }
}

int mms_spdu_encode(uint8_t *out, size_t cap, const mms_spdu_t *s)
{
    fw_t cnt = {NULL, 0, 0}, f = {out, cap, 0};
    size_t li;

    if (!s || (s->has_user_data && s->user_len && !s->user_data) ||
        s->calling_ssel_len > MMS_SESSION_MAX_SSEL || s->called_ssel_len > MMS_SESSION_MAX_SSEL)
        return GS_EINVAL;
    if (s->si == MMS_SPDU_DT) {
        static const uint8_t gt_dt[4] = {MMS_SPDU_DT, 0, MMS_SPDU_DT, 0};
        size_t n = 4 + (s->has_user_data ? s->user_len : 0);
        if (n > cap || n > (size_t)INT32_MAX)
            return GS_ELIMIT;
        if (s->has_user_data && s->user_len)
            memmove(out + 4, s->user_data, s->user_len); /* user data may sit in place */
        memcpy(out, gt_dt, 4);
        return (int)n;
    }
    write_params(&cnt, s);
    li = cnt.n;
    if (li > 0xFFFF || 1 + li_size(li) + li > cap)
        return GS_ELIMIT;
    fw_put(&f, &s->si, 1);
    fw_li(&f, li);
    write_params(&f, s);
    return (int)f.n;
}
