/*
 * api.c — routing, authentication and the resource handlers of the control plane API.
 *
 * Every request: read the body (bounded), authenticate the bearer token, route the path to
 * a kind, check the token may touch that namespace/kind, then get/list/put/delete through
 * the store. Errors are Kubernetes Status objects; unknown fields are kept and reported in
 * Warning headers.
 *
 * Two layers: handle() is the HTTP side (libmicrohttpd: body buffering and its limit, the
 * health check, the backup routes); kp_api_answer() decides everything else from plain
 * strings and returns a reply, which api_reply.c serializes. Any byte may come in through
 * the path, headers or body; replies never fail to build (api_reply.h), and
 * tests/fuzz/fuzz_api.c drives kp_api_answer directly.
 */
#include "control/api/api.h"

#include "control/kinds.h"
#include "control/secrets.h"
#include "core/buf.h"
#include "core/logging.h"
#include "core/utf8.h"
#include "control/backup_format.h"
#include "core/yamljson.h"
#include "control/api/api_backup.h"
#include "control/api/api_console.h"
#include "control/api/console.h"
#include "control/api/api_reply.h"
#include "control/api/api_teams.h"
#include "control/api/k8s.h"
#include "control/api/k8s_watch.h"
#include "net/http_server.h"
#include "net/listener.h"
#include "core/fs.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request bodies above this are refused (413): resources are small documents. */
#define API_BODY_MAX (4 * 1024 * 1024)

struct kp_api {
    struct MHD_Daemon *daemon;
    kp_store_t *store;
    const kp_pki_master_key_t *master_key;
    struct kp_backup *backup;
    int port;
    char *tls_cert, *tls_key;
    kp_k8s_watch_hub_t *watch_hub; /* watch streams (k8s_watch.c) */
};

static int is_secret(const kp_kind_t *k)
{
    return !strcmp(k->kind, "Secret");
}

/* A Secret as the store keeps it -> as clients see it (data in base64, never sealed). */
static int reveal(kp_api_t *api, json_t *obj)
{
    char err[256];
    if (kp_secret_open(api->master_key, obj, err, sizeof(err)) < 0) {
        json_t *md = json_object_get(obj, "metadata");
        kp_error("api", "secret %s/%s: %s",
                 json_string_value(json_object_get(md, "namespace")) ?: "?",
                 json_string_value(json_object_get(md, "name")) ?: "?", err);
        return -1;
    }
    return 0;
}

/* Kubernetes' Secret write rules: stringData entries become base64 data (and win), every
 * data value must be base64; then data is sealed. -1 with err (never naming values). */
static int conceal(kp_api_t *api, json_t *obj, char *err, size_t errlen)
{
    json_t *data = json_object_get(obj, "data"), *sdata = json_object_get(obj, "stringData");
    if ((data && !json_is_object(data)) || (sdata && !json_is_object(sdata))) {
        snprintf(err, errlen, "data and stringData must be maps");
        return -1;
    }
    if (!data) {
        data = json_object();
        json_object_set_new(obj, "data", data);
    }
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        const char *s = json_string_value(v);
        size_t n = s ? strlen(s) : 0;
        int ok = s && n % 4 == 0;
        for (size_t i = 0; ok && i < n; i++)
            ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                 (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/' ||
                 (s[i] == '=' && i >= n - 2);
        if (!ok) {
            snprintf(err, errlen,
                     "data.%s: must be a base64 string (use stringData for plain text)", k);
            return -1;
        }
    }
    json_object_foreach(sdata, k, v)
    {
        const char *s = json_string_value(v);
        if (!s) {
            snprintf(err, errlen, "stringData.%s: must be a string", k);
            return -1;
        }
        size_t n = strlen(s);
        char *b = kp_xmalloc(4 * ((n + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)s, (int)n);
        json_object_set_new(data, k, json_string(b));
        free(b);
    }
    json_object_del(obj, "stringData");
    return kp_secret_seal(api->master_key, obj, err, errlen);
}

typedef struct req_state {
    kp_buf_t body;
    size_t body_max; /* API_BODY_MAX, or a backup's bound for an admin's restore */
    int too_large;
} req_state_t;

typedef struct caller {
    int admin;
    char *ns; /* the team token's namespace */
} caller_t;

/* ---- replies ---- */

/* Sets the reply; body and warnings (may be NULL) are stolen. */
static void reply(kp_api_reply_t *out, unsigned code, json_t *body, json_t *warnings)
{
    out->code = code;
    out->body = body;
    out->warnings = warnings;
}

static void status_error(kp_api_reply_t *out, unsigned code, const char *reason, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static void status_error(kp_api_reply_t *out, unsigned code, const char *reason, const char *fmt,
                         ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap); /* may cut a character: kp_api_status copes */
    va_end(ap);
    reply(out, code, kp_api_status(code, reason, msg), NULL);
}

/* ---- authentication ---- */

static int authenticate(kp_api_t *api, const char *authorization, caller_t *who)
{
    if (!authorization || strncmp(authorization, "Bearer ", 7) != 0) return -1;
    return kp_store_token_lookup(api->store, authorization + 7, &who->admin, &who->ns);
}

static int may_touch(const caller_t *who, const kp_kind_t *k, const char *ns, int write)
{
    if (who->admin) return 1;
    if (!k->namespaced) return !write; /* teams may read pools */
    return ns && who->ns && !strcmp(ns, who->ns);
}

/* ---- path parsing ---- */

typedef struct route {
    const kp_kind_t *kind;
    char ns[128];
    char name[256];
    int has_ns, has_name, status;
    int teams, teams_rotate; /* /apis/kpool.dev/v1/teams[/NAME[/rotate]] (api_teams.c) */
    int healthz;
} route_t;

/* Splits url into at most 10 segments (copied into buf). */
static int split(const char *url, char *buf, size_t buflen, char **seg, int max)
{
    snprintf(buf, buflen, "%s", url);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < max;
         t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    return n;
}

static int parse_route(const char *url, route_t *r)
{
    memset(r, 0, sizeof(*r));
    char buf[1024];
    char *seg[12];
    int n = split(url, buf, sizeof(buf), seg, 12);
    if (n == 1 && !strcmp(seg[0], "healthz")) {
        r->healthz = 1;
        return 0;
    }
    const char *group, *version;
    int i;
    if (n >= 2 && !strcmp(seg[0], "api")) {
        group = "";
        version = seg[1];
        i = 2;
    } else if (n >= 3 && !strcmp(seg[0], "apis")) {
        group = seg[1];
        version = seg[2];
        i = 3;
    } else {
        return -1;
    }
    if (n - i >= 2 && !strcmp(seg[i], "namespaces")) {
        if (strlen(seg[i + 1]) >= sizeof(r->ns)) return -1;
        strcpy(r->ns, seg[i + 1]);
        r->has_ns = 1;
        i += 2;
    }
    if (i >= n) return -1;
    if (!strcmp(group, "kpool.dev") && !strcmp(version, "v1") && !strcmp(seg[i], "teams") &&
        !r->has_ns) {
        if (i + 1 < n) {
            if (strlen(seg[i + 1]) >= sizeof(r->name)) return -1;
            strcpy(r->name, seg[i + 1]);
            r->has_name = 1;
        }
        r->teams_rotate = i + 3 == n && !strcmp(seg[i + 2], "rotate");
        if (i + 2 < n && !r->teams_rotate) return -1;
        r->teams = 1;
        return 0;
    }
    r->kind = kp_kind_by_plural(group, version, seg[i]);
    if (!r->kind) return -1;
    i++;
    if (i < n) {
        if (strlen(seg[i]) >= sizeof(r->name)) return -1;
        strcpy(r->name, seg[i]);
        r->has_name = 1;
        i++;
    }
    if (i < n) {
        if (strcmp(seg[i], "status") != 0 || !r->has_name) return -1;
        r->status = 1;
        i++;
    }
    if (i != n) return -1;
    if (r->kind->namespaced && r->has_name && !r->has_ns) return -1;
    if (!r->kind->namespaced && r->has_ns) return -1;
    return 0;
}

/* ---- handlers ---- */

/* details of a Status about one object, as Kubernetes gives them (kubectl reads kind). */
static void status_details(kp_api_reply_t *out, const route_t *r)
{
    json_t *d = json_pack("{s:s, s:s}", "group", r->kind->group, "kind", r->kind->plural);
    if (r->has_name) json_object_set_new(d, "name", kp_json_text(r->name));
    json_object_set_new(out->body, "details", d);
}

static void forbidden(kp_api_reply_t *out, const route_t *r, const char *verb, const char *ns)
{
    char res[160];
    if (r->kind->group[0])
        snprintf(res, sizeof(res), "%s.%s", r->kind->plural, r->kind->group);
    else
        snprintf(res, sizeof(res), "%s", r->kind->plural);
    if (r->has_name)
        status_error(out, 403, "Forbidden",
                     "%s \"%s\" is forbidden: this token may not %s %s in namespace \"%s\"", res,
                     r->name, verb, res, ns ? ns : "");
    else
        status_error(out, 403, "Forbidden",
                     "%s is forbidden: this token may not %s %s in namespace \"%s\"", res, verb,
                     res, ns ? ns : "");
    status_details(out, r);
}

static void do_list(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                    const caller_t *who, kp_api_reply_t *out)
{
    const char *ns = r->has_ns ? r->ns : NULL;
    if (r->kind->namespaced && !ns && !who->admin) ns = who->ns; /* all namespaces it sees */
    if (!may_touch(who, r->kind, r->kind->namespaced ? ns : NULL, 0))
        return forbidden(out, r, "list", ns);
    long limit = 0;
    if (req->limit && *req->limit) {
        char *end;
        limit = strtol(req->limit, &end, 10);
        if (*end || limit < 0)
            return status_error(out, 400, "BadRequest", "limit: must be a non-negative integer");
    }
    json_t *items;
    int64_t rv;
    if (kp_store_list(api->store, r->kind->kind, r->kind->namespaced ? ns : "", &items, &rv) !=
        KP_STORE_OK) {
        json_decref(items);
        return status_error(out, 500, "InternalError", "cannot read the store");
    }
    json_t *kept = json_array();
    size_t i;
    json_t *o;
    char err[512];
    json_array_foreach(items, i, o)
    {
        int lm = kp_k8s_label_match(o, req->label_selector, err, sizeof(err));
        int fm = lm < 0 ? 0 : kp_k8s_field_match(o, req->field_selector, err, sizeof(err));
        if (lm < 0 || fm < 0) {
            json_decref(items);
            json_decref(kept);
            return status_error(out, 400, "BadRequest", "%s", err);
        }
        if (!lm || !fm) continue;
        if (is_secret(r->kind) && reveal(api, o) < 0) {
            json_decref(items);
            json_decref(kept);
            return status_error(out, 500, "InternalError", "cannot open a sealed secret");
        }
        json_array_append(kept, o);
    }
    json_decref(items);
    char *next = NULL;
    long remaining = 0;
    if (kp_k8s_page(kept, limit, req->continue_token, &next, &remaining) < 0) {
        json_decref(kept);
        return status_error(out, 400, "BadRequest",
                            "invalid continue token: list again without it");
    }
    char av[64], kind[80], rvs[32];
    kp_kind_api_version(r->kind, av, sizeof(av));
    snprintf(kind, sizeof(kind), "%sList", r->kind->kind);
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_t *body;
    if (kp_k8s_wants_table(req->accept)) {
        body = kp_k8s_table(r->kind, kept, rvs, req->include_object);
        json_decref(kept);
    } else {
        body = json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", av, "kind", kind, "metadata",
                         "resourceVersion", rvs, "items", kept);
    }
    if (next) {
        json_t *md = json_object_get(body, "metadata");
        json_object_set_new(md, "continue", json_string(next));
        json_object_set_new(md, "remainingItemCount", json_integer(remaining));
        free(next);
    }
    reply(out, 200, body, NULL);
}

