/*
 * backup_restore.c — putting a backup back into a pool (kp_backup_restore, see backup.h).
 *
 *   verify the checksum and the whole document ─bad─▶ KP_BACKUP_INVALID, nothing changed
 *   the target Pool resource (created from the backup when missing and of the same name)
 *   preflight: user topics, schema records, resources of the pool ─any, no force─▶ NOT_EMPTY
 *   1 topics     created with their partitions, replication factor and configs (with force,
 *                existing ones get the backup's configs and, if fewer, its partition count)
 *   2 ACLs       created as they were (CreateAcls is idempotent)
 *   3 schemas    `_schemas` created compacted when missing, then every record produced in
 *                the backup's order, so the registry replays the same ids and versions
 *   4 users      the service users that are some AivenApplication's current one
 *   5 resources  Topic, Stream, AivenApplication, Application, with uid and generation kept,
 *                so service user and secret names come out as before; the reconcilers then
 *                issue new credentials (Secrets are not in backups)
 *
 * Order matters: the pool side is rebuilt before the resources, so a reconciler woken by a
 * restored resource finds its topic already there instead of racing us to create it.
 * A failure part way stops the restore; the report says what was done, and running it again
 * with force finishes the job (every step tolerates what already exists).
 */
#include "control/backup_int.h"

#include "auth/acl.h"
#include "control/backup_format.h"
#include "control/backup_kafka.h"
#include "control/kinds.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ACL bindings per CreateAcls request. */
#define ACL_BATCH 500
/* Topic names quoted in the "pool is not empty" message. */
#define BUSY_NAMES_MAX 5

typedef struct restore {
    kp_backup_t *b;
    const json_t *doc;
    const char *src_pool; /* the backup's */
    const char *pool;     /* the target */
    int force;
    kp_pool_conn_t conn;
    json_t *pool_obj;
    kp_pool_client_t *pc;
    json_t *existing; /* topic names in the pool before the restore -> true */
    json_t *report, *warnings;
} restore_t;

static void warn(restore_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(restore_t *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kp_warn("backup", "restore into pool %s: %s", r->pool, msg);
    json_array_append_new(r->warnings, kp_json_text(msg));
}

static void count(restore_t *r, const char *section, const char *what, json_int_t n)
{
    json_t *s = json_object_get(r->report, section);
    if (!s) {
        s = json_object();
        json_object_set_new(r->report, section, s);
    }
    json_object_set_new(s, what, json_integer(json_integer_value(json_object_get(s, what)) + n));
}

/* ---- validation (before anything changes) ---- */

static int is_int(json_t *v, json_int_t min, json_int_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
}

static int check_topics(json_t *topics, char *err, size_t errlen)
{
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *cfg = json_object_get(t, "configs");
        if (!name || !*name || strlen(name) > KP_TOPIC_NAME_LEN_MAX) {
            snprintf(err, errlen, "topics[%zu].name: must be a topic name", i);
            return -1;
        }
        if (!is_int(json_object_get(t, "partitions"), 1, KP_TOPIC_PARTITIONS_MAX) ||
            !is_int(json_object_get(t, "replicationFactor"), -1, 32767)) {
            snprintf(err, errlen,
                     "topics[%zu] (%s): partitions must be 1..%d and "
                     "replicationFactor -1..32767",
                     i, name, KP_TOPIC_PARTITIONS_MAX);
            return -1;
        }
        const char *k;
        json_t *v;
        if (cfg && !json_is_object(cfg)) {
            snprintf(err, errlen, "topics[%zu].configs: must be a map", i);
            return -1;
        }
        json_object_foreach(cfg, k, v) if (!json_is_string(v))
        {
            snprintf(err, errlen, "topics[%zu].configs.%s: must be a string", i, k);
            return -1;
        }
    }
    return 0;
}

static int acl_from_json(json_t *a, kp_pool_acl_t *out)
{
    int rt = kp_backup_acl_resource_value(json_string_value(json_object_get(a, "resourceType")));
    int pt = kp_backup_acl_pattern_value(json_string_value(json_object_get(a, "patternType")));
    int op = kp_backup_acl_operation_value(json_string_value(json_object_get(a, "operation")));
    int pm = kp_backup_acl_permission_value(json_string_value(json_object_get(a, "permission")));
    const char *name = json_string_value(json_object_get(a, "resourceName"));
    const char *principal = json_string_value(json_object_get(a, "principal"));
    const char *host = json_string_value(json_object_get(a, "host"));
    /* concrete values only: ANY/MATCH/UNKNOWN are filters, not bindings */
    if (rt < KP_RES_TOPIC || (pt != KP_PAT_LITERAL && pt != KP_PAT_PREFIXED) || op < KP_OP_ALL ||
        pm < 2 || !name || !principal || !host)
        return -1;
    *out = (kp_pool_acl_t){(int8_t)rt,   (int8_t)pt,        (int8_t)op,  (int8_t)pm,
                           (char *)name, (char *)principal, (char *)host};
    return 0;
}

