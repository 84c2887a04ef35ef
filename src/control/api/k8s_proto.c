/*
 * k8s_proto.c — the Kubernetes protobuf bodies kubectl sends: its typed client (used by
 * `kubectl auth can-i` and `kubectl create secret`) posts application/vnd.kubernetes.protobuf;
 * everything else comes as JSON or YAML. The envelope is "k8s\0" then a runtime.Unknown
 * {typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4}; raw is the object:
 *   SelfSubjectAccessReview {metadata = 1, spec = 2 {resourceAttributes = 1 {namespace = 1,
 *     verb = 2, group = 3, version = 4, resource = 5, subresource = 6, name = 7}}}
 *   Secret {metadata = 1 {name = 1, generateName = 2, namespace = 3, labels = 11,
 *     annotations = 12 (maps: entries {key = 1, value = 2})}, data = 2 (map of bytes),
 *     type = 3, stringData = 4, immutable = 5 (varint)}
 * Reads are bounds-checked: a short or malformed message is an error, never a read past
 * the buffer.
 */
#include "control/api/k8s.h"

#include "core/utf8.h"

#include <openssl/evp.h>
#include <stdlib.h>

#include <string.h>

typedef struct pb {
    const uint8_t *p, *end;
} pb_t;

static int varint(pb_t *b, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Next field: its number and, for length-delimited ones, the bytes. Other wire types are
 * skipped (*len 0, *data NULL). 1 with a field, 0 at the end, -1 malformed. */
static int field(pb_t *b, uint32_t *num, const uint8_t **data, size_t *len)
{
    if (b->p == b->end) return 0;
    uint64_t key, v;
    if (varint(b, &key) < 0) return -1;
    *num = (uint32_t)(key >> 3);
    *data = NULL;
    *len = 0;
    switch (key & 7) {
    case 0:
        return varint(b, &v) < 0 ? -1 : 1;
    case 1:
        if (b->end - b->p < 8) return -1;
        b->p += 8;
        return 1;
    case 5:
        if (b->end - b->p < 4) return -1;
        b->p += 4;
        return 1;
    case 2:
        if (varint(b, &v) < 0 || v > (uint64_t)(b->end - b->p)) return -1;
        *data = b->p;
        *len = (size_t)v;
        b->p += v;
        return 1;
    default:
        return -1;
    }
}

/* The length-delimited field num of the message [p, p + n) (the last one wins). */
static int sub(const uint8_t *p, size_t n, uint32_t want, const uint8_t **out, size_t *outlen)
{
    pb_t b = {p, p + n};
    uint32_t num;
    const uint8_t *d;
    size_t len;
    int rc, found = 0;
    while ((rc = field(&b, &num, &d, &len)) == 1)
        if (num == want && d) {
            *out = d;
            *outlen = len;
            found = 1;
        }
    return rc < 0 ? -1 : found;
}

/* Strings longer than this are refused (names, label values; Secret values are bytes). */
#define PROTO_STRING_MAX (1 << 20)

static json_t *pb_string(const uint8_t *d, size_t n)
{
    char *text = malloc(n + 1);
    if (!text) return NULL;
    memcpy(text, d, n);
    text[n] = 0;
    json_t *v = memchr(d, 0, n) ? NULL : kp_json_text(text); /* NUL: not a Kubernetes string */
    free(text);
    return v;
}

/* A map<string, string|bytes> entry {key = 1, value = 2} into obj; bytes become base64.
 * 0 or -1. */
static int pb_map_entry(json_t *obj, const uint8_t *d, size_t n, int bytes)
{
    const uint8_t *k = NULL, *v = (const uint8_t *)"";
    size_t kn = 0, vn = 0;
    pb_t b = {d, d + n};
    uint32_t num;
    const uint8_t *fd;
    size_t fl;
    int rc;
    while ((rc = field(&b, &num, &fd, &fl)) == 1) {
        if (num == 1 && fd) k = fd, kn = fl;
        if (num == 2 && fd) v = fd, vn = fl;
    }
    if (rc < 0 || !k || kn > 253 || vn > PROTO_STRING_MAX) return -1;
    json_t *key = pb_string(k, kn);
    json_t *val;
    if (bytes) {
        char *b64 = malloc(4 * ((vn + 2) / 3) + 1);
        if (!b64) {
            json_decref(key);
            return -1;
        }
        EVP_EncodeBlock((unsigned char *)b64, v, (int)vn);
        val = json_string(b64);
        free(b64);
    } else {
        val = pb_string(v, vn);
    }
    int ok = key && val;
    if (ok)
        json_object_set_new(obj, json_string_value(key), val);
    else
        json_decref(val);
    json_decref(key);
    return ok ? 0 : -1;
}

/* The object inside the envelope: raw (field 2 of runtime.Unknown). 1, 0 (none), -1. */
static int envelope(const uint8_t *body, size_t len, const uint8_t **raw, size_t *raw_len)
{
    static const uint8_t magic[4] = {'k', '8', 's', 0};
    if (len < 4 || memcmp(body, magic, 4) != 0) return -1;
    return sub(body + 4, len - 4, 2, raw, raw_len);
}

json_t *kp_k8s_secret_from_protobuf(const uint8_t *body, size_t len)
{
    const uint8_t *raw;
    size_t raw_len;
    if (envelope(body, len, &raw, &raw_len) != 1) return NULL;
    json_t *secret =
        json_pack("{s:s, s:s, s:{}}", "apiVersion", "v1", "kind", "Secret", "metadata");
    json_t *md = json_object_get(secret, "metadata");
    pb_t b = {raw, raw + raw_len};
    uint32_t num;
    const uint8_t *d;
    size_t n;
    int rc;
    while ((rc = field(&b, &num, &d, &n)) == 1) {
        if (!d) continue; /* immutable (5, a varint) is not enforced by kpool */
        if (num == 1) {   /* ObjectMeta */
            pb_t m = {d, d + n};
            uint32_t mn;
            const uint8_t *md_d;
            size_t md_n;
            static const char *names[] = {NULL, "name", "generateName", "namespace"};
            while ((rc = field(&m, &mn, &md_d, &md_n)) == 1) {
                if (!md_d) continue;
                if (mn >= 1 && mn <= 3) {
                    json_t *v = md_n <= 253 ? pb_string(md_d, md_n) : NULL;
                    if (!v) goto bad;
                    json_object_set_new(md, names[mn], v);
                } else if (mn == 11 || mn == 12) {
                    const char *key = mn == 11 ? "labels" : "annotations";
                    json_t *map = json_object_get(md, key);
                    if (!map) {
                        map = json_object();
                        json_object_set_new(md, key, map);
                    }
                    if (pb_map_entry(map, md_d, md_n, 0) < 0) goto bad;
                }
            }
            if (rc < 0) goto bad;
        } else if (num == 2 || num == 4) { /* data (bytes), stringData (strings) */
            const char *key = num == 2 ? "data" : "stringData";
            json_t *map = json_object_get(secret, key);
            if (!map) {
                map = json_object();
                json_object_set_new(secret, key, map);
            }
            if (pb_map_entry(map, d, n, num == 2) < 0) goto bad;
        } else if (num == 3) {
            json_t *v = n <= 253 ? pb_string(d, n) : NULL;
            if (!v) goto bad;
            json_object_set_new(secret, "type", v);
        }
    }
    if (rc < 0) goto bad;
    return secret;
bad:
    json_decref(secret);
    return NULL;
}

json_t *kp_k8s_access_review_from_protobuf(const uint8_t *body, size_t len)
{
    const uint8_t *raw, *spec, *attrs;
    size_t raw_len, spec_len, attrs_len;
    if (envelope(body, len, &raw, &raw_len) != 1) return NULL;
    if (sub(raw, raw_len, 2, &spec, &spec_len) != 1) return NULL;
    json_t *ra = json_object();
    int rc = sub(spec, spec_len, 1, &attrs, &attrs_len);
    if (rc < 0) {
        json_decref(ra);
        return NULL;
    }
    if (rc == 1) {
        static const char *names[] = {NULL,      "namespace", "verb",        "group",
                                      "version", "resource",  "subresource", "name"};
        pb_t b = {attrs, attrs + attrs_len};
        uint32_t num;
        const uint8_t *d;
        size_t n;
        while ((rc = field(&b, &num, &d, &n)) == 1) {
            if (!d || num < 1 || num > 7 || n > 1024) continue;
            char text[1025];
            memcpy(text, d, n);
            text[n] = 0;
            json_object_set_new(ra, names[num], kp_json_text(text));
        }
        if (rc < 0) {
            json_decref(ra);
            return NULL;
        }
    }
    return json_pack("{s:{s:o}}", "spec", "resourceAttributes", ra);
}
