/*
 * server.c — broker lifecycle: configuration, storage, loops and listeners, accept, the
 * cluster id (meta/cluster.json), and orderly shutdown on SIGINT/SIGTERM. The producer-id
 * allocator is producer_id.c.
 *
 * Shutdown order: stop accepting and stop the loops (no new requests), stop the flusher
 * (drains pending fsyncs), close topics (fsync each active segment), free.
 */
#include "broker/broker.h"

#include "broker/loop_ctx.h"
#include "broker/topic_config.h"
#include "broker/request.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/crc32c.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "auth/acl.h"
#include "auth/principal.h"
#include "broker/dynamic_config.h"
#include "broker/log_manager.h"
#include "broker/replicated_pool.h"
#include "cluster/member.h"
#include "group/coordinator.h"
#include "net/conn.h"
#include "net/conn_limits.h"
#include "net/conn_watch.h"
#include "txn/txn_coordinator.h"
#include "net/tls.h"
#include "core/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- configuration ---- */

/* Bounded copy (snprintf would trip -Wrestrict on fields of the same struct). */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n) l = n - 1;
    memmove(dst, src, l);
    dst[l] = 0;
}

static int parse_listener(const char *s, kp_listener_cfg_t *l, char *err, size_t errlen)
{
    const char *sep = strstr(s, "://");
    if (!sep || (size_t)(sep - s) >= sizeof(l->name)) {
        snprintf(err, errlen, "listeners: '%s' is not NAME://host:port", s);
        return -1;
    }
    memcpy(l->name, s, (size_t)(sep - s));
    l->name[sep - s] = 0;
    if (kp_parse_hostport(sep + 3, l->host, sizeof(l->host), &l->port) < 0) {
        snprintf(err, errlen, "listeners: '%s' is not NAME://host:port", s);
        return -1;
    }
    return 0;
}

static int parse_listener_list(const char *list, kp_listener_cfg_t *out, int *n, char *err,
                               size_t errlen)
{
    char *copy = kp_xstrdup(list), *save = NULL;
    *n = 0;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        if (*n == KP_LISTENERS_MAX) {
            snprintf(err, errlen, "listeners: at most %d", KP_LISTENERS_MAX);
            rc = -1;
            break;
        }
        if (parse_listener(tok, &out[*n], err, errlen) < 0) {
            rc = -1;
            break;
        }
        (*n)++;
    }
    free(copy);
    return rc;
}

/* listener.security.protocol.map: NAME:PROTOCOL,... (defaults: PLAINTEXT and SSL map to
 * themselves). */
static int listener_security(const kp_props_t *p, const char *name, char *out, size_t n)
{
    const char *map = kp_props_get(p, "listener.security.protocol.map");
    if (map) {
        const char *s = map;
        size_t nl = strlen(name);
        while (*s) {
            while (*s == ' ' || *s == ',') s++;
            if (!strncmp(s, name, nl) && s[nl] == ':') {
                const char *v = s + nl + 1, *e = v;
                while (*e && *e != ',') e++;
                snprintf(out, n, "%.*s", (int)(e - v), v);
                return 0;
            }
            while (*s && *s != ',') s++;
        }
    }
    if (!strcmp(name, "PLAINTEXT") || !strcmp(name, "SSL")) {
        copy_str(out, n, name);
        return 0;
    }
    return -1;
}

/* metadata.etcd.*, broker.rack, broker.session.timeout.ms (SPEC §11). */
static int cluster_config_load(kp_broker_config_t *cfg, kp_props_t *props, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        size_t off, size;
    } strs[] = {
        {"metadata.etcd.endpoints", offsetof(kp_broker_config_t, etcd_endpoints),
         sizeof(cfg->etcd_endpoints)},
        {"metadata.etcd.prefix", offsetof(kp_broker_config_t, etcd_prefix),
         sizeof(cfg->etcd_prefix)},
        {"broker.rack", offsetof(kp_broker_config_t, rack), sizeof(cfg->rack)},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *v = kp_props_get_str(props, strs[i].key, "");
        if (strlen(v) >= strs[i].size) {
            snprintf(err, errlen, "%s: longer than %zu characters", strs[i].key, strs[i].size - 1);
            return -1;
        }
        memcpy((char *)cfg + strs[i].off, v, strlen(v) + 1);
    }
    if (!cfg->etcd_prefix[0])
        copy_str(cfg->etcd_prefix, sizeof(cfg->etcd_prefix), "/kpool/default");
    if (cfg->etcd_prefix[0] != '/') {
        snprintf(err, errlen, "metadata.etcd.prefix: '%s' must start with '/'", cfg->etcd_prefix);
        return -1;
    }
    int64_t v;
    if (kp_props_get_i64(props, "broker.session.timeout.ms", 3000, 2000, 300000, &v, err, errlen) <
        0)
        return -1;
    cfg->session_timeout_ms = (int)v;
    return 0;
}

