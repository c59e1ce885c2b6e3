#include "log.h"
#include "err.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level_t min_level = LOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void log_set_level(log_level_t level)
{
    min_level = level;
}

log_level_t log_get_level(void)
{
    return min_level;
}

int log_parse_level(const char *text, log_level_t *out)
{
    static const char *const lower[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(text, lower[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return GS_EINVAL;
}

/* Copies src to dst escaping bytes outside printable ASCII, so a hostile terminal id cannot
 * forge log lines. */
static void sanitize(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src && o + 5 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c >= 0x20 && c < 0x7f) {
            dst[o++] = (char)c;
        } else {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        }
    }
    dst[o] = 0;
}

void log_msg(log_level_t level, const char *who, const char *fmt, ...)
{
    if (level > min_level)
        return;
    char raw[1024], msg[1024], whob[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    sanitize(msg, sizeof msg, raw);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (who)
        sanitize(whob, sizeof whob, who);
    pthread_mutex_lock(&lock);
    if (who)
        fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", when, ts.tv_nsec / 1000000L, names[level], whob,
                msg);
    else
        fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L, names[level], msg);
    pthread_mutex_unlock(&lock);
}

/* ---- rate-limited lines ----------------------------------------------------------------------
 * A fixed table of LOG_LIMIT_SLOTS sources in 4-way buckets: a lookup touches one bucket, and a
 * new source recycles the least recently used entry of its bucket, so memory never depends on
 * how many addresses a flood comes from. The global budget bounds the total when many sources
 * each stay under their own limit (an attacker with many addresses). */

#define LL_WAYS    4
#define LL_BUCKETS (LOG_LIMIT_SLOTS / LL_WAYS)
#define LL_WINDOW  ((long long)LOG_LIMIT_WINDOW_S * 1000000000LL)

typedef struct {
    char key[64];           /* source, truncated; "" = free */
    long long window_start; /* start of the source's current window */
    long long last_used;
    int count; /* lines written in the window */
    int level; /* level of the last suppressed line */
    unsigned long suppressed;
} ll_slot_t;

static pthread_mutex_t ll_lock = PTHREAD_MUTEX_INITIALIZER;
static ll_slot_t ll_tab[LOG_LIMIT_SLOTS];
static long long ll_global_start;
static int ll_global_count, ll_global_level = LOG_WARN;
static unsigned long ll_global_suppressed;
static long long (*ll_clock)(void);

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void log_limited_set_clock(long long (*now_ns)(void))
{
    pthread_mutex_lock(&ll_lock);
    ll_clock = now_ns;
    memset(ll_tab, 0, sizeof ll_tab);
    ll_global_start = 0;
    ll_global_count = 0;
    ll_global_suppressed = 0;
    pthread_mutex_unlock(&ll_lock);
}

/* Ends the global window if it is over, writing its summary (ll_lock held). */
static void ll_global_roll(long long now)
{
    if (now - ll_global_start >= LL_WINDOW) {
        if (ll_global_suppressed)
            log_msg((log_level_t)ll_global_level, "*",
                    "suppressed %lu similar messages from * in the last %d s", ll_global_suppressed,
                    LOG_LIMIT_WINDOW_S);
        ll_global_start = now;
        ll_global_count = 0;
        ll_global_suppressed = 0;
    }
}

/* Global budget (ll_lock held): 1 if one more line may be written now. */
static int ll_global_take(long long now, int level)
{
    ll_global_roll(now);
    if (ll_global_count < LOG_LIMIT_GLOBAL) {
        ll_global_count++;
        return 1;
    }
    ll_global_suppressed++;
    ll_global_level = level;
    return 0;
}

/* Writes slot's pending summary (ll_lock held) and clears its count. */
static void ll_summary(ll_slot_t *sl, long long now)
{
    if (!sl->suppressed)
        return;
    if (ll_global_take(now, sl->level))
        log_msg((log_level_t)sl->level, sl->key,
                "suppressed %lu similar messages from %s in the last %d s", sl->suppressed, sl->key,
                LOG_LIMIT_WINDOW_S);
    else
        ll_global_suppressed += sl->suppressed - 1; /* the take above counted one */
    sl->suppressed = 0;
}

/* Finds or recycles the entry of `key` (ll_lock held). */
static ll_slot_t *ll_slot(const char *key, long long now)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    ll_slot_t *b = &ll_tab[(h % LL_BUCKETS) * LL_WAYS], *victim = NULL;
    for (int i = 0; i < LL_WAYS; i++) {
        if (b[i].key[0] && strncmp(b[i].key, key, sizeof b[i].key - 1) == 0)
            return &b[i];
        if (!victim || !b[i].key[0] || (victim->key[0] && b[i].last_used < victim->last_used))
            victim = &b[i];
    }
    if (victim->key[0])
        ll_summary(victim, now);
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->window_start = now;
    return victim;
}

void log_limited(int level, const char *source, const char *fmt, ...)
{
    if (level > (int)min_level)
        return;
    char raw[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    const char *key = source && *source ? source : "-";
    pthread_mutex_lock(&ll_lock);
    long long now = ll_clock ? ll_clock() : mono_ns();
    ll_slot_t *sl = ll_slot(key, now);
    sl->last_used = now;
    if (now - sl->window_start >= LL_WINDOW) {
        ll_summary(sl, now);
        sl->window_start = now;
        sl->count = 0;
    }
    if (sl->count < LOG_LIMIT_BURST) {
        sl->count++;
        if (ll_global_take(now, level))
            log_msg((log_level_t)level, sl->key, "%s", raw);
    } else {
        sl->suppressed++;
        sl->level = level;
    }
    pthread_mutex_unlock(&ll_lock);
}

void log_limited_flush(void)
{
    pthread_mutex_lock(&ll_lock);
    long long now = ll_clock ? ll_clock() : mono_ns();
    for (int i = 0; i < LOG_LIMIT_SLOTS; i++) {
        ll_slot_t *sl = &ll_tab[i];
        if (sl->key[0] && now - sl->window_start >= LL_WINDOW) {
            ll_summary(sl, now);
            memset(sl, 0, sizeof *sl); /* an idle source gives its entry back */
        }
    }
    ll_global_roll(now);
    pthread_mutex_unlock(&ll_lock);
}
