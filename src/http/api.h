/*
 * api.h — the control plane's HTTP/JSON API (docs/api.md), served by libmicrohttpd on its
 * own threads. Loopback by default; any other address needs TLS (certificate + key).
 */
#ifndef KP_API_H
#define KP_API_H

#include "control/store.h"
#include "pki/pki.h"

#include <stddef.h>

typedef struct kp_api kp_api_t;
struct kp_backup;

typedef struct kp_api_config {
    const char *listen;    /* host:port */
    const char *cert_path; /* PEM, required unless listen is loopback */
    const char *key_path;
    const kp_pki_master_key_t *master_key; /* Secret data is sealed with it in the store */
    struct kp_backup *backup;              /* /apis/kpool.dev/v1/backups (api_backup.c) */
} kp_api_config_t;

kp_api_t *kp_api_start(const kp_api_config_t *cfg, kp_store_t *store, char *err, size_t errlen);
int kp_api_port(const kp_api_t *api);
void kp_api_stop(kp_api_t *api);

#endif
