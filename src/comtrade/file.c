/* COMTRADE files: the .cff container (C37.111-2013 clause 9), opening a .cfg/.dat pair or a
 * .cff from disk, and writing records atomically (temporary file + rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comtrade/internal.h"
#include "core/err.h"
#include "core/util.h"

#define PATH_CAP 4096

enum { SEC_CFG, SEC_INF, SEC_HDR, SEC_DAT, SEC_OTHER, NSEC };

typedef struct {
    int type;      /* SEC_* */
    int binary;    /* DAT: binary data */
    int has_count; /* DAT: ": <nbytes>" given */
    uint64_t count;
} header_t;

static span_t trim(span_t s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.n--;
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '\r'))
        s.n--;
    return s;
}

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static span_t take_word(span_t *s)
{
    span_t w = {s->p, 0};

    while (w.n < s->n && is_alnum(s->p[w.n]))
        w.n++;
    s->p += w.n;
    s->n -= w.n;
    *s = trim(*s);
    return w;
}

static int word_is(span_t w, const char *name)
{
    return w.n == strlen(name) && strncasecmp(w.p, name, w.n) == 0;
}

/* Section header "--- file type: CFG ---", "--- file type: DAT BINARY: 1234 ---" (case
 * insensitive, blanks tolerated). Returns 1 if line is one, 0 if it is ordinary text, -1 if it
 * starts like a header ("--- file type") but is malformed. */
static int header_of(span_t line, header_t *h)
{
    span_t s = trim(line), w1, w2;

    memset(h, 0, sizeof *h);
    if (s.n < 3 || memcmp(s.p, "---", 3) != 0)
        return 0;
    s.p += 3;
    s.n -= 3;
    s = trim(s);
    if (s.n < 9 || strncasecmp(s.p, "file type", 9) != 0)
        return 0;
    s.p += 9;
    s.n -= 9;
    s = trim(s);
    if (s.n < 3 || memcmp(s.p + s.n - 3, "---", 3) != 0)
        return -1;
    s.n -= 3;
    s = trim(s);
    if (s.n == 0 || s.p[0] != ':')
        return -1;
    s.p++;
    s.n--;
    s = trim(s);
    w1 = take_word(&s);
    w2 = take_word(&s);
    if (s.n > 0 && s.p[0] == ':') {
        s.p++;
        s.n--;
        s = trim(s);
        if (s.n == 0 || s.n > 18)
            return -1;
        for (size_t i = 0; i < s.n; i++) {
            if (s.p[i] < '0' || s.p[i] > '9')
                return -1;
            h->count = h->count * 10 + (uint64_t)(s.p[i] - '0');
        }
        h->has_count = 1;
        s.n = 0;
    }
    if (s.n != 0 || w1.n == 0)
        return -1;
    h->type = word_is(w1, "CFG")   ? SEC_CFG
              : word_is(w1, "INF") ? SEC_INF
              : word_is(w1, "HDR") ? SEC_HDR
              : word_is(w1, "DAT") ? SEC_DAT
                                   : SEC_OTHER;
    if (h->type == SEC_DAT) {
        if (word_is(w2, "ASCII"))
            h->binary = 0;
        else if (word_is(w2, "BINARY") || word_is(w2, "BINARY32") || word_is(w2, "FLOAT32"))
            h->binary = 1;
        else
            return -1;
    }
    return 1;
}

/* Prefixes the message in err with "prefix: ". */
static void err_prefix(char *err, size_t errlen, const char *prefix)
{
    char tmp[512];

    if (!err || errlen == 0)
        return;
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errlen, "%s: %s", prefix, tmp);
}

