/*
 * conn_limits.h — the connection limits every listener and loop shares: max.connections and
 * max.connections.per.ip (with its overrides). A listener takes a slot at accept
 * (listener.c) and the connection gives it back when it closes (conn.c); the broker sets the
 * limits from its configuration, at start and when they change. Any thread: the limits are
 * atomics and the per-address counts are under a lock taken once per accept and once per
 * close, never on the data path.
 */
#ifndef KP_CONN_LIMITS_H
#define KP_CONN_LIMITS_H

#include <stddef.h>

/* max.connections: past it a new socket is accepted and closed at once. */
void kp_connections_set_max(long long max);
long long kp_connections_max(void);
/* max.connections.per.ip and max.connections.per.ip.overrides (Kafka's "host:count,..."; a
 * host name counts for every address it resolves to, resolved now). Connections already
 * open are kept. -1 with err on a malformed override. */
int kp_connections_set_per_ip(long long max, const char *overrides, char *err, size_t errlen);

/* Takes a connection slot for ip (as inet_ntop prints it); -1 (and the limit in *limit) when
 * it has none left. */
int kp_connections_ip_acquire(const char *ip, long long *limit);
/* A connection that held a per-ip slot closed (conn.c). */
void kp_connections_ip_release(const char *ip);

#endif
