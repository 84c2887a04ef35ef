/*
 * topic.c — the Topic reconciler (SPEC 2.1, 3, 5).
 *
 *   validate spec ─invalid─▶ FailedPrepare (field, allowed values, value given; pool untouched)
 *        │
 *   topic <ns>.<name> in the pool: create, grow partitions, set configs (the whole desired
 *        │   set, so a config changed behind our back is reverted)
 *   ACLs: for every active service user matching an ACL entry, READ/WRITE/DESCRIBE on the
 *        │   topic; missing ones added, others on the topic removed (we own the topic's ACLs)
 *   status: RolloutComplete, or FailedSynchronization (retried with backoff)
 *
 * Deletion (deletionTimestamp): the topic's ACLs go; the topic and its data go too only
 * with the annotation kafka.nais.io/removeDataWhenResourceIsDeleted: "true".
 */
#include "auth/acl.h"
#include "control/control_int.h"
#include "core/buf.h"
#include "core/crc32c.h"
#include "core/logging.h"
#include "core/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOVE_DATA_ANNOTATION "kafka.nais.io/removeDataWhenResourceIsDeleted"

typedef struct topic_spec {
    const char *pool;
    int32_t partitions;
    int32_t replication;
    char cleanup[32];
    /* Kafka config key/value pairs to set (values owned here) */
    char keys[16][48];
    char values[16][32];
    int nconfigs;
} topic_spec_t;

static void add_cfg(topic_spec_t *t, const char *k, long long v)
{
    snprintf(t->keys[t->nconfigs], sizeof(t->keys[0]), "%s", k);
    snprintf(t->values[t->nconfigs], sizeof(t->values[0]), "%lld", v);
    t->nconfigs++;
}

/* ---- validation ---- */

typedef struct verrs {
    json_t *list; /* array of strings */
} verrs_t;

static void verr(verrs_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verr(verrs_t *e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(e->list, kp_json_text(msg)); /* a value cut inside a character */
}

/* Reads an integer field (also accepts an integer string, as YAML users write "3"). */
static int int_field(json_t *cfg, const char *name, long long min, long long max, long long def,
                     long long *out, verrs_t *e)
{
    json_t *v = json_object_get(cfg, name);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v) && kp_parse_i64(json_string_value(v), (int64_t *)&x) == 0) {
    } else {
        verr(e, "spec.config.%s: must be an integer (got %s)", name,
             json_is_string(v) ? json_string_value(v) : "a non-number");
        return -1;
    }
    if (x < min || x > max) {
        verr(e, "spec.config.%s: %lld is outside the allowed range %lld..%lld", name, x, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

static int valid_acl_pattern(const char *s)
{
    if (!s || !*s || strlen(s) > 253) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '*' ||
              *p == '.' || *p == '_'))
            return 0;
    return 1;
}

static void validate_acl(json_t *acl, verrs_t *e)
{
    if (!json_is_array(acl)) {
        verr(e, "spec.acl: required, a list of {team, application, access}");
        return;
    }
    size_t i;
    json_t *a;
    json_array_foreach(acl, i, a)
    {
        const char *team = json_string_value(json_object_get(a, "team"));
        const char *app = json_string_value(json_object_get(a, "application"));
        const char *access = json_string_value(json_object_get(a, "access"));
        if (!valid_acl_pattern(team))
            verr(e, "spec.acl[%zu].team: required; lower-case name, '*' as a wildcard (got %s)", i,
                 team ? team : "nothing");
        if (!valid_acl_pattern(app))
            verr(e,
                 "spec.acl[%zu].application: required; lower-case name, '*' as a wildcard "
                 "(got %s)",
                 i, app ? app : "nothing");
        if (!access ||
            (strcmp(access, "read") && strcmp(access, "write") && strcmp(access, "readwrite")))
            verr(e, "spec.acl[%zu].access: must be one of read, write, readwrite (got %s)", i,
                 access ? access : "nothing");
    }
}

