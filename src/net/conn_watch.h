/*
 * conn_watch.h — closes connections that never finish setting up or sit idle.
 *
 * One watch per loop. A connection is in exactly one of two lists, each kept in deadline
 * order so that only list heads are ever looked at:
 *   - setup: from accept until the first complete request (this covers a TLS handshake
 *     that never finishes and a peer that connects and says nothing). Ordered by accept
 *     time, which only grows, so appending keeps the order.
 *   - active: after that. Ordered by the time of the last byte read or written; activity
 *     moves the connection to the tail (O(1), no timer work on the data path).
 * One loop timer is armed at the earliest head deadline. When it fires, expired heads are
 * closed until a head is not expired, and the timer is re-armed: the cost is O(1 + closed),
 * never a scan of every connection, and an idle broker wakes only when something is due.
 *
 * A connection whose layer still owes it responses (a long-poll fetch, a JoinGroup waiting
 * for the group) is not idle: ops->busy says so, and the deadline is pushed back instead.
 *
 * Timeouts live in kp_net_limits (atomics), so the broker can change them at runtime; a
 * change applies to the deadlines computed after it.
 *
 * @locality: a watch and its lists belong to the loop's thread.
 */
#ifndef KP_CONN_WATCH_H
#define KP_CONN_WATCH_H

#include "net/conn.h"

#include <stdatomic.h>
#include <stdint.h>

/* Connection limits, readable from any thread. A value <= 0 disables that timeout. */
typedef struct kp_net_limits {
    /* connections.max.idle.ms: no byte read or written for this long closes it (Kafka's). */
    _Atomic int64_t idle_ms;
    /* connections.setup.timeout.ms (kpool): accept to the first complete request, TLS
     * handshake included. */
    _Atomic int64_t setup_ms;
} kp_net_limits_t;

extern kp_net_limits_t kp_net_limits;

typedef struct kp_conn_watch kp_conn_watch_t;

kp_conn_watch_t *kp_conn_watch_new(kp_loop_t *loop);
/* Call after every connection of the watch is closed (its timer must not be pending). */
void kp_conn_watch_free(kp_conn_watch_t *w);

/* Puts a new connection under watch (in setup). The connection must belong to w's loop; it
 * tells the watch of its traffic through c->watch_ops (conn.h). */
void kp_conn_watch_add(kp_conn_watch_t *w, kp_conn_t *c);

#endif
