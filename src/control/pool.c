/*
 * pool.c — the Pool reconciler: checks the spec and that the pool answers over the Kafka
 * protocol with the configured credentials; the status says whether it is reachable.
 */
#include "control/control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        json_t *s =
            json_pack("{s:s, s:s, s:s}", "state", "Invalid", "message", err, "lastUpdateTime", now);
        kp_status_write(c, obj, s);
        json_decref(s);
        return;
    }
    kp_pool_t *pool = kp_control_pool(c, name, err, sizeof(err));
    char **names = NULL;
    int n = 0;
    int ok = pool && kp_pool_list_topics(pool->client, &names, &n, err, sizeof(err)) == 0;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    char msg[900];
    if (ok)
        snprintf(msg, sizeof(msg), "pool reachable at %s",
                 json_string_value(json_object_get(spec, "bootstrapServers")));
    else
        snprintf(msg, sizeof(msg), "pool unreachable: %s", err);
    json_t *s = json_pack("{s:s, s:s, s:s}", "state", ok ? "Ready" : "Unreachable", "message", msg,
                          "lastUpdateTime", now);
    kp_status_write(c, obj, s);
    json_decref(s);
    res->retry = !ok;
}
