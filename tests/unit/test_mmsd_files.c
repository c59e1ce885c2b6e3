/* Unit tests of the MMS server's record cache (src/mmsd/files.h, mmsd_fcache_*): file names,
 * the directory listing (top = one directory per LD, an LD's files in name order, `after`
 * paging, a file's own entry, unknown directories), open/read/close, the caps (per directory,
 * total bytes: the newest events are kept, an older one is refused), a re-render replacing its
 * record, ids and removal, and a record evicted while a client reads it staying readable until closed. The
 * renderer (store, export, libuv pool) runs in integ.mms_files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mmsd/files.h"

#define T0 1796524985123456789LL /* 2026-12-06T02:43:05.123Z */

static uint8_t *bytes(size_t n, int fill)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    memset(p, fill, n);
    return p;
}

/* A record of event id in dir, `n` bytes of .dat filled with id (cfg 10, hdr 5 bytes). */
static int put(mmsd_fcache_t *c, const char *dir, int64_t id, int64_t start, size_t n)
{
    mmsd_frecord_t r = {.dir = dir, .event_id = id, .kind = "dip", .start_ns = start,
                        .mtime_ns = T0 + 5000000000LL};
    r.cfg = bytes(10, 'c');
    r.cfg_len = 10;
    r.dat = bytes(n, (int)id);
    r.dat_len = n;
    r.hdr = bytes(5, 'h');
    r.hdr_len = 5;
    return mmsd_fcache_put(c, &r);
}

/* Every entry of dir through pages of `page` entries (continueAfter = the last name). */
static int list_all(const ied_file_ops_t *ops, mmsd_fcache_t *c, const char *dir, size_t page,
                    ied_file_info_t *out, size_t cap, int *pages)
{
    size_t n = 0;
    bool more = true;
    *pages = 0;
    while (more) {
        ied_file_info_t buf[16];
        int rc = ops->list(c, dir, n ? out[n - 1].name : NULL, buf, page, &more);
        if (rc < 0)
            return rc;
        (*pages)++;
        for (int i = 0; i < rc && n < cap; i++)
            out[n++] = buf[i];
        if (*pages > 100)
            return GS_ELIMIT;
    }
    return (int)n;
}

static void test_basename(void **state)
{
    (void)state;
    char b[128];
    mmsd_files_basename(42, "dip", T0, b, sizeof b);
    assert_string_equal(b, "20261206_024305_123_E42_dip");
    mmsd_files_basename(7, "Swell!", 0, b, sizeof b);
    assert_string_equal(b, "19700101_000000_000_E7_swell");
    mmsd_files_basename(8, "", T0 + 999000000LL, b, sizeof b);
    assert_string_equal(b, "20261206_024306_122_E8_event");
    mmsd_files_basename(9, NULL, T0, b, sizeof b);
    assert_string_equal(b, "20261206_024305_123_E9_event");
}

