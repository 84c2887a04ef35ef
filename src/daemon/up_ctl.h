/*
 * up_ctl.h — the control socket of `kpool up --brokers N` (<data>/up.sock): how
 * `kpool pool restart` asks the process that supervises a dev pool's brokers to restart one
 * of them, and whether a broker is back in every ISR (its /readyz).
 *
 * One request per connection, one line each way:
 *   "brokers\n"       -> "ok 1 2 3\n"        (the broker ids it runs)
 *   "restart K\n"     -> "ok\n"              (broker K stopped — a controlled shutdown — and
 *                                             started again: its process is up)
 *   "ready K\n"       -> "ok 1\n" / "ok 0\n"  (broker K's /readyz: in the ISR of every
 *                                             partition it follows)
 *   anything else     -> "error <why>\n"
 * The socket is the data directory's (0700), mode 0600: only its owner may use it.
 */
#ifndef KP_UP_CTL_H
#define KP_UP_CTL_H

#include <stddef.h>

/* A request as read from the socket (kp_up_ctl_parse). */
typedef enum { KP_UP_REQ_BROKERS, KP_UP_REQ_RESTART, KP_UP_REQ_READY } kp_up_req_kind_t;

typedef struct kp_up_req {
    kp_up_req_kind_t kind;
    int broker; /* RESTART, READY: 1..KP_UP_CTL_BROKER_MAX */
} kp_up_req_t;

/* The largest broker id a request may name (kpool up runs at most 16). */
#define KP_UP_CTL_BROKER_MAX 64
/* The longest request line read (anything longer is refused). */
#define KP_UP_CTL_LINE_MAX 64

/* Parses one request line (without or with its '\n'). 0, or -1 with err. */
int kp_up_ctl_parse(const char *line, size_t len, kp_up_req_t *out, char *err, size_t errlen);

/* Answers one request: fills reply (one line, no '\n') starting "ok" or "error". Runs on the
 * socket's thread, one request at a time. */
typedef void (*kp_up_ctl_fn)(void *arg, const kp_up_req_t *req, char *reply, size_t len);

typedef struct kp_up_ctl kp_up_ctl_t;

/* Listens on path (an old socket file there is replaced) and serves requests with fn on a
 * thread of its own. NULL with err. */
kp_up_ctl_t *kp_up_ctl_start(const char *path, kp_up_ctl_fn fn, void *arg, char *err,
                             size_t errlen);
/* Stops serving (a request being answered finishes first), removes the socket, frees. */
void kp_up_ctl_stop(kp_up_ctl_t *c);

/* The client: sends request (one line) to the socket at path and reads the reply line into
 * reply (without '\n'), waiting up to timeout_ms. 0, or -1 with err (no kpool up there, or
 * no answer). */
int kp_up_ctl_call(const char *path, const char *request, char *reply, size_t len, long timeout_ms,
                   char *err, size_t errlen);

#endif
