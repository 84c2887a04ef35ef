/* api_console.c — the console's endpoints (see api_console.h). */
#include "control/api/api_console.h"

#include "control/pool_browse.h"
#include "control/kinds.h"
#include "control/pool_metrics.h"
#include "control/pool_registry.h"
#include "core/buf.h"
#include "core/logging.h"
#include "control/api/api_doctor.h"
#include "control/api/api_reply.h"
#include "net/http_server.h"

#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WHOAMI       "/apis/kpool.dev/v1/whoami"
#define NS_PREFIX    "/apis/kpool.dev/v1/namespaces/"
#define POOLS_PREFIX "/apis/kpool.dev/v1/pools/"
/* Per call to the pool: a console request must answer while someone is looking at it. */
#define CONSOLE_POOL_TIMEOUT_MS 10000
#define BROWSE_LIMIT_DEFAULT    20
/* Console requests talking to a pool at once, each on its own thread with its own Kafka
 * client. They do not hold the API's threads (the connection is suspended meanwhile, see
 * below), but a pool that is down makes each wait out the timeout: beyond this many the
 * next is refused at once (503, Retry-After). A page opening sends about five. */
#define CONSOLE_POOL_REQUESTS_MAX 8
/* How long stopping waits for them: past a pool request's timeout, so it is only reached
 * when something is stuck (and a stop must not hang for ever). */
#define CONSOLE_DRAIN_S (CONSOLE_POOL_TIMEOUT_MS / 1000 + 20)

enum {
    EP_NONE,
    EP_WHOAMI,
    EP_PARTITIONS,
    EP_GROUPS,
    EP_MESSAGES,
    EP_SUBJECTS,
    EP_HEALTH,
    EP_POOL_METRICS,
    EP_DOCTOR
};

typedef struct console_route {
    int endpoint;
    char ns[128], topic[256];
} console_route_t;

/*
 * A request answered on its own thread. libmicrohttpd serves many connections per API
 * thread, so a handler that waited for a pool would also stall the connections that thread
 * holds; instead the connection is suspended, a worker computes the answer, links it here
 * and resumes the connection, and the handler, called again, sends it. The list is keyed by
 * connection; kp_api_console_forget drops an entry whose client went away meanwhile, and
 * kp_api_console_drain waits for the workers before the daemon stops.
 */
typedef struct pending {
    struct MHD_Connection *conn;
    kp_store_t *store;
    const kp_pki_master_key_t *mk; /* EP_DOCTOR with connect: opens the app's secret */
    int admin;                     /* EP_DOCTOR: every namespace's Topics are looked at */
    console_route_t r;
    kp_browse_query_t q;
    unsigned code;
    json_t *body; /* the answer, once done */
    int done;
    struct pending *next;
} pending_t;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pending_idle = PTHREAD_COND_INITIALIZER;
static pending_t *pending_list;
static int pending_workers;  /* running; also the slots taken */
static int pending_draining; /* the daemon is stopping: no more suspensions */

static void pending_free(pending_t *p)
{
    json_decref(p->body);
    free(p);
}