int kp_broker_config_load(kp_broker_config_t *cfg, kp_props_t *props, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->props = props;
    int64_t v;
    const char *id = kp_props_get(props, "node.id") ? "node.id" : "broker.id";
    if (kp_props_get_i64(props, id, 1, 0, INT32_MAX, &v, err, errlen) < 0) return -1;
    cfg->node_id = (int32_t)v;
    const char *dirs =
        kp_props_get_str(props, "log.dirs", kp_props_get_str(props, "log.dir", "./kpool-data"));
    const char *comma = strchr(dirs, ',');
    size_t dl = comma ? (size_t)(comma - dirs) : strlen(dirs);
    if (dl == 0 || dl >= sizeof(cfg->log_dir)) {
        snprintf(err, errlen, "log.dirs: invalid value '%s'", dirs);
        return -1;
    }
    memcpy(cfg->log_dir, dirs, dl);
    if (comma) kp_warn("config", "log.dirs: several directories given; kpool uses the first");

    const char *ls = kp_props_get_str(props, "listeners", "PLAINTEXT://127.0.0.1:9092");
    if (parse_listener_list(ls, cfg->listeners, &cfg->nlisteners, err, errlen) < 0) return -1;
    if (cfg->nlisteners == 0) {
        snprintf(err, errlen, "listeners: no listener given");
        return -1;
    }
    for (int i = 0; i < cfg->nlisteners; i++) {
        kp_listener_cfg_t *l = &cfg->listeners[i];
        if (listener_security(props, l->name, l->security, sizeof(l->security)) < 0) {
            snprintf(err, errlen,
                     "listeners: no security protocol for listener %s (set "
                     "listener.security.protocol.map)",
                     l->name);
            return -1;
        }
        if (strcmp(l->security, "PLAINTEXT") != 0 && strcmp(l->security, "SSL") != 0) {
            snprintf(err, errlen,
                     "listeners: security protocol %s of %s is not supported "
                     "(PLAINTEXT or SSL)",
                     l->security, l->name);
            return -1;
        }
        copy_str(l->adv_host, sizeof(l->adv_host), l->host);
        if (!l->host[0] || !strcmp(l->host, "0.0.0.0") || !strcmp(l->host, "::"))
            gethostname(l->adv_host, sizeof(l->adv_host) - 1);
        l->adv_port = l->port;
    }
    const char *adv = kp_props_get(props, "advertised.listeners");
    if (adv) {
        kp_listener_cfg_t a[KP_LISTENERS_MAX];
        int na;
        if (parse_listener_list(adv, a, &na, err, errlen) < 0) return -1;
        for (int j = 0; j < na; j++) {
            int found = 0;
            for (int i = 0; i < cfg->nlisteners; i++) {
                if (strcmp(cfg->listeners[i].name, a[j].name) != 0) continue;
                copy_str(cfg->listeners[i].adv_host, sizeof(cfg->listeners[i].adv_host), a[j].host);
                cfg->listeners[i].adv_port = a[j].port;
                found = 1;
            }
            if (!found) {
                snprintf(err, errlen, "advertised.listeners: %s is not in listeners", a[j].name);
                return -1;
            }
        }
    }
    if (kp_props_get_i64(props, "num.partitions", 1, 1, KP_TOPIC_PARTITIONS_MAX, &v, err, errlen) <
        0)
        return -1;
    cfg->num_partitions = (int32_t)v;
    /* more than one replica needs a replicated pool (metadata.etcd.endpoints) */
    int pool = kp_props_get(props, "metadata.etcd.endpoints") != NULL;
    if (kp_props_get_i64(props, "default.replication.factor", 1, 1, pool ? KP_REPLICAS_MAX : 1, &v,
                         err, errlen) < 0)
        return -1;
    /* 0 in a pool without the setting: min(3, live brokers) when a topic is created */
    cfg->default_replication_factor =
        (int16_t)(pool && !kp_props_get(props, "default.replication.factor") ? 0 : v);
    if (kp_props_get_bool(props, "auto.create.topics.enable", 0, &cfg->auto_create_topics, err,
                          errlen) < 0)
        return -1;
    if (kp_props_get_i64(props, "socket.request.max.bytes", KP_REQUEST_BYTES_MAX_DEFAULT, 1024,
                         INT32_MAX, &cfg->socket_request_max_bytes, err, errlen) < 0)
        return -1;
    if (kp_props_get_i64(props, "max.connections", KP_CONNECTIONS_MAX_DEFAULT, 1, INT32_MAX,
                         &cfg->max_connections, err, errlen) < 0)
        return -1;
    if (kp_props_get_i64(props, "max.connections.per.ip", INT32_MAX, 0, INT32_MAX,
                         &cfg->max_connections_per_ip, err, errlen) < 0)
        return -1;
    cfg->max_connections_per_ip_overrides = kp_props_get(props, "max.connections.per.ip.overrides");
    if (kp_props_get_i64(props, "connections.max.idle.ms", KP_CONN_IDLE_MS_DEFAULT, -1, INT64_MAX,
                         &cfg->connections_max_idle_ms, err, errlen) < 0)
        return -1;
    if (kp_props_get_i64(props, "connections.setup.timeout.ms", KP_CONN_SETUP_MS_DEFAULT, -1,
                         INT64_MAX, &cfg->connections_setup_timeout_ms, err, errlen) < 0)
        return -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (kp_props_get_i64(props, "num.network.threads", ncpu > 0 ? ncpu : 2, 1, KP_LOOPS_MAX, &v,
                         err, errlen) < 0)
        return -1;
    cfg->num_network_threads = (int)v;
    if (kp_props_get_i64(props, "log.flush.threads", 2, 1, 64, &v, err, errlen) < 0) return -1;
    cfg->num_flush_threads = (int)v;
    snprintf(cfg->admin_listener, sizeof(cfg->admin_listener), "%s",
             kp_props_get_str(props, "admin.listener", "127.0.0.1:9600"));
    if (cluster_config_load(cfg, props, err, errlen) < 0) return -1;

    /* Kafka's coarser synonyms: log.retention.ms > .minutes > .hours, log.roll.ms > .hours */
    static const struct {
        const char *ms, *coarse;
        int64_t factor;
    } syn[] = {{"log.retention.ms", "log.retention.minutes", 60000},
               {"log.retention.ms", "log.retention.hours", 3600000},
               {"log.roll.ms", "log.roll.hours", 3600000}};
    for (size_t i = 0; i < sizeof(syn) / sizeof(syn[0]); i++) {
        const char *cv = kp_props_get(props, syn[i].coarse);
        if (!cv || kp_props_get(props, syn[i].ms)) continue;
        int64_t x;
        if (kp_parse_i64(cv, &x) < 0) {
            snprintf(err, errlen, "%s: '%s' is not an integer", syn[i].coarse, cv);
            return -1;
        }
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)(x < 0 ? -1 : x * syn[i].factor));
        kp_props_set(props, syn[i].ms, buf);
    }

    /* broker-level defaults of topic configs must be valid topic config values */
    for (size_t i = 0; i < kp_topic_config_defs_count; i++) {
        const kp_config_def_t *d = &kp_topic_config_defs[i];
        const char *val = d->broker_name ? kp_props_get(props, d->broker_name) : NULL;
        if (val && kp_topic_config_validate(d->name, val, err, errlen) < 0) {
            char inner[512];
            snprintf(inner, sizeof(inner), "%s (broker property %s)", err, d->broker_name);
            snprintf(err, errlen, "%s", inner);
            return -1;
        }
    }
    return 0;
}

