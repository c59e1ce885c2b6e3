/* Levelled logging to stderr: one line per message, UTC timestamp, level, optional terminal id.
 *
 * Thread-safe (each line is written with one fprintf under a mutex). The level is process-wide
 * and set once at start-up by the application.
 */
#ifndef GS_CORE_LOG_H
#define GS_CORE_LOG_H

#include <stdarg.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE } log_level_t;

/* Sets the minimum level that is printed. Default LOG_INFO. */
void log_set_level(log_level_t level);

/* Returns the current minimum level. */
log_level_t log_get_level(void);

/* Parses "error", "warn", "info", "debug" or "trace" into *out. Returns 0 or GS_EINVAL. */
int log_parse_level(const char *text, log_level_t *out);

/* Writes one log line if `level` is enabled. `who` is a terminal id or subsystem tag and may be
 * NULL. The message is truncated to 1 KiB and control characters are escaped, because terminal
 * ids and remote strings end up in it. */
void log_msg(log_level_t level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate-limited logging for lines a remote peer can cause (failed logins, protocol violations):
 * writes like log_msg(level, source, ...) but at most LOG_LIMIT_BURST lines per `source` (e.g. a
 * remote address) per LOG_LIMIT_WINDOW_S seconds. Further lines from the source in its window are
 * counted, and when the source's next line is allowed (or at log_limited_flush() after the
 * window) one line "suppressed N similar messages from SOURCE in the last 60 s" is written
 * first. Across all sources at most LOG_LIMIT_GLOBAL lines per window are written (so many
 * sources cannot flood either); those suppressed are summarised in the same way with source "*".
 * Memory is bounded: sources live in a fixed table of LOG_LIMIT_SLOTS entries; a new source
 * takes the least recently used entry of its bucket (its pending summary is written first).
 * Thread-safe. `source` may be NULL (counted as "-"). */
#define LOG_LIMIT_BURST    5
#define LOG_LIMIT_WINDOW_S 60
#define LOG_LIMIT_GLOBAL   200
#define LOG_LIMIT_SLOTS    1024
void log_limited(int level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the summary line of every source whose window has ended with suppressed lines, and
 * frees their entries. Call periodically (the gateway does once a second). Thread-safe. */
void log_limited_flush(void);

/* Test hook: the clock (nanoseconds, monotonic) used by log_limited; NULL restores the real
 * one. Also forgets every source. Not for production use. */
void log_limited_set_clock(long long (*now_ns)(void));

#define log_error(who, ...) log_msg(LOG_ERROR, who, __VA_ARGS__)
#define log_warn(who, ...)  log_msg(LOG_WARN, who, __VA_ARGS__)
#define log_info(who, ...)  log_msg(LOG_INFO, who, __VA_ARGS__)
#define log_debug(who, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, who, __VA_ARGS__);                                                  \
    } while (0)

#endif