static int check_acls(json_t *acls, char *err, size_t errlen)
{
    size_t i;
    json_t *a;
    json_array_foreach(acls, i, a)
    {
        kp_pool_acl_t x;
        if (acl_from_json(a, &x) < 0) {
            snprintf(err, errlen,
                     "acls[%zu]: not a complete ACL binding (resourceType, "
                     "resourceName, patternType LITERAL|PREFIXED, principal, host, "
                     "operation, permission ALLOW|DENY)",
                     i);
            return -1;
        }
    }
    return 0;
}

static int check_schemas(json_t *schemas, char *err, size_t errlen)
{
    json_t *records = json_object_get(schemas, "records");
    if (!schemas) return 0;
    json_int_t parts = json_integer_value(json_object_get(schemas, "partitions"));
    if (!json_is_array(records) ||
        (json_array_size(records) &&
         !is_int(json_object_get(schemas, "partitions"), 1, KP_TOPIC_PARTITIONS_MAX))) {
        snprintf(err, errlen, "schemas: needs records[] and partitions 1..%d",
                 KP_TOPIC_PARTITIONS_MAX);
        return -1;
    }
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        uint8_t *k = NULL, *v = NULL;
        size_t kl, vl;
        int ok = is_int(json_object_get(rec, "partition"), 0, parts - 1) &&
                 kp_backup_bytes_get(rec, "key", &k, &kl) == 0 &&
                 kp_backup_bytes_get(rec, "value", &v, &vl) == 0;
        free(k);
        free(v);
        if (!ok) {
            snprintf(err, errlen,
                     "schemas.records[%zu]: needs a partition below %lld, a key and "
                     "a value (text, base64 or null)",
                     i, (long long)parts);
            return -1;
        }
    }
    return 0;
}

static int known_kind(const char *kind)
{
    for (size_t k = 0; kind && k < kp_backup_kinds_count; k++)
        if (!strcmp(kind, kp_backup_kinds[k])) return 1;
    return 0;
}

