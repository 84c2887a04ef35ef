/*
 * partition.c — the partition layer (see partition.h): the standalone policy, and in a
 * replicated pool the leader's bookkeeping (followers' progress, high watermark = min over
 * the ISR, acks=all waiters, ISR shrink/expand proposals) and the role changes the
 * metadata store's partition state asks for.
 *
 * Lock order: repl->lock, then the log's lock (kp_log_* calls). Waiter callbacks and the
 * high-watermark callback run with neither held.
 */
#include "replication/partition.h"

#include "core/buf.h"
#include "core/logging.h"
#include "protocol/errors.h"
#include "storage/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The committed end of the local log: the fsynced end (durable) or the LEO (page cache). */
static int64_t local_end(kp_partition_t *p)
{
    int64_t start, hwm, leo;
    kp_log_offsets(p->log, &start, &hwm, &leo);
    return hwm;
}

int16_t kp_partition_commit_error(int err)
{
    switch (err) {
    case 0:
        return 0;
    case KP_COMMIT_NOT_LEADER:
        return KERR_NOT_LEADER_OR_FOLLOWER;
    case KP_COMMIT_AFTER_APPEND:
        return KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    default:
        return KERR_KAFKA_STORAGE_ERROR;
    }
}

static void complete(kp_flush_waiter_t *done, int err)
{
    while (done) {
        kp_flush_waiter_t *next = done->next;
        done->done(done, err);
        done = next;
    }
}

static kp_replica_state_t *replica(kp_repl_t *r, int32_t id)
{
    for (int i = 0; i < r->nreplicas; i++)
        if (r->rs[i].id == id) return &r->rs[i];
    return NULL;
}

/* Leader: recomputes the HWM from the ISR; moves satisfied waiters to *done (with *err).
 * Returns 1 when the HWM advanced. @locks: r->lock */
static int leader_recompute(kp_partition_t *p, kp_repl_t *r, kp_flush_waiter_t **done, int *err)
{
    kp_replica_state_t *me = replica(r, r->self);
    if (me) me->leo = local_end(p);
    kp_id_set_t isr = {r->isr, r->nisr};
    int64_t h = kp_isr_high_watermark(isr, r->rs, r->nreplicas);
    int advanced = 0;
    if (h > r->hwm) {
        r->hwm = h;
        advanced = 1;
    }
    *err = r->nisr < r->min_insync ? KP_COMMIT_AFTER_APPEND : 0;
    kp_flush_waiter_t **pp = &r->waiters;
    while (*pp) {
        kp_flush_waiter_t *w = *pp;
        if (r->hwm > w->offset) {
            *pp = w->next;
            w->next = *done;
            *done = w;
        } else {
            pp = &w->next;
        }
    }
    return advanced;
}

/* Called by the log after its committed end advanced (fsync, or an append in page-cache
 * mode): a leader's own progress counts toward the HWM. The callback wakes parked fetches
 * on a leader even when the replicated HWM stayed: in page-cache mode its followers' fetches
 * wait for exactly this (new data to copy; in durable mode kp_partition_append wakes them),
 * and without the wake each replication round waited out the follower's max wait (500 ms) —
 * acks=all ran at ~2,000 msg/s. */
static void on_log_hwm(kp_log_t *log, void *arg)
{
    kp_partition_t *p = arg;
    kp_repl_t *r = p->repl;
    int advanced = 1, err = 0;
    kp_flush_waiter_t *done = NULL;
    if (r) {
        pthread_mutex_lock(&r->lock);
        advanced = r->role == KP_ROLE_LEADER;
        if (advanced) leader_recompute(p, r, &done, &err);
        pthread_mutex_unlock(&r->lock);
        complete(done, err);
    }
    if (advanced && p->hwm_fn) p->hwm_fn(p, p->hwm_arg);
}

void kp_partition_set_hwm_callback(kp_partition_t *p, kp_partition_hwm_fn fn, void *arg)
{
    p->hwm_fn = fn;
    p->hwm_arg = arg;
    kp_log_set_hwm_callback(p->log, on_log_hwm, p);
}

