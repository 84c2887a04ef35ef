/*
 * coordinator.c — the coordinator's thread, request dispatch, periodic tick and group map.
 * Membership logic lives in membership.c, committed offsets in offsets.c, the group metadata
 * record (what a restarted broker knows of each group) in group_store.c.
 */
#include "group/group_int.h"

#include "auth/principal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "replication/partition.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OFFSETS_TOPIC "__consumer_offsets"

int kp_coord_config_load(kp_coord_config_t *cfg, const kp_props_t *p, char *err, size_t errlen)
{
    int64_t v;
    if (kp_props_get_i64(p, "offsets.topic.num.partitions", 50, 1, 1000, &v, err, errlen) < 0)
        return -1;
    cfg->offsets_partitions = (int32_t)v;
    /* a replicated pool's __consumer_offsets (FindCoordinator creates it; unset: min(3, live
     * brokers)); checked here so a bad value is a start-up error */
    if (kp_props_get_i64(p, "offsets.topic.replication.factor", 0, 1, 32767, &v, err, errlen) < 0)
        return -1;
    if (kp_props_get_i64(p, "offsets.retention.minutes", 10080, 1, INT32_MAX, &v, err, errlen) < 0)
        return -1;
    cfg->offsets_retention_ms = v * 60000;
    if (kp_props_get_i64(p, "offsets.retention.check.interval.ms", 600000, 1, INT32_MAX, &v, err,
                         errlen) < 0)
        return -1;
    cfg->retention_check_ms = v;
    if (kp_props_get_i64(p, "group.min.session.timeout.ms", 6000, 1, INT32_MAX, &v, err, errlen) <
        0)
        return -1;
    cfg->min_session_timeout_ms = (int32_t)v;
    if (kp_props_get_i64(p, "group.max.session.timeout.ms", 1800000, 1, INT32_MAX, &v, err,
                         errlen) < 0)
        return -1;
    cfg->max_session_timeout_ms = (int32_t)v;
    if (kp_props_get_i64(p, "group.initial.rebalance.delay.ms", 3000, 0, INT32_MAX, &v, err,
                         errlen) < 0)
        return -1;
    cfg->initial_rebalance_delay_ms = (int32_t)v;
    if (kp_props_get_i64(p, "group.max.size", INT32_MAX, 1, INT32_MAX, &v, err, errlen) < 0)
        return -1;
    cfg->max_group_size = (int32_t)v;
    if (kp_props_get_i64(p, "offset.metadata.max.bytes", 4096, 0, INT32_MAX, &v, err, errlen) < 0)
        return -1;
    cfg->metadata_max_bytes = (int32_t)v;
    const char *own = kp_props_get_str(p, "group.ownership", "team");
    if (strcmp(own, "team") != 0 && strcmp(own, "shared") != 0) {
        snprintf(err, errlen, "group.ownership must be team or shared, not '%s'", own);
        return -1;
    }
    cfg->ownership_shared = !strcmp(own, "shared");
    const char *rules = kp_props_get_str(p, "group.ownership.team.rules", KP_TEAM_RULES_DEFAULT);
    if (strlen(rules) >= sizeof(cfg->team_rules)) {
        snprintf(err, errlen, "group.ownership.team.rules is longer than %zu bytes",
                 sizeof(cfg->team_rules) - 1);
        return -1;
    }
    snprintf(cfg->team_rules, sizeof(cfg->team_rules), "%s", rules);
    char perr[512];
    struct kp_principal_rules *r = kp_principal_rules_parse(rules, perr, sizeof(perr));
    if (!r) { /* the parser names ssl.principal.mapping.rules: name the setting at fault */
        const char *m = perr, *own_key = "ssl.principal.mapping.rules: ";
        if (!strncmp(m, own_key, strlen(own_key))) m += strlen(own_key);
        snprintf(err, errlen, "group.ownership.team.rules: %s", m);
        return -1;
    }
    kp_principal_rules_free(r);
    if (cfg->min_session_timeout_ms > cfg->max_session_timeout_ms) {
        snprintf(err, errlen, "group.min.session.timeout.ms exceeds group.max.session.timeout.ms");
        return -1;
    }
    return 0;
}

