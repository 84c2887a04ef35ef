/*
 * pool_plan.c — decommission and rebalance plans (see pool_plan.h).
 */
#include "cli/pool_plan.h"

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct work {
    const kp_poolc_snapshot_t *s;
    int32_t (*rows)[KP_POOLC_REPLICAS_MAX]; /* the planned replicas of each partition */
    int *eligible;                          /* the partition may move */
    int *load, *first;                      /* per broker index: replicas, preferred leaders */
    int racks;                              /* every broker has a rack */
} work_t;

static int bidx(const kp_poolc_snapshot_t *s, int32_t id)
{
    for (int i = 0; i < s->nbrokers; i++)
        if (s->brokers[i].id == id) return i;
    return -1;
}

static int row_has(const int32_t *row, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (row[i] == id) return 1;
    return 0;
}

static void work_init(work_t *w, const kp_poolc_snapshot_t *s)
{
    memset(w, 0, sizeof(*w));
    w->s = s;
    w->rows = kp_xcalloc((size_t)s->nparts + 1, sizeof(*w->rows));
    w->eligible = kp_xcalloc((size_t)s->nparts + 1, sizeof(int));
    w->load = kp_xcalloc((size_t)s->nbrokers + 1, sizeof(int));
    w->first = kp_xcalloc((size_t)s->nbrokers + 1, sizeof(int));
    w->racks = s->nbrokers > 0;
    for (int i = 0; i < s->nbrokers; i++) w->racks &= s->brokers[i].rack[0] != 0;
    for (int i = 0; i < s->nparts; i++) {
        const kp_poolc_part_t *p = &s->parts[i];
        memcpy(w->rows[i], p->replicas, sizeof(w->rows[i]));
        int live = 1;
        for (int r = 0; r < p->nreplicas; r++) {
            int b = bidx(s, p->replicas[r]);
            if (b < 0) {
                live = 0;
                continue;
            }
            w->load[b]++;
            if (r == 0) w->first[b]++;
        }
        w->eligible[i] = live && !p->moving && p->nreplicas > 0;
    }
}

static void work_free(work_t *w)
{
    free(w->rows);
    free(w->eligible);
    free(w->load);
    free(w->first);
}

/* Whether broker index to may take the place of replica id from in partition i's row. */
static int rack_ok(const work_t *w, int i, int32_t from, int to)
{
    if (!w->racks) return 1;
    const char *rack = w->s->brokers[to].rack;
    int f = bidx(w->s, from);
    if (f >= 0 && !strcmp(w->s->brokers[f].rack, rack)) return 1;
    for (int r = 0; r < w->s->parts[i].nreplicas; r++) {
        int b = bidx(w->s, w->rows[i][r]);
        if (w->rows[i][r] != from && b >= 0 && !strcmp(w->s->brokers[b].rack, rack)) return 0;
    }
    return 1;
}

/* The moves: every partition whose planned row differs from its replicas. */
static void collect(const work_t *w, kp_plan_t *out)
{
    const kp_poolc_snapshot_t *s = w->s;
    out->moves = kp_xcalloc((size_t)s->nparts + 1, sizeof(*out->moves));
    for (int i = 0; i < s->nparts; i++) {
        const kp_poolc_part_t *p = &s->parts[i];
        if (!memcmp(w->rows[i], p->replicas, (size_t)p->nreplicas * sizeof(int32_t))) continue;
        kp_poolc_move_t *m = &out->moves[out->n++];
        m->topic = p->topic;
        m->partition = p->partition;
        m->ntarget = p->nreplicas;
        memcpy(m->target, w->rows[i], sizeof(m->target));
        for (int r = 0; r < p->nreplicas; r++) {
            if (row_has(p->replicas, p->nreplicas, w->rows[i][r])) continue;
            if (p->bytes >= 0)
                out->bytes += p->bytes;
            else
                out->unknown_bytes++;
        }
    }
}

/* A plan is made from a pool at rest: 1 (err set) while earlier moves are still running. */
static int moves_in_progress(const kp_poolc_snapshot_t *s, char *err, size_t errlen)
{
    if (s->nmoving <= 0) return 0;
    snprintf(err, errlen,
             "%d partition moves are in progress: wait for them (kpool pool status) first",
             s->nmoving);
    return 1;
}

