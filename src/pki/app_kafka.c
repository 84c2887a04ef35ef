/*
 * app_kafka.c — librdkafka with an application's credentials (see app_kafka.h): a client
 * configuration, the connection check, per-topic metadata and the live probe.
 *
 * The credentials go to librdkafka as PEM strings (ssl.certificate.pem, ssl.key.pem,
 * ssl.ca.pem): nothing is written to disk, and librdkafka marks ssl.key.pem sensitive (never
 * logged, cleared once its TLS context is built). librdkafka's own log lines are swallowed: the
 * commands report one line of their own, built from what error_cb saw.
 *
 * @locality error_cb runs on the thread that calls rd_kafka_poll (the command's thread);
 * log_cb on librdkafka's threads (and only ignores its input).
 */
#include "pki/app_kafka.h"

#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One metadata request's slice of the deadline: short, so that a TLS failure or every
 * broker being down (reported through error_cb between requests) ends the wait early. */
#define CONNECT_SLICE_MS 500

static void log_swallow(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kp_app_kafka_state_t *st = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        st->all_down = 1;
        if (st->err) return; /* keep the cause ("Connection refused"), not "1/1 down" */
    }
    /* with TLS 1.3 the server checks the client certificate after the client finished its
     * handshake: its alert ("unknown ca", "certificate required") then arrives as a
     * receive failure (__TRANSPORT) whose text is OpenSSL's */
    if (err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        (reason && (strstr(reason, "SSL routines") || strstr(reason, "SSL alert") ||
                    strstr(reason, "SSL handshake"))))
        st->tls_failed = 1;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        st->fatal = 1;
        char fatal[sizeof(st->errstr)];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        snprintf(st->errstr, sizeof(st->errstr), "%s", fatal);
        st->err = err;
        return;
    }
    st->err = err;
    snprintf(st->errstr, sizeof(st->errstr), "%s", reason ? reason : rd_kafka_err2str(err));
    for (char *p = st->errstr; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
}

int kp_app_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                     size_t errlen)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        /* the value may be key material: name the property, never the value */
        snprintf(err, errlen, "librdkafka refused %s: %s", key, rderr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kp_app_kafka_conf(const kp_app_secret_t *s, const char *client_id,
                                   kp_app_kafka_state_t *st, char *err, size_t errlen)
{
    static const struct {
        const char *key, *prop;
    } pems[] = {
        {"KAFKA_BROKERS", "bootstrap.servers"},
        {"KAFKA_CERTIFICATE", "ssl.certificate.pem"},
        {"KAFKA_PRIVATE_KEY", "ssl.key.pem"},
        {"KAFKA_CA", "ssl.ca.pem"},
    };
    memset(st, 0, sizeof(*st));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < sizeof(pems) / sizeof(*pems); i++) {
        const char *v = kp_app_secret_text(s, pems[i].key);
        if (!v || !*v) {
            snprintf(err, errlen, "the secret has no %s", pems[i].key);
            goto fail;
        }
        if (kp_app_kafka_set(conf, pems[i].prop, v, err, errlen) < 0) goto fail;
    }
    if (kp_app_kafka_set(conf, "security.protocol", "ssl", err, errlen) < 0 ||
        kp_app_kafka_set(conf, "client.id", client_id, err, errlen) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, log_swallow);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, st);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int kp_app_kafka_connect(rd_kafka_t *rk, kp_app_kafka_state_t *st, const char *brokers,
                         int64_t deadline_ms, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline_ms - kp_mono_ms();
        if (left <= 0) break;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(
            rk, 0, NULL, &md, (int)(left < CONNECT_SLICE_MS ? left : CONNECT_SLICE_MS));
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            return 0;
        }
        rd_kafka_poll(rk, 0);
        if (st->tls_failed || st->all_down) break;
    }
    rd_kafka_poll(rk, 0);
    if (st->tls_failed)
        snprintf(err, errlen, "TLS refused by %s: %s", brokers, st->errstr);
    else if (st->err)
        snprintf(err, errlen, "pool unreachable (%s): %s", brokers, st->errstr);
    else
        snprintf(err, errlen, "pool unreachable (%s): no answer in time", brokers);
    return -1;
}

rd_kafka_resp_err_t kp_app_kafka_topic(rd_kafka_t *rk, const char *topic, int64_t deadline_ms,
                                       int *partitions)
{
    if (partitions) *partitions = 0;
    int64_t left = deadline_ms - kp_mono_ms();
    if (left <= 0) return RD_KAFKA_RESP_ERR__TIMED_OUT;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) return rd_kafka_last_error();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, (int)left);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        for (int i = 0; i < md->topic_cnt; i++) {
            if (strcmp(md->topics[i].topic, topic)) continue;
            e = md->topics[i].err;
            if (partitions) *partitions = md->topics[i].partition_cnt;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return e;
}

rd_kafka_resp_err_t kp_app_kafka_topics_visible(rd_kafka_t *rk, int64_t deadline_ms, json_t *names)
{
    int64_t left = deadline_ms - kp_mono_ms();
    if (left <= 0) return RD_KAFKA_RESP_ERR__TIMED_OUT;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, (int)left);
    if (e) return e;
    for (int i = 0; i < md->topic_cnt; i++)
        if (!md->topics[i].err) json_array_append_new(names, json_string(md->topics[i].topic));
    rd_kafka_metadata_destroy(md);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

const char *kp_app_kafka_topic_problem(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return "ok";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return "not authorized (TOPIC_AUTHORIZATION_FAILED)";
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        return "does not exist in the pool (UNKNOWN_TOPIC_OR_PARTITION)";
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
        return "no metadata answer in time";
    default:
        return rd_kafka_err2str(err);
    }
}

int kp_app_probe_live(const kp_app_secret_t *s, const char *client_id, const json_t *granted,
                      long timeout_ms, rd_kafka_resp_err_t *errs, json_t *visible, char *err,
                      size_t errlen)
{
    kp_app_kafka_state_t st;
    rd_kafka_conf_t *conf = kp_app_kafka_conf(s, client_id, &st, err, errlen);
    if (!conf) return -1;
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create a Kafka client: %s", rderr);
        return -1;
    }
    int64_t deadline = kp_mono_ms() + timeout_ms;
    int rc = kp_app_kafka_connect(rk, &st, kp_app_secret_text(s, "KAFKA_BROKERS"), deadline, err,
                                  errlen);
    for (size_t i = 0; rc == 0 && i < json_array_size(granted); i++) {
        const char *fqn = json_string_value(json_object_get(json_array_get(granted, i), "fqn"));
        errs[i] = kp_app_kafka_topic(rk, fqn, deadline, NULL);
    }
    rd_kafka_resp_err_t ve;
    if (rc == 0 && visible && (ve = kp_app_kafka_topics_visible(rk, deadline, visible))) {
        snprintf(err, errlen, "no answer from the pool (%s) which topics are authorized: %s",
                 kp_app_secret_text(s, "KAFKA_BROKERS"), rd_kafka_err2str(ve));
        rc = -1;
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return rc;
}
