/* gridsense-sim: simulates 1..10,000 measurement terminals speaking GSTP to a gridsense server,
 * all on one libuv loop. This file: options, start-up ramp, run/drain/stop phases, progress and
 * the JSON summary.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "secrets.h"
#include "sim.h"
#include "terminal.h"

#define PROGRESS_MS  10000u
#define MAIN_TICK_MS 100u
#define RAMP_TICK_MS 10u

typedef struct {
    sim_t sim;
    uv_timer_t main_timer, ramp_timer;
    uv_signal_t sigint, sigterm;
    uint64_t begin_ms, drain_deadline_ms, next_progress_ms;
    double ramp_budget;
    uint64_t ramp_last_ms; /* uv_now of the previous ramp tick, 0 before the first */
    int signals;
    uint32_t final_online;
} app_t;

static const char usage_text[] =
    "usage: gridsense-sim --secrets FILE [options]\n"
    "Simulates up to 10000 3-phase CT/VT measurement terminals speaking GSTP to a gridsense\n"
    "server, all in one process. Prints one JSON summary line on stdout at exit; exit status 0\n"
    "if every generated block was acknowledged (or no drain was asked for), 1 otherwise, 2 for\n"
    "bad options.\n"
    "\n"
    "Connection:\n"
    "  --server ADDR:PORT        server terminal port (default 127.0.0.1:7100)\n"
    "  --secrets FILE            'ID HEX64' lines from `gridsense terminal add --secrets-out`\n"
    "                            (required)\n"
    "  --terminals N             simulate the first N terminals of FILE (default: all)\n"
    "  --connect-rate N          new connections per second during start-up (default 1000)\n"
    "  --backoff-min-ms MS       reconnect backoff base (default 500)\n"
    "  --backoff-max-ms MS       reconnect backoff cap (default 30000). The delay doubles\n"
    "                            per failed attempt, the wait is uniform in [delay/2, delay],\n"
    "                            at least a REJECT/BYE's retry_after; PROTOCOL, VERSION,\n"
    "                            BAD_CONFIG, UNKNOWN_ID and BAD_AUTH go to the cap at once;\n"
    "                            the delay starts over after 60 s online (docs/protocol.md\n"
    "                            6.8, 9.4, which recommends 2000 and 300000 for real\n"
    "                            terminals; the shorter defaults suit test runs).\n"
    "                            Timeouts as protocol.md 6.9: connect 20 s, CHALLENGE and\n"
    "                            WELCOME 12 s after HELLO, no ACK for 120 s with blocks in\n"
    "                            flight, nothing heard for 3 x WELCOME.heartbeat_s\n"
    "Run:\n"
    "  --duration S              run for S seconds, then drain (default 0 = until SIGINT)\n"
    "  --drain S                 after the run wait up to S s for all blocks to be\n"
    "                            acknowledged (default 15; 0 = exit at once)\n"
    "  --seed N                  randomness of signals, identities and timing (default 1)\n"
    "Signals:\n"
    "  --rate HZ                 sample sets per second per channel (default 4000)\n"
    "  --nominal-hz 50|60        nominal frequency (default 50)\n"
    "  --nominal-v V             nominal phase voltage RMS, secondary (default 57.735)\n"
    "  --nominal-a A             nominal current RMS, secondary (default 5)\n"
    "  --disturb RATE            mean random dips/swells/interruptions per minute on each\n"
    "                            disturbed terminal (default 0.5)\n"
    "  --disturbed-fraction F    fraction of terminals with disturbances (default 0.25)\n"
    "  --schedule SPEC           a scheduled disturbance, in addition to the random ones;\n"
    "                            repeatable (up to 15, not overlapping on a terminal).\n"
    "                            SPEC is KIND@T[+DUR][:LEVEL][/TERMS][,phases=P]:\n"
    "                              KIND   dip, swell or interruption\n"
    "                              T      start, seconds after the simulator start (t = 0:\n"
    "                                     the UTC second it started in, index 0 of every\n"
    "                                     terminal's sample timeline), e.g. 10 or 5.5\n"
    "                              DUR    duration in ms, 1..3600000 (default 100)\n"
    "                              LEVEL  % of nominal: residual of a dip (0..<100, default\n"
    "                                     50) or interruption (0..<5, default 0), peak of a\n"
    "                                     swell (>100..150, default 120)\n"
    "                              TERMS  N or N-M, 1-based in FILE order (default: all)\n"
    "                              P      phases, e.g. A or BC (default ABC; interruptions\n"
    "                                     always hit all three)\n"
    "                            Streaming terminals report a crossing of the dip / swell\n"
    "                            threshold (90 % / 110 %) as an EVENT block, as for random ones.\n"
    "                            e.g. --schedule dip@10+200:60 --schedule swell@5.5+100:115/3\n"
    "                                 --schedule interruption@30+1000/1-5\n"
    "                                 --schedule dip@12+80:40,phases=A\n"
    "Data:\n"
    "  --block-ms MS             waveform block length (default 100)\n"
    "  --max-payload BYTES       largest chunk payload (default 1024)\n"
    "  --codec wcodec|wcodec1|raw  block codec (default wcodec): wcodec sends each block\n"
    "                            losslessly compressed, one segment per chunk, chunks\n"
    "                            filled up to --max-payload: GSTP codec 2 (the block\n"
    "                            model) to a server whose WELCOME announces it, else\n"
    "                            codec 1 when announced, else raw; wcodec1 codec 1 only;\n"
    "                            raw always sends raw samples (docs/protocol.md 6.7, 7.4)\n"
    "  --buffer-blocks N         retransmit buffer per terminal, >= 2 (default 600); at\n"
    "                            most N - 1 blocks are in flight, and when it is full the\n"
    "                            oldest block not yet transmitted is dropped (one that was\n"
    "                            may be stored, so it is kept until acknowledged): every\n"
    "                            dropped block is a gap in the store\n"
    "  --no-stream               do not stream waveforms (idle terminals; STATUS, events on\n"
    "                            command only)\n"
    "  --status-interval S       STATUS period (default 10)\n"
    "Link impairment:\n"
    "  --latency-ms MS           one-way delay of every frame, in both directions: what\n"
    "                            the terminal sends and what it receives, so a round trip\n"
    "                            (PING/PONG, block/ACK) takes 2 x MS (default 0)\n"
    "  --jitter-ms MS            plus uniform -MS..+MS per frame and direction, order kept\n"
    "                            (default 0)\n"
    "  --disconnect-every S      drop each connection at random, mean interval S seconds\n"
    "                            (exponential; default 0 = never)\n"
    "Output:\n"
    "  --ack-latency             measure block write -> ACK latency (ack_p50_ms, ack_p99_ms)\n"
    "  --dump-blocks FILE        write every block's samples as first sent, one line each:\n"
    "                            ID SEQ T0_NS NSETS HEX (the raw interleaved int16 LE bytes,\n"
    "                            whatever the codec on the wire), to check what is stored\n"
    "  --log-level LEVEL         error, warn, info, debug or trace (default info)\n"
    "  --quiet                   no progress line every 10 s\n"
    "  --help                    this text\n"
    "  --version                 print the version\n"
    "\n"
    "Summary line keys: terminals, online (at the end), blocks_generated, blocks_sent\n"
    "(transmissions, re-sends included), blocks_acked, blocks_resent, blocks_dropped (evicted\n"
    "from a full buffer), events_sent, status_sent, commands_answered, reconnects (successful\n"
    "re-logins: WELCOMEs after each terminal's first), connect_attempts (TCP connection\n"
    "attempts, each terminal's first and failed ones included), auth_rejected,\n"
    "samples_generated, unacked, max_acked_seq_sum, bytes_sent (every byte written to the\n"
    "sockets), sample_bytes_sent (the block chunks' sample bytes: raw sets or codec-1/2\n"
    "segments), sample_raw_bytes (the raw size of those sets), wcodec_blocks_sent (with\n"
    "codec 1 or 2), wcodec2_blocks_sent (of those, with codec 2); with\n"
    "--ack-latency also ack_p50_ms and ack_p99_ms.\n";

