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

#define log_error(who, ...) log_msg(LOG_ERROR, who, __VA_ARGS__)
#define log_warn(who, ...)  log_msg(LOG_WARN, who, __VA_ARGS__)
#define log_info(who, ...)  log_msg(LOG_INFO, who, __VA_ARGS__)
#define log_debug(who, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, who, __VA_ARGS__);                                                  \
    } while (0)

#endif
