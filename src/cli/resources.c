/*
 * resources.c — kinds table, REST paths, times and ages, manifests (see resources.h).
 *
 * The kinds table mirrors docs/api.md; a kind added to the API is one row here (plus its
 * columns in resource_print.c).
 */
#include "cli/resources.h"

#include "core/yamljson.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- kinds ---- */

/* name matches k's plural, singular, Kind, short name or short name + "s" (n chars). */
static int kind_matches(const kp_kind_t *k, const char *name, size_t n)
{
    const char *cands[] = {k->plural, k->singular, k->kind, k->short_name};
    for (size_t i = 0; i < sizeof(cands) / sizeof(*cands); i++)
        if (cands[i] && strlen(cands[i]) == n && !strncasecmp(cands[i], name, n)) return 1;
    if (k->short_name) {
        size_t sn = strlen(k->short_name);
        if (n == sn + 1 && !strncasecmp(k->short_name, name, sn) && tolower(name[sn]) == 's')
            return 1;
    }
    return 0;
}

const kp_kind_t *kp_kind_find(const char *name)
{
    if (!name || !*name) return NULL;
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    for (size_t i = 0; i < kp_kinds_count; i++) {
        if (!kind_matches(&kp_kinds[i], name, n)) continue;
        if (dot && strcasecmp(dot + 1, kp_kinds[i].group)) continue;
        return &kp_kinds[i];
    }
    return NULL;
}

const kp_kind_t *kp_kind_for(const char *api_version, const char *kind, char *err, size_t errlen)
{
    for (size_t i = 0; i < kp_kinds_count; i++) {
        if (strcmp(kp_kinds[i].kind, kind)) continue;
        char want[128];
        kp_kind_api_version(&kp_kinds[i], want, sizeof(want));
        if (!strcmp(want, api_version)) return &kp_kinds[i];
        snprintf(err, errlen, "no kind \"%s\" in version \"%s\" (kpool serves %s %s)", kind,
                 api_version, want, kind);
        return NULL;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    for (size_t i = 0; i < kp_kinds_count; i++)
        kp_buf_appendf(&b, "%s%s", i ? ", " : "", kp_kinds[i].kind);
    snprintf(err, errlen, "unknown kind \"%s\" (apiVersion \"%s\"); kpool serves %.*s", kind,
             api_version, (int)b.len, (const char *)b.data);
    kp_buf_free(&b);
    return NULL;
}

void kp_kind_names(kp_buf_t *out)
{
    for (size_t i = 0; i < kp_kinds_count; i++) {
        kp_buf_appendf(out, "%s%s", i ? ", " : "", kp_kinds[i].singular);
        if (kp_kinds[i].short_name) kp_buf_appendf(out, " (%s)", kp_kinds[i].short_name);
    }
}

void kp_kind_ref(const kp_kind_t *k, const char *name, kp_buf_t *out)
{
    kp_buf_appendf(out, "%s%s%s", k->singular, k->group[0] ? "." : "", k->group);
    if (name) kp_buf_appendf(out, "/%s", name);
}

/* ---- paths ---- */

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static void append_escaped(kp_buf_t *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
            kp_buf_append(out, p, 1);
        else
            kp_buf_appendf(out, "%%%02X", *p);
    }
}

static int path_segment_ok(const char *what, const char *s, char *err, size_t errlen)
{
    if (!*s || !strcmp(s, ".") || !strcmp(s, "..")) {
        snprintf(err, errlen, "invalid %s \"%s\"", what, s);
        return 0;
    }
    return 1;
}

int kp_resource_path(const kp_kind_t *k, const char *ns, const char *name,
                     const char *label_selector, kp_buf_t *out, char *err, size_t errlen)
{
    if (!k->namespaced) ns = NULL;
    if (ns && !path_segment_ok("namespace", ns, err, errlen)) return -1;
    if (name && !path_segment_ok("name", name, err, errlen)) return -1;
    if (k->group[0])
        kp_buf_appendf(out, "/apis/%s/%s", k->group, k->version);
    else
        kp_buf_appendf(out, "/api/%s", k->version);
    if (ns) {
        kp_buf_append(out, "/namespaces/", 12);
        append_escaped(out, ns);
    }
    kp_buf_appendf(out, "/%s", k->plural);
    if (name) {
        kp_buf_append(out, "/", 1);
        append_escaped(out, name);
    } else if (label_selector && *label_selector) {
        kp_buf_append(out, "?labelSelector=", 15);
        append_escaped(out, label_selector);
    }
    return 0;
}

