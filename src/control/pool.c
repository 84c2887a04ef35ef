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

/* The topics the Topics and Streams of a pool own: fully qualified names of Topics in a hash
 * map, and the Streams' name prefixes (few) in a list. */
typedef struct owned {
    kp_hmap_t topics; /* fqn -> (void *)1 */
    char **prefixes;
    size_t nprefixes;
} owned_t;

/* Adds the objects of kind (their spec.pool read by the store, bodies not parsed) that belong
 * to pool. 0 or -1. */
static int add_owned(kp_control_t *c, const char *kind, const char *pool, owned_t *o)
{
    kp_store_field_t *f;
    size_t n;
    if (kp_store_fields(c->store, kind, "$.spec.pool", &f, &n) < 0) return -1;
    int stream = !strcmp(kind, "Stream");
    for (size_t i = 0; i < n; i++) {
        if (!f[i].value || strcmp(f[i].value, pool) != 0) continue;
        char fqn[512];
        snprintf(fqn, sizeof(fqn), "%s.%s%s", f[i].key.ns, f[i].key.name, stream ? "_stream_" : "");
        if (stream) {
            o->prefixes = kp_xrealloc(o->prefixes, (o->nprefixes + 1) * sizeof(*o->prefixes));
            o->prefixes[o->nprefixes++] = kp_xstrdup(fqn);
        } else {
            kp_hmap_put(&o->topics, fqn, strlen(fqn), (void *)1);
        }
    }
    kp_store_fields_free(f, n);
    return 0;
}

static int is_owned(const owned_t *o, const char *topic)
{
    if (kp_hmap_get(&o->topics, topic, strlen(topic))) return 1;
    for (size_t i = 0; i < o->nprefixes; i++)
        if (!strncmp(topic, o->prefixes[i], strlen(o->prefixes[i]))) return 1;
    return 0;
}

static void owned_free(owned_t *o)
{
    kp_hmap_free(&o->topics);
    for (size_t i = 0; i < o->nprefixes; i++) free(o->prefixes[i]);
    free(o->prefixes);
}

/* status.topics and status.unmanagedTopics: the pool's topics that no Topic or Stream of
 * this pool owns — kept after their Topic was deleted without
 * kafka.nais.io/removeDataWhenResourceIsDeleted, or made directly in the pool. Names
 * starting with '_' are the system's own (__consumer_offsets, _schemas) and not listed. One
 * pass over the pool's names, each looked up in a hash map of the owned ones. */
static void unmanaged_topics(kp_control_t *c, const char *pool, char **names, int n, json_t *st)
{
    owned_t owned = {0};
    kp_hmap_init(&owned.topics);
    if (add_owned(c, "Topic", pool, &owned) < 0 || add_owned(c, "Stream", pool, &owned) < 0) {
        owned_free(&owned);
        return;
    }
    qsort(names, (size_t)n, sizeof(*names), cmp_names);
    json_t *list = json_array();
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (names[i][0] == '_' || is_owned(&owned, names[i])) continue;
        if (count++ < UNMANAGED_LISTED_MAX) json_array_append_new(list, json_string(names[i]));
    }
    owned_free(&owned);
    json_object_set_new(st, "topics", json_integer(n));
    json_object_set_new(st, "unmanagedTopicCount", json_integer(count));
    if (count)
        json_object_set_new(st, "unmanagedTopics", list);
    else
        json_decref(list);
}

/* status.brokers (SPEC §11: the Pool lists its brokers and their state), status.controller
 * (the controller's id; which broker is it: controller true), and the pool's partition
 * health. A broker is Up, CatchingUp (live, but some of its replicas are out of
 * the ISR), LogDirFailed (live, but a log directory of its is offline: offlineLogDirs names
 * it, and it serves none of its partitions) or Down (partitions name it as a replica,
 * Metadata does not list it). */
static void brokers_status(const kp_pool_cluster_t *cl, json_t *st)
{
    json_t *arr = json_array();
    for (int i = 0; i < cl->nbrokers; i++) {
        const kp_pool_broker_t *b = &cl->brokers[i];
        const char *state = !b->host               ? "Down"
                            : b->noffline_dirs > 0 ? "LogDirFailed"
                            : b->out_of_sync       ? "CatchingUp"
                                                   : "Up";
        json_t *o =
            json_pack("{s:i, s:s, s:i, s:i, s:i}", "id", (int)b->id, "state", state, "leaders",
                      b->leaders, "replicas", b->replicas, "outOfSyncReplicas", b->out_of_sync);
        if (b->host) {
            char addr[300];
            snprintf(addr, sizeof(addr), "%s:%d", b->host, b->port);
            json_object_set_new(o, "address", kp_json_text(addr));
        }
        if (b->rack) json_object_set_new(o, "rack", kp_json_text(b->rack));
        json_object_set_new(o, "controller", json_boolean(b->id == cl->controller));
        if (b->noffline_dirs > 0) {
            json_t *dirs = json_array();
            for (int k = 0; k < b->noffline_dirs; k++)
                json_array_append_new(dirs, kp_json_text(b->offline_dirs[k]));
            json_object_set_new(o, "offlineLogDirs", dirs);
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(st, "brokers", arr);
    if (cl->controller >= 0) json_object_set_new(st, "controller", json_integer(cl->controller));
    json_object_set_new(st, "partitions", json_integer(cl->partitions));
    json_object_set_new(st, "underReplicatedPartitions", json_integer(cl->under_replicated));
    json_object_set_new(st, "offlinePartitions", json_integer(cl->offline));
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
    kp_pool_cluster_t cl = {0};
    ok = ok && kp_pool_describe_cluster(pool->client, &cl, err, sizeof(err)) == 0;
    char msg[1400];
    if (ok) {
        int off = snprintf(msg, sizeof(msg),
                           "pool reachable at %s; %d of %d brokers up, %d partitions "
                           "under-replicated, %d offline",
                           json_string_value(json_object_get(spec, "bootstrapServers")), cl.nlive,
                           cl.nbrokers, cl.under_replicated, cl.offline);
        for (int i = 0; i < cl.nbrokers && off > 0 && (size_t)off < sizeof(msg); i++)
            for (int k = 0; k < cl.brokers[i].noffline_dirs && (size_t)off < sizeof(msg); k++)
                off += snprintf(msg + off, sizeof(msg) - (size_t)off,
                                "; broker %d: log directory %.300s failed", (int)cl.brokers[i].id,
                                cl.brokers[i].offline_dirs[k]);
    } else
        snprintf(msg, sizeof(msg), "pool unreachable: %s", err);
    json_t *s = json_pack("{s:s, s:o, s:s}", "state", ok ? "Ready" : "Unreachable", "message",
                          kp_json_text(msg), "lastUpdateTime", now);
    if (ok) {
        unmanaged_topics(c, name, names, n, s);
        brokers_status(&cl, s);
    }
    kp_pool_cluster_free(&cl);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    kp_status_write(c, obj, s);
    json_decref(s);
    res->retry = !ok;
    res->failed = !ok;
}
