/*
 * replicated_pool.c — a broker's part in a replicated pool's data (see pool.h).
 *
 * The thread's loop: take the changes the watch queued (a full resync, topics, partitions,
 * "brokers changed"), apply them — re-reading each record from the store, since a change
 * only names it — then the periodic work: the leader's ISR proposals (every 500 ms) and,
 * on the controller, a sweep over every partition (on broker changes and every 3 s).
 *
 * Writes to partition state are compare-and-swap on the version this broker read: the
 * controller's are also fenced on its controllership; a leader's ISR change and a
 * shutting-down leader's hand-over are not (they are conditioned on the state it leads
 * under). Either way a write computed from a stale read fails and is decided again.
 */
#include "broker/replicated_pool.h"

#include "broker/loop_ctx.h"
#include "broker/reassign_ctl.h"
#include "broker/replica_fetcher.h"
#include "cluster/member.h"
#include "cluster/reassign.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "protocol/errors.h"
#include "txn/txn_coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SWEEP_MS 3000
#define ISR_MS   500

typedef struct dirty_part {
    char *topic;
    int32_t partition; /* -1: the whole topic */
} dirty_part_t;

struct kp_rpool {
    kp_broker_t *b;
    kp_meta_store_t *store;
    kp_fetcher_t *fetcher;
    int64_t lag_max_ms;
    int unclean;
    int auto_rebalance;                           /* auto.leader.rebalance.enable */
    int64_t imbalance_interval_ms, imbalance_pct; /* leader.imbalance.* */
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards the queue and flags below */
    pthread_cond_t cond;
    int stopping;
    int resync, brokers_changed, acls_changed;
    int markers_inflight;    /* kp_rpool_write_marker calls using the fetcher: shutdown waits */
    _Atomic int serving;     /* the broker is started: readiness is ours to say */
    _Atomic int catching_up; /* as last computed by the thread (1 until the first resync) */
    _Atomic int synced;      /* the first full read of the store was applied */
    dirty_part_t *dirty;
    int ndirty, dirty_cap;
    atomic_llong isr_shrinks, isr_expands;
    /* this broker's log directory failed: waiters failed, registration rewritten */
    int fenced_local, dir_published;
    int64_t next_publish;
    /* the store's topics as last read (thread only) */
    kp_meta_topic_t *topics;
    int ntopics;
};

/* ---- the queue (watch thread) ---- */

static void on_change(void *arg, const kp_meta_change_t *c, int n)
{
    kp_rpool_t *p = arg;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < n; i++) {
        switch (c[i].kind) {
        case KP_META_CH_RESYNC:
            p->resync = 1;
            break;
        case KP_META_CH_BROKER:
        case KP_META_CH_CONTROLLER:
            p->brokers_changed = 1;
            break;
        case KP_META_CH_ACL:
            p->acls_changed = 1;
            break;
        case KP_META_CH_TOPIC:
        case KP_META_CH_PARTITION:
            if (!c[i].topic) break;
            if (p->ndirty == p->dirty_cap)
                p->dirty = kp_xrealloc(p->dirty, (size_t)(p->dirty_cap = p->dirty_cap * 2 + 16) *
                                                     sizeof(*p->dirty));
            p->dirty[p->ndirty++] = (dirty_part_t){
                kp_xstrdup(c[i].topic), c[i].kind == KP_META_CH_TOPIC ? -1 : c[i].partition};
            break;
        default:
            break;
        }
    }
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* ---- helpers ---- */

static kp_meta_topic_t *cached(kp_rpool_t *p, const char *name)
{
    for (int i = 0; i < p->ntopics; i++)
        if (!strcmp(p->topics[i].name, name)) return &p->topics[i];
    return NULL;
}

/* Asks for a full re-read on the next round, a little later (the store may be away). */
static void resync_later(kp_rpool_t *p)
{
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&p->lock);
    p->resync = 1;
    pthread_mutex_unlock(&p->lock);
}

static void cache_put(kp_rpool_t *p, kp_meta_topic_t *t) /* takes t's contents */
{
    kp_meta_topic_t *c = cached(p, t->name);
    if (c) {
        kp_meta_topic_free(c);
        *c = *t;
        return;
    }
    p->topics = kp_xrealloc(p->topics, (size_t)(p->ntopics + 1) * sizeof(*p->topics));
    p->topics[p->ntopics++] = *t;
}

static void cache_drop(kp_rpool_t *p, const char *name)
{
    kp_meta_topic_t *c = cached(p, name);
    if (!c) return;
    kp_meta_topic_free(c);
    *c = p->topics[--p->ntopics];
}

/* The brokers that may hold replicas: live, and their log directory working (a broker whose
 * directory failed stays registered, to be seen, but is as good as dead for its replicas). */
static int live_ids(kp_rpool_t *p, int32_t *out, int max)
{
    kp_member_view_t *v = kp_member_view(p->b->member);
    int n = 0;
    for (int i = 0; i < v->nbrokers && n < max; i++)
        if (!v->brokers[i].offline_dir) out[n++] = v->brokers[i].id;
    kp_member_view_put(v);
    return n;
}

/* The live brokers whose log directory failed. */
static int failed_ids(kp_rpool_t *p, int32_t *out, int max)
{
    kp_member_view_t *v = kp_member_view(p->b->member);
    int n = 0;
    for (int i = 0; i < v->nbrokers && n < max; i++)
        if (v->brokers[i].offline_dir) out[n++] = v->brokers[i].id;
    kp_member_view_put(v);
    return n;
}

/* The brokers a new replica may be placed on (live, directory working) into pb. */
static int placeable(const kp_member_view_t *v, kp_place_broker_t *pb)
{
    int n = 0;
    for (int i = 0; i < v->nbrokers; i++)
        if (!v->brokers[i].offline_dir)
            pb[n++] = (kp_place_broker_t){v->brokers[i].id, v->brokers[i].rack};
    return n;
}

/* The per-partition replication lag series (docs/replication.md, "Metrics"): on a leader, each
 * follower's lag in messages and the time since it was last caught up (labels topic,
 * partition, follower: the partitions led here times their other replicas); on a follower,
 * its own fetch lag (topic, partition). Topic names are [a-zA-Z0-9._-]: nothing to escape. */
