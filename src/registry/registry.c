/*
 * registry.c — the schema registry's lifecycle and authentication (registry.h).
 *
 * Start: load the TLS certificate, start the `_schemas` log (its consumer thread replays
 * the topic into the state), start libmicrohttpd. Stop in the reverse order, so no request
 * runs once the state is freed.
 *
 * Authentication is HTTP basic: the admin (a password given at start, kept only as a
 * verifier) or a service user of this pool (its verifier from the control plane's store,
 * cached for auth_cache_ms so a busy client does not cost a SQLite query per request, and
 * so a revocation takes effect within that time).
 */
#include "registry/registry_int.h"

#include "core/metrics.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "net/http_server.h"
#include "core/fs.h"

#include <netdb.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reg_auth_entry {
    char *verifier;
    char *team; /* the service user's team (namespace): what it may change */
    int64_t expires_ms;
} reg_auth_entry_t;

static void auth_entry_free(reg_auth_entry_t *e)
{
    if (!e) return;
    free(e->verifier);
    free(e->team);
    free(e);
}

static void apply_record(void *arg, const char *key, size_t keylen, const char *value,
                         size_t valuelen, int64_t offset)
{
    kp_registry_t *r = arg;
    char err[256];
    pthread_rwlock_wrlock(&r->lock);
    int rc = kp_reg_apply(&r->state, key, keylen, value, valuelen, err, sizeof(err));
    pthread_rwlock_unlock(&r->lock);
    if (rc < 0) kp_warn("registry", "_schemas offset %lld ignored: %s", (long long)offset, err);
}

static void auth_cache_clear(kp_registry_t *r)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&r->auth_cache, &it, &k, &kl, &v)) {
        auth_entry_free(v);
    }
    kp_hmap_free(&r->auth_cache);
    kp_hmap_init(&r->auth_cache);
}

/* The user's current verifier (malloc'd) and team (*team, malloc'd), from the cache or the
 * users callback (the service user's row in the control plane's store: user -> team, pool);
 * NULL when the user is unknown, revoked, or of another pool. */
static char *user_verifier(kp_registry_t *r, const char *user, char **team_out)
{
    int64_t now = kp_mono_ms();
    size_t ulen = strlen(user);
    *team_out = NULL;
    pthread_mutex_lock(&r->auth_mu);
    reg_auth_entry_t *e = kp_hmap_get(&r->auth_cache, user, ulen);
    char *out = NULL;
    if (e && e->expires_ms > now) {
        out = kp_xstrdup(e->verifier);
        *team_out = kp_xstrdup(e->team);
    }
    pthread_mutex_unlock(&r->auth_mu);
    if (out || !r->users) return out;
    char *hash = NULL, *team = NULL, *pool = NULL;
    if (r->users(r->users_arg, user, &hash, &team, &pool) == 0 && team &&
        (!r->pool || (pool && !strcmp(pool, r->pool))))
        out = hash;
    else
        free(hash);
    free(pool);
    pthread_mutex_lock(&r->auth_mu);
    auth_entry_free(kp_hmap_del(&r->auth_cache, user, ulen));
    if (out) {
        if (kp_hmap_count(&r->auth_cache) >= KP_REG_AUTH_CACHE_MAX) auth_cache_clear(r);
        e = kp_xcalloc(1, sizeof(*e));
        e->verifier = kp_xstrdup(out);
        e->team = kp_xstrdup(team);
        e->expires_ms = now + r->auth_cache_ms;
        kp_hmap_put(&r->auth_cache, user, ulen, e);
        *team_out = team;
    } else {
        free(team);
    }
    pthread_mutex_unlock(&r->auth_mu);
    return out;
}

int kp_registry_authenticate(kp_registry_t *r, const char *authorization, kp_reg_caller_t *who)
{
    memset(who, 0, sizeof(*who));
    if (!authorization || strncasecmp(authorization, "Basic ", 6) != 0) return -1;
    const char *b64 = authorization + 6;
    while (*b64 == ' ') b64++;
    size_t n = strlen(b64);
    if (n == 0 || n > 1024 || n % 4) return -1;
    unsigned char dec[800];
    int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
    if (len < 0) return -1;
    while (len > 0 && n > 0 && b64[n - 1] == '=') { /* EVP_DecodeBlock keeps padding bytes */
        len--;
        n--;
    }
    dec[len] = 0;
    if (memchr(dec, 0, (size_t)len)) return -1;
    char *colon = strchr((char *)dec, ':');
    if (!colon || colon == (char *)dec || (size_t)(colon - (char *)dec) >= sizeof(who->user))
        return -1;
    *colon = 0;
    const char *user = (char *)dec, *password = colon + 1;
    int ok = 0;
    if (!strcmp(user, r->admin_user)) {
        ok = kp_pki_password_verify(password, r->admin_verifier);
        who->admin = ok;
    } else {
        char *team = NULL;
        char *verifier = user_verifier(r, user, &team);
        ok = verifier && kp_pki_password_verify(password, verifier) &&
             strlen(team) < sizeof(who->team);
        if (ok) memcpy(who->team, team, strlen(team) + 1);
        free(verifier);
        free(team);
    }
    if (ok) memcpy(who->user, user, strlen(user) + 1); /* shorter than who->user: checked above */
    OPENSSL_cleanse(dec, sizeof(dec));
    return ok ? 0 : -1;
}