int kp_partition_isr_size(kp_partition_t *p)
{
    kp_repl_t *r = p->repl;
    if (!r) return 1; /* standalone: this broker is the only replica */
    pthread_mutex_lock(&r->lock);
    int n = r->nisr;
    pthread_mutex_unlock(&r->lock);
    return n;
}

int16_t kp_partition_check_produce(kp_partition_t *p, int16_t acks, int min_insync)
{
    kp_repl_t *r = p->repl;
    if (kp_log_is_offline(p->log)) return KERR_KAFKA_STORAGE_ERROR;
    if (!r) return acks == -1 && min_insync > 1 ? KERR_NOT_ENOUGH_REPLICAS : 0;
    pthread_mutex_lock(&r->lock);
    int16_t err = 0;
    r->min_insync = min_insync;
    if (r->role != KP_ROLE_LEADER)
        err = KERR_NOT_LEADER_OR_FOLLOWER;
    else if (acks == -1 && r->nisr < min_insync)
        err = KERR_NOT_ENOUGH_REPLICAS;
    pthread_mutex_unlock(&r->lock);
    return err;
}

void kp_partition_append(kp_partition_t *p, uint8_t *batch, size_t len, kp_batch_info_t *info,
                         int64_t now_ms, kp_append_result_t *res)
{
    kp_log_append(p->log, batch, len, info, now_ms, res);
    /* durable mode: the committed end moves only at the fsync (on_log_hwm), but followers
     * copy what is written (kp_log_read_replica): wake their parked fetches now, so that
     * their fsyncs run alongside ours */
    if (res->status == KP_APPEND_OK && p->repl && p->log->cfg.durable && p->hwm_fn)
        p->hwm_fn(p, p->hwm_arg);
}

int kp_partition_wait_local(kp_partition_t *p, int64_t last_offset, kp_flush_waiter_t *w)
{
    if (!p->log->cfg.durable) return 0;
    w->offset = last_offset;
    kp_log_wait_flush(p->log, w);
    return 1;
}

int kp_partition_wait_committed(kp_partition_t *p, int64_t last_offset, kp_flush_waiter_t *w)
{
    kp_repl_t *r = p->repl;
    w->offset = last_offset;
    if (!r) {
        /* standalone: committed = fsynced (durable) or appended (page cache) */
        if (!p->log->cfg.durable) return 0;
        kp_log_wait_flush(p->log, w);
        return 1;
    }
    pthread_mutex_lock(&r->lock);
    if (kp_log_is_offline(p->log)) { /* kp_partition_storage_failed ran or runs after us */
        pthread_mutex_unlock(&r->lock);
        w->done(w, EIO);
        return 1;
    }
    if (r->role != KP_ROLE_LEADER) {
        pthread_mutex_unlock(&r->lock);
        w->done(w, KP_COMMIT_NOT_LEADER);
        return 1;
    }
    int err = 0;
    kp_flush_waiter_t *done = NULL;
    w->next = r->waiters;
    r->waiters = w;
    int advanced = leader_recompute(p, r, &done, &err); /* a single-replica ISR commits now */
    pthread_mutex_unlock(&r->lock);
    complete(done, err);
    if (advanced && p->hwm_fn) p->hwm_fn(p, p->hwm_arg);
    return 1;
}

