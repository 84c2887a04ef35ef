/*
 * bench_produce.c — the producer side of `kpool bench`.
 *
 * One payload buffer is filled once and re-stamped per message (header: sequence and the
 * scheduled send time); librdkafka copies it (RD_KAFKA_MSG_F_COPY, one allocation inside
 * librdkafka, none here). The scheduled time also travels as the message opaque, so the
 * delivery report computes latency without any per-message state of ours.
 *
 * Latency is "send -> delivery report". With --rate the i-th message is scheduled at
 * start + i/rate and latency counts from that scheduled time, not from when produce() was
 * actually called: a stall (queue full, slow broker) then shows up in the percentiles
 * instead of silently delaying later sends (coordinated omission). Without --rate the
 * scheduled time is the moment of the call.
 *
 * Messages go round-robin over the partitions, so each gets the same load.
 */
#include "cli/bench.h"
#include "core/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct produce_ctx {
    kp_bench_result_t *r;
    int64_t last_dr_us; /* when the last delivery report arrived: progress and the end time */
    int fatal;          /* a fatal client error (idempotence violated, ...): stop now */
    char fatal_msg[200];
    int all_down; /* every broker unreachable: reported if progress then stalls */
} produce_ctx_t;

/* Delivery reports run inside rd_kafka_poll/flush on the producing thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_ctx_t *c = opaque;
    int64_t now = kp_mono_us();
    c->last_dr_us = now;
    if (m->err) {
        c->r->errors++;
        if (!c->r->error[0])
            snprintf(c->r->error, sizeof(c->r->error), "delivery failed: %s",
                     rd_kafka_err2str(m->err));
        return;
    }
    c->r->msgs++;
    c->r->bytes += (int64_t)m->len;
    kp_bench_hist_record(c->r->lat, now - (int64_t)(intptr_t)m->_private);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    produce_ctx_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) c->all_down = 1;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[160];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        snprintf(c->fatal_msg, sizeof(c->fatal_msg), "fatal producer error: %s", why);
        c->fatal = 1;
    }
}

/* Fills the payload once: a repeating text pattern (compresses somewhat, like real data). */
static void payload_init(char *p, int len)
{
    static const char pattern[] = "kpool-bench payload 0123456789 abcdefghijklmnopqrstuvwxyz ";
    for (int i = 0; i < len; i++) p[i] = pattern[i % (int)(sizeof(pattern) - 1)];
}

static void payload_stamp(char *p, int len, int64_t seq, int64_t sched_us)
{
    if (len < KP_BENCH_HEADER_BYTES) return;
    uint32_t magic = KP_BENCH_MAGIC, seq32 = (uint32_t)seq;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &seq32, 4);
    memcpy(p + 8, &sched_us, 8);
}

