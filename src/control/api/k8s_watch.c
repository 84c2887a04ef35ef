/*
 * k8s_watch.c — the watch hub and its streams (see k8s_watch.h): the hub's thread and the
 * event ring first, then one stream's reader callback, then queueing a stream.
 *
 * The hub's thread sleeps until something may have changed: a write through this process's
 * store or a new Event (both call hub_wake), a suspended stream due for a heartbeat or its
 * end, or the once-a-second look at whether another process wrote to the store's file.
 * Locks: h->lock (ring, snapshots, streams), then the store's own; h->wake_lock is a leaf
 * (nothing is taken under it), so the store and the Event recorder may wake the hub while
 * holding theirs.
 */
#include "control/api/k8s_watch.h"

#include "control/events.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "control/api/api_reply.h"
#include "control/api/k8s.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes that follow each other closer than this are read as one look at the store: a burst
 * (a resync writing many statuses) costs at most one diff per WATCH_TICK_MS, as when the hub
 * polled at this period; a lone write is seen at once. */
#define WATCH_TICK_MS 100
/* How often the hub asks SQLite whether another process (another connection on the store's
 * file: `kpool registry`, sqlite3) committed: their writes are seen within this. */
#define WATCH_FOREIGN_CHECK_MS 1000
/* Events kept for watches that start from an older resourceVersion (and for slow readers:
 * one that falls further behind gets 410 and lists again). */
#define WATCH_EVENTS_MAX 4096
/* A watch without timeoutSeconds ends after this (clients watch again), bounding what a
 * vanished client holds; timeoutSeconds is capped at WATCH_TIMEOUT_MAX_S. */
#define WATCH_TIMEOUT_DEFAULT_S 1800
#define WATCH_TIMEOUT_MAX_S     3600
/* An idle stream writes a bookmark (or a newline) this often, so a vanished client is
 * noticed and the connection freed. */
#define WATCH_HEARTBEAT_S 10

/* What woke the hub (h->wake): a store write, an Event, a stream that suspended (its next
 * heartbeat or end may come before the hub's planned wake-up), a shutdown. */
enum { WAKE_STORE = 1, WAKE_EVENTS = 2, WAKE_STREAMS = 4, WAKE_STOP = 8 };

/* The hubs' work, for /metrics (kp_k8s_watch_metrics_render): every hub of the process. */
static atomic_llong hub_wakeups, hub_diffs;

enum { EV_ADDED, EV_MODIFIED, EV_DELETED };
static const char *event_names[] = {"ADDED", "MODIFIED", "DELETED"};

/* Where an event comes from: the store, or the Event recorder (control/events.h), whose
 * resourceVersions are its own. */
enum { SRC_STORE, SRC_EVENTS };

typedef struct event {
    int64_t rv;
    int type, src;
    json_t *obj; /* as stored (a Secret sealed) */
} event_t;

typedef struct watcher watcher_t;

struct kp_k8s_watch_hub {
    kp_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    int stop, started;
    event_t ring[WATCH_EVENTS_MAX];
    uint64_t seq_first, seq_next; /* ring holds [seq_first, seq_next) */
    int64_t floor_rv;             /* a watch from an older resourceVersion is 410 */
    int64_t store_rv;             /* the store's resourceVersion at the last tick */
    json_t *snapshot;             /* "kind/ns/name" -> object */
    /* the same for Events (kubectl get events -w) */
    int64_t events_floor_rv, events_rv;
    json_t *events_snapshot; /* "ns/name" -> Event */
    watcher_t *watchers;
    pthread_mutex_t wake_lock; /* a leaf: covers wake */
    pthread_cond_t wake_cond;  /* CLOCK_MONOTONIC */
    int wake;                  /* WAKE_* since the hub last looked */
    int64_t data_version;      /* kp_store_data_version at the last look (the hub's thread) */
    int listening;             /* told by the store and the Event recorder */
};