enum {
    OPT_SERVER = 256,
    OPT_SECRETS,
    OPT_TERMINALS,
    OPT_DURATION,
    OPT_DRAIN,
    OPT_SEED,
    OPT_RATE,
    OPT_NOMINAL_HZ,
    OPT_NOMINAL_V,
    OPT_NOMINAL_A,
    OPT_BLOCK_MS,
    OPT_MAX_PAYLOAD,
    OPT_CODEC,
    OPT_BUFFER_BLOCKS,
    OPT_NO_STREAM,
    OPT_STATUS_INTERVAL,
    OPT_DISTURB,
    OPT_DISTURBED_FRACTION,
    OPT_SCHEDULE,
    OPT_LATENCY,
    OPT_JITTER,
    OPT_DISCONNECT,
    OPT_BACKOFF_MIN,
    OPT_BACKOFF_MAX,
    OPT_CONNECT_RATE,
    OPT_ACK_LATENCY,
    OPT_DUMP_BLOCKS,
    OPT_LOG_LEVEL,
    OPT_QUIET,
    OPT_HELP,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"secrets", required_argument, NULL, OPT_SECRETS},
    {"terminals", required_argument, NULL, OPT_TERMINALS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"seed", required_argument, NULL, OPT_SEED},
    {"rate", required_argument, NULL, OPT_RATE},
    {"nominal-hz", required_argument, NULL, OPT_NOMINAL_HZ},
    {"nominal-v", required_argument, NULL, OPT_NOMINAL_V},
    {"nominal-a", required_argument, NULL, OPT_NOMINAL_A},
    {"block-ms", required_argument, NULL, OPT_BLOCK_MS},
    {"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"codec", required_argument, NULL, OPT_CODEC},
    {"buffer-blocks", required_argument, NULL, OPT_BUFFER_BLOCKS},
    {"no-stream", no_argument, NULL, OPT_NO_STREAM},
    {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
    {"disturb", required_argument, NULL, OPT_DISTURB},
    {"disturbed-fraction", required_argument, NULL, OPT_DISTURBED_FRACTION},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"jitter-ms", required_argument, NULL, OPT_JITTER},
    {"disconnect-every", required_argument, NULL, OPT_DISCONNECT},
    {"backoff-min-ms", required_argument, NULL, OPT_BACKOFF_MIN},
    {"backoff-max-ms", required_argument, NULL, OPT_BACKOFF_MAX},
    {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
    {"ack-latency", no_argument, NULL, OPT_ACK_LATENCY},
    {"dump-blocks", required_argument, NULL, OPT_DUMP_BLOCKS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gridsense-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    exit(2);
}

static uint32_t opt_u32(const char *name, const char *v, int64_t min, int64_t max)
{
    int64_t x;
    if (parse_i64(v, min, max, &x) != 0)
        die_usage("--%s: expected an integer in %lld..%lld, got '%s'", name, (long long)min,
                  (long long)max, v);
    return (uint32_t)x;
}

static double opt_double(const char *name, const char *v, double min, double max)
{
    double x;
    if (parse_double(v, min, max, &x) != 0)
        die_usage("--%s: expected a number in %g..%g, got '%s'", name, min, max, v);
    return x;
}

static void config_defaults(sim_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 7100;
    c->drain_s = 15;
    c->seed = 1;
    c->rate = 4000;
    c->nominal_hz = 50;
    c->nominal_v = 57.735;
    c->nominal_a = 5;
    c->block_ms = 100;
    c->max_payload = 1024;
    c->codec = SIM_CODEC_WCODEC;
    c->buffer_blocks = 600;
    c->stream = 1;
    c->status_interval_s = 10;
    c->disturb_per_min = 0.5;
    c->disturbed_fraction = 0.25;
    c->backoff_min_ms = 500;
    c->backoff_max_ms = 30000;
    c->connect_rate = 1000;
}

static void parse_args(int argc, char **argv, sim_config_t *c)
{
    int opt;
    int64_t v;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (opt) {
        case OPT_SERVER:
            if (addr_parse(a, c->host, sizeof c->host, &c->port) != 0 || c->port == 0)
                die_usage("--server: expected HOST:PORT, got '%s'", a);
            break;
        case OPT_SECRETS:
            c->secrets_path = a;
            break;
        case OPT_TERMINALS:
            c->terminals = opt_u32("terminals", a, 1, SIM_MAX_TERMINALS);
            break;
        case OPT_DURATION:
            c->duration_s = opt_double("duration", a, 0, 1e9);
            break;
        case OPT_DRAIN:
            c->drain_s = opt_double("drain", a, 0, 1e6);
            break;
        case OPT_SEED:
            if (parse_i64(a, 0, INT64_MAX, &v) != 0)
                die_usage("--seed: expected a non-negative integer, got '%s'", a);
            c->seed = (uint64_t)v;
            break;
        case OPT_RATE:
            c->rate = opt_u32("rate", a, 200, 100000);
            break;
        case OPT_NOMINAL_HZ:
            c->nominal_hz = opt_u32("nominal-hz", a, 50, 60);
            if (c->nominal_hz != 50 && c->nominal_hz != 60)
                die_usage("--nominal-hz: must be 50 or 60");
            break;
        case OPT_NOMINAL_V:
            c->nominal_v = opt_double("nominal-v", a, 0.001, 1e6);
            break;
        case OPT_NOMINAL_A:
            c->nominal_a = opt_double("nominal-a", a, 0.001, 1e6);
            break;
        case OPT_BLOCK_MS:
            c->block_ms = opt_u32("block-ms", a, 10, 10000);
            break;
        case OPT_MAX_PAYLOAD:
            c->max_payload = opt_u32("max-payload", a, 128, GSTP_MAX_PAYLOAD);
            break;
        case OPT_CODEC:
            if (strcmp(a, "wcodec") == 0)
                c->codec = SIM_CODEC_WCODEC;
            else if (strcmp(a, "wcodec1") == 0)
                c->codec = SIM_CODEC_WCODEC1;
            else if (strcmp(a, "raw") == 0)
                c->codec = SIM_CODEC_RAW;
            else
                die_usage("--codec: expected wcodec, wcodec1 or raw, got '%s'", a);
            break;
        case OPT_BUFFER_BLOCKS:
            c->buffer_blocks = opt_u32("buffer-blocks", a, 2, 1000000);
            break;
        case OPT_NO_STREAM:
            c->stream = 0;
            break;
        case OPT_STATUS_INTERVAL:
            c->status_interval_s = opt_u32("status-interval", a, 1, 86400);
            break;
        case OPT_DISTURB:
            c->disturb_per_min = opt_double("disturb", a, 0, 600);
            break;
        case OPT_DISTURBED_FRACTION:
            c->disturbed_fraction = opt_double("disturbed-fraction", a, 0, 1);
            break;
        case OPT_SCHEDULE: {
            char why[160];
            if (c->nsched == SCHED_MAX)
                die_usage("--schedule: at most %d disturbances", SCHED_MAX);
            if (sched_parse(a, &c->sched[c->nsched], why, sizeof why) != 0)
                die_usage("--schedule '%s': %s", a, why);
            c->nsched++;
            break;
        }
        case OPT_LATENCY:
            c->latency_ms = opt_u32("latency-ms", a, 0, 60000);
            break;
        case OPT_JITTER:
            c->jitter_ms = opt_u32("jitter-ms", a, 0, 60000);
            break;
        case OPT_DISCONNECT:
            c->disconnect_every_s = opt_double("disconnect-every", a, 0, 1e9);
            break;
        case OPT_BACKOFF_MIN:
            c->backoff_min_ms = opt_u32("backoff-min-ms", a, 1, 3600000);
            break;
        case OPT_BACKOFF_MAX:
            c->backoff_max_ms = opt_u32("backoff-max-ms", a, 1, 3600000);
            break;
        case OPT_CONNECT_RATE:
            c->connect_rate = opt_u32("connect-rate", a, 1, 1000000);
            break;
        case OPT_ACK_LATENCY:
            c->ack_latency = 1;
            break;
        case OPT_LOG_LEVEL: {
            log_level_t lv;
            if (log_parse_level(a, &lv) != 0)
                die_usage("--log-level: expected error, warn, info, debug or trace");
            log_set_level(lv);
            break;
        }
        case OPT_QUIET:
            c->quiet = 1;
            break;
        case OPT_DUMP_BLOCKS:
            c->dump_path = a;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(0);
        case OPT_VERSION:
            printf("gridsense-sim %s\n", GS_VERSION);
            exit(0);
        case ':':
            die_usage("option %s needs a value", argv[optind - 1]);
        default:
            die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!c->secrets_path)
        die_usage("--secrets FILE is required");
    if (c->backoff_min_ms > c->backoff_max_ms)
        die_usage("--backoff-min-ms must not exceed --backoff-max-ms");
    if ((uint64_t)c->rate * c->block_ms % 1000 != 0)
        die_usage("--rate x --block-ms must be a whole number of samples per block");
    uint64_t bs = (uint64_t)c->rate * c->block_ms / 1000;
    if (bs < 1 || bs > GSTP_MAX_BLOCK_SAMPLES)
        die_usage("a block must hold 1..%u sample sets (rate x block-ms / 1000 = %llu)",
                  GSTP_MAX_BLOCK_SAMPLES, (unsigned long long)bs);
    uint16_t per = gstp_block_chunk_capacity(SIG_NCH, GSTP_FMT_INT16, 0, c->max_payload);
    if (per == 0 || (bs + per - 1) / per > 255)
        die_usage("--max-payload %u: a block would need more than 255 chunks", c->max_payload);
    uint64_t ev = ((uint64_t)10 * c->rate + c->nominal_hz / 2) / c->nominal_hz;
    uint16_t eper = gstp_block_chunk_capacity(SIG_NCH, GSTP_FMT_INT16, 1, c->max_payload);
    if (ev > GSTP_MAX_BLOCK_SAMPLES || eper == 0 || (ev + eper - 1) / eper > 255)
        die_usage("--rate %u: a 10-cycle event capture does not fit in one block", c->rate);
}

/* ---- latency histogram ---- */

void sim_hist_add(sim_hist_t *h, int64_t ns)
{
    double us = ns / 1000.0;
    int b = us <= 1 ? 0 : (int)(16.0 * log2(us));
    if (b >= SIM_LAT_BUCKETS)
        b = SIM_LAT_BUCKETS - 1;
    h->bucket[b]++;
    h->count++;
}

double sim_hist_quantile(const sim_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->count), seen = 0;
    if (want == 0)
        want = 1;
    for (int b = 0; b < SIM_LAT_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= want)
            return pow(2.0, (b + 0.5) / 16.0) / 1000.0; /* bucket middle, in ms */
    }
    return 0;
}

