/*
 * backup_snapshot.c — what a backup of one pool holds, gathered into one sealed document:
 *
 *   topics        every topic of the pool (internal "__" ones aside): partitions,
 *                 replication factor, and its non-default configs (DescribeConfigs, source
 *                 DYNAMIC_TOPIC_CONFIG)
 *   acls          every ACL binding of the pool (DescribeAcls with ANY filters)
 *   serviceUsers  active service users of the pool: name, team, application, principal,
 *                 secret name, generation — never keys or passwords
 *   resources     Pool, Topic, Stream, AivenApplication and Application objects of the pool,
 *                 without status and server bookkeeping (uid, generation and
 *                 creationTimestamp are kept: names derived from them must come out the same)
 *   schemas       every record of `_schemas` (schema versions, registry config, tombstones)
 *                 up to the high watermark, in offset order
 *
 * Consistency: the store's change counter (resourceVersion) is read before and after; if
 * anything was written meanwhile the snapshot is taken again (up to SNAPSHOT_ATTEMPTS), so
 * resources and service users come from one quiet moment of the store. The schema records
 * are read up to high watermarks captured at one moment. Secrets are never read.
 */
#include "control/backup_int.h"

#include "auth/acl.h"
#include "control/backup_format.h"
#include "control/backup_kafka.h"
#include "core/buf.h"
#include "core/logging.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Times a snapshot is retaken while the store keeps changing under it; the last one is kept
 * (with a warning) so a busy control plane still gets backups. */
#define SNAPSHOT_ATTEMPTS 4

const char *const kp_backup_kinds[] = {"Pool", "Topic", "Stream", "AivenApplication",
                                       "Application"};
const size_t kp_backup_kinds_count = sizeof(kp_backup_kinds) / sizeof(*kp_backup_kinds);

const char *kp_backup_object_pool(const json_t *obj)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    json_t *spec = json_object_get(obj, "spec");
    if (!kind) return NULL;
    if (!strcmp(kind, "Pool"))
        return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!strcmp(kind, "Topic") || !strcmp(kind, "Stream"))
        return json_string_value(json_object_get(spec, "pool"));
    return json_string_value(json_object_get(json_object_get(spec, "kafka"), "pool"));
}

int kp_backup_pool_conn(kp_backup_t *b, const char *pool, kp_pool_conn_t *conn, json_t **pool_obj,
                        char *err, size_t errlen)
{
    *pool_obj = NULL;
    if (kp_store_get(b->store, "Pool", "", pool, pool_obj) != KP_STORE_OK) {
        snprintf(err, errlen, "pool \"%s\" does not exist", pool);
        return KP_BACKUP_NO_POOL;
    }
    json_t *spec = json_object_get(*pool_obj, "spec");
    json_t *tls = json_object_get(spec, "tls");
    memset(conn, 0, sizeof(*conn));
    conn->bootstrap = json_string_value(json_object_get(spec, "bootstrapServers"));
    conn->ca_path = json_string_value(json_object_get(tls, "caLocation"));
    conn->cert_path = json_string_value(json_object_get(tls, "certificateLocation"));
    conn->key_path = json_string_value(json_object_get(tls, "keyLocation"));
    conn->timeout_ms = b->cfg.pool_timeout_ms;
    const char *bad = NULL;
    if (!conn->bootstrap || !*conn->bootstrap)
        snprintf(err, errlen, "pool \"%s\": spec.bootstrapServers is required", pool);
    /* librdkafka's message for an unreadable file does not name it: say which one */
    else if (conn->ca_path && access(conn->ca_path, R_OK) < 0)
        bad = "caLocation";
    else if (conn->cert_path && access(conn->cert_path, R_OK) < 0)
        bad = "certificateLocation";
    else if (conn->key_path && access(conn->key_path, R_OK) < 0)
        bad = "keyLocation";
    else
        return 0;
    if (bad)
        snprintf(err, errlen, "pool \"%s\": spec.tls.%s %s: %s", pool, bad,
                 json_string_value(json_object_get(tls, bad)), strerror(errno));
    json_decref(*pool_obj);
    *pool_obj = NULL;
    return KP_BACKUP_FAILED;
}

/* ---- the store's part ---- */

/* A resource as a backup keeps it: no status, no server bookkeeping but uid, generation
 * and creationTimestamp. */
