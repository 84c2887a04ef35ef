/*
 * k8s_patch.c — the patch formats kubectl sends (see k8s.h): JSON merge patch (RFC 7386),
 * JSON patch (RFC 6902) and strategic merge patch. All work on copies: the target is never
 * changed, so a failed patch leaves nothing half-done.
 */
#include "control/api/k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RFC 7386 ---- */

static json_t *merge(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(target, k);
            continue;
        }
        json_t *cur = json_object_get(target, k);
        json_object_set_new(target, k, merge(cur ? json_incref(cur) : NULL, v));
    }
    return target;
}

json_t *kp_k8s_merge_patch(const json_t *target, const json_t *patch)
{
    return merge(json_deep_copy(target), patch);
}

/* ---- RFC 6902 ---- */

/* Decodes one reference token of a JSON pointer (~1 -> '/', ~0 -> '~'). -1 when malformed. */
static int token_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '~') {
            if (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')) return -1;
            c = s[++i] == '0' ? '~' : '/';
        }
        if (j + 1 >= outlen) return -1;
        out[j++] = c;
    }
    out[j] = 0;
    return 0;
}

/* Resolves pointer up to its parent: *parent (borrowed) and the last token in last. */
static int pointer_parent(json_t *doc, const char *ptr, json_t **parent, char *last, size_t lastlen)
{
    if (!ptr || ptr[0] != '/') return -1;
    json_t *cur = doc;
    const char *p = ptr + 1;
    for (;;) {
        size_t n = strcspn(p, "/");
        char tok[512];
        if (token_decode(p, n, tok, sizeof(tok)) < 0) return -1;
        if (!p[n]) {
            *parent = cur;
            snprintf(last, lastlen, "%s", tok);
            return 0;
        }
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(tok, &end, 10);
            if (*end || !*tok || idx < 0) return -1;
            cur = json_array_get(cur, (size_t)idx);
        } else {
            return -1;
        }
        if (!cur) return -1;
        p += n + 1;
    }
}

static int array_index(const json_t *arr, const char *tok, int allow_end, size_t *idx)
{
    if (allow_end && !strcmp(tok, "-")) {
        *idx = json_array_size(arr);
        return 0;
    }
    if (!*tok || (tok[0] == '0' && tok[1])) return -1;
    char *end;
    long v = strtol(tok, &end, 10);
    if (*end || v < 0) return -1;
    size_t max = json_array_size(arr) + (allow_end ? 1 : 0);
    if ((size_t)v >= max) return -1;
    *idx = (size_t)v;
    return 0;
}

static json_t *pointer_get(json_t *doc, const char *ptr)
{
    if (!ptr) return NULL;
    if (!*ptr) return doc;
    json_t *parent;
    char last[512];
    if (pointer_parent(doc, ptr, &parent, last, sizeof(last)) < 0) return NULL;
    if (json_is_object(parent)) return json_object_get(parent, last);
    size_t i;
    if (json_is_array(parent) && array_index(parent, last, 0, &i) == 0)
        return json_array_get(parent, i);
    return NULL;
}

static int op_remove(json_t *doc, const char *path, json_t **removed)
{
    json_t *parent;
    char last[512];
    if (pointer_parent(doc, path, &parent, last, sizeof(last)) < 0) return -1;
    if (json_is_object(parent)) {
        json_t *v = json_object_get(parent, last);
        if (!v) return -1;
        if (removed) *removed = json_incref(v);
        return json_object_del(parent, last);
    }
    size_t i;
    if (!json_is_array(parent) || array_index(parent, last, 0, &i) < 0) return -1;
    if (removed) *removed = json_incref(json_array_get(parent, i));
    return json_array_remove(parent, i);
}

/* value is stolen */
static int op_add(json_t *doc, const char *path, json_t *value)
{
    json_t *parent;
    char last[512];
    if (pointer_parent(doc, path, &parent, last, sizeof(last)) < 0) {
        json_decref(value);
        return -1;
    }
    if (json_is_object(parent)) return json_object_set_new(parent, last, value);
    size_t i;
    if (!json_is_array(parent) || array_index(parent, last, 1, &i) < 0) {
        json_decref(value);
        return -1;
    }
    return json_array_insert_new(parent, i, value);
}

