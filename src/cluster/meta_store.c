/*
 * meta_store.c — the metadata store's dispatch (every call goes through s->ops) and the
 * record codecs every implementation shares: topics, partition states, brokers and ACL
 * bindings as small JSON objects (docs/replication.md shows each).
 *
 * Decoders treat a record as hostile input (another broker's bug, a hand edit with etcdctl):
 * wrong types, out-of-range numbers, oversized arrays and inconsistent counts are
 * KP_META_ECORRUPT with the field named, never a crash (tests/fuzz/fuzz_etcd.c feeds them).
 */
#include "cluster/meta_store.h"

#include "core/limits.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kp_meta_strerror(int rc)
{
    switch (rc) {
    case KP_META_OK:
        return "ok";
    case KP_META_EUNAVAILABLE:
        return "metadata store unavailable";
    case KP_META_ECONFLICT:
        return "conflict";
    case KP_META_ENOTFOUND:
        return "not found";
    case KP_META_EEXISTS:
        return "already exists";
    case KP_META_EINVAL:
        return "invalid argument";
    case KP_META_ECORRUPT:
        return "corrupt record";
    case KP_META_EFENCED:
        return "fenced";
    case KP_META_ECLUSTER:
        return "another cluster";
    case KP_META_ETIMEDOUT:
        return "timed out";
    }
    return "unknown error";
}

/* ---- dispatch ---- */

void kp_meta_close(kp_meta_store_t *s)
{
    if (s) s->ops->close(s);
}

int kp_meta_cluster_claim(kp_meta_store_t *s, const char *local_id, char *out, size_t outlen,
                          char *err, size_t errlen)
{
    return s->ops->cluster_claim(s, local_id, out, outlen, err, errlen);
}

int kp_meta_broker_register(kp_meta_store_t *s, const kp_meta_broker_t *b, int ttl_s, char *err,
                            size_t errlen)
{
    return s->ops->broker_register(s, b, ttl_s, err, errlen);
}

int kp_meta_broker_keepalive(kp_meta_store_t *s, char *err, size_t errlen)
{
    return s->ops->broker_keepalive(s, err, errlen);
}

int kp_meta_broker_update(kp_meta_store_t *s, const kp_meta_broker_t *b, char *err, size_t errlen)
{
    return s->ops->broker_update(s, b, err, errlen);
}

int kp_meta_broker_unregister(kp_meta_store_t *s, char *err, size_t errlen)
{
    return s->ops->broker_unregister(s, err, errlen);
}

int kp_meta_brokers_list(kp_meta_store_t *s, kp_meta_broker_t **out, int *n, char *err,
                         size_t errlen)
{
    return s->ops->brokers_list(s, out, n, err, errlen);
}

int kp_meta_controller_campaign(kp_meta_store_t *s, int timeout_ms, int64_t *epoch, char *err,
                                size_t errlen)
{
    return s->ops->controller_campaign(s, timeout_ms, epoch, err, errlen);
}

int kp_meta_controller_get(kp_meta_store_t *s, int32_t *id, int64_t *epoch, char *err,
                           size_t errlen)
{
    return s->ops->controller_get(s, id, epoch, err, errlen);
}

int kp_meta_controller_resign(kp_meta_store_t *s, char *err, size_t errlen)
{
    return s->ops->controller_resign(s, err, errlen);
}

int kp_meta_topic_create(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                         size_t errlen)
{
    return s->ops->topic_create(s, t, version, err, errlen);
}

int kp_meta_topic_get(kp_meta_store_t *s, const char *name, kp_meta_topic_t *out, char *err,
                      size_t errlen)
{
    return s->ops->topic_get(s, name, out, err, errlen);
}

int kp_meta_topics_list(kp_meta_store_t *s, kp_meta_topic_t **out, int *n, char *err, size_t errlen)
{
    return s->ops->topics_list(s, out, n, err, errlen);
}

int kp_meta_topic_update(kp_meta_store_t *s, const kp_meta_topic_t *t, int64_t *version, char *err,
                         size_t errlen)
{
    return s->ops->topic_update(s, t, version, err, errlen);
}

