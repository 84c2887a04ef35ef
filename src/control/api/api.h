/*
 * api.h — the control plane's HTTP/JSON API (docs/api.md), served by libmicrohttpd on its
 * own threads. Loopback by default; any other address needs TLS (certificate + key).
 */
#ifndef KP_API_H
#define KP_API_H

#include "control/store.h"
#include "pki/pki.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_api kp_api_t;
struct kp_backup;

typedef struct kp_api_config {
    const char *listen;    /* host:port */
    const char *cert_path; /* PEM, required unless listen is loopback */
    const char *key_path;
    const kp_pki_master_key_t *master_key; /* Secret data is sealed with it in the store */
    struct kp_backup *backup;              /* /apis/kpool.dev/v1/backups (api_backup.c) */
    int tls;                               /* TLS on loopback too (kubectl's listener) */
} kp_api_config_t;

kp_api_t *kp_api_start(const kp_api_config_t *cfg, kp_store_t *store, char *err, size_t errlen);
int kp_api_port(const kp_api_t *api);
void kp_api_stop(kp_api_t *api);

/* One request of the resource API (everything but /apis/kpool.dev/v1/backups and the body
 * size limit, which the HTTP layer handles). All fields are borrowed; any may hold any bytes
 * (NULL for absent headers and query arguments). */
typedef struct kp_api_request {
    const char *method;
    const char *url; /* the path, percent-decoded */
    const char *authorization;
    const char *label_selector;
    /* Kubernetes API parameters (docs/kubectl.md); NULL when absent */
    const char *accept;       /* a Table is asked for with as=Table;g=meta.k8s.io */
    const char *content_type; /* PATCH: which patch format */
    const char *user_agent;   /* the field manager when fieldManager is absent */
    const char *field_selector, *limit, *continue_token, *field_manager, *force;
    const char *field_validation, *include_object, *dry_run;
    const uint8_t *body;
    size_t len;
} kp_api_request_t;

/* The answer: an HTTP status code, a JSON body (always set: a resource, a list or a
 * Status) and the unknown fields to report in Warning headers (NULL when none). */
typedef struct kp_api_reply {
    unsigned code;
    json_t *body;
    json_t *warnings;
} kp_api_reply_t;

/* Answers req: the API minus HTTP (tests/fuzz/fuzz_api.c drives it directly). Thread-safe
 * as the store is. Free the reply with kp_api_reply_free; serialize it with
 * kp_api_reply_text (api_reply.h). */
void kp_api_answer(kp_api_t *api, const kp_api_request_t *req, kp_api_reply_t *out);
void kp_api_reply_free(kp_api_reply_t *out);
/* An API over store with no listener (for kp_api_answer); free with kp_api_stop. */
kp_api_t *kp_api_new_unlistened(kp_store_t *store, const kp_pki_master_key_t *master_key);

#endif
