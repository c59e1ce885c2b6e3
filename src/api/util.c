/* api helpers: the one error shape, query parameters, times, JSON bodies. */
#include "api/internal.h"

#include "core/err.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int api__error(web_response_t *r, int status, const char *code, const char *msg)
{
    r->status = status;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_printf(&r->body, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    buf_json_str(&r->body, msg, (size_t)-1);
    buf_puts(&r->body, "}}");
    return 0;
}

void api__reply_error(web_pending_t *p, int status, const char *code, const char *msg)
{
    web_response_t r;
    memset(&r, 0, sizeof r);
    api__error(&r, status, code, msg);
    web_complete(p, r.status, r.content_type, &r.body);
    buf_free(&r.body);
}

int api__qparam(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t o = 0;
            for (size_t i = nl + 1; i < len; i++) {
                char c;
                if (p[i] == '%' && i + 2 < len && isxdigit((unsigned char)p[i + 1]) &&
                    isxdigit((unsigned char)p[i + 2])) {
                    char hx[3] = {p[i + 1], p[i + 2], 0};
                    c = (char)strtol(hx, NULL, 16);
                    i += 2;
                } else {
                    c = p[i] == '+' ? ' ' : p[i];
                }
                if (c == 0 || o + 1 >= cap)
                    return GS_ERANGE;
                out[o++] = c;
            }
            out[o] = 0;
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

int api_parse_time(const char *v, int64_t *out)
{
    if (parse_i64(v, INT64_MIN, INT64_MAX, out) == 0)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    /* Years 1970..2199 (what gridsense stores; ns since 1970 fit an int64 with room to spare). */
    if (sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19 || tm.tm_year < 1970 || tm.tm_year > 2199 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return GS_EINVAL;
    int year = tm.tm_year, mon = tm.tm_mon, mday = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *e = v + used;
    int64_t frac = 0, scale = 1000000000;
    if (*e == '.') {
        e++;
        if (!isdigit((unsigned char)*e))
            return GS_EINVAL;
        while (isdigit((unsigned char)*e)) {
            if (scale > 1) {
                scale /= 10;
                frac += (*e - '0') * scale;
            }
            e++;
        }
    }
    if (*e == 'Z')
        e++;
    if (*e)
        return GS_EINVAL;
    time_t secs = timegm(&tm);
    struct tm back;
    if (secs == (time_t)-1 || !gmtime_r(&secs, &back) || back.tm_year + 1900 != year ||
        back.tm_mon + 1 != mon || back.tm_mday != mday)
        return GS_EINVAL; /* e.g. 2026-02-30 */
    *out = (int64_t)secs * 1000000000LL + frac;
    return 0;
}

void api__ts_json(buf_t *b, const char *name, int64_t ns)
{
    char t[40];
    if (ns)
        buf_printf(b, ",\"%s\":\"%s\"", name, time_fmt_utc(ns, t, sizeof t));
    else
        buf_printf(b, ",\"%s\":null", name);
}

int api__is_json(const web_request_t *req)
{
    const char *ct = req->content_type;
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

json_t *api__body_object(rq_t *q)
{
    /* Only JSON bodies: a form or text/plain POST is what a cross-site page can send without a
     * CORS preflight, so refusing it is a second wall behind the Origin check. */
    if (!api__is_json(q->req)) {
        api__error(q->resp, 415, "unsupported_media_type",
                   "the body must be JSON, sent with Content-Type: application/json");
        return NULL;
    }
    if (!q->req->body || q->req->body_len == 0) {
        api__error(q->resp, 400, "bad_request", "empty body: expected a JSON object");
        return NULL;
    }
    json_error_t je;
    /* JSON_REJECT_DUPLICATES: {"role":"viewer","role":"admin"} must not mean what a reviewer
     * reading it does not see. jansson checks UTF-8 and limits nesting depth (2048). */
    json_t *root = json_loadb((const char *)q->req->body, q->req->body_len, JSON_REJECT_DUPLICATES,
                              &je);
    if (!root || !json_is_object(root)) {
        char msg[256];
        snprintf(msg, sizeof msg, "body must be a JSON object: %s",
                 root ? "not an object" : je.text);
        json_decref(root);
        api__error(q->resp, 400, "bad_request", msg);
        return NULL;
    }
    return root;
}