int kp_meta_topic_delete(kp_meta_store_t *s, const char *name, int64_t version, char *err,
                         size_t errlen)
{
    return s->ops->topic_delete(s, name, version, err, errlen);
}

int kp_meta_partition_get(kp_meta_store_t *s, const char *topic, int32_t p, kp_meta_pstate_t *out,
                          char *err, size_t errlen)
{
    return s->ops->partition_get(s, topic, p, out, err, errlen);
}

int kp_meta_partition_cas(kp_meta_store_t *s, const char *topic, int32_t p,
                          const kp_partition_state_t *next, int64_t expected, int fence,
                          int64_t *version, char *err, size_t errlen)
{
    return s->ops->partition_cas(s, topic, p, next, expected, fence, version, err, errlen);
}

int kp_meta_acls_add(kp_meta_store_t *s, const kp_acl_t *acls, int n, char *err, size_t errlen)
{
    return s->ops->acls_add(s, acls, n, err, errlen);
}

int kp_meta_acl_remove(kp_meta_store_t *s, const kp_acl_t *acl, char *err, size_t errlen)
{
    return s->ops->acl_remove(s, acl, err, errlen);
}

int kp_meta_acls_list(kp_meta_store_t *s, kp_acl_t **out, int *n, char *err, size_t errlen)
{
    return s->ops->acls_list(s, out, n, err, errlen);
}

int kp_meta_producer_ids_alloc(kp_meta_store_t *s, int64_t count, int64_t *first, char *err,
                               size_t errlen)
{
    return s->ops->producer_ids_alloc(s, count, first, err, errlen);
}

int kp_meta_watch_start(kp_meta_store_t *s, kp_meta_watch_fn fn, void *arg, char *err,
                        size_t errlen)
{
    return s->ops->watch_start(s, fn, arg, err, errlen);
}

void kp_meta_watch_stop(kp_meta_store_t *s)
{
    s->ops->watch_stop(s);
}

/* ---- freeing ---- */

void kp_meta_broker_free(kp_meta_broker_t *b)
{
    if (!b) return;
    free(b->rack);
    free(b->offline_dir);
    for (int i = 0; i < b->nendpoints; i++) {
        free(b->endpoints[i].listener);
        free(b->endpoints[i].host);
        free(b->endpoints[i].security);
    }
    free(b->endpoints);
    memset(b, 0, sizeof(*b));
}

void kp_meta_brokers_free(kp_meta_broker_t *b, int n)
{
    for (int i = 0; i < n; i++) kp_meta_broker_free(&b[i]);
    free(b);
}

void kp_meta_topic_free(kp_meta_topic_t *t)
{
    if (!t) return;
    free(t->name);
    free(t->replicas);
    for (int i = 0; i < t->nconfigs; i++) {
        free(t->config_keys[i]);
        free(t->config_values[i]);
    }
    free(t->config_keys);
    free(t->config_values);
    free(t->reassigning);
    memset(t, 0, sizeof(*t));
}

void kp_meta_topics_free(kp_meta_topic_t *t, int n)
{
    for (int i = 0; i < n; i++) kp_meta_topic_free(&t[i]);
    free(t);
}

void kp_meta_acls_free(kp_acl_t *acls, int n)
{
    for (int i = 0; i < n; i++) {
        free(acls[i].resource_name);
        free(acls[i].principal);
        free(acls[i].host);
    }
    free(acls);
}

/* ---- codecs ---- */

static char *dump_free(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static int load(const char *json, size_t len, json_t **o, const char *what, char *err,
                size_t errlen)
{
    json_error_t jerr;
    *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*o || !json_is_object(*o)) {
        json_decref(*o);
        *o = NULL;
        snprintf(err, errlen, "%s record is not a JSON object", what);
        return KP_META_ECORRUPT;
    }
    return 0;
}

/* An integer field within [lo, hi]; -1 when absent, of another type or out of range. */
static int get_int(json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static char *get_str(json_t *o, const char *name, size_t max)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v)) return NULL;
    size_t n = json_string_length(v);
    if (n > max || strlen(json_string_value(v)) != n) return NULL; /* no embedded NUL */
    return strdup(json_string_value(v));
}

