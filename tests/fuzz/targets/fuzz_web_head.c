/* libFuzzer target for the HTTP front's request head check (src/web/admit.c: head_check and what
 * it calls: check_request_line, head_rewrite), the first code that reads the bytes of every HTTP
 * connection. head_check is static and a pure function of the bytes, so this file includes
 * admit.c (as h2o's tests do) and calls it directly, without sockets.
 *
 * Input: the bytes a client sent (the first WEB_MAX_HEAD + 1 of them, as hconn_process peeks).
 * Properties (abort on violation):
 *   - "need more" (0) only while fewer than WEB_MAX_HEAD + 1 bytes are there;
 *   - a verdict without a status has the end of the head within the bytes and the head limit;
 *     a rewritten head (lines dropped) is no longer than the original, ends with CRLF CRLF,
 *     starts with the same request line and has no bare CR or LF;
 *   - a verdict does not change when more bytes arrive after the head (or after the point of
 *     refusal): every prefix that gets a verdict gets the same one as the whole input. */
#include "../../../src/web/admit.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_web_head: %s\n", what);                                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_verdict(const char *p, size_t n, const verdict_t *v)
{
    if (v->status) {
        CHECK(v->status >= 400 && v->status <= 499, "refusal status not 4xx");
        CHECK(v->why && v->why[0], "refusal without a reason");
        return;
    }
    CHECK(v->hlen >= 4 && v->hlen <= n && v->hlen <= WEB_MAX_HEAD, "head end out of range");
    CHECK(memcmp(p + v->hlen - 4, "\r\n\r\n", 4) == 0, "head does not end with CRLF CRLF");
    if (!v->dropped)
        return;
    const char *o = v->out.data;
    size_t m = v->out.len;
    CHECK(o && m >= 4 && m <= v->hlen, "rewritten head empty or longer than the original");
    CHECK(memcmp(o + m - 4, "\r\n\r\n", 4) == 0, "rewritten head does not end with CRLF CRLF");
    for (size_t i = 0; i < m; i++) {
        if (o[i] == '\n')
            CHECK(i > 0 && o[i - 1] == '\r', "bare LF in the rewritten head");
        if (o[i] == '\r')
            CHECK(i + 1 < m && o[i + 1] == '\n', "bare CR in the rewritten head");
    }
    const char *eol = memchr(p, '\n', v->hlen);
    size_t skip = (p[0] == '\r') ? 2 : 0; /* one empty line before the request line is allowed */
    CHECK(eol && m >= (size_t)(eol - p) + 1 - skip &&
              memcmp(o, p + skip, (size_t)(eol - p) + 1 - skip) == 0,
          "rewritten head does not start with the request line");
}

static int same(const verdict_t *a, const verdict_t *b)
{
    return a->status == b->status && a->hlen == b->hlen && a->dropped == b->dropped &&
           a->out.len == b->out.len &&
           (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        log_set_level(LOG_ERROR); /* dropped lines are logged at info/warn (limited) */
        init = 1;
    }
    size_t n = size < WEB_MAX_HEAD + 1 ? size : WEB_MAX_HEAD + 1;
    /* exact-size copies, so a read past the peeked bytes is caught under ASan */
    char *p = malloc(n ? n : 1);
    CHECK(p, "out of memory");
    memcpy(p, data, n);
    verdict_t whole;
    int r = head_check(p, n, "fuzz", &whole);
    CHECK(r == 0 || r == 1, "head_check returned neither 0 nor 1");
    if (r == 0) {
        CHECK(n < WEB_MAX_HEAD + 1, "need more with the whole head limit there");
        buf_free(&whole.out);
        free(p);
        return 0;
    }
    check_verdict(p, n, &whole);
    /* A few prefixes: each either needs more or has the whole input's verdict, once it holds
     * the head (or, for a refusal, as it is not a question of more bytes). */
    size_t cuts[4] = {whole.hlen, whole.hlen + 1, n / 2, n > 0 ? n - 1 : 0};
    for (int c = 0; c < 4; c++) {
        size_t k = cuts[c];
        if (k == 0 || k > n)
            continue;
        char *q = malloc(k);
        CHECK(q, "out of memory");
        memcpy(q, p, k);
        verdict_t part;
        int pr = head_check(q, k, "fuzz", &part);
        if (pr == 1 && !whole.status && k >= whole.hlen)
            CHECK(same(&part, &whole), "verdict changed by bytes after the head");
        if (pr == 1 && !whole.status && k < whole.hlen)
            CHECK(part.status != 0, "a prefix of the head accepted as a whole head");
        buf_free(&part.out);
        free(q);
    }
    buf_free(&whole.out);
    free(p);
    return 0;
}