static void not_found(const route_t *r, kp_api_reply_t *out)
{
    status_error(out, 404, "NotFound", "%s \"%s\" not found", r->kind->plural, r->name);
    status_details(out, r);
}

static void do_get(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                   const caller_t *who, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 0)) return forbidden(out, r, "get", r->ns);
    json_t *obj;
    if (kp_store_get(api->store, r->kind->kind, r->kind->namespaced ? r->ns : "", r->name, &obj) !=
        KP_STORE_OK)
        return not_found(r, out);
    if (is_secret(r->kind) && reveal(api, obj) < 0) {
        json_decref(obj);
        return status_error(out, 500, "InternalError", "cannot open the sealed secret");
    }
    if (r->status) {
        json_t *s = json_object_get(obj, "status");
        /* "o": an object without status gets a new empty one, not a second reference */
        json_t *view = json_pack(
            "{s:O, s:O, s:O, s:o}", "apiVersion", json_object_get(obj, "apiVersion"), "kind",
            json_object_get(obj, "kind"), "metadata", json_object_get(obj, "metadata"), "status",
            s ? json_incref(s) : json_object());
        json_decref(obj);
        obj = view;
    }
    if (kp_k8s_wants_table(req->accept)) {
        json_t *items = json_pack("[o]", obj);
        obj = kp_k8s_table(
            r->kind, items,
            json_string_value(json_object_get(json_object_get(json_array_get(items, 0), "metadata"),
                                              "resourceVersion")),
            req->include_object);
        json_decref(items);
    }
    reply(out, 200, obj, NULL);
}

static int is_protobuf(const kp_api_request_t *req)
{
    return req->content_type &&
           !strncmp(req->content_type, "application/vnd.kubernetes.protobuf", 35);
}

static json_t *parse_body(const kp_api_request_t *req, char *err, size_t errlen)
{
    if (req->len == 0) {
        snprintf(err, errlen, "request body is empty");
        return NULL;
    }
    /* JSON is YAML; the YAML parser takes both, reports line/column and bounds the nesting
     * (KP_YAML_DEPTH_MAX) below what the store's JSON reader takes back */
    return kp_yaml_parse_one((const char *)req->body, req->len, err, errlen);
}