/* ---- manifests ---- */

/* Checks the fields every document needs. where: "file: document 2" or "...: item 3". */
static int manifest_check(const json_t *doc, const char *where, char *err, size_t errlen)
{
    if (!json_is_object(doc)) {
        snprintf(err, errlen,
                 "%s: not a mapping (expected an object with apiVersion, kind, "
                 "metadata)",
                 where);
        return -1;
    }
    static const char *need[] = {"apiVersion", "kind"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = json_string_value(json_object_get(doc, need[i]));
        if (!v || !*v) {
            snprintf(err, errlen, "%s: missing %s", where, need[i]);
            return -1;
        }
    }
    json_t *meta = json_object_get(doc, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name) {
        snprintf(err, errlen, "%s: missing metadata.name", where);
        return -1;
    }
    json_t *ns = json_object_get(meta, "namespace");
    if (ns && !json_is_null(ns) && !json_is_string(ns)) {
        snprintf(err, errlen, "%s: metadata.namespace must be a string", where);
        return -1;
    }
    return 0;
}

/* A List (kind "List" or "<Kind>List" with an items array): its items are the documents. */
static int is_list(const json_t *doc)
{
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    size_t n = kind ? strlen(kind) : 0;
    return n >= 4 && !strcmp(kind + n - 4, "List") && json_is_array(json_object_get(doc, "items"));
}

int kp_manifest_load(const char *text, size_t len, const char *source, json_t *docs, char *err,
                     size_t errlen)
{
    char yerr[256] = "";
    json_t *all = kp_yaml_parse_all(text, len, yerr, sizeof(yerr));
    if (!all) {
        snprintf(err, errlen, "%s: %s", source, yerr);
        return -1;
    }
    size_t i, j;
    json_t *doc, *item;
    char where[512];
    json_array_foreach(all, i, doc)
    {
        if (json_is_object(doc) && is_list(doc)) {
            json_array_foreach(json_object_get(doc, "items"), j, item)
            {
                snprintf(where, sizeof(where), "%s: document %zu, item %zu", source, i + 1, j + 1);
                if (manifest_check(item, where, err, errlen) < 0) goto fail;
                json_array_append(docs, item);
            }
            continue;
        }
        snprintf(where, sizeof(where), "%s: document %zu", source, i + 1);
        if (manifest_check(doc, where, err, errlen) < 0) goto fail;
        json_array_append(docs, doc);
    }
    json_decref(all);
    if (json_array_size(docs) > KP_MANIFEST_DOCS_MAX) {
        snprintf(err, errlen, "%s: more than %d documents", source, KP_MANIFEST_DOCS_MAX);
        return -1;
    }
    return 0;
fail:
    json_decref(all);
    return -1;
}

const kp_kind_t *kp_manifest_prepare(json_t *doc, const char *flag_ns, const char *default_ns,
                                     char *err, size_t errlen)
{
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    json_t *meta = json_object_get(doc, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!api || !kind || !name) {
        snprintf(err, errlen, "document needs apiVersion, kind and metadata.name");
        return NULL;
    }
    const kp_kind_t *k = kp_kind_for(api, kind, err, errlen);
    if (!k) return NULL;
    json_object_del(meta, "resourceVersion");
    if (!k->namespaced) {
        json_object_del(meta, "namespace");
        return k;
    }
    const char *doc_ns = json_string_value(json_object_get(meta, "namespace"));
    if (doc_ns && *doc_ns) {
        if (flag_ns && strcmp(flag_ns, doc_ns)) {
            snprintf(err, errlen,
                     "the namespace from the provided object \"%s\" does not match the "
                     "namespace \"%s\" (%s %s): pass -n %s or remove metadata.namespace",
                     doc_ns, flag_ns, kind, name, doc_ns);
            return NULL;
        }
        return k;
    }
    json_object_set_new(meta, "namespace", json_string(flag_ns ? flag_ns : default_ns));
    return k;
}