struct watcher {
    kp_k8s_watch_hub_t *hub;
    const kp_kind_t *kind;
    char *ns, *labels, *fields, include_object[16];
    int table, bookmarks, events; /* events: a watch of Events (SRC_EVENTS) */
    int (*reveal)(void *arg, json_t *obj);
    void *reveal_arg;
    int64_t min_rv;  /* events at or below are not sent */
    uint64_t cursor; /* next ring sequence to look at */
    kp_buf_t pending;
    size_t pending_off;
    struct MHD_Connection *conn;
    int suspended, done;
    time_t deadline, last_write;
    watcher_t *next;
};

/* ---- the hub ---- */

static int64_t rv_of(const json_t *obj)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return s ? atoll(s) : 0;
}

/* Appends an event (obj stolen); the oldest goes when the ring is full. Hub locked. */
static void ring_push(kp_k8s_watch_hub_t *h, int src, int type, int64_t rv, json_t *obj)
{
    if (h->seq_next - h->seq_first == WATCH_EVENTS_MAX) {
        event_t *old = &h->ring[h->seq_first % WATCH_EVENTS_MAX];
        if (old->src == SRC_EVENTS)
            h->events_floor_rv = old->rv;
        else
            h->floor_rv = old->rv;
        json_decref(old->obj);
        h->seq_first++;
    }
    event_t *e = &h->ring[h->seq_next % WATCH_EVENTS_MAX];
    e->rv = rv;
    e->src = src;
    e->type = type;
    e->obj = obj;
    h->seq_next++;
}

/* Reads every kind and records what changed since the last snapshot. Hub locked. Objects
 * are compared by resourceVersion from the store's keys: only the bodies of those that
 * changed are read (a write to one object of 10,000 read and parsed all of them). 0, or -1
 * when the store could not be read (nothing recorded: the caller tries again). */
static int hub_diff(kp_k8s_watch_hub_t *h, int64_t rv, int record)
{
    json_t *snap = json_object();
    json_t *changes = json_array(); /* {rv, type, obj}, sorted by rv below */
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        kp_store_key_t *keys;
        size_t nkeys;
        if (kp_store_keys(h->store, k->kind, &keys, &nkeys) < 0) {
            json_decref(snap);
            json_decref(changes);
            return -1;
        }
        for (size_t j = 0; j < nkeys; j++) {
            char key[700];
            snprintf(key, sizeof(key), "%s/%s/%s", k->kind, keys[j].ns, keys[j].name);
            json_t *before = json_object_get(h->snapshot, key), *o = NULL;
            if (before && rv_of(before) == keys[j].rv) {
                json_object_set(snap, key, before);
                continue;
            }
            /* removed since the keys were read: not in snap, so reported as deleted */
            if (kp_store_get(h->store, k->kind, keys[j].ns, keys[j].name, &o) != KP_STORE_OK)
                continue;
            json_object_set_new(snap, key, o);
            json_array_append_new(changes, json_pack("{s:I, s:i, s:O}", "rv", rv_of(o), "type",
                                                     before ? EV_MODIFIED : EV_ADDED, "obj", o));
        }
        kp_store_keys_free(keys, nkeys);
    }
    const char *key;
    json_t *o;
    json_object_foreach(h->snapshot, key, o) if (!json_object_get(snap, key))
    {
        json_t *gone = json_deep_copy(o);
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
        json_object_set_new(json_object_get(gone, "metadata"), "resourceVersion", json_string(rvs));
        json_array_append_new(
            changes, json_pack("{s:I, s:i, s:o}", "rv", rv, "type", EV_DELETED, "obj", gone));
    }
    /* in resourceVersion order (a few changes per tick: insertion sort) */
    size_t n = json_array_size(changes);
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(changes, b - 1), *y = json_array_get(changes, b);
            if (json_integer_value(json_object_get(x, "rv")) <=
                json_integer_value(json_object_get(y, "rv")))
                break;
            json_incref(x);
            json_array_set(changes, b - 1, y);
            json_array_set_new(changes, b, x);
        }
    size_t i;
    json_t *c;
    if (record)
        json_array_foreach(changes, i, c) ring_push(
            h, SRC_STORE, (int)json_integer_value(json_object_get(c, "type")),
            json_integer_value(json_object_get(c, "rv")), json_incref(json_object_get(c, "obj")));
    json_decref(changes);
    json_decref(h->snapshot);
    h->snapshot = snap;
    h->store_rv = rv;
    return 0;
}

