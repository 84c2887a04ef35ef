/*
 * handle_log_dirs.c — DescribeLogDirs (v0-1) and the per-partition log sizes in /metrics.
 *
 * The broker has one log directory (log.dirs); every partition's log is in it. Each
 * partition's size is the sum of its segments' bytes (kp_partition_size_bytes), as Kafka reports
 * it. Authorization as Kafka 3.x: DESCRIBE on CLUSTER; a caller without it gets an empty
 * result list (v0-1 have no top-level error code).
 */
#include "auth/acl.h"
#include "broker/broker.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "broker/topics.h"
#include "core/buf.h"
#include "core/logging.h"
#include "kp_msgs.h"
#include "storage/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

void kp_broker_log_dir_failed(kp_broker_t *b, int err, const char *what)
{
    if (atomic_exchange(&b->log_dir_failed, 1)) return;
    kp_partition_fail_all();
    atomic_store(&b->ready, 0);
    kp_error("broker",
             "log directory %s failed: %s (%s): every partition in it is offline on this broker "
             "(clients get KAFKA_STORAGE_ERROR)%s; replace the disk (an empty directory is fine) "
             "and restart the broker: it copies its partitions back from the leaders",
             b->cfg.log_dir, strerror(err), what,
             b->pool ? "; its leaderships and ISR places go to the other replicas" : "");
    if (b->pool) kp_rpool_wake(b->pool);
}

void kp_broker_check_log_dir(kp_broker_t *b)
{
    if (atomic_load(&b->log_dir_failed)) return;
    struct stat st;
    if (stat(b->cfg.log_dir, &st) < 0)
        kp_broker_log_dir_failed(b, errno, "the directory is gone");
    else if ((unsigned long long)st.st_dev != b->log_dir_dev ||
             (unsigned long long)st.st_ino != b->log_dir_ino)
        kp_broker_log_dir_failed(b, ENOENT, "the directory was replaced while in use");
}

/* The requested partitions of topic (all when r is NULL) into t; -1 on allocation failure. */
static int describe_topic(kp_req_t *req, kp_topic_t *topic,
                          const DescribeLogDirsRequest_DescribableLogDirTopic *r,
                          DescribeLogDirsResponse_DescribeLogDirsTopic *t)
{
    DescribeLogDirsResponse_DescribeLogDirsTopic_init(t);
    t->Name = kp_str_c(topic->name);
    int32_t n = atomic_load_explicit(&topic->npartitions, memory_order_acquire);
    int32_t want = r ? (r->Partitions.count > 0 ? r->Partitions.count : 0) : n;
    t->Partitions.items = kp_req_alloc(req, ((size_t)want + 1) * sizeof(*t->Partitions.items));
    if (!t->Partitions.items) return -1;
    for (int32_t i = 0; i < want; i++) {
        kp_partition_t *p = kp_topic_partition(topic, r ? r->Partitions.items[i] : i);
        if (!p) continue; /* as Kafka: a partition this broker does not have is left out */
        DescribeLogDirsResponse_DescribeLogDirsPartition *o =
            &t->Partitions.items[t->Partitions.count++];
        DescribeLogDirsResponse_DescribeLogDirsPartition_init(o);
        o->PartitionIndex = p->index;
        o->PartitionSize = kp_partition_size_bytes(p);
        o->OffsetLag = 0;
        o->IsFutureKey = 0;
    }
    return 0;
}

