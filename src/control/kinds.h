/*
 * kinds.h — the resource kinds the control plane serves (docs/api.md): API group/version,
 * plural and short names, scope, and the schema of known fields used to warn about (but
 * keep) unknown ones.
 */
#ifndef KP_KINDS_H
#define KP_KINDS_H

#include <jansson.h>
#include <stddef.h>

typedef struct kp_kind {
    const char *kind;       /* Topic */
    const char *group;      /* kafka.nais.io, "" for the core group */
    const char *version;    /* v1 */
    const char *plural;     /* topics */
    const char *singular;   /* topic */
    const char *short_name; /* aivenapp, or NULL */
    int namespaced;         /* 0: cluster-scoped (Pool) */
    const char *schema;     /* JSON: known keys; {} = any keys; "*" = any value */
} kp_kind_t;

extern const kp_kind_t kp_kinds[];
extern const size_t kp_kinds_count;

const kp_kind_t *kp_kind_by_plural(const char *group, const char *version, const char *plural);
/* "kafka.nais.io/v1" or "v1" */
void kp_kind_api_version(const kp_kind_t *k, char *out, size_t n);

/* Appends to `paths` (a JSON array of strings) every field of obj the schema does not know,
 * as dotted paths ("spec.foo", "spec.acl[1].bar"). */
void kp_kind_unknown_fields(const kp_kind_t *k, const json_t *obj, json_t *paths);

/* Kubernetes name rules: a DNS-1123 subdomain for names (<= 253), a DNS-1123 label for
 * namespaces (<= 63). 0 when valid, else -1 with a message. */
int kp_name_check(const char *name, int label, char *err, size_t errlen);

#endif
