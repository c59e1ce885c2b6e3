/* MMS server benchmark (docs/benchmarks.md "MMS server"; bench/mms.sh): against a running
 * `gridsense serve --mms`, over loopback TCP with our own codecs as the client:
 *   - association set-up rate: N sequential connections, each CR/CC, CONNECT/ACCEPT (AARQ with
 *     initiate), then closed; associations per second and per-association p50/p99;
 *   - Read latency: one association, R sequential Reads (one outstanding) of one MMXU attribute
 *     (MMXU1$MX$TotW$mag$f) and of a whole LN (MMXU1), p50/p99/max and reads per second.
 * The logical device is the first domain GetNameList returns. Prints one JSON object.
 *   - memory per client: with the server's PID, its VmRSS before and after HOLD more idle
 *     associations are opened (and held).
 * Usage: mms_bench PORT [ASSOCIATIONS] [READS] [HOLD SERVER_PID]
 *        mms_bench PORT reports|latency CLIENTS SECONDS SERVER_PID
 * The second form: CLIENTS (1..10) processes each associate and enable, on every logical device,
 * one unbuffered report control block of their own on the measurements dataset (client k:
 * MeasRCB01 + k, the LD's ten instances) with integrity reports every 1,000 ms,
 * then count the InformationReports they receive for SECONDS; the server's CPU (utime + stime
 * of SERVER_PID) is taken over the same window once every client has enabled. `latency`
 * enables data-change reports instead and reports, per client, the latency from the newest
 * value time (utc-time) a report carries to its reception: measurement to report. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "iec61850/mms.h"

/* The CR and CONNECT (AARQ + initiate-request) of a_browse_client_example2 (tests/vectors/mms):
 * a widely used client's association, byte for byte. */
static const char CR_HEX[] = "0300001611e00000000100c0010dc2020001c1020001";
static const char CN_HEX[] =
    "030000bb02f0800db20506130100160102140200023302000134020001c19c318199a003800101a2"
    "8191810400000001820400000001a423300f02010106045201000130040602510130100201030605"
    "28ca220201300406025101615e305c020101a0576055a107060528ca220203a20706052901876701"
    "a30302010ca606060429018767a70302010cbe2f282d020103a028a826800300fde8810105820105"
    "83010aa416800101810305f100820c03ee1c00000408000079ef18";

static uint8_t cr[64], cn[512];
static size_t cr_len, cn_len;

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int port;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void put(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

static void get(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            fprintf(stderr, "connection closed by the server\n");
            exit(1);
        }
        p += r;
        n -= (size_t)r;
    }
}

/* Reads TPKTs until a DT with EOT (or a CC): the reassembled TSDU in tsdu, its length. */
static size_t answer(int fd, uint8_t *tsdu, size_t cap)
{
    static uint8_t t[70000];
    size_t len = 0;
    for (;;) {
        get(fd, t, 4);
        size_t n = ((size_t)t[2] << 8) | t[3];
        if (n < 7 || n > sizeof t) {
            fprintf(stderr, "bad TPKT\n");
            exit(1);
        }
        get(fd, t + 4, n - 4);
        if ((t[5] & 0xF0) != 0xF0)
            return 0; /* CC */
        size_t d = n - 7;
        if (len + d > cap) {
            fprintf(stderr, "answer too big\n");
            exit(1);
        }
        memcpy(tsdu + len, t + 7, d);
        len += d;
        if (t[6] & 0x80)
            return len;
    }
}

static int associate(void)
{
    static uint8_t buf[70000];
    int fd = dial();
    put(fd, cr, cr_len);
    answer(fd, buf, sizeof buf);
    put(fd, cn, cn_len);
    size_t n = answer(fd, buf, sizeof buf);
    mms_spdu_t s;
    if (mms_spdu_decode(buf, n, &s) < 0 || s.si != MMS_SPDU_AC) {
        fprintf(stderr, "association refused\n");
        exit(1);
    }
    return fd;
}

