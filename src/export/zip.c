/* A streaming zip writer (PKWARE APPNOTE 6.3.x): local header, data, data descriptor per entry
 * (general purpose bit 3: sizes and CRC follow the data, so nothing is known in advance), then
 * the central directory. An entry declared big gets a zip64 extended information extra field in
 * its local header (APPNOTE 4.3.9.2: the descriptor then carries 8-byte sizes) and in the
 * central directory; the zip64 end of central directory record and locator are written when any
 * offset or size needs them. Memory: one record per entry (a few entries per export). */
#include "export/export.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define U32MAX 0xFFFFFFFFull

typedef struct {
    char name[128];
    uint32_t crc;
    uint64_t csize, usize, offset;
    uint16_t dtime, ddate, method;
    int big;
} zent_t;

struct export_zip {
    int store;
    uint64_t off; /* bytes written so far */
    zent_t ent[8];
    int nent;
    int open; /* an entry is being written */
    z_stream zs;
    int zs_init;
};

static void le16(buf_t *b, uint64_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_append(b, p, 2);
}

static void le32(buf_t *b, uint64_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_append(b, p, 4);
}

static void le64(buf_t *b, uint64_t v)
{
    le32(b, v & U32MAX);
    le32(b, v >> 32);
}

export_zip_t *export_zip_new(int store)
{
    export_zip_t *z = xcalloc(1, sizeof *z);
    z->store = store;
    return z;
}

void export_zip_free(export_zip_t *z)
{
    if (!z)
        return;
    if (z->zs_init)
        deflateEnd(&z->zs);
    free(z);
}

/* Appends what out grew by to the running offset. */
#define ADVANCE(z, out, before) ((z)->off += (out)->len - (before))