static int check_resources(json_t *resources, json_t *users, char *err, size_t errlen)
{
    size_t i;
    json_t *o;
    json_array_foreach(resources, i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        json_t *md = json_object_get(o, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        if (!known_kind(kind) || !name || !json_is_string(json_object_get(o, "apiVersion")) ||
            (strcmp(kind, "Pool") != 0 && !ns)) {
            snprintf(err, errlen,
                     "resources[%zu]: needs apiVersion, a kind of Pool, Topic, "
                     "Stream, AivenApplication or Application, metadata.name and "
                     "(but for Pool) metadata.namespace",
                     i);
            return -1;
        }
        char why[256];
        if (kp_name_check(name, 0, why, sizeof(why)) < 0 ||
            (strcmp(kind, "Pool") != 0 && kp_name_check(ns, 1, why, sizeof(why)) < 0)) {
            snprintf(err, errlen, "resources[%zu] (%s %s): invalid name or namespace: %s", i, kind,
                     name, why);
            return -1;
        }
    }
    json_array_foreach(users, i, o)
    {
        static const char *const f[] = {"name", "team", "application", "principal"};
        for (size_t k = 0; k < 4; k++)
            if (!json_string_value(json_object_get(o, f[k]))) {
                snprintf(err, errlen, "serviceUsers[%zu].%s: must be a string", i, f[k]);
                return -1;
            }
        if (!is_int(json_object_get(o, "generation"), 1, INT64_MAX)) {
            snprintf(err, errlen, "serviceUsers[%zu].generation: must be a positive integer", i);
            return -1;
        }
    }
    return 0;
}

int kp_backup_validate(const json_t *doc, char *err, size_t errlen)
{
    static const char *const arrays[] = {"topics", "acls", "serviceUsers", "resources"};
    for (size_t i = 0; i < 4; i++)
        if (!json_is_array(json_object_get(doc, arrays[i]))) {
            snprintf(err, errlen, "%s: missing or not a list", arrays[i]);
            return -1;
        }
    json_t *schemas = json_object_get(doc, "schemas");
    if (schemas && !json_is_object(schemas)) {
        snprintf(err, errlen, "schemas: must be an object");
        return -1;
    }
    return check_topics(json_object_get(doc, "topics"), err, errlen) < 0 ||
                   check_acls(json_object_get(doc, "acls"), err, errlen) < 0 ||
                   check_schemas(schemas, err, errlen) < 0 ||
                   check_resources(json_object_get(doc, "resources"),
                                   json_object_get(doc, "serviceUsers"), err, errlen) < 0
               ? -1
               : 0;
}

/* ---- the target pool ---- */

/* Makes sure the Pool resource exists (from the backup when it does not and the names
 * match) and connects to it. */
static int target_pool(restore_t *r, char *err, size_t errlen)
{
    json_t *have = NULL;
    if (kp_store_get(r->b->store, "Pool", "", r->pool, &have) != KP_STORE_OK) {
        json_t *mine = NULL;
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(r->doc, "resources"), i, o)
        {
            const char *kind = json_string_value(json_object_get(o, "kind"));
            if (!strcmp(kind, "Pool") && !strcmp(kp_backup_object_pool(o), r->pool)) mine = o;
        }
        if (!mine) {
            snprintf(err, errlen,
                     "pool \"%s\" does not exist and the backup has no Pool resource of that "
                     "name: create the pool first (kpool apply -f pool.yaml)",
                     r->pool);
            return KP_BACKUP_NO_POOL;
        }
        int rc = kp_store_restore(r->b->store, mine, 0);
        if (rc != KP_STORE_CREATED) {
            snprintf(err, errlen, "cannot create pool \"%s\" in the store", r->pool);
            return KP_BACKUP_FAILED;
        }
        warn(r,
             "pool %s did not exist: its Pool resource was restored from the backup (check "
             "that spec.bootstrapServers and spec.tls point at the right cluster)",
             r->pool);
    }
    json_decref(have);
    int rc = kp_backup_pool_conn(r->b, r->pool, &r->conn, &r->pool_obj, err, errlen);
    if (rc != 0) return rc;
    r->pc = kp_pool_client_new(&r->conn, err, errlen);
    return r->pc ? 0 : KP_BACKUP_FAILED;
}

/* Resources of the target pool already in the store. */
static int store_resources(restore_t *r, json_int_t *n)
{
    *n = 0;
    for (size_t k = 1; k < kp_backup_kinds_count; k++) { /* [0] is Pool */
        json_t *items;
        if (kp_store_list(r->b->store, kp_backup_kinds[k], NULL, &items, NULL) != KP_STORE_OK) {
            json_decref(items);
            return -1;
        }
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o)
        {
            const char *p = kp_backup_object_pool(o);
            if (p && !strcmp(p, r->pool)) (*n)++;
        }
        json_decref(items);
    }
    return 0;
}

static int preflight(restore_t *r, char *err, size_t errlen)
{
    char **names;
    int n;
    if (kp_pool_list_topics(r->pc, &names, &n, err, errlen) < 0) return KP_BACKUP_FAILED;
    r->existing = json_object();
    kp_buf_t busy;
    kp_buf_init(&busy);
    int nbusy = 0;
    for (int i = 0; i < n; i++) {
        json_object_set_new(r->existing, names[i], json_true());
        if (names[i][0] != '_' && nbusy++ < BUSY_NAMES_MAX)
            kp_buf_appendf(&busy, "%s%s", busy.len ? ", " : "", names[i]);
        free(names[i]);
    }
    free(names);
    int64_t records = 0;
    json_int_t resources = 0;
    int rc = 0;
    if (kp_backup_topic_count(&r->conn, KP_BACKUP_SCHEMAS_TOPIC, &records, err, errlen) < 0)
        rc = KP_BACKUP_FAILED;
    else if (store_resources(r, &resources) < 0) {
        snprintf(err, errlen, "cannot read the store");
        rc = KP_BACKUP_FAILED;
    } else if (!r->force && (nbusy || records || resources)) {
        snprintf(err, errlen,
                 "pool %s is not empty: %d topic(s)%s%.*s%s, %lld record(s) in %s and %lld "
                 "resource(s) in the control plane. A restore rebuilds an empty pool; use "
                 "--force to restore into this one anyway (existing topics keep their data and "
                 "get the backup's configs; existing resources are replaced)",
                 r->pool, nbusy, nbusy ? " (" : "", (int)busy.len,
                 busy.len ? (char *)busy.data : "",
                 nbusy > BUSY_NAMES_MAX ? ", ...)"
                 : nbusy                ? ")"
                                        : "",
                 (long long)records, KP_BACKUP_SCHEMAS_TOPIC, (long long)resources);
        rc = KP_BACKUP_NOT_EMPTY;
    }
    kp_buf_free(&busy);
    return rc;
}

