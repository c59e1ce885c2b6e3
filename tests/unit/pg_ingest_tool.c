/* pg_ingest_tool: drives store_pg_ingest_blocks (src/store/pg.h) like the writer will, for the
 * crash test (tests/integ/test_pg_crash.py) and for a quick ingest-rate figure.
 *
 *   pg_ingest_tool URL START UNTIL [TERMINALS [BLOCKS_PER_TERMINAL_PER_BATCH [DATA_BYTES]]]
 *
 * Migrates the schema, makes the partitions and terminals T0..Tn-1, then sends batches holding
 * BLOCKS consecutive seqs of every terminal, from seq START up to UNTIL, like terminals that
 * re-send everything above their last ACK after a reconnect. After each COMMIT it prints
 * "ACK <seq>" (the lowest durable_seq of the batch's acks: every terminal has all blocks up to
 * it) and flushes, so a test that kills this process knows exactly what was acknowledged. A lost
 * connection (the server was killed) is retried with a new connection for up to 60 s, with the
 * same batch: its outcome was unknown. Ends with "DONE <blocks stored> <blocks/s> <MB/s>".
 * With the default DATA_BYTES (4800: 400 sets of 6 int16 channels) the samples are sines and
 * odd-numbered terminals send their blocks encoded (codec 1, as GSTP carries them), even ones raw
 * (the ingest encodes them as codec 2): every stored block is encoded, half of them as received. */
#include "core/err.h"
#include "store/pg.h"
#include "store/sql.h"
#include "store/store.h"
#include "wcodec/wcodec.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DAY    INT64_C(86400000000000)
#define T_BASE INT64_C(1796428800000000000) /* 2026-12-05 UTC */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_all(const char *url, int nterm, sqlx_t **db, store_pg_ingest_t **g)
{
    char err[256];
    int rc, v;
    *db = NULL;
    *g = NULL;
    if ((rc = sqlx_open(url, db, err, sizeof err)) < 0)
        return rc;
    if ((rc = store_pg_migrate(*db, NULL, NULL, &v, err, sizeof err)) < 0 ||
        (rc = store_pg_partitions_ensure(*db, T_BASE, T_BASE + 2 * DAY, NULL)) < 0) {
        fprintf(stderr, "setup: %s %s\n", err, sqlx_errmsg(*db));
        goto fail;
    }
    for (int t = 0; t < nterm; t++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT INTO terminals(id, secret, created_ns) VALUES"
                 " ('T%d', '\\x00', 1) ON CONFLICT DO NOTHING",
                 t);
        if ((rc = sqlx_exec(*db, sql)) < 0)
            goto fail;
    }
    if ((rc = store_pg_ingest_new(*db, g)) < 0)
        goto fail;
    return 0;
fail:
    sqlx_close(*db);
    *db = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL START UNTIL [TERMINALS [BLOCKS [DATA_BYTES]]]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    long long start = atoll(argv[2]), until = atoll(argv[3]);
    int nterm = argc > 4 ? atoi(argv[4]) : 8;
    int per = argc > 5 ? atoi(argv[5]) : 10;
    size_t data_bytes = argc > 6 ? (size_t)atol(argv[6]) : 4800; /* 100 ms, 4 kS/s, 6 ch int16 */
    if (start < 1 || until < start || nterm < 1 || nterm > 1000 || per < 1 || per > 1000)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);

    sqlx_t *db = NULL;
    store_pg_ingest_t *g = NULL;
    double deadline = now_s() + 60;
    while (connect_all(url, nterm, &db, &g) < 0) {
        if (now_s() > deadline)
            return 1;
        usleep(100000);
    }
    size_t n = (size_t)nterm * (size_t)per;
    store_item_t **items = calloc(n, sizeof *items);
    store_pg_ack_t *acks = calloc(n, sizeof *acks);
    int shaped = data_bytes == 400u * 6u * 2u;
    size_t enc_cap = wcodec_bound(400, 6, 1);
    for (size_t i = 0; i < n; i++) {
        items[i] = calloc(1, sizeof **items);
        items[i]->data = malloc(data_bytes);
        items[i]->data_len = data_bytes;
        if (shaped)
            items[i]->enc = malloc(enc_cap);
    }
    long long stored = 0;
    double t0 = now_s();
    for (long long s = start; s <= until; s += per) {
        size_t k = 0;
        for (int b = 0; b < per; b++)
            for (int t = 0; t < nterm; t++) {
                store_item_t *it = items[k++];
                long long seq = s + b;
                it->kind = STORE_ITEM_BLOCK;
                snprintf(it->terminal_id, sizeof it->terminal_id, "T%d", t);
                it->seq = (uint64_t)seq;
                it->t0_ns = T_BASE + seq * 100000000LL;
                it->sample_rate = 4000;
                it->channel_mask = 0x3f;
                it->nchannels = 6;
                it->sample_fmt = 1;
                it->nsamples = 400;
                it->nominal_hz = 50;
                it->codec = 0;
                if (!shaped) {
                    for (size_t j = 0; j < data_bytes; j++)
                        it->data[j] = (uint8_t)(seq * 7 + (long long)j * 13 + t);
                    continue;
                }
                for (size_t j = 0; j < 400u * 6u; j++) {
                    double ph = 6.283185307179586 *
                                (50.0 * (double)(seq * 400 + (long long)(j / 6)) / 4000.0 +
                                 (double)(j % 6) / 3.0 + t * 0.01);
                    uint16_t v = (uint16_t)(int16_t)(10000.0 * sin(ph) + (double)(j % 7));
                    it->data[2 * j] = (uint8_t)(v & 0xff);
                    it->data[2 * j + 1] = (uint8_t)(v >> 8);
                }
                if (t % 2 && wcodec_encode_block(it->data, 400, 6, 1, 80, it->enc, enc_cap,
                                                 &it->enc_len) == 0)
                    it->codec = WCODEC_ID;
            }
        size_t nacks = 0;
        int rc;
        while ((rc = store_pg_ingest_blocks(g, items, k, 1, acks, &nacks)) < 0) {
            if (rc != GS_ECLOSED && rc != GS_EBUSY) {
                fprintf(stderr, "ingest: %d %s\n", rc, sqlx_errmsg(db));
                return 1;
            }
            if (rc == GS_ECLOSED) { /* reconnect, then the same batch again */
                store_pg_ingest_free(g);
                sqlx_close(db);
                deadline = now_s() + 60;
                while (connect_all(url, nterm, &db, &g) < 0) {
                    if (now_s() > deadline) {
                        fprintf(stderr, "cannot reconnect\n");
                        return 1;
                    }
                    usleep(100000);
                }
            }
        }
        uint64_t low = UINT64_MAX;
        for (size_t i = 0; i < nacks; i++)
            if (acks[i].durable_seq < low)
                low = acks[i].durable_seq;
        for (size_t i = 0; i < k; i++)
            stored += items[i]->result == 0;
        printf("ACK %llu\n", (unsigned long long)low);
    }
    double dt = now_s() - t0;
    printf("DONE %lld %.0f %.1f\n", stored, dt > 0 ? (double)stored / dt : 0.0,
           dt > 0 ? (double)stored * (double)data_bytes / dt / 1e6 : 0.0);
    for (size_t i = 0; i < n; i++) {
        free(items[i]->data);
        free(items[i]->enc);
        free(items[i]);
    }
    free(items);
    free(acks);
    store_pg_ingest_free(g);
    sqlx_close(db);
    return 0;
}