/* Fills in and checks apiVersion, kind, metadata.name/namespace against the route. */
static int check_object(const route_t *r, json_t *obj, char *err, size_t errlen, int *code)
{
    char av[64];
    kp_kind_api_version(r->kind, av, sizeof(av));
    *code = 400;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "the body must be an object");
        return -1;
    }
    const char *have_av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *have_kind = json_string_value(json_object_get(obj, "kind"));
    if (have_av && strcmp(have_av, av) != 0) {
        snprintf(err, errlen, "apiVersion %s does not match the path (%s)", have_av, av);
        return -1;
    }
    if (have_kind && strcmp(have_kind, r->kind->kind) != 0) {
        snprintf(err, errlen, "kind %s does not match the path (%s)", have_kind, r->kind->kind);
        return -1;
    }
    json_object_set_new(obj, "apiVersion", json_string(av));
    json_object_set_new(obj, "kind", json_string(r->kind->kind));
    json_t *md = json_object_get(obj, "metadata");
    if (!md) {
        md = json_object();
        json_object_set_new(obj, "metadata", md);
    }
    if (!json_is_object(md)) {
        snprintf(err, errlen, "metadata must be an object");
        return -1;
    }
    const char *name = json_string_value(json_object_get(md, "name"));
    if (r->has_name) {
        if (name && strcmp(name, r->name) != 0) {
            snprintf(err, errlen, "metadata.name %s does not match the path (%s)", name, r->name);
            return -1;
        }
        json_object_set_new(md, "name", json_string(r->name));
        name = r->name;
    }
    if (r->kind->namespaced) {
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        if (ns && strcmp(ns, r->ns) != 0) {
            snprintf(err, errlen, "metadata.namespace %s does not match the path (%s)", ns, r->ns);
            return -1;
        }
        json_object_set_new(md, "namespace", json_string(r->ns));
    } else {
        json_object_del(md, "namespace");
    }
    char why[256];
    *code = 422;
    if (!name || kp_name_check(name, 0, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "metadata.name: Invalid value \"%s\": %s", name ? name : "",
                 name ? why : "required");
        return -1;
    }
    if (r->kind->namespaced && kp_name_check(r->ns, 1, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "metadata.namespace: Invalid value \"%s\": %s", r->ns, why);
        return -1;
    }
    json_t *labels = json_object_get(md, "labels"), *ann = json_object_get(md, "annotations");
    if ((labels && !json_is_object(labels)) || (ann && !json_is_object(ann))) {
        snprintf(err, errlen, "metadata.labels and metadata.annotations must be maps");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) if (!json_is_string(v))
    {
        snprintf(err, errlen, "metadata.labels.%s: must be a string", k);
        return -1;
    }
    json_object_foreach(ann, k, v) if (!json_is_string(v))
    {
        snprintf(err, errlen, "metadata.annotations.%s: must be a string", k);
        return -1;
    }
    return 0;
}

/* Secrets the control plane issues (type kpool.dev/kafka-credentials, credentials.c) drive
 * the janitor, which revokes the service user they name: a client may not write that type
 * or those annotations, else a team could have another team's user revoked. 0, or -1 with
 * err. */
static int check_reserved(const route_t *r, json_t *obj, char *err, size_t errlen)
{
    if (!is_secret(r->kind)) return 0;
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (type && !strcmp(type, KP_CREDENTIALS_SECRET_TYPE)) {
        snprintf(err, errlen,
                 "type: Forbidden: secrets of type %s are written only by the control plane "
                 "(an Application or AivenApplication gets one)",
                 KP_CREDENTIALS_SECRET_TYPE);
        return -1;
    }
    json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    for (size_t i = 0; kp_credentials_annotations[i]; i++) {
        if (!json_object_get(ann, kp_credentials_annotations[i])) continue;
        snprintf(err, errlen,
                 "metadata.annotations.%s: Forbidden: this annotation is written only by the "
                 "control plane",
                 kp_credentials_annotations[i]);
        return -1;
    }
    return 0;
}

/* A write the store refused: 507 while its disk is full (the operator must free space), else
 * 500. */
static void store_write_error(kp_api_t *api, kp_api_reply_t *out)
{
    if (kp_store_disk_full(api->store))
        return status_error(out, 507, "InsufficientStorage",
                            "disk full: the control plane cannot write its store until space is "
                            "freed; retry then");
    status_error(out, 500, "InternalError", "cannot write the store");
}

/* The field manager of a write: fieldManager, else the User-Agent's product ("kubectl"),
 * as Kubernetes does. */
static void manager_of(const kp_api_request_t *req, char *out, size_t n)
{
    const char *m = req->field_manager && *req->field_manager ? req->field_manager : NULL;
    if (m) {
        snprintf(out, n, "%s", m);
        return;
    }
    const char *ua = req->user_agent && *req->user_agent ? req->user_agent : "unknown";
    size_t len = strcspn(ua, "/ ");
    if (len >= n) len = n - 1;
    memcpy(out, ua, len);
    out[len] = 0;
}

static int dry_run(const kp_api_request_t *req)
{
    return req->dry_run && !strcmp(req->dry_run, "All");
}

/* fieldValidation=Strict: an unknown field is an error (400), as Kubernetes answers; Ignore
 * drops the warnings; Warn (the default) reports them. */
static int strict_fields(const kp_api_request_t *req)
{
    return req->field_validation && !strcmp(req->field_validation, "Strict");
}

/* Checks obj (stolen) for the route and writes it: create_only for POST, expected_rv >= 0
 * for a precondition. manager NULL: obj's managedFields are already set (apply). */
static int write_object(kp_api_t *api, const kp_api_request_t *req, const route_t *r, json_t *obj,
                        int64_t expected, int create_only, const char *manager, kp_api_reply_t *out)
{
    char err[1024];
    int code;
    if (check_object(r, obj, err, sizeof(err), &code) < 0) {
        json_decref(obj);
        status_error(out, (unsigned)code, code == 422 ? "Invalid" : "BadRequest", "%s", err);
        return KP_STORE_ERROR;
    }
    if (check_reserved(r, obj, err, sizeof(err)) < 0) {
        json_decref(obj);
        status_error(out, 403, "Forbidden", "%s", err);
        return KP_STORE_ERROR;
    }
    json_t *warnings = json_array();
    kp_kind_unknown_fields(r->kind, obj, warnings);
    if (json_array_size(warnings) && strict_fields(req)) {
        kp_buf_t b;
        kp_buf_init(&b);
        size_t i;
        json_t *w;
        json_array_foreach(warnings, i, w)
            kp_buf_appendf(&b, "%sunknown field \"%s\"", i ? ", " : "", json_string_value(w));
        kp_buf_append(&b, "", 1);
        status_error(out, 400, "BadRequest", "strict decoding error: %s", (char *)b.data);
        kp_buf_free(&b);
        json_decref(obj);
        json_decref(warnings);
        return KP_STORE_ERROR;
    }
    if (req->field_validation && !strcmp(req->field_validation, "Ignore"))
        json_array_clear(warnings);
    const char *stype = json_string_value(json_object_get(obj, "type"));
    if (is_secret(r->kind) && (!stype || !*stype)) /* Kubernetes' default */
        json_object_set_new(obj, "type", json_string("Opaque"));
    if (is_secret(r->kind) && conceal(api, obj, err, sizeof(err)) < 0) {
        json_decref(obj);
        json_decref(warnings);
        status_error(out, 422, "Invalid", "%s", err);
        return KP_STORE_ERROR;
    }
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    json_t *old = NULL;
    kp_store_get(api->store, r->kind->kind, r->kind->namespaced ? r->ns : "", name, &old);
    if (manager) {
        char av[64];
        kp_kind_api_version(r->kind, av, sizeof(av));
        kp_k8s_fields_update(obj, old, manager, av);
    }
    json_t *stored = NULL;
    int rc;
    if (dry_run(req)) { /* what would be stored (kubectl diff): nothing is written */
        rc = old && create_only ? KP_STORE_EXISTS : old ? KP_STORE_UPDATED : KP_STORE_CREATED;
        stored = json_deep_copy(obj);
        json_t *md = json_object_get(stored, "metadata"), *omd = json_object_get(old, "metadata");
        static const char *server[] = {"uid", "creationTimestamp", "generation", "resourceVersion"};
        for (size_t i = 0; old && i < sizeof(server) / sizeof(*server); i++)
            if (json_object_get(omd, server[i]))
                json_object_set(md, server[i], json_object_get(omd, server[i]));
        json_object_del(stored, "status");
        if (old && json_object_get(old, "status"))
            json_object_set(stored, "status", json_object_get(old, "status"));
    } else {
        rc = kp_store_put(api->store, obj, expected, create_only, &stored);
    }
    json_decref(old);
    if (stored && is_secret(r->kind) && reveal(api, stored) < 0) {
        json_decref(stored);
        stored = NULL;
        if (rc == KP_STORE_CREATED || rc == KP_STORE_UPDATED || rc == KP_STORE_UNCHANGED)
            rc = KP_STORE_ERROR;
    }
    switch (rc) {
    case KP_STORE_CREATED:
        reply(out, 201, stored, warnings);
        stored = warnings = NULL;
        break;
    case KP_STORE_UPDATED:
    case KP_STORE_UNCHANGED:
        reply(out, 200, stored, warnings);
        stored = warnings = NULL;
        break;
    case KP_STORE_EXISTS:
        status_error(out, 409, "AlreadyExists", "%s \"%s\" already exists", r->kind->plural, name);
        break;
    case KP_STORE_CONFLICT:
        status_error(out, 409, "Conflict",
                     "Operation cannot be fulfilled on %s \"%s\": the object has been "
                     "modified or is being deleted; get it and try again",
                     r->kind->plural, name);
        break;
    default:
        store_write_error(api, out);
        break;
    }
    json_decref(stored);
    json_decref(obj);
    json_decref(warnings);
    return rc;
}