/* Validates the spec against SPEC 2.1 and the pool's limits; fills t. 0 or -1 (errors). */
static int validate(kp_control_t *c, json_t *spec, topic_spec_t *t, kp_pool_t **pool_out,
                    verrs_t *e, char *pool_err, size_t pool_err_len)
{
    memset(t, 0, sizeof(*t));
    *pool_out = NULL;
    t->pool = json_string_value(json_object_get(spec, "pool"));
    if (!t->pool || !*t->pool) {
        verr(e, "spec.pool: required (the name of a pool)");
    } else {
        *pool_out = kp_control_pool(c, t->pool, pool_err, pool_err_len);
        if (!*pool_out && strstr(pool_err, "does not exist")) {
            verr(e, "spec.pool: %s", pool_err);
            pool_err[0] = 0;
        }
    }
    validate_acl(json_object_get(spec, "acl"), e);
    json_t *cfg = json_object_get(spec, "config");
    if (cfg && !json_is_object(cfg)) {
        verr(e, "spec.config: must be a map");
        cfg = NULL;
    }
    kp_pool_t *p = *pool_out;
    long long v;
    const char *cp = json_string_value(json_object_get(cfg, "cleanupPolicy"));
    if (json_object_get(cfg, "cleanupPolicy") && !cp)
        verr(e, "spec.config.cleanupPolicy: must be a string");
    if (!cp) cp = "delete";
    if (strcmp(cp, "delete") && strcmp(cp, "compact") && strcmp(cp, "compact,delete") &&
        strcmp(cp, "delete,compact"))
        verr(e,
             "spec.config.cleanupPolicy: must be one of delete, compact, compact,delete (got %s)",
             cp);
    /* Kafka's own spelling of the combined policy */
    snprintf(t->cleanup, sizeof(t->cleanup), "%s", strchr(cp, ',') ? "compact,delete" : cp);
    snprintf(t->keys[t->nconfigs], sizeof(t->keys[0]), "cleanup.policy");
    snprintf(t->values[t->nconfigs++], sizeof(t->values[0]), "%s", t->cleanup);

    if (int_field(cfg, "partitions", 1, 1000000, 1, &v, e) == 0) t->partitions = (int32_t)v;
    long long rmin = p ? p->repl_min : 1, rmax = p ? p->repl_max : 32767;
    long long rdef = p ? p->repl_default : 1;
    json_t *rv = json_object_get(cfg, "replication");
    if (rv && json_is_integer(rv) && p &&
        (json_integer_value(rv) < rmin || json_integer_value(rv) > rmax)) {
        verr(e, "spec.config.replication: %lld is outside what pool %s allows (%lld..%lld)",
             (long long)json_integer_value(rv), p->name, rmin, rmax);
    } else if (int_field(cfg, "replication", 1, 32767, rdef, &v, e) == 0) {
        t->replication = (int32_t)v;
    }
    long long misr_def = t->replication < 2 ? t->replication : 2;
    if (int_field(cfg, "minimumInSyncReplicas", 1, 32767, misr_def, &v, e) == 0) {
        if (t->replication && v > t->replication)
            verr(e, "spec.config.minimumInSyncReplicas: %lld is larger than replication (%d)", v,
                 t->replication);
        add_cfg(t, "min.insync.replicas", v);
    }
    if (int_field(cfg, "retentionBytes", -1, INT64_MAX, -1, &v, e) == 0)
        add_cfg(t, "retention.bytes", v);
    if (int_field(cfg, "retentionHours", INT32_MIN, 2562047788015LL, 168, &v, e) == 0)
        add_cfg(t, "retention.ms", v < 0 ? -1 : v * 3600000LL);
    if (int_field(cfg, "segmentHours", 1, 8760, 168, &v, e) == 0)
        add_cfg(t, "segment.ms", v * 3600000LL);
    if (int_field(cfg, "maxMessageBytes", 1, 5242880, 1048588, &v, e) == 0)
        add_cfg(t, "max.message.bytes", v);
    if (json_object_get(cfg, "deleteRetentionHours") &&
        int_field(cfg, "deleteRetentionHours", 0, 2562047788015LL, 24, &v, e) == 0)
        add_cfg(t, "delete.retention.ms", v * 3600000LL);
    long long min_lag = 0;
    if (int_field(cfg, "minCompactionLagMs", 0, INT64_MAX, 0, &min_lag, e) == 0)
        add_cfg(t, "min.compaction.lag.ms", min_lag);
    if (json_object_get(cfg, "maxCompactionLagMs") &&
        int_field(cfg, "maxCompactionLagMs", 1, INT64_MAX, 0, &v, e) == 0) {
        if (v < min_lag)
            verr(e,
                 "spec.config.maxCompactionLagMs: %lld is smaller than minCompactionLagMs (%lld)",
                 v, min_lag);
        add_cfg(t, "max.compaction.lag.ms", v);
    }
    /* minCleanableDirtyRatioPercent: 0..100 as an integer or "NN%" */
    json_t *ratio = json_object_get(cfg, "minCleanableDirtyRatioPercent");
    long long pct = 50;
    if (ratio && !json_is_null(ratio)) {
        char *end = NULL;
        if (json_is_integer(ratio)) {
            pct = json_integer_value(ratio);
        } else if (json_is_string(ratio)) {
            pct = strtoll(json_string_value(ratio), &end, 10);
            if (end == json_string_value(ratio) || (*end && strcmp(end, "%") != 0)) pct = -1;
        } else {
            pct = -1;
        }
        if (pct < 0 || pct > 100) {
            verr(e, "spec.config.minCleanableDirtyRatioPercent: must be 0..100 or \"NN%%\"");
            pct = 50;
        }
    }
    snprintf(t->keys[t->nconfigs], sizeof(t->keys[0]), "min.cleanable.dirty.ratio");
    snprintf(t->values[t->nconfigs++], sizeof(t->values[0]), "%.2f", (double)pct / 100.0);
    /* tiered storage settings: validated, not applied (no tiered storage in this pool) */
    int_field(cfg, "localRetentionBytes", -2, INT64_MAX, -2, &v, e);
    int_field(cfg, "localRetentionHours", -2, 2562047788015LL, -2, &v, e);
    return json_array_size(e->list) ? -1 : 0;
}

