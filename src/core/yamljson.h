/*
 * yamljson.h — YAML documents to jansson values and back (libyaml), for resources that users
 * write in YAML (kpool apply -f, the API's application/yaml bodies) and for `-o yaml`.
 *
 * Scalars follow the YAML 1.2 core schema: quoted scalars are strings; plain ones are null
 * (null, ~, empty), booleans (true/false), integers, floats, else strings. Aliases are
 * expanded, with a ceiling on the total number of nodes so an alias bomb is an error,
 * not memory exhaustion. Mapping keys must be scalars.
 */
#ifndef KP_YAMLJSON_H
#define KP_YAMLJSON_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

/* How deeply collections may nest in a document, aliases expanded: deeper input is an
 * error, not a stack overflow in the recursive reader. It is also below jansson's reading
 * limit (2048), with room for the envelopes around a resource (a List's items, a backup),
 * so what the API accepts the store and every client can read back. (Kubernetes allows
 * 10,000; resources never come near either.) */
#define KP_YAML_DEPTH_MAX 1000

/* Every node a document may expand to, aliases included. */
#define KP_YAML_NODES_MAX 1000000

/* Parses every document of text into a JSON array (empty documents are skipped).
 * NULL with "line L, column C: why" in err on invalid YAML. */
json_t *kp_yaml_parse_all(const char *text, size_t len, char *err, size_t errlen);
/* Parses exactly one document (JSON is YAML, so JSON text works too). */
json_t *kp_yaml_parse_one(const char *text, size_t len, char *err, size_t errlen);
/* Appends v as a block-style YAML document (no leading "---"). */
void kp_yaml_emit(const json_t *v, kp_buf_t *out);

#endif
