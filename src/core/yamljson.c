/* yamljson.c — libyaml event parser building jansson values, and a small YAML emitter. */
#include "core/yamljson.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define ANCHORS_MAX 4096

typedef struct anchor {
    char *name;
    json_t *value;
} anchor_t;

typedef struct parser {
    yaml_parser_t yp;
    anchor_t anchors[ANCHORS_MAX];
    int nanchors;
    size_t nodes;
    int depth; /* collections open around the node being read */
    char *err;
    size_t errlen;
} parser_t;

static void fail(parser_t *p, const char *why, const yaml_mark_t *m)
{
    if (p->err[0]) return;
    snprintf(p->err, p->errlen, "line %zu, column %zu: %s", m ? m->line + 1 : 0,
             m ? m->column + 1 : 0, why);
}

/* Counts the nodes of an alias's copy placed at depth (its collections' levels added to
 * those around it); -1 past either limit. */
static int count_nodes(parser_t *p, const json_t *v, int depth)
{
    p->nodes++;
    if (json_is_object(v) || json_is_array(v)) {
        if (++depth > KP_YAML_DEPTH_MAX) return -1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) if (count_nodes(p, c, depth) < 0) return -1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) if (count_nodes(p, c, depth) < 0) return -1;
    }
    return p->nodes > KP_YAML_NODES_MAX ? -1 : 0;
}

static json_t *scalar(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag)
        return json_stringn(s, n);
    if (n == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return json_false();
    char *end;
    errno = 0;
    const char *digits = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    if (isdigit((unsigned char)digits[0])) {
        long long v = strtoll(s, &end, 10);
        if (!*end && !errno && !(digits[0] == '0' && digits[1])) return json_integer(v);
        double d = strtod(s, &end);
        if (!*end && !errno && isfinite(d)) return json_real(d);
    }
    return json_stringn(s, n);
}

static json_t *parse_node(parser_t *p, yaml_event_t *ev);

static int next(parser_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->yp, ev)) {
        fail(p, p->yp.problem ? p->yp.problem : "invalid YAML", &p->yp.problem_mark);
        return -1;
    }
    return 0;
}

static void remember(parser_t *p, const yaml_char_t *anchor, json_t *v)
{
    if (!anchor || !v) return;
    if (p->nanchors == ANCHORS_MAX) return;
    p->anchors[p->nanchors].name = strdup((const char *)anchor);
    p->anchors[p->nanchors].value = json_incref(v);
    p->nanchors++;
}

static json_t *parse_mapping(parser_t *p, const yaml_event_t *start)
{
    json_t *obj = json_object();
    for (;;) {
        yaml_event_t ev;
        if (next(p, &ev) < 0) goto bad;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return obj;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            fail(p, "mapping keys must be scalars", &ev.start_mark);
            yaml_event_delete(&ev);
            goto bad;
        }
        char *key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
        yaml_mark_t mark = ev.start_mark;
        yaml_event_delete(&ev);
        if (next(p, &ev) < 0) {
            free(key);
            goto bad;
        }
        json_t *val = parse_node(p, &ev);
        yaml_event_delete(&ev);
        if (!val) {
            free(key);
            goto bad;
        }
        if (json_object_get(obj, key)) {
            char why[300];
            snprintf(why, sizeof(why), "duplicate key '%.200s'", key);
            fail(p, why, &mark);
            free(key);
            json_decref(val);
            goto bad;
        }
        json_object_set_new(obj, key, val);
        free(key);
        if (++p->nodes > KP_YAML_NODES_MAX) {
            fail(p, "document too large", &mark);
            goto bad;
        }
    }
bad:
    (void)start;
    json_decref(obj);
    return NULL;
}

static json_t *parse_sequence(parser_t *p)
{
    json_t *arr = json_array();
    for (;;) {
        yaml_event_t ev;
        if (next(p, &ev) < 0) goto bad;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        json_t *v = parse_node(p, &ev);
        yaml_mark_t mark = ev.start_mark;
        yaml_event_delete(&ev);
        if (!v) goto bad;
        json_array_append_new(arr, v);
        if (++p->nodes > KP_YAML_NODES_MAX) {
            fail(p, "document too large", &mark);
            goto bad;
        }
    }
bad:
    json_decref(arr);
    return NULL;
}

