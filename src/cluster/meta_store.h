/*
 * meta_store.h — the cluster metadata store the broker will use (issue 13 item 2, issue 14
 * item 1): the one place that says what a pool's metadata is and which changes are
 * compare-and-swap.
 *
 * What it holds: the cluster id; broker registrations (id, rack, endpoints) that live only
 * as long as their broker keeps its session alive; the controller (one elected broker, a
 * controller epoch that fences a deposed one); topics (name, id, partition count,
 * replica assignment, config overrides); each partition's state (leader, ISR, leader
 * epoch, partition epoch); ACL bindings; producer-id blocks.
 *
 * Implementations: etcd (meta_etcd.c, a replicated pool; key layout in
 * docs/replication.md). Today's local files (a JSON file per topic under meta/topics,
 * meta/acls.journal, meta/cluster.json) are meant to become the second implementation, for a
 * standalone broker: nothing here names etcd, and every call has a local meaning (a CAS against a
 * version counter, a session that never expires, an election a single broker always wins).
 *
 * Rules every implementation keeps:
 *   - each record carries `version`, the store's version of it when read (etcd: its
 *     mod_revision); *_update / *_cas calls succeed only if the record still has the
 *     version given (0: it must not exist) and otherwise return KP_META_ECONFLICT, so two
 *     writers can never both win;
 *   - partition-state changes are CAS only; with fence set they also fail (KP_META_EFENCED)
 *     once this store's controller leadership is gone, so a deposed controller cannot
 *     write after a new one was elected;
 *   - results are owned by the caller and freed with the matching *_free.
 *
 * Errors: 0 or a negative KP_META_E*, with one line in err naming the record.
 * Thread safety: every call may be made from any thread; calls block (bounded by the
 * store's timeout, campaign by its own) and must not be made on a network loop thread.
 * The watch callback runs on the store's watch thread.
 */
#ifndef KP_META_STORE_H
#define KP_META_STORE_H

#include "auth/acl.h"
#include "cluster/placement.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KP_META_OK = 0,
    KP_META_EUNAVAILABLE = -1, /* the store cannot be reached (etcd away): retry later */
    KP_META_ECONFLICT = -2,    /* the record changed since it was read */
    KP_META_ENOTFOUND = -3,
    KP_META_EEXISTS = -4,
    KP_META_EINVAL = -5,
    KP_META_ECORRUPT = -6,  /* a stored record does not decode */
    KP_META_EFENCED = -7,   /* this broker's session or controllership is gone */
    KP_META_ECLUSTER = -8,  /* the store holds another cluster's metadata */
    KP_META_ETIMEDOUT = -9, /* no answer in time; the outcome is unknown */
};

const char *kp_meta_strerror(int rc);

/* Bounds of what the store accepts and decodes (a corrupt or hostile record cannot make a
 * broker allocate without bound). */
#define KP_META_ENDPOINTS_MAX  16
#define KP_META_CLUSTER_ID_MAX 64
#define KP_META_RACK_MAX       255
#define KP_META_CONFIGS_MAX    1024

typedef struct kp_meta_endpoint {
    char *listener; /* e.g. "PLAINTEXT", "SSL" */
    char *host;
    int port;
    char *security; /* security protocol name */
} kp_meta_endpoint_t;

typedef struct kp_meta_broker {
    int32_t id;
    char *rack; /* NULL: none */
    kp_meta_endpoint_t *endpoints;
    int nendpoints;
    /* its log directory failed (EIO, or gone): it serves no partition and may neither lead
     * nor be in an ISR until it restarts on a working one (KRaft's offline log dirs); NULL
     * while healthy. The record's "offline_log_dirs". */
    char *offline_dir;
} kp_meta_broker_t;

void kp_meta_broker_free(kp_meta_broker_t *b);
void kp_meta_brokers_free(kp_meta_broker_t *b, int n);

