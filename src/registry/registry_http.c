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
 *
 * Replies are built into a kp_reg_reply_t (kp_registry_http_serve) and queued by the MHD
 * handler, so the fuzz target and unit tests drive the whole request -> reply path without
 * sockets. Every text that goes into a reply or a log line and came from the client is
 * either a validated subject name (UTF-8, no control characters, <= 1024 bytes) or goes
 * through reply_text_clean() (invalid UTF-8 replaced), so building a reply cannot fail.
 *
 * Tenancy (docs/registry.md "Authorization"): reads are open to every authenticated user
 * of the pool; changing a subject (register, delete, its level; a mode change) is for the
 * admin and for service users of the team whose prefix ("<team>.") the subject starts
 * with — the prefix of every topic the team owns.
 */
#include "registry/registry_int.h"

#include "core/utf8.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "net/http_server.h"

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
    int64_t start_us; /* the request's first callback: kpool_registry_request_seconds */
} req_state_t;

/* HTTP statuses counted one by one (100..599); anything else (none is sent today) is
 * counted as "other". The label set is so bounded by the statuses the registry sends. */
#define STATUS_MIN 100
#define STATUS_MAX 599
static atomic_llong requests_by_status[STATUS_MAX - STATUS_MIN + 2];
static kp_hist_t request_seconds;

static void count_request(unsigned status, int64_t start_us)
{
    size_t i = status >= STATUS_MIN && status <= STATUS_MAX ? status - STATUS_MIN
                                                            : STATUS_MAX - STATUS_MIN + 1;
    kp_metric_add(&requests_by_status[i], 1);
    kp_hist_observe_us(&request_seconds, kp_mono_us() - start_us);
}

void kp_registry_metrics_render(kp_buf_t *out, void *arg)
{
    (void)arg;
    kp_buf_appendf(out, "# HELP kpool_registry_requests_total Schema registry requests "
                        "answered, by HTTP status.\n"
                        "# TYPE kpool_registry_requests_total counter\n");
    for (size_t i = 0; i < sizeof(requests_by_status) / sizeof(*requests_by_status); i++) {
        long long n = atomic_load(&requests_by_status[i]);
        if (!n) continue;
        if (i <= STATUS_MAX - STATUS_MIN)
            kp_buf_appendf(out, "kpool_registry_requests_total{code=\"%zu\"} %lld\n",
                           i + STATUS_MIN, n);
        else
            kp_buf_appendf(out, "kpool_registry_requests_total{code=\"other\"} %lld\n", n);
    }
    kp_buf_appendf(out, "# HELP kpool_registry_request_seconds Time from a schema registry "
                        "request's arrival to its answer.\n"
                        "# TYPE kpool_registry_request_seconds histogram\n");
    kp_metrics_render_hist(out, "kpool_registry_request_seconds", "", &request_seconds);
}

/* Bytes of a client-given text (a version, an id) quoted in an error message. */
#define ECHO_BYTES_MAX 128
/* How long a read that found nothing waits for `_schemas` records written meanwhile by
 * someone else (a restore) before it answers 404 (see serve()). */
#define CATCH_UP_MS 2000

typedef struct req {
    kp_registry_t *r;
    struct MHD_Connection *conn; /* NULL when served without HTTP */
    const char *query;           /* the query string when conn is NULL */
    const char *method;
    char *seg[SEGMENTS_MAX];
    size_t seglen[SEGMENTS_MAX]; /* decoded length: more than strlen when it holds a NUL */
    int nseg;
    const kp_buf_t *body;
    kp_reg_caller_t who;
    kp_reg_reply_t *out;
} req_t;

/* ---- text ---- */

/* A copy of s that is valid UTF-8 (each byte that is not replaced by U+FFFD), at most
 * max_bytes of the original (cut on a character boundary, "..." appended). */
