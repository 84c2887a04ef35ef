/*
 * membership.c — the classic group membership protocol (JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, ListGroups, DescribeGroups) and the group state machine:
 *
 *   Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
 *     ▲                    ▲   │                                      │ leader's SyncGroup,
 *     │                    │   │                                      │ record durable
 *     └── last member ─────┴───┴──── member joins/leaves/expires ◀── Stable
 *
 * Every completed generation and every Empty group is written as a group metadata record
 * (group_store.c); a restarted broker restores the groups Stable with their members.
 *
 * As Kafka: v4+ joins without a member id get MEMBER_ID_REQUIRED and a fresh id; the first
 * rebalance of an empty group waits group.initial.rebalance.delay.ms for more members; a
 * static member (group.instance.id) that rejoins a Stable group with unchanged protocols gets
 * its new member id without a rebalance, and the id it replaced is fenced
 * (FENCED_INSTANCE_ID); generations fence stale members (ILLEGAL_GENERATION).
 */
#include "group/group_int.h"

#include "auth/acl.h"

#include "core/buf.h"
#include "core/logging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* ---- members ---- */

void member_free(member_t *m)
{
    if (m->session_timer) kp_loop_timer_cancel(m->coord->loop, m->session_timer);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    for (int i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    free(m->assignment);
    free(m);
}

/* The member's session deadline passed (it may have rejoined or synced meanwhile, which
 * keeps it alive: membership_tick decides). */
static void session_expired(kp_loop_t *loop, void *arg)
{
    member_t *m = arg;
    m->session_timer = NULL; /* freed by the loop */
    membership_tick(m->coord, m->group, coord_now_ms(m->coord));
}

void member_touch(kp_coordinator_t *c, group_t *g, member_t *m)
{
    m->last_heartbeat_ms = coord_now_ms(c);
    m->coord = c;
    m->group = g;
    if (m->session_timer) kp_loop_timer_cancel(c->loop, m->session_timer);
    m->session_timer = kp_loop_timer(c->loop, m->session_timeout_ms, session_expired, m);
}

member_t *group_find_member(group_t *g, const char *id, size_t idlen)
{
    for (member_t *m = g->members; m; m = m->next)
        if (strlen(m->id) == idlen && !memcmp(m->id, id, idlen)) return m;
    return NULL;
}

static member_t *find_static(group_t *g, kp_str_t instance_id)
{
    if (instance_id.len < 0) return NULL;
    for (member_t *m = g->members; m; m = m->next)
        if (m->instance_id && kp_str_eq_c(instance_id, m->instance_id)) return m;
    return NULL;
}

static char *new_member_id(kp_str_t prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != sizeof(r)) memset(r, 0x42, sizeof(r));
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%.*s-",
                     prefix.len > 200 ? 200 : (prefix.len < 0 ? 0 : prefix.len),
                     prefix.ptr ? prefix.ptr : "");
    static const char *hex = "0123456789abcdef";
    int pos[] = {4, 6, 8, 10};
    for (int i = 0, k = 0; i < 16; i++) {
        if (k < 4 && i == pos[k]) {
            buf[n++] = '-';
            k++;
        }
        buf[n++] = hex[r[i] >> 4];
        buf[n++] = hex[r[i] & 15];
    }
    buf[n] = 0;
    return kp_xstrdup(buf);
}

