/*
 * log_manager.h — the broker's background storage work: retention (delete policy) every
 * log.retention.check.interval.ms and compaction (compact policy) pass after pass while logs
 * are dirty, then every log.cleaner.backoff.ms, on one thread of its own so neither touches
 * the request path.
 */
#ifndef KP_LOG_MANAGER_H
#define KP_LOG_MANAGER_H

#include "broker/broker.h"

typedef struct kp_log_manager kp_log_manager_t;

/* props: the effective broker properties (read now, not kept). */
kp_log_manager_t *kp_log_manager_start(kp_broker_t *b, const kp_props_t *props, char *err,
                                       size_t errlen);
void kp_log_manager_stop(kp_log_manager_t *m);
/* Dynamic log.cleaner.backoff.ms, .dedupe.buffer.size, .io.max.bytes.per.second: taken
 * between passes (a pass running keeps its settings). Any thread. */
void kp_log_manager_reconfigure(kp_log_manager_t *m, const kp_props_t *props);

#endif