/* ---- 1 topics ---- */

/*
 * After a failed creation: is it an internal topic ('_' first: `_schemas`,
 * `__consumer_offsets`) that appeared meanwhile? A fresh instance creates those for itself
 * at any moment — the schema registry of a `kpool up` makes `_schemas` as it starts, so a
 * restore run while it starts can find the topic missing and then lose the race to create
 * it. Losing that race is no error: the topic is there, as the restore wanted (its data
 * is what preflight() and the schema step check). 1 when it now exists.
 */
static int internal_appeared(restore_t *r, const char *name)
{
    if (name[0] != '_') return 0;
    kp_pool_topic_t have;
    char e[512];
    int exists = kp_pool_describe_topic(r->pc, name, &have, e, sizeof(e)) == 0 && have.exists;
    kp_pool_topic_free(&have);
    if (exists)
        kp_info("backup", "restore into pool %s: %s appeared meanwhile; kept", r->pool, name);
    return exists;
}

static int topic_configs(json_t *t, const char ***keys, const char ***values)
{
    json_t *cfg = json_object_get(t, "configs");
    size_t n = json_object_size(cfg), i = 0;
    *keys = kp_xcalloc(n + 1, sizeof(char *));
    *values = kp_xcalloc(n + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        (*keys)[i] = k;
        (*values)[i++] = json_string_value(v);
    }
    return (int)i;
}

/* An existing topic under force: the backup's configs, and its partition count if larger. */
static int topic_update(restore_t *r, const char *name, int32_t parts, const char **keys,
                        const char **values, int n, char *err, size_t errlen)
{
    kp_pool_topic_t have;
    if (kp_pool_describe_topic(r->pc, name, &have, err, errlen) < 0) return -1;
    int rc = 0;
    if (have.exists && have.partitions < parts)
        rc = kp_pool_add_partitions(r->pc, name, parts, err, errlen);
    else if (have.exists && have.partitions > parts)
        warn(r, "topic %s has %d partitions, the backup %d: partitions are never decreased", name,
             have.partitions, parts);
    kp_pool_topic_free(&have);
    if (rc == 0) rc = kp_pool_set_configs(r->pc, name, keys, values, n, err, errlen);
    return rc;
}

static int restore_topics(restore_t *r, char *err, size_t errlen)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(r->doc, "topics"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        int32_t parts = (int32_t)json_integer_value(json_object_get(t, "partitions"));
        int16_t rf = (int16_t)json_integer_value(json_object_get(t, "replicationFactor"));
        const char **keys, **values;
        int n = topic_configs(t, &keys, &values), rc = 0;
        if (json_object_get(r->existing, name)) {
            if (r->force) {
                rc = topic_update(r, name, parts, keys, values, n, err, errlen);
                if (rc == 0) count(r, "topics", "updated", 1);
            } else {
                count(r, "topics", "kept", 1); /* an internal topic made meanwhile */
            }
        } else {
            rc = kp_pool_create_topic(r->pc, name, parts, rf, keys, values, n, err, errlen);
            if (rc < 0 && rf > 0) {
                char first[512];
                snprintf(first, sizeof(first), "%s", err);
                rc = kp_pool_create_topic(r->pc, name, parts, -1, keys, values, n, err, errlen);
                if (rc == 0)
                    warn(r,
                         "topic %s: replication factor %d was refused (%s); created with the "
                         "pool's default",
                         name, rf, first);
            }
            if (rc == 0) {
                count(r, "topics", "created", 1);
                json_object_set_new(r->existing, name, json_true());
            } else if (internal_appeared(r, name)) {
                rc = 0;
                count(r, "topics", "kept", 1);
                json_object_set_new(r->existing, name, json_true());
            }
        }
        free(keys);
        free(values);
        if (rc < 0) return -1;
    }
    return 0;
}

