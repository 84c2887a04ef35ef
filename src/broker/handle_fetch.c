/*
 * handle_fetch.c — Fetch v0–v11 with long polling: waiting fetches park on their loop's
 * context (loop_ctx.h).
 *
 * A fetch reads every requested partition (bounded by partition and request max bytes, the
 * first batch always whole — KIP-74). When it has at least min.bytes, or max.wait.ms is 0,
 * it answers at once; otherwise it is parked on its loop with a timer. A partition whose
 * high watermark moves wakes every loop with parked fetches (one coalesced task per loop),
 * which re-runs them. Record data is never copied: the response splices segment file
 * regions, sent with sendfile(2) on plaintext connections.
 *
 * Sessions (KIP-227) are not kept: every response carries SessionId 0, which tells the
 * client to send full requests, the behaviour every client supports.
 *
 * Fetch v0–3 (clients that read message format v0/v1) is answered as Kafka 3.x does: each
 * partition's read is down-converted (storage/msgset.h) into an in-memory message set of
 * magic 0 (v0–1) or 1 (v2–3), bounded by the partition's and the request's max bytes; only
 * these versions copy, v4+ keeps the zero-copy path.
 */
#include "auth/acl.h"
#include "broker/loop_ctx.h"
#include "broker/request.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "kp_msgs.h"
#include "replication/throttle.h"
#include "core/fs.h"
#include "storage/msgset.h"

#include <stdlib.h>
#include <string.h>

struct kp_fetch_parked {
    kp_req_t *req;
    FetchRequest in;
    kp_loop_ctx_t *ctx;
    kp_timer_t *timer;
    kp_fetch_parked_t *prev, *next;
};

typedef struct part_read {
    int16_t err;
    kp_partition_read_t rd;
    kp_aborted_txn_t *aborted; /* read_committed: transactions aborted in the range read */
    size_t naborted;
    kp_buf_t conv; /* Fetch v0-3: the down-converted message set */
    /* A consumer's read (not a follower's): its partition, for the traffic counters, and
     * the records it delivers (records_out_estimate). The topic's first read holds the
     * topic's reference (topic), so p stays valid until release_reads. */
    kp_partition_t *p;
    kp_topic_t *topic;
    int64_t records_out;
} part_read_t;

/* The records a consumer's read of rd (asked from offset with max bytes) delivers, for
 * kpool_topic_records_out_total without reading the batches: a read that ended before its
 * byte limit reached the end it was bounded by (the high watermark, or the last stable
 * offset for read_committed), so it delivers the offsets from offset up to that end; a read
 * the limit cut is estimated from the partition's average produced record size. Offsets,
 * not records, on a compacted topic (its gaps count). */
static int64_t records_out_estimate(kp_partition_t *p, const kp_partition_read_t *rd,
                                    int64_t offset, int64_t max, int committed)
{
    int64_t end = committed ? rd->last_stable_offset : rd->high_watermark;
    int64_t upto = end > offset ? end - offset : 0;
    if (rd->len < max) return upto;
    long long bytes = atomic_load_explicit(&p->stats.bytes_in, memory_order_relaxed);
    long long records = atomic_load_explicit(&p->stats.records_in, memory_order_relaxed);
    if (bytes <= 0 || records <= 0) return upto;
    int64_t est = (int64_t)((double)rd->len * (double)records / (double)bytes);
    if (est < 1) est = 1;
    return est < upto ? est : upto;
}

