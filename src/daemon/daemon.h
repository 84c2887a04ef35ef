/*
 * daemon.h — the composition root: the one place that wires kpool's modules into the
 * processes `kpool broker`, `kpool control`, `kpool registry` and `kpool up` run (cli/
 * parses their options and prints; it calls these to start and stop the parts).
 *
 * The modules do not start each other: the broker does not start its admin HTTP endpoint,
 * the control plane does not start its REST API, the registry does not open the control
 * plane's store. Each exposes start/stop and takes its collaborators as arguments or
 * callbacks; the functions here pass them and stop the parts in the reverse order.
 * `kpool up`'s whole process (PKI files, brokers, control plane, registry, its files) is
 * composed from these in up.h.
 *
 * Threads: every function here runs on the process's main thread (or, for a restart of
 * `kpool up`'s broker 1, on the thread of its control socket, which the main thread waits
 * for before it stops anything).
 */
#ifndef KP_DAEMON_H
#define KP_DAEMON_H

#include "broker/broker.h"
#include "control/control.h"
#include "control/store.h"
#include "core/props.h"
#include "registry/registry.h"

#include <stddef.h>

/* ---- the broker and its admin endpoint (/livez, /readyz, /metrics) ---- */

typedef struct kp_daemon_broker {
    kp_broker_t *broker;
    struct kp_admin_http *admin; /* NULL when admin.listener is empty */
} kp_daemon_broker_t;

/* Loads the broker configuration from props, opens the broker (storage, listeners), starts
 * the admin endpoint on admin.listener (it reports the broker's readiness) and then the
 * broker's loops. authorizer_default: `kpool up` turns the authorizer on unless configured.
 * NULL after printing one line on stderr. */
kp_daemon_broker_t *kp_daemon_broker_start(kp_props_t *props, int authorizer_default);
/* Stops the broker (a controlled shutdown in a pool), then its admin endpoint, and frees
 * both. NULL is ignored. */
void kp_daemon_broker_stop(kp_daemon_broker_t *d);

/* ---- the control plane and its REST API ---- */

typedef struct kp_daemon_api_config {
    const char *listen;             /* API listener host:port */
    const char *api_cert, *api_key; /* needed when listen is not loopback */
    /* The same API over HTTPS for kubectl (docs/kubectl.md), which sends tokens only over
     * TLS: host:port and the server certificate; NULL: none. */
    const char *kube_listen, *kube_cert, *kube_key;
} kp_daemon_api_config_t;

typedef struct kp_daemon_control {
    kp_control_t *control;
    struct kp_api *api;
    struct kp_api *kube_api; /* NULL: no kubectl listener (none asked, or its port busy) */
    int watch_metrics;       /* the watch hubs' counters are a /metrics source */
} kp_daemon_control_t;

/* Reads the control.* settings (`kpool up` and `kpool control`: see their --help) from
 * props into cc; backup_dir is replaced only when control.backup.dir is set. -1 with err. */
int kp_daemon_control_settings(const kp_props_t *props, kp_control_config_t *cc, char *err,
                               size_t errlen);
/* Opens the control plane (store, backups), starts its API over the control plane's store,
 * master key and backups, then the kubectl listener (a warning, not an error, when that one
 * cannot listen), and then the reconciler. NULL with err. */
kp_daemon_control_t *kp_daemon_control_start(const kp_control_config_t *cc,
                                             const kp_daemon_api_config_t *ac, char *err,
                                             size_t errlen);
int kp_daemon_control_api_port(const kp_daemon_control_t *d);
/* The port of the kubectl (HTTPS) listener, 0 when there is none. */
int kp_daemon_control_kube_port(const kp_daemon_control_t *d);
/* Stops the API first (no new writes), then the control plane. NULL is ignored. */
void kp_daemon_control_stop(kp_daemon_control_t *d);
/* `kpool control`'s admin token, made on the store's first start only: 1 with token (64 hex
 * digits and a NUL) to show once, 0 when one was issued before (or none could be made). */
int kp_daemon_control_first_token(kp_daemon_control_t *d, char token[65]);

/* ---- the schema registry ---- */

/* Makes the registry of cfg accept the service users of store (their registry verifiers,
 * kp_store_user_registry_auth); store NULL: the admin only. store must outlive the
 * registry. */
void kp_daemon_registry_users(kp_registry_config_t *cfg, kp_store_t *store);

typedef struct kp_daemon_registry {
    kp_registry_t *registry;
    kp_store_t *store; /* NULL: the admin only */
} kp_daemon_registry_t;

/* `kpool registry`: opens the control plane's store at store_path (NULL: none) and starts
 * the registry of cfg with its users (kp_daemon_registry_users). NULL with err. */
kp_daemon_registry_t *kp_daemon_registry_start(kp_registry_config_t *cfg, const char *store_path,
                                               char *err, size_t errlen);
/* Stops the registry, then closes the store. NULL is ignored. */
void kp_daemon_registry_stop(kp_daemon_registry_t *d);

#endif
