/*
 * group_store.c — the group metadata record (group_record.h) as Kafka's GroupMetadataManager
 * keeps it: written to the group's __consumer_offsets partition when a generation completes
 * (with every member and its assignment), when a static member takes a new member id without
 * a rebalance, and when the group becomes Empty; replayed on start so a restarted broker
 * knows each group's members, generation, protocol, leader and assignments.
 *
 * Durability: a generation turns Stable, and its SyncGroups are answered, only after its
 * record is durable (the same flush path as offset commits); so is a static member's
 * JoinGroup. A client therefore never holds a member id or generation that a crash could
 * take back. The Empty record is written without waiting: losing it only brings back the
 * previous members, whose sessions then expire.
 *
 * Restore: a group with members comes back Stable and every member's session starts when the
 * broker starts (now + its session timeout): a member that keeps heartbeating continues with
 * its generation and member id, one that is gone expires and triggers a rebalance. Members
 * are restored with the chosen protocol only (the record holds nothing else), as in Kafka.
 *
 * @locality: coordinator thread (replay: the starting thread, before the coordinator runs).
 */
#include "group/group_int.h"
#include "group/group_record.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

typedef enum { STORE_ASSIGNMENT, STORE_STATIC_JOIN } store_kind_t;

typedef struct store_op {
    kp_flush_waiter_t w; /* first: the flusher hands this pointer back */
    kp_coordinator_t *c;
    store_kind_t kind;
    char *group_id;
    char *member_id;       /* STORE_STATIC_JOIN: the member whose JoinGroup waits */
    char *reported_leader; /* STORE_STATIC_JOIN: leader id for its response, or NULL */
    int32_t generation;
    uint64_t seq;
    int err;
} store_op_t;

static kp_str_t str_or_empty(const char *s)
{
    return kp_str_c(s ? s : "");
}

/* Encodes g's key and value (members with their assignments unless the group is Empty). */
static void encode_group(const group_t *g, kp_buf_t *key, kp_buf_t *value)
{
    kp_group_record_t rec = {0};
    rec.protocol_type = str_or_empty(g->protocol_type);
    rec.generation = g->generation;
    int empty = g->state == GS_EMPTY || !g->members;
    rec.protocol = empty ? KP_STR_NULL : kp_str_c(g->protocol);
    rec.leader = empty ? KP_STR_NULL : kp_str_c(g->leader);
    rec.current_state_timestamp_ms = kp_wall_ms();
    rec.members = kp_xcalloc((size_t)g->nmembers + 1, sizeof(*rec.members));
    int32_t n = 0;
    for (const member_t *m = empty ? NULL : g->members; m && n < g->nmembers; m = m->next) {
        kp_group_record_member_t *rm = &rec.members[n++];
        const protocol_t *p = member_protocol(m, g->protocol);
        rm->member_id = kp_str_c(m->id);
        rm->group_instance_id = kp_str_c(m->instance_id); /* NULL → null */
        rm->client_id = str_or_empty(m->client_id);
        rm->client_host = str_or_empty(m->client_host);
        rm->rebalance_timeout_ms = m->rebalance_timeout_ms;
        rm->session_timeout_ms = m->session_timeout_ms;
        rm->subscription =
            p ? (kp_str_t){(const char *)p->metadata, p->metadata_len} : (kp_str_t){"", 0};
        rm->assignment = m->assignment ? (kp_str_t){(const char *)m->assignment, m->assignment_len}
                                       : (kp_str_t){"", 0};
    }
    rec.nmembers = n;
    kp_group_record_key_encode(key, g->id);
    kp_group_record_encode(value, &rec);
    free(rec.members);
}

/* Appends g's record; w (may be NULL) fires once it is durable. 0 or -1 (nothing written). */
static int store(kp_coordinator_t *c, group_t *g, kp_flush_waiter_t *w)
{
    kp_buf_t key, value;
    kp_buf_init(&key);
    kp_buf_init(&value);
    encode_group(g, &key, &value);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, kp_wall_ms());
    kp_batch_builder_add(&bb, key.data, (int32_t)key.len, value.data, (int32_t)value.len,
                         bb.base_timestamp);
    int rc = offsets_append(c, g, &bb, w);
    if (rc < 0) kp_warn("group", "group %s: could not write its group metadata record", g->id);
    kp_batch_builder_free(&bb);
    kp_buf_free(&key);
    kp_buf_free(&value);
    return rc;
}

void group_store_write(kp_coordinator_t *c, group_t *g)
{
    store(c, g, NULL);
}

static void op_free(store_op_t *op)
{
    free(op->group_id);
    free(op->member_id);
    free(op->reported_leader);
    free(op);
}

/* On the coordinator loop: the record is durable (err 0) or failed. */
static void store_done(kp_loop_t *loop, void *arg)
{
    store_op_t *op = arg;
    kp_coordinator_t *c = op->c;
    c->pending_writes--;
    group_t *g = coord_group_get(c, kp_str_c(op->group_id), 0);
    if (g && op->kind == STORE_ASSIGNMENT)
        membership_assignment_stored(c, g, op->generation, op->seq, op->err);
    else if (g)
        membership_static_join_stored(c, g, op->member_id, op->seq, op->reported_leader, op->err);
    op_free(op);
}

/* Any thread (the flusher, or the caller when nothing needs flushing). */
static void store_flushed(kp_flush_waiter_t *w, int err)
{
    store_op_t *op = (store_op_t *)w;
    op->err = err;
    kp_loop_post(op->c->loop, store_done, op);
}

static void store_waiting(kp_coordinator_t *c, group_t *g, store_op_t *op)
{
    op->c = c;
    op->group_id = kp_xstrdup(g->id);
    op->generation = g->generation;
    op->w.done = store_flushed;
    c->pending_writes++;
    if (store(c, g, &op->w) < 0) {
        op->err = 1;
        store_done(c->loop, op);
    }
}