/* ---- ACLs ---- */

static int acl_equal(const kp_pool_acl_t *a, const kp_pool_acl_t *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           !strcmp(a->resource_name, b->resource_name) && !strcmp(a->principal, b->principal) &&
           !strcmp(a->host, b->host);
}

/* The topic's desired ACLs: for each active service user of the pool matching an entry. */
static int desired_acls(kp_control_t *c, const char *pool, const char *fqn, json_t *acl,
                        kp_pool_acl_t **out, int *n)
{
    const kp_service_user_t *users;
    int nusers;
    *out = NULL;
    *n = 0;
    if (kp_control_users(c, &users, &nusers) < 0) return -1;
    int cap = 0;
    for (int u = 0; u < nusers; u++) {
        if (strcmp(users[u].pool, pool) != 0) continue;
        int read = 0, write = 0;
        size_t i;
        json_t *a;
        json_array_foreach(acl, i, a)
        {
            const char *team = json_string_value(json_object_get(a, "team"));
            const char *app = json_string_value(json_object_get(a, "application"));
            const char *access = json_string_value(json_object_get(a, "access"));
            if (!team || !app || !access) continue;
            if (!kp_glob_match(team, users[u].team) || !kp_glob_match(app, users[u].app)) continue;
            read |= !strcmp(access, "read") || !strcmp(access, "readwrite");
            write |= !strcmp(access, "write") || !strcmp(access, "readwrite");
        }
        int ops[3], nops = 0;
        if (read) ops[nops++] = KP_OP_READ;
        if (write) ops[nops++] = KP_OP_WRITE;
        if (read || write) ops[nops++] = KP_OP_DESCRIBE;
        for (int k = 0; k < nops; k++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = kp_xrealloc(*out, (size_t)cap * sizeof(**out));
            }
            (*out)[(*n)++] =
                (kp_pool_acl_t){KP_RES_TOPIC,   KP_PAT_LITERAL,  (int8_t)ops[k],
                                KP_PERM_ALLOW,  kp_xstrdup(fqn), kp_xstrdup(users[u].principal),
                                kp_xstrdup("*")};
        }
    }
    return 0;
}