/* Reads all partitions. Returns total record bytes; reads[] holds segment references. */
static int64_t fetch_read(kp_req_t *req, const FetchRequest *in, part_read_t **reads_out)
{
    kp_broker_t *b = req->sess->broker;
    int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0, total_parts = 0;
    for (int32_t i = 0; i < nt; i++)
        total_parts +=
            in->Topics.items[i].Partitions.count > 0 ? in->Topics.items[i].Partitions.count : 0;
    part_read_t *reads = kp_arena_calloc(&req->arena, (size_t)total_parts + 1, sizeof(*reads));
    *reads_out = reads;
    if (!reads) return -1;
    int64_t budget = in->MaxBytes > 0 ? in->MaxBytes : 0, total = 0;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const FetchRequest_FetchTopic *ft = &in->Topics.items[i];
        /* a follower (replica id set) needs ClusterAction, as in Kafka: its fetch advances
         * the high watermark */
        int allowed = in->ReplicaId >= 0
                          ? kp_req_authorize(req, KP_OP_CLUSTER_ACTION, KP_RES_CLUSTER,
                                             KP_STR_LIT(KP_CLUSTER_RESOURCE))
                          : kp_req_authorize(req, KP_OP_READ, KP_RES_TOPIC, ft->Topic);
        kp_topic_t *topic = allowed ? kp_topics_get(b->topics, ft->Topic) : NULL;
        int32_t np = ft->Partitions.count > 0 ? ft->Partitions.count : 0;
        for (int32_t j = 0; j < np; j++, k++) {
            const FetchRequest_FetchPartition *fp = &ft->Partitions.items[j];
            part_read_t *r = &reads[k];
            kp_partition_t *p = topic ? kp_topic_partition(topic, fp->Partition) : NULL;
            if (!allowed) {
                r->err = KERR_TOPIC_AUTHORIZATION_FAILED;
                r->rd.high_watermark = r->rd.log_start_offset = -1;
                continue;
            }
            if (!p) {
                r->err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                r->rd.high_watermark = r->rd.log_start_offset = -1;
                continue;
            }
            int64_t max = fp->PartitionMaxBytes > 0 ? fp->PartitionMaxBytes : 0;
            if (max > budget) max = budget;
            /* v0-2: the first batch whole, so that down-conversion has a message to give (or
             * to cut at the limit, the partial message that makes an old client grow) */
            if (in->ReplicaId >= 0) {
                /* leader.replication.throttled.rate: a replica a move adds, outside the ISR */
                int throttled = kp_partition_replica_throttled(p, in->ReplicaId);
                int64_t allow =
                    throttled ? kp_throttle_allowance(&kp_repl_throttle_leader, kp_mono_ms()) : 1;
                if (throttled && max > allow) max = allow;
                r->err = kp_partition_replica_fetch(p, in->ReplicaId, fp->CurrentLeaderEpoch,
                                                    fp->FetchOffset, max, kp_wall_ms(), &r->rd);
                if (throttled && allow == 0 && r->rd.seg) {
                    /* nothing left this second: its progress counted, its records wait */
                    kp_segment_put(r->rd.seg);
                    r->rd.seg = NULL;
                    r->rd.len = 0;
                }
                if (throttled) kp_throttle_spend(&kp_repl_throttle_leader, r->rd.len);
                total += r->rd.len;
                budget = budget > r->rd.len ? budget - r->rd.len : 0;
                continue;
            }
            r->err = kp_partition_check_leader(p, fp->CurrentLeaderEpoch);
            if (r->err) {
                r->rd.high_watermark = r->rd.log_start_offset = -1;
                continue;
            }
            int committed = in->IsolationLevel == 1 && req->api_version >= 4;
            kp_partition_read_isolated(p, fp->FetchOffset, max, total == 0 || req->api_version < 3,
                                       committed, &r->rd);
            if (committed && r->rd.len > 0)
                r->naborted = kp_partition_aborted_txns(p, fp->FetchOffset,
                                                        r->rd.last_stable_offset, &r->aborted);
            if (r->rd.len > 0) {
                r->p = p;
                r->records_out = records_out_estimate(p, &r->rd, fp->FetchOffset, max, committed);
            }
            if (r->rd.error == KP_READ_OUT_OF_RANGE)
                r->err = KERR_OFFSET_OUT_OF_RANGE;
            else if (r->rd.error)
                r->err = KERR_KAFKA_STORAGE_ERROR;
            total += r->rd.len;
            budget = budget > r->rd.len ? budget - r->rd.len : 0;
        }
        if (topic && np > 0)
            reads[k - np].topic = topic; /* released with the reads (their r->p) */
        else
            kp_topic_put(topic);
    }
    return total;
}

