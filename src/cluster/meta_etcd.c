/*
 * meta_etcd.c — the metadata store (meta_store.h) in etcd, under metadata.etcd.prefix P:
 *
 *   P/cluster_id                 {"cluster_id":"..."}            created once (CAS), never changed
 *   P/brokers/<id>               broker record, under the broker's lease (session)
 *   P/controller/<lease hex>     etcd election keys (v3election); the leader's value is its id
 *   P/controller_epoch           {"epoch":N,"broker":id}          bumped by each new controller
 *   P/topics/<name>              topic record
 *   P/partitions/<name>/<p>      partition state (CAS only)
 *   P/acls/<sha-256 of binding>  one ACL binding
 *   P/producer_ids               {"next":N}                       CAS-incremented by blocks
 *
 * docs/replication.md explains who writes what. The session is one etcd lease: the broker
 * registration and the controller candidacy hang on it, so a broker that stops renewing
 * loses both at once. A store instance belongs to one broker (broker_id at open).
 *
 * etcd accepts at most 128 operations per transaction (--max-txn-ops): partition states of
 * a large topic are written in batches, each conditioned on the topic record still being
 * the one just written, so a concurrent delete cannot leave stray states behind.
 */
#include "cluster/etcd.h"
#include "cluster/meta_store.h"

#include "core/logging.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TXN_OPS_MAX 128
#define CAS_RETRIES 32

typedef struct meta_etcd {
    kp_meta_store_t base;
    kp_etcd_t *e;
    char *prefix;
    int32_t broker_id;
    pthread_mutex_t lock; /* guards the session and leadership fields */
    int64_t lease;
    int leading;
    kp_etcd_leader_key_t leader;
    int64_t controller_epoch;
    kp_etcd_watch_t *watch;
    kp_meta_watch_fn watch_fn;
    void *watch_arg;
} meta_etcd_t;

static int map_rc(int rc)
{
    switch (rc) {
    case KP_ETCD_OK:
        return KP_META_OK;
    case KP_ETCD_ECONFLICT:
        return KP_META_ECONFLICT;
    case KP_ETCD_ENOTFOUND:
        return KP_META_ENOTFOUND;
    case KP_ETCD_ETIMEDOUT:
        return KP_META_ETIMEDOUT;
    case KP_ETCD_EINVAL:
        return KP_META_EINVAL;
    }
    return KP_META_EUNAVAILABLE;
}

static void mkey(const meta_etcd_t *m, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mkey(const meta_etcd_t *m, char *out, size_t outlen, const char *fmt, ...)
{
    int n = snprintf(out, outlen, "%s/", m->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, outlen - n, fmt, ap);
    va_end(ap);
}

/* Topic names are Kafka's ([a-zA-Z0-9._-], 1..249): safe as one key segment. */
static int topic_name_ok(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    int ok = n > 0 && n <= 249 && strcmp(name, ".") && strcmp(name, "..");
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) snprintf(err, errlen, "invalid topic name '%.249s'", name ? name : "");
    return ok ? 0 : KP_META_EINVAL;
}

/* ---- cluster id ---- */

static int cluster_claim(kp_meta_store_t *s, const char *local_id, char *out, size_t outlen,
                         char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    char key[512];
    mkey(m, key, sizeof(key), "cluster_id");
    for (int attempt = 0; attempt < 2; attempt++) {
        kp_etcd_kv_t kv;
        int rc = kp_etcd_get(m->e, key, &kv, err, errlen);
        if (rc == KP_ETCD_ENOTFOUND) {
            if (!local_id || !*local_id || strlen(local_id) > KP_META_CLUSTER_ID_MAX) {
                snprintf(err, errlen, "%s holds no cluster id and none was given", m->prefix);
                return KP_META_EINVAL;
            }
            json_t *o = json_pack("{s:s}", "cluster_id", local_id);
            char *v = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            rc = kp_etcd_cas(m->e, key, v, strlen(v), 0, 0, NULL, NULL, err, errlen);
            free(v);
            if (rc == KP_ETCD_ECONFLICT) continue; /* another broker claimed it first */
            if (rc) return map_rc(rc);
            snprintf(out, outlen, "%s", local_id);
            kp_info("meta", "cluster id %s claimed under %s", local_id, m->prefix);
            return 0;
        }
        if (rc) return map_rc(rc);
        json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
        const char *have = json_string_value(json_object_get(o, "cluster_id"));
        if (!have || !*have || strlen(have) > KP_META_CLUSTER_ID_MAX) {
            json_decref(o);
            kp_etcd_kv_free(&kv);
            snprintf(err, errlen, "%s: the cluster id record is corrupt", key);
            return KP_META_ECORRUPT;
        }
        if (local_id && *local_id && strcmp(local_id, have) != 0) {
            snprintf(err, errlen,
                     "etcd prefix %s (at %s) holds the metadata of cluster %s, but this broker's "
                     "data directory belongs to cluster %s: refusing to start (check "
                     "metadata.etcd.endpoints and metadata.etcd.prefix, or use an empty data "
                     "directory to join cluster %s)",
                     m->prefix, kp_etcd_endpoint(m->e), have, local_id, have);
            json_decref(o);
            kp_etcd_kv_free(&kv);
            return KP_META_ECLUSTER;
        }
        snprintf(out, outlen, "%s", have);
        json_decref(o);
        kp_etcd_kv_free(&kv);
        return 0;
    }
    snprintf(err, errlen, "%s: the cluster id keeps changing", key);
    return KP_META_ECONFLICT;
}

