/*
 * pool.c — the Pool reconciler: checks the spec and that the pool answers over the Kafka
 * protocol with the configured credentials; the status says whether it is reachable.
 */
#include "control/control_int.h"
#include "core/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNMANAGED_LISTED_MAX 100

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds to owned the fully qualified names (Topics) or name prefixes (Streams, value true)
 * of the objects of this pool. */
static void add_owned(json_t *items, const char *pool, const char *suffix, json_t *owned)
{
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        const char *p = json_string_value(json_object_get(json_object_get(o, "spec"), "pool"));
        json_t *md = json_object_get(o, "metadata");
        if (!p || strcmp(p, pool) != 0) continue;
        char fqn[512];
        snprintf(fqn, sizeof(fqn), "%s.%s%s", json_string_value(json_object_get(md, "namespace")),
                 json_string_value(json_object_get(md, "name")), suffix);
        json_object_set_new(owned, fqn, json_boolean(suffix[0] != 0));
    }
}

static int is_owned(json_t *owned, const char *topic)
{
    if (json_object_get(owned, topic)) return 1;
    const char *k;
    json_t *v;
    json_object_foreach(owned, k, v)
    {
        if (json_is_true(v) && !strncmp(topic, k, strlen(k))) return 1;
    }
    return 0;
}

/* status.topics and status.unmanagedTopics: the pool's topics that no Topic or Stream of
 * this pool owns — kept after their Topic was deleted without
 * kafka.nais.io/removeDataWhenResourceIsDeleted, or made directly in the pool. Names
 * starting with '_' are the system's own (__consumer_offsets, _schemas) and not listed. */
static void unmanaged_topics(kp_control_t *c, const char *pool, char **names, int n, json_t *st)
{
    json_t *topics = NULL, *streams = NULL;
    int64_t rv;
    if (kp_store_list(c->store, "Topic", NULL, &topics, &rv) < 0 ||
        kp_store_list(c->store, "Stream", NULL, &streams, &rv) < 0) {
        json_decref(topics);
        json_decref(streams);
        return;
    }
    json_t *owned = json_object();
    add_owned(topics, pool, "", owned);
    add_owned(streams, pool, "_stream_", owned);
    json_decref(topics);
    json_decref(streams);
    qsort(names, (size_t)n, sizeof(*names), cmp_names);
    json_t *list = json_array();
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (names[i][0] == '_' || is_owned(owned, names[i])) continue;
        if (count++ < UNMANAGED_LISTED_MAX) json_array_append_new(list, json_string(names[i]));
    }
    json_decref(owned);
    json_object_set_new(st, "topics", json_integer(n));
    json_object_set_new(st, "unmanagedTopicCount", json_integer(count));
    if (count)
        json_object_set_new(st, "unmanagedTopics", list);
    else
        json_decref(list);
}

void kp_pool_reconcile(kp_control_t *c, json_t *obj, kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    if (json_object_get(md, "deletionTimestamp")) {
        kp_store_remove(c->store, "Pool", "", name);
        return;
    }
    char err[768] = "", now[32];
    kp_status_time(now);
    json_t *spec = json_object_get(obj, "spec");
    json_t *repl = json_object_get(spec, "replication");
    json_int_t rmin = json_integer_value(json_object_get(repl, "min"));
    json_int_t rmax = json_integer_value(json_object_get(repl, "max"));
    json_int_t rdef = json_integer_value(json_object_get(repl, "default"));
    if (repl && (rmin < 1 || rmax < rmin || rdef < rmin || rdef > rmax)) {
        snprintf(err, sizeof(err),
                 "spec.replication: need 1 <= min <= default <= max (got %lld, "
                 "%lld, %lld)",
                 (long long)rmin, (long long)rdef, (long long)rmax);
        json_t *s = json_pack("{s:s, s:o, s:s}", "state", "Invalid", "message", kp_json_text(err),
                              "lastUpdateTime", now);
        kp_status_write(c, obj, s);
        json_decref(s);
        return;
    }
    kp_pool_t *pool = kp_control_pool(c, name, err, sizeof(err));
    char **names = NULL;
    int n = 0;
    int ok = pool && kp_pool_list_topics(pool->client, &names, &n, err, sizeof(err)) == 0;
    char msg[900];
    if (ok)
        snprintf(msg, sizeof(msg), "pool reachable at %s",
                 json_string_value(json_object_get(spec, "bootstrapServers")));
    else
        snprintf(msg, sizeof(msg), "pool unreachable: %s", err);
    json_t *s = json_pack("{s:s, s:o, s:s}", "state", ok ? "Ready" : "Unreachable", "message",
                          kp_json_text(msg), "lastUpdateTime", now);
    if (ok) unmanaged_topics(c, name, names, n, s);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    kp_status_write(c, obj, s);
    json_decref(s);
    res->retry = !ok;
}
