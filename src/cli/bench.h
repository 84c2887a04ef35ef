/*
 * bench.h — internals of `kpool bench`, the librdkafka load generator.
 *
 *   bench.c          options, --help, orchestration of the modes, the report
 *   bench_hist.c     log-bucketed latency histogram (fixed memory, no allocation per record)
 *   bench_kafka.c    client configuration, --mock clusters, topic creation, metadata
 *   bench_produce.c  the producer run (full speed or paced, delivery-report latency)
 *   bench_consume.c  the consumer run (assign() from metadata, end-to-end latency)
 *
 * Payload layout: every message is --message-size bytes; when that is at least
 * KP_BENCH_HEADER_BYTES it starts with a header (magic, scheduled send time in monotonic
 * microseconds) so a consumer in the same run can measure end-to-end latency. The rest is a
 * fixed, mildly compressible pattern, written once.
 *
 * Threading: the producer and its delivery reports run on the calling thread; in --mode both
 * the consumer runs on a second thread and shares only kp_bench_shared_t (atomics).
 */
#ifndef KP_BENCH_H
#define KP_BENCH_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdint.h>

/* Histogram precision: 2^KP_BENCH_HIST_SUB_BITS buckets per power of two, so a recorded value
 * is off by less than 1/128 (0.8%). */
#define KP_BENCH_HIST_SUB_BITS 7
/* Largest value kept exactly in a bucket: 2^40 us (about 12.7 days); larger ones are clamped
 * (the max is still exact). Bounds the histogram to a fixed 34 x 128 counters. */
#define KP_BENCH_HIST_MAX_BITS 40
#define KP_BENCH_HIST_BUCKETS                                                                      \
    ((KP_BENCH_HIST_MAX_BITS - KP_BENCH_HIST_SUB_BITS + 1) << KP_BENCH_HIST_SUB_BITS)

typedef struct kp_bench_hist {
    uint64_t counts[KP_BENCH_HIST_BUCKETS];
    uint64_t total;
    int64_t min_us, max_us;
    double sum_us;
} kp_bench_hist_t;

void kp_bench_hist_reset(kp_bench_hist_t *h);
/* Records one value (negative values count as 0). O(1), no allocation. */
void kp_bench_hist_record(kp_bench_hist_t *h, int64_t value_us);
/* The value at percentile pct (0..100): the midpoint of the bucket holding that rank, clamped
 * to [min, max]. 0 when empty. */
int64_t kp_bench_hist_percentile(const kp_bench_hist_t *h, double pct);

#define KP_BENCH_MAGIC        0x3142504bu /* "KPB1" little-endian */
#define KP_BENCH_HEADER_BYTES 16          /* u32 magic, u32 sequence (low bits), i64 sched_us */

/* Longest topic / bootstrap string we accept: keeps every buffer fixed. */
#define KP_BENCH_NAME_MAX 249
/* Most --set overrides accepted: the array is fixed. */
#define KP_BENCH_SETS_MAX 64
/* Most partitions a bench topic may have: the per-partition arrays are sized from metadata,
 * this only rejects absurd requests early. */
#define KP_BENCH_PARTITIONS_MAX 10000

typedef enum {
    KP_BENCH_PRODUCE,
    KP_BENCH_CONSUME,
    KP_BENCH_BOTH,      /* producer and consumer concurrently: end-to-end latency */
    KP_BENCH_SEQUENTIAL /* produce, then consume the same messages back from the log */
} kp_bench_mode_t;

typedef struct kp_bench_opts {
    kp_bench_mode_t mode;
    const char *bootstrap;
    int mock_brokers; /* > 0: librdkafka's in-process mock cluster instead of bootstrap */
    const char *topic;
    int partitions;
    int replication; /* replication factor when creating the topic (1; a pool allows more) */
    int message_bytes;
    int64_t count;           /* messages to produce (or consume); 0 with duration_s */
    double duration_s;       /* > 0: produce for this long instead of count */
    const char *acks;        /* "0", "1", "all" */
    int idempotence;         /* enable.idempotence=true */
    const char *compression; /* compression.codec */
    double rate;             /* msgs/s; 0 = as fast as possible */
    const char *linger_ms;   /* NULL: librdkafka's default */
    const char *batch_bytes; /* batch.size; NULL: default */
    const char *security;    /* security.protocol */
    const char *ssl_ca, *ssl_cert, *ssl_key;
    const char *sets[KP_BENCH_SETS_MAX]; /* "key=value", applied last */
    int nsets;
    double timeout_s; /* no progress for this long = failure */
    int json;
    int count_given; /* --count was given (consume reads everything without it) */
    int quiet;
} kp_bench_opts_t;

