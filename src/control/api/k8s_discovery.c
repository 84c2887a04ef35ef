/*
 * k8s_discovery.c — what kubectl reads before it touches a resource: the server version,
 * the API groups and their resources (discovery), and the OpenAPI v2 and v3 documents that
 * `kubectl explain` and kubectl's field-validation check read (see k8s.h). Everything is
 * derived from the kinds table, so a new kind shows up here without an edit.
 *
 * Aggregated discovery (Accept: ...;as=APIGroupDiscoveryList) is not served: the answer is
 * the legacy document with Content-Type application/json, which is kubectl's documented
 * fallback. OpenAPI v2 (/openapi/v2) is the same schemas in Swagger 2.0 (api.c sends it as
 * protobuf, k8s_openapi_v2.c, when asked: kubectl before 1.27 and `kubectl explain --output
 * plaintext-openapiv2` read it).
 */
#include "control/api/k8s.h"

#include "core/utf8.h"

#include <stdio.h>
#include <string.h>

/* The OpenAPI documents change only with the binary: the hash lets kubectl cache them. */
#define OPENAPI_HASH "kpool-1"

/* Virtual resources that are not stored kinds but kubectl uses. */
static json_t *resource_entry(const char *name, const char *singular, int namespaced,
                              const char *kind, const char *verbs_csv, const char *short_name)
{
    json_t *verbs = json_array();
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", verbs_csv);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(verbs, json_string(t));
    json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "singularName", singular,
                          "namespaced", namespaced, "kind", kind, "verbs", verbs);
    if (short_name) json_object_set_new(r, "shortNames", json_pack("[s]", short_name));
    return r;
}

static json_t *kind_resources(const char *group, const char *version)
{
    json_t *res = json_array();
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        if (strcmp(k->group, group) != 0 || strcmp(k->version, version) != 0) continue;
        json_t *r = resource_entry(k->plural, k->singular, k->namespaced, k->kind,
                                   "create,delete,deletecollection,get,list,patch,update,watch",
                                   k->short_name);
        /* `kubectl get all`-style groups: kpool's kinds answer to `kubectl get kpool` */
        if (strcmp(k->kind, "Secret") != 0)
            json_object_set_new(r, "categories", json_pack("[s]", "kpool"));
        json_array_append_new(res, r);
        char sub[96];
        snprintf(sub, sizeof(sub), "%s/status", k->plural);
        json_t *s = resource_entry(sub, "", k->namespaced, k->kind, "get,patch,update", NULL);
        json_array_append_new(res, s);
    }
    if (!group[0] && !strcmp(version, "v1"))
        json_array_append_new(
            res, resource_entry("namespaces", "namespace", 0, "Namespace", "get,list", "ns"));
    if (!group[0] && !strcmp(version, "v1")) /* read-only: the control plane writes them */
        json_array_append_new(
            res, resource_entry("events", "event", 1, "Event", "get,list,watch", "ev"));
    if (!strcmp(group, "authorization.k8s.io") && !strcmp(version, "v1"))
        json_array_append_new(res, resource_entry("selfsubjectaccessreviews", "", 0,
                                                  "SelfSubjectAccessReview", "create", NULL));
    return res;
}

/* Groups in the order of the kinds table, then authorization.k8s.io. n: how many. */
static int groups_list(const char **out, int max)
{
    int n = 0;
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const char *g = kp_kinds[i].group;
        if (!g[0]) continue;
        int seen = 0;
        for (int j = 0; j < n; j++) seen |= !strcmp(out[j], g);
        if (!seen && n < max) out[n++] = g;
    }
    if (n < max) out[n++] = "authorization.k8s.io";
    return n;
}

static const char *group_version(const char *group)
{
    if (!strcmp(group, "authorization.k8s.io")) return "v1";
    for (size_t i = 0; i < kp_kinds_count; i++)
        if (!strcmp(kp_kinds[i].group, group)) return kp_kinds[i].version;
    return NULL;
}

static json_t *api_group(const char *group)
{
    char gv[128];
    snprintf(gv, sizeof(gv), "%s/%s", group, group_version(group));
    json_t *v = json_pack("{s:s, s:s}", "groupVersion", gv, "version", group_version(group));
    return json_pack("{s:s, s:s, s:s, s:[O], s:o}", "kind", "APIGroup", "apiVersion", "v1", "name",
                     group, "versions", v, "preferredVersion", v);
}

