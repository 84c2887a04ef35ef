/*
 * dynamic_config.c — dynamic broker configs (see dynamic_config.h).
 *
 * Divided into: the property table and its hooks · layers and lookup · validation ·
 * persistence · alteration.
 */
#include "broker/dynamic_config.h"

#include "broker/broker.h"
#include "broker/log_manager.h"
#include "broker/topic_config.h"
#include "core/buf.h"
#include "core/logging.h"
#include "net/conn_limits.h"
#include "net/conn_watch.h"
#include "net/tls.h"
#include "protocol/errors.h"
#include "replication/throttle.h"
#include "core/fs.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CONFIG_FILE       "broker-configs.json"
#define CONFIG_FILE_BYTES (1 << 20) /* a hand-edited file cannot make the start allocate more */

/* ---- the property table ---- */

enum {
    HOOK_NONE = 0,
    HOOK_TOPICS,      /* topic-config defaults: every topic's effective settings */
    HOOK_CLEANER,     /* log.cleaner.*: the log manager */
    HOOK_CONNECTIONS, /* max.connections: the listeners */
    HOOK_FLUSHERS,    /* log.flush.threads: the flusher pool */
    HOOK_TLS,         /* ssl.*: a new TLS context for new connections */
    HOOK_THROTTLES,   /* *.replication.throttled.rate: replication/throttle.h */
    HOOK_COUNT
};

#define DYN  KP_BPROP_DYNAMIC
#define PB   KP_BPROP_PER_BROKER
#define SENS KP_BPROP_SENSITIVE
#define LMAX INT64_MAX
#define IMAX INT32_MAX
#define RESTART                                                                                    \
    " cannot change while the broker runs: set it in the broker's properties and restart"

