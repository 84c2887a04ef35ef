/*
 * k8s_fields.c — metadata.managedFields and server-side apply (see k8s.h).
 *
 * A field set is Kubernetes' FieldsV1 form: nested objects keyed "f:<field>", a leaf being
 * {}; lists are atomic (kpool's kinds have no lists with merge keys), so a list is one leaf;
 * an empty map sets nothing, so it owns nothing.
 * Every write records which manager set which fields: an update (PUT, PATCH, POST) gives
 * its manager the fields it changed; an apply gives its manager exactly the fields of its
 * configuration, removes the fields it applied before and no longer does (unless another
 * manager owns them too), and fails with the conflicting fields when another manager owns a
 * field it would change (force takes them over), as Kubernetes does.
 */
#include "control/api/k8s.h"

#include "core/utf8.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Fields nobody owns: identity, server-set metadata and status. */
static int excluded(int depth, const char *parent, const char *key)
{
    if (depth == 0)
        return !strcmp(key, "apiVersion") || !strcmp(key, "kind") || !strcmp(key, "status");
    if (depth == 1 && !strcmp(parent, "metadata")) {
        static const char *server[] = {"name",          "namespace",        "uid",
                                       "generation",    "resourceVersion",  "creationTimestamp",
                                       "managedFields", "deletionTimestamp"};
        for (size_t i = 0; i < sizeof(server) / sizeof(*server); i++)
            if (!strcmp(key, server[i])) return 1;
    }
    return 0;
}

static json_t *fieldset_of(const json_t *v, int depth, const char *parent)
{
    json_t *fs = json_object();
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)v, k, c)
    {
        if (excluded(depth, parent, k)) continue;
        char key[600];
        snprintf(key, sizeof(key), "f:%s", k);
        if (json_is_object(c) && json_object_size(c)) {
            json_t *sub = fieldset_of(c, depth + 1, k);
            if (json_object_size(sub))
                json_object_set_new(fs, key, sub);
            else
                json_decref(sub);        /* only server-set fields (metadata.name): nothing owned */
        } else if (!json_is_object(c)) { /* {} sets nothing: it owns nothing */
            json_object_set_new(fs, key, json_object());
        }
    }
    return fs;
}

/* The value at a field-set path (keys without "f:"), NULL when absent. */
static json_t *value_at(const json_t *obj, json_t *const *path, int n)
{
    const json_t *v = obj;
    for (int i = 0; i < n && v; i++) v = json_object_get(v, json_string_value(path[i]));
    return (json_t *)v;
}

typedef void (*leaf_fn)(json_t *const *path, int n, void *arg);

/* Calls fn for every leaf of fs with its path (array of plain keys). */
static void leaves(const json_t *fs, json_t **path, int n, leaf_fn fn, void *arg)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)fs, k, c)
    {
        if (strncmp(k, "f:", 2) != 0 || n >= 64) continue;
        path[n] = json_string(k + 2);
        if (!path[n]) continue; /* not UTF-8: jansson refused it, so no object has it */
        if (json_object_size(c))
            leaves(c, path, n + 1, fn, arg);
        else
            fn(path, n + 1, arg);
        json_decref(path[n]);
    }
}

static int fs_has(const json_t *fs, json_t *const *path, int n)
{
    for (int i = 0; i < n; i++) {
        char key[600];
        snprintf(key, sizeof(key), "f:%s", json_string_value(path[i]));
        fs = json_object_get(fs, key);
        if (!fs) return 0;
        if (i < n - 1 && !json_object_size(fs)) return 1; /* an atomic ancestor owns it */
    }
    return 1;
}

static void fs_add(json_t *fs, json_t *const *path, int n)
{
    for (int i = 0; i < n; i++) {
        char key[600];
        snprintf(key, sizeof(key), "f:%s", json_string_value(path[i]));
        json_t *c = json_object_get(fs, key);
        if (!c) {
            c = json_object();
            json_object_set_new(fs, key, c);
        }
        fs = c;
    }
    json_object_clear(fs); /* the whole subtree is now one owned field */
}

