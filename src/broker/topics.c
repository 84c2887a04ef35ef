/*
 * topics.c — topic map, durable topic files and partition logs (see topics.h).
 *
 * Topic file (<log.dir>/meta/topics/<name>.json):
 *   {"name": "...", "id": "<32 hex>", "partitions": N, "internal": false,
 *    "created_ms": ..., "configs": {"key": "value", ...}}
 */
#include "broker/topics.h"

#include "broker/topic_config.h"
#include "protocol/errors.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>

struct kp_topics {
    pthread_rwlock_t lock;
    char *data_dir;
    char *meta_dir;
    /* effective broker properties (static + dynamic), owned; replaced by
     * kp_topics_set_broker_props under create_lock and the write lock, so a reader holding
     * either lock sees one stable object */
    kp_props_t *broker_props;
    kp_topic_t **buckets;
    size_t nbuckets, count;
    pthread_mutex_t create_lock; /* serializes create/delete (file system work) */
    /* kp_topics_list's name order, kept until a topic is added or removed: full Metadata
     * requests and the log manager's once-a-second pass list every topic, and sorting 10,000
     * names each time was most of an idle broker's CPU. Entries hold no references: they
     * are read under `lock` and dropped (sorted_valid = 0) under its write side before any
     * removed topic can be freed. sorted_lock serializes the rebuild among readers. */
    pthread_mutex_t sorted_lock;
    kp_topic_t **sorted;
    size_t nsorted;
    int sorted_valid;
    kp_partition_hook_fn hook;
    void *hook_arg;
};

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static void map_insert(kp_topics_t *t, kp_topic_t *topic)
{
    if ((t->count + 1) > t->nbuckets) {
        size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
        kp_topic_t **b = kp_xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < t->nbuckets; i++) {
            kp_topic_t *e = t->buckets[i];
            while (e) {
                kp_topic_t *next = e->hash_next;
                size_t j = hash_name(e->name, strlen(e->name)) & (nb - 1);
                e->hash_next = b[j];
                b[j] = e;
                e = next;
            }
        }
        free(t->buckets);
        t->buckets = b;
        t->nbuckets = nb;
    }
    size_t i = hash_name(topic->name, strlen(topic->name)) & (t->nbuckets - 1);
    topic->hash_next = t->buckets[i];
    t->buckets[i] = topic;
    t->count++;
    t->sorted_valid = 0; /* under the write lock */
}

static kp_topic_t *map_find(kp_topics_t *t, kp_str_t name)
{
    if (!t->nbuckets || name.len <= 0) return NULL;
    size_t i = hash_name(name.ptr, (size_t)name.len) & (t->nbuckets - 1);
    for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next)
        if (strlen(e->name) == (size_t)name.len && !memcmp(e->name, name.ptr, (size_t)name.len))
            return e;
    return NULL;
}

static void map_remove(kp_topics_t *t, kp_topic_t *topic)
{
    size_t i = hash_name(topic->name, strlen(topic->name)) & (t->nbuckets - 1);
    for (kp_topic_t **pp = &t->buckets[i]; *pp; pp = &(*pp)->hash_next) {
        if (*pp == topic) {
            *pp = topic->hash_next;
            t->count--;
            t->sorted_valid = 0; /* under the write lock */
            return;
        }
    }
}

int kp_topic_name_check(kp_str_t name, char *err, size_t errlen)
{
    if (name.len <= 0) {
        snprintf(err, errlen, "Topic name is empty");
        return -1;
    }
    if (name.len > KP_TOPIC_NAME_LEN_MAX) {
        snprintf(err, errlen, "Topic name is longer than %d characters", KP_TOPIC_NAME_LEN_MAX);
        return -1;
    }
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.')) {
        snprintf(err, errlen, "Topic name cannot be \".\" or \"..\"");
        return -1;
    }
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            snprintf(err, errlen,
                     "Topic name is illegal: it contains a character other than "
                     "ASCII alphanumerics, '.', '_' and '-'");
            return -1;
        }
    }
    return 0;
}

static void uuid_hex(const kp_uuid_t *u, char out[33])
{
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", u->b[i]);
}

static int uuid_parse(const char *s, kp_uuid_t *u)
{
    if (strlen(s) != 32) return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        u->b[i] = (uint8_t)v;
    }
    return 0;
}

static void partition_dir(const kp_topics_t *t, const char *topic, int32_t p, char *out, size_t n)
{
    snprintf(out, n, "%s/%s-%d", t->data_dir, topic, p);
}