/* ---- brokers and the session ---- */

static int broker_register(kp_meta_store_t *s, const kp_meta_broker_t *b, int ttl_s, char *err,
                           size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    if (b->id != m->broker_id || ttl_s <= 0 || b->nendpoints > KP_META_ENDPOINTS_MAX) {
        snprintf(err, errlen, "broker registration: bad arguments");
        return KP_META_EINVAL;
    }
    int64_t lease;
    int rc = kp_etcd_lease_grant(m->e, ttl_s, &lease, NULL, err, errlen);
    if (rc) return map_rc(rc);
    char key[512];
    mkey(m, key, sizeof(key), "brokers/%d", b->id);
    char *v = kp_meta_broker_encode(b);
    kp_etcd_kv_t cur;
    rc = kp_etcd_cas(m->e, key, v, strlen(v), 0, lease, NULL, &cur, err, errlen);
    free(v);
    if (rc) {
        char ignore[64];
        kp_etcd_lease_revoke(m->e, lease, ignore, sizeof(ignore));
        if (rc == KP_ETCD_ECONFLICT) {
            snprintf(err, errlen,
                     "broker id %d is registered by another live session (lease %llx): two "
                     "brokers with one broker.id? (a stopped broker's registration expires "
                     "within its session timeout)",
                     b->id, (unsigned long long)cur.lease);
            kp_etcd_kv_free(&cur);
            return KP_META_EEXISTS;
        }
        return map_rc(rc);
    }
    pthread_mutex_lock(&m->lock);
    m->lease = lease;
    m->leading = 0;
    kp_etcd_leader_key_free(&m->leader);
    pthread_mutex_unlock(&m->lock);
    kp_info("meta", "broker %d registered (session %llx, %d s)", b->id, (unsigned long long)lease,
            ttl_s);
    return 0;
}

static int64_t session(meta_etcd_t *m)
{
    pthread_mutex_lock(&m->lock);
    int64_t l = m->lease;
    pthread_mutex_unlock(&m->lock);
    return l;
}

static void session_lost(meta_etcd_t *m, int64_t lease)
{
    pthread_mutex_lock(&m->lock);
    if (m->lease == lease) {
        m->lease = 0;
        m->leading = 0;
        kp_etcd_leader_key_free(&m->leader);
    }
    pthread_mutex_unlock(&m->lock);
}

static int broker_keepalive(kp_meta_store_t *s, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int64_t lease = session(m);
    if (!lease) {
        snprintf(err, errlen, "broker %d is not registered", m->broker_id);
        return KP_META_EFENCED;
    }
    int rc = kp_etcd_lease_keepalive(m->e, lease, NULL, err, errlen);
    if (rc == KP_ETCD_ENOTFOUND) {
        session_lost(m, lease);
        snprintf(err, errlen,
                 "broker %d: session %llx expired (registration and controllership gone)",
                 m->broker_id, (unsigned long long)lease);
        return KP_META_EFENCED;
    }
    return map_rc(rc);
}

static int broker_update(kp_meta_store_t *s, const kp_meta_broker_t *b, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int64_t lease = session(m);
    char key[512];
    mkey(m, key, sizeof(key), "brokers/%d", b->id);
    kp_etcd_kv_t cur;
    int rc = lease && b->id == m->broker_id ? kp_etcd_get(m->e, key, &cur, err, errlen)
                                            : KP_ETCD_ENOTFOUND;
    if (rc == KP_ETCD_ENOTFOUND || (rc == 0 && cur.lease != lease)) {
        if (rc == 0) kp_etcd_kv_free(&cur);
        snprintf(err, errlen, "broker %d: not registered under this session", b->id);
        return KP_META_EFENCED;
    }
    if (rc) return map_rc(rc);
    char *v = kp_meta_broker_encode(b);
    rc = kp_etcd_cas(m->e, key, v, strlen(v), cur.mod_revision, lease, NULL, NULL, err, errlen);
    free(v);
    kp_etcd_kv_free(&cur);
    return map_rc(rc);
}

static int broker_unregister(kp_meta_store_t *s, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int64_t lease = session(m);
    if (!lease) return 0;
    int rc = kp_etcd_lease_revoke(m->e, lease, err, errlen);
    session_lost(m, lease);
    return rc == KP_ETCD_ENOTFOUND ? 0 : map_rc(rc);
}

