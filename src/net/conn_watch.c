/*
 * conn_watch.c — setup and idle deadlines of a loop's connections (see conn_watch.h):
 * two intrusive lists in deadline order and one loop timer at the earliest head.
 */
#include "net/conn_watch.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"

#include <stdlib.h>

enum { LIST_NONE, LIST_SETUP, LIST_ACTIVE };

typedef struct watch_list {
    kp_conn_t *head, *tail;
} watch_list_t;

struct kp_conn_watch {
    kp_loop_t *loop;
    watch_list_t setup, active;
    kp_timer_t *timer; /* pending, or NULL */
    int64_t timer_at_ms;
};

kp_net_limits_t kp_net_limits = {.idle_ms = 600000, .setup_ms = 10000};

static void watch_fire(kp_loop_t *loop, void *arg);

kp_conn_watch_t *kp_conn_watch_new(kp_loop_t *loop)
{
    kp_conn_watch_t *w = kp_xcalloc(1, sizeof(*w));
    w->loop = loop;
    return w;
}

void kp_conn_watch_free(kp_conn_watch_t *w)
{
    if (!w) return;
    if (w->timer) kp_loop_timer_cancel(w->loop, w->timer);
    free(w);
}

static watch_list_t *list_of(kp_conn_watch_t *w, int which)
{
    return which == LIST_SETUP ? &w->setup : &w->active;
}

static void list_unlink(kp_conn_t *c)
{
    watch_list_t *l = list_of(c->watch, c->watch_list);
    if (c->watch_prev)
        c->watch_prev->watch_next = c->watch_next;
    else
        l->head = c->watch_next;
    if (c->watch_next)
        c->watch_next->watch_prev = c->watch_prev;
    else
        l->tail = c->watch_prev;
    c->watch_prev = c->watch_next = NULL;
    c->watch_list = LIST_NONE;
}

static void list_append(kp_conn_t *c, int which, int64_t since_ms)
{
    watch_list_t *l = list_of(c->watch, which);
    c->watch_list = which;
    c->watch_since_ms = since_ms;
    c->watch_next = NULL;
    c->watch_prev = l->tail;
    if (l->tail)
        l->tail->watch_next = c;
    else
        l->head = c;
    l->tail = c;
}

/* Deadline of a list's head, or INT64_MAX when the list is empty or its timeout is off. */
static int64_t head_deadline(const watch_list_t *l, int64_t timeout_ms)
{
    if (!l->head || timeout_ms <= 0) return INT64_MAX;
    return l->head->watch_since_ms + timeout_ms;
}

/* Keeps one timer at the earliest deadline (an earlier one is harmless: it re-arms). */
static void watch_arm(kp_conn_watch_t *w)
{
    int64_t a = head_deadline(&w->setup, atomic_load(&kp_net_limits.setup_ms));
    int64_t b = head_deadline(&w->active, atomic_load(&kp_net_limits.idle_ms));
    int64_t at = a < b ? a : b;
    if (at == INT64_MAX) return; /* a pending timer finds nothing and is not re-armed */
    if (w->timer && w->timer_at_ms <= at) return;
    if (w->timer) kp_loop_timer_cancel(w->loop, w->timer);
    w->timer_at_ms = at;
    w->timer = kp_loop_timer(w->loop, at - kp_mono_ms(), watch_fire, w);
}

/* Closes the expired heads of one list. A busy connection (responses owed) is not idle:
 * it goes to the tail with a fresh start. Bounded by the list length, as each connection
 * is either closed or moved behind every connection not yet looked at. */
static void sweep(kp_conn_watch_t *w, int which, int64_t timeout_ms, int64_t now, const char *why)
{
    watch_list_t *l = list_of(w, which);
    if (timeout_ms <= 0) return;
    kp_conn_t *last = l->tail;
    while (l->head && l->head->watch_since_ms + timeout_ms <= now) {
        kp_conn_t *c = l->head;
        if (c->ops->busy && c->ops->busy(c)) {
            list_unlink(c);
            list_append(c, which, now);
        } else {
            kp_metric_add(&kp_metrics.connections_expired, 1);
            kp_debug("net", "closing %s: %s for %lld ms", c->peer, why, (long long)timeout_ms);
            kp_conn_close(c, NULL); /* unlinks c */
        }
        if (c == last) break;
    }
}

static void watch_fire(kp_loop_t *loop, void *arg)
{
    (void)loop;
    kp_conn_watch_t *w = arg;
    w->timer = NULL;
    int64_t now = kp_mono_ms(); /* the loop's cached time may be just before the deadline */
    sweep(w, LIST_SETUP, atomic_load(&kp_net_limits.setup_ms), now,
          "no complete request since connecting");
    sweep(w, LIST_ACTIVE, atomic_load(&kp_net_limits.idle_ms), now,
          "idle (connections.max.idle.ms)");
    watch_arm(w);
}

/* c->watch_ops (conn.h): bytes moved. */
static void watch_touch(kp_conn_t *c)
{
    if (c->watch_list != LIST_ACTIVE) return; /* setup has a fixed deadline */
    int64_t now = kp_loop_now_ms(c->watch->loop);
    if (c->watch_since_ms == now) return;
    if (c->watch->active.tail == c) {
        c->watch_since_ms = now;
        return;
    }
    list_unlink(c);
    list_append(c, LIST_ACTIVE, now);
}

/* Setup done. */
static void watch_first_frame(kp_conn_t *c)
{
    if (c->watch_list != LIST_SETUP) return;
    kp_conn_watch_t *w = c->watch;
    list_unlink(c);
    list_append(c, LIST_ACTIVE, kp_loop_now_ms(w->loop));
    watch_arm(w);
}

/* Closing. */
static void watch_remove(kp_conn_t *c)
{
    if (c->watch && c->watch_list != LIST_NONE) list_unlink(c);
}

static const kp_conn_watch_ops_t watch_ops = {watch_touch, watch_first_frame, watch_remove};

void kp_conn_watch_add(kp_conn_watch_t *w, kp_conn_t *c)
{
    c->watch = w;
    c->watch_ops = &watch_ops;
    list_append(c, LIST_SETUP, kp_loop_now_ms(w->loop));
    watch_arm(w);
}