typedef struct retired {
    struct retired *next;
    kp_partition_t **array;
} retired_t;

static void topic_free(kp_topic_t *topic)
{
    for (retired_t *r = topic->retired_arrays, *n; r; r = n) {
        n = r->next;
        free(r->array);
        free(r);
    }
    for (int32_t i = 0; i < topic->npartitions; i++) {
        kp_partition_t *p = topic->partitions[i];
        if (!p) continue;
        kp_partition_close(p, topic->deleted);
    }
    free(topic->partitions);
    kp_props_free(topic->configs);
    free(topic->name);
    free(topic);
}

void kp_topic_ref(kp_topic_t *topic)
{
    atomic_fetch_add(&topic->refs, 1);
}

void kp_topic_put(kp_topic_t *topic)
{
    if (topic && atomic_fetch_sub(&topic->refs, 1) == 1) topic_free(topic);
}

kp_partition_t *kp_topic_partition(kp_topic_t *topic, int32_t index)
{
    int32_t n = atomic_load_explicit(&topic->npartitions, memory_order_acquire);
    if (index < 0 || index >= n) return NULL;
    return atomic_load_explicit(&topic->partitions, memory_order_acquire)[index];
}

static int64_t eff_i64(const kp_topic_t *topic, const kp_props_t *broker, const char *key)
{
    return kp_topic_config_i64(key, topic->configs, broker);
}

/* Recomputes the cached effective settings. @locks: topics lock (or sole owner). */
static void settings_refresh(const kp_props_t *broker, kp_topic_t *topic)
{
    kp_topic_settings_t *e = &topic->eff;
    atomic_store_explicit(&e->max_message_bytes, (int)eff_i64(topic, broker, "max.message.bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&e->min_insync_replicas,
                          (int)eff_i64(topic, broker, "min.insync.replicas"), memory_order_relaxed);
    const char *ts = kp_topic_config_value(kp_topic_config_find("message.timestamp.type"),
                                           topic->configs, broker, NULL);
    atomic_store_explicit(&e->log_append_time, !strcmp(ts, "LogAppendTime"), memory_order_relaxed);
    const char *cp =
        kp_topic_config_value(kp_topic_config_find("cleanup.policy"), topic->configs, broker, NULL);
    atomic_store_explicit(&e->cleanup_delete, strstr(cp, "delete") != NULL, memory_order_relaxed);
    atomic_store_explicit(&e->cleanup_compact, strstr(cp, "compact") != NULL, memory_order_relaxed);
    atomic_store_explicit(&e->retention_ms, eff_i64(topic, broker, "retention.ms"),
                          memory_order_relaxed);
    atomic_store_explicit(&e->retention_bytes, eff_i64(topic, broker, "retention.bytes"),
                          memory_order_relaxed);
    atomic_store_explicit(&e->delete_retention_ms, eff_i64(topic, broker, "delete.retention.ms"),
                          memory_order_relaxed);
    atomic_store_explicit(&e->min_compaction_lag_ms,
                          eff_i64(topic, broker, "min.compaction.lag.ms"), memory_order_relaxed);
    atomic_store_explicit(&e->max_compaction_lag_ms,
                          eff_i64(topic, broker, "max.compaction.lag.ms"), memory_order_relaxed);
    atomic_store_explicit(&e->file_delete_delay_ms, eff_i64(topic, broker, "file.delete.delay.ms"),
                          memory_order_relaxed);
    const char *ct = kp_topic_config_value(kp_topic_config_find("compression.type"), topic->configs,
                                           broker, NULL);
    atomic_store_explicit(&e->compression_codec, kp_topic_config_codec(ct), memory_order_relaxed);
    int64_t before, after;
    kp_topic_timestamp_bounds(topic->configs, broker, &before, &after);
    atomic_store_explicit(&e->timestamp_before_max_ms, before, memory_order_relaxed);
    atomic_store_explicit(&e->timestamp_after_max_ms, after, memory_order_relaxed);
    const char *ratio = kp_topic_config_value(kp_topic_config_find("min.cleanable.dirty.ratio"),
                                              topic->configs, broker, NULL);
    atomic_store_explicit(&e->min_cleanable_ratio_ppm, (long long)(strtod(ratio, NULL) * 1e6),
                          memory_order_relaxed);
}

kp_topic_t *kp_topics_get(kp_topics_t *t, kp_str_t name)
{
    pthread_rwlock_rdlock(&t->lock);
    kp_topic_t *topic = map_find(t, name);
    if (topic) kp_topic_ref(topic);
    pthread_rwlock_unlock(&t->lock);
    return topic;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(kp_topic_t *const *)a)->name, (*(kp_topic_t *const *)b)->name);
}

