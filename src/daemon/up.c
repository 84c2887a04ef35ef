/* up.c — `kpool up` wired (see up.h): its files, the order its parts start and stop in. */
#include "daemon/up.h"

#include "broker/broker.h"
#include "cluster/member.h"
#include "control/control.h"
#include "control/store.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/kubeconfig.h"
#include "core/logging.h"
#include "core/yamljson.h"
#include "daemon/daemon.h"
#include "daemon/up_ctl.h"
#include "daemon/up_pool.h"
#include "net/listener.h"
#include "pki/pki.h"
#include "registry/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    DEFAULT("listeners", "SSL://127.0.0.1:%d", KP_UP_PORT_KAFKA + offset);
    DEFAULT("admin.listener", "127.0.0.1:%d", KP_UP_PORT_METRICS + offset);
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

struct kp_daemon_up {
    kp_daemon_up_info_t info;
    kp_props_t *props;  /* the config's (borrowed) */
    int nbrokers;       /* --brokers: 0 for one broker */
    kp_up_pool_t *pool; /* etcd and brokers 2..N; NULL: one broker */
    /* broker 1, in this process: the control socket's thread replaces it when it restarts
     * it (up_ctl_answer); the main thread uses it again only after the socket stopped */
    kp_daemon_broker_t *b;
    kp_daemon_control_t *c;
    kp_registry_t *reg;
    kp_up_ctl_t *ctl; /* NULL: one broker, or the socket could not listen */
};

/* Where the parts live and listen, from the data directory and the settings. */
typedef struct up_where {
    char pki[PATH_MAX], brokerdir[PATH_MAX], control[PATH_MAX];
    char api_listen[300], reg_listen[300], kube_listen[300];
} up_where_t;

/* What `kpool up --brokers N`'s control socket (up_ctl.h, for `kpool pool restart`) acts
 * on: broker 1 is this process's own (restarted in place: a new kpool executable needs
 * kpool up itself restarted), brokers 2..N are up_pool.c's children. */
static void up_ctl_answer(void *arg, const kp_up_req_t *r, char *reply, size_t len)
{
    kp_daemon_up_t *u = arg;
    char err[512];
    if (r->kind == KP_UP_REQ_BROKERS) {
        size_t off = (size_t)snprintf(reply, len, "ok");
        for (int k = 1; k <= u->nbrokers && off < len; k++)
            off += (size_t)snprintf(reply + off, len - off, " %d", k);
        return;
    }
    int k = r->broker;
    if (k > u->nbrokers) {
        snprintf(reply, len, "error no broker %d (this pool has %d)", k, u->nbrokers);
    } else if (r->kind == KP_UP_REQ_READY) {
        int ready =
            k == 1 ? u->b && atomic_load(&u->b->broker->ready) : kp_up_pool_ready(u->pool, k);
        snprintf(reply, len, "ok %d", ready);
    } else if (k > 1) {
        if (kp_up_pool_restart(u->pool, k, err, sizeof(err)) < 0)
            snprintf(reply, len, "error %s", err);
        else
            snprintf(reply, len, "ok");
    } else {
        kp_info("up", "restarting broker 1 (in this process)");
        kp_daemon_broker_stop(u->b); /* a controlled shutdown */
        u->b = NULL;
        for (int attempt = 0; attempt < 3 && !u->b; attempt++) {
            if (attempt) sleep(1);
            u->b = kp_daemon_broker_start(u->props, 1);
        }
        snprintf(reply, len, u->b ? "ok" : "error broker 1 did not start again (see the log)");
    }
}

/* The data directory, kpool up's broker defaults and the listen addresses. 0, or the exit
 * status with err. */
static int up_where(kp_daemon_up_t *u, const kp_daemon_up_config_t *cfg, up_where_t *w, char *err,
                    size_t errlen)
{
    int offset = cfg->port_offset;
    if (kp_fs_mkdirs(cfg->data_dir, 0700) < 0 || !realpath(cfg->data_dir, u->info.data)) {
        snprintf(err, errlen, "cannot use data directory %s: %s", cfg->data_dir, strerror(errno));
        return 1;
    }
    fmt_path(w->pki, sizeof(w->pki), "%s/pki", u->info.data);
    fmt_path(w->brokerdir, sizeof(w->brokerdir), "%s/broker", u->info.data);
    fmt_path(w->control, sizeof(w->control), "%s/control", u->info.data);
    char e[1024];
    if (up_broker_defaults(u->props, w->pki, w->brokerdir, offset, e, sizeof(e)) < 0 ||
        listen_setting(u->props, "control.listener", KP_UP_PORT_API + offset, w->api_listen,
                       sizeof(w->api_listen), e, sizeof(e)) < 0 ||
        listen_setting(u->props, "registry.listener", KP_UP_PORT_REGISTRY + offset, w->reg_listen,
                       sizeof(w->reg_listen), e, sizeof(e)) < 0 ||
        listen_setting(u->props, "control.kubernetes.listener", KP_UP_PORT_KUBE + offset,
                       w->kube_listen, sizeof(w->kube_listen), e, sizeof(e)) < 0) {
        snprintf(err, errlen, "configuration error: %s", e);
        return 2;
    }
    return 0;
}

