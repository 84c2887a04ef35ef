/*
 * json_compat.c — the JSON Schema reader/writer check (rules in json_compat.h).
 *
 * Divided into: context, paths and messages · keyword classes and small helpers · $ref
 * resolution · per-family checks (type, enum, strings, numbers, arrays, objects) · the
 * combinators and the recursive check() that ties them together.
 *
 * check(c, r, w) answers for one pair of subschemas. Trials (which anyOf branch reads the
 * writer?) run quietly: only the outcome of the whole combinator is reported. Every call
 * costs a step from a fixed budget and one level of depth; running out of either is an
 * incompatibility with its own message, never a crash or an endless loop. Pairs of $ref
 * targets being compared are kept in a map: meeting one again inside itself answers "yes"
 * (coinduction), which makes recursive schemas terminate.
 */
#include "registry/json_compat.h"

#include "core/hmap.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest path kept in messages; deeper paths are cut (the check itself goes on). */
#define PATH_MAX_LEN 1024
/* Longest property-name pattern matched (longer ones: "cannot tell"); bounds regcomp. */
#define PATTERN_LEN_MAX 256
/* Quantifiers (*, +, ?) in one such pattern: each one adds to regcomp's automaton. */
#define PATTERN_QUANTIFIERS_MAX 16
/* Longest property name matched against a pattern: bounds each regexec. */
#define PATTERN_NAME_LEN_MAX 1024

typedef struct jctx {
    json_t *rroot, *wroot; /* for "#/..." references */
    json_t *empty;         /* {}: what a writer's true stands for (one address, for refs) */
    json_t *msgs;          /* NULL: nobody wants messages */
    int quiet;             /* > 0: inside a trial */
    int depth;
    int nest; /* how many values deep into the document the check is */
    long steps;
    int budget_reported;
    kp_hmap_t refs; /* (reader target, writer target) pairs being compared */
    char path[PATH_MAX_LEN];
    size_t pathlen;
} jctx_t;

static int check(jctx_t *c, json_t *r, json_t *w);

/* ---- paths and messages ---- */

/* Appends "/" and the printf text to the path; returns the length to restore. */
static size_t path_push(jctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(jctx_t *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    if (old + 2 >= sizeof(c->path)) return old;
    c->path[c->pathlen++] = '/';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->pathlen, sizeof(c->path) - c->pathlen, fmt, ap);
    va_end(ap);
    c->pathlen += n < 0 ? 0 : (size_t)n;
    if (c->pathlen >= sizeof(c->path)) c->pathlen = sizeof(c->path) - 1;
    return old;
}

static void path_pop(jctx_t *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = 0;
}

static void report(jctx_t *c, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(jctx_t *c, const char *type, const char *fmt, ...)
{
    if (c->quiet || !c->msgs || json_array_size(c->msgs) >= KP_JSON_COMPAT_MESSAGES_MAX) return;
    char desc[700], line[2000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "{errorType:'%s', description:'%s', path:'#%s'}", type, desc,
             c->path);
    json_array_append_new(c->msgs, json_string(line));
}

/* Runs check() without messages (a trial). */
static int try_check(jctx_t *c, json_t *r, json_t *w)
{
    c->quiet++;
    int ok = check(c, r, w);
    c->quiet--;
    return ok;
}

/* ---- keyword classes and helpers ---- */

/* Constraint keywords of the standard vocabularies that are not analysed: in the reader,
 * accepted only when the writer has exactly the same value. */
static const char *const compared_verbatim[] = {
    "contains", "minContains", "maxContains", "if",          "then",
    "else",     "extends",     "disallow",    "divisibleBy", NULL};
/* Reader keywords refused outright: their meaning depends on more than their value. */
static const char *const refused_in_reader[] = {"unevaluatedProperties", "unevaluatedItems",
                                                "$dynamicRef", "$recursiveRef", NULL};
/* Every keyword that constrains documents and that check() looks at. A reader object with
 * none of these (nor the two lists above) accepts everything. */
static const char *const analysed[] = {"type",
                                       "enum",
                                       "const",
                                       "minLength",
                                       "maxLength",
                                       "pattern",
                                       "minimum",
                                       "maximum",
                                       "exclusiveMinimum",
                                       "exclusiveMaximum",
                                       "multipleOf",
                                       "items",
                                       "prefixItems",
                                       "additionalItems",
                                       "minItems",
                                       "maxItems",
                                       "uniqueItems",
                                       "properties",
                                       "patternProperties",
                                       "additionalProperties",
                                       "required",
                                       "minProperties",
                                       "maxProperties",
                                       "dependencies",
                                       "dependentRequired",
                                       "dependentSchemas",
                                       "propertyNames",
                                       "allOf",
                                       "anyOf",
                                       "oneOf",
                                       "not",
                                       "$ref",
                                       NULL};

static int in_list(const char *const *list, const char *key)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], key)) return 1;
    return 0;
}

/* 1 when s accepts every document: true, or an object without constraint keywords. */
static int accepts_all(json_t *s)
{
    if (json_is_true(s)) return 1;
    if (!json_is_object(s)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        if (in_list(analysed, k) || in_list(compared_verbatim, k) || in_list(refused_in_reader, k))
            return 0;
    }
    return 1;
}

/* 1 when v holds a "$ref" anywhere, or is too deep or too large (*nodes_left runs out)
 * to tell: a "no" also bounds the work of comparing v afterwards. */
static int has_ref(json_t *v, int depth, long *nodes_left)
{
    if (depth > KP_JSON_COMPAT_DEPTH_MAX || --*nodes_left < 0) return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (!strcmp(k, "$ref") || has_ref(x, depth + 1, nodes_left)) return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (has_ref(x, depth + 1, nodes_left)) return 1;
    }
    return 0;
}

/* v and w are the same value, without $ref (whose meaning depends on the document), and
 * small enough to compare. */
static int same_plain_value(jctx_t *c, json_t *v, json_t *w)
{
    long nodes_left = KP_JSON_COMPAT_VALUE_NODES_MAX;
    int refs = has_ref(v, 0, &nodes_left);
    c->steps += (KP_JSON_COMPAT_VALUE_NODES_MAX - nodes_left) / 16;
    return !refs && json_equal(v, w);
}

/* A shallow copy of object s without key (a new reference). */
static json_t *without(json_t *s, const char *key)
{
    json_t *copy = json_copy(s);
    json_object_del(copy, key);
    return copy;
}

static json_t *get(json_t *s, const char *key)
{
    return json_is_object(s) ? json_object_get(s, key) : NULL;
}