const char *group_state_name(group_state_t s)
{
    switch (s) {
    case GS_EMPTY:
        return "Empty";
    case GS_PREPARING_REBALANCE:
        return "PreparingRebalance";
    case GS_COMPLETING_REBALANCE:
        return "CompletingRebalance";
    case GS_STABLE:
        return "Stable";
    case GS_DEAD:
        return "Dead";
    }
    return "Unknown";
}

int64_t coord_now_ms(kp_coordinator_t *c)
{
    return kp_mono_ms();
}

char *coord_strdup(kp_str_t s)
{
    return s.len < 0 ? NULL : kp_xstrndup(s.ptr ? s.ptr : "", (size_t)s.len);
}

group_t *coord_group_get(kp_coordinator_t *c, kp_str_t id, int create)
{
    if (id.len < 0) return NULL;
    group_t *g = kp_hmap_get(&c->groups, id.ptr, (size_t)id.len);
    if (g || !create) return g;
    g = kp_xcalloc(1, sizeof(*g));
    g->id = coord_strdup(id);
    g->state = GS_EMPTY;
    g->state_since_ms = coord_now_ms(c);
    kp_hmap_init(&g->pending);
    kp_hmap_init(&g->offsets);
    g->offsets_partition = offsets_partition_for(c, g->id, (size_t)id.len);
    kp_hmap_put(&c->groups, id.ptr, (size_t)id.len, g);
    return g;
}

static void group_free(group_t *g)
{
    member_t *m = g->members;
    while (m) {
        member_t *next = m->next;
        member_free(m);
        m = next;
    }
    offsets_clear(g);
    kp_hmap_free(&g->offsets);
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&g->pending, &it, NULL, NULL, &v)) free(v);
    kp_hmap_free(&g->pending);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

void coord_group_remove(kp_coordinator_t *c, group_t *g)
{
    kp_hmap_del(&c->groups, g->id, strlen(g->id));
    group_free(g);
}

void coord_done(kp_group_call_t *call, kp_group_result_t result)
{
    call->done(call, result);
}

kp_partition_t *coord_offsets_partition(const kp_coordinator_t *c, int32_t p)
{
    return c->offsets_topic ? c->dir.partition(c->offsets_topic, p) : NULL;
}

/* ---- the typed entry points: each runs its op on the coordinator's thread ---- */

typedef struct op {
    kp_coordinator_t *c;
    kp_group_call_t *call;
    void *msg;
} op_t;

static void run_op(kp_loop_t *loop, void *arg)
{
    op_t *op = arg;
    kp_coordinator_t *c = op->c;
    kp_group_call_t *call = op->call;
    switch (call->op) {
    case KP_GROUP_OP_JOIN:
        membership_join(c, call, op->msg);
        break;
    case KP_GROUP_OP_SYNC:
        membership_sync(c, call, op->msg);
        break;
    case KP_GROUP_OP_HEARTBEAT:
        membership_heartbeat(c, call, op->msg);
        break;
    case KP_GROUP_OP_LEAVE:
        membership_leave(c, call, op->msg);
        break;
    case KP_GROUP_OP_LIST:
        membership_list(c, call, op->msg);
        break;
    case KP_GROUP_OP_DESCRIBE:
        membership_describe(c, call, op->msg);
        break;
    case KP_GROUP_OP_COMMIT:
        offsets_commit(c, call, op->msg);
        break;
    case KP_GROUP_OP_FETCH:
        offsets_fetch(c, call, op->msg);
        break;
    case KP_GROUP_OP_DELETE:
        offsets_delete_groups(c, call, op->msg);
        break;
    case KP_GROUP_OP_OFFSET_DELETE:
        offsets_delete(c, call, op->msg);
        break;
    case KP_GROUP_OP_TXN_COMMIT:
        txn_offsets_commit(c, call, op->msg);
        break;
    }
}

