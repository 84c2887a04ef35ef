/*
 * control_int.h — shared between the reconciler (control.c) and the per-kind logic
 * (topic.c, stream.c, pool.c). @locality: the reconcile functions run on the reconciler
 * thread only; the store is thread-safe.
 */
#ifndef KP_CONTROL_INT_H
#define KP_CONTROL_INT_H

#include "control/control.h"
#include "control/pool_client.h"
#include "control/reconcile.h"
#include "core/buf.h"
#include "core/hmap.h"

#include <jansson.h>
#include <stdatomic.h>
#include <time.h>

/* control_metrics.c: the reconciler's and the credentials' figures in /metrics. Any thread. */
void kp_control_metrics_reconciled(const char *kind, int failed, int64_t us);
/* One credential issue (ok) and how long it took, or a failed one. */
void kp_control_metrics_credential(int ok, int64_t us);
/* A kp_metrics source (core/metrics.h); arg unused. */
void kp_control_metrics_render(kp_buf_t *out, void *arg);

/* A pool as the reconciler sees it: its spec and a connected client. */
typedef struct kp_pool {
    char *name;
    char *fingerprint; /* bootstrap + TLS paths: the client is rebuilt when they change */
    kp_pool_client_t *client;
    int32_t repl_min, repl_max, repl_default;
    int embedded;
    int64_t rv; /* the Pool's resourceVersion the fields above come from */
} kp_pool_t;

struct kp_control {
    kp_control_config_t cfg;
    kp_store_t *store;
    kp_pki_master_key_t master_key; /* seals Secret data at rest (state_dir/master.key) */
    struct kp_backup *backup;       /* scheduler and on-demand backups (backup.c) */
    int metrics_sampler;            /* this control plane runs pool_metrics' sampler */
    kp_hmap_t pools;                /* name -> kp_pool_t */
    /* reconciler */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    kp_hmap_t queue;    /* "Kind/ns/name" -> queue_item_t */
    uint64_t queue_seq; /* enqueue order (ties of due_ms) */
    uint64_t queue_now; /* items made due at once: tells a running batch that work came */
    int64_t next_resync_ms;
    /* the active service users of every pool, as kp_control_users hands them out: read once
     * per resync and again after a ServiceUser change (users_gen, bumped under lock), not
     * once per Topic. users and users_loaded: the reconciler thread only. */
    kp_service_user_t *users;
    int nusers;
    uint64_t users_gen;
    uint64_t users_loaded; /* users_gen when users was read; 0: never */
    uint64_t users_fp;     /* a fingerprint of users' contents (changes when one comes or goes) */
    /* Topics last found in sync with nothing to write (topic.c): "ns/name" -> memo of what
     * that reconcile read, so that a drift check of a Topic unchanged in the store and in
     * the pool reads no body. The reconciler thread only. */
    kp_hmap_t topic_memo;
    /* drift checks (resync items) of Topics: found unchanged without reading the body, and
     * reconciled in full (kpool_control_topic_checks_total); relaxed atomics (/metrics) */
    atomic_llong topic_checks_unchanged, topic_checks_full;
    int metrics_source; /* render_metrics is a kp_metrics source */
};

/* Looks up a pool resource and returns its connected client (NULL with err when the pool
 * does not exist or its spec is unusable). */
kp_pool_t *kp_control_pool(kp_control_t *c, const char *name, char *err, size_t errlen);
/* "dev, prod" — the pools that exist, for error messages. */
void kp_control_pool_names(kp_control_t *c, char *out, size_t n);

/* The active service users of every pool (revoked_ms == 0), read from the store at most once
 * per resync or ServiceUser change. Owned by c: valid until the next call. 0 or -1.
 * @locality: the reconciler thread. */
int kp_control_users(kp_control_t *c, const kp_service_user_t **out, int *n);

/* Status helpers (status.c). */
void kp_status_time(char out[32]);
/* Writes status if anything but the timestamps changed (keeps resourceVersion quiet).
 * Returns 1 when it wrote, 0 when it did not. */
int kp_status_write(kp_control_t *c, json_t *obj, json_t *status);
/* Queues kind/ns/name for a reconcile (ns "" for cluster-scoped kinds); queued items are
 * merged, so a burst of calls costs one reconcile. */
void kp_control_enqueue(kp_control_t *c, const char *kind, const char *ns, const char *name);

/* The per-kind reconcile hooks (kp_topic_reconcile, ...) are in reconcile.h. */

/* A drift check's shortcut: 1 when the Topic ns/name is at resourceVersion rv as it was when
 * a reconcile last found it in sync, and its pool, the service users and what the pool holds
 * for it (kp_pool_topic_fingerprint) are as they were then: a full reconcile would change
 * nothing and write nothing. 0: reconcile it. */
int kp_topic_unchanged(kp_control_t *c, const char *ns, const char *name, int64_t rv);
/* Forgets what kp_topic_unchanged knows of one Topic (it is gone), or of all (stop). */
void kp_topic_memo_forget(kp_control_t *c, const char *ns, const char *name);
void kp_topic_memo_clear(kp_control_t *c);

/* The NAIS secret name of an Application generation (application.c); n > 0 adds "-<n>". */
void kp_application_secret_name(const char *ns, const char *app, const char *uid,
                                int64_t generation, time_t now, int n, char *out, size_t outlen);

/* Service users (credentials.c). */
/* The team part of a service user name for namespace ns (at most 25 characters): ns itself
 * or <short>~<16 hex digits>, never the same for two namespaces (credentials.c). */
void kp_service_user_team(const char *ns, char *out, size_t n);
/* The name of an AivenApplication's service user (credentials.c, user_name): uid is the
 * AivenApplication's metadata.uid. */
void kp_service_user_name(const char *team, const char *app, const char *uid, int64_t generation,
                          char *out, size_t n);
/* Deletes every ACL naming the user's principal in its pool, then marks it revoked.
 * -1 (nothing marked) when the pool could not be reached: try again later. */
int kp_revoke_user(kp_control_t *c, const kp_service_user_t *u);
/* Deletes unused credentials secrets past the grace period and revokes their users. */
void kp_janitor_pass(kp_control_t *c);

/* Wildcard match for ACL team/application entries: '*' matches any run of characters. */
int kp_glob_match(const char *pattern, const char *s);

#endif