static void test_listing(void **state)
{
    (void)state;
    ied_file_ops_t ops;
    ied_file_info_t e[64];
    bool more;
    int pages;
    mmsd_fcache_ops(&ops);
    mmsd_fcache_t *c = mmsd_fcache_new(16, 1 << 20);
    assert_non_null(c);
    /* the top of an empty cache is empty; no LD directory exists */
    assert_int_equal(ops.list(c, "", NULL, e, 8, &more), 0);
    assert_false(more);
    assert_int_equal(ops.list(c, "GSA", NULL, e, 8, &more), GS_ENOTFOUND);

    assert_int_equal(put(c, "GSB", 3, T0 + 2000000000LL, 100), 0);
    assert_int_equal(put(c, "GSA", 2, T0 + 1000000000LL, 100), 0);
    assert_int_equal(put(c, "GSA", 1, T0, 100), 0);
    assert_int_equal(put(c, "GSA", 4, T0 + 3000000000LL, 100), 0);
    assert_int_equal(mmsd_fcache_count(c), 4);
    assert_int_equal(mmsd_fcache_bytes(c), 4 * 115);

    /* top: one directory per LD, in name order, paged */
    assert_int_equal(ops.list(c, "", NULL, e, 8, &more), 2);
    assert_false(more);
    assert_string_equal(e[0].name, "GSA");
    assert_string_equal(e[1].name, "GSB");
    assert_int_equal(e[0].size, 0);
    assert_int_equal(ops.list(c, "", NULL, e, 1, &more), 1);
    assert_true(more);
    assert_int_equal(ops.list(c, "", "GSA", e, 1, &more), 1);
    assert_false(more);
    assert_string_equal(e[0].name, "GSB");

    /* an LD: its records' files in name (= time) order, sizes and mtimes exact */
    assert_int_equal(ops.list(c, "GSA", NULL, e, 16, &more), 9);
    assert_false(more);
    assert_string_equal(e[0].name, "GSA/20261206_024305_123_E1_dip.cfg");
    assert_string_equal(e[1].name, "GSA/20261206_024305_123_E1_dip.dat");
    assert_string_equal(e[2].name, "GSA/20261206_024305_123_E1_dip.hdr");
    assert_string_equal(e[3].name, "GSA/20261206_024306_123_E2_dip.cfg");
    assert_string_equal(e[8].name, "GSA/20261206_024308_123_E4_dip.hdr");
    assert_int_equal(e[0].size, 10);
    assert_int_equal(e[1].size, 100);
    assert_int_equal(e[2].size, 5);
    assert_int_equal(e[1].mtime_ns, T0 + 5000000000LL);
    for (int i = 1; i < 9; i++)
        assert_true(strcmp(e[i - 1].name, e[i].name) < 0);

    /* paging: every page size gives the same entries */
    ied_file_info_t all[64];
    for (size_t page = 1; page <= 10; page++) {
        assert_int_equal(list_all(&ops, c, "GSA", page, all, 64, &pages), 9);
        assert_int_equal(pages, (int)((9 + page - 1) / page)); /* no empty last page */
        for (int i = 0; i < 9; i++)
            assert_string_equal(all[i].name, e[i].name);
    }
    /* continueAfter as a bare file name, and "DIR/" naming the directory */
    assert_int_equal(ops.list(c, "GSA", "20261206_024306_123_E2_dip.hdr", e, 16, &more), 3);
    assert_string_equal(e[0].name, "GSA/20261206_024308_123_E4_dip.cfg");
    assert_int_equal(ops.list(c, "GSA/", NULL, e, 16, &more), 9);
    /* continueAfter an entry that is gone: from the next name on */
    assert_int_equal(ops.list(c, "GSA", "GSA/20261206_024305_999", e, 16, &more), 6);
    /* a file: its own entry; unknown names */
    assert_int_equal(ops.list(c, "GSB/20261206_024307_123_E3_dip.dat", NULL, e, 16, &more), 1);
    assert_string_equal(e[0].name, "GSB/20261206_024307_123_E3_dip.dat");
    assert_int_equal(e[0].size, 100);
    assert_int_equal(ops.list(c, "GSC", NULL, e, 16, &more), GS_ENOTFOUND);
    assert_int_equal(ops.list(c, "GSB/x.dat", NULL, e, 16, &more), GS_ENOTFOUND);
    assert_int_equal(ops.list(c, "GS", NULL, e, 16, &more), GS_ENOTFOUND);
    mmsd_fcache_free(c);
}

static void test_open_read(void **state)
{
    (void)state;
    ied_file_ops_t ops;
    ied_file_info_t fi;
    void *h;
    uint8_t buf[64];
    mmsd_fcache_ops(&ops);
    mmsd_fcache_t *c = mmsd_fcache_new(16, 1 << 20);
    assert_int_equal(put(c, "GSA", 5, T0, 150), 0);
    assert_int_equal(ops.open(c, "GSA/20261206_024305_123_E5_dip.dat", &h, &fi), 0);
    assert_string_equal(fi.name, "GSA/20261206_024305_123_E5_dip.dat");
    assert_int_equal(fi.size, 150);
    size_t total = 0;
    int n;
    while ((n = ops.read(c, h, buf, sizeof buf)) > 0) {
        for (int i = 0; i < n; i++)
            assert_int_equal(buf[i], 5);
        total += (size_t)n;
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, 150);
    ops.close(c, h);
    assert_int_equal(ops.open(c, "GSA/20261206_024305_123_E5_dip.cfg", &h, &fi), 0);
    assert_int_equal(ops.read(c, h, buf, sizeof buf), 10);
    assert_memory_equal(buf, "cccccccccc", 10);
    ops.close(c, h);
    /* not files: other extensions, the directory, an unknown event, no directory */
    assert_int_equal(ops.open(c, "GSA/20261206_024305_123_E5_dip.txt", &h, &fi), GS_ENOTFOUND);
    assert_int_equal(ops.open(c, "GSA", &h, &fi), GS_ENOTFOUND);
    assert_int_equal(ops.open(c, "GSA/20261206_024305_123_E6_dip.cfg", &h, &fi), GS_ENOTFOUND);
    assert_int_equal(ops.open(c, "20261206_024305_123_E5_dip.cfg", &h, &fi), GS_ENOTFOUND);
    assert_int_equal(ops.open(c, "GSB/20261206_024305_123_E5_dip.cfg", &h, &fi), GS_ENOTFOUND);
    mmsd_fcache_free(c);
}

