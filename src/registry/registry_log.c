/*
 * registry_log.c — `_schemas` over librdkafka (see registry_log.h).
 *
 * Threads: the consumer thread owns the consumer handle; writers (one at a time) own the
 * producer handle. `mu` guards applied_next / ready / failure text, and `cond` wakes
 * writers waiting for their records to come back.
 */
#include "registry/registry_log.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Partition of `_schemas` that holds everything (single writer, total order). */
#define REG_PARTITION 0
/* How long the consumer's Fetch waits at the broker for a record: the broker answers as soon
 * as one is appended (long polling), so this does not delay reading a write back; it only
 * sets how often an idle registry asks again. Each ask is a TLS round trip on a broker
 * thread and on librdkafka's: at 100 ms they were the steadiest idle CPU of `kpool up`
 * after the watch hubs (docs/performance.md, idle CPU). Kafka's and librdkafka's default. */
#define FETCH_WAIT_MAX_MS "500"
/* Consumer poll period: how quickly the thread notices a stop request. */
#define REG_POLL_MS 200

struct kp_reg_log {
    rd_kafka_t *producer, *consumer;
    char *topic, *bootstrap;
    int replication, timeout_ms;
    kp_reg_log_apply_fn apply;
    void *arg;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t applied_next; /* offset after the last record applied */
    int ready;
};

static void rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kp_logf(level <= 3   ? KP_LOG_WARN
            : level <= 6 ? KP_LOG_INFO
                         : KP_LOG_DEBUG,
            "registry-kafka", "%s: %s", fac, buf);
}

typedef struct delivery {
    int pending;
    int64_t last_offset;
    rd_kafka_resp_err_t err;
} delivery_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery_t *d = m->_private;
    d->pending--;
    if (m->err) {
        if (!d->err) d->err = m->err;
    } else if (m->offset > d->last_offset) {
        d->last_offset = m->offset;
    }
}

static rd_kafka_t *client_new(const kp_reg_log_config_t *cfg, rd_kafka_type_t type, char *err,
                              size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct {
        const char *k, *v;
    } common[] = {{"bootstrap.servers", cfg->bootstrap},
                  {"client.id", "kpool-schema-registry"},
                  {"log_level", "4"},
                  {"reconnect.backoff.max.ms", "2000"},
                  {"security.protocol", cfg->cert_path || cfg->ca_path ? "ssl" : "plaintext"},
                  {"ssl.ca.location", cfg->ca_path},
                  {"ssl.certificate.location", cfg->cert_path},
                  {"ssl.key.location", cfg->key_path}},
      producer[] = {{"acks", "all"}, {"enable.idempotence", "true"}, {"linger.ms", "0"}},
      consumer[] = {{"group.id", "kpool-schema-registry"}, /* never joins: assign() only */
                    {"enable.auto.commit", "false"},         {"enable.auto.offset.store", "false"},
                    {"enable.partition.eof", "false"},       {"auto.offset.reset", "earliest"},
                    {"fetch.wait.max.ms", FETCH_WAIT_MAX_MS}};
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof(common) / sizeof(common[0]); i++)
        if (common[i].v)
            ok = rd_kafka_conf_set(conf, common[i].k, common[i].v, es, sizeof(es)) ==
                 RD_KAFKA_CONF_OK;
    size_t n = type == RD_KAFKA_PRODUCER ? sizeof(producer) / sizeof(producer[0])
                                         : sizeof(consumer) / sizeof(consumer[0]);
    for (size_t i = 0; ok && i < n; i++) {
        const char *k = type == RD_KAFKA_PRODUCER ? producer[i].k : consumer[i].k;
        const char *v = type == RD_KAFKA_PRODUCER ? producer[i].v : consumer[i].v;
        ok = rd_kafka_conf_set(conf, k, v, es, sizeof(es)) == RD_KAFKA_CONF_OK;
    }
    if (ok && type == RD_KAFKA_PRODUCER) {
        char t[32];
        snprintf(t, sizeof(t), "%d", cfg->timeout_ms);
        ok = rd_kafka_conf_set(conf, "message.timeout.ms", t, es, sizeof(es)) == RD_KAFKA_CONF_OK;
    }
    if (!ok) {
        snprintf(err, errlen, "registry Kafka client: %s", es);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, rk_log);
    if (type == RD_KAFKA_PRODUCER) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(type, conf, es, sizeof(es));
    if (!rk) snprintf(err, errlen, "registry Kafka client: %s", es);
    return rk;
}