static char *dup_text(const char *p, size_t n)
{
    char *s = xmalloc(n + 1);

    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int comtrade_cff_parse(const uint8_t *data, size_t len, comtrade_rec_t **out, char *err,
                       size_t errlen)
{
    struct {
        const char *p;
        size_t n;
        int line, seen;
    } sec[NSEC];
    const char *text = (const char *)data, *p = text, *end = text + len;
    comtrade_cfg_t cfg;
    comtrade_rec_t *rec = NULL;
    int lineno = 0, cur = -1, binary = 0, rc;

    *out = NULL;
    memset(sec, 0, sizeof sec);
    memset(&cfg, 0, sizeof cfg);
    if (!data && len)
        return comtrade__fail(GS_EINVAL, err, errlen, "no cff bytes");
    if (len > COMTRADE_MAX_DAT + COMTRADE_MAX_CFG)
        return comtrade__fail(GS_ELIMIT, err, errlen, "cff is %zu bytes, too large", len);
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        span_t line = {p, (size_t)((nl ? nl : end) - p)};
        header_t h;
        int is = header_of(line, &h);

        lineno++;
        if (is < 0)
            return comtrade__fail(GS_EPROTO, err, errlen, "line %d: malformed section header",
                                  lineno);
        if (is == 0) {
            if (cur < 0 && trim(line).n > 0 && !(trim(line).n == 1 && line.p[0] == 0x1a))
                return comtrade__fail(GS_EPROTO, err, errlen,
                                      "line %d: text outside a .cff section", lineno);
            p = next;
            continue;
        }
        if (cur >= 0)
            sec[cur].n = (size_t)(p - sec[cur].p);
        if (h.type != SEC_OTHER && sec[h.type].seen)
            return comtrade__fail(GS_EPROTO, err, errlen, "line %d: duplicate section", lineno);
        sec[h.type].seen = 1;
        sec[h.type].p = next;
        sec[h.type].line = lineno + 1;
        cur = h.type;
        p = next;
        if (h.type == SEC_DAT && h.binary) {
            size_t avail = (size_t)(end - next);
            binary = 1;
            if (h.has_count && h.count > avail)
                return comtrade__fail(GS_ETRUNC, err, errlen,
                                      "line %d: DAT section declares %llu bytes but %zu follow",
                                      lineno, (unsigned long long)h.count, avail);
            sec[SEC_DAT].n = h.has_count ? (size_t)h.count : avail;
            p = next + sec[SEC_DAT].n;
            cur = -1; /* only blank lines or further sections may follow */
        }
    }
    if (cur >= 0)
        sec[cur].n = (size_t)(end - sec[cur].p);
    if (!sec[SEC_CFG].seen || !sec[SEC_DAT].seen)
        return comtrade__fail(GS_EPROTO, err, errlen, "cff lacks a %s section",
                              sec[SEC_CFG].seen ? "DAT" : "CFG");

    rc = comtrade__cfg_parse_at(sec[SEC_CFG].p, sec[SEC_CFG].n, sec[SEC_CFG].line, &cfg, err,
                                errlen);
    if (rc)
        goto fail;
    if ((cfg.ft != COMTRADE_ASCII) != binary) {
        rc = comtrade__fail(
            GS_EPROTO, err, errlen, "line %d: DAT section is %s but the cfg file type is %s",
            sec[SEC_DAT].line - 1, binary ? "binary" : "ASCII", binary ? "ASCII" : "binary");
        goto fail;
    }
    rc = comtrade_dat_parse(&cfg, (const uint8_t *)sec[SEC_DAT].p, sec[SEC_DAT].n, &rec, err,
                            errlen);
    if (rc) {
        char pre[64];
        snprintf(pre, sizeof pre, "DAT section from line %d", sec[SEC_DAT].line);
        err_prefix(err, errlen, pre);
        goto fail;
    }
    if (sec[SEC_HDR].seen) {
        rec->hdr = dup_text(sec[SEC_HDR].p, sec[SEC_HDR].n);
        rec->hdr_len = sec[SEC_HDR].n;
    }
    if (sec[SEC_INF].seen) {
        rec->inf = dup_text(sec[SEC_INF].p, sec[SEC_INF].n);
        rec->inf_len = sec[SEC_INF].n;
    }
    comtrade_cfg_free(&cfg);
    *out = rec;
    return 0;
fail:
    comtrade_cfg_free(&cfg);
    return rc;
}

/* ---- Disk I/O -------------------------------------------------------------------------------- */

/* Reads a whole regular file of at most limit bytes into a malloc'd, NUL-terminated buffer. */
static int slurp(const char *path, size_t limit, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0, size;
    int fd, e, rc;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        return comtrade__fail(-e, err, errlen, "%s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        rc = comtrade__fail(-e, err, errlen, "%s: %s", path, strerror(e));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = comtrade__fail(GS_EINVAL, err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > limit) {
        rc = comtrade__fail(GS_ELIMIT, err, errlen, "%s: %lld bytes, limit %zu", path,
                            (long long)st.st_size, limit);
        goto fail;
    }
    size = (size_t)st.st_size;
    buf = xmalloc(size + 1);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            rc = comtrade__fail(-e, err, errlen, "%s: %s", path, strerror(e));
            goto fail;
        }
        if (n == 0)
            break; /* the file shrank; parse what is there */
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    *out = buf;
    *len = got;
    return 0;
fail:
    free(buf);
    close(fd);
    return rc;
}

/* The first non-blank line is (or starts like) a .cff section header. */
static int looks_like_cff(const char *p, size_t n)
{
    const char *nl;
    span_t line;
    header_t h;

    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3, n -= 3;
    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++, n--;
    nl = memchr(p, '\n', n);
    line.p = p;
    line.n = nl ? (size_t)(nl - p) : n;
    return header_of(line, &h) != 0;
}

/* Reads base + one of the extensions (tried in order) into *out; -ENOENT if none exists. */
static int slurp_alt(const char *base, const char *const *exts, size_t limit, char **out,
                     size_t *len, char *name, char *err, size_t errlen)
{
    int rc = -ENOENT;

    for (; *exts; exts++) {
        if ((size_t)snprintf(name, PATH_CAP, "%s%s", base, *exts) >= PATH_CAP)
            return comtrade__fail(-ENAMETOOLONG, err, errlen, "%s: path too long", base);
        rc = slurp(name, limit, out, len, err, errlen);
        if (rc != -ENOENT)
            return rc;
    }
    return rc;
}