static void set_protocols(member_t *m, const JoinGroupRequest *in)
{
    for (int i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->nprotocols = in->Protocols.count > 0 ? in->Protocols.count : 0;
    m->protocols = kp_xcalloc((size_t)m->nprotocols + 1, sizeof(protocol_t));
    for (int i = 0; i < m->nprotocols; i++) {
        const JoinGroupRequest_JoinGroupRequestProtocol *p = &in->Protocols.items[i];
        m->protocols[i].name = coord_strdup(p->Name);
        int32_t len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        m->protocols[i].metadata = kp_xmalloc((size_t)len + 1);
        if (len) memcpy(m->protocols[i].metadata, p->Metadata.ptr, (size_t)len);
        m->protocols[i].metadata_len = len;
    }
}

static int same_protocols(const member_t *m, const JoinGroupRequest *in)
{
    if (m->nprotocols != in->Protocols.count) return 0;
    for (int i = 0; i < m->nprotocols; i++) {
        const JoinGroupRequest_JoinGroupRequestProtocol *p = &in->Protocols.items[i];
        if (!kp_str_eq_c(p->Name, m->protocols[i].name) ||
            p->Metadata.len != m->protocols[i].metadata_len ||
            (p->Metadata.len > 0 &&
             memcmp(p->Metadata.ptr, m->protocols[i].metadata, (size_t)p->Metadata.len)))
            return 0;
    }
    return 1;
}

const protocol_t *member_protocol(const member_t *m, const char *name)
{
    for (int i = 0; i < m->nprotocols; i++)
        if (name && !strcmp(m->protocols[i].name, name)) return &m->protocols[i];
    return NULL;
}

static int member_supports(const member_t *m, kp_str_t name)
{
    for (int i = 0; i < m->nprotocols; i++)
        if (kp_str_eq_c(name, m->protocols[i].name)) return 1;
    return 0;
}

/* A joining member must share the protocol type and at least one protocol with everyone. */
static int protocols_compatible(const group_t *g, const JoinGroupRequest *in)
{
    if (in->ProtocolType.len <= 0 || in->Protocols.count <= 0) return 0;
    if (!g->members) return 1;
    if (!g->protocol_type || !kp_str_eq_c(in->ProtocolType, g->protocol_type)) return 0;
    for (int32_t i = 0; i < in->Protocols.count; i++) {
        int all = 1;
        for (member_t *m = g->members; m && all; m = m->next)
            all = member_supports(m, in->Protocols.items[i].Name);
        if (all) return 1;
    }
    return 0;
}

/* Each member votes for its most preferred protocol that every member supports. */
static const char *select_protocol(const group_t *g)
{
    const member_t *first = g->members;
    if (!first) return NULL;
    const char *best = NULL;
    int best_votes = -1;
    for (int i = 0; i < first->nprotocols; i++) {
        const char *cand = first->protocols[i].name;
        int all = 1;
        for (const member_t *m = g->members; m && all; m = m->next)
            all = member_protocol(m, cand) != NULL;
        if (!all) continue;
        int votes = 0;
        for (const member_t *m = g->members; m; m = m->next) {
            for (int k = 0; k < m->nprotocols; k++) {
                int supported = 1;
                for (const member_t *o = g->members; o && supported; o = o->next)
                    supported = member_protocol(o, m->protocols[k].name) != NULL;
                if (!supported) continue;
                if (!strcmp(m->protocols[k].name, cand)) votes++;
                break; /* only the member's first supported choice counts */
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void set_state(kp_coordinator_t *c, group_t *g, group_state_t s)
{
    if (g->state != s) {
        kp_debug("group", "group %s: %s -> %s (generation %d)", g->id, group_state_name(g->state),
                 group_state_name(s), g->generation);
        g->state = s;
        g->state_since_ms = coord_now_ms(c);
        /* the group emptied: remember it across restarts (a new generation is stored before
         * it turns Stable: membership_sync) */
        if (s == GS_EMPTY) group_store_write(c, g);
    }
}

/* ---- responses ---- */

static void join_error(kp_group_call_t *req, int16_t err, const char *member_id)
{
    JoinGroupResponse out;
    JoinGroupResponse_init(&out);
    out.ErrorCode = err;
    out.MemberId = kp_str_c(member_id ? member_id : "");
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_JOIN, .join = &out});
}

/* `leader` is the leader id to report (normally g->leader); only a member told it leads gets
 * the member list. skip_assignment (v9+, KIP-814): a static leader rejoined a Stable group and
 * must not compute a new assignment. */
static void join_respond_as(group_t *g, member_t *m, const char *leader, int skip_assignment)
{
    kp_group_call_t *req = m->join_req;
    m->join_req = NULL;
    m->join_store_seq = 0;
    JoinGroupResponse out;
    JoinGroupResponse_init(&out);
    out.GenerationId = g->generation;
    out.ProtocolType = g->protocol_type ? kp_str_c(g->protocol_type) : KP_STR_NULL;
    out.ProtocolName = kp_str_c(g->protocol ? g->protocol : "");
    out.SkipAssignment = (int8_t)(skip_assignment != 0);
    out.Leader = kp_str_c(leader ? leader : "");
    out.MemberId = kp_str_c(m->id);
    if (leader && !strcmp(leader, m->id)) {
        out.Members.items =
            kp_arena_calloc(req->arena, (size_t)g->nmembers + 1, sizeof(*out.Members.items));
        int n = 0;
        for (member_t *o = g->members; o && out.Members.items; o = o->next) {
            const protocol_t *p = member_protocol(o, g->protocol);
            JoinGroupResponse_JoinGroupResponseMember *jm = &out.Members.items[n++];
            jm->MemberId = kp_str_c(o->id);
            jm->GroupInstanceId = o->instance_id ? kp_str_c(o->instance_id) : KP_STR_NULL;
            jm->Metadata =
                p ? (kp_str_t){(const char *)p->metadata, p->metadata_len} : (kp_str_t){"", 0};
        }
        out.Members.count = out.Members.items ? n : 0;
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_JOIN, .join = &out});
}

static void join_respond(group_t *g, member_t *m)
{
    join_respond_as(g, m, g->leader, 0);
}

static void sync_respond_full(kp_group_call_t *req, int16_t err, const group_t *g,
                              const member_t *m)
{
    SyncGroupResponse out;
    SyncGroupResponse_init(&out);
    out.ErrorCode = err;
    if (!err && m && m->assignment)
        out.Assignment = (kp_str_t){(const char *)m->assignment, m->assignment_len};
    if (!err && g) { /* v5+ */
        out.ProtocolType = g->protocol_type ? kp_str_c(g->protocol_type) : KP_STR_NULL;
        out.ProtocolName = g->protocol ? kp_str_c(g->protocol) : KP_STR_NULL;
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_SYNC, .sync = &out});
}

/* An error answer (m NULL). */
static void sync_respond(kp_group_call_t *req, int16_t err, const member_t *m)
{
    sync_respond_full(req, err, NULL, m);
}

static void simple_error(kp_group_call_t *req, int16_t err)
{
    /* Heartbeat: ThrottleTimeMs, ErrorCode */
    HeartbeatResponse out;
    HeartbeatResponse_init(&out);
    out.ErrorCode = err;
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_HEARTBEAT, .heartbeat = &out});
}

