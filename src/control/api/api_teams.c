/* api_teams.c — the teams endpoints (see api_teams.h): Team objects from the store's rows,
 * then one function per operation, then the dispatch on method and path. */
#include "control/api/api_teams.h"

#include "control/kinds.h"
#include "core/logging.h"
#include "core/yamljson.h"
#include "control/api/api_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A Kubernetes Status (Failure) with *code set. */
static json_t *failure(unsigned *code, unsigned status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static json_t *failure(unsigned *code, unsigned status, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    *code = status;
    return kp_api_status(status, reason, msg); /* msg may hold any bytes of a name */
}

static json_t *team_object(const kp_store_team_t *t)
{
    json_t *md = json_pack("{s:s}", "name", t->name);
    if (*t->created) json_object_set_new(md, "creationTimestamp", json_string(t->created));
    json_t *st = json_pack("{s:i, s:i, s:i}", "tokens", t->tokens, "revokedTokens",
                           t->tokens_revoked, "resources", t->resources);
    if (*t->token_created)
        json_object_set_new(st, "tokenCreationTimestamp", json_string(t->token_created));
    if (*t->last_revoked)
        json_object_set_new(st, "lastRevocationTimestamp", json_string(t->last_revoked));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "kpool.dev/v1", "kind", "Team",
                     "metadata", md, "status", st);
}

/* The Team named name as it is now, NULL when the store knows no such team (or failed). */
static json_t *team_load(kp_store_t *store, const char *name)
{
    kp_store_team_t *t;
    int n;
    if (kp_store_teams_list(store, name, &t, &n) < 0) return NULL;
    json_t *obj = n == 1 ? team_object(&t[0]) : NULL;
    kp_store_teams_free(t, n);
    return obj;
}

/* The answer to a write that succeeded: the Team, plus what this call did. */
static json_t *team_changed(kp_store_t *store, const char *name, const char *token, int revoked,
                            unsigned status, unsigned *code)
{
    json_t *obj = team_load(store, name);
    if (!obj)
        return failure(code, 500, "InternalError",
                       "team \"%s\" was changed but cannot be read back from the store", name);
    if (token) json_object_set_new(obj, "token", json_string(token));
    if (revoked >= 0) json_object_set_new(obj, "revoked", json_integer(revoked));
    *code = status;
    return obj;
}

static json_t *do_list(kp_store_t *store, unsigned *code)
{
    kp_store_team_t *t;
    int n;
    if (kp_store_teams_list(store, NULL, &t, &n) < 0)
        return failure(code, 500, "InternalError", "cannot read the store");
    json_t *items = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(items, team_object(&t[i]));
    kp_store_teams_free(t, n);
    *code = 200;
    return json_pack("{s:s, s:s, s:{}, s:o}", "apiVersion", "kpool.dev/v1", "kind", "TeamList",
                     "metadata", "items", items);
}

static json_t *do_get(kp_store_t *store, const char *name, unsigned *code)
{
    json_t *obj = team_load(store, name);
    if (!obj) return failure(code, 404, "NotFound", "teams \"%s\" not found", name);
    *code = 200;
    return obj;
}

/* Copies the team name of a create request ("name", or "metadata.name") into name. NULL, or
 * the Status to answer when the body or the name is not acceptable. */
static json_t *create_name(const kp_api_teams_req_t *req, char *name, size_t namelen,
                           unsigned *code)
{
    char err[512];
    json_t *obj =
        req->len ? kp_yaml_parse_one((const char *)req->body, req->len, err, sizeof(err)) : NULL;
    if (!req->len) snprintf(err, sizeof(err), "request body is empty");
    if (!obj) return failure(code, 400, "BadRequest", "invalid body: %s", err);
    const char *n = json_string_value(json_object_get(obj, "name"));
    if (!n) n = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    char why[256];
    json_t *bad = NULL;
    if (!n || kp_name_check(n, 1, why, sizeof(why)) < 0)
        bad = failure(code, 422, "Invalid", "name: Invalid value \"%s\": %s", n ? n : "",
                      n ? why : "required");
    else
        snprintf(name, namelen, "%s", n); /* a DNS label: at most 63 characters */
    json_decref(obj);
    return bad;
}