/* Makes the pool's ACLs on the topic exactly `want`. *changed counts added+removed. */
static int sync_acls(kp_pool_client_t *pc, const char *fqn, kp_pool_acl_t *want, int nwant,
                     int *added, int *removed, char *err, size_t errlen)
{
    kp_pool_acl_t *have;
    int nhave;
    *added = *removed = 0;
    if (kp_pool_describe_acls(pc, KP_RES_TOPIC, fqn, KP_PAT_LITERAL, &have, &nhave, err, errlen) <
        0)
        return -1;
    kp_pool_acl_t *add = kp_xcalloc((size_t)nwant + 1, sizeof(*add));
    kp_pool_acl_t *del = kp_xcalloc((size_t)nhave + 1, sizeof(*del));
    int nadd = 0, ndel = 0;
    for (int i = 0; i < nwant; i++) {
        int found = 0;
        for (int j = 0; j < nhave && !found; j++) found = acl_equal(&want[i], &have[j]);
        if (!found) add[nadd++] = want[i];
    }
    for (int j = 0; j < nhave; j++) {
        if (strcmp(have[j].resource_name, fqn) != 0) continue; /* describe may return more */
        int found = 0;
        for (int i = 0; i < nwant && !found; i++) found = acl_equal(&want[i], &have[j]);
        if (!found) del[ndel++] = have[j];
    }
    int rc = 0;
    if (nadd && kp_pool_create_acls(pc, add, nadd, err, errlen) < 0) rc = -1;
    if (rc == 0 && ndel && kp_pool_delete_acls(pc, del, ndel, err, errlen) < 0) rc = -1;
    if (rc == 0) {
        *added = nadd;
        *removed = ndel;
    }
    free(add);
    free(del);
    kp_pool_acls_free(have, nhave);
    return rc;
}

/* ---- status ---- */

static json_t *base_status(json_t *obj, const char *fqn, const char *state, const char *message,
                           json_t *errors, const char *hash)
{
    char now[32];
    kp_status_time(now);
    json_t *old = json_object_get(obj, "status");
    json_t *s = json_object();
    json_object_set_new(s, "fullyQualifiedName", json_string(fqn));
    json_object_set_new(s, "synchronizationState", json_string(state));
    json_object_set_new(s, "synchronizationTime", json_string(now));
    if (hash) json_object_set_new(s, "synchronizationHash", json_string(hash));
    json_object_set_new(s, "message", kp_json_text(message)); /* may be cut in a character */
    json_object_set_new(s, "errors", errors ? json_incref(errors) : json_array());
    json_object_set(s, "observedGeneration",
                    json_object_get(json_object_get(obj, "metadata"), "generation"));
    if (strcmp(state, "RolloutComplete") != 0)
        json_object_set_new(s, "latestSyncFailure", json_string(now));
    else if (json_object_get(old, "latestSyncFailure"))
        json_object_set(s, "latestSyncFailure", json_object_get(old, "latestSyncFailure"));
    return s;
}

static void spec_hash(json_t *spec, char out[17])
{
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    uint32_t a = kp_crc32c(0, text, strlen(text)), b = kp_crc32c(a, "kpool", 5);
    snprintf(out, 17, "%08x%08x", a, b);
    free(text);
}

/* A fingerprint of the ACL bindings a topic should have (desired_acls' order is stable: the
 * spec's entries, then users by name). It changes when a service user comes or goes. */
static void acls_hash(const kp_pool_acl_t *a, int n, char out[17])
{
    uint32_t h1 = 0, h2 = 0x6b706f6f;
    for (int i = 0; i < n; i++) {
        char row[1024];
        int len = snprintf(row, sizeof(row), "%d/%d/%d/%d/%s/%s/%s;", a[i].resource_type,
                           a[i].pattern_type, a[i].operation, a[i].permission,
                           a[i].resource_name ? a[i].resource_name : "",
                           a[i].principal ? a[i].principal : "", a[i].host ? a[i].host : "");
        if (len > (int)sizeof(row) - 1) len = (int)sizeof(row) - 1;
        h1 = kp_crc32c(h1, row, (size_t)len);
        h2 = kp_crc32c(h2 ^ h1, row, (size_t)len);
    }
    snprintf(out, 17, "%08x%08x", h1, h2);
}

