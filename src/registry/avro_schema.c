/*
 * avro_schema.c — Avro schema parsing, validation and the canonical form (avro_schema.h).
 *
 * Divided into: names and errors · defaults checked against types · the parser (one
 * function per JSON form: string, array = union, object) · the canonical writer · the entry
 * point, which also asks libavro.
 *
 * Canonical form: compact JSON; named types carry their full name in "name" (plus
 * "namespace":"" where a null-namespace type sits inside a namespaced one); a named type is
 * written whole where it first appears and by full name afterwards; primitives without
 * attributes are bare strings; keys in a fixed order (type, name, namespace, doc, then the
 * kind's keys, aliases, then other attributes sorted by key). Docs, defaults, aliases, order
 * and custom attributes are kept, as Confluent's canonical string keeps them: a schema that
 * changes only its documentation is a new version, one that changes only its spacing is not.
 */
#include "registry/avro_schema.h"

#include "core/buf.h"
#include "core/hmap.h"

#include <avro.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pctx {
    kp_avro_schema_t *s;
    kp_hmap_t names; /* fullname -> node */
    char *err;
    size_t errlen;
    char path[512]; /* where we are, for messages: "fields[1].type" */
    size_t pathlen;
    int depth;
    int from_reference;
} pctx_t;

static const char *const type_names[] = {"null",   "boolean", "int",    "long",   "float",
                                         "double", "bytes",   "string", "record", "enum",
                                         "array",  "map",     "union",  "fixed"};

const char *kp_avro_type_name(kp_avro_type_t t)
{
    return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

static int fail(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx_t *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err[0]) return -1; /* the first (innermost) error wins */
    if (c->pathlen)
        snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    else
        snprintf(c->err, c->errlen, "%s", msg);
    return -1;
}

/* Appends a path segment; returns the previous length to restore with path_pop. */
static size_t path_push(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(pctx_t *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->pathlen, sizeof(c->path) - c->pathlen, fmt, ap);
    va_end(ap);
    if (n > 0) c->pathlen += (size_t)n;
    if (c->pathlen >= sizeof(c->path)) c->pathlen = sizeof(c->path) - 1;
    return old;
}

static void path_pop(pctx_t *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = 0;
}

static kp_avro_node_t *node_new(pctx_t *c, kp_avro_type_t t)
{
    kp_avro_schema_t *s = c->s;
    if (s->nnodes >= KP_AVRO_NODES_MAX) {
        fail(c, "schema too large (more than %d types)", KP_AVRO_NODES_MAX);
        return NULL;
    }
    if (s->nnodes == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->nodes = kp_xrealloc(s->nodes, (size_t)s->cap * sizeof(*s->nodes));
    }
    kp_avro_node_t *n = kp_xcalloc(1, sizeof(*n));
    n->type = t;
    n->from_reference = c->from_reference;
    s->nodes[s->nnodes++] = n;
    return n;
}

static int primitive(const char *name, kp_avro_type_t *t)
{
    for (int i = KP_AVRO_NULL; i <= KP_AVRO_STRING; i++)
        if (!strcmp(name, type_names[i])) {
            *t = (kp_avro_type_t)i;
            return 1;
        }
    return 0;
}

/* [A-Za-z_][A-Za-z0-9_]* */
static int valid_ident(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
                 (i > 0 && ch >= '0' && ch <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* Dot-separated identifiers ("" is the null namespace when allow_empty). */
static int valid_dotted(const char *s, int allow_empty)
{
    if (!*s) return allow_empty;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_ident(p, n)) return 0;
        if (!dot) return 1;
        p = dot + 1;
    }
}

static char *qualify(const char *name, const char *space)
{
    if (strchr(name, '.') || !space[0]) return kp_xstrdup(name);
    size_t n = strlen(space) + strlen(name) + 2;
    char *out = kp_xmalloc(n);
    snprintf(out, n, "%s.%s", space, name);
    return out;
}

