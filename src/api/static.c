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
#include <zlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE (4u << 20) /* a file served from [web] root */

/* The policy of every page: nothing but this server, except map tiles from the [web] tiles
 * origin when one is set (img-src). */
static void csp(rq_t *q)
{
    buf_printf(&q->resp->headers,
               "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data:%s%s; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'; form-action 'self'; manifest-src 'self'; "
               "worker-src 'self'\r\nReferrer-Policy: same-origin\r\n",
               q->a->web_tiles_origin[0] ? " " : "", q->a->web_tiles_origin);
}

/* gzip copy of one compiled-in file and the ETags of both forms (made once, on first use) */
struct api_gz {
    int made;  /* 1: fields below are set */
    int gz_ok; /* 1: gz holds a smaller gzip copy */
    buf_t gz;
    char etag[24];    /* "<16 hex>" of the bytes */
    char etag_gz[28]; /* "<16 hex>-gz" */
};

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

/* Text worth compressing (images here are SVG or already compressed PNG). */
static int compressible(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strstr(type, "json") || strstr(type, "svg");
}

/* gzip (RFC 1952) of data into out: 0, or GS_ENOMEM. */
static int gzip(const char *data, size_t len, buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return GS_ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len);
    buf_reserve(out, cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    if (rc == Z_STREAM_END)
        out->len += z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : GS_ENOMEM;
}

/* Whether Accept-Encoding allows gzip (RFC 9110 12.5.3: a token, optionally with a weight;
 * "gzip;q=0" refuses it; "*" accepts it unless gzip is named). */
static int accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    int star = 0;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - tok);
        double qv = 1.0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ';') {
            const char *qs = strstr(p, "q=");
            const char *end = strchr(p, ',');
            if (qs && (!end || qs < end))
                qv = strtod(qs + 2, NULL);
        }
        while (*p && *p != ',')
            p++;
        if (n == 4 && strncasecmp(tok, "gzip", 4) == 0)
            return qv > 0;
        if (n == 1 && *tok == '*')
            star = qv > 0;
    }
    return star;
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

