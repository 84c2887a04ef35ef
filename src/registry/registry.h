/*
 * registry.h — a pool's Confluent-compatible schema registry (SPEC 6, docs/registry.md):
 * HTTPS with basic auth, state replayed from the pool's compacted `_schemas` topic.
 *
 * `kpool up` runs one in-process next to the control plane; `kpool registry` runs one alone.
 * Either way the composition root (daemon/) hands it a users callback that reads the
 * service users' registry verifiers from the control plane's store. Lifecycle: start, serve
 * on libmicrohttpd's threads, stop (joins everything).
 */
#ifndef KP_REGISTRY_H
#define KP_REGISTRY_H

#include "registry/registry_log.h"

#include <stddef.h>

typedef struct kp_registry kp_registry_t;

/* A service user's registry verifier (kp_pki_password_hash), team and pool, each malloc'd
 * (the caller frees them): 0, or -1 when the user is unknown or revoked. Any thread. */
typedef int (*kp_registry_users_fn)(void *arg, const char *user, char **hash, char **team,
                                    char **pool);

typedef struct kp_registry_config {
    const char *listen;               /* host:port */
    const char *cert_path, *key_path; /* HTTPS certificate (chain) and key, PEM */
    int plain_http;                   /* 1: no TLS (loopback only; tests) */
    const char *pool;                 /* service users of this pool are accepted */
    kp_registry_users_fn users;       /* their verifiers; NULL: the admin only */
    void *users_arg;
    const char *admin_user;     /* default "kpool-admin" */
    const char *admin_password; /* required */
    int auth_cache_ms;          /* how long a user's verifier is reused; default 2000 */
    kp_reg_log_config_t log;    /* where `_schemas` lives */
} kp_registry_config_t;

kp_registry_t *kp_registry_start(const kp_registry_config_t *cfg, char *err, size_t errlen);
int kp_registry_port(const kp_registry_t *r);
/* 1 once `_schemas` has been replayed (before that every API call answers 503). */
int kp_registry_ready(kp_registry_t *r);
void kp_registry_stop(kp_registry_t *r);

#endif
