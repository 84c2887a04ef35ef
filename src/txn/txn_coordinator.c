/*
 * txn_coordinator.c — the transaction coordinator (txn_coordinator.h): thread, state machine,
 * __transaction_state writes and replay, markers, timeouts.
 *
 * @locality: every txn_t and the map live on the coordinator's thread (replay: the starting
 * thread, before the coordinator runs). Log appends are thread-safe; flush completions come
 * back here through kp_loop_post.
 */
#include "txn/txn_coordinator.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/hmap.h"
#include "core/logging.h"
#include "group/coordinator.h"
#include "net/loop.h"
#include "protocol/errors.h"
#include "replication/partition.h"
#include "storage/log_scan.h"
#include "storage/records.h"
#include "storage/txn_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OFFSETS_TOPIC "__consumer_offsets"

typedef struct txn_part {
    char *topic;
    int32_t partition;
} txn_part_t;

typedef struct txn txn_t;
typedef void (*txn_then_fn)(kp_txn_coord_t *c, txn_t *t, int err);

struct txn {
    char *id;
    int32_t log_partition;
    int64_t producer_id;
    int16_t epoch;
    /* KIP-360 (InitProducerId v3+), in memory only as in Kafka: the epoch before the last
     * bump asked for by the producer itself (-1 after any other bump: a retry of that bump
     * gets the same epoch again), and the producer id before the last rotation (a retry of
     * a rotation that exhausted the epochs is not fenced) */
    int16_t last_epoch;
    int64_t prev_producer_id;
    int32_t timeout_ms;
    int status;
    txn_part_t *parts;
    int nparts, parts_cap;
    int64_t start_ms, last_update_ms;
    int busy;             /* a write or an end is in flight: others get CONCURRENT_TRANSACTIONS */
    kp_txn_op_t *waiting; /* answered when the in-flight work completes */
    txn_then_fn then;     /* continuation of the in-flight write */
    int markers_pending;
    int markers_failed;
};

struct kp_txn_coord {
    kp_txn_env_t env;
    kp_txn_config_t cfg;
    kp_loop_t *loop;
    pthread_t thread;
    int running;
    kp_hmap_t txns;             /* id → txn_t */
    struct kp_topic *log_topic; /* a pool: NULL until the pool's topic is served here */
    kp_timer_t *tick;
    int pending; /* writes in flight: stop waits for them */
    /* A replicated pool (SPEC §11): the transactional ids of the __transaction_state
     * partitions this broker leads, loaded when it becomes their leader (led_epoch[p] the
     * epoch it loaded under, -1: not loaded) and dropped when it stops leading them; checked
     * every LEAD_CHECK_MS. Standalone: pool 0, every id served. */
    int pool;
    int32_t *led_epoch;
    kp_timer_t *lead_timer;
    kp_txn_marker_fn send_marker; /* markers for partitions another broker leads */
    void *send_marker_arg;
};

/* How often a pool's coordinator looks for leadership changes of its partitions: bounds how
 * long a new leader answers NOT_COORDINATOR before it serves (clients retry meanwhile). */
#define LEAD_CHECK_MS 100

int32_t kp_txn_partition_for(kp_str_t id, int32_t partitions)
{
    int32_t h = 0;
    for (int32_t i = 0; i < id.len; i++) h = (int32_t)((uint32_t)h * 31u + (uint8_t)id.ptr[i]);
    int64_t a = h < 0 ? -(int64_t)h : h;
    return (int32_t)(a % partitions);
}

/* Whether this coordinator serves transactional ids of partition p now. */
static int serves(const kp_txn_coord_t *c, int32_t p)
{
    if (!c->pool) return 1;
    return c->led_epoch && p >= 0 && p < c->cfg.partitions && c->led_epoch[p] >= 0;
}

/* Appends one batch to partition p of the coordinator's log: only into a partition this
 * broker leads (a pool). The append's status. */
static int log_append(kp_txn_coord_t *c, int32_t partition, kp_batch_builder_t *bb, int64_t now,
                      kp_append_result_t *res, kp_partition_t **out)
{
    kp_partition_t *p = c->log_topic ? c->env.dir.partition(c->log_topic, partition) : NULL;
    kp_batch_info_t info;
    res->status = KP_APPEND_STORAGE_ERROR;
    *out = p;
    if (p && serves(c, partition) && !kp_partition_check_leader(p, -1) &&
        kp_batch_validate(bb->buf.data, bb->buf.len, &info) == KP_BATCH_OK)
        kp_partition_append(p, bb->buf.data, bb->buf.len, &info, now, res);
    return res->status;
}

/* w fires once offset is durable: fsynced here (standalone), or covered by the high
 * watermark (a pool: every in-sync replica has it, so a failover keeps it). */
static void wait_durable(kp_partition_t *p, int64_t offset, kp_flush_waiter_t *w)
{
    w->offset = offset;
    if (p->repl)
        kp_partition_wait_committed(p, offset, w);
    else
        kp_partition_wait_flush(p, w);
}

int kp_txn_config_load(kp_txn_config_t *cfg, const kp_props_t *p, char *err, size_t errlen)
{
    int64_t v;
    if (kp_props_get_i64(p, "transaction.state.log.num.partitions", 50, 1, 1000, &v, err, errlen) <
        0)
        return -1;
    cfg->partitions = (int32_t)v;
    /* a replicated pool's __transaction_state (unset: min(3, live brokers)) */
    if (kp_props_get_i64(p, "transaction.state.log.replication.factor", 0, 1, 32767, &v, err,
                         errlen) < 0)
        return -1;
    if (kp_props_get_i64(p, "transaction.max.timeout.ms", 900000, 1, INT32_MAX, &v, err, errlen) <
        0)
        return -1;
    cfg->max_timeout_ms = (int32_t)v;
    if (kp_props_get_i64(p, "transaction.abort.timed.out.transaction.cleanup.interval.ms", 10000, 1,
                         INT32_MAX, &v, err, errlen) < 0)
        return -1;
    cfg->abort_interval_ms = v;
    if (kp_props_get_i64(p, "transactional.id.expiration.ms", 604800000, 1, INT32_MAX, &v, err,
                         errlen) < 0)
        return -1;
    cfg->id_expiration_ms = v;
    return 0;
}