/* A replicated pool: etcd first, then broker 1's settings for the pool (unless --set gave
 * them). -1 with err. */
static int up_replicated(kp_daemon_up_t *u, const kp_daemon_up_config_t *cfg, const char *pki,
                         char *err, size_t errlen)
{
    char endpoint[128], buf[PATH_MAX + 64];
    int nbrokers = cfg->brokers;
    kp_props_t *props = u->props;
    u->pool = kp_up_pool_new();
    if (!u->pool) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (kp_up_pool_etcd(u->pool, u->info.data, cfg->port_offset, endpoint, sizeof(endpoint), err,
                        errlen) < 0)
        return -1;
#define DEFAULT(k, ...)                                                                            \
    if (!kp_props_get(props, k)) {                                                                 \
        snprintf(buf, sizeof(buf), __VA_ARGS__);                                                   \
        kp_props_set(props, k, buf);                                                               \
    }
    DEFAULT("metadata.etcd.endpoints", "%s", endpoint);
    DEFAULT("metadata.etcd.prefix", "/kpool/%s", cfg->pool);
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
    return 0;
}

/* Waits (at most 60 s) until broker 1 has seen all n brokers of the pool register, so that
 * the pool the banner announces is whole: a topic created right after it with replication
 * factor n finds n live brokers. Brokers 2..N are up once their admin endpoints answer, but
 * broker 1 learns of them through its etcd watch, a moment later. */
static void wait_pool_whole(kp_broker_t *b, int n)
{
    int seen = 0;
    for (int waited = 0; b->member && waited < 60000; waited += 50) {
        kp_member_view_t *v = kp_member_view(b->member);
        seen = v->nbrokers;
        kp_member_view_put(v);
        if (seen >= n) return;
        usleep(50 * 1000);
    }
    if (b->member)
        kp_warn("up", "broker 1 sees %d of the pool's %d brokers after 60 s; going on", seen, n);
}

/* The pool: etcd (a replicated pool), broker 1, brokers 2..N; the bootstrap list is broker 1
 * as it listens, then the others. 0, or the exit status with err. */
static int up_brokers(kp_daemon_up_t *u, const kp_daemon_up_config_t *cfg, const up_where_t *w,
                      char *err, size_t errlen)
{
    kp_daemon_up_info_t *in = &u->info;
    if (cfg->brokers > 0 && up_replicated(u, cfg, w->pki, err, errlen) < 0) return 1;
    u->b = kp_daemon_broker_start(u->props, 1);
    if (!u->b) return 1; /* it said why */
    if (pool_bootstrap(u->b->broker, in->bootstrap, sizeof(in->bootstrap)) < 0) {
        snprintf(err, errlen,
                 "listeners: kpool up needs an SSL listener (the control plane, the registry and "
                 "applications connect with TLS)");
        return 2;
    }
    if (u->pool) {
        char all[1024];
        if (kp_up_pool_brokers(u->pool, in->data, cfg->port_offset, cfg->brokers, u->props, all,
                               sizeof(all), err, errlen) < 0)
            return 1;
        const char *rest = strchr(all, ',');
        size_t have = strlen(in->bootstrap);
        if (rest && have < sizeof(in->bootstrap))
            snprintf(in->bootstrap + have, sizeof(in->bootstrap) - have, "%s", rest);
        wait_pool_whole(u->b->broker, cfg->brokers);
    }
    metrics_url(u->b->broker, in->metrics, sizeof(in->metrics));
    return 0;
}

/* The control plane with its API and kubectl listener, then the registry (before the Pool
 * resource: the Pool names its real address, and registry.listener may ask for port 0). 0,
 * or the exit status with err. */
static int up_services(kp_daemon_up_t *u, const kp_daemon_up_config_t *cfg, const up_where_t *w,
                       char *err, size_t errlen)
{
    kp_daemon_up_info_t *in = &u->info;
    char e[1024], backups[PATH_MAX], kube_crt[PATH_MAX], kube_key[PATH_MAX];
    fmt_path(backups, sizeof(backups), "%s/backups", in->data);
    fmt_path(kube_crt, sizeof(kube_crt), "%s/broker.crt", w->pki); /* 127.0.0.1 and localhost */
    fmt_path(kube_key, sizeof(kube_key), "%s/broker.key", w->pki);
    kp_control_config_t cc = {.state_dir = w->control, .backup_dir = backups};
    kp_daemon_api_config_t ac = {.listen = w->api_listen,
                                 .kube_listen = w->kube_listen,
                                 .kube_cert = kube_crt,
                                 .kube_key = kube_key};
    if (kp_daemon_control_settings(u->props, &cc, e, sizeof(e)) == 0)
        u->c = kp_daemon_control_start(&cc, &ac, e, sizeof(e));
    if (!u->c) {
        snprintf(err, errlen, "cannot start the control plane: %s", e);
        return 1;
    }
    listen_url("http://", w->api_listen, kp_daemon_control_api_port(u->c), in->api,
               sizeof(in->api));
    u->reg = registry_start(u->props, kp_control_store(u->c->control), w->pki, cfg->pool,
                            in->bootstrap, w->reg_listen, in->registry_password,
                            sizeof(in->registry_password), e, sizeof(e));
    if (!u->reg) {
        snprintf(err, errlen, "cannot start the schema registry: %s", e);
        return 1;
    }
    listen_url("https://", w->reg_listen, kp_registry_port(u->reg), in->registry,
               sizeof(in->registry));
    return 0;
}

