/* In-process figures of src/ied (not a test: no assertions, not run by ctest; run by hand):
 *   cmake --build build --target test_ied_bench && build/tests/test_ied_bench
 * ied_set_terminals with 1,000 terminals, ied_update_latest, ied_confirmed Read of one
 * attribute and of a whole MMXU1, and 10 simulated seconds of 1,000 terminals fed once a second
 * with 3 associations each enabling one report control block per LD (data change + 1 s
 * integrity). The MMS server's end-to-end benchmarks are in docs/benchmarks.md. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ied/ied.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* domain-specific ObjectName of dom/item into on[], returns its length */
static size_t objname(unsigned char *on, const char *dom, const char *item)
{
    size_t n = 0, dl = strlen(dom), il = strlen(item);
    on[n++] = 0xA1;
    on[n++] = (unsigned char)(4 + dl + il);
    on[n++] = 0x1A;
    on[n++] = (unsigned char)dl;
    memcpy(on + n, dom, dl);
    n += dl;
    on[n++] = 0x1A;
    on[n++] = (unsigned char)il;
    memcpy(on + n, item, il);
    return n + il;
}

/* listOfVariable [0] { SEQUENCE { name [0] ObjectName } } */
static size_t varlist(unsigned char *b, const char *dom, const char *item)
{
    unsigned char on[256];
    size_t n = objname(on, dom, item), k = 0;
    b[k++] = 0xA0;
    b[k++] = (unsigned char)(n + 4);
    b[k++] = 0x30;
    b[k++] = (unsigned char)(n + 2);
    b[k++] = 0xA0;
    b[k++] = (unsigned char)n;
    memcpy(b + k, on, n);
    return k + n;
}

static size_t mkread(unsigned char *b, const char *dom, const char *item)
{
    unsigned char v[300];
    size_t n = varlist(v, dom, item);
    b[0] = 0xA1;
    b[1] = (unsigned char)n;
    memcpy(b + 2, v, n);
    return n + 2;
}

static size_t mkwrite(unsigned char *b, const char *dom, const char *item, const unsigned char *d,
                      size_t dl)
{
    size_t k = varlist(b, dom, item);
    b[k++] = 0xA0;
    b[k++] = (unsigned char)dl;
    memcpy(b + k, d, dl);
    return k + dl;
}

int main(void)
{
    static ied_terminal_t t[1000];
    static unsigned char buf[70000];
    unsigned char rq[400];
    mms_ber_writer_t w;
    ied_answer_t an;
    ied_opts_t o;
    ied_t *m;
    char err[100];
    ied_opts_default(&o);
    if (ied_new(&o, &m, err, sizeof err) < 0)
        return 1;
    for (int i = 0; i < 1000; i++) {
        memset(&t[i], 0, sizeof t[i]);
        snprintf(t[i].id, sizeof t[i].id, "T-%04d", i);
        t[i].online = 1;
        t[i].vt_ratio = 100;
        t[i].ct_ratio = 10;
    }
    double a = now_s();
    ied_set_terminals(m, t, 1000, 1);
    printf("ied_set_terminals, 1,000 new terminals: %.2f ms\n", (now_s() - a) * 1e3);
    a = now_s();
    ied_set_terminals(m, t, 1000, 2);
    printf("ied_set_terminals, the same 1,000: %.2f ms\n", (now_s() - a) * 1e3);
    char js[2][600];
    for (int v = 0; v < 2; v++)
        snprintf(js[v], sizeof js[v],
                 "{\"t_ref_ns\":1796466031250000000,\"freq\":50.0%d,\"flags\":[],\"channels\":["
                 "{\"name\":\"Ua\",\"rms\":57.%d,\"fundamental\":{\"mag\":57.7,\"deg\":1}},"
                 "{\"name\":\"Ub\",\"rms\":57.7,\"fundamental\":{\"mag\":57.7,\"deg\":-119}},"
                 "{\"name\":\"Uc\",\"rms\":57.7,\"fundamental\":{\"mag\":57.7,\"deg\":121}}],"
                 "\"power\":{\"p\":1,\"q\":2}}",
                 v, v);
    a = now_s();
    for (int i = 0; i < 1000; i++)
        ied_update_latest(m, t[i].id, js[0], 3);
    printf("ied_update_latest: %.1f us each\n", (now_s() - a) * 1e3);
    ied_client_t *c[3];
    for (int k = 0; k < 3; k++)
        ied_client_new(m, 65000, &c[k]);
    static const char *const items[2] = {"MMXU1$MX$PhV$phsA$cVal$mag$f", "MMXU1"};
    for (int k = 0; k < 2; k++) {
        size_t l = mkread(rq, "GRIDSENSET_M0500", items[k]), out = 0;
        int n = k ? 20000 : 200000;
        a = now_s();
        for (int i = 0; i < n; i++) {
            mms_bw_init(&w, buf, sizeof buf);
            ied_confirmed(c[0], MMS_SVC_READ, true, rq, l, &w, &an);
            out = mms_bw_len(&w);
        }
        double d = now_s() - a;
        printf("Read %s: %.2f us each, response %zu octets\n", items[k], d / n * 1e6, out);
    }
    static const unsigned char on1[] = {0x83, 1, 0xff}, intg[] = {0x86, 2, 0x03, 0xe8};
    static const char *const rcb[3] = {"LLN0$RP$MeasRCB01$", "LLN0$RP$MeasRCB02$",
                                       "LLN0$BR$MeasBRCB01$"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 1000; i++) {
            char dom[64], it[80];
            snprintf(dom, sizeof dom, "GRIDSENSET_M%04d", i);
            snprintf(it, sizeof it, "%sIntgPd", rcb[k]);
            size_t l = mkwrite(rq, dom, it, intg, sizeof intg);
            mms_bw_init(&w, buf, sizeof buf);
            ied_confirmed(c[k], MMS_SVC_WRITE, true, rq, l, &w, &an);
            snprintf(it, sizeof it, "%sRptEna", rcb[k]);
            l = mkwrite(rq, dom, it, on1, sizeof on1);
            mms_bw_init(&w, buf, sizeof buf);
            ied_confirmed(c[k], MMS_SVC_WRITE, true, rq, l, &w, &an);
        }
    long reps = 0;
    int64_t now = 2000000000LL;
    a = now_s();
    for (int s = 0; s < 10; s++) {
        now += 1000000000LL;
        for (int i = 0; i < 1000; i++)
            ied_update_latest(m, t[i].id, js[s & 1], now);
        for (int k = 0; k < 3; k++) {
            int svc;
            for (;;) {
                mms_bw_init(&w, buf, sizeof buf);
                if (ied_client_next_report(c[k], now, &w, &svc) != 1)
                    break;
                reps++;
            }
        }
    }
    double d = now_s() - a;
    printf("1,000 terminals fed once a second, 3 associations x 1,000 RCBs (data change + 1 s "
           "integrity): %ld reports in 10 s, %.1f ms CPU per second (%.1f us per report incl. "
           "feeding)\n",
           reps, d * 100, d / (double)reps * 1e6);
    for (int k = 0; k < 3; k++)
        ied_client_free(c[k]);
    ied_free(m);
    return 0;
}
