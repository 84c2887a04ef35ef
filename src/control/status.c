/*
 * status.c — the status helpers every reconcile uses (control_int.h): the timestamp format,
 * and writing a status only when more than its timestamps changed (so that resourceVersion
 * and the watches stay quiet on an idle control plane), with the Event `kubectl describe`
 * shows when its state or message changed.
 *
 * @locality the reconciler thread (kp_status_write reads c->stop, set by kp_control_stop).
 */
#include "control/control_int.h"
#include "control/events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void kp_status_time(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *without_times(json_t *status)
{
    json_t *s = json_deep_copy(status);
    /* a Pool's lastUpdateTime too: rewriting it alone each resync moved the store's
     * resourceVersion on an idle pool, and every watch hub then read every object again */
    json_object_del(s, "lastUpdateTime");
    json_object_del(s, "synchronizationTime");
    json_object_del(s, "latestSyncFailure");
    json_t *conds = json_object_get(s, "conditions");
    size_t i;
    json_t *cnd;
    json_array_foreach(conds, i, cnd) json_object_del(cnd, "lastUpdateTime");
    return s;
}

/* The state of a status: synchronizationState, else a Pool's state. */
static const char *status_state(const json_t *s)
{
    const char *st = json_string_value(json_object_get(s, "synchronizationState"));
    return st ? st : json_string_value(json_object_get(s, "state"));
}

/* Its message: message, else the first condition's "reason: message". */
static void status_message(const json_t *s, char *out, size_t n)
{
    const char *m = json_string_value(json_object_get(s, "message"));
    const json_t *cond = json_array_get(json_object_get(s, "conditions"), 0);
    const char *cm = json_string_value(json_object_get(cond, "message"));
    const char *cr = json_string_value(json_object_get(cond, "reason"));
    if (m)
        snprintf(out, n, "%s", m);
    else if (cm)
        snprintf(out, n, "%s%s%s", cr ? cr : "", cr ? ": " : "", cm);
    else
        out[0] = 0;
}

/* An Event (events.h) for a status written over old (may be NULL) when its state or message
 * changed, or a new generation was taken up: what `kubectl describe` shows. */
static void status_event(const json_t *obj, const json_t *old, const json_t *status)
{
    const char *state = status_state(status), *was = status_state(old);
    char msg[768], old_msg[768];
    status_message(status, msg, sizeof(msg));
    status_message(old, old_msg, sizeof(old_msg));
    json_t *gen = json_object_get(status, "observedGeneration");
    int new_gen = gen && !json_equal(gen, json_object_get(old, "observedGeneration"));
    if (!state || (was && !strcmp(state, was) && !strcmp(msg, old_msg) && !new_gen)) return;
    int bad = strstr(state, "Fail") || strstr(state, "Error") || !strcmp(state, "Invalid") ||
              !strcmp(state, "Unreachable");
    if (!msg[0] && json_is_integer(gen))
        snprintf(msg, sizeof(msg), "%s (generation %lld)", state,
                 (long long)json_integer_value(gen));
    kp_event_record(obj, bad ? "Warning" : "Normal", state, "%s", msg[0] ? msg : state);
}

int kp_status_write(kp_control_t *c, json_t *obj, json_t *status)
{
    /* a reconcile cut short by a stop says nothing: the next start does it again */
    if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) return 1;
    json_t *old = json_object_get(obj, "status");
    json_t *a = old ? without_times(old) : json_object(), *b = without_times(status);
    int same = old && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (same) return 0;
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (kp_store_put_status(c->store, json_string_value(json_object_get(obj, "kind")), ns ? ns : "",
                            json_string_value(json_object_get(md, "name")), status,
                            NULL) == KP_STORE_UPDATED)
        status_event(obj, old, status);
    return 1;
}
