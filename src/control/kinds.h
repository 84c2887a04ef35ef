/*
 * kinds.h — the resource kinds the control plane serves (docs/api.md): API group/version,
 * plural and short names, scope, and the schema of known fields used to warn about (but
 * keep) unknown ones.
 */
#ifndef KP_KINDS_H
#define KP_KINDS_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* One printer column: what `kpool get` prints and what the API's Table output
 * (Accept: application/json;as=Table;g=meta.k8s.io;v=v1, what kubectl asks for) carries.
 * path: dot paths, alternatives separated by '|'; "@name", "@age", "@datacount",
 * "@replication", "@tokenage" are computed (kp_kind_cell). */
typedef struct kp_kind_column {
    const char *header; /* "FULLY QUALIFIED NAME" (kubectl shows headers upper-cased) */
    const char *path;
    const char *dflt; /* shown when every alternative is absent */
    int wide;         /* only with -o wide (Table: priority 1) */
    const char *type; /* OpenAPI type of the cell: string, integer, boolean, date */
} kp_kind_column_t;

struct kp_control;
struct kp_reconcile_result;
/* A kind's reconcile hook (reconcile.h): called on the reconciler thread with the stored
 * object (a reference the caller owns); fills res (retry, failed). */
typedef void (*kp_kind_reconcile_fn)(struct kp_control *c, json_t *obj,
                                     struct kp_reconcile_result *res);

typedef struct kp_kind {
    const char *kind;       /* Topic */
    const char *group;      /* kafka.nais.io, "" for the core group */
    const char *version;    /* v1 */
    const char *plural;     /* topics */
    const char *singular;   /* topic */
    const char *short_name; /* aivenapp, or NULL */
    int namespaced;         /* 0: cluster-scoped (Pool) */
    /* JSON: known keys; {} = any keys; a string = any value of that OpenAPI type ("string",
     * "integer", "boolean", "number"; "*" = any type). Drives unknown-field warnings and the
     * OpenAPI documents (k8s_openapi.c). */
    const char *schema;
    const kp_kind_column_t *columns; /* NULL-header terminated; NULL: KP_KIND_COLUMNS */
    const char *description;         /* one sentence: kubectl explain shows it */
    /* The reconciler (control.c) dispatches through these. reconcile NULL: the kind is not
     * reconciled (a change is only stored). */
    kp_kind_reconcile_fn reconcile;
    int resync_rank; /* a resync queues lower ranks first: pools before what needs them */
    /* when an object of this kind changes, the object of this other kind with the same
     * namespace and name is reconciled too (an Application mirrors its AivenApplication's
     * status); NULL: none */
    const char *reconcile_also;
} kp_kind_t;

extern const kp_kind_t kp_kinds[];
extern const size_t kp_kinds_count;

const kp_kind_t *kp_kind_by_plural(const char *group, const char *version, const char *plural);
/* The kind named kind ("Topic"), or NULL. */
const kp_kind_t *kp_kind_named(const char *kind);
/* "kafka.nais.io/v1" or "v1" */
void kp_kind_api_version(const kp_kind_t *k, char *out, size_t n);

/* Appends the text of column c for obj (creation time relative to now for "@age"): the
 * value, or c->dflt. Control characters become spaces; a Secret's values are never read. */
struct kp_buf;
void kp_kind_cell(const kp_kind_column_t *c, const json_t *obj, time_t now, struct kp_buf *out);
/* Appends a scalar (or an array of scalars, comma-separated; an object as compact JSON) as
 * text. 0 when v is absent, null or an empty string. */
int kp_kind_value_append(struct kp_buf *out, const json_t *v);
/* The columns of teams (not a stored kind: api_teams.c). */
extern const kp_kind_column_t kp_team_columns[];
/* NAME and AGE: the columns of a kind whose entry has none. */
extern const kp_kind_column_t kp_generic_columns[];
#define KP_KIND_COLUMNS(k) ((k)->columns ? (k)->columns : kp_generic_columns)

/* Parses "2026-11-27T07:00:00Z" (fraction and +-hh:mm offsets accepted). 0 or -1. */
int kp_time_parse(const char *s, time_t *out);
/* kubectl's age ("45s", "3m20s", "3h", "5d", "2y"), for a duration in seconds. */
void kp_age_format(long long seconds, char *out, size_t outlen);
/* The age of obj (metadata.creationTimestamp) at now, "<unknown>" when it has none. */
void kp_age_of(const json_t *obj, time_t now, char *out, size_t outlen);

/* Appends to `paths` (a JSON array of strings) every field of obj the schema does not know,
 * as dotted paths ("spec.foo", "spec.acl[1].bar"). */
void kp_kind_unknown_fields(const kp_kind_t *k, const json_t *obj, json_t *paths);

/* The secret an AivenApplication's spec names: spec.kafka.secretName, else spec.secretName
 * (the older place, still accepted). NULL when neither is a string. */
const char *kp_aivenapp_secret_name(const json_t *spec);

/* Kubernetes name rules: a DNS-1123 subdomain for names (<= 253), a DNS-1123 label for
 * namespaces (<= 63). 0 when valid, else -1 with a message. */
int kp_name_check(const char *name, int label, char *err, size_t errlen);

#endif