int kp_partition_cancel_wait(kp_partition_t *p, kp_flush_waiter_t *w)
{
    kp_repl_t *r = p->repl;
    if (!r) return 0;
    pthread_mutex_lock(&r->lock);
    for (kp_flush_waiter_t **pp = &r->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            pthread_mutex_unlock(&r->lock);
            return 1;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int64_t repl_hwm(kp_repl_t *r)
{
    pthread_mutex_lock(&r->lock);
    int64_t h = r->hwm;
    pthread_mutex_unlock(&r->lock);
    return h;
}

void kp_partition_read(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                       kp_partition_read_t *out)
{
    kp_partition_read_isolated(p, offset, max_bytes, min_one, 0, out);
}

void kp_partition_read_isolated(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                                int committed, kp_partition_read_t *out)
{
    if (!p->repl) {
        kp_log_read_isolated(p->log, offset, max_bytes, min_one, committed, out);
        return;
    }
    /* the replicated HWM bounds the read, and the LSO (min(first unstable, local committed
     * end) in storage) with it: LSO <= HWM */
    int64_t hwm = repl_hwm(p->repl);
    int64_t lso = kp_log_last_stable_offset(p->log);
    if (lso > hwm) lso = hwm;
    kp_log_read_upto(p->log, offset, max_bytes, min_one, committed ? lso : hwm, out);
    if (out->high_watermark < hwm) {
        /* capped at lso by the bounded read: report the HWM itself (never above the local
         * committed end) */
        int64_t start, lhwm, leo;
        kp_log_offsets(p->log, &start, &lhwm, &leo);
        out->high_watermark = lhwm < hwm ? lhwm : hwm;
    }
    if (out->last_stable_offset > out->high_watermark)
        out->last_stable_offset = out->high_watermark;
    if (out->last_stable_offset > lso) out->last_stable_offset = lso;
}

size_t kp_partition_aborted_txns(kp_partition_t *p, int64_t from, int64_t upto,
                                 kp_aborted_txn_t **out)
{
    return kp_log_aborted_txns(p->log, from, upto, out);
}

int64_t kp_partition_last_stable_offset(kp_partition_t *p)
{
    int64_t lso = kp_log_last_stable_offset(p->log);
    if (p->repl) {
        int64_t hwm = kp_partition_high_watermark(p);
        if (lso > hwm) lso = hwm;
    }
    return lso;
}

void kp_partition_offsets(kp_partition_t *p, int64_t *log_start, int64_t *hwm, int64_t *leo)
{
    kp_log_offsets(p->log, log_start, hwm, leo);
    if (p->repl) {
        int64_t h = repl_hwm(p->repl);
        if (h < *hwm) *hwm = h;
    }
}

int64_t kp_partition_high_watermark(kp_partition_t *p)
{
    int64_t start, hwm, leo;
    kp_partition_offsets(p, &start, &hwm, &leo);
    return hwm;
}

int64_t kp_partition_offset_for_time(kp_partition_t *p, int64_t ts, int64_t *ts_out)
{
    if (!p->repl) return kp_log_offset_for_time(p->log, ts, ts_out);
    int64_t hwm = kp_partition_high_watermark(p);
    if (ts == -1) {
        *ts_out = -1;
        return hwm;
    }
    int64_t off = kp_log_offset_for_time(p->log, ts, ts_out);
    if (ts != -2 && off >= hwm) {
        *ts_out = -1;
        return -1;
    }
    return off;
}

int32_t kp_partition_leader_epoch(kp_partition_t *p)
{
    kp_repl_t *r = p->repl;
    if (!r) return p->log->leader_epoch;
    pthread_mutex_lock(&r->lock);
    int32_t e = r->leader_epoch;
    pthread_mutex_unlock(&r->lock);
    return e;
}

int kp_partition_delete_records(kp_partition_t *p, int64_t offset, int64_t *low_watermark)
{
    kp_repl_t *r = p->repl;
    if (r) {
        /* a leader in a pool: the bound is the replicated high watermark (Kafka answers
         * OFFSET_OUT_OF_RANGE above it), not the local committed end */
        int64_t hwm = repl_hwm(r);
        if (offset == -1) offset = hwm;
        if (offset > hwm) {
            int64_t start, local, leo;
            kp_log_offsets(p->log, &start, &local, &leo);
            *low_watermark = start;
            return KP_RETENTION_OUT_OF_RANGE;
        }
    }
    return kp_log_delete_records(p->log, offset, low_watermark);
}

/* ---- a partition's life and this broker's copy ---- */

void kp_partition_config_defaults(kp_partition_config_t *cfg)
{
    kp_log_config_defaults(cfg);
}

kp_partition_t *kp_partition_open(struct kp_topic *topic, int32_t index, const char *dir,
                                  const kp_partition_config_t *cfg, int64_t now_ms)
{
    kp_log_t *log = kp_log_open(dir, cfg, now_ms);
    if (!log) return NULL;
    kp_partition_t *p = kp_xcalloc(1, sizeof(*p));
    p->topic = topic;
    p->index = index;
    p->log = log;
    return p;
}

void kp_partition_close(kp_partition_t *p, int destroy)
{
    if (destroy)
        kp_log_destroy(p->log);
    else
        kp_log_close(p->log);
    kp_partition_repl_free(p);
    free(p);
}

void kp_partition_set_config(kp_partition_t *p, const kp_partition_config_t *cfg)
{
    kp_log_set_config(p->log, cfg);
}

int kp_partition_rename_dir(kp_partition_t *p, const char *new_dir)
{
    return kp_log_rename_dir(p->log, new_dir);
}

void kp_partition_wait_flush(kp_partition_t *p, kp_flush_waiter_t *w)
{
    kp_log_wait_flush(p->log, w);
}

void kp_partition_log_offsets(kp_partition_t *p, int64_t *log_start, int64_t *local_end,
                              int64_t *leo)
{
    kp_log_offsets(p->log, log_start, local_end, leo);
}

void kp_partition_set_failure_hook(kp_partition_failure_fn fn, void *arg)
{
    kp_log_set_failure_hook(fn, arg);
}

void kp_partition_fail_all(void)
{
    kp_log_fail_all();
}

int kp_partition_is_offline(const kp_partition_t *p)
{
    return kp_log_is_offline(p->log);
}

int32_t kp_partition_last_epoch(kp_partition_t *p)
{
    return kp_log_last_epoch(p->log);
}

int kp_partition_scan(kp_partition_t *p, int64_t from, kp_batch_fn fn, void *arg)
{
    return kp_log_scan(p->log, from, fn, arg);
}

int64_t kp_partition_size_bytes(kp_partition_t *p)
{
    return kp_log_size_bytes(p->log);
}

size_t kp_partition_producers(kp_partition_t *p, kp_pstate_entry_t **out)
{
    return kp_log_producers(p->log, out);
}

int kp_partition_enforce_retention(kp_partition_t *p, const kp_retention_t *r, int64_t now_ms)
{
    return kp_log_enforce_retention(p->log, r, now_ms);
}

int kp_partitions_flush_interval_pass(int64_t now_mono_ms, int *queued)
{
    return kp_log_flush_interval_pass(now_mono_ms, queued);
}

/* ---- replicated pools ---- */

void kp_partition_repl_init(kp_partition_t *p, int32_t self)
{
    if (p->repl) return;
    kp_repl_t *r = kp_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->self = self;
    r->leader = -1;
    r->leader_epoch = -1;
    r->min_insync = 1;
    r->fetch_epoch = -1;
    r->leader_hwm = -1;
    p->repl = r;
}

void kp_partition_repl_free(kp_partition_t *p)
{
    kp_repl_t *r = p->repl;
    if (!r) return;
    kp_flush_waiter_t *done = r->waiters;
    r->waiters = NULL;
    complete(done, ESHUTDOWN);
    pthread_mutex_destroy(&r->lock);
    free(r);
    p->repl = NULL;
}

static int has(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

void kp_partition_apply_state(kp_partition_t *p, const int32_t *replicas, int nreplicas,
                              const kp_partition_state_t *st, int64_t version, int64_t now_ms)
{
    kp_repl_t *r = p->repl;
    if (!r) return;
    if (nreplicas > KP_REPLICAS_MAX) nreplicas = KP_REPLICAS_MAX;
    kp_flush_waiter_t *failed = NULL, *done = NULL;
    int err = 0, advanced = 0;
    pthread_mutex_lock(&r->lock);
    if (version && version < r->version) { /* an older state delivered late */
        pthread_mutex_unlock(&r->lock);
        return;
    }
    int role = st->leader == r->self                ? KP_ROLE_LEADER
               : !has(replicas, nreplicas, r->self) ? KP_ROLE_NONE
               : st->leader >= 0                    ? KP_ROLE_FOLLOWER
                                                    : KP_ROLE_OFFLINE;
    int new_epoch = st->leader_epoch != r->leader_epoch;
    if (r->role == KP_ROLE_LEADER && (role != KP_ROLE_LEADER || new_epoch)) {
        failed = r->waiters; /* acks=all pending under the old leadership */
        r->waiters = NULL;
    }
    memcpy(r->replicas, replicas, (size_t)nreplicas * sizeof(*replicas));
    r->nreplicas = nreplicas;
    memcpy(r->isr, st->isr, (size_t)st->nisr * sizeof(*st->isr));
    r->nisr = st->nisr;
    r->version = version;
    r->partition_epoch = st->partition_epoch;
    if (role == KP_ROLE_LEADER && (r->role != KP_ROLE_LEADER || new_epoch)) {
        kp_log_set_leader_epoch(p->log, st->leader_epoch);
        int64_t start, hwm, leo;
        kp_log_offsets(p->log, &start, &hwm, &leo);
        r->epoch_start = leo;
        /* the others start at 0: the high watermark waits for their first fetch */
        for (int i = 0; i < nreplicas; i++)
            r->rs[i] = (kp_replica_state_t){.id = replicas[i],
                                            .leo = replicas[i] == r->self ? hwm : 0,
                                            .last_caught_up_ms = now_ms,
                                            .fetch_offset = -1};
        if (r->hwm > hwm) r->hwm = hwm;
        kp_info("replication", "%s: leader, epoch %d, from offset %" PRId64, p->log->dir,
                st->leader_epoch, leo);
    } else if (role == KP_ROLE_FOLLOWER && (r->role != KP_ROLE_FOLLOWER || new_epoch)) {
        kp_info("replication", "%s: follower of broker %d, epoch %d", p->log->dir, st->leader,
                st->leader_epoch);
    } else if (role == KP_ROLE_LEADER) {
        /* same leadership, new assignment or ISR: keep what is known of each replica */
        kp_replica_state_t old[KP_REPLICAS_MAX];
        int nold = r->nreplicas;
        memcpy(old, r->rs, sizeof(old));
        for (int i = 0; i < nreplicas; i++) {
            r->rs[i] = (kp_replica_state_t){
                .id = replicas[i], .leo = 0, .last_caught_up_ms = now_ms, .fetch_offset = -1};
            for (int j = 0; j < nold; j++)
                if (old[j].id == replicas[i]) r->rs[i] = old[j];
        }
    }
    /* A replica outside the ISR is unknown (-1) until it fetches: only a fetch can take it
     * into the ISR (Kafka's isFollowerInSync runs on the follower's fetch). One the controller
     * took out (its broker died) has an end offset that may still reach an idle partition's
     * high watermark: forgotten, so that it joins again by fetching, not from what it fetched
     * before it died. */
    if (role == KP_ROLE_LEADER)
        for (int i = 0; i < nreplicas; i++)
            if (r->rs[i].id != r->self && !has(st->isr, st->nisr, r->rs[i].id)) r->rs[i].leo = -1;
    if (role != r->role || new_epoch) r->leader_hwm = -1; /* none heard from this leader yet */
    r->role = role;
    r->leader = st->leader;
    r->leader_epoch = st->leader_epoch;
    if (role == KP_ROLE_LEADER) advanced = leader_recompute(p, r, &done, &err);
    pthread_mutex_unlock(&r->lock);
    complete(failed, KP_COMMIT_NOT_LEADER);
    complete(done, err);
    if ((advanced || failed) && p->hwm_fn) p->hwm_fn(p, p->hwm_arg);
}

int16_t kp_partition_check_leader(kp_partition_t *p, int32_t current_epoch)
{
    kp_repl_t *r = p->repl;
    /* as Kafka's partition in an offline log directory, whatever its role */
    if (kp_log_is_offline(p->log)) return KERR_KAFKA_STORAGE_ERROR;
    if (!r) return 0;
    pthread_mutex_lock(&r->lock);
    int16_t err = 0;
    if (current_epoch >= 0 && current_epoch < r->leader_epoch)
        err = KERR_FENCED_LEADER_EPOCH;
    else if (current_epoch > r->leader_epoch)
        err = KERR_UNKNOWN_LEADER_EPOCH;
    else if (r->role != KP_ROLE_LEADER)
        err = KERR_NOT_LEADER_OR_FOLLOWER;
    pthread_mutex_unlock(&r->lock);
    return err;
}

int16_t kp_partition_replica_fetch(kp_partition_t *p, int32_t replica_id, int32_t current_epoch,
                                   int64_t fetch_offset, int64_t max_bytes, int64_t now_ms,
                                   kp_partition_read_t *out)
{
    memset(out, 0, sizeof(*out));
    out->high_watermark = out->log_start_offset = -1;
    kp_repl_t *r = p->repl;
    if (!r) return KERR_NOT_LEADER_OR_FOLLOWER; /* a standalone broker has no followers */
    int16_t err = kp_partition_check_leader(p, current_epoch);
    if (err) return err;
    kp_flush_waiter_t *done = NULL;
    int werr = 0;
    pthread_mutex_lock(&r->lock);
    kp_replica_state_t *rs = replica(r, replica_id);
    if (!rs || r->role != KP_ROLE_LEADER) {
        pthread_mutex_unlock(&r->lock);
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    int64_t end = local_end(p);
    rs->leo = rs->fetch_offset = fetch_offset;
    /* Caught up (Kafka's Replica.updateFetchState): at the end now, as of now; at least where
     * the end was at its previous fetch, as of that fetch. Under a producer that appends
     * during every round trip the end moves between any two fetches, and with the first
     * rule alone a follower keeping pace was never caught up: it left the ISR once
     * replica.lag.time.max.ms of such load had passed. */
    if (fetch_offset >= end)
        rs->last_caught_up_ms = now_ms;
    else if (rs->prev_fetch_ms > 0 && fetch_offset >= rs->prev_fetch_end &&
             rs->prev_fetch_ms > rs->last_caught_up_ms)
        rs->last_caught_up_ms = rs->prev_fetch_ms;
    rs->prev_fetch_end = end;
    rs->prev_fetch_ms = now_ms;
    int advanced = leader_recompute(p, r, &done, &werr);
    int64_t hwm = r->hwm;
    pthread_mutex_unlock(&r->lock);
    complete(done, werr);
    if (advanced && p->hwm_fn) p->hwm_fn(p, p->hwm_arg);
    kp_log_read_replica(p->log, fetch_offset, max_bytes, out);
    out->high_watermark = hwm;
    if (out->error == KP_READ_OUT_OF_RANGE) {
        /* the follower needs our log start to tell "behind what we still have" (start over
         * there) from "past our end" (truncate): Kafka's follower asks with ListOffsets */
        int64_t start, local, leo;
        kp_log_offsets(p->log, &start, &local, &leo);
        out->log_start_offset = start;
        return KERR_OFFSET_OUT_OF_RANGE;
    }
    if (out->error) return KERR_KAFKA_STORAGE_ERROR;
    return 0;
}

void kp_partition_set_throttled(kp_partition_t *p, const int32_t *ids, int n)
{
    kp_repl_t *r = p->repl;
    if (!r) return;
    if (n > KP_REPLICAS_MAX) n = KP_REPLICAS_MAX;
    pthread_mutex_lock(&r->lock);
    memcpy(r->throttled, ids, (size_t)(n > 0 ? n : 0) * sizeof(*ids));
    r->nthrottled = n > 0 ? n : 0;
    pthread_mutex_unlock(&r->lock);
}

int kp_partition_replica_throttled(kp_partition_t *p, int32_t replica)
{
    kp_repl_t *r = p->repl;
    if (!r) return 0;
    int adding = 0, in_sync = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nthrottled; i++) adding |= r->throttled[i] == replica;
    for (int i = 0; i < r->nisr; i++) in_sync |= r->isr[i] == replica;
    pthread_mutex_unlock(&r->lock);
    return adding && !in_sync;
}

int16_t kp_partition_epoch_end(kp_partition_t *p, int32_t current_epoch, int32_t epoch,
                               int32_t *end_epoch, int64_t *end_offset)
{
    *end_epoch = -1;
    *end_offset = -1;
    int16_t err = kp_partition_check_leader(p, current_epoch);
    if (err) return err;
    kp_log_epoch_end(p->log, epoch, end_epoch, end_offset);
    return 0;
}

int kp_partition_isr_update(kp_partition_t *p, int64_t now_ms, int64_t lag_max_ms,
                            kp_partition_state_t *next, int64_t *version)
{
    kp_repl_t *r = p->repl;
    if (!r) return 0;
    pthread_mutex_lock(&r->lock);
    int change = 0;
    if (r->role == KP_ROLE_LEADER && now_ms - r->last_isr_attempt_ms >= 500) {
        kp_replica_state_t *me = replica(r, r->self);
        if (me) {
            me->leo = local_end(p);
            me->last_caught_up_ms = now_ms;
        }
        kp_partition_state_t cur = {.leader = r->leader,
                                    .leader_epoch = r->leader_epoch,
                                    .partition_epoch = r->partition_epoch,
                                    .nisr = r->nisr};
        memcpy(cur.isr, r->isr, (size_t)r->nisr * sizeof(*r->isr));
        int32_t out[KP_REPLICAS_MAX];
        kp_id_set_t isr = {r->isr, r->nisr}, assignment = {r->replicas, r->nreplicas};
        int n = kp_isr_shrink(isr, r->self, r->rs, r->nreplicas, now_ms, lag_max_ms, out);
        if (n == r->nisr)
            n = kp_isr_expand(isr, assignment, r->rs, r->nreplicas, r->hwm, r->epoch_start, out);
        if (n != r->nisr) {
            kp_partition_state_set_isr(&cur, out, n, next);
            *version = r->version;
            r->last_isr_attempt_ms = now_ms;
            change = 1;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return change;
}

void kp_partition_storage_failed(kp_partition_t *p)
{
    kp_repl_t *r = p->repl;
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    kp_flush_waiter_t *done = r->waiters;
    r->waiters = NULL;
    pthread_mutex_unlock(&r->lock);
    complete(done, EIO);
}

void kp_partition_view(kp_partition_t *p, kp_repl_view_t *v)
{
    kp_repl_t *r = p->repl;
    memset(v, 0, sizeof(*v));
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    v->role = r->role;
    v->leader = r->leader;
    v->leader_epoch = r->leader_epoch;
    v->nreplicas = r->nreplicas;
    memcpy(v->replicas, r->replicas, (size_t)r->nreplicas * sizeof(*r->replicas));
    v->nisr = r->nisr;
    memcpy(v->isr, r->isr, (size_t)r->nisr * sizeof(*r->isr));
    pthread_mutex_unlock(&r->lock);
}

int kp_partition_replica_lags(kp_partition_t *p, int64_t now_ms, kp_replica_lag_t *out)
{
    kp_repl_t *r = p->repl;
    if (!r) return 0;
    int n = 0;
    pthread_mutex_lock(&r->lock);
    if (r->role == KP_ROLE_LEADER) {
        int64_t start, committed, leo;
        kp_log_offsets(p->log, &start, &committed, &leo);
        for (int i = 0; i < r->nreplicas; i++) {
            const kp_replica_state_t *rs = &r->rs[i];
            if (rs->id == r->self) continue;
            /* not fetched under this leadership: all of the log is ahead of it, as far as
             * the leader knows */
            int64_t at = rs->fetch_offset >= 0 ? rs->fetch_offset : start;
            /* at the end now is caught up now (Kafka's isCaughtUp), however long its
             * fetch has been parked here waiting for data */
            int64_t since = leo > at ? now_ms - rs->last_caught_up_ms : 0;
            out[n++] = (kp_replica_lag_t){.id = rs->id,
                                          .messages = leo > at ? leo - at : 0,
                                          .since_caught_up_ms = since > 0 ? since : 0};
        }
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

int64_t kp_partition_fetcher_lag(kp_partition_t *p)
{
    kp_repl_t *r = p->repl;
    if (!r) return -1;
    int64_t lag = -1;
    pthread_mutex_lock(&r->lock);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_hwm >= 0) {
        int64_t start, committed, leo;
        kp_log_offsets(p->log, &start, &committed, &leo);
        lag = r->leader_hwm > leo ? r->leader_hwm - leo : 0;
    }
    pthread_mutex_unlock(&r->lock);
    return lag;
}

void kp_partition_follower_progress(kp_partition_t *p, int32_t leader_epoch, int64_t leader_hwm)
{
    kp_repl_t *r = p->repl;
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_epoch == leader_epoch) {
        int64_t end = local_end(p);
        r->hwm = leader_hwm < end ? leader_hwm : end;
        r->leader_hwm = leader_hwm;
    }
    pthread_mutex_unlock(&r->lock);
}

void kp_partition_append_replica(kp_partition_t *p, int32_t leader_epoch, const uint8_t *batch,
                                 size_t len, const kp_batch_info_t *info, int64_t now_ms,
                                 kp_append_result_t *res)
{
    kp_repl_t *r = p->repl;
    memset(res, 0, sizeof(*res));
    res->status = KP_APPEND_OUT_OF_ORDER;
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_epoch == leader_epoch)
        kp_log_append_replica(p->log, batch, len, info, now_ms, res);
    pthread_mutex_unlock(&r->lock);
}

int kp_partition_restart_at(kp_partition_t *p, int32_t leader_epoch, int64_t leader_start,
                            int64_t now_ms)
{
    kp_repl_t *r = p->repl;
    if (!r) return -1;
    int rc = -1;
    pthread_mutex_lock(&r->lock);
    int64_t start, hwm, leo;
    kp_log_offsets(p->log, &start, &hwm, &leo);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_epoch == leader_epoch &&
        (leader_start > leo || start == leo))
        rc = kp_log_restart_at(p->log, leader_start, now_ms);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void kp_partition_follower_log_start(kp_partition_t *p, int32_t leader_epoch, int64_t leader_start)
{
    kp_repl_t *r = p->repl;
    if (!r || leader_start <= 0) return;
    pthread_mutex_lock(&r->lock);
    int64_t start, hwm, leo;
    kp_log_offsets(p->log, &start, &hwm, &leo);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_epoch == leader_epoch && leader_start > start) {
        int64_t low;
        if (kp_log_delete_records(p->log, leader_start < hwm ? leader_start : hwm, &low) != 0)
            kp_warn("replication", "%s: cannot move the log start to the leader's %" PRId64,
                    p->log->dir, leader_start);
    }
    pthread_mutex_unlock(&r->lock);
}

int64_t kp_partition_truncate(kp_partition_t *p, int32_t leader_epoch, int64_t offset,
                              int64_t now_ms)
{
    kp_repl_t *r = p->repl;
    if (!r) return -1;
    int64_t leo = -1;
    pthread_mutex_lock(&r->lock);
    if (r->role == KP_ROLE_FOLLOWER && r->leader_epoch == leader_epoch)
        leo = kp_log_truncate(p->log, offset, now_ms);
    pthread_mutex_unlock(&r->lock);
    return leo;
}