int export_zip_begin(export_zip_t *z, buf_t *out, const char *name, int64_t mtime_s, int big)
{
    if (z->open || z->nent == (int)(sizeof z->ent / sizeof z->ent[0]) || strlen(name) >= 128)
        return GS_EINVAL;
    zent_t *e = &z->ent[z->nent++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->offset = z->off;
    e->big = big;
    e->method = z->store ? 0 : 8;
    /* MS-DOS date and time (APPNOTE 4.4.6), UTC, 2-second resolution; 1980 at the earliest */
    time_t t = (time_t)mtime_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_year < 80)
        tm = (struct tm){.tm_year = 80, .tm_mday = 1};
    e->dtime = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    e->ddate = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
    size_t before = out->len, nlen = strlen(e->name);
    le32(out, 0x04034b50);
    le16(out, big ? 45 : 20); /* version needed: 4.5 for zip64 */
    le16(out, 0x0008);        /* bit 3: data descriptor */
    le16(out, e->method);
    le16(out, e->dtime);
    le16(out, e->ddate);
    le32(out, 0); /* crc, sizes: in the data descriptor */
    le32(out, big ? U32MAX : 0);
    le32(out, big ? U32MAX : 0);
    le16(out, nlen);
    le16(out, big ? 20 : 0);
    buf_append(out, e->name, nlen);
    if (big) {
        le16(out, 0x0001); /* zip64 extended information: sizes (0 here, real in descriptor) */
        le16(out, 16);
        le64(out, 0);
        le64(out, 0);
    }
    ADVANCE(z, out, before);
    if (!z->store) {
        if (z->zs_init)
            deflateEnd(&z->zs);
        memset(&z->zs, 0, sizeof z->zs);
        /* raw deflate (no zlib header): what zip method 8 holds */
        if (deflateInit2(&z->zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return GS_ENOMEM;
        z->zs_init = 1;
    }
    z->open = 1;
    return 0;
}

static int deflate_to(export_zip_t *z, buf_t *out, const void *data, size_t len, int flush)
{
    zent_t *e = &z->ent[z->nent - 1];
    z->zs.next_in = (Bytef *)(uintptr_t)data;
    z->zs.avail_in = (uInt)len;
    for (;;) {
        buf_reserve(out, 65536);
        size_t room = out->cap - out->len - 1; /* buf_t keeps a NUL after the data */
        if (room > 1u << 30)
            room = 1u << 30;
        z->zs.next_out = (Bytef *)out->data + out->len;
        z->zs.avail_out = (uInt)room;
        int r = deflate(&z->zs, flush);
        if (r == Z_STREAM_ERROR)
            return GS_EIO;
        size_t made = room - z->zs.avail_out;
        out->len += made;
        out->data[out->len] = 0;
        e->csize += made;
        z->off += made;
        if (flush == Z_FINISH ? r == Z_STREAM_END : (z->zs.avail_in == 0 && z->zs.avail_out != 0))
            return 0;
    }
}

int export_zip_data(export_zip_t *z, buf_t *out, const void *data, size_t len)
{
    if (!z->open)
        return GS_EINVAL;
    zent_t *e = &z->ent[z->nent - 1];
    /* zlib's crc32 takes uInt lengths: feed it in pieces */
    const uint8_t *p = data;
    for (size_t left = len; left;) {
        uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
        e->crc = (uint32_t)crc32(e->crc, p + (len - left), n);
        left -= n;
    }
    e->usize += len;
    if (!e->big && e->usize > U32MAX)
        return GS_ELIMIT; /* declared small: cannot be described without zip64 */
    if (z->store) {
        buf_append(out, data, len);
        e->csize += len;
        z->off += len;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        size_t n = len - done > (1u << 30) ? (1u << 30) : len - done;
        int rc = deflate_to(z, out, p + done, n, Z_NO_FLUSH);
        if (rc < 0)
            return rc;
        done += n;
    }
    return 0;
}

int export_zip_end(export_zip_t *z, buf_t *out)
{
    if (!z->open)
        return GS_EINVAL;
    zent_t *e = &z->ent[z->nent - 1];
    if (!z->store) {
        int rc = deflate_to(z, out, NULL, 0, Z_FINISH);
        if (rc < 0)
            return rc;
    }
    if (!e->big && e->csize > U32MAX)
        return GS_ELIMIT;
    size_t before = out->len;
    le32(out, 0x08074b50); /* data descriptor (with its optional signature) */
    le32(out, e->crc);
    if (e->big) {
        le64(out, e->csize);
        le64(out, e->usize);
    } else {
        le32(out, e->csize);
        le32(out, e->usize);
    }
    ADVANCE(z, out, before);
    z->open = 0;
    return 0;
}

int export_zip_close(export_zip_t *z, buf_t *out)
{
    if (z->open)
        return GS_EINVAL;
    uint64_t cd_off = z->off;
    size_t before = out->len;
    for (int i = 0; i < z->nent; i++) {
        const zent_t *e = &z->ent[i];
        int z64 = e->big || e->offset >= U32MAX;
        size_t nlen = strlen(e->name);
        le32(out, 0x02014b50);
        le16(out, (3 << 8) | (z64 ? 45 : 20)); /* made by: Unix */
        le16(out, z64 ? 45 : 20);
        le16(out, 0x0008);
        le16(out, e->method);
        le16(out, e->dtime);
        le16(out, e->ddate);
        le32(out, e->crc);
        le32(out, z64 ? U32MAX : e->csize);
        le32(out, z64 ? U32MAX : e->usize);
        le16(out, nlen);
        le16(out, z64 ? 28 : 0);
        le16(out, 0);                  /* comment */
        le16(out, 0);                  /* disk */
        le16(out, 0);                  /* internal attributes */
        le32(out, (0100644u) << 16);   /* external: -rw-r--r-- */
        le32(out, z64 ? U32MAX : e->offset);
        buf_append(out, e->name, nlen);
        if (z64) {
            le16(out, 0x0001);
            le16(out, 24);
            le64(out, e->usize);
            le64(out, e->csize);
            le64(out, e->offset);
        }
    }
    uint64_t cd_size = out->len - before;
    z->off += cd_size;
    int z64end = cd_off >= U32MAX || cd_size >= U32MAX;
    for (int i = 0; i < z->nent; i++)
        z64end |= z->ent[i].big || z->ent[i].offset >= U32MAX;
    if (z64end) {
        uint64_t rec_off = z->off;
        before = out->len;
        le32(out, 0x06064b50); /* zip64 end of central directory record */
        le64(out, 44);
        le16(out, (3 << 8) | 45);
        le16(out, 45);
        le32(out, 0);
        le32(out, 0);
        le64(out, (uint64_t)z->nent);
        le64(out, (uint64_t)z->nent);
        le64(out, cd_size);
        le64(out, cd_off);
        le32(out, 0x07064b50); /* locator */
        le32(out, 0);
        le64(out, rec_off);
        le32(out, 1);
        ADVANCE(z, out, before);
    }
    before = out->len;
    le32(out, 0x06054b50);
    le16(out, 0);
    le16(out, 0);
    le16(out, (uint64_t)z->nent);
    le16(out, (uint64_t)z->nent);
    le32(out, cd_size >= U32MAX ? U32MAX : cd_size);
    le32(out, cd_off >= U32MAX ? U32MAX : cd_off);
    le16(out, 0);
    ADVANCE(z, out, before);
    return 0;
}
