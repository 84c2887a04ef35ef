/*
 * etcd_parse.c — decoding etcd's JSON gateway replies: base64, proto3 int64 strings, kvs,
 * range / txn / watch replies, the watch stream splitter, error objects.
 *
 * Everything here treats the reply as hostile: a wrong type, a bad base64 string, a number
 * with trailing bytes or out of range, an oversized key or object is KP_ETCD_EPROTO with a
 * one-line reason, and partial results are freed. Pure functions, no I/O: fuzzed by
 * tests/fuzz/fuzz_etcd.c.
 */
#include "cluster/etcd_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kp_etcd_strerror(int rc)
{
    switch (rc) {
    case KP_ETCD_OK:
        return "ok";
    case KP_ETCD_EUNAVAILABLE:
        return "unavailable";
    case KP_ETCD_EPROTO:
        return "protocol error";
    case KP_ETCD_ESERVER:
        return "refused by etcd";
    case KP_ETCD_ECONFLICT:
        return "conflict";
    case KP_ETCD_ENOTFOUND:
        return "not found";
    case KP_ETCD_ECOMPACTED:
        return "compacted";
    case KP_ETCD_ETIMEDOUT:
        return "timed out";
    case KP_ETCD_EINVAL:
        return "invalid argument";
    }
    return "unknown error";
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *kp_etcd_b64_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int kp_etcd_b64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (len % 4) return -1;
    size_t pad = 0;
    if (len && in[len - 1] == '=') pad++;
    if (len > 1 && in[len - 2] == '=') pad++;
    char *buf = malloc(len / 4 * 3 + 1);
    if (!buf) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(in[i + k]);
            if (v[k] < 0) goto bad;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        buf[o++] = (char)(w >> 16);
        if (!last || pad < 2) buf[o++] = (char)(w >> 8);
        if (!last || pad < 1) buf[o++] = (char)w;
        /* non-canonical encodings (stray bits under the padding) are refused */
        if (last && pad == 2 && (v[1] & 15)) goto bad;
        if (last && pad == 1 && (v[2] & 3)) goto bad;
    }
    buf[o] = 0;
    *out = buf;
    *outlen = o;
    return 0;
bad:
    free(buf);
    return -1;
}

/* ---- fields ---- */

void kp_etcd__quote(char *err, size_t errlen, const char *what, const char *msg)
{
    char clean[256];
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < sizeof(clean); p++)
        clean[n++] = isprint((unsigned char)*p) ? *p : '?';
    clean[n] = 0;
    snprintf(err, errlen, "%s: %s", what, clean);
}

int kp_etcd__get_i64(json_t *o, const char *name, int64_t *out)
{
    *out = 0;
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 20 || strlen(s) != len) return -1;
    const char *p = s;
    if (*p == '-') p++;
    if (!*p) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

int kp_etcd__get_b64(json_t *o, const char *name, int required, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        if (required) return -1;
        *out = calloc(1, 1); /* an absent value is the empty value (proto3 default) */
        return *out ? 0 : -1;
    }
    if (!json_is_string(v)) return -1;
    return kp_etcd_b64_decode(json_string_value(v), json_string_length(v), out, outlen);
}

void kp_etcd_kv_free(kp_etcd_kv_t *kv)
{
    if (!kv) return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

int kp_etcd__parse_kv(json_t *o, kp_etcd_kv_t *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o)) return -1;
    if (kp_etcd__get_b64(o, "key", 1, &kv->key, &kv->key_len) < 0) goto bad;
    if (kv->key_len == 0 || kv->key_len > KP_ETCD_KEY_BYTES_MAX) goto bad;
    if (kp_etcd__get_b64(o, "value", 0, &kv->value, &kv->value_len) < 0) goto bad;
    if (kp_etcd__get_i64(o, "create_revision", &kv->create_revision) < 0 ||
        kp_etcd__get_i64(o, "mod_revision", &kv->mod_revision) < 0 ||
        kp_etcd__get_i64(o, "version", &kv->version) < 0 ||
        kp_etcd__get_i64(o, "lease", &kv->lease) < 0)
        goto bad;
    if (kv->create_revision < 0 || kv->mod_revision < 0 || kv->version < 0) goto bad;
    return 0;
bad:
    kp_etcd_kv_free(kv);
    return -1;
}

int64_t kp_etcd__header_revision(json_t *o)
{
    int64_t rev = 0;
    json_t *h = json_object_get(o, "header");
    if (json_is_object(h) && kp_etcd__get_i64(h, "revision", &rev) < 0) return -1;
    return rev;
}