static json_t *stripped(const json_t *obj)
{
    json_t *v = json_deep_copy(obj);
    json_object_del(v, "status");
    json_t *md = json_object_get(v, "metadata");
    json_object_del(md, "resourceVersion");
    json_object_del(md, "deletionTimestamp");
    json_object_del(md, "managedFields");
    return v;
}

static int add_resources(kp_backup_t *b, const char *pool, json_t *doc, char *err, size_t errlen)
{
    json_t *out = json_array();
    json_object_set_new(doc, "resources", out);
    for (size_t k = 0; k < kp_backup_kinds_count; k++) {
        json_t *items;
        if (kp_store_list(b->store, kp_backup_kinds[k], NULL, &items, NULL) != KP_STORE_OK) {
            json_decref(items);
            snprintf(err, errlen, "cannot read %s objects from the store", kp_backup_kinds[k]);
            return -1;
        }
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o)
        {
            const char *p = kp_backup_object_pool(o);
            if (!p || strcmp(p, pool) != 0) continue;
            if (json_object_get(json_object_get(o, "metadata"), "deletionTimestamp")) continue;
            json_array_append_new(out, stripped(o));
        }
        json_decref(items);
    }
    return 0;
}

static int add_users(kp_backup_t *b, const char *pool, json_t *doc, char *err, size_t errlen)
{
    kp_service_user_t *u;
    int n;
    if (kp_store_users_list(b->store, pool, &u, &n) < 0) {
        snprintf(err, errlen, "cannot read service users from the store");
        return -1;
    }
    json_t *out = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "name",
                                             u[i].name, "team", u[i].team, "application", u[i].app,
                                             "principal", u[i].principal, "secret", u[i].secret,
                                             "generation", (json_int_t)u[i].generation, "createdMs",
                                             (json_int_t)u[i].created_ms));
    kp_store_users_free(u, n);
    json_object_set_new(doc, "serviceUsers", out);
    return 0;
}

/* ---- the pool's part ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_topics(kp_pool_client_t *pc, json_t *doc, char *err, size_t errlen)
{
    char **names;
    int n;
    if (kp_pool_list_topics(pc, &names, &n, err, errlen) < 0) return -1;
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    json_t *out = json_array();
    json_object_set_new(doc, "topics", out);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        kp_pool_topic_t t;
        if (kp_pool_describe_topic(pc, names[i], &t, err, errlen) < 0) {
            rc = -1;
            break;
        }
        if (t.exists) { /* a topic deleted since the listing is not in the backup */
            json_t *configs = json_object();
            for (int k = 0; k < t.nconfigs; k++)
                json_object_set_new(configs, t.config_keys[k], json_string(t.config_values[k]));
            json_array_append_new(out,
                                  json_pack("{s:s, s:i, s:i, s:o}", "name", names[i], "partitions",
                                            (int)t.partitions, "replicationFactor",
                                            (int)t.replication, "configs", configs));
        }
        kp_pool_topic_free(&t);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int cmp_acl(const void *pa, const void *pb)
{
    const kp_pool_acl_t *a = pa, *b = pb;
    int d;
    if ((d = a->resource_type - b->resource_type)) return d;
    if ((d = strcmp(a->resource_name, b->resource_name))) return d;
    if ((d = a->pattern_type - b->pattern_type)) return d;
    if ((d = strcmp(a->principal, b->principal))) return d;
    if ((d = strcmp(a->host, b->host))) return d;
    if ((d = a->operation - b->operation)) return d;
    return a->permission - b->permission;
}

static int add_acls(kp_pool_client_t *pc, json_t *doc, char *err, size_t errlen)
{
    kp_pool_acl_t *a;
    int n;
    if (kp_pool_describe_acls(pc, KP_RES_ANY, NULL, KP_PAT_ANY, &a, &n, err, errlen) < 0) return -1;
    qsort(a, (size_t)n, sizeof(*a), cmp_acl); /* the same ACLs give the same file */
    json_t *out = json_array();
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *rt = kp_backup_acl_resource_name(a[i].resource_type);
        const char *pt = kp_backup_acl_pattern_name(a[i].pattern_type);
        const char *op = kp_backup_acl_operation_name(a[i].operation);
        const char *pm = kp_backup_acl_permission_name(a[i].permission);
        if (!rt || !pt || !op || !pm) {
            snprintf(err, errlen, "the pool reported an ACL with unknown enum values (%d %d %d %d)",
                     a[i].resource_type, a[i].pattern_type, a[i].operation, a[i].permission);
            rc = -1;
            break;
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "resourceType",
                                             rt, "resourceName", a[i].resource_name, "patternType",
                                             pt, "principal", a[i].principal, "host", a[i].host,
                                             "operation", op, "permission", pm));
    }
    kp_pool_acls_free(a, n);
    json_object_set_new(doc, "acls", out);
    return rc;
}