/* A number keyword, or 0 when absent or not a number. */
static int get_number(json_t *s, const char *key, double *out)
{
    json_t *v = get(s, key);
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

/* Value types the reader's keywords must have (a reader keyword of another type would
 * otherwise be skipped, and the reader wrongly taken for more accepting). */
static const struct {
    const char *key;
    unsigned types; /* bits of 1 << json_type */
} keyword_types[] = {
    {"type", 1u << JSON_STRING | 1u << JSON_ARRAY},
    {"enum", 1u << JSON_ARRAY},
    {"required", 1u << JSON_ARRAY},
    {"allOf", 1u << JSON_ARRAY},
    {"anyOf", 1u << JSON_ARRAY},
    {"oneOf", 1u << JSON_ARRAY},
    {"prefixItems", 1u << JSON_ARRAY},
    {"properties", 1u << JSON_OBJECT},
    {"patternProperties", 1u << JSON_OBJECT},
    {"dependencies", 1u << JSON_OBJECT},
    {"dependentRequired", 1u << JSON_OBJECT},
    {"dependentSchemas", 1u << JSON_OBJECT},
    {"pattern", 1u << JSON_STRING},
    {"$ref", 1u << JSON_STRING},
    {"uniqueItems", 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"items", 1u << JSON_OBJECT | 1u << JSON_TRUE | 1u << JSON_FALSE | 1u << JSON_ARRAY},
    {"additionalItems", 1u << JSON_OBJECT | 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"additionalProperties", 1u << JSON_OBJECT | 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"propertyNames", 1u << JSON_OBJECT | 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"not", 1u << JSON_OBJECT | 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"exclusiveMinimum", 1u << JSON_INTEGER | 1u << JSON_REAL | 1u << JSON_TRUE | 1u << JSON_FALSE},
    {"exclusiveMaximum", 1u << JSON_INTEGER | 1u << JSON_REAL | 1u << JSON_TRUE | 1u << JSON_FALSE},
};
static const char *const number_keywords[] = {
    "minLength", "maxLength", "minimum",       "maximum",       "multipleOf",
    "minItems",  "maxItems",  "minProperties", "maxProperties", NULL};

/* The first keyword of reader object r whose value has the wrong JSON type, or NULL. */
static const char *malformed_keyword(json_t *r)
{
    const char *k;
    json_t *v;
    json_object_foreach(r, k, v)
    {
        unsigned have = 1u << json_typeof(v);
        if (in_list(number_keywords, k) && !json_is_number(v)) return k;
        for (size_t i = 0; i < sizeof(keyword_types) / sizeof(keyword_types[0]); i++)
            if (!strcmp(keyword_types[i].key, k) && !(keyword_types[i].types & have)) return k;
    }
    return NULL;
}

/* ---- $ref ---- */

/* Resolves a local reference "#..." (a JSON pointer, ~0 and ~1 unescaped) in root; NULL
 * when it is not local or does not resolve. */
static json_t *resolve(json_t *root, const char *ref)
{
    if (ref[0] != '#') return NULL;
    const char *p = ref + 1;
    json_t *cur = root;
    if (*p && *p != '/') return NULL; /* an anchor ("#name") */
    char token[512];
    while (*p) {
        p++; /* the '/' */
        size_t n = 0;
        while (*p && *p != '/') {
            if (n + 1 >= sizeof(token)) return NULL;
            if (*p == '%') return NULL; /* percent-encoded pointers are not supported */
            if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
                token[n++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                token[n++] = *p++;
            }
        }
        token[n] = 0;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, token);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(token, &end, 10);
            cur = (*end || !n) ? NULL : json_array_get(cur, i);
        } else {
            cur = NULL;
        }
        if (!cur) return NULL;
    }
    return (json_is_object(cur) || json_is_boolean(cur)) ? cur : NULL;
}

/* The target of s's "$ref" in root, or NULL with the problem reported. */
static json_t *follow(jctx_t *c, json_t *root, json_t *s, const char *side)
{
    json_t *ref = get(s, "$ref");
    json_t *t = json_is_string(ref) ? resolve(root, json_string_value(ref)) : NULL;
    if (!t) {
        report(c, "UNSUPPORTED_REFERENCE",
               "The %s schema's $ref %s is not a local reference (#/definitions/..., "
               "#/$defs/...) that resolves; compatibility cannot be checked",
               side, json_is_string(ref) ? json_string_value(ref) : "(not a string)");
        return NULL;
    }
    /* A chain of references must end at a schema: a cycle of bare references says nothing
     * (coinduction would call it compatible with anything). */
    json_t *hop = t;
    for (int i = 0; json_is_string(get(hop, "$ref")); i++) {
        hop = i < KP_JSON_COMPAT_DEPTH_MAX ? resolve(root, json_string_value(get(hop, "$ref")))
                                           : NULL;
        if (!hop) {
            report(c, "REFERENCE_CYCLE",
                   "The %s schema's $ref %s leads to a chain of references that does not end "
                   "(or does not resolve)",
                   side, json_string_value(ref));
            return NULL;
        }
    }
    return t;
}

/* check() on a pair in which at least one side was reached through $ref. */
static int check_ref_pair(jctx_t *c, json_t *r, json_t *w)
{
    const void *key[2] = {r, w};
    intptr_t at = (intptr_t)kp_hmap_get(&c->refs, key, sizeof(key));
    if (at) {
        /* Meeting a pair inside itself: compatible by induction on the document, provided
         * the check went into a smaller value meanwhile (a property, an item). A cycle
         * through allOf/anyOf/$ref alone never reaches a value and means nothing. */
        if (c->nest >= at) return 1;
        report(c, "REFERENCE_CYCLE",
               "A $ref leads back to itself without going into a property or an item");
        return 0;
    }
    kp_hmap_put(&c->refs, key, sizeof(key), (void *)(intptr_t)(c->nest + 1));
    int ok = check(c, r, w);
    kp_hmap_del(&c->refs, key, sizeof(key));
    return ok;
}

/* check() for a value inside the current one (a property, an item, a property name). */
static int check_sub(jctx_t *c, json_t *r, json_t *w)
{
    c->nest++;
    int ok = check(c, r, w);
    c->nest--;
    return ok;
}

/* ---- types and values ---- */

enum {
    T_NULL = 1,
    T_BOOLEAN = 2,
    T_OBJECT = 4,
    T_ARRAY = 8,
    T_NUMBER = 16,
    T_INTEGER = 32,
    T_STRING = 64,
    T_ALL = 127
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "integer", "string"};

static int type_bit(const char *name)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, type_names[i])) return 1 << i;
    return 0;
}

/* The types s's "type" allows (T_ALL when absent). An unknown name adds unknown_as. */
static int declared_types(json_t *s, int unknown_as)
{
    json_t *t = get(s, "type");
    if (json_is_string(t)) {
        int b = type_bit(json_string_value(t));
        return b ? b : unknown_as;
    }
    if (!json_is_array(t)) return T_ALL;
    int mask = 0;
    size_t i;
    json_t *x;
    json_array_foreach(t, i, x)
    {
        int b = json_is_string(x) ? type_bit(json_string_value(x)) : 0;
        mask |= b ? b : unknown_as;
    }
    return mask;
}

