/*
 * avro_compat.c — the reader/writer resolution check (rules in avro_compat.h).
 *
 * One recursive function, check(), over a pair of nodes. Named pairs are memoized in a map
 * keyed by the two node addresses: IN_PROGRESS while being checked (a recursive type meets
 * itself: assumed compatible), then OK or FAILED. Union trials run quietly (no messages):
 * only the outcome of the whole union is reported.
 */
#include "registry/avro_compat.h"

#include "core/buf.h"
#include "core/hmap.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PAIR_REPORTED: failed and its messages were written (a later meeting only fails). */
enum { PAIR_IN_PROGRESS = 1, PAIR_OK, PAIR_FAILED, PAIR_REPORTED };

typedef struct cctx {
    kp_hmap_t pairs;
    json_t *msgs; /* NULL: quiet */
} cctx_t;

static void report(cctx_t *c, int quiet, const char *type, const char *path, const char *info,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void report(cctx_t *c, int quiet, const char *type, const char *path, const char *info,
                   const char *fmt, ...)
{
    if (quiet || !c->msgs || json_array_size(c->msgs) >= KP_AVRO_COMPAT_MESSAGES_MAX) return;
    char desc[600], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line),
             "{errorType:'%s', description:'%s at path '%s'', additionalInfo:'%s'}", type, desc,
             path[0] ? path : "/", info);
    json_array_append_new(c->msgs, json_string(line));
}

static int names_match(const kp_avro_node_t *r, const kp_avro_node_t *w)
{
    if (!strcmp(r->name, w->name)) return 1;
    size_t i;
    json_t *a;
    json_array_foreach(r->aliases, i, a) if (!strcmp(json_string_value(a), w->fullname)) return 1;
    return 0;
}

static int promotes(kp_avro_type_t r, kp_avro_type_t w)
{
    switch (w) {
    case KP_AVRO_INT:
        return r == KP_AVRO_LONG || r == KP_AVRO_FLOAT || r == KP_AVRO_DOUBLE;
    case KP_AVRO_LONG:
        return r == KP_AVRO_FLOAT || r == KP_AVRO_DOUBLE;
    case KP_AVRO_FLOAT:
        return r == KP_AVRO_DOUBLE;
    case KP_AVRO_STRING:
        return r == KP_AVRO_BYTES;
    case KP_AVRO_BYTES:
        return r == KP_AVRO_STRING;
    default:
        return 0;
    }
}

static const char *label(const kp_avro_node_t *n)
{
    return n->fullname ? n->fullname : kp_avro_type_name(n->type);
}

static int check(cctx_t *c, const kp_avro_node_t *r, const kp_avro_node_t *w, const char *path,
                 int quiet);

static const kp_avro_field_t *writer_field(const kp_avro_node_t *w, const kp_avro_field_t *rf)
{
    for (int i = 0; i < w->nfields; i++)
        if (!strcmp(w->fields[i].name, rf->name)) return &w->fields[i];
    size_t k;
    json_t *a;
    json_array_foreach(rf->aliases, k, a)
    {
        for (int i = 0; i < w->nfields; i++)
            if (!strcmp(w->fields[i].name, json_string_value(a))) return &w->fields[i];
    }
    return NULL;
}

static int check_record(cctx_t *c, const kp_avro_node_t *r, const kp_avro_node_t *w,
                        const char *path, int quiet)
{
    int ok = 1;
    char sub[1024];
    for (int i = 0; i < r->nfields; i++) {
        const kp_avro_field_t *rf = &r->fields[i];
        const kp_avro_field_t *wf = writer_field(w, rf);
        if (wf) {
            snprintf(sub, sizeof(sub), "%s/fields/%d/type", path, i);
            if (!check(c, rf->type, wf->type, sub, quiet)) ok = 0;
        } else if (!rf->default_value) {
            snprintf(sub, sizeof(sub), "%s/fields/%d", path, i);
            report(c, quiet, "READER_FIELD_MISSING_DEFAULT_VALUE", sub, rf->name,
                   "The field '%s' in the reader schema (record %s) has no default value and is "
                   "missing in the writer schema",
                   rf->name, r->fullname);
            ok = 0;
        }
        if (!ok && quiet) return 0;
    }
    return ok;
}

