/* libFuzzer target for the MMS service bodies of src/ied (ied_confirmed): input = service tag
 * octet, flags octet (bit 0: constructed, bit 1: a small negotiated PDU of 300 octets), then the
 * request body. Properties: ied_confirmed answers every input (return 0), with a known kind; a
 * response is well-formed BER within the negotiated PDU size; an error or reject has no
 * contents. Each input runs on a fresh association (report control blocks it enabled are
 * released when it ends, its open files closed); after the request new values are fed and the
 * association's reports (if the request enabled any) must encode as well-formed BER. The model: one
 * online terminal with latest values, one offline. */
#include <stdbool.h>
#include <stdio.h>

#include "ied/ied.h"
#include "mms_fuzz.h"

static ied_t *model;

/* A small file provider: "T/a.cfg" (40 octets), "T/a.dat" (70,000), directory "T". */
static int fl_list(void *ud, const char *dir, const char *after, ied_file_info_t *out, size_t max,
                   bool *more)
{
    static const char *const top[1] = {"T"}, *const t[2] = {"T/a.cfg", "T/a.dat"};
    static const uint64_t tsz[2] = {40, 70000};
    const char *const *names = dir[0] ? t : top;
    int n = dir[0] ? 2 : 1;
    (void)ud;
    if (dir[0] && strcmp(dir, "T"))
        return GS_ENOTFOUND;
    int i = 0;
    if (after)
        while (i < n && strcmp(names[i], after) <= 0)
            i++;
    size_t k = 0;
    for (; i < n && k < max; i++, k++) {
        snprintf(out[k].name, sizeof out[k].name, "%s", names[i]);
        out[k].size = dir[0] ? tsz[i] : 0;
        out[k].mtime_ns = 1796466031000000000LL;
    }
    *more = i < n;
    return (int)k;
}

typedef struct {
    uint64_t pos, size;
} fl_h;

static int fl_open(void *ud, const char *name, void **h, ied_file_info_t *info)
{
    (void)ud;
    uint64_t size = !strcmp(name, "T/a.cfg") ? 40 : !strcmp(name, "T/a.dat") ? 70000 : 0;
    if (!size)
        return GS_ENOTFOUND;
    fl_h *x = malloc(sizeof *x);
    CHECK(x != NULL);
    x->pos = 0;
    x->size = size;
    *h = x;
    snprintf(info->name, sizeof info->name, "%s", name);
    info->size = size;
    info->mtime_ns = 0;
    return 0;
}

static int fl_read(void *ud, void *h, uint8_t *buf, size_t cap)
{
    fl_h *x = h;
    (void)ud;
    size_t n = x->size - x->pos < cap ? (size_t)(x->size - x->pos) : cap;
    memset(buf, 'x', n);
    x->pos += n;
    return (int)n;
}

static void fl_close(void *ud, void *h)
{
    (void)ud;
    free(h);
}

static const ied_file_ops_t FL = {fl_list, fl_open, fl_read, fl_close};
static int64_t now = 1796466031000000000LL;
static const char *const LATEST[2] = {
    "{\"t_ref_ns\":1796466031250000000,\"freq\":50.0,\"flags\":[],"
    "\"channels\":[{\"name\":\"Ua\",\"rms\":57.7,\"fundamental\":"
    "{\"mag\":57.7,\"deg\":1}}],\"power\":{\"p\":1,\"q\":2}}",
    "{\"t_ref_ns\":1796466032250000000,\"freq\":50.1,\"flags\":[\"time_unsync\"],"
    "\"channels\":[{\"name\":\"Ua\",\"rms\":57.2}],\"power\":{\"p\":3}}"};

static void setup(void)
{
    ied_opts_t o;
    char err[128];
    ied_terminal_t t[2];
    ied_opts_default(&o);
    CHECK(ied_new(&o, &model, err, sizeof err) == 0);
    memset(t, 0, sizeof t);
    strcpy(t[0].id, "DEMO-0001");
    strcpy(t[1].id, "T.2");
    t[0].online = 1;
    t[0].vt_ratio = t[1].vt_ratio = 100;
    t[0].ct_ratio = t[1].ct_ratio = 20;
    CHECK(ied_set_terminals(model, t, 2, 1796466031000000000LL) == 0);
    CHECK(ied_update_latest(model, "DEMO-0001", LATEST[0], now) == 0);
    ied_set_file_ops(model, &FL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[70000];
    mms_ber_writer_t w;
    ied_answer_t a;
    if (!model)
        setup();
    if (size < 2)
        return 0;
    bool cons = data[1] & 1;
    uint32_t max_pdu = (data[1] & 2) ? 300 : 65000;
    ied_client_t *c;
    CHECK(ied_client_new(model, max_pdu, &c) == 0);
    mms_bw_init(&w, buf, sizeof buf);
    int rc = ied_confirmed(c, data[0], cons, data + 2, size - 2, &w, &a);
    CHECK(rc == 0);
    CHECK(a.kind == IED_RESP || a.kind == IED_ERROR || a.kind == IED_REJECT);
    mms_ber_reader_t r;
    mms_tlv_t t;
    if (a.kind != IED_RESP) {
        CHECK(mms_bw_len(&w) == 0);
    } else {
        CHECK(mms_bw_len(&w) <= max_pdu);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        while ((rc = mms_ber_next(&r, &t)) == 1)
            CHECK(mms_ber_check_tree(&r, &t) == 0);
        CHECK(rc == 0);
    }
    /* new values, then the association's reports */
    now += 1000000000LL;
    CHECK(ied_update_latest(model, "DEMO-0001", LATEST[(now / 1000000000LL) & 1], now) == 0);
    for (int i = 0; i < 64; i++) {
        int svc = -1;
        mms_bw_init(&w, buf, sizeof buf);
        rc = ied_client_next_report(c, now, &w, &svc);
        CHECK(rc == 0 || rc == 1);
        if (!rc)
            break;
        CHECK(svc == MMS_USVC_INFORMATION_REPORT && mms_bw_len(&w) <= max_pdu);
        mms_ber_reader_init(&r, mms_bw_data(&w), mms_bw_len(&w));
        while ((rc = mms_ber_next(&r, &t)) == 1)
            CHECK(mms_ber_check_tree(&r, &t) == 0);
        CHECK(rc == 0);
    }
    CHECK(ied_client_next_due(c) >= 0);
    ied_client_free(c);
    return 0;
}