kp_topic_t **kp_topics_list(kp_topics_t *t, int *count)
{
    pthread_rwlock_rdlock(&t->lock);
    pthread_mutex_lock(&t->sorted_lock);
    if (!t->sorted_valid) {
        t->sorted = kp_xrealloc(t->sorted, (t->count + 1) * sizeof(*t->sorted));
        size_t n = 0;
        for (size_t i = 0; i < t->nbuckets; i++)
            for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next) t->sorted[n++] = e;
        qsort(t->sorted, n, sizeof(*t->sorted), cmp_topic);
        t->nsorted = n;
        t->sorted_valid = 1;
    }
    kp_topic_t **list = kp_xmalloc((t->nsorted + 1) * sizeof(*list));
    for (size_t i = 0; i < t->nsorted; i++) {
        kp_topic_ref(t->sorted[i]);
        list[i] = t->sorted[i];
    }
    *count = (int)t->nsorted;
    pthread_mutex_unlock(&t->sorted_lock);
    pthread_rwlock_unlock(&t->lock);
    return list;
}

void kp_topics_list_free(kp_topic_t **list, int count)
{
    for (int i = 0; i < count; i++) kp_topic_put(list[i]);
    free(list);
}

void kp_topics_foreach(kp_topics_t *t, void (*fn)(kp_topic_t *topic, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nbuckets; i++)
        for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next) fn(e, arg);
    pthread_rwlock_unlock(&t->lock);
}

int kp_topics_count(kp_topics_t *t, int64_t *partitions)
{
    pthread_rwlock_rdlock(&t->lock);
    int n = (int)t->count;
    int64_t p = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next) p += e->npartitions;
    pthread_rwlock_unlock(&t->lock);
    if (partitions) *partitions = p;
    return n;
}

void kp_topics_set_broker_props(kp_topics_t *t, const kp_props_t *broker_props)
{
    kp_props_t *fresh = kp_props_new();
    for (size_t i = 0; i < kp_props_count(broker_props); i++) {
        const char *k, *v;
        kp_props_at(broker_props, i, &k, &v);
        kp_props_set(fresh, k, v);
    }
    pthread_mutex_lock(&t->create_lock);
    pthread_rwlock_wrlock(&t->lock);
    kp_props_t *old = t->broker_props;
    t->broker_props = fresh;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next) settings_refresh(fresh, e);
    pthread_rwlock_unlock(&t->lock);
    kp_props_free(old);
    /* storage settings (segment.bytes, segment.ms, flush.*) of every partition; the topic
     * map cannot change meanwhile: creates and deletes take create_lock */
    int n;
    kp_topic_t **topics = kp_topics_list(t, &n);
    for (int i = 0; i < n; i++) {
        kp_partition_config_t lc;
        pthread_rwlock_rdlock(&t->lock);
        kp_topic_log_config(&lc, topics[i]->configs, t->broker_props);
        pthread_rwlock_unlock(&t->lock);
        for (int32_t p = 0; p < topics[i]->npartitions; p++)
            kp_partition_set_config(topics[i]->partitions[p], &lc);
    }
    kp_topics_list_free(topics, n);
    pthread_mutex_unlock(&t->create_lock);
}

const char *kp_topic_config_get(kp_topic_t *topic, const char *name, char *buf, size_t buflen)
{
    const kp_config_def_t *d = kp_topic_config_find(name);
    if (!d) return NULL;
    kp_topics_t *t = topic->owner;
    pthread_rwlock_rdlock(&t->lock);
    snprintf(buf, buflen, "%s", kp_topic_config_value(d, topic->configs, t->broker_props, NULL));
    pthread_rwlock_unlock(&t->lock);
    return buf;
}

void kp_topic_overrides_copy(kp_topic_t *topic, kp_props_t *out)
{
    kp_topics_t *t = topic->owner;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < kp_props_count(topic->configs); i++) {
        const char *k, *v;
        kp_props_at(topic->configs, i, &k, &v);
        kp_props_set(out, k, v);
    }
    pthread_rwlock_unlock(&t->lock);
}

/* ---- persistence ---- */

