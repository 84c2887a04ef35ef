/*
 * k8s_proto.c — the one Kubernetes protobuf body kubectl sends: `kubectl auth can-i` posts
 * its SelfSubjectAccessReview as application/vnd.kubernetes.protobuf (the typed client's
 * default), everything else kpool serves comes as JSON or YAML. The envelope is "k8s\0"
 * then a runtime.Unknown {typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4};
 * raw is the SelfSubjectAccessReview {metadata = 1, spec = 2}, spec is
 * {resourceAttributes = 1 {namespace = 1, verb = 2, group = 3, version = 4, resource = 5,
 * subresource = 6, name = 7}}. Reads are bounds-checked: a short or malformed message is
 * an error, never a read past the buffer.
 */
#include "http/k8s.h"

#include "core/utf8.h"

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

json_t *kp_k8s_access_review_from_protobuf(const uint8_t *body, size_t len)
{
    static const uint8_t magic[4] = {'k', '8', 's', 0};
    if (len < 4 || memcmp(body, magic, 4) != 0) return NULL;
    const uint8_t *raw, *spec, *attrs;
    size_t raw_len, spec_len, attrs_len;
    if (sub(body + 4, len - 4, 2, &raw, &raw_len) != 1) return NULL;
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
