/*
 * reassign_ctl.c — partition reassignment through the metadata store (see reassign_ctl.h).
 */
#include "broker/reassign_ctl.h"

#include "cluster/reassign.h"
#include "core/buf.h"
#include "core/logging.h"
#include "protocol/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tries of a read-modify-write of a topic record that lost a race with another writer. */
#define ALTER_ATTEMPTS_MAX 8

static void fail_all(kp_reassign_req_t *reqs, int n, int16_t error, const char *msg)
{
    for (int i = 0; i < n; i++) {
        if (reqs[i].error) continue;
        reqs[i].error = error;
        snprintf(reqs[i].msg, sizeof(reqs[i].msg), "%.*s", (int)sizeof(reqs[i].msg) - 1, msg);
    }
}

/* Applies the requests to t (errors into reqs); returns how many changed t. */
static int alter_record(kp_meta_topic_t *t, kp_id_set_t live, kp_reassign_req_t *reqs, int n)
{
    int changed = 0;
    for (int i = 0; i < n; i++) {
        kp_reassign_req_t *r = &reqs[i];
        r->error = 0;
        r->msg[0] = 0;
        if (r->partition < 0 || r->partition >= t->partitions) {
            r->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(r->msg, sizeof(r->msg), "Partition %d of %s does not exist.", r->partition,
                     t->name);
        } else if (!r->target) {
            if (kp_reassign_clear(t, r->partition)) {
                changed++;
            } else {
                r->error = KERR_NO_REASSIGNMENT_IN_PROGRESS;
                snprintf(r->msg, sizeof(r->msg), "No reassignment of %s-%d is in progress.",
                         t->name, r->partition);
            }
        } else if (kp_reassign_validate(r->target, r->ntarget, t->replication_factor, live, r->msg,
                                        sizeof(r->msg)) < 0) {
            r->error = KERR_INVALID_REPLICA_ASSIGNMENT;
        } else {
            kp_reassign_set(t, r->partition, r->target);
            changed++;
        }
    }
    return changed;
}

void kp_reassign_alter(kp_meta_store_t *s, kp_id_set_t live, const char *topic,
                       kp_reassign_req_t *reqs, int n)
{
    char err[512];
    for (int attempt = 0; attempt < ALTER_ATTEMPTS_MAX; attempt++) {
        kp_meta_topic_t t;
        int rc = kp_meta_topic_get(s, topic, &t, err, sizeof(err));
        if (rc == KP_META_ENOTFOUND) {
            snprintf(err, sizeof(err), "Topic %s does not exist in the pool.", topic);
            fail_all(reqs, n, KERR_UNKNOWN_TOPIC_OR_PARTITION, err);
            return;
        }
        if (rc) {
            fail_all(reqs, n, KERR_REQUEST_TIMED_OUT, err);
            return;
        }
        int changed = alter_record(&t, live, reqs, n);
        int64_t version;
        rc = changed ? kp_meta_topic_update(s, &t, &version, err, sizeof(err)) : 0;
        kp_meta_topic_free(&t);
        if (rc == KP_META_ECONFLICT) continue; /* decided again on the new record */
        if (rc) {
            for (int i = 0; i < n; i++) reqs[i].error = 0;
            fail_all(reqs, n, KERR_REQUEST_TIMED_OUT, err);
            return;
        }
        for (int i = 0; i < n; i++)
            if (!reqs[i].error)
                kp_info("pool", "%s-%d: reassignment %s", topic, reqs[i].partition,
                        reqs[i].target ? "requested" : "cancelled");
        return;
    }
    for (int i = 0; i < n; i++) reqs[i].error = 0;
    fail_all(reqs, n, KERR_REQUEST_TIMED_OUT,
             "The topic's record kept changing meanwhile: try again.");
}