static int check_enum(cctx_t *c, const kp_avro_node_t *r, const kp_avro_node_t *w, const char *path,
                      int quiet)
{
    if (r->enum_default) return 1;
    kp_buf_t missing;
    kp_buf_init(&missing);
    for (int i = 0; i < w->nsymbols; i++) {
        int found = 0;
        for (int k = 0; k < r->nsymbols && !found; k++)
            found = !strcmp(r->symbols[k], w->symbols[i]);
        if (!found) kp_buf_appendf(&missing, "%s%s", missing.len ? ", " : "", w->symbols[i]);
    }
    int ok = missing.len == 0;
    if (!ok) {
        kp_buf_append(&missing, "", 1);
        report(c, quiet, "MISSING_ENUM_SYMBOLS", path, (char *)missing.data,
               "The reader enum %s lacks the writer's symbols [%s] and has no default", r->fullname,
               (char *)missing.data);
    }
    kp_buf_free(&missing);
    return ok;
}

/* Named pairs: memoized, coinductive. */
static int check_named(cctx_t *c, const kp_avro_node_t *r, const kp_avro_node_t *w,
                       const char *path, int quiet)
{
    if (!names_match(r, w)) {
        report(c, quiet, "NAME_MISMATCH", path, w->fullname,
               "The reader type name %s does not match the writer type name %s", r->fullname,
               w->fullname);
        return 0;
    }
    const void *key[2] = {r, w};
    intptr_t state = (intptr_t)kp_hmap_get(&c->pairs, key, sizeof(key));
    if (state == PAIR_IN_PROGRESS || state == PAIR_OK) return 1;
    if (state == PAIR_REPORTED || (state == PAIR_FAILED && (quiet || !c->msgs))) return 0;
    kp_hmap_put(&c->pairs, key, sizeof(key), (void *)(intptr_t)PAIR_IN_PROGRESS);
    int ok;
    if (r->type == KP_AVRO_RECORD) {
        ok = check_record(c, r, w, path, quiet);
    } else if (r->type == KP_AVRO_ENUM) {
        ok = check_enum(c, r, w, path, quiet);
    } else {
        ok = r->size == w->size;
        if (!ok) {
            char info[64];
            snprintf(info, sizeof(info), "expected: %lld, found: %lld", w->size, r->size);
            report(c, quiet, "FIXED_SIZE_MISMATCH", path, info,
                   "The size of fixed %s is %lld in the reader and %lld in the writer", r->fullname,
                   r->size, w->size);
        }
    }
    kp_hmap_put(&c->pairs, key, sizeof(key),
                (void *)(intptr_t)(ok      ? PAIR_OK
                                   : quiet ? PAIR_FAILED
                                           : PAIR_REPORTED));
    return ok;
}

static int check(cctx_t *c, const kp_avro_node_t *r, const kp_avro_node_t *w, const char *path,
                 int quiet)
{
    char sub[1024];
    if (w->type == KP_AVRO_UNION) {
        int ok = 1;
        for (int i = 0; i < w->nbranches; i++) {
            snprintf(sub, sizeof(sub), "%s/%d", path, i);
            if (!check(c, r, w->branches[i], sub, quiet)) {
                ok = 0;
                if (quiet) return 0;
            }
        }
        return ok;
    }
    if (r->type == KP_AVRO_UNION) {
        for (int i = 0; i < r->nbranches; i++)
            if (check(c, r->branches[i], w, path, 1)) return 1;
        report(c, quiet, "MISSING_UNION_BRANCH", path, label(w),
               "The reader union has no branch that can read the writer type %s", label(w));
        return 0;
    }
    if (r->type == w->type) {
        switch (r->type) {
        case KP_AVRO_RECORD:
        case KP_AVRO_ENUM:
        case KP_AVRO_FIXED:
            return check_named(c, r, w, path, quiet);
        case KP_AVRO_ARRAY:
            snprintf(sub, sizeof(sub), "%s/items", path);
            return check(c, r->items, w->items, sub, quiet);
        case KP_AVRO_MAP:
            snprintf(sub, sizeof(sub), "%s/values", path);
            return check(c, r->items, w->items, sub, quiet);
        default:
            return 1;
        }
    }
    if (promotes(r->type, w->type)) return 1;
    char info[300];
    snprintf(info, sizeof(info), "reader type: %s not compatible with writer type: %s", label(r),
             label(w));
    report(c, quiet, "TYPE_MISMATCH", path, info,
           "The type of the reader (%s) cannot read the type of the writer (%s)", label(r),
           label(w));
    return 0;
}

int kp_avro_can_read(const kp_avro_schema_t *reader, const kp_avro_schema_t *writer, json_t *msgs)
{
    cctx_t c = {.msgs = msgs};
    kp_hmap_init(&c.pairs);
    int ok = check(&c, reader->root, writer->root, "", 0);
    kp_hmap_free(&c.pairs);
    return ok;
}