const kp_broker_prop_def_t kp_broker_prop_defs[] = {
    /* static: what the broker is and where it listens */
    {"node.id", "1", 0, KP_BPROP_LONG, 0, IMAX, HOOK_NONE, NULL},
    {"listeners", "PLAINTEXT://127.0.0.1:9092", 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"advertised.listeners", NULL, 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"listener.security.protocol.map", NULL, 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"log.dirs", "./kpool-data", 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"num.partitions", "1", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    /* unset: from the open-file limit (kp_topics_partitions_max); read at each create */
    {"max.broker.partitions", NULL, DYN, KP_BPROP_LONG, 1, IMAX, HOOK_TOPICS, NULL},
    {"default.replication.factor", "1", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"auto.create.topics.enable", "false", 0, KP_BPROP_BOOL, 0, 0, HOOK_NONE, NULL},
    {"socket.request.max.bytes", "104857600", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"admin.listener", "127.0.0.1:9600", 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"authorizer.enabled", "false", 0, KP_BPROP_BOOL, 0, 0, HOOK_NONE, NULL},
    {"super.users", NULL, 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"allow.everyone.if.no.acl.found", "false", 0, KP_BPROP_BOOL, 0, 0, HOOK_NONE, NULL},
    {"ssl.client.auth", "none", 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"ssl.principal.mapping.rules", "DEFAULT", 0, KP_BPROP_STRING, 0, 0, HOOK_NONE, NULL},
    {"offsets.topic.num.partitions", "50", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"offsets.retention.minutes", "10080", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"group.min.session.timeout.ms", "6000", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"group.max.session.timeout.ms", "1800000", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"group.initial.rebalance.delay.ms", "3000", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    {"log.cleaner.enable", "true", 0, KP_BPROP_BOOL, 0, 0, HOOK_NONE, NULL},
    {"log.retention.check.interval.ms", "300000", 0, KP_BPROP_LONG, 0, 0, HOOK_NONE, NULL},
    /* threads: only what can really change live */
    {"num.network.threads", NULL, 0, KP_BPROP_LONG, 0, 0, HOOK_NONE,
     "num.network.threads" RESTART " (each network thread owns the connections it accepted)"},
    {"num.io.threads", NULL, 0, KP_BPROP_LONG, 0, 0, HOOK_NONE,
     "num.io.threads has no effect here: requests run on the network threads "
     "(num.network.threads, which needs a restart)"},
    {"num.replica.fetchers", NULL, 0, KP_BPROP_LONG, 0, 0, HOOK_NONE,
     "num.replica.fetchers has no effect here: a pool has one broker and nothing is replicated"},
    {"background.threads", NULL, 0, KP_BPROP_LONG, 0, 0, HOOK_NONE,
     "background.threads has no effect here: retention and cleaning run on the log manager "
     "thread"},
    {"num.recovery.threads.per.data.dir", NULL, 0, KP_BPROP_LONG, 0, 0, HOOK_NONE,
     "num.recovery.threads.per.data.dir has no effect here: recovery runs once, at start"},
    {"log.flush.threads", "2", DYN, KP_BPROP_LONG, 1, 64, HOOK_FLUSHERS, NULL},
    {"log.cleaner.threads", "1", DYN, KP_BPROP_LONG, 1, 1, HOOK_NONE,
     "this broker runs one cleaner thread"},
    /* the cleaner, read by the log manager before each pass */
    {"log.cleaner.backoff.ms", "15000", DYN, KP_BPROP_LONG, 1, IMAX, HOOK_CLEANER, NULL},
    {"log.cleaner.io.max.bytes.per.second", "67108864", DYN, KP_BPROP_LONG, 0, LMAX, HOOK_CLEANER,
     NULL},
    {"log.cleaner.dedupe.buffer.size", "33554432", DYN, KP_BPROP_LONG, 1 << 16, 1LL << 34,
     HOOK_CLEANER, NULL},
    /* connections: the listeners and every loop's connection watch */
    {"max.connections", "10000", DYN, KP_BPROP_LONG, 1, IMAX, HOOK_CONNECTIONS, NULL},
    {"max.connections.per.ip", "2147483647", DYN, KP_BPROP_LONG, 0, IMAX, HOOK_CONNECTIONS, NULL},
    {"max.connections.per.ip.overrides", NULL, 0, KP_BPROP_STRING, 0, 0, HOOK_NONE,
     "max.connections.per.ip.overrides" RESTART},
    {"connections.max.idle.ms", "600000", DYN, KP_BPROP_LONG, -1, LMAX, HOOK_CONNECTIONS, NULL},
    {"connections.setup.timeout.ms", "10000", DYN, KP_BPROP_LONG, -1, LMAX, HOOK_CONNECTIONS, NULL},
    /* replication throttles of replicas a partition move adds (bytes/s; Kafka's default,
     * Long.MAX_VALUE, is none) */
    {"leader.replication.throttled.rate", "9223372036854775807", DYN, KP_BPROP_LONG, 1, LMAX,
     HOOK_THROTTLES, NULL},
    {"follower.replication.throttled.rate", "9223372036854775807", DYN, KP_BPROP_LONG, 1, LMAX,
     HOOK_THROTTLES, NULL},
    /* the TLS listener's key material: per broker, as Kafka's keystore reconfiguration */
    {"ssl.certificate.location", NULL, DYN | PB, KP_BPROP_FILE, 0, 0, HOOK_TLS, NULL},
    {"ssl.key.location", NULL, DYN | PB, KP_BPROP_FILE, 0, 0, HOOK_TLS, NULL},
    {"ssl.key.password", NULL, DYN | PB | SENS, KP_BPROP_PASSWORD, 0, 0, HOOK_TLS, NULL},
    {"ssl.ca.location", NULL, DYN | PB, KP_BPROP_FILE, 0, 0, HOOK_TLS, NULL},
    /* Kafka's names for the same with PEM stores (KIP-651): one file with the key and the
     * chain; when set, they take the place of the two above */
    {"ssl.keystore.type", "PEM", DYN | PB, KP_BPROP_PEM, 0, 0, HOOK_TLS, NULL},
    {"ssl.keystore.location", NULL, DYN | PB, KP_BPROP_FILE, 0, 0, HOOK_TLS, NULL},
    {"ssl.truststore.type", "PEM", DYN | PB, KP_BPROP_PEM, 0, 0, HOOK_TLS, NULL},
    {"ssl.truststore.location", NULL, DYN | PB, KP_BPROP_FILE, 0, 0, HOOK_TLS, NULL},
};
const size_t kp_broker_prop_defs_count =
    sizeof(kp_broker_prop_defs) / sizeof(kp_broker_prop_defs[0]);

/* Kafka names kpool does not take, with what to use instead. */
static const struct {
    const char *name, *why;
} unsupported[] = {
    {"ssl.keystore.password", "the TLS listener reads PEM stores: an encrypted key's password "
                              "is ssl.key.password"},
    {"ssl.truststore.password", "the TLS listener reads PEM stores, which have no password"},
    {"log.retention.hours", "set log.retention.ms instead"},
    {"log.retention.minutes", "set log.retention.ms instead"},
    {"log.roll.hours", "set log.roll.ms instead"},
};

const kp_broker_prop_def_t *kp_broker_prop_find(const char *name)
{
    for (size_t i = 0; i < kp_broker_prop_defs_count; i++)
        if (!strcmp(kp_broker_prop_defs[i].name, name)) return &kp_broker_prop_defs[i];
    return NULL;
}

/* The topic config whose broker-level default `name` is, or NULL. */
static const kp_config_def_t *topic_default_of(const char *name)
{
    for (size_t i = 0; i < kp_topic_config_defs_count; i++)
        if (kp_topic_config_defs[i].broker_name &&
            !strcmp(kp_topic_config_defs[i].broker_name, name))
            return &kp_topic_config_defs[i];
    return NULL;
}

int kp_dynconf_is_dynamic(const char *name)
{
    const kp_broker_prop_def_t *p = kp_broker_prop_find(name);
    return p ? (p->flags & KP_BPROP_DYNAMIC) != 0 : topic_default_of(name) != NULL;
}

static int hook_of(const char *name)
{
    const kp_broker_prop_def_t *p = kp_broker_prop_find(name);
    return p ? p->hook : topic_default_of(name) ? HOOK_TOPICS : HOOK_NONE;
}

/* ---- hooks: push the effective value into the module that uses it ---- */

/* prepare: may fail (then nothing changes); *state is handed to apply or discard.
 * apply: cannot fail; runs after the layer is persisted. */
typedef struct hook_ops {
    int (*prepare)(kp_broker_t *b, const kp_props_t *eff, void **state, char *err, size_t n);
    void (*apply)(kp_broker_t *b, const kp_props_t *eff, void *state);
    void (*discard)(void *state);
} hook_ops_t;

static void apply_topics(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)state;
    if (b->topics) kp_topics_set_broker_props(b->topics, eff);
}

static void apply_cleaner(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)state;
    if (b->log_manager) kp_log_manager_reconfigure(b->log_manager, eff);
}

