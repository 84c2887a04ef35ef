/*
 * loop.h — the event loop: epoll readiness, timers and a cross-thread mailbox.
 *
 * One loop runs per network thread and knows nothing about Kafka. Everything registered with
 * a loop is touched only by that loop's thread, except kp_loop_post() and kp_loop_stop(),
 * which any thread may call.
 *
 * Registration is by an embedded kp_io_t (the caller owns the memory; epoll carries the
 * pointer). A closed object must not be freed while the loop may still hold an event for it
 * in the current batch: use kp_loop_defer() to free it after the batch.
 */
#ifndef KP_LOOP_H
#define KP_LOOP_H

#include <stdint.h>

#define KP_READABLE 1u
#define KP_WRITABLE 2u

typedef struct kp_loop kp_loop_t;
typedef struct kp_io kp_io_t;

/* events: KP_READABLE|KP_WRITABLE as reported (errors and hangups report both). */
typedef void (*kp_io_fn)(kp_loop_t *loop, kp_io_t *io, uint32_t events);
typedef void (*kp_task_fn)(kp_loop_t *loop, void *arg);

struct kp_io {
    int fd;
    uint32_t mask; /* registered interest */
    kp_io_fn fn;
    void *data;
};

typedef struct kp_timer kp_timer_t;

kp_loop_t *kp_loop_new(int id);
void kp_loop_free(kp_loop_t *loop);
int kp_loop_id(const kp_loop_t *loop);

/* Runs until kp_loop_stop(). @locality: the loop's own thread. */
void kp_loop_run(kp_loop_t *loop);
/* Thread-safe: asks the loop to return from kp_loop_run after the current iteration. */
void kp_loop_stop(kp_loop_t *loop);

/* Interest changes. Return 0 or -1 (errno set). */
int kp_loop_add(kp_loop_t *loop, kp_io_t *io, int fd, uint32_t mask, kp_io_fn fn, void *data);
int kp_loop_set(kp_loop_t *loop, kp_io_t *io, uint32_t mask);
void kp_loop_del(kp_loop_t *loop, kp_io_t *io);

/* One-shot timer after delay_ms. The returned handle is valid until the timer fires or is
 * cancelled; cancel only a timer that has not fired. */
kp_timer_t *kp_loop_timer(kp_loop_t *loop, int64_t delay_ms, kp_task_fn fn, void *arg);
void kp_loop_timer_cancel(kp_loop_t *loop, kp_timer_t *timer);

/* Thread-safe: run fn(arg) on the loop's thread soon (FIFO). */
void kp_loop_post(kp_loop_t *loop, kp_task_fn fn, void *arg);
/* Loop thread only: run fn(arg) after the current batch of events (safe point for frees). */
void kp_loop_defer(kp_loop_t *loop, kp_task_fn fn, void *arg);

/* After the loop thread has exited: runs queued mailbox and deferred tasks on the calling
 * thread until none are left (shutdown, so that completions posted late still free what
 * they own). */
void kp_loop_drain(kp_loop_t *loop);

/* Milliseconds (monotonic) cached at the start of the iteration: cheap "now" for handlers. */
int64_t kp_loop_now_ms(const kp_loop_t *loop);

#endif