static char *reply_text_clean(const char *s, size_t max_bytes)
{
    size_t n = strlen(s), cut = 0;
    while (cut < n && cut < max_bytes) { /* the last character boundary within max_bytes */
        size_t k = kp_utf8_char_len((const unsigned char *)s + cut, n - cut);
        cut += k ? k : 1;
    }
    char *head = kp_xstrndup(s, cut);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_utf8_lossy(head, &b);
    free(head);
    if (cut < n) kp_buf_append(&b, "...", 3);
    kp_buf_append(&b, "", 1);
    return (char *)b.data;
}

/* ---- responses ---- */

static enum MHD_Result send_text(req_t *q, unsigned status, const char *type,
                                 char *text /* taken */, int auth_challenge)
{
    free(q->out->body);
    *q->out = (kp_reg_reply_t){status, text, type, auth_challenge, 0};
    return MHD_YES;
}

static enum MHD_Result send_json(req_t *q, unsigned status, json_t *body /* taken */)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) { /* a bug, not input: every text put in a reply is valid UTF-8 */
        kp_error("registry", "cannot encode a reply of status %u", status);
        return send_text(q, 500, CONTENT_TYPE,
                         kp_xstrdup("{\"error_code\":50001,\"message\":\"Internal error\"}"), 0);
    }
    return send_text(q, status, CONTENT_TYPE, text, 0);
}

static enum MHD_Result send_error(req_t *q, int http, int code, const char *msg)
{
    char *clean = reply_text_clean(msg, SIZE_MAX);
    enum MHD_Result rc =
        send_json(q, (unsigned)http, json_pack("{s:i, s:s}", "error_code", code, "message", clean));
    free(clean);
    if (http == 401) q->out->auth_challenge = 1;
    q->out->error_code = code;
    return rc;
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
    return send_error(q, http, code, msg);
}

static enum MHD_Result fail_e(req_t *q, const kp_reg_error_t *e)
{
    return send_error(q, e->http, e->code, e->message);
}

/* ---- request helpers ---- */

static int query_true(req_t *q, const char *name)
{
    if (q->conn) {
        const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
        return v && !strcasecmp(v, "true");
    }
    size_t n = strlen(name);
    for (const char *p = q->query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len == n + 5 && !strncmp(p, name, n) && !strncasecmp(p + n, "=true", 5)) return 1;
        p = amp ? amp + 1 : NULL;
    }
    return 0;
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
    char *echo = reply_text_clean(s, ECHO_BYTES_MAX);
    enum MHD_Result rc =
        fail(q, 422, 42202,
             "The specified version '%s' is not a valid version id. Allowed values are between "
             "[1, 2^31-1] and the string \"latest\"",
             echo);
    free(echo);
    return rc;
}

/*
 * Why path segment i cannot be a subject name, or NULL when it can: 1..1024 bytes of UTF-8
 * without control characters (so no subject can hold a NUL, and every reply or log line
 * quoting one is valid text). Such names can never be in `_schemas` (its records are JSON),
 * so every endpoint refuses them with 42208 instead of looking them up.
 */
static const char *subject_invalid(const req_t *q, int i)
{
    const char *s = q->seg[i];
    size_t n = q->seglen[i];
    if (n == 0) return "it is empty";
    if (n > KP_REG_SUBJECT_LEN_MAX) return "it is longer than 1024 bytes";
    if (strlen(s) != n) return "it holds a NUL byte (%00)";
    for (size_t k = 0; k < n;) {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x20 || c == 0x7f) return "it holds a control character";
        size_t len = kp_utf8_char_len((const unsigned char *)s + k, n - k);
        if (!len) return "it is not valid UTF-8";
        k += len;
    }
    return NULL;
}

static enum MHD_Result bad_subject(req_t *q, const char *why)
{
    return fail(q, 422, 42208,
                "Invalid subject name: %s (a subject is 1 to %d bytes of UTF-8 without "
                "control characters)",
                why, KP_REG_SUBJECT_LEN_MAX);
}

