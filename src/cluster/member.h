/*
 * member.h — a broker's membership in a replicated pool (SPEC §11, docs/replication.md):
 * the metadata store it joined, its session (registration under a lease, renewed by a
 * thread of its own), its candidacy for controller, and a cached view of the live brokers
 * and the controller that the request path reads without blocking.
 *
 * Lifecycle: kp_member_open (store + cluster-id check; before the broker writes its data
 * directory's cluster id), kp_member_start (register, then start the session and controller
 * threads and the watch; after the listeners are bound, so the advertised ports are known),
 * kp_member_stop (controlled shutdown: resign, end the session at once so the registration
 * disappears; then join the threads), kp_member_free.
 *
 * Threading: kp_member_view / kp_member_is_controller may be called from any thread (loop
 * threads included: they only take a mutex around a pointer swap). Everything else is for
 * the broker's main thread.
 */
#ifndef KP_MEMBER_H
#define KP_MEMBER_H

#include "cluster/meta_store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_member_config {
    const char *endpoints;  /* metadata.etcd.endpoints */
    const char *prefix;     /* metadata.etcd.prefix (already defaulted) */
    int32_t broker_id;      /* broker.id / node.id */
    const char *rack;       /* broker.rack, NULL for none */
    int session_timeout_ms; /* broker.session.timeout.ms: the lease TTL (rounded up to s) */
    int request_timeout_ms; /* etcd request timeout */
} kp_member_config_t;

/* An immutable snapshot of the cluster as this broker last saw it (reference counted). */
typedef struct kp_member_view {
    atomic_int refs;
    kp_meta_broker_t *brokers; /* live brokers, sorted by id */
    int nbrokers;
    int32_t controller_id; /* -1: none known */
    int64_t controller_epoch;
} kp_member_view_t;

typedef struct kp_member kp_member_t;

/* Opens the store and binds to its cluster: local_id is the data directory's cluster id, or
 * "" for a new data directory (whose id is then the store's, or fresh_id when the store is
 * empty). cluster_id gets the id to use. NULL with err — among others the refusal to join
 * another cluster's metadata (a clear message naming both ids). */
kp_member_t *kp_member_open(const kp_member_config_t *cfg, const char *local_id,
                            const char *fresh_id, char *cluster_id, size_t idlen, char *err,
                            size_t errlen);

/* Registers (waiting out a previous session of this broker id, at most one session
 * timeout) with the endpoints given, then starts the session thread (renewal every third of
 * the timeout, re-registration after a lapse), the controller candidacy and the watch. */
int kp_member_start(kp_member_t *m, const kp_meta_broker_t *self, char *err, size_t errlen);

/* Controlled shutdown: resigns the controllership and ends the session (the registration
 * goes at once), stops the threads. Idempotent. */
void kp_member_stop(kp_member_t *m);
void kp_member_free(kp_member_t *m);

/* The current view, referenced (never NULL after kp_member_start); release with
 * kp_member_view_put. */
kp_member_view_t *kp_member_view(kp_member_t *m);
void kp_member_view_put(kp_member_view_t *v);
/* The broker's endpoint for listener in v, or NULL. */
const kp_meta_endpoint_t *kp_member_endpoint(const kp_meta_broker_t *b, const char *listener);

int kp_member_is_controller(kp_member_t *m);
/* This broker's log directory failed: its registration says so from now on (rewritten now,
 * and on every later registration of this process), so the controller and the leaders keep
 * it out of leaderships and ISRs. 0, or -1 with err when the store could not be written
 * (call again). Any thread. */
int kp_member_set_offline_dir(kp_member_t *m, const char *dir, char *err, size_t errlen);
/* Also hands every change the watch reports to fn (on the watch thread); set before
 * kp_member_start. */
void kp_member_set_listener(kp_member_t *m, kp_meta_watch_fn fn, void *arg);
kp_meta_store_t *kp_member_store(kp_member_t *m);

#endif