int comtrade_open(const char *path, comtrade_rec_t **out, char *err, size_t errlen)
{
    static const char *const dat_lc[] = {".dat", ".DAT", NULL}, *const dat_uc[] = {".DAT", ".dat",
                                                                                   NULL};
    static const char *const hdr_x[] = {".hdr", ".HDR", NULL}, *const inf_x[] = {".inf", ".INF",
                                                                                 NULL};
    char base[PATH_CAP], name[PATH_CAP];
    char *text = NULL, *dat = NULL, *extra = NULL;
    size_t len, dlen, elen, pl;
    comtrade_cfg_t cfg;
    comtrade_rec_t *rec = NULL;
    int rc, cff;

    *out = NULL;
    memset(&cfg, 0, sizeof cfg);
    if (!path)
        return comtrade__fail(GS_EINVAL, err, errlen, "no path");
    pl = strlen(path);
    if (pl >= PATH_CAP)
        return comtrade__fail(-ENAMETOOLONG, err, errlen, "path too long");
    cff = pl >= 4 && strcasecmp(path + pl - 4, ".cff") == 0;
    if ((rc = slurp(path, cff ? COMTRADE_MAX_DAT + COMTRADE_MAX_CFG : COMTRADE_MAX_CFG, &text, &len,
                    err, errlen)) != 0)
        return rc;
    if (cff || looks_like_cff(text, len)) {
        rc = comtrade_cff_parse((const uint8_t *)text, len, &rec, err, errlen);
        if (rc)
            err_prefix(err, errlen, path);
        goto done;
    }
    if (pl < 4 || strcasecmp(path + pl - 4, ".cfg") != 0) {
        rc = comtrade__fail(GS_EINVAL, err, errlen, "%s: expected a .cfg or .cff file", path);
        goto done;
    }
    if ((rc = comtrade_cfg_parse(text, len, &cfg, err, errlen)) != 0) {
        err_prefix(err, errlen, path);
        goto done;
    }
    memcpy(base, path, pl - 4);
    base[pl - 4] = 0;
    rc = slurp_alt(base, path[pl - 3] == 'C' ? dat_uc : dat_lc, COMTRADE_MAX_DAT, &dat, &dlen, name,
                   err, errlen);
    if (rc) {
        if (rc == -ENOENT)
            comtrade__fail(rc, err, errlen, "%s.dat / .DAT: no data file for %s", base, path);
        goto done;
    }
    if ((rc = comtrade_dat_parse(&cfg, (const uint8_t *)dat, dlen, &rec, err, errlen)) != 0) {
        err_prefix(err, errlen, name);
        goto done;
    }
    /* .hdr / .inf are optional and informative: unreadable ones are skipped. */
    if (slurp_alt(base, hdr_x, COMTRADE_MAX_CFG, &extra, &elen, name, NULL, 0) == 0) {
        rec->hdr = extra;
        rec->hdr_len = elen;
    }
    if (slurp_alt(base, inf_x, COMTRADE_MAX_CFG, &extra, &elen, name, NULL, 0) == 0) {
        rec->inf = extra;
        rec->inf_len = elen;
    }
done:
    free(text);
    free(dat);
    comtrade_cfg_free(&cfg);
    if (rc == 0)
        *out = rec;
    return rc;
}

/* Writes n bytes to base + ext through base + ext + ".tmp", fsync and rename. */
static int write_file(const char *base, const char *ext, const void *p, size_t n, char *err,
                      size_t errlen)
{
    char path[PATH_CAP], tmp[PATH_CAP + 8];
    const char *q = p;
    int fd, e;

    if ((size_t)snprintf(path, sizeof path, "%s%s", base, ext) >= sizeof path)
        return comtrade__fail(-ENAMETOOLONG, err, errlen, "%s: path too long", base);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        e = errno;
        return comtrade__fail(-e, err, errlen, "%s: %s", tmp, strerror(e));
    }
    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto fail;
        q += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    return 0;
fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return comtrade__fail(-e, err, errlen, "%s: %s", path, strerror(e));
}

int comtrade_write(const char *base_path, const comtrade_cfg_t *cfg, const comtrade_data_t *data,
                   unsigned flags, char *err, size_t errlen)
{
    buf_t c = {0}, d = {0};
    int rc;

    if (!base_path)
        return comtrade__fail(GS_EINVAL, err, errlen, "no path");
    if ((rc = comtrade_encode(cfg, data, flags, &c, &d, err, errlen)) != 0)
        goto done;
    if (flags & COMTRADE_WRITE_CFF) {
        rc = write_file(base_path, ".cff", c.data, c.len, err, errlen);
        goto done;
    }
    /* The data first: a .cfg on disk means its record is complete. */
    if ((rc = write_file(base_path, ".dat", d.data, d.len, err, errlen)) != 0)
        goto done;
    if (data->hdr &&
        (rc = write_file(base_path, ".hdr", data->hdr, strlen(data->hdr), err, errlen)) != 0)
        goto done;
    if (data->inf &&
        (rc = write_file(base_path, ".inf", data->inf, strlen(data->inf), err, errlen)) != 0)
        goto done;
    rc = write_file(base_path, ".cfg", c.data, c.len, err, errlen);
done:
    buf_free(&c);
    buf_free(&d);
    return rc;
}