static int cmp_broker_id(const void *a, const void *b)
{
    const kp_meta_broker_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int brokers_list(kp_meta_store_t *s, kp_meta_broker_t **out, int *n, char *err,
                        size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    *out = NULL;
    *n = 0;
    char key[512];
    mkey(m, key, sizeof(key), "brokers/");
    kp_etcd_range_t r;
    int rc = kp_etcd_range(m->e, key, NULL, 1, 0, &r, err, errlen);
    if (rc) return map_rc(rc);
    kp_meta_broker_t *list = calloc(r.count ? r.count : 1, sizeof(*list));
    int k = 0;
    for (int i = 0; list && i < r.count; i++) {
        char e2[256];
        if (kp_meta_broker_decode(r.kvs[i].value, r.kvs[i].value_len, &list[k], e2, sizeof(e2))) {
            kp_warn("meta", "%s: %s (skipped)", r.kvs[i].key, e2);
            continue;
        }
        k++;
    }
    kp_etcd_range_free(&r);
    if (!list) return KP_META_EUNAVAILABLE;
    qsort(list, k, sizeof(*list), cmp_broker_id);
    *out = list;
    *n = k;
    return 0;
}

/* ---- controller ---- */

static int controller_campaign(kp_meta_store_t *s, int timeout_ms, int64_t *epoch, char *err,
                               size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int64_t lease = session(m);
    if (!lease) {
        snprintf(err, errlen, "broker %d must register before campaigning", m->broker_id);
        return KP_META_EFENCED;
    }
    char name[512], id[16];
    mkey(m, name, sizeof(name), "controller");
    snprintf(id, sizeof(id), "%d", m->broker_id);
    kp_etcd_leader_key_t lk;
    int rc = kp_etcd_campaign(m->e, name, lease, id, strlen(id), timeout_ms, &lk, err, errlen);
    if (rc == KP_ETCD_ENOTFOUND) {
        session_lost(m, lease);
        return KP_META_EFENCED;
    }
    if (rc) return map_rc(rc);
    /* fence: a new epoch, written only while our election key is the one campaign made */
    char ekey[512];
    mkey(m, ekey, sizeof(ekey), "controller_epoch");
    char lkey[KP_ETCD_KEY_BYTES_MAX + 1];
    snprintf(lkey, sizeof(lkey), "%.*s", (int)lk.key_len, lk.key);
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        kp_etcd_kv_t kv;
        int64_t old = 0, mod = 0;
        rc = kp_etcd_get(m->e, ekey, &kv, err, errlen);
        if (rc == 0) {
            json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
            old = json_integer_value(json_object_get(o, "epoch"));
            mod = kv.mod_revision;
            json_decref(o);
            kp_etcd_kv_free(&kv);
        } else if (rc != KP_ETCD_ENOTFOUND) {
            break;
        }
        json_t *o = json_pack("{s:I,s:i}", "epoch", (json_int_t)(old + 1), "broker", m->broker_id);
        char *v = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        kp_etcd_cmp_t cmp[2] = {
            {.key = ekey, .target = KP_ETCD_CMP_MOD, .result = KP_ETCD_CMP_EQUAL, .number = mod},
            {.key = lkey,
             .target = KP_ETCD_CMP_CREATE,
             .result = KP_ETCD_CMP_EQUAL,
             .number = lk.rev},
        };
        kp_etcd_op_t put = {
            .type = KP_ETCD_OP_PUT, .key = ekey, .value = v, .value_len = strlen(v)};
        kp_etcd_op_t get = {.type = KP_ETCD_OP_RANGE, .key = lkey};
        kp_etcd_txn_result_t res;
        rc = kp_etcd_txn(m->e, cmp, 2, &put, 1, &get, 1, &res, err, errlen);
        free(v);
        if (rc) break;
        int ok = res.succeeded,
            still_leader = res.range.count > 0 && res.range.kvs[0].create_revision == lk.rev;
        kp_etcd_txn_result_free(&res);
        if (ok) {
            pthread_mutex_lock(&m->lock);
            kp_etcd_leader_key_free(&m->leader);
            m->leader = lk;
            m->leading = 1;
            m->controller_epoch = old + 1;
            pthread_mutex_unlock(&m->lock);
            if (epoch) *epoch = old + 1;
            kp_info("meta", "broker %d is the controller (epoch %lld)", m->broker_id,
                    (long long)(old + 1));
            return 0;
        }
        if (!ok && !still_leader) {
            kp_etcd_leader_key_free(&lk);
            snprintf(err, errlen, "controller leadership lost while taking it");
            return KP_META_EFENCED;
        }
    }
    char ignore[64];
    kp_etcd_resign(m->e, &lk, ignore, sizeof(ignore));
    kp_etcd_leader_key_free(&lk);
    return rc ? map_rc(rc) : KP_META_ECONFLICT;
}

