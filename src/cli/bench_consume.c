/*
 * bench_consume.c — the consumer side of `kpool bench`.
 *
 * The consumer takes its partitions from metadata and assign()s them with explicit start
 * offsets: no subscription, no group rebalance, no offset commits (the group.id is only there
 * because librdkafka's assign() needs one). It stops when it has the target number of
 * messages, when the concurrent producer is done and everything it delivered was read, or
 * when nothing arrived for --timeout seconds.
 *
 * Throughput counts from the first message to the last, so connection setup and the first
 * fetch round trip are not part of it.
 *
 * End-to-end latency (--mode both) is "scheduled send time in the payload header -> the
 * message returned by consumer_poll", both on CLOCK_MONOTONIC in the same process. Messages
 * are not copied: librdkafka's message is read in place and destroyed.
 */
#include "cli/bench.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct consume_ctx {
    int all_down;
} consume_ctx_t;

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    consume_ctx_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) c->all_down = 1;
}

static rd_kafka_t *consumer_new(const kp_bench_opts_t *o, const char *bootstrap, consume_ctx_t *c,
                                char *errstr, size_t errlen)
{
    char rderr[512], group[64];
    snprintf(group, sizeof(group), "kpool-bench-%ld", (long)getpid());
    const char *const props[][2] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "false"},
        /* a start offset the cluster no longer has is an error, not a silent skip */
        {"auto.offset.reset", "error"},
        /* librdkafka 2.0 pauses fetching above these local queue limits and resumes only
         * on its next broker-thread wakeup (up to ~1 s later): a read-back of 100 B messages
         * then measured 0.5M or 2M msg/s by luck. Limits this high keep the bench's own
         * queue out of the measurement. */
        {"queued.min.messages", "10000000"},
        {"queued.max.messages.kbytes", "1048576"},
    };
    rd_kafka_conf_t *conf = kp_bench_conf_new(
        o, bootstrap, props, (int)(sizeof(props) / sizeof(props[0])), errstr, errlen);
    if (!conf) return NULL;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        kp_bench_errf(errstr, errlen, "cannot create consumer: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int assign(rd_kafka_t *rk, const kp_bench_opts_t *o, const kp_bench_part_t *parts,
                  int nparts, char *errstr, size_t errlen)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(l, o->topic, parts[i].id)->offset = parts[i].start_offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        kp_bench_errf(errstr, errlen, "assign: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* 1 when the consumer has everything it was asked for. */
static int done(const kp_bench_result_t *r, int64_t target, kp_bench_shared_t *shared)
{
    if (target > 0 && r->msgs >= target) return 1;
    if (shared) {
        if (atomic_load(&shared->stop)) return 1;
        if (atomic_load(&shared->producer_done) && r->msgs >= atomic_load(&shared->delivered_ok))
            return 1;
    }
    return 0;
}

static void record_message(kp_bench_result_t *r, const rd_kafka_message_t *m, int e2e, int64_t now)
{
    r->msgs++;
    r->bytes += (int64_t)m->len;
    if (!e2e || m->len < KP_BENCH_HEADER_BYTES) return;
    uint32_t magic;
    int64_t sched_us;
    memcpy(&magic, m->payload, 4);
    memcpy(&sched_us, (const char *)m->payload + 8, 8);
    if (magic == KP_BENCH_MAGIC) kp_bench_hist_record(r->lat, now - sched_us);
}

int kp_bench_consume(const kp_bench_opts_t *o, const char *bootstrap, const kp_bench_part_t *parts,
                     int nparts, int64_t target, kp_bench_shared_t *shared, int e2e,
                     kp_bench_result_t *r)
{
    consume_ctx_t c = {0};
    r->ran = 1;
    r->has_latency = e2e && o->message_bytes >= KP_BENCH_HEADER_BYTES;
    rd_kafka_t *rk = consumer_new(o, bootstrap, &c, r->error, sizeof(r->error));
    if (!rk) return -1;
    int rc = 0;
    int64_t start_us = kp_mono_us(), last_us = start_us;
    if (kp_bench_connect(rk, o->topic, (int)(o->timeout_s * 1000), r->error, sizeof(r->error)) <
            0 ||
        assign(rk, o, parts, nparts, r->error, sizeof(r->error)) < 0) {
        rc = -1;
        if (shared) atomic_store(&shared->stop, 1);
        goto out;
    }
    if (shared) atomic_store(&shared->consumer_ready, 1);
    int64_t idle_limit_us = (int64_t)(o->timeout_s * 1e6);
    while (!done(r, target, shared)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        int64_t now = kp_mono_us();
        if (!m) {
            if (now - last_us > idle_limit_us) {
                char want[48] = "";
                if (target > 0) snprintf(want, sizeof(want), " of %lld", (long long)target);
                kp_bench_errf(r->error, sizeof(r->error),
                              "no message for %.0f s after %lld%s consumed%s", o->timeout_s,
                              (long long)r->msgs, want, c.all_down ? " (all brokers down)" : "");
                rc = -1;
                break;
            }
            continue;
        }
        if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET;
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                r->errors++;
                if (!r->error[0])
                    snprintf(r->error, sizeof(r->error), "%s%s", rd_kafka_message_errstr(m),
                             fatal && o->mock_brokers
                                 ? " (the mock cluster keeps only about 5 MiB per partition)"
                                 : "");
            }
            rd_kafka_message_destroy(m);
            if (fatal) {
                rc = -1;
                break;
            }
            continue;
        }
        if (r->msgs == 0) start_us = now;
        record_message(r, m, e2e, now);
        last_us = now;
        rd_kafka_message_destroy(m);
    }
out:
    r->elapsed_us = last_us - start_us;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc < 0 || r->errors ? -1 : 0;
}