/* Unlinks and returns the entry of conn, or NULL. Caller holds pending_lock. */
static pending_t *pending_take(struct MHD_Connection *conn)
{
    for (pending_t **pp = &pending_list; *pp; pp = &(*pp)->next)
        if ((*pp)->conn == conn) {
            pending_t *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static int parse(const char *url, console_route_t *r)
{
    memset(r, 0, sizeof(*r));
    if (!strcmp(url, WHOAMI)) return r->endpoint = EP_WHOAMI;
    if (!strncmp(url, POOLS_PREFIX, strlen(POOLS_PREFIX))) { /* POOL/health, POOL/metrics */
        const char *pool = url + strlen(POOLS_PREFIX), *slash = strchr(pool, '/');
        if (!slash || slash == pool || (size_t)(slash - pool) >= sizeof(r->topic) ||
            (strcmp(slash, "/health") != 0 && strcmp(slash, "/metrics") != 0))
            return EP_NONE;
        memcpy(r->topic, pool, (size_t)(slash - pool)); /* the pool's name */
        return r->endpoint = !strcmp(slash, "/health") ? EP_HEALTH : EP_POOL_METRICS;
    }
    if (strncmp(url, NS_PREFIX, strlen(NS_PREFIX)) != 0) return EP_NONE;
    /* NS/topics/T/what: exactly four non-empty segments */
    char buf[512], *seg[5];
    if (snprintf(buf, sizeof(buf), "%s", url + strlen(NS_PREFIX)) >= (int)sizeof(buf))
        return EP_NONE;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 5) return EP_NONE;
        seg[n++] = t;
    }
    if (n == 2 && !strcmp(seg[1], "subjects") && strlen(seg[0]) < sizeof(r->ns)) {
        strcpy(r->ns, seg[0]);
        return r->endpoint = EP_SUBJECTS;
    }
    if (n == 4 && !strcmp(seg[1], "applications") && !strcmp(seg[3], "doctor") &&
        strlen(seg[0]) < sizeof(r->ns) && strlen(seg[2]) < sizeof(r->topic)) {
        strcpy(r->ns, seg[0]);
        strcpy(r->topic, seg[2]); /* the application's name */
        return r->endpoint = EP_DOCTOR;
    }
    if (n != 4 || strcmp(seg[1], "topics") != 0) return EP_NONE;
    if (strlen(seg[0]) >= sizeof(r->ns) || strlen(seg[2]) >= sizeof(r->topic)) return EP_NONE;
    int ep = !strcmp(seg[3], "partitions")       ? EP_PARTITIONS
             : !strcmp(seg[3], "consumergroups") ? EP_GROUPS
             : !strcmp(seg[3], "messages")       ? EP_MESSAGES
                                                 : EP_NONE;
    if (ep == EP_NONE) return EP_NONE;
    strcpy(r->ns, seg[0]);
    strcpy(r->topic, seg[2]);
    return r->endpoint = ep;
}

int kp_api_console_route(const char *url)
{
    console_route_t r;
    return parse(url, &r) != EP_NONE;
}

/* Sends body (taken; NULL or unserializable: a 500 Status, see api_reply.h). retry_after_s
 * > 0 adds Retry-After. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, unsigned code, json_t *body,
                                  int retry_after_s)
{
    size_t n;
    char *text = kp_api_reply_text(body, &code, &n);
    json_decref(body);
    char v[16];
    snprintf(v, sizeof(v), "%d", retry_after_s);
    /* records and offsets change all the time, and a token-bound answer is nobody else's */
    const char *headers[] = {"Cache-Control", "no-store", retry_after_s > 0 ? "Retry-After" : NULL,
                             v, NULL};
    return kp_http_reply(conn, code, "application/json", text, n, MHD_RESPMEM_MUST_FREE, headers);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned code, json_t *body)
{
    return send_reply(conn, code, body, 0);
}

