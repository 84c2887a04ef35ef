/*
 * placement.c — Kafka's replica assignment, leader election and ISR rules as pure functions
 * (placement.h has the contract; tests/unit/test_placement.c checks them against the
 * layouts Kafka's own tests expect).
 */
#include "cluster/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_broker(const void *a, const void *b)
{
    const kp_place_broker_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Kafka's replicaIndex: the j-th follower of a partition whose leader sits at first. */
static int replica_index(int first, int64_t shift, int64_t j, int n)
{
    int s = (int)(1 + (shift + j) % (n - 1));
    return (first + s) % n;
}

int kp_placement_rack_alternated(const kp_place_broker_t *brokers, int nbrokers, int32_t *out)
{
    if (nbrokers <= 0 || nbrokers > KP_PLACEMENT_BROKERS_MAX) return -1;
    kp_place_broker_t *sorted = malloc(nbrokers * sizeof(*sorted));
    const char **racks = malloc(nbrokers * sizeof(*racks));
    int *next = calloc(nbrokers, sizeof(*next));
    if (!sorted || !racks || !next) goto fail;
    memcpy(sorted, brokers, nbrokers * sizeof(*sorted));
    qsort(sorted, nbrokers, sizeof(*sorted), cmp_broker);
    int nracks = 0;
    for (int i = 0; i < nbrokers; i++) {
        if (!sorted[i].rack) goto fail;
        int known = 0;
        for (int r = 0; r < nracks && !known; r++) known = !strcmp(racks[r], sorted[i].rack);
        if (!known) racks[nracks++] = sorted[i].rack;
    }
    qsort(racks, nracks, sizeof(*racks), cmp_str);
    /* next[r]: index in sorted of the next unused broker of rack r (ids ascending) */
    int placed = 0;
    for (int r = 0; placed < nbrokers; r = (r + 1) % nracks) {
        for (int i = next[r]; i < nbrokers; i++) {
            if (strcmp(sorted[i].rack, racks[r]) == 0) {
                out[placed++] = sorted[i].id;
                next[r] = i + 1;
                goto took;
            }
        }
        next[r] = nbrokers;
    took:;
    }
    free(sorted);
    free(racks);
    free(next);
    return 0;
fail:
    free(sorted);
    free(racks);
    free(next);
    return -1;
}

static const char *rack_of(const kp_place_broker_t *brokers, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (brokers[i].id == id) return brokers[i].rack;
    return NULL;
}

int kp_placement_assign(const kp_place_broker_t *brokers, int nbrokers, int32_t npartitions, int rf,
                        int32_t first_partition, int start_index, int replica_shift,
                        int ignore_racks, int32_t *out, char *err, size_t errlen)
{
    if (nbrokers <= 0 || nbrokers > KP_PLACEMENT_BROKERS_MAX) {
        snprintf(err, errlen, "no live brokers to place replicas on");
        return -1;
    }
    if (rf < 1 || rf > KP_REPLICAS_MAX || rf > nbrokers) {
        snprintf(err, errlen, "Replication factor: %d larger than available brokers: %d.", rf,
                 nbrokers);
        return -1;
    }
    if (npartitions < 0 || first_partition < 0 || start_index < 0 || replica_shift < 0) {
        snprintf(err, errlen, "bad placement arguments");
        return -1;
    }
    int with_rack = 0;
    for (int i = 0; i < nbrokers; i++) {
        with_rack += brokers[i].rack != NULL;
        for (int j = 0; j < i; j++) {
            if (brokers[i].id == brokers[j].id) {
                snprintf(err, errlen, "broker id %d is listed twice", brokers[i].id);
                return -1;
            }
        }
    }
    if (with_rack && with_rack != nbrokers && !ignore_racks) {
        snprintf(err, errlen,
                 "Not all brokers have rack information (%d of %d have broker.rack): set it on "
                 "every broker or on none",
                 with_rack, nbrokers);
        return -1;
    }
    int rack_aware = with_rack == nbrokers && !ignore_racks;
    int32_t *arr = malloc(nbrokers * sizeof(*arr));
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int nracks = 0;
    if (rack_aware) {
        kp_placement_rack_alternated(brokers, nbrokers, arr);
        for (int i = 0; i < nbrokers; i++) {
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) seen = !strcmp(brokers[i].rack, brokers[j].rack);
            nracks += !seen;
        }
    } else {
        kp_place_broker_t *sorted = malloc(nbrokers * sizeof(*sorted));
        if (!sorted) {
            free(arr);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(sorted, brokers, nbrokers * sizeof(*sorted));
        qsort(sorted, nbrokers, sizeof(*sorted), cmp_broker);
        for (int i = 0; i < nbrokers; i++) arr[i] = sorted[i].id;
        free(sorted);
    }
    int n = nbrokers;
    int start = start_index % n;
    int64_t shift = replica_shift;
    for (int32_t k = 0; k < npartitions; k++) {
        int64_t pid = (int64_t)first_partition + k;
        if (pid > 0 && pid % n == 0) shift++;
        int first = (int)((pid + start) % n);
        int32_t *row = out + (size_t)k * rf;
        row[0] = arr[first];
        if (!rack_aware) {
            for (int j = 0; j < rf - 1; j++) row[j + 1] = arr[replica_index(first, shift, j, n)];
            continue;
        }
        /* Kafka: skip a broker whose rack already has a replica while some rack has none, and
         * a broker that has one while some broker has none */
        const char *racks_used[KP_REPLICAS_MAX];
        int nracks_used = 1, nrow = 1;
        racks_used[0] = rack_of(brokers, nbrokers, row[0]);
        int64_t kk = 0;
        while (nrow < rf) {
            int32_t b = arr[replica_index(first, shift * nracks, kk, n)];
            kk++;
            const char *rack = rack_of(brokers, nbrokers, b);
            int rack_has = 0, broker_has = 0;
            for (int j = 0; j < nracks_used; j++) rack_has |= !strcmp(racks_used[j], rack);
            for (int j = 0; j < nrow; j++) broker_has |= row[j] == b;
            if ((!rack_has || nracks_used == nracks) && (!broker_has || nrow == n)) {
                row[nrow++] = b;
                if (!rack_has) racks_used[nracks_used++] = rack;
            }
        }
    }
    free(arr);
    return 0;
}

/* ---- election ---- */

int kp_id_set_has(kp_id_set_t s, int32_t id)
{
    for (int i = 0; i < s.n; i++)
        if (s.ids[i] == id) return 1;
    return 0;
}

int32_t kp_elect_leader(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live, int unclean,
                        int *was_unclean)
{
    if (was_unclean) *was_unclean = 0;
    for (int i = 0; i < replicas.n; i++)
        if (kp_id_set_has(live, replicas.ids[i]) && kp_id_set_has(isr, replicas.ids[i]))
            return replicas.ids[i];
    if (!unclean) return -1;
    for (int i = 0; i < replicas.n; i++) {
        if (kp_id_set_has(live, replicas.ids[i])) {
            if (was_unclean) *was_unclean = 1;
            return replicas.ids[i];
        }
    }
    return -1;
}

int32_t kp_elect_leader_shutdown(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live,
                                 kp_id_set_t shutting_down)
{
    for (int i = 0; i < replicas.n; i++) {
        int32_t id = replicas.ids[i];
        if (kp_id_set_has(live, id) && kp_id_set_has(isr, id) && !kp_id_set_has(shutting_down, id))
            return id;
    }
    return -1;
}

int32_t kp_elect_leader_preferred(kp_id_set_t replicas, kp_id_set_t isr, kp_id_set_t live)
{
    if (replicas.n == 0) return -1;
    int32_t id = replicas.ids[0];
    return kp_id_set_has(live, id) && kp_id_set_has(isr, id) ? id : -1;
}

/* ---- ISR ---- */

static const kp_replica_state_t *replica_find(const kp_replica_state_t *r, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (r[i].id == id) return &r[i];
    return NULL;
}

int kp_isr_shrink(kp_id_set_t isr, int32_t leader, const kp_replica_state_t *replicas, int n,
                  int64_t now_ms, int64_t lag_max_ms, int32_t *out)
{
    const kp_replica_state_t *l = replica_find(replicas, n, leader);
    int64_t leader_leo = l ? l->leo : 0;
    int m = 0;
    for (int i = 0; i < isr.n; i++) {
        int32_t id = isr.ids[i];
        const kp_replica_state_t *r = replica_find(replicas, n, id);
        int keep = id == leader;
        if (!keep)
            keep = r && (r->leo == leader_leo || now_ms - r->last_caught_up_ms <= lag_max_ms);
        if (keep) out[m++] = id;
    }
    return m;
}

int kp_isr_expand(kp_id_set_t isr, kp_id_set_t assignment, const kp_replica_state_t *replicas,
                  int n, int64_t hwm, int64_t epoch_start_offset, int32_t *out)
{
    int m = 0;
    for (int i = 0; i < isr.n; i++) out[m++] = isr.ids[i];
    for (int i = 0; i < assignment.n; i++) {
        int32_t id = assignment.ids[i];
        if (kp_id_set_has(isr, id)) continue;
        const kp_replica_state_t *r = replica_find(replicas, n, id);
        if (r && r->leo >= hwm && r->leo >= epoch_start_offset) out[m++] = id;
    }
    return m;
}

int64_t kp_isr_high_watermark(kp_id_set_t isr, const kp_replica_state_t *replicas, int n)
{
    int64_t hwm = -1;
    for (int i = 0; i < isr.n; i++) {
        const kp_replica_state_t *r = replica_find(replicas, n, isr.ids[i]);
        int64_t leo = r ? r->leo : 0;
        if (hwm < 0 || leo < hwm) hwm = leo;
    }
    return hwm < 0 ? 0 : hwm;
}

/* ---- transitions ---- */

static void copy_isr(kp_partition_state_t *next, const int32_t *isr, int nisr)
{
    if (nisr > KP_REPLICAS_MAX) nisr = KP_REPLICAS_MAX;
    if (nisr < 0) nisr = 0;
    memmove(next->isr, isr, nisr * sizeof(*isr));
    next->nisr = nisr;
}

void kp_partition_state_elect(const kp_partition_state_t *cur, int32_t leader, const int32_t *isr,
                              int nisr, kp_partition_state_t *next)
{
    kp_partition_state_t tmp = *cur;
    tmp.leader = leader;
    tmp.leader_epoch = cur->leader_epoch + 1;
    tmp.partition_epoch = cur->partition_epoch + 1;
    copy_isr(&tmp, isr, nisr);
    *next = tmp;
}

void kp_partition_state_set_isr(const kp_partition_state_t *cur, const int32_t *isr, int nisr,
                                kp_partition_state_t *next)
{
    kp_partition_state_t tmp = *cur;
    tmp.partition_epoch = cur->partition_epoch + 1;
    copy_isr(&tmp, isr, nisr);
    *next = tmp;
}