static int64_t eff_i64(const kp_props_t *eff, const char *name)
{
    const kp_broker_prop_def_t *p = kp_broker_prop_find(name);
    int64_t v = 0;
    const char *s = kp_props_get(eff, name);
    if (!s || kp_parse_i64(s, &v) < 0) kp_parse_i64(p->default_value, &v);
    return v;
}

static void apply_connections(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)b;
    (void)state;
    kp_connections_set_max(eff_i64(eff, "max.connections"));
    atomic_store(&kp_net_limits.idle_ms, eff_i64(eff, "connections.max.idle.ms"));
    atomic_store(&kp_net_limits.setup_ms, eff_i64(eff, "connections.setup.timeout.ms"));
    /* the overrides are static: the ones the broker started with stay */
    char err[256];
    if (kp_connections_set_per_ip(eff_i64(eff, "max.connections.per.ip"),
                                  kp_props_get(eff, "max.connections.per.ip.overrides"), err,
                                  sizeof(err)) < 0)
        kp_warn("config", "max.connections.per.ip: %s", err);
}

static void apply_flushers(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)b;
    (void)state;
    int n = (int)eff_i64(eff, "log.flush.threads");
    if (kp_flusher_resize(n) < 0)
        kp_warn("config", "log.flush.threads: could not start %d flusher threads", n);
}

