/*
 * registry_http.c — the Confluent Schema Registry REST API (docs/registry.md) over
 * libmicrohttpd: body collection (bounded), authentication, routing by path segments, one
 * handler per endpoint, Confluent's error bodies {"error_code":N,"message":"..."}.
 *
 * Paths arrive percent-encoded (our unescape callback leaves them so) and each segment is
 * decoded after splitting, so a subject may contain '/' encoded as %2F, as Confluent's
 * clients send it.
 *
 * Reads take the state's read lock; writes go through write(): plan under the read lock,
 * produce, wait until the consumer applied the records, answer — one writer at a time.
 */
#include "registry/registry_int.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
/* Path segments we route on: the longest path has 6 (/subjects/s/versions/v/schema...). */
#define SEGMENTS_MAX 8

typedef struct req_state {
    kp_buf_t body;
    int too_large;
} req_state_t;

typedef struct req {
    kp_registry_t *r;
    struct MHD_Connection *conn;
    const char *method;
    char *seg[SEGMENTS_MAX];
    int nseg;
    kp_buf_t *body;
    kp_reg_caller_t who;
} req_t;

/* ---- responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type,
                                 char *text /* taken */, int auth_challenge)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", type);
    if (auth_challenge)
        MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"kpool schema registry\"");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_json(req_t *q, unsigned status, json_t *body /* taken */)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(body);
    return send_text(q->conn, status, CONTENT_TYPE, text ? text : kp_xstrdup("{}"), 0);
}

static enum MHD_Result send_error_conn(struct MHD_Connection *conn, int http, int code,
                                       const char *msg)
{
    json_t *b = json_pack("{s:i, s:s}", "error_code", code, "message", msg);
    char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(b);
    return send_text(conn, (unsigned)http, CONTENT_TYPE, text, http == 401);
}

