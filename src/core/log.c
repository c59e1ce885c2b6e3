#include "log.h"
#include "err.h"

#include <pthread.h>
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
