/* admit — web's connection front (internal to src/web).
 *
 * Owns the listening socket: admits each connection against the caps of web_opts_t (evicting
 * the oldest connection without a request outstanding when one is full), reads the first
 * request head without consuming it, answers what is malformed or too large itself (400, 408,
 * 414, 431) and hands the rest to lws by adoption into its vhost. Connections lws serves keep
 * their address slot until lws destroys them (adm_wsi_*); between requests adm answers 408 for
 * a next head lws has begun but not finished within 1 s (lws stalls on some). Everything runs on
 * the loop thread.
 */
#ifndef GS_WEB_ADMIT_H
#define GS_WEB_ADMIT_H

#include <stddef.h>
#include <uv.h>

#include "web/web.h"

struct lws;
struct lws_vhost;
typedef struct adm adm_t;

/* Opens a listening socket on a numeric IPv4/IPv6 host, or any address for NULL (IPv6
 * dual-stack, else IPv4). Returns the fd, or -errno / GS_EINVAL with the reason in err. */
int adm_listen(const char *host, int port, char *err, size_t errlen);

/* Appends the API's error shape {"error":{"code","message"}} for web's own answers: the code
 * named after status ("bad_request", "length_required", ...), text (trailing newlines cut) as
 * the message. */
void adm_error_json(buf_t *b, int status, const char *text);

/* The connection cap that fits the process's open-file limit: o->max_connections, lowered so
 * that o->reserved_fds (and a few for the listener and lws) remain. */
int adm_fd_budget(const web_opts_t *o);

/* Starts accepting on lfd (ownership passes to adm, also on failure) and adopting into vh with
 * at most cap connections. Returns 0 or a negative code. */
int adm_start(uv_loop_t *loop, int lfd, struct lws_vhost *vh, const web_opts_t *o, int cap,
              adm_t **out);

/* From inside the loop: stops accepting, closes the connections adm is reading. Connections lws
 * serves are closed by lws (their adm_wsi_destroyed still comes). NULL is a no-op. */
void adm_stop(adm_t *ad);

/* After the loop has closed adm's handles and lws has destroyed every wsi. NULL is a no-op. */
void adm_free(adm_t *ad);

/* lws callbacks of the vhost's protocol: a wsi adopted by adm (SERVER_NEW_CLIENT_INSTANTIATED),
 * destroyed (WSI_DESTROY), and between requests (idle 1, after lws_http_transaction_completed)
 * or busy again (idle 0, at the next request). Ignore wsis adm did not adopt. */
void adm_wsi_adopted(adm_t *ad, struct lws *wsi);
void adm_wsi_destroyed(adm_t *ad, struct lws *wsi);
void adm_wsi_idle(adm_t *ad, struct lws *wsi, int idle);

/* 1 if the response to the current request of wsi must close the connection: its first head
 * was given to lws with lines dropped (the client will likely send them again, and only a new
 * connection passes through adm; see admit.c). */
int adm_wsi_close_after(adm_t *ad, struct lws *wsi);

/* Copies the counters into *st. */
void adm_stats(const adm_t *ad, web_stats_t *st);

#endif
