/*
 * reassign.c — partition reassignment decisions (see reassign.h).
 */
#include "cluster/reassign.h"

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static const int32_t *row(const kp_meta_topic_t *t, int32_t p)
{
    return &t->replicas[(size_t)p * (size_t)t->replication_factor];
}

const kp_meta_reassign_t *kp_reassign_find(const kp_meta_topic_t *t, int32_t p)
{
    for (int i = 0; i < t->nreassigning; i++)
        if (t->reassigning[i].partition == p) return &t->reassigning[i];
    return NULL;
}

int kp_reassign_replicas(const kp_meta_topic_t *t, int32_t p, int32_t *out)
{
    int rf = t->replication_factor, n = 0;
    const kp_meta_reassign_t *r = kp_reassign_find(t, p);
    if (r)
        for (int i = 0; i < rf; i++) out[n++] = r->target[i];
    for (int i = 0; i < rf && n < KP_REPLICAS_MAX; i++)
        if (!has(out, n, row(t, p)[i])) out[n++] = row(t, p)[i];
    return n;
}

int kp_reassign_adding(const kp_meta_topic_t *t, int32_t p, int32_t *out)
{
    const kp_meta_reassign_t *r = kp_reassign_find(t, p);
    int n = 0;
    for (int i = 0; r && i < t->replication_factor; i++)
        if (!has(row(t, p), t->replication_factor, r->target[i])) out[n++] = r->target[i];
    return n;
}

int kp_reassign_removing(const kp_meta_topic_t *t, int32_t p, int32_t *out)
{
    const kp_meta_reassign_t *r = kp_reassign_find(t, p);
    int n = 0;
    for (int i = 0; r && i < t->replication_factor; i++)
        if (!has(r->target, t->replication_factor, row(t, p)[i])) out[n++] = row(t, p)[i];
    return n;
}

int kp_reassign_clear(kp_meta_topic_t *t, int32_t p)
{
    for (int i = 0; i < t->nreassigning; i++) {
        if (t->reassigning[i].partition != p) continue;
        t->reassigning[i] = t->reassigning[--t->nreassigning];
        return 1;
    }
    return 0;
}

void kp_reassign_set(kp_meta_topic_t *t, int32_t p, const int32_t *target)
{
    size_t bytes = (size_t)t->replication_factor * sizeof(*target);
    kp_reassign_clear(t, p);
    if (!memcmp(row(t, p), target, bytes)) return;
    t->reassigning =
        kp_xrealloc(t->reassigning, (size_t)(t->nreassigning + 1) * sizeof(*t->reassigning));
    kp_meta_reassign_t *r = &t->reassigning[t->nreassigning++];
    memset(r, 0, sizeof(*r));
    r->partition = p;
    memcpy(r->target, target, bytes);
}

int kp_reassign_complete(kp_meta_topic_t *t, int32_t p)
{
    const kp_meta_reassign_t *r = kp_reassign_find(t, p);
    if (!r) return 0;
    memcpy(&t->replicas[(size_t)p * (size_t)t->replication_factor], r->target,
           (size_t)t->replication_factor * sizeof(int32_t));
    return kp_reassign_clear(t, p);
}

int kp_reassign_caught_up(const kp_meta_reassign_t *r, int rf, const kp_partition_state_t *st)
{
    for (int i = 0; i < rf; i++)
        if (!has(st->isr, st->nisr, r->target[i])) return 0;
    return 1;
}

int kp_reassign_validate(const int32_t *target, int n, int rf, kp_id_set_t live, char *msg,
                         size_t msglen)
{
    if (n != rf) {
        snprintf(msg, msglen,
                 "The target has %d replicas but the topic's replication factor is %d: a "
                 "reassignment keeps the replication factor in kpool.",
                 n, rf);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (has(target, i, target[i])) {
            snprintf(msg, msglen, "Broker %d appears twice in the target replicas.", target[i]);
            return -1;
        }
        if (!kp_id_set_has(live, target[i])) {
            snprintf(msg, msglen, "Broker %d is not a live broker of the pool.", target[i]);
            return -1;
        }
    }
    return 0;
}

int kp_reassign_conform(kp_id_set_t replicas, const kp_partition_state_t *cur, kp_id_set_t live,
                        kp_partition_state_t *next)
{
    int32_t isr[KP_REPLICAS_MAX];
    int n = 0;
    for (int i = 0; i < cur->nisr; i++)
        if (kp_id_set_has(replicas, cur->isr[i])) isr[n++] = cur->isr[i];
    if (cur->leader >= 0 && !kp_id_set_has(replicas, cur->leader)) {
        int32_t leader = kp_elect_leader(replicas, (kp_id_set_t){isr, n}, live, 0, NULL);
        if (leader < 0) return 0;
        kp_partition_state_elect(cur, leader, isr, n, next);
        return 1;
    }
    if (n == cur->nisr || n == 0) return 0;
    kp_partition_state_set_isr(cur, isr, n, next);
    return 1;
}