static void apply_throttles(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)b;
    (void)state;
    kp_throttle_set(&kp_repl_throttle_leader, eff_i64(eff, "leader.replication.throttled.rate"));
    kp_throttle_set(&kp_repl_throttle_follower,
                    eff_i64(eff, "follower.replication.throttled.rate"));
}

static int prepare_tls(kp_broker_t *b, const kp_props_t *eff, void **state, char *err, size_t n)
{
    *state = NULL;
    return kp_broker_tls_build(b, eff, (struct kp_tls_ctx **)state, err, n);
}

static void apply_tls(kp_broker_t *b, const kp_props_t *eff, void *state)
{
    (void)eff;
    if (state) kp_broker_tls_swap(b, state);
}

static void discard_tls(void *state)
{
    kp_tls_ctx_free(state);
}

static const hook_ops_t hooks[HOOK_COUNT] = {
    [HOOK_TOPICS] = {NULL, apply_topics, NULL},
    [HOOK_CLEANER] = {NULL, apply_cleaner, NULL},
    [HOOK_CONNECTIONS] = {NULL, apply_connections, NULL},
    [HOOK_FLUSHERS] = {NULL, apply_flushers, NULL},
    [HOOK_TLS] = {prepare_tls, apply_tls, discard_tls},
    [HOOK_THROTTLES] = {NULL, apply_throttles, NULL},
};

/* ---- layers ---- */

struct kp_dynconf {
    pthread_mutex_t lock;
    char *path;
    const kp_props_t *statics;
    kp_props_t *dyn_default, *dyn_broker;
};

static void props_copy_into(kp_props_t *dst, const kp_props_t *src)
{
    for (size_t i = 0; i < kp_props_count(src); i++) {
        const char *k, *v;
        kp_props_at(src, i, &k, &v);
        kp_props_set(dst, k, v);
    }
}

static kp_props_t *props_dup(const kp_props_t *src)
{
    kp_props_t *p = kp_props_new();
    props_copy_into(p, src);
    return p;
}

static kp_props_t *effective_of(const kp_props_t *statics, const kp_props_t *def,
                                const kp_props_t *brk)
{
    kp_props_t *p = props_dup(statics);
    props_copy_into(p, def);
    props_copy_into(p, brk);
    return p;
}

kp_props_t *kp_dynconf_effective(kp_dynconf_t *d)
{
    pthread_mutex_lock(&d->lock);
    kp_props_t *p = effective_of(d->statics, d->dyn_default, d->dyn_broker);
    pthread_mutex_unlock(&d->lock);
    return p;
}

void kp_dynconf_layers(kp_dynconf_t *d, kp_broker_layers_t *out)
{
    pthread_mutex_lock(&d->lock);
    out->dyn_broker = props_dup(d->dyn_broker);
    out->dyn_default = props_dup(d->dyn_default);
    pthread_mutex_unlock(&d->lock);
    out->statics = d->statics;
}

void kp_broker_layers_free(kp_broker_layers_t *l)
{
    kp_props_free(l->dyn_broker);
    kp_props_free(l->dyn_default);
    l->dyn_broker = l->dyn_default = NULL;
}