int kp_reassign_list(kp_meta_store_t *s, kp_reassign_entry_t **out, int *n, char *err,
                     size_t errlen)
{
    kp_meta_topic_t *topics;
    int nt;
    *out = NULL;
    *n = 0;
    int rc = kp_meta_topics_list(s, &topics, &nt, err, errlen);
    if (rc) return rc;
    int cap = 0;
    for (int i = 0; i < nt; i++) {
        const kp_meta_topic_t *t = &topics[i];
        for (int32_t p = 0; p < t->partitions && t->nreassigning > 0; p++) {
            if (!kp_reassign_find(t, p)) continue;
            if (*n == cap) *out = kp_xrealloc(*out, (size_t)(cap = cap * 2 + 8) * sizeof(**out));
            kp_reassign_entry_t *e = &(*out)[(*n)++];
            memset(e, 0, sizeof(*e));
            e->topic = kp_xstrdup(t->name);
            e->partition = p;
            e->nreplicas = kp_reassign_replicas(t, p, e->replicas);
            e->nadding = kp_reassign_adding(t, p, e->adding);
            e->nremoving = kp_reassign_removing(t, p, e->removing);
        }
    }
    kp_meta_topics_free(topics, nt);
    return 0;
}

void kp_reassign_entries_free(kp_reassign_entry_t *e, int n)
{
    for (int i = 0; i < n; i++) free(e[i].topic);
    free(e);
}

/* The move of t-p completes: the record's row becomes the target (CAS on a fresh read, so a
 * concurrent cancel or new target wins), then the state conforms. */
static void complete_one(kp_meta_store_t *s, const char *topic, const kp_meta_reassign_t *seen,
                         int rf, kp_id_set_t live)
{
    char err[512];
    kp_meta_topic_t t;
    if (kp_meta_topic_get(s, topic, &t, err, sizeof(err)) != 0) return;
    const kp_meta_reassign_t *r = kp_reassign_find(&t, seen->partition);
    int same = r && t.replication_factor == rf &&
               !memcmp(r->target, seen->target, (size_t)rf * sizeof(int32_t));
    int64_t version;
    int32_t p = seen->partition;
    if (!same || !kp_reassign_complete(&t, p) ||
        kp_meta_topic_update(s, &t, &version, err, sizeof(err)) != 0) {
        kp_meta_topic_free(&t);
        return;
    }
    const int32_t *row = &t.replicas[(size_t)p * (size_t)rf];
    char list[KP_REPLICAS_MAX * 12] = "";
    for (int i = 0, off = 0; i < rf && off < (int)sizeof(list); i++)
        off += snprintf(list + off, sizeof(list) - (size_t)off, "%s%d", i ? "," : "", row[i]);
    kp_info("pool", "%s-%d: reassignment complete: replicas now [%s]", topic, p, list);
    kp_meta_pstate_t ps;
    kp_partition_state_t next;
    if (kp_meta_partition_get(s, topic, p, &ps, err, sizeof(err)) == 0 &&
        kp_reassign_conform((kp_id_set_t){row, rf}, &ps.state, live, &next) &&
        kp_meta_partition_cas(s, topic, p, &next, ps.version, 1, &version, err, sizeof(err)) != 0)
        kp_debug("pool", "%s-%d: conforming after the reassignment: %s (the sweep retries)", topic,
                 p, err);
    kp_meta_topic_free(&t);
}

void kp_reassign_controller_pass(kp_meta_store_t *s, const kp_meta_topic_t *topics, int ntopics,
                                 kp_id_set_t live)
{
    for (int i = 0; i < ntopics; i++) {
        const kp_meta_topic_t *t = &topics[i];
        for (int k = 0; k < t->nreassigning; k++) {
            kp_meta_reassign_t r = t->reassigning[k];
            kp_meta_pstate_t ps;
            char err[256];
            if (kp_meta_partition_get(s, t->name, r.partition, &ps, err, sizeof(err)) != 0)
                continue;
            if (kp_reassign_caught_up(&r, t->replication_factor, &ps.state))
                complete_one(s, t->name, &r, t->replication_factor, live);
        }
    }
}

