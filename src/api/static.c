/* The web app's files: GET / (index.html) and GET /app/FILE, from the copy compiled into the
 * binary or, with [web] root = DIR, from that folder (development). Public (the login page must
 * load before anyone is logged in; the files hold no data), after the router's Host check.
 *
 * Every answer carries a strict Content-Security-Policy (no inline script or style, nothing
 * from elsewhere: the app makes no third-party request), and an ETag (BLAKE2b-64 of the bytes)
 * with Cache-Control: no-cache, so browsers revalidate and get 304 while nothing changed.
 */
#include "api/internal.h"

#include "api/assets.h"
#include "core/err.h"
#include "core/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE (4u << 20) /* a file served from [web] root */

static const char CSP[] =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'\r\n"
    "Referrer-Policy: same-origin\r\n";

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".json", "application/json"},
                 {".webmanifest", "application/manifest+json"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* A file name the app may ask for: [A-Za-z0-9._-], not starting with '.', at most 64 bytes. */
static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64 || n[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The file's bytes into b: 0, GS_ENOTFOUND, or GS_EIO (logged). */
static int load(api_t *a, const char *name, buf_t *b)
{
    if (!a->web_root[0]) {
        for (size_t i = 0; i < api__nassets; i++)
            if (strcmp(api__assets[i].name, name) == 0) {
                buf_append(b, api__assets[i].data, *api__assets[i].len);
                return 0;
            }
        return GS_ENOTFOUND;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", a->web_root, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return GS_ENOTFOUND;
    struct stat st;
    int rc = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE) {
        rc = GS_ENOTFOUND;
    } else {
        buf_reserve(b, (size_t)st.st_size);
        size_t n = fread(b->data + b->len, 1, (size_t)st.st_size, f);
        if (n != (size_t)st.st_size) {
            log_warn("web", "cannot read %s", path);
            rc = GS_EIO;
        } else {
            b->len += n;
        }
    }
    fclose(f);
    return rc;
}

int api__static(rq_t *q)
{
    const char *p = q->req->path;
    const char *name = NULL;
    if (strcmp(p, "/") == 0 || strcmp(p, "/index.html") == 0)
        name = "index.html";
    else if (strncmp(p, "/app/", 5) == 0)
        name = p + 5;
    else
        return 0;
    if (strcmp(q->req->method, "GET") != 0) {
        api__error(q->resp, 405, "method_not_allowed", "use GET");
        buf_puts(&q->resp->headers, "Allow: GET\r\n");
        return 1;
    }
    buf_t body = {0};
    int rc = name_ok(name) ? load(q->a, name, &body) : GS_ENOTFOUND;
    if (rc < 0) {
        buf_free(&body);
        api__error(q->resp, rc == GS_ENOTFOUND ? 404 : 500, rc == GS_ENOTFOUND ? "not_found"
                                                                               : "internal",
                   rc == GS_ENOTFOUND ? "no such file" : "the file cannot be read");
        return 1;
    }
    uint8_t h[8];
    char etag[2 * sizeof h + 3];
    crypto_generichash(h, sizeof h, (const unsigned char *)body.data, body.len, NULL, 0);
    etag[0] = '"';
    hex_encode(h, sizeof h, etag + 1);
    strcat(etag, "\"");
    buf_puts(&q->resp->headers, CSP);
    buf_printf(&q->resp->headers, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const char *inm = q->req->if_none_match;
    if (inm && strstr(inm, etag)) {
        buf_free(&body);
        buf_reset(&q->resp->body);
        q->resp->status = 304;
        q->resp->content_type = content_type(name);
        return 1;
    }
    buf_free(&q->resp->body);
    q->resp->body = body;
    q->resp->status = 200;
    q->resp->content_type = content_type(name);
    return 1;
}