/* What one side (produce or consume) measured. */
typedef struct kp_bench_result {
    int ran;
    int64_t msgs;         /* delivered (produce) or consumed (consume) */
    int64_t bytes;        /* payload bytes of those messages */
    int64_t errors;       /* failed deliveries / consume errors */
    int64_t queue_full;   /* produce: times the local queue was full (we polled and retried) */
    int64_t elapsed_us;   /* first send (or assign) to last delivery (or message) */
    int has_latency;      /* lat holds samples worth reporting */
    kp_bench_hist_t *lat; /* owned by the caller */
    char error[256];      /* first error, for the message; "" if none */
} kp_bench_result_t;

/* State the producer publishes for a concurrent consumer (--mode both). */
typedef struct kp_bench_shared {
    _Atomic int64_t delivered_ok;
    _Atomic int producer_done;
    _Atomic int stop;           /* SIGINT or a fatal error: everyone winds down */
    _Atomic int consumer_ready; /* --mode both: the consumer is connected and assigned */
    int wait_for_consumer;      /* the producer waits for consumer_ready before sending */
} kp_bench_shared_t;

/* A partition of the bench topic and where a consumer starts reading it. */
typedef struct kp_bench_part {
    int32_t id;
    int64_t start_offset; /* RD_KAFKA_OFFSET_BEGINNING or an absolute offset */
    int64_t available;    /* consume mode: high - low watermark at start */
} kp_bench_part_t;

/* bench_kafka.c */

/* A configuration with bootstrap, security, then extra (pairs {key, value}; a NULL value is
 * skipped), then --set applied, so the user's word wins. NULL with errstr set. */
rd_kafka_conf_t *kp_bench_conf_new(const kp_bench_opts_t *o, const char *bootstrap,
                                   const char *const extra[][2], int nextra, char *errstr,
                                   size_t errlen);
/* Creates the mock cluster for --mock: returns the handle that owns it (destroy it last) and
 * writes its bootstrap list to bootstrap. NULL with errstr set. */
rd_kafka_t *kp_bench_mock_start(const kp_bench_opts_t *o, char *bootstrap, size_t len, char *errstr,
                                size_t errlen);
/* Makes sure the topic exists (creating it with o->partitions and o->replication) and fills
 * parts (allocated, caller frees) from metadata. 0, or -1 with errstr set. */
int kp_bench_topic_prepare(rd_kafka_t *rk, const kp_bench_opts_t *o, int create,
                           kp_bench_part_t **parts, int *nparts, char *errstr, size_t errlen);
/* Reads each partition's watermarks: start_offset = high (from_end) or BEGINNING, and
 * available = high - low. 0, or -1 with errstr set. */
int kp_bench_watermarks(rd_kafka_t *rk, const char *topic, kp_bench_part_t *parts, int nparts,
                        int from_end, int timeout_ms, char *errstr, size_t errlen);
/* One metadata round trip for topic, so the client is connected before the clock starts.
 * 0, or -1 with errstr set. */
int kp_bench_connect(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                     size_t errlen);
void kp_bench_errf(char *errstr, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bench_produce.c: produces on the calling thread. 0, or -1 with r->error set. */
int kp_bench_produce(const kp_bench_opts_t *o, const char *bootstrap, const kp_bench_part_t *parts,
                     int nparts, kp_bench_shared_t *shared, kp_bench_result_t *r);

/* bench_consume.c: consumes from parts on the calling thread until target messages (0 = sum
 * of parts' available; with shared, the producer's delivered count once it is done) or idle
 * timeout. e2e: record end-to-end latency from the payload header. 0, or -1 with r->error. */
int kp_bench_consume(const kp_bench_opts_t *o, const char *bootstrap, const kp_bench_part_t *parts,
                     int nparts, int64_t target, kp_bench_shared_t *shared, int e2e,
                     kp_bench_result_t *r);

#endif