static int value_type(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOLEAN;
    case JSON_OBJECT:
        return T_OBJECT;
    case JSON_ARRAY:
        return T_ARRAY;
    case JSON_INTEGER:
        return T_INTEGER;
    case JSON_REAL: /* 1.0 is an integer too (draft 6 on) */
        return json_real_value(v) == nearbyint(json_real_value(v)) ? T_INTEGER : T_NUMBER;
    default:
        return T_STRING;
    }
}

/* The writer's possible values when it lists them (const, else enum), or NULL. A writer
 * with both is narrowed to its const. */
static json_t *writer_values(json_t *w, json_t **one)
{
    json_t *k = get(w, "const");
    if (k) {
        *one = json_pack("[O]", k);
        return *one;
    }
    *one = NULL;
    json_t *e = get(w, "enum");
    return json_is_array(e) ? e : NULL;
}

/* The types a writer can produce: its declared types, narrowed by its listed values.
 * An unknown declared type name counts as anything (more than the writer allows: safe). */
static int writer_types(json_t *w)
{
    int mask = declared_types(w, T_ALL);
    json_t *one, *vals = writer_values(w, &one);
    if (vals) {
        /* values the declared types refuse cannot be written */
        int from_values = 0;
        size_t i;
        json_t *x;
        json_array_foreach(vals, i, x)
        {
            int t = value_type(x);
            from_values |=
                t == T_INTEGER ? (mask & (T_INTEGER | T_NUMBER) ? T_INTEGER : 0) : (t & mask);
        }
        mask = from_values;
    }
    json_decref(one);
    return mask;
}

static void types_text(int mask, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < 7 && n + 1 < len; i++)
        if (mask & (1 << i))
            n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", type_names[i]);
}

static int check_type(jctx_t *c, json_t *r, int wt)
{
    int declared = declared_types(r, 0);
    int rt = declared & T_NUMBER ? declared | T_INTEGER : declared; /* integers are numbers */
    int missing = wt & ~rt;
    if (!missing) return 1;
    char rs[120], ws[120], ms[120];
    types_text(declared, rs, sizeof(rs));
    types_text(wt, ws, sizeof(ws));
    types_text(missing, ms, sizeof(ms));
    int overlap = rt & (wt & T_NUMBER ? wt | T_INTEGER : wt);
    const char *kind = overlap ? "TYPE_NARROWED" : "TYPE_CHANGED";
    report(c, kind,
           "The reader accepts the types [%s] but the writer allows [%s]: [%s] would be refused",
           rs, ws, ms);
    return 0;
}

/* One reader value set (its enum, or its const as a set of one) against the writer's. */
/* Nodes in v, counting stops past max. */
static long count_nodes(json_t *v, long max, int depth)
{
    long n = 1;
    if (depth > KP_JSON_COMPAT_DEPTH_MAX) return max + 1;
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v)) json_array_foreach(v, i, x)
        {
            if (n > max) break;
            n += count_nodes(x, max - n, depth + 1);
        }
    else if (json_is_object(v))
        json_object_foreach(v, k, x)
        {
            if (n > max) break;
            n += count_nodes(x, max - n, depth + 1);
        }
    return n;
}

/* Before comparing every element of a with every element of b: 1 (reported) when the lists
 * are too long, else 0 with the work charged to the budget. */
static int lists_too_long(jctx_t *c, json_t *a, json_t *b, const char *keyword)
{
    size_t na = json_array_size(a), nb = json_array_size(b);
    if (na <= KP_JSON_COMPAT_ENUM_MAX && nb <= KP_JSON_COMPAT_ENUM_MAX) {
        c->steps += (long)(na * nb / 256);
        return 0;
    }
    report(c, "TOO_COMPLEX", "More than %d %s values: not compared", KP_JSON_COMPAT_ENUM_MAX,
           keyword);
    return 1;
}

static int check_values(jctx_t *c, json_t *rvals, json_t *w, const char *keyword)
{
    json_t *one, *wvals = writer_values(w, &one);
    int ok = 1;
    if (!wvals) {
        report(c, "ENUM_ADDED",
               "The reader restricts the values with %s but the writer does not: values other "
               "than the listed ones would be refused",
               keyword);
        ok = 0;
    } else if (lists_too_long(c, rvals, wvals, keyword)) {
        ok = 0;
    } else if (count_nodes(rvals, KP_JSON_COMPAT_VALUE_NODES_MAX, 0) +
                   count_nodes(wvals, KP_JSON_COMPAT_VALUE_NODES_MAX, 0) >
               KP_JSON_COMPAT_VALUE_NODES_MAX) {
        report(c, "TOO_COMPLEX", "The %s values hold more than %d JSON values: not compared",
               keyword, KP_JSON_COMPAT_VALUE_NODES_MAX);
        ok = 0;
    } else {
        size_t i, k;
        json_t *x, *y;
        json_array_foreach(wvals, i, x)
        {
            int found = 0;
            json_array_foreach(rvals, k, y) if (!found && json_equal(x, y)) found = 1;
            if (found) continue;
            char *text = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            report(c, "ENUM_NARROWED",
                   "The writer allows the value %.200s, which the reader's %s does not list",
                   text ? text : "?", keyword);
            free(text);
            ok = 0;
            if (c->quiet) break;
        }
    }
    json_decref(one);
    return ok;
}

static int check_enum_const(jctx_t *c, json_t *r, json_t *w)
{
    int ok = 1;
    json_t *e = get(r, "enum");
    if (e) {
        size_t old = path_push(c, "enum");
        if (json_is_array(e)) {
            ok = check_values(c, e, w, "enum");
        } else {
            report(c, "UNSUPPORTED_KEYWORD", "The reader's enum is not an array");
            ok = 0;
        }
        path_pop(c, old);
    }
    json_t *k = get(r, "const");
    if (k && (ok || !c->quiet)) {
        size_t old = path_push(c, "const");
        json_t *set = json_pack("[O]", k);
        if (!check_values(c, set, w, "const")) ok = 0;
        json_decref(set);
        path_pop(c, old);
    }
    return ok;
}

/* ---- strings ---- */