static void release_reads(part_read_t *reads, int n)
{
    for (int i = 0; i < n; i++) {
        if (reads[i].rd.seg) kp_segment_put(reads[i].rd.seg);
        reads[i].rd.seg = NULL;
        free(reads[i].aborted);
        reads[i].aborted = NULL;
        reads[i].naborted = 0;
        kp_buf_free(&reads[i].conv);
        reads[i].p = NULL;
        if (reads[i].topic) kp_topic_put(reads[i].topic);
        reads[i].topic = NULL;
    }
}

/* Fetch v0–3: replaces one partition's segment region with its message set in r->conv, at
 * most limit bytes (the first message whole when min_one). The region is read into memory
 * once (it is already bounded by the max bytes, or is the first batch: at most
 * max.message.bytes); the segment reference is dropped. */
static void fetch_downconvert(part_read_t *r, int magic, int64_t fetch_offset, int64_t limit,
                              int min_one)
{
    kp_buf_t raw, scratch;
    kp_buf_init(&raw);
    kp_buf_init(&scratch);
    uint8_t *p = kp_buf_extend(&raw, (size_t)r->rd.len);
    if (kp_fs_pread_all(r->rd.seg->fd, p, (size_t)r->rd.len, r->rd.pos) < 0) {
        r->err = KERR_KAFKA_STORAGE_ERROR;
    } else {
        kp_msgset_status_t st =
            kp_msgset_from_batches(p, raw.len, magic, fetch_offset, limit, min_one, &scratch,
                                   &r->conv, KP_BATCH_INFLATE_BYTES_MAX);
        if (st == KP_MSGSET_BAD_CODEC)
            r->err = KERR_UNSUPPORTED_COMPRESSION_TYPE; /* zstd needs Fetch v10, as Kafka */
        else if (st != KP_MSGSET_OK)
            r->err = KERR_CORRUPT_MESSAGE;
        kp_metric_add(&kp_metrics.fetch_downconverted, 1);
    }
    kp_buf_free(&raw);
    kp_buf_free(&scratch);
    kp_segment_put(r->rd.seg);
    r->rd.seg = NULL;
    r->rd.len = 0;
}

/* Down-converts every partition read of a Fetch v0–3 in request order, sharing the
 * request's MaxBytes (v3) among the converted sizes. */
static void fetch_downconvert_all(const FetchRequest *in, int16_t version, part_read_t *reads)
{
    int magic = version <= 1 ? 0 : 1;
    int64_t budget = in->MaxBytes > 0 ? in->MaxBytes : 0, total = 0;
    int k = 0;
    for (int32_t i = 0; i < in->Topics.count; i++) {
        const FetchRequest_FetchTopic *ft = &in->Topics.items[i];
        for (int32_t j = 0; j < ft->Partitions.count; j++, k++) {
            part_read_t *r = &reads[k];
            if (!r->rd.seg || r->rd.len <= 0) continue;
            const FetchRequest_FetchPartition *fp = &ft->Partitions.items[j];
            int64_t limit = fp->PartitionMaxBytes > 0 ? fp->PartitionMaxBytes : 0;
            if (limit > budget - total) limit = budget - total;
            /* v3 returns the first message whole (KIP-74); v0-2 had a hard limit */
            fetch_downconvert(r, magic, fp->FetchOffset, limit, version == 3 && total == 0);
            total += (int64_t)r->conv.len;
        }
    }
}

static int count_parts(const FetchRequest *in)
{
    int n = 0;
    for (int32_t i = 0; i < in->Topics.count; i++)
        n += in->Topics.items[i].Partitions.count > 0 ? in->Topics.items[i].Partitions.count : 0;
    return n;
}

