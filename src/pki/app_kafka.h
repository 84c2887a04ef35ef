/*
 * app_kafka.h — librdkafka with an application's credentials (app_creds.h): a client
 * configuration (PEM in memory, never on disk), the connection check that tells "pool
 * unreachable" from "TLS refused", per-topic metadata checks, and the live probe that
 * `kpool probe`, `kpool doctor` (cli/) and the console's doctor (control/api/api_doctor.c) share.
 */
#ifndef KP_PKI_APP_KAFKA_H
#define KP_PKI_APP_KAFKA_H

#include "pki/app_creds.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

/* Default budget of a probe / doctor's live check (connect and every topic's metadata). */
#define KP_APP_PROBE_TIMEOUT_MS_DEFAULT 10000

/* What librdkafka's callbacks saw, for a one-line reason. */
typedef struct kp_app_kafka_state {
    rd_kafka_resp_err_t err; /* the last error_cb error (0: none) */
    char errstr[512];
    int tls_failed; /* an SSL / authentication error was seen */
    int all_down;   /* every broker is down */
    int fatal;      /* a fatal error (idempotent producer) */
} kp_app_kafka_state_t;

/* A librdkafka configuration for the credentials of s: bootstrap.servers = KAFKA_BROKERS,
 * security.protocol ssl, ssl.certificate.pem / ssl.key.pem / ssl.ca.pem from the PEM keys,
 * client.id, logging kept off stderr and errors recorded in st (which must outlive the
 * handle). NULL with one line in err (a key missing, librdkafka refusing a value). */
rd_kafka_conf_t *kp_app_kafka_conf(const kp_app_secret_t *s, const char *client_id,
                                   kp_app_kafka_state_t *st, char *err, size_t errlen);
/* Sets one property; -1 with err. */
int kp_app_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                     size_t errlen);

/* Waits (until deadline_ms, kp_mono_ms() time) for a Metadata answer from the pool.
 * 0 when connected; -1 with err: "pool unreachable (<brokers>): ..." or "TLS refused by
 * <brokers>: ...". Returns as soon as librdkafka reports every broker down or a TLS
 * failure, not at the deadline. */
int kp_app_kafka_connect(rd_kafka_t *rk, kp_app_kafka_state_t *st, const char *brokers,
                         int64_t deadline_ms, char *err, size_t errlen);

/* The metadata of one topic: its error code (0, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
 * RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, ...) or the request's (__TIMED_OUT, ...);
 * *partitions (may be NULL) its partition count. The handle should be a consumer (which
 * never asks the broker to create the topic). */
rd_kafka_resp_err_t kp_app_kafka_topic(rd_kafka_t *rk, const char *topic, int64_t deadline_ms,
                                       int *partitions);

/* The names of the topics the pool lets the handle's credentials see: a Metadata request
 * for every topic, which Kafka answers with the topics the principal may DESCRIBE. Appended
 * to names; 0, or the request's error. */
rd_kafka_resp_err_t kp_app_kafka_topics_visible(rd_kafka_t *rk, int64_t deadline_ms, json_t *names);

/* The live part of probe, doctor and the console's doctor: connects with s's credentials and asks
 * for the metadata of each topic of granted (an array of {"fqn": ...}, as
 * kp_app_topics_granted makes); errs[i] gets topic i's result. With visible (may be NULL),
 * the topics the pool lets the credentials see are appended to it as well (the check for an
 * app no Topic visible to the caller grants anything). 0 when connected (errs filled), -1
 * with one line in err ("pool unreachable ...", "TLS refused ...", a key the secret lacks,
 * the pool not answering which topics are visible). */
int kp_app_probe_live(const kp_app_secret_t *s, const char *client_id, const json_t *granted,
                      long timeout_ms, rd_kafka_resp_err_t *errs, json_t *visible, char *err,
                      size_t errlen);

/* "not authorized (TOPIC_AUTHORIZATION_FAILED)", "does not exist in the pool", ... */
const char *kp_app_kafka_topic_problem(rd_kafka_resp_err_t err);

#endif