/* ---- cluster id and producer ids ---- */

/* 0, or 1 when the data directory had no cluster id (a fresh one was drawn); -1 on error. */
static int load_cluster_id(kp_broker_t *b, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/meta/cluster.json", b->cfg.log_dir);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (o) {
        const char *id = json_string_value(json_object_get(o, "cluster_id"));
        snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", id ? id : "");
        json_int_t blk = json_integer_value(json_object_get(o, "producer_id_block_end"));
        b->pid_next = b->pid_block_end = blk;
        json_decref(o);
        if (b->cluster_id[0]) return 0;
    }
    /* first start: a random, base64url cluster id like Kafka's */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t rnd[22];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        snprintf(err, errlen, "getrandom failed");
        return -1;
    }
    for (int i = 0; i < 22; i++) b->cluster_id[i] = alphabet[rnd[i] & 63];
    b->cluster_id[22] = 0;
    return 1;
}

/* A replicated pool: binds to the store's cluster (refusing another cluster's metadata)
 * before this data directory's cluster id is written. */
static int cluster_open(kp_broker_t *b, int fresh, char *err, size_t errlen)
{
    const kp_broker_config_t *cfg = &b->cfg;
    kp_member_config_t mc = {
        .endpoints = cfg->etcd_endpoints,
        .prefix = cfg->etcd_prefix,
        .broker_id = cfg->node_id,
        .rack = cfg->rack[0] ? cfg->rack : NULL,
        .session_timeout_ms = cfg->session_timeout_ms,
        .request_timeout_ms = 5000,
    };
    char id[KP_META_CLUSTER_ID_MAX + 1], e[1024];
    b->member = kp_member_open(&mc, fresh ? "" : b->cluster_id, b->cluster_id, id, sizeof(id), e,
                               sizeof(e));
    if (!b->member) {
        snprintf(err, errlen, "metadata.etcd.endpoints %s: %s", cfg->etcd_endpoints, e);
        return -1;
    }
    if (strlen(id) >= sizeof(b->cluster_id)) {
        snprintf(err, errlen, "the pool's cluster id '%s' is too long", id);
        return -1;
    }
    copy_str(b->cluster_id, sizeof(b->cluster_id), id);
    return 0;
}