static int controller_get(kp_meta_store_t *s, int32_t *id, int64_t *epoch, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    char name[512];
    mkey(m, name, sizeof(name), "controller");
    kp_etcd_kv_t kv;
    int rc = kp_etcd_election_leader(m->e, name, &kv, err, errlen);
    if (rc) return map_rc(rc);
    char *end;
    long v = strtol(kv.value, &end, 10);
    int bad = kv.value_len == 0 || *end || v < 0 || v > INT32_MAX;
    kp_etcd_kv_free(&kv);
    if (bad) {
        snprintf(err, errlen, "%s: the leader's value is not a broker id", name);
        return KP_META_ECORRUPT;
    }
    *id = (int32_t)v;
    if (epoch) {
        *epoch = 0;
        mkey(m, name, sizeof(name), "controller_epoch");
        if (kp_etcd_get(m->e, name, &kv, err, errlen) == 0) {
            json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
            *epoch = json_integer_value(json_object_get(o, "epoch"));
            json_decref(o);
            kp_etcd_kv_free(&kv);
        }
    }
    return 0;
}

static int controller_resign(kp_meta_store_t *s, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    pthread_mutex_lock(&m->lock);
    kp_etcd_leader_key_t lk = m->leader;
    int leading = m->leading;
    memset(&m->leader, 0, sizeof(m->leader));
    m->leading = 0;
    pthread_mutex_unlock(&m->lock);
    if (!leading) return 0;
    int rc = kp_etcd_resign(m->e, &lk, err, errlen);
    kp_etcd_leader_key_free(&lk);
    return rc == KP_ETCD_ENOTFOUND ? 0 : map_rc(rc);
}

/* ---- topics ---- */

static int topic_check(const kp_meta_topic_t *t, char *err, size_t errlen)
{
    if (topic_name_ok(t->name, err, errlen)) return KP_META_EINVAL;
    if (t->partitions < 1 || t->replication_factor < 1 || t->replication_factor > KP_REPLICAS_MAX ||
        !t->replicas) {
        snprintf(err, errlen, "topic %s: bad partition count or replication factor", t->name);
        return KP_META_EINVAL;
    }
    return 0;
}

/* Writes initial states of partitions [from, to) in batches, each conditioned on the topic
 * record still being at topic_rev. */
static int write_initial_states(meta_etcd_t *m, const kp_meta_topic_t *t, int32_t from, int32_t to,
                                int64_t topic_rev, char *err, size_t errlen)
{
    char tkey[512];
    mkey(m, tkey, sizeof(tkey), "topics/%s", t->name);
    while (from < to) {
        int n = to - from > TXN_OPS_MAX ? TXN_OPS_MAX : to - from;
        kp_etcd_op_t ops[TXN_OPS_MAX];
        char *keys[TXN_OPS_MAX], *vals[TXN_OPS_MAX];
        for (int i = 0; i < n; i++) {
            int32_t p = from + i;
            kp_partition_state_t st = {.leader = t->replicas[(size_t)p * t->replication_factor],
                                       .nisr = t->replication_factor};
            memcpy(st.isr, t->replicas + (size_t)p * t->replication_factor,
                   t->replication_factor * sizeof(int32_t));
            keys[i] = malloc(512);
            mkey(m, keys[i], 512, "partitions/%s/%d", t->name, p);
            vals[i] = kp_meta_pstate_encode(&st);
            ops[i] = (kp_etcd_op_t){.type = KP_ETCD_OP_PUT,
                                    .key = keys[i],
                                    .value = vals[i],
                                    .value_len = strlen(vals[i])};
        }
        kp_etcd_cmp_t c = {.key = tkey,
                           .target = KP_ETCD_CMP_MOD,
                           .result = KP_ETCD_CMP_EQUAL,
                           .number = topic_rev};
        kp_etcd_txn_result_t res;
        int rc = kp_etcd_txn(m->e, &c, 1, ops, n, NULL, 0, &res, err, errlen);
        for (int i = 0; i < n; i++) {
            free(keys[i]);
            free(vals[i]);
        }
        if (rc) return map_rc(rc);
        int ok = res.succeeded;
        kp_etcd_txn_result_free(&res);
        if (!ok) {
            snprintf(err, errlen, "topic %s changed while its partitions were being created",
                     t->name);
            return KP_META_ECONFLICT;
        }
        from += n;
    }
    return 0;
}

static int topic_create(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                        size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int rc = topic_check(t, err, errlen);
    if (rc) return rc;
    char key[512];
    mkey(m, key, sizeof(key), "topics/%s", t->name);
    char *v = kp_meta_topic_encode(t);
    int64_t rev;
    rc = kp_etcd_cas(m->e, key, v, strlen(v), 0, 0, &rev, NULL, err, errlen);
    free(v);
    if (rc == KP_ETCD_ECONFLICT) {
        snprintf(err, errlen, "Topic '%s' already exists.", t->name);
        return KP_META_EEXISTS;
    }
    if (rc) return map_rc(rc);
    rc = write_initial_states(m, t, 0, t->partitions, rev, err, errlen);
    if (rc == 0 && version) *version = rev;
    return rc;
}