static int check_string(jctx_t *c, json_t *r, json_t *w)
{
    int ok = 1;
    double rv, wv;
    if (get_number(r, "minLength", &rv) && rv > 0 &&
        (!get_number(w, "minLength", &wv) || wv < rv)) {
        report(c, "MIN_LENGTH_INCREASED",
               "The reader's minLength %g is above the writer's (%s): shorter strings would "
               "be refused",
               rv, get(w, "minLength") ? "lower" : "none");
        ok = 0;
    }
    if (get_number(r, "maxLength", &rv) && (!get_number(w, "maxLength", &wv) || wv > rv)) {
        report(c, "MAX_LENGTH_DECREASED",
               "The reader's maxLength %g is below the writer's (%s): longer strings would "
               "be refused",
               rv, get(w, "maxLength") ? "higher" : "none");
        ok = 0;
    }
    json_t *rp = get(r, "pattern"), *wp = get(w, "pattern");
    if (rp && !(wp && json_equal(rp, wp))) {
        report(c, wp ? "PATTERN_CHANGED" : "PATTERN_ADDED",
               "The reader's pattern %.200s is not the writer's (%s): patterns are only "
               "compatible when they are the same",
               json_is_string(rp) ? json_string_value(rp) : "?",
               json_is_string(wp) ? json_string_value(wp) : "none");
        ok = 0;
    }
    return ok;
}

/* ---- numbers ---- */

typedef struct bound {
    int has, exclusive;
    double value;
} bound_t;

/* s's lower (lower 1) or upper bound: minimum/maximum, draft-4 boolean exclusive*, and
 * draft-6 numeric exclusive*; the tighter one when several. */
static bound_t get_bound(json_t *s, int lower)
{
    const char *inc = lower ? "minimum" : "maximum";
    const char *exc = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    bound_t b = {0};
    double v;
    if (get_number(s, inc, &v)) b = (bound_t){1, json_is_true(get(s, exc)), v};
    if (get_number(s, exc, &v)) {
        int tighter = !b.has || (lower ? v >= b.value : v <= b.value);
        if (tighter) b = (bound_t){1, 1, v};
    }
    return b;
}

/* 1 when the writer's bound w is at least as tight as the reader's r. */
static int bound_within(bound_t r, bound_t w, int lower)
{
    if (!r.has) return 1;
    if (!w.has) return 0;
    if (w.value != r.value) return lower ? w.value > r.value : w.value < r.value;
    return w.exclusive || !r.exclusive;
}

static int multiple_of(double big, double small)
{
    if (small <= 0 || !isfinite(big) || !isfinite(small)) return 0;
    double q = big / small;
    return fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static int check_number(jctx_t *c, json_t *r, json_t *w, int wt)
{
    int ok = 1;
    for (int lower = 1; lower >= 0; lower--) {
        bound_t rb = get_bound(r, lower), wb = get_bound(w, lower);
        if (bound_within(rb, wb, lower)) continue;
        char ws[64] = "none";
        if (wb.has) snprintf(ws, sizeof(ws), "%s%g", wb.exclusive ? "exclusive " : "", wb.value);
        report(c, lower ? "MINIMUM_INCREASED" : "MAXIMUM_DECREASED",
               "The reader's %s bound %s%g is tighter than the writer's (%s)",
               lower ? "lower" : "upper", rb.exclusive ? "exclusive " : "", rb.value, ws);
        ok = 0;
    }
    double rm, wm;
    if (get_number(r, "multipleOf", &rm)) {
        int have = get_number(w, "multipleOf", &wm);
        if (!have && !(wt & T_NUMBER)) {
            wm = 1; /* integers only: multiples of 1 */
            have = 1;
        }
        if (!have || !multiple_of(wm, rm)) {
            report(c, have ? "MULTIPLE_OF_CHANGED" : "MULTIPLE_OF_ADDED",
                   "The reader's multipleOf %g does not divide the writer's (%s)", rm,
                   get(w, "multipleOf") ? "another" : "none");
            ok = 0;
        }
    }
    return ok;
}

/* ---- arrays ---- */

/* The schema s gives array position i (i < 0: positions after every tuple entry). */
static json_t *item_schema(json_t *s, long i, size_t *tuple_len)
{
    json_t *prefix = get(s, "prefixItems"), *rest = get(s, "items");
    if (!json_is_array(prefix)) {
        prefix = NULL;
        if (json_is_array(rest)) {
            prefix = rest;
            rest = get(s, "additionalItems");
        }
    }
    *tuple_len = prefix ? json_array_size(prefix) : 0;
    if (i >= 0 && (size_t)i < *tuple_len) return json_array_get(prefix, (size_t)i);
    return rest ? rest : json_true();
}

static int check_limit_min(jctx_t *c, json_t *r, json_t *w, const char *key, const char *kind)
{
    double rv, wv;
    if (!get_number(r, key, &rv) || rv <= 0 || (get_number(w, key, &wv) && wv >= rv)) return 1;
    report(c, kind, "The reader's %s %g is above the writer's (%s)", key, rv,
           get(w, key) ? "lower" : "none");
    return 0;
}

static int check_limit_max(jctx_t *c, json_t *r, json_t *w, const char *key, const char *kind)
{
    double rv, wv;
    if (!get_number(r, key, &rv) || (get_number(w, key, &wv) && wv <= rv)) return 1;
    report(c, kind, "The reader's %s %g is below the writer's (%s)", key, rv,
           get(w, key) ? "higher" : "none");
    return 0;
}

static int check_array(jctx_t *c, json_t *r, json_t *w)
{
    int ok = 1;
    size_t rlen, wlen;
    item_schema(r, -1, &rlen);
    item_schema(w, -1, &wlen);
    size_t n = rlen > wlen ? rlen : wlen;
    for (size_t i = 0; i < n && (ok || !c->quiet); i++) {
        size_t old = path_push(c, "items/%zu", i);
        if (!check_sub(c, item_schema(r, (long)i, &rlen), item_schema(w, (long)i, &wlen))) ok = 0;
        path_pop(c, old);
    }
    if (ok || !c->quiet) {
        size_t old = path_push(c, "%s", rlen || wlen ? "additionalItems" : "items");
        if (!check_sub(c, item_schema(r, -1, &rlen), item_schema(w, -1, &wlen))) ok = 0;
        path_pop(c, old);
    }
    if (!check_limit_min(c, r, w, "minItems", "MIN_ITEMS_INCREASED")) ok = 0;
    if (!check_limit_max(c, r, w, "maxItems", "MAX_ITEMS_DECREASED")) ok = 0;
    if (json_is_true(get(r, "uniqueItems")) && !json_is_true(get(w, "uniqueItems"))) {
        report(c, "UNIQUE_ITEMS_ADDED",
               "The reader requires uniqueItems but the writer allows repeated items");
        ok = 0;
    }
    return ok;
}

/* ---- objects ---- */

/* The schema s gives to property names not in its properties (nor its patterns). */
static json_t *additional(json_t *s)
{
    json_t *a = get(s, "additionalProperties");
    return a ? a : json_true();
}

/*
 * Property-name patterns are ECMA-262 regular expressions. They are matched here as POSIX
 * extended ones, and only within a subset both read alike: printable ASCII; escapes only
 * of metacharacters; no bracket escapes or classes ([:alpha:]), no (?...) groups, no
 * intervals ({n,m}: they also bound regcomp's work); names of printable ASCII. Anything
 * else is "cannot tell", which the callers treat conservatively.
 */
static int pattern_in_subset(const char *p)
{
    if (strlen(p) > PATTERN_LEN_MAX) return 0;
    int in_bracket = 0, quantifiers = 0, after_quantifier = 0;
    for (size_t i = 0; p[i]; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '{' || ch == '}') return 0;
        /* stacked quantifiers ("a+++") make regcomp's work explode; ECMA's lazy "*?" is
         * the only pair kept, and a pattern has few quantifiers */
        int quantifier = !in_bracket && strchr("*+?", ch) && (i == 0 || p[i - 1] != '\\');
        if (quantifier && (after_quantifier > 1 || (after_quantifier && ch != '?') ||
                           ++quantifiers > PATTERN_QUANTIFIERS_MAX))
            return 0;
        after_quantifier = quantifier ? after_quantifier + 1 : 0;
        if (in_bracket) {
            if (ch == '\\' || (ch == '[' && strchr(":=.", p[i + 1]))) return 0;
            if (ch == ']') in_bracket = 0;
        } else if (ch == '\\') {
            if (!p[i + 1] || !strchr(".^$*+?()[]|\\", p[i + 1])) return 0;
            i++;
        } else if (ch == '[') {
            in_bracket = 1;
            if (p[i + 1] == '^') i++;
            if (p[i + 1] == ']') return 0; /* "[]" differs between the two */
        } else if (ch == '(' && p[i + 1] == '?') {
            return 0;
        }
    }
    return !in_bracket;
}