const char *kp_broker_layers_get(const kp_broker_layers_t *l, const char *key, int *source)
{
    const char *v;
    if ((v = kp_props_get(l->dyn_broker, key))) {
        *source = KP_CONFIG_SOURCE_DYNAMIC_BROKER;
        return v;
    }
    if ((v = kp_props_get(l->dyn_default, key))) {
        *source = KP_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
        return v;
    }
    if ((v = kp_props_get(l->statics, key))) {
        *source = KP_CONFIG_SOURCE_STATIC_BROKER;
        return v;
    }
    *source = KP_CONFIG_SOURCE_DEFAULT;
    return NULL;
}

/* ---- validation ---- */

int kp_dynconf_validate(const char *name, const char *value, int per_broker, char *err, size_t n)
{
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (!strcmp(unsupported[i].name, name)) {
            snprintf(err, n, "Cannot update %s dynamically: %s", name, unsupported[i].why);
            return -1;
        }
    const kp_config_def_t *td = topic_default_of(name);
    if (td) {
        char inner[400];
        if (kp_topic_config_validate(td->name, value, inner, sizeof(inner)) < 0) {
            snprintf(err, n, "%s (broker property %s)", inner, name);
            return -1;
        }
        return 0;
    }
    const kp_broker_prop_def_t *p = kp_broker_prop_find(name);
    if (!p) {
        snprintf(err, n, "Unknown broker config: %s", name);
        return -1;
    }
    if (!(p->flags & KP_BPROP_DYNAMIC)) {
        if (p->why)
            snprintf(err, n, "Cannot update %s dynamically: %s", name, p->why);
        else
            snprintf(err, n, "Cannot update %s dynamically:" RESTART, name);
        return -1;
    }
    if ((p->flags & KP_BPROP_PER_BROKER) && !per_broker) {
        snprintf(err, n,
                 "%s can only be set per broker (resource name = the broker id), not as a "
                 "cluster-wide default",
                 name);
        return -1;
    }
    int64_t v;
    switch (p->type) {
    case KP_BPROP_LONG:
        if (kp_parse_i64(value, &v) < 0) {
            snprintf(err, n, "Invalid value '%s' for configuration %s: not a number", value, name);
            return -1;
        }
        if (v < p->min || v > p->max) {
            snprintf(err, n, "Invalid value %s for configuration %s: must be in %lld..%lld%s%s",
                     value, name, (long long)p->min, (long long)p->max, p->why ? " (" : "",
                     p->why ? p->why : "");
            if (p->why) strncat(err, ")", n - strlen(err) - 1);
            return -1;
        }
        return 0;
    case KP_BPROP_BOOL:
        if (strcasecmp(value, "true") && strcasecmp(value, "false")) {
            snprintf(err, n, "Invalid value '%s' for configuration %s: must be true or false",
                     value, name);
            return -1;
        }
        return 0;
    case KP_BPROP_FILE:
        if (!*value || access(value, R_OK) < 0) {
            snprintf(err, n, "Invalid value '%s' for configuration %s: cannot read the file: %s",
                     value, name, *value ? strerror(errno) : "empty path");
            return -1;
        }
        return 0;
    case KP_BPROP_PEM:
        if (strcasecmp(value, "PEM") != 0) {
            snprintf(err, n,
                     "Invalid value '%s' for configuration %s: only PEM stores are supported "
                     "(JKS and PKCS12 are not)",
                     value, name);
            return -1;
        }
        return 0;
    case KP_BPROP_STRING:
    case KP_BPROP_PASSWORD:
        return 0;
    }
    return 0;
}

/* ---- persistence ---- */

static json_t *layer_json(const kp_props_t *p)
{
    json_t *o = json_object();
    for (size_t i = 0; i < kp_props_count(p); i++) {
        const char *k, *v;
        kp_props_at(p, i, &k, &v);
        json_object_set_new(o, k, json_string(v));
    }
    return o;
}

static int save(const kp_dynconf_t *d, const kp_props_t *def, const kp_props_t *brk)
{
    json_t *o = json_object();
    json_object_set_new(o, "default", layer_json(def));
    json_object_set_new(o, "broker", layer_json(brk));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (!text) return -1;
    /* 0600: ssl.key.password may be in it */
    int rc = kp_fs_write_atomic(d->path, text, strlen(text));
    free(text);
    return rc;
}