static json_t *resource_list(const char *group, const char *version)
{
    char gv[128];
    if (group[0])
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", kind_resources(group, version));
}

json_t *kp_k8s_namespace(const char *name, const char *created)
{
    json_t *md = json_object();
    json_object_set_new(md, "name", kp_json_text(name));
    if (created && *created) json_object_set_new(md, "creationTimestamp", json_string(created));
    return json_pack("{s:s, s:s, s:o, s:{s:[s]}, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                     "metadata", md, "spec", "finalizers", "kubernetes", "status", "phase",
                     "Active");
}

/* ---- OpenAPI v3 ---- */

/* The schema of a value described by the kinds table's schema language (kinds.h). */
static json_t *openapi_schema(const json_t *s)
{
    if (json_is_string(s)) {
        const char *t = json_string_value(s);
        if (!strcmp(t, "*")) return json_pack("{s:b}", "x-kubernetes-preserve-unknown-fields", 1);
        return json_pack("{s:s}", "type", t);
    }
    if (json_is_array(s)) {
        json_t *items = json_array_size(s)
                            ? openapi_schema(json_array_get(s, 0))
                            : json_pack("{s:b}", "x-kubernetes-preserve-unknown-fields", 1);
        return json_pack("{s:s, s:o}", "type", "array", "items", items);
    }
    if (json_is_object(s) && json_object_size(s) == 0) /* a map: string values */
        return json_pack("{s:s, s:{s:s}}", "type", "object", "additionalProperties", "type",
                         "string");
    json_t *props = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) json_object_set_new(props, key, openapi_schema(v));
    return json_pack("{s:s, s:o}", "type", "object", "properties", props);
}

/* "kafka.nais.io" -> "io.nais.kafka" (OpenAPI definition names, as Kubernetes writes them). */
static void reverse_domain(const char *group, char *out, size_t n)
{
    out[0] = 0;
    const char *end = group + strlen(group);
    while (end > group) {
        const char *dot = end;
        while (dot > group && dot[-1] != '.') dot--;
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%.*s", len ? "." : "", (int)(end - dot), dot);
        end = dot > group ? dot - 1 : group;
    }
}

static void definition_name(const kp_kind_t *k, char *out, size_t n)
{
    char rev[128];
    reverse_domain(k->group[0] ? k->group : "io.k8s.api.core", rev, sizeof(rev));
    if (!k->group[0]) snprintf(rev, sizeof(rev), "io.k8s.api.core");
    snprintf(out, n, "%s.%s.%s", rev, k->version, k->kind);
}

static json_t *gvk(const kp_kind_t *k)
{
    return json_pack("{s:s, s:s, s:s}", "group", k->group, "version", k->version, "kind", k->kind);
}

/* One operation of the paths section: what kubectl's field-validation check looks for is
 * the PATCH operation of the kind with a fieldValidation query parameter. */
static json_t *operation(const kp_kind_t *k, const char *action, const char *ref, int patch)
{
    json_t *params = json_array();
    static const char *query[] = {"fieldValidation", "fieldManager", "dryRun", "force"};
    for (size_t i = 0; i < (patch ? 4u : 0u); i++)
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", query[i], "in",
                                                "query", "schema", "type", "string"));
    json_t *op = json_pack("{s:s, s:o, s:o, s:s, s:{s:{s:s, s:{s:{s:{s:s}}}}}}", "operationId",
                           action, "parameters", params, "x-kubernetes-group-version-kind", gvk(k),
                           "x-kubernetes-action", action, "responses", "200", "description", "OK",
                           "content", "application/json", "schema", "$ref", ref);
    if (patch) {
        json_t *content = json_object();
        static const char *types[] = {"application/json-patch+json", "application/merge-patch+json",
                                      "application/apply-patch+yaml",
                                      "application/strategic-merge-patch+json"};
        /* kubectl builds strategic merge patches from the schema when this type is listed:
         * only Secret, a built-in kind, takes them (as in Kubernetes, CRDs do not) */
        size_t n = k->group[0] ? 3 : 4;
        for (size_t i = 0; i < n; i++)
            json_object_set_new(content, types[i],
                                json_pack("{s:{s:s}}", "schema", "type", "object"));
        json_object_set_new(op, "requestBody", json_pack("{s:o}", "content", content));
    }
    return op;
}