static int topic_get(kp_meta_store_t *s, const char *name, kp_meta_topic_t *out, char *err,
                     size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    memset(out, 0, sizeof(*out));
    int rc = topic_name_ok(name, err, errlen);
    if (rc) return rc;
    char key[512];
    mkey(m, key, sizeof(key), "topics/%s", name);
    kp_etcd_kv_t kv;
    rc = kp_etcd_get(m->e, key, &kv, err, errlen);
    if (rc) return map_rc(rc);
    rc = kp_meta_topic_decode(name, kv.value, kv.value_len, out, err, errlen);
    out->version = kv.mod_revision;
    kp_etcd_kv_free(&kv);
    return rc;
}

static int cmp_topic_name(const void *a, const void *b)
{
    return strcmp(((const kp_meta_topic_t *)a)->name, ((const kp_meta_topic_t *)b)->name);
}

static int topics_list(kp_meta_store_t *s, kp_meta_topic_t **out, int *n, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    *out = NULL;
    *n = 0;
    char key[512];
    mkey(m, key, sizeof(key), "topics/");
    size_t plen = strlen(key);
    kp_etcd_range_t r;
    int rc = kp_etcd_range(m->e, key, NULL, 1, 0, &r, err, errlen);
    if (rc) return map_rc(rc);
    kp_meta_topic_t *list = calloc(r.count ? r.count : 1, sizeof(*list));
    int k = 0;
    for (int i = 0; list && i < r.count; i++) {
        const char *name = r.kvs[i].key + plen;
        char e2[256];
        if (topic_name_ok(name, e2, sizeof(e2)) ||
            kp_meta_topic_decode(name, r.kvs[i].value, r.kvs[i].value_len, &list[k], e2,
                                 sizeof(e2))) {
            kp_warn("meta", "%s: %s (skipped)", r.kvs[i].key, e2);
            continue;
        }
        list[k++].version = r.kvs[i].mod_revision;
    }
    kp_etcd_range_free(&r);
    if (!list) return KP_META_EUNAVAILABLE;
    qsort(list, k, sizeof(*list), cmp_topic_name);
    *out = list;
    *n = k;
    return 0;
}

static int topic_update(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                        size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int rc = topic_check(t, err, errlen);
    if (rc) return rc;
    kp_meta_topic_t cur;
    rc = topic_get(s, t->name, &cur, err, errlen);
    if (rc) return rc;
    int32_t old_np = cur.partitions;
    int64_t cur_version = cur.version;
    int same_id = memcmp(cur.id, t->id, 16) == 0;
    kp_meta_topic_free(&cur);
    if (cur_version != t->version) {
        snprintf(err, errlen, "topic %s changed (version %lld, expected %lld)", t->name,
                 (long long)cur_version, (long long)t->version);
        return KP_META_ECONFLICT;
    }
    if (t->partitions < old_np || !same_id) {
        snprintf(err, errlen, "topic %s: partitions cannot shrink (%d < %d) nor the id change",
                 t->name, t->partitions, old_np);
        return KP_META_EINVAL;
    }
    char key[512];
    mkey(m, key, sizeof(key), "topics/%s", t->name);
    char *v = kp_meta_topic_encode(t);
    int64_t rev;
    rc = kp_etcd_cas(m->e, key, v, strlen(v), t->version, 0, &rev, NULL, err, errlen);
    free(v);
    if (rc) return map_rc(rc);
    rc = write_initial_states(m, t, old_np, t->partitions, rev, err, errlen);
    if (rc == 0 && version) *version = rev;
    return rc;
}

static int topic_delete(kp_meta_store_t *s, const char *name, int64_t version, char *err,
                        size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int rc = topic_name_ok(name, err, errlen);
    if (rc) return rc;
    char key[512], pkey[512];
    mkey(m, key, sizeof(key), "topics/%s", name);
    mkey(m, pkey, sizeof(pkey), "partitions/%s/", name);
    kp_etcd_cmp_t c = version ? (kp_etcd_cmp_t){.key = key,
                                                .target = KP_ETCD_CMP_MOD,
                                                .result = KP_ETCD_CMP_EQUAL,
                                                .number = version}
                              : (kp_etcd_cmp_t){.key = key,
                                                .target = KP_ETCD_CMP_VERSION,
                                                .result = KP_ETCD_CMP_GREATER,
                                                .number = 0};
    kp_etcd_op_t del[2] = {{.type = KP_ETCD_OP_DELETE, .key = key},
                           {.type = KP_ETCD_OP_DELETE, .key = pkey, .prefix = 1}};
    kp_etcd_op_t get = {.type = KP_ETCD_OP_RANGE, .key = key};
    kp_etcd_txn_result_t res;
    rc = kp_etcd_txn(m->e, &c, 1, del, 2, &get, 1, &res, err, errlen);
    if (rc) return map_rc(rc);
    int ok = res.succeeded, exists = res.range.count > 0;
    kp_etcd_txn_result_free(&res);
    if (ok) return 0;
    if (!exists) {
        snprintf(err, errlen, "This server does not host this topic-partition: %s", name);
        return KP_META_ENOTFOUND;
    }
    snprintf(err, errlen, "topic %s changed since it was read", name);
    return KP_META_ECONFLICT;
}