static void do_put(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                   const caller_t *who, int create_only, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 1))
        return forbidden(out, r, create_only ? "create" : "update", r->ns);
    char err[1024];
    if (is_protobuf(req) && !is_secret(r->kind)) /* only kubectl's typed client sends it */
        return status_error(out, 415, "UnsupportedMediaType",
                            "protobuf is accepted for Secrets only: send JSON or YAML");
    json_t *obj = is_protobuf(req) ? kp_k8s_secret_from_protobuf(req->body, req->len)
                                   : parse_body(req, err, sizeof(err));
    if (!obj && is_protobuf(req))
        return status_error(out, 400, "BadRequest", "invalid body: not a Secret in protobuf");
    if (!obj) return status_error(out, 400, "BadRequest", "invalid body: %s", err);
    const char *rvs =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    int64_t expected = rvs && *rvs ? atoll(rvs) : -1;
    char manager[128];
    manager_of(req, manager, sizeof(manager));
    write_object(api, req, r, obj, expected, create_only, manager, out);
}

/* The patch formats (Content-Type of a PATCH). */
enum { PATCH_MERGE, PATCH_JSON, PATCH_STRATEGIC, PATCH_APPLY, PATCH_UNKNOWN };

static int patch_type(const char *content_type)
{
    if (!content_type) return PATCH_UNKNOWN;
    static const struct {
        const char *mime;
        int type;
    } types[] = {{"application/merge-patch+json", PATCH_MERGE},
                 {"application/json-patch+json", PATCH_JSON},
                 {"application/strategic-merge-patch+json", PATCH_STRATEGIC},
                 {"application/apply-patch+yaml", PATCH_APPLY},
                 {"application/apply-patch+json", PATCH_APPLY}};
    size_t n = strcspn(content_type, "; ");
    for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
        if (strlen(types[i].mime) == n && !strncmp(content_type, types[i].mime, n))
            return types[i].type;
    return PATCH_UNKNOWN;
}

/* 409 for a server-side apply that would change fields other managers own. */
static void apply_conflict(kp_api_reply_t *out, const route_t *r, json_t *conflicts)
{
    kp_buf_t msg;
    kp_buf_init(&msg);
    json_t *causes = json_array();
    size_t n = json_array_size(conflicts), i;
    json_t *c;
    kp_buf_appendf(&msg, "Apply failed with %zu conflict%s:", n, n == 1 ? "" : "s");
    json_array_foreach(conflicts, i, c)
    {
        const char *m = json_string_value(json_object_get(c, "manager"));
        const char *f = json_string_value(json_object_get(c, "field"));
        char one[600];
        snprintf(one, sizeof(one), "conflict with \"%s\"", m ? m : "");
        kp_buf_appendf(&msg, "%s %s: %s", i ? ";" : "", one, f ? f : "");
        json_array_append_new(causes, json_pack("{s:s, s:o, s:o}", "reason", "FieldManagerConflict",
                                                "message", kp_json_text(one), "field",
                                                kp_json_text(f ? f : "")));
    }
    kp_buf_append(&msg, "", 1);
    status_error(out, 409, "Conflict", "%s", (char *)msg.data);
    status_details(out, r);
    json_object_set_new(json_object_get(out->body, "details"), "causes", causes);
    kp_buf_free(&msg);
}

/* The patched object (a new reference), or NULL with err (or *conflicts, apply only). */
static json_t *patched(const kp_api_request_t *req, const route_t *r, int type, const json_t *live,
                       const json_t *patch, const char *manager, json_t **conflicts, char *err,
                       size_t errlen)
{
    *conflicts = NULL;
    if (type == PATCH_JSON) return kp_k8s_json_patch(live, patch, err, errlen);
    if (!json_is_object(patch)) {
        snprintf(err, errlen, "the patch must be an object");
        return NULL;
    }
    if (type == PATCH_MERGE) return kp_k8s_merge_patch(live, patch);
    if (type == PATCH_STRATEGIC) return kp_k8s_strategic_patch(live, patch, err, errlen);
    char av[64];
    kp_kind_api_version(r->kind, av, sizeof(av));
    json_t *cfg = json_deep_copy(patch), *result = NULL;
    int code;
    /* the configuration names the object: checked as a whole object would be */
    if (check_object(r, cfg, err, errlen, &code) == 0)
        result = kp_k8s_apply(live, cfg, manager, req->force && !strcmp(req->force, "true"), av,
                              conflicts);
    json_decref(cfg);
    return result;
}

/* Reads the object, patches it and writes it with the version it read as a precondition.
 * Returns the store's answer: KP_STORE_CONFLICT when that version moved on (the caller
 * tries again) and the patch itself named no resourceVersion; else the reply is final. */
static int patch_once(kp_api_t *api, const kp_api_request_t *req, const route_t *r, int type,
                      const json_t *patch, const char *manager, kp_api_reply_t *out)
{
    char err[1024];
    json_t *live = NULL;
    const char *ns = r->kind->namespaced ? r->ns : "";
    if (kp_store_get(api->store, r->kind->kind, ns, r->name, &live) != KP_STORE_OK &&
        type != PATCH_APPLY) {
        not_found(r, out);
        return KP_STORE_NOT_FOUND;
    }
    if (live && is_secret(r->kind) && reveal(api, live) < 0) {
        json_decref(live);
        status_error(out, 500, "InternalError", "cannot open the sealed secret");
        return KP_STORE_ERROR;
    }
    if (live) json_object_del(live, "status");
    const char *rvs =
        json_string_value(json_object_get(json_object_get(live, "metadata"), "resourceVersion"));
    int64_t expected = rvs ? atoll(rvs) : -1;
    json_t *conflicts;
    json_t *result = patched(req, r, type, live, patch, manager, &conflicts, err, sizeof(err));
    if (conflicts) {
        apply_conflict(out, r, conflicts);
        json_decref(conflicts);
        json_decref(live);
        return KP_STORE_ERROR;
    }
    if (!result) {
        json_decref(live);
        status_error(out, 422, "Invalid", "%s", err);
        return KP_STORE_ERROR;
    }
    /* a patch may carry metadata.resourceVersion: a precondition, as in Kubernetes */
    const char *want =
        json_string_value(json_object_get(json_object_get(result, "metadata"), "resourceVersion"));
    int precondition = want && *want && rvs && strcmp(want, rvs) != 0;
    if (precondition) expected = atoll(want);
    int create = live == NULL;
    json_decref(live);
    int rc = write_object(api, req, r, result, create ? -1 : expected, create,
                          type == PATCH_APPLY ? NULL : manager, out);
    return rc == KP_STORE_CONFLICT && !precondition && !create ? KP_STORE_CONFLICT : rc;
}