/* Registers this broker with its advertised listeners (after they are bound). */
static int cluster_register(kp_broker_t *b, char *err, size_t errlen)
{
    kp_meta_endpoint_t eps[KP_LISTENERS_MAX];
    kp_meta_broker_t self = {.id = b->cfg.node_id,
                             .rack = b->cfg.rack[0] ? b->cfg.rack : NULL,
                             .endpoints = eps,
                             .nendpoints = b->cfg.nlisteners};
    for (int i = 0; i < b->cfg.nlisteners; i++) {
        kp_listener_cfg_t *l = &b->cfg.listeners[i];
        eps[i] = (kp_meta_endpoint_t){l->name, l->adv_host, l->adv_port, l->security};
    }
    return kp_member_start(b->member, &self, err, errlen);
}

int kp_broker_save_meta(kp_broker_t *b, int64_t block_end)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/meta/cluster.json", b->cfg.log_dir);
    json_t *o = json_object();
    json_object_set_new(o, "cluster_id", json_string(b->cluster_id));
    json_object_set_new(o, "node_id", json_integer(b->cfg.node_id));
    json_object_set_new(o, "producer_id_block_end", json_integer(block_end));
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    int rc = kp_fs_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* ---- accept ---- */

typedef struct accept_arg {
    kp_broker_t *broker;
    const kp_listener_cfg_t *listener;
} accept_arg_t;

static accept_arg_t accept_args[KP_LISTENERS_MAX];

static kp_conn_t *on_accept(kp_loop_t *loop, int fd, const char *ip, int port, void *arg)
{
    accept_arg_t *a = arg;
    const kp_transport_t *tp = &kp_transport_tcp;
    void *tp_state = NULL;
    if (!strcmp(a->listener->security, "SSL")) {
        tp = &kp_transport_tls;
        pthread_rwlock_rdlock(&a->broker->tls_lock);
        tp_state = kp_tls_conn_new(a->broker->tls_ctx, fd); /* the session refs the context */
        pthread_rwlock_unlock(&a->broker->tls_lock);
        if (!tp_state) {
            kp_warn("tls", "cannot create a TLS session for %s:%d", ip, port);
            close(fd);
            return NULL;
        }
    }
    kp_session_t *s = kp_session_new(a->broker, loop, a->listener);
    kp_conn_t *c = kp_conn_new(loop, fd, tp, tp_state, &kp_session_ops, s,
                               (size_t)a->broker->cfg.socket_request_max_bytes);
    if (!c) {
        kp_session_discard(s);
        return NULL;
    }
    s->conn = c;
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", ip);
    kp_conn_watch_add(a->broker->conn_watch[kp_loop_id(loop)], c);
    return c;
}

/* ---- security ---- */