int kp_handle_describe_log_dirs(kp_req_t *req)
{
    DescribeLogDirsRequest in;
    if (DescribeLogDirsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    DescribeLogDirsResponse out;
    DescribeLogDirsResponse_init(&out);
    kp_broker_t *b = req->sess->broker;
    int failed = 0;
    if (kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        DescribeLogDirsResponse_DescribeLogDirsResult *d = kp_req_alloc(req, sizeof(*d));
        if (!d) return -1;
        DescribeLogDirsResponse_DescribeLogDirsResult_init(d);
        d->ErrorCode = 0;
        d->LogDir = kp_str_c(b->cfg.log_dir);
        out.Results.items = d;
        out.Results.count = 1;
        if (atomic_load(&b->log_dir_failed)) {
            d->ErrorCode = KERR_KAFKA_STORAGE_ERROR; /* as Kafka's offline dir: no topics */
        } else if (in.Topics.count < 0) {            /* null: every topic */
            int n;
            kp_topic_t **list = kp_topics_list(b->topics, &n);
            d->Topics.items = kp_req_alloc(req, ((size_t)n + 1) * sizeof(*d->Topics.items));
            for (int i = 0; i < n && d->Topics.items && !failed; i++)
                failed = describe_topic(req, list[i], NULL, &d->Topics.items[d->Topics.count++]);
            if (!d->Topics.items) failed = 1;
            kp_topics_list_free(list, n);
        } else {
            d->Topics.items =
                kp_req_alloc(req, ((size_t)in.Topics.count + 1) * sizeof(*d->Topics.items));
            if (!d->Topics.items) return -1;
            for (int32_t i = 0; i < in.Topics.count && !failed; i++) {
                const DescribeLogDirsRequest_DescribableLogDirTopic *r = &in.Topics.items[i];
                kp_topic_t *topic = kp_topics_get(b->topics, r->Topic);
                if (!topic) continue; /* as Kafka: unknown topics are left out */
                failed = describe_topic(req, topic, r, &d->Topics.items[d->Topics.count++]);
                kp_topic_put(topic);
            }
        }
    }
    if (failed) return -1;
    kp_req_begin_response(req);
    DescribeLogDirsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* Appends "<name>{topic=\"<topic>\"[,partition=\"<p>\"]} <v>\n" (no partition label when
 * partition < 0) without printf: the page has a few lines per partition, tens of thousands
 * on a broker of many topics, rendered at each scrape. Topic names are [a-zA-Z0-9._-]:
 * nothing to escape in a label. */
static void put_series(kp_buf_t *out, const char *name, const char *topic, int32_t partition,
                       int64_t v)
{
    size_t nl = strlen(name), tl = strlen(topic);
    kp_buf_reserve(out, nl + tl + 64);
    char *p = (char *)out->data + out->len;
    memcpy(p, name, nl);
    p += nl;
    memcpy(p, "{topic=\"", 8);
    p += 8;
    memcpy(p, topic, tl);
    p += tl;
    *p++ = '"';
    char digits[24];
    if (partition >= 0) {
        memcpy(p, ",partition=\"", 12);
        p += 12;
        int n = 0;
        do digits[n++] = (char)('0' + partition % 10);
        while ((partition /= 10) > 0);
        while (n) *p++ = digits[--n];
        *p++ = '"';
    }
    *p++ = '}';
    *p++ = ' ';
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) *p++ = '-';
    int n = 0;
    do digits[n++] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    while (n) *p++ = digits[--n];
    *p++ = '\n';
    out->len = (size_t)(p - (char *)out->data);
}

/* kpool_topic_{bytes,records}_{in,out}_total: each topic's partition counters summed
 * (partition.h, kp_partition_stats_t). One series per topic and counter: the cardinality
 * is the number of topics this broker holds. Since the broker started. */
static void render_topic_traffic(kp_buf_t *out, kp_topic_t **list, int n)
{
    static const struct {
        const char *name, *help;
        size_t field;
    } m[] = {
        {"kpool_topic_bytes_in_total", "Record batch bytes appended by Produce, by topic.",
         offsetof(kp_partition_stats_t, bytes_in)},
        {"kpool_topic_records_in_total", "Records appended by Produce, by topic.",
         offsetof(kp_partition_stats_t, records_in)},
        {"kpool_topic_bytes_out_total",
         "Record bytes sent to consumers by Fetch, by topic (not to followers).",
         offsetof(kp_partition_stats_t, bytes_out)},
        {"kpool_topic_records_out_total",
         "Records (offsets) sent to consumers by Fetch, by topic; estimated from the average "
         "record size when a fetch's byte limit cuts the read (docs/metrics.md).",
         offsetof(kp_partition_stats_t, records_out)},
    };
    for (size_t k = 0; k < sizeof(m) / sizeof(*m); k++) {
        kp_buf_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", m[k].name, m[k].help, m[k].name);
        for (int i = 0; i < n; i++) {
            long long sum = 0;
            int32_t np = atomic_load_explicit(&list[i]->npartitions, memory_order_acquire);
            for (int32_t j = 0; j < np; j++) {
                kp_partition_t *p = kp_topic_partition(list[i], j);
                if (p)
                    sum += atomic_load_explicit((atomic_llong *)((char *)&p->stats + m[k].field),
                                                memory_order_relaxed);
            }
            put_series(out, m[k].name, list[i]->name, -1, sum);
        }
    }
}

void kp_broker_render_log_dirs(kp_buf_t *out, kp_broker_t *b)
{
    int n;
    kp_topic_t **list = kp_topics_list(b->topics, &n);
    int64_t total = 0;
    kp_buf_appendf(out, "# HELP kpool_partition_size_bytes Bytes of a partition's log segments "
                        "(as DescribeLogDirs reports).\n"
                        "# TYPE kpool_partition_size_bytes gauge\n");
    for (int i = 0; i < n; i++) {
        int32_t np = atomic_load_explicit(&list[i]->npartitions, memory_order_acquire);
        for (int32_t j = 0; j < np; j++) {
            kp_partition_t *p = kp_topic_partition(list[i], j);
            if (!p) continue;
            int64_t size = kp_partition_size_bytes(p);
            total += size;
            put_series(out, "kpool_partition_size_bytes", list[i]->name, j, size);
        }
    }
    kp_buf_appendf(out, "# HELP kpool_partition_end_offset The next offset a partition assigns.\n"
                        "# TYPE kpool_partition_end_offset gauge\n");
    for (int i = 0; i < n; i++) {
        int32_t np = atomic_load_explicit(&list[i]->npartitions, memory_order_acquire);
        for (int32_t j = 0; j < np; j++) {
            kp_partition_t *p = kp_topic_partition(list[i], j);
            if (!p) continue;
            int64_t start, end, leo; /* end: the local committed end, as it was */
            kp_partition_log_offsets(p, &start, &end, &leo);
            put_series(out, "kpool_partition_end_offset", list[i]->name, j, end);
        }
    }
    render_topic_traffic(out, list, n);
    kp_topics_list_free(list, n);
    kp_buf_appendf(out,
                   "# HELP kpool_log_dir_size_bytes Bytes of every partition's log.\n"
                   "# TYPE kpool_log_dir_size_bytes gauge\n"
                   "kpool_log_dir_size_bytes %" PRId64 "\n",
                   total);
    kp_buf_appendf(out,
                   "# HELP kpool_log_dir_offline 1 once the log directory failed (EIO, or gone): "
                   "this broker serves none of its partitions until restarted on a working "
                   "one.\n# TYPE kpool_log_dir_offline gauge\nkpool_log_dir_offline %d\n",
                   atomic_load(&b->log_dir_failed));
    struct statvfs vfs;
    if (statvfs(b->cfg.log_dir, &vfs) == 0) {
        kp_buf_appendf(out,
                       "# HELP kpool_log_dir_free_bytes Free bytes of the log directory's file "
                       "system (for unprivileged users).\n# TYPE kpool_log_dir_free_bytes gauge\n"
                       "kpool_log_dir_free_bytes %" PRIu64 "\n"
                       "# HELP kpool_log_dir_capacity_bytes Size of the log directory's file "
                       "system.\n# TYPE kpool_log_dir_capacity_bytes gauge\n"
                       "kpool_log_dir_capacity_bytes %" PRIu64 "\n",
                       (uint64_t)vfs.f_bavail * vfs.f_frsize,
                       (uint64_t)vfs.f_blocks * vfs.f_frsize);
    }
}