int kp_plan_decommission(const kp_poolc_snapshot_t *s, int32_t broker, kp_plan_t *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (bidx(s, broker) < 0) {
        snprintf(err, errlen, "broker %d is not a live broker of the pool", broker);
        return -1;
    }
    if (moves_in_progress(s, err, errlen)) return -1;
    work_t w;
    work_init(&w, s);
    int rc = 0;
    for (int i = 0; i < s->nparts && rc == 0; i++) {
        const kp_poolc_part_t *p = &s->parts[i];
        for (int r = 0; r < p->nreplicas && rc == 0; r++) {
            if (w.rows[i][r] != broker) continue;
            int best = -1;
            for (int pass = 0; pass < 2 && best < 0; pass++) /* rack-aware first */
                for (int b = 0; b < s->nbrokers; b++) {
                    int32_t id = s->brokers[b].id;
                    if (id == broker || row_has(w.rows[i], p->nreplicas, id)) continue;
                    if (pass == 0 && !rack_ok(&w, i, broker, b)) continue;
                    if (best < 0 || w.load[b] < w.load[best]) best = b;
                }
            if (best < 0) {
                snprintf(err, errlen,
                         "%s-%d: no other live broker can hold a replica (replication factor %d, "
                         "%d live brokers)",
                         p->topic, p->partition, p->nreplicas, s->nbrokers);
                rc = -1;
                break;
            }
            w.rows[i][r] = s->brokers[best].id;
            w.load[best]++;
        }
    }
    if (rc == 0) collect(&w, out);
    work_free(&w);
    return rc;
}

/* Moves replicas from the fullest broker to the emptiest until they differ by at most one. */
static void even_replicas(work_t *w)
{
    const kp_poolc_snapshot_t *s = w->s;
    for (int step = 0; step < s->nparts * KP_POOLC_REPLICAS_MAX; step++) {
        int hi = 0, lo = 0;
        for (int b = 1; b < s->nbrokers; b++) {
            if (w->load[b] > w->load[hi]) hi = b;
            if (w->load[b] < w->load[lo]) lo = b;
        }
        if (w->load[hi] - w->load[lo] <= 1) return;
        int32_t from = s->brokers[hi].id, to = s->brokers[lo].id;
        int pick = -1, slot = -1;
        for (int i = 0; i < s->nparts; i++) {
            const kp_poolc_part_t *p = &s->parts[i];
            if (!w->eligible[i] || row_has(w->rows[i], p->nreplicas, to)) continue;
            for (int r = 0; r < p->nreplicas; r++) {
                if (w->rows[i][r] != from || !rack_ok(w, i, from, lo)) continue;
                if (pick < 0 || p->bytes < s->parts[pick].bytes) {
                    pick = i;
                    slot = r;
                }
            }
        }
        if (pick < 0) return; /* nothing can move between these two: as even as it gets */
        w->rows[pick][slot] = to;
        w->load[hi]--;
        w->load[lo]++;
        if (slot == 0) {
            w->first[hi]--;
            w->first[lo]++;
        }
    }
}

/* Shifts one preferred leadership away from broker index hi along a chain of rows (hi
 * prefers a row holding b1, b1 prefers one holding b2, ... down to a broker with at least
 * two fewer). 1 when it did. */
static int shift_leader(work_t *w, int hi)
{
    const kp_poolc_snapshot_t *s = w->s;
    int nb = s->nbrokers;
    int *via_part = kp_xcalloc((size_t)nb, sizeof(int)),
        *via_broker = kp_xcalloc((size_t)nb, sizeof(int));
    int *queue = kp_xcalloc((size_t)nb, sizeof(int)), *seen = kp_xcalloc((size_t)nb, sizeof(int));
    int head = 0, tail = 0, found = -1;
    queue[tail++] = hi;
    seen[hi] = 1;
    while (head < tail && found < 0) {
        int u = queue[head++];
        for (int i = 0; i < s->nparts && found < 0; i++) {
            if (!w->eligible[i] || w->rows[i][0] != s->brokers[u].id) continue;
            for (int r = 1; r < s->parts[i].nreplicas && found < 0; r++) {
                int v = bidx(s, w->rows[i][r]);
                if (v < 0 || seen[v]) continue;
                seen[v] = 1;
                via_part[v] = i;
                via_broker[v] = u;
                if (w->first[v] <= w->first[hi] - 2)
                    found = v;
                else
                    queue[tail++] = v;
            }
        }
    }
    for (int v = found; v >= 0 && v != hi;) { /* v becomes the preferred leader of the row */
        int i = via_part[v];
        int32_t id = s->brokers[v].id;
        for (int r = 1; r < s->parts[i].nreplicas; r++)
            if (w->rows[i][r] == id) {
                w->rows[i][r] = w->rows[i][0];
                w->rows[i][0] = id;
            }
        v = via_broker[v];
    }
    if (found >= 0) {
        w->first[hi]--;
        w->first[found]++;
    }
    free(via_part);
    free(via_broker);
    free(queue);
    free(seen);
    return found >= 0;
}

