/*
 * k8s_watch.h — watch streams (`kubectl get -w`, `kubectl wait`, `kubectl delete`'s wait):
 * GET ...?watch=true answers a chunked stream of WatchEvents, one JSON object per line:
 * {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": {...}}.
 *
 * A hub per API follows the store: when the store's resourceVersion moves it diffs every
 * kind against its last snapshot into a ring of the last WATCH_EVENTS_MAX events. A watch
 * from resourceVersion R replays the ring's events newer than R, then follows; R older than
 * the ring's history is 410 Gone (Expired), so a client lists again, as with Kubernetes
 * after a compaction. Changes that land close together (within WATCH_TICK_MS of the hub's
 * last look) are seen as one (the newest object), as a Kubernetes watch cache may coalesce.
 *
 * The hub sleeps while nothing changes: the store wakes it on every write made through it
 * (kp_store_listen), so an event follows a write at once; writes by another process on the
 * same file (`kpool registry`, sqlite3) are noticed by SQLite's data_version, asked once a
 * second (WATCH_FOREIGN_CHECK_MS). A suspended stream's heartbeat and end wake it at their
 * time.
 *
 * Events (kubectl get events -w) come through the same ring from the Event recorder, with
 * its own resourceVersions: the recorder wakes the hub too (kp_events_listen).
 *
 * Streams do not hold a server thread: between events the connection is suspended
 * (MHD_suspend_connection) and the hub resumes it when there is something to send.
 */
#ifndef KP_K8S_WATCH_H
#define KP_K8S_WATCH_H

#include "control/kinds.h"
#include "control/store.h"
#include "core/buf.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

typedef struct kp_k8s_watch_hub kp_k8s_watch_hub_t;

typedef struct kp_k8s_watch_spec {
    const kp_kind_t *kind;      /* &kp_k8s_event_kind: the Events (control/events.h) */
    const char *ns;             /* NULL or "": every namespace (the caller authorized it) */
    const char *label_selector; /* validated by the caller; copied */
    const char *field_selector;
    const char *resource_version; /* NULL, "" or "0": current state first (ADDED events) */
    int send_initial_events;      /* sendInitialEvents=true: ADDED events, then a bookmark */
    int bookmarks;                /* allowWatchBookmarks=true */
    int table;                    /* objects as meta.k8s.io Tables (kubectl get -w) */
    const char *include_object;
    long timeout_seconds; /* 0: the default (WATCH_TIMEOUT_DEFAULT_S) */
    /* Secrets: decrypt a copy of each object before it is sent; -1 skips the object */
    int (*reveal)(void *arg, json_t *obj);
    void *reveal_arg;
} kp_k8s_watch_spec_t;

/* Starts following store (a thread). NULL on failure. */
kp_k8s_watch_hub_t *kp_k8s_watch_hub_start(kp_store_t *store);
/* Ends every stream (they finish their current event) and resumes the suspended ones: call
 * before MHD_stop_daemon, which may not be called with suspended connections. */
void kp_k8s_watch_hub_shutdown(kp_k8s_watch_hub_t *h);
/* Stops the thread and frees the hub: after MHD_stop_daemon. NULL is a no-op. */
void kp_k8s_watch_hub_free(kp_k8s_watch_hub_t *h);

/* The hubs' figures for /metrics (every hub of the process): wake-ups and diffs. A
 * kp_metrics_gauge_fn (arg unused), to register with kp_metrics_add_source. */
void kp_k8s_watch_metrics_render(kp_buf_t *out, void *arg);

/* Queues the stream for spec on conn (the API's access handler calls it with the request
 * authorized). A too-old resourceVersion gets a 410 Status instead; *code is the HTTP
 * status sent. */
enum MHD_Result kp_k8s_watch_queue(kp_k8s_watch_hub_t *h, struct MHD_Connection *conn,
                                   const kp_k8s_watch_spec_t *spec);

#endif