/* A token write the store refused: 507 while its disk is full (as the other API writes),
 * else 500. */
static json_t *store_failure(kp_store_t *store, unsigned *code, const char *what)
{
    if (kp_store_disk_full(store))
        return failure(code, 507, "InsufficientStorage",
                       "disk full: the control plane cannot %s until space is freed; retry then",
                       what);
    return failure(code, 500, "InternalError", "cannot %s", what);
}

static json_t *do_create(kp_store_t *store, const kp_api_teams_req_t *req, unsigned *code)
{
    char name[64];
    json_t *bad = create_name(req, name, sizeof(name), code);
    if (bad) return bad;
    char token[65];
    switch (kp_store_team_token_create(store, name, token)) {
    case KP_STORE_CREATED:
        kp_info("api", "team %s: token issued", name);
        return team_changed(store, name, token, -1, 201, code);
    case KP_STORE_EXISTS:
        return failure(code, 409, "AlreadyExists",
                       "team \"%s\" already has a token; to replace it, run 'kpool team rotate "
                       "%s' (POST /apis/kpool.dev/v1/teams/%s/rotate)",
                       name, name, name);
    default:
        return store_failure(store, code, "create a token");
    }
}

static json_t *do_rotate(kp_store_t *store, const char *name, unsigned *code)
{
    char token[65];
    int revoked = 0;
    switch (kp_store_team_token_rotate(store, name, token, &revoked)) {
    case KP_STORE_UPDATED:
        kp_info("api", "team %s: token rotated (%d revoked)", name, revoked);
        return team_changed(store, name, token, revoked, 200, code);
    case KP_STORE_NOT_FOUND:
        return failure(code, 404, "NotFound",
                       "team \"%s\" has no valid token to rotate; 'kpool team create %s' issues "
                       "one",
                       name, name);
    default:
        return store_failure(store, code, "rotate the token");
    }
}

static json_t *do_revoke(kp_store_t *store, const char *name, unsigned *code)
{
    int revoked = 0;
    switch (kp_store_team_tokens_revoke(store, name, &revoked)) {
    case KP_STORE_UPDATED:
        kp_info("api", "team %s: %d token(s) revoked", name, revoked);
        return team_changed(store, name, NULL, revoked, 200, code);
    case KP_STORE_NOT_FOUND:
        return failure(code, 404, "NotFound", "team \"%s\" has no valid token to revoke", name);
    default:
        return store_failure(store, code, "revoke the tokens");
    }
}

json_t *kp_api_teams_answer(kp_store_t *store, const kp_api_teams_req_t *req, unsigned *code)
{
    const char *m = req->method;
    if (!req->admin) return failure(code, 403, "Forbidden", "only an admin token manages teams");
    if (!req->name) {
        if (!strcmp(m, "GET")) return do_list(store, code);
        if (!strcmp(m, "POST")) return do_create(store, req, code);
        return failure(code, 405, "MethodNotAllowed",
                       "%s is not supported on teams (GET lists, POST creates)", m);
    }
    if (req->rotate) {
        if (!strcmp(m, "POST")) return do_rotate(store, req->name, code);
        return failure(code, 405, "MethodNotAllowed", "use POST to rotate a team's token");
    }
    if (!strcmp(m, "GET")) return do_get(store, req->name, code);
    if (!strcmp(m, "DELETE")) return do_revoke(store, req->name, code);
    return failure(code, 405, "MethodNotAllowed",
                   "%s is not supported on a team (GET shows it, DELETE revokes its tokens; "
                   "POST .../rotate replaces them)",
                   m);
}