static void even_leaders(work_t *w)
{
    const kp_poolc_snapshot_t *s = w->s;
    for (int step = 0; step < s->nparts * 2 + 1; step++) {
        int hi = -1; /* the broker with most preferred leaderships that can shed one */
        int *tried = kp_xcalloc((size_t)s->nbrokers + 1, sizeof(int)), moved = 0;
        for (int attempt = 0; attempt < s->nbrokers && !moved; attempt++) {
            hi = -1;
            for (int b = 0; b < s->nbrokers; b++)
                if (!tried[b] && (hi < 0 || w->first[b] > w->first[hi])) hi = b;
            if (hi < 0) break;
            tried[hi] = 1;
            moved = shift_leader(w, hi);
        }
        free(tried);
        if (!moved) return;
    }
}

int kp_plan_rebalance(const kp_poolc_snapshot_t *s, kp_plan_t *out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    memset(out, 0, sizeof(*out));
    work_t w;
    work_init(&w, s);
    if (s->nbrokers > 0) {
        even_replicas(&w);
        even_leaders(&w);
    }
    collect(&w, out);
    work_free(&w);
    return 0;
}

int kp_plan_add_broker(const kp_poolc_snapshot_t *s, int32_t broker, kp_plan_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int nb = bidx(s, broker);
    if (nb < 0) {
        snprintf(err, errlen,
                 "broker %d is not a live broker of the pool: start it with the pool's "
                 "metadata.etcd.endpoints and prefix first",
                 broker);
        return -1;
    }
    if (moves_in_progress(s, err, errlen)) return -1;
    work_t w;
    work_init(&w, s);
    /* replicas: the cheapest one of the fullest broker that can give one, onto the new
     * broker, until no broker holds two more than it */
    for (int step = 0; step < s->nparts * KP_POOLC_REPLICAS_MAX; step++) {
        int pick = -1, slot = -1, from = -1;
        for (int b = 0; b < s->nbrokers; b++) {
            if (b == nb || w.load[b] - w.load[nb] <= 1) continue;
            if (from >= 0 && w.load[b] < w.load[from]) continue;
            for (int i = 0; i < s->nparts; i++) {
                const kp_poolc_part_t *p = &s->parts[i];
                if (!w.eligible[i] || row_has(w.rows[i], p->nreplicas, broker)) continue;
                for (int r = 0; r < p->nreplicas; r++) {
                    if (w.rows[i][r] != s->brokers[b].id || !rack_ok(&w, i, w.rows[i][r], nb))
                        continue;
                    if (from != b || p->bytes < s->parts[pick].bytes) {
                        pick = i;
                        slot = r;
                        from = b;
                    }
                }
            }
        }
        if (pick < 0) break;
        if (slot == 0) {
            w.first[from]--;
            w.first[nb]++;
        }
        w.rows[pick][slot] = broker;
        w.load[from]--;
        w.load[nb]++;
    }
    /* preferred leaders: rows holding the new broker put it first while the one they
     * prefer now has two more than it (a reorder: nothing is copied for it) */
    for (int moved = 1; moved;) {
        moved = 0;
        for (int i = 0; i < s->nparts; i++) {
            const kp_poolc_part_t *p = &s->parts[i];
            int f = bidx(s, w.rows[i][0]);
            if (!w.eligible[i] || f < 0 || f == nb || w.first[f] - w.first[nb] <= 1) continue;
            for (int r = 1; r < p->nreplicas; r++) {
                if (w.rows[i][r] != broker) continue;
                w.rows[i][r] = w.rows[i][0];
                w.rows[i][0] = broker;
                w.first[f]--;
                w.first[nb]++;
                moved = 1;
                break;
            }
        }
    }
    collect(&w, out);
    work_free(&w);
    return 0;
}

void kp_plan_free(kp_plan_t *p)
{
    free(p->moves);
    memset(p, 0, sizeof(*p));
}