/* ---- rebalance ---- */

static int32_t max_rebalance_timeout(const group_t *g)
{
    int32_t t = 0;
    for (const member_t *m = g->members; m; m = m->next)
        if (m->rebalance_timeout_ms > t) t = m->rebalance_timeout_ms;
    return t;
}

static void prepare_rebalance(kp_coordinator_t *c, group_t *g, const char *why)
{
    int64_t now = coord_now_ms(c);
    /* members waiting for an assignment of the old generation must rejoin */
    for (member_t *m = g->members; m; m = m->next) {
        if (m->sync_req) {
            sync_respond(m->sync_req, KERR_REBALANCE_IN_PROGRESS, NULL);
            m->sync_req = NULL;
        }
    }
    if (g->state == GS_PREPARING_REBALANCE) return;
    g->initial_join = g->state == GS_EMPTY;
    g->join_started_ms = now;
    if (g->initial_join)
        g->join_deadline_ms = now + c->cfg.initial_rebalance_delay_ms;
    else
        g->join_deadline_ms = now + max_rebalance_timeout(g);
    kp_info("group", "preparing to rebalance group %s in state %s with old generation %d (%s)",
            g->id, group_state_name(g->state), g->generation, why);
    set_state(c, g, GS_PREPARING_REBALANCE);
}

static void remove_member(kp_coordinator_t *c, group_t *g, member_t *m)
{
    for (member_t **pp = &g->members; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    g->nmembers--;
    if (m->join_req) join_error(m->join_req, KERR_UNKNOWN_MEMBER_ID, m->id);
    if (m->sync_req) sync_respond(m->sync_req, KERR_UNKNOWN_MEMBER_ID, NULL);
    if (g->leader && !strcmp(g->leader, m->id)) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
}

/* Ends the join phase: drops members that did not rejoin, picks protocol and leader, starts
 * the next generation and answers every JoinGroup. */
static void complete_join(kp_coordinator_t *c, group_t *g)
{
    member_t *m = g->members;
    while (m) {
        member_t *next = m->next;
        if (!m->join_req) {
            kp_info("group", "group %s: member %s did not rejoin in time; removing it", g->id,
                    m->id);
            remove_member(c, g, m);
        }
        m = next;
    }
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&g->pending, &it, NULL, NULL, &v)) free(v);
    kp_hmap_free(&g->pending);
    kp_hmap_init(&g->pending);
    g->generation++;
    g->sync_store_seq = 0; /* a store of the previous generation no longer matters */
    if (!g->members) {
        free(g->protocol);
        g->protocol = NULL;
        set_state(c, g, GS_EMPTY);
        return;
    }
    const char *proto = select_protocol(g);
    free(g->protocol);
    g->protocol = proto ? kp_xstrdup(proto) : NULL;
    if (!g->leader) g->leader = kp_xstrdup(g->members->id);
    set_state(c, g, GS_COMPLETING_REBALANCE);
    g->sync_deadline_ms = coord_now_ms(c) + max_rebalance_timeout(g);
    kp_info("group", "stabilized group %s generation %d (%d members, protocol %s)", g->id,
            g->generation, g->nmembers, g->protocol ? g->protocol : "-");
    for (member_t *o = g->members; o; o = o->next) {
        o->is_new = 0;
        member_touch(c, g, o);
        free(o->assignment);
        o->assignment = NULL;
        o->assignment_len = 0;
        join_respond(g, o);
    }
}

static int all_joined(const group_t *g)
{
    if (kp_hmap_count(&g->pending) > 0) return 0;
    for (const member_t *m = g->members; m; m = m->next)
        if (!m->join_req) return 0;
    return 1;
}

static void maybe_complete_join(kp_coordinator_t *c, group_t *g, int64_t now)
{
    if (g->state != GS_PREPARING_REBALANCE) return;
    int done = g->initial_join ? now >= g->join_deadline_ms
                               : (all_joined(g) || now >= g->join_deadline_ms);
    if (g->initial_join && all_joined(g) && !g->members) done = 1;
    if (done) complete_join(c, g);
}

/* ---- JoinGroup ---- */