static enum MHD_Result status(struct MHD_Connection *conn, unsigned code, const char *reason,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result status(struct MHD_Connection *conn, unsigned code, const char *reason,
                              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* the message may hold URL bytes: kp_api_status takes any (api_reply.h) */
    return send_json(conn, code, kp_api_status(code, reason, msg));
}

/* 503 with Retry-After: every pool slot is taken. */
static enum MHD_Result busy(struct MHD_Connection *conn)
{
    return send_reply(conn, 503,
                      kp_api_status(503, "ServiceUnavailable",
                                    "the console's requests to the pools are all waiting (is a "
                                    "pool down?): try again shortly"),
                      2);
}

/* A query argument as an integer in [min, max]; def when absent. -1 with msg when bad. */
static int query_int(struct MHD_Connection *conn, const char *name, int64_t min, int64_t max,
                     int64_t def, int64_t *out, char *msg, size_t msglen)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    *out = def;
    if (!s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        snprintf(msg, msglen, "%s: must be an integer from %lld to %lld, got \"%.40s\"", name,
                 (long long)min, (long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_query(struct MHD_Connection *conn, kp_browse_query_t *q, char *msg, size_t msglen)
{
    int64_t limit, partition, offset, ts;
    if (query_int(conn, "limit", 1, KP_BROWSE_LIMIT_MAX, BROWSE_LIMIT_DEFAULT, &limit, msg,
                  msglen) < 0 ||
        query_int(conn, "partition", 0, INT32_MAX, -1, &partition, msg, msglen) < 0 ||
        query_int(conn, "offset", 0, INT64_MAX, -1, &offset, msg, msglen) < 0 ||
        query_int(conn, "timestamp", 0, INT64_MAX, -1, &ts, msg, msglen) < 0)
        return -1;
    if (offset >= 0 && ts >= 0) {
        snprintf(msg, msglen, "give offset or timestamp, not both");
        return -1;
    }
    q->limit = (int)limit;
    q->partition = (int32_t)partition;
    q->offset = offset;
    q->timestamp_ms = ts;
    return 0;
}

/* How to reach a Pool resource's pool (strings borrowed from pool_obj). -1 without
 * bootstrap servers. */
static int pool_conn(json_t *pool_obj, kp_pool_conn_t *conn)
{
    json_t *spec = json_object_get(pool_obj, "spec"), *tls = json_object_get(spec, "tls");
    memset(conn, 0, sizeof(*conn));
    conn->bootstrap = json_string_value(json_object_get(spec, "bootstrapServers"));
    conn->ca_path = json_string_value(json_object_get(tls, "caLocation"));
    conn->cert_path = json_string_value(json_object_get(tls, "certificateLocation"));
    conn->key_path = json_string_value(json_object_get(tls, "keyLocation"));
    conn->timeout_ms = CONSOLE_POOL_TIMEOUT_MS;
    return conn->bootstrap && *conn->bootstrap ? 0 : -1;
}

/* The schema subjects of namespace ns in every pool: those named "<ns>.…" (the registry's
 * default TopicNameStrategy names them after the topic, "<ns>.<topic>-value"). A pool that
 * cannot be read is reported in "errors" and the others still answered. */
static json_t *subjects_answer(kp_store_t *store, const console_route_t *r, unsigned *code)
{
    json_t *pools;
    int64_t rv;
    if (kp_store_list(store, "Pool", "", &pools, &rv) != KP_STORE_OK) {
        json_decref(pools);
        *code = 500;
        return kp_api_status(500, "InternalError", "cannot read the store");
    }
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s.", r->ns);
    json_t *items = json_array(), *errors = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p)
    {
        const char *name =
            json_string_value(json_object_get(json_object_get(p, "metadata"), "name"));
        kp_pool_conn_t pc;
        char err[512] = "spec.bootstrapServers is missing";
        kp_reg_state_t st;
        kp_reg_state_init(&st);
        if (pool_conn(p, &pc) == 0 && kp_pool_registry_load(&pc, &st, err, sizeof(err)) == 0) {
            json_t *subs = kp_pool_registry_subjects(&st, prefix), *s;
            size_t j;
            json_array_foreach(subs, j, s)
            {
                json_object_set_new(s, "pool", json_string(name ? name : ""));
                json_array_append(items, s);
            }
            json_decref(subs);
        } else {
            json_array_append_new(
                errors, json_pack("{s:s, s:s}", "pool", name ? name : "", "message", err));
        }
        kp_reg_state_free(&st);
    }
    json_decref(pools);
    *code = 200;
    return json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                     "SubjectList", "metadata", "namespace", r->ns, "items", items, "errors",
                     errors);
}

/* GET /apis/kpool.dev/v1/pools/P/health: any valid token, as teams may read Pools (the
 * answer holds counts, not other teams' topic names). */
static json_t *health_answer(kp_store_t *store, const console_route_t *r, unsigned *code)
{
    json_t *pool_obj = NULL;
    if (kp_store_get(store, "Pool", "", r->topic, &pool_obj) != KP_STORE_OK) {
        *code = 404;
        return kp_api_statusf(404, "NotFound", "pools \"%s\" not found", r->topic);
    }
    kp_pool_conn_t pc;
    char err[512];
    json_t *body = NULL;
    if (pool_conn(pool_obj, &pc) < 0)
        snprintf(err, sizeof(err), "pool \"%s\" has no spec.bootstrapServers", r->topic);
    else
        body = kp_pool_browse_health(&pc, err, sizeof(err));
    json_decref(pool_obj);
    if (!body) {
        *code = 503;
        return kp_api_status(503, "ServiceUnavailable", err);
    }
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kpool.dev/v1", "kind",
                            "PoolHealth", "metadata", "name", r->topic);
    json_object_update(doc, body);
    json_decref(body);
    *code = 200;
    return doc;
}

/* GET /apis/kpool.dev/v1/pools/P/metrics: the pool's history (pool_metrics.h), for any valid
 * token like health (rates and sizes of the whole pool, no topic names). 404 for an unknown
 * pool; a pool without spec.metricsUrls / metricsUrl (or not sampled yet) answers an empty
 * history. */
static enum MHD_Result pool_metrics_reply(kp_store_t *store, struct MHD_Connection *conn,
                                          const char *pool)
{
    json_t *pool_obj = NULL;
    if (kp_store_get(store, "Pool", "", pool, &pool_obj) != KP_STORE_OK)
        return send_json(conn, 404,
                         kp_api_statusf(404, "NotFound", "pools \"%s\" not found", pool));
    json_decref(pool_obj);
    json_t *h = kp_pool_metrics_history(pool);
    if (!h)
        h = json_pack("{s:[], s:[], s:n, s:s}", "samples", "brokers", "lastError", "message",
                      "no history: the pool has no spec.metricsUrls (or metricsUrl), or was not "
                      "sampled yet");
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kpool.dev/v1", "kind",
                            "PoolMetrics", "metadata", "name", pool);
    json_object_update(doc, h);
    json_decref(h);
    return send_json(conn, 200, doc);
}