static void submit(kp_coordinator_t *c, kp_group_call_t *call, kp_group_op_t kind, void *msg)
{
    call->op = kind;
    op_t *op = kp_arena_alloc(call->arena, sizeof(*op));
    if (!op) {
        /* the arena is bounded; decode already succeeded, so this cannot happen within
         * KP_REQUEST_ARENA_BYTES_MAX; stay safe anyway: no answer */
        coord_done(call, (kp_group_result_t){.op = kind});
        return;
    }
    op->c = c;
    op->call = call;
    op->msg = msg;
    kp_loop_post(c->loop, run_op, op);
}

void kp_group_join(kp_coordinator_t *c, kp_group_call_t *call, JoinGroupRequest *in)
{
    submit(c, call, KP_GROUP_OP_JOIN, in);
}

void kp_group_sync(kp_coordinator_t *c, kp_group_call_t *call, SyncGroupRequest *in)
{
    submit(c, call, KP_GROUP_OP_SYNC, in);
}

void kp_group_heartbeat(kp_coordinator_t *c, kp_group_call_t *call, HeartbeatRequest *in)
{
    submit(c, call, KP_GROUP_OP_HEARTBEAT, in);
}

void kp_group_leave(kp_coordinator_t *c, kp_group_call_t *call, LeaveGroupRequest *in)
{
    submit(c, call, KP_GROUP_OP_LEAVE, in);
}

void kp_group_list(kp_coordinator_t *c, kp_group_call_t *call, ListGroupsRequest *in)
{
    submit(c, call, KP_GROUP_OP_LIST, in);
}

void kp_group_describe(kp_coordinator_t *c, kp_group_call_t *call, DescribeGroupsRequest *in)
{
    submit(c, call, KP_GROUP_OP_DESCRIBE, in);
}

void kp_group_delete(kp_coordinator_t *c, kp_group_call_t *call, DeleteGroupsRequest *in)
{
    submit(c, call, KP_GROUP_OP_DELETE, in);
}

void kp_group_offset_commit(kp_coordinator_t *c, kp_group_call_t *call, OffsetCommitRequest *in)
{
    submit(c, call, KP_GROUP_OP_COMMIT, in);
}

void kp_group_offset_fetch(kp_coordinator_t *c, kp_group_call_t *call, OffsetFetchRequest *in)
{
    submit(c, call, KP_GROUP_OP_FETCH, in);
}

void kp_group_offset_delete(kp_coordinator_t *c, kp_group_call_t *call, OffsetDeleteRequest *in)
{
    submit(c, call, KP_GROUP_OP_OFFSET_DELETE, in);
}

void kp_group_txn_offset_commit(kp_coordinator_t *c, kp_group_call_t *call,
                                TxnOffsetCommitRequest *in)
{
    submit(c, call, KP_GROUP_OP_TXN_COMMIT, in);
}

/* ---- a pool: following the leadership of __consumer_offsets partitions ---- */

int coord_serves(const kp_coordinator_t *c, int32_t partition)
{
    if (!c->pool) return 1;
    return c->led_epoch && partition >= 0 && partition < c->cfg.offsets_partitions &&
           c->led_epoch[partition] >= 0;
}

/* This broker no longer leads partition p: its groups are another coordinator's now. Waiting
 * JoinGroup / SyncGroup requests are answered NOT_COORDINATOR (the client finds the new one);
 * writes still in flight complete against groups that are gone and change nothing. */
static void partition_unload(kp_coordinator_t *c, int32_t p)
{
    size_t n = kp_hmap_count(&c->groups), k = 0, it = 0;
    group_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v))
        if (((group_t *)v)->offsets_partition == p) list[k++] = v;
    for (size_t i = 0; i < k; i++) {
        membership_abort(c, list[i], KERR_NOT_COORDINATOR);
        coord_group_remove(c, list[i]);
    }
    free(list);
    c->led_epoch[p] = -1;
    kp_info("group", "__consumer_offsets-%d: no longer its leader: %zu groups unloaded", p, k);
}

