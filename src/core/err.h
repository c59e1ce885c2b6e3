/* gridsense shared error codes.
 *
 * Every function of ours that can fail returns 0 on success or a negative code from this enum.
 * System errors pass through as -errno (libuv's UV_E* values are -errno on Linux too), so the
 * enum starts far below the errno range. err_str() and err_name() accept both kinds.
 */
#ifndef GS_CORE_ERR_H
#define GS_CORE_ERR_H

#define GS_ERR_MAP(X)                                                                              \
    X(INVAL, "invalid argument")                                                                   \
    X(NOMEM, "out of memory")                                                                      \
    X(RANGE, "value out of range")                                                                 \
    X(PROTO, "protocol error")                                                                     \
    X(CRC, "checksum mismatch")                                                                    \
    X(TRUNC, "truncated input")                                                                    \
    X(AUTH, "authentication failed")                                                               \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(BUSY, "busy, try again")                                                                     \
    X(LIMIT, "limit reached")                                                                      \
    X(DB, "database error")                                                                        \
    X(CONFIG, "configuration error")                                                               \
    X(STATE, "invalid state")                                                                      \
    X(TIMEOUT, "timed out")                                                                        \
    X(CLOSED, "closed")                                                                            \
    X(IO, "input/output error")                                                                    \
    X(NOTSUP, "not supported")

enum {
    GS_ERR_BASE_ = -10000,
#define X(name, text) GS_E##name,
    GS_ERR_MAP(X)
#undef X
};

/* Returns a static, human-readable description of `code` (ours or -errno). Never NULL. */
const char *err_str(int code);

/* Returns the symbolic name of `code` ("GS_EPROTO", "ECONNRESET", ...). Never NULL. */
const char *err_name(int code);

#endif
