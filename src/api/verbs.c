/* Command verbs: names, key=value arguments to GSTP TLV, TLV to JSON. */
#include "api/api.h"

#include "core/err.h"
#include "gstp/gstp.h"

#include <stdio.h>
#include <string.h>

static const struct {
    int verb;
    const char *name;
} verbs[] = {
    {GSTP_VERB_GET_STATUS, "get-status"},
    {GSTP_VERB_CAPTURE, "capture"},
    {GSTP_VERB_STREAM_START, "stream-start"},
    {GSTP_VERB_STREAM_STOP, "stream-stop"},
    {GSTP_VERB_SET_CONFIG, "set-config"},
    {GSTP_VERB_TIME_SYNC, "time-sync"},
    {GSTP_VERB_REBOOT, "reboot"},
};

/* Argument keys: name, TLV tag, width (1, 2, 4 or 8 bytes; 0 = on/off), range, verbs allowed. */
static const struct {
    const char *key;
    uint8_t tag;
    int width;
    int64_t min, max;
    int verb;
    double scale; /* user value * scale = wire value */
} keys[] = {
    {"cycles", GSTP_AT_CYCLES, 2, 1, 3000, GSTP_VERB_CAPTURE, 1},
    {"pretrigger", GSTP_AT_PRETRIGGER, 2, 0, 3000, GSTP_VERB_CAPTURE, 1},
    {"report_interval", GSTP_AT_REPORT_INTERVAL, 4, 1, 86400, GSTP_VERB_SET_CONFIG, 1},
    {"stream", GSTP_AT_STREAM, 0, 0, 1, GSTP_VERB_SET_CONFIG, 1},
    {"dip", GSTP_AT_DIP_PERMILLE, 2, 1, 1000, GSTP_VERB_SET_CONFIG, 10},
    {"swell", GSTP_AT_SWELL_PERMILLE, 2, 1000, 2000, GSTP_VERB_SET_CONFIG, 10},
};

/* True if text is digits, optionally with one decimal point followed by digits when frac is
 * allowed: no signs, exponents, hex or spaces (strtod would take all of those). */
static int plain_decimal(const char *text, int frac)
{
    int digits = 0, dot = 0;
    for (const char *p = text; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && frac && !dot && digits)
            dot = 1;
        else
            return 0;
    }
    return digits > 0 && text[strlen(text) - 1] != '.';
}

int api_verb_parse(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return verbs[i].verb;
    return GS_EINVAL;
}

const char *api_verb_name(int verb)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].verb == verb)
            return verbs[i].name;
    return "unknown";
}

int api_verb_args(int verb, int n, const char *const *kv, uint8_t *out, size_t cap, size_t *len,
                      char *err, size_t errlen)
{
    gstp_tlv_writer_t w;
    gstp_tlv_writer_init(&w, out, cap);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq) {
            snprintf(err, errlen, "argument '%s' is not key=value", kv[i]);
            return GS_EINVAL;
        }
        char key[32];
        size_t kl = (size_t)(eq - kv[i]);
        if (kl >= sizeof key) {
            snprintf(err, errlen, "unknown argument '%.*s'", (int)kl, kv[i]);
            return GS_EINVAL;
        }
        memcpy(key, kv[i], kl);
        key[kl] = 0;
        const char *val = eq + 1;
        size_t k;
        for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (strcmp(keys[k].key, key) == 0 && keys[k].verb == verb)
                break;
        if (k == sizeof keys / sizeof keys[0]) {
            snprintf(err, errlen, "verb %s takes no argument '%s'", api_verb_name(verb), key);
            return GS_EINVAL;
        }
        int64_t v;
        if (keys[k].width == 0) {
            if (strcmp(val, "on") == 0 || strcmp(val, "1") == 0 || strcmp(val, "true") == 0)
                v = 1;
            else if (strcmp(val, "off") == 0 || strcmp(val, "0") == 0 || strcmp(val, "false") == 0)
                v = 0;
            else {
                snprintf(err, errlen, "%s must be on or off", key);
                return GS_EINVAL;
            }
            gstp_tlv_put_u8(&w, keys[k].tag, (uint8_t)v);
            continue;
        }
        double d;
        double lo = (double)keys[k].min / keys[k].scale, hi = (double)keys[k].max / keys[k].scale;
        if (!plain_decimal(val, keys[k].scale != 1) || parse_double(val, lo, hi, &d) < 0) {
            snprintf(err, errlen, "%s must be a number in %g..%g", key, lo, hi);
            return GS_EINVAL;
        }
        v = (int64_t)(d * keys[k].scale + 0.5);
        if (keys[k].width == 2)
            gstp_tlv_put_u16(&w, keys[k].tag, (uint16_t)v);
        else
            gstp_tlv_put_u32(&w, keys[k].tag, (uint32_t)v);
    }
    if (w.err != GSTP_OK) {
        snprintf(err, errlen, "too many arguments");
        return GS_EINVAL;
    }
    *len = w.len;
    return 0;
}