/* Sends one confirmed request (service contents body) and returns the MMS PDU answered. */
static void request(int fd, uint32_t invoke, int service, const uint8_t *body, size_t blen,
                    mms_pdu_t *pdu)
{
    static uint8_t b1[8192], b2[8192], out[9000], tsdu[70000];
    static mms_ppdu_t pp;
    mms_ber_writer_t w1, w2;
    mms_bw_init(&w1, b1, sizeof b1);
    mms_pdu_encode_confirmed(&w1, false, invoke, service, true, body, blen);
    memset(&pp, 0, sizeof pp);
    pp.n_pdv = 1;
    pp.pdv[0].ctx_id = MMS_PCTX_MMS;
    pp.pdv[0].data = mms_bw_data(&w1);
    pp.pdv[0].len = mms_bw_len(&w1);
    mms_bw_init(&w2, b2, sizeof b2);
    mms_pres_encode_data(&w2, &pp);
    mms_spdu_t s;
    memset(&s, 0, sizeof s);
    s.si = MMS_SPDU_DT;
    s.has_user_data = true;
    s.user_data = mms_bw_data(&w2);
    s.user_len = mms_bw_len(&w2);
    static uint8_t spdu[8300];
    int sl = mms_spdu_encode(spdu, sizeof spdu, &s);
    int n = mms_cotp_encode_dt(out, sizeof out, true, spdu, (size_t)sl);
    put(fd, out, (size_t)n);
    do { /* (InformationReports in between are skipped) */
        size_t tl = answer(fd, tsdu, sizeof tsdu);
        if (mms_spdu_decode(tsdu, tl, &s) < 0 ||
            mms_pres_decode_data(s.user_data, s.user_len, &pp) < 0 ||
            mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, pdu, NULL) < 0) {
            fprintf(stderr, "undecodable answer\n");
            exit(1);
        }
    } while (pdu->type == MMS_PDU_UNCONFIRMED);
    if (pdu->type != MMS_PDU_CONFIRMED_RESP || pdu->invoke_id != invoke) {
        fprintf(stderr, "answer type %d to invoke %u\n", pdu->type, invoke);
        exit(1);
    }
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats(const char *name, double *v, int n, double total)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf("  \"%s\": {\"n\": %d, \"per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"max_ms\": %.3f}",
           name, n, n / total, v[n / 2] * 1e3, v[(int)(n * 0.99)] * 1e3, v[n - 1] * 1e3);
}

/* Read of domain/item: Read-Request { variableAccessSpecification [1] { listOfVariable [0] {
 * SEQUENCE { name [0] { domain-specific [1] { domainId, itemId } } } } } } */
static size_t read_body(uint8_t *out, size_t cap, const char *dom, const char *item)
{
    mms_ber_writer_t w;
    mms_bw_init(&w, out, cap);
    size_t m = mms_bw_mark(&w);
    mms_bw_octets(&w, MMS_BER_UNIVERSAL, 26, item, strlen(item));
    mms_bw_octets(&w, MMS_BER_UNIVERSAL, 26, dom, strlen(dom));
    mms_bw_wrap(&w, MMS_BER_CONTEXT, 1, m);
    mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m);
    mms_bw_wrap(&w, MMS_BER_UNIVERSAL, 16, m);
    mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m);
    mms_bw_wrap(&w, MMS_BER_CONTEXT, 1, m);
    memmove(out, mms_bw_data(&w), mms_bw_len(&w));
    return mms_bw_len(&w);
}