static json_t *openapi_gv(const char *group, const char *version)
{
    json_t *schemas = json_object(), *paths = json_object();
    int found = 0;
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        if (strcmp(k->group, group) != 0 || strcmp(k->version, version) != 0) continue;
        found = 1;
        json_t *src = json_loads(k->schema, 0, NULL);
        json_t *sch = src ? openapi_schema(src) : json_pack("{s:s}", "type", "object");
        json_decref(src);
        json_object_set_new(sch, "description", json_string(k->description));
        json_object_set_new(sch, "x-kubernetes-group-version-kind", json_pack("[o]", gvk(k)));
        json_t *props = json_object_get(sch, "properties");
        if (json_is_object(props) && !strcmp(k->kind, "Application"))
            json_object_set_new(json_object_get(props, "spec"),
                                "x-kubernetes-preserve-unknown-fields", json_true());
        char def[256], ref[300], base[256], item[512];
        definition_name(k, def, sizeof(def));
        snprintf(ref, sizeof(ref), "#/components/schemas/%s", def);
        json_object_set_new(schemas, def, sch);
        if (group[0])
            snprintf(base, sizeof(base), "/apis/%s/%s", group, version);
        else
            snprintf(base, sizeof(base), "/api/%s", version);
        snprintf(item, sizeof(item), "%s/%s%s/{name}", base,
                 k->namespaced ? "namespaces/{namespace}/" : "", k->plural);
        json_object_set_new(paths, item,
                            json_pack("{s:o, s:o, s:o, s:o}", "get", operation(k, "get", ref, 0),
                                      "put", operation(k, "put", ref, 0), "patch",
                                      operation(k, "patch", ref, 1), "delete",
                                      operation(k, "delete", ref, 0)));
        snprintf(item, sizeof(item), "%s/%s%s", base,
                 k->namespaced ? "namespaces/{namespace}/" : "", k->plural);
        json_object_set_new(paths, item,
                            json_pack("{s:o, s:o}", "get", operation(k, "list", ref, 0), "post",
                                      operation(k, "post", ref, 0)));
    }
    if (!found) {
        json_decref(schemas);
        json_decref(paths);
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "kpool", "version", "v" KP_K8S_MAJOR "." KP_K8S_MINOR, "paths", paths,
                     "components", "schemas", schemas);
}

static json_t *openapi_root(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        char key[128], url[200];
        if (k->group[0])
            snprintf(key, sizeof(key), "apis/%s/%s", k->group, k->version);
        else
            snprintf(key, sizeof(key), "api/%s", k->version);
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=" OPENAPI_HASH, key);
        json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
    }
    return json_pack("{s:o}", "paths", paths);
}

/* ---- OpenAPI v2 ---- */

/* A v2 operation: the same facts as v3's (operation()), in Swagger 2.0's shape. */
static json_t *operation_v2(const kp_kind_t *k, const char *action, const char *ref, int patch,
                            int body)
{
    json_t *params = json_array();
    static const char *query[] = {"fieldValidation", "fieldManager", "dryRun", "force"};
    for (size_t i = 0; i < (patch ? 4u : body ? 3u : 0u); i++)
        json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:b}", "name", query[i], "in",
                                                "query", "type", "string", "uniqueItems", 1));
    if (body)
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", "body", "in",
                                                "body", "required", 1, "schema", "$ref", ref));
    json_t *consumes = json_array();
    static const char *types[] = {"application/json-patch+json", "application/merge-patch+json",
                                  "application/apply-patch+yaml",
                                  "application/strategic-merge-patch+json"};
    for (size_t i = 0; patch && i < (k->group[0] ? 3u : 4u); i++)
        json_array_append_new(consumes, json_string(types[i]));
    if (!patch) json_array_append_new(consumes, json_string("application/json"));
    return json_pack("{s:s, s:o, s:[s, s], s:o, s:{s:{s:s, s:{s:s}}}, s:o, s:s}", "operationId",
                     action, "consumes", consumes, "produces", "application/json",
                     "application/yaml", "parameters", params, "responses", "200", "description",
                     "OK", "schema", "$ref", ref, "x-kubernetes-group-version-kind", gvk(k),
                     "x-kubernetes-action", action);
}

/* Swagger 2.0 of every kind (what kubectl before 1.27 reads, and `kubectl explain
 * --output plaintext-openapiv2`); api.c sends it as protobuf when asked. */