static int by_rv(const void *a, const void *b)
{
    int64_t x = json_integer_value(json_object_get(*(json_t *const *)a, "rv"));
    int64_t y = json_integer_value(json_object_get(*(json_t *const *)b, "rv"));
    return x < y ? -1 : x > y;
}

/* Records what changed among the Events since the last look (new ones ADDED, counted again
 * MODIFIED, expired DELETED). Hub locked. */
static void events_diff(kp_k8s_watch_hub_t *h, int record)
{
    if (kp_events_rv() == h->events_rv) return;
    int64_t rv;
    json_t *list = kp_events_list(NULL, &rv), *snap = json_object(), *e;
    size_t n = json_array_size(list), k = 0, i;
    json_t **changes = calloc(n + json_object_size(h->events_snapshot) + 1, sizeof(*changes));
    json_array_foreach(list, i, e)
    {
        json_t *md = json_object_get(e, "metadata");
        char key[600];
        snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(md, "namespace")),
                 json_string_value(json_object_get(md, "name")));
        json_t *before = json_object_get(h->events_snapshot, key);
        json_object_set(snap, key, e);
        if (before && rv_of(before) == rv_of(e)) continue;
        changes[k++] = json_pack("{s:I, s:i, s:O}", "rv", rv_of(e), "type",
                                 before ? EV_MODIFIED : EV_ADDED, "obj", e);
    }
    const char *key;
    json_object_foreach(h->events_snapshot, key, e) if (!json_object_get(snap, key))
    {
        json_t *gone = json_deep_copy(e);
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
        json_object_set_new(json_object_get(gone, "metadata"), "resourceVersion", json_string(rvs));
        changes[k++] = json_pack("{s:I, s:i, s:o}", "rv", rv, "type", EV_DELETED, "obj", gone);
    }
    if (k) qsort(changes, k, sizeof(*changes), by_rv);
    for (i = 0; i < k; i++) {
        if (record)
            ring_push(h, SRC_EVENTS, (int)json_integer_value(json_object_get(changes[i], "type")),
                      json_integer_value(json_object_get(changes[i], "rv")),
                      json_incref(json_object_get(changes[i], "obj")));
        json_decref(changes[i]);
    }
    free(changes);
    json_decref(list);
    json_decref(h->events_snapshot);
    h->events_snapshot = snap;
    h->events_rv = rv;
}

static int due(const watcher_t *w, time_t now)
{
    return w->done || now >= w->deadline || now - w->last_write >= WATCH_HEARTBEAT_S ||
           w->cursor < w->hub->seq_next;
}

/* When a suspended stream is next due without a change (its heartbeat or its end), in
 * seconds of the wall clock as due() counts them; DUE_NEVER when none is suspended. */
#define DUE_NEVER INT64_MAX
static int64_t next_due(const kp_k8s_watch_hub_t *h)
{
    int64_t next = DUE_NEVER;
    for (const watcher_t *w = h->watchers; w; w = w->next) {
        if (!w->suspended) continue;
        int64_t t = (int64_t)w->last_write + WATCH_HEARTBEAT_S;
        if (w->deadline < t) t = w->deadline;
        if (t < next) next = t;
    }
    return next;
}