static enum MHD_Result fail(req_t *q, int http, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(req_t *q, int http, int code, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_error_conn(q->conn, http, code, msg);
}

static enum MHD_Result fail_e(req_t *q, const kp_reg_error_t *e)
{
    return send_error_conn(q->conn, e->http, e->code, e->message);
}

/* ---- request helpers ---- */

static int query_true(req_t *q, const char *name)
{
    const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && !strcasecmp(v, "true");
}

/* "latest", -1 or 1..2^31-1. 0, or -1 when invalid. */
static int parse_version(const char *s, int *out)
{
    if (!strcmp(s, "latest") || !strcmp(s, "-1")) {
        *out = -1;
        return 0;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 1 || v > INT32_MAX || s[0] == '+' || s[0] == ' ') return -1;
    *out = (int)v;
    return 0;
}

static enum MHD_Result bad_version(req_t *q, const char *s)
{
    return fail(q, 422, 42202,
                "The specified version '%s' is not a valid version id. Allowed values are between "
                "[1, 2^31-1] and the string \"latest\"",
                s);
}

static int valid_subject(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KP_REG_SUBJECT_LEN_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

/* The request body as a JSON object, or NULL after answering 422/400. */
static json_t *body_object(req_t *q, enum MHD_Result *rc)
{
    json_error_t je;
    json_t *j = q->body->len ? json_loadb((const char *)q->body->data, q->body->len, 0, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        *rc = fail(q, 422, 422, "Unprocessable entity: the body must be a JSON object%s%s",
                   q->body->len ? ": " : "", q->body->len ? je.text : "");
        return NULL;
    }
    return j;
}

/* Parses {"schema","schemaType","references"} into a candidate; answers on failure. */
static int body_candidate(req_t *q, kp_reg_candidate_t *c, enum MHD_Result *rc)
{
    json_t *b = body_object(q, rc);
    if (!b) return -1;
    json_t *schema = json_object_get(b, "schema");
    json_t *type = json_object_get(b, "schemaType");
    if (!json_is_string(schema)) {
        *rc = fail(q, 422, 42201, "Invalid schema: \"schema\" must be a string holding the schema");
        json_decref(b);
        return -1;
    }
    if (type && !json_is_string(type) && !json_is_null(type)) {
        *rc = fail(q, 422, 42201, "Invalid schema: \"schemaType\" must be AVRO, JSON or PROTOBUF");
        json_decref(b);
        return -1;
    }
    kp_reg_error_t e;
    pthread_rwlock_rdlock(&q->r->lock);
    int ok =
        kp_reg_candidate_parse(&q->r->state, json_string_value(type), json_string_value(schema),
                               json_string_length(schema), json_object_get(b, "references"), c, &e);
    pthread_rwlock_unlock(&q->r->lock);
    json_decref(b);
    if (ok < 0) {
        *rc = fail_e(q, &e);
        return -1;
    }
    return 0;
}

/* The standard version body: subject, version, id, schema (+ schemaType, references). */
static json_t *version_json(const kp_reg_state_t *st, const char *subject,
                            const kp_reg_version_t *v)
{
    const kp_reg_schema_t *sc = kp_reg_schema_by_id(st, v->id);
    json_t *o =
        json_pack("{s:s, s:i, s:i}", "subject", subject, "version", v->version, "id", v->id);
    if (sc && strcmp(sc->type, "AVRO")) json_object_set_new(o, "schemaType", json_string(sc->type));
    if (sc && json_array_size(sc->references))
        json_object_set_new(o, "references", json_deep_copy(sc->references));
    json_object_set_new(o, "schema", json_string(sc ? sc->text : ""));
    return o;
}

/* Failing _schemas writes (the pool's disk full, the pool down) fail every registration a
 * client retries: logged once, then once a minute with a count, then when writes succeed. */
static kp_log_limit_t commit_failed_log = KP_LOG_LIMIT_INIT(KP_LOG_LIMIT_INTERVAL_MS_DEFAULT);

/* Produces a planned batch and waits for it to be applied. 0, or -1 after answering 500. */
static int commit(req_t *q, kp_reg_batch_t *b, enum MHD_Result *rc)
{
    char err[512];
    if (kp_reg_log_write(q->r->log, b, err, sizeof(err)) == 0) {
        kp_log_limit_clear(&commit_failed_log, kp_mono_ms(), KP_LOG_INFO, "registry",
                           "writes to the schemas topic succeed again");
        return 0;
    }
    kp_log_limit_hit(&commit_failed_log, kp_mono_ms(), KP_LOG_ERROR, "registry",
                     "store write failed: %s", err);
    *rc = fail(q, 500, 50001, "Error in the backend data store: %s", err);
    return -1;
}

/* ---- subjects ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static enum MHD_Result get_subjects(req_t *q)
{
    int deleted = query_true(q, "deleted");
    kp_registry_t *r = q->r;
    pthread_rwlock_rdlock(&r->lock);
    size_t n = kp_hmap_count(&r->state.subjects), k = 0, it = 0;
    const char **names = kp_xcalloc(n + 1, sizeof(char *));
    const char *key;
    size_t kl;
    void *v;
    while (kp_hmap_next(&r->state.subjects, &it, &key, &kl, &v)) {
        kp_reg_subject_t *s = v;
        if (s->nversions && (deleted || kp_reg_subject_live(s))) names[k++] = s->name;
    }
    qsort(names, k, sizeof(char *), cmp_str);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++) json_array_append_new(out, json_string(names[i]));
    pthread_rwlock_unlock(&r->lock);
    free(names);
    return send_json(q, 200, out);
}

static enum MHD_Result get_versions(req_t *q, const char *subject)
{
    int deleted = query_true(q, "deleted");
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_subject_t *s = kp_reg_subject(&q->r->state, subject);
    json_t *out = json_array();
    for (int i = 0; s && i < s->nversions; i++)
        if (deleted || !s->versions[i].deleted)
            json_array_append_new(out, json_integer(s->versions[i].version));
    pthread_rwlock_unlock(&q->r->lock);
    if (!json_array_size(out)) {
        json_decref(out);
        return fail(q, 404, 40401, "Subject '%s' not found.", subject);
    }
    return send_json(q, 200, out);
}

static enum MHD_Result get_version(req_t *q, const char *subject, const char *vs, int raw)
{
    int v;
    if (parse_version(vs, &v) < 0) return bad_version(q, vs);
    int deleted = query_true(q, "deleted");
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_subject_t *s = kp_reg_subject(&q->r->state, subject);
    if (!s || !(deleted ? s->nversions : kp_reg_subject_live(s))) {
        pthread_rwlock_unlock(&q->r->lock);
        return fail(q, 404, 40401, "Subject '%s' not found.", subject);
    }
    const kp_reg_version_t *ver = kp_reg_version_find(s, v, deleted);
    if (!ver) {
        pthread_rwlock_unlock(&q->r->lock);
        return fail(q, 404, 40402, "Version %s not found.", vs);
    }
    if (raw) {
        const kp_reg_schema_t *sc = kp_reg_schema_by_id(&q->r->state, ver->id);
        char *text = kp_xstrdup(sc ? sc->text : "");
        pthread_rwlock_unlock(&q->r->lock);
        return send_text(q->conn, 200, CONTENT_TYPE, text, 0);
    }
    json_t *out = version_json(&q->r->state, subject, ver);
    pthread_rwlock_unlock(&q->r->lock);
    return send_json(q, 200, out);
}

static enum MHD_Result post_register(req_t *q, const char *subject)
{
    enum MHD_Result rc;
    if (!valid_subject(subject)) return fail(q, 422, 42208, "Invalid subject name");
    kp_reg_candidate_t c;
    if (body_candidate(q, &c, &rc) < 0) return rc;
    kp_registry_t *r = q->r;
    kp_reg_batch_t b = {0};
    kp_reg_error_t e;
    int id = 0, version = 0;
    pthread_mutex_lock(&r->write_mu);
    pthread_rwlock_rdlock(&r->lock);
    int ok = kp_reg_plan_register(&r->state, subject, &c, &b, &id, &version, &e);
    pthread_rwlock_unlock(&r->lock);
    if (ok < 0)
        rc = fail_e(q, &e);
    else if (commit(q, &b, &rc) == 0)
        rc = send_json(q, 200, json_pack("{s:i}", "id", id));
    pthread_mutex_unlock(&r->write_mu);
    if (ok == 0 && version)
        kp_info("registry", "%s registered %s version %d (id %d)", q->who.user, subject, version,
                id);
    kp_reg_batch_free(&b);
    kp_reg_candidate_free(&c);
    return rc;
}

static enum MHD_Result post_lookup(req_t *q, const char *subject)
{
    enum MHD_Result rc;
    int deleted = query_true(q, "deleted");
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_subject_t *s0 = kp_reg_subject(&q->r->state, subject);
    int exists = s0 && (deleted ? s0->nversions : kp_reg_subject_live(s0));
    pthread_rwlock_unlock(&q->r->lock);
    if (!exists) return fail(q, 404, 40401, "Subject '%s' not found.", subject);
    kp_reg_candidate_t c;
    if (body_candidate(q, &c, &rc) < 0) return rc;
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_subject_t *s = kp_reg_subject(&q->r->state, subject);
    const kp_reg_version_t *v = kp_reg_candidate_in_subject(&q->r->state, s, &c, deleted);
    json_t *out = v ? version_json(&q->r->state, subject, v) : NULL;
    pthread_rwlock_unlock(&q->r->lock);
    kp_reg_candidate_free(&c);
    if (!out) return fail(q, 404, 40403, "Schema not found");
    return send_json(q, 200, out);
}

static enum MHD_Result delete_subject(req_t *q, const char *subject)
{
    kp_registry_t *r = q->r;
    kp_reg_batch_t b = {0};
    kp_reg_error_t e;
    json_t *deleted = NULL;
    enum MHD_Result rc;
    pthread_mutex_lock(&r->write_mu);
    pthread_rwlock_rdlock(&r->lock);
    int ok = kp_reg_plan_delete_subject(&r->state, subject, query_true(q, "permanent"), &b,
                                        &deleted, &e);
    pthread_rwlock_unlock(&r->lock);
    if (ok < 0)
        rc = fail_e(q, &e);
    else if (commit(q, &b, &rc) == 0) {
        kp_info("registry", "%s deleted subject %s%s", q->who.user, subject,
                query_true(q, "permanent") ? " permanently" : "");
        rc = send_json(q, 200, json_incref(deleted));
    }
    pthread_mutex_unlock(&r->write_mu);
    json_decref(deleted);
    kp_reg_batch_free(&b);
    return rc;
}

static enum MHD_Result delete_version(req_t *q, const char *subject, const char *vs)
{
    int v;
    if (parse_version(vs, &v) < 0) return bad_version(q, vs);
    kp_registry_t *r = q->r;
    kp_reg_batch_t b = {0};
    kp_reg_error_t e;
    int deleted = 0;
    enum MHD_Result rc;
    pthread_mutex_lock(&r->write_mu);
    pthread_rwlock_rdlock(&r->lock);
    int ok = kp_reg_plan_delete_version(&r->state, subject, v, query_true(q, "permanent"), &b,
                                        &deleted, &e);
    pthread_rwlock_unlock(&r->lock);
    if (ok < 0)
        rc = fail_e(q, &e);
    else if (commit(q, &b, &rc) == 0)
        rc = send_json(q, 200, json_integer(deleted));
    pthread_mutex_unlock(&r->write_mu);
    kp_reg_batch_free(&b);
    return rc;
}

/* ---- schemas by id ---- */

static enum MHD_Result get_schema_id(req_t *q, const char *ids, const char *what)
{
    char *end;
    long long id = strtoll(ids, &end, 10);
    if (!*ids || *end || id < 1 || id > INT32_MAX)
        return fail(q, 404, 40403, "Schema %s not found", ids);
    int deleted = query_true(q, "deleted");
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_schema_t *sc = kp_reg_schema_by_id(&q->r->state, (int)id);
    json_t *out = NULL;
    char *raw = NULL;
    if (sc && !what) {
        out = json_object();
        if (strcmp(sc->type, "AVRO")) json_object_set_new(out, "schemaType", json_string(sc->type));
        json_object_set_new(out, "schema", json_string(sc->text));
        if (json_array_size(sc->references))
            json_object_set_new(out, "references", json_deep_copy(sc->references));
    } else if (sc && !strcmp(what, "schema")) {
        raw = kp_xstrdup(sc->text);
    } else if (sc) { /* versions or subjects */
        int subjects = !strcmp(what, "subjects");
        out = json_array();
        size_t it = 0, kl;
        const char *k;
        void *v;
        const kp_reg_state_t *st = &q->r->state;
        while (kp_hmap_next(&st->subjects, &it, &k, &kl, &v)) {
            const kp_reg_subject_t *s = v;
            for (int i = 0; i < s->nversions; i++) {
                if (s->versions[i].id != sc->id || (s->versions[i].deleted && !deleted)) continue;
                json_array_append_new(out, subjects ? json_string(s->name)
                                                    : json_pack("{s:s, s:i}", "subject", s->name,
                                                                "version", s->versions[i].version));
                if (subjects) break;
            }
        }
    }
    pthread_rwlock_unlock(&q->r->lock);
    if (raw) return send_text(q->conn, 200, CONTENT_TYPE, raw, 0);
    if (!out) return fail(q, 404, 40403, "Schema %lld not found", id);
    return send_json(q, 200, out);
}

/* ---- compatibility ---- */

static enum MHD_Result post_compatibility(req_t *q, const char *subject, const char *vs)
{
    int v = 0;
    if (vs && parse_version(vs, &v) < 0) return bad_version(q, vs);
    enum MHD_Result rc;
    kp_reg_candidate_t c;
    if (body_candidate(q, &c, &rc) < 0) return rc;
    json_t *msgs = json_array();
    pthread_rwlock_rdlock(&q->r->lock);
    const kp_reg_state_t *st = &q->r->state;
    const kp_reg_subject_t *s = kp_reg_subject(st, subject);
    const kp_reg_version_t *ver = vs ? kp_reg_version_find(s, v, 0) : NULL;
    int code = 0, ok = 0;
    if (vs && !kp_reg_subject_live(s))
        code = 40401;
    else if (vs && !ver)
        code = 40402;
    else
        ok = kp_reg_compatible(st, s, kp_reg_level(st, s), &c, ver ? ver->version : 0, msgs);
    pthread_rwlock_unlock(&q->r->lock);
    kp_reg_candidate_free(&c);
    if (code) {
        json_decref(msgs);
        return code == 40401 ? fail(q, 404, 40401, "Subject '%s' not found.", subject)
                             : fail(q, 404, 40402, "Version %s not found.", vs);
    }
    json_t *out = json_pack("{s:b}", "is_compatible", ok);
    if (query_true(q, "verbose"))
        json_object_set_new(out, "messages", msgs);
    else
        json_decref(msgs);
    return send_json(q, 200, out);
}

/* ---- config ---- */

static enum MHD_Result config(req_t *q, const char *subject)
{
    kp_registry_t *r = q->r;
    if (!strcmp(q->method, "GET")) {
        pthread_rwlock_rdlock(&r->lock);
        const kp_reg_subject_t *s = subject ? kp_reg_subject(&r->state, subject) : NULL;
        kp_compat_t level = subject ? (s ? s->compat : KP_COMPAT_UNSET) : r->state.global;
        if (subject && level == KP_COMPAT_UNSET && query_true(q, "defaultToGlobal"))
            level = r->state.global;
        else if (subject && level == KP_COMPAT_UNSET)
            level = -2;
        pthread_rwlock_unlock(&r->lock);
        if (level == -2)
            return fail(q, 404, 40408,
                        "Subject '%s' does not have subject-level compatibility configured",
                        subject);
        return send_json(q, 200, json_pack("{s:s}", "compatibilityLevel", kp_compat_name(level)));
    }
    if (!subject && !q->who.admin)
        return fail(q, 403, 40301, "User %s may not change the global compatibility level",
                    q->who.user);
    if (subject && !valid_subject(subject)) return fail(q, 422, 42208, "Invalid subject name");
    enum MHD_Result rc;
    kp_compat_t level = KP_COMPAT_UNSET, before;
    if (!strcmp(q->method, "PUT")) {
        json_t *b = body_object(q, &rc);
        if (!b) return rc;
        char up[64] = "";
        const char *given = json_string_value(json_object_get(b, "compatibility"));
        for (size_t i = 0; given && given[i] && i < sizeof(up) - 1; i++)
            up[i] = (char)toupper((unsigned char)given[i]);
        json_decref(b);
        if (kp_compat_parse(up, &level) < 0)
            return fail(
                q, 422, 42203,
                "Invalid compatibility level. Valid values are none, backward, "
                "forward, full, backward_transitive, forward_transitive, and full_transitive");
    } else if (strcmp(q->method, "DELETE")) {
        return fail(q, 405, 405, "HTTP 405 Method Not Allowed");
    }
    pthread_mutex_lock(&r->write_mu);
    pthread_rwlock_rdlock(&r->lock);
    const kp_reg_subject_t *s = subject ? kp_reg_subject(&r->state, subject) : NULL;
    before = subject ? (s ? s->compat : KP_COMPAT_UNSET) : r->state.global;
    int missing = subject && !s && level == KP_COMPAT_UNSET;
    kp_compat_t global = r->state.global;
    pthread_rwlock_unlock(&r->lock);
    kp_reg_batch_t b = {0};
    if (missing) {
        rc = fail(q, 404, 40401, "Subject '%s' not found.", subject);
    } else {
        kp_reg_plan_config(subject, level, &b);
        if (commit(q, &b, &rc) == 0) {
            kp_info("registry", "%s set the compatibility of %s to %s", q->who.user,
                    subject ? subject : "(global)",
                    level == KP_COMPAT_UNSET ? "(default)" : kp_compat_name(level));
            if (level != KP_COMPAT_UNSET)
                rc = send_json(q, 200, json_pack("{s:s}", "compatibility", kp_compat_name(level)));
            else
                rc = send_json(
                    q, 200,
                    json_pack("{s:s}", "compatibilityLevel",
                              kp_compat_name(before != KP_COMPAT_UNSET ? before : global)));
        }
    }
    pthread_mutex_unlock(&r->write_mu);
    kp_reg_batch_free(&b);
    return rc;
}

/* ---- routing ---- */

static enum MHD_Result route(req_t *q)
{
    const char *m = q->method;
    char **s = q->seg;
    int n = q->nseg, get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), del = !strcmp(m, "DELETE");
    if (n == 0)
        return get ? send_json(q, 200, json_object())
                   : fail(q, 405, 405, "HTTP 405 Method Not Allowed");
    if (!strcmp(s[0], "subjects")) {
        if (n == 1 && get) return get_subjects(q);
        if (n == 2 && post) return post_lookup(q, s[1]);
        if (n == 2 && del) return delete_subject(q, s[1]);
        if (n == 3 && !strcmp(s[2], "versions") && get) return get_versions(q, s[1]);
        if (n == 3 && !strcmp(s[2], "versions") && post) return post_register(q, s[1]);
        if (n == 4 && !strcmp(s[2], "versions") && get) return get_version(q, s[1], s[3], 0);
        if (n == 4 && !strcmp(s[2], "versions") && del) return delete_version(q, s[1], s[3]);
        if (n == 5 && !strcmp(s[2], "versions") && !strcmp(s[4], "schema") && get)
            return get_version(q, s[1], s[3], 1);
    } else if (!strcmp(s[0], "schemas")) {
        if (n == 2 && !strcmp(s[1], "types") && get)
            return send_json(q, 200, json_pack("[s,s,s]", "JSON", "PROTOBUF", "AVRO"));
        if (n >= 3 && n <= 4 && !strcmp(s[1], "ids") && get &&
            (n == 3 || !strcmp(s[3], "versions") || !strcmp(s[3], "subjects") ||
             !strcmp(s[3], "schema")))
            return get_schema_id(q, s[2], n == 4 ? s[3] : NULL);
    } else if (!strcmp(s[0], "compatibility")) {
        if (n >= 4 && n <= 5 && !strcmp(s[1], "subjects") && !strcmp(s[3], "versions") && post)
            return post_compatibility(q, s[2], n == 5 ? s[4] : NULL);
    } else if (!strcmp(s[0], "config")) {
        if (n <= 2) return config(q, n == 2 ? s[1] : NULL);
    } else if (!strcmp(s[0], "mode")) {
        if (n <= 2 && get) return send_json(q, 200, json_pack("{s:s}", "mode", "READWRITE"));
    }
    return fail(q, 404, 404, "HTTP 404 Not Found");
}

/* Splits the (still percent-encoded) path into decoded segments; -1 when too many. */
static int split(char *path, req_t *q)
{
    q->nseg = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (q->nseg == SEGMENTS_MAX) return -1;
        MHD_http_unescape(t);
        q->seg[q->nseg++] = t;
    }
    return 0;
}

