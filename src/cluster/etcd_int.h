/*
 * etcd_int.h — what etcd.c (transport, calls, watch) and etcd_parse.c (base64, reply
 * decoding) share. Not for use outside src/cluster/etcd*.c.
 */
#ifndef KP_ETCD_INT_H
#define KP_ETCD_INT_H

#include "cluster/etcd.h"

#include <jansson.h>

/* Parses a reply body into a JSON object: KP_ETCD_EPROTO when it is not one, or the mapped
 * error when it is an {"error":...} answer. On 0 *out holds a reference. */
int kp_etcd__parse_object(const char *body, size_t len, json_t **out, char *err, size_t errlen);
/* Maps an {"error","code","message"} object (0 when o carries no error). */
int kp_etcd__reply_error(json_t *o, char *err, size_t errlen);
/* A proto3 int64 field (a JSON string of decimal digits, or an integer); absent is 0. */
int kp_etcd__get_i64(json_t *o, const char *name, int64_t *out);
/* A base64 field decoded (absent: NULL/0 unless required, then -1). */
int kp_etcd__get_b64(json_t *o, const char *name, int required, char **out, size_t *outlen);
int kp_etcd__parse_kv(json_t *o, kp_etcd_kv_t *kv);
/* header.revision of a reply (0 if absent). */
int64_t kp_etcd__header_revision(json_t *o);
/* Decoded replies of range and txn (o is the reply object). */
int kp_etcd__range_from_json(json_t *o, kp_etcd_range_t *out, char *err, size_t errlen);
int kp_etcd__txn_from_json(json_t *o, kp_etcd_txn_result_t *out, char *err, size_t errlen);
/* Copies etcd's message into err, cut to printable ASCII. */
void kp_etcd__quote(char *err, size_t errlen, const char *what, const char *msg);

#endif
