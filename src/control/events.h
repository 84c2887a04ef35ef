/*
 * events.h — what happened to an object, as Kubernetes Events (core/v1), so that
 * `kubectl describe` shows a resource's reconcile history and `kubectl get events` lists it
 * (docs/kubectl.md). The reconciler records (a status that changed state or message, a
 * credential issued); the API serves them (k8s_events.c).
 *
 * In memory only, as Kubernetes keeps them briefly: the newest KP_EVENTS_MAX events of the
 * last KP_EVENTS_TTL_S seconds of this process. An event repeating the object, type, reason
 * and message of an earlier one is counted on it (count, lastTimestamp), as Kubernetes'
 * event correlator does. Thread-safe; messages never hold secret values (callers' rule).
 */
#ifndef KP_EVENTS_H
#define KP_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#define KP_EVENTS_MAX   1000
#define KP_EVENTS_TTL_S 3600

/* Records an event about obj (a stored object: apiVersion, kind, metadata name, namespace,
 * uid, resourceVersion are read). type: "Normal" or "Warning". Cluster-scoped objects' events
 * go to namespace "default", as in Kubernetes. */
void kp_event_record(const json_t *obj, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies of the events of namespace ns (NULL: every namespace), sorted by namespace then
 * name (a name is "<object>.<16 hex digits of the time>"), into a new array. *rv: the
 * events' resourceVersion (moves with every record; a process starts above any earlier
 * process's). */
json_t *kp_events_list(const char *ns, int64_t *rv);

/* The events' resourceVersion now (cheap: no copy). */
int64_t kp_events_rv(void);

/* Listeners told after every record (the watch hubs of `kubectl get events -w`), on the
 * recording thread: fn must be quick and must not call back here. 0, or -1 past
 * KP_NOTIFY_MAX (core/notify.h); kp_events_unlisten waits for a call in progress. */
int kp_events_listen(void (*fn)(void *arg), void *arg);
void kp_events_unlisten(void (*fn)(void *arg), void *arg);

/* Forgets every event (tests). */
void kp_events_reset(void);

#endif
