/*
 * loop_ctx.h — what the broker keeps per network loop: its sessions (closed at shutdown) and
 * its parked Fetch requests (long polls woken when a partition's high watermark moves).
 *
 * @locality: everything here belongs to its loop's thread, except `parked_count` and
 * `recheck_posted`, which other threads read to decide whether to wake the loop.
 */
#ifndef KP_LOOP_CTX_H
#define KP_LOOP_CTX_H

#include "broker/broker.h"

#include <stdatomic.h>

typedef struct kp_session kp_session_t;
typedef struct kp_fetch_parked kp_fetch_parked_t;

struct kp_loop_ctx {
    kp_broker_t *broker;
    kp_loop_t *loop;
    kp_session_t *sessions;    /* intrusive list through kp_session.ctx_next */
    kp_fetch_parked_t *parked; /* intrusive doubly-linked list */
    atomic_int parked_count;
    atomic_int recheck_posted;
};

kp_loop_ctx_t *kp_loop_ctx_new(kp_broker_t *b, kp_loop_t *loop);
void kp_loop_ctx_free(kp_loop_ctx_t *ctx);
kp_loop_ctx_t *kp_loop_ctx_of(kp_broker_t *b, kp_loop_t *loop);

/* Partition hook: wakes the loops that have parked fetches when the HWM moves. */
void kp_fetch_wait_partition_hook(kp_partition_t *p, void *broker);
/* Loop thread: answers every parked fetch now (shutdown: server.c's loop_shutdown). */
void kp_fetch_wait_flush_all(kp_loop_ctx_t *ctx);

#endif