/* Keys of obj not in known (NULL-terminated) as a new object, or NULL when none. */
static json_t *other_props(json_t *obj, const char *const *known)
{
    json_t *props = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int skip = 0;
        for (const char *const *p = known; *p && !skip; p++) skip = !strcmp(*p, k);
        if (skip) continue;
        if (!props) props = json_object();
        json_object_set_new(props, k, json_deep_copy(v));
    }
    return props;
}

/* ---- defaults ---- */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Checks a default value against its type (Avro spec: a union's default is of its first
 * branch). 0, or -1 with the error set. */
static int check_default(pctx_t *c, const kp_avro_node_t *n, const json_t *v, int depth)
{
    if (depth > 4 * KP_AVRO_DEPTH_MAX) return fail(c, "default value nested too deeply");
    int ok = 1;
    switch (n->type) {
    case KP_AVRO_NULL:
        ok = json_is_null(v);
        break;
    case KP_AVRO_BOOLEAN:
        ok = json_is_boolean(v);
        break;
    case KP_AVRO_INT:
        ok = json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
             json_integer_value(v) <= INT32_MAX;
        break;
    case KP_AVRO_LONG:
        ok = json_is_integer(v);
        break;
    case KP_AVRO_FLOAT:
    case KP_AVRO_DOUBLE:
        ok = json_is_number(v);
        break;
    case KP_AVRO_BYTES:
    case KP_AVRO_STRING:
    case KP_AVRO_FIXED:
        ok = json_is_string(v);
        break;
    case KP_AVRO_ENUM:
        ok = 0;
        for (int i = 0; json_is_string(v) && i < n->nsymbols && !ok; i++)
            ok = !strcmp(n->symbols[i], json_string_value(v));
        if (!ok && json_is_string(v))
            return fail(c, "default \"%s\" is not a symbol of enum %s", json_string_value(v),
                        n->fullname);
        break;
    case KP_AVRO_ARRAY: {
        if (!json_is_array(v)) {
            ok = 0;
            break;
        }
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (check_default(c, n->items, e, depth + 1) < 0) return -1;
        break;
    }
    case KP_AVRO_MAP: {
        if (!json_is_object(v)) {
            ok = 0;
            break;
        }
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k,
                            e) if (check_default(c, n->items, e, depth + 1) < 0) return -1;
        break;
    }
    case KP_AVRO_RECORD:
        if (!json_is_object(v)) {
            ok = 0;
            break;
        }
        for (int i = 0; i < n->nfields; i++) {
            json_t *fv = json_object_get(v, n->fields[i].name);
            if (fv) {
                if (check_default(c, n->fields[i].type, fv, depth + 1) < 0) return -1;
            } else if (!n->fields[i].default_value) {
                return fail(c, "default of record %s lacks field %s, which has no default",
                            n->fullname, n->fields[i].name);
            }
        }
        break;
    case KP_AVRO_UNION:
        return check_default(c, n->branches[0], v, depth + 1);
    }
    if (!ok)
        return fail(c, "default value must be %s%s, got %s",
                    n->type == KP_AVRO_INT ? "an int (32 bits)" : kp_avro_type_name(n->type),
                    n->type == KP_AVRO_RECORD || n->type == KP_AVRO_ENUM || n->type == KP_AVRO_FIXED
                        ? " value"
                        : "",
                    json_kind(v));
    return 0;
}

/* ---- parser ---- */

static kp_avro_node_t *parse_node(pctx_t *c, json_t *j, const char *space);

static kp_avro_node_t *parse_name_ref(pctx_t *c, const char *name, const char *space)
{
    kp_avro_type_t t;
    if (primitive(name, &t)) return node_new(c, t);
    kp_avro_node_t *n = NULL;
    if (!strchr(name, '.') && space[0]) {
        char *full = qualify(name, space);
        n = kp_hmap_get(&c->names, full, strlen(full));
        free(full);
    }
    if (!n) n = kp_hmap_get(&c->names, name, strlen(name));
    if (!n) {
        fail(c, "unknown type \"%s\"", name);
        return NULL;
    }
    return n;
}

static int same_unnamed(const kp_avro_node_t *a, const kp_avro_node_t *b)
{
    if (a->type != b->type) return 0;
    return a->type != KP_AVRO_RECORD && a->type != KP_AVRO_ENUM && a->type != KP_AVRO_FIXED;
}