int kp_etcd__reply_error(json_t *o, char *err, size_t errlen)
{
    json_t *e = json_object_get(o, "error");
    if (!e) return 0;
    const char *msg = json_string_value(json_object_get(o, "message"));
    if (!msg) msg = json_string_value(e);
    if (!msg) msg = "(no message)";
    json_int_t code = json_integer_value(json_object_get(o, "code"));
    kp_etcd__quote(err, errlen, "etcd", msg);
    /* gRPC status codes, as the gateway passes them on. 14 (UNAVAILABLE) is a member that
     * cannot serve ("etcdserver: no leader", "leader changed"): another endpoint may; the
     * election service's "election: no leader" (code 2) means nobody campaigns. */
    if (code == 14) return KP_ETCD_EUNAVAILABLE;
    if (code == 5 || !strncmp(msg, "election: no leader", 19)) return KP_ETCD_ENOTFOUND;
    if (code == 11 && strstr(msg, "compacted")) return KP_ETCD_ECOMPACTED;
    if (code == 4) return KP_ETCD_ETIMEDOUT;
    return KP_ETCD_ESERVER;
}

int kp_etcd__parse_object(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > KP_ETCD_REPLY_BYTES_MAX) {
        snprintf(err, errlen, "etcd reply of %zu bytes is too large", len);
        return KP_ETCD_EPROTO;
    }
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        kp_etcd__quote(err, errlen, "etcd reply is not a JSON object", o ? "" : jerr.text);
        return KP_ETCD_EPROTO;
    }
    int rc = kp_etcd__reply_error(o, err, errlen);
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* ---- ranges and txns ---- */

void kp_etcd_range_free(kp_etcd_range_t *r)
{
    if (!r) return;
    for (int i = 0; i < r->count; i++) kp_etcd_kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* Appends the kvs of a range response object to r. */
static int range_append(json_t *o, kp_etcd_range_t *r)
{
    json_t *kvs = json_object_get(o, "kvs");
    if (!kvs || json_is_null(kvs)) return 0;
    if (!json_is_array(kvs)) return -1;
    size_t n = json_array_size(kvs);
    if (n == 0) return 0;
    if (n > (size_t)(INT32_MAX - r->count)) return -1;
    kp_etcd_kv_t *grown = realloc(r->kvs, (r->count + n) * sizeof(*grown));
    if (!grown) return -1;
    r->kvs = grown;
    for (size_t i = 0; i < n; i++) {
        if (kp_etcd__parse_kv(json_array_get(kvs, i), &r->kvs[r->count]) < 0) return -1;
        r->count++;
    }
    json_t *more = json_object_get(o, "more");
    if (more && !json_is_boolean(more)) return -1;
    if (json_is_true(more)) r->more = 1;
    return 0;
}

int kp_etcd__range_from_json(json_t *o, kp_etcd_range_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->revision = kp_etcd__header_revision(o);
    if (out->revision < 0 || range_append(o, out) < 0) {
        kp_etcd_range_free(out);
        snprintf(err, errlen, "etcd range reply is malformed");
        return KP_ETCD_EPROTO;
    }
    return 0;
}

int kp_etcd_parse_range(const char *body, size_t len, kp_etcd_range_t *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    int rc = kp_etcd__parse_object(body, len, &o, err, errlen);
    if (rc) return rc;
    rc = kp_etcd__range_from_json(o, out, err, errlen);
    json_decref(o);
    return rc;
}

void kp_etcd_txn_result_free(kp_etcd_txn_result_t *r)
{
    if (!r) return;
    kp_etcd_range_free(&r->range);
    memset(r, 0, sizeof(*r));
}

int kp_etcd__txn_from_json(json_t *o, kp_etcd_txn_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *ok = json_object_get(o, "succeeded");
    json_t *resps = json_object_get(o, "responses");
    out->revision = kp_etcd__header_revision(o);
    if (out->revision < 0 || (ok && !json_is_boolean(ok)) ||
        (resps && !json_is_array(resps) && !json_is_null(resps)))
        goto bad;
    out->succeeded = json_is_true(ok);
    out->range.revision = out->revision;
    for (size_t i = 0; i < json_array_size(resps); i++) {
        json_t *r = json_array_get(resps, i);
        if (!json_is_object(r)) goto bad;
        json_t *rr = json_object_get(r, "response_range");
        if (rr && (!json_is_object(rr) || range_append(rr, &out->range) < 0)) goto bad;
    }
    return 0;
bad:
    kp_etcd_txn_result_free(out);
    snprintf(err, errlen, "etcd txn reply is malformed");
    return KP_ETCD_EPROTO;
}

int kp_etcd_parse_txn(const char *body, size_t len, kp_etcd_txn_result_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    int rc = kp_etcd__parse_object(body, len, &o, err, errlen);
    if (rc) return rc;
    rc = kp_etcd__txn_from_json(o, out, err, errlen);
    json_decref(o);
    return rc;
}

/* ---- watch stream ---- */

void kp_etcd_splitter_init(kp_etcd_splitter_t *s)
{
    memset(s, 0, sizeof(*s));
}

void kp_etcd_splitter_free(kp_etcd_splitter_t *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

int kp_etcd_splitter_feed(kp_etcd_splitter_t *s, const char *data, size_t len,
                          int (*fn)(void *arg, const char *msg, size_t len), void *arg)
{
    size_t max = s->max ? s->max : KP_ETCD_WATCH_MSG_BYTES_MAX;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (s->depth == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
            if (c != '{') return KP_ETCD_EPROTO;
        }
        if (s->len + 1 > max) return KP_ETCD_EPROTO;
        if (s->len + 1 > s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 4096;
            if (cap > max) cap = max;
            char *nb = realloc(s->buf, cap);
            if (!nb) return KP_ETCD_EPROTO;
            s->buf = nb;
            s->cap = cap;
        }
        s->buf[s->len++] = c;
        if (s->in_string) {
            if (s->escape)
                s->escape = 0;
            else if (c == '\\')
                s->escape = 1;
            else if (c == '"')
                s->in_string = 0;
            continue;
        }
        if (c == '"') {
            s->in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++s->depth > 64) return KP_ETCD_EPROTO; /* no reply nests this deep */
        } else if (c == '}' || c == ']') {
            if (--s->depth == 0) {
                size_t n = s->len;
                s->len = 0;
                int rc = fn(arg, s->buf, n);
                if (rc) return rc;
            }
        }
    }
    return 0;
}