int kp_broker_tls_build(kp_broker_t *b, const kp_props_t *p, struct kp_tls_ctx **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    int need_tls = 0;
    for (int i = 0; i < b->cfg.nlisteners; i++)
        need_tls |= !strcmp(b->cfg.listeners[i].security, "SSL");
    if (!need_tls) return 0;
    kp_tls_config_t tc = {
        .ca_path = kp_props_get(p, "ssl.ca.location"),
        .cert_path = kp_props_get(p, "ssl.certificate.location"),
        .key_path = kp_props_get(p, "ssl.key.location"),
        .key_password = kp_props_get(p, "ssl.key.password"),
    };
    /* Kafka's PEM stores (ssl.keystore.type=PEM): one file holding the key and the chain,
     * and a truststore of CA certificates; when given they take the place of the above */
    static const char *const types[] = {"ssl.keystore.type", "ssl.truststore.type"};
    for (size_t i = 0; i < 2; i++) {
        const char *t = kp_props_get(p, types[i]);
        if (t && strcasecmp(t, "PEM") != 0) {
            snprintf(err, errlen, "%s: '%s' is not supported: the TLS listener reads PEM stores",
                     types[i], t);
            return -1;
        }
    }
    const char *keystore = kp_props_get(p, "ssl.keystore.location");
    if (keystore) tc.cert_path = tc.key_path = keystore;
    const char *truststore = kp_props_get(p, "ssl.truststore.location");
    if (truststore) tc.ca_path = truststore;
    if (kp_tls_client_auth_parse(kp_props_get(p, "ssl.client.auth"), &tc.client_auth) < 0) {
        snprintf(err, errlen, "ssl.client.auth: '%s' is not required, requested or none",
                 kp_props_get(p, "ssl.client.auth"));
        return -1;
    }
    *out = kp_tls_server_ctx_new(&tc, err, errlen);
    return *out ? 0 : -1;
}

void kp_broker_tls_swap(kp_broker_t *b, struct kp_tls_ctx *ctx)
{
    pthread_rwlock_wrlock(&b->tls_lock);
    kp_tls_ctx_t *old = b->tls_ctx;
    b->tls_ctx = ctx;
    pthread_rwlock_unlock(&b->tls_lock);
    kp_tls_ctx_free(old); /* open sessions hold their own reference to the SSL_CTX */
    kp_info("tls", "reloaded the TLS certificate and key for new connections");
}

/* p: the effective broker properties (static + dynamic). */
static int setup_security(kp_broker_t *b, const kp_props_t *p, char *err, size_t errlen)
{
    if (kp_broker_tls_build(b, p, &b->tls_ctx, err, errlen) < 0) return -1;
    b->principal_rules =
        kp_principal_rules_parse(kp_props_get(p, "ssl.principal.mapping.rules"), err, errlen);
    if (!b->principal_rules) return -1;
    char meta[PATH_MAX];
    snprintf(meta, sizeof(meta), "%s/meta", b->cfg.log_dir);
    b->authorizer = kp_authorizer_open(p, b->cfg.authorizer_enabled_default, meta, err, errlen);
    return b->authorizer ? 0 : -1;
}

/* ---- lifecycle ---- */

static void metrics_gauges(kp_buf_t *out, void *arg)
{
    kp_broker_t *b = arg;
    int64_t partitions = 0;
    int topics = kp_topics_count(b->topics, &partitions);
    /* which broker this page is (a pool's brokers are scraped one by one: pool_metrics.c) */
    kp_buf_appendf(out,
                   "# HELP kpool_broker_info This broker: its node id and cluster id.\n"
                   "# TYPE kpool_broker_info gauge\n"
                   "kpool_broker_info{node_id=\"%d\",cluster_id=\"%s\"} 1\n",
                   (int)b->cfg.node_id, b->cluster_id);
    kp_buf_appendf(out,
                   "# HELP kpool_topics Topics in this pool.\n# TYPE kpool_topics gauge\n"
                   "kpool_topics %d\n",
                   topics);
    kp_buf_appendf(out,
                   "# HELP kpool_partitions Partitions led by this broker.\n"
                   "# TYPE kpool_partitions gauge\nkpool_partitions %" PRId64 "\n",
                   partitions);
    kp_broker_render_log_dirs(out, b); /* handle_log_dirs.c */
    kp_coordinator_render_lag(b->coordinator, out);
    if (b->pool) kp_rpool_metrics(b->pool, out);
}