static kp_avro_node_t *parse_union(pctx_t *c, json_t *arr, const char *space)
{
    size_t count = json_array_size(arr);
    if (count == 0) {
        fail(c, "a union needs at least one branch");
        return NULL;
    }
    kp_avro_node_t *u = node_new(c, KP_AVRO_UNION);
    if (!u) return NULL;
    u->branches = kp_xcalloc(count, sizeof(*u->branches));
    for (size_t i = 0; i < count; i++) {
        size_t old = path_push(c, "[%zu]", i);
        kp_avro_node_t *b = parse_node(c, json_array_get(arr, i), space);
        if (!b) return NULL;
        if (b->type == KP_AVRO_UNION) {
            fail(c, "a union may not contain a union directly");
            return NULL;
        }
        for (int k = 0; k < u->nbranches; k++) {
            const kp_avro_node_t *o = u->branches[k];
            if (same_unnamed(o, b) ||
                (o->fullname && b->fullname && !strcmp(o->fullname, b->fullname))) {
                fail(c, "the union already has a branch of type %s",
                     b->fullname ? b->fullname : kp_avro_type_name(b->type));
                return NULL;
            }
        }
        u->branches[u->nbranches++] = b;
        path_pop(c, old);
    }
    return u;
}

/* name/namespace/aliases/doc of a record, enum or fixed; registers the name. */
static int define_named(pctx_t *c, json_t *obj, const char *space, kp_avro_node_t *n)
{
    json_t *jname = json_object_get(obj, "name");
    if (!json_is_string(jname))
        return fail(c, "a %s needs a \"name\" string", kp_avro_type_name(n->type));
    const char *name = json_string_value(jname);
    json_t *jns = json_object_get(obj, "namespace");
    if (jns && !json_is_string(jns) && !json_is_null(jns))
        return fail(c, "\"namespace\" must be a string");
    const char *ns = json_is_string(jns) ? json_string_value(jns) : space;
    if (strchr(name, '.')) {
        if (!valid_dotted(name, 0)) return fail(c, "invalid name \"%s\"", name);
        const char *dot = strrchr(name, '.');
        n->fullname = kp_xstrdup(name);
        n->space = kp_xstrndup(name, (size_t)(dot - name));
        n->name = kp_xstrdup(dot + 1);
    } else {
        if (!valid_ident(name, strlen(name))) return fail(c, "invalid name \"%s\"", name);
        if (!valid_dotted(ns, 1)) return fail(c, "invalid namespace \"%s\"", ns);
        n->fullname = qualify(name, ns);
        n->space = kp_xstrdup(ns);
        n->name = kp_xstrdup(name);
    }
    kp_avro_type_t t;
    if (!n->space[0] && primitive(n->name, &t))
        return fail(c, "\"%s\" is a primitive type and cannot be redefined", n->name);
    if (kp_hmap_get(&c->names, n->fullname, strlen(n->fullname)))
        return fail(c, "type %s is defined twice", n->fullname);
    json_t *aliases = json_object_get(obj, "aliases");
    if (aliases) {
        if (!json_is_array(aliases)) return fail(c, "\"aliases\" must be an array of names");
        n->aliases = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(aliases, i, a)
        {
            if (!json_is_string(a) || !valid_dotted(json_string_value(a), 0))
                return fail(c, "aliases[%zu]: not a valid name", i);
            char *q = qualify(json_string_value(a), n->space);
            json_array_append_new(n->aliases, json_string(q));
            free(q);
        }
    }
    json_t *doc = json_object_get(obj, "doc");
    if (doc) n->doc = json_deep_copy(doc);
    kp_hmap_put(&c->names, n->fullname, strlen(n->fullname), n);
    return 0;
}