/* A patch without a resourceVersion of its own is tried again this often when the object
 * changed between read and write (the control plane writes status meanwhile). */
#define PATCH_ATTEMPTS_MAX 5

static void do_patch(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                     const caller_t *who, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 1)) return forbidden(out, r, "patch", r->ns);
    int type = patch_type(req->content_type);
    if (type == PATCH_UNKNOWN)
        return status_error(out, 415, "UnsupportedMediaType",
                            "the body of a PATCH must be application/merge-patch+json, "
                            "application/json-patch+json, application/strategic-merge-patch+json "
                            "or application/apply-patch+yaml");
    char err[1024], manager[128];
    manager_of(req, manager, sizeof(manager));
    if (type == PATCH_APPLY && (!req->field_manager || !*req->field_manager))
        return status_error(out, 400, "BadRequest",
                            "PATCH of type application/apply-patch+yaml requires fieldManager");
    json_t *patch = parse_body(req, err, sizeof(err));
    if (!patch) return status_error(out, 400, "BadRequest", "invalid patch: %s", err);
    for (int attempt = 1;; attempt++) {
        if (patch_once(api, req, r, type, patch, manager, out) != KP_STORE_CONFLICT ||
            attempt == PATCH_ATTEMPTS_MAX)
            break;
        kp_api_reply_free(out);
        memset(out, 0, sizeof(*out));
    }
    json_decref(patch);
}

static void do_put_status(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                          const caller_t *who, kp_api_reply_t *out)
{
    if (!who->admin)
        return status_error(out, 403, "Forbidden", "only the control plane writes status");
    char err[512];
    json_t *obj = parse_body(req, err, sizeof(err));
    if (!obj) return status_error(out, 400, "BadRequest", "invalid body: %s", err);
    json_t *status = json_object_get(obj, "status"), *none = status ? NULL : json_object();
    json_t *stored = NULL;
    int rc = kp_store_put_status(api->store, r->kind->kind, r->kind->namespaced ? r->ns : "",
                                 r->name, status ? status : none, &stored);
    if (rc == KP_STORE_NOT_FOUND)
        not_found(r, out);
    else if (stored)
        reply(out, 200, json_incref(stored), NULL);
    else
        store_write_error(api, out);
    json_decref(none);
    json_decref(stored);
    json_decref(obj);
}

/* PATCH .../NAME/status (kubectl patch --subresource=status): a merge, JSON or strategic
 * patch of {"status": ...}; only the control plane's (admin) token writes status. */
static void do_patch_status(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                            const caller_t *who, kp_api_reply_t *out)
{
    if (!who->admin)
        return status_error(out, 403, "Forbidden", "only the control plane writes status");
    int type = patch_type(req->content_type);
    if (type == PATCH_UNKNOWN || type == PATCH_APPLY)
        return status_error(out, 415, "UnsupportedMediaType",
                            "the status subresource takes application/merge-patch+json, "
                            "application/json-patch+json or "
                            "application/strategic-merge-patch+json");
    char err[1024];
    json_t *patch = parse_body(req, err, sizeof(err));
    if (!patch) return status_error(out, 400, "BadRequest", "invalid patch: %s", err);
    json_t *live = NULL;
    const char *ns = r->kind->namespaced ? r->ns : "";
    if (kp_store_get(api->store, r->kind->kind, ns, r->name, &live) != KP_STORE_OK) {
        json_decref(patch);
        return not_found(r, out);
    }
    json_t *st = json_object_get(live, "status");
    json_t *view = json_object();
    json_object_set_new(view, "status", st ? json_incref(st) : json_object());
    json_decref(live);
    json_t *conflicts, *result = NULL;
    if (type == PATCH_JSON || json_is_object(patch))
        result = patched(req, r, type, view, patch, NULL, &conflicts, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "the patch must be an object");
    json_decref(view);
    json_decref(patch);
    json_t *status = json_object_get(result, "status");
    if (!json_is_object(status)) {
        if (result) snprintf(err, sizeof(err), "status: must be an object");
        json_decref(result);
        return status_error(out, 422, "Invalid", "%s", err);
    }
    json_t *stored = NULL;
    int rc = kp_store_put_status(api->store, r->kind->kind, ns, r->name, status, &stored);
    json_decref(result);
    if (rc == KP_STORE_NOT_FOUND)
        not_found(r, out);
    else if (stored)
        reply(out, 200, stored, NULL);
    else
        store_write_error(api, out);
}

static void do_delete(kp_api_t *api, const route_t *r, const caller_t *who, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 1)) return forbidden(out, r, "delete", r->ns);
    json_t *stored = NULL;
    const char *ns = r->kind->namespaced ? r->ns : "";
    int rc = kp_store_mark_deleted(api->store, r->kind->kind, ns, r->name, &stored);
    if (rc == KP_STORE_NOT_FOUND) {
        /* a row the store cannot read back: one stored before bodies were limited to
         * KP_YAML_DEPTH_MAX levels (jansson reads 2,048). Nothing could ever reconcile it,
         * so there is nothing to clean up: it goes at once. Any other missing row is 404. */
        if (kp_store_remove(api->store, r->kind->kind, ns, r->name) != KP_STORE_OK)
            return not_found(r, out);
        kp_warn("api", "%s %s/%s could not be read and was removed", r->kind->kind, ns, r->name);
        json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s}}", "kind", "Status",
                               "apiVersion", "v1", "metadata", "status", "Success", "details",
                               "kind", r->kind->plural, "group", r->kind->group);
        json_object_set_new(json_object_get(st, "details"), "name", kp_json_text(r->name));
        return reply(out, 200, st, NULL);
    }
    if (!stored) return store_write_error(api, out);
    reply(out, 200, stored, NULL);
}

/* DELETE on a collection (deletecollection): every object the selectors match, each deleted
 * as a DELETE of it would (a team token: only in its own namespace). The answer is the list
 * of the objects as marked for deletion; dryRun=All deletes nothing and lists them. */
static void do_delete_collection(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                                 const caller_t *who, kp_api_reply_t *out)
{
    const char *ns = r->has_ns ? r->ns : NULL;
    if (r->kind->namespaced && !ns && !who->admin) ns = who->ns; /* all namespaces it sees */
    if (!may_touch(who, r->kind, r->kind->namespaced ? ns : NULL, 1))
        return forbidden(out, r, "deletecollection", ns);
    json_t *items;
    int64_t rv;
    if (kp_store_list(api->store, r->kind->kind, r->kind->namespaced ? ns : "", &items, &rv) !=
        KP_STORE_OK) {
        json_decref(items);
        return status_error(out, 500, "InternalError", "cannot read the store");
    }
    char err[512];
    json_t *o, *deleted = json_array();
    size_t i;
    int failed = 0;
    json_array_foreach(items, i, o)
    {
        int lm = kp_k8s_label_match(o, req->label_selector, err, sizeof(err));
        int fm = lm < 0 ? 0 : kp_k8s_field_match(o, req->field_selector, err, sizeof(err));
        if (lm < 0 || fm < 0) {
            json_decref(items);
            json_decref(deleted);
            return status_error(out, 400, "BadRequest", "%s", err);
        }
        if (!lm || !fm) continue;
        json_t *md = json_object_get(o, "metadata"), *stored = NULL;
        const char *ons = json_string_value(json_object_get(md, "namespace"));
        const char *name = json_string_value(json_object_get(md, "name"));
        if (!dry_run(req)) {
            int rc =
                kp_store_mark_deleted(api->store, r->kind->kind, ons ? ons : "", name, &stored);
            if (rc == KP_STORE_NOT_FOUND) continue; /* gone meanwhile */
            if (!stored) {
                failed = 1;
                break;
            }
        } else {
            stored = json_incref(o);
        }
        if (is_secret(r->kind) && reveal(api, stored) < 0) json_object_del(stored, "data");
        json_array_append_new(deleted, stored);
    }
    json_decref(items);
    if (failed) {
        json_decref(deleted);
        return store_write_error(api, out);
    }
    char av[64], kind[80], rvs[32];
    kp_kind_api_version(r->kind, av, sizeof(av));
    snprintf(kind, sizeof(kind), "%sList", r->kind->kind);
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    reply(out, 200,
          json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", av, "kind", kind, "metadata",
                    "resourceVersion", rvs, "items", deleted),
          NULL);
}