/* ---- state ---- */

static void txn_free(txn_t *t)
{
    for (int i = 0; i < t->nparts; i++) free(t->parts[i].topic);
    free(t->parts);
    free(t->id);
    free(t);
}

static void parts_clear(txn_t *t)
{
    for (int i = 0; i < t->nparts; i++) free(t->parts[i].topic);
    t->nparts = 0;
}

static int parts_has(const txn_t *t, kp_str_t topic, int32_t partition)
{
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition && kp_str_eq_c(topic, t->parts[i].topic)) return 1;
    return 0;
}

static void parts_add(txn_t *t, kp_str_t topic, int32_t partition)
{
    if (parts_has(t, topic, partition)) return;
    if (t->nparts == t->parts_cap) {
        t->parts_cap = t->parts_cap ? t->parts_cap * 2 : 8;
        t->parts = kp_xrealloc(t->parts, (size_t)t->parts_cap * sizeof(*t->parts));
    }
    t->parts[t->nparts].topic = kp_xstrndup(topic.ptr, (size_t)topic.len);
    t->parts[t->nparts].partition = partition;
    t->nparts++;
}

static txn_t *txn_get(kp_txn_coord_t *c, kp_str_t id)
{
    return kp_hmap_get(&c->txns, id.ptr, (size_t)id.len);
}

static txn_t *txn_create(kp_txn_coord_t *c, kp_str_t id)
{
    txn_t *t = kp_xcalloc(1, sizeof(*t));
    t->id = kp_xstrndup(id.ptr, (size_t)id.len);
    t->log_partition = kp_txn_partition_for(id, c->cfg.partitions);
    t->producer_id = -1;
    t->epoch = -1;
    t->last_epoch = -1;
    t->prev_producer_id = -1;
    kp_hmap_put(&c->txns, t->id, (size_t)id.len, t);
    return t;
}

/* The record for t's current state (topics point into t). */
static void txn_record_of(const txn_t *t, kp_txn_record_t *r, kp_txn_record_topic_t *topics,
                          int32_t *pids)
{
    memset(r, 0, sizeof(*r));
    r->producer_id = t->producer_id;
    r->producer_epoch = t->epoch;
    r->timeout_ms = t->timeout_ms;
    r->status = (int8_t)t->status;
    r->last_update_ms = t->last_update_ms;
    r->start_ms = t->start_ms;
    /* one topic entry per partition: grouping is not needed for correctness */
    for (int i = 0; i < t->nparts; i++) {
        pids[i] = t->parts[i].partition;
        topics[i].topic = kp_str_c(t->parts[i].topic);
        topics[i].partitions = &pids[i];
        topics[i].npartitions = 1;
    }
    r->topics = topics;
    r->ntopics = t->nparts;
}

/* ---- writes ---- */

typedef struct write_op {
    kp_flush_waiter_t w; /* first */
    kp_txn_coord_t *c;
    char *id;
    int err;
} write_op_t;

static void write_done_on_loop(kp_loop_t *loop, void *arg)
{
    write_op_t *op = arg;
    kp_txn_coord_t *c = op->c;
    c->pending--;
    txn_t *t = kp_hmap_get(&c->txns, op->id, strlen(op->id));
    if (t && t->then) {
        txn_then_fn then = t->then;
        t->then = NULL;
        then(c, t, op->err);
    }
    free(op->id);
    free(op);
}

static void write_flushed(kp_flush_waiter_t *w, int err)
{
    write_op_t *op = (write_op_t *)w;
    op->err = err;
    kp_loop_post(op->c->loop, write_done_on_loop, op);
}

/* Appends t's state to its log partition; then(c, t, err) runs on the loop once durable
 * (or at once with an error). With durable 0 it runs right after the append: for a record
 * whose loss a restart repairs (Complete*: the Prepare* before it is durable and completes
 * again), and which any later durable record of the id makes durable too (one log, fsynced
 * in order). */
static void txn_write_ex(kp_txn_coord_t *c, txn_t *t, txn_then_fn then, int durable)
{
    t->last_update_ms = kp_wall_ms();
    kp_txn_record_topic_t *topics = kp_xcalloc((size_t)t->nparts + 1, sizeof(*topics));
    int32_t *pids = kp_xcalloc((size_t)t->nparts + 1, sizeof(*pids));
    kp_txn_record_t r;
    txn_record_of(t, &r, topics, pids);
    kp_buf_t key, value;
    kp_buf_init(&key);
    kp_buf_init(&value);
    kp_txn_record_key_encode(&key, kp_str_c(t->id));
    kp_txn_record_encode(&value, &r);
    free(topics);
    free(pids);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, t->last_update_ms);
    kp_batch_builder_add(&bb, key.data, (int32_t)key.len, value.data, (int32_t)value.len,
                         t->last_update_ms);
    kp_batch_builder_finish(&bb);
    kp_buf_free(&key);
    kp_buf_free(&value);
    kp_partition_t *p;
    kp_append_result_t res;
    log_append(c, t->log_partition, &bb, t->last_update_ms, &res, &p);
    kp_batch_builder_free(&bb);
    t->then = then;
    if (res.status != KP_APPEND_OK) {
        kp_error("txn", "cannot write the state of transactional id %s", t->id);
        t->then = NULL;
        then(c, t, 1);
        return;
    }
    if (!durable) {
        t->then = NULL;
        then(c, t, 0);
        return;
    }
    write_op_t *op = kp_xcalloc(1, sizeof(*op));
    op->c = c;
    op->id = kp_xstrdup(t->id);
    op->w.done = write_flushed;
    c->pending++;
    wait_durable(p, res.last_offset, &op->w);
}

static void txn_write(kp_txn_coord_t *c, txn_t *t, txn_then_fn then)
{
    txn_write_ex(c, t, then, 1);
}