static json_t *parse_node(parser_t *p, yaml_event_t *ev)
{
    json_t *v = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        v = scalar(ev);
        remember(p, ev->data.scalar.anchor, v);
        return v;
    case YAML_MAPPING_START_EVENT:
        if (p->depth == KP_YAML_DEPTH_MAX) break;
        p->depth++;
        v = parse_mapping(p, ev);
        p->depth--;
        remember(p, ev->data.mapping_start.anchor, v);
        return v;
    case YAML_SEQUENCE_START_EVENT:
        if (p->depth == KP_YAML_DEPTH_MAX) break;
        p->depth++;
        v = parse_sequence(p);
        p->depth--;
        remember(p, ev->data.sequence_start.anchor, v);
        return v;
    case YAML_ALIAS_EVENT:
        for (int i = p->nanchors - 1; i >= 0; i--) {
            if (strcmp(p->anchors[i].name, (const char *)ev->data.alias.anchor) != 0) continue;
            v = json_deep_copy(p->anchors[i].value);
            if (count_nodes(p, v, p->depth) < 0) {
                fail(p, "aliases expand to too many nodes or nest too deeply", &ev->start_mark);
                json_decref(v);
                return NULL;
            }
            return v;
        }
        fail(p, "unknown alias", &ev->start_mark);
        return NULL;
    default:
        fail(p, "unexpected YAML event", &ev->start_mark);
        return NULL;
    }
    char why[96];
    snprintf(why, sizeof(why), "collections nest deeper than %d levels", KP_YAML_DEPTH_MAX);
    fail(p, why, &ev->start_mark);
    return NULL;
}

static void parser_done(parser_t *p)
{
    for (int i = 0; i < p->nanchors; i++) {
        free(p->anchors[i].name);
        json_decref(p->anchors[i].value);
    }
    yaml_parser_delete(&p->yp);
}

json_t *kp_yaml_parse_all(const char *text, size_t len, char *err, size_t errlen)
{
    parser_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->err = err;
    p->errlen = errlen;
    err[0] = 0;
    if (memchr(text, 0, len)) {
        snprintf(err, errlen, "the document contains a NUL byte");
        free(p);
        return NULL;
    }
    yaml_parser_initialize(&p->yp);
    yaml_parser_set_input_string(&p->yp, (const unsigned char *)text, len);
    json_t *docs = json_array();
    for (;;) {
        yaml_event_t ev;
        if (next(p, &ev) < 0) goto bad;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t != YAML_DOCUMENT_START_EVENT) continue;
        if (next(p, &ev) < 0) goto bad;
        json_t *v = NULL;
        if (ev.type != YAML_DOCUMENT_END_EVENT) {
            v = parse_node(p, &ev);
            yaml_event_delete(&ev);
            if (!v) goto bad;
            if (next(p, &ev) < 0) {
                json_decref(v);
                goto bad;
            }
        }
        yaml_event_delete(&ev); /* DOCUMENT_END */
        for (int i = 0; i < p->nanchors; i++) {
            free(p->anchors[i].name);
            json_decref(p->anchors[i].value);
        }
        p->nanchors = 0;
        if (v && !json_is_null(v))
            json_array_append_new(docs, v);
        else
            json_decref(v);
    }
    parser_done(p);
    free(p);
    return docs;
bad:
    json_decref(docs);
    parser_done(p);
    free(p);
    return NULL;
}

json_t *kp_yaml_parse_one(const char *text, size_t len, char *err, size_t errlen)
{
    json_t *docs = kp_yaml_parse_all(text, len, err, errlen);
    if (!docs) return NULL;
    if (json_array_size(docs) != 1) {
        snprintf(err, errlen, "expected exactly one document, found %zu", json_array_size(docs));
        json_decref(docs);
        return NULL;
    }
    json_t *v = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return v;
}

/* ---- emitter ---- */

/* Decodes the UTF-8 character at c (strings here are valid UTF-8: jansson checks) into
 * *cp and returns its length. */
static int utf8_at(const unsigned char *c, const unsigned char *end, uint32_t *cp)
{
    int len = c[0] < 0x80 ? 1 : c[0] < 0xE0 ? 2 : c[0] < 0xF0 ? 3 : 4;
    if (c + len > end) len = 1;
    uint32_t v = len == 1 ? c[0] : c[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) v = (v << 6) | (c[i] & 0x3F);
    *cp = v;
    return len;
}

/* Characters a YAML reader would not take back as they are: C0 and C1 controls, DEL, the
 * line breaks U+0085/U+2028/U+2029 (folded inside quotes), BOM and the non-characters. */
static int must_escape(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

static int needs_quotes(const char *s)
{
    if (!*s) return 1;
    static const char *special[] = {"true", "false", "null", "~",    "yes", "no", "on",   "off",
                                    "True", "False", "Null", "NULL", "Yes", "No", "TRUE", "FALSE"};
    for (size_t i = 0; i < sizeof(special) / sizeof(*special); i++)
        if (!strcmp(s, special[i])) return 1;
    /* anything starting like a number, date or timestamp is quoted: YAML 1.1 readers
     * (PyYAML, kubectl's) turn 2026-11-27T07:00:00Z into a date, 0x10 into 16 */
    if (isdigit((unsigned char)s[0])) return 1;
    if (s[0] == '-' || s[0] == '+' || s[0] == '.') {
        char *end;
        strtod(s, &end);
        if (!*end) return 1;
    }
    if (strchr("!&*?|>'\"%@`{}[],#:- ", s[0])) return 1;
    size_t n = strlen(s);
    if (s[n - 1] == ' ' || s[n - 1] == ':') return 1;
    const unsigned char *end = (const unsigned char *)s + n;
    for (const unsigned char *u = (const unsigned char *)s; u < end;) {
        uint32_t cp;
        u += utf8_at(u, end, &cp);
        if (must_escape(cp)) return 1;
    }
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\') return 1;
        if (*c == ':' && c[1] == ' ') return 1;
        if (*c == ' ' && c[1] == '#') return 1;
    }
    return 0;
}