/* 1 when the property name matches pattern, 0 when it does not, -1 when we cannot tell. */
static int pattern_matches(jctx_t *c, const char *pattern, const char *name)
{
    if (strlen(name) > PATTERN_NAME_LEN_MAX) return -1;
    for (const char *q = name; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) return -1;
    if (!pattern_in_subset(pattern)) return -1;
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB)) return -1;
    c->steps += 64; /* a compile costs more than a comparison */
    int rc = regexec(&re, name, 0, NULL, 0);
    regfree(&re);
    return rc == 0 ? 1 : rc == REG_NOMATCH ? 0 : -1;
}

/* 1 when patterns a and b cannot match the same name: both "^" and a literal of letters,
 * digits, '_' or '-', neither literal a prefix of the other. */
static int patterns_disjoint(const char *a, const char *b)
{
    static const char lit[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    if (a[0] != '^' || b[0] != '^') return 0;
    size_t la = strspn(a + 1, lit), lb = strspn(b + 1, lit);
    if (a[1 + la] || b[1 + lb]) return 0;
    return strncmp(a + 1, b + 1, la < lb ? la : lb) != 0;
}

/* A property the reader lists and the writer does not. The writer's documents may hold
 * the name under one of its patterns (each one that matches holds: reading one suffices)
 * or, when none matches, under its additionalProperties. */
static int check_added_property(jctx_t *c, const char *name, json_t *rs, json_t *w)
{
    int matched = 0, unknown = 0, ok = 0;
    const char *pat;
    json_t *ps;
    c->quiet++;
    json_object_foreach(get(w, "patternProperties"), pat, ps)
    {
        int m = pattern_matches(c, pat, name);
        if (m < 0) unknown = 1;
        if (m > 0) matched = 1;
        if (m > 0 && !ok) ok = check_sub(c, rs, ps);
    }
    json_t *ws = unknown ? json_true() : additional(w); /* unknown: anything, to be safe */
    if (!ok && !matched) ok = check_sub(c, rs, ws);
    c->quiet--;
    if (ok) return 1;
    if (!matched && (json_is_true(ws) || accepts_all(ws)))
        report(c, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
               "The reader adds the property '%s' with a schema, but the writer's content "
               "model is open: its documents may already hold '%s' with any value. Close "
               "the writer (additionalProperties: false) first, or accept any value",
               name, name);
    else
        report(c, "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
               "The reader adds the property '%s', whose schema does not read what the "
               "writer's additionalProperties/patternProperties allow for it",
               name);
    return 0;
}

/* A property the writer lists and the reader does not: the reader gives it its matching
 * patterns (checked against the writer's properties in check_patterns_additional), or
 * else its additionalProperties. */
static int check_removed_property(jctx_t *c, const char *name, json_t *r, json_t *ws)
{
    if (json_is_false(ws)) return 1;
    const char *pat;
    json_t *ps;
    int matched = 0;
    json_object_foreach(get(r, "patternProperties"), pat, ps)
    {
        int m = pattern_matches(c, pat, name);
        if (m > 0) matched = 1;
        if (m < 0 && !accepts_all(ps)) {
            report(c, "UNSUPPORTED_KEYWORD",
                   "The writer's property '%s' is not in the reader's properties, and whether "
                   "it matches the reader's pattern %.100s cannot be told",
                   name, pat);
            return 0;
        }
    }
    if (matched) return 1;
    json_t *rs = additional(r);
    c->quiet++;
    int ok = check_sub(c, rs, ws);
    c->quiet--;
    if (ok) return 1;
    if (json_is_false(rs))
        report(c, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
               "The reader removes the property '%s' but its content model is closed "
               "(additionalProperties: false): the writer's documents holding '%s' would be "
               "refused",
               name, name);
    else
        report(c, "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
               "The reader removes the property '%s' and its additionalProperties does not "
               "read the writer's schema for it",
               name);
    return 0;
}

static int check_properties(jctx_t *c, json_t *r, json_t *w)
{
    json_t *rp = get(r, "properties"), *wp = get(w, "properties");
    int ok = 1;
    const char *name;
    json_t *rs, *ws;
    json_object_foreach(rp, name, rs)
    {
        size_t old = path_push(c, "properties/%s", name);
        ws = json_object_get(wp, name);
        if (!(ws ? check_sub(c, rs, ws) : check_added_property(c, name, rs, w))) ok = 0;
        path_pop(c, old);
        if (!ok && c->quiet) return 0;
    }
    json_object_foreach(wp, name, ws)
    {
        if (json_object_get(rp, name)) continue;
        size_t old = path_push(c, "properties/%s", name);
        if (!check_removed_property(c, name, r, ws)) ok = 0;
        path_pop(c, old);
        if (!ok && c->quiet) return 0;
    }
    return ok;
}

/* One reader pattern k (schema rs): every name the writer may give a value and k matches. */
static int check_reader_pattern(jctx_t *c, const char *k, json_t *rs, json_t *w)
{
    int ok = 1;
    const char *name, *j;
    json_t *ws;
    /* The writer has the same pattern: every name k matches holds a value the writer's k
     * accepts, whatever its properties or additionalProperties say. */
    json_t *same = get(get(w, "patternProperties"), k);
    if (same) return check_sub(c, rs, same);
    json_object_foreach(get(w, "properties"), name, ws)
    {
        int m = pattern_matches(c, k, name);
        if (m < 0) {
            report(c, "UNSUPPORTED_KEYWORD",
                   "Whether the writer's property '%s' matches the reader's pattern cannot be "
                   "told",
                   name);
            ok = 0;
        } else if (m > 0 && !check_sub(c, rs, ws)) {
            ok = 0;
        }
        if (!ok && c->quiet) return 0;
    }
    /* names under the writer's patterns: the same pattern, or one that may overlap */
    json_object_foreach(get(w, "patternProperties"), j, ws)
    {
        if (strcmp(j, k) && patterns_disjoint(j, k)) continue;
        if (!check_sub(c, rs, ws)) ok = 0;
        if (!ok && c->quiet) return 0;
    }
    /* and any other name, under the writer's additionalProperties */
    if (!check_sub(c, rs, additional(w))) ok = 0;
    return ok;
}

static int check_patterns_additional(jctx_t *c, json_t *r, json_t *w)
{
    int ok = 1;
    json_t *rpp = get(r, "patternProperties"), *wpp = get(w, "patternProperties");
    const char *pat;
    json_t *ps;
    json_object_foreach(rpp, pat, ps)
    {
        if (accepts_all(ps)) continue;
        size_t old = path_push(c, "patternProperties/%s", pat);
        if (!check_reader_pattern(c, pat, ps, w)) ok = 0;
        path_pop(c, old);
        if (!ok && c->quiet) return 0;
    }
    /* names under a writer pattern the reader does not have may meet the reader's
     * additionalProperties */
    json_object_foreach(wpp, pat, ps)
    {
        if (json_object_get(rpp, pat)) continue;
        size_t old = path_push(c, "additionalProperties");
        if (!check_sub(c, additional(r), ps)) ok = 0;
        path_pop(c, old);
        if (!ok && c->quiet) return 0;
    }
    if (!ok && c->quiet) return 0;
    size_t old = path_push(c, "additionalProperties");
    if (json_is_false(additional(r)) && !json_is_false(additional(w))) {
        report(c, "ADDITIONAL_PROPERTIES_NARROWED",
               "The reader's content model is closed (additionalProperties: false) but the "
               "writer's allows other properties");
        ok = 0;
    } else if (!check_sub(c, additional(r), additional(w))) {
        ok = 0;
    }
    path_pop(c, old);
    return ok;
}

/* 1 when s lists name in required. */
static int requires(json_t *s, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(get(s, "required"), i,
                       x) if (json_is_string(x) && !strcmp(json_string_value(x), name)) return 1;
    return 0;
}

static int check_required(jctx_t *c, json_t *r, json_t *w)
{
    json_t *req = get(r, "required");
    if (!req) return 1;
    if (!json_is_array(req)) {
        size_t old = path_push(c, "required");
        report(c, "UNSUPPORTED_KEYWORD", "The reader's required is not an array");
        path_pop(c, old);
        return 0;
    }
    if (lists_too_long(c, req, get(w, "required"), "required")) return 0;
    int ok = 1;
    size_t i;
    json_t *x;
    json_array_foreach(req, i, x)
    {
        const char *name = json_string_value(x);
        if (!name || requires(w, name)) continue;
        /* Confluent lets a reader require a property it gives a default */
        json_t *prop = get(get(r, "properties"), name);
        if (get(prop, "default")) continue;
        size_t old = path_push(c, "required/%zu", i);
        int closed = !get(get(w, "properties"), name) && json_is_false(additional(w));
        report(c,
               closed ? "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
                      : "REQUIRED_PROPERTY_ADDED",
               "The reader requires the property '%s' (without a default) but the writer's "
               "documents %s",
               name, closed ? "cannot hold it" : "may lack it");
        path_pop(c, old);
        ok = 0;
        if (c->quiet) break;
    }
    return ok;
}

/* The names the writer guarantees when name is present (its dependency array), or NULL. */
static json_t *writer_dependency(json_t *w, const char *name)
{
    json_t *d = get(get(w, "dependentRequired"), name);
    if (json_is_array(d)) return d;
    d = get(get(w, "dependencies"), name);
    return json_is_array(d) ? d : NULL;
}

static json_t *writer_dependent_schema(json_t *w, const char *name)
{
    json_t *d = get(get(w, "dependentSchemas"), name);
    if (d) return d;
    d = get(get(w, "dependencies"), name);
    return json_is_array(d) ? NULL : d;
}

static int check_one_dependency(jctx_t *c, const char *name, json_t *rd, json_t *w)
{
    if (json_is_array(rd)) {
        json_t *wd = writer_dependency(w, name);
        if (lists_too_long(c, rd, wd, "dependency") ||
            lists_too_long(c, rd, get(w, "required"), "required"))
            return 0;
        size_t i, k;
        json_t *x, *y;
        json_array_foreach(rd, i, x)
        {
            int found = json_is_string(x) && requires(w, json_string_value(x));
            json_array_foreach(wd, k, y) if (json_equal(x, y)) found = 1;
            if (found) continue;
            report(c, wd ? "DEPENDENCY_ARRAY_EXTENDED" : "DEPENDENCY_ARRAY_ADDED",
                   "The reader requires %.100s when '%s' is present; the writer does not",
                   json_is_string(x) ? json_string_value(x) : "?", name);
            return 0;
        }
        return 1;
    }
    json_t *ws = writer_dependent_schema(w, name);
    if (!ws) {
        report(c, "DEPENDENCY_SCHEMA_ADDED",
               "The reader adds a schema for documents holding '%s'; the writer has none", name);
        return 0;
    }
    return check(c, rd, ws);
}

static int check_dependencies(jctx_t *c, json_t *r, json_t *w)
{
    static const char *const keys[] = {"dependencies", "dependentRequired", "dependentSchemas"};
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        json_t *deps = get(r, keys[k]);
        const char *name;
        json_t *rd;
        json_object_foreach(deps, name, rd)
        {
            size_t old = path_push(c, "%s/%s", keys[k], name);
            if (!check_one_dependency(c, name, rd, w)) ok = 0;
            path_pop(c, old);
            if (!ok && c->quiet) return 0;
        }
    }
    return ok;
}