static void load_layer(json_t *o, kp_props_t *out, int per_broker, const char *path)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char err[512];
        const char *s = json_string_value(v);
        if (!s) {
            kp_warn("config", "%s: %s is not a string; ignored", path, k);
        } else if (kp_dynconf_validate(k, s, per_broker, err, sizeof(err)) < 0) {
            kp_warn("config", "%s: ignoring %s: %s", path, k, err);
        } else {
            kp_props_set(out, k, s);
        }
    }
}

kp_dynconf_t *kp_dynconf_open(const char *meta_dir, const kp_props_t *statics, char *err,
                              size_t errlen)
{
    kp_dynconf_t *d = kp_xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", meta_dir, CONFIG_FILE);
    d->path = kp_xstrdup(path);
    d->statics = statics;
    d->dyn_default = kp_props_new();
    d->dyn_broker = kp_props_new();
    uint8_t *data;
    size_t len;
    if (kp_fs_read_all(path, CONFIG_FILE_BYTES, &data, &len) < 0) {
        if (errno == ENOENT) return d;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        kp_dynconf_free(d);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb((const char *)data, len, 0, &jerr);
    free(data);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: not a JSON object (%s, line %d)", path, jerr.text, jerr.line);
        json_decref(o);
        kp_dynconf_free(d);
        return NULL;
    }
    load_layer(json_object_get(o, "default"), d->dyn_default, 0, path);
    load_layer(json_object_get(o, "broker"), d->dyn_broker, 1, path);
    json_decref(o);
    size_t nd = kp_props_count(d->dyn_default), nb = kp_props_count(d->dyn_broker);
    if (nd + nb) kp_info("config", "dynamic broker configs: %zu default, %zu per broker", nd, nb);
    return d;
}

void kp_dynconf_free(kp_dynconf_t *d)
{
    if (!d) return;
    kp_props_free(d->dyn_default);
    kp_props_free(d->dyn_broker);
    pthread_mutex_destroy(&d->lock);
    free(d->path);
    free(d);
}

/* ---- alteration ---- */

/* The value APPEND/SUBTRACT start from: this layer's, else what the layers below give. */
static const char *list_base(kp_dynconf_t *d, int per_broker, const kp_props_t *layer,
                             const char *key)
{
    const char *v = kp_props_get(layer, key);
    if (!v && per_broker) v = kp_props_get(d->dyn_default, key);
    if (!v) v = kp_props_get(d->statics, key);
    if (!v) {
        const kp_config_def_t *td = topic_default_of(key);
        v = td ? td->default_value : "";
    }
    return v;
}