static int fetch_respond(kp_req_t *req, const FetchRequest *in, part_read_t *reads)
{
    if (req->api_version < 4) fetch_downconvert_all(in, req->api_version, reads);
    FetchResponse out;
    FetchResponse_init(&out);
    int32_t nt = in->Topics.count > 0 ? in->Topics.count : 0;
    out.Responses.count = nt;
    out.Responses.items =
        kp_arena_calloc(&req->arena, (size_t)nt + 1, sizeof(*out.Responses.items));
    if (!out.Responses.items) return -1;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const FetchRequest_FetchTopic *ft = &in->Topics.items[i];
        FetchResponse_FetchableTopicResponse *tr = &out.Responses.items[i];
        tr->Topic = ft->Topic;
        int32_t np = ft->Partitions.count > 0 ? ft->Partitions.count : 0;
        tr->Partitions.count = np;
        tr->Partitions.items =
            kp_arena_calloc(&req->arena, (size_t)np + 1, sizeof(*tr->Partitions.items));
        if (!tr->Partitions.items) return -1;
        for (int32_t j = 0; j < np; j++, k++) {
            FetchResponse_PartitionData *pd = &tr->Partitions.items[j];
            FetchResponse_PartitionData_init(pd);
            part_read_t *r = &reads[k];
            pd->PartitionIndex = ft->Partitions.items[j].Partition;
            pd->ErrorCode = r->err;
            int unknown = r->err == KERR_UNKNOWN_TOPIC_OR_PARTITION ||
                          r->err == KERR_TOPIC_AUTHORIZATION_FAILED;
            pd->HighWatermark = unknown ? -1 : r->rd.high_watermark;
            pd->LastStableOffset = unknown ? -1 : r->rd.last_stable_offset;
            pd->LogStartOffset = unknown ? -1 : r->rd.log_start_offset;
            pd->AbortedTransactions.count = in->IsolationLevel == 1 ? 0 : -1;
            if (r->naborted > 0) {
                pd->AbortedTransactions.items = kp_arena_calloc(
                    &req->arena, r->naborted, sizeof(*pd->AbortedTransactions.items));
                if (!pd->AbortedTransactions.items) return -1;
                for (size_t a = 0; a < r->naborted; a++) {
                    pd->AbortedTransactions.items[a].ProducerId = r->aborted[a].producer_id;
                    pd->AbortedTransactions.items[a].FirstOffset = r->aborted[a].first_offset;
                }
                pd->AbortedTransactions.count = (int32_t)r->naborted;
            }
            pd->Records = (kp_records_t){(const uint8_t *)"", 0, NULL, -1, 0};
            if (r->conv.len > 0) {
                pd->Records = (kp_records_t){r->conv.data, (int32_t)r->conv.len, NULL, -1, 0};
                kp_metric_add(&kp_metrics.fetch_bytes, (int64_t)r->conv.len);
                if (r->p) {
                    kp_metric_add(&r->p->stats.bytes_out, (int64_t)r->conv.len);
                    kp_metric_add(&r->p->stats.records_out, r->records_out);
                }
            } else if (r->rd.seg) {
                pd->Records.file_owner = &r->rd.seg->ref;
                pd->Records.file_fd = r->rd.seg->fd;
                pd->Records.file_pos = r->rd.pos;
                pd->Records.len = (int32_t)r->rd.len;
                kp_metric_add(&kp_metrics.fetch_bytes, r->rd.len);
                if (r->p) {
                    kp_metric_add(&r->p->stats.bytes_out, r->rd.len);
                    kp_metric_add(&r->p->stats.records_out, r->records_out);
                }
            }
        }
    }
    kp_req_begin_response(req);
    FetchResponse_encode(&req->resp, req->api_version, &out); /* takes its own references */
    release_reads(reads, k);
    kp_req_finish(req);
    return 0;
}

