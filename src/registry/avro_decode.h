/*
 * avro_decode.h — Avro binary data decoded into JSON for people to read (the web console's
 * message browser), against a schema parsed by avro_schema.h. Records are objects by field
 * name, a union's value is shown as the branch's value (not Avro's {"type": value} JSON
 * encoding), enums as their symbol, bytes and fixed as lowercase hex, strings that are not
 * UTF-8 as hex; logical types are shown as their underlying values.
 *
 * The data is outside input (any producer's bytes): every read is bounded by the buffer,
 * nesting by KP_AVRO_DEPTH_MAX, and array/map items by KP_AVRO_DECODE_ITEMS_MAX (items of
 * type null take no bytes, so a block count alone could spin forever). Pure: no I/O, any
 * thread.
 */
#ifndef KP_AVRO_DECODE_H
#define KP_AVRO_DECODE_H

#include "registry/avro_schema.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Array and map items decoded per datum, in total. */
#define KP_AVRO_DECODE_ITEMS_MAX 100000

/* The datum in data[0..len) as JSON (a new reference), or NULL with err ("at byte 12:
 * string length 90 beyond the data"). Bytes left over after the datum are an error too. */
json_t *kp_avro_decode(const kp_avro_node_t *schema, const uint8_t *data, size_t len, char *err,
                       size_t errlen);

#endif
