/*
 * props.h — Kafka-style .properties configuration: `key=value` (or `key: value`) lines,
 * `#`/`!` comments, later keys override earlier ones, `--set key=value` overrides last.
 *
 * Typed getters parse on demand and report a malformed value with the key name, so a typo in
 * a config file is an error at start, not a silent default.
 */
#ifndef KP_PROPS_H
#define KP_PROPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kp_props kp_props_t;

kp_props_t *kp_props_new(void);
void kp_props_free(kp_props_t *p);
/* Parses text; on error returns -1 and writes "line N: why" into err. */
int kp_props_parse(kp_props_t *p, const char *text, size_t len, char *err, size_t errlen);
int kp_props_load_file(kp_props_t *p, const char *path, char *err, size_t errlen);
/* "key=value" from --set. */
int kp_props_set_kv(kp_props_t *p, const char *kv, char *err, size_t errlen);
void kp_props_set(kp_props_t *p, const char *key, const char *value);
const char *kp_props_get(const kp_props_t *p, const char *key); /* NULL when unset */
void kp_props_del(kp_props_t *p, const char *key);
const char *kp_props_get_str(const kp_props_t *p, const char *key, const char *def);
/* Return 0 with *out set (def when unset), -1 with err filled on a malformed value. */
int kp_props_get_i64(const kp_props_t *p, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen);
int kp_props_get_bool(const kp_props_t *p, const char *key, int def, int *out, char *err,
                      size_t errlen);
size_t kp_props_count(const kp_props_t *p);
void kp_props_at(const kp_props_t *p, size_t i, const char **key, const char **value);

/* Parses a decimal int64 with optional sign; -1 on anything else (including overflow). */
int kp_parse_i64(const char *s, int64_t *out);

#endif