static void answer(kp_txn_op_t *op, int16_t err)
{
    if (!op) return;
    op->error = err;
    op->done(op);
}

/* ---- ending a transaction: prepare, markers, complete ---- */

static void end_completed(kp_txn_coord_t *c, txn_t *t, int err);
static void init_continue(kp_txn_coord_t *c, txn_t *t);

typedef struct marker_op {
    kp_flush_waiter_t w; /* first */
    kp_txn_coord_t *c;
    char *id;
    int err;
    int group; /* a __consumer_offsets partition: the group coordinator applies the offsets */
    int64_t producer_id;
    int commit;
} marker_op_t;

static void markers_done(kp_txn_coord_t *c, txn_t *t);

static void marker_done_on_loop(kp_loop_t *loop, void *arg)
{
    marker_op_t *op = arg;
    kp_txn_coord_t *c = op->c;
    c->pending--;
    txn_t *t = kp_hmap_get(&c->txns, op->id, strlen(op->id));
    if (t) {
        if (op->err) t->markers_failed = 1;
        if (--t->markers_pending == 0) markers_done(c, t);
    }
    free(op->id);
    free(op);
}

static void marker_flushed(kp_flush_waiter_t *w, int err)
{
    marker_op_t *op = (marker_op_t *)w;
    op->err = err;
    kp_loop_post(op->c->loop, marker_done_on_loop, op);
}

static void group_applied(void *arg)
{
    marker_op_t *op = arg;
    kp_loop_post(op->c->loop, marker_done_on_loop, op);
}

/* Flusher thread: the marker in __consumer_offsets is durable; the group coordinator now
 * applies (or drops) the producer's pending offsets, and tells us on its own thread. */
static void group_marker_flushed(kp_flush_waiter_t *w, int err)
{
    marker_op_t *op = (marker_op_t *)w;
    op->err = err;
    if (err) {
        kp_loop_post(op->c->loop, marker_done_on_loop, op);
        return;
    }
    kp_coordinator_txn_complete(op->c->env.groups, op->producer_id, op->commit, group_applied, op);
}

/* ---- markers for partitions another broker leads (a pool) ---- */

typedef struct remote_op {
    marker_op_t *op;
    int32_t leader;
    int16_t epoch;
    char *topic;
    int32_t partition;
} remote_op_t;

/* Its own thread: the leader is asked over the network (blocking); the answer goes back to
 * the coordinator's loop like a local marker's flush. */
static void *remote_marker_main(void *arg)
{
    remote_op_t *r = arg;
    marker_op_t *op = r->op;
    kp_txn_coord_t *c = op->c;
    int16_t err = c->send_marker ? c->send_marker(c->send_marker_arg, r->leader, op->producer_id,
                                                  r->epoch, op->commit, r->topic, r->partition)
                                 : -1;
    if (err == KERR_INVALID_PRODUCER_EPOCH) /* a newer epoch was seen there: nothing open */
        err = 0;
    if (err)
        kp_warn("txn", "%s: the %s marker for %s-%d on broker %d: error %d; retrying", op->id,
                op->commit ? "commit" : "abort", r->topic, r->partition, r->leader, err);
    op->err = err != 0;
    free(r->topic);
    free(r);
    kp_loop_post(op->c->loop, marker_done_on_loop, op);
    return NULL;
}

/* Sends t's marker for p, which another broker leads, on a thread of its own. 1 when it is
 * on its way (t->markers_pending counts it), 0 when p has no leader now (the caller fails
 * the round: retried at the next tick). */
static int remote_marker(kp_txn_coord_t *c, txn_t *t, const char *topic, kp_partition_t *p,
                         int commit)
{
    kp_repl_view_t v;
    kp_partition_view(p, &v);
    if (v.leader < 0 || v.role == KP_ROLE_LEADER) return 0;
    marker_op_t *op = kp_xcalloc(1, sizeof(*op));
    op->c = c;
    op->id = kp_xstrdup(t->id);
    op->producer_id = t->producer_id;
    op->commit = commit;
    remote_op_t *r = kp_xcalloc(1, sizeof(*r));
    *r = (remote_op_t){op, v.leader, t->epoch, kp_xstrdup(topic), p->index};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    t->markers_pending++;
    c->pending++;
    if (pthread_create(&th, &attr, remote_marker_main, r) != 0) {
        free(r->topic);
        free(r);
        op->err = 1;
        kp_loop_post(c->loop, marker_done_on_loop, op);
    }
    pthread_attr_destroy(&attr);
    return 1;
}

