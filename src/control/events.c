/* events.c — the in-memory Event recorder (see events.h). */
#include "control/events.h"

#include "control/kinds.h"
#include "core/notify.h"
#include "core/utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *events;   /* array in the order of their last occurrence (oldest first) */
static int64_t last_rv;  /* the events' resourceVersion; 0: not started (base_rv) */
static uint64_t last_ns; /* the newest name suffix: names stay unique */
static kp_notify_t recorded = KP_NOTIFY_INITIALIZER; /* kp_events_listen */

/* Under lock: the resourceVersions of a process start above those of any earlier one (the
 * start time, with room for a million events a second), so a watch from before a restart is
 * 410 (too old) rather than silently missing what this process recorded. */
static void base_rv(void)
{
    if (!last_rv) last_rv = (int64_t)time(NULL) << 20;
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *md_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Drops events older than the TTL and the oldest beyond the bound. Under lock. */
static void expire(time_t now)
{
    while (json_array_size(events)) {
        time_t last = 0;
        kp_time_parse(str(json_array_get(events, 0), "lastTimestamp"), &last);
        if (json_array_size(events) <= KP_EVENTS_MAX && now - last < KP_EVENTS_TTL_S) break;
        json_array_remove(events, 0);
    }
}

/* The event equal in object, type, reason and message, its index, or -1. Under lock. */
static long find_same(const char *uid, const char *kind, const char *ns, const char *name,
                      const char *type, const char *reason, const char *message)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const json_t *io = json_object_get(e, "involvedObject");
        if (!strcmp(str(io, "uid") ?: "", uid) && !strcmp(str(io, "kind") ?: "", kind) &&
            !strcmp(str(io, "namespace") ?: "", ns) && !strcmp(str(io, "name") ?: "", name) &&
            !strcmp(str(e, "type") ?: "", type) && !strcmp(str(e, "reason") ?: "", reason) &&
            !strcmp(str(e, "message") ?: "", message))
            return (long)i;
    }
    return -1;
}

void kp_event_record(const json_t *obj, const char *type, const char *reason, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap); /* may cut a character: kp_json_text copes */
    va_end(ap);
    const char *kind = str(obj, "kind") ?: "", *name = md_str(obj, "name");
    const char *ons = md_str(obj, "namespace"), *uid = md_str(obj, "uid") ?: "";
    if (!name) return;
    const char *ns = ons && *ons ? ons : "default";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now[32];
    iso_time(ts.tv_sec, now);
    json_t *msg = kp_json_text(message);
    pthread_mutex_lock(&lock);
    if (!events) events = json_array();
    expire(ts.tv_sec);
    base_rv();
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)++last_rv);
    long same = find_same(uid, kind, ons ? ons : "", name, type, reason, json_string_value(msg));
    if (same >= 0) { /* counted on the earlier one, which moves to the end */
        json_t *e = json_incref(json_array_get(events, (size_t)same));
        json_array_remove(events, (size_t)same);
        json_object_set_new(e, "count",
                            json_integer(json_integer_value(json_object_get(e, "count")) + 1));
        json_object_set_new(e, "lastTimestamp", json_string(now));
        json_object_set_new(json_object_get(e, "metadata"), "resourceVersion", json_string(rv));
        json_array_append_new(events, e);
        json_decref(msg);
        pthread_mutex_unlock(&lock);
        kp_notify_fire(&recorded);
        return;
    }
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (t <= last_ns) t = last_ns + 1;
    last_ns = t;
    char ename[300], euid[40];
    snprintf(ename, sizeof(ename), "%.250s.%016llx", name, (unsigned long long)t);
    snprintf(euid, sizeof(euid), "%08llx-%04llx-4%03llx-8%03llx-%012llx",
             (unsigned long long)(t >> 32) & 0xffffffffu, (unsigned long long)(t >> 16) & 0xffff,
             (unsigned long long)t & 0xfff, (unsigned long long)(last_rv >> 12) & 0xfff,
             (unsigned long long)last_rv & 0xffffffffffffull);
    json_t *io = json_pack("{s:s, s:s, s:o}", "kind", kind, "apiVersion",
                           str(obj, "apiVersion") ?: "", "name", kp_json_text(name));
    if (ons && *ons) json_object_set_new(io, "namespace", kp_json_text(ons));
    if (*uid) json_object_set_new(io, "uid", kp_json_text(uid));
    const char *orv = md_str(obj, "resourceVersion");
    if (orv) json_object_set_new(io, "resourceVersion", kp_json_text(orv));
    json_t *e = json_pack(
        "{s:s, s:s, s:{s:o, s:o, s:s, s:s, s:s}, s:o, s:s, s:o, s:s, s:i,"
        " s:s, s:s, s:{s:s}, s:s, s:s}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", kp_json_text(ename), "namespace",
        kp_json_text(ns), "uid", euid, "resourceVersion", rv, "creationTimestamp", now,
        "involvedObject", io, "reason", reason, "message", msg, "type", type, "count", 1,
        "firstTimestamp", now, "lastTimestamp", now, "source", "component", "kpool-controller",
        "reportingComponent", "kpool-controller", "reportingInstance", "kpool");
    if (e) json_array_append_new(events, e);
    pthread_mutex_unlock(&lock);
    kp_notify_fire(&recorded);
}

int kp_events_listen(void (*fn)(void *arg), void *arg)
{
    return kp_notify_add(&recorded, fn, arg);
}

void kp_events_unlisten(void (*fn)(void *arg), void *arg)
{
    kp_notify_remove(&recorded, fn, arg);
}

static int by_key(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(md_str(x, "namespace") ?: "", md_str(y, "namespace") ?: "");
    return c ? c : strcmp(md_str(x, "name") ?: "", md_str(y, "name") ?: "");
}

json_t *kp_events_list(const char *ns, int64_t *rv)
{
    pthread_mutex_lock(&lock);
    expire(time(NULL));
    base_rv();
    size_t n = json_array_size(events), k = 0, i;
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL, *e;
    json_array_foreach(events, i, e) if (v && (!ns || !strcmp(md_str(e, "namespace") ?: "", ns)))
        v[k++] = json_deep_copy(e);
    *rv = last_rv;
    pthread_mutex_unlock(&lock);
    if (k) qsort(v, k, sizeof(*v), by_key);
    json_t *out = json_array();
    for (i = 0; i < k; i++) json_array_append_new(out, v[i]);
    free(v);
    return out;
}

int64_t kp_events_rv(void)
{
    pthread_mutex_lock(&lock);
    base_rv();
    int64_t rv = last_rv;
    pthread_mutex_unlock(&lock);
    return rv;
}

void kp_events_reset(void)
{
    pthread_mutex_lock(&lock);
    json_decref(events);
    events = NULL;
    last_rv = 0;
    pthread_mutex_unlock(&lock);
}
