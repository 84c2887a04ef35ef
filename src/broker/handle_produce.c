/*
 * handle_produce.c — Produce v3–v7: validate each partition's record batch (CRC-32C, framing,
 * size), append it (offsets patched in place in the receive buffer, then one write to the
 * segment), and answer according to acks:
 *   acks=0   no response (fire and forget: the batch may not be visible yet);
 *   acks=1   once this broker's copy is visible (read-your-writes on a standalone broker): at
 *            once in page-cache mode (HWM = log end), after the batch is fsynced in durable
 *            mode (HWM = fsynced end) — the flusher completes one waiter per partition and
 *            posts it back to this loop;
 *   acks=-1  after the partition layer says the batch is committed (replication/partition.h:
 *            standalone = as acks=1; a replicated pool = the HWM, min over the ISR, passed
 *            it) — one waiter per partition, posted back to this loop; the partition layer
 *            also says whether enough replicas are in sync.
 * Topic configs that need it look inside a batch before the append (a compacted topic's
 * keys, message.timestamp.*.max.ms) or replace it with a re-encoded copy (compression.type
 * other than producer); at their defaults the batch is stored exactly as received.
 * Produce v0–2 may carry message sets of magic 0/1 instead: produce_upconvert turns each
 * partition's set into one v2 batch first (storage/msgset.h), which then takes the v3 path.
 */
#include "auth/acl.h"
#include "broker/request.h"
#include "broker/topic_config.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "kp_msgs.h"
#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/msgset.h"
#include "storage/records.h"

#include <string.h>
#include <strings.h>

typedef struct produce_state produce_state_t;

typedef struct produce_wait {
    kp_flush_waiter_t w; /* first: the flusher hands us &w */
    produce_state_t *st;
    ProduceResponse_PartitionProduceResponse *out;
    int err;
    /* acks=all in a replicated pool: the wait can be taken back at the request's timeout */
    kp_partition_t *p;
    kp_topic_t *topic; /* a reference while waiting: keeps p alive */
    int waiting;
    struct produce_wait *next_cancellable;
} produce_wait_t;

struct produce_state {
    kp_req_t *req;
    ProduceResponse resp;
    int pending;
    kp_timer_t *timer;           /* the request's TimeoutMs, with cancellable waits */
    produce_wait_t *cancellable; /* the waits it may take back */
};

static void produce_respond(produce_state_t *st)
{
    kp_req_t *req = st->req;
    if (st->timer) kp_loop_timer_cancel(req->sess->loop, st->timer);
    st->timer = NULL;
    kp_req_begin_response(req);
    ProduceResponse_encode(&req->resp, req->api_version, &st->resp);
    kp_req_finish(req);
}

/* Loop thread: one partition's flush completed. */
static void wait_done_on_loop(kp_loop_t *loop, void *arg)
{
    produce_wait_t *pw = arg;
    pw->waiting = 0;
    kp_topic_put(pw->topic);
    pw->topic = NULL;
    if (pw->err) {
        pw->out->ErrorCode = kp_partition_commit_error(pw->err);
        /* after-append: the record is in the log, so its offset stands (as Kafka) */
        if (pw->out->ErrorCode != KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND) pw->out->BaseOffset = -1;
    }
    if (--pw->st->pending == 0) produce_respond(pw->st);
}

/* Flusher (or any) thread. */
static void wait_done(kp_flush_waiter_t *w, int err)
{
    produce_wait_t *pw = (produce_wait_t *)w;
    pw->err = err;
    kp_loop_post(pw->st->req->sess->loop, wait_done_on_loop, pw);
}

/* Loop thread: the request's TimeoutMs passed with acks=all partitions still waiting for
 * their replicas. As Kafka's DelayedProduce expiring: each wait still pending is taken back
 * and its partition answered REQUEST_TIMED_OUT (the records stay in the log, like
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND's: a retry is a duplicate only to a producer without
 * idempotence). A wait whose completion is already posted is left to it. */
static void produce_timeout(kp_loop_t *loop, void *arg)
{
    (void)loop;
    produce_state_t *st = arg;
    st->timer = NULL;
    for (produce_wait_t *pw = st->cancellable; pw; pw = pw->next_cancellable) {
        if (!pw->waiting || !kp_partition_cancel_wait(pw->p, &pw->w)) continue;
        pw->waiting = 0;
        kp_topic_put(pw->topic);
        pw->topic = NULL;
        pw->out->ErrorCode = KERR_REQUEST_TIMED_OUT;
        pw->out->BaseOffset = -1;
        if (--st->pending == 0) {
            produce_respond(st);
            return;
        }
    }
}