/* The store's and the Event recorder's listener: on their thread, maybe under their lock. */
static void hub_wake(kp_k8s_watch_hub_t *h, int why)
{
    pthread_mutex_lock(&h->wake_lock);
    h->wake |= why;
    pthread_cond_signal(&h->wake_cond);
    pthread_mutex_unlock(&h->wake_lock);
}

static void on_store_write(void *arg)
{
    hub_wake(arg, WAKE_STORE);
}

static void on_event_recorded(void *arg)
{
    hub_wake(arg, WAKE_EVENTS);
}

/* Sleeps until there is work: a change (but not before looked_ms + WATCH_TICK_MS, so that a
 * burst of writes is read once), a stream that suspended, or until_ms (monotonic). Returns
 * the WAKE_* bits taken; a change left for after the tick stays in h->wake. */
static int hub_sleep(kp_k8s_watch_hub_t *h, int64_t looked_ms, int64_t until_ms)
{
    pthread_mutex_lock(&h->wake_lock);
    for (;;) {
        int64_t now_ms = kp_mono_ms(), wait_until = until_ms;
        int change = h->wake & (WAKE_STORE | WAKE_EVENTS);
        if (change && looked_ms + WATCH_TICK_MS < wait_until)
            wait_until = looked_ms + WATCH_TICK_MS;
        if (h->wake & (WAKE_STREAMS | WAKE_STOP) || now_ms >= wait_until) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (wait_until - now_ms) * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&h->wake_cond, &h->wake_lock, &ts);
    }
    int took = h->wake;
    if (kp_mono_ms() < looked_ms + WATCH_TICK_MS) took &= ~(WAKE_STORE | WAKE_EVENTS);
    h->wake &= ~took;
    pthread_mutex_unlock(&h->wake_lock);
    return took;
}

static void *hub_main(void *arg)
{
    kp_k8s_watch_hub_t *h = arg;
    int64_t looked_ms = 0;
    int64_t foreign_ms = kp_mono_ms() + WATCH_FOREIGN_CHECK_MS, due_ms = INT64_MAX;
    for (;;) {
        int why = hub_sleep(h, looked_ms, foreign_ms < due_ms ? foreign_ms : due_ms);
        if (why & WAKE_STOP) return NULL;
        atomic_fetch_add_explicit(&hub_wakeups, 1, memory_order_relaxed);
        int64_t now_ms = kp_mono_ms();
        if (now_ms >= foreign_ms) { /* another process's commit moves the data_version */
            foreign_ms = now_ms + WATCH_FOREIGN_CHECK_MS;
            int64_t v = kp_store_data_version(h->store);
            if (v != h->data_version) why |= WAKE_STORE;
            h->data_version = v;
        }
        int64_t rv = -1;
        if (why & (WAKE_STORE | WAKE_EVENTS)) looked_ms = now_ms;
        if (why & WAKE_STORE) rv = kp_store_rv(h->store);
        pthread_mutex_lock(&h->lock);
        if (h->stop) {
            pthread_mutex_unlock(&h->lock);
            return NULL;
        }
        int retry = rv < 0 && (why & WAKE_STORE);
        if (rv >= 0 && rv != h->store_rv) {
            atomic_fetch_add_explicit(&hub_diffs, 1, memory_order_relaxed);
            retry = hub_diff(h, rv, 1) < 0;
        }
        if (why & WAKE_EVENTS) events_diff(h, 1);
        time_t now = time(NULL);
        for (watcher_t *w = h->watchers; w; w = w->next)
            if (w->suspended && due(w, now)) {
                w->suspended = 0;
                MHD_resume_connection(w->conn);
            }
        int64_t next = next_due(h);
        pthread_mutex_unlock(&h->lock);
        if (retry) hub_wake(h, WAKE_STORE); /* the store could not be read: again in a tick */
        /* due() counts whole seconds of time(): wake at the start of that second */
        due_ms = next == DUE_NEVER ? INT64_MAX : now_ms + next * 1000 - kp_wall_ms();
    }
}