/* The Pool resource (with every broker's /metrics for the console, which adds them up and
 * shows each) and the CLI configuration. -1 with err. */
static int up_pool_resource(kp_daemon_up_t *u, const kp_daemon_up_config_t *cfg,
                            const up_where_t *w, char *err, size_t errlen)
{
    kp_daemon_up_info_t *in = &u->info;
    char ca[PATH_MAX], e[1024] = "";
    fmt_path(ca, sizeof(ca), "%s/ca.crt", w->pki);
    /* the console's pool history reads the broker's /metrics (pool_metrics.h); none when
     * admin.listener is off */
    const char *metrics_at = strncmp(in->metrics, "http", 4) ? "" : in->metrics;
    json_t *metrics_all = json_array();
    if (*metrics_at) {
        json_array_append_new(metrics_all, json_string(metrics_at));
        /* brokers 2..N listen on 127.0.0.1 (up_pool.c) */
        for (int k = 2; u->pool && k <= cfg->brokers && k <= KP_UP_BROKERS_MAX; k++) {
            snprintf(in->broker_metrics[k], sizeof(in->broker_metrics[k]),
                     "http://127.0.0.1:%d/metrics", kp_up_pool_admin_port(cfg->port_offset, k));
            json_array_append_new(metrics_all, json_string(in->broker_metrics[k]));
        }
    }
    kp_store_t *store = kp_control_store(u->c->control);
    if (ensure_pool(store, cfg->pool, cfg->brokers, in->bootstrap, w->pki, in->registry, metrics_at,
                    metrics_all) < 0 ||
        ensure_cli_config(store, in->api, ca, in->bootstrap, w->pki, in->cli_config,
                          sizeof(in->cli_config), e, sizeof(e)) < 0) {
        snprintf(err, errlen, "%s", e[0] ? e : "cannot create the pool resource");
        return -1;
    }
    return 0;
}

/* The kubeconfig next to the data (for the kubectl listener); a warning without it. */
static void up_kubeconfig(kp_daemon_up_t *u, const up_where_t *w)
{
    kp_daemon_up_info_t *in = &u->info;
    char e[1024], kube_server[320];
    int port = kp_daemon_control_kube_port(u->c);
    fmt_path(in->kubeconfig, sizeof(in->kubeconfig), "%s/kubeconfig", in->data);
    listen_url("https://", w->kube_listen, port, kube_server, sizeof(kube_server));
    if (!port ||
        kp_kubeconfig_write(in->kubeconfig, in->cli_config, kube_server, e, sizeof(e)) < 0) {
        kp_warn("up", "no kubeconfig written%s%s", port ? ": " : "", port ? e : "");
        in->kubeconfig[0] = 0;
    }
}

int kp_daemon_up_start(const kp_daemon_up_config_t *cfg, kp_daemon_up_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    err[0] = 0;
    kp_daemon_up_t *u = kp_xcalloc(1, sizeof(*u));
    u->props = cfg->props;
    u->nbrokers = cfg->brokers;
    up_where_t w;
    char e[1024];
    int rc = up_where(u, cfg, &w, err, errlen);
    if (rc == 0 && ensure_pki(w.pki, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "PKI setup failed: %s", e);
        rc = 1;
    }
    if (rc == 0) rc = up_brokers(u, cfg, &w, err, errlen);
    if (rc == 0) rc = up_services(u, cfg, &w, err, errlen);
    if (rc == 0 && up_pool_resource(u, cfg, &w, err, errlen) < 0) rc = 1;
    *out = u;
    if (rc != 0) return rc; /* the caller reports err, then stops what did start */
    up_kubeconfig(u, &w);
    if (u->pool) {
        char sock[PATH_MAX];
        fmt_path(sock, sizeof(sock), "%s/up.sock", u->info.data);
        u->ctl = kp_up_ctl_start(sock, up_ctl_answer, u, e, sizeof(e));
        if (!u->ctl) kp_warn("up", "no control socket (kpool pool restart cannot reach us): %s", e);
    }
    return 0;
}

const kp_daemon_up_info_t *kp_daemon_up_info(const kp_daemon_up_t *u)
{
    return &u->info;
}

void kp_daemon_up_stop(kp_daemon_up_t *u)
{
    if (!u) return;
    kp_up_ctl_stop(u->ctl);       /* first: a restart in progress finishes, then b is ours again */
    kp_registry_stop(u->reg);     /* first: it reads the store and talks to the pool */
    kp_daemon_control_stop(u->c); /* then the control plane, which talks to the pool */
    kp_up_pool_stop_brokers(u->pool); /* the other brokers (each a controlled shutdown) */
    kp_daemon_broker_stop(u->b);
    kp_up_pool_free(u->pool); /* etcd last */
    free(u);
}