static json_t *int_array(const int32_t *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

/* Broker ids: 0..INT32_MAX, at most max of them, no duplicates. */
static int get_ids(json_t *a, int32_t *out, int max)
{
    if (!json_is_array(a) || json_array_size(a) > (size_t)max) return -1;
    int n = (int)json_array_size(a);
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return -1;
        out[i] = (int32_t)json_integer_value(v);
        for (int j = 0; j < i; j++)
            if (out[j] == out[i]) return -1;
    }
    return n;
}

static void hex16(const uint8_t id[16], char out[33])
{
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int unhex16(const char *s, uint8_t id[16])
{
    if (!s || strlen(s) != 32) return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", s[2 * i]) ||
            !strchr("0123456789abcdef", s[2 * i + 1]))
            return -1;
        id[i] = (uint8_t)v;
    }
    return 0;
}

/* The optional list of moves in progress: each names a partition of the topic once, with
 * exactly replication_factor distinct target ids. */
static int decode_reassigning(json_t *a, kp_meta_topic_t *out)
{
    if (!a) return 0;
    if (!json_is_array(a) || json_array_size(a) > (size_t)out->partitions) return -1;
    size_t n = json_array_size(a);
    if (n == 0) return 0;
    out->reassigning = calloc(n, sizeof(*out->reassigning));
    if (!out->reassigning) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(a, i);
        kp_meta_reassign_t *r = &out->reassigning[i];
        int64_t part;
        if (!json_is_object(m) || get_int(m, "partition", 0, out->partitions - 1, &part) < 0 ||
            get_ids(json_object_get(m, "target"), r->target, KP_REPLICAS_MAX) !=
                out->replication_factor)
            return -1;
        r->partition = (int32_t)part;
        for (size_t j = 0; j < i; j++)
            if (out->reassigning[j].partition == r->partition) return -1;
        out->nreassigning++;
    }
    return 0;
}

char *kp_meta_topic_encode(const kp_meta_topic_t *t)
{
    json_t *o = json_object(), *rows = json_array(), *cfg = json_object();
    char id[33];
    hex16(t->id, id);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "partitions", json_integer(t->partitions));
    json_object_set_new(o, "replication_factor", json_integer(t->replication_factor));
    for (int32_t p = 0; p < t->partitions; p++)
        json_array_append_new(rows, int_array(t->replicas + (size_t)p * t->replication_factor,
                                              t->replication_factor));
    json_object_set_new(o, "replicas", rows);
    for (int i = 0; i < t->nconfigs; i++)
        json_object_set_new(cfg, t->config_keys[i], json_string(t->config_values[i]));
    json_object_set_new(o, "configs", cfg);
    json_object_set_new(o, "internal", json_boolean(t->internal));
    if (t->nreassigning > 0) {
        json_t *moves = json_array();
        for (int i = 0; i < t->nreassigning; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "partition", json_integer(t->reassigning[i].partition));
            json_object_set_new(m, "target",
                                int_array(t->reassigning[i].target, t->replication_factor));
            json_array_append_new(moves, m);
        }
        json_object_set_new(o, "reassigning", moves);
    }
    return dump_free(o);
}