void group_store_assignment(kp_coordinator_t *c, group_t *g)
{
    store_op_t *op = kp_xcalloc(1, sizeof(*op));
    op->kind = STORE_ASSIGNMENT;
    op->seq = ++c->next_store_seq;
    g->sync_store_seq = op->seq;
    store_waiting(c, g, op);
}

void group_store_static_join(kp_coordinator_t *c, group_t *g, member_t *m, char *reported_leader)
{
    store_op_t *op = kp_xcalloc(1, sizeof(*op));
    op->kind = STORE_STATIC_JOIN;
    op->seq = ++c->next_store_seq;
    op->member_id = kp_xstrdup(m->id);
    op->reported_leader = reported_leader;
    m->join_store_seq = op->seq;
    store_waiting(c, g, op);
}

/* ---- replay ---- */

static char *dup_str(kp_str_t s)
{
    return s.len < 0 ? NULL : kp_xstrndup(s.ptr ? s.ptr : "", (size_t)s.len);
}

static void drop_members(group_t *g)
{
    member_t *m = g->members;
    while (m) {
        member_t *next = m->next;
        member_free(m);
        m = next;
    }
    g->members = NULL;
    g->nmembers = 0;
}

static member_t *restore_member(const kp_group_record_member_t *rm, const char *protocol)
{
    member_t *m = kp_xcalloc(1, sizeof(*m));
    m->id = dup_str(rm->member_id);
    m->instance_id = dup_str(rm->group_instance_id);
    m->client_id = dup_str(rm->client_id);
    m->client_host = dup_str(rm->client_host);
    m->session_timeout_ms = rm->session_timeout_ms;
    m->rebalance_timeout_ms =
        rm->rebalance_timeout_ms > 0 ? rm->rebalance_timeout_ms : rm->session_timeout_ms;
    m->nprotocols = 1;
    m->protocols = kp_xcalloc(2, sizeof(protocol_t));
    m->protocols[0].name = kp_xstrdup(protocol);
    int32_t len = rm->subscription.len > 0 ? rm->subscription.len : 0;
    m->protocols[0].metadata = kp_xmalloc((size_t)len + 1);
    if (len) memcpy(m->protocols[0].metadata, rm->subscription.ptr, (size_t)len);
    m->protocols[0].metadata_len = len;
    len = rm->assignment.len > 0 ? rm->assignment.len : 0;
    m->assignment = kp_xmalloc((size_t)len + 1);
    if (len) memcpy(m->assignment, rm->assignment.ptr, (size_t)len);
    m->assignment_len = len;
    return m;
}

/* Why a record's members cannot be restored (the group is then restored Empty), or NULL. */
static const char *members_unusable(const kp_coordinator_t *c, const kp_group_record_t *rec)
{
    if (rec->nmembers > c->cfg.max_group_size)
        return "more members than group.max.size; they rejoin";
    if (rec->protocol.len <= 0 || rec->leader.len <= 0) return "members without protocol or leader";
    int leader_found = 0;
    for (int32_t i = 0; i < rec->nmembers; i++) {
        if (rec->members[i].member_id.len <= 0) return "a member without member id";
        leader_found |= kp_str_eq(rec->members[i].member_id, rec->leader);
    }
    return leader_found ? NULL : "the leader is not a member";
}

static void apply_record(kp_coordinator_t *c, group_t *g, const kp_group_record_t *rec)
{
    drop_members(g);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    g->protocol_type = rec->protocol_type.len > 0 ? dup_str(rec->protocol_type) : NULL;
    g->protocol = g->leader = NULL;
    g->generation = rec->generation;
    g->has_metadata = 1;
    g->state = GS_EMPTY;
    g->state_since_ms = coord_now_ms(c);
    if (rec->nmembers == 0) return;
    const char *why = members_unusable(c, rec);
    if (why) {
        kp_warn("group", "group %s: not restoring %d members (%s)", g->id, rec->nmembers, why);
        return;
    }
    g->protocol = dup_str(rec->protocol);
    g->leader = dup_str(rec->leader);
    member_t **tail = &g->members;
    for (int32_t i = 0; i < rec->nmembers; i++) {
        *tail = restore_member(&rec->members[i], g->protocol);
        tail = &(*tail)->next;
        g->nmembers++;
    }
    g->state = GS_STABLE;
}

void group_store_replay(kp_coordinator_t *c, kp_str_t group_id, const uint8_t *value,
                        int32_t valuelen, int64_t offset)
{
    group_t *g = coord_group_get(c, group_id, value != NULL);
    if (!value) { /* tombstone: the group was deleted */
        if (g) coord_group_remove(c, g);
        return;
    }
    if (!g) return;
    kp_group_record_t rec;
    kp_group_record_status_t st = kp_group_record_decode(value, (size_t)valuelen, &rec);
    if (st != KP_GROUP_RECORD_OK) {
        kp_warn("group",
                "group %s: skipping the group metadata record at offset %lld of "
                "__consumer_offsets-%d (%s)",
                g->id, (long long)offset, g->offsets_partition,
                st == KP_GROUP_RECORD_UNKNOWN_VERSION ? "unknown value version" : "truncated");
        return;
    }
    apply_record(c, g, &rec);
    kp_group_record_free(&rec);
}

size_t group_store_restart_sessions(kp_coordinator_t *c, int32_t partition)
{
    size_t n = 0, it = 0;
    void *v;
    while (kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        if (partition >= 0 && g->offsets_partition != partition) continue;
        for (member_t *m = g->members; m; m = m->next, n++) member_touch(c, g, m);
    }
    return n;
}
