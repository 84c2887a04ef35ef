/*
 * stream.c — the Stream reconciler (SPEC 2.2): Kafka Streams applications get every
 * operation on topics and groups prefixed <ns>.<name>_stream_, for the application's service
 * users and the additional users. Deleting a Stream removes those ACLs and the prefixed
 * topics, as NAIS does.
 */
#include "auth/acl.h"
#include "control/control_int.h"
#include "core/buf.h"
#include "core/logging.h"
#include "core/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int stream_acl_equal(const kp_pool_acl_t *a, const kp_pool_acl_t *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           !strcmp(a->resource_name, b->resource_name) && !strcmp(a->principal, b->principal) &&
           !strcmp(a->host, b->host);
}

static void push(kp_pool_acl_t **v, int *n, int *cap, int8_t type, const char *prefix,
                 const char *principal)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = kp_xrealloc(*v, (size_t)*cap * sizeof(**v));
    }
    (*v)[(*n)++] = (kp_pool_acl_t){type,           KP_PAT_PREFIXED,    KP_OP_ALL,
                                   KP_PERM_ALLOW,  kp_xstrdup(prefix), kp_xstrdup(principal),
                                   kp_xstrdup("*")};
}

/* Makes the prefixed ACLs of type on prefix exactly want. */
static int sync_prefix(kp_pool_client_t *pc, int8_t type, const char *prefix, kp_pool_acl_t *want,
                       int nwant, char *err, size_t errlen)
{
    kp_pool_acl_t *have;
    int nhave;
    if (kp_pool_describe_acls(pc, type, prefix, KP_PAT_PREFIXED, &have, &nhave, err, errlen) < 0)
        return -1;
    kp_pool_acl_t *add = kp_xcalloc((size_t)nwant + 1, sizeof(*add));
    kp_pool_acl_t *del = kp_xcalloc((size_t)nhave + 1, sizeof(*del));
    int nadd = 0, ndel = 0;
    for (int i = 0; i < nwant; i++) {
        if (want[i].resource_type != type) continue;
        int found = 0;
        for (int j = 0; j < nhave && !found; j++) found = stream_acl_equal(&want[i], &have[j]);
        if (!found) add[nadd++] = want[i];
    }
    for (int j = 0; j < nhave; j++) {
        int found = 0;
        for (int i = 0; i < nwant && !found; i++) found = stream_acl_equal(&want[i], &have[j]);
        if (!found && !strcmp(have[j].resource_name, prefix)) del[ndel++] = have[j];
    }
    int rc = 0;
    if (nadd && kp_pool_create_acls(pc, add, nadd, err, errlen) < 0) rc = -1;
    if (!rc && ndel && kp_pool_delete_acls(pc, del, ndel, err, errlen) < 0) rc = -1;
    free(add);
    free(del);
    kp_pool_acls_free(have, nhave);
    return rc;
}

static void write_status(kp_control_t *c, json_t *obj, const char *prefix, const char *state,
                         const char *msg)
{
    char now[32];
    kp_status_time(now);
    json_t *s = json_pack("{s:s, s:s, s:s, s:o, s:[]}", "fullyQualifiedTopicPrefix", prefix,
                          "synchronizationState", state, "synchronizationTime", now, "message",
                          kp_json_text(msg), "errors");
    if (strcmp(state, "RolloutComplete") != 0)
        json_array_append_new(json_object_get(s, "errors"), kp_json_text(msg));
    kp_status_write(c, obj, s);
    json_decref(s);
}

void kp_stream_reconcile(kp_control_t *c, json_t *obj, kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *spec = json_object_get(obj, "spec");
    const char *pool_name = json_string_value(json_object_get(spec, "pool"));
    char prefix[512], err[768] = "";
    snprintf(prefix, sizeof(prefix), "%s.%s_stream_", ns, name);
    int deleting = json_object_get(md, "deletionTimestamp") != NULL;
    kp_pool_t *pool = kp_control_pool(c, pool_name, err, sizeof(err));
    if (!pool) {
        if (deleting && strstr(err, "does not exist")) {
            kp_store_remove(c->store, "Stream", ns, name);
            return;
        }
        int prepare = strstr(err, "does not exist") != NULL || !pool_name;
        char msg[900];
        snprintf(msg, sizeof(msg), "spec.pool: %s", pool_name ? err : "required");
        res->failed = 1;
        write_status(c, obj, prefix, prepare ? "FailedPrepare" : "FailedSynchronization", msg);
        res->retry = !prepare;
        return;
    }
    kp_pool_acl_t *want = NULL;
    int nwant = 0, cap = 0;
    if (!deleting) {
        kp_service_user_t *users;
        int nusers;
        if (kp_store_users_list(c->store, pool->name, &users, &nusers) == 0) {
            json_t *extra = json_object_get(spec, "additionalUsers");
            for (int u = 0; u < nusers; u++) {
                int match = !strcmp(users[u].team, ns) && !strcmp(users[u].app, name);
                size_t i;
                json_t *x;
                json_array_foreach(extra, i, x)
                {
                    const char *un = json_string_value(json_object_get(x, "username"));
                    if (un && !strcmp(un, users[u].name)) match = 1;
                }
                if (!match) continue;
                push(&want, &nwant, &cap, KP_RES_TOPIC, prefix, users[u].principal);
                push(&want, &nwant, &cap, KP_RES_GROUP, prefix, users[u].principal);
                /* exactly_once_v2: transactional ids start with the application id */
                push(&want, &nwant, &cap, KP_RES_TRANSACTIONAL_ID, prefix, users[u].principal);
            }
            kp_store_users_free(users, nusers);
        }
    }
    int rc = sync_prefix(pool->client, KP_RES_TOPIC, prefix, want, nwant, err, sizeof(err));
    if (!rc) rc = sync_prefix(pool->client, KP_RES_GROUP, prefix, want, nwant, err, sizeof(err));
    if (!rc)
        rc = sync_prefix(pool->client, KP_RES_TRANSACTIONAL_ID, prefix, want, nwant, err,
                         sizeof(err));
    kp_pool_acls_free(want, nwant);
    if (!rc && deleting) {
        char **names;
        int n;
        rc = kp_pool_list_topics(pool->client, &names, &n, err, sizeof(err));
        for (int i = 0; !rc && i < n; i++)
            if (!strncmp(names[i], prefix, strlen(prefix)))
                rc = kp_pool_delete_topic(pool->client, names[i], err, sizeof(err));
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        if (!rc) {
            kp_info("control", "stream %s/%s deleted with its ACLs and %s* topics", ns, name,
                    prefix);
            kp_store_remove(c->store, "Stream", ns, name);
            return;
        }
    }
    if (rc) {
        res->failed = 1;
        write_status(c, obj, prefix, "FailedSynchronization", err);
        res->retry = 1;
        return;
    }
    char msg[768];
    snprintf(msg, sizeof(msg), "Streams prefix %s granted to %d principal(s) in pool %s", prefix,
             nwant / 2, pool->name);
    write_status(c, obj, prefix, "RolloutComplete", msg);
}