/* s holds n bytes and may contain NUL ("\0" is a valid YAML escape). */
static void emit_string(const char *s, size_t n, kp_buf_t *out)
{
    if (strlen(s) == n && !needs_quotes(s)) {
        kp_buf_append(out, s, n);
        return;
    }
    kp_buf_append(out, "\"", 1);
    const unsigned char *end = (const unsigned char *)s + n;
    for (const unsigned char *c = (const unsigned char *)s; c < end; c++) {
        if (*c == '"' || *c == '\\') {
            kp_buf_append(out, "\\", 1);
            kp_buf_append(out, c, 1);
        } else if (*c == '\n') {
            kp_buf_append(out, "\\n", 2);
        } else {
            uint32_t cp;
            int len = utf8_at(c, end, &cp);
            if (!must_escape(cp))
                kp_buf_append(out, c, (size_t)len);
            else if (cp <= 0xFF)
                kp_buf_appendf(out, "\\x%02x", (unsigned)cp);
            else
                kp_buf_appendf(out, "\\u%04x", (unsigned)cp);
            c += len - 1;
        }
    }
    kp_buf_append(out, "\"", 1);
}

static void indent(kp_buf_t *out, int n)
{
    for (int i = 0; i < n; i++) kp_buf_append(out, " ", 1);
}

static int is_empty_collection(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

static void emit_scalar(const json_t *v, kp_buf_t *out)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        emit_string(json_string_value(v), json_string_length(v), out);
        break;
    case JSON_INTEGER:
        kp_buf_appendf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* shortest form that reads back as the same double, and always as a float: "1500"
         * would come back as an integer */
        char num[40];
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, d);
            if (strtod(num, NULL) == d) break;
        }
        if (!strpbrk(num, ".eEn")) strcat(num, ".0");
        kp_buf_appendf(out, "%s", num);
        break;
    }
    case JSON_TRUE:
        kp_buf_append(out, "true", 4);
        break;
    case JSON_FALSE:
        kp_buf_append(out, "false", 5);
        break;
    case JSON_NULL:
        kp_buf_append(out, "null", 4);
        break;
    case JSON_OBJECT:
        kp_buf_append(out, "{}", 2);
        break;
    case JSON_ARRAY:
        kp_buf_append(out, "[]", 2);
        break;
    }
}

static void emit_node(const json_t *v, kp_buf_t *out, int level);

static void emit_object(const json_t *v, kp_buf_t *out, int level)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)v, k, c)
    {
        kp_buf_t key;
        kp_buf_init(&key);
        emit_string(k, strlen(k), &key);
        /* YAML limits an implicit key to 1024 characters: longer ones take the explicit
         * "? key" / ": value" form */
        int explicit = key.len > 1000;
        indent(out, level);
        if (explicit) kp_buf_append(out, "? ", 2);
        kp_buf_append(out, key.data, key.len);
        kp_buf_free(&key);
        if (explicit) {
            kp_buf_append(out, "\n", 1);
            indent(out, level);
        }
        kp_buf_append(out, ":", 1);
        if ((json_is_object(c) || json_is_array(c)) && !is_empty_collection(c)) {
            kp_buf_append(out, "\n", 1);
            emit_node(c, out, json_is_array(c) && !explicit ? level : level + 2);
        } else {
            kp_buf_append(out, " ", 1);
            emit_scalar(c, out);
            kp_buf_append(out, "\n", 1);
        }
    }
}

static void emit_array(const json_t *v, kp_buf_t *out, int level)
{
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        indent(out, level);
        kp_buf_append(out, "- ", 2);
        if (json_is_object(c) && !is_empty_collection(c)) {
            /* first key on the dash line, the rest indented under it */
            kp_buf_t inner;
            kp_buf_init(&inner);
            emit_object(c, &inner, level + 2);
            kp_buf_append(out, inner.data + level + 2, inner.len - (size_t)level - 2);
            kp_buf_free(&inner);
        } else if (json_is_array(c) && !is_empty_collection(c)) {
            kp_buf_append(out, "\n", 1);
            emit_array(c, out, level + 2);
        } else {
            emit_scalar(c, out);
            kp_buf_append(out, "\n", 1);
        }
    }
}

static void emit_node(const json_t *v, kp_buf_t *out, int level)
{
    if (json_is_object(v) && !is_empty_collection(v))
        emit_object(v, out, level);
    else if (json_is_array(v) && !is_empty_collection(v))
        emit_array(v, out, level);
    else {
        indent(out, level);
        emit_scalar(v, out);
        kp_buf_append(out, "\n", 1);
    }
}

void kp_yaml_emit(const json_t *v, kp_buf_t *out)
{
    emit_node(v, out, 0);
}