static void lag_series(kp_topic_t *t, int32_t k, kp_partition_t *part, int64_t now, kp_buf_t *msgs,
                       kp_buf_t *age, kp_buf_t *fetcher)
{
    kp_replica_lag_t lag[KP_REPLICAS_MAX];
    int n = kp_partition_replica_lags(part, now, lag);
    for (int j = 0; j < n; j++) {
        kp_buf_appendf(msgs,
                       "kpool_replica_lag_messages{topic=\"%s\",partition=\"%d\",follower=\"%d\"} "
                       "%" PRId64 "\n",
                       t->name, (int)k, (int)lag[j].id, lag[j].messages);
        kp_buf_appendf(age,
                       "kpool_replica_time_since_caught_up_seconds{topic=\"%s\",partition=\"%d\","
                       "follower=\"%d\"} %" PRId64 ".%03d\n",
                       t->name, (int)k, (int)lag[j].id, lag[j].since_caught_up_ms / 1000,
                       (int)(lag[j].since_caught_up_ms % 1000));
    }
    int64_t own = kp_partition_fetcher_lag(part);
    if (own >= 0)
        kp_buf_appendf(fetcher,
                       "kpool_replica_fetcher_lag_messages{topic=\"%s\",partition=\"%d\"} %" PRId64
                       "\n",
                       t->name, (int)k, own);
}

void kp_rpool_metrics(kp_rpool_t *p, kp_buf_t *out)
{
    int ntopics;
    int64_t under = 0, under_min = 0, offline = 0;
    int64_t now = kp_wall_ms(); /* the clock the follower fetches are stamped with */
    kp_buf_t msgs, age, fetcher;
    kp_buf_init(&msgs);
    kp_buf_init(&age);
    kp_buf_init(&fetcher);
    kp_topic_t **list = kp_topics_list(p->b->topics, &ntopics);
    for (int i = 0; i < ntopics; i++) {
        int min_isr = atomic_load_explicit(&list[i]->eff.min_insync_replicas, memory_order_relaxed);
        for (int32_t k = 0; k < list[i]->npartitions; k++) {
            kp_partition_t *part = kp_topic_partition(list[i], k);
            kp_repl_view_t v;
            if (!part) continue;
            kp_partition_view(part, &v);
            if (v.role == KP_ROLE_OFFLINE) offline++;
            if (v.role == KP_ROLE_LEADER || v.role == KP_ROLE_FOLLOWER)
                lag_series(list[i], k, part, now, &msgs, &age, &fetcher);
            if (v.role != KP_ROLE_LEADER) continue;
            under += v.nisr < v.nreplicas;
            under_min += v.nisr < min_isr;
        }
    }
    kp_topics_list_free(list, ntopics);
    kp_buf_appendf(out, "# HELP kpool_replica_lag_messages A follower's lag behind this leader: "
                        "the log end offset minus the follower's last fetch offset.\n"
                        "# TYPE kpool_replica_lag_messages gauge\n");
    kp_buf_append(out, msgs.data, msgs.len);
    kp_buf_appendf(out, "# HELP kpool_replica_time_since_caught_up_seconds Time since a "
                        "follower's fetch last reached this leader's log end offset.\n"
                        "# TYPE kpool_replica_time_since_caught_up_seconds gauge\n");
    kp_buf_append(out, age.data, age.len);
    kp_buf_appendf(out, "# HELP kpool_replica_fetcher_lag_messages This follower's lag: the "
                        "leader's high watermark at its last fetch minus its log end offset.\n"
                        "# TYPE kpool_replica_fetcher_lag_messages gauge\n");
    kp_buf_append(out, fetcher.data, fetcher.len);
    kp_buf_free(&msgs);
    kp_buf_free(&age);
    kp_buf_free(&fetcher);
    kp_member_view_t *mv = kp_member_view(p->b->member);
    int32_t controller = mv->controller_id;
    kp_member_view_put(mv);
    kp_buf_appendf(out,
                   "# HELP kpool_under_replicated_partitions Partitions led here whose ISR is "
                   "smaller than their replicas.\n# TYPE kpool_under_replicated_partitions gauge\n"
                   "kpool_under_replicated_partitions %" PRId64 "\n"
                   "# HELP kpool_under_min_isr_partitions Partitions led here whose ISR is "
                   "below min.insync.replicas.\n# TYPE kpool_under_min_isr_partitions gauge\n"
                   "kpool_under_min_isr_partitions %" PRId64 "\n"
                   "# HELP kpool_offline_partitions Partitions held here that have no leader.\n"
                   "# TYPE kpool_offline_partitions gauge\nkpool_offline_partitions %" PRId64 "\n"
                   "# HELP kpool_isr_shrinks_total ISR shrinks made by this broker as leader.\n"
                   "# TYPE kpool_isr_shrinks_total counter\nkpool_isr_shrinks_total %lld\n"
                   "# HELP kpool_isr_expands_total ISR expands made by this broker as leader.\n"
                   "# TYPE kpool_isr_expands_total counter\nkpool_isr_expands_total %lld\n"
                   "# HELP kpool_active_controller 1 on the pool's controller.\n"
                   "# TYPE kpool_active_controller gauge\nkpool_active_controller %d\n"
                   "# HELP kpool_controller_id The controller's broker id (-1: none known).\n"
                   "# TYPE kpool_controller_id gauge\nkpool_controller_id %d\n",
                   under, under_min, offline, (long long)atomic_load(&p->isr_shrinks),
                   (long long)atomic_load(&p->isr_expands), kp_member_is_controller(p->b->member),
                   controller);
}

int kp_rpool_live_brokers(kp_rpool_t *p)
{
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    return live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
}

/* Creates an internal topic of the pool (compacted, RF = min(3, live brokers)) through the
 * store, as Kafka creates __consumer_offsets and __transaction_state on first use. 0 or a
 * Kafka error (COORDINATOR_NOT_AVAILABLE: the client asks again). */