/* Runs a fetch; answers when it has enough (or `final`). Returns 1 when answered. */
static int fetch_try(kp_req_t *req, const FetchRequest *in, int final)
{
    part_read_t *reads;
    int64_t total = fetch_read(req, in, &reads);
    if (total < 0) {
        /* arena exhausted: answer with what the request allows (nothing) rather than hang */
        kp_conn_close(req->sess->conn, "fetch state allocation failed");
        kp_req_finish_silent(req);
        return 1;
    }
    int n = count_parts(in);
    int any_error = 0;
    for (int i = 0; i < n; i++) any_error |= reads[i].err != 0;
    if (final || total >= in->MinBytes || in->MaxWaitMs <= 0 || any_error || req->sess->closed) {
        if (fetch_respond(req, in, reads) < 0) {
            release_reads(reads, n);
            kp_conn_close(req->sess->conn, "fetch response allocation failed");
            kp_req_finish_silent(req);
        }
        return 1;
    }
    release_reads(reads, n);
    return 0;
}

static void unpark(kp_fetch_parked_t *fp)
{
    kp_loop_ctx_t *ctx = fp->ctx;
    if (fp->prev)
        fp->prev->next = fp->next;
    else
        ctx->parked = fp->next;
    if (fp->next) fp->next->prev = fp->prev;
    atomic_fetch_sub(&ctx->parked_count, 1);
}

static void park_timeout(kp_loop_t *loop, void *arg)
{
    kp_fetch_parked_t *fp = arg;
    fp->timer = NULL;
    unpark(fp);
    fetch_try(fp->req, &fp->in, 1);
}

static void park(kp_loop_ctx_t *ctx, kp_fetch_parked_t *fp)
{
    fp->prev = NULL;
    fp->next = ctx->parked;
    if (fp->next) fp->next->prev = fp;
    ctx->parked = fp;
    atomic_fetch_add(&ctx->parked_count, 1);
}

static void recheck(kp_loop_t *loop, void *arg)
{
    kp_loop_ctx_t *ctx = arg;
    atomic_store(&ctx->recheck_posted, 0);
    kp_fetch_parked_t *fp = ctx->parked;
    while (fp) {
        kp_fetch_parked_t *next = fp->next;
        /* fp lives in its request's arena: once fetch_try answers, both are gone, so take it
         * off the list and keep what we need first */
        kp_timer_t *timer = fp->timer;
        unpark(fp);
        if (fetch_try(fp->req, &fp->in, 0))
            kp_loop_timer_cancel(loop, timer);
        else
            park(ctx, fp); /* still short of min.bytes: back on the list (ahead of `next`) */
        fp = next;
    }
}

static void on_hwm(kp_partition_t *p, void *arg)
{
    kp_broker_t *b = arg;
    for (int i = 0; i < b->nloops; i++) {
        kp_loop_ctx_t *ctx = b->loop_ctx[i];
        if (atomic_load(&ctx->parked_count) > 0 && !atomic_exchange(&ctx->recheck_posted, 1))
            kp_loop_post(ctx->loop, recheck, ctx);
    }
}

void kp_fetch_wait_partition_hook(kp_partition_t *p, void *broker)
{
    kp_partition_set_hwm_callback(p, on_hwm, broker);
}

void kp_fetch_wait_flush_all(kp_loop_ctx_t *ctx)
{
    while (ctx->parked) {
        kp_fetch_parked_t *fp = ctx->parked;
        kp_loop_timer_cancel(ctx->loop, fp->timer);
        unpark(fp);
        fetch_try(fp->req, &fp->in, 1);
    }
}

int kp_handle_fetch(kp_req_t *req)
{
    kp_fetch_parked_t *fp = kp_arena_calloc(&req->arena, 1, sizeof(*fp));
    if (!fp) return -1;
    if (FetchRequest_decode(&req->body, req->api_version, &req->arena, &fp->in) < 0) return -1;
    if (fetch_try(req, &fp->in, 0)) return 0;
    kp_loop_ctx_t *ctx = req->sess->ctx;
    fp->req = req;
    fp->ctx = ctx;
    park(ctx, fp);
    int64_t wait =
        fp->in.MaxWaitMs > KP_FETCH_WAIT_MS_MAX ? KP_FETCH_WAIT_MS_MAX : fp->in.MaxWaitMs;
    fp->timer = kp_loop_timer(ctx->loop, wait, park_timeout, fp);
    return 0;
}