static void sleep_until_us(int64_t t_us)
{
    struct timespec ts = {.tv_sec = t_us / 1000000, .tv_nsec = (t_us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* 1 when nothing was delivered for the timeout (the cluster stopped answering). */
static int stalled(const produce_ctx_t *c, const kp_bench_opts_t *o, int64_t now)
{
    return now - c->last_dr_us > (int64_t)(o->timeout_s * 1e6);
}

static rd_kafka_t *producer_new(const kp_bench_opts_t *o, const char *bootstrap, produce_ctx_t *c,
                                char *errstr, size_t errlen)
{
    char rderr[512];
    const char *const props[][2] = {
        {"acks", o->acks},
        {"enable.idempotence", o->idempotence ? "true" : "false"},
        {"compression.codec", o->compression},
        {"linger.ms", o->linger_ms},
        {"batch.size", o->batch_bytes},
    };
    rd_kafka_conf_t *conf = kp_bench_conf_new(
        o, bootstrap, props, (int)(sizeof(props) / sizeof(props[0])), errstr, errlen);
    if (!conf) return NULL;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        kp_bench_errf(errstr, errlen, "cannot create producer: %s", rderr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Waits for every outstanding delivery report, failing if progress stops for the timeout. */
static int drain(rd_kafka_t *rk, const kp_bench_opts_t *o, produce_ctx_t *c,
                 kp_bench_shared_t *shared)
{
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_poll(rk, 50);
        if (shared) atomic_store(&shared->delivered_ok, c->r->msgs);
        int64_t now = kp_mono_us();
        if (c->fatal) return -1;
        if (stalled(c, o, now)) {
            snprintf(c->fatal_msg, sizeof(c->fatal_msg),
                     "no delivery report for %.0f s with %d messages outstanding%s", o->timeout_s,
                     rd_kafka_outq_len(rk), c->all_down ? " (all brokers down)" : "");
            c->fatal = 1;
            return -1;
        }
    }
    return 0;
}

/* --mode both: the consumer must be reading before the first send, or its connection setup
 * would count as end-to-end latency. */
static int wait_for_consumer(const kp_bench_opts_t *o, kp_bench_shared_t *shared,
                             kp_bench_result_t *r)
{
    if (!shared || !shared->wait_for_consumer) return 0;
    int64_t deadline = kp_mono_us() + (int64_t)(o->timeout_s * 1e6);
    while (!atomic_load(&shared->consumer_ready)) {
        if (atomic_load(&shared->stop)) {
            snprintf(r->error, sizeof(r->error), "stopped before the consumer was ready");
            return -1;
        }
        if (kp_mono_us() > deadline) {
            snprintf(r->error, sizeof(r->error), "consumer not ready after %.0f s", o->timeout_s);
            return -1;
        }
        usleep(10 * 1000);
    }
    usleep(100 * 1000); /* let its first fetch requests go out */
    return 0;
}

int kp_bench_produce(const kp_bench_opts_t *o, const char *bootstrap, const kp_bench_part_t *parts,
                     int nparts, kp_bench_shared_t *shared, kp_bench_result_t *r)
{
    produce_ctx_t c = {.r = r};
    r->ran = 1;
    r->has_latency = 1;
    rd_kafka_t *rk = producer_new(o, bootstrap, &c, r->error, sizeof(r->error));
    if (!rk) return -1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (kp_bench_connect(rk, o->topic, (int)(o->timeout_s * 1000), r->error, sizeof(r->error)) <
            0 ||
        wait_for_consumer(o, shared, r) < 0) {
        if (shared) {
            atomic_store(&shared->stop, 1);
            atomic_store(&shared->producer_done, 1);
        }
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return -1;
    }
    char *payload = malloc((size_t)o->message_bytes);
    payload_init(payload, o->message_bytes);

    int64_t start_us = kp_mono_us();
    int64_t end_us = o->duration_s > 0 ? start_us + (int64_t)(o->duration_s * 1e6) : INT64_MAX;
    double interval_us = o->rate > 0 ? 1e6 / o->rate : 0;
    c.last_dr_us = start_us;
    int failed = 0;
    for (int64_t i = 0; o->duration_s > 0 || i < o->count; i++) {
        if (shared && atomic_load(&shared->stop)) break;
        int64_t now = kp_mono_us();
        int64_t sched = now;
        if (interval_us > 0) {
            sched = start_us + (int64_t)((double)i * interval_us);
            if (sched > now) {
                rd_kafka_poll(rk, 0);
                sleep_until_us(sched);
                now = kp_mono_us();
            }
        }
        if (now >= end_us) break;
        payload_stamp(payload, o->message_bytes, i, sched);
        while (rd_kafka_produce(rkt, parts[i % nparts].id, RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)o->message_bytes, NULL, 0, (void *)(intptr_t)sched) < 0) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                snprintf(c.fatal_msg, sizeof(c.fatal_msg), "produce: %s", rd_kafka_err2str(err));
                c.fatal = 1;
                break;
            }
            r->queue_full++;
            rd_kafka_poll(rk, 1);
            if (c.fatal || stalled(&c, o, kp_mono_us())) {
                if (!c.fatal)
                    snprintf(c.fatal_msg, sizeof(c.fatal_msg),
                             "local queue full and no delivery report for %.0f s%s", o->timeout_s,
                             c.all_down ? " (all brokers down)" : "");
                c.fatal = 1;
                break;
            }
        }
        if (c.fatal) break;
        rd_kafka_poll(rk, 0);
        if (shared && (i & 1023) == 0) atomic_store(&shared->delivered_ok, r->msgs);
    }
    if (!c.fatal) drain(rk, o, &c, shared);
    if (c.fatal) {
        failed = 1;
        snprintf(r->error, sizeof(r->error), "%s", c.fatal_msg);
        if (shared) atomic_store(&shared->stop, 1);
    }
    r->elapsed_us = c.last_dr_us - start_us;
    if (shared) {
        atomic_store(&shared->delivered_ok, r->msgs);
        atomic_store(&shared->producer_done, 1);
    }
    /* Outstanding messages (after a failure) are purged rather than waited for. */
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return failed || r->errors ? -1 : 0;
}