/* The hash of the spec the pool was last found in sync with, from the status a pass read:
 * a RolloutComplete's, or one a failed pass carried over (see fail_sync); NULL if none. */
static const char *synced_hash(json_t *obj)
{
    json_t *old = json_object_get(obj, "status");
    const char *state = json_string_value(json_object_get(old, "synchronizationState"));
    if (!state || (strcmp(state, "RolloutComplete") && strcmp(state, "FailedSynchronization")))
        return NULL;
    return json_string_value(json_object_get(old, "synchronizationHash"));
}

/* A failed pass (retried with backoff). Its status keeps synchronizationHash as the hash of
 * the spec last synchronized (none if never), and that pass's synchronizationAclHash: the
 * pass that succeeds after it still knows the Topic had been in sync, so what it repairs
 * then is reported as drift. */
static void fail_sync(kp_control_t *c, json_t *obj, const char *fqn, const char *why,
                      kp_reconcile_result_t *res)
{
    json_t *errs = json_pack("[o]", kp_json_text(why));
    char msg[768];
    snprintf(msg, sizeof(msg), "%s; retrying with backoff", why);
    const char *synced = synced_hash(obj);
    json_t *s = base_status(obj, fqn, "FailedSynchronization", msg, errs, synced);
    json_t *acl_hash = json_object_get(json_object_get(obj, "status"), "synchronizationAclHash");
    if (synced && acl_hash) json_object_set(s, "synchronizationAclHash", acl_hash);
    kp_status_write(c, obj, s);
    json_decref(s);
    json_decref(errs);
    res->retry = 1;
    res->failed = 1;
}

/* ---- deletion ---- */

static void reconcile_delete(kp_control_t *c, json_t *obj, const char *fqn,
                             kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *pool_name =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "pool"));
    const char *rm = json_string_value(
        json_object_get(json_object_get(md, "annotations"), REMOVE_DATA_ANNOTATION));
    int remove_data = rm && !strcmp(rm, "true");
    char err[768] = "";
    kp_pool_t *pool = kp_control_pool(c, pool_name, err, sizeof(err));
    if (pool) {
        int added, removed;
        if (sync_acls(pool->client, fqn, NULL, 0, &added, &removed, err, sizeof(err)) < 0 ||
            (remove_data && kp_pool_delete_topic(pool->client, fqn, err, sizeof(err)) < 0)) {
            fail_sync(c, obj, fqn, err, res);
            return;
        }
        kp_info("control", "topic %s/%s deleted: ACLs removed, %s", ns, name,
                remove_data ? "topic and data deleted" : "data kept in the pool");
        /* the pool's status lists topics no resource owns: this one, if its data stays */
        kp_control_enqueue(c, "Pool", "", pool_name);
    } else if (!strstr(err, "does not exist")) {
        fail_sync(c, obj, fqn, err, res);
        return;
    }
    kp_store_remove(c->store, "Topic", ns, name);
}

/* ---- drift checks of unchanged Topics ----
 *
 * A drift check (control.resync.interval.ms) used to read, parse and reconcile every Topic:
 * ~0.9 s of CPU per check at 10,000 Topics, most of an idle `kpool up`'s CPU. A reconcile
 * that finds a Topic in sync and writes nothing now leaves a memo of everything it read:
 * the Topic's resourceVersion, its pool's, a fingerprint of the service users and one of
 * what the pool holds for the topic (existence, partitions, replication, overrides, ACL
 * bindings: kp_pool_topic_fingerprint, from the pool client's cached bulk answers). The
 * next check compares those and reconciles in full only when one moved: drift in the pool
 * is still found by the check that follows it, as before. */

typedef struct topic_memo {
    int64_t rv;      /* the Topic's resourceVersion */
    char *pool;      /* spec.pool */
    int64_t pool_rv; /* the Pool's resourceVersion */
    uint64_t users_fp, pool_fp;
} topic_memo_t;