/* The pool connection of the Topic ns/name (strings borrowed from *pool_obj, which the
 * caller releases); *fqn set to the topic's name in the pool. An HTTP code on failure. */
static unsigned topic_pool(kp_store_t *store, const console_route_t *r, kp_pool_conn_t *conn,
                           json_t **pool_obj, char *fqn, size_t fqnlen, char *msg, size_t msglen)
{
    json_t *topic = NULL;
    *pool_obj = NULL;
    if (kp_store_get(store, "Topic", r->ns, r->topic, &topic) != KP_STORE_OK) {
        snprintf(msg, msglen, "topics \"%s\" not found", r->topic);
        return 404;
    }
    const char *pool = json_string_value(json_object_get(json_object_get(topic, "spec"), "pool"));
    snprintf(fqn, fqnlen, "%s.%s", r->ns, r->topic); /* what topic.c names it in the pool */
    unsigned code = 0;
    if (!pool || kp_store_get(store, "Pool", "", pool, pool_obj) != KP_STORE_OK) {
        snprintf(msg, msglen, "topics \"%s\": pool \"%s\" does not exist", r->topic,
                 pool ? pool : "");
        code = 404;
    } else {
        if (pool_conn(*pool_obj, conn) < 0) {
            snprintf(msg, msglen, "pool \"%s\" has no spec.bootstrapServers", pool);
            code = 503;
        }
    }
    json_decref(topic);
    return code;
}