/*
 * May the caller change this subject (register, delete, set or reset its level)? The admin
 * may change any; a service user only subjects under its team's prefix "<team>." — the
 * prefix of every topic its team owns (TopicNameStrategy "<team>.<topic>-key|-value",
 * TopicRecordNameStrategy "<team>.<topic>-<record>", RecordNameStrategy with records in
 * namespace "<team>." or below). 1, or 0 after answering 403.
 */
static int may_write(req_t *q, const char *subject, enum MHD_Result *rc)
{
    if (q->who.admin) return 1;
    size_t tl = strlen(q->who.team);
    if (tl && !strncmp(subject, q->who.team, tl) && subject[tl] == '.' && subject[tl + 1]) return 1;
    *rc = fail(q, 403, 40301,
               "User %s of team %s may not change subject '%s': a team changes only the "
               "subjects of its own topics, named '%s.<topic>-key', '%s.<topic>-value' or "
               "otherwise starting with '%s.' (the pool admin may change any)",
               q->who.user, tl ? q->who.team : "(none)", subject, q->who.team, q->who.team,
               q->who.team);
    return 0;
}

/* The request body as a JSON object, or NULL after answering 422/400. */
static json_t *body_object(req_t *q, enum MHD_Result *rc)
{
    json_error_t je = {.text = ""};
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
    if (!q->r->log) { /* offline (tests, fuzzing): the records are applied at once */
        pthread_rwlock_wrlock(&q->r->lock);
        for (int i = 0; i < b->n; i++) {
            const kp_reg_record_t *rec = &b->records[i];
            kp_reg_apply(&q->r->state, rec->key, strlen(rec->key), rec->value,
                         rec->value ? strlen(rec->value) : 0, err, sizeof(err));
        }
        pthread_rwlock_unlock(&q->r->lock);
        return 0;
    }
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
        return send_text(q, 200, CONTENT_TYPE, text, 0);
    }
    json_t *out = version_json(&q->r->state, subject, ver);
    pthread_rwlock_unlock(&q->r->lock);
    return send_json(q, 200, out);
}

static enum MHD_Result post_register(req_t *q, const char *subject)
{
    enum MHD_Result rc;
    if (!may_write(q, subject, &rc)) return rc;
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
    if (!may_write(q, subject, &rc)) return rc;
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
    if (!may_write(q, subject, &rc)) return rc;
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
    if (!*ids || *end || id < 1 || id > INT32_MAX) {
        char *echo = reply_text_clean(ids, ECHO_BYTES_MAX);
        enum MHD_Result rc = fail(q, 404, 40403, "Schema %s not found", echo);
        free(echo);
        return rc;
    }
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
    if (raw) return send_text(q, 200, CONTENT_TYPE, raw, 0);
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
    enum MHD_Result rc;
    if (subject && !may_write(q, subject, &rc)) return rc;
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

/* ---- mode ---- */

/* PUT/DELETE /mode[/{s}]: who may ask is checked as for the level (the global one is the
 * admin's, a subject's its team's); then refused, as Confluent refuses mode changes when
 * they are disabled: this registry is READWRITE only. */
static enum MHD_Result mode_change(req_t *q, const char *subject)
{
    enum MHD_Result rc;
    if (!subject && !q->who.admin)
        return fail(q, 403, 40301, "User %s may not change the global mode", q->who.user);
    if (subject && !may_write(q, subject, &rc)) return rc;
    return fail(q, 422, 42205, "Mode changes are not allowed: this registry is READWRITE only");
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
    /* the segment that names a subject, on every endpoint that has one */
    int subj = -1;
    if ((!strcmp(s[0], "subjects") || !strcmp(s[0], "config") || !strcmp(s[0], "mode")) && n >= 2)
        subj = 1;
    else if (!strcmp(s[0], "compatibility") && n >= 3 && !strcmp(s[1], "subjects"))
        subj = 2;
    const char *why = subj >= 0 ? subject_invalid(q, subj) : NULL;
    if (why) return bad_subject(q, why);
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
        if (n <= 2 && (!strcmp(m, "PUT") || del)) return mode_change(q, n == 2 ? s[1] : NULL);
    }
    return fail(q, 404, 404, "HTTP 404 Not Found");
}