/* Writes the marker into every partition of t (its status says commit or abort). */
static void write_markers(kp_txn_coord_t *c, txn_t *t)
{
    int commit = t->status == KP_TXN_PREPARE_COMMIT;
    kp_buf_t batch;
    kp_buf_init(&batch);
    int64_t now = kp_wall_ms();
    t->markers_pending = 1; /* held until every marker is queued */
    t->markers_failed = 0;
    for (int i = 0; i < t->nparts; i++) {
        struct kp_topic *topic = c->env.dir.get(c->env.dir.arg, kp_str_c(t->parts[i].topic));
        kp_partition_t *p = topic ? c->env.dir.partition(topic, t->parts[i].partition) : NULL;
        if (!p) { /* deleted meanwhile: nothing to mark, as Kafka */
            c->env.dir.put(topic);
            continue;
        }
        batch.len = 0;
        kp_control_batch_build(&batch, t->producer_id, t->epoch,
                               commit ? KP_CONTROL_COMMIT : KP_CONTROL_ABORT, 0, now);
        kp_batch_info_t info;
        kp_append_result_t res;
        res.status = KP_APPEND_STORAGE_ERROR;
        /* a replicated pool: a marker goes into a partition this broker leads, never into a
         * follower's copy (it would diverge from its leader's log); another broker's
         * partition gets it through WriteTxnMarkers, as Kafka sends them */
        int16_t lerr = kp_partition_check_leader(p, -1);
        if (lerr && c->pool && remote_marker(c, t, t->parts[i].topic, p, commit)) {
            c->env.dir.put(topic);
            continue;
        }
        if (!lerr && kp_batch_validate(batch.data, batch.len, &info) == KP_BATCH_OK)
            kp_partition_append(p, batch.data, batch.len, &info, now, &res);
        if (res.status == KP_APPEND_INVALID_EPOCH) {
            /* the partition already saw a newer epoch of this producer: nothing open here */
            c->env.dir.put(topic);
            continue;
        }
        if (res.status != KP_APPEND_OK) {
            kp_error("txn", "%s: cannot write the %s marker into %s-%d", t->id,
                     commit ? "commit" : "abort", t->parts[i].topic, t->parts[i].partition);
            t->markers_failed = 1;
            c->env.dir.put(topic);
            continue;
        }
        marker_op_t *op = kp_xcalloc(1, sizeof(*op));
        op->c = c;
        op->id = kp_xstrdup(t->id);
        op->group = c->env.dir.internal(topic) && !strcmp(t->parts[i].topic, OFFSETS_TOPIC);
        op->producer_id = t->producer_id;
        op->commit = commit;
        op->w.done = op->group ? group_marker_flushed : marker_flushed;
        t->markers_pending++;
        c->pending++;
        wait_durable(p, res.last_offset, &op->w);
        c->env.dir.put(topic);
    }
    kp_buf_free(&batch);
    if (--t->markers_pending == 0) markers_done(c, t);
}

static void markers_done(kp_txn_coord_t *c, txn_t *t)
{
    if (t->markers_failed) {
        /* stays Prepare*: retried at the next tick, as Kafka retries markers */
        kp_warn("txn", "%s: some markers failed; retrying", t->id);
        t->busy = 0;
        answer(t->waiting, KERR_COORDINATOR_NOT_AVAILABLE);
        t->waiting = NULL;
        return;
    }
    t->status = t->status == KP_TXN_PREPARE_COMMIT ? KP_TXN_COMPLETE_COMMIT : KP_TXN_COMPLETE_ABORT;
    parts_clear(t);
    /* the markers are durable: the outcome is decided and survives a crash from here */
    txn_write_ex(c, t, end_completed, 0);
}

static void end_completed(kp_txn_coord_t *c, txn_t *t, int err)
{
    t->busy = 0;
    kp_txn_op_t *op = t->waiting;
    if (op && op->kind == KP_TXN_OP_INIT && !err && op->producer_id < 0) {
        init_continue(c, t); /* the abort of the previous incarnation is done */
        return;
    }
    if (op && op->kind == KP_TXN_OP_INIT && !err) { /* v3+: Kafka's PrepareEpochFence */
        t->waiting = NULL;
        answer(op, KERR_CONCURRENT_TRANSACTIONS);
        return;
    }
    t->waiting = NULL;
    answer(op, err ? KERR_COORDINATOR_NOT_AVAILABLE : 0);
}

static void prepared(kp_txn_coord_t *c, txn_t *t, int err)
{
    if (err) {
        t->busy = 0;
        answer(t->waiting, KERR_COORDINATOR_NOT_AVAILABLE);
        t->waiting = NULL;
        return;
    }
    write_markers(c, t);
}

/* Starts ending t (Ongoing): Prepare* written, then markers, then Complete*. op (may be
 * NULL) is answered at the end. */
static void txn_end(kp_txn_coord_t *c, txn_t *t, int commit, kp_txn_op_t *op)
{
    t->busy = 1;
    t->waiting = op;
    t->status = commit ? KP_TXN_PREPARE_COMMIT : KP_TXN_PREPARE_ABORT;
    txn_write(c, t, prepared);
}

/* ---- operations ---- */

static void init_written(kp_txn_coord_t *c, txn_t *t, int err)
{
    t->busy = 0;
    kp_txn_op_t *op = t->waiting;
    t->waiting = NULL;
    if (op) {
        op->record.producer_id = t->producer_id;
        op->record.producer_epoch = t->epoch;
    }
    answer(op, err ? KERR_COORDINATOR_NOT_AVAILABLE : 0);
}

/* Kafka's TransactionMetadata.isEpochExhausted */
static int epoch_exhausted(int16_t epoch)
{
    return epoch >= INT16_MAX - 1;
}

/* t is Empty or Complete*: a new epoch (or producer id when the epoch is exhausted). An op
 * with the producer's current id and epoch (InitProducerId v3+, op->producer_id >= 0) has
 * been checked by init_expected; its bump is remembered so that its retry is not fenced. */
static void init_continue(kp_txn_coord_t *c, txn_t *t)
{
    kp_txn_op_t *op = t->waiting;
    int expected = op && op->kind == KP_TXN_OP_INIT && op->producer_id >= 0;
    if (t->producer_id < 0 || epoch_exhausted(t->epoch)) {
        int64_t pid = c->env.next_producer_id(c->env.next_producer_id_arg);
        if (pid < 0) {
            t->waiting = NULL;
            answer(op, KERR_COORDINATOR_NOT_AVAILABLE);
            return;
        }
        t->last_epoch = expected && t->producer_id >= 0 ? t->epoch : -1;
        t->prev_producer_id = t->producer_id;
        t->producer_id = pid;
        t->epoch = 0;
    } else {
        t->last_epoch = expected ? t->epoch : -1;
        t->epoch++;
    }
    t->status = KP_TXN_EMPTY;
    t->timeout_ms = op ? op->timeout_ms : t->timeout_ms;
    parts_clear(t);
    t->start_ms = -1;
    t->busy = 1;
    txn_write(c, t, init_written);
}

static int ensure_log_topic(kp_txn_coord_t *c, char *err, size_t errlen);

/* InitProducerId v3+ with the producer's id and epoch (Kafka's isValidProducerId): not
 * fenced when the id has no epoch yet, the producer id is the current one, or it is the
 * previous one with an exhausted epoch (a retry of a rotation it never heard of). */