void kp_etcd_watch_msg_free(kp_etcd_watch_msg_t *m)
{
    if (!m) return;
    for (int i = 0; i < m->nevents; i++) kp_etcd_kv_free(&m->events[i].kv);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

int kp_etcd_parse_watch_msg(const char *msg, size_t len, kp_etcd_watch_msg_t *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *o;
    int rc = kp_etcd__parse_object(msg, len, &o, err, errlen);
    if (rc) return rc;
    json_t *r = json_object_get(o, "result");
    if (!json_is_object(r)) goto bad;
    json_t *created = json_object_get(r, "created"), *canceled = json_object_get(r, "canceled");
    if ((created && !json_is_boolean(created)) || (canceled && !json_is_boolean(canceled)))
        goto bad;
    out->created = json_is_true(created);
    out->canceled = json_is_true(canceled);
    out->revision = kp_etcd__header_revision(r);
    if (out->revision < 0 || kp_etcd__get_i64(r, "compact_revision", &out->compact_revision) < 0 ||
        out->compact_revision < 0)
        goto bad;
    json_t *evs = json_object_get(r, "events");
    if (evs && !json_is_null(evs)) {
        if (!json_is_array(evs)) goto bad;
        size_t n = json_array_size(evs);
        if (n > 0) {
            if (n > INT32_MAX) goto bad;
            out->events = calloc(n, sizeof(*out->events));
            if (!out->events) goto bad;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *ev = json_array_get(evs, i);
            if (!json_is_object(ev)) goto bad;
            json_t *type = json_object_get(ev, "type");
            kp_etcd_event_t *e = &out->events[out->nevents];
            if (!type || json_is_null(type) ||
                (json_is_string(type) && !strcmp(json_string_value(type), "PUT")))
                e->type = KP_ETCD_EV_PUT;
            else if (json_is_string(type) && !strcmp(json_string_value(type), "DELETE"))
                e->type = KP_ETCD_EV_DELETE;
            else
                goto bad;
            if (kp_etcd__parse_kv(json_object_get(ev, "kv"), &e->kv) < 0) goto bad;
            out->nevents++;
        }
    }
    json_decref(o);
    return 0;
bad:
    json_decref(o);
    kp_etcd_watch_msg_free(out);
    snprintf(err, errlen, "etcd watch message is malformed");
    return KP_ETCD_EPROTO;
}
