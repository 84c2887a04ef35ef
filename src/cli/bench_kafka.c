/*
 * bench_kafka.c — the librdkafka plumbing of `kpool bench` that is not on the hot path:
 * building client configurations (bootstrap or mock cluster, TLS pass-through, --set), the
 * --mock cluster, creating the topic through the Admin API, and reading partitions and
 * watermarks from the cluster.
 */
#include "cli/bench.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kp_bench_errf(char *errstr, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errlen, fmt, ap);
    va_end(ap);
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                    size_t errlen)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        kp_bench_errf(errstr, errlen, "librdkafka property %s=%s: %s", key, value, rderr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kp_bench_conf_new(const kp_bench_opts_t *o, const char *bootstrap,
                                   const char *const extra[][2], int nextra, char *errstr,
                                   size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct {
        const char *key, *value;
    } base[] = {
        {"bootstrap.servers", bootstrap},          {"client.id", "kpool-bench"},
        {"security.protocol", o->security},        {"ssl.ca.location", o->ssl_ca},
        {"ssl.certificate.location", o->ssl_cert}, {"ssl.key.location", o->ssl_key},
    };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (base[i].value && conf_set(conf, base[i].key, base[i].value, errstr, errlen) < 0)
            goto fail;
    }
    for (int i = 0; i < nextra; i++) {
        if (extra[i][1] && conf_set(conf, extra[i][0], extra[i][1], errstr, errlen) < 0) goto fail;
    }
    for (int i = 0; i < o->nsets; i++) {
        char key[256];
        const char *eq = strchr(o->sets[i], '=');
        size_t klen = eq ? (size_t)(eq - o->sets[i]) : 0;
        if (!eq || klen == 0 || klen >= sizeof(key)) {
            kp_bench_errf(errstr, errlen, "--set '%s': expected key=value", o->sets[i]);
            goto fail;
        }
        memcpy(key, o->sets[i], klen);
        key[klen] = '\0';
        if (conf_set(conf, key, eq + 1, errstr, errlen) < 0) goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *kp_bench_mock_start(const kp_bench_opts_t *o, char *bootstrap, size_t len, char *errstr,
                                size_t errlen)
{
    char rderr[512], n[16];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(n, sizeof(n), "%d", o->mock_brokers);
    /* log_level 4: not the notice that the mock replaces bootstrap.servers */
    if (conf_set(conf, "test.mock.num.brokers", n, errstr, errlen) < 0 ||
        conf_set(conf, "log_level", "4", errstr, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* The handle only owns the cluster; it never produces. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        kp_bench_errf(errstr, errlen, "cannot create the mock cluster: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    if (!mc) {
        kp_bench_errf(errstr, errlen, "librdkafka did not create a mock cluster");
        rd_kafka_destroy(rk);
        return NULL;
    }
    snprintf(bootstrap, len, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    int rf = o->mock_brokers < 3 ? o->mock_brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, o->topic, o->partitions, rf);
    if (err) {
        kp_bench_errf(errstr, errlen, "mock cluster: cannot create topic %s: %s", o->topic,
                      rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Asks the cluster to create the topic. Already existing is fine. */
static int topic_create(rd_kafka_t *rk, const kp_bench_opts_t *o, char *errstr, size_t errlen)
{
    char rderr[512];
    int timeout_ms = (int)(o->timeout_s * 1000);
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions, o->replication, rderr, sizeof(rderr));
    if (!nt) {
        kp_bench_errf(errstr, errlen, "topic %s: %s", o->topic, rderr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, rderr, sizeof(rderr));
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    int rc = 0;
    if (!ev) {
        kp_bench_errf(errstr, errlen, "CreateTopics %s: no answer in %d ms", o->topic, timeout_ms);
        rc = -1;
    } else if (rd_kafka_event_error(ev)) {
        kp_bench_errf(errstr, errlen, "CreateTopics %s: %s", o->topic,
                      rd_kafka_event_error_string(ev));
        rc = -1;
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                const char *msg = rd_kafka_topic_result_error_string(res[i]);
                kp_bench_errf(errstr, errlen, "CreateTopics %s: %s", o->topic,
                              msg ? msg : rd_kafka_err2str(e));
                rc = -1;
            }
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* One metadata request for the topic: 1 with parts filled, 0 when the topic is not (yet)
 * there, -1 on failure (unreachable cluster) with errstr set. */
static int topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                          kp_bench_part_t **parts, int *nparts, char *errstr, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        kp_bench_errf(errstr, errlen, "cannot get metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    int rc = 0;
    if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
        const struct rd_kafka_metadata_topic *t = &md->topics[0];
        *parts = calloc((size_t)t->partition_cnt, sizeof(**parts));
        *nparts = t->partition_cnt;
        for (int i = 0; i < t->partition_cnt; i++) {
            (*parts)[i].id = t->partitions[i].id;
            (*parts)[i].start_offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rc = 1;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

int kp_bench_topic_prepare(rd_kafka_t *rk, const kp_bench_opts_t *o, int create,
                           kp_bench_part_t **parts, int *nparts, char *errstr, size_t errlen)
{
    int timeout_ms = (int)(o->timeout_s * 1000);
    /* First contact: a metadata request fails fast and clearly when nothing listens. */
    int rc = topic_metadata(rk, o->topic, timeout_ms, parts, nparts, errstr, errlen);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", errstr);
        kp_bench_errf(errstr, errlen, "cannot reach the cluster at %s within %.0f s (%s)",
                      o->mock_brokers ? "the mock cluster" : o->bootstrap, o->timeout_s, why);
        return -1;
    }
    if (rc == 0 && !create) {
        kp_bench_errf(errstr, errlen, "topic %s does not exist", o->topic);
        return -1;
    }
    if (rc == 0 && topic_create(rk, o, errstr, errlen) < 0) return -1;
    /* Creation is asynchronous on some brokers: wait until metadata shows the partitions. */
    int64_t waited_ms = 0;
    while (rc == 0) {
        rc = topic_metadata(rk, o->topic, timeout_ms, parts, nparts, errstr, errlen);
        if (rc < 0) return -1;
        if (rc == 0 && waited_ms > timeout_ms) {
            kp_bench_errf(errstr, errlen, "topic %s not in metadata %d ms after creation", o->topic,
                          timeout_ms);
            return -1;
        }
        if (rc == 0) {
            usleep(100 * 1000);
            waited_ms += 100;
        }
    }
    if (*nparts != o->partitions && !o->quiet)
        fprintf(stderr, "kpool bench: topic %s already exists with %d partitions (not %d)\n",
                o->topic, *nparts, o->partitions);
    return 0;
}

int kp_bench_watermarks(rd_kafka_t *rk, const char *topic, kp_bench_part_t *parts, int nparts,
                        int from_end, int timeout_ms, char *errstr, size_t errlen)
{
    for (int i = 0; i < nparts; i++) {
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t err;
        /* a topic just created in a replicated pool: the broker asked may not know its leader
         * yet (Kafka's brokers neither); those errors are retried until the timeout */
        for (int waited_ms = 0;; waited_ms += 100) {
            err = rd_kafka_query_watermark_offsets(rk, topic, parts[i].id, &low, &high, timeout_ms);
            int transient = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                            err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                            err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                            err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
            if (!transient || waited_ms >= timeout_ms) break;
            usleep(100 * 1000);
        }
        if (err) {
            kp_bench_errf(errstr, errlen, "watermarks of %s [%d]: %s", topic, parts[i].id,
                          rd_kafka_err2str(err));
            return -1;
        }
        parts[i].start_offset = from_end ? high : RD_KAFKA_OFFSET_BEGINNING;
        parts[i].available = high - low;
    }
    return 0;
}

int kp_bench_connect(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        kp_bench_errf(errstr, errlen, "cannot reach the cluster: %s", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}