static void test_caps(void **state)
{
    (void)state;
    /* per directory: the newest 2 */
    mmsd_fcache_t *c = mmsd_fcache_new(2, 1 << 20);
    assert_int_equal(put(c, "GSA", 1, T0, 10), 0);
    assert_int_equal(put(c, "GSA", 2, T0 + 1, 10), 0);
    assert_int_equal(put(c, "GSB", 9, T0 - 100, 10), 0); /* another LD: its own quota */
    assert_int_equal(put(c, "GSA", 3, T0 + 2, 10), 0);
    assert_false(mmsd_fcache_has(c, 1));
    assert_true(mmsd_fcache_has(c, 2) && mmsd_fcache_has(c, 3) && mmsd_fcache_has(c, 9));
    assert_int_equal(put(c, "GSA", 0, T0 - 1, 10), GS_ELIMIT); /* older than all kept */
    assert_false(mmsd_fcache_has(c, 0));
    assert_int_equal(mmsd_fcache_count(c), 3);
    assert_int_equal(mmsd_fcache_bytes(c), 3 * 25);
    /* a re-render replaces its record */
    assert_int_equal(put(c, "GSA", 3, T0 + 2, 30), 0);
    assert_int_equal(mmsd_fcache_count(c), 3);
    assert_int_equal(mmsd_fcache_bytes(c), 2 * 25 + 45);
    /* ids and removal (the sweep of deleted events) */
    int64_t ids[8];
    assert_int_equal(mmsd_fcache_ids(c, ids, 8), 3);
    assert_int_equal(ids[0] + ids[1] + ids[2], 2 + 3 + 9);
    assert_int_equal(mmsd_fcache_ids(c, ids, 2), 2);
    assert_true(mmsd_fcache_remove(c, 9));
    assert_false(mmsd_fcache_remove(c, 9));
    assert_int_equal(mmsd_fcache_count(c), 2);
    assert_int_equal(mmsd_fcache_bytes(c), 25 + 45);
    ied_file_ops_t ops;
    ied_file_info_t e[4];
    bool more;
    mmsd_fcache_ops(&ops);
    assert_int_equal(ops.list(c, "", NULL, e, 4, &more), 1); /* GSB has no record left */
    assert_string_equal(e[0].name, "GSA");
    mmsd_fcache_free(c);

    /* total bytes: 3 records of 115 fit in 350; the oldest across LDs go first */
    c = mmsd_fcache_new(16, 350);
    assert_int_equal(put(c, "GSA", 1, T0, 100), 0);
    assert_int_equal(put(c, "GSB", 2, T0 + 10, 100), 0);
    assert_int_equal(put(c, "GSA", 3, T0 + 20, 100), 0);
    assert_int_equal(mmsd_fcache_bytes(c), 345);
    assert_int_equal(put(c, "GSC", 4, T0 + 30, 100), 0);
    assert_false(mmsd_fcache_has(c, 1));
    assert_int_equal(mmsd_fcache_count(c), 3);
    assert_int_equal(put(c, "GSC", 5, T0 + 5, 100), GS_ELIMIT); /* older than every kept one */
    assert_int_equal(put(c, "GSC", 6, T0 + 40, 300), 0);        /* needs two evictions */
    assert_int_equal(mmsd_fcache_count(c), 1);
    assert_true(mmsd_fcache_has(c, 6));
    assert_int_equal(put(c, "GSC", 7, T0 + 50, 400), GS_ELIMIT); /* above the cap alone */
    assert_true(mmsd_fcache_has(c, 6));
    /* bad directory names */
    assert_int_equal(put(c, "", 8, T0 + 60, 1), GS_EINVAL);
    assert_int_equal(put(c, "A/B", 8, T0 + 60, 1), GS_EINVAL);
    mmsd_fcache_free(c);
}

static void test_evicted_while_open(void **state)
{
    (void)state;
    ied_file_ops_t ops;
    ied_file_info_t fi;
    void *h;
    uint8_t buf[256];
    mmsd_fcache_ops(&ops);
    mmsd_fcache_t *c = mmsd_fcache_new(1, 1 << 20);
    assert_int_equal(put(c, "GSA", 1, T0, 200), 0);
    assert_int_equal(ops.open(c, "GSA/20261206_024305_123_E1_dip.dat", &h, &fi), 0);
    assert_int_equal(ops.read(c, h, buf, 50), 50);
    assert_int_equal(put(c, "GSA", 2, T0 + 1, 200), 0); /* evicts event 1 */
    assert_false(mmsd_fcache_has(c, 1));
    bool more;
    ied_file_info_t e[8];
    assert_int_equal(ops.list(c, "GSA", NULL, e, 8, &more), 3);
    assert_string_equal(e[0].name, "GSA/20261206_024305_123_E2_dip.cfg");
    /* the reader still gets the whole file, and after the cache is gone too */
    mmsd_fcache_free(c);
    assert_int_equal(ops.read(NULL, h, buf, sizeof buf), 150);
    for (int i = 0; i < 150; i++)
        assert_int_equal(buf[i], 1);
    assert_int_equal(ops.read(NULL, h, buf, sizeof buf), 0);
    ops.close(NULL, h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basename),
        cmocka_unit_test(test_listing),
        cmocka_unit_test(test_open_read),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_evicted_while_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
