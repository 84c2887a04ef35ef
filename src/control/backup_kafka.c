/*
 * backup_kafka.c — reading a topic's records into a backup and producing them back (see
 * backup_kafka.h). A consumer with assign() reads up to high watermarks captured first, so
 * a registry writing meanwhile cannot make a backup run forever; the producer is idempotent
 * so the records land exactly once and in order, which keeps schema ids as they were.
 */
#include "control/backup_kafka.h"

#include "control/backup_format.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kp_logf(level <= 3   ? KP_LOG_WARN
            : level <= 6 ? KP_LOG_INFO
                         : KP_LOG_DEBUG,
            "backup-client", "%s: %s", fac, buf);
}

/* A configuration with the connection's bootstrap servers and TLS files. NULL with err. */
static rd_kafka_conf_t *conf_new(const kp_pool_conn_t *c, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rk_log);
    struct {
        const char *k, *v;
    } kv[] = {{"bootstrap.servers", c->bootstrap},
              {"client.id", "kpool-backup"},
              {"log_level", "4"},
              {"reconnect.backoff.max.ms", "2000"},
              {"security.protocol", c->cert_path || c->ca_path ? "ssl" : "plaintext"},
              {"ssl.ca.location", c->ca_path},
              {"ssl.certificate.location", c->cert_path},
              {"ssl.key.location", c->key_path}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(*kv); i++) {
        if (!kv[i].v) continue;
        if (rd_kafka_conf_set(conf, kv[i].k, kv[i].v, es, sizeof(es)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s: %s", kv[i].k, es);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char es[256];
    if (rd_kafka_conf_set(conf, k, v, es, sizeof(es)) == RD_KAFKA_CONF_OK) return 0;
    snprintf(err, errlen, "%s: %s", k, es);
    return -1;
}

static int timeout_of(const kp_pool_conn_t *c)
{
    return c->timeout_ms > 0 ? c->timeout_ms : 10000;
}

/* The partition count of topic (0 when it does not exist). Asks for all topics, so a pool
 * with auto.create.topics.enable does not create it. */
static int topic_partitions(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic,
                            int *partitions, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_of(c));
    if (e) {
        snprintf(err, errlen, "metadata: %s (pool at %s)", rd_kafka_err2str(e), c->bootstrap);
        return -1;
    }
    *partitions = 0;
    int rc = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0) continue;
        if (md->topics[i].err && md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            snprintf(err, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(md->topics[i].err));
            rc = -1;
        } else if (!md->topics[i].err) {
            *partitions = md->topics[i].partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Low and high watermarks of every partition (arrays of n, malloc'd). */
static int watermarks(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic, int n,
                      int64_t **lo, int64_t **hi, char *err, size_t errlen)
{
    *lo = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    *hi = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    for (int p = 0; p < n; p++) {
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            rk, topic, p, (int64_t *)&(*lo)[p], (int64_t *)&(*hi)[p], timeout_of(c));
        if (e) {
            snprintf(err, errlen, "offsets of %s[%d]: %s (pool at %s)", topic, p,
                     rd_kafka_err2str(e), c->bootstrap);
            return -1;
        }
    }
    return 0;
}

static rd_kafka_t *consumer_new(const kp_pool_conn_t *c, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = conf_new(c, err, errlen);
    if (!conf) return NULL;
    /* librdkafka wants a group.id even for assign(); nothing joins it or commits to it */
    if (conf_set(conf, "group.id", "kpool-backup", err, errlen) < 0 ||
        conf_set(conf, "enable.auto.commit", "false", err, errlen) < 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) < 0 ||
        conf_set(conf, "enable.partition.eof", "true", err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char es[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es));
    if (!rk) {
        snprintf(err, errlen, "cannot create a Kafka consumer: %s", es);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
    }
    return rk;
}

int kp_backup_topic_count(const kp_pool_conn_t *conn, const char *topic, int64_t *count, char *err,
                          size_t errlen)
{
    *count = 0;
    rd_kafka_t *rk = consumer_new(conn, err, errlen);
    if (!rk) return -1;
    int n = 0, rc = topic_partitions(rk, conn, topic, &n, err, errlen);
    int64_t *lo = NULL, *hi = NULL;
    if (rc == 0 && n > 0) rc = watermarks(rk, conn, topic, n, &lo, &hi, err, errlen);
    for (int p = 0; rc == 0 && p < n; p++) *count += hi[p] - lo[p];
    free(lo);
    free(hi);
    rd_kafka_destroy(rk);
    return rc;
}

typedef struct reader {
    int n; /* partitions */
    int64_t *lo, *hi;
    int64_t *next; /* next offset expected per partition */
    int *done;
    json_t **parts; /* records per partition */
    int remaining;  /* partitions not done */
    int64_t total;
} reader_t;

/* Takes one consumed message. 0, or -1 with err. */
static int reader_take(reader_t *r, const char *topic, rd_kafka_message_t *m, char *err,
                       size_t errlen)
{
    int p = m->partition;
    if (p < 0 || p >= r->n) return 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!r->done[p] && m->offset >= r->hi[p]) {
            r->done[p] = 1;
            r->remaining--;
        }
        return 0;
    }
    if (m->err) {
        snprintf(err, errlen, "reading %s[%d]: %s", topic, p, rd_kafka_message_errstr(m));
        return -1;
    }
    if (r->done[p] || m->offset >= r->hi[p]) {
        if (!r->done[p]) {
            r->done[p] = 1;
            r->remaining--;
        }
        return 0;
    }
    if (++r->total > KP_BACKUP_SCHEMA_RECORDS_MAX) {
        snprintf(err, errlen, "%s has more than %d records: too many to back up", topic,
                 KP_BACKUP_SCHEMA_RECORDS_MAX);
        return -1;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    json_t *rec = json_pack("{s:i, s:I, s:I}", "partition", p, "offset", (json_int_t)m->offset,
                            "timestamp", (json_int_t)ts);
    kp_backup_bytes_put(rec, "key", m->key, m->key_len, m->key == NULL);
    kp_backup_bytes_put(rec, "value", m->payload, m->len, m->payload == NULL);
    json_array_append_new(r->parts[p], rec);
    r->next[p] = m->offset + 1;
    if (r->next[p] >= r->hi[p]) {
        r->done[p] = 1;
        r->remaining--;
    }
    return 0;
}

static void reader_free(reader_t *r)
{
    for (int p = 0; p < r->n; p++) json_decref(r->parts ? r->parts[p] : NULL);
    free(r->parts);
    free(r->lo);
    free(r->hi);
    free(r->next);
    free(r->done);
}

/* Assigns the partitions with records and consumes up to the high watermarks. */
static int reader_run(reader_t *r, rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic,
                      char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(r->n);
    for (int p = 0; p < r->n; p++) {
        r->next[p] = r->lo[p];
        if (r->hi[p] <= r->lo[p]) {
            r->done[p] = 1;
            continue;
        }
        r->remaining++;
        rd_kafka_topic_partition_list_add(tps, topic, p)->offset = r->lo[p];
    }
    int rc = 0;
    if (r->remaining) {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, tps);
        if (e) {
            snprintf(err, errlen, "assign %s: %s", topic, rd_kafka_err2str(e));
            rc = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(tps);
    int64_t last_progress = kp_mono_ms();
    while (rc == 0 && r->remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (kp_mono_ms() - last_progress > timeout_of(c)) {
                snprintf(err, errlen, "reading %s: no progress for %d ms (pool at %s)", topic,
                         timeout_of(c), c->bootstrap);
                rc = -1;
            }
            continue;
        }
        last_progress = kp_mono_ms();
        rc = reader_take(r, topic, m, err, errlen);
        rd_kafka_message_destroy(m);
    }
    return rc;
}

int kp_backup_topic_read(const kp_pool_conn_t *conn, const char *topic, json_t **records,
                         int *partitions, char *err, size_t errlen)
{
    *records = NULL;
    *partitions = 0;
    rd_kafka_t *rk = consumer_new(conn, err, errlen);
    if (!rk) return -1;
    reader_t r;
    memset(&r, 0, sizeof(r));
    int rc = topic_partitions(rk, conn, topic, &r.n, err, errlen);
    if (rc == 0 && r.n > 0) rc = watermarks(rk, conn, topic, r.n, &r.lo, &r.hi, err, errlen);
    if (rc == 0 && r.n > 0) {
        r.next = kp_xcalloc((size_t)r.n, sizeof(int64_t));
        r.done = kp_xcalloc((size_t)r.n, sizeof(int));
        r.parts = kp_xcalloc((size_t)r.n, sizeof(json_t *));
        for (int p = 0; p < r.n; p++) r.parts[p] = json_array();
        rc = reader_run(&r, rk, conn, topic, err, errlen);
    }
    if (rc == 0) {
        *records = json_array();
        for (int p = 0; p < r.n; p++) json_array_extend(*records, r.parts[p]);
        *partitions = r.n;
    }
    reader_free(&r);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- producing ---- */

typedef struct writer {
    int64_t acked;
    int failed;
    char first_error[256];
} writer_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    writer_t *w = opaque;
    if (!m->err) {
        w->acked++;
        return;
    }
    if (!w->failed++)
        snprintf(w->first_error, sizeof(w->first_error), "partition %d: %s", m->partition,
                 rd_kafka_err2str(m->err));
}

static rd_kafka_t *producer_new(const kp_pool_conn_t *c, writer_t *w, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = conf_new(c, err, errlen);
    if (!conf) return NULL;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", timeout_of(c) * 3);
    if (conf_set(conf, "enable.idempotence", "true", err, errlen) < 0 ||
        conf_set(conf, "acks", "all", err, errlen) < 0 ||
        conf_set(conf, "linger.ms", "5", err, errlen) < 0 ||
        conf_set(conf, "message.timeout.ms", timeout, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, w);
    char es[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    if (!rk) {
        snprintf(err, errlen, "cannot create a Kafka producer: %s", es);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
    }
    return rk;
}

/* Queues one record (waiting while librdkafka's queue is full). */
static int produce_one(rd_kafka_t *rk, const char *topic, const json_t *rec, size_t i, char *err,
                       size_t errlen)
{
    uint8_t *key, *value;
    size_t klen, vlen;
    json_t *part = json_object_get(rec, "partition");
    if (!json_is_integer(part) || json_integer_value(part) < 0 ||
        json_integer_value(part) > INT32_MAX || kp_backup_bytes_get(rec, "key", &key, &klen) < 0) {
        snprintf(err, errlen, "schemas.records[%zu]: invalid partition or key", i);
        return -1;
    }
    if (kp_backup_bytes_get(rec, "value", &value, &vlen) < 0) {
        free(key);
        snprintf(err, errlen, "schemas.records[%zu]: invalid value", i);
        return -1;
    }
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_PARTITION((int32_t)json_integer_value(part)),
                              RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(value, vlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(rk, 100);
    }
    free(key);
    free(value);
    if (e) {
        snprintf(err, errlen, "producing schemas.records[%zu] to %s: %s", i, topic,
                 rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_poll(rk, 0);
    return 0;
}

int kp_backup_topic_write(const kp_pool_conn_t *conn, const char *topic, const json_t *records,
                          char *err, size_t errlen)
{
    size_t n = json_array_size(records);
    if (n == 0) return 0;
    writer_t w;
    memset(&w, 0, sizeof(w));
    rd_kafka_t *rk = producer_new(conn, &w, err, errlen);
    if (!rk) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !w.failed; i++)
        rc = produce_one(rk, topic, json_array_get(records, i), i, err, errlen);
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, timeout_of(conn) * 3 + 5000);
    if (rc == 0 && w.failed) {
        snprintf(err, errlen, "producing to %s: %s (%d records failed)", topic, w.first_error,
                 w.failed);
        rc = -1;
    } else if (rc == 0 && (fe || w.acked != (int64_t)n)) {
        snprintf(err, errlen, "producing to %s: %lld of %zu records acknowledged (pool at %s)",
                 topic, (long long)w.acked, n, conn->bootstrap);
        rc = -1;
    }
    rd_kafka_destroy(rk);
    return rc;
}
