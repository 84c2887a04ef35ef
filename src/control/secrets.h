/*
 * secrets.h — Secret objects at rest: `data` is sealed (AES-256-GCM under the control plane's
 * master key, bound to "Secret/<ns>/<name>") into `sealedData` before it reaches the store,
 * and opened only when the API serves it or the control plane needs it.
 */
#ifndef KP_SECRETS_H
#define KP_SECRETS_H

#include "pki/pki.h"

#include <jansson.h>
#include <stddef.h>

/* The type and annotations of the credentials secrets the control plane issues
 * (credentials.c). The janitor acts on secrets of this type, so clients may not write the
 * type or these annotations (the API refuses them). */
#define KP_CREDENTIALS_SECRET_TYPE "kpool.dev/kafka-credentials"
#define KP_ANN_SERVICE_USER        "kpool.dev/service-user"
#define KP_ANN_POOL                "kpool.dev/pool"
#define KP_ANN_OWNER               "kpool.dev/aivenapplication"
#define KP_ANN_SUPERSEDED          "kpool.dev/superseded-at"
/* The four annotations above, NULL-terminated. */
extern const char *const kp_credentials_annotations[];

/* In place: data -> sealedData. 0 or -1 (err filled, no key material in it). */
int kp_secret_seal(const kp_pki_master_key_t *mk, json_t *secret, char *err, size_t errlen);
/* In place: sealedData -> data. 0 or -1. A secret without sealedData is left as it is. */
int kp_secret_open(const kp_pki_master_key_t *mk, json_t *secret, char *err, size_t errlen);

#endif
