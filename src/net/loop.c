/*
 * loop.c — epoll reactor (level-triggered), a binary heap of timers, an eventfd mailbox.
 *
 * Level-triggered readiness keeps the contract simple: a handler may do one bounded unit of
 * work (one read) and return; if more is pending, epoll reports it again next iteration,
 * which gives fairness between connections for free.
 */
#include "net/loop.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 256

struct kp_timer {
    int64_t deadline_ms;
    uint64_t seq;
    kp_task_fn fn;
    void *arg;
    int heap_index; /* -1 when not in the heap */
};

typedef struct task {
    kp_task_fn fn;
    void *arg;
    struct task *next;
} task_t;

struct kp_loop {
    int id;
    int epfd;
    int wakefd;
    kp_io_t wake_io;
    atomic_int stop;
    int64_t now_ms;
    uint64_t timer_seq;
    kp_timer_t **heap;
    int heap_len, heap_cap;
    pthread_mutex_t mbox_lock;
    task_t *mbox_head, *mbox_tail;
    atomic_int mbox_signalled;
    task_t *defer_head, *defer_tail;
};

static void wake_drain(kp_loop_t *loop, kp_io_t *io, uint32_t events);

kp_loop_t *kp_loop_new(int id)
{
    kp_loop_t *loop = kp_xcalloc(1, sizeof(*loop));
    loop->id = id;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd < 0 || loop->wakefd < 0) {
        kp_error("loop", "epoll/eventfd: %s", strerror(errno));
        abort();
    }
    pthread_mutex_init(&loop->mbox_lock, NULL);
    loop->now_ms = kp_mono_ms();
    kp_loop_add(loop, &loop->wake_io, loop->wakefd, KP_READABLE, wake_drain, NULL);
    return loop;
}

void kp_loop_free(kp_loop_t *loop)
{
    if (!loop) return;
    for (int i = 0; i < loop->heap_len; i++) free(loop->heap[i]);
    free(loop->heap);
    for (task_t *t = loop->mbox_head, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    for (task_t *t = loop->defer_head, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    close(loop->epfd);
    close(loop->wakefd);
    pthread_mutex_destroy(&loop->mbox_lock);
    free(loop);
}

int kp_loop_id(const kp_loop_t *loop)
{
    return loop->id;
}

int64_t kp_loop_now_ms(const kp_loop_t *loop)
{
    return loop->now_ms;
}

static uint32_t to_epoll(uint32_t mask)
{
    return (mask & KP_READABLE ? EPOLLIN : 0) | (mask & KP_WRITABLE ? EPOLLOUT : 0);
}

int kp_loop_add(kp_loop_t *loop, kp_io_t *io, int fd, uint32_t mask, kp_io_fn fn, void *data)
{
    io->fd = fd;
    io->mask = mask;
    io->fn = fn;
    io->data = data;
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = io};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int kp_loop_set(kp_loop_t *loop, kp_io_t *io, uint32_t mask)
{
    if (io->mask == mask) return 0;
    io->mask = mask;
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = io};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void kp_loop_del(kp_loop_t *loop, kp_io_t *io)
{
    if (io->fd >= 0) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->mask = 0;
    io->fn = NULL; /* events already fetched for it in this batch are dropped */
}

/* ---- timers: a binary min-heap on (deadline, seq) ---- */

static int timer_less(const kp_timer_t *a, const kp_timer_t *b)
{
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_swap(kp_loop_t *loop, int i, int j)
{
    kp_timer_t *t = loop->heap[i];
    loop->heap[i] = loop->heap[j];
    loop->heap[j] = t;
    loop->heap[i]->heap_index = i;
    loop->heap[j]->heap_index = j;
}

static void heap_up(kp_loop_t *loop, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!timer_less(loop->heap[i], loop->heap[parent])) break;
        heap_swap(loop, i, parent);
        i = parent;
    }
}

static void heap_down(kp_loop_t *loop, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && timer_less(loop->heap[l], loop->heap[m])) m = l;
        if (r < loop->heap_len && timer_less(loop->heap[r], loop->heap[m])) m = r;
        if (m == i) return;
        heap_swap(loop, i, m);
        i = m;
    }
}

static void heap_remove(kp_loop_t *loop, int i)
{
    int last = --loop->heap_len;
    loop->heap[i]->heap_index = -1;
    if (i != last) {
        loop->heap[i] = loop->heap[last];
        loop->heap[i]->heap_index = i;
        heap_down(loop, i);
        heap_up(loop, i);
    }
}