/* ---- 2 ACLs ---- */

static int restore_acls(restore_t *r, char *err, size_t errlen)
{
    json_t *acls = json_object_get(r->doc, "acls");
    size_t n = json_array_size(acls);
    kp_pool_acl_t *batch = kp_xcalloc(ACL_BATCH, sizeof(*batch));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += ACL_BATCH) {
        int m = 0;
        for (size_t k = i; k < n && k < i + ACL_BATCH; k++)
            acl_from_json(json_array_get(acls, k), &batch[m++]); /* validated before */
        rc = kp_pool_create_acls(r->pc, batch, m, err, errlen);
        if (rc == 0) count(r, "acls", "created", m);
    }
    free(batch);
    return rc;
}

/* ---- 3 schemas ---- */

static int restore_schemas(restore_t *r, char *err, size_t errlen)
{
    json_t *schemas = json_object_get(r->doc, "schemas");
    json_t *records = json_object_get(schemas, "records");
    if (json_array_size(records) == 0) return 0;
    const char *topic = KP_BACKUP_SCHEMAS_TOPIC;
    int32_t parts = (int32_t)json_integer_value(json_object_get(schemas, "partitions"));
    kp_pool_topic_t have;
    if (kp_pool_describe_topic(r->pc, topic, &have, err, errlen) < 0) return -1;
    int rc = 0;
    if (!have.exists) {
        const char *k = "cleanup.policy", *v = "compact";
        rc = kp_pool_create_topic(r->pc, topic, parts, -1, &k, &v, 1, err, errlen);
        if (rc == 0)
            count(r, "topics", "created", 1);
        else if (internal_appeared(r, topic)) { /* then check it as if it had been there */
            kp_pool_topic_free(&have);
            if (kp_pool_describe_topic(r->pc, topic, &have, err, errlen) < 0) return -1;
            rc = 0;
        }
    }
    if (rc == 0 && have.exists && have.partitions < parts) {
        snprintf(err, errlen, "%s has %d partitions, the backup's records need %d", topic,
                 have.partitions, parts);
        rc = -1;
    }
    kp_pool_topic_free(&have);
    if (rc == 0) rc = kp_backup_topic_write(&r->conn, topic, records, err, errlen);
    if (rc == 0) count(r, "schemas", "records", (json_int_t)json_array_size(records));
    return rc;
}

/* ---- 4 service users, 5 resources ---- */

/* Is u the current service user of an AivenApplication in the backup? Older generations
 * are left out: their secrets (and keys) are gone, so nothing could ever use them. */
static int user_current(restore_t *r, json_t *u)
{
    const char *team = json_string_value(json_object_get(u, "team"));
    const char *app = json_string_value(json_object_get(u, "application"));
    const char *secret = json_string_value(json_object_get(u, "secret"));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(r->doc, "resources"), i, o)
    {
        json_t *md = json_object_get(o, "metadata"), *spec = json_object_get(o, "spec");
        if (strcmp(json_string_value(json_object_get(o, "kind")), "AivenApplication") != 0 ||
            strcmp(json_string_value(json_object_get(md, "namespace")), team) != 0 ||
            strcmp(json_string_value(json_object_get(md, "name")), app) != 0)
            continue;
        const char *cur = kp_aivenapp_secret_name(spec);
        return cur && secret && !strcmp(cur, secret);
    }
    return 0;
}

static int restore_users(restore_t *r, char *err, size_t errlen)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(r->doc, "serviceUsers"), i, u)
    {
        if (!user_current(r, u)) {
            count(r, "serviceUsers", "skipped", 1);
            continue;
        }
        kp_service_user_t su = {(char *)json_string_value(json_object_get(u, "name")),
                                (char *)json_string_value(json_object_get(u, "team")),
                                (char *)json_string_value(json_object_get(u, "application")),
                                (char *)r->pool,
                                (char *)json_string_value(json_object_get(u, "principal")),
                                (char *)json_string_value(json_object_get(u, "secret")),
                                json_integer_value(json_object_get(u, "generation")),
                                json_integer_value(json_object_get(u, "createdMs")),
                                0};
        int rc = kp_store_user_put(r->b->store, &su);
        if (rc < 0) {
            snprintf(err, errlen, "cannot record service user %s", su.name);
            return -1;
        }
        count(r, "serviceUsers", rc == 1 ? "restored" : "kept", 1);
    }
    return 0;
}