/* The transaction coordinator's markers for partitions other brokers lead. */
static int16_t send_marker(void *pool, int32_t leader, int64_t producer_id, int16_t epoch,
                           int commit, const char *topic, int32_t partition)
{
    return kp_rpool_write_marker(pool, leader, producer_id, epoch, commit, topic, partition);
}

/* storage/log.h's failure hook: a log's I/O failed (not a full disk) */
static void on_log_failure(const char *dir, int err, void *arg)
{
    kp_broker_log_dir_failed(arg, err, dir);
}

/* The transaction coordinator's producer ids (kp_txn_env_t). */
static int64_t next_producer_id(void *arg)
{
    return kp_broker_next_producer_id(arg);
}

kp_broker_t *kp_broker_new(kp_broker_config_t *cfg, char *err, size_t errlen)
{
    kp_crc32c_hw(); /* picks the CRC implementation before any thread uses it */
    kp_broker_t *b = kp_xcalloc(1, sizeof(*b));
    b->cfg = *cfg;
    pthread_mutex_init(&b->pid_lock, NULL);
    pthread_rwlock_init(&b->tls_lock, NULL);
    kp_props_t *eff = NULL; /* effective broker properties: static + dynamic */
    kp_connections_set_max(cfg->max_connections);
    if (kp_connections_set_per_ip(cfg->max_connections_per_ip,
                                  cfg->max_connections_per_ip_overrides, err, errlen) < 0)
        goto fail;
    atomic_store(&kp_net_limits.idle_ms, cfg->connections_max_idle_ms);
    atomic_store(&kp_net_limits.setup_ms, cfg->connections_setup_timeout_ms);
    if (kp_fs_mkdirs(cfg->log_dir, KP_FS_DIR_MODE) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", cfg->log_dir, strerror(errno));
        goto fail;
    }
    /* A data directory made by an older kpool (0755 directories, 0644 files) becomes
     * private at its root: that alone shuts other accounts out of everything beneath it, and
     * costs one chmod however many topics there are. New files and directories are created
     * private (KP_FS_DIR_MODE, KP_FS_FILE_MODE). */
    int tightened = kp_fs_dir_make_private(cfg->log_dir);
    if (tightened < 0)
        kp_warn("broker", "cannot make %s private: %s", cfg->log_dir, strerror(errno));
    else if (tightened > 0)
        kp_info("broker", "%s was readable by other users: now mode 0700", cfg->log_dir);
    struct stat dst;
    if (stat(cfg->log_dir, &dst) == 0) {
        b->log_dir_dev = (unsigned long long)dst.st_dev;
        b->log_dir_ino = (unsigned long long)dst.st_ino;
    }
    if (kp_fs_faults_from_env())
        kp_warn("broker", "KPOOL_FS_FAULTS is set: file-system faults are injected (tests only)");
    char meta[PATH_MAX];
    snprintf(meta, sizeof(meta), "%s/meta", cfg->log_dir);
    kp_fs_mkdirs(meta, KP_FS_DIR_MODE);
    int fresh = load_cluster_id(b, err, errlen);
    if (fresh < 0) goto fail;
    if (cfg->etcd_endpoints[0] && cluster_open(b, fresh, err, errlen) < 0) goto fail;
    if (kp_broker_save_meta(b, b->pid_block_end) < 0) {
        snprintf(err, errlen, "cannot write %s/cluster.json: %s", meta, strerror(errno));
        goto fail;
    }
    b->dynconf = kp_dynconf_open(meta, cfg->props, err, errlen);
    if (!b->dynconf) goto fail;
    eff = kp_dynconf_effective(b->dynconf);
    if (kp_flusher_start(cfg->num_flush_threads) < 0) {
        snprintf(err, errlen, "cannot start flusher threads");
        goto fail;
    }
    int64_t t0 = kp_mono_ms();
    b->topics = kp_topics_open(cfg->log_dir, eff, err, errlen);
    if (!b->topics) goto fail;
    int64_t partitions;
    int ntopics = kp_topics_count(b->topics, &partitions);
    kp_info("broker", "loaded %d topics (%" PRId64 " partitions) from %s in %" PRId64 " ms",
            ntopics, partitions, cfg->log_dir, kp_mono_ms() - t0);

    if (setup_security(b, eff, err, errlen) < 0) goto fail;
    kp_coord_config_t ccfg;
    if (kp_coord_config_load(&ccfg, cfg->props, err, errlen) < 0) goto fail;
    kp_partition_dir_t dir = kp_topics_dir(b->topics);
    b->coordinator =
        kp_coordinator_start(&dir, b->cfg.log_dir, b->member != NULL, &ccfg, err, errlen);
    if (!b->coordinator) goto fail;
    kp_txn_config_t tcfg; /* after the group coordinator: in-doubt commits apply offsets */
    if (kp_txn_config_load(&tcfg, cfg->props, err, errlen) < 0) goto fail;
    kp_txn_env_t tenv = {.dir = dir,
                         .next_producer_id = next_producer_id,
                         .next_producer_id_arg = b,
                         .groups = b->coordinator,
                         .pool = b->member != NULL};
    b->txn_coordinator = kp_txn_coord_start(&tenv, &tcfg, err, errlen);
    if (!b->txn_coordinator) goto fail;
    kp_api_table(&ntopics); /* builds the dispatch table before threads read it */
    b->log_manager = kp_log_manager_start(b, eff, err, errlen);
    if (!b->log_manager) goto fail;
    kp_dynconf_apply_all(b); /* max.connections, log.flush.threads */

    b->nloops = cfg->num_network_threads;
    for (int i = 0; i < b->nloops; i++) {
        b->loops[i] = kp_loop_new(i);
        b->loop_ctx[i] = kp_loop_ctx_new(b, b->loops[i]);
        b->conn_watch[i] = kp_conn_watch_new(b->loops[i]);
    }
    if (b->member) {
        b->pool = kp_rpool_new(b, err, errlen);
        if (!b->pool) goto fail;
        kp_partition_set_failure_hook(on_log_failure, b);
        kp_txn_coord_set_marker_sender(b->txn_coordinator, send_marker, b->pool);
        kp_topics_set_partition_hook(b->topics, kp_rpool_partition_hook, b);
    } else {
        kp_topics_set_partition_hook(b->topics, kp_fetch_wait_partition_hook, b);
        kp_partition_set_failure_hook(on_log_failure, b);
    }
    for (int i = 0; i < cfg->nlisteners; i++) {
        accept_args[i].broker = b;
        accept_args[i].listener = &b->cfg.listeners[i];
        b->listeners[i] = kp_listener_new(cfg->listeners[i].host, cfg->listeners[i].port, b->loops,
                                          b->nloops, on_accept, &accept_args[i], err, errlen);
        if (!b->listeners[i]) goto fail;
        b->bound_ports[i] = kp_listener_port(b->listeners[i]);
        if (b->cfg.listeners[i].adv_port == 0) b->cfg.listeners[i].adv_port = b->bound_ports[i];
    }
    kp_metrics_set_gauges(metrics_gauges, b);
    kp_props_free(eff);
    return b;
fail:
    kp_props_free(eff);
    kp_broker_free(b);
    return NULL;
}