static int null_key_seen(const kp_record_t *rec, void *arg)
{
    if (rec->keylen < 0) *(int *)arg = 1;
    return 1;
}

/* A compacted topic cannot take a record without a key (Kafka: INVALID_RECORD). Compressed
 * batches are decompressed for the check, bounded like the cleaner. */
static int has_null_key(kp_req_t *req, const uint8_t *batch, size_t len)
{
    int seen = 0;
    kp_buf_t scratch, out;
    kp_buf_init(&scratch);
    kp_buf_init(&out);
    int r = kp_batch_filter(batch, len, null_key_seen, &seen, &scratch, &out,
                            KP_BATCH_INFLATE_BYTES_MAX);
    kp_buf_free(&scratch);
    kp_buf_free(&out);
    return r < 0 || seen;
}

/* message.timestamp.before/after.max.ms (CreateTime topics): 0, INVALID_TIMESTAMP when a
 * record's timestamp is earlier than now - before or later than now + after, or
 * CORRUPT_MESSAGE when the batch cannot be decoded to tell. Records are walked only when a
 * bound is set, so the default costs two loads. */
static int16_t check_time_bounds(kp_topic_t *topic, const uint8_t *batch, size_t len, int64_t now)
{
    int64_t before =
        atomic_load_explicit(&topic->eff.timestamp_before_max_ms, memory_order_relaxed);
    int64_t after = atomic_load_explicit(&topic->eff.timestamp_after_max_ms, memory_order_relaxed);
    if (before == INT64_MAX && after == INT64_MAX) return 0;
    int64_t min_ts, max_ts;
    /* Kafka compares now - ts > before; saturate instead of overflowing */
    if (__builtin_sub_overflow(now, before, &min_ts)) min_ts = INT64_MIN;
    if (__builtin_add_overflow(now, after, &max_ts)) max_ts = INT64_MAX;
    kp_buf_t scratch;
    kp_buf_init(&scratch);
    int r =
        kp_batch_timestamps_check(batch, len, min_ts, max_ts, &scratch, KP_BATCH_INFLATE_BYTES_MAX);
    kp_buf_free(&scratch);
    return r < 0 ? KERR_CORRUPT_MESSAGE : r ? KERR_INVALID_TIMESTAMP : 0;
}

/* compression.type other than producer: stores the batch with the topic's codec, as Kafka
 * does (decompress, check every record, recompress; offsets, timestamps and producer fields
 * unchanged). On success *data and *len name the batch to store — the original when it
 * already has that codec (zero copy), else the new one in `buf` (the caller frees it).
 * Returns 0 or the Kafka error: CORRUPT_MESSAGE when the batch cannot be decoded,
 * MESSAGE_TOO_LARGE when the stored batch exceeds max.message.bytes (Kafka checks the size
 * again after recompression). */
static int16_t recompress(kp_topic_t *topic, int codec, uint8_t **data, size_t *len,
                          kp_batch_info_t *info, kp_buf_t *buf)
{
    kp_buf_t scratch;
    kp_buf_init(&scratch);
    int r = kp_batch_recompress(*data, *len, codec, &scratch, buf, KP_BATCH_INFLATE_BYTES_MAX);
    kp_buf_free(&scratch);
    if (r < 0) return KERR_CORRUPT_MESSAGE;
    if (r == KP_RECOMPRESS_SAME) return 0;
    if (buf->len >
        (size_t)atomic_load_explicit(&topic->eff.max_message_bytes, memory_order_relaxed))
        return KERR_MESSAGE_TOO_LARGE;
    kp_metric_add(&kp_metrics.produce_recompressed, 1);
    *data = buf->data;
    *len = buf->len;
    kp_batch_parse_header(*data, info); /* same offsets and timestamps; length and CRC new */
    return 0;
}

static int16_t batch_error(kp_batch_status_t st)
{
    switch (st) {
    case KP_BATCH_OK:
        return 0;
    case KP_BATCH_BAD_CRC:
    case KP_BATCH_TRUNCATED:
    case KP_BATCH_BAD_LENGTH:
        return KERR_CORRUPT_MESSAGE;
    case KP_BATCH_BAD_CODEC:
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    default:
        return KERR_INVALID_RECORD;
    }
}

/* Appends one partition's data; fills out. Returns 1 when the caller must wait for a flush
 * (pw armed), else 0. */
