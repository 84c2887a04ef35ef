/*
 * notify.h — a short list of wake-up callbacks that a producer of changes calls after each
 * change (the control-plane store after a write, the Event recorder after a record), so that
 * a consumer (a watch hub) sleeps until something happens instead of asking every few
 * milliseconds.
 *
 * A callback runs on the producer's thread, possibly with the producer's own lock held: it
 * must be quick and must not call back into the producer (set a flag, signal a condition
 * variable). Removal waits for a call in progress, so the callback's argument may be freed
 * once kp_notify_remove returns. Thread-safe.
 */
#ifndef KP_NOTIFY_H
#define KP_NOTIFY_H

#include <pthread.h>

/* Listeners one producer holds: a watch hub per API listener (the API's and kubectl's). */
#define KP_NOTIFY_MAX 8

typedef void (*kp_notify_fn)(void *arg);

typedef struct kp_notify {
    pthread_mutex_t lock;
    int n;
    struct {
        kp_notify_fn fn;
        void *arg;
    } l[KP_NOTIFY_MAX];
} kp_notify_t;

#define KP_NOTIFY_INITIALIZER                                                                      \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, 0,                                                              \
        {                                                                                          \
            {                                                                                      \
                0, 0                                                                               \
            }                                                                                      \
        }                                                                                          \
    }

void kp_notify_init(kp_notify_t *nf);
void kp_notify_destroy(kp_notify_t *nf);
/* 0, or -1 when KP_NOTIFY_MAX listeners are there already. */
int kp_notify_add(kp_notify_t *nf, kp_notify_fn fn, void *arg);
void kp_notify_remove(kp_notify_t *nf, kp_notify_fn fn, void *arg);
/* Calls every listener. */
void kp_notify_fire(kp_notify_t *nf);

#endif