/* A partition being moved (KIP-455): the replicas it is moving to (replication_factor ids,
 * preferred leader first). The topic's replicas row keeps the original assignment until the
 * move completes; meanwhile the partition is replicated on both (reassign.h). */
typedef struct kp_meta_reassign {
    int32_t partition;
    int32_t target[KP_REPLICAS_MAX];
} kp_meta_reassign_t;

typedef struct kp_meta_topic {
    char *name;
    uint8_t id[16]; /* the topic id (UUID) */
    int32_t partitions;
    int replication_factor;
    int32_t *replicas; /* partitions * replication_factor, preferred leader first per row */
    char **config_keys, **config_values; /* overrides only */
    int nconfigs;
    int internal;
    kp_meta_reassign_t *reassigning; /* moves in progress, one per partition at most */
    int nreassigning;
    int64_t version;
} kp_meta_topic_t;

void kp_meta_topic_free(kp_meta_topic_t *t);
void kp_meta_topics_free(kp_meta_topic_t *t, int n);

typedef struct kp_meta_pstate {
    kp_partition_state_t state;
    int64_t version;
} kp_meta_pstate_t;

/* What a watch reports: which record changed (the consumer re-reads it), or RESYNC when
 * anything may have changed (first delivery, after the store lost history). */
enum {
    KP_META_CH_RESYNC,
    KP_META_CH_CLUSTER,
    KP_META_CH_BROKER,
    KP_META_CH_CONTROLLER,
    KP_META_CH_TOPIC,
    KP_META_CH_PARTITION,
    KP_META_CH_ACL,
    KP_META_CH_PRODUCER_IDS,
};

typedef struct kp_meta_change {
    int kind;
    int deleted;
    const char *topic; /* TOPIC, PARTITION */
    int32_t partition; /* PARTITION */
    int32_t broker_id; /* BROKER */
    int64_t version;   /* the store's version after the change */
} kp_meta_change_t;

typedef void (*kp_meta_watch_fn)(void *arg, const kp_meta_change_t *changes, int n);

typedef struct kp_meta_store kp_meta_store_t;

/* The implementation table (as core/fs.h): one instance per backend. */
typedef struct kp_meta_ops {
    const char *name;
    void (*close)(kp_meta_store_t *s);
    int (*cluster_claim)(kp_meta_store_t *s, const char *local_id, char *out, size_t outlen,
                         char *err, size_t errlen);
    int (*broker_register)(kp_meta_store_t *s, const kp_meta_broker_t *b, int ttl_s, char *err,
                           size_t errlen);
    int (*broker_keepalive)(kp_meta_store_t *s, char *err, size_t errlen);
    int (*broker_update)(kp_meta_store_t *s, const kp_meta_broker_t *b, char *err, size_t errlen);
    int (*broker_unregister)(kp_meta_store_t *s, char *err, size_t errlen);
    int (*brokers_list)(kp_meta_store_t *s, kp_meta_broker_t **out, int *n, char *err,
                        size_t errlen);
    int (*controller_campaign)(kp_meta_store_t *s, int timeout_ms, int64_t *epoch, char *err,
                               size_t errlen);
    int (*controller_get)(kp_meta_store_t *s, int32_t *id, int64_t *epoch, char *err,
                          size_t errlen);
    int (*controller_resign)(kp_meta_store_t *s, char *err, size_t errlen);
    int (*topic_create)(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                        size_t errlen);
    int (*topic_get)(kp_meta_store_t *s, const char *name, kp_meta_topic_t *out, char *err,
                     size_t errlen);
    int (*topics_list)(kp_meta_store_t *s, kp_meta_topic_t **out, int *n, char *err, size_t errlen);
    int (*topic_update)(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                        size_t errlen);
    int (*topic_delete)(kp_meta_store_t *s, const char *name, int64_t version, char *err,
                        size_t errlen);
    int (*partition_get)(kp_meta_store_t *s, const char *topic, int32_t p, kp_meta_pstate_t *out,
                         char *err, size_t errlen);
    int (*partition_cas)(kp_meta_store_t *s, const char *topic, int32_t p,
                         const kp_partition_state_t *next, int64_t expected, int fence,
                         int64_t *version, char *err, size_t errlen);
    int (*acls_add)(kp_meta_store_t *s, const kp_acl_t *acls, int n, char *err, size_t errlen);
    int (*acl_remove)(kp_meta_store_t *s, const kp_acl_t *acl, char *err, size_t errlen);
    int (*acls_list)(kp_meta_store_t *s, kp_acl_t **out, int *n, char *err, size_t errlen);
    int (*producer_ids_alloc)(kp_meta_store_t *s, int64_t count, int64_t *first, char *err,
                              size_t errlen);
    int (*watch_start)(kp_meta_store_t *s, kp_meta_watch_fn fn, void *arg, char *err,
                       size_t errlen);
    void (*watch_stop)(kp_meta_store_t *s);
} kp_meta_ops_t;

