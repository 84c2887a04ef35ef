/* daemon.c — the composition root (see daemon.h): which module starts when, with what. */
#include "daemon/daemon.h"

#include "broker/request.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "broker/admin.h"
#include "control/api/api.h"
#include "control/api/k8s_watch.h"
#include "pki/pki.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the broker ---- */

/* The most open files a broker asks for (2^20, about KP_TOPIC_PARTITIONS_MAX partitions): a
 * hard limit of "unlimited" or 2^30 is not taken at face value. */
#define KP_NOFILE_CAP (1 << 20)

kp_daemon_broker_t *kp_daemon_broker_start(kp_props_t *props, int authorizer_default)
{
    char err[1024];
    kp_broker_config_t cfg;
    if (kp_broker_config_load(&cfg, props, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: configuration error: %s\n", err);
        return NULL;
    }
    cfg.authorizer_enabled_default = authorizer_default;
    /* before any log is opened: the default max.broker.partitions follows this limit */
    int64_t nofile_was, nofile = kp_fs_nofile_raise(KP_NOFILE_CAP, &nofile_was);
    if (nofile > nofile_was)
        kp_info("broker", "open-file limit raised from %lld to %lld (the hard limit%s)",
                (long long)nofile_was, (long long)nofile,
                nofile == KP_NOFILE_CAP ? ", capped" : "");
    kp_daemon_broker_t *d = kp_xcalloc(1, sizeof(*d));
    d->broker = kp_broker_new(&cfg, err, sizeof(err));
    /* the admin endpoint before the loops run: /readyz answers "not ready" until they do */
    if (d->broker && cfg.admin_listener[0])
        d->admin = kp_admin_http_start(cfg.admin_listener, &d->broker->ready, kp_api_name, err,
                                       sizeof(err));
    if (!d->broker || (cfg.admin_listener[0] && !d->admin)) {
        fprintf(stderr, "kpool: cannot start broker: %s\n", err);
        kp_daemon_broker_stop(d);
        return NULL;
    }
    if (kp_broker_start(d->broker) < 0) {
        fprintf(stderr, "kpool: cannot start the broker (see the log above)\n");
        kp_daemon_broker_stop(d);
        return NULL;
    }
    return d;
}

void kp_daemon_broker_stop(kp_daemon_broker_t *d)
{
    if (!d) return;
    /* the broker first: /readyz says "not ready" while a pool member hands its leaderships
     * over; the endpoint goes once the loops are stopped */
    if (d->broker) kp_broker_stop(d->broker);
    kp_admin_http_stop(d->admin);
    kp_broker_free(d->broker);
    free(d);
}

/* ---- the control plane ---- */

/* control.backup.* (docs/backups.md); the directory defaults to <data dir>/backups. */
static int backup_settings(const kp_props_t *props, kp_control_config_t *cc, char *err,
                           size_t errlen)
{
    int64_t interval, count, days;
    if (kp_props_get_i64(props, "control.backup.interval.ms", 3 * 3600 * 1000, 0, INT64_MAX / 2,
                         &interval, err, errlen) < 0 ||
        kp_props_get_i64(props, "control.backup.retention.count", 56, 0, 1000000, &count, err,
                         errlen) < 0 ||
        kp_props_get_i64(props, "control.backup.retention.days", 7, 0, 36500, &days, err, errlen) <
            0)
        return -1;
    const char *comp = kp_props_get_str(props, "control.backup.compression", "gzip");
    if (strcasecmp(comp, "gzip") != 0 && strcasecmp(comp, "none") != 0) {
        snprintf(err, errlen, "control.backup.compression: '%s' is not gzip or none", comp);
        return -1;
    }
    const char *dir = kp_props_get(props, "control.backup.dir");
    if (dir && *dir) cc->backup_dir = dir;
    cc->backup_interval_ms = interval;
    cc->backup_retention_count = count;
    cc->backup_retention_days = days;
    cc->backup_gzip = !strcasecmp(comp, "gzip");
    return 0;
}

int kp_daemon_control_settings(const kp_props_t *props, kp_control_config_t *cc, char *err,
                               size_t errlen)
{
    int64_t resync, retry, validity, renew, grace, console_ms;
    if (backup_settings(props, cc, err, errlen) < 0 ||
        kp_props_get_i64(props, "control.console.metrics.interval.ms", 10000, 100, 3600000,
                         &console_ms, err, errlen) < 0 ||
        kp_props_get_i64(props, "control.resync.interval.ms", 60000, 100, INT32_MAX, &resync, err,
                         errlen) < 0 ||
        kp_props_get_i64(props, "control.retry.max.ms", 30000, 100, INT32_MAX, &retry, err,
                         errlen) < 0 ||
        kp_props_get_i64(props, "control.cert.validity.days", 365, 1, 3650, &validity, err,
                         errlen) < 0 ||
        kp_props_get_i64(props, "control.cert.renew.before.days", 30, 0, 3649, &renew, err,
                         errlen) < 0 ||
        kp_props_get_i64(props, "control.janitor.grace.ms", 600000, 0, INT64_MAX / 2, &grace, err,
                         errlen) < 0)
        return -1;
    if (renew >= validity) {
        snprintf(
            err, errlen,
            "control.cert.renew.before.days (%lld) must be below control.cert.validity.days (%lld)",
            (long long)renew, (long long)validity);
        return -1;
    }
    const char *kt = kp_props_get_str(props, "control.cert.key.type", "EC");
    if (!strcasecmp(kt, "EC"))
        cc->cert_key_type = KP_PKI_KEY_EC_P256;
    else if (!strcasecmp(kt, "RSA"))
        cc->cert_key_type = KP_PKI_KEY_RSA_2048;
    else {
        snprintf(err, errlen, "control.cert.key.type: '%s' is not EC (P-256) or RSA (2048 bits)",
                 kt);
        return -1;
    }
    cc->resync_ms = resync;
    cc->retry_max_ms = retry;
    cc->cert_validity_days = (int)validity;
    cc->cert_renew_before_s = renew * 86400;
    cc->janitor_grace_ms = grace ? grace : 1; /* 0: at the next pass */
    cc->console_metrics_interval_ms = console_ms;
    return 0;
}

kp_daemon_control_t *kp_daemon_control_start(const kp_control_config_t *cc,
                                             const kp_daemon_api_config_t *ac, char *err,
                                             size_t errlen)
{
    kp_daemon_control_t *d = kp_xcalloc(1, sizeof(*d));
    d->control = kp_control_open(cc, err, errlen);
    if (!d->control) {
        free(d);
        return NULL;
    }
    kp_api_config_t acfg = {.listen = ac->listen,
                            .cert_path = ac->api_cert,
                            .key_path = ac->api_key,
                            .master_key = kp_control_master_key(d->control),
                            .backup = kp_control_backup(d->control)};
    kp_store_t *store = kp_control_store(d->control);
    d->api = kp_api_start(&acfg, store, err, errlen);
    if (!d->api) {
        kp_daemon_control_stop(d);
        return NULL;
    }
    /* the watch hubs' counters on the process's /metrics, next to the control plane's */
    d->watch_metrics = kp_metrics_add_source(kp_k8s_watch_metrics_render, NULL) == 0;
    if (ac->kube_listen) {
        kp_api_config_t kcfg = acfg;
        kcfg.listen = ac->kube_listen;
        kcfg.cert_path = ac->kube_cert;
        kcfg.key_path = ac->kube_key;
        kcfg.tls = 1;
        /* kubectl's door is a convenience: without it (a busy port) the API still serves */
        char kerr[512];
        d->kube_api = kp_api_start(&kcfg, store, kerr, sizeof(kerr));
        if (!d->kube_api) kp_warn("control", "no kubectl listener: %s", kerr);
    }
    /* reconciling starts once the API listens (nothing has run if it could not) */
    if (kp_control_run(d->control, err, errlen) < 0) {
        kp_daemon_control_stop(d);
        return NULL;
    }
    return d;
}

int kp_daemon_control_api_port(const kp_daemon_control_t *d)
{
    return kp_api_port(d->api);
}

int kp_daemon_control_kube_port(const kp_daemon_control_t *d)
{
    return d->kube_api ? kp_api_port(d->kube_api) : 0;
}

void kp_daemon_control_stop(kp_daemon_control_t *d)
{
    if (!d) return;
    if (d->watch_metrics) kp_metrics_remove_source(kp_k8s_watch_metrics_render, NULL);
    kp_api_stop(d->api); /* no new writes */
    kp_api_stop(d->kube_api);
    kp_control_stop(d->control);
    free(d);
}

int kp_daemon_control_first_token(kp_daemon_control_t *d, char token[65])
{
    kp_store_t *store = kp_control_store(d->control);
    char *seen = NULL;
    int issued = kp_store_meta_get(store, "admin_token_issued", &seen) == 0;
    free(seen);
    if (issued || kp_store_token_create(store, NULL, "admin (kpool control)", token) < 0) return 0;
    kp_store_meta_set(store, "admin_token_issued", "1");
    return 1;
}

/* ---- the schema registry ---- */

static int registry_users(void *arg, const char *user, char **hash, char **team, char **pool)
{
    return kp_store_user_registry_auth(arg, user, hash, team, pool);
}

void kp_daemon_registry_users(kp_registry_config_t *cfg, kp_store_t *store)
{
    cfg->users = store ? registry_users : NULL;
    cfg->users_arg = store;
}

kp_daemon_registry_t *kp_daemon_registry_start(kp_registry_config_t *cfg, const char *store_path,
                                               char *err, size_t errlen)
{
    kp_daemon_registry_t *d = kp_xcalloc(1, sizeof(*d));
    if (store_path && !(d->store = kp_store_open(store_path, err, errlen))) {
        free(d);
        return NULL;
    }
    kp_daemon_registry_users(cfg, d->store);
    d->registry = kp_registry_start(cfg, err, errlen);
    if (!d->registry) {
        kp_daemon_registry_stop(d);
        return NULL;
    }
    return d;
}

void kp_daemon_registry_stop(kp_daemon_registry_t *d)
{
    if (!d) return;
    kp_registry_stop(d->registry);
    kp_store_close(d->store);
    free(d);
}