static json_t *topic_answer(kp_store_t *store, const console_route_t *r, const kp_browse_query_t *q,
                            unsigned *code)
{
    char msg[1024], fqn[512];
    kp_pool_conn_t pc;
    json_t *pool_obj;
    *code = topic_pool(store, r, &pc, &pool_obj, fqn, sizeof(fqn), msg, sizeof(msg));
    if (*code) {
        json_decref(pool_obj);
        return kp_api_status(*code, *code == 404 ? "NotFound" : "ServiceUnavailable", msg);
    }
    int missing = 0;
    const char *pool =
        json_string_value(json_object_get(json_object_get(pool_obj, "metadata"), "name"));
    char pool_name[256];
    snprintf(pool_name, sizeof(pool_name), "%s", pool ? pool : "");
    json_t *body = r->endpoint == EP_PARTITIONS
                       ? kp_pool_browse_partitions(&pc, fqn, &missing, msg, sizeof(msg))
                   : r->endpoint == EP_GROUPS
                       ? kp_pool_browse_groups(&pc, fqn, &missing, msg, sizeof(msg))
                       : kp_pool_browse_messages(&pc, fqn, q, &missing, msg, sizeof(msg));
    json_decref(pool_obj);
    if (body && r->endpoint == EP_PARTITIONS) /* sizes and rate from the pool's /metrics */
        kp_pool_metrics_annotate(pool_name, fqn, body, json_object_get(body, "partitions"));
    if (body && r->endpoint == EP_GROUPS) /* the lag over time, sampled while looked at */
        kp_pool_metrics_lag(pool_name, fqn, body);
    if (!body) {
        *code = missing ? 404 : 503;
        return kp_api_status(*code, missing ? "NotFound" : "ServiceUnavailable", msg);
    }
    static const char *const kinds[] = {[EP_PARTITIONS] = "TopicPartitions",
                                        [EP_GROUPS] = "ConsumerGroupList",
                                        [EP_MESSAGES] = "MessageList"};
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "apiVersion", "kpool.dev/v1",
                            "kind", kinds[r->endpoint], "metadata", "name", r->topic, "namespace",
                            r->ns, "pool", pool_name, "topic", fqn);
    json_object_update(doc, body);
    json_decref(body);
    *code = 200;
    return doc;
}

static json_t *answer(pending_t *p)
{
    if (p->r.endpoint == EP_DOCTOR) {
        p->code = 200;
        return kp_api_doctor_connect(p->store, p->mk, p->r.ns, p->r.topic, p->admin);
    }
    return p->r.endpoint == EP_HEALTH     ? health_answer(p->store, &p->r, &p->code)
           : p->r.endpoint == EP_SUBJECTS ? subjects_answer(p->store, &p->r, &p->code)
                                          : topic_answer(p->store, &p->r, &p->q, &p->code);
}

/* Stores p's answer and resumes its connection. No libmicrohttpd call is made under
 * pending_lock (its handler takes that lock, so the order would invert). p may be freed by
 * the handler as soon as the connection is resumed; the worker count drops only after that,
 * so drain cannot let the daemon stop with the connection still suspended. */
static void finish(pending_t *p, json_t *body)
{
    struct MHD_Connection *conn = p->conn;
    pthread_mutex_lock(&pending_lock);
    p->body = body;
    p->done = 1;
    pthread_mutex_unlock(&pending_lock);
    MHD_resume_connection(conn);
    pthread_mutex_lock(&pending_lock);
    pending_workers--;
    pthread_cond_broadcast(&pending_idle);
    pthread_mutex_unlock(&pending_lock);
}

static void *worker_main(void *arg)
{
    pending_t *p = arg;
    finish(p, answer(p));
    return NULL;
}

void kp_api_console_forget(struct MHD_Connection *conn)
{
    pthread_mutex_lock(&pending_lock);
    pending_t *p = pending_take(conn);
    pthread_cond_broadcast(&pending_idle);
    pthread_mutex_unlock(&pending_lock);
    if (p) pending_free(p); /* done: a running worker's connection is still suspended */
}

void kp_api_console_drain(void)
{
    pthread_mutex_lock(&pending_lock);
    pending_draining = 1;
    /* every worker done, and every answer sent (or its connection ended): a resumed
     * connection is only off libmicrohttpd's suspended list once its thread has run it */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CONSOLE_DRAIN_S;
    while ((pending_workers > 0 || pending_list) &&
           pthread_cond_timedwait(&pending_idle, &pending_lock, &until) == 0) {
    }
    if (pending_workers > 0 || pending_list)
        kp_warn("api", "console: %d requests still waiting for a pool at shutdown",
                pending_workers);
    pthread_mutex_unlock(&pending_lock);
}

