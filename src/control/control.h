/*
 * control.h — the control plane: store, reconciler, backups and the pools' metrics sampler in
 * one object. Its REST API (control/api/api.h) is started over its store by the composition root
 * (daemon/daemon.h) between kp_control_open and kp_control_run, and stopped first.
 *
 * `kpool up` runs it next to an embedded pool broker; `kpool control` runs it alone against
 * the pools listed as Pool resources (kpool brokers or Apache Kafka clusters).
 */
#ifndef KP_CONTROL_H
#define KP_CONTROL_H

#include "control/store.h"
#include "pki/pki.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_control kp_control_t;

typedef struct kp_control_config {
    const char *state_dir; /* the SQLite store lives here */
    int64_t resync_ms;     /* control.resync.interval.ms: drift check period */
    int64_t retry_max_ms;  /* longest backoff after a failed reconcile */
    int pool_timeout_ms;   /* per admin call */
    /* credentials (SPEC 3, 4) */
    int cert_validity_days;          /* client certificates; default 365 */
    int64_t cert_renew_before_s;     /* reissue when less is left; default 30 days */
    kp_pki_key_type_t cert_key_type; /* EC P-256 (default) or RSA 2048 */
    int64_t janitor_grace_ms;        /* unused secrets live this long; default 10 min */
    /* backups (SPEC 7, docs/backups.md); a zeroed config backs up on demand only */
    const char *backup_dir;         /* NULL: <state_dir>/backups */
    int64_t backup_interval_ms;     /* 0: no scheduled backups */
    int64_t backup_retention_count; /* 0: no count limit */
    int64_t backup_retention_days;  /* 0: no age limit */
    int backup_gzip;                /* write .json.gz (else .json) */
    /* control.console.metrics.interval.ms: how often the pools' /metrics are sampled for the
     * console's history (pool_metrics.h); 0: the default, 10 s */
    int64_t console_metrics_interval_ms;
} kp_control_config_t;

/* Opens the control plane: master key, store, backup scheduler, the pools' metrics sampler.
 * Nothing is reconciled before kp_control_run. NULL with err. */
kp_control_t *kp_control_open(const kp_control_config_t *cfg, char *err, size_t errlen);
/* Starts the reconciler thread (and its /metrics figures). 0, or -1 with err (then stop c). */
int kp_control_run(kp_control_t *c, char *err, size_t errlen);
/* Stops the reconciler (when it runs) and closes everything kp_control_open opened. */
void kp_control_stop(kp_control_t *c);
kp_store_t *kp_control_store(kp_control_t *c);
/* What the API needs besides the store: the key Secret data is sealed with, and the backups
 * (/apis/kpool.dev/v1/backups). Valid until kp_control_stop. */
const kp_pki_master_key_t *kp_control_master_key(const kp_control_t *c);
struct kp_backup;
struct kp_backup *kp_control_backup(kp_control_t *c);
/* Reconciles everything now (tests, kpool up after creating the pool). Thread-safe. */
void kp_control_resync(kp_control_t *c);

#endif