int16_t kp_dynconf_alter(kp_broker_t *b, int per_broker, const char **keys, const char **values,
                         const int8_t *ops, int n, int validate_only, char *err, size_t errlen)
{
    kp_dynconf_t *d = b->dynconf;
    pthread_mutex_lock(&d->lock);
    kp_props_t *cur = per_broker ? d->dyn_broker : d->dyn_default;
    kp_props_t *next = ops ? props_dup(cur) : kp_props_new(); /* AlterConfigs replaces */
    int touched[HOOK_COUNT] = {0};
    int16_t rc = 0;
    /* a key AlterConfigs drops from the layer changes too */
    for (size_t i = 0; !ops && i < kp_props_count(cur); i++) {
        const char *k, *v;
        kp_props_at(cur, i, &k, &v);
        touched[hook_of(k)] = 1;
    }
    for (int i = 0; i < n && !rc; i++) {
        int8_t op = ops ? ops[i] : 0;
        if (!keys[i]) {
            snprintf(err, errlen, "Null config name");
            rc = KERR_INVALID_CONFIG;
            break;
        }
        if (op != 1 && !values[i]) {
            snprintf(err, errlen, "Null value for configuration %s", keys[i]);
            rc = KERR_INVALID_CONFIG;
            break;
        }
        /* DELETE needs a dynamic name too, so a typo is not silently "deleted" (validate
         * then explains what is wrong with the name) */
        if (op == 1 ? !kp_dynconf_is_dynamic(keys[i]) &&
                          kp_dynconf_validate(keys[i], "", per_broker, err, errlen) < 0
                    : kp_dynconf_validate(keys[i], values[i], per_broker, err, errlen) < 0) {
            rc = KERR_INVALID_CONFIG;
            break;
        }
        const kp_config_def_t *td = topic_default_of(keys[i]);
        int is_list = td && td->type == KP_CT_LIST;
        if (kp_config_op_apply(next, keys[i], is_list, op, values[i],
                               list_base(d, per_broker, cur, keys[i]), err, errlen) < 0) {
            rc = KERR_INVALID_CONFIG;
            break;
        }
        touched[hook_of(keys[i])] = 1;
    }
    /* the result of APPEND/SUBTRACT must itself be valid (keys not in the request are
     * left alone: a key file removed since it was set must not block other changes) */
    for (int i = 0; !rc && ops && i < n; i++) {
        const char *v = kp_props_get(next, keys[i]);
        if ((ops[i] == 2 || ops[i] == 3) && v &&
            kp_dynconf_validate(keys[i], v, per_broker, err, errlen) < 0)
            rc = KERR_INVALID_CONFIG;
    }
    kp_props_t *eff = NULL;
    void *state[HOOK_COUNT] = {0};
    int prepared[HOOK_COUNT] = {0};
    if (!rc) {
        eff = per_broker ? effective_of(d->statics, d->dyn_default, next)
                         : effective_of(d->statics, next, d->dyn_broker);
        for (int h = 1; h < HOOK_COUNT && !rc; h++) {
            if (!touched[h] || !hooks[h].prepare) continue;
            if (hooks[h].prepare(b, eff, &state[h], err, errlen) < 0)
                rc = KERR_INVALID_CONFIG;
            else
                prepared[h] = 1;
        }
    }
    if (!rc && !validate_only) {
        if (save(d, per_broker ? d->dyn_default : next, per_broker ? next : d->dyn_broker) < 0) {
            snprintf(err, errlen, "Could not store the dynamic broker configs: %s",
                     strerror(errno));
            rc = KERR_KAFKA_STORAGE_ERROR;
        } else {
            if (per_broker)
                d->dyn_broker = next;
            else
                d->dyn_default = next;
            next = cur;
            for (int h = 1; h < HOOK_COUNT; h++) {
                if (!touched[h] || !hooks[h].apply) continue;
                hooks[h].apply(b, eff, state[h]);
                prepared[h] = 0; /* the hook owns its state now */
            }
            /* names only: a value may be a password */
            char names[400] = "";
            for (int i = 0; i < n; i++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? "," : "",
                         keys[i]);
            kp_info("config", "altered dynamic broker configs (%s): %s",
                    per_broker ? "this broker" : "cluster-wide default", n ? names : "(none)");
        }
    }
    for (int h = 1; h < HOOK_COUNT; h++)
        if (prepared[h] && hooks[h].discard) hooks[h].discard(state[h]);
    pthread_mutex_unlock(&d->lock);
    kp_props_free(next);
    kp_props_free(eff);
    return rc;
}

void kp_dynconf_apply_all(kp_broker_t *b)
{
    kp_props_t *eff = kp_dynconf_effective(b->dynconf);
    pthread_mutex_lock(&b->dynconf->lock);
    for (int h = 1; h < HOOK_COUNT; h++)
        if (!hooks[h].prepare && hooks[h].apply) hooks[h].apply(b, eff, NULL);
    pthread_mutex_unlock(&b->dynconf->lock);
    kp_props_free(eff);
}