struct kp_meta_store {
    const kp_meta_ops_t *ops;
};

/* ---- the calls (each dispatches through s->ops) ---- */

void kp_meta_close(kp_meta_store_t *s);

/* Binds this broker to the store's cluster. local_id: the cluster id of the broker's data
 * directory ("" or NULL for a new one). When the store has none yet, local_id (which must
 * be given) is claimed; when it holds the same, fine; when it holds another and local_id is
 * set, KP_META_ECLUSTER with a message naming both (the broker must refuse to start: its
 * data belongs to another cluster). out gets the store's id. */
int kp_meta_cluster_claim(kp_meta_store_t *s, const char *local_id, char *out, size_t outlen,
                          char *err, size_t errlen);

/* Registers this broker under a session of ttl_s seconds: KP_META_EEXISTS when another live
 * session holds the id. The session must be renewed (broker_keepalive) more often than
 * ttl_s; once it has lapsed, keepalive returns KP_META_EFENCED: the registration (and any
 * controllership) is gone and the broker registers again. */
int kp_meta_broker_register(kp_meta_store_t *s, const kp_meta_broker_t *b, int ttl_s, char *err,
                            size_t errlen);
int kp_meta_broker_keepalive(kp_meta_store_t *s, char *err, size_t errlen);
/* Rewrites this broker's registration (same session) with b, e.g. its offline log directory.
 * KP_META_EFENCED when the session is gone (registering again writes b anyway). */
int kp_meta_broker_update(kp_meta_store_t *s, const kp_meta_broker_t *b, char *err, size_t errlen);
/* Ends the session at once (controlled shutdown): the registration disappears. */
int kp_meta_broker_unregister(kp_meta_store_t *s, char *err, size_t errlen);
/* Live brokers, sorted by id. */
int kp_meta_brokers_list(kp_meta_store_t *s, kp_meta_broker_t **out, int *n, char *err,
                         size_t errlen);

/* Campaigns for controller with this broker's session (register first). Blocks until
 * elected (0; *epoch the new controller epoch, higher than any before) or timeout_ms
 * (KP_META_ETIMEDOUT: campaign again). Leadership ends with the session or on resign. */
int kp_meta_controller_campaign(kp_meta_store_t *s, int timeout_ms, int64_t *epoch, char *err,
                                size_t errlen);
/* The current controller; KP_META_ENOTFOUND when none. */
int kp_meta_controller_get(kp_meta_store_t *s, int32_t *id, int64_t *epoch, char *err,
                           size_t errlen);
int kp_meta_controller_resign(kp_meta_store_t *s, char *err, size_t errlen);

/* Creates a topic (KP_META_EEXISTS if the name is taken) and the initial state of each
 * partition (leader = first replica, ISR = all replicas, epochs 0), atomically. */