static size_t memo_key(const char *ns, const char *name, char *key, size_t n)
{
    int len = snprintf(key, n, "%s/%s", ns, name);
    return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

static void memo_free(topic_memo_t *m)
{
    if (!m) return;
    free(m->pool);
    free(m);
}

void kp_topic_memo_forget(kp_control_t *c, const char *ns, const char *name)
{
    char key[512];
    size_t kl = memo_key(ns, name, key, sizeof(key));
    memo_free(kp_hmap_del(&c->topic_memo, key, kl));
}

void kp_topic_memo_clear(kp_control_t *c)
{
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->topic_memo, &it, NULL, NULL, &v)) memo_free(v);
    kp_hmap_free(&c->topic_memo);
    kp_hmap_init(&c->topic_memo);
}

int kp_topic_unchanged(kp_control_t *c, const char *ns, const char *name, int64_t rv)
{
    char key[512], err[768];
    topic_memo_t *m = kp_hmap_get(&c->topic_memo, key, memo_key(ns, name, key, sizeof(key)));
    if (!m || m->rv != rv) return 0;
    const kp_service_user_t *users;
    int nusers;
    if (kp_control_users(c, &users, &nusers) < 0 || c->users_fp != m->users_fp) return 0;
    kp_pool_t *pool = kp_control_pool(c, m->pool, err, sizeof(err));
    if (!pool || pool->rv != m->pool_rv) return 0;
    char fqn[512];
    snprintf(fqn, sizeof(fqn), "%s.%s", ns, name);
    uint64_t fp;
    return kp_pool_topic_fingerprint(pool->client, fqn, &fp, err, sizeof(err)) == 0 &&
           fp == m->pool_fp;
}

/* After a reconcile: remembers a Topic found in sync with nothing changed or written (its
 * resourceVersion is then still the one read), forgets any other. */
static void memo_note(kp_control_t *c, json_t *obj, const char *ns, const char *name,
                      const char *fqn, const kp_pool_t *pool, int in_sync)
{
    char key[512];
    size_t kl = memo_key(ns, name, key, sizeof(key));
    const char *rvs =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    int64_t rv = 0;
    uint64_t fp;
    char err[768];
    const kp_service_user_t *users;
    int nusers;
    const char *pool_name =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "pool"));
    if (!in_sync || !pool || !pool_name || !rvs || kp_parse_i64(rvs, &rv) < 0 || rv <= 0 ||
        kp_control_users(c, &users, &nusers) < 0 ||
        kp_pool_topic_fingerprint(pool->client, fqn, &fp, err, sizeof(err)) < 0) {
        memo_free(kp_hmap_del(&c->topic_memo, key, kl));
        return;
    }
    topic_memo_t *m = kp_hmap_get(&c->topic_memo, key, kl);
    if (!m) {
        m = kp_xcalloc(1, sizeof(*m));
        kp_hmap_put(&c->topic_memo, key, kl, m);
    }
    if (!m->pool || strcmp(m->pool, pool_name) != 0) {
        free(m->pool);
        m->pool = kp_xstrdup(pool_name);
    }
    m->rv = rv;
    m->pool_rv = pool->rv;
    m->users_fp = c->users_fp;
    m->pool_fp = fp;
}

/* ---- reconcile ---- */