/* ---- partition state ---- */

static int partition_get(kp_meta_store_t *s, const char *topic, int32_t p, kp_meta_pstate_t *out,
                         char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    memset(out, 0, sizeof(*out));
    int rc = topic_name_ok(topic, err, errlen);
    if (rc) return rc;
    char key[512];
    mkey(m, key, sizeof(key), "partitions/%s/%d", topic, p);
    kp_etcd_kv_t kv;
    rc = kp_etcd_get(m->e, key, &kv, err, errlen);
    if (rc) return map_rc(rc);
    rc = kp_meta_pstate_decode(kv.value, kv.value_len, &out->state, err, errlen);
    out->version = kv.mod_revision;
    kp_etcd_kv_free(&kv);
    return rc;
}

static int partition_cas(kp_meta_store_t *s, const char *topic, int32_t p,
                         const kp_partition_state_t *next, int64_t expected, int fence,
                         int64_t *version, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    int rc = topic_name_ok(topic, err, errlen);
    if (rc) return rc;
    if (p < 0 || next->nisr < 0 || next->nisr > KP_REPLICAS_MAX || next->leader < -1) {
        snprintf(err, errlen, "partition state: bad arguments");
        return KP_META_EINVAL;
    }
    char key[512], lkey[KP_ETCD_KEY_BYTES_MAX + 1] = "";
    mkey(m, key, sizeof(key), "partitions/%s/%d", topic, p);
    int64_t lrev = 0;
    if (fence) {
        pthread_mutex_lock(&m->lock);
        if (m->leading) {
            snprintf(lkey, sizeof(lkey), "%.*s", (int)m->leader.key_len, m->leader.key);
            lrev = m->leader.rev;
        }
        pthread_mutex_unlock(&m->lock);
        if (!lrev) {
            snprintf(err, errlen, "broker %d is not the controller", m->broker_id);
            return KP_META_EFENCED;
        }
    }
    kp_etcd_cmp_t cmp[2] = {
        {.key = key, .target = KP_ETCD_CMP_MOD, .result = KP_ETCD_CMP_EQUAL, .number = expected},
        {.key = lkey, .target = KP_ETCD_CMP_CREATE, .result = KP_ETCD_CMP_EQUAL, .number = lrev},
    };
    char *v = kp_meta_pstate_encode(next);
    kp_etcd_op_t put = {.type = KP_ETCD_OP_PUT, .key = key, .value = v, .value_len = strlen(v)};
    kp_etcd_op_t get[2] = {{.type = KP_ETCD_OP_RANGE, .key = key},
                           {.type = KP_ETCD_OP_RANGE, .key = fence ? lkey : key}};
    kp_etcd_txn_result_t res;
    rc = kp_etcd_txn(m->e, cmp, fence ? 2 : 1, &put, 1, get, fence ? 2 : 1, &res, err, errlen);
    free(v);
    if (rc) return map_rc(rc);
    if (res.succeeded) {
        if (version) *version = res.revision;
        kp_etcd_txn_result_free(&res);
        return 0;
    }
    int still_leader = 0;
    int64_t have = 0;
    for (int i = 0; i < res.range.count; i++) {
        if (!strcmp(res.range.kvs[i].key, key)) have = res.range.kvs[i].mod_revision;
        if (fence && !strcmp(res.range.kvs[i].key, lkey))
            still_leader = res.range.kvs[i].create_revision == lrev;
    }
    kp_etcd_txn_result_free(&res);
    if (fence && !still_leader) {
        pthread_mutex_lock(&m->lock);
        if (m->leader.rev == lrev) {
            m->leading = 0;
            kp_etcd_leader_key_free(&m->leader);
        }
        pthread_mutex_unlock(&m->lock);
        snprintf(err, errlen, "broker %d is no longer the controller", m->broker_id);
        return KP_META_EFENCED;
    }
    snprintf(err, errlen, "partition %s-%d changed (version %lld, expected %lld)", topic, p,
             (long long)have, (long long)expected);
    return KP_META_ECONFLICT;
}

/* ---- ACLs ---- */

static void acl_key(meta_etcd_t *m, const char *encoded, char *out, size_t outlen)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)encoded, strlen(encoded), md);
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    mkey(m, out, outlen, "acls/%s", hex);
}