/* Starts p's worker and suspends the connection; without a thread, answers in place. */
static enum MHD_Result start_worker(pending_t *p)
{
    pthread_mutex_lock(&pending_lock);
    if (pending_workers >= CONSOLE_POOL_REQUESTS_MAX || pending_draining) {
        pthread_mutex_unlock(&pending_lock);
        struct MHD_Connection *conn = p->conn;
        free(p);
        return busy(conn);
    }
    pending_workers++;
    p->next = pending_list;
    pending_list = p;
    pthread_mutex_unlock(&pending_lock);
    MHD_suspend_connection(p->conn); /* before the worker can resume it */
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker_main, p);
    pthread_attr_destroy(&attr);
    if (rc != 0) finish(p, answer(p)); /* no thread: the answer is computed on this one */
    return MHD_YES;
}

enum MHD_Result kp_api_console_handle(kp_store_t *store, const kp_pki_master_key_t *mk,
                                      struct MHD_Connection *conn, const char *url,
                                      const char *method, int admin, const char *ns)
{
    pthread_mutex_lock(&pending_lock);
    pending_t *done = pending_take(conn);
    pthread_cond_broadcast(&pending_idle);
    pthread_mutex_unlock(&pending_lock);
    if (done) { /* called again after the worker resumed the connection */
        unsigned code = done->code;
        json_t *body = done->body;
        done->body = NULL;
        pending_free(done);
        return send_json(conn, code, body);
    }
    console_route_t r;
    parse(url, &r);
    if (strcmp(method, "GET") != 0)
        return status(conn, 405, "MethodNotAllowed", "%s is not supported on %s", method, url);
    char why[256];
    if (r.endpoint != EP_WHOAMI && r.endpoint != EP_HEALTH && r.endpoint != EP_POOL_METRICS &&
        kp_name_check(r.ns, 1, why, sizeof(why)) < 0)
        return status(conn, 404, "NotFound", "namespace \"%s\": %s", r.ns, why);
    if ((r.endpoint == EP_HEALTH || r.endpoint == EP_POOL_METRICS || r.endpoint == EP_DOCTOR ||
         r.endpoint == EP_PARTITIONS || r.endpoint == EP_GROUPS || r.endpoint == EP_MESSAGES) &&
        kp_name_check(r.topic, 0, why, sizeof(why)) < 0)
        return status(conn, 404, "NotFound", "\"%s\" not found: %s", r.topic, why);
    if (r.endpoint == EP_WHOAMI)
        return send_json(conn, 200,
                         json_pack("{s:s, s:s, s:b, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                                   "WhoAmI", "admin", admin, "namespace",
                                   ns && !admin ? json_string(ns) : json_null()));
    if (r.endpoint == EP_POOL_METRICS) /* in memory: answered here, no pool is asked */
        return pool_metrics_reply(store, conn, r.topic);
    if (r.endpoint != EP_HEALTH && !admin && (!ns || strcmp(ns, r.ns) != 0)) {
        if (r.endpoint == EP_SUBJECTS)
            return status(conn, 403, "Forbidden", "subjects are forbidden in namespace \"%s\"",
                          r.ns);
        if (r.endpoint == EP_DOCTOR)
            return status(conn, 403, "Forbidden",
                          "applications \"%s\" is forbidden in namespace \"%s\"", r.topic, r.ns);
        return status(conn, 403, "Forbidden", "topics \"%s\" is forbidden in namespace \"%s\"",
                      r.topic, r.ns);
    }
    int connect = 0;
    if (r.endpoint == EP_DOCTOR) {
        const char *c = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "connect");
        if (c && strcmp(c, "true") != 0 && strcmp(c, "false") != 0)
            return status(conn, 400, "BadRequest", "connect: must be true or false, got \"%.40s\"",
                          c);
        connect = c && !strcmp(c, "true");
    }
    if (r.endpoint == EP_DOCTOR && !connect) /* the store only: answered here */
        return send_json(conn, 200, kp_api_doctor(store, r.ns, r.topic, admin));
    pending_t *p = kp_xcalloc(1, sizeof(*p));
    p->conn = conn;
    p->store = store;
    p->mk = mk;
    p->admin = admin;
    p->r = r;
    char msg[1024];
    if (r.endpoint == EP_MESSAGES && parse_query(conn, &p->q, msg, sizeof(msg)) < 0) {
        free(p);
        return status(conn, 400, "BadRequest", "%s", msg);
    }
    return start_worker(p);
}