static int check_object(jctx_t *c, json_t *r, json_t *w)
{
    int ok = check_properties(c, r, w);
    if (ok || !c->quiet) ok &= check_patterns_additional(c, r, w);
    if (ok || !c->quiet) ok &= check_required(c, r, w);
    if (ok || !c->quiet) ok &= check_dependencies(c, r, w);
    if (!check_limit_min(c, r, w, "minProperties", "MIN_PROPERTIES_INCREASED")) ok = 0;
    if (!check_limit_max(c, r, w, "maxProperties", "MAX_PROPERTIES_DECREASED")) ok = 0;
    json_t *rn = get(r, "propertyNames");
    if (rn && (ok || !c->quiet)) {
        json_t *wn = get(w, "propertyNames");
        size_t old = path_push(c, "propertyNames");
        if (!check_sub(c, rn, wn ? wn : json_true())) ok = 0;
        path_pop(c, old);
    }
    return ok;
}

/* ---- keywords compared verbatim or refused ---- */

static int check_unanalysed(jctx_t *c, json_t *r, json_t *w)
{
    int ok = 1;
    const char *k;
    json_t *v;
    json_object_foreach(r, k, v)
    {
        int verbatim = in_list(compared_verbatim, k);
        if (!verbatim && !in_list(refused_in_reader, k)) continue;
        json_t *wv = get(w, k);
        if (verbatim && wv && same_plain_value(c, v, wv)) continue;
        size_t old = path_push(c, "%s", k);
        report(c, "UNSUPPORTED_KEYWORD",
               verbatim ? "The reader's %s is not analysed and differs from the writer's: "
                          "compatibility cannot be shown"
                        : "The reader's %s is not supported by the compatibility check",
               k);
        path_pop(c, old);
        ok = 0;
        if (c->quiet) break;
    }
    return ok;
}