/* Splits the (still percent-encoded) path into decoded segments; -1 when too many. */
static int split(char *path, req_t *q)
{
    q->nseg = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (q->nseg == SEGMENTS_MAX) return -1;
        q->seglen[q->nseg] = MHD_http_unescape(t);
        q->seg[q->nseg++] = t;
    }
    return 0;
}

/* Routes an authenticated request whose body is complete; q->out receives the reply. */
static void serve(req_t *q, const char *url)
{
    if (!kp_registry_ready(q->r)) {
        fail(q, 503, 50003,
             "The schema registry is still reading its store (_schemas); retry shortly");
        return;
    }
    size_t ulen = strlen(url);
    if (ulen > 8 * KP_REG_SUBJECT_LEN_MAX) {
        fail(q, 414, 414, "URI too long");
        return;
    }
    char *path = kp_xstrndup(url, ulen);
    int64_t seen = q->r->log ? kp_reg_log_applied(q->r->log) : 0;
    if (split(path, q) < 0) {
        fail(q, 404, 404, "HTTP 404 Not Found");
    } else {
        route(q);
        /* A read that found nothing (no subject, version, schema or level): records that
         * someone else wrote to `_schemas` just now (a restore, another tool; our own
         * writes are applied before they are answered) may not be applied yet. Wait until
         * everything the topic holds now is applied and, if anything was, ask again:
         * restored schemas are served as soon as the restore has answered. A 404 wrote
         * nothing, so asking again is safe. */
        int code = q->out->error_code;
        if (q->r->log && q->out->status == 404 && code >= 40401 && code <= 40408 &&
            (!strcmp(q->method, "GET") || !strcmp(q->method, "POST"))) {
            kp_reg_log_catch_up(q->r->log, CATCH_UP_MS);
            if (kp_reg_log_applied(q->r->log) > seen) route(q);
        }
    }
    free(path);
}

void kp_registry_http_serve(kp_registry_t *r, const kp_reg_caller_t *who, const char *method,
                            const char *url, const char *query, const char *body, size_t body_len,
                            kp_reg_reply_t *out)
{
    kp_buf_t b = {.data = (uint8_t *)body, .len = body_len, .cap = body_len};
    memset(out, 0, sizeof(*out));
    req_t q = {.r = r, .query = query, .method = method, .body = &b, .who = *who, .out = out};
    serve(&q, url);
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, kp_reg_reply_t *out)
{
    const char *challenge[] = {"WWW-Authenticate", "Basic realm=\"kpool schema registry\"", NULL};
    return kp_http_reply(conn, out->status, out->type, out->body, strlen(out->body),
                         MHD_RESPMEM_MUST_FREE, out->auth_challenge ? challenge : NULL);
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
        st->start_us = kp_mono_us();
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
    kp_reg_reply_t out = {0};
    req_t q = {.r = r, .conn = conn, .method = method, .body = &st->body, .out = &out};
    if (!strcmp(url, "/readyz") && !strcmp(method, "GET")) /* unauthenticated, for probes */
        kp_registry_ready(r) ? send_text(&q, 200, "text/plain", kp_xstrdup("ready\n"), 0)
                             : send_text(&q, 503, "text/plain", kp_xstrdup("not ready\n"), 0);
    else if (kp_registry_authenticate(
                 r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), &q.who) <
             0)
        send_error(&q, 401, 40101, "Unauthorized");
    else if (st->too_large)
        fail(&q, 413, 413, "Request body larger than %d bytes", KP_REG_BODY_BYTES_MAX);
    else
        serve(&q, url);
    count_request(out.status, st->start_us);
    return queue_reply(conn, &out);
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