static member_t *add_member(kp_coordinator_t *c, group_t *g, kp_group_call_t *req,
                            const JoinGroupRequest *in, char *id)
{
    member_t *m = kp_xcalloc(1, sizeof(*m));
    m->id = id;
    m->instance_id = coord_strdup(in->GroupInstanceId);
    m->client_id = coord_strdup(req->client_id.len >= 0 ? req->client_id : KP_STR_LIT(""));
    m->client_host = kp_xstrdup(req->client_host);
    m->session_timeout_ms = in->SessionTimeoutMs;
    m->rebalance_timeout_ms =
        in->RebalanceTimeoutMs > 0 ? in->RebalanceTimeoutMs : in->SessionTimeoutMs;
    set_protocols(m, in);
    m->is_new = 1;
    member_touch(c, g, m);
    /* keep join order: the first member becomes leader when none is left */
    member_t **pp = &g->members;
    while (*pp) pp = &(*pp)->next;
    *pp = m;
    g->nmembers++;
    if (!g->protocol_type) g->protocol_type = coord_strdup(in->ProtocolType);
    return m;
}

static void join_park(kp_coordinator_t *c, group_t *g, member_t *m, kp_group_call_t *req)
{
    if (m->join_req) join_error(m->join_req, KERR_UNKNOWN_MEMBER_ID, m->id); /* superseded */
    m->join_req = req;
    m->join_store_seq = 0;
    if (g->state != GS_PREPARING_REBALANCE) prepare_rebalance(c, g, "member joined");
    if (g->initial_join) {
        /* each new member extends the initial delay, up to the rebalance timeout */
        int64_t now = coord_now_ms(c);
        int64_t ext = now + c->cfg.initial_rebalance_delay_ms;
        int64_t cap = g->join_started_ms + max_rebalance_timeout(g);
        g->join_deadline_ms = ext < cap ? ext : cap;
    }
    maybe_complete_join(c, g, coord_now_ms(c));
}

static void join_unknown_member(kp_coordinator_t *c, group_t *g, kp_group_call_t *req,
                                JoinGroupRequest *in)
{
    member_t *stat = find_static(g, in->GroupInstanceId);
    if (stat) {
        /* a static member restarted: it takes over its slot under a new member id */
        char *id = new_member_id(in->GroupInstanceId);
        int unchanged = same_protocols(stat, in);
        if (stat->join_req) join_error(stat->join_req, KERR_FENCED_INSTANCE_ID, stat->id);
        if (stat->sync_req) sync_respond(stat->sync_req, KERR_FENCED_INSTANCE_ID, NULL);
        stat->join_req = stat->sync_req = NULL;
        int was_leader = g->leader && !strcmp(g->leader, stat->id);
        char *old_id = stat->id;
        stat->id = id;
        if (was_leader) {
            free(g->leader);
            g->leader = kp_xstrdup(id);
        }
        stat->session_timeout_ms = in->SessionTimeoutMs;
        stat->rebalance_timeout_ms =
            in->RebalanceTimeoutMs > 0 ? in->RebalanceTimeoutMs : in->SessionTimeoutMs;
        member_touch(c, g, stat);
        if (g->state == GS_STABLE && unchanged) {
            /* no rebalance: same generation, the assignment is returned by SyncGroup. The new
             * member id is answered once the record naming it is durable, so a restarted
             * broker never fences the member it just handed that id to. */
            kp_info("group", "group %s: static member %s rejoined without a rebalance", g->id,
                    stat->instance_id);
            stat->join_req = req;
            /* as Kafka: JoinGroup < v9 reports the leader id from before the rejoin, so a
             * rejoining leader does not run an assignment a Stable group would ignore; v9+
             * names the new id as leader with SkipAssignment (KIP-814) */
            int report_old = was_leader && req->api_version < 9;
            group_store_static_join(c, g, stat, report_old ? old_id : NULL);
            if (!report_old) free(old_id);
            return;
        }
        free(old_id);
        set_protocols(stat, in);
        join_park(c, g, stat, req);
        return;
    }
    if (g->nmembers >= c->cfg.max_group_size) {
        join_error(req, KERR_GROUP_MAX_SIZE_REACHED, NULL);
        return;
    }
    kp_str_t prefix = req->client_id.len > 0 ? req->client_id : KP_STR_LIT("member");
    if (in->GroupInstanceId.len >= 0) prefix = in->GroupInstanceId;
    char *id = new_member_id(prefix);
    if (req->api_version >= 4 && in->GroupInstanceId.len < 0) {
        /* KIP-394: hand out the id first; the member rejoins with it */
        int64_t *deadline = kp_xmalloc(sizeof(*deadline));
        *deadline = coord_now_ms(c) + in->SessionTimeoutMs;
        kp_hmap_put(&g->pending, id, strlen(id), deadline);
        join_error(req, KERR_MEMBER_ID_REQUIRED, id);
        free(id);
        return;
    }
    member_t *m = add_member(c, g, req, in, id);
    join_park(c, g, m, req);
}