static json_t *openapi_v2(void)
{
    json_t *defs = json_object(), *paths = json_object();
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        json_t *src = json_loads(k->schema, 0, NULL);
        json_t *sch = src ? openapi_schema(src) : json_pack("{s:s}", "type", "object");
        json_decref(src);
        json_object_set_new(sch, "description", json_string(k->description));
        json_object_set_new(sch, "x-kubernetes-group-version-kind", json_pack("[o]", gvk(k)));
        char def[256], ref[300], base[256], item[512];
        definition_name(k, def, sizeof(def));
        snprintf(ref, sizeof(ref), "#/definitions/%s", def);
        json_object_set_new(defs, def, sch);
        if (k->group[0])
            snprintf(base, sizeof(base), "/apis/%s/%s", k->group, k->version);
        else
            snprintf(base, sizeof(base), "/api/%s", k->version);
        const char *nsp = k->namespaced ? "namespaces/{namespace}/" : "";
        snprintf(item, sizeof(item), "%s/%s%s/{name}", base, nsp, k->plural);
        json_object_set_new(paths, item,
                            json_pack("{s:o, s:o, s:o, s:o}", "get",
                                      operation_v2(k, "get", ref, 0, 0), "put",
                                      operation_v2(k, "put", ref, 0, 1), "patch",
                                      operation_v2(k, "patch", ref, 1, 1), "delete",
                                      operation_v2(k, "delete", ref, 0, 0)));
        snprintf(item, sizeof(item), "%s/%s%s", base, nsp, k->plural);
        json_object_set_new(paths, item,
                            json_pack("{s:o, s:o, s:o}", "get", operation_v2(k, "list", ref, 0, 0),
                                      "post", operation_v2(k, "post", ref, 0, 1), "delete",
                                      operation_v2(k, "deletecollection", ref, 0, 0)));
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:o}", "swagger", "2.0", "info", "title", "kpool",
                     "version", "v" KP_K8S_MAJOR "." KP_K8S_MINOR, "paths", paths, "definitions",
                     defs);
}

/* ---- dispatch ---- */

int kp_k8s_discovery(const char *path, json_t **body, unsigned *code)
{
    char buf[512];
    char *seg[8];
    int n = 0;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 8;
         t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    *code = 200;
    *body = NULL;
    if (n == 1 && !strcmp(seg[0], "version")) {
        *body =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", KP_K8S_MAJOR, "minor",
                      KP_K8S_MINOR, "gitVersion", "v" KP_K8S_MAJOR "." KP_K8S_MINOR ".0+kpool",
                      "gitCommit", "", "gitTreeState", "clean", "goVersion", "", "compiler",
                      "kpool", "platform", "linux/amd64");
    } else if (n == 1 && !strcmp(seg[0], "api")) {
        *body =
            json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
                      "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress", "");
    } else if (n == 2 && !strcmp(seg[0], "api") && !strcmp(seg[1], "v1")) {
        *body = resource_list("", "v1");
    } else if (n == 1 && !strcmp(seg[0], "apis")) {
        const char *groups[16];
        int ng = groups_list(groups, 16);
        json_t *arr = json_array();
        for (int i = 0; i < ng; i++) {
            json_t *g = api_group(groups[i]);
            json_object_del(g, "kind");
            json_object_del(g, "apiVersion");
            json_array_append_new(arr, g);
        }
        *body =
            json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups", arr);
    } else if ((n == 2 || n == 3) && !strcmp(seg[0], "apis")) {
        const char *v = group_version(seg[1]);
        if (v && n == 2)
            *body = api_group(seg[1]);
        else if (v && !strcmp(v, seg[2]))
            *body = resource_list(seg[1], seg[2]);
        else
            return 0; /* 404 from the caller */
    } else if (n == 2 && !strcmp(seg[0], "openapi") && !strcmp(seg[1], "v2")) {
        *body = openapi_v2();
    } else if (n >= 2 && !strcmp(seg[0], "openapi") && !strcmp(seg[1], "v3")) {
        if (n == 2)
            *body = openapi_root();
        else if (n == 4 && !strcmp(seg[2], "api"))
            *body = openapi_gv("", seg[3]);
        else if (n == 5 && !strcmp(seg[2], "apis"))
            *body = openapi_gv(seg[3], seg[4]);
        if (!*body) return 0;
    } else {
        return 0;
    }
    return 1;
}
