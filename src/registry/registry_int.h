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
    kp_registry_users_fn users; /* NULL: the admin only */
    void *users_arg;
    char *pool;
    char *admin_user;
    char admin_verifier[KP_PKI_PASSWORD_HASH_LEN];
    int auth_cache_ms;
    pthread_mutex_t auth_mu;
    kp_hmap_t auth_cache; /* user -> reg_auth_entry_t */
    int offline;          /* kp_registry_new_offline: no log, writes applied directly */
};

/* Who is calling: the admin, or a service user and the team (namespace) it belongs to. */
typedef struct kp_reg_caller {
    int admin;
    char user[128];
    char team[128]; /* "" for the admin */
} kp_reg_caller_t;

/* 0 with who filled, -1 when the credentials are missing or wrong. Thread-safe. */
int kp_registry_authenticate(kp_registry_t *r, const char *authorization, kp_reg_caller_t *who);

/* The MHD access handler and completion callback (registry_http.c). */
enum MHD_Result kp_registry_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version, const char *upload,
                                        size_t *upload_len, void **state);
/*
 * A reply built without HTTP: what kp_registry_http_handle queues, and what the fuzz target
 * and unit tests look at. body is malloc'd (never NULL once built), type static.
 */
typedef struct kp_reg_reply {
    unsigned status;
    char *body;
    const char *type;
    int auth_challenge;
    int error_code; /* Confluent's error_code of an error reply, else 0 */
} kp_reg_reply_t;

/*
 * Routes one authenticated request and builds its reply: method, url (still
 * percent-encoded, without the query), query ("a=b&c=d", NULL for none; only "name=true"
 * flags are read), the body. The caller frees out->body.
 */
void kp_registry_http_serve(kp_registry_t *r, const kp_reg_caller_t *who, const char *method,
                            const char *url, const char *query, const char *body, size_t body_len,
                            kp_reg_reply_t *out);

/* A registry without Kafka or HTTP for tests and fuzzing: writes are applied to the state
 * directly. Freed with kp_registry_stop. */
kp_registry_t *kp_registry_new_offline(void);

/* The registry's requests in /metrics (kpool_registry_requests_total by HTTP status,
 * kpool_registry_request_seconds): a kp_metrics source (core/metrics.h), arg unused. The
 * counters are process-wide (one registry per process). */
void kp_registry_metrics_render(kp_buf_t *out, void *arg);

void kp_registry_http_completed(void *cls, struct MHD_Connection *conn, void **state,
                                enum MHD_RequestTerminationCode toe);

#endif