int kp_meta_topic_create(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                         size_t errlen);
int kp_meta_topic_get(kp_meta_store_t *s, const char *name, kp_meta_topic_t *out, char *err,
                      size_t errlen);
/* Every topic, sorted by name. */
int kp_meta_topics_list(kp_meta_store_t *s, kp_meta_topic_t **out, int *n, char *err,
                        size_t errlen);
/* Replaces a topic record (configs, more partitions, a new assignment) if t->version is
 * still its version; partitions added get their initial state in the same transaction. */
int kp_meta_topic_update(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                         size_t errlen);
/* Deletes a topic at version (0: whatever version) and its partition states. */
int kp_meta_topic_delete(kp_meta_store_t *s, const char *name, int64_t version, char *err,
                         size_t errlen);

int kp_meta_partition_get(kp_meta_store_t *s, const char *topic, int32_t p, kp_meta_pstate_t *out,
                          char *err, size_t errlen);
/* Replaces a partition's state if its version is still expected (CAS). fence: also only
 * while this store holds the controllership it won (KP_META_EFENCED otherwise). */
int kp_meta_partition_cas(kp_meta_store_t *s, const char *topic, int32_t p,
                          const kp_partition_state_t *next, int64_t expected, int fence,
                          int64_t *version, char *err, size_t errlen);

/* ACL bindings: add is idempotent (a binding is stored once); remove takes one exact
 * binding (KP_META_ENOTFOUND if absent); list returns them all (free with
 * kp_meta_acls_free). */
int kp_meta_acls_add(kp_meta_store_t *s, const kp_acl_t *acls, int n, char *err, size_t errlen);
int kp_meta_acl_remove(kp_meta_store_t *s, const kp_acl_t *acl, char *err, size_t errlen);
int kp_meta_acls_list(kp_meta_store_t *s, kp_acl_t **out, int *n, char *err, size_t errlen);
void kp_meta_acls_free(kp_acl_t *acls, int n);

/* Reserves count producer ids for this broker, cluster-wide unique: *first .. first+count-1
 * (Kafka's producer-id blocks). */
int kp_meta_producer_ids_alloc(kp_meta_store_t *s, int64_t count, int64_t *first, char *err,
                               size_t errlen);

/* Follows every change of the store; fn first gets RESYNC. One watch per store. */
int kp_meta_watch_start(kp_meta_store_t *s, kp_meta_watch_fn fn, void *arg, char *err,
                        size_t errlen);
void kp_meta_watch_stop(kp_meta_store_t *s);

/* ---- implementations ---- */

/* The etcd store: endpoints as metadata.etcd.endpoints, prefix as metadata.etcd.prefix
 * (no trailing '/'; the caller defaults it to /kpool/<cluster id>). No request is made. */
kp_meta_store_t *kp_meta_etcd_open(const char *endpoints, const char *prefix, int timeout_ms,
                                   int32_t broker_id, char *err, size_t errlen);

/* Record codecs (exposed for the unit tests and the fuzz target): JSON text <-> records.
 * Decoders treat the text as hostile: 0 or KP_META_ECORRUPT with err. */
char *kp_meta_topic_encode(const kp_meta_topic_t *t);
int kp_meta_topic_decode(const char *name, const char *json, size_t len, kp_meta_topic_t *out,
                         char *err, size_t errlen);
char *kp_meta_pstate_encode(const kp_partition_state_t *st);
int kp_meta_pstate_decode(const char *json, size_t len, kp_partition_state_t *out, char *err,
                          size_t errlen);
char *kp_meta_broker_encode(const kp_meta_broker_t *b);
int kp_meta_broker_decode(const char *json, size_t len, kp_meta_broker_t *out, char *err,
                          size_t errlen);
char *kp_meta_acl_encode(const kp_acl_t *acl);
int kp_meta_acl_decode(const char *json, size_t len, kp_acl_t *out, char *err, size_t errlen);

#endif