static int16_t create_internal(kp_rpool_t *p, const char *name, int32_t partitions, int rf)
{
    const char *keys[] = {"cleanup.policy", "segment.bytes"};
    const char *vals[] = {"compact", "104857600"};
    kp_topic_spec_t spec = {.name = kp_str_c(name),
                            .partitions = partitions,
                            .config_keys = keys,
                            .config_values = vals,
                            .nconfigs = 2,
                            .internal = 1};
    int live = kp_rpool_live_brokers(p);
    if (rf > live) { /* as Kafka: not created with fewer replicas than asked for */
        kp_warn("pool",
                "%s needs %d live brokers (its replication factor), %d are live: not "
                "created yet",
                name, rf, live);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (rf <= 0) rf = live < 3 ? live : 3;
    char msg[512];
    int16_t rc = rf < 1 ? KERR_COORDINATOR_NOT_AVAILABLE
                        : kp_rpool_create_topic(p, &spec, rf, 0, msg, sizeof(msg));
    if (rc == KERR_TOPIC_ALREADY_EXISTS) return 0; /* another broker was first */
    if (rc) {
        kp_warn("pool", "cannot create %s: %s", name, rf < 1 ? "no live broker" : msg);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    kp_info("pool", "created %s: %d partitions, replication factor %d", name, partitions, rf);
    return 0;
}

int16_t kp_rpool_find_coordinator(kp_rpool_t *p, const char *topic, int32_t partitions, int rf,
                                  kp_str_t key, const char *listener, int32_t *id, char *host,
                                  size_t hostlen, int *port)
{
    kp_topic_t *t = kp_topics_get(p->b->topics, kp_str_c(topic));
    if (!t || !kp_rpool_topic_known(t)) {
        kp_topic_put(t);
        int16_t rc = create_internal(p, topic, partitions, rf);
        if (rc) return rc;
        t = kp_topics_get(p->b->topics, kp_str_c(topic));
        if (!t || !kp_rpool_topic_known(t)) { /* not applied here yet: the client retries */
            kp_topic_put(t);
            return KERR_COORDINATOR_NOT_AVAILABLE;
        }
    }
    /* Kafka's placement of a group or transactional id: abs(String.hashCode) % partitions */
    kp_repl_view_t v;
    kp_partition_view(t->partitions[kp_txn_partition_for(key, t->npartitions)], &v);
    kp_topic_put(t);
    if (v.leader < 0) return KERR_COORDINATOR_NOT_AVAILABLE; /* offline: elected soon */
    kp_member_view_t *mv = kp_member_view(p->b->member);
    int16_t rc = KERR_COORDINATOR_NOT_AVAILABLE; /* the leader is not (yet) seen live */
    for (int i = 0; i < mv->nbrokers; i++) {
        if (mv->brokers[i].id != v.leader) continue;
        const kp_meta_endpoint_t *ep = kp_member_endpoint(&mv->brokers[i], listener);
        if (!ep || !ep->host) break;
        *id = v.leader;
        snprintf(host, hostlen, "%s", ep->host);
        *port = ep->port;
        rc = 0;
    }
    kp_member_view_put(mv);
    return rc;
}

int kp_rpool_synced(kp_rpool_t *p)
{
    return p && atomic_load(&p->synced);
}

int kp_rpool_topic_known(kp_topic_t *t)
{
    if (t->npartitions < 1) return 0;
    kp_repl_view_t v;
    kp_partition_view(t->partitions[0], &v);
    return v.nreplicas > 0;
}

void kp_rpool_partition_hook(kp_partition_t *part, void *broker)
{
    kp_broker_t *b = broker;
    kp_partition_repl_init(part, b->cfg.node_id);
    kp_fetch_wait_partition_hook(part, broker);
}

/* The store's config overrides become the local topic's (when they differ). */
static void sync_configs(kp_rpool_t *p, const kp_meta_topic_t *t, kp_topic_t *lt)
{
    kp_props_t *have = kp_props_new();
    kp_topic_overrides_copy(lt, have);
    int same = kp_props_count(have) == (size_t)t->nconfigs;
    for (int i = 0; same && i < t->nconfigs; i++) {
        const char *v = kp_props_get(have, t->config_keys[i]);
        same = v && t->config_values[i] && !strcmp(v, t->config_values[i]);
    }
    kp_props_free(have);
    if (same) return;
    char msg[512];
    int16_t rc = kp_topics_alter_configs(
        p->b->topics, kp_str_c(t->name), (const char **)t->config_keys,
        (const char **)t->config_values, NULL, t->nconfigs, 0, msg, sizeof(msg));
    if (rc)
        kp_warn("pool", "cannot apply the pool's configs of %s here: %s", t->name, msg);
    else
        kp_info("pool", "topic %s: configs of the pool applied (%d overrides)", t->name,
                t->nconfigs);
}

/* Makes the local topic match the store's record (create, grow, configs). */
static kp_topic_t *ensure_local(kp_rpool_t *p, const kp_meta_topic_t *t)
{
    kp_topic_t *lt = kp_topics_get(p->b->topics, kp_str_c(t->name));
    char msg[512];
    if (atomic_load(&p->b->log_dir_failed)) return lt; /* nothing can be written there */
    if (!lt) {
        kp_topic_spec_t spec = {.name = kp_str_c(t->name),
                                .partitions = t->partitions,
                                .config_keys = (const char **)t->config_keys,
                                .config_values = (const char **)t->config_values,
                                .nconfigs = t->nconfigs,
                                .internal = t->internal,
                                .id = t->id};
        int16_t rc = kp_topics_create(p->b->topics, &spec, 0, msg, sizeof(msg));
        if (rc && rc != KERR_TOPIC_ALREADY_EXISTS)
            kp_warn("pool", "cannot create topic %s here: %s", t->name, msg);
        lt = kp_topics_get(p->b->topics, kp_str_c(t->name));
    } else {
        if (lt->npartitions < t->partitions &&
            kp_topics_add_partitions(p->b->topics, kp_str_c(t->name), t->partitions, 0, msg,
                                     sizeof(msg)))
            kp_warn("pool", "cannot add partitions to %s here: %s", t->name, msg);
        sync_configs(p, t, lt);
    }
    return lt;
}

static int cas(kp_rpool_t *p, const char *topic, int32_t i, const kp_partition_state_t *next,
               int64_t version, int fence, const char *why);

static void apply_one(kp_rpool_t *p, const kp_meta_topic_t *t, kp_topic_t *lt, int32_t i,
                      const kp_meta_pstate_t *ps_in)
{
    kp_partition_t *part = kp_topic_partition(lt, i);
    if (!part) return;
    kp_meta_pstate_t bumped, *ps = (kp_meta_pstate_t *)ps_in;
    kp_repl_view_t v;
    kp_partition_view(part, &v);
    if (v.role == KP_ROLE_NONE && v.leader_epoch < 0 && ps->state.leader == p->b->cfg.node_id) {
        /* this process restarted while the store still names it leader: lead under a new
         * epoch, so that a follower that copied records this log lost in the crash finds
         * the divergence (OffsetsForLeaderEpoch) instead of keeping them under the old one */
        kp_partition_state_t next;
        kp_partition_state_elect(&ps->state, ps->state.leader, ps->state.isr, ps->state.nisr,
                                 &next);
        char err[256];
        if (cas(p, t->name, i, &next, ps->version, 0, "leader restarted") != 0 ||
            kp_meta_partition_get(p->store, t->name, i, &bumped, err, sizeof(err)) != 0) {
            resync_later(p); /* decided again on the next round */
            return;
        }
        ps = &bumped;
    }
    int32_t replicas[KP_REPLICAS_MAX]; /* the row, or both sides of a move (reassign.h) */
    int nreplicas = kp_reassign_replicas(t, i, replicas);
    kp_partition_apply_state(part, replicas, nreplicas, &ps->state, ps->version, kp_wall_ms());
    int32_t adding[KP_REPLICAS_MAX]; /* a move's new replicas: throttled until in the ISR */
    kp_partition_set_throttled(part, adding, kp_reassign_adding(t, i, adding));
    if (ps->state.leader >= 0 && ps->state.leader != p->b->cfg.node_id)
        for (int r = 0; r < nreplicas; r++)
            if (replicas[r] == p->b->cfg.node_id) kp_fetcher_follow(p->fetcher, ps->state.leader);
}

/* Re-reads partition i of t (or all when i < 0) and applies it. -1 when the store could not
 * be read (a full re-read is asked for), else 0. */
static int apply_partitions(kp_rpool_t *p, const kp_meta_topic_t *t, int32_t only)
{
    kp_topic_t *lt = ensure_local(p, t);
    if (!lt) return 0;
    int rc_all = 0;
    for (int32_t i = only < 0 ? 0 : only; i < (only < 0 ? t->partitions : only + 1); i++) {
        if (i >= t->partitions) break;
        kp_meta_pstate_t ps;
        char err[512];
        int rc = kp_meta_partition_get(p->store, t->name, i, &ps, err, sizeof(err));
        if (rc && rc != KP_META_EUNAVAILABLE && rc != KP_META_ETIMEDOUT) {
            kp_debug("pool", "%s-%d: %s", t->name, i, err);
            continue;
        }
        if (rc) {
            /* the change that named it would be lost (the watch does not deliver it again):
             * everything is read again once the store answers */
            kp_info("pool", "%s-%d: cannot read its state (%s): re-reading the pool", t->name, i,
                    err);
            resync_later(p);
            rc_all = -1;
            break;
        }
        apply_one(p, t, lt, i, &ps);
    }
    kp_topic_put(lt);
    return rc_all;
}

static void apply_topic(kp_rpool_t *p, const char *name, int32_t partition)
{
    kp_meta_topic_t t;
    char err[512];
    kp_meta_topic_t *c = partition >= 0 ? cached(p, name) : NULL;
    if (c) {
        apply_partitions(p, c, partition);
        return;
    }
    int rc = kp_meta_topic_get(p->store, name, &t, err, sizeof(err));
    if (rc == KP_META_ENOTFOUND) {
        cache_drop(p, name);
        kp_topic_t *lt = kp_topics_get(p->b->topics, kp_str_c(name));
        if (lt) {
            int internal = lt->internal;
            kp_topic_put(lt);
            if (!internal && partition < 0 && !atomic_load(&p->b->log_dir_failed)) {
                kp_info("pool", "topic %s was deleted from the pool: deleting it here", name);
                kp_topics_delete(p->b->topics, kp_str_c(name), err, sizeof(err));
            }
        }
        return;
    }
    if (rc) {
        if (rc == KP_META_EUNAVAILABLE || rc == KP_META_ETIMEDOUT) {
            /* the change would be lost (the watch does not deliver it again): everything
             * is read again once the store answers */
            kp_info("pool", "topic %s: cannot read it (%s): re-reading the pool", name, err);
            resync_later(p);
        } else {
            kp_debug("pool", "topic %s: %s", name, err);
        }
        return;
    }
    cache_put(p, &t);
    apply_partitions(p, cached(p, name), partition);
}

static void resync(kp_rpool_t *p)
{
    kp_meta_topic_t *list;
    int n;
    char err[512];
    if (kp_meta_topics_list(p->store, &list, &n, err, sizeof(err)) != 0) {
        kp_warn("pool", "cannot list the pool's topics: %s", err);
        resync_later(p);
        return;
    }
    for (int i = 0; i < p->ntopics; i++) kp_meta_topic_free(&p->topics[i]);
    free(p->topics);
    p->topics = list;
    p->ntopics = n;
    int complete = 1;
    for (int i = 0; i < n && complete; i++) complete = apply_partitions(p, &p->topics[i], -1) == 0;
    if (!complete || atomic_load(&p->synced)) return; /* read again soon (resync_later) */
    /* the first complete read: every topic of the pool is known here, with its partitions'
     * states, so clients may now be answered (kp_broker_start) */
    atomic_store(&p->synced, 1);
    kp_broker_listen(p->b);
}

/* ---- ACLs ---- */

static int acl_eq(const kp_acl_t *a, const kp_acl_t *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           !strcmp(a->resource_name, b->resource_name) && !strcmp(a->principal, b->principal) &&
           !strcmp(a->host, b->host);
}

typedef struct acl_vec {
    kp_acl_t *v;
    int n, cap;
} acl_vec_t;

static void collect_acl(const kp_acl_t *acl, void *arg)
{
    acl_vec_t *c = arg;
    if (c->n == c->cap)
        c->v = kp_xrealloc(c->v, (size_t)(c->cap = c->cap * 2 + 16) * sizeof(*c->v));
    c->v[c->n++] = (kp_acl_t){acl->resource_type,
                              acl->pattern_type,
                              acl->operation,
                              acl->permission,
                              kp_xstrdup(acl->resource_name),
                              kp_xstrdup(acl->principal),
                              kp_xstrdup(acl->host)};
}

/* The store's bindings become this broker's: missing ones added, others removed. */
static void sync_acls(kp_rpool_t *p)
{
    kp_acl_t *want;
    int nwant;
    char err[512];
    if (kp_meta_acls_list(p->store, &want, &nwant, err, sizeof(err)) != 0) {
        kp_warn("pool", "cannot read the pool's ACLs: %s", err);
        pthread_mutex_lock(&p->lock);
        p->acls_changed = 1;
        pthread_mutex_unlock(&p->lock);
        return;
    }
    acl_vec_t have = {0};
    kp_acl_filter_t all = {KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL};
    kp_acl_list(p->b->authorizer, &all, collect_acl, &have);
    int added = 0, removed = 0;
    for (int i = 0; i < nwant; i++) {
        int found = 0;
        for (int j = 0; j < have.n && !found; j++) found = acl_eq(&want[i], &have.v[j]);
        if (!found && kp_acl_add(p->b->authorizer, &want[i], 1) == 0) added++;
    }
    for (int j = 0; j < have.n; j++) {
        int found = 0;
        for (int i = 0; i < nwant && !found; i++) found = acl_eq(&want[i], &have.v[j]);
        if (found) continue;
        const kp_acl_t *a = &have.v[j];
        kp_acl_filter_t exact = {a->resource_type, a->pattern_type, a->operation, a->permission,
                                 a->resource_name, a->principal,    a->host};
        if (kp_acl_remove(p->b->authorizer, &exact, NULL, NULL) > 0) removed++;
    }
    if (added || removed)
        kp_info("pool", "ACLs of the pool applied: %d added, %d removed", added, removed);
    kp_meta_acls_free(want, nwant);
    for (int j = 0; j < have.n; j++) {
        free(have.v[j].resource_name);
        free(have.v[j].principal);
        free(have.v[j].host);
    }
    free(have.v);
}

int kp_rpool_acls_added(kp_rpool_t *p, const kp_acl_t *acls, int n, char *msg, size_t msglen)
{
    char err[512];
    if (kp_meta_acls_add(p->store, acls, n, err, sizeof(err)) == 0) return 0;
    snprintf(msg, msglen, "the pool's metadata store: %s", err);
    return -1;
}

int kp_rpool_acl_removed(kp_rpool_t *p, const kp_acl_t *acl, char *msg, size_t msglen)
{
    char err[512];
    int rc = kp_meta_acl_remove(p->store, acl, err, sizeof(err));
    if (rc == 0 || rc == KP_META_ENOTFOUND) return 0;
    snprintf(msg, msglen, "the pool's metadata store: %s", err);
    return -1;
}

/* ---- controller ---- */

static int cas(kp_rpool_t *p, const char *topic, int32_t i, const kp_partition_state_t *next,
               int64_t version, int fence, const char *why)
{
    char err[512];
    int64_t nv;
    int rc = kp_meta_partition_cas(p->store, topic, i, next, version, fence, &nv, err, sizeof(err));
    if (rc == 0)
        kp_info("pool", "%s-%d: %s: leader %d, epoch %d, isr of %d", topic, i, why, next->leader,
                next->leader_epoch, next->nisr);
    else
        kp_debug("pool", "%s-%d: %s: %s", topic, i, why, err);
    return rc;
}

/* The controller's decision for one partition: a new leader when the leader is gone, dead
 * brokers out of the ISR. */
static void control_partition(kp_rpool_t *p, const kp_meta_topic_t *t, int32_t i, kp_id_set_t live)
{
    kp_meta_pstate_t ps;
    char err[512];
    if (kp_meta_partition_get(p->store, t->name, i, &ps, err, sizeof(err)) != 0) return;
    const kp_partition_state_t *cur = &ps.state;
    int32_t assigned[KP_REPLICAS_MAX];
    kp_id_set_t replicas = {assigned, kp_reassign_replicas(t, i, assigned)};
    kp_id_set_t isr = {cur->isr, cur->nisr};
    int32_t isr_live[KP_REPLICAS_MAX];
    int n = 0;
    for (int k = 0; k < cur->nisr; k++)
        if (kp_id_set_has(live, cur->isr[k])) isr_live[n++] = cur->isr[k];
    kp_partition_state_t next;
    if (cur->leader < 0 || !kp_id_set_has(live, cur->leader)) {
        int unclean = 0;
        int32_t leader = kp_elect_leader(replicas, isr, live, p->unclean, &unclean);
        if (leader >= 0) {
            if (unclean) {
                isr_live[0] = leader;
                n = 1;
            }
            kp_partition_state_elect(cur, leader, isr_live, n, &next);
            cas(p, t->name, i, &next, ps.version, 1, unclean ? "unclean election" : "election");
        } else if (cur->leader >= 0) {
            /* nobody in the ISR is alive: offline, ISR kept so that its members can lead
             * again when they return (unclean.leader.election.enable=false) */
            kp_partition_state_elect(cur, -1, cur->isr, cur->nisr, &next);
            cas(p, t->name, i, &next, ps.version, 1, "offline");
        }
    } else if (n < cur->nisr && n > 0) {
        kp_partition_state_set_isr(cur, isr_live, n, &next);
        cas(p, t->name, i, &next, ps.version, 1, "dead brokers out of the ISR");
    } else if (kp_reassign_conform(replicas, cur, live, &next)) {
        /* a move completed or was cancelled: replicas that left go out of the ISR and
         * the leadership */
        cas(p, t->name, i, &next, ps.version, 1, "conformed to the assignment");
    }
}

static void controller_sweep(kp_rpool_t *p)
{
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    int n = live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
    if (n == 0) return; /* our own view is not ready: decide nothing */
    kp_id_set_t live = {ids, n};
    for (int i = 0; i < p->ntopics; i++)
        for (int32_t k = 0; k < p->topics[i].partitions; k++)
            control_partition(p, &p->topics[i], k, live);
}

/* The controller's decisions for every partition of one topic (as cached). */
static void control_topic(kp_rpool_t *p, const char *name)
{
    kp_meta_topic_t *t = cached(p, name);
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    int n = live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
    if (!t || n == 0) return;
    for (int32_t k = 0; k < t->partitions; k++) control_partition(p, t, k, (kp_id_set_t){ids, n});
}

/* Completes the moves whose target replicas are all in the ISR (broker/reassign_ctl.c). */
static void reassign_pass(kp_rpool_t *p)
{
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    int n = live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
    if (n == 0) return;
    kp_reassign_controller_pass(p->store, p->topics, p->ntopics, (kp_id_set_t){ids, n});
}

/* auto.leader.rebalance.enable: preferred leaders back where a broker's share of its
 * preferred partitions led elsewhere exceeds leader.imbalance.per.broker.percentage. */
static void leader_imbalance_pass(kp_rpool_t *p)
{
    int32_t ids[KP_PLACEMENT_BROKERS_MAX];
    int n = live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
    if (n == 0) return;
    kp_reassign_leader_imbalance_pass(p->store, p->topics, p->ntopics, (kp_id_set_t){ids, n},
                                      p->imbalance_pct);
}

/* ---- leader: ISR proposals ---- */

static void leader_isr_pass(kp_rpool_t *p)
{
    int ntopics;
    kp_topic_t **list = kp_topics_list(p->b->topics, &ntopics);
    int64_t now = kp_wall_ms();
    for (int i = 0; i < ntopics; i++) {
        for (int32_t k = 0; k < list[i]->npartitions; k++) {
            kp_partition_t *part = kp_topic_partition(list[i], k);
            kp_partition_state_t next;
            int64_t version;
            if (!part || !kp_partition_isr_update(part, now, p->lag_max_ms, &next, &version))
                continue;
            kp_repl_view_t before;
            kp_partition_view(part, &before);
            /* a replica whose log directory failed may look caught up (an idle partition):
             * it is not taken (back) into the ISR */
            int32_t failed[KP_PLACEMENT_BROKERS_MAX];
            kp_id_set_t fs = {failed, failed_ids(p, failed, KP_PLACEMENT_BROKERS_MAX)};
            kp_id_set_t had = {before.isr, before.nisr};
            int m = 0;
            for (int j = 0; j < next.nisr; j++)
                if (kp_id_set_has(had, next.isr[j]) || !kp_id_set_has(fs, next.isr[j]))
                    next.isr[m++] = next.isr[j];
            next.nisr = m;
            if (m == before.nisr) continue;
            if (cas(p, list[i]->name, k, &next, version, 0, "ISR change") == 0) {
                atomic_fetch_add(next.nisr < before.nisr ? &p->isr_shrinks : &p->isr_expands, 1);
                kp_meta_topic_t *t = cached(p, list[i]->name);
                kp_meta_pstate_t ps;
                char err[256];
                if (t && kp_meta_partition_get(p->store, t->name, k, &ps, err, sizeof(err)) == 0)
                    apply_one(p, t, list[i], k, &ps);
            }
        }
    }
    kp_topics_list_free(list, ntopics);
}

/* ---- a failed log directory ---- */

/* This broker's log directory failed (kp_broker_log_dir_failed; every log is already
 * offline): acks=all requests waiting here fail, and the registration says so — retried
 * until written — so that the controller elects other leaders and takes this broker out of
 * the ISRs (as KRaft with a broker's offline log dirs). Fetchers stop by themselves: they
 * follow no offline log. */
static void dir_failed_pass(kp_rpool_t *p)
{
    if (!p->fenced_local) {
        int ntopics;
        kp_topic_t **list = kp_topics_list(p->b->topics, &ntopics);
        for (int i = 0; i < ntopics; i++)
            for (int32_t k = 0; k < list[i]->npartitions; k++) {
                kp_partition_t *part = kp_topic_partition(list[i], k);
                if (part) kp_partition_storage_failed(part);
            }
        kp_topics_list_free(list, ntopics);
        p->fenced_local = 1;
    }
    int64_t now = kp_mono_ms();
    if (p->dir_published || now < p->next_publish) return;
    char err[512];
    if (kp_member_set_offline_dir(p->b->member, p->b->cfg.log_dir, err, sizeof(err)) == 0) {
        p->dir_published = 1;
        kp_warn("pool",
                "broker %d: the pool now knows its log directory %s is offline: the controller "
                "moves its leaderships and ISR places to the other replicas",
                p->b->cfg.node_id, p->b->cfg.log_dir);
    } else {
        kp_warn("pool", "cannot publish the failed log directory yet: %s (retrying)", err);
        p->next_publish = now + 500;
    }
}

void kp_rpool_wake(kp_rpool_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->brokers_changed = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* ---- readiness ---- */

/* Whether a partition this broker follows does not list it in its ISR (catching up). */
static int followers_behind(kp_rpool_t *p)
{
    int ntopics, behind = 0;
    kp_topic_t **list = kp_topics_list(p->b->topics, &ntopics);
    for (int i = 0; i < ntopics && !behind; i++) {
        for (int32_t k = 0; k < list[i]->npartitions && !behind; k++) {
            kp_partition_t *part = kp_topic_partition(list[i], k);
            kp_repl_view_t v;
            if (!part) continue;
            kp_partition_view(part, &v);
            if (v.role != KP_ROLE_FOLLOWER) continue;
            behind = 1;
            for (int j = 0; j < v.nisr; j++)
                if (v.isr[j] == p->b->cfg.node_id) behind = 0;
        }
    }
    kp_topics_list_free(list, ntopics);
    return behind;
}

int kp_rpool_wait_synced(kp_rpool_t *p, int64_t timeout_ms)
{
    for (int64_t until = kp_mono_ms() + timeout_ms; !atomic_load(&p->synced);) {
        if (kp_mono_ms() >= until) return -1;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void kp_rpool_serving(kp_rpool_t *p)
{
    p->serving = 1;
    atomic_store(&p->b->ready, !p->catching_up);
}

/* ---- the thread ---- */

static void *pool_main(void *arg)
{
    kp_rpool_t *p = arg;
    int64_t next_isr = 0, next_sweep = 0, next_reassign = 0, next_dir_check = 0;
    int64_t next_imbalance = kp_mono_ms() + p->imbalance_interval_ms;
    int was_controller = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->stopping) break;
        if (!p->resync && !p->brokers_changed && !p->acls_changed && p->ndirty == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            if (p->stopping) break;
        }
        int rs = p->resync, bc = p->brokers_changed, ac = p->acls_changed;
        dirty_part_t *dirty = p->dirty;
        int nd = p->ndirty;
        p->resync = p->brokers_changed = p->acls_changed = 0;
        p->dirty = NULL;
        p->ndirty = p->dirty_cap = 0;
        pthread_mutex_unlock(&p->lock);

        int64_t t = kp_mono_ms();
        if (t >= next_dir_check) { /* removed or unmounted under us */
            kp_broker_check_log_dir(p->b);
            next_dir_check = t + 1000;
        }
        int failed = atomic_load(&p->b->log_dir_failed);
        if (failed) dir_failed_pass(p);
        if (rs) resync(p);
        if (rs || ac) sync_acls(p);
        int controller = kp_member_is_controller(p->b->member);
        for (int i = 0; i < nd; i++) {
            if (!rs) apply_topic(p, dirty[i].topic, dirty[i].partition);
            /* a topic's record changed: its assignment may have moved (a move completed or
             * was cancelled), so its partition states conform now rather than at the sweep */
            if (!rs && controller && dirty[i].partition < 0) control_topic(p, dirty[i].topic);
            free(dirty[i].topic);
        }
        free(dirty);
        int64_t now = kp_mono_ms();
        if (controller && now >= next_reassign) {
            reassign_pass(p);
            next_reassign = now + ISR_MS;
        }
        if (controller && p->auto_rebalance && now >= next_imbalance) {
            leader_imbalance_pass(p);
            next_imbalance = now + p->imbalance_interval_ms;
        }
        if (controller && (bc || !was_controller || now >= next_sweep)) {
            controller_sweep(p);
            next_sweep = now + SWEEP_MS;
        }
        was_controller = controller;
        if (now >= next_isr) {
            leader_isr_pass(p);
            next_isr = now + ISR_MS;
        }
        /* /readyz: not while a partition this broker replicates has it outside the ISR */
        int catching_up = !p->synced || followers_behind(p);
        atomic_store(&p->catching_up, catching_up);
        if (p->serving && !atomic_load(&p->b->stopping) && !failed)
            atomic_store(&p->b->ready, !catching_up);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

kp_rpool_t *kp_rpool_new(kp_broker_t *b, char *err, size_t errlen)
{
    kp_rpool_t *p = kp_xcalloc(1, sizeof(*p));
    p->b = b;
    p->store = kp_member_store(b->member);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (kp_props_get_i64(b->cfg.props, "replica.lag.time.max.ms", 30000, 100, INT32_MAX,
                         &p->lag_max_ms, err, errlen) < 0 ||
        kp_props_get_bool(b->cfg.props, "unclean.leader.election.enable", 0, &p->unclean, err,
                          errlen) < 0 ||
        kp_props_get_bool(b->cfg.props, "auto.leader.rebalance.enable", 1, &p->auto_rebalance, err,
                          errlen) < 0 ||
        kp_props_get_i64(b->cfg.props, "leader.imbalance.check.interval.seconds", 300, 1,
                         INT32_MAX / 1000, &p->imbalance_interval_ms, err, errlen) < 0 ||
        kp_props_get_i64(b->cfg.props, "leader.imbalance.per.broker.percentage", 10, 0, 100,
                         &p->imbalance_pct, err, errlen) < 0) {
        kp_rpool_free(p);
        return NULL;
    }
    p->imbalance_interval_ms *= 1000;
    p->catching_up = 1;
    p->fetcher = kp_fetcher_new(b, err, errlen);
    if (!p->fetcher) {
        kp_rpool_free(p);
        return NULL;
    }
    p->resync = 1;
    kp_member_set_listener(b->member, on_change, p);
    return p;
}

int kp_rpool_start(kp_rpool_t *p, char *err, size_t errlen)
{
    if (pthread_create(&p->thread, NULL, pool_main, p) != 0) {
        snprintf(err, errlen, "cannot start the pool thread: %s", strerror(errno));
        return -1;
    }
    p->started = 1;
    return 0;
}

/* Controlled shutdown: every partition led here goes to another live in-sync replica. */
static void hand_over(kp_rpool_t *p)
{
    int32_t ids[KP_PLACEMENT_BROKERS_MAX], self = p->b->cfg.node_id;
    int n = live_ids(p, ids, KP_PLACEMENT_BROKERS_MAX);
    kp_id_set_t live = {ids, n}, going = {&self, 1};
    int ntopics, moved = 0, away = 0;
    int64_t until = kp_mono_ms() + 5000; /* a shutdown is not held up long by a slow store */
    kp_topic_t **list = kp_topics_list(p->b->topics, &ntopics);
    for (int i = 0; i < ntopics && !away; i++) {
        for (int32_t k = 0; k < list[i]->npartitions && !away; k++) {
            kp_partition_t *part = kp_topic_partition(list[i], k);
            kp_repl_view_t v;
            if (!part) continue;
            kp_partition_view(part, &v);
            if (v.role != KP_ROLE_LEADER) continue;
            kp_meta_pstate_t ps;
            char err[256];
            int rc = kp_meta_partition_get(p->store, list[i]->name, k, &ps, err, sizeof(err));
            if (rc == KP_META_EUNAVAILABLE || rc == KP_META_ETIMEDOUT || kp_mono_ms() > until) {
                kp_warn("pool",
                        "controlled shutdown cut short (%s): the controller moves the "
                        "remaining leaderships when this broker's session ends",
                        rc ? err : "out of time");
                away = 1;
                continue;
            }
            if (rc != 0 || ps.state.leader != self) continue;
            kp_id_set_t replicas = {v.replicas, v.nreplicas}, isr = {ps.state.isr, ps.state.nisr};
            int32_t leader = kp_elect_leader_shutdown(replicas, isr, live, going);
            if (leader < 0) continue;
            int32_t rest[KP_REPLICAS_MAX];
            int m = 0;
            for (int j = 0; j < ps.state.nisr; j++)
                if (ps.state.isr[j] != self) rest[m++] = ps.state.isr[j];
            kp_partition_state_t next;
            kp_partition_state_elect(&ps.state, leader, rest, m, &next);
            if (cas(p, list[i]->name, k, &next, ps.version, 0, "controlled shutdown") == 0) {
                moved++;
                kp_meta_pstate_t now_ps = {next, 0};
                kp_partition_apply_state(part, v.replicas, v.nreplicas, &now_ps.state, 0,
                                         kp_wall_ms());
            }
        }
    }
    kp_topics_list_free(list, ntopics);
    if (moved) kp_info("pool", "controlled shutdown: moved the leadership of %d partitions", moved);
}

int16_t kp_rpool_write_marker(kp_rpool_t *p, int32_t leader, int64_t producer_id,
                              int16_t producer_epoch, int commit, const char *topic,
                              int32_t partition)
{
    pthread_mutex_lock(&p->lock);
    if (p->stopping || !p->fetcher) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    p->markers_inflight++;
    pthread_mutex_unlock(&p->lock);
    int16_t rc = kp_fetcher_write_marker(p->fetcher, leader, producer_id, producer_epoch, commit,
                                         topic, partition);
    pthread_mutex_lock(&p->lock);
    p->markers_inflight--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void kp_rpool_shutdown(kp_rpool_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    int was = p->stopping;
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (was) return;
    if (p->started) {
        pthread_join(p->thread, NULL);
        p->started = 0;
    }
    atomic_store(&p->b->ready, 0);
    hand_over(p);
    pthread_mutex_lock(&p->lock); /* markers being sent use the fetcher's connections */
    while (p->markers_inflight > 0) pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    kp_fetcher_free(p->fetcher);
    p->fetcher = NULL;
}

void kp_rpool_free(kp_rpool_t *p)
{
    if (!p) return;
    kp_rpool_shutdown(p);
    for (int i = 0; i < p->ndirty; i++) free(p->dirty[i].topic);
    free(p->dirty);
    for (int i = 0; i < p->ntopics; i++) kp_meta_topic_free(&p->topics[i]);
    free(p->topics);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- admin ---- */

int16_t kp_rpool_create_topic(kp_rpool_t *p, const kp_topic_spec_t *spec, int rf, int validate_only,
                              char *msg, size_t msglen)
{
    int16_t rc = kp_topics_create(p->b->topics, spec, 1, msg, msglen);
    if (rc) return rc;
    kp_member_view_t *v = kp_member_view(p->b->member);
    kp_place_broker_t *pb = kp_xcalloc((size_t)v->nbrokers + 1, sizeof(*pb));
    int nb = placeable(v, pb);
    if (rf < 1 || rf > nb) {
        kp_member_view_put(v);
        free(pb);
        snprintf(msg, msglen, "Replication factor: %d larger than available brokers: %d.", rf, nb);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    kp_meta_topic_t t = {0};
    char name[KP_TOPIC_NAME_LEN_MAX + 1];
    snprintf(name, sizeof(name), "%.*s", spec->name.len, spec->name.ptr);
    t.name = name;
    t.partitions = spec->partitions;
    t.replication_factor = rf;
    t.replicas = kp_xcalloc((size_t)spec->partitions * (size_t)rf, sizeof(int32_t));
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint32_t)kp_wall_ms();
    int start = (int)(rnd % (uint32_t)nb);
    int prc = kp_placement_assign(pb, nb, spec->partitions, rf, 0, start, start, 0, t.replicas, msg,
                                  msglen);
    free(pb);
    kp_member_view_put(v);
    if (prc < 0) {
        free(t.replicas);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (validate_only) {
        free(t.replicas);
        return 0;
    }
    if (getrandom(t.id, sizeof(t.id), 0) != sizeof(t.id)) memset(t.id, 0x5a, sizeof(t.id));
    t.config_keys = (char **)spec->config_keys;
    t.config_values = (char **)spec->config_values;
    t.nconfigs = spec->nconfigs;
    t.internal = spec->internal;
    int64_t version;
    char err[512];
    int mrc = kp_meta_topic_create(p->store, &t, &version, err, sizeof(err));
    free(t.replicas);
    if (mrc == KP_META_EEXISTS) {
        snprintf(msg, msglen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (mrc) {
        snprintf(msg, msglen, "the pool's metadata store: %s", err);
        return KERR_REQUEST_TIMED_OUT;
    }
    /* answered once this broker serves it, so a client's next request finds it */
    for (int64_t until = kp_mono_ms() + 5000; kp_mono_ms() < until;) {
        kp_topic_t *lt = kp_topics_get(p->b->topics, spec->name);
        int ready = 0;
        if (lt) {
            ready = 1;
            for (int32_t i = 0; i < lt->npartitions && ready; i++) {
                kp_repl_view_t rv;
                kp_partition_view(lt->partitions[i], &rv);
                ready = rv.leader >= 0;
            }
            kp_topic_put(lt);
        }
        if (ready) break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int16_t kp_rpool_delete_topic(kp_rpool_t *p, kp_str_t name, char *msg, size_t msglen)
{
    char n[KP_TOPIC_NAME_LEN_MAX + 1];
    snprintf(n, sizeof(n), "%.*s", name.len > 0 ? name.len : 0, name.ptr);
    char err[512];
    int rc = kp_meta_topic_delete(p->store, n, 0, err, sizeof(err));
    if (rc == KP_META_ENOTFOUND) {
        snprintf(msg, msglen, "This server does not host this topic-partition.");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (rc) {
        snprintf(msg, msglen, "the pool's metadata store: %s", err);
        return KERR_REQUEST_TIMED_OUT;
    }
    for (int64_t until = kp_mono_ms() + 5000; kp_mono_ms() < until;) {
        kp_topic_t *lt = kp_topics_get(p->b->topics, name);
        if (!lt) break;
        kp_topic_put(lt);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int16_t kp_rpool_publish_configs(kp_rpool_t *p, kp_str_t name, char *msg, size_t msglen)
{
    char n[KP_TOPIC_NAME_LEN_MAX + 1], err[512];
    snprintf(n, sizeof(n), "%.*s", name.len > 0 ? name.len : 0, name.ptr);
    kp_topic_t *lt = kp_topics_get(p->b->topics, name);
    if (!lt) {
        snprintf(msg, msglen, "Topic %s does not exist", n);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    kp_props_t *now = kp_props_new();
    kp_topic_overrides_copy(lt, now);
    kp_topic_put(lt);
    size_t nc = kp_props_count(now);
    const char **keys = kp_xcalloc(nc + 1, sizeof(*keys)),
               **vals = kp_xcalloc(nc + 1, sizeof(*vals));
    for (size_t i = 0; i < nc; i++) kp_props_at(now, i, &keys[i], &vals[i]);
    int rc = KP_META_ECONFLICT;
    for (int attempt = 0; attempt < 5 && rc == KP_META_ECONFLICT; attempt++) {
        kp_meta_topic_t t;
        rc = kp_meta_topic_get(p->store, n, &t, err, sizeof(err));
        if (rc) break;
        char **ok = t.config_keys, **ov = t.config_values;
        int on = t.nconfigs;
        t.config_keys = (char **)keys;
        t.config_values = (char **)vals;
        t.nconfigs = (int)nc;
        int64_t version;
        rc = kp_meta_topic_update(p->store, &t, &version, err, sizeof(err));
        t.config_keys = ok;
        t.config_values = ov;
        t.nconfigs = on;
        kp_meta_topic_free(&t);
    }
    free(keys);
    free(vals);
    kp_props_free(now);
    if (rc == 0) return 0;
    snprintf(msg, msglen, "the pool's metadata store: %s", err);
    return rc == KP_META_ENOTFOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_REQUEST_TIMED_OUT;
}

int16_t kp_rpool_add_partitions(kp_rpool_t *p, kp_str_t name, int32_t count, int validate_only,
                                char *msg, size_t msglen)
{
    int16_t krc = kp_topics_add_partitions(p->b->topics, name, count, 1, msg, msglen);
    if (krc || validate_only) return krc;
    char n[KP_TOPIC_NAME_LEN_MAX + 1], err[512];
    snprintf(n, sizeof(n), "%.*s", name.len > 0 ? name.len : 0, name.ptr);
    kp_meta_topic_t t;
    int rc = kp_meta_topic_get(p->store, n, &t, err, sizeof(err));
    if (rc == 0 && count > t.partitions) {
        kp_member_view_t *v = kp_member_view(p->b->member);
        kp_place_broker_t *pb = kp_xcalloc((size_t)v->nbrokers + 1, sizeof(*pb));
        int nb = placeable(v, pb);
        int32_t *rows = kp_xcalloc((size_t)count * (size_t)t.replication_factor, sizeof(int32_t));
        memcpy(rows, t.replicas,
               (size_t)t.partitions * (size_t)t.replication_factor * sizeof(int32_t));
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint32_t)kp_wall_ms();
        int start = nb > 0 ? (int)(rnd % (uint32_t)nb) : 0;
        int prc = kp_placement_assign(
            pb, nb, count - t.partitions, t.replication_factor, t.partitions, start, start, 0,
            rows + (size_t)t.partitions * (size_t)t.replication_factor, msg, msglen);
        free(pb);
        kp_member_view_put(v);
        if (prc < 0) {
            free(rows);
            kp_meta_topic_free(&t);
            return KERR_INVALID_REPLICATION_FACTOR;
        }
        free(t.replicas);
        t.replicas = rows;
        t.partitions = count;
        int64_t version;
        rc = kp_meta_topic_update(p->store, &t, &version, err, sizeof(err));
    }
    kp_meta_topic_free(&t);
    if (rc) {
        snprintf(msg, msglen, "the pool's metadata store: %s", err);
        return rc == KP_META_ECONFLICT ? KERR_REASSIGNMENT_IN_PROGRESS : KERR_REQUEST_TIMED_OUT;
    }
    for (int64_t until = kp_mono_ms() + 5000; kp_mono_ms() < until;) {
        kp_topic_t *lt = kp_topics_get(p->b->topics, name);
        int ready = lt && lt->npartitions >= count;
        for (int32_t i = 0; ready && i < count; i++) {
            kp_repl_view_t rv;
            kp_partition_view(lt->partitions[i], &rv);
            ready = rv.leader >= 0;
        }
        kp_topic_put(lt);
        if (ready) break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