static int init_expected_valid(const txn_t *t, const kp_txn_op_t *op)
{
    return t->producer_id < 0 || t->epoch < 0 || op->producer_id == t->producer_id ||
           (op->producer_id == t->prev_producer_id && epoch_exhausted(op->epoch));
}

/* t Empty or Complete*, the op carries the producer's epoch (Kafka's
 * prepareIncrementProducerEpoch): 0 to bump (or rotate, when exhausted and the epoch is the
 * current one), -1 for a retry of the last bump (answered with the current epoch),
 * PRODUCER_FENCED for any other epoch. */
static int16_t init_expected_bump(const txn_t *t, const kp_txn_op_t *op)
{
    if (t->producer_id < 0 || t->epoch < 0) return 0;
    if (op->producer_id == t->producer_id && op->epoch == t->epoch) return 0;
    if (op->producer_id == t->producer_id && t->last_epoch >= 0 && op->epoch == t->last_epoch)
        return -1;
    if (op->producer_id == t->prev_producer_id && epoch_exhausted(op->epoch) &&
        t->last_epoch >= 0 && op->epoch == t->last_epoch)
        return -1; /* the rotation's retry */
    return KERR_PRODUCER_FENCED;
}

static void op_init(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    if (op->timeout_ms <= 0 || op->timeout_ms > c->cfg.max_timeout_ms) {
        answer(op, KERR_INVALID_TRANSACTION_TIMEOUT);
        return;
    }
    char err[300];
    if (!c->log_topic && c->pool) { /* created by FindCoordinator through the store */
        answer(op, KERR_NOT_COORDINATOR);
        return;
    }
    if (!c->log_topic && ensure_log_topic(c, err, sizeof(err)) < 0) {
        kp_error("txn", "%s", err);
        answer(op, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    txn_t *t = txn_get(c, op->id);
    if (!t) t = txn_create(c, op->id);
    if (t->busy) {
        answer(op, KERR_CONCURRENT_TRANSACTIONS);
        return;
    }
    if (op->producer_id >= 0 && !init_expected_valid(t, op)) {
        answer(op, KERR_PRODUCER_FENCED);
        return;
    }
    if (t->status == KP_TXN_PREPARE_COMMIT || t->status == KP_TXN_PREPARE_ABORT) {
        answer(op, KERR_CONCURRENT_TRANSACTIONS);
        return;
    }
    t->waiting = op;
    if (t->status == KP_TXN_ONGOING) {
        /* a previous incarnation left it open: abort it with a bumped epoch (fencing it at
         * every partition), then give the new producer the next epoch (end_completed). With
         * the producer's epoch (v3+), as Kafka: the abort is answered CONCURRENT_TRANSACTIONS
         * and the retry, whose epoch is now stale, is fenced. */
        t->epoch++;
        t->last_epoch = -1;
        txn_end(c, t, 0, op);
        return;
    }
    int16_t bump = op->producer_id >= 0 ? init_expected_bump(t, op) : 0;
    if (bump < 0) { /* a retry of a bump already done: the same epoch again */
        t->waiting = NULL;
        op->record.producer_id = t->producer_id;
        op->record.producer_epoch = t->epoch;
        answer(op, 0);
        return;
    }
    if (bump) {
        t->waiting = NULL;
        answer(op, bump);
        return;
    }
    init_continue(c, t);
}

/* Kafka's checks of (producer id, epoch) against the id's state. 0 when they match. */
static int16_t check_producer(const txn_t *t, const kp_txn_op_t *op)
{
    if (!t || t->producer_id < 0) return KERR_INVALID_PRODUCER_ID_MAPPING;
    if (t->producer_id != op->producer_id) return KERR_INVALID_PRODUCER_ID_MAPPING;
    if (t->epoch != op->epoch) return KERR_PRODUCER_FENCED;
    if (t->busy || t->status == KP_TXN_PREPARE_COMMIT || t->status == KP_TXN_PREPARE_ABORT)
        return KERR_CONCURRENT_TRANSACTIONS;
    return 0;
}

static void added(kp_txn_coord_t *c, txn_t *t, int err)
{
    t->busy = 0;
    kp_txn_op_t *op = t->waiting;
    t->waiting = NULL;
    answer(op, err ? KERR_COORDINATOR_NOT_AVAILABLE : 0);
}

static void add_parts(kp_txn_coord_t *c, txn_t *t, kp_txn_op_t *op, const kp_txn_record_topic_t *tp,
                      int32_t n)
{
    int fresh = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < tp[i].npartitions; j++)
            fresh |= !parts_has(t, tp[i].topic, tp[i].partitions[j]);
    if (!fresh && t->status == KP_TXN_ONGOING) {
        answer(op, 0);
        return;
    }
    if (t->status != KP_TXN_ONGOING) {
        parts_clear(t);
        t->start_ms = kp_wall_ms();
        t->status = KP_TXN_ONGOING;
    }
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < tp[i].npartitions; j++)
            parts_add(t, tp[i].topic, tp[i].partitions[j]);
    t->busy = 1;
    t->waiting = op;
    txn_write(c, t, added);
}

static void op_add_partitions(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    txn_t *t = txn_get(c, op->id);
    int16_t err = check_producer(t, op);
    if (err) {
        answer(op, err);
        return;
    }
    add_parts(c, t, op, op->topics, op->ntopics);
}

/* AddPartitionsToTxn v4 VerifyOnly (KIP-890 part 1, asked by a partition leader before it
 * appends a transactional batch): is each partition in the open transaction? Nothing is
 * written. Kafka checks no pending write; here a transaction with a write in flight answers
 * CONCURRENT_TRANSACTIONS (retriable), as its partitions are added before they are durable. */
static void op_verify(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    (void)c;
    txn_t *t = txn_get(c, op->id);
    int16_t err = check_producer(t, op);
    if (err) {
        answer(op, err);
        return;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < op->ntopics; i++)
        for (int32_t j = 0; j < op->topics[i].npartitions; j++, k++)
            op->verified[k] = t->status == KP_TXN_ONGOING &&
                                      parts_has(t, op->topics[i].topic, op->topics[i].partitions[j])
                                  ? 0
                                  : KERR_INVALID_TXN_STATE;
    answer(op, 0);
}