static int parse_field(pctx_t *c, kp_avro_node_t *rec, json_t *jf, int idx)
{
    static const char *const known[] = {"name", "type", "default", "order", "doc", "aliases", NULL};
    if (!json_is_object(jf)) return fail(c, "a field must be an object");
    json_t *jname = json_object_get(jf, "name");
    if (!json_is_string(jname) ||
        !valid_ident(json_string_value(jname), strlen(json_string_value(jname))))
        return fail(c, "a field needs a valid \"name\"");
    const char *name = json_string_value(jname);
    for (int i = 0; i < rec->nfields; i++)
        if (!strcmp(rec->fields[i].name, name))
            return fail(c, "field \"%s\" is defined twice", name);
    json_t *jt = json_object_get(jf, "type");
    if (!jt) return fail(c, "field \"%s\" has no \"type\"", name);
    kp_avro_field_t *f = &rec->fields[idx];
    f->name = kp_xstrdup(name);
    rec->nfields = idx + 1;
    size_t old = path_push(c, ".type");
    f->type = parse_node(c, jt, rec->space);
    path_pop(c, old);
    if (!f->type) return -1;
    json_t *order = json_object_get(jf, "order");
    if (order) {
        const char *o = json_string_value(order);
        if (!o || (strcmp(o, "ascending") && strcmp(o, "descending") && strcmp(o, "ignore")))
            return fail(c, "\"order\" must be ascending, descending or ignore");
        if (strcmp(o, "ascending")) f->order = kp_xstrdup(o);
    }
    json_t *aliases = json_object_get(jf, "aliases");
    if (aliases) {
        size_t i;
        json_t *a;
        if (!json_is_array(aliases)) return fail(c, "\"aliases\" must be an array of names");
        json_array_foreach(
            aliases, i,
            a) if (!json_is_string(a) ||
                   !valid_ident(json_string_value(a),
                                strlen(json_string_value(
                                    a)))) return fail(c, "aliases[%zu]: not a valid field name", i);
        f->aliases = json_deep_copy(aliases);
    }
    json_t *doc = json_object_get(jf, "doc");
    if (doc) f->doc = json_deep_copy(doc);
    f->props = other_props(jf, known);
    json_t *def = json_object_get(jf, "default");
    if (def) {
        old = path_push(c, ".default");
        int rc = check_default(c, f->type, def, 0);
        path_pop(c, old);
        if (rc < 0) return -1;
        f->default_value = json_deep_copy(def);
    }
    return 0;
}

static kp_avro_node_t *parse_record(pctx_t *c, json_t *obj, const char *space)
{
    static const char *const known[] = {"type",    "name",   "namespace", "doc",
                                        "aliases", "fields", NULL};
    kp_avro_node_t *n = node_new(c, KP_AVRO_RECORD);
    if (!n || define_named(c, obj, space, n) < 0) return NULL;
    json_t *fields = json_object_get(obj, "fields");
    if (!json_is_array(fields)) {
        fail(c, "record %s needs a \"fields\" array", n->fullname);
        return NULL;
    }
    size_t count = json_array_size(fields);
    if (count > KP_AVRO_NODES_MAX) {
        fail(c, "record %s has too many fields", n->fullname);
        return NULL;
    }
    n->fields = kp_xcalloc(count ? count : 1, sizeof(*n->fields));
    for (size_t i = 0; i < count; i++) {
        size_t old = path_push(c, ".fields[%zu]", i);
        if (parse_field(c, n, json_array_get(fields, i), (int)i) < 0) return NULL;
        path_pop(c, old);
    }
    n->props = other_props(obj, known);
    return n;
}

static kp_avro_node_t *parse_enum(pctx_t *c, json_t *obj, const char *space)
{
    static const char *const known[] = {"type",    "name",    "namespace", "doc",
                                        "aliases", "symbols", "default",   NULL};
    kp_avro_node_t *n = node_new(c, KP_AVRO_ENUM);
    if (!n || define_named(c, obj, space, n) < 0) return NULL;
    json_t *symbols = json_object_get(obj, "symbols");
    if (!json_is_array(symbols)) {
        fail(c, "enum %s needs a \"symbols\" array", n->fullname);
        return NULL;
    }
    size_t count = json_array_size(symbols);
    n->symbols = kp_xcalloc(count ? count : 1, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const char *sym = json_string_value(json_array_get(symbols, i));
        if (!sym || !valid_ident(sym, strlen(sym))) {
            fail(c, "enum %s: symbols[%zu] is not a valid symbol", n->fullname, i);
            return NULL;
        }
        for (int k = 0; k < n->nsymbols; k++)
            if (!strcmp(n->symbols[k], sym)) {
                fail(c, "enum %s: symbol %s appears twice", n->fullname, sym);
                return NULL;
            }
        n->symbols[n->nsymbols++] = kp_xstrdup(sym);
    }
    json_t *def = json_object_get(obj, "default");
    if (def) {
        if (check_default(c, n, def, 0) < 0) return NULL;
        n->enum_default = kp_xstrdup(json_string_value(def));
    }
    n->props = other_props(obj, known);
    return n;
}

