/* avro_decode.c — Avro binary datum -> JSON for display (see avro_decode.h). */
#include "registry/avro_decode.h"

#include "core/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dec {
    const uint8_t *p;
    size_t len, pos;
    long items;
    char *err;
    size_t errlen;
} dec_t;

static int fail(dec_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(dec_t *d, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(d->err, d->errlen, "at byte %zu: %s", d->pos, msg);
    return -1;
}

/* A zig-zag varint (int and long alike: at most 10 bytes). */
static int read_long(dec_t *d, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (d->pos >= d->len) return fail(d, "a number runs past the end of the data");
        uint8_t b = d->p[d->pos++];
        if (shift == 63 && b > 1) return fail(d, "a number beyond 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return fail(d, "a number longer than 10 bytes");
}

static json_t *hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *h = kp_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[p[i] >> 4];
        h[2 * i + 1] = digits[p[i] & 15];
    }
    h[2 * n] = 0;
    json_t *s = json_string(h);
    free(h);
    return s;
}

/* n bytes at the current position (checked), advanced past. */
static const uint8_t *take(dec_t *d, size_t n)
{
    if (n > d->len - d->pos) {
        fail(d, "%zu bytes needed, %zu left", n, d->len - d->pos);
        return NULL;
    }
    const uint8_t *p = d->p + d->pos;
    d->pos += n;
    return p;
}

static const uint8_t *take_sized(dec_t *d, size_t *n)
{
    int64_t len;
    if (read_long(d, &len) < 0) return NULL;
    if (len < 0) {
        fail(d, "negative length %lld", (long long)len);
        return NULL;
    }
    *n = (size_t)len;
    return take(d, *n);
}

static json_t *datum(dec_t *d, const kp_avro_node_t *s, int depth);

/* JSON has no NaN or infinities: those are shown as strings. */
static json_t *real(double f)
{
    if (isfinite(f)) return json_real(f);
    return json_string(isnan(f) ? "NaN" : f > 0 ? "Infinity" : "-Infinity");
}

/* Arrays and maps: blocks of items until a zero count (a negative count is followed by
 * the block's size in bytes). */
static json_t *blocks(dec_t *d, const kp_avro_node_t *s, int depth)
{
    int map = s->type == KP_AVRO_MAP;
    json_t *out = map ? json_object() : json_array();
    for (;;) {
        int64_t count, size;
        if (read_long(d, &count) < 0) goto bad;
        if (count == 0) return out;
        if (count < 0) {
            if (count == INT64_MIN) {
                fail(d, "block count out of range");
                goto bad;
            }
            if (read_long(d, &size) < 0) goto bad;
            count = -count;
        }
        if (count > KP_AVRO_DECODE_ITEMS_MAX - d->items) {
            fail(d, "more than %d array or map items", KP_AVRO_DECODE_ITEMS_MAX);
            goto bad;
        }
        d->items += (long)count;
        for (int64_t i = 0; i < count; i++) {
            char *key = NULL;
            if (map) {
                size_t n;
                const uint8_t *k = take_sized(d, &n);
                if (!k) goto bad;
                key = kp_xmalloc(n + 1);
                memcpy(key, k, n);
                key[n] = 0;
            }
            json_t *v = datum(d, s->items, depth + 1);
            if (!v) {
                free(key);
                goto bad;
            }
            if (map)
                json_object_set_new(out, key, v); /* a key with a NUL is cut there */
            else
                json_array_append_new(out, v);
            free(key);
        }
    }
bad:
    json_decref(out);
    return NULL;
}

static json_t *record(dec_t *d, const kp_avro_node_t *s, int depth)
{
    json_t *out = json_object();
    for (int i = 0; i < s->nfields; i++) {
        json_t *v = datum(d, s->fields[i].type, depth + 1);
        if (!v) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, s->fields[i].name, v);
    }
    return out;
}

static json_t *datum(dec_t *d, const kp_avro_node_t *s, int depth)
{
    if (depth > KP_AVRO_DEPTH_MAX) {
        fail(d, "nested deeper than %d", KP_AVRO_DEPTH_MAX);
        return NULL;
    }
    int64_t v;
    size_t n;
    const uint8_t *p;
    switch (s->type) {
    case KP_AVRO_NULL:
        return json_null();
    case KP_AVRO_BOOLEAN:
        if (!(p = take(d, 1))) return NULL;
        if (*p > 1) return fail(d, "boolean byte %u", *p), NULL;
        return json_boolean(*p);
    case KP_AVRO_INT:
        if (read_long(d, &v) < 0) return NULL;
        if (v < INT32_MIN || v > INT32_MAX) return fail(d, "int out of range"), NULL;
        return json_integer(v);
    case KP_AVRO_LONG:
        return read_long(d, &v) < 0 ? NULL : json_integer(v);
    case KP_AVRO_FLOAT: {
        float f;
        if (!(p = take(d, 4))) return NULL;
        memcpy(&f, p, 4); /* little endian, as Avro (and every host we build on) */
        return real(f);
    }
    case KP_AVRO_DOUBLE: {
        double f;
        if (!(p = take(d, 8))) return NULL;
        memcpy(&f, p, 8);
        return real(f);
    }
    case KP_AVRO_BYTES:
        return (p = take_sized(d, &n)) ? hex(p, n) : NULL;
    case KP_AVRO_STRING: {
        if (!(p = take_sized(d, &n))) return NULL;
        json_t *s8 = json_stringn((const char *)p, n);
        return s8 ? s8 : hex(p, n);
    }
    case KP_AVRO_FIXED:
        if (s->size < 0) return fail(d, "fixed of negative size"), NULL;
        return (p = take(d, (size_t)s->size)) ? hex(p, (size_t)s->size) : NULL;
    case KP_AVRO_ENUM:
        if (read_long(d, &v) < 0) return NULL;
        if (v < 0 || v >= s->nsymbols) return fail(d, "enum index %lld", (long long)v), NULL;
        return json_string(s->symbols[v]);
    case KP_AVRO_UNION:
        if (read_long(d, &v) < 0) return NULL;
        if (v < 0 || v >= s->nbranches) return fail(d, "union branch %lld", (long long)v), NULL;
        return datum(d, s->branches[v], depth + 1);
    case KP_AVRO_RECORD:
        return record(d, s, depth);
    case KP_AVRO_ARRAY:
    case KP_AVRO_MAP:
        return blocks(d, s, depth);
    }
    fail(d, "unknown type %d", (int)s->type);
    return NULL;
}

json_t *kp_avro_decode(const kp_avro_node_t *schema, const uint8_t *data, size_t len, char *err,
                       size_t errlen)
{
    dec_t d = {.p = data, .len = len, .err = err, .errlen = errlen};
    json_t *v = datum(&d, schema, 0);
    if (v && d.pos != len) {
        fail(&d, "%zu bytes left after the datum", len - d.pos);
        json_decref(v);
        return NULL;
    }
    return v;
}