kp_k8s_watch_hub_t *kp_k8s_watch_hub_start(kp_store_t *store)
{
    kp_k8s_watch_hub_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->store = store;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->wake_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake_cond, &ca);
    pthread_condattr_destroy(&ca);
    h->snapshot = json_object();
    h->events_snapshot = json_object();
    h->store_rv = h->events_rv = -1;
    /* listening before the first snapshot: a write in between wakes the thread */
    if (kp_store_listen(store, on_store_write, h) < 0 ||
        kp_events_listen(on_event_recorded, h) < 0) {
        kp_store_unlisten(store, on_store_write, h);
        kp_error("api", "too many watch hubs: watches are refused");
        kp_k8s_watch_hub_free(h);
        return NULL;
    }
    h->listening = 1;
    h->data_version = kp_store_data_version(store); /* before the snapshot: nothing missed */
    int64_t rv = kp_store_rv(store);
    hub_diff(h, rv < 0 ? 0 : rv, 0);
    h->floor_rv = h->store_rv;
    events_diff(h, 0);
    h->events_floor_rv = h->events_rv;
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        kp_error("api", "cannot start the watch thread: watches are refused");
        kp_k8s_watch_hub_free(h);
        return NULL;
    }
    h->started = 1;
    return h;
}

void kp_k8s_watch_hub_shutdown(kp_k8s_watch_hub_t *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->stop = 1;
    for (watcher_t *w = h->watchers; w; w = w->next) {
        w->done = 1;
        if (w->suspended) {
            w->suspended = 0;
            MHD_resume_connection(w->conn);
        }
    }
    pthread_mutex_unlock(&h->lock);
    hub_wake(h, WAKE_STOP);
}

void kp_k8s_watch_hub_free(kp_k8s_watch_hub_t *h)
{
    if (!h) return;
    kp_k8s_watch_hub_shutdown(h);
    if (h->listening) { /* no call of ours is in progress once these return */
        kp_store_unlisten(h->store, on_store_write, h);
        kp_events_unlisten(on_event_recorded, h);
    }
    if (h->started) pthread_join(h->thread, NULL);
    for (uint64_t s = h->seq_first; s < h->seq_next; s++)
        json_decref(h->ring[s % WATCH_EVENTS_MAX].obj);
    json_decref(h->snapshot);
    json_decref(h->events_snapshot);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake_cond);
    pthread_mutex_destroy(&h->wake_lock);
    free(h);
}

void kp_k8s_watch_metrics_render(kp_buf_t *out, void *arg)
{
    (void)arg;
    kp_buf_appendf(
        out,
        "# HELP kpool_control_watch_wakeups_total Times a watch hub (one per API listener) "
        "woke: a write to the store, an Event, a stream's heartbeat or end, or the "
        "once-a-second look for writes by other processes.\n"
        "# TYPE kpool_control_watch_wakeups_total counter\n"
        "kpool_control_watch_wakeups_total %lld\n"
        "# HELP kpool_control_watch_diffs_total Times a watch hub compared the store with its "
        "last snapshot (the store's resourceVersion had moved).\n"
        "# TYPE kpool_control_watch_diffs_total counter\n"
        "kpool_control_watch_diffs_total %lld\n",
        (long long)atomic_load_explicit(&hub_wakeups, memory_order_relaxed),
        (long long)atomic_load_explicit(&hub_diffs, memory_order_relaxed));
}

/* ---- one stream ---- */

static int matches(const watcher_t *w, const json_t *obj)
{
    if (strcmp(json_string_value(json_object_get(obj, "kind")) ?: "", w->kind->kind) != 0) return 0;
    if (w->ns && w->kind->namespaced) {
        const char *ns =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
        if (!ns || strcmp(ns, w->ns) != 0) return 0;
    }
    char err[256];
    if (w->events) return kp_k8s_event_match(obj, w->labels, w->fields, err, sizeof(err)) == 1;
    return kp_k8s_label_match(obj, w->labels, err, sizeof(err)) == 1 &&
           kp_k8s_field_match(obj, w->fields, err, sizeof(err)) == 1;
}

