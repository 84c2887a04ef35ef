/* secrets.c — sealing Secret data for the store (see secrets.h). */
#include "control/secrets.h"

#include "core/buf.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const kp_credentials_annotations[] = {KP_ANN_SERVICE_USER, KP_ANN_POOL, KP_ANN_OWNER,
                                                  KP_ANN_SUPERSEDED, NULL};

static void aad_of(const json_t *secret, char *out, size_t n)
{
    json_t *md = json_object_get(secret, "metadata");
    snprintf(out, n, "Secret/%s/%s", json_string_value(json_object_get(md, "namespace")) ?: "",
             json_string_value(json_object_get(md, "name")) ?: "");
}

int kp_secret_seal(const kp_pki_master_key_t *mk, json_t *secret, char *err, size_t errlen)
{
    json_t *data = json_object_get(secret, "data");
    if (!data) return 0;
    if (!json_is_object(data)) {
        snprintf(err, errlen, "data must be a map of base64 strings");
        return -1;
    }
    char *plain = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    char aad[512];
    aad_of(secret, aad, sizeof(aad));
    kp_buf_t sealed;
    kp_buf_init(&sealed);
    int rc = kp_pki_seal(mk, plain, strlen(plain), aad, strlen(aad), &sealed, err, errlen);
    memset(plain, 0, strlen(plain));
    free(plain);
    if (rc < 0) {
        kp_buf_free(&sealed);
        return -1;
    }
    size_t b64len = 4 * ((sealed.len + 2) / 3) + 1;
    char *b64 = kp_xmalloc(b64len);
    EVP_EncodeBlock((unsigned char *)b64, sealed.data, (int)sealed.len);
    kp_buf_free(&sealed);
    json_object_del(secret, "data");
    json_object_set_new(secret, "sealedData", json_string(b64));
    free(b64);
    return 0;
}

int kp_secret_open(const kp_pki_master_key_t *mk, json_t *secret, char *err, size_t errlen)
{
    const char *b64 = json_string_value(json_object_get(secret, "sealedData"));
    if (!b64) return 0;
    size_t n = strlen(b64);
    unsigned char *raw = kp_xmalloc(n / 4 * 3 + 3);
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    if (len < 0) {
        free(raw);
        snprintf(err, errlen, "sealed secret data is corrupt");
        return -1;
    }
    while (n > 0 && b64[n - 1] == '=') { /* EVP_DecodeBlock counts padding as data */
        len--;
        n--;
    }
    char aad[512];
    aad_of(secret, aad, sizeof(aad));
    kp_buf_t plain;
    kp_buf_init(&plain);
    int rc = kp_pki_open(mk, raw, (size_t)len, aad, strlen(aad), &plain, err, errlen);
    free(raw);
    if (rc < 0) {
        kp_pki_buf_wipe(&plain);
        return -1;
    }
    json_t *data = json_loadb((const char *)plain.data, plain.len, 0, NULL);
    kp_pki_buf_wipe(&plain);
    if (!data) {
        snprintf(err, errlen, "sealed secret data is corrupt");
        return -1;
    }
    json_object_del(secret, "sealedData");
    json_object_set_new(secret, "data", data);
    return 0;
}