void api_verb_tlv_json(buf_t *b, const uint8_t *tlv, size_t n)
{
    gstp_tlv_iter_t it;
    gstp_tlv_t t;
    int first = 1;
    buf_puts(b, "{");
    gstp_tlv_iter_init(&it, tlv, n);
    while (gstp_tlv_next(&it, &t) == 1) {
        const char *name = NULL;
        int64_t iv = 0;
        int is_int = 1, is_str = 0, is_bool = 0;
        double scale = 1; /* wire value / scale = the public value (as `command send` takes it) */
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        switch (t.tag) {
        case GSTP_AT_CYCLES:
            name = "cycles";
            break;
        case GSTP_AT_PRETRIGGER:
            name = "pretrigger";
            break;
        case GSTP_AT_REPORT_INTERVAL:
            name = "report_interval";
            break;
        case GSTP_AT_STREAM:
            name = "stream";
            is_bool = 1;
            break;
        case GSTP_AT_DIP_PERMILLE:
            name = "dip"; /* percent of nominal, as posted */
            scale = 10;
            break;
        case GSTP_AT_SWELL_PERMILLE:
            name = "swell";
            scale = 10;
            break;
        case GSTP_AT_SERVER_TIME:
            name = "server_time_ns";
            break;
        case GSTP_AT_TERM_RX_TIME:
            name = "terminal_rx_time_ns";
            break;
        case GSTP_AT_TERM_TX_TIME:
            name = "terminal_tx_time_ns";
            break;
        case GSTP_AT_MESSAGE:
            name = "message";
            is_str = 1;
            break;
        case GSTP_AT_BLOCK_SEQ:
            name = "block_seq";
            break;
        case 100:
            name = "clock_offset_ns";
            break;
        case 101:
            name = "round_trip_ns";
            break;
        default:
            is_int = 0;
            break;
        }
        if (!name)
            continue;
        if (is_str) {
            buf_printf(b, "%s\"%s\":", first ? "" : ",", name);
            buf_json_str(b, (const char *)t.value, t.len);
            first = 0;
            continue;
        }
        if (!is_int)
            continue;
        if (gstp_tlv_u8(&t, &u8) == 0)
            iv = u8;
        else if (gstp_tlv_u16(&t, &u16) == 0)
            iv = u16;
        else if (gstp_tlv_u32(&t, &u32) == 0)
            iv = u32;
        else if (gstp_tlv_u64(&t, &u64) == 0)
            iv = (int64_t)u64;
        else
            continue;
        if (is_bool)
            buf_printf(b, "%s\"%s\":%s", first ? "" : ",", name, iv ? "true" : "false");
        else if (scale != 1)
            buf_printf(b, "%s\"%s\":%g", first ? "" : ",", name, (double)iv / scale);
        else
            buf_printf(b, "%s\"%s\":%lld", first ? "" : ",", name, (long long)iv);
        first = 0;
    }
    buf_puts(b, "}");
}

void api_command_json(buf_t *b, const store_command_t *c)
{
    char t1[40], t2[40], t3[40];
    buf_printf(b, "{\"id\":%lld,\"terminal\":", (long long)c->id);
    buf_json_str(b, c->terminal_id, (size_t)-1);
    buf_printf(b, ",\"verb\":\"%s\",\"args\":", api_verb_name(c->verb));
    api_verb_tlv_json(b, c->args, c->args_len);
    buf_printf(b, ",\"state\":\"%s\",\"created\":\"%s\",\"updated\":\"%s\",\"expires\":\"%s\"",
               store_cmd_state_name(c->state) ? store_cmd_state_name(c->state) : "?",
               time_fmt_utc(c->created_ns, t1, sizeof t1),
               time_fmt_utc(c->updated_ns, t2, sizeof t2),
               time_fmt_utc(c->expires_ns, t3, sizeof t3));
    if (c->result_status >= 0) {
        buf_printf(b, ",\"result_status\":%d,\"result\":", c->result_status);
        api_verb_tlv_json(b, c->result, c->result_len);
    }
    buf_puts(b, "}");
}