/* Appends one event line to the pending output. */
static void emit(watcher_t *w, const char *type, const json_t *obj)
{
    json_t *o = json_deep_copy(obj);
    if (w->reveal && w->reveal(w->reveal_arg, o) < 0) {
        json_decref(o);
        return;
    }
    if (w->table && strcmp(type, "BOOKMARK") != 0 && strcmp(type, "ERROR") != 0) {
        json_t *items = json_pack("[o]", o);
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%lld", (long long)rv_of(json_array_get(items, 0)));
        o = w->events ? kp_k8s_events_table(items, rvs, w->include_object)
                      : kp_k8s_table(w->kind, items, rvs, w->include_object);
        json_decref(items);
    }
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", o);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!text) return; /* not UTF-8: kpool never stores such text, so never here */
    kp_buf_appendf(&w->pending, "%s\n", text);
    free(text);
}

static void emit_bookmark(watcher_t *w, int64_t rv, int initial_end)
{
    char av[64], rvs[32];
    kp_kind_api_version(w->kind, av, sizeof(av));
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "kind", w->kind->kind, "apiVersion", av,
                          "metadata", "resourceVersion", rvs);
    if (initial_end)
        json_object_set_new(json_object_get(o, "metadata"), "annotations",
                            json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
    int table = w->table;
    w->table = 0;
    emit(w, "BOOKMARK", o);
    w->table = table;
    json_decref(o);
}