void membership_join(kp_coordinator_t *c, kp_group_call_t *req, JoinGroupRequest *in)
{
    if (in->GroupId.len <= 0) {
        join_error(req, KERR_INVALID_GROUP_ID, NULL);
        return;
    }
    if (in->SessionTimeoutMs < c->cfg.min_session_timeout_ms ||
        in->SessionTimeoutMs > c->cfg.max_session_timeout_ms) {
        join_error(req, KERR_INVALID_SESSION_TIMEOUT, NULL);
        return;
    }
    /* the first team to join an unowned group owns it */
    int16_t access_err = group_access(c, req, in->GroupId, KP_OP_READ, 1);
    if (access_err) {
        join_error(req, access_err, NULL);
        return;
    }
    group_t *g = coord_group_get(c, in->GroupId, in->MemberId.len == 0);
    if (!g) {
        join_error(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    if (g->state == GS_DEAD) {
        join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
        return;
    }
    if (!protocols_compatible(g, in)) {
        join_error(req, KERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return;
    }
    if (in->MemberId.len == 0) {
        join_unknown_member(c, g, req, in);
        return;
    }
    int64_t *pend = kp_hmap_get(&g->pending, in->MemberId.ptr, (size_t)in->MemberId.len);
    if (pend) {
        free(kp_hmap_del(&g->pending, in->MemberId.ptr, (size_t)in->MemberId.len));
        member_t *m = add_member(c, g, req, in, coord_strdup(in->MemberId));
        join_park(c, g, m, req);
        return;
    }
    member_t *m = group_find_member(g, in->MemberId.ptr, (size_t)in->MemberId.len);
    member_t *stat = find_static(g, in->GroupInstanceId);
    if (stat && stat != m) {
        join_error(req, KERR_FENCED_INSTANCE_ID, NULL);
        return;
    }
    if (!m) {
        join_error(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    member_touch(c, g, m);
    switch (g->state) {
    case GS_PREPARING_REBALANCE:
        set_protocols(m, in);
        join_park(c, g, m, req);
        break;
    case GS_COMPLETING_REBALANCE:
        if (same_protocols(m, in)) {
            m->join_req = req; /* a retried join: answer with the current generation */
            join_respond(g, m);
        } else {
            set_protocols(m, in);
            join_park(c, g, m, req);
        }
        break;
    case GS_STABLE:
        if ((g->leader && !strcmp(g->leader, m->id)) || !same_protocols(m, in)) {
            set_protocols(m, in);
            join_park(c, g, m, req);
        } else {
            m->join_req = req;
            join_respond(g, m);
        }
        break;
    default:
        join_error(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        break;
    }
}

/* ---- SyncGroup ---- */

void membership_sync(kp_coordinator_t *c, kp_group_call_t *req, SyncGroupRequest *in)
{
    int16_t access_err = group_access(c, req, in->GroupId, KP_OP_READ, 0);
    if (access_err) {
        sync_respond(req, access_err, NULL);
        return;
    }
    group_t *g = coord_group_get(c, in->GroupId, 0);
    if (!g) {
        sync_respond(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    member_t *m = group_find_member(g, in->MemberId.ptr,
                                    (size_t)(in->MemberId.len > 0 ? in->MemberId.len : 0));
    member_t *stat = find_static(g, in->GroupInstanceId);
    if (stat && stat != m) {
        sync_respond(req, KERR_FENCED_INSTANCE_ID, NULL);
        return;
    }
    if (!m) {
        sync_respond(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    if (in->GenerationId != g->generation) {
        sync_respond(req, KERR_ILLEGAL_GENERATION, NULL);
        return;
    }
    /* v5+ (KIP-559): the client's view of the protocol must be the group's */
    if ((in->ProtocolType.len >= 0 &&
         (!g->protocol_type || !kp_str_eq_c(in->ProtocolType, g->protocol_type))) ||
        (in->ProtocolName.len >= 0 &&
         (!g->protocol || !kp_str_eq_c(in->ProtocolName, g->protocol)))) {
        sync_respond(req, KERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return;
    }
    member_touch(c, g, m);
    switch (g->state) {
    case GS_PREPARING_REBALANCE:
        sync_respond(req, KERR_REBALANCE_IN_PROGRESS, NULL);
        return;
    case GS_STABLE:
        sync_respond_full(req, 0, g, m);
        return;
    case GS_COMPLETING_REBALANCE:
        break;
    default:
        sync_respond(req, KERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    if (m->sync_req) sync_respond(m->sync_req, KERR_REBALANCE_IN_PROGRESS, NULL);
    m->sync_req = req;
    if (!g->leader || strcmp(g->leader, m->id) != 0) return;
    if (g->sync_store_seq) return; /* a retried SyncGroup: the assignment is being stored */
    /* the leader's assignment: kept in the members (not visible before Stable), written
     * with the generation; the group turns Stable once that is durable */
    for (member_t *o = g->members; o; o = o->next) {
        free(o->assignment);
        o->assignment = NULL;
        o->assignment_len = 0;
        for (int32_t i = 0; i < in->Assignments.count; i++) {
            const SyncGroupRequest_SyncGroupRequestAssignment *a = &in->Assignments.items[i];
            if (!kp_str_eq_c(a->MemberId, o->id)) continue;
            int32_t len = a->Assignment.len > 0 ? a->Assignment.len : 0;
            o->assignment = kp_xmalloc((size_t)len + 1);
            if (len) memcpy(o->assignment, a->Assignment.ptr, (size_t)len);
            o->assignment_len = len;
        }
    }
    group_store_assignment(c, g);
}

void membership_assignment_stored(kp_coordinator_t *c, group_t *g, int32_t generation, uint64_t seq,
                                  int err)
{
    /* a rebalance since (members left or joined) made this store moot */
    if (g->sync_store_seq != seq || g->generation != generation ||
        g->state != GS_COMPLETING_REBALANCE)
        return;
    g->sync_store_seq = 0;
    if (err) {
        /* as Kafka: the members learn the error and the group rebalances */
        kp_warn("group", "group %s: storing generation %d failed; rebalancing", g->id,
                g->generation);
        for (member_t *o = g->members; o; o = o->next) {
            if (o->sync_req) sync_respond(o->sync_req, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
            o->sync_req = NULL;
            free(o->assignment);
            o->assignment = NULL;
            o->assignment_len = 0;
        }
        prepare_rebalance(c, g, "could not store the group's assignment");
        return;
    }
    set_state(c, g, GS_STABLE);
    for (member_t *o = g->members; o; o = o->next) {
        if (!o->sync_req) continue;
        sync_respond_full(o->sync_req, 0, g, o);
        o->sync_req = NULL;
        member_touch(c, g, o); /* as Kafka: its session restarts with the assignment */
    }
}

void membership_static_join_stored(kp_coordinator_t *c, group_t *g, const char *member_id,
                                   uint64_t seq, const char *reported_leader, int err)
{
    member_t *m = group_find_member(g, member_id, strlen(member_id));
    /* fenced by a newer rejoin, answered by a rebalance, or aborted meanwhile */
    if (!m || m->join_store_seq != seq || !m->join_req) return;
    m->join_store_seq = 0;
    if (err) {
        kp_warn("group", "group %s: storing static member %s's new member id failed", g->id,
                m->instance_id ? m->instance_id : "-");
        join_error(m->join_req, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
        m->join_req = NULL;
        return;
    }
    /* a rebalance started meanwhile: the pending JoinGroup counts as this member's rejoin
     * and is answered when the join phase completes */
    if (g->state != GS_STABLE) return;
    /* v9+: the rejoined leader is told it leads, with SkipAssignment (KIP-814) */
    int skip = !reported_leader && g->leader && !strcmp(g->leader, m->id);
    join_respond_as(g, m, reported_leader ? reported_leader : g->leader, skip);
}

/* ---- Heartbeat ---- */

void membership_heartbeat(kp_coordinator_t *c, kp_group_call_t *req, HeartbeatRequest *in)
{
    int16_t access_err = group_access(c, req, in->GroupId, KP_OP_READ, 0);
    if (access_err) {
        simple_error(req, access_err);
        return;
    }
    group_t *g = coord_group_get(c, in->GroupId, 0);
    if (!g) {
        simple_error(req, KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    member_t *m = group_find_member(g, in->MemberId.ptr,
                                    (size_t)(in->MemberId.len > 0 ? in->MemberId.len : 0));
    member_t *stat = find_static(g, in->GroupInstanceId);
    if (stat && stat != m) {
        simple_error(req, KERR_FENCED_INSTANCE_ID);
        return;
    }
    if (!m || g->state == GS_EMPTY) {
        simple_error(req, KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (g->state == GS_DEAD) {
        simple_error(req, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (in->GenerationId != g->generation) {
        simple_error(req, KERR_ILLEGAL_GENERATION);
        return;
    }
    member_touch(c, g, m);
    simple_error(req, g->state == GS_PREPARING_REBALANCE ? KERR_REBALANCE_IN_PROGRESS : 0);
}

/* ---- LeaveGroup ---- */

static int16_t leave_one(kp_coordinator_t *c, group_t *g, kp_str_t member_id, kp_str_t instance_id)
{
    member_t *m = NULL;
    if (instance_id.len >= 0) {
        m = find_static(g, instance_id);
        if (!m) return KERR_UNKNOWN_MEMBER_ID;
        if (member_id.len > 0 && !kp_str_eq_c(member_id, m->id)) return KERR_FENCED_INSTANCE_ID;
    } else {
        if (member_id.len > 0 && kp_hmap_get(&g->pending, member_id.ptr, (size_t)member_id.len)) {
            free(kp_hmap_del(&g->pending, member_id.ptr, (size_t)member_id.len));
            maybe_complete_join(c, g, coord_now_ms(c));
            return 0;
        }
        m = group_find_member(g, member_id.ptr, (size_t)(member_id.len > 0 ? member_id.len : 0));
        if (!m) return KERR_UNKNOWN_MEMBER_ID;
    }
    kp_info("group", "member %s left group %s", m->id, g->id);
    remove_member(c, g, m);
    if (!g->members && g->state != GS_PREPARING_REBALANCE) {
        g->generation++;
        set_state(c, g, GS_EMPTY);
    } else if (g->state == GS_STABLE || g->state == GS_COMPLETING_REBALANCE) {
        prepare_rebalance(c, g, "member left");
    }
    maybe_complete_join(c, g, coord_now_ms(c));
    return 0;
}

void membership_leave(kp_coordinator_t *c, kp_group_call_t *req, LeaveGroupRequest *in)
{
    LeaveGroupResponse out;
    LeaveGroupResponse_init(&out);
    group_t *g = coord_group_get(c, in->GroupId, 0);
    int16_t access_err = group_access(c, req, in->GroupId, KP_OP_READ, 0);
    if (access_err) {
        out.ErrorCode = access_err;
    } else if (req->api_version < 3) {
        out.ErrorCode = g ? leave_one(c, g, in->MemberId, KP_STR_NULL) : KERR_UNKNOWN_MEMBER_ID;
    } else {
        int32_t n = in->Members.count > 0 ? in->Members.count : 0;
        out.Members.count = n;
        out.Members.items = kp_arena_calloc(req->arena, (size_t)n + 1, sizeof(*out.Members.items));
        for (int32_t i = 0; i < n && out.Members.items; i++) {
            const LeaveGroupRequest_MemberIdentity *mi = &in->Members.items[i];
            LeaveGroupResponse_MemberResponse *mr = &out.Members.items[i];
            mr->MemberId = mi->MemberId;
            mr->GroupInstanceId = mi->GroupInstanceId;
            mr->ErrorCode =
                g ? leave_one(c, g, mi->MemberId, mi->GroupInstanceId) : KERR_UNKNOWN_MEMBER_ID;
        }
        if (!out.Members.items) out.Members.count = 0;
        if (!g) out.ErrorCode = KERR_UNKNOWN_MEMBER_ID;
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_LEAVE, .leave = &out});
}

/* ---- ListGroups / DescribeGroups ---- */

/* 1 when the v4+ states filter (KIP-518; empty: every state) admits s. Kafka compares the
 * names case-insensitively. */
static int state_admitted(const ListGroupsRequest *in, group_state_t s)
{
    if (in->StatesFilter.count <= 0) return 1;
    const char *name = group_state_name(s);
    for (int32_t i = 0; i < in->StatesFilter.count; i++) {
        kp_str_t f = in->StatesFilter.items[i];
        if (f.len == (int32_t)strlen(name) && !strncasecmp(f.ptr, name, (size_t)f.len)) return 1;
    }
    return 0;
}

void membership_list(kp_coordinator_t *c, kp_group_call_t *req, ListGroupsRequest *in)
{
    ListGroupsResponse out;
    ListGroupsResponse_init(&out);
    size_t n = kp_hmap_count(&c->groups), it = 0;
    out.Groups.items = kp_arena_calloc(req->arena, n + 1, sizeof(*out.Groups.items));
    void *v;
    int k = 0;
    /* DESCRIBE on the cluster lists every group; otherwise only describable ones */
    int all = req->may(req, KP_OP_DESCRIBE, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE));
    while (out.Groups.items && kp_hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        if (g->state == GS_DEAD || !state_admitted(in, g->state)) continue;
        if (!all && !req->may(req, KP_OP_DESCRIBE, KP_RES_GROUP, kp_str_c(g->id))) continue;
        if (!all && !group_visible(c, req, g->id)) continue; /* another team's */
        out.Groups.items[k].GroupId = kp_str_c(g->id);
        out.Groups.items[k].ProtocolType = kp_str_c(g->protocol_type ? g->protocol_type : "");
        out.Groups.items[k].GroupState = kp_str_c(group_state_name(g->state));
        k++;
    }
    out.Groups.count = k;
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_LIST, .list = &out});
}

void membership_describe(kp_coordinator_t *c, kp_group_call_t *req, DescribeGroupsRequest *in)
{
    DescribeGroupsResponse out;
    DescribeGroupsResponse_init(&out);
    int32_t n = in->Groups.count > 0 ? in->Groups.count : 0;
    out.Groups.items = kp_arena_calloc(req->arena, (size_t)n + 1, sizeof(*out.Groups.items));
    out.Groups.count = out.Groups.items ? n : 0;
    for (int32_t i = 0; i < out.Groups.count; i++) {
        DescribeGroupsResponse_DescribedGroup *dg = &out.Groups.items[i];
        DescribeGroupsResponse_DescribedGroup_init(dg);
        dg->GroupId = in->Groups.items[i];
        dg->ErrorCode = group_access(c, req, dg->GroupId, KP_OP_DESCRIBE, 0);
        if (dg->ErrorCode) continue;
        group_t *g = coord_group_get(c, dg->GroupId, 0);
        if (!g) {
            dg->GroupState = kp_str_c("Dead");
            continue;
        }
        dg->GroupState = kp_str_c(group_state_name(g->state));
        dg->ProtocolType = kp_str_c(g->protocol_type ? g->protocol_type : "");
        /* the protocol is only meaningful once a generation has one */
        int show = g->state == GS_STABLE || g->state == GS_COMPLETING_REBALANCE;
        dg->ProtocolData = kp_str_c(show && g->protocol ? g->protocol : "");
        dg->Members.items =
            kp_arena_calloc(req->arena, (size_t)g->nmembers + 1, sizeof(*dg->Members.items));
        int k = 0;
        for (member_t *m = g->members; m && dg->Members.items; m = m->next) {
            DescribeGroupsResponse_DescribedGroupMember *dm = &dg->Members.items[k++];
            DescribeGroupsResponse_DescribedGroupMember_init(dm);
            dm->MemberId = kp_str_c(m->id);
            dm->GroupInstanceId = m->instance_id ? kp_str_c(m->instance_id) : KP_STR_NULL;
            dm->ClientId = kp_str_c(m->client_id ? m->client_id : "");
            dm->ClientHost = kp_str_c(m->client_host ? m->client_host : "");
            const protocol_t *p = show ? member_protocol(m, g->protocol) : NULL;
            dm->MemberMetadata =
                p ? (kp_str_t){(const char *)p->metadata, p->metadata_len} : (kp_str_t){"", 0};
            dm->MemberAssignment = g->state == GS_STABLE && m->assignment
                                       ? (kp_str_t){(const char *)m->assignment, m->assignment_len}
                                       : (kp_str_t){"", 0};
        }
        dg->Members.count = dg->Members.items ? k : 0;
    }
    coord_done(req, (kp_group_result_t){.op = KP_GROUP_OP_DESCRIBE, .describe = &out});
}

/* ---- expiry ---- */

void membership_tick(kp_coordinator_t *c, group_t *g, int64_t now)
{
    /* member ids handed out with MEMBER_ID_REQUIRED that never came back */
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    int pending_expired = 0;
    while (kp_hmap_next(&g->pending, &it, &k, &kl, &v)) {
        if (*(int64_t *)v <= now) {
            free(kp_hmap_del(&g->pending, k, kl));
            pending_expired = 1;
            it = 0; /* the table changed */
        }
    }
    int removed = 0;
    member_t *m = g->members;
    while (m) {
        member_t *next = m->next;
        int alive;
        if (m->join_req)
            alive = !m->is_new || now - m->last_heartbeat_ms < KP_NEW_MEMBER_JOIN_TIMEOUT_MS;
        else if (m->sync_req)
            alive = 1;
        else
            alive = now - m->last_heartbeat_ms < m->session_timeout_ms;
        if (!alive) {
            kp_info("group",
                    "member %s in group %s has failed (session timeout %d ms); "
                    "removing it",
                    m->id, g->id, m->session_timeout_ms);
            remove_member(c, g, m);
            removed = 1;
        }
        m = next;
    }
    if (removed) {
        if (!g->members && g->state != GS_PREPARING_REBALANCE) {
            g->generation++;
            set_state(c, g, GS_EMPTY);
        } else if (g->state == GS_STABLE || g->state == GS_COMPLETING_REBALANCE) {
            prepare_rebalance(c, g, "member session expired");
        }
    }
    if (g->state == GS_COMPLETING_REBALANCE && now >= g->sync_deadline_ms) {
        /* the leader never sent its assignment: drop members that did not sync, start over */
        m = g->members;
        while (m) {
            member_t *next = m->next;
            if (!m->sync_req) remove_member(c, g, m);
            m = next;
        }
        prepare_rebalance(c, g, "members did not sync in time");
    }
    if (pending_expired || removed || g->state == GS_PREPARING_REBALANCE)
        maybe_complete_join(c, g, now);
}

void membership_abort(kp_coordinator_t *c, group_t *g, int16_t err)
{
    for (member_t *m = g->members; m; m = m->next) {
        if (m->join_req) join_error(m->join_req, err, m->id);
        if (m->sync_req) sync_respond(m->sync_req, err, NULL);
        m->join_req = m->sync_req = NULL;
    }
}

/* Consumer protocol subscription (v0+): version int16, topics [string], ... */
int group_subscribed_to(const group_t *g, const char *topic, size_t topiclen)
{
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0) return 0;
    for (const member_t *m = g->members; m; m = m->next) {
        const protocol_t *p = member_protocol(m, g->protocol);
        if (!p) continue;
        kp_rd_t r;
        kp_rd_init(&r, p->metadata, (size_t)p->metadata_len);
        kp_rd_i16(&r);
        int32_t n = kp_rd_array_len(&r, 0, 0, 2);
        for (int32_t i = 0; i < n && !r.err; i++) {
            kp_str_t t = kp_rd_string(&r, 0, 0);
            if (!r.err && (size_t)t.len == topiclen && !memcmp(t.ptr, topic, topiclen)) return 1;
        }
    }
    return 0;
}