json_t *kp_k8s_json_patch(const json_t *target, const json_t *ops, char *err, size_t errlen)
{
    if (!json_is_array(ops)) {
        snprintf(err, errlen, "a JSON patch must be an array of operations");
        return NULL;
    }
    json_t *doc = json_deep_copy(target);
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *name = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        const char *from = json_string_value(json_object_get(op, "from"));
        json_t *value = json_object_get(op, "value");
        int rc = -1;
        if (!name || !path) {
            snprintf(err, errlen, "operation %zu: \"op\" and \"path\" are required", i);
            goto fail;
        }
        if (!*path) { /* the whole document: kpool objects are always objects */
            snprintf(err, errlen, "operation %zu (%s): cannot operate on the whole document", i,
                     name);
            goto fail;
        }
        if (!strcmp(name, "add") || !strcmp(name, "replace")) {
            if (!value) {
                snprintf(err, errlen, "operation %zu (%s %s): \"value\" is required", i, name,
                         path);
                goto fail;
            }
            rc = !strcmp(name, "replace") ? op_remove(doc, path, NULL) : 0;
            if (rc == 0) rc = op_add(doc, path, json_deep_copy(value));
        } else if (!strcmp(name, "remove")) {
            rc = op_remove(doc, path, NULL);
        } else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
            json_t *v = NULL;
            if (!from) {
                snprintf(err, errlen, "operation %zu (%s %s): \"from\" is required", i, name, path);
                goto fail;
            }
            if (!strcmp(name, "move")) {
                rc = op_remove(doc, from, &v);
            } else {
                json_t *src = pointer_get(doc, from);
                rc = src ? 0 : -1;
                v = src ? json_deep_copy(src) : NULL;
            }
            if (rc == 0) rc = op_add(doc, path, v);
        } else if (!strcmp(name, "test")) {
            json_t *have = pointer_get(doc, path);
            if (!have || !value || !json_equal(have, value)) {
                snprintf(err, errlen, "operation %zu (test %s): the value differs", i, path);
                goto fail;
            }
            rc = 0;
        } else {
            snprintf(err, errlen, "operation %zu: unknown op \"%s\"", i, name);
            goto fail;
        }
        if (rc < 0) {
            snprintf(err, errlen, "operation %zu (%s %s): no such path", i, name, path);
            goto fail;
        }
    }
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

/* ---- strategic merge patch ---- */

/* Patches target (owned, may be NULL) with patch; returns the result or NULL on error. */
static json_t *strategic(json_t *target, const json_t *patch, char *err, size_t errlen)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    const char *directive = json_string_value(json_object_get(patch, "$patch"));
    if (directive && !strcmp(directive, "delete")) {
        json_decref(target);
        return NULL; /* the caller removes the key */
    }
    if (directive && strcmp(directive, "replace") != 0 && strcmp(directive, "merge") != 0) {
        snprintf(err, errlen, "unknown $patch directive \"%s\"", directive);
        json_decref(target);
        return json_null(); /* marks the error */
    }
    if (!json_is_object(target) || (directive && !strcmp(directive, "replace"))) {
        json_decref(target);
        target = json_object();
    }
    json_t *retain = json_object_get(patch, "$retainKeys");
    if (json_is_array(retain)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(target, tmp, k, v)
        {
            int keep = 0;
            size_t i;
            json_t *r;
            json_array_foreach(retain, i, r) keep |=
                json_is_string(r) && !strcmp(json_string_value(r), k);
            if (!keep) json_object_del(target, k);
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (k[0] == '$') {
            static const char del[] = "$deleteFromPrimitiveList/";
            if (!strncmp(k, del, sizeof(del) - 1)) {
                json_t *list = json_object_get(target, k + sizeof(del) - 1);
                for (size_t i = json_array_size(list); i > 0; i--) {
                    size_t j;
                    json_t *d;
                    json_array_foreach(v, j, d) if (json_equal(json_array_get(list, i - 1), d))
                    {
                        json_array_remove(list, i - 1);
                        break;
                    }
                }
            }
            continue; /* $setElementOrder/, $retainKeys, $patch: order is not kept */
        }
        if (json_is_null(v)) {
            json_object_del(target, k);
            continue;
        }
        json_t *cur = json_object_get(target, k);
        json_t *res = strategic(cur ? json_incref(cur) : NULL, v, err, errlen);
        if (res && json_is_null(res) && !json_is_null(v)) {
            json_decref(target);
            return res;
        }
        if (!res)
            json_object_del(target, k);
        else
            json_object_set_new(target, k, res);
    }
    return target;
}

json_t *kp_k8s_strategic_patch(const json_t *target, const json_t *patch, char *err, size_t errlen)
{
    err[0] = 0;
    json_t *out = strategic(json_deep_copy(target), patch, err, errlen);
    if (!out || json_is_null(out) || err[0]) {
        if (!err[0]) snprintf(err, errlen, "the patch deletes the whole object");
        json_decref(out);
        return NULL;
    }
    return out;
}
