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
#include "http/api.h"

#include "control/kinds.h"
#include "control/secrets.h"
#include "core/buf.h"
#include "core/logging.h"
#include "core/utf8.h"
#include "control/backup_format.h"
#include "core/yamljson.h"
#include "http/api_backup.h"
#include "http/api_reply.h"
#include "http/api_teams.h"
#include "net/listener.h"
#include "storage/fs.h"

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

static int labels_match(json_t *obj, const char *selector)
{
    if (!selector || !*selector) return 1;
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    char *copy = kp_xstrdup(selector), *save = NULL;
    int ok = 1;
    for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            ok = json_object_get(labels, t) != NULL;
            continue;
        }
        *eq = 0;
        const char *v = eq + 1;
        if (*v == '=') v++; /* "==" */
        const char *have = json_string_value(json_object_get(labels, t));
        ok = have && !strcmp(have, v);
    }
    free(copy);
    return ok;
}

static void do_list(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                    const caller_t *who, kp_api_reply_t *out)
{
    const char *ns = r->has_ns ? r->ns : NULL;
    if (r->kind->namespaced && !ns && !who->admin) ns = who->ns; /* all namespaces it sees */
    if (!may_touch(who, r->kind, r->kind->namespaced ? ns : NULL, 0))
        return status_error(out, 403, "Forbidden", "%s is forbidden in namespace \"%s\"",
                            r->kind->plural, ns ? ns : "");
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
    json_array_foreach(items, i, o) if (labels_match(o, req->label_selector))
    {
        if (is_secret(r->kind) && reveal(api, o) < 0) {
            json_decref(items);
            json_decref(kept);
            return status_error(out, 500, "InternalError", "cannot open a sealed secret");
        }
        json_array_append(kept, o);
    }
    json_decref(items);
    char av[64], kind[80], rvs[32];
    kp_kind_api_version(r->kind, av, sizeof(av));
    snprintf(kind, sizeof(kind), "%sList", r->kind->kind);
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    reply(out, 200,
          json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", av, "kind", kind, "metadata",
                    "resourceVersion", rvs, "items", kept),
          NULL);
}

static void not_found(const route_t *r, kp_api_reply_t *out)
{
    status_error(out, 404, "NotFound", "%s \"%s\" not found", r->kind->plural, r->name);
}

static void do_get(kp_api_t *api, const route_t *r, const caller_t *who, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 0))
        return status_error(out, 403, "Forbidden", "%s \"%s\" is forbidden in namespace \"%s\"",
                            r->kind->plural, r->name, r->ns);
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
        json_t *view =
            json_pack("{s:O, s:O, s:O, s:O}", "apiVersion", json_object_get(obj, "apiVersion"),
                      "kind", json_object_get(obj, "kind"), "metadata",
                      json_object_get(obj, "metadata"), "status", s ? s : json_object());
        json_decref(obj);
        obj = view;
    }
    reply(out, 200, obj, NULL);
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

static void do_put(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                   const caller_t *who, int create_only, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 1))
        return status_error(out, 403, "Forbidden", "%s is forbidden in namespace \"%s\"",
                            r->kind->plural, r->ns);
    char err[1024];
    json_t *obj = parse_body(req, err, sizeof(err));
    if (!obj) return status_error(out, 400, "BadRequest", "invalid body: %s", err);
    int code;
    if (check_object(r, obj, err, sizeof(err), &code) < 0) {
        json_decref(obj);
        return status_error(out, (unsigned)code, code == 422 ? "Invalid" : "BadRequest", "%s", err);
    }
    if (check_reserved(r, obj, err, sizeof(err)) < 0) {
        json_decref(obj);
        return status_error(out, 403, "Forbidden", "%s", err);
    }
    json_t *warnings = json_array();
    kp_kind_unknown_fields(r->kind, obj, warnings);
    if (is_secret(r->kind) && conceal(api, obj, err, sizeof(err)) < 0) {
        json_decref(obj);
        json_decref(warnings);
        return status_error(out, 422, "Invalid", "%s", err);
    }
    const char *rvs =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    int64_t expected = rvs && *rvs ? atoll(rvs) : -1;
    json_t *stored = NULL;
    int rc = kp_store_put(api->store, obj, expected, create_only, &stored);
    if (stored && is_secret(r->kind) && reveal(api, stored) < 0) {
        json_decref(stored);
        stored = NULL;
        if (rc == KP_STORE_CREATED || rc == KP_STORE_UPDATED || rc == KP_STORE_UNCHANGED)
            rc = KP_STORE_ERROR;
    }
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
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
        status_error(out, 500, "InternalError", "cannot write the store");
        break;
    }
    json_decref(stored);
    json_decref(obj);
    json_decref(warnings);
}