/* How long kp_broker_start waits for a pool broker's first read of the pool's state (etcd
 * answered its registration: normally well under a second) before it returns with the
 * listeners still closed. */
#define POOL_SYNC_WAIT_MS 15000

static void *loop_main(void *arg)
{
    kp_loop_run(arg);
    return NULL;
}

/* Loop thread (a task kp_broker_stop posts; kp_broker_free calls it after the loops are
 * gone): answers the loop's parked fetches, closes its sessions, then stops the loop. Here
 * and not in loop_ctx.c, which only holds the lists: the sessions are request.c's. */
static void loop_shutdown(kp_loop_t *loop, void *arg)
{
    kp_loop_ctx_t *ctx = arg;
    kp_fetch_wait_flush_all(ctx);
    while (ctx->sessions) kp_conn_close(ctx->sessions->conn, "broker shutting down");
    kp_loop_stop(loop);
}

void kp_broker_listen(kp_broker_t *b)
{
    if (atomic_exchange(&b->listening, 1)) return;
    for (int i = 0; i < b->cfg.nlisteners; i++) {
        const kp_listener_cfg_t *l = &b->cfg.listeners[i];
        char err[256];
        if (kp_listener_start(b->listeners[i], err, sizeof(err)) < 0) {
            kp_error("broker", "listener %s: %s", l->name, err);
            continue;
        }
        kp_info("broker", "listening on %s://%s:%d (advertised %s:%d)", l->name, l->host,
                b->bound_ports[i], l->adv_host, l->adv_port);
    }
}

