/*
 * registry_log.h — the registry's storage: one compacted topic (`_schemas`, one partition)
 * in the pool, reached only over the Kafka protocol with librdkafka (TLS as the pool's
 * super user, like the control plane), so any Kafka cluster can hold it.
 *
 * A consumer thread reads the topic from the beginning and hands every record to the apply
 * callback, in offset order. The log is ready once it has applied everything the topic
 * held when the thread started. A write produces records (acks=all, idempotent) and
 * returns only when the consumer has applied them: the caller's next read sees the write.
 */
#ifndef KP_REGISTRY_LOG_H
#define KP_REGISTRY_LOG_H

#include "registry/registry_state.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_reg_log kp_reg_log_t;

typedef struct kp_reg_log_config {
    const char *bootstrap;
    const char *ca_path, *cert_path, *key_path; /* all NULL: PLAINTEXT */
    const char *topic;                          /* default "_schemas" */
    int replication; /* of the topic when created; -1: the pool's default */
    int timeout_ms;  /* per write (produce + apply); default 10000 */
} kp_reg_log_config_t;

/* Called on the consumer thread for each record (value NULL: tombstone). */
typedef void (*kp_reg_log_apply_fn)(void *arg, const char *key, size_t keylen, const char *value,
                                    size_t valuelen, int64_t offset);

kp_reg_log_t *kp_reg_log_start(const kp_reg_log_config_t *cfg, kp_reg_log_apply_fn apply, void *arg,
                               char *err, size_t errlen);
/* 1 once the topic exists and its records up to the start have been applied. */
int kp_reg_log_ready(kp_reg_log_t *log);
/*
 * Produces the batch's records in order and waits until the consumer has applied the last
 * one. 0, or -1 with err (the pool refused or did not answer in time: nothing or part of
 * the batch may have been written). One caller at a time (the registry's write lock).
 */
int kp_reg_log_write(kp_reg_log_t *log, const kp_reg_batch_t *b, char *err, size_t errlen);
/* The offset after the last record applied (grows as the consumer applies records). */
int64_t kp_reg_log_applied(kp_reg_log_t *log);
/*
 * Waits (at most timeout_ms) until the consumer has applied everything `_schemas` holds
 * now (its high watermark, asked of the pool). For a read that found nothing: records
 * written by someone else (a restore, another tool) a moment ago are then served at once
 * instead of after the consumer's next fetch. Thread-safe; any thread.
 */
void kp_reg_log_catch_up(kp_reg_log_t *log, int timeout_ms);
void kp_reg_log_stop(kp_reg_log_t *log);

#endif