static void do_put_status(kp_api_t *api, const kp_api_request_t *req, const route_t *r,
                          const caller_t *who, kp_api_reply_t *out)
{
    if (!who->admin)
        return status_error(out, 403, "Forbidden", "only the control plane writes status");
    char err[512];
    json_t *obj = parse_body(req, err, sizeof(err));
    if (!obj) return status_error(out, 400, "BadRequest", "invalid body: %s", err);
    json_t *status = json_object_get(obj, "status");
    json_t *stored = NULL;
    int rc = kp_store_put_status(api->store, r->kind->kind, r->kind->namespaced ? r->ns : "",
                                 r->name, status ? status : json_object(), &stored);
    if (rc == KP_STORE_NOT_FOUND)
        not_found(r, out);
    else if (stored)
        reply(out, 200, json_incref(stored), NULL);
    else
        status_error(out, 500, "InternalError", "store");
    json_decref(stored);
    json_decref(obj);
}

static void do_delete(kp_api_t *api, const route_t *r, const caller_t *who, kp_api_reply_t *out)
{
    if (!may_touch(who, r->kind, r->ns, 1))
        return status_error(out, 403, "Forbidden", "%s \"%s\" is forbidden in namespace \"%s\"",
                            r->kind->plural, r->name, r->ns);
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
    if (!stored) return status_error(out, 500, "InternalError", "cannot write the store");
    reply(out, 200, stored, NULL);
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

void kp_api_answer(kp_api_t *api, const kp_api_request_t *req, kp_api_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    route_t r = {0};
    if (parse_route(req->url, &r) < 0)
        return status_error(out, 404, "NotFound",
                            "the server could not find the requested resource");
    if (r.healthz) return reply(out, 200, json_pack("{s:s}", "status", "ok"), NULL);
    caller_t who = {0, NULL};
    if (authenticate(api, req->authorization, &who) < 0)
        return status_error(out, 401, "Unauthorized",
                            "Unauthorized: a valid bearer token is required");
    const char *m = req->method;
    if (r.teams)
        do_teams(api, req, &r, &who, out);
    else if (!strcmp(m, "GET") && r.has_name)
        do_get(api, &r, &who, out);
    else if (!strcmp(m, "GET"))
        do_list(api, req, &r, &who, out);
    else if (!strcmp(m, "PUT") && r.has_name && r.status)
        do_put_status(api, req, &r, &who, out);
    else if (!strcmp(m, "PUT") && r.has_name)
        do_put(api, req, &r, &who, 0, out);
    else if (!strcmp(m, "POST") && !r.has_name && (r.has_ns || !r.kind->namespaced))
        do_put(api, req, &r, &who, 1, out);
    else if (!strcmp(m, "DELETE") && r.has_name && !r.status)
        do_delete(api, &r, &who, out);
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
            .label_selector =
                MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "labelSelector"),
            .body = st->body.data,
            .len = st->body.len,
        };
        kp_api_answer(api, &req, &out);
    }
    enum MHD_Result rc = kp_api_send(conn, out.code, out.body, out.warnings);
    kp_api_reply_free(&out);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
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
    /* epoll (MHD_USE_AUTO), not select(): the process also runs the pool broker, which keeps
     * one descriptor per partition segment, and select() refuses every connection whose
     * descriptor is >= FD_SETSIZE (1024) */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (!is_loopback(host)) {
        size_t len;
        if (!cfg->cert_path || !cfg->key_path ||
            kp_fs_read_all(cfg->cert_path, 1 << 20, (uint8_t **)&api->tls_cert, &len) < 0 ||
            kp_fs_read_all(cfg->key_path, 1 << 20, (uint8_t **)&api->tls_key, &len) < 0) {
            snprintf(err, errlen,
                     "control.listener %s is not loopback: TLS is required "
                     "(control.ssl.certificate.location and control.ssl.key.location)",
                     cfg->listen);
            kp_api_stop(api);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host[0] ? host : NULL, ps, &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "control.listener: cannot resolve %s", host);
        kp_api_stop(api);
        return NULL;
    }
    if (res->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (api->tls_cert)
        api->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handle, api, MHD_OPTION_SOCK_ADDR, res->ai_addr,
            MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_HTTPS_MEM_CERT, api->tls_cert,
            MHD_OPTION_HTTPS_MEM_KEY, api->tls_key, MHD_OPTION_END);
    else
        api->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handle, api, MHD_OPTION_SOCK_ADDR, res->ai_addr,
            MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    freeaddrinfo(res);
    if (!api->daemon) {
        snprintf(err, errlen, "control.listener: cannot listen on %s (in use?)", cfg->listen);
        kp_api_stop(api);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : port;
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
    if (api->daemon) MHD_stop_daemon(api->daemon);
    free(api->tls_cert);
    free(api->tls_key);
    free(api);
}