/* All domain names (GetNameList, following continueAfter). */
static int all_domains(int fd, char (*out)[80], int max, uint32_t *inv)
{
    int n = 0;
    for (;;) {
        uint8_t body[256];
        mms_ber_writer_t w;
        mms_bw_init(&w, body, sizeof body);
        if (n)
            mms_bw_octets(&w, MMS_BER_CONTEXT, 2, out[n - 1], strlen(out[n - 1]));
        size_t m = mms_bw_mark(&w);
        mms_bw_null(&w, MMS_BER_CONTEXT, 0);
        mms_bw_wrap(&w, MMS_BER_CONTEXT, 1, m);
        m = mms_bw_mark(&w);
        mms_bw_int(&w, MMS_BER_CONTEXT, 0, 9);
        mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m);
        mms_pdu_t pdu;
        request(fd, (*inv)++, MMS_SVC_GET_NAME_LIST, mms_bw_data(&w), mms_bw_len(&w), &pdu);
        mms_ber_reader_t r, r2;
        mms_tlv_t t, t2;
        bool more = true;
        mms_ber_reader_init(&r, pdu.body, pdu.body_len);
        while (mms_ber_next(&r, &t) == 1) {
            if (t.tag == 0 && mms_ber_enter(&r, &t, &r2) == 0)
                while (mms_ber_next(&r2, &t2) == 1 && n < max)
                    mms_ber_get_visible(&t2, out[n++], 80);
            else if (t.tag == 1)
                mms_ber_get_bool(&t, &more);
        }
        if (!more || n >= max)
            return n;
    }
}

static double cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* UTC now, seconds */
static double utc_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The newest utc-time Data ([17] IMPLICIT, 8 octets: IEC 61850-8-1 8.1.3.7) in a report: the
 * time of the newest value it carries, 0 if none. A scan of the PDU octets for the 91 08
 * header: good enough for a benchmark (a float's octets could look like one: such reports
 * show up as absurd latencies, counted apart). */
static double newest_t(const uint8_t *p, size_t n)
{
    double best = 0;
    for (size_t i = 0; i + 10 <= n; i++)
        if (p[i] == 0x91 && p[i + 1] == 0x08) {
            uint32_t secs = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 |
                            (uint32_t)p[i + 4] << 8 | p[i + 5];
            uint32_t frac = (uint32_t)p[i + 6] << 16 | (uint32_t)p[i + 7] << 8 | p[i + 8];
            double t = secs + frac / 16777216.0;
            if (t > best)
                best = t;
        }
    return best;
}

