/*
 * listener.h — listening sockets, one per loop (SO_REUSEPORT), accepting into connections.
 *
 * Each loop gets its own socket bound to the same address so the kernel spreads connections
 * across loops without a hand-off between threads. The global and per-address connection
 * limits (conn_limits.h) are enforced at accept: past them a socket is accepted and closed
 * at once.
 */
#ifndef KP_LISTENER_H
#define KP_LISTENER_H

#include "net/conn.h"

typedef struct kp_listener kp_listener_t;

/* Called for each accepted connection on the accepting loop's thread. Returns the new
 * connection or NULL (the callback closed fd). */
typedef kp_conn_t *(*kp_accept_fn)(kp_loop_t *loop, int fd, const char *peer_ip, int peer_port,
                                   void *arg);

/* Binds host:port (port 0 picks one; see kp_listener_port) without listening yet: until
 * kp_listener_start, a connection to the port is refused, as to a stopped server. Returns
 * NULL with err filled. */
kp_listener_t *kp_listener_new(const char *host, int port, kp_loop_t **loops, int nloops,
                               kp_accept_fn fn, void *arg, char *err, size_t errlen);
/* Listens and accepts on the loops (the first call; later calls do nothing). Any thread: the
 * sockets are added to the loops' epoll sets, which their threads touch only once epoll
 * reports them. -1 with err when listen(2) fails (the port stays refused). */
int kp_listener_start(kp_listener_t *l, char *err, size_t errlen);
int kp_listener_port(const kp_listener_t *l);
/* Stops accepting (on each loop's thread, via kp_loop_post) and closes the sockets. */
void kp_listener_free(kp_listener_t *l);

/* Parses "host:port" ("[v6]:port" too). Returns 0 or -1. */
int kp_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