static int add_schemas(const kp_pool_conn_t *conn, json_t *doc, char *err, size_t errlen)
{
    json_t *records;
    int partitions;
    if (kp_backup_topic_read(conn, KP_BACKUP_SCHEMAS_TOPIC, &records, &partitions, err, errlen) < 0)
        return -1;
    json_object_set_new(doc, "schemas",
                        json_pack("{s:s, s:i, s:o}", "topic", KP_BACKUP_SCHEMAS_TOPIC, "partitions",
                                  partitions, "records", records));
    return 0;
}

/* ---- the document ---- */

static int64_t store_version(kp_backup_t *b)
{
    char *v = NULL;
    int64_t rv = kp_store_meta_get(b->store, "rv", &v) == 0 && v ? atoll(v) : 0;
    free(v);
    return rv;
}

static json_t *gather(kp_backup_t *b, kp_pool_client_t *pc, const kp_pool_conn_t *conn,
                      const char *pool, int64_t now_ms, char *err, size_t errlen)
{
    char created[32];
    kp_backup_time_format(now_ms, created);
    /* checksum and summary first (placeholders, filled in later), for people reading it */
    json_t *doc = json_pack("{s:s, s:i, s:s, s:s, s:s, s:n}", "format", KP_BACKUP_FORMAT,
                            "formatVersion", KP_BACKUP_FORMAT_VERSION, "pool", pool, "createdAt",
                            created, "checksum", "", "summary");
    if (add_resources(b, pool, doc, err, errlen) < 0 || add_users(b, pool, doc, err, errlen) < 0 ||
        add_topics(pc, doc, err, errlen) < 0 || add_acls(pc, doc, err, errlen) < 0 ||
        add_schemas(conn, doc, err, errlen) < 0) {
        json_decref(doc);
        return NULL;
    }
    json_t *summary = json_pack(
        "{s:I, s:I, s:I, s:I, s:I}", "topics",
        (json_int_t)json_array_size(json_object_get(doc, "topics")), "acls",
        (json_int_t)json_array_size(json_object_get(doc, "acls")), "serviceUsers",
        (json_int_t)json_array_size(json_object_get(doc, "serviceUsers")), "resources",
        (json_int_t)json_array_size(json_object_get(doc, "resources")), "schemaRecords",
        (json_int_t)json_array_size(json_object_get(json_object_get(doc, "schemas"), "records")));
    json_object_set_new(doc, "summary", summary);
    return doc;
}

json_t *kp_backup_snapshot(kp_backup_t *b, const char *pool, int64_t now_ms, char *err,
                           size_t errlen)
{
    kp_pool_conn_t conn;
    json_t *pool_obj;
    if (kp_backup_pool_conn(b, pool, &conn, &pool_obj, err, errlen) != 0) return NULL;
    kp_pool_client_t *pc = kp_pool_client_new(&conn, err, errlen);
    json_t *doc = NULL;
    for (int attempt = 1; pc && attempt <= SNAPSHOT_ATTEMPTS; attempt++) {
        int64_t before = store_version(b);
        json_decref(doc);
        doc = gather(b, pc, &conn, pool, now_ms, err, errlen);
        if (!doc || store_version(b) == before) break;
        if (attempt == SNAPSHOT_ATTEMPTS)
            kp_warn("backup",
                    "pool %s: the store kept changing during %d snapshots; keeping the "
                    "last one",
                    pool, attempt);
        else
            usleep(200 * 1000 * (useconds_t)attempt);
    }
    kp_pool_client_free(pc);
    json_decref(pool_obj);
    if (doc && kp_backup_seal(doc) < 0) {
        snprintf(err, errlen, "cannot compute the checksum");
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}