/* Every keyword of r against w, combinators and $ref already taken apart. */
static int check_keywords(jctx_t *c, json_t *r, json_t *w)
{
    int wt = writer_types(w);
    int ok = check_type(c, r, wt);
    if (ok || !c->quiet) ok &= check_enum_const(c, r, w);
    if ((ok || !c->quiet) && (wt & T_STRING)) ok &= check_string(c, r, w);
    if ((ok || !c->quiet) && (wt & (T_NUMBER | T_INTEGER))) ok &= check_number(c, r, w, wt);
    if ((ok || !c->quiet) && (wt & T_ARRAY)) ok &= check_array(c, r, w);
    if ((ok || !c->quiet) && (wt & T_OBJECT)) ok &= check_object(c, r, w);
    if (ok || !c->quiet) ok &= check_unanalysed(c, r, w);
    return ok;
}

/* ---- combinators ---- */

/* A writer's anyOf/oneOf: it produces documents of its branches, each also meeting its
 * other keywords. Either r reads w without the combinator, or r reads every branch. */
static int check_writer_sum(jctx_t *c, json_t *r, json_t *w, const char *key)
{
    json_t *rest = without(w, key);
    int ok = !accepts_all(rest) && try_check(c, r, rest);
    json_decref(rest);
    if (ok) return 1;
    json_t *branches = get(w, key);
    if (!json_is_array(branches) || !json_array_size(branches)) {
        report(c, "UNSUPPORTED_KEYWORD", "The writer's %s is not a non-empty array", key);
        return 0;
    }
    ok = 1;
    size_t i;
    json_t *b;
    json_array_foreach(branches, i, b)
    {
        size_t old = path_push(c, "%s/%zu", key, i);
        if (!check(c, r, b)) ok = 0;
        path_pop(c, old);
        if (!ok && c->quiet) break;
    }
    return ok;
}

/* A reader's anyOf/oneOf: its other keywords read w, and some branch reads w. */
static int check_reader_sum(jctx_t *c, json_t *r, json_t *w, const char *key)
{
    json_t *rest = without(r, key);
    int ok = check(c, rest, w);
    json_decref(rest);
    if (!ok && c->quiet) return 0;
    json_t *branches = get(r, key);
    size_t i;
    json_t *b;
    json_array_foreach(branches, i, b) if (try_check(c, b, w)) return ok;
    size_t old = path_push(c, "%s", key);
    report(c, "SUM_TYPE_NARROWED",
           "No branch of the reader's %s reads what the writer allows (a branch was removed or "
           "narrowed)",
           key);
    path_pop(c, old);
    return 0;
}

/* A reader's allOf: its other keywords and every branch read w. */
static int check_reader_product(jctx_t *c, json_t *r, json_t *w)
{
    if (!json_is_array(get(r, "allOf"))) {
        report(c, "UNSUPPORTED_KEYWORD", "The reader's allOf is not an array");
        return 0;
    }
    json_t *rest = without(r, "allOf");
    int ok = check(c, rest, w);
    json_decref(rest);
    size_t i;
    json_t *b;
    json_array_foreach(get(r, "allOf"), i, b)
    {
        if (!ok && c->quiet) break;
        size_t old = path_push(c, "allOf/%zu", i);
        if (!check(c, b, w)) ok = 0;
        path_pop(c, old);
    }
    return ok;
}

/* A writer's allOf: its documents meet every branch, so reading one branch (or w without
 * the allOf) suffices. */
/* The writer's allOf folded into one object (a new reference), or NULL when that would not
 * be safe: a keyword in two places, a branch that is not an object, or keywords whose
 * meaning depends on a sibling (additionalItems and items, draft 4's boolean
 * exclusiveMinimum/Maximum and minimum/maximum) split between places. Folding may only make
 * the writer allow more (additionalProperties next to more properties), never less. */
static json_t *fold_product(json_t *w)
{
    json_t *all = json_object_get(w, "allOf");
    json_t *out = without(w, "allOf");
    size_t i;
    json_t *b;
    json_array_foreach(all, i, b)
    {
        if (!json_is_object(b) && !json_is_true(b)) goto refuse;
        const char *k;
        json_t *v;
        json_object_foreach(b, k, v)
        {
            if (json_object_get(out, k)) goto refuse;
            json_object_set(out, k, v);
        }
        static const char *const pairs[][2] = {{"additionalItems", "items"},
                                               {"exclusiveMinimum", "minimum"},
                                               {"exclusiveMaximum", "maximum"}};
        for (int p = 0; p < 3; p++) {
            int here = get(b, pairs[p][0]) != NULL, there = get(b, pairs[p][1]) != NULL;
            int anywhere = get(out, pairs[p][1]) != NULL;
            if (here && !there && anywhere) goto refuse;
            if (!here && there && get(out, pairs[p][0]) && !json_is_number(get(out, pairs[p][0])))
                goto refuse;
        }
    }
    return out;
refuse:
    json_decref(out);
    return NULL;
}

static int check_writer_product(jctx_t *c, json_t *r, json_t *w)
{
    json_t *folded = fold_product(w);
    if (folded) {
        int ok = try_check(c, r, folded);
        json_decref(folded);
        if (ok) return 1;
    }
    json_t *rest = without(w, "allOf");
    if (!accepts_all(rest) && try_check(c, r, rest)) {
        json_decref(rest);
        return 1;
    }
    size_t i;
    json_t *b;
    json_array_foreach(get(w, "allOf"), i, b) if (try_check(c, r, b))
    {
        json_decref(rest);
        return 1;
    }
    /* none alone: the messages of r against w without its allOf say what is missing */
    if (!c->quiet) {
        size_t n = c->msgs ? json_array_size(c->msgs) : 0;
        check(c, r, rest);
        if (c->msgs && json_array_size(c->msgs) == n)
            report(c, "PRODUCT_TYPE_EXTENDED",
                   "The reader reads none of the writer's allOf branches on its own");
    }
    json_decref(rest);
    return 0;
}