static kp_avro_node_t *parse_fixed(pctx_t *c, json_t *obj, const char *space)
{
    static const char *const known[] = {"type",    "name", "namespace", "doc",
                                        "aliases", "size", NULL};
    kp_avro_node_t *n = node_new(c, KP_AVRO_FIXED);
    if (!n || define_named(c, obj, space, n) < 0) return NULL;
    json_t *size = json_object_get(obj, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0 ||
        json_integer_value(size) > INT32_MAX) {
        fail(c, "fixed %s needs a \"size\" (a non-negative integer)", n->fullname);
        return NULL;
    }
    n->size = json_integer_value(size);
    n->props = other_props(obj, known);
    return n;
}

static kp_avro_node_t *parse_object(pctx_t *c, json_t *obj, const char *space)
{
    json_t *jt = json_object_get(obj, "type");
    if (!json_is_string(jt)) {
        fail(c, "a schema object needs a \"type\" string");
        return NULL;
    }
    const char *t = json_string_value(jt);
    if (!strcmp(t, "record") || !strcmp(t, "error")) return parse_record(c, obj, space);
    if (!strcmp(t, "enum")) return parse_enum(c, obj, space);
    if (!strcmp(t, "fixed")) return parse_fixed(c, obj, space);
    if (!strcmp(t, "array") || !strcmp(t, "map")) {
        int is_array = t[0] == 'a';
        static const char *const known_a[] = {"type", "items", NULL}, *const known_m[] = {
                                                                          "type", "values", NULL};
        json_t *inner = json_object_get(obj, is_array ? "items" : "values");
        if (!inner) {
            fail(c, "%s needs \"%s\"", t, is_array ? "items" : "values");
            return NULL;
        }
        kp_avro_node_t *n = node_new(c, is_array ? KP_AVRO_ARRAY : KP_AVRO_MAP);
        if (!n) return NULL;
        size_t old = path_push(c, ".%s", is_array ? "items" : "values");
        n->items = parse_node(c, inner, space);
        path_pop(c, old);
        if (!n->items) return NULL;
        n->props = other_props(obj, is_array ? known_a : known_m);
        return n;
    }
    kp_avro_type_t pt;
    if (primitive(t, &pt)) {
        static const char *const known[] = {"type", NULL};
        kp_avro_node_t *n = node_new(c, pt);
        if (n) n->props = other_props(obj, known);
        return n;
    }
    /* {"type": "SomeNamedType"}: a reference, as Java accepts */
    return parse_name_ref(c, t, space);
}

static kp_avro_node_t *parse_node(pctx_t *c, json_t *j, const char *space)
{
    if (++c->depth > KP_AVRO_DEPTH_MAX) {
        fail(c, "schema nested more than %d levels deep", KP_AVRO_DEPTH_MAX);
        return NULL;
    }
    kp_avro_node_t *n = NULL;
    if (json_is_string(j))
        n = parse_name_ref(c, json_string_value(j), space);
    else if (json_is_array(j))
        n = parse_union(c, j, space);
    else if (json_is_object(j))
        n = parse_object(c, j, space);
    else
        fail(c, "expected a type name, a union (array) or a schema object, got %s", json_kind(j));
    c->depth--;
    return n;
}

/* ---- canonical form ---- */

static void put_json(kp_buf_t *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s) kp_buf_append(b, s, strlen(s));
    free(s);
}