static int write_topic_file(kp_topics_t *t, const kp_topic_t *topic)
{
    json_t *o = json_object();
    char id[33];
    uuid_hex(&topic->id, id);
    json_object_set_new(o, "name", json_string(topic->name));
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "partitions", json_integer(topic->npartitions));
    json_object_set_new(o, "internal", json_boolean(topic->internal));
    json_object_set_new(o, "created_ms", json_integer(topic->created_ms));
    json_t *cfg = json_object();
    for (size_t i = 0; i < kp_props_count(topic->configs); i++) {
        const char *k, *v;
        kp_props_at(topic->configs, i, &k, &v);
        json_object_set_new(cfg, k, json_string(v));
    }
    json_object_set_new(o, "configs", cfg);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s.json", t->meta_dir, topic->name);
    int rc = kp_fs_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

static void partition_hook(kp_topics_t *t, kp_topic_t *topic)
{
    if (!t->hook) return;
    for (int32_t i = 0; i < topic->npartitions; i++) t->hook(topic->partitions[i], t->hook_arg);
}

/* Opens the logs of partitions [from, to). 0 or -1 (partially opened logs are closed). */
static int open_partitions(kp_topics_t *t, kp_topic_t *topic, int32_t from, int32_t to)
{
    kp_partition_config_t cfg;
    kp_topic_log_config(&cfg, topic->configs, t->broker_props);
    int64_t now = kp_wall_ms();
    for (int32_t i = from; i < to; i++) {
        char dir[PATH_MAX];
        partition_dir(t, topic->name, i, dir, sizeof(dir));
        kp_partition_t *p = kp_partition_open(topic, i, dir, &cfg, now);
        if (!p) {
            for (int32_t j = from; j < i; j++) {
                kp_partition_close(topic->partitions[j], 0);
                topic->partitions[j] = NULL;
            }
            return -1;
        }
        topic->partitions[i] = p;
    }
    return 0;
}

static kp_topic_t *topic_new(kp_topics_t *t, const char *name, int32_t npartitions)
{
    kp_topic_t *topic = kp_xcalloc(1, sizeof(*topic));
    atomic_init(&topic->refs, 1);
    topic->name = kp_xstrdup(name);
    atomic_init(&topic->npartitions, npartitions);
    atomic_init(&topic->partitions, kp_xcalloc((size_t)npartitions, sizeof(kp_partition_t *)));
    topic->configs = kp_props_new();
    topic->owner = t;
    return topic;
}

static int load_topic_file(kp_topics_t *t, const char *path)
{
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o) {
        kp_error("topics", "%s: %s (line %d)", path, jerr.text, jerr.line);
        return -1;
    }
    const char *name = json_string_value(json_object_get(o, "name"));
    json_int_t np = json_integer_value(json_object_get(o, "partitions"));
    const char *id = json_string_value(json_object_get(o, "id"));
    char err[256];
    if (!name || kp_topic_name_check(kp_str_c(name), err, sizeof(err)) < 0 || np < 1 ||
        np > KP_TOPIC_PARTITIONS_MAX) {
        kp_error("topics", "%s: invalid topic file", path);
        json_decref(o);
        return -1;
    }
    kp_topic_t *topic = topic_new(t, name, (int32_t)np);
    if (id) uuid_parse(id, &topic->id);
    topic->internal = json_is_true(json_object_get(o, "internal"));
    topic->created_ms = json_integer_value(json_object_get(o, "created_ms"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(o, "configs"), k, v)
    {
        if (json_is_string(v)) kp_props_set(topic->configs, k, json_string_value(v));
    }
    json_decref(o);
    settings_refresh(t->broker_props, topic);
    if (open_partitions(t, topic, 0, topic->npartitions) < 0) {
        topic_free(topic);
        return -1;
    }
    map_insert(t, topic);
    return 0;
}

/* Partition directories no topic claims (interrupted create/delete) are removed. */
static void sweep_orphans(kp_topics_t *t)
{
    DIR *d = opendir(t->data_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "meta")) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", t->data_dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        size_t n = strlen(e->d_name);
        int orphan = n > 7 && !strcmp(e->d_name + n - 7, "-delete");
        if (!orphan) {
            char *dash = strrchr(e->d_name, '-');
            char *end;
            long p = dash ? strtol(dash + 1, &end, 10) : -1;
            if (!dash || dash[1] == 0 || *end || p < 0) continue; /* not ours */
            kp_topic_t *topic = map_find(t, (kp_str_t){e->d_name, (int32_t)(dash - e->d_name)});
            orphan = !topic || p >= topic->npartitions;
        }
        if (orphan) {
            kp_info("topics", "removing leftover partition directory %s", e->d_name);
            kp_fs_remove_tree(path);
        }
    }
    closedir(d);
}

