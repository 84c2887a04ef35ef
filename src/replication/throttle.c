/* throttle.c — replication throttles: token buckets (see throttle.h). */
#include "replication/throttle.h"

kp_throttle_t kp_repl_throttle_leader = {PTHREAD_MUTEX_INITIALIZER, INT64_MAX, 0, 0};
kp_throttle_t kp_repl_throttle_follower = {PTHREAD_MUTEX_INITIALIZER, INT64_MAX, 0, 0};

void kp_throttle_set(kp_throttle_t *t, int64_t rate_bytes_per_s)
{
    pthread_mutex_lock(&t->lock);
    t->rate = rate_bytes_per_s > 0 ? rate_bytes_per_s : 1;
    if (t->tokens > (double)t->rate) t->tokens = (double)t->rate;
    pthread_mutex_unlock(&t->lock);
}

int64_t kp_throttle_allowance(kp_throttle_t *t, int64_t now_ms)
{
    pthread_mutex_lock(&t->lock);
    int64_t allow = INT64_MAX;
    if (t->rate != INT64_MAX) {
        if (now_ms > t->last_ms) {
            t->tokens += (double)t->rate * (double)(now_ms - t->last_ms) / 1000.0;
            if (t->tokens > (double)t->rate) t->tokens = (double)t->rate; /* a second's burst */
            t->last_ms = now_ms;
        }
        allow = t->tokens >= 1 ? (int64_t)t->tokens : 0;
    }
    pthread_mutex_unlock(&t->lock);
    return allow;
}

void kp_throttle_spend(kp_throttle_t *t, int64_t bytes)
{
    pthread_mutex_lock(&t->lock);
    if (t->rate != INT64_MAX) t->tokens -= (double)bytes;
    pthread_mutex_unlock(&t->lock);
}
