/*
 * registry_state.h — the schema registry's in-memory state and the `_schemas` record
 * format, with no I/O: the Kafka side (registry_log.c) feeds records in, the HTTP side
 * (registry_http.c) reads and plans writes. Everything here is unit-testable.
 *
 * The state is exactly what the compacted `_schemas` topic says, applied in offset order:
 *   SCHEMA key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}
 *     value {"subject":S,"version":V,"id":N,"schema":TEXT,"schemaType":T (omitted for
 *     AVRO),"references":[...],"deleted":bool}; a tombstone removes the version for good;
 *   CONFIG key {"keytype":"CONFIG","subject":S|null,"magic":0}
 *     value {"compatibilityLevel":LEVEL}; a tombstone removes the setting;
 *   DELETE_SUBJECT key {"keytype":"DELETE_SUBJECT","subject":S,"magic":0}
 *     value {"subject":S,"version":V}: versions up to V are soft-deleted;
 *   NOOP key {"keytype":"NOOP","magic":0} value {"maxId":N}: our id watermark, written
 *     before permanent deletes so that compaction cannot make an id reusable (Confluent
 *     writes NOOPs without value); MODE and other key types are ignored.
 * This is Confluent Schema Registry's format, so its tooling can read our topic.
 *
 * Writes are planned here (validation, compatibility, id and version assignment) as a
 * list of records; the caller produces them and waits until they come back through apply.
 * One writer at a time (the caller's lock), so planned ids cannot collide.
 *
 * Not thread-safe: the registry holds a read/write lock around it.
 */
#ifndef KP_REGISTRY_STATE_H
#define KP_REGISTRY_STATE_H

#include "core/hmap.h"
#include "registry/avro_schema.h"

#include <jansson.h>
#include <stddef.h>

/* Versions one subject may hold (soft-deleted ones included): bounds the work of a
 * transitive compatibility check and of listing a subject. */
#define KP_REG_VERSIONS_MAX 10000
/* Subject name length: subjects are topic names plus -key/-value in practice. */
#define KP_REG_SUBJECT_LEN_MAX 1024
/* References of one schema. */
#define KP_REG_REFERENCES_MAX 100

typedef enum kp_compat {
    KP_COMPAT_UNSET = -1,
    KP_COMPAT_NONE = 0,
    KP_COMPAT_BACKWARD,
    KP_COMPAT_BACKWARD_TRANSITIVE,
    KP_COMPAT_FORWARD,
    KP_COMPAT_FORWARD_TRANSITIVE,
    KP_COMPAT_FULL,
    KP_COMPAT_FULL_TRANSITIVE,
} kp_compat_t;

const char *kp_compat_name(kp_compat_t c);
/* 0 and *out, or -1 for an unknown name (case-sensitive, as Confluent). */
int kp_compat_parse(const char *name, kp_compat_t *out);

/* One schema id: the canonical text, its type and references. */
typedef struct kp_reg_schema {
    int id;
    char *type;             /* "AVRO", "JSON", "PROTOBUF" */
    char *text;             /* canonical */
    json_t *references;     /* array of {"name","subject","version"} (possibly empty) */
    kp_avro_schema_t *avro; /* AVRO only; NULL when it cannot be parsed any more */
    int uses;               /* versions (soft-deleted included) naming this id */
} kp_reg_schema_t;

typedef struct kp_reg_version {
    int version;
    int id;
    int deleted;
} kp_reg_version_t;

typedef struct kp_reg_subject {
    char *name;
    kp_reg_version_t *versions; /* ascending by version */
    int nversions, cap;
    kp_compat_t compat; /* KP_COMPAT_UNSET: the global level applies */
} kp_reg_subject_t;

typedef struct kp_reg_state {
    kp_hmap_t subjects; /* name -> kp_reg_subject_t */
    kp_hmap_t ids;      /* int id -> kp_reg_schema_t */
    kp_hmap_t by_text;  /* type, references and text -> kp_reg_schema_t */
    int max_id;         /* highest id ever seen: new ids are above it */
    kp_compat_t global; /* KP_COMPAT_UNSET: BACKWARD */
    long long records_applied, records_ignored;
} kp_reg_state_t;

void kp_reg_state_init(kp_reg_state_t *st);
void kp_reg_state_free(kp_reg_state_t *st);

/* Applies one `_schemas` record (value NULL: a tombstone). 0, or -1 when the record was
 * malformed and ignored (the reason in err). */
int kp_reg_apply(kp_reg_state_t *st, const char *key, size_t keylen, const char *value,
                 size_t valuelen, char *err, size_t errlen);

/* ---- reads ---- */