/* Removes a leaf (and the interior objects it leaves empty). */
static int fs_del(json_t *fs, json_t *const *path, int n)
{
    char key[600];
    snprintf(key, sizeof(key), "f:%s", json_string_value(path[0]));
    json_t *c = json_object_get(fs, key);
    if (!c) return 0;
    if (n == 1 || !json_object_size(c)) {
        json_object_del(fs, key);
        return 1;
    }
    int r = fs_del(c, path + 1, n - 1);
    if (r && !json_object_size(c)) json_object_del(fs, key);
    return r;
}

/* ---- managedFields entries ---- */

static void now_rfc3339(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The entry of (manager, operation) in mf, created when missing. */
static json_t *entry_of(json_t *mf, const char *manager, const char *operation,
                        const char *api_version)
{
    size_t i;
    json_t *e;
    json_array_foreach(mf, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "manager"));
        const char *op = json_string_value(json_object_get(e, "operation"));
        if (m && op && !strcmp(m, manager) && !strcmp(op, operation)) return e;
    }
    e = json_pack("{s:s, s:s, s:s, s:s, s:{}}", "manager", manager, "operation", operation,
                  "apiVersion", api_version, "fieldsType", "FieldsV1", "fieldsV1");
    if (!e) return NULL;
    json_array_append_new(mf, e);
    return e;
}

static json_t *entry_fields(json_t *e)
{
    json_t *fs = json_object_get(e, "fieldsV1");
    if (!json_is_object(fs)) {
        fs = json_object();
        json_object_set_new(e, "fieldsV1", fs);
    }
    return fs;
}

/* Drops entries that own nothing; stamps the time of the one just written. */
static void entries_tidy(json_t *mf, json_t *touched)
{
    char ts[32];
    now_rfc3339(ts, sizeof(ts));
    if (touched) json_object_set_new(touched, "time", json_string(ts));
    for (size_t i = json_array_size(mf); i > 0; i--) {
        json_t *e = json_array_get(mf, i - 1);
        if (!json_is_object(e) || !json_object_size(entry_fields(e))) json_array_remove(mf, i - 1);
    }
}

/* A copy of old's managedFields (only well-formed entries). */
static json_t *entries_copy(const json_t *old)
{
    json_t *mf = json_array(),
           *src = json_object_get(json_object_get(old, "metadata"), "managedFields");
    size_t i;
    json_t *e;
    json_array_foreach(src, i, e) if (json_is_object(e) &&
                                      json_is_string(json_object_get(e, "manager")) &&
                                      json_is_string(json_object_get(e, "operation")))
        json_array_append_new(mf, json_deep_copy(e));
    return mf;
}

/* ---- update ---- */

typedef struct walk {
    const json_t *a, *b; /* objects compared */
    json_t *mf;          /* entries */
    json_t *mine;        /* the writing manager's set */
    const json_t *skip;  /* an entry left alone */
    json_t *conflicts;
    int force;
} walk_t;

/* A leaf of the new object: changed ones become the writer's, others lose them. */
static void claim_changed(json_t *const *path, int n, void *arg)
{
    walk_t *w = arg;
    json_t *before = w->a ? value_at(w->a, path, n) : NULL;
    if (before && json_equal(before, value_at(w->b, path, n))) return;
    size_t i;
    json_t *e;
    json_array_foreach(w->mf, i, e) fs_del(entry_fields(e), path, n);
    fs_add(w->mine, path, n);
}

/* A leaf some manager owns: gone from the object -> gone from the set. */
static void drop_missing(json_t *const *path, int n, void *arg)
{
    walk_t *w = arg;
    if (!value_at(w->b, path, n)) fs_del((json_t *)w->skip, path, n);
}

static void prune(json_t *mf, const json_t *obj)
{
    size_t i;
    json_t *e;
    json_array_foreach(mf, i, e)
    {
        json_t *fs = json_deep_copy(entry_fields(e)), *path[64];
        walk_t w = {.b = obj, .skip = entry_fields(e)};
        leaves(fs, path, 0, drop_missing, &w);
        json_decref(fs);
    }
}