enum MHD_Result kp_registry_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version, const char *upload,
                                        size_t *upload_len, void **state)
{
    kp_registry_t *r = cls;
    req_state_t *st = *state;
    if (!st) {
        st = kp_xcalloc(1, sizeof(*st));
        kp_buf_init(&st->body);
        *state = st;
        return MHD_YES;
    }
    if (*upload_len) {
        if (st->too_large || st->body.len + *upload_len > KP_REG_BODY_BYTES_MAX)
            st->too_large = 1;
        else
            kp_buf_append(&st->body, upload, *upload_len);
        *upload_len = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/readyz") && !strcmp(method, "GET")) /* unauthenticated, for probes */
        return kp_registry_ready(r)
                   ? send_text(conn, 200, "text/plain", kp_xstrdup("ready\n"), 0)
                   : send_text(conn, 503, "text/plain", kp_xstrdup("not ready\n"), 0);
    req_t q = {.r = r, .conn = conn, .method = method, .body = &st->body};
    if (kp_registry_authenticate(
            r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), &q.who) < 0)
        return send_error_conn(conn, 401, 40101, "Unauthorized");
    if (st->too_large)
        return fail(&q, 413, 413, "Request body larger than %d bytes", KP_REG_BODY_BYTES_MAX);
    if (!kp_registry_ready(r))
        return fail(&q, 503, 50003,
                    "The schema registry is still reading its store (_schemas); retry shortly");
    size_t ulen = strlen(url);
    if (ulen > 8 * KP_REG_SUBJECT_LEN_MAX) return fail(&q, 414, 414, "URI too long");
    char *path = kp_xstrndup(url, ulen);
    enum MHD_Result rc = split(path, &q) < 0 ? fail(&q, 404, 404, "HTTP 404 Not Found") : route(&q);
    free(path);
    return rc;
}

void kp_registry_http_completed(void *cls, struct MHD_Connection *conn, void **state,
                                enum MHD_RequestTerminationCode toe)
{
    req_state_t *st = *state;
    if (!st) return;
    kp_buf_free(&st->body);
    free(st);
    *state = NULL;
}
