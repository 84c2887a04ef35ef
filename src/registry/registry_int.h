/*
 * registry_int.h — what registry.c (lifecycle, authentication) and registry_http.c (the
 * REST API) share. Not for other modules.
 *
 * Locks: `lock` (read/write) guards `state`: the consumer thread writes it, HTTP threads
 * read it. `write_mu` makes HTTP writers take turns: plan under the read lock, produce,
 * wait until applied, answer — so ids and versions are assigned by one writer at a time.
 * `auth_mu` guards the verifier cache.
 */
#ifndef KP_REGISTRY_INT_H
#define KP_REGISTRY_INT_H

#include "core/hmap.h"
#include "pki/pki.h"
#include "registry/registry.h"
#include "registry/registry_state.h"

#include <microhttpd.h>
#include <pthread.h>

/* Request bodies above this are refused (413): the largest schemas are a few MiB. */
#define KP_REG_BODY_BYTES_MAX (16 * 1024 * 1024)
/* Cached verifiers; past this the cache is emptied (unknown user names cannot grow it
 * anyway: only users the store knows are cached). */
#define KP_REG_AUTH_CACHE_MAX 10000

struct kp_registry {
    struct MHD_Daemon *daemon;
    int port;
    char *tls_cert, *tls_key;
    kp_reg_state_t state;
    pthread_rwlock_t lock;
    pthread_mutex_t write_mu;
    kp_reg_log_t *log;
    kp_store_t *store;
    char *pool;
    char *admin_user;
    char admin_verifier[KP_PKI_PASSWORD_HASH_LEN];
    int auth_cache_ms;
    pthread_mutex_t auth_mu;
    kp_hmap_t auth_cache; /* user -> reg_auth_entry_t */
};

/* Who is calling. */
typedef struct kp_reg_caller {
    int admin;
    char user[128];
} kp_reg_caller_t;

/* 0 with who filled, -1 when the credentials are missing or wrong. Thread-safe. */
int kp_registry_authenticate(kp_registry_t *r, const char *authorization, kp_reg_caller_t *who);

/* The MHD access handler and completion callback (registry_http.c). */
enum MHD_Result kp_registry_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version, const char *upload,
                                        size_t *upload_len, void **state);
void kp_registry_http_completed(void *cls, struct MHD_Connection *conn, void **state,
                                enum MHD_RequestTerminationCode toe);

#endif
