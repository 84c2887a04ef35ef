/* api_console.c — the console's endpoints (see api_console.h). */
#include "http/api_console.h"

#include "control/pool_browse.h"
#include "control/kinds.h"
#include "control/pool_registry.h"
#include "http/api_reply.h"

#include <errno.h>
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
/* Console requests talking to a pool at once. The API has a few threads (api.c) and a pool
 * that is down makes each such request wait out the timeout: beyond this many, the next one
 * waits a moment for a slot and is then refused (503, Retry-After), so the rest of the API
 * keeps answering. */
#define CONSOLE_POOL_REQUESTS_MAX 2

static int pool_requests; /* in flight, across the API's threads */

/* How long a request waits for a slot: a page opening sends a burst of short requests,
 * which queue here for a moment instead of being refused. */
#define CONSOLE_POOL_SLOT_WAIT_MS 1000

/* A slot for a request to a pool; 0 when none came free in time. */
static int pool_slot_take(void)
{
    for (int waited_ms = 0;; waited_ms += 10) {
        if (__atomic_add_fetch(&pool_requests, 1, __ATOMIC_ACQ_REL) <= CONSOLE_POOL_REQUESTS_MAX)
            return 1;
        __atomic_sub_fetch(&pool_requests, 1, __ATOMIC_ACQ_REL);
        if (waited_ms >= CONSOLE_POOL_SLOT_WAIT_MS) return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void pool_slot_give(void)
{
    __atomic_sub_fetch(&pool_requests, 1, __ATOMIC_ACQ_REL);
}

enum { EP_NONE, EP_WHOAMI, EP_PARTITIONS, EP_GROUPS, EP_MESSAGES, EP_SUBJECTS, EP_HEALTH };

typedef struct console_route {
    int endpoint;
    char ns[128], topic[256];
} console_route_t;

static int parse(const char *url, console_route_t *r)
{
    memset(r, 0, sizeof(*r));
    if (!strcmp(url, WHOAMI)) return r->endpoint = EP_WHOAMI;
    if (!strncmp(url, POOLS_PREFIX, strlen(POOLS_PREFIX))) { /* POOL/health */
        const char *pool = url + strlen(POOLS_PREFIX), *slash = strchr(pool, '/');
        if (!slash || slash == pool || strcmp(slash, "/health") != 0 ||
            (size_t)(slash - pool) >= sizeof(r->topic))
            return EP_NONE;
        memcpy(r->topic, pool, (size_t)(slash - pool)); /* the pool's name */
        return r->endpoint = EP_HEALTH;
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
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    /* records and offsets change all the time, and a token-bound answer is nobody else's */
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
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
static enum MHD_Result subjects_endpoint(kp_store_t *store, struct MHD_Connection *conn,
                                         const console_route_t *r)
{
    json_t *pools;
    int64_t rv;
    if (kp_store_list(store, "Pool", "", &pools, &rv) != KP_STORE_OK) {
        json_decref(pools);
        return status(conn, 500, "InternalError", "cannot read the store");
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
    return send_json(conn, 200,
                     json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "apiVersion", "kpool.dev/v1",
                               "kind", "SubjectList", "metadata", "namespace", r->ns, "items",
                               items, "errors", errors));
}

/* GET /apis/kpool.dev/v1/pools/P/health: any valid token, as teams may read Pools (the
 * answer holds counts, not other teams' topic names). */
static enum MHD_Result health_endpoint(kp_store_t *store, struct MHD_Connection *conn,
                                       const console_route_t *r)
{
    json_t *pool_obj = NULL;
    if (kp_store_get(store, "Pool", "", r->topic, &pool_obj) != KP_STORE_OK)
        return status(conn, 404, "NotFound", "pools \"%s\" not found", r->topic);
    kp_pool_conn_t pc;
    char err[512];
    json_t *body = NULL;
    if (pool_conn(pool_obj, &pc) < 0)
        snprintf(err, sizeof(err), "pool \"%s\" has no spec.bootstrapServers", r->topic);
    else
        body = kp_pool_browse_health(&pc, err, sizeof(err));
    json_decref(pool_obj);
    if (!body) return status(conn, 503, "ServiceUnavailable", "%s", err);
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "kpool.dev/v1", "kind",
                            "PoolHealth", "metadata", "name", r->topic);
    json_object_update(doc, body);
    json_decref(body);
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

static enum MHD_Result topic_endpoint(kp_store_t *store, struct MHD_Connection *conn,
                                      const console_route_t *r)
{
    char msg[1024], fqn[512];
    kp_browse_query_t q = {0};
    if (r->endpoint == EP_MESSAGES && parse_query(conn, &q, msg, sizeof(msg)) < 0)
        return status(conn, 400, "BadRequest", "%s", msg);
    kp_pool_conn_t pc;
    json_t *pool_obj;
    unsigned code = topic_pool(store, r, &pc, &pool_obj, fqn, sizeof(fqn), msg, sizeof(msg));
    if (code) {
        json_decref(pool_obj);
        return status(conn, code, code == 404 ? "NotFound" : "ServiceUnavailable", "%s", msg);
    }
    int missing = 0;
    json_t *body = r->endpoint == EP_PARTITIONS
                       ? kp_pool_browse_partitions(&pc, fqn, &missing, msg, sizeof(msg))
                   : r->endpoint == EP_GROUPS
                       ? kp_pool_browse_groups(&pc, fqn, &missing, msg, sizeof(msg))
                       : kp_pool_browse_messages(&pc, fqn, &q, &missing, msg, sizeof(msg));
    const char *pool =
        json_string_value(json_object_get(json_object_get(pool_obj, "metadata"), "name"));
    char pool_name[256];
    snprintf(pool_name, sizeof(pool_name), "%s", pool ? pool : "");
    json_decref(pool_obj);
    if (!body)
        return missing ? status(conn, 404, "NotFound", "%s", msg)
                       : status(conn, 503, "ServiceUnavailable", "%s", msg);
    static const char *const kinds[] = {[EP_PARTITIONS] = "TopicPartitions",
                                        [EP_GROUPS] = "ConsumerGroupList",
                                        [EP_MESSAGES] = "MessageList"};
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "apiVersion", "kpool.dev/v1",
                            "kind", kinds[r->endpoint], "metadata", "name", r->topic, "namespace",
                            r->ns, "pool", pool_name, "topic", fqn);
    json_object_update(doc, body);
    json_decref(body);
    return send_json(conn, 200, doc);
}

enum MHD_Result kp_api_console_handle(kp_store_t *store, struct MHD_Connection *conn,
                                      const char *url, const char *method, int admin,
                                      const char *ns)
{
    console_route_t r;
    parse(url, &r);
    if (strcmp(method, "GET") != 0)
        return status(conn, 405, "MethodNotAllowed", "%s is not supported on %s", method, url);
    char why[256];
    if (r.endpoint != EP_WHOAMI && r.endpoint != EP_HEALTH &&
        kp_name_check(r.ns, 1, why, sizeof(why)) < 0)
        return status(conn, 404, "NotFound", "namespace \"%s\": %s", r.ns, why);
    if ((r.endpoint == EP_HEALTH || r.endpoint == EP_PARTITIONS || r.endpoint == EP_GROUPS ||
         r.endpoint == EP_MESSAGES) &&
        kp_name_check(r.topic, 0, why, sizeof(why)) < 0)
        return status(conn, 404, "NotFound", "\"%s\" not found: %s", r.topic, why);
    if (r.endpoint == EP_WHOAMI)
        return send_json(conn, 200,
                         json_pack("{s:s, s:s, s:b, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                                   "WhoAmI", "admin", admin, "namespace",
                                   ns && !admin ? json_string(ns) : json_null()));
    if (r.endpoint != EP_HEALTH && !admin && (!ns || strcmp(ns, r.ns) != 0)) {
        if (r.endpoint == EP_SUBJECTS)
            return status(conn, 403, "Forbidden", "subjects are forbidden in namespace \"%s\"",
                          r.ns);
        return status(conn, 403, "Forbidden", "topics \"%s\" is forbidden in namespace \"%s\"",
                      r.topic, r.ns);
    }
    if (!pool_slot_take()) return busy(conn);
    enum MHD_Result rc = r.endpoint == EP_HEALTH     ? health_endpoint(store, conn, &r)
                         : r.endpoint == EP_SUBJECTS ? subjects_endpoint(store, conn, &r)
                                                     : topic_endpoint(store, conn, &r);
    pool_slot_give();
    return rc;
}