void kp_topic_reconcile(kp_control_t *c, json_t *obj, kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    char fqn[512];
    snprintf(fqn, sizeof(fqn), "%s.%s", ns, name);
    /* forgotten unless this reconcile ends in sync having changed and written nothing */
    kp_topic_memo_forget(c, ns, name);
    if (json_object_get(md, "deletionTimestamp")) {
        reconcile_delete(c, obj, fqn, res);
        return;
    }
    json_t *spec = json_object_get(obj, "spec");
    char hash[17];
    spec_hash(spec ? spec : json_null(), hash);
    topic_spec_t t;
    kp_pool_t *pool;
    verrs_t e = {json_array()};
    char perr[768] = "";
    int valid = validate(c, spec, &t, &pool, &e, perr, sizeof(perr)) == 0;
    if (!valid) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "invalid spec, nothing was changed in the pool: %s",
                 json_string_value(json_array_get(e.list, 0)));
        res->failed = 1;
        json_t *s = base_status(obj, fqn, "FailedPrepare", msg, e.list, hash);
        kp_status_write(c, obj, s);
        json_decref(s);
        json_decref(e.list);
        return; /* the user must change the spec: no retry */
    }
    json_decref(e.list);
    if (!pool) {
        fail_sync(c, obj, fqn, perr, res);
        return;
    }
    char err[768] = "";
    kp_pool_topic_t have;
    if (kp_pool_describe_topic(pool->client, fqn, &have, err, sizeof(err)) < 0) {
        fail_sync(c, obj, fqn, err, res);
        return;
    }
    const char *keys[16], *values[16];
    for (int i = 0; i < t.nconfigs; i++) {
        keys[i] = t.keys[i];
        values[i] = t.values[i];
    }
    /* was this topic in sync before (with this spec, failed passes since or not)? then
     * anything we must fix now is drift (for ACLs: only while the bindings it should have
     * are the ones it had then; see below) */
    json_t *old = json_object_get(obj, "status");
    const char *old_state = json_string_value(json_object_get(old, "synchronizationState"));
    const char *old_hash = synced_hash(obj);
    int was_synced = old_hash && !strcmp(old_hash, hash);
    int was_complete = was_synced && !strcmp(old_state, "RolloutComplete");
    kp_buf_t drift;
    kp_buf_init(&drift);
    char part_err[512] = "";
    int changed = 0; /* anything done to the pool */
    if (!have.exists) {
        changed = 1;
        if (kp_pool_create_topic(pool->client, fqn, t.partitions, (int16_t)t.replication, keys,
                                 values, t.nconfigs, err, sizeof(err)) < 0)
            goto sync_failed;
        if (was_synced)
            kp_buf_appendf(&drift, "the topic was missing in the pool and was recreated");
    } else {
        if (have.partitions > t.partitions) {
            /* partitions cannot be removed; configs and ACLs are still made right (a revoked
             * user must lose access whatever the partition count) */
            snprintf(part_err, sizeof(part_err),
                     "spec.config.partitions: cannot decrease from %d to %d: the pool has %d "
                     "partitions and partitions cannot be removed (if they were added directly "
                     "in the pool, set it to %d or more)",
                     have.partitions, t.partitions, have.partitions, have.partitions);
        }
        changed |= have.partitions < t.partitions;
        if (have.partitions < t.partitions &&
            kp_pool_add_partitions(pool->client, fqn, t.partitions, err, sizeof(err)) < 0)
            goto sync_failed;
        int same = have.nconfigs == t.nconfigs;
        for (int i = 0; i < t.nconfigs && same; i++) {
            int found = 0;
            for (int j = 0; j < have.nconfigs && !found; j++)
                found = !strcmp(have.config_keys[j], t.keys[i]) &&
                        !strcmp(have.config_values[j], t.values[i]);
            same = found;
        }
        if (!same) {
            changed = 1;
            if (kp_pool_set_configs(pool->client, fqn, keys, values, t.nconfigs, err, sizeof(err)) <
                0)
                goto sync_failed;
            if (was_synced)
                kp_buf_appendf(&drift, "%sconfigs changed in the pool were reverted",
                               drift.len ? "; " : "");
        }
    }
    kp_pool_acl_t *want;
    int nwant, added, removed;
    if (desired_acls(c, t.pool, fqn, json_object_get(spec, "acl"), &want, &nwant) < 0) {
        snprintf(err, sizeof(err), "cannot read service users from the store");
        goto sync_failed;
    }
    char acl_hash[17];
    acls_hash(want, nwant, acl_hash);
    int arc = sync_acls(pool->client, fqn, want, nwant, &added, &removed, err, sizeof(err));
    kp_pool_acls_free(want, nwant);
    if (arc < 0) goto sync_failed;
    /* bindings granted to a service user created since the last pass (the topic applied
     * together with its applications), or taken from a revoked one, are the control plane's
     * own changes, not drift: only a pool that differs from the same desired set is */
    const char *old_acl_hash = json_string_value(json_object_get(old, "synchronizationAclHash"));
    int same_acls = old_acl_hash && !strcmp(old_acl_hash, acl_hash);
    if (was_synced && same_acls && (added || removed))
        kp_buf_appendf(&drift, "%sACLs repaired (%d added, %d removed)", drift.len ? "; " : "",
                       added, removed);
    /* a replica count that differs from the spec (changed behind our back, or a spec changed
     * after creation) cannot be made right here: kpool does not reassign replicas. Reported
     * in the status, every pass, until someone acts (scope item 7 of issue 14). */
    char repl_note[300] = "";
    if (have.exists && have.replication > 0 && have.replication != t.replication) {
        snprintf(repl_note, sizeof(repl_note),
                 "replication drift: the pool's topic has replication %d, "
                 "spec.config.replication is %d (not changed: replicas are not reassigned; "
                 "recreate the topic to change it)",
                 have.replication, t.replication);
        kp_warn("control", "topic %s: %s", fqn, repl_note);
    }
    char msg[1024];
    char now[32];
    kp_status_time(now);
    if (part_err[0]) {
        snprintf(msg, sizeof(msg), "%s (configs and ACLs are synchronized)", part_err);
        json_t *errs = json_pack("[o]", kp_json_text(part_err));
        res->failed = 1;
        json_t *s = base_status(obj, fqn, "FailedPrepare", msg, errs, hash);
        json_object_set_new(s, "synchronizationAclHash", json_string(acl_hash));
        kp_status_write(c, obj, s);
        json_decref(s);
        json_decref(errs);
        kp_pool_topic_free(&have);
        kp_buf_free(&drift);
        return;
    }
    if (drift.len) {
        snprintf(msg, sizeof(msg), "Topic synchronized to pool %s; drift repaired at %s: %.*s",
                 t.pool, now, (int)drift.len, (char *)drift.data);
        kp_info("control", "topic %s: drift repaired: %.*s", fqn, (int)drift.len,
                (char *)drift.data);
    } else if (was_complete && same_acls && json_string_value(json_object_get(old, "message")) &&
               strncmp(json_string_value(json_object_get(old, "message")),
                       "replication drift:", 18) != 0) {
        snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(old, "message")));
    } else if (have.exists && !old_state) {
        /* kept when an earlier Topic was deleted without removing data, or made directly
         * in the pool: this resource owns it (and its records) from now on */
        snprintf(msg, sizeof(msg),
                 "Topic synchronized to pool %s: adopted the existing topic and its data "
                 "(%d partitions, replication %d, %d ACL entries)",
                 t.pool, t.partitions > have.partitions ? t.partitions : have.partitions,
                 t.replication, nwant);
        kp_control_enqueue(c, "Pool", "", t.pool);
    } else {
        snprintf(msg, sizeof(msg),
                 "Topic synchronized to pool %s (%d partitions, replication %d, "
                 "%d ACL entries)",
                 t.pool, t.partitions, t.replication, nwant);
    }
    if (repl_note[0]) {
        /* the message starts with the drift, so that `kpool get topic` shows it */
        char with[sizeof(msg)];
        int n = snprintf(with, sizeof(with), "%s; ", repl_note);
        if (n > 0 && (size_t)n < sizeof(with)) {
            memcpy(with + n, msg, sizeof(with) - (size_t)n - 1);
            with[sizeof(with) - 1] = 0;
        }
        memcpy(msg, with, sizeof(msg));
    }
    json_t *s = base_status(obj, fqn, "RolloutComplete", msg, NULL, hash);
    json_object_set_new(s, "synchronizationAclHash", json_string(acl_hash));
    /* a topic created by this pass has the replication it was created with: the same field
     * as the next pass will find, so that pass does not rewrite the status */
    if (have.exists && have.replication > 0)
        json_object_set_new(s, "replicationInPool", json_integer(have.replication));
    else if (!have.exists)
        json_object_set_new(s, "replicationInPool", json_integer(t.replication));
    int wrote = kp_status_write(c, obj, s);
    json_decref(s);
    memo_note(c, obj, ns, name, fqn, pool, !wrote && !changed && !added && !removed && !drift.len);
    kp_pool_topic_free(&have);
    kp_buf_free(&drift);
    return;
sync_failed:
    kp_pool_topic_free(&have);
    kp_buf_free(&drift);
    fail_sync(c, obj, fqn, err, res);
}