int kp_meta_topic_decode(const char *name, const char *json, size_t len, kp_meta_topic_t *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    if (load(json, len, &o, "topic", err, errlen)) return KP_META_ECORRUPT;
    const char *field = "id";
    int64_t np, rf;
    if (unhex16(json_string_value(json_object_get(o, "id")), out->id) < 0) goto bad;
    field = "partitions";
    if (get_int(o, "partitions", 1, KP_TOPIC_PARTITIONS_MAX, &np) < 0) goto bad;
    field = "replication_factor";
    if (get_int(o, "replication_factor", 1, KP_REPLICAS_MAX, &rf) < 0) goto bad;
    out->partitions = (int32_t)np;
    out->replication_factor = (int)rf;
    field = "replicas";
    json_t *rows = json_object_get(o, "replicas");
    if (!json_is_array(rows) || json_array_size(rows) != (size_t)np) goto bad;
    out->replicas = malloc((size_t)np * rf * sizeof(int32_t));
    if (!out->replicas) goto bad;
    for (int64_t p = 0; p < np; p++)
        if (get_ids(json_array_get(rows, p), out->replicas + p * rf, (int)rf) != rf) goto bad;
    field = "configs";
    json_t *cfg = json_object_get(o, "configs");
    if (cfg && !json_is_object(cfg)) goto bad;
    size_t nc = json_object_size(cfg);
    if (nc > KP_META_CONFIGS_MAX) goto bad;
    if (nc) {
        out->config_keys = calloc(nc, sizeof(char *));
        out->config_values = calloc(nc, sizeof(char *));
        if (!out->config_keys || !out->config_values) goto bad;
    }
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            json_string_length(v) > 65536)
            goto bad;
        for (int j = 0; j < out->nconfigs; j++) /* "a\u0000x" and "a\u0000y" both read "a" */
            if (!strcmp(out->config_keys[j], k)) goto bad;
        out->config_keys[out->nconfigs] = strdup(k);
        out->config_values[out->nconfigs] = strdup(json_string_value(v));
        out->nconfigs++;
    }
    field = "internal";
    json_t *in = json_object_get(o, "internal");
    if (in && !json_is_boolean(in)) goto bad;
    out->internal = json_is_true(in);
    field = "reassigning";
    if (decode_reassigning(json_object_get(o, "reassigning"), out) < 0) goto bad;
    out->name = strdup(name ? name : "");
    json_decref(o);
    return 0;
bad:
    json_decref(o);
    kp_meta_topic_free(out);
    snprintf(err, errlen, "topic %.249s: field %s is missing or invalid", name ? name : "?", field);
    return KP_META_ECORRUPT;
}

char *kp_meta_pstate_encode(const kp_partition_state_t *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "leader", json_integer(st->leader));
    json_object_set_new(o, "leader_epoch", json_integer(st->leader_epoch));
    json_object_set_new(o, "partition_epoch", json_integer(st->partition_epoch));
    json_object_set_new(o, "isr", int_array(st->isr, st->nisr));
    return dump_free(o);
}

int kp_meta_pstate_decode(const char *json, size_t len, kp_partition_state_t *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    if (load(json, len, &o, "partition state", err, errlen)) return KP_META_ECORRUPT;
    int64_t leader, le, pe;
    int n = -1;
    if (get_int(o, "leader", -1, INT32_MAX, &leader) < 0 ||
        get_int(o, "leader_epoch", 0, INT32_MAX, &le) < 0 ||
        get_int(o, "partition_epoch", 0, INT32_MAX, &pe) < 0 ||
        (n = get_ids(json_object_get(o, "isr"), out->isr, KP_REPLICAS_MAX)) < 0) {
        json_decref(o);
        memset(out, 0, sizeof(*out));
        snprintf(err, errlen, "partition state: a field is missing or invalid");
        return KP_META_ECORRUPT;
    }
    out->leader = (int32_t)leader;
    out->leader_epoch = (int32_t)le;
    out->partition_epoch = (int32_t)pe;
    out->nisr = n;
    json_decref(o);
    return 0;
}

char *kp_meta_broker_encode(const kp_meta_broker_t *b)
{
    json_t *o = json_object(), *eps = json_array();
    json_object_set_new(o, "id", json_integer(b->id));
    if (b->rack) json_object_set_new(o, "rack", json_string(b->rack));
    for (int i = 0; i < b->nendpoints; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "listener", json_string(b->endpoints[i].listener));
        json_object_set_new(e, "host", json_string(b->endpoints[i].host));
        json_object_set_new(e, "port", json_integer(b->endpoints[i].port));
        json_object_set_new(e, "security", json_string(b->endpoints[i].security));
        json_array_append_new(eps, e);
    }
    json_object_set_new(o, "endpoints", eps);
    if (b->offline_dir)
        json_object_set_new(o, "offline_log_dirs", json_pack("[s]", b->offline_dir));
    return dump_free(o);
}

