/*
 * pool_registry.h — the schema registry as the web console reads it: the registry's state
 * rebuilt from the pool's `_schemas` topic (the registry's own source of truth, in
 * Confluent's format), so the console needs no registry credentials and works for any pool
 * whose registry keeps its schemas there. Used for the subjects page and to decode records
 * framed in the registry's wire format (a zero byte, a 4-byte schema id, the data).
 *
 * Each call reads the topic with its own short-lived client (backup_kafka.h): any thread.
 */
#ifndef KP_POOL_REGISTRY_H
#define KP_POOL_REGISTRY_H

#include "control/pool_client.h"
#include "registry/registry_state.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Versions per subject the subjects list returns (the newest ones): bounds its size. */
#define KP_POOL_REGISTRY_VERSIONS_SHOWN 50

/* Fills st (initialized by the caller) from `_schemas`. 0, or -1 with err. A pool without
 * the topic is an empty state. */
int kp_pool_registry_load(const kp_pool_conn_t *c, kp_reg_state_t *st, char *err, size_t errlen);

/* The live subjects whose name starts with prefix, by name: [{subject, compatibilityLevel,
 * versions: [{version, id, schemaType, schema, references}] (oldest first)}]. */
json_t *kp_pool_registry_subjects(const kp_reg_state_t *st, const char *prefix);

/* Decodes a framed key or value (data/len as in the record) into obj as <field>Decoded and
 * <field>Schema {id, type}, or <field>SchemaError when it cannot. Does nothing when the
 * bytes are not framed. AVRO and JSON schemas are decoded; others are named only. */
void kp_pool_registry_decode(const kp_reg_state_t *st, const uint8_t *data, size_t len, json_t *obj,
                             const char *field);

#endif