/* This broker leads partition p under epoch: its groups and offsets are read from its log
 * (which holds every acknowledged commit: the leader came from the ISR). */
static void partition_load(kp_coordinator_t *c, int32_t p, int32_t epoch)
{
    int64_t t0 = kp_mono_ms();
    if (offsets_load_partition(c, p) < 0) {
        kp_error("group", "cannot read __consumer_offsets-%d: its groups are not served", p);
        c->led_epoch[p] = epoch; /* drop what was read, then try again at the next tick */
        partition_unload(c, p);
        return;
    }
    c->led_epoch[p] = epoch;
    size_t members = group_store_restart_sessions(c, p), ngroups = 0, it = 0;
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v))
        ngroups += ((group_t *)v)->offsets_partition == p;
    kp_info("group",
            "__consumer_offsets-%d: leader (epoch %d): %zu groups (%zu members) loaded in "
            "%lld ms",
            p, epoch, ngroups, members, (long long)(kp_mono_ms() - t0));
}

/* Each tick: loads the partitions this broker started leading, unloads those it stopped
 * leading (or leads under a new epoch: another leader may have written in between). */
static void follow_leadership(kp_coordinator_t *c)
{
    if (!c->offsets_topic) {
        struct kp_topic *t = c->dir.get(c->dir.arg, KP_STR_LIT(OFFSETS_TOPIC));
        int32_t n = t ? c->dir.npartitions(t) : 0;
        kp_repl_view_t v = {0};
        if (n > 0) kp_partition_view(c->dir.partition(t, 0), &v);
        if (!t || v.nreplicas == 0) { /* not (yet) the pool's topic */
            c->dir.put(t);
            return;
        }
        c->offsets_topic = t;
        c->cfg.offsets_partitions = n;
        c->led_epoch = kp_xmalloc((size_t)n * sizeof(*c->led_epoch));
        for (int32_t p = 0; p < n; p++) c->led_epoch[p] = -1;
    }
    for (int32_t p = 0; p < c->cfg.offsets_partitions; p++) {
        kp_partition_t *part = coord_offsets_partition(c, p);
        kp_repl_view_t v;
        if (!part) continue;
        kp_partition_view(part, &v);
        int32_t want = v.role == KP_ROLE_LEADER ? v.leader_epoch : -1;
        if (c->led_epoch[p] == want) continue;
        if (c->led_epoch[p] >= 0) partition_unload(c, p);
        if (want >= 0) partition_load(c, p, want);
    }
}

/* ---- tick ---- */

static void tick(kp_loop_t *loop, void *arg)
{
    kp_coordinator_t *c = arg;
    int64_t now = coord_now_ms(c);
    if (c->pool) follow_leadership(c);
    /* membership_tick may remove groups: collect first */
    size_t n = kp_hmap_count(&c->groups), k = 0, it = 0;
    group_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) list[k++] = v;
    for (size_t i = 0; i < k; i++) membership_tick(c, list[i], now);
    free(list);
    if (now >= c->next_retention_check_ms) {
        offsets_expire(c, kp_wall_ms());
        c->next_retention_check_ms = now + c->cfg.retention_check_ms;
    }
    c->tick = kp_loop_timer(loop, KP_COORD_TICK_MS, tick, c);
}

static void *coord_main(void *arg)
{
    kp_coordinator_t *c = arg;
    c->tick = kp_loop_timer(c->loop, KP_COORD_TICK_MS, tick, c);
    kp_loop_run(c->loop);
    return NULL;
}

/* ---- lifecycle ---- */