/* Creates the topic unless it exists. 0, or -1 with err (the caller retries). */
static int topic_ensure(kp_reg_log_t *log, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(log->producer, 1, NULL, &md, log->timeout_ms);
    if (e) {
        snprintf(err, errlen, "metadata: %s", rd_kafka_err2str(e));
        return -1;
    }
    int exists = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, log->topic) && !md->topics[i].err) exists = 1;
    rd_kafka_metadata_destroy(md);
    if (exists) return 0;
    char es[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(log->topic, 1, log->replication, es, sizeof(es));
    if (!nt) {
        snprintf(err, errlen, "create %s: %s", log->topic, es);
        return -1;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(log->producer);
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(log->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(o, log->timeout_ms, es, sizeof(es));
    rd_kafka_CreateTopics(log->producer, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, log->timeout_ms + 2000);
    int rc = -1;
    if (!ev) {
        snprintf(err, errlen, "create %s: no answer", log->topic);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "create %s: %s", log->topic, rd_kafka_event_error_string(ev));
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t te = cnt ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__FAIL;
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = 0;
            if (te == RD_KAFKA_RESP_ERR_NO_ERROR)
                kp_info("registry", "created topic %s (compacted)", log->topic);
        } else {
            const char *m = cnt ? rd_kafka_topic_result_error_string(tr[0]) : NULL;
            snprintf(err, errlen, "create %s: %s", log->topic, m ? m : rd_kafka_err2str(te));
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static void set_applied(kp_reg_log_t *log, int64_t next, int64_t target)
{
    pthread_mutex_lock(&log->mu);
    if (next > log->applied_next) log->applied_next = next;
    if (!log->ready && log->applied_next >= target) {
        log->ready = 1;
        kp_info("registry", "replayed %s up to offset %lld: serving", log->topic,
                (long long)target);
    }
    pthread_cond_broadcast(&log->cond);
    pthread_mutex_unlock(&log->mu);
}

/* Waits for the topic, then assigns partition 0 from the beginning. -1 when stopped. */
static int consumer_begin(kp_reg_log_t *log, int64_t *target)
{
    char err[512];
    int64_t backoff_ms = 200;
    for (;;) {
        int64_t low = 0, high = 0;
        err[0] = 0;
        if (topic_ensure(log, err, sizeof(err)) == 0) {
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                log->consumer, log->topic, REG_PARTITION, &low, &high, log->timeout_ms);
            if (!e) {
                *target = high;
                break;
            }
            snprintf(err, sizeof(err), "offsets of %s: %s", log->topic, rd_kafka_err2str(e));
        }
        kp_warn("registry", "waiting for the pool at %s: %s", log->bootstrap, err);
        for (int64_t waited = 0; waited < backoff_ms; waited += 50) {
            if (atomic_load(&log->stop)) return -1;
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (backoff_ms < 5000) backoff_ms *= 2;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, log->topic, REG_PARTITION)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(log->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) kp_error("registry", "assign %s: %s", log->topic, rd_kafka_err2str(e));
    return 0;
}

static void *consumer_main(void *p)
{
    kp_reg_log_t *log = p;
    int64_t target = 0;
    if (consumer_begin(log, &target) < 0) return NULL;
    set_applied(log, 0, target);
    while (!atomic_load(&log->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(log->consumer, REG_POLL_MS);
        if (!m) {
            /* records removed by compaction leave gaps: the position still moves on */
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, log->topic, REG_PARTITION);
            if (!rd_kafka_position(log->consumer, l) && l->elems[0].offset >= 0)
                set_applied(log, l->elems[0].offset, target);
            rd_kafka_topic_partition_list_destroy(l);
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                kp_warn("registry", "reading %s: %s", log->topic, rd_kafka_message_errstr(m));
        } else if (m->key) {
            log->apply(log->arg, m->key, m->key_len, m->payload, m->len, m->offset);
            set_applied(log, m->offset + 1, target);
        } else {
            set_applied(log, m->offset + 1, target);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

kp_reg_log_t *kp_reg_log_start(const kp_reg_log_config_t *cfg, kp_reg_log_apply_fn apply, void *arg,
                               char *err, size_t errlen)
{
    kp_reg_log_config_t c = *cfg;
    if (!c.topic) c.topic = "_schemas";
    if (c.timeout_ms <= 0) c.timeout_ms = 10000;
    if (!c.replication) c.replication = -1;
    kp_reg_log_t *log = kp_xcalloc(1, sizeof(*log));
    log->topic = kp_xstrdup(c.topic);
    log->bootstrap = kp_xstrdup(c.bootstrap);
    log->replication = c.replication;
    log->timeout_ms = c.timeout_ms;
    log->apply = apply;
    log->arg = arg;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cond, NULL);
    log->producer = client_new(&c, RD_KAFKA_PRODUCER, err, errlen);
    log->consumer = log->producer ? client_new(&c, RD_KAFKA_CONSUMER, err, errlen) : NULL;
    if (!log->consumer) {
        kp_reg_log_stop(log);
        return NULL;
    }
    rd_kafka_poll_set_consumer(log->consumer);
    if (pthread_create(&log->thread, NULL, consumer_main, log) != 0) {
        snprintf(err, errlen, "cannot start the registry's consumer thread");
        rd_kafka_destroy(log->consumer);
        log->consumer = NULL;
        kp_reg_log_stop(log);
        return NULL;
    }
    return log;
}

int kp_reg_log_ready(kp_reg_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int r = log->ready;
    pthread_mutex_unlock(&log->mu);
    return r;
}

/* Waits on cond until applied_next >= target or the deadline; call with mu held. */
static void wait_applied(kp_reg_log_t *log, int64_t target, int64_t deadline_ms)
{
    while (log->applied_next < target && !atomic_load(&log->stop) && kp_mono_ms() < deadline_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&log->cond, &log->mu, &ts);
    }
}

int kp_reg_log_write(kp_reg_log_t *log, const kp_reg_batch_t *b, char *err, size_t errlen)
{
    if (b->n == 0) return 0;
    delivery_t d = {.pending = 0, .last_offset = -1};
    int64_t deadline = kp_mono_ms() + log->timeout_ms + 2000;
    for (int i = 0; i < b->n; i++) {
        const kp_reg_record_t *r = &b->records[i];
        rd_kafka_resp_err_t e = rd_kafka_producev(
            log->producer, RD_KAFKA_V_TOPIC(log->topic), RD_KAFKA_V_PARTITION(REG_PARTITION),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(r->key, strlen(r->key)),
            RD_KAFKA_V_VALUE(r->value, r->value ? strlen(r->value) : 0), RD_KAFKA_V_OPAQUE(&d),
            RD_KAFKA_V_END);
        if (e) {
            if (!d.err) d.err = e;
            break;
        }
        d.pending++;
    }
    while (d.pending > 0 && kp_mono_ms() < deadline) rd_kafka_poll(log->producer, 50);
    if (d.pending > 0 || d.err) {
        snprintf(err, errlen, "write to %s at %s: %s", log->topic, log->bootstrap,
                 d.pending ? "no acknowledgement in time" : rd_kafka_err2str(d.err));
        if (d.pending)
            rd_kafka_purge(log->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (d.pending > 0) rd_kafka_poll(log->producer, 50); /* d must outlive its callbacks */
        return -1;
    }
    pthread_mutex_lock(&log->mu);
    wait_applied(log, d.last_offset + 1, deadline);
    int ok = log->applied_next > d.last_offset;
    pthread_mutex_unlock(&log->mu);
    if (!ok) {
        snprintf(err, errlen, "written to %s but not read back in time", log->topic);
        return -1;
    }
    return 0;
}

int64_t kp_reg_log_applied(kp_reg_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t n = log->applied_next;
    pthread_mutex_unlock(&log->mu);
    return n;
}

void kp_reg_log_catch_up(kp_reg_log_t *log, int timeout_ms)
{
    int64_t deadline = kp_mono_ms() + timeout_ms, low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(log->consumer, log->topic, REG_PARTITION, &low, &high,
                                         timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    pthread_mutex_lock(&log->mu);
    wait_applied(log, high, deadline);
    pthread_mutex_unlock(&log->mu);
}

void kp_reg_log_stop(kp_reg_log_t *log)
{
    if (!log) return;
    atomic_store(&log->stop, 1);
    if (log->consumer) {
        pthread_join(log->thread, NULL);
        rd_kafka_consumer_close(log->consumer);
        rd_kafka_destroy(log->consumer);
    }
    if (log->producer) {
        rd_kafka_flush(log->producer, 2000);
        rd_kafka_destroy(log->producer);
    }
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cond);
    free(log->topic);
    free(log->bootstrap);
    free(log);
}