int kp_meta_broker_decode(const char *json, size_t len, kp_meta_broker_t *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    if (load(json, len, &o, "broker", err, errlen)) return KP_META_ECORRUPT;
    int64_t id;
    json_t *eps = json_object_get(o, "endpoints");
    if (get_int(o, "id", 0, INT32_MAX, &id) < 0 || !json_is_array(eps) ||
        json_array_size(eps) > KP_META_ENDPOINTS_MAX)
        goto bad;
    out->id = (int32_t)id;
    if (json_object_get(o, "rack") && !(out->rack = get_str(o, "rack", KP_META_RACK_MAX))) goto bad;
    if (json_array_size(eps)) {
        out->endpoints = calloc(json_array_size(eps), sizeof(*out->endpoints));
        if (!out->endpoints) goto bad;
    }
    for (size_t i = 0; i < json_array_size(eps); i++) {
        json_t *e = json_array_get(eps, i);
        kp_meta_endpoint_t *ep = &out->endpoints[out->nendpoints++];
        int64_t port;
        ep->listener = get_str(e, "listener", 255);
        ep->host = get_str(e, "host", 255);
        ep->security = get_str(e, "security", 64);
        if (!ep->listener || !ep->host || !ep->security || get_int(e, "port", 0, 65535, &port) < 0)
            goto bad;
        ep->port = (int)port;
    }
    json_t *off = json_object_get(o, "offline_log_dirs");
    if (off) { /* kpool has one log directory: the first names it */
        if (!json_is_array(off) || json_array_size(off) > KP_META_ENDPOINTS_MAX) goto bad;
        for (size_t i = 0; i < json_array_size(off); i++) {
            const char *d = json_string_value(json_array_get(off, i));
            if (!d || !*d || strlen(d) > 4096) goto bad;
            if (!out->offline_dir && !(out->offline_dir = strdup(d))) goto bad;
        }
    }
    json_decref(o);
    return 0;
bad:
    json_decref(o);
    kp_meta_broker_free(out);
    snprintf(err, errlen, "broker record: a field is missing or invalid");
    return KP_META_ECORRUPT;
}

char *kp_meta_acl_encode(const kp_acl_t *acl)
{
    json_t *o = json_object();
    json_object_set_new(o, "resource_type", json_integer(acl->resource_type));
    json_object_set_new(o, "pattern_type", json_integer(acl->pattern_type));
    json_object_set_new(o, "name", json_string(acl->resource_name ? acl->resource_name : ""));
    json_object_set_new(o, "principal", json_string(acl->principal ? acl->principal : ""));
    json_object_set_new(o, "host", json_string(acl->host ? acl->host : ""));
    json_object_set_new(o, "operation", json_integer(acl->operation));
    json_object_set_new(o, "permission", json_integer(acl->permission));
    return dump_free(o); /* sorted keys: one binding, one text (its key is a hash of it) */
}

int kp_meta_acl_decode(const char *json, size_t len, kp_acl_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    if (load(json, len, &o, "ACL", err, errlen)) return KP_META_ECORRUPT;
    int64_t rt, pt, op, perm;
    if (get_int(o, "resource_type", 0, 127, &rt) < 0 ||
        get_int(o, "pattern_type", 0, 127, &pt) < 0 || get_int(o, "operation", 0, 127, &op) < 0 ||
        get_int(o, "permission", 0, 127, &perm) < 0 ||
        !(out->resource_name = get_str(o, "name", 65536)) ||
        !(out->principal = get_str(o, "principal", 65536)) ||
        !(out->host = get_str(o, "host", 65536))) {
        json_decref(o);
        free(out->resource_name);
        free(out->principal);
        free(out->host);
        memset(out, 0, sizeof(*out));
        snprintf(err, errlen, "ACL record: a field is missing or invalid");
        return KP_META_ECORRUPT;
    }
    out->resource_type = (int8_t)rt;
    out->pattern_type = (int8_t)pt;
    out->operation = (int8_t)op;
    out->permission = (int8_t)perm;
    json_decref(o);
    return 0;
}