/* The compiled-in file `name`: its index in api__assets, or -1. */
static long asset(const char *name)
{
    for (size_t i = 0; i < api__nassets; i++)
        if (strcmp(api__assets[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* The file's bytes from the [web] root folder into b: 0, GS_ENOTFOUND, or GS_EIO (logged). */
static int load(api_t *a, const char *name, buf_t *b)
{
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

/* ETag of bytes: "<16 hex>" (BLAKE2b-64), with suffix for another representation. */
static void etag_of(const void *data, size_t len, const char *suffix, char *out, size_t cap)
{
    uint8_t h[8];
    char hex[2 * sizeof h + 1];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    hex_encode(h, sizeof h, hex);
    snprintf(out, cap, "\"%s%s\"", hex, suffix);
}

/* GET /app/settings.json: what the app needs to know of the server's [web] settings (public,
 * like the files: the tile URL and its credit line are no secret). */
static int settings(rq_t *q)
{
    buf_t *b = &q->resp->body;
    buf_reset(b);
    buf_puts(b, "{\"tiles\":");
    if (q->a->web_tiles[0])
        buf_json_str(b, q->a->web_tiles, (size_t)-1);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"tiles_attribution\":");
    if (q->a->web_tiles_attr[0])
        buf_json_str(b, q->a->web_tiles_attr, (size_t)-1);
    else
        buf_puts(b, "null");
    buf_puts(b, "}");
    csp(q);
    buf_puts(&q->resp->headers, "Cache-Control: no-cache\r\n");
    q->resp->status = 200;
    q->resp->content_type = "application/json";
    return 1;
}

int api__static(rq_t *q)
{
    const char *p = q->req->path;
    const char *name = NULL;
    if (strcmp(p, "/") == 0 || strcmp(p, "/index.html") == 0)
        name = "index.html";
    else if (strcmp(p, "/sw.js") == 0) /* the service worker: at the root for scope "/" */
        name = "sw.js";
    else if (strcmp(p, "/manifest.webmanifest") == 0)
        name = "manifest.webmanifest";
    else if (strncmp(p, "/app/", 5) == 0)
        name = p + 5;
    else
        return 0;
    if (strcmp(q->req->method, "GET") != 0) {
        api__error(q->resp, 405, "method_not_allowed", "use GET");
        buf_puts(&q->resp->headers, "Allow: GET\r\n");
        return 1;
    }
    if (strcmp(name, "settings.json") == 0)
        return settings(q);
    const char *type = content_type(name);
    int gz_wanted = compressible(type) && accepts_gzip(q->req->accept_encoding);
    /* The bytes to send (borrowed from the compiled-in table or owned in `own`), their ETag. */
    buf_t own = {0};
    const char *data = NULL;
    size_t len = 0;
    char etag[32];
    int gz = 0;
    int rc = name_ok(name) ? 0 : GS_ENOTFOUND;
    int from_root = 0;
    if (rc == 0 && q->a->web_root[0]) {
        rc = load(q->a, name, &own);
        from_root = rc == 0;
        if (rc == GS_ENOTFOUND)
            rc = 0; /* not in the folder (the npm files are not): the compiled-in copy */
    }
    if (rc == 0 && from_root) {
        /* development: read and compressed on every request */
        etag_of(own.data, own.len, "", etag, sizeof etag);
        if (gz_wanted) {
            buf_t z = {0};
            if (gzip(own.data, own.len, &z) == 0 && z.len < own.len) {
                buf_free(&own);
                own = z;
                gz = 1;
                etag_of(own.data, own.len, "-gz", etag, sizeof etag);
            } else {
                buf_free(&z);
            }
        }
        data = own.data;
        len = own.len;
    } else if (rc == 0) {
        long i = asset(name);
        rc = i < 0 ? GS_ENOTFOUND : 0;
        if (rc == 0) {
            if (!q->a->gz)
                q->a->gz = calloc(api__nassets ? api__nassets : 1, sizeof *q->a->gz);
            struct api_gz *c = q->a->gz ? &q->a->gz[i] : NULL;
            const api_asset_t *f = &api__assets[i];
            if (c && !c->made) {
                etag_of(f->data, *f->len, "", c->etag, sizeof c->etag);
                if (compressible(type) && gzip((const char *)f->data, *f->len, &c->gz) == 0 &&
                    c->gz.len < *f->len) {
                    c->gz_ok = 1;
                    etag_of(c->gz.data, c->gz.len, "-gz", c->etag_gz, sizeof c->etag_gz);
                }
                c->made = 1;
            }
            if (c && gz_wanted && c->gz_ok) {
                data = c->gz.data;
                len = c->gz.len;
                gz = 1;
                snprintf(etag, sizeof etag, "%s", c->etag_gz);
            } else {
                data = (const char *)f->data;
                len = *f->len;
                if (c)
                    snprintf(etag, sizeof etag, "%s", c->etag);
                else
                    etag_of(data, len, "", etag, sizeof etag);
            }
        }
    }
    if (rc < 0) {
        buf_free(&own);
        api__error(q->resp, rc == GS_ENOTFOUND ? 404 : 500,
                   rc == GS_ENOTFOUND ? "not_found" : "internal",
                   rc == GS_ENOTFOUND ? "no such file" : "the file cannot be read");
        return 1;
    }
    csp(q);
    buf_printf(&q->resp->headers, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    if (compressible(type))
        buf_puts(&q->resp->headers, "Vary: Accept-Encoding\r\n");
    if (strcmp(name, "sw.js") == 0) /* a new worker is checked for on every page load */
        buf_puts(&q->resp->headers, "Service-Worker-Allowed: /\r\n");
    q->resp->content_type = type;
    const char *inm = q->req->if_none_match;
    if (inm && strstr(inm, etag)) {
        buf_free(&own);
        buf_reset(&q->resp->body);
        q->resp->status = 304;
        return 1;
    }
    if (gz)
        buf_puts(&q->resp->headers, "Content-Encoding: gzip\r\n");
    buf_reset(&q->resp->body);
    buf_append(&q->resp->body, data, len);
    buf_free(&own);
    q->resp->status = 200;
    return 1;
}

/* Frees the gzip copies (api_free). */
void api__static_free(api_t *a)
{
    if (!a->gz)
        return;
    for (size_t i = 0; i < api__nassets; i++)
        buf_free(&a->gz[i].gz);
    free(a->gz);
    a->gz = NULL;
}

/* Checks and copies the [web] tiles settings into a (api_new). The URL must be http(s) with
 * {z}, {x} and {y}; its origin goes into the pages' img-src (with a "{s}." subdomain as "*.").
 * Returns 0 or GS_ECONFIG with the reason in err. */
int api__static_init(api_t *a, const char *tiles, const char *attribution, char *err, size_t errlen)
{
    a->web_tiles[0] = a->web_tiles_origin[0] = a->web_tiles_attr[0] = 0;
    if (attribution && strlen(attribution) < sizeof a->web_tiles_attr)
        snprintf(a->web_tiles_attr, sizeof a->web_tiles_attr, "%s", attribution);
    else if (attribution) {
        snprintf(err, errlen, "web.tiles_attribution: longer than %zu bytes",
                 sizeof a->web_tiles_attr - 1);
        return GS_ECONFIG;
    }
    if (!tiles || !tiles[0])
        return 0;
    size_t n = strlen(tiles);
    const char *host = NULL;
    if (strncmp(tiles, "https://", 8) == 0)
        host = tiles + 8;
    else if (strncmp(tiles, "http://", 7) == 0)
        host = tiles + 7;
    int chars_ok = n < sizeof a->web_tiles;
    for (size_t i = 0; i < n && chars_ok; i++) {
        unsigned char c = (unsigned char)tiles[i];
        /* URL characters only: no space, quote, backslash or control (it goes into a header) */
        chars_ok = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' &&
                   c != ';' && c != '\'';
    }
    if (!host || !chars_ok || !strstr(tiles, "{z}") || !strstr(tiles, "{x}") ||
        !strstr(tiles, "{y}")) {
        snprintf(err, errlen,
                 "web.tiles must be an http(s) URL template with {z}, {x} and {y} (e.g. "
                 "https://tiles.example.net/{z}/{x}/{y}.png), at most %zu bytes, got '%s'",
                 sizeof a->web_tiles - 1, tiles);
        return GS_ECONFIG;
    }
    size_t hl = strcspn(host, "/?#");
    if (hl == 0 || hl > 250) {
        snprintf(err, errlen, "web.tiles: no host in '%s'", tiles);
        return GS_ECONFIG;
    }
    snprintf(a->web_tiles, sizeof a->web_tiles, "%s", tiles);
    const char *h = host;
    int sub = strncmp(h, "{s}.", 4) == 0;
    snprintf(a->web_tiles_origin, sizeof a->web_tiles_origin, "%.*s%s%.*s", (int)(host - tiles),
             tiles, sub ? "*." : "", (int)(hl - (sub ? 4 : 0)), h + (sub ? 4 : 0));
    if (strchr(a->web_tiles_origin, '{')) {
        snprintf(err, errlen,
                 "web.tiles: only a leading {s}. may be a placeholder in the host, "
                 "got '%s'",
                 tiles);
        a->web_tiles[0] = a->web_tiles_origin[0] = 0;
        return GS_ECONFIG;
    }
    return 0;
}