static void op_add_offsets(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    txn_t *t = txn_get(c, op->id);
    int16_t err = check_producer(t, op);
    if (err) {
        answer(op, err);
        return;
    }
    struct kp_topic *ot = c->env.dir.get(c->env.dir.arg, KP_STR_LIT(OFFSETS_TOPIC));
    if (!ot) {
        answer(op, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    int32_t part = kp_txn_partition_for(op->group_id, c->env.dir.npartitions(ot));
    c->env.dir.put(ot);
    kp_txn_record_topic_t tp = {KP_STR_LIT(OFFSETS_TOPIC), &part, 1};
    add_parts(c, t, op, &tp, 1);
}

static void op_end(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    txn_t *t = txn_get(c, op->id);
    int16_t err = check_producer(t, op);
    if (err) {
        answer(op, err);
        return;
    }
    switch (t->status) {
    case KP_TXN_ONGOING:
        txn_end(c, t, op->commit, op);
        return;
    case KP_TXN_COMPLETE_COMMIT: /* a retry of what already happened */
        answer(op, op->commit ? 0 : KERR_INVALID_TXN_STATE);
        return;
    case KP_TXN_COMPLETE_ABORT:
        answer(op, op->commit ? KERR_INVALID_TXN_STATE : 0);
        return;
    default:
        answer(op, KERR_INVALID_TXN_STATE);
        return;
    }
}

static void op_describe(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    txn_t *t = txn_get(c, op->id);
    if (!t || t->producer_id < 0) {
        answer(op, KERR_TRANSACTIONAL_ID_NOT_FOUND);
        return;
    }
    kp_txn_record_topic_t *topics =
        kp_arena_calloc(op->arena, (size_t)t->nparts + 1, sizeof(*topics));
    int32_t *pids = kp_arena_calloc(op->arena, (size_t)t->nparts + 1, sizeof(*pids));
    if (!topics || !pids) {
        answer(op, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    txn_record_of(t, &op->record, topics, pids);
    for (int i = 0; i < t->nparts; i++) {
        size_t n = strlen(t->parts[i].topic);
        char *s = kp_arena_strndup(op->arena, t->parts[i].topic, n);
        if (!s) {
            answer(op, KERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        topics[i].topic = (kp_str_t){s, (int32_t)n};
    }
    answer(op, 0);
}

static void op_list(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    size_t n = kp_hmap_count(&c->txns), it = 0, k = 0;
    op->listed = kp_arena_calloc(op->arena, n + 1, sizeof(*op->listed));
    if (!op->listed) {
        answer(op, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    void *v;
    while (kp_hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *t = v;
        if (t->producer_id < 0) continue;
        size_t len = strlen(t->id);
        char *s = kp_arena_strndup(op->arena, t->id, len);
        if (!s) break;
        op->listed[k].id = (kp_str_t){s, (int32_t)len};
        op->listed[k].producer_id = t->producer_id;
        op->listed[k].status = t->status;
        op->listed[k].start_ms = t->start_ms;
        k++;
    }
    op->nlisted = (int32_t)k;
    answer(op, 0);
}

typedef struct submit {
    kp_txn_coord_t *c;
    kp_txn_op_t *op;
} submit_t;

static void run_submit(kp_loop_t *loop, void *arg)
{
    submit_t *s = arg;
    kp_txn_coord_t *c = s->c;
    kp_txn_op_t *op = s->op;
    free(s);
    /* a pool: an id is this coordinator's only while this broker leads its partition */
    if (op->kind != KP_TXN_OP_LIST && !serves(c, kp_txn_partition_for(op->id, c->cfg.partitions))) {
        answer(op, KERR_NOT_COORDINATOR);
        return;
    }
    switch (op->kind) {
    case KP_TXN_OP_INIT:
        op_init(c, op);
        break;
    case KP_TXN_OP_ADD_PARTITIONS:
        op_add_partitions(c, op);
        break;
    case KP_TXN_OP_VERIFY:
        op_verify(c, op);
        break;
    case KP_TXN_OP_ADD_OFFSETS:
        op_add_offsets(c, op);
        break;
    case KP_TXN_OP_END:
        op_end(c, op);
        break;
    case KP_TXN_OP_DESCRIBE:
        op_describe(c, op);
        break;
    case KP_TXN_OP_LIST:
        op_list(c, op);
        break;
    }
}

void kp_txn_coord_set_marker_sender(kp_txn_coord_t *c, kp_txn_marker_fn fn, void *arg)
{
    c->send_marker = fn;
    c->send_marker_arg = arg;
}

void kp_txn_submit(kp_txn_coord_t *c, kp_txn_op_t *op)
{
    submit_t *s = kp_xmalloc(sizeof(*s));
    s->c = c;
    s->op = op;
    kp_loop_post(c->loop, run_submit, s);
}

/* ---- tick: timeouts, retries, expiry ---- */

/* transactional.id.expiration.ms: an id idle (Empty or Complete*) that long is forgotten: a
 * tombstone in its log partition (compaction removes it and its history), then the map. A
 * lost tombstone only brings the id back idle, to expire again. */
static void txn_expire(kp_txn_coord_t *c, txn_t *t)
{
    kp_buf_t key;
    kp_buf_init(&key);
    kp_txn_record_key_encode(&key, kp_str_c(t->id));
    int64_t now = kp_wall_ms();
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, now);
    kp_batch_builder_add(&bb, key.data, (int32_t)key.len, NULL, -1, now);
    kp_batch_builder_finish(&bb);
    kp_buf_free(&key);
    kp_partition_t *p;
    kp_append_result_t res;
    log_append(c, t->log_partition, &bb, now, &res, &p);
    kp_batch_builder_free(&bb);
    if (res.status != KP_APPEND_OK) return; /* tried again at the next tick */
    kp_info("txn", "%s: idle for more than %lld ms: expired", t->id,
            (long long)c->cfg.id_expiration_ms);
    kp_hmap_del(&c->txns, t->id, strlen(t->id));
    txn_free(t);
}

static void tick(kp_loop_t *loop, void *arg)
{
    kp_txn_coord_t *c = arg;
    int64_t now = kp_wall_ms();
    size_t n = kp_hmap_count(&c->txns), k = 0, it = 0;
    txn_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->txns, &it, NULL, NULL, &v)) list[k++] = v;
    for (size_t i = 0; i < k; i++) {
        txn_t *t = list[i];
        if (t->busy) continue;
        if (t->status == KP_TXN_ONGOING && now - t->start_ms > t->timeout_ms) {
            /* proactive abort with a bumped epoch: the producer is fenced everywhere */
            kp_info("txn", "%s: transaction open for more than %d ms: aborting", t->id,
                    t->timeout_ms);
            t->epoch++;
            t->last_epoch = -1;
            txn_end(c, t, 0, NULL);
        } else if (t->status == KP_TXN_PREPARE_COMMIT || t->status == KP_TXN_PREPARE_ABORT) {
            t->busy = 1; /* in doubt (restart, or failed markers): complete it */
            write_markers(c, t);
        } else if ((t->status == KP_TXN_EMPTY || t->status == KP_TXN_COMPLETE_COMMIT ||
                    t->status == KP_TXN_COMPLETE_ABORT) &&
                   !t->waiting && now - t->last_update_ms > c->cfg.id_expiration_ms) {
            txn_expire(c, t);
        }
    }
    free(list);
    c->tick = kp_loop_timer(loop, c->cfg.abort_interval_ms < 1000 ? c->cfg.abort_interval_ms : 1000,
                            tick, c);
}

static void follow_leadership(kp_loop_t *loop, void *arg);

static void *coord_main(void *arg)
{
    kp_txn_coord_t *c = arg;
    c->tick = kp_loop_timer(c->loop, 0, tick, c);
    if (c->pool) c->lead_timer = kp_loop_timer(c->loop, 0, follow_leadership, c);
    kp_loop_run(c->loop);
    return NULL;
}

/* ---- replay ---- */

typedef struct load_ctx {
    kp_txn_coord_t *c;
    int64_t records, skipped;
} load_ctx_t;

static int load_batch(const uint8_t *batch, size_t len, void *arg)
{
    load_ctx_t *lc = arg;
    kp_records_iter_t it;
    if (kp_records_begin(&it, batch, len) < 0) return 0;
    kp_record_t rec;
    while (kp_records_next(&it, &rec) == 1) {
        kp_str_t id;
        if (rec.keylen < 0 || kp_txn_record_key_decode(rec.key, (size_t)rec.keylen, &id) < 0 ||
            id.len <= 0) {
            lc->skipped++;
            continue;
        }
        txn_t *t = txn_get(lc->c, id);
        if (rec.valuelen < 0) { /* tombstone: the id expired */
            if (t) {
                kp_hmap_del(&lc->c->txns, t->id, strlen(t->id));
                txn_free(t);
            }
            continue;
        }
        kp_arena_t arena;
        kp_arena_init(&arena, 1u << 24);
        kp_txn_record_t r;
        if (kp_txn_record_decode(rec.value, (size_t)rec.valuelen, &arena, &r) < 0) {
            lc->skipped++;
            kp_arena_free(&arena);
            continue;
        }
        if (!t) t = txn_create(lc->c, id);
        t->producer_id = r.producer_id;
        t->epoch = r.producer_epoch;
        t->timeout_ms = r.timeout_ms;
        t->status = r.status;
        t->start_ms = r.start_ms;
        t->last_update_ms = r.last_update_ms;
        parts_clear(t);
        for (int32_t i = 0; i < r.ntopics; i++)
            for (int32_t j = 0; j < r.topics[i].npartitions; j++)
                parts_add(t, r.topics[i].topic, r.topics[i].partitions[j]);
        kp_arena_free(&arena);
        lc->records++;
    }
    return 0;
}

/* ---- a pool: following the leadership of __transaction_state partitions ---- */

/* This broker no longer leads partition p: its ids are another coordinator's now. A waiting
 * request is answered NOT_COORDINATOR (the client finds the new one, which completes or
 * aborts what was in flight from the replicated log); completions still in flight find no
 * id and change nothing. */
static void partition_unload(kp_txn_coord_t *c, int32_t p)
{
    size_t n = kp_hmap_count(&c->txns), k = 0, it = 0;
    txn_t **list = kp_xmalloc((n + 1) * sizeof(*list));
    void *v;
    while (kp_hmap_next(&c->txns, &it, NULL, NULL, &v))
        if (((txn_t *)v)->log_partition == p) list[k++] = v;
    for (size_t i = 0; i < k; i++) {
        answer(list[i]->waiting, KERR_NOT_COORDINATOR);
        kp_hmap_del(&c->txns, list[i]->id, strlen(list[i]->id));
        txn_free(list[i]);
    }
    free(list);
    c->led_epoch[p] = -1;
    kp_info("txn", "%s-%d: no longer its leader: %zu transactional ids unloaded",
            KP_TXN_STATE_TOPIC, p, k);
}

/* This broker leads partition p under epoch: its ids are read from its log (which holds
 * every acknowledged transition); a Prepare* one is completed by the next tick, an Ongoing
 * one keeps its start and times out as usual. */
static void partition_load(kp_txn_coord_t *c, int32_t p, int32_t epoch)
{
    load_ctx_t lc = {c, 0, 0};
    kp_partition_t *part = c->env.dir.partition(c->log_topic, p);
    c->led_epoch[p] = epoch;
    if (!part || kp_partition_scan(part, 0, load_batch, &lc) < 0) {
        kp_error("txn", "cannot read %s-%d: its transactional ids are not served",
                 KP_TXN_STATE_TOPIC, p);
        partition_unload(c, p); /* tried again at the next check */
        return;
    }
    kp_info("txn", "%s-%d: leader (epoch %d): %lld records read", KP_TXN_STATE_TOPIC, p, epoch,
            (long long)lc.records);
}

static void follow_leadership(kp_loop_t *loop, void *arg)
{
    kp_txn_coord_t *c = arg;
    if (!c->log_topic) {
        struct kp_topic *t = c->env.dir.get(c->env.dir.arg, KP_STR_LIT(KP_TXN_STATE_TOPIC));
        int32_t n = t ? c->env.dir.npartitions(t) : 0;
        kp_partition_t *p0 = n > 0 ? c->env.dir.partition(t, 0) : NULL;
        kp_repl_view_t v = {0};
        if (p0) kp_partition_view(p0, &v);
        if (t && v.nreplicas > 0) { /* the pool's topic, served here */
            c->log_topic = t;
            c->cfg.partitions = n;
            c->led_epoch = kp_xmalloc((size_t)n * sizeof(*c->led_epoch));
            for (int32_t p = 0; p < n; p++) c->led_epoch[p] = -1;
        } else {
            c->env.dir.put(t);
        }
    }
    for (int32_t p = 0; c->log_topic && p < c->cfg.partitions; p++) {
        kp_partition_t *part = c->env.dir.partition(c->log_topic, p);
        kp_repl_view_t v;
        if (!part) continue;
        kp_partition_view(part, &v);
        int32_t want = v.role == KP_ROLE_LEADER ? v.leader_epoch : -1;
        if (c->led_epoch[p] == want) continue;
        if (c->led_epoch[p] >= 0) partition_unload(c, p);
        if (want >= 0) partition_load(c, p, want);
    }
    c->lead_timer = kp_loop_timer(loop, LEAD_CHECK_MS, follow_leadership, c);
}

/* ---- lifecycle ---- */

static int ensure_log_topic(kp_txn_coord_t *c, char *err, size_t errlen)
{
    const kp_partition_dir_t *dir = &c->env.dir;
    kp_str_t name = KP_STR_LIT(KP_TXN_STATE_TOPIC);
    c->log_topic = dir->get(dir->arg, name);
    if (!c->log_topic) {
        const char *keys[] = {"cleanup.policy", "segment.bytes"};
        const char *vals[] = {"compact", "104857600"};
        char msg[256];
        if (dir->create_internal(dir->arg, name, c->cfg.partitions, keys, vals, 2, msg,
                                 sizeof(msg)) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", KP_TXN_STATE_TOPIC, msg);
            return -1;
        }
        c->log_topic = dir->get(dir->arg, name);
    }
    if (!c->log_topic) {
        snprintf(err, errlen, "%s vanished", KP_TXN_STATE_TOPIC);
        return -1;
    }
    c->cfg.partitions = c->env.dir.npartitions(c->log_topic); /* fixed once it exists */
    return 0;
}

kp_txn_coord_t *kp_txn_coord_start(const kp_txn_env_t *env, const kp_txn_config_t *cfg, char *err,
                                   size_t errlen)
{
    kp_txn_coord_t *c = kp_xcalloc(1, sizeof(*c));
    c->env = *env;
    c->cfg = *cfg;
    kp_hmap_init(&c->txns);
    c->loop = kp_loop_new(-1);
    int64_t t0 = kp_mono_ms();
    /* a replicated pool: the pool's topic (created through the store by the first
     * FindCoordinator), each partition loaded when this broker becomes its leader */
    c->pool = env->pool;
    /* as Kafka, the topic is created on first use (a pool without transactions has none) */
    c->log_topic = c->pool ? NULL : env->dir.get(env->dir.arg, KP_STR_LIT(KP_TXN_STATE_TOPIC));
    if (c->log_topic) {
        c->cfg.partitions = c->env.dir.npartitions(c->log_topic); /* fixed once it exists */
        load_ctx_t lc = {c, 0, 0};
        for (int32_t p = 0; p < c->cfg.partitions; p++) {
            kp_partition_t *part = c->env.dir.partition(c->log_topic, p);
            if (!part || kp_partition_scan(part, 0, load_batch, &lc) < 0) {
                snprintf(err, errlen, "cannot read %s-%d", KP_TXN_STATE_TOPIC, p);
                kp_txn_coord_stop(c);
                return NULL;
            }
        }
        if (lc.skipped)
            kp_warn("txn", "skipped %lld records of %s this broker cannot read",
                    (long long)lc.skipped, KP_TXN_STATE_TOPIC);
        kp_info("txn", "loaded %zu transactional ids in %lld ms", kp_hmap_count(&c->txns),
                (long long)(kp_mono_ms() - t0));
    }
    if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
        snprintf(err, errlen, "cannot start the transaction coordinator thread");
        kp_txn_coord_stop(c);
        return NULL;
    }
    c->running = 1;
    return c;
}

static void shutdown_task(kp_loop_t *loop, void *arg)
{
    kp_txn_coord_t *c = arg;
    if (c->tick) kp_loop_timer_cancel(loop, c->tick);
    if (c->lead_timer) kp_loop_timer_cancel(loop, c->lead_timer);
    c->tick = c->lead_timer = NULL;
    kp_loop_stop(loop);
}

void kp_txn_coord_stop(kp_txn_coord_t *c)
{
    if (!c) return;
    if (c->running) {
        kp_loop_post(c->loop, shutdown_task, c);
        pthread_join(c->thread, NULL);
        c->running = 0;
    }
    /* writes whose flush completes during shutdown post here: run them (answering their
     * requests) while the flusher still runs */
    kp_loop_drain(c->loop);
    for (int i = 0; c->pending > 0 && i < 10000; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        kp_loop_drain(c->loop);
    }
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *t = v;
        answer(t->waiting, KERR_COORDINATOR_NOT_AVAILABLE);
        txn_free(t);
    }
    kp_hmap_free(&c->txns);
    if (c->log_topic) c->env.dir.put(c->log_topic);
    free(c->led_epoch);
    kp_loop_free(c->loop);
    free(c);
}