/* ---- run phases ---- */

static int drained_ok(const app_t *app)
{
    const sim_t *s = &app->sim;
    if (s->cfg.drain_s <= 0)
        return 1;
    return s->st.unacked == 0 && s->st.blocks_dropped == 0;
}

static void print_summary(app_t *app)
{
    const sim_t *s = &app->sim;
    const sim_stats_t *st = &s->st;
    buf_t b = {0};
    uint64_t max_acked = 0;
    for (uint32_t i = 0; i < s->nterms; i++)
        max_acked += s->terms[i].acked_seq;
    buf_printf(&b,
               "{\"terminals\":%u,\"online\":%u,\"blocks_generated\":%llu,\"blocks_sent\":%llu,"
               "\"blocks_acked\":%llu,\"blocks_resent\":%llu,\"blocks_dropped\":%llu,"
               "\"events_sent\":%llu,\"status_sent\":%llu,\"commands_answered\":%llu,"
               "\"reconnects\":%llu,\"connect_attempts\":%llu,\"auth_rejected\":%llu,"
               "\"samples_generated\":%llu,\"unacked\":%llu,\"max_acked_seq_sum\":%llu,"
               "\"start_ns\":%lld,\"bytes_sent\":%llu,\"sample_bytes_sent\":%llu,"
               "\"sample_raw_bytes\":%llu,\"wcodec_blocks_sent\":%llu,"
               "\"wcodec2_blocks_sent\":%llu",
               s->nterms, s->phase == SIM_STOP ? app->final_online : st->online,
               (unsigned long long)st->blocks_generated, (unsigned long long)st->blocks_sent,
               (unsigned long long)st->blocks_acked, (unsigned long long)st->blocks_resent,
               (unsigned long long)st->blocks_dropped, (unsigned long long)st->events_sent,
               (unsigned long long)st->status_sent, (unsigned long long)st->commands_answered,
               (unsigned long long)st->reconnects, (unsigned long long)st->connect_attempts,
               (unsigned long long)st->auth_rejected, (unsigned long long)st->samples_generated,
               (unsigned long long)st->unacked, (unsigned long long)max_acked,
               (long long)s->start_ns, (unsigned long long)st->bytes_sent,
               (unsigned long long)st->sample_bytes_sent, (unsigned long long)st->sample_raw_bytes,
               (unsigned long long)st->wcodec_blocks_sent,
               (unsigned long long)st->wcodec2_blocks_sent);
    if (s->cfg.ack_latency)
        buf_printf(&b, ",\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f", sim_hist_quantile(&s->lat, 0.5),
                   sim_hist_quantile(&s->lat, 0.99));
    buf_puts(&b, "}\n");
    fputs(b.data, stdout);
    fflush(stdout);
    buf_free(&b);
}