static void put_str(kp_buf_t *b, const char *s)
{
    json_t *v = json_string(s);
    put_json(b, v);
    json_decref(v);
}

static void put_key(kp_buf_t *b, const char *k)
{
    kp_buf_append(b, ",", 1);
    put_str(b, k);
    kp_buf_append(b, ":", 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_props(kp_buf_t *b, const json_t *props)
{
    size_t n = json_object_size(props);
    if (!n) return;
    const char **keys = kp_xcalloc(n, sizeof(char *));
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(char *), cmp_str);
    for (i = 0; i < n; i++) {
        put_key(b, keys[i]);
        put_json(b, json_object_get(props, keys[i]));
    }
    free(keys);
}

static void emit(kp_buf_t *b, const kp_avro_node_t *n, const char *space, kp_hmap_t *done);

static void emit_named_head(kp_buf_t *b, const kp_avro_node_t *n, const char *space)
{
    kp_buf_appendf(b, "{\"type\":\"%s\",\"name\":", kp_avro_type_name(n->type));
    put_str(b, n->fullname);
    if (!n->space[0] && space[0]) kp_buf_append(b, ",\"namespace\":\"\"", 15);
    if (n->doc) {
        put_key(b, "doc");
        put_json(b, n->doc);
    }
}

static void emit_field(kp_buf_t *b, const kp_avro_field_t *f, const char *space, kp_hmap_t *done)
{
    kp_buf_append(b, "{\"name\":", 8);
    put_str(b, f->name);
    kp_buf_append(b, ",\"type\":", 8);
    emit(b, f->type, space, done);
    if (f->doc) {
        put_key(b, "doc");
        put_json(b, f->doc);
    }
    if (f->default_value) {
        put_key(b, "default");
        put_json(b, f->default_value);
    }
    if (f->order) {
        put_key(b, "order");
        put_str(b, f->order);
    }
    if (f->aliases) {
        put_key(b, "aliases");
        put_json(b, f->aliases);
    }
    put_props(b, f->props);
    kp_buf_append(b, "}", 1);
}

static void emit(kp_buf_t *b, const kp_avro_node_t *n, const char *space, kp_hmap_t *done)
{
    switch (n->type) {
    case KP_AVRO_RECORD:
    case KP_AVRO_ENUM:
    case KP_AVRO_FIXED:
        if (kp_hmap_get(done, n->fullname, strlen(n->fullname))) {
            put_str(b, n->fullname);
            return;
        }
        kp_hmap_put(done, n->fullname, strlen(n->fullname), (void *)n);
        emit_named_head(b, n, space);
        if (n->type == KP_AVRO_RECORD) {
            kp_buf_append(b, ",\"fields\":[", 11);
            for (int i = 0; i < n->nfields; i++) {
                if (i) kp_buf_append(b, ",", 1);
                emit_field(b, &n->fields[i], n->space, done);
            }
            kp_buf_append(b, "]", 1);
        } else if (n->type == KP_AVRO_ENUM) {
            kp_buf_append(b, ",\"symbols\":[", 12);
            for (int i = 0; i < n->nsymbols; i++) {
                if (i) kp_buf_append(b, ",", 1);
                put_str(b, n->symbols[i]);
            }
            kp_buf_append(b, "]", 1);
            if (n->enum_default) {
                put_key(b, "default");
                put_str(b, n->enum_default);
            }
        } else {
            kp_buf_appendf(b, ",\"size\":%lld", n->size);
        }
        if (n->aliases) {
            put_key(b, "aliases");
            put_json(b, n->aliases);
        }
        put_props(b, n->props);
        kp_buf_append(b, "}", 1);
        return;
    case KP_AVRO_ARRAY:
    case KP_AVRO_MAP:
        kp_buf_appendf(b, "{\"type\":\"%s\",\"%s\":", kp_avro_type_name(n->type),
                       n->type == KP_AVRO_ARRAY ? "items" : "values");
        emit(b, n->items, space, done);
        put_props(b, n->props);
        kp_buf_append(b, "}", 1);
        return;
    case KP_AVRO_UNION:
        kp_buf_append(b, "[", 1);
        for (int i = 0; i < n->nbranches; i++) {
            if (i) kp_buf_append(b, ",", 1);
            emit(b, n->branches[i], space, done);
        }
        kp_buf_append(b, "]", 1);
        return;
    default:
        if (!json_object_size(n->props)) {
            kp_buf_appendf(b, "\"%s\"", kp_avro_type_name(n->type));
            return;
        }
        kp_buf_appendf(b, "{\"type\":\"%s\"", kp_avro_type_name(n->type));
        put_props(b, n->props);
        kp_buf_append(b, "}", 1);
        return;
    }
}

/* ---- entry points ---- */

void kp_avro_schema_free(kp_avro_schema_t *s)
{
    if (!s) return;
    for (int i = 0; i < s->nnodes; i++) {
        kp_avro_node_t *n = s->nodes[i];
        free(n->fullname);
        free(n->name);
        free(n->space);
        json_decref(n->aliases);
        json_decref(n->doc);
        for (int k = 0; k < n->nfields; k++) {
            kp_avro_field_t *f = &n->fields[k];
            free(f->name);
            free(f->order);
            json_decref(f->default_value);
            json_decref(f->doc);
            json_decref(f->aliases);
            json_decref(f->props);
        }
        free(n->fields);
        for (int k = 0; k < n->nsymbols; k++) free(n->symbols[k]);
        free(n->symbols);
        free(n->enum_default);
        free(n->branches);
        json_decref(n->props);
        free(n);
    }
    free(s->nodes);
    free(s->canonical);
    free(s);
}

static json_t *load_json(pctx_t *c, const char *text, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) fail(c, "not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    return j;
}

/* libavro must accept the schema as well (names, types): a second opinion from the
 * reference C implementation. Only without references, which it cannot resolve. */
static int libavro_accepts(pctx_t *c, const char *text, size_t len)
{
    avro_schema_t as = NULL;
    if (avro_schema_from_json_length(text, len, &as) != 0) {
        const char *e = avro_strerror();
        return fail(c, "invalid Avro schema: %s", e && *e ? e : "rejected by libavro");
    }
    avro_schema_decref(as);
    return 0;
}

kp_avro_schema_t *kp_avro_parse(const char *text, size_t len, const char *const *refs,
                                const size_t *ref_lens, int nrefs, char *err, size_t errlen)
{
    pctx_t c = {.err = err, .errlen = errlen};
    err[0] = 0;
    c.s = kp_xcalloc(1, sizeof(*c.s));
    kp_hmap_init(&c.names);
    int ok = 1;
    c.from_reference = 1;
    for (int i = 0; ok && i < nrefs; i++) {
        json_t *rj = load_json(&c, refs[i], ref_lens[i]);
        size_t old = path_push(&c, "reference %d", i + 1);
        ok = rj && parse_node(&c, rj, "") != NULL;
        path_pop(&c, old);
        json_decref(rj);
    }
    c.from_reference = 0;
    json_t *j = ok ? load_json(&c, text, len) : NULL;
    if (j) c.s->root = parse_node(&c, j, "");
    json_decref(j);
    if (c.s->root && nrefs == 0 && libavro_accepts(&c, text, len) < 0) c.s->root = NULL;
    if (!c.s->root) {
        if (!err[0]) snprintf(err, errlen, "invalid Avro schema");
        kp_hmap_free(&c.names);
        kp_avro_schema_free(c.s);
        return NULL;
    }
    kp_hmap_t done;
    kp_hmap_init(&done);
    for (int i = 0; i < c.s->nnodes; i++) {
        kp_avro_node_t *n = c.s->nodes[i];
        if (n->from_reference && n->fullname)
            kp_hmap_put(&done, n->fullname, strlen(n->fullname), n);
    }
    kp_buf_t b;
    kp_buf_init(&b);
    emit(&b, c.s->root, "", &done);
    kp_buf_append(&b, "", 1);
    c.s->canonical = (char *)b.data;
    kp_hmap_free(&done);
    kp_hmap_free(&c.names);
    return c.s;
}