static int produce_partition(kp_req_t *req, kp_topic_t *topic,
                             const ProduceRequest_PartitionProduceData *pd,
                             ProduceResponse_PartitionProduceResponse *out, int16_t acks,
                             produce_wait_t *pw)
{
    out->Index = pd->Index;
    out->BaseOffset = -1;
    kp_partition_t *p = kp_topic_partition(topic, pd->Index);
    if (!p) {
        out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    out->ErrorCode = kp_partition_check_produce(
        p, acks, atomic_load_explicit(&topic->eff.min_insync_replicas, memory_order_relaxed));
    if (out->ErrorCode) return 0;
    const kp_records_t *rec = &pd->Records;
    if (rec->len <= 0 || kp_batch_total_size(rec->ptr, (size_t)rec->len) != rec->len) {
        /* v3+ carries exactly one record batch per partition */
        out->ErrorCode = rec->len <= 0 ? KERR_INVALID_RECORD
                         : kp_batch_total_size(rec->ptr, (size_t)rec->len) < rec->len
                             ? KERR_INVALID_RECORD
                             : KERR_CORRUPT_MESSAGE;
        return 0;
    }
    if (rec->len > atomic_load_explicit(&topic->eff.max_message_bytes, memory_order_relaxed)) {
        out->ErrorCode = KERR_MESSAGE_TOO_LARGE;
        return 0;
    }
    kp_batch_info_t info;
    kp_batch_status_t st = kp_batch_validate(rec->ptr, (size_t)rec->len, &info);
    if (st != KP_BATCH_OK) {
        kp_debug("produce", "%s: %s-%d: %s", req->sess->conn->peer, topic->name, pd->Index,
                 kp_batch_status_str(st));
        out->ErrorCode = batch_error(st);
        return 0;
    }
    if (info.records_count <= 0) {
        out->ErrorCode = KERR_INVALID_RECORD; /* as Kafka: an empty batch only burns offsets */
        return 0;
    }
    if ((info.attributes & KP_BATCH_ATTR_CONTROL) ||
        ((info.attributes & KP_BATCH_ATTR_TRANSACTIONAL) && info.producer_id < 0) ||
        (info.producer_id >= 0 && info.base_sequence < 0)) {
        /* as Kafka: only coordinators write markers; a transactional batch has a producer,
         * and a producer's batch a sequence */
        out->ErrorCode = KERR_INVALID_RECORD;
        return 0;
    }
    if (atomic_load_explicit(&topic->eff.cleanup_compact, memory_order_relaxed) &&
        has_null_key(req, rec->ptr, (size_t)rec->len)) {
        out->ErrorCode = KERR_INVALID_RECORD;
        return 0;
    }
    int64_t now = kp_wall_ms();
    int log_append_time = atomic_load_explicit(&topic->eff.log_append_time, memory_order_relaxed);
    if (!log_append_time) {
        out->ErrorCode = check_time_bounds(topic, rec->ptr, (size_t)rec->len, now);
        if (out->ErrorCode) return 0;
    }
    /* the batch lives in this request's receive chunk, which we own until the response */
    uint8_t *data = (uint8_t *)rec->ptr;
    size_t len = (size_t)rec->len;
    kp_buf_t recompressed;
    kp_buf_init(&recompressed);
    int codec = atomic_load_explicit(&topic->eff.compression_codec, memory_order_relaxed);
    if (codec >= 0) {
        out->ErrorCode = recompress(topic, codec, &data, &len, &info, &recompressed);
        if (out->ErrorCode) {
            kp_debug("produce", "%s: %s-%d: cannot store the batch as %s (error %d)",
                     req->sess->conn->peer, topic->name, pd->Index, kp_codec_name(codec),
                     out->ErrorCode);
            kp_buf_free(&recompressed);
            return 0;
        }
    }
    if (log_append_time) { /* the stored batch's times, and so the indexes', are the broker's */
        kp_batch_set_log_append_time(data, len, now);
        info.max_timestamp = now;
        info.attributes |= KP_BATCH_ATTR_LOG_APPEND_TIME;
    }

    kp_append_result_t res;
    kp_partition_append(p, data, len, &info, now, &res);
    kp_buf_free(&recompressed); /* written (or refused): the log keeps no pointer to it */
    out->LogStartOffset = res.log_start_offset;
    switch (res.status) {
    case KP_APPEND_OK:
        kp_metric_add(&kp_metrics.produce_records, info.records_count);
        kp_metric_add(&kp_metrics.produce_bytes, (int64_t)len);
        kp_metric_add(&p->stats.records_in, info.records_count);
        kp_metric_add(&p->stats.bytes_in, (int64_t)len);
        break;
    case KP_APPEND_DUPLICATE:
        break;
    case KP_APPEND_OUT_OF_ORDER:
        out->ErrorCode = KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        return 0;
    case KP_APPEND_INVALID_EPOCH:
        out->ErrorCode = KERR_INVALID_PRODUCER_EPOCH;
        return 0;
    case KP_APPEND_STORAGE_ERROR:
        out->ErrorCode = KERR_KAFKA_STORAGE_ERROR;
        return 0;
    case KP_APPEND_INVALID_RECORD:
        out->ErrorCode = KERR_INVALID_RECORD;
        return 0;
    }
    out->BaseOffset = res.base_offset;
    if (log_append_time) out->LogAppendTimeMs = now;
    /* durable mode: the local HWM is the fsynced end, so acks=1 waits for the group-commit
     * fsync; answering earlier would acknowledge a record the next ListOffsets or Fetch on a
     * standalone broker cannot see yet. acks=all waits for the partition's commit. */
    if (acks == 0) return 0;
    pw->w.done = wait_done;
    pw->out = out;
    if (acks == 1) return kp_partition_wait_local(p, res.last_offset, &pw->w);
    if (p->repl) { /* before the wait: its completion is posted to this loop, never run here */
        pw->p = p;
        kp_topic_ref(topic);
        pw->topic = topic;
        pw->waiting = 1;
        pw->next_cancellable = pw->st->cancellable;
        pw->st->cancellable = pw;
    }
    return kp_partition_wait_committed(p, res.last_offset, &pw->w);
}

/* Produce v0–2: a partition's message set of magic 0/1 becomes one v2 batch in `buf` (the
 * caller frees it) and *conv a copy of pd pointing at it, as Kafka's LogValidator
 * up-converts (same codec, or the topic's compression.type). Data already in magic 2 (which
 * Kafka also takes at these versions) is left alone. Returns 0 or the Kafka error code. */
static int16_t produce_upconvert(kp_req_t *req, kp_topic_t *topic,
                                 const ProduceRequest_PartitionProduceData *pd,
                                 ProduceRequest_PartitionProduceData *conv, kp_buf_t *buf)
{
    const kp_records_t *rec = &pd->Records;
    *conv = *pd;
    int magic = rec->len > 0 ? kp_msgset_magic(rec->ptr, (size_t)rec->len) : -1;
    if (magic == 2 || !kp_topic_partition(topic, pd->Index)) return 0; /* the v3 path says */
    if (rec->len > atomic_load_explicit(&topic->eff.max_message_bytes, memory_order_relaxed))
        return KERR_MESSAGE_TOO_LARGE;
    int codec = atomic_load_explicit(&topic->eff.compression_codec, memory_order_relaxed);
    kp_buf_t scratch;
    kp_buf_init(&scratch);
    kp_msgset_status_t st = rec->len > 0
                                ? kp_msgset_to_batch(rec->ptr, (size_t)rec->len, codec, &scratch,
                                                     buf, KP_BATCH_INFLATE_BYTES_MAX)
                                : KP_MSGSET_INVALID;
    kp_buf_free(&scratch);
    if (st != KP_MSGSET_OK) {
        kp_debug("produce", "%s: %s-%d: v%d message set: %s", req->sess->conn->peer, topic->name,
                 pd->Index, req->api_version, kp_msgset_status_str(st));
        return st == KP_MSGSET_CORRUPT     ? KERR_CORRUPT_MESSAGE
               : st == KP_MSGSET_BAD_CODEC ? KERR_UNSUPPORTED_COMPRESSION_TYPE
                                           : KERR_INVALID_RECORD;
    }
    kp_metric_add(&kp_metrics.produce_upconverted, 1);
    conv->Records = (kp_records_t){buf->data, (int32_t)buf->len, NULL, -1, 0};
    return 0;
}

/* Produce v0–2: produce_partition on the up-converted data. Same contract. */
static int produce_partition_v0_2(kp_req_t *req, kp_topic_t *topic,
                                  const ProduceRequest_PartitionProduceData *pd,
                                  ProduceResponse_PartitionProduceResponse *out, int16_t acks,
                                  produce_wait_t *pw)
{
    ProduceRequest_PartitionProduceData conv;
    kp_buf_t upconverted;
    kp_buf_init(&upconverted);
    int waits = 0;
    out->ErrorCode = produce_upconvert(req, topic, pd, &conv, &upconverted);
    if (out->ErrorCode) {
        out->Index = pd->Index;
        out->BaseOffset = -1;
    } else {
        waits = produce_partition(req, topic, &conv, out, acks, pw);
    }
    kp_buf_free(&upconverted); /* appended or refused: the log keeps no pointer to it */
    return waits;
}

int kp_handle_produce(kp_req_t *req)
{
    ProduceRequest in;
    if (ProduceRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    produce_state_t *st = kp_req_alloc(req, sizeof(*st));
    if (!st) return -1;
    st->req = req;
    ProduceResponse_init(&st->resp);
    int32_t nt = in.TopicData.count > 0 ? in.TopicData.count : 0;
    st->resp.Responses.count = nt;
    st->resp.Responses.items =
        kp_req_alloc(req, (size_t)(nt + 1) * sizeof(*st->resp.Responses.items));
    if (!st->resp.Responses.items) return -1;
    /* allocate everything before touching any log: a failure below must not leave waiters */
    for (int32_t i = 0; i < nt; i++) {
        const ProduceRequest_TopicProduceData *td = &in.TopicData.items[i];
        ProduceResponse_TopicProduceResponse *tr = &st->resp.Responses.items[i];
        tr->Name = td->Name;
        int32_t np = td->PartitionData.count > 0 ? td->PartitionData.count : 0;
        tr->PartitionResponses.count = np;
        tr->PartitionResponses.items =
            kp_req_alloc(req, (size_t)(np + 1) * sizeof(*tr->PartitionResponses.items));
        if (!tr->PartitionResponses.items) return -1;
        for (int32_t j = 0; j < np; j++)
            ProduceResponse_PartitionProduceResponse_init(&tr->PartitionResponses.items[j]);
    }
    int16_t acks = in.Acks;
    int waits = 0, errors = 0;
    /* as Kafka: a transactional produce needs WRITE on its transactional id */
    int txn_denied =
        in.TransactionalId.len > 0 &&
        !kp_req_authorize(req, KP_OP_WRITE, KP_RES_TRANSACTIONAL_ID, in.TransactionalId);
    for (int32_t i = 0; i < nt; i++) {
        const ProduceRequest_TopicProduceData *td = &in.TopicData.items[i];
        ProduceResponse_TopicProduceResponse *tr = &st->resp.Responses.items[i];
        int32_t np = tr->PartitionResponses.count;
        kp_topic_t *topic = NULL;
        int16_t topic_err = 0;
        if (acks != 0 && acks != 1 && acks != -1)
            topic_err = KERR_INVALID_REQUIRED_ACKS;
        else if (txn_denied)
            topic_err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        else if (!kp_req_authorize(req, KP_OP_WRITE, KP_RES_TOPIC, td->Name))
            topic_err = KERR_TOPIC_AUTHORIZATION_FAILED; /* checked first: never "unknown" */
        else if (!(topic = kp_topics_get(b->topics, td->Name)))
            topic_err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        else if (topic->internal) /* clients never write internal topics, as Kafka */
            topic_err = KERR_INVALID_TOPIC_EXCEPTION;
        for (int32_t j = 0; j < np; j++) {
            ProduceResponse_PartitionProduceResponse *out = &tr->PartitionResponses.items[j];
            if (topic_err) {
                out->Index = td->PartitionData.items[j].Index;
                out->ErrorCode = topic_err;
                out->BaseOffset = -1;
                kp_metric_add(&kp_metrics.produce_errors, 1);
                errors++;
                continue;
            }
            produce_wait_t *pw = kp_arena_calloc(&req->arena, 1, sizeof(*pw));
            if (!pw) { /* cannot happen within the arena limit after decode; stay safe */
                out->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            pw->st = st;
            const ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[j];
            if (req->api_version < 3) /* magic 0/1 message sets: off the v3+ path */
                waits += produce_partition_v0_2(req, topic, pd, out, acks, pw);
            else
                waits += produce_partition(req, topic, pd, out, acks, pw);
            if (out->ErrorCode) {
                kp_metric_add(&kp_metrics.produce_errors, 1);
                errors++;
            }
        }
        kp_topic_put(topic);
    }
    if (acks == 0) {
        kp_req_finish_silent(req);
        if (errors) {
            /* as Kafka: acks=0 has no response, so a failed produce closes the connection to
             * tell the client something went wrong */
            kp_warn("produce", "closing %s: acks=0 produce failed on %d partition(s)",
                    req->sess->conn->peer, errors);
            kp_conn_close(req->sess->conn, NULL);
        }
        return 0;
    }
    if (waits == 0) {
        produce_respond(st);
        return 0;
    }
    /* completions are always posted to this loop, so they cannot run before this line */
    st->pending = waits;
    if (st->cancellable)
        st->timer = kp_loop_timer(req->sess->loop, in.TimeoutMs > 0 ? in.TimeoutMs : 0,
                                  produce_timeout, st);
    return 0;
}