static void do_teams(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                     const caller_t *who, kp_api_reply_t *out)
{
    kp_api_teams_req_t treq = {
        .method = req->method,
        .name = r->has_name ? r->name : NULL,
        .rotate = r->teams_rotate,
        .admin = who->admin,
        .body = req->body,
        .len = req->len,
    };
    unsigned code;
    json_t *answer = kp_api_teams_answer(api->store, &treq, &code);
    reply(out, code, answer, NULL);
}

/* ---- namespaces and access reviews (kubectl) ---- */

/* /api/v1/namespaces[/NAME]: the teams the token sees (an admin: every team; a team token:
 * its own). 1 when path is one of them. */
static int do_namespaces(kp_api_t *api, const kp_api_request_t *req, const caller_t *who,
                         kp_api_reply_t *out)
{
    static const char prefix[] = "/api/v1/namespaces";
    const char *u = req->url;
    if (strncmp(u, prefix, sizeof(prefix) - 1) != 0) return 0;
    u += sizeof(prefix) - 1;
    if (*u == '/' && !u[1]) u++;
    if (*u && (*u != '/' || strchr(u + 1, '/'))) return 0;
    const char *name = *u ? u + 1 : NULL;
    if (strcmp(req->method, "GET") != 0) {
        status_error(out, 405, "MethodNotAllowed",
                     "namespaces are teams: an admin creates one with kpool team create");
        return 1;
    }
    if (name && !who->admin && strcmp(name, who->ns) != 0) {
        status_error(out, 403, "Forbidden",
                     "namespaces \"%s\" is forbidden: this token may only see namespace \"%s\"",
                     name, who->ns);
        return 1;
    }
    kp_store_team_t *t = NULL;
    int n = 0;
    if (kp_store_teams_list(api->store, who->admin ? name : who->ns, &t, &n) < 0) {
        status_error(out, 500, "InternalError", "cannot read the store");
        return 1;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, kp_k8s_namespace(t[i].name, t[i].created));
    if (!who->admin && !n) /* a team token names its namespace even before any resource */
        json_array_append_new(items, kp_k8s_namespace(who->ns, NULL));
    kp_store_teams_free(t, n);
    if (name) {
        /* namespaces are implicit (anything may be applied into any valid one): every valid
         * name exists, so kubectl reports a missing object, not a missing namespace */
        json_t *ns = json_incref(json_array_get(items, 0));
        json_decref(items);
        char why[256];
        if (!ns && kp_name_check(name, 1, why, sizeof(why)) == 0) ns = kp_k8s_namespace(name, NULL);
        if (!ns)
            status_error(out, 404, "NotFound", "namespaces \"%s\" not found", name);
        else
            reply(out, 200, ns, NULL);
        return 1;
    }
    json_t *fake = json_array(); /* selectors and Table over the list, as for any kind */
    size_t i;
    json_t *o;
    char err[256];
    json_array_foreach(items, i,
                       o) if (kp_k8s_field_match(o, req->field_selector, err, sizeof(err)) == 1 &&
                              kp_k8s_label_match(o, req->label_selector, err, sizeof(err)) == 1)
        json_array_append(fake, o);
    json_decref(items);
    if (kp_k8s_wants_table(req->accept)) {
        static const kp_kind_column_t cols[] = {{"NAME", "@name", "", 0, "string"},
                                                {"STATUS", "status.phase", "", 0, "string"},
                                                {"AGE", "@age", "", 0, "date"},
                                                {NULL, NULL, NULL, 0, NULL}};
        kp_kind_t nsk = {.kind = "Namespace", .group = "", .version = "v1", .columns = cols};
        reply(out, 200, kp_k8s_table(&nsk, fake, "", req->include_object), NULL);
        json_decref(fake);
    } else {
        reply(out, 200,
              json_pack("{s:s, s:s, s:{}, s:o}", "apiVersion", "v1", "kind", "NamespaceList",
                        "metadata", "items", fake),
              NULL);
    }
    return 1;
}

/* /api/v1/events, /api/v1/namespaces/NS/events[/NAME] (k8s_events.c): read-only; a team
 * token reads its own namespace's. 1 when path is one of them. */
static int do_events(const kp_api_request_t *req, const caller_t *who, kp_api_reply_t *out)
{
    char ns[128], name[256];
    if (!kp_k8s_events_route(req->url, ns, sizeof(ns), name, sizeof(name))) return 0;
    if (strcmp(req->method, "GET") != 0) {
        status_error(out, 405, "MethodNotAllowed",
                     "events are written by the control plane only: %s is not supported",
                     req->method);
        return 1;
    }
    if (!who->admin && ns[0] && strcmp(ns, who->ns) != 0) {
        status_error(out, 403, "Forbidden",
                     "events is forbidden: this token may not list events in namespace \"%s\"", ns);
        return 1;
    }
    kp_k8s_events_req_t q = {
        .ns = ns[0]        ? ns
              : who->admin ? NULL
                           : who->ns,
        .name = name,
        .label_selector = req->label_selector,
        .field_selector = req->field_selector,
        .limit = req->limit,
        .continue_token = req->continue_token,
        .table = kp_k8s_wants_table(req->accept),
        .include_object = req->include_object,
    };
    unsigned code;
    json_t *body = kp_k8s_events_answer(&q, &code);
    reply(out, code, body, NULL);
    return 1;
}

/* POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews (kubectl auth can-i): the
 * same rule every request is checked with (may_touch). */
static void do_access_review(const kp_api_request_t *req, const caller_t *who, kp_api_reply_t *out)
{
    char err[512];
    json_t *body =
        req->content_type && !strncmp(req->content_type, "application/vnd.kubernetes.protobuf", 35)
            ? kp_k8s_access_review_from_protobuf(req->body, req->len)
            : parse_body(req, err, sizeof(err));
    if (!body && req->content_type &&
        !strncmp(req->content_type, "application/vnd.kubernetes.protobuf", 35))
        snprintf(err, sizeof(err), "not a SelfSubjectAccessReview in Kubernetes protobuf");
    if (!body) return status_error(out, 400, "BadRequest", "invalid body: %s", err);
    json_t *ra = json_object_get(json_object_get(body, "spec"), "resourceAttributes");
    const char *verb = json_string_value(json_object_get(ra, "verb"));
    const char *group = json_string_value(json_object_get(ra, "group")) ?: "";
    const char *res = json_string_value(json_object_get(ra, "resource")) ?: "";
    const char *ns = json_string_value(json_object_get(ra, "namespace"));
    if (ns && !*ns) ns = NULL;
    int allowed = 0;
    const char *reason = "no such resource";
    const kp_kind_t *k = NULL;
    for (size_t i = 0; i < kp_kinds_count && !k; i++)
        if (!strcmp(kp_kinds[i].group, group) && !strcmp(kp_kinds[i].plural, res)) k = &kp_kinds[i];
    int write = !verb || (strcmp(verb, "get") && strcmp(verb, "list") && strcmp(verb, "watch"));
    if (who->admin) {
        allowed = 1;
        reason = "admin token";
    } else if (k) {
        allowed = may_touch(who, k, k->namespaced ? ns : NULL, write);
        reason = allowed ? "the team's own namespace" : "another team's namespace or kind";
    } else if (!group[0] && !strcmp(res, "namespaces") && !write) {
        allowed = !ns || !strcmp(ns, who->ns);
        reason = "a team sees its own namespace";
    }
    json_t *st = json_pack("{s:b, s:s}", "allowed", allowed, "reason", reason);
    if (!allowed) json_object_set_new(st, "denied", json_true());
    /* the answer repeats what was understood, never the body as sent (any bytes, any
     * shape) */
    json_t *echo = json_object();
    static const char *keys[] = {"namespace", "verb",        "group", "version",
                                 "resource",  "subresource", "name"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        const char *v = json_string_value(json_object_get(ra, keys[i]));
        if (v) json_object_set_new(echo, keys[i], kp_json_text(v));
    }
    json_decref(body);
    reply(out, 201,
          json_pack("{s:s, s:s, s:{}, s:{s:o}, s:o}", "apiVersion", "authorization.k8s.io/v1",
                    "kind", "SelfSubjectAccessReview", "metadata", "spec", "resourceAttributes",
                    echo, "status", st),
          NULL);
}

