/*
 * cmd_up.c — `kpool up` (an embedded pool and the control plane in one process, everything
 * created on first start) and `kpool control` (the control plane alone).
 *
 * Data directory layout (`--data-dir`, default ./kpool-data):
 *   pki/      ca.crt ca.key broker.crt broker.key admin.crt admin.key (keys 0600),
 *             registry-admin.password (0600: the schema registry's admin password)
 *   broker/   the pool's log.dirs
 *   control/  kpool.db (SQLite)
 */
#include "cli/cli.h"
#include "core/kubeconfig.h"
#include "daemon/up_ctl.h"
#include "daemon/up_pool.h"
#include "broker/broker.h"
#include "control/control.h"
#include "daemon/daemon.h"
#include "core/buf.h"
#include "core/logging.h"
#include "core/props.h"
#include "core/yamljson.h"
#include "net/listener.h"
#include "pki/pki.h"
#include "registry/registry.h"
#include "core/fs.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PORT_KAFKA    9093
#define PORT_API      8080
#define PORT_REGISTRY 8081
#define PORT_METRICS  9600
#define PORT_KUBE     6443 /* the control plane API over HTTPS, for kubectl */

/* snprintf for paths: a truncated path is an error, never a different file. */
static int fmt_path(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fmt_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n) {
        out[0] = 0;
        return -1;
    }
    return 0;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int write_file(const char *path, const char *data, int mode)
{
    char tmp[PATH_MAX];
    fmt_path(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    size_t n = strlen(data);
    int ok = write(fd, data, n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Creates the pool CA, the broker's server certificate and the control plane's admin client
 * certificate on first start; later starts reuse them. */
static int ensure_pki(const char *dir, char *err, size_t errlen)
{
    char ca_crt[PATH_MAX], ca_key[PATH_MAX], path[PATH_MAX];
    fmt_path(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
    fmt_path(ca_key, sizeof(ca_key), "%s/ca.key", dir);
    if (kp_fs_mkdirs(dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create the pki directory: %s", strerror(errno));
        return -1;
    }
    kp_pki_ca_t *ca = NULL;
    if (!file_exists(ca_crt)) {
        ca = kp_pki_ca_create("kpool pool CA", 3650, KP_PKI_KEY_EC_P256, err, errlen);
        if (!ca) return -1;
        char *cert = kp_pki_ca_cert_pem(ca), *key = kp_pki_ca_key_pem(ca);
        int rc = write_file(ca_key, key, 0600) | write_file(ca_crt, cert, 0644);
        free(cert);
        kp_pki_secret_free(key);
        if (rc) {
            snprintf(err, errlen, "cannot write the CA into the pki directory");
            kp_pki_ca_free(ca);
            return -1;
        }
        kp_info("up", "created the pool CA in %s", dir);
    } else {
        uint8_t *cert, *key;
        size_t l;
        if (kp_fs_read_all(ca_crt, 1 << 20, &cert, &l) < 0 ||
            kp_fs_read_all(ca_key, 1 << 20, &key, &l) < 0) {
            snprintf(err, errlen, "cannot read the CA in the pki directory");
            return -1;
        }
        ca = kp_pki_ca_load((char *)cert, (char *)key, err, errlen);
        free(cert);
        kp_pki_secret_free((char *)key);
        if (!ca) return -1;
    }
    static const char *const broker_sans[] = {"IP:127.0.0.1", "DNS:localhost"};
    const struct {
        const char *name, *subject;
        kp_pki_usage_t usage;
    } leaves[] = {{"broker", "CN=kpool-broker", KP_PKI_USAGE_SERVER},
                  {"admin", "CN=kpool-admin", KP_PKI_USAGE_CLIENT},
                  /* followers of a replicated pool (`kpool up --brokers N`) */
                  {"replica", "CN=kpool-replica", KP_PKI_USAGE_CLIENT}};
    for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
        fmt_path(path, sizeof(path), "%s/%s.crt", dir, leaves[i].name);
        if (file_exists(path)) continue;
        kp_pki_issue_req_t req = {.subject = leaves[i].subject,
                                  .validity_days = 825,
                                  .key_type = KP_PKI_KEY_EC_P256,
                                  .usage = leaves[i].usage};
        if (leaves[i].usage == KP_PKI_USAGE_SERVER) {
            req.sans = broker_sans;
            req.nsans = 2;
        }
        kp_pki_issued_t out;
        if (kp_pki_issue(ca, &req, &out, err, errlen) < 0) {
            kp_pki_ca_free(ca);
            return -1;
        }
        char keyp[PATH_MAX];
        fmt_path(keyp, sizeof(keyp), "%s/%s.key", dir, leaves[i].name);
        int rc = write_file(keyp, out.key_pem, 0600) | write_file(path, out.chain_pem, 0644);
        kp_pki_issued_free(&out);
        if (rc) {
            snprintf(err, errlen, "cannot write the %s certificate", leaves[i].name);
            kp_pki_ca_free(ca);
            return -1;
        }
    }
    kp_pki_ca_free(ca);
    return 0;
}

static void config_path(char *out, size_t n)
{
    const char *env = getenv("KPOOL_CONFIG");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, n, "%s/.config/kpool/config.yaml", home ? home : ".");
}

/* The config's `pool:` section: how `kpool pool` reaches the brokers (their SSL listeners,
 * with the admin client certificate the control plane uses). */
static int cli_pool_section(char *out, size_t n, const char *bootstrap, const char *pki)
{
    return snprintf(out, n,
                    "pool:\n  bootstrap: %s\n  ca: %s/ca.crt\n  certificate: %s/admin.crt\n  "
                    "key: %s/admin.key\n",
                    bootstrap, pki, pki, pki);
}

/* Whether cfg's pool section says what section (cli_pool_section) says. */
static int cli_pool_same(const json_t *cfg, const char *bootstrap, const char *pki)
{
    const json_t *pool = json_object_get(cfg, "pool");
    char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
    fmt_path(ca, sizeof(ca), "%s/ca.crt", pki);
    fmt_path(crt, sizeof(crt), "%s/admin.crt", pki);
    fmt_path(key, sizeof(key), "%s/admin.key", pki);
    const char *b = json_string_value(json_object_get(pool, "bootstrap")),
               *c = json_string_value(json_object_get(pool, "ca")),
               *t = json_string_value(json_object_get(pool, "certificate")),
               *k = json_string_value(json_object_get(pool, "key"));
    return b && c && t && k && !strcmp(b, bootstrap) && !strcmp(c, ca) && !strcmp(t, crt) &&
           !strcmp(k, key);
}

/* Reuses the CLI config's admin token when it still works against this store (rewriting the
 * file only when its pool section is not this pool's); else creates a new admin token and
 * (re)writes the config (0600). */
static int ensure_cli_config(kp_store_t *store, const char *server, const char *ca,
                             const char *bootstrap, const char *pki, char *path, size_t pathlen,
                             char *err, size_t errlen)
{
    config_path(path, pathlen);
    uint8_t *text;
    size_t len;
    char token[65] = "", ns[256] = "default";
    if (kp_fs_read_all(path, 1 << 20, &text, &len) == 0) {
        char e[256];
        json_t *cfg = kp_yaml_parse_one((char *)text, len, e, sizeof(e));
        explicit_bzero(text, len);
        free(text);
        const char *tok = cfg ? json_string_value(json_object_get(cfg, "token")) : NULL;
        const char *srv = cfg ? json_string_value(json_object_get(cfg, "server")) : NULL;
        const char *nsv = cfg ? json_string_value(json_object_get(cfg, "namespace")) : NULL;
        int admin = 0;
        char *tns = NULL;
        int ok = tok && srv && !strcmp(srv, server) && strlen(tok) < sizeof(token) &&
                 kp_store_token_lookup(store, tok, &admin, &tns) == 0 && admin;
        free(tns);
        int same = ok && cli_pool_same(cfg, bootstrap, pki);
        if (ok) snprintf(token, sizeof(token), "%s", tok);
        if (ok && nsv && *nsv && !strpbrk(nsv, "\n\r:#")) snprintf(ns, sizeof(ns), "%s", nsv);
        json_decref(cfg);
        if (same) {
            explicit_bzero(token, sizeof(token));
            return 0;
        }
    }
    if (!token[0] && kp_store_token_create(store, NULL, "admin (kpool up)", token) < 0) {
        snprintf(err, errlen, "cannot create the admin token");
        return -1;
    }
    char dir[PATH_MAX];
    fmt_path(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        kp_fs_mkdirs(dir, 0700);
    }
    char body[4 * PATH_MAX + 1024];
    int blen = snprintf(body, sizeof(body),
                        "# written by kpool up: the control plane's address, an admin token, the "
                        "pool CA;\n# pool: the brokers and the admin client certificate (kpool "
                        "pool)\nserver: %s\ntoken: %s\nca: %s\nnamespace: %s\n",
                        server, token, ca, ns);
    explicit_bzero(token, sizeof(token));
    if (blen > 0 && (size_t)blen < sizeof(body))
        blen += cli_pool_section(body + blen, sizeof(body) - (size_t)blen, bootstrap, pki);
    int rc = blen < 0 || (size_t)blen >= sizeof(body) ? -1 : write_file(path, body, 0600);
    explicit_bzero(body, sizeof(body));
    if (rc < 0) {
        snprintf(err, errlen, "cannot write the CLI configuration: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The embedded pool (SPEC 2.5): replication 1 with one broker; with N brokers 1..N, default
 * min(3, N) (the control plane's minimumInSyncReplicas default is then 2). */
static int ensure_pool(kp_store_t *store, const char *name, int nbrokers, const char *bootstrap,
                       const char *pki, const char *registry, const char *metrics_url,
                       json_t *metrics_urls /* taken */)
{
    int max = nbrokers > 1 ? nbrokers : 1, def = max < 3 ? max : 3;
    char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], cakey[PATH_MAX];
    fmt_path(ca, sizeof(ca), "%s/ca.crt", pki);
    fmt_path(crt, sizeof(crt), "%s/admin.crt", pki);
    fmt_path(key, sizeof(key), "%s/admin.key", pki);
    fmt_path(cakey, sizeof(cakey), "%s/ca.key", pki);
    json_t *pool = json_pack(
        "{s:s, s:s, s:{s:s}, s:{s:s, s:b, s:{s:i, s:i, s:i}, s:s, s:{s:s, s:s, s:s, s:s}, s:s}}",
        "apiVersion", "kpool.dev/v1", "kind", "Pool", "metadata", "name", name, "spec",
        "bootstrapServers", bootstrap, "embedded", 1, "replication", "min", 1, "max", max,
        "default", def, "schemaRegistry", registry, "tls", "caLocation", ca, "certificateLocation",
        crt, "keyLocation", key, "caKeyLocation", cakey, "metricsUrl", metrics_url);
    json_object_set_new(json_object_get(pool, "spec"), "metricsUrls", metrics_urls);
    json_t *out = NULL;
    int rc = kp_store_put(store, pool, -1, 0, &out);
    json_decref(out);
    json_decref(pool);
    return rc == KP_STORE_CREATED || rc == KP_STORE_UPDATED || rc == KP_STORE_UNCHANGED ? 0 : -1;
}

#define CONTROL_SETTINGS_HELP                                                                      \
    "  control.resync.interval.ms      [60000]  drift check and janitor period\n"                  \
    "  control.retry.max.ms            [30000]  longest backoff after a failed reconcile\n"        \
    "  control.cert.validity.days      [365]    client certificates\n"                             \
    "  control.cert.renew.before.days  [30]     reissue (same principal) when less is left\n"      \
    "  control.cert.key.type           [EC]     EC (P-256) or RSA (2048 bits)\n"                   \
    "  control.janitor.grace.ms        [600000] unused credentials live this long\n"               \
    "  control.backup.interval.ms      [10800000] backups of every pool (3 h; 0: on demand "       \
    "only)\n"                                                                                      \
    "  control.backup.dir              [<data dir>/backups]\n"                                     \
    "  control.backup.retention.count  [56]     backups kept per pool (0: no limit)\n"             \
    "  control.backup.retention.days   [7]      older backups are removed (0: no limit); the\n"    \
    "                                           newest good backup is always kept\n"               \
    "  control.backup.compression      [gzip]   gzip (.json.gz) or none (.json)\n"                 \
    "  control.console.metrics.interval.ms [10000] the console's pool history: each Pool's\n"      \
    "                                           spec.metricsUrl sampled this often (360 kept)\n"

/* The schema registry's admin password: made on first start, kept in pki/ (0600). The
 * returned string is malloc'd (kp_pki_secret_free); NULL with err on failure. */
static char *registry_admin_password(const char *pki, char *path, size_t pathlen, char *err,
                                     size_t errlen)
{
    fmt_path(path, pathlen, "%s/registry-admin.password", pki);
    uint8_t *text;
    size_t len;
    if (kp_fs_read_all(path, 4096, &text, &len) == 0) {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = 0;
        if (len > 0) return (char *)text;
        free(text);
    }
    char *pw = kp_pki_random_password(32);
    if (!pw || write_file(path, pw, 0600) < 0) {
        snprintf(err, errlen, "cannot write registry-admin.password in %.600s: %s", pki,
                 strerror(errno));
        kp_pki_secret_free(pw);
        return NULL;
    }
    return pw;
}

/* Starts the pool's schema registry in this process (HTTPS with the broker's certificate,
 * `_schemas` read and written as the admin client) and waits until it has replayed its
 * topic. NULL with err on failure. */
static kp_registry_t *registry_start(const kp_props_t *props, kp_store_t *store, const char *pki,
                                     const char *pool, const char *bootstrap, const char *listen,
                                     char *pwpath, size_t pwlen, char *err, size_t errlen)
{
    int64_t cache_ms, wait_ms;
    if (kp_props_get_i64(props, "registry.auth.cache.ms", 2000, 1, 600000, &cache_ms, err, errlen) <
            0 ||
        kp_props_get_i64(props, "registry.start.timeout.ms", 60000, 1000, INT32_MAX, &wait_ms, err,
                         errlen) < 0)
        return NULL;
    char *pw = registry_admin_password(pki, pwpath, pwlen, err, errlen);
    if (!pw) return NULL;
    char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], acrt[PATH_MAX], akey[PATH_MAX];
    fmt_path(crt, sizeof(crt), "%s/broker.crt", pki);
    fmt_path(key, sizeof(key), "%s/broker.key", pki);
    fmt_path(ca, sizeof(ca), "%s/ca.crt", pki);
    fmt_path(acrt, sizeof(acrt), "%s/admin.crt", pki);
    fmt_path(akey, sizeof(akey), "%s/admin.key", pki);
    kp_registry_config_t rc = {.listen = listen,
                               .cert_path = crt,
                               .key_path = key,
                               .pool = pool,
                               .admin_password = pw,
                               .auth_cache_ms = (int)cache_ms,
                               .log = {.bootstrap = bootstrap,
                                       .ca_path = ca,
                                       .cert_path = acrt,
                                       .key_path = akey,
                                       .replication = -1}};
    kp_daemon_registry_users(&rc, store);
    kp_registry_t *r = kp_registry_start(&rc, err, errlen);
    kp_pki_secret_free(pw);
    for (int64_t waited = 0; r && !kp_registry_ready(r); waited += 50) {
        if (waited >= wait_ms) {
            snprintf(err, errlen, "the schema registry did not finish reading _schemas in %lld ms",
                     (long long)wait_ms);
            kp_registry_stop(r);
            return NULL;
        }
        usleep(50 * 1000);
    }
    return r;
}

/* The host part of a URL that reaches a server listening on host (a wildcard address is
 * reached on loopback; an IPv6 literal is bracketed). */
static void url_host(const char *host, char *out, size_t n)
{
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
        snprintf(out, n, "127.0.0.1");
    else if (strchr(host, ':'))
        snprintf(out, n, "[%s]", host);
    else
        snprintf(out, n, "%s", host);
}

/* A listen address from --set key (default host:default_port), checked. -1 with err. */
static int listen_setting(const kp_props_t *props, const char *key, int default_port, char *out,
                          size_t n, char *err, size_t errlen)
{
    char host[256];
    int port;
    const char *v = kp_props_get(props, key);
    if (!v) {
        snprintf(out, n, "127.0.0.1:%d", default_port);
        return 0;
    }
    if (kp_parse_hostport(v, host, sizeof(host), &port) < 0 || port < 0 || port > 65535 ||
        (size_t)snprintf(out, n, "%s", v) >= n) {
        snprintf(err, errlen, "%s: '%s' is not host:port", key, v);
        return -1;
    }
    return 0;
}

/* The address (URL host:port) of a server listening on listen whose bound port is port. */
static void listen_url(const char *scheme, const char *listen, int port, char *out, size_t n)
{
    char host[256], h[260];
    int p;
    if (kp_parse_hostport(listen, host, sizeof(host), &p) < 0) host[0] = 0;
    url_host(host, h, sizeof(h));
    snprintf(out, n, "%s%s:%d", scheme, h, port);
}

/* The pool's bootstrap address as clients use it: the first SSL listener of the running
 * broker, as advertised (with the port it bound when it asked for 0). -1 when the broker has
 * no SSL listener (the control plane and applications connect with TLS). */
static int pool_bootstrap(const kp_broker_t *b, char *out, size_t n)
{
    for (int i = 0; i < b->cfg.nlisteners; i++) {
        const kp_listener_cfg_t *l = &b->cfg.listeners[i];
        if (strcmp(l->security, "SSL") != 0) continue;
        char h[260];
        url_host(l->adv_host, h, sizeof(h));
        snprintf(out, n, "%s:%d", h, l->adv_port);
        return 0;
    }
    return -1;
}

/* The health and metrics URL (admin.listener), or "off" when it is empty. The port is the
 * configured one: the endpoint does not report another, so port 0 is refused before start. */
static void metrics_url(const kp_broker_t *b, char *out, size_t n)
{
    if (!b->cfg.admin_listener[0]) {
        snprintf(out, n, "off (admin.listener is empty)");
        return;
    }
    char host[256], h[260];
    int port;
    if (kp_parse_hostport(b->cfg.admin_listener, host, sizeof(host), &port) < 0) {
        snprintf(out, n, "%s", b->cfg.admin_listener);
        return;
    }
    url_host(host, h, sizeof(h));
    snprintf(out, n, "http://%s:%d/metrics", h, port);
}

#define UP_STR_(x) #x
#define UP_STR(x)  UP_STR_(x)

static const kp_option_t up_options[] = {
    KP_DAEMON_OPT_DATA_DIR("./kpool-data"),
    KP_DAEMON_OPT_PORT_OFFSET("add K to every default port (several pools on one host)"),
    KP_OPT_INT(0, "brokers", kp_daemon_opts_t, brokers, "N",
               "a replicated pool of N brokers with etcd (docs/replication.md)", 1, 9,
               "--brokers: '%s' is not a number in 1..9"),
    KP_OPT_STRING(0, "pool", kp_daemon_opts_t, pool, "NAME", "the Pool resource's name [dev]"),
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_up_cmd = {
    .name = "up",
    .usage =
        "up [--data-dir DIR] [--port-offset K] [--brokers N] [--pool NAME] [--set key=value]...",
    .description =
        "Runs an embedded pool (`dev`) and the control plane in one process. On first start\n"
        "it creates the pool CA, the broker and admin certificates, an admin token, and the\n"
        "CLI configuration ($KPOOL_CONFIG or ~/.config/kpool/config.yaml).\n"
        "\n"
        "--brokers N runs a replicated pool (docs/replication.md): etcd (127.0.0.1:2379+K,\n"
        "data in DIR/etcd) and N brokers, broker B on Kafka port 9093+K+10(B-1) and\n"
        "metrics port 9600+K+10(B-1) (broker 1 in this process, the others as children\n"
        "logging to DIR/broker-B.log). --pool names the Pool resource (default dev).\n"
        "\n"
        "Endpoints (K = --port-offset, default 0):\n"
        "  Kafka (TLS, client certificates required)  127.0.0.1:" UP_STR(
            PORT_KAFKA) "+K\n"
                        "  control plane API                          http://127.0.0.1:" UP_STR(
                            PORT_API) "+K\n"
                                      "  schema registry (HTTPS, basic auth)        "
                                      "https://127.0.0.1:" UP_STR(
                                          PORT_REGISTRY) "+K\n"
                                                         "  broker health and metrics              "
                                                         "    http://127.0.0.1:" UP_STR(
                                                             PORT_METRICS) "+K/metrics\n"
                                                                           "\n"
                                                                           "--set passes broker "
                                                                           "properties (Kafka "
                                                                           "names, see `kpool "
                                                                           "broker --help`; "
                                                                           "`listeners`\n"
                                                                           "and `admin.listener` "
                                                                           "move the pool and the "
                                                                           "health endpoint) and "
                                                                           "the control\n"
                                                                           "plane's settings:\n"
                                                                           "  control.listener     "
                                                                           "           "
                                                                           "[127.0.0.1:8080+K] the "
                                                                           "API (host:port)\n"
                                                                           "  registry.listener    "
                                                                           "           "
                                                                           "[127.0.0.1:8081+K] the "
                                                                           "schema "
                                                                           "registry"
                                                                           "\n" CONTROL_SETTINGS_HELP
                                                                           "  "
                                                                           "registry.auth.cache.ms "
                                                                           "         [2000]   a "
                                                                           "revoked user is "
                                                                           "refused after this\n"
                                                                           "The addresses printed "
                                                                           "once everything is up "
                                                                           "are the ones in use.\n",
    .options = up_options,
    .flags = KP_OPTS_NO_ARGS,
};

static const kp_option_t control_options[] = {
    KP_DAEMON_OPT_DATA_DIR("./kpool-control"),
    KP_DAEMON_OPT_PORT_OFFSET("accepted as by kpool up; the control plane alone\n"
                              "takes its address from control.listener"),
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_control_cmd = {
    .name = "control",
    .usage = "control [--data-dir DIR] [--set key=value]...",
    .description =
        "Runs the control plane alone; pools are Pool resources (kpool apply -f pool.yaml)\n"
        "pointing at kpool brokers or Apache Kafka clusters. Settings:\n"
        "  control.listener             [127.0.0.1:8080] (TLS required elsewhere:\n"
        "  control.ssl.certificate.location / control.ssl.key.location)\n" CONTROL_SETTINGS_HELP
        "An admin token is printed on first start.\n",
    .options = control_options,
    .flags = KP_OPTS_NO_ARGS,
};

/* What the banner prints: every address as the running servers use it. */
typedef struct up_addrs {
    char bootstrap[300];     /* the pool (first SSL listener, advertised) */
    char api[300];           /* http://host:port of the control plane API */
    char registry[300];      /* https://host:port of the schema registry */
    char metrics[320];       /* http://host:port/metrics, or "off ..." */
    char metrics_more[1024]; /* brokers 2..N: one banner line each ("" for one broker) */
} up_addrs_t;

static void up_banner_print(const up_addrs_t *a, const char *pool, int nbrokers, const char *pwpath,
                            const char *data, const char *cfgpath)
{
    char label[160];
    if (nbrokers > 1)
        snprintf(label, sizeof(label), "pool %s, %d brokers (Kafka, TLS + client certificates)",
                 pool, nbrokers);
    else
        snprintf(label, sizeof(label), "pool %s (Kafka, TLS + client certificates)", pool);
    printf(
        "kpool is up.\n"
        "  %-43s  %s\n"
        "  control plane API                            %s\n"
        "  schema registry (HTTPS, basic auth)          %s\n"
        "    admin user kpool-admin, password in        %s\n"
        "  broker health and metrics                    %s\n"
        "%s"
        "  data                                         %s\n"
        "  CLI configuration                            %s\n"
        "\n"
        "Next:\n"
        "  kpool apply -f examples/topic.yaml -f examples/app.yaml  # a topic, and an app using "
        "it\n"
        "  kpool get aivenapp -n myteam            # RolloutComplete: its credentials are ready\n"
        "  echo hello | kpool produce -n myteam --app ownerapp --topic myteam.mytopic\n"
        "\nCtrl-C stops everything.\n",
        label, a->bootstrap, a->api, a->registry, pwpath, a->metrics, a->metrics_more, data,
        cfgpath);
    fflush(stdout);
}

/* The broker properties `kpool up` sets unless --set gave them. -1 with err (a setting the
 * banner could not report truthfully). */
static int up_broker_defaults(kp_props_t *props, const char *pki, const char *brokerdir, int offset,
                              char *err, size_t errlen)
{
    char buf[PATH_MAX + 64];
#define DEFAULT(k, ...)                                                                            \
    if (!kp_props_get(props, k)) {                                                                 \
        snprintf(buf, sizeof(buf), __VA_ARGS__);                                                   \
        kp_props_set(props, k, buf);                                                               \
    }
    DEFAULT("listeners", "SSL://127.0.0.1:%d", PORT_KAFKA + offset);
    DEFAULT("admin.listener", "127.0.0.1:%d", PORT_METRICS + offset);
    DEFAULT("log.dirs", "%s", brokerdir);
    DEFAULT("ssl.ca.location", "%s/ca.crt", pki);
    DEFAULT("ssl.certificate.location", "%s/broker.crt", pki);
    DEFAULT("ssl.key.location", "%s/broker.key", pki);
    DEFAULT("ssl.client.auth", "required");
    DEFAULT("super.users", "User:CN=kpool-admin");
    DEFAULT("auto.create.topics.enable", "false");
#undef DEFAULT
    /* the health endpoint does not report the port it bound: port 0 would be unknowable */
    const char *admin = kp_props_get(props, "admin.listener");
    char host[256];
    int port;
    if (admin[0] && kp_parse_hostport(admin, host, sizeof(host), &port) == 0 && port == 0) {
        snprintf(err, errlen,
                 "admin.listener: give a port (0, any free port, is not supported "
                 "by kpool up)");
        return -1;
    }
    return 0;
}

/* What `kpool up --brokers N`'s control socket (up_ctl.h, for `kpool pool restart`) acts
 * on: broker 1 is this process's own (restarted in place: a new kpool executable needs
 * kpool up itself restarted), brokers 2..N are up_pool.c's children. The main thread uses b
 * again only after the socket stopped. */
typedef struct up_run {
    kp_daemon_broker_t *b;
    kp_props_t *props;
    kp_up_pool_t *up;
    int nbrokers;
} up_run_t;

static void up_ctl_answer(void *arg, const kp_up_req_t *r, char *reply, size_t len)
{
    up_run_t *run = arg;
    char err[512];
    if (r->kind == KP_UP_REQ_BROKERS) {
        size_t off = (size_t)snprintf(reply, len, "ok");
        for (int k = 1; k <= run->nbrokers && off < len; k++)
            off += (size_t)snprintf(reply + off, len - off, " %d", k);
        return;
    }
    int k = r->broker;
    if (k > run->nbrokers) {
        snprintf(reply, len, "error no broker %d (this pool has %d)", k, run->nbrokers);
    } else if (r->kind == KP_UP_REQ_READY) {
        int ready =
            k == 1 ? run->b && atomic_load(&run->b->broker->ready) : kp_up_pool_ready(run->up, k);
        snprintf(reply, len, "ok %d", ready);
    } else if (k > 1) {
        if (kp_up_pool_restart(run->up, k, err, sizeof(err)) < 0)
            snprintf(reply, len, "error %s", err);
        else
            snprintf(reply, len, "ok");
    } else {
        kp_info("up", "restarting broker 1 (in this process)");
        kp_daemon_broker_stop(run->b); /* a controlled shutdown */
        run->b = NULL;
        for (int attempt = 0; attempt < 3 && !run->b; attempt++) {
            if (attempt) sleep(1);
            run->b = kp_daemon_broker_start(run->props, 1);
        }
        snprintf(reply, len, run->b ? "ok" : "error broker 1 did not start again (see the log)");
    }
}

int kp_cmd_up(int argc, char **argv)
{
    kp_daemon_opts_t o = {.data_dir = "./kpool-data"};
    int rc = kp_cli_daemon_parse(&kp_up_cmd, &o, argc, argv);
    kp_props_t *props = o.props;
    const char *data_dir = o.data_dir;
    int offset = (int)o.port_offset, nbrokers = (int)o.brokers;
    const char *pool_name = o.pool && o.pool[0] ? o.pool : "dev";
    if (rc != 0) {
        kp_props_free(props);
        return rc == KP_OPTS_HELP ? 0 : rc;
    }
    if (kp_cli_log_level(props) < 0) {
        kp_props_free(props);
        return 2;
    }
    kp_cli_signals_setup();
    char err[1024], pki[PATH_MAX], brokerdir[PATH_MAX], ctl[PATH_MAX];
    char abs[PATH_MAX], api_listen[300], reg_listen[300], kube_listen[300];
    if (kp_fs_mkdirs(data_dir, 0700) < 0 || !realpath(data_dir, abs)) {
        fprintf(stderr, "kpool: cannot use data directory %s: %s\n", data_dir, strerror(errno));
        kp_props_free(props);
        return 1;
    }
    fmt_path(pki, sizeof(pki), "%s/pki", abs);
    fmt_path(brokerdir, sizeof(brokerdir), "%s/broker", abs);
    fmt_path(ctl, sizeof(ctl), "%s/control", abs);
    if (up_broker_defaults(props, pki, brokerdir, offset, err, sizeof(err)) < 0 ||
        listen_setting(props, "control.listener", PORT_API + offset, api_listen, sizeof(api_listen),
                       err, sizeof(err)) < 0 ||
        listen_setting(props, "registry.listener", PORT_REGISTRY + offset, reg_listen,
                       sizeof(reg_listen), err, sizeof(err)) < 0 ||
        listen_setting(props, "control.kubernetes.listener", PORT_KUBE + offset, kube_listen,
                       sizeof(kube_listen), err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: configuration error: %s\n", err);
        kp_props_free(props);
        return 2;
    }
    if (ensure_pki(pki, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: PKI setup failed: %s\n", err);
        kp_props_free(props);
        return 1;
    }
    kp_up_pool_t *up = NULL;
    if (nbrokers > 0) { /* a replicated pool: etcd first, then the brokers */
        char endpoint[128], buf[PATH_MAX + 64];
        up = kp_up_pool_new();
        if (!up ||
            kp_up_pool_etcd(up, abs, offset, endpoint, sizeof(endpoint), err, sizeof(err)) < 0) {
            fprintf(stderr, "kpool: %s\n", up ? err : "out of memory");
            kp_up_pool_free(up);
            kp_props_free(props);
            return 1;
        }
#define DEFAULT(k, ...)                                                                            \
    if (!kp_props_get(props, k)) {                                                                 \
        snprintf(buf, sizeof(buf), __VA_ARGS__);                                                   \
        kp_props_set(props, k, buf);                                                               \
    }
        DEFAULT("metadata.etcd.endpoints", "%s", endpoint);
        DEFAULT("metadata.etcd.prefix", "/kpool/%s", pool_name);
        DEFAULT("broker.id", "1");
        /* the internal topics on every broker of the pool (up to 3), whoever asks first */
        DEFAULT("offsets.topic.replication.factor", "%d", nbrokers < 3 ? nbrokers : 3);
        DEFAULT("transaction.state.log.replication.factor", "%d", nbrokers < 3 ? nbrokers : 3);
        DEFAULT("replica.ssl.certificate.location", "%s/replica.crt", pki);
        DEFAULT("replica.ssl.key.location", "%s/replica.key", pki);
#undef DEFAULT
        snprintf(buf, sizeof(buf), "%s;User:CN=kpool-replica",
                 kp_props_get_str(props, "super.users", "User:CN=kpool-admin"));
        kp_props_set(props, "super.users", buf);
    }
    kp_daemon_broker_t *b = kp_daemon_broker_start(props, 1);
    if (!b) {
        kp_up_pool_free(up);
        kp_props_free(props);
        return 1;
    }
    up_addrs_t addrs;
    if (pool_bootstrap(b->broker, addrs.bootstrap, sizeof(addrs.bootstrap)) < 0) {
        fprintf(stderr, "kpool: listeners: kpool up needs an SSL listener (the control plane, the "
                        "registry and applications connect with TLS)\n");
        kp_daemon_broker_stop(b);
        kp_up_pool_free(up);
        kp_props_free(props);
        return 2;
    }
    if (up) {
        /* brokers 2..N; the bootstrap list is broker 1 as it listens, then the others */
        char all[1024];
        if (kp_up_pool_brokers(up, abs, offset, nbrokers, props, all, sizeof(all), err,
                               sizeof(err)) < 0) {
            fprintf(stderr, "kpool: %s\n", err);
            kp_up_pool_stop_brokers(up);
            kp_daemon_broker_stop(b);
            kp_up_pool_free(up);
            kp_props_free(props);
            return 1;
        }
        const char *rest = strchr(all, ',');
        size_t have = strlen(addrs.bootstrap);
        if (rest && have < sizeof(addrs.bootstrap))
            snprintf(addrs.bootstrap + have, sizeof(addrs.bootstrap) - have, "%s", rest);
    }
    metrics_url(b->broker, addrs.metrics, sizeof(addrs.metrics));
    char backups[PATH_MAX];
    fmt_path(backups, sizeof(backups), "%s/backups", abs);
    char kube_crt[PATH_MAX], kube_key[PATH_MAX];
    fmt_path(kube_crt, sizeof(kube_crt), "%s/broker.crt", pki); /* 127.0.0.1 and localhost */
    fmt_path(kube_key, sizeof(kube_key), "%s/broker.key", pki);
    kp_control_config_t cc = {.state_dir = ctl, .backup_dir = backups};
    kp_daemon_api_config_t ac = {.listen = api_listen,
                                 .kube_listen = kube_listen,
                                 .kube_cert = kube_crt,
                                 .kube_key = kube_key};
    kp_daemon_control_t *c = NULL;
    if (kp_daemon_control_settings(props, &cc, err, sizeof(err)) == 0)
        c = kp_daemon_control_start(&cc, &ac, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kpool: cannot start the control plane: %s\n", err);
        kp_up_pool_stop_brokers(up);
        kp_daemon_broker_stop(b);
        kp_up_pool_free(up);
        kp_props_free(props);
        return 1;
    }
    listen_url("http://", api_listen, kp_daemon_control_api_port(c), addrs.api, sizeof(addrs.api));
    /* the registry first: the Pool names its real address (registry.listener may ask for
     * port 0) */
    char pwpath[PATH_MAX], cfgpath[PATH_MAX], ca[PATH_MAX];
    kp_registry_t *reg =
        registry_start(props, kp_control_store(c->control), pki, pool_name, addrs.bootstrap,
                       reg_listen, pwpath, sizeof(pwpath), err, sizeof(err));
    if (!reg) {
        fprintf(stderr, "kpool: cannot start the schema registry: %s\n", err);
        kp_daemon_control_stop(c);
        kp_up_pool_stop_brokers(up);
        kp_daemon_broker_stop(b);
        kp_up_pool_free(up);
        kp_props_free(props);
        return 1;
    }
    listen_url("https://", reg_listen, kp_registry_port(reg), addrs.registry,
               sizeof(addrs.registry));
    fmt_path(ca, sizeof(ca), "%s/ca.crt", pki);
    err[0] = 0;
    /* the console's pool history reads the broker's /metrics (pool_metrics.h); none when
     * admin.listener is off */
    const char *metrics_at = strncmp(addrs.metrics, "http", 4) ? "" : addrs.metrics;
    /* every broker's, so that the console adds them up and shows each (brokers 2..N listen
     * on 127.0.0.1, up_pool.c) */
    json_t *metrics_all = json_array();
    addrs.metrics_more[0] = 0;
    if (*metrics_at) {
        json_array_append_new(metrics_all, json_string(metrics_at));
        size_t used = 0;
        for (int k = 2; up && k <= nbrokers; k++) {
            char u[64];
            snprintf(u, sizeof(u), "http://127.0.0.1:%d/metrics", kp_up_pool_admin_port(offset, k));
            json_array_append_new(metrics_all, json_string(u));
            int w = snprintf(addrs.metrics_more + used, sizeof(addrs.metrics_more) - used,
                             "    broker %-35d %s\n", k, u);
            if (w > 0 && used + (size_t)w < sizeof(addrs.metrics_more)) used += (size_t)w;
        }
    }
    if (ensure_pool(kp_control_store(c->control), pool_name, nbrokers, addrs.bootstrap, pki,
                    addrs.registry, metrics_at, metrics_all) < 0 ||
        ensure_cli_config(kp_control_store(c->control), addrs.api, ca, addrs.bootstrap, pki,
                          cfgpath, sizeof(cfgpath), err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: %s\n", err[0] ? err : "cannot create the pool resource");
        kp_registry_stop(reg);
        kp_daemon_control_stop(c);
        kp_up_pool_stop_brokers(up);
        kp_daemon_broker_stop(b);
        kp_up_pool_free(up);
        kp_props_free(props);
        return 1;
    }
    char kubeconfig[PATH_MAX], kube_server[320];
    fmt_path(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", abs);
    listen_url("https://", kube_listen, kp_daemon_control_kube_port(c), kube_server,
               sizeof(kube_server));
    if (!kp_daemon_control_kube_port(c) ||
        kp_kubeconfig_write(kubeconfig, cfgpath, kube_server, err, sizeof(err)) < 0) {
        kp_warn("up", "no kubeconfig written%s%s", kp_daemon_control_kube_port(c) ? ": " : "",
                kp_daemon_control_kube_port(c) ? err : "");
        kubeconfig[0] = 0;
    }
    up_run_t run = {b, props, up, nbrokers};
    kp_up_ctl_t *upctl = NULL;
    if (up) {
        char sock[PATH_MAX];
        fmt_path(sock, sizeof(sock), "%s/up.sock", abs);
        upctl = kp_up_ctl_start(sock, up_ctl_answer, &run, err, sizeof(err));
        if (!upctl)
            kp_warn("up", "no control socket (kpool pool restart cannot reach us): %s", err);
    }
    up_banner_print(&addrs, pool_name, nbrokers, pwpath, abs, cfgpath);
    if (kubeconfig[0]) printf("\nkubectl (docs/kubectl.md):\n  export KUBECONFIG=%s\n", kubeconfig);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    kp_info("up", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kp_up_ctl_stop(upctl); /* first: a restart in progress finishes, then b is ours again */
    b = run.b;
    kp_registry_stop(reg);       /* first: it reads the store and talks to the pool */
    kp_daemon_control_stop(c);   /* then the control plane, which talks to the pool */
    kp_up_pool_stop_brokers(up); /* the other brokers (each a controlled shutdown) */
    kp_daemon_broker_stop(b);
    kp_up_pool_free(up); /* etcd last */
    kp_props_free(props);
    return 0;
}

int kp_cmd_control(int argc, char **argv)
{
    kp_daemon_opts_t o = {.data_dir = "./kpool-control"};
    int rc = kp_cli_daemon_parse(&kp_control_cmd, &o, argc, argv);
    kp_props_t *props = o.props;
    const char *data_dir = o.data_dir;
    if (rc != 0) {
        kp_props_free(props);
        return rc == KP_OPTS_HELP ? 0 : rc;
    }
    kp_cli_signals_setup();
    char err[1024];
    kp_control_config_t cc = {.state_dir = data_dir};
    kp_daemon_api_config_t ac = {
        .listen = kp_props_get_str(props, "control.listener", "127.0.0.1:8080"),
        .api_cert = kp_props_get(props, "control.ssl.certificate.location"),
        .api_key = kp_props_get(props, "control.ssl.key.location")};
    kp_daemon_control_t *c = NULL;
    if (kp_daemon_control_settings(props, &cc, err, sizeof(err)) == 0)
        c = kp_daemon_control_start(&cc, &ac, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kpool: cannot start the control plane: %s\n", err);
        kp_props_free(props);
        return 1;
    }
    char *seen = NULL;
    if (kp_store_meta_get(kp_control_store(c->control), "admin_token_issued", &seen) < 0) {
        char token[65];
        if (kp_store_token_create(kp_control_store(c->control), NULL, "admin (kpool control)",
                                  token) == 0) {
            printf("admin token (shown once): %s\n", token);
            kp_store_meta_set(kp_control_store(c->control), "admin_token_issued", "1");
        }
    }
    free(seen);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
    kp_daemon_control_stop(c);
    kp_props_free(props);
    return 0;
}