/* Collects what is due into pending. Hub locked. 0, or -1 when the stream is over. */
static int collect(watcher_t *w, time_t now)
{
    kp_k8s_watch_hub_t *h = w->hub;
    if (w->cursor < h->seq_first) { /* fell out of the ring: start over, as after 410 */
        json_t *st =
            kp_api_status(410, "Expired", "the watch fell behind the server's history: list again");
        int table = w->table;
        w->table = 0;
        emit(w, "ERROR", st);
        w->table = table;
        json_decref(st);
        return -1;
    }
    for (; w->cursor < h->seq_next; w->cursor++) {
        event_t *e = &h->ring[w->cursor % WATCH_EVENTS_MAX];
        if (e->src == w->events && e->rv > w->min_rv && matches(w, e->obj))
            emit(w, event_names[e->type], e->obj);
    }
    if (w->pending.len == w->pending_off && now - w->last_write >= WATCH_HEARTBEAT_S) {
        if (w->bookmarks)
            emit_bookmark(w, w->events ? h->events_rv : h->store_rv, 0);
        else
            kp_buf_append(&w->pending, "\n", 1); /* whitespace between events: ignored */
    }
    return 0;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    watcher_t *w = cls;
    kp_k8s_watch_hub_t *h = w->hub;
    pthread_mutex_lock(&h->lock);
    time_t now = time(NULL);
    if (w->pending.len == w->pending_off) {
        kp_buf_reset(&w->pending);
        w->pending_off = 0;
        if (w->done || h->stop || now >= w->deadline) {
            pthread_mutex_unlock(&h->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (collect(w, now) < 0) w->done = 1;
    }
    size_t n = w->pending.len - w->pending_off;
    if (n == 0) {
        w->suspended = 1; /* the hub resumes it when something is due */
        MHD_suspend_connection(w->conn);
        pthread_mutex_unlock(&h->lock);
        hub_wake(h, WAKE_STREAMS); /* its heartbeat may come before the hub's next wake-up */
        return 0;
    }
    if (n > max) n = max;
    memcpy(buf, w->pending.data + w->pending_off, n);
    w->pending_off += n;
    w->last_write = now;
    pthread_mutex_unlock(&h->lock);
    return (ssize_t)n;
}

static void watcher_free(void *cls)
{
    watcher_t *w = cls;
    kp_k8s_watch_hub_t *h = w->hub;
    pthread_mutex_lock(&h->lock);
    for (watcher_t **p = &h->watchers; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&h->lock);
    kp_buf_free(&w->pending);
    free(w->ns);
    free(w->labels);
    free(w->fields);
    free(w);
}

static enum MHD_Result send_status(struct MHD_Connection *conn, unsigned code, const char *reason,
                                   const char *msg)
{
    json_t *st = kp_api_status(code, reason, msg);
    enum MHD_Result rc = kp_api_send(conn, code, st, NULL);
    json_decref(st);
    return rc;
}

enum MHD_Result kp_k8s_watch_queue(kp_k8s_watch_hub_t *h, struct MHD_Connection *conn,
                                   const kp_k8s_watch_spec_t *spec)
{
    if (!h) return send_status(conn, 503, "ServiceUnavailable", "watches are not available");
    const char *rvs = spec->resource_version;
    int initial = !rvs || !*rvs || !strcmp(rvs, "0") || spec->send_initial_events;
    int64_t rv = 0;
    if (rvs && *rvs) {
        char *end;
        long long v = strtoll(rvs, &end, 10);
        if (*end || v < 0)
            return send_status(conn, 400, "BadRequest", "resourceVersion: not a version");
        rv = v;
    }
    watcher_t *w = calloc(1, sizeof(*w));
    if (!w) return MHD_NO;
    w->hub = h;
    w->kind = spec->kind;
    w->ns = spec->ns && *spec->ns ? strdup(spec->ns) : NULL;
    w->labels = spec->label_selector ? strdup(spec->label_selector) : NULL;
    w->fields = spec->field_selector ? strdup(spec->field_selector) : NULL;
    snprintf(w->include_object, sizeof(w->include_object), "%s",
             spec->include_object ? spec->include_object : "");
    w->table = spec->table;
    w->bookmarks = spec->bookmarks;
    w->events = spec->kind == &kp_k8s_event_kind;
    w->reveal = spec->reveal;
    w->reveal_arg = spec->reveal_arg;
    w->conn = conn;
    kp_buf_init(&w->pending);
    time_t now = time(NULL);
    long t = spec->timeout_seconds > 0 ? spec->timeout_seconds : WATCH_TIMEOUT_DEFAULT_S;
    w->deadline = now + (t > WATCH_TIMEOUT_MAX_S ? WATCH_TIMEOUT_MAX_S : t);
    w->last_write = now;
    pthread_mutex_lock(&h->lock);
    int64_t floor = w->events ? h->events_floor_rv : h->floor_rv;
    int64_t now_rv = w->events ? h->events_rv : h->store_rv;
    if (!initial && rv < floor) {
        pthread_mutex_unlock(&h->lock);
        free(w->ns);
        free(w->labels);
        free(w->fields);
        free(w);
        char msg[160];
        snprintf(msg, sizeof(msg), "too old resource version: %lld (%lld)", (long long)rv,
                 (long long)floor);
        return send_status(conn, 410, "Expired", msg);
    }
    if (initial) { /* the current state as ADDED events, then what follows */
        const char *key;
        json_t *o;
        json_object_foreach(w->events ? h->events_snapshot : h->snapshot, key, o) if (matches(w, o))
            emit(w, "ADDED", o);
        w->min_rv = now_rv;
        if (spec->send_initial_events) emit_bookmark(w, now_rv, 1);
    } else {
        w->min_rv = rv;
    }
    w->cursor = h->seq_first;
    if (initial) w->cursor = h->seq_next;
    w->next = h->watchers;
    h->watchers = w;
    pthread_mutex_unlock(&h->lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, w, watcher_free);
    if (!r) {
        watcher_free(w);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-cache, private");
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}
