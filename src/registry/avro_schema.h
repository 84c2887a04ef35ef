/*
 * avro_schema.h — Avro schemas as the schema registry needs them: parsed from JSON with the
 * specification's rules (names and namespaces, named-type references, unions, defaults
 * checked against their types), written back in one canonical JSON text so that schemas
 * that differ only in whitespace, key order or how names are spelled dedupe to one id, and
 * walked by the compatibility checker (avro_compat.h).
 *
 * libavro is used as an extra gate (it must accept the schema too), but it drops defaults
 * and accepts duplicate fields, symbols and union branches, so the rules here are our own.
 *
 * A parsed schema is a graph (recursive records point back at themselves): every node lives
 * in the schema's node list and is freed with it. Immutable after parse, so several threads
 * may read one schema.
 */
#ifndef KP_AVRO_SCHEMA_H
#define KP_AVRO_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Nesting depth of a schema document (records in records, arrays of maps, ...): deeper input
 * is refused instead of recursing the stack away. */
#define KP_AVRO_DEPTH_MAX 64
/* Named types, fields, symbols or branches in one schema: bounds the work of a compatibility
 * check (pairs of named types) on hostile input. */
#define KP_AVRO_NODES_MAX 20000

typedef enum kp_avro_type {
    KP_AVRO_NULL = 0,
    KP_AVRO_BOOLEAN,
    KP_AVRO_INT,
    KP_AVRO_LONG,
    KP_AVRO_FLOAT,
    KP_AVRO_DOUBLE,
    KP_AVRO_BYTES,
    KP_AVRO_STRING,
    KP_AVRO_RECORD,
    KP_AVRO_ENUM,
    KP_AVRO_ARRAY,
    KP_AVRO_MAP,
    KP_AVRO_UNION,
    KP_AVRO_FIXED,
} kp_avro_type_t;

typedef struct kp_avro_node kp_avro_node_t;

typedef struct kp_avro_field {
    char *name;
    kp_avro_node_t *type;
    json_t *default_value; /* owned reference; NULL when the field has no default */
    char *order;           /* NULL (ascending), "descending" or "ignore" */
    json_t *doc;           /* owned; NULL when absent */
    json_t *aliases;       /* owned array of strings; NULL when absent */
    json_t *props;         /* owned object: other attributes, kept for the canonical form */
} kp_avro_field_t;

struct kp_avro_node {
    kp_avro_type_t type;
    /* named types (record, enum, fixed) */
    char *fullname;  /* "a.b.Name" or "Name" */
    char *name;      /* last part of fullname */
    char *space;     /* namespace ("" for none) */
    json_t *aliases; /* full names (resolved against the type's namespace); owned or NULL */
    json_t *doc;
    /* record */
    kp_avro_field_t *fields;
    int nfields;
    /* enum */
    char **symbols;
    int nsymbols;
    char *enum_default; /* NULL when the enum has no default symbol */
    /* fixed */
    long long size;
    /* array items, map values */
    kp_avro_node_t *items;
    /* union */
    kp_avro_node_t **branches;
    int nbranches;
    json_t *props;      /* other attributes (logicalType, precision, ...), owned object or NULL */
    int from_reference; /* defined by a referenced schema, not this one */
};

typedef struct kp_avro_schema {
    kp_avro_node_t *root;
    kp_avro_node_t **nodes; /* every node, for freeing */
    int nnodes, cap;
    char *canonical; /* canonical JSON text (malloc'd) */
} kp_avro_schema_t;

/*
 * Parses text (length len) as an Avro schema. refs/nrefs: the texts of referenced schemas
 * (Confluent schema references), whose named types may be used by name; they are parsed
 * first, in order. Returns the schema, or NULL with a message in err naming what is wrong
 * and where ("fields[2].default: expected an int, got a string").
 */
kp_avro_schema_t *kp_avro_parse(const char *text, size_t len, const char *const *refs,
                                const size_t *ref_lens, int nrefs, char *err, size_t errlen);
void kp_avro_schema_free(kp_avro_schema_t *s);

/* "int", "record", ... (the Avro type name). */
const char *kp_avro_type_name(kp_avro_type_t t);

#endif