int16_t kp_reassign_elect_preferred(kp_meta_store_t *s, kp_id_set_t live, const kp_meta_topic_t *t,
                                    int32_t p, char *msg, size_t msglen)
{
    int32_t ids[KP_REPLICAS_MAX];
    kp_id_set_t replicas = {ids, kp_reassign_replicas(t, p, ids)};
    char err[512];
    for (int attempt = 0; attempt < ALTER_ATTEMPTS_MAX; attempt++) {
        kp_meta_pstate_t ps;
        if (kp_meta_partition_get(s, t->name, p, &ps, err, sizeof(err)) != 0) break;
        if (ps.state.leader == ids[0]) {
            snprintf(msg, msglen, "Broker %d, the preferred replica, leads %s-%d already.", ids[0],
                     t->name, p);
            return KERR_ELECTION_NOT_NEEDED;
        }
        kp_id_set_t isr = {ps.state.isr, ps.state.nisr};
        if (kp_elect_leader_preferred(replicas, isr, live) < 0) {
            snprintf(msg, msglen, "The preferred replica of %s-%d, broker %d, is %s.", t->name, p,
                     ids[0], kp_id_set_has(live, ids[0]) ? "not in the ISR" : "not live");
            return KERR_PREFERRED_LEADER_NOT_AVAILABLE;
        }
        kp_partition_state_t next;
        kp_partition_state_elect(&ps.state, ids[0], ps.state.isr, ps.state.nisr, &next);
        int64_t version;
        int rc =
            kp_meta_partition_cas(s, t->name, p, &next, ps.version, 0, &version, err, sizeof(err));
        if (rc == 0) {
            kp_info("pool", "%s-%d: preferred leader %d elected, epoch %d", t->name, p, ids[0],
                    next.leader_epoch);
            return 0;
        }
        if (rc != KP_META_ECONFLICT) break;
    }
    snprintf(msg, msglen, "the pool's metadata store: %s", err);
    return KERR_REQUEST_TIMED_OUT;
}

/* One partition as the imbalance check saw it. */
typedef struct seen_part {
    const kp_meta_topic_t *t;
    int32_t p, preferred, leader;
} seen_part_t;

/* Per preferred broker: partitions it should lead, and how many it does not. */
typedef struct broker_share {
    int32_t id;
    int total, elsewhere;
} broker_share_t;

static broker_share_t *share_of(broker_share_t *v, int *n, int32_t id)
{
    for (int i = 0; i < *n; i++)
        if (v[i].id == id) return &v[i];
    v[*n] = (broker_share_t){id, 0, 0};
    return &v[(*n)++];
}

int kp_reassign_leader_imbalance_pass(kp_meta_store_t *s, const kp_meta_topic_t *topics,
                                      int ntopics, kp_id_set_t live, int64_t imbalance_pct)
{
    size_t total = 0;
    for (int i = 0; i < ntopics; i++) total += (size_t)topics[i].partitions;
    seen_part_t *seen = kp_xcalloc(total + 1, sizeof(*seen));
    broker_share_t *shares = kp_xcalloc(total + 1, sizeof(*shares));
    int nseen = 0, nshares = 0, moved = 0;
    for (int i = 0; i < ntopics; i++) {
        for (int32_t k = 0; k < topics[i].partitions; k++) {
            int32_t ids[KP_REPLICAS_MAX];
            kp_meta_pstate_t ps;
            char err[256];
            /* as Kafka, a partition being moved is left to its move */
            if (kp_reassign_find(&topics[i], k) || kp_reassign_replicas(&topics[i], k, ids) < 1 ||
                kp_meta_partition_get(s, topics[i].name, k, &ps, err, sizeof(err)) != 0)
                continue;
            seen[nseen++] = (seen_part_t){&topics[i], k, ids[0], ps.state.leader};
            broker_share_t *b = share_of(shares, &nshares, ids[0]);
            b->total++;
            b->elsewhere += ps.state.leader != ids[0];
        }
    }
    for (int i = 0; i < nseen; i++) {
        broker_share_t *b = share_of(shares, &nshares, seen[i].preferred);
        if (seen[i].leader == seen[i].preferred || !kp_id_set_has(live, seen[i].preferred) ||
            (int64_t)b->elsewhere * 100 <= imbalance_pct * (int64_t)b->total)
            continue;
        char msg[512];
        if (kp_reassign_elect_preferred(s, live, seen[i].t, seen[i].p, msg, sizeof(msg)) == 0)
            moved++;
    }
    if (moved)
        kp_info("pool", "auto leader rebalance: %d partitions got their preferred leader back",
                moved);
    free(seen);
    free(shares);
    return moved;
}