kp_topics_t *kp_topics_open(const char *data_dir, const kp_props_t *broker_props, char *err,
                            size_t errlen)
{
    kp_topics_t *t = kp_xcalloc(1, sizeof(*t));
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->create_lock, NULL);
    pthread_mutex_init(&t->sorted_lock, NULL);
    t->data_dir = kp_xstrdup(data_dir);
    t->broker_props = kp_props_new();
    for (size_t i = 0; i < kp_props_count(broker_props); i++) {
        const char *k, *v;
        kp_props_at(broker_props, i, &k, &v);
        kp_props_set(t->broker_props, k, v);
    }
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/meta/topics", data_dir);
    t->meta_dir = kp_xstrdup(p);
    if (kp_fs_mkdirs(t->meta_dir, KP_FS_DIR_MODE) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", t->meta_dir, strerror(errno));
        kp_topics_close(t);
        return NULL;
    }
    DIR *d = opendir(t->meta_dir);
    struct dirent *e;
    int failed = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) {
            snprintf(p, sizeof(p), "%s/%s", t->meta_dir, e->d_name);
            kp_fs->unlink(p);
            continue;
        }
        if (n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        snprintf(p, sizeof(p), "%s/%s", t->meta_dir, e->d_name);
        if (load_topic_file(t, p) < 0) failed = 1;
    }
    if (d) closedir(d);
    if (failed) {
        snprintf(err, errlen, "could not load every topic in %s (see the log above)", t->meta_dir);
        kp_topics_close(t);
        return NULL;
    }
    sweep_orphans(t);
    return t;
}

void kp_topics_set_partition_hook(kp_topics_t *t, kp_partition_hook_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&t->lock);
    t->hook = fn;
    t->hook_arg = arg;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (kp_topic_t *e = t->buckets[i]; e; e = e->hash_next) partition_hook(t, e);
    pthread_rwlock_unlock(&t->lock);
}

void kp_topics_close(kp_topics_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        kp_topic_t *e = t->buckets[i];
        while (e) {
            kp_topic_t *next = e->hash_next;
            kp_topic_put(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t->data_dir);
    free(t->meta_dir);
    kp_props_free(t->broker_props);
    pthread_rwlock_destroy(&t->lock);
    pthread_mutex_destroy(&t->create_lock);
    pthread_mutex_destroy(&t->sorted_lock);
    free(t->sorted);
    free(t);
}

/* ---- create / delete ---- */

int64_t kp_topics_partitions_max(const kp_props_t *broker_props, int64_t *files)
{
    struct rlimit rl;
    int64_t nofile = KP_TOPIC_PARTITIONS_MAX + KP_BROKER_FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)nofile)
        nofile = (int64_t)rl.rlim_cur;
    if (files) *files = nofile;
    int64_t def = nofile - KP_BROKER_FD_RESERVE, v;
    if (def < nofile / 2) def = nofile / 2;
    char err[256];
    if (!broker_props) return def;
    if (kp_props_get_i64(broker_props, "max.broker.partitions", def, 1, INT32_MAX, &v, err,
                         sizeof(err)) < 0)
        v = def; /* validated when set: not reached */
    return v;
}

/* 0, or INVALID_PARTITIONS with err when `more` partitions for topic `name` would take this
 * broker past max.broker.partitions (every partition keeps its log open: past the
 * open-file limit a create ran out of descriptors part-way, failing every accept and file
 * open of the broker meanwhile, and was rolled back). Internal topics, which the broker
 * needs, are counted but never refused. Called under create_lock. */
static int16_t capacity_check(kp_topics_t *t, const char *name, int32_t more, int grow,
                              int internal, char *err, size_t errlen)
{
    if (internal) return 0;
    int64_t hosted, files;
    kp_topics_count(t, &hosted);
    int64_t max = kp_topics_partitions_max(t->broker_props, &files);
    if (hosted + more <= max) return 0;
    char why[160];
    if (kp_props_get(t->broker_props, "max.broker.partitions"))
        snprintf(why, sizeof(why), "max.broker.partitions");
    else
        snprintf(why, sizeof(why),
                 "max.broker.partitions, from the broker's open-file limit of %" PRId64
                 ": each partition keeps its log file open",
                 files);
    char what[KP_TOPIC_NAME_LEN_MAX + 64];
    if (grow)
        snprintf(what, sizeof(what), "Adding %d partitions to topic '%s'", more, name);
    else
        snprintf(what, sizeof(what), "Topic '%s' with %d partitions", name, more);
    snprintf(err, errlen,
             "%s would exceed this broker's partition limit: it hosts %" PRId64
             " partitions and may host at most %" PRId64 " (%s)",
             what, hosted, max, why);
    return KERR_INVALID_PARTITIONS;
}

