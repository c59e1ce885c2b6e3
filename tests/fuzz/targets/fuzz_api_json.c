/* libFuzzer target for the API's input decoders (src/api/util.c): the JSON body parser
 * api__body_object, the query parameter decoder api__qparam and the time parser api_parse_time.
 *
 * Input: byte 0 chooses the Content-Type sent with the body (bit 0..1: application/json,
 * "application/json; charset=utf-8", text/plain, none) and bits 2..7 the capacity given to
 * api__qparam (1..64); the rest is used three ways, each on its own exact-size copy:
 *   1. as a request body: api__body_object returns an object, or NULL with a 400/415 answer in
 *      the error shape {"error":{"code","message"}} that parses as JSON;
 *   2. as a query string: api__qparam for a few names returns 1 (value NUL-terminated, shorter
 *      than the capacity, no NUL decoded), 0, or GS_ERANGE, and never reads past the string;
 *   3. as a time (up to the first NUL): api_parse_time returns 0 or GS_EINVAL; a time it
 *      accepts between 1970 and 2199, formatted back (RFC 3339, ms), parses to the same ms. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_api_json: %s\n", what);                                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_error_shape(const web_response_t *r)
{
    json_error_t je;
    json_t *root = json_loadb(r->body.data, r->body.len, 0, &je);
    CHECK(root, "error answer is not JSON");
    json_t *e = json_object_get(root, "error");
    CHECK(json_is_object(e) && json_is_string(json_object_get(e, "code")) &&
              json_is_string(json_object_get(e, "message")),
          "error answer without the error shape");
    json_decref(root);
}

static void body_case(const uint8_t *p, size_t n, int ct)
{
    static const char *const types[] = {"application/json", "application/json; charset=utf-8",
                                        "text/plain", NULL};
    uint8_t *body = n ? malloc(n) : NULL;
    if (n) {
        CHECK(body, "out of memory");
        memcpy(body, p, n);
    }
    web_request_t req;
    web_response_t resp;
    rq_t q;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    memset(&q, 0, sizeof q);
    req.method = "POST";
    req.path = "/api/v1/users";
    req.query = "";
    req.body = body;
    req.body_len = n;
    req.content_type = types[ct & 3];
    q.req = &req;
    q.resp = &resp;
    json_t *root = api__body_object(&q);
    if (root) {
        CHECK(json_is_object(root), "api__body_object returned a non-object");
        CHECK(resp.status == 0 && resp.body.len == 0, "an answer with an accepted body");
        CHECK(types[ct & 3] && (ct & 3) < 2, "a body accepted without a JSON content type");
        json_decref(root);
    } else {
        CHECK(resp.status == 400 || resp.status == 415, "refused body: status not 400/415");
        check_error_shape(&resp);
    }
    buf_free(&resp.body);
    buf_free(&resp.headers);
    free(body);
}

static void query_case(const uint8_t *p, size_t n, size_t cap)
{
    static const char *const names[] = {"limit", "from", "to", "user", "a", ""};
    char *query = malloc(n + 1);
    CHECK(query, "out of memory");
    memcpy(query, p, n);
    query[n] = 0; /* the decoder sees up to the first NUL, as from web.c */
    char *out = malloc(cap);
    CHECK(out, "out of memory");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = api__qparam(query, names[i], out, cap);
        CHECK(rc == 0 || rc == 1 || rc == GS_ERANGE, "api__qparam: unexpected return");
        if (rc == 1) {
            size_t len = strnlen(out, cap);
            CHECK(len < cap, "api__qparam: value not terminated within the capacity");
        }
    }
    free(out);
    free(query);
}

static void time_case(const uint8_t *p, size_t n)
{
    char *text = malloc(n + 1);
    CHECK(text, "out of memory");
    memcpy(text, p, n);
    text[n] = 0;
    int64_t ns = 0;
    int rc = api_parse_time(text, &ns);
    CHECK(rc == 0 || rc == GS_EINVAL, "api_parse_time: unexpected return");
    /* 1970-01-01 .. 2199-12-31: what the RFC 3339 form accepts; integers may be anything */
    if (rc == 0 && ns > 0 && ns < 7258118400LL * 1000000000LL) {
        char t[64];
        int64_t back = -1;
        time_fmt_utc(ns, t, sizeof t);
        CHECK(api_parse_time(t, &back) == 0, "api_parse_time refuses what time_fmt_utc wrote");
        CHECK(back == ns - ns % 1000000, "api_parse_time(time_fmt_utc(t)) is not t (to the ms)");
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int ct = data[0] & 3;
    size_t cap = (size_t)(data[0] >> 2) + 1;
    body_case(data + 1, size - 1, ct);
    query_case(data + 1, size - 1, cap);
    time_case(data + 1, size - 1);
    return 0;
}