/* Whether url is under one of the Kubernetes API's roots (/api, /apis, /openapi, /version),
 * where a request without a valid token is 401 whatever the path, as Kubernetes answers. */
static int api_path(const char *url)
{
    static const char *roots[] = {"/api", "/apis", "/openapi", "/version"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        size_t n = strlen(roots[i]);
        if (!strncmp(url, roots[i], n) && (url[n] == 0 || url[n] == '/')) return 1;
    }
    return 0;
}

void kp_api_answer(kp_api_t *api, const kp_api_request_t *req, kp_api_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    route_t r = {0};
    unsigned code;
    json_t *doc;
    int routed = parse_route(req->url, &r) == 0;
    if (!routed && !strcmp(req->method, "GET") && !strcmp(req->url, "/version") &&
        kp_k8s_discovery(req->url, &doc, &code))
        return reply(out, code, doc, NULL); /* as in Kubernetes: no token needed */
    if (r.healthz) return reply(out, 200, json_pack("{s:s}", "status", "ok"), NULL);
    if (!routed && !api_path(req->url)) /* not the API's (the console's files are served
                                           before): nothing there, with or without a token */
        return status_error(out, 404, "NotFound",
                            "the server could not find the requested resource");
    caller_t who = {0, NULL};
    if (authenticate(api, req->authorization, &who) < 0)
        return status_error(out, 401, "Unauthorized",
                            "Unauthorized: a valid bearer token is required");
    const char *m = req->method;
    if (!routed) {
        if (do_events(req, &who, out) || do_namespaces(api, req, &who, out)) {
        } else if (!strcmp(m, "POST") &&
                   !strcmp(req->url, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")) {
            do_access_review(req, &who, out);
        } else if (!strcmp(m, "GET") && kp_k8s_discovery(req->url, &doc, &code)) {
            reply(out, code, doc, NULL);
        } else {
            status_error(out, 404, "NotFound", "the server could not find the requested resource");
        }
    } else if (r.teams)
        do_teams(api, req, &r, &who, out);
    else if (!strcmp(m, "GET") && r.has_name)
        do_get(api, req, &r, &who, out);
    else if (!strcmp(m, "GET"))
        do_list(api, req, &r, &who, out);
    else if (!strcmp(m, "PUT") && r.has_name && r.status)
        do_put_status(api, req, &r, &who, out);
    else if (!strcmp(m, "PUT") && r.has_name)
        do_put(api, req, &r, &who, 0, out);
    else if (!strcmp(m, "PATCH") && r.has_name && !r.status)
        do_patch(api, req, &r, &who, out);
    else if (!strcmp(m, "PATCH") && r.has_name)
        do_patch_status(api, req, &r, &who, out);
    else if (!strcmp(m, "POST") && !r.has_name && (r.has_ns || !r.kind->namespaced))
        do_put(api, req, &r, &who, 1, out);
    else if (!strcmp(m, "DELETE") && r.has_name && !r.status)
        do_delete(api, &r, &who, out);
    else if (!strcmp(m, "DELETE") && !r.has_name)
        do_delete_collection(api, req, &r, &who, out);
    else
        status_error(out, 405, "MethodNotAllowed", "%s is not supported on %s", m, req->url);
    free(who.ns);
}

void kp_api_reply_free(kp_api_reply_t *out)
{
    json_decref(out->body);
    json_decref(out->warnings);
    out->body = out->warnings = NULL;
}

#define ARG(name) MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name)

static int reveal_cb(void *arg, json_t *obj)
{
    return reveal(arg, obj);
}

static int arg_true(const char *v)
{
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* GET ...?watch=true: authorized like a list (or a get, for one name), then streamed by the
 * watch hub (k8s_watch.c). */
static enum MHD_Result watch(kp_api_t *api, struct MHD_Connection *conn, const char *url,
                             const char *authorization)
{
    kp_api_reply_t out = {0};
    route_t r;
    caller_t who = {0, NULL};
    char err[512], name_sel[400];
    const char *labels = ARG("labelSelector"), *fields = ARG("fieldSelector");
    json_t *empty = json_object();
    char ens[128], ename[256];
    if (kp_k8s_events_route(url, ens, sizeof(ens), ename, sizeof(ename))) {
        /* Events: read like a list of a namespaced kind (do_events) */
        memset(&r, 0, sizeof(r));
        r.kind = &kp_k8s_event_kind;
        snprintf(r.ns, sizeof(r.ns), "%s", ens);
        snprintf(r.name, sizeof(r.name), "%s", ename);
        r.has_ns = ens[0] != 0;
        r.has_name = ename[0] != 0;
    } else if (parse_route(url, &r) < 0) {
        r.healthz = 1; /* not found, below */
    }
    if (r.teams || r.healthz || r.status) {
        status_error(&out, 404, "NotFound", "the server could not find the requested resource");
    } else if (authenticate(api, authorization, &who) < 0) {
        status_error(&out, 401, "Unauthorized", "Unauthorized: a valid bearer token is required");
    } else {
        const char *ns = r.has_ns ? r.ns : NULL;
        if (r.kind->namespaced && !ns && !who.admin) ns = who.ns;
        if (!may_touch(&who, r.kind, r.kind->namespaced ? ns : NULL, 0)) {
            forbidden(&out, &r, "watch", ns);
        } else if (r.kind == &kp_k8s_event_kind
                       ? kp_k8s_event_match(empty, labels, fields, err, sizeof(err)) < 0
                       : kp_k8s_label_match(empty, labels, err, sizeof(err)) < 0 ||
                             kp_k8s_field_match(empty, fields, err, sizeof(err)) < 0) {
            status_error(&out, 400, "BadRequest", "%s", err);
        } else {
            if (r.has_name) { /* .../topics/NAME?watch=true: that object only */
                snprintf(name_sel, sizeof(name_sel), "metadata.name=%s", r.name);
                fields = name_sel;
            }
            const char *timeout = ARG("timeoutSeconds");
            kp_k8s_watch_spec_t spec = {
                .kind = r.kind,
                .ns = r.kind->namespaced ? ns : NULL,
                .label_selector = labels,
                .field_selector = fields,
                .resource_version = ARG("resourceVersion"),
                .send_initial_events = arg_true(ARG("sendInitialEvents")),
                .bookmarks = arg_true(ARG("allowWatchBookmarks")),
                .table = kp_k8s_wants_table(
                    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept")),
                .include_object = ARG("includeObject"),
                .timeout_seconds = timeout ? atol(timeout) : 0,
                .reveal = is_secret(r.kind) ? reveal_cb : NULL,
                .reveal_arg = api,
            };
            json_decref(empty);
            free(who.ns);
            return kp_k8s_watch_queue(api->watch_hub, conn, &spec);
        }
    }
    json_decref(empty);
    free(who.ns);
    enum MHD_Result rc = kp_api_send(conn, out.code, out.body, out.warnings);
    kp_api_reply_free(&out);
    return rc;
}

/* The OpenAPI v2 document as protobuf (kubectl's Accept); out is freed. */
static enum MHD_Result send_openapi_v2_protobuf(struct MHD_Connection *conn, kp_api_reply_t *out)
{
    size_t n;
    uint8_t *pb = kp_k8s_openapi_v2_protobuf(out->body, &n);
    kp_api_reply_free(out);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, pb, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", KP_K8S_OPENAPI_V2_PROTOBUF);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    kp_api_t *api = cls;
    req_state_t *st = *con_cls;
    const char *authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!st) {
        st = kp_xcalloc(1, sizeof(*st));
        kp_buf_init(&st->body);
        st->body_max = API_BODY_MAX;
        /* a backup may be larger than any resource; only an admin may send one that large
         * (the headers are here already, so this is decided before the body is buffered) */
        caller_t who = {0, NULL};
        if (kp_api_backup_route(url) == KP_API_BACKUP_RESTORE &&
            authenticate(api, authorization, &who) == 0 && who.admin)
            st->body_max = KP_BACKUP_BYTES_MAX;
        free(who.ns);
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_len) {
        if (st->body.len + *upload_len > st->body_max)
            st->too_large = 1;
        else
            kp_buf_append(&st->body, upload, *upload_len);
        *upload_len = 0;
        return MHD_YES;
    }
    kp_api_reply_t out = {0};
    if (st->too_large) {
        status_error(&out, 413, "RequestEntityTooLarge", "body larger than %zu bytes",
                     st->body_max);
    } else if (kp_console_route(url)) {
        return kp_console_serve(conn, url, method); /* the console's files: no token */
    } else if (kp_api_console_route(url)) {         /* api_console.c */
        caller_t who = {0, NULL};
        if (authenticate(api, authorization, &who) == 0) {
            enum MHD_Result rc = kp_api_console_handle(api->store, api->master_key, conn, url,
                                                       method, who.admin, who.ns);
            free(who.ns);
            return rc;
        }
        status_error(&out, 401, "Unauthorized", "Unauthorized: a valid bearer token is required");
    } else if (kp_api_backup_route(url)) {
        caller_t who = {0, NULL};
        if (authenticate(api, authorization, &who) < 0) {
            status_error(&out, 401, "Unauthorized",
                         "Unauthorized: a valid bearer token is required");
        } else if (!who.admin) {
            status_error(&out, 403, "Forbidden", "only an admin token may use backups");
        } else {
            free(who.ns);
            return kp_api_backup_handle(api->backup, conn, url, method, st->body.data,
                                        st->body.len);
        }
        free(who.ns);
    } else if (!strcmp(method, "GET") && arg_true(ARG("watch"))) {
        return watch(api, conn, url, authorization);
    } else {
        route_t r;
        if (parse_route(url, &r) == 0 && r.healthz) {
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
            enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
            MHD_destroy_response(resp);
            return rc;
        }
        kp_api_request_t req = {
            .method = method,
            .url = url,
            .authorization = authorization,
            .label_selector = ARG("labelSelector"),
            .accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept"),
            .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
            .user_agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent"),
            .field_selector = ARG("fieldSelector"),
            .limit = ARG("limit"),
            .continue_token = ARG("continue"),
            .field_manager = ARG("fieldManager"),
            .force = ARG("force"),
            .field_validation = ARG("fieldValidation"),
            .include_object = ARG("includeObject"),
            .dry_run = ARG("dryRun"),
            .body = st->body.data,
            .len = st->body.len,
        };
        kp_api_answer(api, &req, &out);
        if (out.code == 200 && !strcmp(url, "/openapi/v2") && req.accept &&
            strstr(req.accept, "application/com.github.proto-openapi.spec.v2"))
            return send_openapi_v2_protobuf(conn, &out);
    }
    enum MHD_Result rc = kp_api_send(conn, out.code, out.body, out.warnings);
    kp_api_reply_free(&out);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    kp_api_console_forget(conn); /* an answer its client did not wait for */
    req_state_t *st = *con_cls;
    if (!st) return;
    kp_buf_free(&st->body);
    free(st);
    *con_cls = NULL;
}

static int is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost") ||
           !strncmp(host, "127.", 4);
}

kp_api_t *kp_api_start(const kp_api_config_t *cfg, kp_store_t *store, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (kp_parse_hostport(cfg->listen, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "control.listener: '%s' is not host:port", cfg->listen);
        return NULL;
    }
    kp_api_t *api = kp_xcalloc(1, sizeof(*api));
    api->store = store;
    api->master_key = cfg->master_key;
    api->backup = cfg->backup;
    if (!is_loopback(host) || cfg->tls) {
        size_t len;
        if (!cfg->cert_path || !cfg->key_path ||
            kp_fs_read_all(cfg->cert_path, 1 << 20, (uint8_t **)&api->tls_cert, &len) < 0 ||
            kp_fs_read_all(cfg->key_path, 1 << 20, (uint8_t **)&api->tls_key, &len) < 0) {
            if (cfg->tls)
                snprintf(err, errlen, "%s: cannot read the TLS certificate or key", cfg->listen);
            else
                snprintf(err, errlen,
                         "control.listener %s is not loopback: TLS is required "
                         "(control.ssl.certificate.location and control.ssl.key.location)",
                         cfg->listen);
            kp_api_stop(api);
            return NULL;
        }
    }
    const struct MHD_OptionItem opts[] = {{MHD_OPTION_THREAD_POOL_SIZE, 4, NULL},
                                          {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
                                          {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
                                          {MHD_OPTION_END, 0, NULL}};
    kp_http_listen_t l = {.what = "control.listener",
                          .hostport = cfg->listen,
                          /* suspend/resume: watch streams wait for events, and console
                           * requests for pools, without holding a thread */
                          .flags = MHD_ALLOW_SUSPEND_RESUME,
                          .tls_cert = api->tls_cert,
                          .tls_key = api->tls_key,
                          .handler = handle,
                          .handler_cls = api,
                          .options = opts};
    api->daemon = kp_http_listen(&l, &api->port, NULL, 0, err, errlen);
    if (!api->daemon) {
        kp_api_stop(api);
        return NULL;
    }
    api->watch_hub = kp_k8s_watch_hub_start(store);
    kp_info("api", "control plane API on %s://%s:%d", api->tls_cert ? "https" : "http", host,
            api->port);
    return api;
}

kp_api_t *kp_api_new_unlistened(kp_store_t *store, const kp_pki_master_key_t *master_key)
{
    kp_api_t *api = kp_xcalloc(1, sizeof(*api));
    api->store = store;
    api->master_key = master_key;
    return api;
}

int kp_api_port(const kp_api_t *api)
{
    return api->port;
}

void kp_api_stop(kp_api_t *api)
{
    if (!api) return;
    kp_k8s_watch_hub_shutdown(api->watch_hub); /* no suspended stream may outlive the daemon */
    if (api->daemon) {
        kp_api_console_drain(); /* no connection may stay suspended */
        MHD_stop_daemon(api->daemon);
    }
    kp_k8s_watch_hub_free(api->watch_hub);
    free(api->tls_cert);
    free(api->tls_key);
    free(api);
}
