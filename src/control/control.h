/*
 * control.h — the control plane: store, API server and reconciler in one object.
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
    const char *state_dir;          /* the SQLite store lives here */
    const char *listen;             /* API listener host:port */
    const char *api_cert, *api_key; /* needed when listen is not loopback */
    /* The same API over HTTPS for kubectl (docs/kubectl.md), which sends tokens only over
     * TLS: host:port and the server certificate; NULL: none. */
    const char *kube_listen, *kube_cert, *kube_key;
    int64_t resync_ms;    /* control.resync.interval.ms: drift check period */
    int64_t retry_max_ms; /* longest backoff after a failed reconcile */
    int pool_timeout_ms;  /* per admin call */
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
} kp_control_config_t;

kp_control_t *kp_control_start(const kp_control_config_t *cfg, char *err, size_t errlen);
void kp_control_stop(kp_control_t *c);
kp_store_t *kp_control_store(kp_control_t *c);
int kp_control_api_port(const kp_control_t *c);
/* The port of the kubectl (HTTPS) listener, 0 when there is none. */
int kp_control_kube_port(const kp_control_t *c);
/* Reconciles everything now (tests, kpool up after creating the pool). Thread-safe. */
void kp_control_resync(kp_control_t *c);

#endif