void kp_k8s_fields_update(json_t *nu, const json_t *old, const char *manager,
                          const char *api_version)
{
    json_t *md = json_object_get(nu, "metadata");
    if (!json_is_object(md)) return;
    json_t *mf = entries_copy(old);
    json_t *e = entry_of(mf, manager, "Update", api_version);
    json_t *fs = fieldset_of(nu, 0, ""), *path[64];
    walk_t w = {.a = old, .b = nu, .mf = mf, .mine = entry_fields(e)};
    leaves(fs, path, 0, claim_changed, &w);
    json_decref(fs);
    prune(mf, nu);
    entries_tidy(mf, e);
    json_object_set_new(md, "managedFields", mf);
}

/* ---- apply ---- */

static void path_text(json_t *const *path, int n, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, ".%s", json_string_value(path[i]));
}

static void find_conflicts(json_t *const *path, int n, void *arg)
{
    walk_t *w = arg;
    json_t *want = value_at(w->b, path, n), *have = w->a ? value_at(w->a, path, n) : NULL;
    if (!have || json_equal(have, want)) return;
    size_t i;
    json_t *e;
    json_array_foreach(w->mf, i, e)
    {
        if (e == w->skip || !fs_has(entry_fields(e), path, n)) continue;
        if (w->force) {
            fs_del(entry_fields(e), path, n);
            continue;
        }
        char field[1024];
        path_text(path, n, field, sizeof(field));
        /* the path may be cut mid-character: kp_json_text keeps it valid */
        json_array_append_new(w->conflicts, json_pack("{s:o, s:O}", "field", kp_json_text(field),
                                                      "manager", json_object_get(e, "manager")));
    }
}

/* A field the manager applied before and not any more: removed unless another owns it. */
static void drop_unapplied(json_t *const *path, int n, void *arg)
{
    walk_t *w = arg;
    if (fs_has(w->mine, path, n)) return;
    size_t i;
    json_t *e;
    json_array_foreach(w->mf, i, e) if (e != w->skip && fs_has(entry_fields(e), path, n)) return;
    json_t *parent = n > 1 ? value_at(w->b, path, n - 1) : (json_t *)w->b;
    json_object_del(parent, json_string_value(path[n - 1]));
}

static json_t *merge_config(json_t *target, const json_t *config)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v)
    {
        json_t *cur = json_object_get(target, k);
        if (json_is_object(v) && json_is_object(cur))
            merge_config(cur, v);
        else
            json_object_set_new(target, k, json_deep_copy(v));
    }
    return target;
}

json_t *kp_k8s_apply(const json_t *live, const json_t *config, const char *manager, int force,
                     const char *api_version, json_t **conflicts)
{
    *conflicts = NULL;
    json_t *mf = entries_copy(live);
    json_t *e = entry_of(mf, manager, "Apply", api_version);
    json_t *cfs = fieldset_of(config, 0, ""), *path[64];
    walk_t w = {
        .a = live, .b = config, .mf = mf, .skip = e, .conflicts = json_array(), .force = force};
    leaves(cfs, path, 0, find_conflicts, &w);
    if (json_array_size(w.conflicts)) {
        *conflicts = w.conflicts;
        json_decref(cfs);
        json_decref(mf);
        return NULL;
    }
    json_decref(w.conflicts);
    json_t *obj = live ? json_deep_copy(live) : json_object();
    json_t *prev = json_deep_copy(entry_fields(e));
    walk_t d = {.b = obj, .mf = mf, .mine = cfs, .skip = e};
    leaves(prev, path, 0, drop_unapplied, &d);
    json_decref(prev);
    merge_config(obj, config);
    json_object_set_new(e, "fieldsV1", cfs);
    prune(mf, obj);
    entries_tidy(mf, e);
    json_t *md = json_object_get(obj, "metadata");
    if (json_is_object(md))
        json_object_set_new(md, "managedFields", mf);
    else
        json_decref(mf);
    return obj;
}
