/*
 * throttle.h — replication throttles (Kafka's leader.replication.throttled.rate and
 * follower.replication.throttled.rate, bytes/s, dynamic broker configs): token buckets that
 * bound what a broker serves to, and fetches as, throttled replicas — the replicas a
 * partition move adds that are not yet in the ISR (partition.h, kp_partition_set_throttled).
 * In-sync followers are never throttled.
 *
 * One bucket per direction per process (a process runs one broker), set by the dynamic
 * config hooks. A bucket holds at most one second of its rate; a read larger than what was
 * left (a record batch is sent whole) goes into debt, so the average stays at the rate.
 */
#ifndef KP_REPL_THROTTLE_H
#define KP_REPL_THROTTLE_H

#include <pthread.h>
#include <stdint.h>

typedef struct kp_throttle {
    pthread_mutex_t lock;
    int64_t rate;    /* bytes/s; INT64_MAX (Kafka's default, Long.MAX_VALUE): no throttle */
    double tokens;   /* bytes that may go now; negative: a debt */
    int64_t last_ms; /* the last refill (monotonic) */
} kp_throttle_t;

extern kp_throttle_t kp_repl_throttle_leader, kp_repl_throttle_follower;

void kp_throttle_set(kp_throttle_t *t, int64_t rate_bytes_per_s);
/* The bytes a throttled read may take now (refilled up to now_ms): 0 when the bucket is
 * empty or in debt, INT64_MAX when there is no throttle. */
int64_t kp_throttle_allowance(kp_throttle_t *t, int64_t now_ms);
/* Takes what a throttled read used. */
void kp_throttle_spend(kp_throttle_t *t, int64_t bytes);

#endif