static int ensure_offsets_topic(kp_coordinator_t *c, char *err, size_t errlen)
{
    kp_str_t name = KP_STR_LIT(OFFSETS_TOPIC);
    c->offsets_topic = c->dir.get(c->dir.arg, name);
    if (!c->offsets_topic) {
        const char *keys[] = {"cleanup.policy", "segment.bytes"};
        const char *vals[] = {"compact", "104857600"};
        char msg[256];
        if (c->dir.create_internal(c->dir.arg, name, c->cfg.offsets_partitions, keys, vals, 2, msg,
                                   sizeof(msg)) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", OFFSETS_TOPIC, msg);
            return -1;
        }
        c->offsets_topic = c->dir.get(c->dir.arg, name);
    }
    if (!c->offsets_topic) {
        snprintf(err, errlen, "%s vanished", OFFSETS_TOPIC);
        return -1;
    }
    int32_t n = c->dir.npartitions(c->offsets_topic);
    if (n != c->cfg.offsets_partitions) {
        /* like Kafka: the partition count is fixed once the topic exists */
        c->cfg.offsets_partitions = n;
    }
    return 0;
}

kp_coordinator_t *kp_coordinator_start(const kp_partition_dir_t *dir, const char *log_dir, int pool,
                                       const kp_coord_config_t *cfg, char *err, size_t errlen)
{
    kp_coordinator_t *c = kp_xcalloc(1, sizeof(*c));
    c->dir = *dir;
    c->cfg = *cfg;
    kp_hmap_init(&c->groups);
    kp_hmap_init(&c->txn_pending);
    c->loop = kp_loop_new(-1);
    c->next_retention_check_ms = coord_now_ms(c) + cfg->retention_check_ms;
    int64_t t0 = kp_mono_ms();
    char meta[PATH_MAX];
    snprintf(meta, sizeof(meta), "%s/meta", log_dir);
    /* a replicated pool: __consumer_offsets is the pool's (created through the metadata store
     * by the first FindCoordinator), and each partition is loaded when this broker becomes its
     * leader (follow_leadership) */
    c->pool = pool;
    if (group_owners_open(c, meta, err, errlen) < 0 ||
        (!c->pool &&
         (ensure_offsets_topic(c, err, errlen) < 0 || offsets_load(c, err, errlen) < 0))) {
        kp_coordinator_stop(c);
        return NULL;
    }
    /* restored members' sessions start now: those that do not heartbeat expire as usual */
    size_t nmembers = group_store_restart_sessions(c, -1);
    kp_info("group",
            "loaded %zu groups (%zu members) and their committed offsets in %lld ms; "
            "group.ownership=%s (%zu groups owned)",
            kp_hmap_count(&c->groups), nmembers, (long long)(kp_mono_ms() - t0),
            c->cfg.ownership_shared ? "shared" : "team", kp_hmap_count(&c->owners));
    if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
        snprintf(err, errlen, "cannot start the group coordinator thread");
        kp_coordinator_stop(c);
        return NULL;
    }
    c->running = 1;
    return c;
}

static void shutdown_task(kp_loop_t *loop, void *arg)
{
    kp_coordinator_t *c = arg;
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v))
        membership_abort(c, v, KERR_COORDINATOR_NOT_AVAILABLE);
    if (c->tick) kp_loop_timer_cancel(loop, c->tick);
    c->tick = NULL;
    kp_loop_stop(loop);
}

void kp_coordinator_stop(kp_coordinator_t *c)
{
    if (!c) return;
    if (c->running) {
        kp_loop_post(c->loop, shutdown_task, c);
        pthread_join(c->thread, NULL);
        c->running = 0;
    }
    /* commits whose flush completes during shutdown post here: run them now (the flusher is
     * still running, so each one completes) */
    kp_loop_drain(c->loop);
    for (int i = 0; c->pending_writes > 0 && i < 10000; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        kp_loop_drain(c->loop);
    }
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        membership_abort(c, v, KERR_COORDINATOR_NOT_AVAILABLE);
        group_free(v);
    }
    kp_hmap_free(&c->groups);
    group_owners_close(c);
    txn_offsets_free(c);
    if (c->offsets_topic) c->dir.put(c->offsets_topic);
    free(c->led_epoch);
    kp_loop_free(c->loop);
    free(c);
}