kp_reg_subject_t *kp_reg_subject(const kp_reg_state_t *st, const char *name);
kp_reg_schema_t *kp_reg_schema_by_id(const kp_reg_state_t *st, int id);
/* The subject's version v (-1: latest); deleted ones only when include_deleted. */
kp_reg_version_t *kp_reg_version_find(const kp_reg_subject_t *s, int v, int include_deleted);
/* 1 when the subject has a version that is not soft-deleted. */
int kp_reg_subject_live(const kp_reg_subject_t *s);
/* The level in force for a subject (its own, else the global one, else BACKWARD). */
kp_compat_t kp_reg_level(const kp_reg_state_t *st, const kp_reg_subject_t *s);

/* ---- writes: errors and plans ---- */

/* Confluent's error codes, with the HTTP status each one travels with. */
typedef struct kp_reg_error {
    int http;
    int code; /* 40401, 42201, ... */
    char message[1024];
} kp_reg_error_t;

void kp_reg_error_set(kp_reg_error_t *e, int http, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records to produce, in order. */
typedef struct kp_reg_record {
    char *key;
    char *value; /* NULL: tombstone */
} kp_reg_record_t;

typedef struct kp_reg_batch {
    kp_reg_record_t *records;
    int n, cap;
} kp_reg_batch_t;

void kp_reg_batch_free(kp_reg_batch_t *b);

/* A schema as submitted, parsed and canonicalized (not yet registered). */
typedef struct kp_reg_candidate {
    char *type;
    char *text;         /* canonical */
    json_t *references; /* array, possibly empty */
    kp_avro_schema_t *avro;
} kp_reg_candidate_t;

/* Parses a submitted schema of type ("AVRO" when NULL) with its references (a JSON array
 * of {name, subject, version}, or NULL), which must exist. 0, or -1 with e set (42201
 * invalid schema, 40402/40401 missing reference, 422 unknown type). */
int kp_reg_candidate_parse(const kp_reg_state_t *st, const char *type, const char *text, size_t len,
                           const json_t *references, kp_reg_candidate_t *c, kp_reg_error_t *e);
void kp_reg_candidate_free(kp_reg_candidate_t *c);

/* The id this candidate already has anywhere (same type, text and references), or 0. */
int kp_reg_candidate_known_id(const kp_reg_state_t *st, const kp_reg_candidate_t *c);
/* The subject's version holding exactly this candidate (deleted ones when asked), or NULL. */
kp_reg_version_t *kp_reg_candidate_in_subject(const kp_reg_state_t *st, const kp_reg_subject_t *s,
                                              const kp_reg_candidate_t *c, int include_deleted);

/*
 * Compatibility of c against subject s at level (transitive levels check every live
 * version, the others the latest live one). against_version > 0 checks that one version
 * only (the /compatibility endpoint). 1 compatible, 0 not (messages appended to msgs when
 * given). AVRO schemas are checked by avro_compat, JSON ones by json_compat; PROTOBUF
 * schemas are compatible only under NONE... unless identical: see docs/registry.md.
 */
int kp_reg_compatible(const kp_reg_state_t *st, const kp_reg_subject_t *s, kp_compat_t level,
                      const kp_reg_candidate_t *c, int against_version, json_t *msgs);

/*
 * Plans registering c under subject: an existing live version with the same schema returns
 * its id and no records; otherwise compatibility is checked and one SCHEMA record planned,
 * reusing the id of an identical schema elsewhere or taking max_id + 1. 0 with *id (and
 * *version, 0 when nothing is written), or -1 with e (409 incompatible, 42201, ...).
 */
int kp_reg_plan_register(const kp_reg_state_t *st, const char *subject, const kp_reg_candidate_t *c,
                         kp_reg_batch_t *out, int *id, int *version, kp_reg_error_t *e);
/* Soft (permanent 0) or permanent deletion of a subject; *deleted: the versions affected
 * (a JSON array, new reference). 40401, 40404 (already soft-deleted), 40405 (permanent
 * without soft first). */
int kp_reg_plan_delete_subject(const kp_reg_state_t *st, const char *subject, int permanent,
                               kp_reg_batch_t *out, json_t **deleted, kp_reg_error_t *e);
/* Same for one version (-1: latest). 40401, 40402, 40406, 40407. */
int kp_reg_plan_delete_version(const kp_reg_state_t *st, const char *subject, int version,
                               int permanent, kp_reg_batch_t *out, int *deleted_version,
                               kp_reg_error_t *e);
/* A CONFIG record; subject NULL: global; level KP_COMPAT_UNSET: a tombstone (DELETE). */
void kp_reg_plan_config(const char *subject, kp_compat_t level, kp_reg_batch_t *out);

/* Record text builders, also used by tests. */
char *kp_reg_key_schema(const char *subject, int version);
char *kp_reg_value_schema(const char *subject, int version, int id, const char *type,
                          const char *text, const json_t *references, int deleted);

#endif
