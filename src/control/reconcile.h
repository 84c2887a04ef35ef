/*
 * reconcile.h — the per-kind reconcile hooks: what a reconcile reports and each reconciled
 * kind's hook (kinds.h's kp_kind_reconcile_fn). The kinds table (kinds.c) names them and the
 * reconciler (control.c) calls them through it; each is implemented with its kind's logic
 * (topic.c, stream.c, pool.c, credentials.c, application.c, control.c). Declarations only,
 * so that the kinds table does not depend on the reconciler's internals (control_int.h).
 *
 * @locality: the hooks run on the reconciler thread.
 */
#ifndef KP_RECONCILE_H
#define KP_RECONCILE_H

#include <jansson.h>
#include <stdint.h>

struct kp_control;

typedef struct kp_reconcile_result {
    int retry;        /* reconcile again after backoff (pool unreachable, transient error) */
    int64_t retry_ms; /* 0: use the queue's backoff */
    int failed;       /* the object was left in a failed state (kpool_reconcile_failures_total) */
} kp_reconcile_result_t;

/* Per-kind reconcile; obj is the stored object (a new reference owned by the caller). */
void kp_topic_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);
void kp_stream_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);
void kp_pool_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);
void kp_aivenapp_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);
void kp_application_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);
/* A Secret is reconciled only to finish its deletion (control.c): one marked deleted is
 * removed from the store. */
void kp_secret_reconcile(struct kp_control *c, json_t *obj, kp_reconcile_result_t *res);

#endif