static int acls_add(kp_meta_store_t *s, const kp_acl_t *acls, int n, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    for (int from = 0; from < n;) {
        int k = n - from > TXN_OPS_MAX ? TXN_OPS_MAX : n - from;
        kp_etcd_op_t ops[TXN_OPS_MAX];
        char keys[TXN_OPS_MAX][600];
        char *vals[TXN_OPS_MAX];
        for (int i = 0; i < k; i++) {
            vals[i] = kp_meta_acl_encode(&acls[from + i]);
            acl_key(m, vals[i], keys[i], sizeof(keys[i]));
            ops[i] = (kp_etcd_op_t){.type = KP_ETCD_OP_PUT,
                                    .key = keys[i],
                                    .value = vals[i],
                                    .value_len = strlen(vals[i])};
        }
        kp_etcd_txn_result_t res;
        int rc = kp_etcd_txn(m->e, NULL, 0, ops, k, NULL, 0, &res, err, errlen);
        for (int i = 0; i < k; i++) free(vals[i]);
        if (rc) return map_rc(rc);
        kp_etcd_txn_result_free(&res);
        from += k;
    }
    return 0;
}

static int acl_remove(kp_meta_store_t *s, const kp_acl_t *acl, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    char *v = kp_meta_acl_encode(acl);
    char key[600];
    acl_key(m, v, key, sizeof(key));
    free(v);
    int64_t deleted = 0;
    int rc = kp_etcd_delete(m->e, key, 0, &deleted, err, errlen);
    if (rc) return map_rc(rc);
    if (!deleted) {
        snprintf(err, errlen, "no such ACL binding");
        return KP_META_ENOTFOUND;
    }
    return 0;
}

static int acls_list(kp_meta_store_t *s, kp_acl_t **out, int *n, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    *out = NULL;
    *n = 0;
    char key[512];
    mkey(m, key, sizeof(key), "acls/");
    kp_etcd_range_t r;
    int rc = kp_etcd_range(m->e, key, NULL, 1, 0, &r, err, errlen);
    if (rc) return map_rc(rc);
    kp_acl_t *list = calloc(r.count ? r.count : 1, sizeof(*list));
    int k = 0;
    for (int i = 0; list && i < r.count; i++) {
        char e2[256];
        if (kp_meta_acl_decode(r.kvs[i].value, r.kvs[i].value_len, &list[k], e2, sizeof(e2))) {
            kp_warn("meta", "%s: %s (skipped)", r.kvs[i].key, e2);
            continue;
        }
        k++;
    }
    kp_etcd_range_free(&r);
    if (!list) return KP_META_EUNAVAILABLE;
    *out = list;
    *n = k;
    return 0;
}

/* ---- producer ids ---- */

static int producer_ids_alloc(kp_meta_store_t *s, int64_t count, int64_t *first, char *err,
                              size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    if (count <= 0 || count > (1 << 20)) {
        snprintf(err, errlen, "producer id block size %lld out of range", (long long)count);
        return KP_META_EINVAL;
    }
    char key[512];
    mkey(m, key, sizeof(key), "producer_ids");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        kp_etcd_kv_t kv;
        int64_t next = 0, mod = 0;
        int rc = kp_etcd_get(m->e, key, &kv, err, errlen);
        if (rc == 0) {
            json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
            json_t *j = json_object_get(o, "next");
            next = json_is_integer(j) ? json_integer_value(j) : -1;
            mod = kv.mod_revision;
            json_decref(o);
            kp_etcd_kv_free(&kv);
            if (next < 0 || next > INT64_MAX - count) {
                snprintf(err, errlen, "%s is corrupt", key);
                return KP_META_ECORRUPT;
            }
        } else if (rc != KP_ETCD_ENOTFOUND) {
            return map_rc(rc);
        }
        json_t *o = json_pack("{s:I}", "next", (json_int_t)(next + count));
        char *v = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        rc = kp_etcd_cas(m->e, key, v, strlen(v), mod, 0, NULL, NULL, err, errlen);
        free(v);
        if (rc == 0) {
            *first = next;
            return 0;
        }
        if (rc != KP_ETCD_ECONFLICT) return map_rc(rc);
    }
    snprintf(err, errlen, "%s: too much contention", key);
    return KP_META_ECONFLICT;
}

/* ---- watch ---- */

/* Classifies a key under the prefix; 0 when it is one of ours. */
static int classify(const meta_etcd_t *m, const char *key, kp_meta_change_t *c, char *topic,
                    size_t topiclen)
{
    size_t plen = strlen(m->prefix);
    if (strncmp(key, m->prefix, plen) != 0 || key[plen] != '/') return -1;
    const char *k = key + plen + 1;
    memset(c, 0, sizeof(*c));
    c->partition = -1;
    c->broker_id = -1;
    char *end;
    if (!strcmp(k, "cluster_id")) {
        c->kind = KP_META_CH_CLUSTER;
    } else if (!strncmp(k, "brokers/", 8)) {
        long id = strtol(k + 8, &end, 10);
        if (*end || end == k + 8 || id < 0 || id > INT32_MAX) return -1;
        c->kind = KP_META_CH_BROKER;
        c->broker_id = (int32_t)id;
    } else if (!strncmp(k, "controller/", 11) || !strcmp(k, "controller_epoch")) {
        c->kind = KP_META_CH_CONTROLLER;
    } else if (!strncmp(k, "topics/", 7)) {
        c->kind = KP_META_CH_TOPIC;
        snprintf(topic, topiclen, "%s", k + 7);
        c->topic = topic;
    } else if (!strncmp(k, "partitions/", 11)) {
        const char *slash = strrchr(k + 11, '/');
        if (!slash || (size_t)(slash - (k + 11)) >= topiclen) return -1;
        long p = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || p < 0 || p > INT32_MAX) return -1;
        c->kind = KP_META_CH_PARTITION;
        snprintf(topic, topiclen, "%.*s", (int)(slash - (k + 11)), k + 11);
        c->topic = topic;
        c->partition = (int32_t)p;
    } else if (!strncmp(k, "acls/", 5)) {
        c->kind = KP_META_CH_ACL;
    } else if (!strcmp(k, "producer_ids")) {
        c->kind = KP_META_CH_PRODUCER_IDS;
    } else {
        return -1;
    }
    return 0;
}