/* libmicrohttpd's own messages (TLS handshake failures of clients, ...) in our log format. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = 0;
    kp_debug("registry-http", "%s", msg);
}

/* Leaves URLs percent-encoded: registry_http.c decodes each path segment after splitting,
 * so an encoded '/' stays inside its subject name. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

static int start_http(kp_registry_t *r, const kp_registry_config_t *cfg, char *err, size_t errlen)
{
    const struct MHD_OptionItem opts[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, 4, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 512, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)kp_registry_http_completed, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)keep_escaped, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_END, 0, NULL}};
    kp_http_listen_t l = {.what = "registry listener",
                          .hostport = cfg->listen,
                          .tls_cert = r->tls_cert,
                          .tls_key = r->tls_key,
                          .handler = kp_registry_http_handle,
                          .handler_cls = r,
                          .options = opts};
    char host[256];
    r->daemon = kp_http_listen(&l, &r->port, host, sizeof(host), err, errlen);
    if (!r->daemon) return -1;
    kp_info("registry", "schema registry on %s://%s:%d", r->tls_cert ? "https" : "http", host,
            r->port);
    return 0;
}

kp_registry_t *kp_registry_start(const kp_registry_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->admin_password || !cfg->admin_password[0]) {
        snprintf(err, errlen, "the registry needs an admin password");
        return NULL;
    }
    kp_registry_t *r = kp_xcalloc(1, sizeof(*r));
    kp_reg_state_init(&r->state);
    pthread_rwlock_init(&r->lock, NULL);
    pthread_mutex_init(&r->write_mu, NULL);
    pthread_mutex_init(&r->auth_mu, NULL);
    kp_hmap_init(&r->auth_cache);
    r->users = cfg->users;
    r->users_arg = cfg->users_arg;
    r->pool = cfg->pool ? kp_xstrdup(cfg->pool) : NULL;
    r->admin_user = kp_xstrdup(cfg->admin_user ? cfg->admin_user : "kpool-admin");
    r->auth_cache_ms = cfg->auth_cache_ms > 0 ? cfg->auth_cache_ms : 2000;
    if (kp_pki_password_hash(cfg->admin_password, r->admin_verifier) < 0) {
        snprintf(err, errlen, "cannot derive the admin password verifier");
        kp_registry_stop(r);
        return NULL;
    }
    if (!cfg->plain_http) {
        size_t len;
        if (!cfg->cert_path || !cfg->key_path ||
            kp_fs_read_all(cfg->cert_path, 1 << 20, (uint8_t **)&r->tls_cert, &len) < 0 ||
            kp_fs_read_all(cfg->key_path, 1 << 20, (uint8_t **)&r->tls_key, &len) < 0) {
            snprintf(err, errlen, "the registry needs its HTTPS certificate and key (%s, %s)",
                     cfg->cert_path ? cfg->cert_path : "unset",
                     cfg->key_path ? cfg->key_path : "unset");
            kp_registry_stop(r);
            return NULL;
        }
    }
    r->log = kp_reg_log_start(&cfg->log, apply_record, r, err, errlen);
    if (!r->log || start_http(r, cfg, err, errlen) < 0) {
        kp_registry_stop(r);
        return NULL;
    }
    kp_metrics_add_source(kp_registry_metrics_render, NULL);
    return r;
}

int kp_registry_port(const kp_registry_t *r)
{
    return r->port;
}

int kp_registry_ready(kp_registry_t *r)
{
    return r->offline || (r->log && kp_reg_log_ready(r->log));
}

kp_registry_t *kp_registry_new_offline(void)
{
    kp_registry_t *r = kp_xcalloc(1, sizeof(*r));
    kp_reg_state_init(&r->state);
    pthread_rwlock_init(&r->lock, NULL);
    pthread_mutex_init(&r->write_mu, NULL);
    pthread_mutex_init(&r->auth_mu, NULL);
    kp_hmap_init(&r->auth_cache);
    r->admin_user = kp_xstrdup("kpool-admin");
    r->offline = 1;
    return r;
}

void kp_registry_stop(kp_registry_t *r)
{
    if (!r) return;
    if (r->daemon) {
        kp_metrics_remove_source(kp_registry_metrics_render, NULL);
        MHD_stop_daemon(r->daemon);
    }
    kp_reg_log_stop(r->log);
    kp_reg_state_free(&r->state);
    auth_cache_clear(r);
    kp_hmap_free(&r->auth_cache);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->write_mu);
    pthread_mutex_destroy(&r->auth_mu);
    if (r->tls_key) {
        OPENSSL_cleanse(r->tls_key, strlen(r->tls_key));
        free(r->tls_key);
    }
    free(r->tls_cert);
    free(r->pool);
    free(r->admin_user);
    free(r);
}