static int check_not(jctx_t *c, json_t *r, json_t *w)
{
    json_t *wn = get(w, "not");
    if (!wn) {
        size_t old = path_push(c, "not");
        report(c, "NOT_TYPE_ADDED",
               "The reader adds a not: the writer's documents are not shown to avoid it");
        path_pop(c, old);
        return 0;
    }
    /* r refuses what r.not accepts; w's documents avoid what w.not accepts: fine when
     * everything r.not accepts is accepted by w.not (the roles swap). */
    size_t old = path_push(c, "not");
    json_t *root = c->rroot;
    c->rroot = c->wroot; /* the writer's not is the reader here: its $refs are the writer's */
    c->wroot = root;
    int ok = check(c, wn, get(r, "not"));
    c->wroot = c->rroot;
    c->rroot = root;
    path_pop(c, old);
    if (!ok && c->quiet) return 0;
    json_t *rr = without(r, "not"), *ww = without(w, "not");
    ok &= check(c, rr, ww);
    json_decref(rr);
    json_decref(ww);
    return ok;
}

/* ---- the recursion ---- */

/* Takes $ref apart: w's target alone (its siblings only narrow w); r's target and r's own
 * other keywords. Returns -1 when neither has a $ref. */
static int check_refs(jctx_t *c, json_t *r, json_t *w)
{
    if (get(w, "$ref")) {
        json_t *t = follow(c, c->wroot, w, "writer");
        return t ? check_ref_pair(c, r, t) : 0;
    }
    if (get(r, "$ref")) {
        json_t *t = follow(c, c->rroot, r, "reader");
        if (!t) return 0;
        int ok = check_ref_pair(c, t, w);
        if (!ok && c->quiet) return 0;
        json_t *rest = without(r, "$ref");
        if (!accepts_all(rest) && !check(c, rest, w)) ok = 0;
        json_decref(rest);
        return ok;
    }
    return -1;
}

static int check_inner(jctx_t *c, json_t *r, json_t *w)
{
    if (json_is_false(w) || accepts_all(r)) return 1;
    if (!json_is_object(w) && !json_is_true(w)) {
        report(c, "UNSUPPORTED_KEYWORD", "The writer's schema here is not an object or boolean");
        return 0;
    }
    if (!json_is_object(r)) {
        report(c, json_is_false(r) ? "SCHEMA_REMOVED" : "UNSUPPORTED_KEYWORD",
               json_is_false(r) ? "The reader accepts nothing here (false) but the writer "
                                  "allows values"
                                : "The reader's schema here is not an object or boolean");
        return 0;
    }
    int reader_bad = malformed_keyword(r) != NULL;
    const char *bad = reader_bad ? malformed_keyword(r) : malformed_keyword(w);
    if (bad) {
        size_t old = path_push(c, "%s", bad);
        report(c, "UNSUPPORTED_KEYWORD", "The %s's %s has a value of the wrong JSON type",
               reader_bad ? "reader" : "writer", bad);
        path_pop(c, old);
        return 0;
    }
    if (json_is_true(w)) w = c->empty; /* the same documents */
    int ok = check_refs(c, r, w);
    if (ok < 0) {
        if (get(w, "anyOf"))
            ok = check_writer_sum(c, r, w, "anyOf");
        else if (get(w, "oneOf"))
            ok = check_writer_sum(c, r, w, "oneOf");
        else if (get(r, "allOf"))
            ok = check_reader_product(c, r, w);
        else if (get(r, "anyOf"))
            ok = check_reader_sum(c, r, w, "anyOf");
        else if (get(r, "oneOf"))
            ok = check_reader_sum(c, r, w, "oneOf");
        else if (get(w, "allOf"))
            ok = check_writer_product(c, r, w);
        else if (get(r, "not"))
            ok = check_not(c, r, w);
        else if (get(w, "not")) {
            json_t *ww = without(w, "not");
            ok = check(c, r, ww);
            json_decref(ww);
        } else {
            ok = check_keywords(c, r, w);
        }
    }
    return ok;
}

static int check(jctx_t *c, json_t *r, json_t *w)
{
    /* big objects cost more: each call may copy or scan them */
    c->steps += 1 + (long)((json_object_size(r) + json_object_size(w)) / 16);
    if (c->steps > KP_JSON_COMPAT_STEPS_MAX) {
        if (!c->budget_reported) {
            c->budget_reported = 1;
            int q = c->quiet;
            c->quiet = 0;
            report(c, "TOO_COMPLEX",
                   "The schemas need more than %d comparisons: not checked further",
                   KP_JSON_COMPAT_STEPS_MAX);
            c->quiet = q;
        }
        return 0;
    }
    if (c->depth >= KP_JSON_COMPAT_DEPTH_MAX) {
        report(c, "TOO_DEEP",
               "The schemas nest deeper than %d levels (including $ref): not "
               "checked further",
               KP_JSON_COMPAT_DEPTH_MAX);
        return 0;
    }
    c->depth++;
    int ok = check_inner(c, r, w);
    c->depth--;
    return ok;
}

/* 1 when every $ref in v is local and resolves in root, without $dynamicRef/$recursiveRef
 * (whose targets depend on more than the document); 0 too when v is too large to tell. */
static int self_contained(json_t *root, json_t *v, int depth, long *nodes_left)
{
    if (depth > KP_JSON_COMPAT_DEPTH_MAX || --*nodes_left < 0) return 0;
    const char *k;
    size_t i;
    json_t *x;
    if (json_is_array(v))
        json_array_foreach(v, i, x) if (!self_contained(root, x, depth + 1, nodes_left)) return 0;
    json_object_foreach(v, k, x)
    {
        if (!strcmp(k, "$dynamicRef") || !strcmp(k, "$recursiveRef")) return 0;
        if (!strcmp(k, "$ref") && !(json_is_string(x) && resolve(root, json_string_value(x))))
            return 0;
        if (!self_contained(root, x, depth + 1, nodes_left)) return 0;
    }
    return 1;
}

int kp_json_can_read(json_t *reader, json_t *writer, json_t *msgs)
{
    /* the same self-contained document reads itself: no need to spend budget */
    long nodes_left = KP_JSON_COMPAT_VALUE_NODES_MAX;
    if (json_equal(reader, writer) && self_contained(reader, reader, 0, &nodes_left)) return 1;
    jctx_t c = {.rroot = reader, .wroot = writer, .msgs = msgs, .empty = json_object()};
    kp_hmap_init(&c.refs);
    int ok = check(&c, reader, writer);
    kp_hmap_free(&c.refs);
    json_decref(c.empty);
    /* out of budget, a shortcut may still have said yes somewhere: not good enough */
    return ok && !c.budget_reported;
}