static int reports_mode(int nclients, int seconds, int pid, bool dchg)
{
    /* the measurements URCB's instances MeasRCB01..10 of every LD (docs/iec61850.md) */
    static char rcbs[10][16];
    int ready[2];
    if (nclients < 1 || nclients > 10 || pipe(ready) != 0)
        return 2;
    for (int k = 0; k < 10; k++)
        snprintf(rcbs[k], sizeof rcbs[k], "MeasRCB%02d", k + 1);
    for (int k = 0; k < nclients; k++) {
        if (fork() != 0)
            continue;
        static char doms[5000][80];
        uint32_t inv = 1;
        int fd = associate();
        int nd = all_domains(fd, doms, 5000, &inv);
        double t_en = now_s();
        for (int i = 0; i < nd; i++) {
            /* Write TrgOps = integrity, IntgPd = 1000, RptEna = TRUE, in that order */
            static const char *const attr[3] = {"TrgOps", "IntgPd", "RptEna"};
            uint8_t body[1024];
            mms_ber_writer_t w;
            mms_bw_init(&w, body, sizeof body);
            size_t m0 = mms_bw_mark(&w);
            mms_bw_bool(&w, MMS_BER_CONTEXT, 3, true);
            mms_bw_uint(&w, MMS_BER_CONTEXT, 6, 1000);
            /* TrgOps (8-1): bit 1 data-change, bit 4 integrity */
            const uint8_t trg = dchg ? 0x40 : 0x08;
            mms_bw_bits(&w, MMS_BER_CONTEXT, 4, &trg, 6);
            mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m0); /* listOfData */
            size_t m1 = mms_bw_mark(&w);
            (void)m0;
            for (int a = 2; a >= 0; a--) {
                char item[80];
                snprintf(item, sizeof item, "LLN0$RP$%s$%s", rcbs[k], attr[a]);
                size_t m = mms_bw_mark(&w);
                mms_bw_octets(&w, MMS_BER_UNIVERSAL, 26, item, strlen(item));
                mms_bw_octets(&w, MMS_BER_UNIVERSAL, 26, doms[i], strlen(doms[i]));
                mms_bw_wrap(&w, MMS_BER_CONTEXT, 1, m);
                mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m);
                mms_bw_wrap(&w, MMS_BER_UNIVERSAL, 16, m);
            }
            mms_bw_wrap(&w, MMS_BER_CONTEXT, 0, m1); /* listOfVariable */
            mms_pdu_t pdu;
            /* reports of earlier enables may arrive before the answer: request() skips them */
            request(fd, inv++, MMS_SVC_WRITE, mms_bw_data(&w), mms_bw_len(&w), &pdu);
            /* Write-Response: one CHOICE per variable, success [1] NULL */
            int ok = 0;
            for (size_t b = 0; b + 1 < pdu.body_len; b += 2)
                ok += pdu.body[b] == 0x81 && pdu.body[b + 1] == 0;
            if (ok != 3) {
                fprintf(stderr, "client %d: enabling %s of %s refused (%zu octets)\n", k, rcbs[k],
                        doms[i], pdu.body_len);
                exit(1);
            }
        }
        double t_done = now_s();
        if (write(ready[1], "x", 1) != 1)
            exit(1);
        /* count reports for `seconds` */
        long reports = 0, n_lat = 0, odd = 0;
        static double lat[200000];
        static uint8_t tsdu[70000];
        double end = now_s() + seconds;
        while (now_s() < end) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (poll(&pf, 1, 200) <= 0)
                continue;
            size_t n = answer(fd, tsdu, sizeof tsdu);
            mms_spdu_t sp;
            mms_ppdu_t pp;
            mms_pdu_t pdu;
            if (n && mms_spdu_decode(tsdu, n, &sp) == 0 &&
                mms_pres_decode_data(sp.user_data, sp.user_len, &pp) == 0 &&
                mms_pdu_decode(pp.pdv[0].data, pp.pdv[0].len, &pdu, NULL) == 0 &&
                pdu.type == MMS_PDU_UNCONFIRMED) {
                reports++;
                double t = newest_t(pp.pdv[0].data, pp.pdv[0].len), l = utc_s() - t;
                if (t > 0 && l >= 0 && l < 60 && n_lat < 200000)
                    lat[n_lat++] = l;
                else if (t > 0)
                    odd++;
            }
        }
        if (dchg && n_lat) {
            qsort(lat, (size_t)n_lat, sizeof *lat, cmp_d);
            printf("  {\"client\": %d, \"latency_n\": %ld, \"latency_p50_ms\": %.1f, "
                   "\"latency_p99_ms\": %.1f, \"latency_max_ms\": %.1f, \"odd\": %ld},\n",
                   k, n_lat, lat[n_lat / 2] * 1e3, lat[(long)(n_lat * 0.99)] * 1e3,
                   lat[n_lat - 1] * 1e3, odd);
        }
        printf("  {\"client\": %d, \"rcb\": \"%s\", \"lds\": %d, \"enable_s\": %.2f, "
               "\"reports\": %ld, \"reports_per_s\": %.0f},\n",
               k, rcbs[k], nd, t_done - t_en, reports, (double)reports / seconds);
        fflush(stdout);
        close(fd);
        _exit(0);
    }
    char x;
    close(ready[1]); /* a client that dies before it is ready (refused): EOF, not a hang */
    for (int k = 0; k < nclients; k++)
        if (read(ready[0], &x, 1) != 1)
            return 1;
    double c0 = cpu_s(pid), w0 = now_s();
    sleep((unsigned)(seconds > 2 ? seconds - 1 : 1));
    double c1 = cpu_s(pid), w1 = now_s();
    for (int k = 0; k < nclients; k++)
        wait(NULL);
    printf("  {\"server_cpu_cores\": %.3f, \"window_s\": %.1f}\n", (c1 - c0) / (w1 - w0), w1 - w0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mms_bench PORT [ASSOCIATIONS] [READS]\n");
        return 2;
    }
    port = atoi(argv[1]);
    if (argc > 5 && (strcmp(argv[2], "reports") == 0 || strcmp(argv[2], "latency") == 0)) {
        cr_len = unhex(CR_HEX, cr, sizeof cr);
        cn_len = unhex(CN_HEX, cn, sizeof cn);
        printf("[\n");
        fflush(stdout);
        int rc = reports_mode(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[2][0] == 'l');
        printf("]\n");
        return rc;
    }
    int na = argc > 2 ? atoi(argv[2]) : 500, nr = argc > 3 ? atoi(argv[3]) : 5000;
    cr_len = unhex(CR_HEX, cr, sizeof cr);
    cn_len = unhex(CN_HEX, cn, sizeof cn);
    double *v = calloc((size_t)(na > nr ? na : nr), sizeof *v);

    /* association rate */
    double t0 = now_s();
    for (int i = 0; i < na; i++) {
        double ts = now_s();
        int fd = associate();
        v[i] = now_s() - ts;
        close(fd);
    }
    printf("{\n");
    stats("associations", v, na, now_s() - t0);
    printf(",\n");

    /* the LD: first domain of GetNameList (objectClass domain 9, vmdSpecific) */
    int fd = associate();
    static const uint8_t gnl[] = {0xA0, 0x03, 0x80, 0x01, 0x09, 0xA1, 0x02, 0x80, 0x00};
    mms_pdu_t pdu;
    request(fd, 1, MMS_SVC_GET_NAME_LIST, gnl, sizeof gnl, &pdu);
    mms_ber_reader_t r, r2;
    mms_tlv_t t, t2;
    char dom[80] = "";
    mms_ber_reader_init(&r, pdu.body, pdu.body_len);
    if (mms_ber_next(&r, &t) == 1 && mms_ber_enter(&r, &t, &r2) == 0 && mms_ber_next(&r2, &t2) == 1)
        mms_ber_get_visible(&t2, dom, sizeof dom);
    if (!dom[0]) {
        fprintf(stderr, "no logical device (provision a terminal)\n");
        return 1;
    }
    static const char *const items[2] = {"MMXU1$MX$TotW$mag$f", "MMXU1"};
    static const char *const names[2] = {"read_attribute", "read_ln"};
    uint32_t inv = 2;
    for (int k = 0; k < 2; k++) {
        uint8_t body[256];
        size_t bl = read_body(body, sizeof body, dom, items[k]);
        for (int i = 0; i < 50; i++) /* warm-up */
            request(fd, inv++, MMS_SVC_READ, body, bl, &pdu);
        t0 = now_s();
        size_t bytes = 0;
        for (int i = 0; i < nr; i++) {
            double ts = now_s();
            request(fd, inv++, MMS_SVC_READ, body, bl, &pdu);
            v[i] = now_s() - ts;
            bytes = pdu.body_len;
        }
        stats(names[k], v, nr, now_s() - t0);
        printf(",\n  \"%s_response_octets\": %zu,\n", names[k], bytes);
    }
    if (argc > 5) {
        int hold = atoi(argv[4]), pid = atoi(argv[5]);
        int *fds = calloc((size_t)hold, sizeof *fds);
        usleep(300000);
        long before = rss_kb(pid);
        for (int i = 0; i < hold; i++) {
            fds[i] = associate();
            request(fds[i], 1, MMS_SVC_GET_NAME_LIST, gnl, sizeof gnl, &pdu);
        }
        usleep(300000);
        long after = rss_kb(pid);
        printf("  \"held\": %d, \"server_rss_kb_before\": %ld, \"server_rss_kb_after\": %ld, "
               "\"kb_per_association\": %.0f,\n",
               hold, before, after, (double)(after - before) / hold);
        for (int i = 0; i < hold; i++)
            close(fds[i]);
        free(fds);
    }
    printf("  \"domain\": \"%s\"\n}\n", dom);
    close(fd);
    free(v);
    return 0;
}