int kp_broker_start(kp_broker_t *b)
{
    if (b->member) {
        char err[1024];
        if (cluster_register(b, err, sizeof(err)) < 0 ||
            kp_rpool_start(b->pool, err, sizeof(err))) {
            kp_error("broker", "cannot join the pool: %s", err);
            return -1;
        }
        /* The Kafka listeners open once the pool's state is read here (the pool's thread
         * calls kp_broker_listen): before, all-topics Metadata would leave the pool's
         * topics out and named ones would be unknown, and clients believe that (kcat -L,
         * regex subscriptions; librdkafka fails the records it holds for an unknown topic).
         * A connection is refused meanwhile, as by a stopped broker, and clients use the
         * other brokers — as a KRaft broker is not served until it caught up. */
        if (kp_rpool_wait_synced(b->pool, POOL_SYNC_WAIT_MS) < 0)
            kp_warn("broker",
                    "the pool's state is not read yet after %d s: the Kafka listeners open once "
                    "it is (connections are refused until then)",
                    POOL_SYNC_WAIT_MS / 1000);
    }
    for (int i = 0; i < b->nloops; i++) {
        if (pthread_create(&b->threads[i], NULL, loop_main, b->loops[i]) != 0) return -1;
    }
    if (b->pool) {
        kp_rpool_serving(b->pool); /* ready once caught up */
    } else {
        kp_broker_listen(b);
        atomic_store(&b->ready, 1);
    }
    kp_info("broker", "ready: node %d, cluster %s, %d network threads, data in %s", b->cfg.node_id,
            b->cluster_id, b->nloops, b->cfg.log_dir);
    return 0;
}

void kp_broker_stop(kp_broker_t *b)
{
    if (atomic_exchange(&b->stopping, 1)) return;
    atomic_store(&b->ready, 0);
    /* a pool member hands its leaderships over, then leaves: clients move elsewhere while
     * this broker still answers them (NOT_LEADER_OR_FOLLOWER) */
    kp_rpool_shutdown(b->pool);
    kp_member_stop(b->member);
    for (int i = 0; i < b->nloops; i++) {
        if (b->threads[i])
            kp_loop_post(b->loops[i], loop_shutdown, b->loop_ctx[i]);
        else
            kp_loop_stop(b->loops[i]);
    }
    for (int i = 0; i < b->nloops; i++)
        if (b->threads[i]) pthread_join(b->threads[i], NULL);
}

void kp_broker_run_until_signal(kp_broker_t *b)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    kp_info("broker", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kp_broker_stop(b);
}

void kp_broker_free(kp_broker_t *b)
{
    if (!b) return;
    kp_broker_stop(b);
    /* a connection accepted after its loop's shutdown task ran is still open: close it here,
     * on this thread, now that the loop threads are gone */
    for (int i = 0; i < b->nloops; i++)
        if (b->loop_ctx[i]) loop_shutdown(b->loops[i], b->loop_ctx[i]);
    for (int i = 0; i < KP_LISTENERS_MAX; i++) kp_listener_free(b->listeners[i]);
    /* before the flusher stops: the coordinators wait for their writes' fsyncs; the
     * transaction coordinator first, as it calls into the group coordinator */
    kp_txn_coord_stop(b->txn_coordinator);
    kp_coordinator_stop(b->coordinator);
    kp_log_manager_stop(b->log_manager);
    kp_flusher_stop();
    kp_rpool_free(b->pool);
    kp_partition_set_failure_hook(NULL, NULL);
    kp_topics_close(b->topics);
    kp_authorizer_free(b->authorizer);
    kp_principal_rules_free(b->principal_rules);
    kp_tls_ctx_free(b->tls_ctx);
    kp_dynconf_free(b->dynconf);
    kp_member_free(b->member);
    /* completions posted after the loops exited (flush waiters failed by the close above)
     * still own requests and connections: run them here */
    for (int i = 0; i < b->nloops; i++) kp_loop_drain(b->loops[i]);
    for (int i = 0; i < b->nloops; i++) kp_loop_ctx_free(b->loop_ctx[i]);
    for (int i = 0; i < b->nloops; i++) kp_conn_watch_free(b->conn_watch[i]);
    for (int i = 0; i < b->nloops; i++) kp_loop_free(b->loops[i]);
    pthread_mutex_destroy(&b->pid_lock);
    pthread_rwlock_destroy(&b->tls_lock);
    kp_info("broker", "stopped");
    free(b);
}
