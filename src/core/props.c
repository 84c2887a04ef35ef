/* props.c — a small ordered key/value store parsed from .properties text (see props.h). */
#include "core/props.h"

#include "core/buf.h"
#include "core/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kp_props {
    char **keys;
    char **values;
    size_t count, cap;
};

kp_props_t *kp_props_new(void)
{
    return kp_xcalloc(1, sizeof(kp_props_t));
}

void kp_props_free(kp_props_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->count; i++) {
        free(p->keys[i]);
        free(p->values[i]);
    }
    free(p->keys);
    free(p->values);
    free(p);
}

void kp_props_set(kp_props_t *p, const char *key, const char *value)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->keys[i], key) == 0) {
            free(p->values[i]);
            p->values[i] = kp_xstrdup(value);
            return;
        }
    }
    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->keys = kp_xrealloc(p->keys, p->cap * sizeof(char *));
        p->values = kp_xrealloc(p->values, p->cap * sizeof(char *));
    }
    p->keys[p->count] = kp_xstrdup(key);
    p->values[p->count] = kp_xstrdup(value);
    p->count++;
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s)) (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1])) (*e)--;
}

static int parse_line(kp_props_t *p, const char *s, const char *e, int lineno, char *err,
                      size_t errlen)
{
    trim(&s, &e);
    if (s == e || *s == '#' || *s == '!') return 0;
    if (e - s > KP_PROPERTY_LEN_MAX) {
        snprintf(err, errlen, "line %d: longer than %d bytes", lineno, KP_PROPERTY_LEN_MAX);
        return -1;
    }
    const char *sep = s;
    while (sep < e && *sep != '=' && *sep != ':') sep++;
    if (sep == e) {
        snprintf(err, errlen, "line %d: expected key=value", lineno);
        return -1;
    }
    const char *ks = s, *ke = sep, *vs = sep + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ks == ke) {
        snprintf(err, errlen, "line %d: empty key", lineno);
        return -1;
    }
    char *key = kp_xstrndup(ks, (size_t)(ke - ks));
    char *value = kp_xstrndup(vs, (size_t)(ve - vs));
    kp_props_set(p, key, value);
    free(key);
    free(value);
    return 0;
}

int kp_props_parse(kp_props_t *p, const char *text, size_t len, char *err, size_t errlen)
{
    if (len == 0) return 0; /* text may be NULL (an empty file): no arithmetic on it */
    const char *s = text, *end = text + len;
    int lineno = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        lineno++;
        if (memchr(s, '\0', (size_t)(e - s))) {
            snprintf(err, errlen, "line %d: contains a NUL byte", lineno);
            return -1;
        }
        if (parse_line(p, s, e, lineno, err, errlen) < 0) return -1;
        s = nl ? nl + 1 : end;
    }
    return 0;
}

int kp_props_load_file(kp_props_t *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    char tmp[8192];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        kp_buf_append(&b, tmp, n);
        if (b.len > 16 * 1024 * 1024) break;
    }
    fclose(f);
    char inner[256];
    int rc = kp_props_parse(p, (const char *)b.data, b.len, inner, sizeof(inner));
    if (rc < 0) snprintf(err, errlen, "%s: %s", path, inner);
    kp_buf_free(&b);
    return rc;
}

int kp_props_set_kv(kp_props_t *p, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        snprintf(err, errlen, "--set expects key=value, got '%s'", kv);
        return -1;
    }
    char *key = kp_xstrndup(kv, (size_t)(eq - kv));
    kp_props_set(p, key, eq + 1);
    free(key);
    return 0;
}

void kp_props_del(kp_props_t *p, const char *key)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->keys[i], key) != 0) continue;
        free(p->keys[i]);
        free(p->values[i]);
        memmove(&p->keys[i], &p->keys[i + 1], (p->count - i - 1) * sizeof(char *));
        memmove(&p->values[i], &p->values[i + 1], (p->count - i - 1) * sizeof(char *));
        p->count--;
        return;
    }
}

const char *kp_props_get(const kp_props_t *p, const char *key)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->keys[i], key) == 0) return p->values[i];
    return NULL;
}

const char *kp_props_get_str(const kp_props_t *p, const char *key, const char *def)
{
    const char *v = kp_props_get(p, key);
    return v ? v : def;
}

int kp_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || isspace((unsigned char)*s)) return -1;
    *out = v;
    return 0;
}

int kp_props_get_i64(const kp_props_t *p, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen)
{
    const char *v = kp_props_get(p, key);
    if (!v) {
        *out = def;
        return 0;
    }
    int64_t x;
    if (kp_parse_i64(v, &x) < 0) {
        snprintf(err, errlen, "%s: '%s' is not an integer", key, v);
        return -1;
    }
    if (x < min || x > max) {
        snprintf(err, errlen, "%s: %lld is outside %lld..%lld", key, (long long)x, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int kp_props_get_bool(const kp_props_t *p, const char *key, int def, int *out, char *err,
                      size_t errlen)
{
    const char *v = kp_props_get(p, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (strcasecmp(v, "true") == 0) {
        *out = 1;
    } else if (strcasecmp(v, "false") == 0) {
        *out = 0;
    } else {
        snprintf(err, errlen, "%s: '%s' is not true or false", key, v);
        return -1;
    }
    return 0;
}

size_t kp_props_count(const kp_props_t *p)
{
    return p->count;
}

void kp_props_at(const kp_props_t *p, size_t i, const char **key, const char **value)
{
    *key = p->keys[i];
    *value = p->values[i];
}