/* A copy of a resource pointed at the target pool. */
static json_t *retarget(restore_t *r, json_t *o)
{
    json_t *c = json_deep_copy(o);
    if (!strcmp(r->pool, r->src_pool)) return c;
    const char *kind = json_string_value(json_object_get(c, "kind"));
    json_t *spec = json_object_get(c, "spec");
    if (!strcmp(kind, "Topic") || !strcmp(kind, "Stream"))
        json_object_set_new(spec, "pool", json_string(r->pool));
    else if (json_object_get(spec, "kafka"))
        json_object_set_new(json_object_get(spec, "kafka"), "pool", json_string(r->pool));
    return c;
}

static int restore_resources(restore_t *r, char *err, size_t errlen)
{
    for (size_t k = 1; k < kp_backup_kinds_count; k++) { /* the Pool was handled first */
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(r->doc, "resources"), i, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "kind")), kp_backup_kinds[k]) != 0)
                continue;
            json_t *c = retarget(r, o);
            int rc = kp_store_restore(r->b->store, c, r->force);
            json_decref(c);
            if (rc == KP_STORE_CREATED)
                count(r, "resources", "created", 1);
            else if (rc == KP_STORE_UPDATED)
                count(r, "resources", "replaced", 1);
            else if (rc == KP_STORE_EXISTS || rc == KP_STORE_CONFLICT)
                count(r, "resources", "kept", 1);
            else {
                json_t *md = json_object_get(o, "metadata");
                snprintf(err, errlen, "cannot write %s %s/%s to the store", kp_backup_kinds[k],
                         json_string_value(json_object_get(md, "namespace")),
                         json_string_value(json_object_get(md, "name")));
                return -1;
            }
        }
    }
    return 0;
}

/* ---- the whole ---- */

static int run(restore_t *r, char *err, size_t errlen)
{
    int rc = target_pool(r, err, errlen);
    if (rc == 0) rc = preflight(r, err, errlen);
    if (rc != 0) return rc;
    static const struct {
        const char *what;
        int (*fn)(restore_t *, char *, size_t);
    } steps[] = {{"topics", restore_topics},
                 {"ACLs", restore_acls},
                 {"schemas", restore_schemas},
                 {"service users", restore_users},
                 {"resources", restore_resources}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
        char e[1024] = "";
        if (steps[i].fn(r, e, sizeof(e)) < 0) {
            snprintf(err, errlen,
                     "restoring %s into pool %s failed: %s (what was restored "
                     "before stays; run the restore again with --force to finish)",
                     steps[i].what, r->pool, e);
            return KP_BACKUP_FAILED;
        }
    }
    return 0;
}

int kp_backup_restore(kp_backup_t *b, const json_t *doc, const kp_backup_restore_opts_t *o,
                      json_t **report, char *err, size_t errlen)
{
    *report = NULL;
    char why[1024];
    if (kp_backup_verify(doc, why, sizeof(why)) < 0 ||
        kp_backup_validate(doc, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "invalid backup: %s; nothing was restored", why);
        return KP_BACKUP_INVALID;
    }
    restore_t r;
    memset(&r, 0, sizeof(r));
    r.b = b;
    r.doc = doc;
    r.src_pool = json_string_value(json_object_get(doc, "pool"));
    r.pool = o && o->pool && *o->pool ? o->pool : r.src_pool;
    r.force = o && o->force;
    r.warnings = json_array();
    r.report = json_pack("{s:s, s:{s:s, s:O, s:O}}", "pool", r.pool, "backup", "pool", r.src_pool,
                         "createdAt", json_object_get(doc, "createdAt"), "checksum",
                         json_object_get(doc, "checksum"));
    pthread_mutex_lock(&b->run_lock);
    kp_info("backup", "restoring the backup of pool %s (%s) into pool %s%s", r.src_pool,
            json_string_value(json_object_get(doc, "createdAt")), r.pool,
            r.force ? " (forced)" : "");
    int rc = run(&r, err, errlen);
    pthread_mutex_unlock(&b->run_lock);
    if (rc == 0)
        kp_info("backup", "restore into pool %s done", r.pool);
    else
        kp_warn("backup", "restore into pool %s: %s", r.pool, err);
    json_object_set_new(r.report, "warnings", r.warnings);
    *report = r.report;
    kp_pool_client_free(r.pc);
    json_decref(r.pool_obj);
    json_decref(r.existing);
    return rc;
}