kp_timer_t *kp_loop_timer(kp_loop_t *loop, int64_t delay_ms, kp_task_fn fn, void *arg)
{
    kp_timer_t *t = kp_xmalloc(sizeof(*t));
    t->deadline_ms = kp_mono_ms() + (delay_ms < 0 ? 0 : delay_ms);
    t->seq = loop->timer_seq++;
    t->fn = fn;
    t->arg = arg;
    if (loop->heap_len == loop->heap_cap) {
        loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        loop->heap = kp_xrealloc(loop->heap, (size_t)loop->heap_cap * sizeof(*loop->heap));
    }
    t->heap_index = loop->heap_len;
    loop->heap[loop->heap_len++] = t;
    heap_up(loop, t->heap_index);
    return t;
}

void kp_loop_timer_cancel(kp_loop_t *loop, kp_timer_t *t)
{
    if (!t) return;
    if (t->heap_index >= 0) heap_remove(loop, t->heap_index);
    free(t);
}

static void run_timers(kp_loop_t *loop)
{
    int64_t now = kp_mono_ms();
    while (loop->heap_len > 0 && loop->heap[0]->deadline_ms <= now) {
        kp_timer_t *t = loop->heap[0];
        heap_remove(loop, 0);
        kp_task_fn fn = t->fn;
        void *arg = t->arg;
        free(t);
        fn(loop, arg);
    }
}

/* ---- mailbox and deferred tasks ---- */

void kp_loop_post(kp_loop_t *loop, kp_task_fn fn, void *arg)
{
    task_t *t = kp_xmalloc(sizeof(*t));
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&loop->mbox_lock);
    if (loop->mbox_tail)
        loop->mbox_tail->next = t;
    else
        loop->mbox_head = t;
    loop->mbox_tail = t;
    pthread_mutex_unlock(&loop->mbox_lock);
    if (!atomic_exchange(&loop->mbox_signalled, 1)) {
        uint64_t one = 1;
        ssize_t w = write(loop->wakefd, &one, sizeof(one));
        (void)w;
    }
}

static void wake_drain(kp_loop_t *loop, kp_io_t *io, uint32_t events)
{
    uint64_t v;
    ssize_t r = read(loop->wakefd, &v, sizeof(v));
    (void)r;
    atomic_store(&loop->mbox_signalled, 0);
    pthread_mutex_lock(&loop->mbox_lock);
    task_t *t = loop->mbox_head;
    loop->mbox_head = loop->mbox_tail = NULL;
    pthread_mutex_unlock(&loop->mbox_lock);
    while (t) {
        task_t *next = t->next;
        t->fn(loop, t->arg);
        free(t);
        t = next;
    }
}

void kp_loop_defer(kp_loop_t *loop, kp_task_fn fn, void *arg)
{
    task_t *t = kp_xmalloc(sizeof(*t));
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = t;
    else
        loop->defer_head = t;
    loop->defer_tail = t;
}

static void run_deferred(kp_loop_t *loop)
{
    while (loop->defer_head) {
        task_t *t = loop->defer_head;
        loop->defer_head = loop->defer_tail = NULL;
        while (t) {
            task_t *next = t->next;
            t->fn(loop, t->arg);
            free(t);
            t = next;
        }
    }
}

void kp_loop_drain(kp_loop_t *loop)
{
    for (int round = 0; round < 100; round++) {
        pthread_mutex_lock(&loop->mbox_lock);
        int empty = loop->mbox_head == NULL;
        pthread_mutex_unlock(&loop->mbox_lock);
        if (empty && !loop->defer_head) return;
        wake_drain(loop, &loop->wake_io, KP_READABLE);
        run_deferred(loop);
    }
}

void kp_loop_stop(kp_loop_t *loop)
{
    atomic_store(&loop->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w;
}

void kp_loop_run(kp_loop_t *loop)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    while (!atomic_load(&loop->stop)) {
        int timeout = -1;
        if (loop->heap_len > 0) {
            int64_t wait = loop->heap[0]->deadline_ms - kp_mono_ms();
            timeout = wait < 0 ? 0 : (int)(wait > 1000 ? 1000 : wait);
        }
        if (loop->defer_head) timeout = 0;
        int n = epoll_wait(loop->epfd, events, EVENTS_PER_WAIT, timeout);
        if (n < 0 && errno != EINTR) {
            kp_error("loop", "epoll_wait: %s", strerror(errno));
            break;
        }
        loop->now_ms = kp_mono_ms();
        for (int i = 0; i < n; i++) {
            /* stopped by an earlier event of this batch (shutdown): nothing after it may run,
             * an accept here would create a connection no one closes */
            if (atomic_load(&loop->stop)) break;
            kp_io_t *io = events[i].data.ptr;
            uint32_t e = events[i].events, mask = 0;
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) mask |= KP_READABLE;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) mask |= KP_WRITABLE;
            if (!io->fn) continue;
            mask &= io->mask | ((e & (EPOLLHUP | EPOLLERR)) ? KP_READABLE : 0);
            if (mask) io->fn(loop, io, mask);
        }
        run_deferred(loop);
        run_timers(loop);
        run_deferred(loop);
    }
}