int16_t kp_topics_create(kp_topics_t *t, const kp_topic_spec_t *spec, int validate_only, char *err,
                         size_t errlen)
{
    if (kp_topic_name_check(spec->name, err, errlen) < 0) return KERR_INVALID_TOPIC_EXCEPTION;
    if (spec->partitions < 1 || spec->partitions > KP_TOPIC_PARTITIONS_MAX) {
        snprintf(err, errlen, "Number of partitions must be between 1 and %d, got %d",
                 KP_TOPIC_PARTITIONS_MAX, spec->partitions);
        return KERR_INVALID_PARTITIONS;
    }
    for (int i = 0; i < spec->nconfigs; i++) {
        if (kp_topic_config_validate(spec->config_keys[i], spec->config_values[i], err, errlen) < 0)
            return KERR_INVALID_CONFIG;
    }
    char name[KP_TOPIC_NAME_LEN_MAX + 1];
    memcpy(name, spec->name.ptr, (size_t)spec->name.len);
    name[spec->name.len] = 0;

    pthread_mutex_lock(&t->create_lock);
    kp_topic_t *existing = kp_topics_get(t, spec->name);
    if (existing) {
        kp_topic_put(existing);
        pthread_mutex_unlock(&t->create_lock);
        snprintf(err, errlen, "Topic '%s' already exists.", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    int16_t crc = capacity_check(t, name, spec->partitions, 0, spec->internal, err, errlen);
    if (crc) {
        pthread_mutex_unlock(&t->create_lock);
        return crc;
    }
    if (validate_only) {
        pthread_mutex_unlock(&t->create_lock);
        return 0;
    }
    kp_topic_t *topic = topic_new(t, name, spec->partitions);
    topic->internal = spec->internal;
    topic->created_ms = kp_wall_ms();
    if (spec->id)
        memcpy(topic->id.b, spec->id, sizeof(topic->id.b));
    else if (getrandom(topic->id.b, sizeof(topic->id.b), 0) != sizeof(topic->id.b))
        memset(topic->id.b, 0x5a, sizeof(topic->id.b));
    for (int i = 0; i < spec->nconfigs; i++)
        kp_props_set(topic->configs, spec->config_keys[i], spec->config_values[i]);
    settings_refresh(t->broker_props, topic);
    /* fresh directories: anything left under these names is an orphan of a crash */
    for (int32_t i = 0; i < spec->partitions; i++) {
        char dir[PATH_MAX];
        partition_dir(t, name, i, dir, sizeof(dir));
        kp_fs_remove_tree(dir);
    }
    if (open_partitions(t, topic, 0, topic->npartitions) < 0 || write_topic_file(t, topic) < 0) {
        snprintf(err, errlen, "Could not create topic '%s': %s", name, strerror(errno));
        kp_error("topics", "%s", err);
        topic->deleted = 1; /* removes whatever was created */
        topic_free(topic);
        pthread_mutex_unlock(&t->create_lock);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    pthread_rwlock_wrlock(&t->lock);
    map_insert(t, topic);
    partition_hook(t, topic);
    pthread_rwlock_unlock(&t->lock);
    pthread_mutex_unlock(&t->create_lock);
    kp_info("topics", "created topic %s with %d partitions", name, spec->partitions);
    return 0;
}

int16_t kp_topics_delete(kp_topics_t *t, kp_str_t name, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->create_lock);
    pthread_rwlock_wrlock(&t->lock);
    kp_topic_t *topic = map_find(t, name);
    if (!topic) {
        pthread_rwlock_unlock(&t->lock);
        pthread_mutex_unlock(&t->create_lock);
        snprintf(err, errlen, "This server does not host this topic-partition.");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    map_remove(t, topic);
    topic->deleted = 1;
    pthread_rwlock_unlock(&t->lock);

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s.json", t->meta_dir, topic->name);
    if (kp_fs->unlink(path) < 0) kp_warn("topics", "unlink %s: %s", path, strerror(errno));
    kp_fs_fsync_dir(t->meta_dir);
    /* Move the partition directories aside at once so the name is free for a re-create; the
     * moved directories are removed when the last reference goes (kp_partition_close), and
     * in-flight fetches keep reading their open segment files until then. A restart removes
     * any leftovers (sweep_orphans). */
    char id[33];
    uuid_hex(&topic->id, id);
    for (int32_t i = 0; i < topic->npartitions; i++) {
        char dir[PATH_MAX];
        partition_dir(t, topic->name, i, dir, sizeof(dir));
        char moved[PATH_MAX + 64];
        snprintf(moved, sizeof(moved), "%s.%s-delete", dir, id);
        if (kp_partition_rename_dir(topic->partitions[i], moved) < 0)
            kp_warn("topics", "rename %s: %s", dir, strerror(errno));
    }
    kp_fs_fsync_dir(t->data_dir);
    kp_info("topics", "deleted topic %s", topic->name);
    pthread_mutex_unlock(&t->create_lock);
    kp_topic_put(topic);
    return 0;
}

/* ---- config changes and partition growth ---- */

int16_t kp_topics_alter_configs(kp_topics_t *t, kp_str_t name, const char **keys,
                                const char **values, const int8_t *ops, int n, int validate_only,
                                char *err, size_t errlen)
{
    pthread_mutex_lock(&t->create_lock);
    kp_topic_t *topic = kp_topics_get(t, name);
    if (!topic) {
        pthread_mutex_unlock(&t->create_lock);
        snprintf(err, errlen, "Topic %.*s does not exist", name.len > 0 ? name.len : 0, name.ptr);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    /* build the new override set on a copy; nothing changes unless all of it is valid */
    kp_props_t *next = kp_props_new();
    if (ops) {
        pthread_rwlock_rdlock(&t->lock);
        for (size_t i = 0; i < kp_props_count(topic->configs); i++) {
            const char *k, *v;
            kp_props_at(topic->configs, i, &k, &v);
            kp_props_set(next, k, v);
        }
        pthread_rwlock_unlock(&t->lock);
    }
    int16_t rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const kp_config_def_t *d = kp_topic_config_find(keys[i]);
        int8_t op = ops ? ops[i] : 0;
        if (!d) {
            snprintf(err, errlen, "Unknown topic config name: %s", keys[i]);
            rc = KERR_INVALID_CONFIG;
        } else if (op != 1 &&
                   (!values[i] || kp_topic_config_validate(keys[i], values[i], err, errlen) < 0)) {
            if (!values[i]) snprintf(err, errlen, "Null value for configuration %s", keys[i]);
            rc = KERR_INVALID_CONFIG;
        } else if (kp_config_op_apply(next, d->name, d->type == KP_CT_LIST, op, values[i],
                                      d->default_value, err, errlen) < 0) {
            rc = KERR_INVALID_CONFIG;
        }
    }
    if (!rc) {
        /* the result of APPEND/SUBTRACT must itself be valid */
        for (size_t i = 0; i < kp_props_count(next) && !rc; i++) {
            const char *k, *v;
            kp_props_at(next, i, &k, &v);
            if (kp_topic_config_validate(k, v, err, errlen) < 0) rc = KERR_INVALID_CONFIG;
        }
    }
    if (rc || validate_only) goto out;
    pthread_rwlock_wrlock(&t->lock);
    kp_props_t *old = topic->configs;
    topic->configs = next;
    next = old;
    settings_refresh(t->broker_props, topic);
    pthread_rwlock_unlock(&t->lock);
    if (write_topic_file(t, topic) < 0) {
        snprintf(err, errlen, "Could not store the configs of %s: %s", topic->name,
                 strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    kp_partition_config_t lc;
    pthread_rwlock_rdlock(&t->lock);
    kp_topic_log_config(&lc, topic->configs, t->broker_props);
    pthread_rwlock_unlock(&t->lock);
    for (int32_t i = 0; i < topic->npartitions; i++)
        kp_partition_set_config(topic->partitions[i], &lc);
    kp_info("topics", "altered configs of topic %s", topic->name);
out:
    kp_props_free(next);
    kp_topic_put(topic);
    pthread_mutex_unlock(&t->create_lock);
    return rc;
}

int16_t kp_topics_add_partitions(kp_topics_t *t, kp_str_t name, int32_t count, int validate_only,
                                 char *err, size_t errlen)
{
    pthread_mutex_lock(&t->create_lock);
    kp_topic_t *topic = kp_topics_get(t, name);
    int16_t rc = 0;
    if (!topic) {
        snprintf(err, errlen, "Topic %.*s does not exist", name.len > 0 ? name.len : 0, name.ptr);
        rc = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    int32_t cur = topic->npartitions;
    if (count <= cur) {
        snprintf(err, errlen,
                 "Topic currently has %d partitions, which is higher than the "
                 "requested %d.",
                 cur, count);
        if (count == cur) snprintf(err, errlen, "Topic already has %d partitions.", cur);
        rc = KERR_INVALID_PARTITIONS;
        goto out;
    }
    if (count > KP_TOPIC_PARTITIONS_MAX) {
        snprintf(err, errlen, "Number of partitions must be at most %d", KP_TOPIC_PARTITIONS_MAX);
        rc = KERR_INVALID_PARTITIONS;
        goto out;
    }
    if (topic->internal) {
        snprintf(err, errlen, "Cannot add partitions to internal topic %s", topic->name);
        rc = KERR_INVALID_REQUEST;
        goto out;
    }
    rc = capacity_check(t, topic->name, count - cur, 1, 0, err, errlen);
    if (rc) goto out;
    if (validate_only) goto out;
    kp_partition_t **old = topic->partitions;
    kp_partition_t **grown = kp_xcalloc((size_t)count, sizeof(*grown));
    memcpy(grown, old, (size_t)cur * sizeof(*grown));
    /* open the new logs in a scratch topic view so a failure leaves the topic as it was */
    atomic_store_explicit(&topic->partitions, grown, memory_order_release);
    int32_t saved = cur;
    for (int32_t i = saved; i < count; i++) { /* new partitions start empty */
        char dir[PATH_MAX];
        partition_dir(t, topic->name, i, dir, sizeof(dir));
        kp_fs_remove_tree(dir);
    }
    int orc = open_partitions(t, topic, saved, count);
    if (orc < 0) {
        atomic_store_explicit(&topic->partitions, old, memory_order_release);
        /* a reader may have loaded `grown` already (it indexes only the old count): keep it
         * until the topic goes, like any replaced array */
        retired_t *gone = kp_xmalloc(sizeof(*gone));
        gone->array = grown;
        gone->next = topic->retired_arrays;
        topic->retired_arrays = gone;
        snprintf(err, errlen, "Could not create the new partitions: %s", strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    retired_t *r = kp_xmalloc(sizeof(*r));
    r->array = old;
    r->next = topic->retired_arrays;
    topic->retired_arrays = r;
    atomic_store_explicit(&topic->npartitions, count, memory_order_release);
    if (write_topic_file(t, topic) < 0) {
        snprintf(err, errlen, "Could not store topic %s: %s", topic->name, strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    pthread_rwlock_rdlock(&t->lock);
    if (t->hook)
        for (int32_t i = saved; i < count; i++) t->hook(topic->partitions[i], t->hook_arg);
    pthread_rwlock_unlock(&t->lock);
    kp_info("topics", "topic %s grew from %d to %d partitions", topic->name, saved, count);
out:
    kp_topic_put(topic);
    pthread_mutex_unlock(&t->create_lock);
    return rc;
}

/* ---- the topic map as the lower layers see it (kp_topics_dir) ---- */

static struct kp_topic *dir_get(void *arg, kp_str_t name)
{
    return kp_topics_get(arg, name);
}

static int32_t dir_npartitions(struct kp_topic *topic)
{
    return atomic_load_explicit(&topic->npartitions, memory_order_acquire);
}

static int dir_internal(struct kp_topic *topic)
{
    return topic->internal;
}

static int16_t dir_create_internal(void *arg, kp_str_t name, int32_t partitions, const char **keys,
                                   const char **values, int nconfigs, char *err, size_t errlen)
{
    kp_topic_spec_t spec = {.name = name,
                            .partitions = partitions,
                            .config_keys = keys,
                            .config_values = values,
                            .nconfigs = nconfigs,
                            .internal = 1};
    return kp_topics_create(arg, &spec, 0, err, errlen);
}

kp_partition_dir_t kp_topics_dir(kp_topics_t *t)
{
    return (kp_partition_dir_t){.arg = t,
                                .get = dir_get,
                                .put = kp_topic_put,
                                .npartitions = dir_npartitions,
                                .internal = dir_internal,
                                .partition = kp_topic_partition,
                                .create_internal = dir_create_internal};
}
