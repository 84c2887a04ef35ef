/*
 * backup_format.h — the backup file format (docs/backups.md), without I/O to pools: the
 * checksum, encoding (JSON, optionally gzip), decoding with bounds, atomic file writes,
 * file names, retention selection, and the Kafka enum names ACLs are written with.
 *
 * A backup is one JSON document:
 *   { "format": "kpool-backup", "formatVersion": 1, "pool": "dev",
 *     "createdAt": "2026-11-27T08:00:00.123Z", "checksum": "sha256:<64 hex>",
 *     "summary": {...}, "topics": [...], "acls": [...], "serviceUsers": [...],
 *     "resources": [...], "schemas": {"topic": "_schemas", "partitions": 1, "records": [...]} }
 * The checksum is SHA-256 over the canonical form of the whole document without its
 * "checksum" member: JSON with object keys sorted bytewise, no whitespace, strings in UTF-8
 * (jansson's JSON_COMPACT | JSON_SORT_KEYS). Formatting of the file itself (indentation,
 * member order, gzip) does not matter: a document re-serialized any way verifies.
 *
 * Everything here is pure or goes through the kp_fs table (core/fs.h), so unit tests can
 * check it and inject faults. Thread-safe (no shared state).
 */
#ifndef KP_BACKUP_FORMAT_H
#define KP_BACKUP_FORMAT_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KP_BACKUP_FORMAT         "kpool-backup"
#define KP_BACKUP_FORMAT_VERSION 1

/* The topic the schema registry keeps its schemas and config in (Confluent's default). */
#define KP_BACKUP_SCHEMAS_TOPIC "_schemas"

/* Bytes of a backup document, decoded (after gunzip). Larger files are refused before they
 * are parsed, and a gzip stream that inflates beyond it is cut off (a "zip bomb" cannot
 * make the control plane or the CLI allocate without bound). Configuration and schemas of a
 * pool are far smaller: 10,000 topics and 10,000 schema versions fit in about 60 MiB. */
#define KP_BACKUP_BYTES_MAX (256u * 1024 * 1024)

/* Records read from the schemas topic into one backup: a registry with more is refused
 * (it would not fit KP_BACKUP_BYTES_MAX anyway), so a runaway topic cannot exhaust memory. */
#define KP_BACKUP_SCHEMA_RECORDS_MAX 1000000

/* Length of a pool name in a file name (Kubernetes names are at most 253). */
#define KP_BACKUP_POOL_NAME_MAX 253

/* ---- checksum ---- */

/* "sha256:<hex>" of the canonical form of doc without its "checksum" member. 0 or -1. */
int kp_backup_checksum(const json_t *doc, char out[80]);
/* Sets doc.checksum. 0 or -1. */
int kp_backup_seal(json_t *doc);
/* Checks that doc is a kpool backup of a version this build reads and that its checksum
 * matches. 0, or -1 with one line in err saying what is wrong (damaged, not a backup, too
 * new). */
int kp_backup_verify(const json_t *doc, char *err, size_t errlen);

/* ---- encoding ---- */

/* The file bytes of doc: indented JSON, gzip-compressed when gzip is set. */
void kp_backup_encode(const json_t *doc, int gzip, kp_buf_t *out);
/* Parses file bytes (gzip detected by its magic). NULL with err when the data is not JSON,
 * a damaged gzip stream, or larger than KP_BACKUP_BYTES_MAX decoded. The document is not
 * verified: call kp_backup_verify. */
json_t *kp_backup_decode(const uint8_t *data, size_t len, char *err, size_t errlen);

/* Record bytes <-> JSON members: "<field>" (a string, when the bytes are valid UTF-8) or
 * "<field>Base64"; NULL bytes (a null key, a tombstone) are "<field>": null. */
void kp_backup_bytes_put(json_t *obj, const char *field, const void *p, size_t n, int is_null);
/* 0 with *out (malloc'd, NULL when null) and *n; -1 when the member is missing or invalid. */
int kp_backup_bytes_get(const json_t *obj, const char *field, uint8_t **out, size_t *n);

/* ---- files ---- */

/* "<pool>-<YYYYMMDD>T<HHMMSS>.<mmm>Z.json[.gz]" for a backup made at time_ms (UTC). */
void kp_backup_file_name(const char *pool, int64_t time_ms, int gzip, char *out, size_t outlen);
/* The pool and time of a backup file name; -1 when name is not one (temp files, others). */
int kp_backup_file_parse(const char *name, char *pool, size_t poollen, int64_t *time_ms);
/* Writes data to dir/name atomically: a temp file in dir (".<name>.tmp"), fsync, rename,
 * fsync of dir. On failure nothing is left under name or the temp name. 0, or -1 with err
 * (errno's text and the step). */
int kp_backup_file_write(const char *dir, const char *name, const void *data, size_t len, char *err,
                         size_t errlen);
/* Reads and decodes a backup file (at most KP_BACKUP_BYTES_MAX bytes). NULL with err. */
json_t *kp_backup_file_read(const char *path, size_t *file_size, char *err, size_t errlen);

/* ---- retention ---- */

/* Decides which backups of one pool to delete. times_ms[] is sorted newest first; ok[i] says
 * whether backup i is known good (verified or just written). Backup i is deleted when it is
 * past count_max (its index >= count_max, count_max > 0) or older than days_max days
 * (days_max > 0) — except the newest good backup, which is always kept. Sets del[i] to 0/1;
 * returns the number to delete. */
int kp_backup_retention_select(const int64_t *times_ms, const int *ok, size_t n, int64_t now_ms,
                               int64_t count_max, int64_t days_max, int *del);

/* ---- Kafka names ---- */

/* Kafka's names of ResourceType, PatternType, AclOperation and AclPermissionType values
 * ("TOPIC", "LITERAL", "READ", "ALLOW"); NULL for values without one. */
const char *kp_backup_acl_resource_name(int v);
const char *kp_backup_acl_pattern_name(int v);
const char *kp_backup_acl_operation_name(int v);
const char *kp_backup_acl_permission_name(int v);
/* The value of a name above; -1 when unknown. */
int kp_backup_acl_resource_value(const char *s);
int kp_backup_acl_pattern_value(const char *s);
int kp_backup_acl_operation_value(const char *s);
int kp_backup_acl_permission_value(const char *s);

/* "2026-11-27T08:00:00.123Z" */
void kp_backup_time_format(int64_t time_ms, char out[32]);

#endif