static void progress(app_t *app, uint64_t now)
{
    const sim_t *s = &app->sim;
    const sim_stats_t *st = &s->st;
    if (s->cfg.quiet)
        return;
    fprintf(stderr,
            "gridsense-sim: %.0f s %s: online %u/%u, blocks generated %llu sent %llu acked %llu "
            "resent %llu dropped %llu unacked %llu, events %llu, reconnects %llu (connect attempts "
            "%llu), rejected %llu\n",
            (now - app->begin_ms) / 1000.0,
            s->phase == SIM_RUN     ? "running"
            : s->phase == SIM_DRAIN ? "draining"
                                    : "stopping",
            st->online, s->nterms, (unsigned long long)st->blocks_generated,
            (unsigned long long)st->blocks_sent, (unsigned long long)st->blocks_acked,
            (unsigned long long)st->blocks_resent, (unsigned long long)st->blocks_dropped,
            (unsigned long long)st->unacked, (unsigned long long)st->events_sent,
            (unsigned long long)st->reconnects, (unsigned long long)st->connect_attempts,
            (unsigned long long)st->auth_rejected);
}

/* Ends the run: BYE and close every terminal, stop our handles; uv_run then returns. */
static void finish(app_t *app)
{
    sim_t *s = &app->sim;
    if (s->phase == SIM_STOP)
        return;
    app->final_online = s->st.online;
    s->phase = SIM_STOP;
    for (uint32_t i = 0; i < s->nterms; i++)
        term_stop(&s->terms[i]);
    uv_close((uv_handle_t *)&app->main_timer, NULL);
    uv_close((uv_handle_t *)&app->ramp_timer, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static void begin_drain(app_t *app, const char *why)
{
    sim_t *s = &app->sim;
    if (s->phase != SIM_RUN)
        return;
    s->phase = SIM_DRAIN;
    uint64_t now = uv_now(s->loop);
    app->drain_deadline_ms = now + (uint64_t)(s->cfg.drain_s * 1000);
    for (uint32_t i = 0; i < s->nterms; i++)
        term_stop_generating(&s->terms[i]);
    if (!s->cfg.quiet)
        fprintf(stderr, "gridsense-sim: %s; %s\n", why,
                s->cfg.drain_s > 0 ? "waiting for acknowledgements" : "stopping");
    if (s->cfg.drain_s <= 0)
        finish(app);
}

static void on_main_timer(uv_timer_t *h)
{
    app_t *app = h->data;
    sim_t *s = &app->sim;
    uint64_t now = uv_now(s->loop);
    if (s->phase == SIM_RUN && s->cfg.duration_s > 0 &&
        now - app->begin_ms >= (uint64_t)(s->cfg.duration_s * 1000))
        begin_drain(app, "duration reached");
    if (s->phase == SIM_DRAIN && (s->st.unacked == 0 || now >= app->drain_deadline_ms)) {
        if (s->st.unacked && !s->cfg.quiet)
            fprintf(stderr, "gridsense-sim: drain timeout with %llu blocks unacknowledged\n",
                    (unsigned long long)s->st.unacked);
        finish(app);
        return;
    }
    if (now >= app->next_progress_ms) {
        progress(app, now);
        app->next_progress_ms = now + PROGRESS_MS;
    }
}

static void on_ramp(uv_timer_t *h)
{
    app_t *app = h->data;
    sim_t *s = &app->sim;
    if (s->phase == SIM_STOP)
        return;
    /* Scale by the time that really passed: when the loop is busy the timer fires late, and a
     * fixed budget per tick would slow the ramp below --connect-rate. */
    uint64_t now = uv_now(h->loop);
    if (!app->ramp_last_ms)
        app->ramp_last_ms = now - RAMP_TICK_MS;
    app->ramp_budget += s->cfg.connect_rate * ((double)(now - app->ramp_last_ms) / 1000.0);
    app->ramp_last_ms = now;
    while (app->ramp_budget >= 1 && s->started < s->nterms) {
        term_start(&s->terms[s->started++]);
        app->ramp_budget -= 1;
    }
    if (s->started == s->nterms)
        uv_timer_stop(h);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *app = h->data;
    if (++app->signals >= 2) {
        fprintf(stderr, "gridsense-sim: second signal, exiting now\n");
        print_summary(app);
        exit(drained_ok(app) ? 0 : 1);
    }
    begin_drain(app, signum == SIGINT ? "interrupted" : "terminated");
}

/* Raises the open-file soft limit to the hard limit: every terminal holds a socket. */
static void raise_nofile(uint32_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn(NULL, "cannot raise the open-file limit: %s", strerror(errno));
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 64)
        log_warn(NULL, "open-file limit %llu is too low for %u terminals",
                 (unsigned long long)rl.rlim_cur, need);
}

static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
    struct addrinfo hints, *res = NULL;
    char ports[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ports, sizeof ports, "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0 || !res)
        return GS_ENOTFOUND;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    static app_t app;
    sim_t *s = &app.sim;
    secret_entry_t *secrets = NULL;
    size_t nsecrets = 0;
    char err[256];
    int rc, status = 1;

    config_defaults(&s->cfg);
    parse_args(argc, argv, &s->cfg);
    if (sodium_init() < 0) {
        fprintf(stderr, "gridsense-sim: libsodium initialisation failed\n");
        return 1;
    }
    rc = secrets_load(s->cfg.secrets_path, s->cfg.terminals, &secrets, &nsecrets, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "gridsense-sim: %s\n", err);
        return 1;
    }
    if (nsecrets == 0) {
        fprintf(stderr, "gridsense-sim: %s: no terminals\n", s->cfg.secrets_path);
        goto fail;
    }
    if (s->cfg.terminals && nsecrets < s->cfg.terminals) {
        fprintf(stderr, "gridsense-sim: --terminals %u but %s holds only %zu\n", s->cfg.terminals,
                s->cfg.secrets_path, nsecrets);
        status = 2;
        goto fail;
    }
    if (nsecrets > SIM_MAX_TERMINALS) {
        fprintf(stderr, "gridsense-sim: %s holds %zu terminals; use --terminals <= %u\n",
                s->cfg.secrets_path, nsecrets, SIM_MAX_TERMINALS);
        status = 2;
        goto fail;
    }
    if (sched_check(s->cfg.sched, s->cfg.nsched, s->cfg.rate, (uint32_t)nsecrets, err,
                    sizeof err) != 0) {
        fprintf(stderr, "gridsense-sim: %s (see --help)\n", err);
        status = 2;
        goto fail;
    }
    for (uint32_t i = 0; i < s->cfg.nsched; i++)
        if (s->cfg.duration_s > 0 && s->cfg.sched[i].start_s >= s->cfg.duration_s)
            log_warn(NULL, "--schedule '%s' starts after the run (--duration %g)",
                     s->cfg.sched[i].spec, s->cfg.duration_s);
    if (resolve(s->cfg.host, s->cfg.port, &s->addr) != 0) {
        fprintf(stderr, "gridsense-sim: cannot resolve %s\n", s->cfg.host);
        goto fail;
    }
    raise_nofile((uint32_t)nsecrets);
    signal(SIGPIPE, SIG_IGN);

    s->loop = uv_default_loop();
    s->nterms = (uint32_t)nsecrets;
    s->start_ns = time_utc_ns() / 1000000000LL * 1000000000LL; /* on a UTC second */
    s->block_samples = s->cfg.rate * s->cfg.block_ms / 1000;
    s->chunk_wave = gstp_block_chunk_capacity(SIG_NCH, GSTP_FMT_INT16, 0, s->cfg.max_payload);
    s->chunk_event = gstp_block_chunk_capacity(SIG_NCH, GSTP_FMT_INT16, 1, s->cfg.max_payload);
    s->scratch = xmalloc((size_t)GSTP_MAX_BLOCK_SAMPLES * SIG_NCH * sizeof *s->scratch);
    s->frames = xmalloc(SIM_FRAMES_CAP);
    if (s->cfg.dump_path && !(s->dump = fopen(s->cfg.dump_path, "w"))) {
        fprintf(stderr, "gridsense-sim: --dump-blocks %s: %s\n", s->cfg.dump_path,
                strerror(errno));
        goto fail;
    }
    s->terms = xcalloc(s->nterms, sizeof *s->terms);
    for (uint32_t i = 0; i < s->nterms; i++) {
        rc = term_init(&s->terms[i], s, i, secrets[i].id, secrets[i].secret);
        if (rc != 0) { /* only invalid signal parameters or schedules fail here */
            fprintf(stderr, "gridsense-sim: terminal %s: %s\n", secrets[i].id, err_str(rc));
            status = 2;
            goto fail;
        }
    }
    sodium_memzero(secrets, nsecrets * sizeof *secrets);
    free(secrets);
    secrets = NULL;

    uv_timer_init(s->loop, &app.main_timer);
    uv_timer_init(s->loop, &app.ramp_timer);
    uv_signal_init(s->loop, &app.sigint);
    uv_signal_init(s->loop, &app.sigterm);
    app.main_timer.data = app.ramp_timer.data = app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    app.begin_ms = uv_now(s->loop);
    app.next_progress_ms = app.begin_ms + PROGRESS_MS;
    uv_timer_start(&app.main_timer, on_main_timer, MAIN_TICK_MS, MAIN_TICK_MS);
    uv_timer_start(&app.ramp_timer, on_ramp, 0, RAMP_TICK_MS);
    log_info(NULL, "simulating %u terminals against %s:%d (%u Hz, %u ms blocks, %s)", s->nterms,
             s->cfg.host, s->cfg.port, s->cfg.rate, s->cfg.block_ms,
             s->cfg.stream ? "streaming" : "idle");

    uv_run(s->loop, UV_RUN_DEFAULT);

    print_summary(&app);
    status = drained_ok(&app) ? 0 : 1;
    for (uint32_t i = 0; i < s->nterms; i++)
        term_free(&s->terms[i]);
    free(s->terms);
    free(s->scratch);
    free(s->frames);
    if (s->dump && fclose(s->dump) != 0)
        status = 1;
    uv_loop_close(s->loop);
    return status;

fail:
    free(s->terms); /* no handle is active yet: nothing to close */
    free(s->scratch);
    free(s->frames);
    if (s->dump)
        fclose(s->dump);
    if (secrets)
        sodium_memzero(secrets, nsecrets * sizeof *secrets);
    free(secrets);
    return status;
}