static void on_watch(void *arg, int kind, const kp_etcd_event_t *events, int n, int64_t revision)
{
    meta_etcd_t *m = arg;
    if (kind == KP_ETCD_WATCH_RESET) {
        kp_meta_change_t c = {
            .kind = KP_META_CH_RESYNC, .version = revision, .partition = -1, .broker_id = -1};
        m->watch_fn(m->watch_arg, &c, 1);
        return;
    }
    kp_meta_change_t *cs = calloc(n ? n : 1, sizeof(*cs));
    char(*topics)[256] = calloc(n ? n : 1, sizeof(*topics));
    if (!cs || !topics) {
        free(cs);
        free(topics);
        kp_meta_change_t c = {.kind = KP_META_CH_RESYNC, .version = revision};
        m->watch_fn(m->watch_arg, &c, 1);
        return;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (classify(m, events[i].kv.key, &cs[k], topics[k], sizeof(topics[k]))) continue;
        cs[k].deleted = events[i].type == KP_ETCD_EV_DELETE;
        cs[k].version = events[i].kv.mod_revision;
        k++;
    }
    if (k) m->watch_fn(m->watch_arg, cs, k);
    free(cs);
    free(topics);
}

static int watch_start(kp_meta_store_t *s, kp_meta_watch_fn fn, void *arg, char *err, size_t errlen)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    if (m->watch) {
        snprintf(err, errlen, "a watch is already running");
        return KP_META_EINVAL;
    }
    m->watch_fn = fn;
    m->watch_arg = arg;
    char key[512];
    mkey(m, key, sizeof(key), "%s", "");
    m->watch = kp_etcd_watch_start(m->e, key, 0, on_watch, m, err, errlen);
    return m->watch ? 0 : KP_META_EINVAL;
}

static void watch_stop(kp_meta_store_t *s)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    kp_etcd_watch_stop(m->watch);
    m->watch = NULL;
}

static void close_store(kp_meta_store_t *s)
{
    meta_etcd_t *m = (meta_etcd_t *)s;
    watch_stop(s);
    kp_etcd_leader_key_free(&m->leader);
    kp_etcd_close(m->e);
    pthread_mutex_destroy(&m->lock);
    free(m->prefix);
    free(m);
}

static const kp_meta_ops_t etcd_ops = {
    .name = "etcd",
    .close = close_store,
    .cluster_claim = cluster_claim,
    .broker_register = broker_register,
    .broker_keepalive = broker_keepalive,
    .broker_update = broker_update,
    .broker_unregister = broker_unregister,
    .brokers_list = brokers_list,
    .controller_campaign = controller_campaign,
    .controller_get = controller_get,
    .controller_resign = controller_resign,
    .topic_create = topic_create,
    .topic_get = topic_get,
    .topics_list = topics_list,
    .topic_update = topic_update,
    .topic_delete = topic_delete,
    .partition_get = partition_get,
    .partition_cas = partition_cas,
    .acls_add = acls_add,
    .acl_remove = acl_remove,
    .acls_list = acls_list,
    .producer_ids_alloc = producer_ids_alloc,
    .watch_start = watch_start,
    .watch_stop = watch_stop,
};

kp_meta_store_t *kp_meta_etcd_open(const char *endpoints, const char *prefix, int timeout_ms,
                                   int32_t broker_id, char *err, size_t errlen)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    while (plen > 1 && prefix[plen - 1] == '/') plen--;
    if (plen < 2 || prefix[0] != '/' || plen > 256) {
        snprintf(err, errlen,
                 "metadata.etcd.prefix must be an absolute key path such as /kpool/<cluster id>");
        return NULL;
    }
    kp_etcd_t *e = kp_etcd_open(endpoints, timeout_ms, err, errlen);
    if (!e) return NULL;
    meta_etcd_t *m = calloc(1, sizeof(*m));
    if (!m) {
        kp_etcd_close(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->base.ops = &etcd_ops;
    m->e = e;
    m->prefix = strndup(prefix, plen);
    m->broker_id = broker_id;
    pthread_mutex_init(&m->lock, NULL);
    return &m->base;
}
