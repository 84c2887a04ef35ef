/*
 * etcd.c — the etcd v3 JSON-gateway client: endpoints and failover, one POST per call,
 * kv / txn / lease / election calls, and watches on their own threads (etcd.h has the
 * contract; etcd_parse.c decodes the replies).
 *
 * Invariants: a call never holds the client's lock while talking to etcd (the lock guards
 * only the idle-handle pool and the current endpoint), so a blocking campaign cannot stall
 * a lease keepalive on another thread. A reply is read into a buffer bounded by
 * KP_ETCD_REPLY_BYTES_MAX before it is parsed.
 */
#include "cluster/etcd_int.h"

#include "core/logging.h"

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define IDLE_HANDLES_MAX 4

struct kp_etcd {
    char *endpoints[KP_ETCD_ENDPOINTS_MAX];
    int nendpoints;
    int timeout_ms;
    pthread_mutex_t lock;
    int current; /* endpoint the next call starts at */
    CURL *idle[IDLE_HANDLES_MAX];
    int nidle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

kp_etcd_t *kp_etcd_open(const char *endpoints, int timeout_ms, char *err, size_t errlen)
{
    if (!endpoints || !*endpoints) {
        snprintf(err, errlen, "metadata.etcd.endpoints is empty");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    kp_etcd_t *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    e->timeout_ms = timeout_ms > 0 ? timeout_ms : KP_ETCD_TIMEOUT_MS_DEFAULT;
    const char *p = endpoints;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '/')) n--;
        if (n) {
            if (e->nendpoints == KP_ETCD_ENDPOINTS_MAX) {
                snprintf(err, errlen, "metadata.etcd.endpoints: more than %d endpoints",
                         KP_ETCD_ENDPOINTS_MAX);
                goto fail;
            }
            if (n < 8 || strncmp(p, "http://", 7) != 0 || n > 512) {
                snprintf(err, errlen,
                         "metadata.etcd.endpoints: '%.*s' is not an http:// URL "
                         "(e.g. http://127.0.0.1:2379)",
                         (int)(n > 80 ? 80 : n), p);
                goto fail;
            }
            e->endpoints[e->nendpoints++] = strndup(p, n);
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (e->nendpoints == 0) {
        snprintf(err, errlen, "metadata.etcd.endpoints holds no URL");
        goto fail;
    }
    return e;
fail:
    kp_etcd_close(e);
    return NULL;
}

void kp_etcd_close(kp_etcd_t *e)
{
    if (!e) return;
    for (int i = 0; i < e->nendpoints; i++) free(e->endpoints[i]);
    for (int i = 0; i < e->nidle; i++) curl_easy_cleanup(e->idle[i]);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const char *kp_etcd_endpoint(kp_etcd_t *e)
{
    pthread_mutex_lock(&e->lock);
    const char *s = e->endpoints[e->current];
    pthread_mutex_unlock(&e->lock);
    return s;
}

static CURL *handle_take(kp_etcd_t *e)
{
    pthread_mutex_lock(&e->lock);
    CURL *h = e->nidle ? e->idle[--e->nidle] : NULL;
    pthread_mutex_unlock(&e->lock);
    if (!h) h = curl_easy_init();
    return h;
}

static void handle_give(kp_etcd_t *e, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&e->lock);
    if (e->nidle < IDLE_HANDLES_MAX) {
        e->idle[e->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (h) curl_easy_cleanup(h);
}

/* ---- one request ---- */

typedef struct body {
    char *data;
    size_t len, cap;
    int too_large;
} body_t;

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > KP_ETCD_REPLY_BYTES_MAX) {
        b->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *nd = realloc(b->data, cap);
        if (!nd) return 0;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* Curl failures after which the request certainly did not reach etcd: another endpoint
 * may be tried. */
static int curl_not_sent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_RESOLVE_PROXY;
}

static void setup_common(CURL *h, const char *url, struct curl_slist *hdrs, int timeout_ms)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)KP_ETCD_CONNECT_TIMEOUT_MS);
    if (timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
}

/* POSTs req (consumed) to path on the endpoints, starting at the current one; *out gets the
 * reply object. timeout_ms 0: the client's. */
static int call(kp_etcd_t *e, const char *path, json_t *req, int timeout_ms, json_t **out,
                char *err, size_t errlen)
{
    *out = NULL;
    char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!payload) {
        snprintf(err, errlen, "etcd %s: cannot encode the request", path);
        return KP_ETCD_EINVAL;
    }
    CURL *h = handle_take(e);
    if (!h) {
        free(payload);
        snprintf(err, errlen, "etcd: cannot create a curl handle");
        return KP_ETCD_EUNAVAILABLE;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    pthread_mutex_lock(&e->lock);
    int start = e->current;
    pthread_mutex_unlock(&e->lock);
    int rc = KP_ETCD_EUNAVAILABLE;
    snprintf(err, errlen, "etcd: no endpoint reachable");
    for (int k = 0; k < e->nendpoints; k++) {
        int idx = (start + k) % e->nendpoints;
        char url[640];
        snprintf(url, sizeof(url), "%s%s", e->endpoints[idx], path);
        body_t b = {0};
        curl_easy_reset(h);
        setup_common(h, url, hdrs, timeout_ms > 0 ? timeout_ms : e->timeout_ms);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            if (b.too_large) {
                snprintf(err, errlen, "etcd %s: reply larger than %u bytes", e->endpoints[idx],
                         KP_ETCD_REPLY_BYTES_MAX);
                rc = KP_ETCD_EPROTO;
            } else if (curl_not_sent(cc)) {
                snprintf(err, errlen, "etcd %s: %s", e->endpoints[idx], curl_easy_strerror(cc));
                rc = KP_ETCD_EUNAVAILABLE;
                free(b.data);
                continue;
            } else if (cc == CURLE_OPERATION_TIMEDOUT) {
                snprintf(err, errlen, "etcd %s%s: no answer within %d ms", e->endpoints[idx], path,
                         timeout_ms > 0 ? timeout_ms : e->timeout_ms);
                rc = KP_ETCD_ETIMEDOUT;
            } else {
                snprintf(err, errlen, "etcd %s: %s", e->endpoints[idx], curl_easy_strerror(cc));
                rc = KP_ETCD_ETIMEDOUT; /* sent, connection lost: outcome unknown */
            }
            free(b.data);
            /* the next call starts elsewhere */
            pthread_mutex_lock(&e->lock);
            e->current = (idx + 1) % e->nendpoints;
            pthread_mutex_unlock(&e->lock);
            break;
        }
        json_t *o = NULL;
        rc = kp_etcd__parse_object(b.data ? b.data : "", b.len, &o, err, errlen);
        free(b.data);
        if (rc == 0 && status != 200) {
            json_decref(o);
            snprintf(err, errlen, "etcd %s%s: HTTP %ld", e->endpoints[idx], path, status);
            rc = KP_ETCD_EPROTO;
        }
        if (rc == KP_ETCD_EUNAVAILABLE) continue; /* a member without a leader: try another */
        pthread_mutex_lock(&e->lock);
        e->current = idx;
        pthread_mutex_unlock(&e->lock);
        *out = o;
        break;
    }
    curl_slist_free_all(hdrs);
    handle_give(e, h);
    free(payload);
    return rc;
}

/* ---- request building ---- */

static json_t *b64_json(const void *data, size_t len)
{
    char *s = kp_etcd_b64_encode(data, len);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

static json_t *i64_json(int64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%lld", (long long)v);
    return json_string(s);
}

static int key_check(const char *key, char *err, size_t errlen)
{
    if (!key || !*key || strlen(key) > KP_ETCD_KEY_BYTES_MAX) {
        snprintf(err, errlen, "etcd: empty or oversized key");
        return KP_ETCD_EINVAL;
    }
    return 0;
}

/* The range_end that selects every key starting with prefix: the prefix with its last byte
 * below 0xff incremented (etcd's clientv3.GetPrefixRangeEnd). */
static size_t prefix_end(const char *prefix, char *out, size_t outlen)
{
    size_t n = strlen(prefix);
    if (n >= outlen) return 0;
    memcpy(out, prefix, n);
    while (n > 0) {
        if ((unsigned char)out[n - 1] < 0xff) {
            out[n - 1]++;
            return n;
        }
        n--;
    }
    out[0] = 0; /* all 0xff: to the end of the keyspace ("\0") */
    return 1;
}

static void set_range_fields(json_t *o, const char *key, const char *range_end, int prefix)
{
    json_object_set_new(o, "key", b64_json(key, strlen(key)));
    if (prefix) {
        char end[KP_ETCD_KEY_BYTES_MAX + 1];
        size_t n = prefix_end(key, end, sizeof(end));
        json_object_set_new(o, "range_end", b64_json(end, n));
    } else if (range_end) {
        json_object_set_new(o, "range_end", b64_json(range_end, strlen(range_end)));
    }
}

/* ---- kv ---- */

int kp_etcd_range(kp_etcd_t *e, const char *key, const char *range_end, int prefix, int64_t limit,
                  kp_etcd_range_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = key_check(key, err, errlen);
    if (rc) return rc;
    json_t *req = json_object();
    set_range_fields(req, key, range_end, prefix);
    if (limit > 0) json_object_set_new(req, "limit", i64_json(limit));
    json_t *o;
    rc = call(e, "/v3/kv/range", req, 0, &o, err, errlen);
    if (rc) return rc;
    rc = kp_etcd__range_from_json(o, out, err, errlen);
    json_decref(o);
    return rc;
}

int kp_etcd_get(kp_etcd_t *e, const char *key, kp_etcd_kv_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    kp_etcd_range_t r;
    int rc = kp_etcd_range(e, key, NULL, 0, 1, &r, err, errlen);
    if (rc) return rc;
    if (r.count == 0) {
        kp_etcd_range_free(&r);
        snprintf(err, errlen, "etcd: no key %s", key);
        return KP_ETCD_ENOTFOUND;
    }
    *out = r.kvs[0];
    memset(&r.kvs[0], 0, sizeof(r.kvs[0]));
    kp_etcd_range_free(&r);
    return 0;
}

int kp_etcd_put(kp_etcd_t *e, const char *key, const void *value, size_t value_len, int64_t lease,
                int64_t *revision, char *err, size_t errlen)
{
    int rc = key_check(key, err, errlen);
    if (rc) return rc;
    json_t *req = json_object();
    json_object_set_new(req, "key", b64_json(key, strlen(key)));
    json_object_set_new(req, "value", b64_json(value, value_len));
    if (lease) json_object_set_new(req, "lease", i64_json(lease));
    json_t *o;
    rc = call(e, "/v3/kv/put", req, 0, &o, err, errlen);
    if (rc) return rc;
    int64_t rev = kp_etcd__header_revision(o);
    json_decref(o);
    if (revision) *revision = rev;
    return 0;
}

int kp_etcd_delete(kp_etcd_t *e, const char *key, int prefix, int64_t *deleted, char *err,
                   size_t errlen)
{
    int rc = key_check(key, err, errlen);
    if (rc) return rc;
    json_t *req = json_object();
    set_range_fields(req, key, NULL, prefix);
    json_t *o;
    rc = call(e, "/v3/kv/deleterange", req, 0, &o, err, errlen);
    if (rc) return rc;
    int64_t n = 0;
    if (kp_etcd__get_i64(o, "deleted", &n) < 0) {
        json_decref(o);
        snprintf(err, errlen, "etcd deleterange reply is malformed");
        return KP_ETCD_EPROTO;
    }
    json_decref(o);
    if (deleted) *deleted = n;
    return 0;
}

/* ---- txn ---- */

static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_target_fields[] = {"version", "create_revision", "mod_revision",
                                                "value"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

static json_t *ops_json(const kp_etcd_op_t *ops, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        json_t *inner = json_object(), *wrap = json_object();
        const kp_etcd_op_t *op = &ops[i];
        if (op->type == KP_ETCD_OP_PUT) {
            json_object_set_new(inner, "key", b64_json(op->key, strlen(op->key)));
            json_object_set_new(inner, "value", b64_json(op->value, op->value_len));
            if (op->lease) json_object_set_new(inner, "lease", i64_json(op->lease));
            json_object_set_new(wrap, "request_put", inner);
        } else {
            set_range_fields(inner, op->key, NULL, op->prefix);
            json_object_set_new(
                wrap, op->type == KP_ETCD_OP_RANGE ? "request_range" : "request_delete_range",
                inner);
        }
        json_array_append_new(a, wrap);
    }
    return a;
}

int kp_etcd_txn(kp_etcd_t *e, const kp_etcd_cmp_t *cmp, int ncmp, const kp_etcd_op_t *success,
                int nsuccess, const kp_etcd_op_t *failure, int nfailure, kp_etcd_txn_result_t *res,
                char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    for (int i = 0; i < ncmp; i++) {
        if (key_check(cmp[i].key, err, errlen) || cmp[i].target < 0 || cmp[i].target > 3 ||
            cmp[i].result < 0 || cmp[i].result > 3)
            return KP_ETCD_EINVAL;
    }
    for (int i = 0; i < nsuccess + nfailure; i++) {
        const kp_etcd_op_t *op = i < nsuccess ? &success[i] : &failure[i - nsuccess];
        if (key_check(op->key, err, errlen) || op->type < 0 || op->type > 2) return KP_ETCD_EINVAL;
    }
    json_t *req = json_object(), *cmps = json_array();
    for (int i = 0; i < ncmp; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "key", b64_json(cmp[i].key, strlen(cmp[i].key)));
        json_object_set_new(c, "target", json_string(cmp_targets[cmp[i].target]));
        json_object_set_new(c, "result", json_string(cmp_results[cmp[i].result]));
        json_object_set_new(c, cmp_target_fields[cmp[i].target],
                            cmp[i].target == KP_ETCD_CMP_VALUE
                                ? b64_json(cmp[i].value, cmp[i].value_len)
                                : i64_json(cmp[i].number));
        json_array_append_new(cmps, c);
    }
    json_object_set_new(req, "compare", cmps);
    json_object_set_new(req, "success", ops_json(success, nsuccess));
    json_object_set_new(req, "failure", ops_json(failure, nfailure));
    json_t *o;
    int rc = call(e, "/v3/kv/txn", req, 0, &o, err, errlen);
    if (rc) return rc;
    rc = kp_etcd__txn_from_json(o, res, err, errlen);
    json_decref(o);
    return rc;
}

int kp_etcd_cas(kp_etcd_t *e, const char *key, const void *value, size_t value_len,
                int64_t expected_mod, int64_t lease, int64_t *new_rev, kp_etcd_kv_t *current,
                char *err, size_t errlen)
{
    if (current) memset(current, 0, sizeof(*current));
    kp_etcd_cmp_t c = {
        .key = key, .target = KP_ETCD_CMP_MOD, .result = KP_ETCD_CMP_EQUAL, .number = expected_mod};
    kp_etcd_op_t put = {
        .type = KP_ETCD_OP_PUT, .key = key, .value = value, .value_len = value_len, .lease = lease};
    kp_etcd_op_t get = {.type = KP_ETCD_OP_RANGE, .key = key};
    kp_etcd_txn_result_t r;
    int rc = kp_etcd_txn(e, &c, 1, &put, 1, &get, 1, &r, err, errlen);
    if (rc) return rc;
    if (r.succeeded) {
        if (new_rev) *new_rev = r.revision;
        kp_etcd_txn_result_free(&r);
        return 0;
    }
    int64_t have = r.range.count ? r.range.kvs[0].mod_revision : 0;
    if (current && r.range.count) {
        *current = r.range.kvs[0];
        memset(&r.range.kvs[0], 0, sizeof(r.range.kvs[0]));
    }
    kp_etcd_txn_result_free(&r);
    snprintf(err, errlen, "etcd: %s changed (mod_revision %lld, expected %lld)", key,
             (long long)have, (long long)expected_mod);
    return KP_ETCD_ECONFLICT;
}

int kp_etcd_cas_delete(kp_etcd_t *e, const char *key, int64_t expected_mod, char *err,
                       size_t errlen)
{
    kp_etcd_cmp_t c = {
        .key = key, .target = KP_ETCD_CMP_MOD, .result = KP_ETCD_CMP_EQUAL, .number = expected_mod};
    kp_etcd_op_t del = {.type = KP_ETCD_OP_DELETE, .key = key};
    kp_etcd_txn_result_t r;
    int rc = kp_etcd_txn(e, &c, 1, &del, 1, NULL, 0, &r, err, errlen);
    if (rc) return rc;
    int ok = r.succeeded;
    kp_etcd_txn_result_free(&r);
    if (ok) return 0;
    snprintf(err, errlen, "etcd: %s changed (expected mod_revision %lld)", key,
             (long long)expected_mod);
    return KP_ETCD_ECONFLICT;
}

/* ---- leases ---- */

int kp_etcd_lease_grant(kp_etcd_t *e, int64_t ttl_s, int64_t *id, int64_t *granted, char *err,
                        size_t errlen)
{
    if (ttl_s <= 0) {
        snprintf(err, errlen, "etcd: lease TTL must be positive");
        return KP_ETCD_EINVAL;
    }
    json_t *req = json_object();
    json_object_set_new(req, "TTL", i64_json(ttl_s));
    json_t *o;
    int rc = call(e, "/v3/lease/grant", req, 0, &o, err, errlen);
    if (rc) return rc;
    int64_t lid, ttl;
    if (kp_etcd__get_i64(o, "ID", &lid) < 0 || kp_etcd__get_i64(o, "TTL", &ttl) < 0 || lid == 0 ||
        ttl <= 0) {
        json_decref(o);
        snprintf(err, errlen, "etcd lease grant reply is malformed");
        return KP_ETCD_EPROTO;
    }
    json_decref(o);
    *id = lid;
    if (granted) *granted = ttl;
    return 0;
}

int kp_etcd_lease_keepalive(kp_etcd_t *e, int64_t id, int64_t *ttl, char *err, size_t errlen)
{
    json_t *req = json_object();
    json_object_set_new(req, "ID", i64_json(id));
    json_t *o;
    /* a stream on the server side: the gateway answers one {"result":...} per request */
    int rc = call(e, "/v3/lease/keepalive", req, 0, &o, err, errlen);
    if (rc) return rc;
    json_t *r = json_object_get(o, "result");
    int64_t t = 0;
    if (!json_is_object(r) || kp_etcd__get_i64(r, "TTL", &t) < 0 || t < 0) {
        json_decref(o);
        snprintf(err, errlen, "etcd lease keepalive reply is malformed");
        return KP_ETCD_EPROTO;
    }
    json_decref(o);
    if (t == 0) {
        snprintf(err, errlen, "etcd: lease %llx has expired", (unsigned long long)id);
        return KP_ETCD_ENOTFOUND;
    }
    if (ttl) *ttl = t;
    return 0;
}

int kp_etcd_lease_revoke(kp_etcd_t *e, int64_t id, char *err, size_t errlen)
{
    json_t *req = json_object();
    json_object_set_new(req, "ID", i64_json(id));
    json_t *o;
    int rc = call(e, "/v3/lease/revoke", req, 0, &o, err, errlen);
    json_decref(o);
    return rc;
}

/* ---- election ---- */

void kp_etcd_leader_key_free(kp_etcd_leader_key_t *lk)
{
    if (!lk) return;
    free(lk->name);
    free(lk->key);
    memset(lk, 0, sizeof(*lk));
}

static json_t *leader_key_json(const kp_etcd_leader_key_t *lk)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", b64_json(lk->name, lk->name_len));
    json_object_set_new(o, "key", b64_json(lk->key, lk->key_len));
    json_object_set_new(o, "rev", i64_json(lk->rev));
    json_object_set_new(o, "lease", i64_json(lk->lease));
    return o;
}

int kp_etcd_campaign(kp_etcd_t *e, const char *name, int64_t lease, const void *value,
                     size_t value_len, int timeout_ms, kp_etcd_leader_key_t *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = key_check(name, err, errlen);
    if (rc) return rc;
    json_t *req = json_object();
    json_object_set_new(req, "name", b64_json(name, strlen(name)));
    json_object_set_new(req, "lease", i64_json(lease));
    json_object_set_new(req, "value", b64_json(value, value_len));
    json_t *o;
    rc = call(e, "/v3/election/campaign", req, timeout_ms, &o, err, errlen);
    if (rc) return rc;
    json_t *l = json_object_get(o, "leader");
    if (!json_is_object(l) || kp_etcd__get_b64(l, "name", 1, &out->name, &out->name_len) < 0 ||
        kp_etcd__get_b64(l, "key", 1, &out->key, &out->key_len) < 0 ||
        kp_etcd__get_i64(l, "rev", &out->rev) < 0 ||
        kp_etcd__get_i64(l, "lease", &out->lease) < 0) {
        json_decref(o);
        kp_etcd_leader_key_free(out);
        snprintf(err, errlen, "etcd campaign reply is malformed");
        return KP_ETCD_EPROTO;
    }
    json_decref(o);
    return 0;
}

int kp_etcd_election_leader(kp_etcd_t *e, const char *name, kp_etcd_kv_t *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = key_check(name, err, errlen);
    if (rc) return rc;
    json_t *req = json_object();
    json_object_set_new(req, "name", b64_json(name, strlen(name)));
    json_t *o;
    rc = call(e, "/v3/election/leader", req, 0, &o, err, errlen);
    if (rc) return rc;
    json_t *kv = json_object_get(o, "kv");
    if (!kv) {
        json_decref(o);
        snprintf(err, errlen, "etcd: election %s has no leader", name);
        return KP_ETCD_ENOTFOUND;
    }
    rc = kp_etcd__parse_kv(kv, out);
    json_decref(o);
    if (rc < 0) {
        snprintf(err, errlen, "etcd election leader reply is malformed");
        return KP_ETCD_EPROTO;
    }
    return 0;
}

int kp_etcd_resign(kp_etcd_t *e, const kp_etcd_leader_key_t *lk, char *err, size_t errlen)
{
    json_t *req = json_object();
    json_object_set_new(req, "leader", leader_key_json(lk));
    json_t *o;
    int rc = call(e, "/v3/election/resign", req, 0, &o, err, errlen);
    json_decref(o);
    return rc;
}

int kp_etcd_proclaim(kp_etcd_t *e, const kp_etcd_leader_key_t *lk, const void *value,
                     size_t value_len, char *err, size_t errlen)
{
    json_t *req = json_object();
    json_object_set_new(req, "leader", leader_key_json(lk));
    json_object_set_new(req, "value", b64_json(value, value_len));
    json_t *o;
    int rc = call(e, "/v3/election/proclaim", req, 0, &o, err, errlen);
    json_decref(o);
    return rc;
}

/* ---- watch ---- */

struct kp_etcd_watch {
    kp_etcd_t *e;
    char *prefix;
    kp_etcd_watch_fn fn;
    void *arg;
    pthread_t thread;
    atomic_int stop;
    /* the revision the next stream starts at; only the watch thread writes it */
    int64_t next_rev;
    pthread_mutex_t stats_lock;
    kp_etcd_watch_stats_t stats;
    /* per stream */
    kp_etcd_splitter_t split;
    int compacted;
    int broken; /* protocol error or server cancel: drop this stream */
};

static void stats_add(kp_etcd_watch_t *w, int64_t reconnects, int64_t resets, int64_t events)
{
    pthread_mutex_lock(&w->stats_lock);
    w->stats.reconnects += reconnects;
    w->stats.resets += resets;
    w->stats.events += events;
    w->stats.next_revision = w->next_rev;
    pthread_mutex_unlock(&w->stats_lock);
}

void kp_etcd_watch_stats(kp_etcd_watch_t *w, kp_etcd_watch_stats_t *out)
{
    pthread_mutex_lock(&w->stats_lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->stats_lock);
}

/* Reads the whole prefix and delivers it as a RESET. */
static int watch_reset(kp_etcd_watch_t *w)
{
    char err[256];
    kp_etcd_range_t r;
    int rc = kp_etcd_range(w->e, w->prefix, NULL, 1, 0, &r, err, sizeof(err));
    if (rc) {
        kp_warn("etcd", "watch %s: cannot read the prefix: %s", w->prefix, err);
        return rc;
    }
    kp_etcd_event_t *evs = calloc(r.count ? r.count : 1, sizeof(*evs));
    if (!evs) {
        kp_etcd_range_free(&r);
        return KP_ETCD_EPROTO;
    }
    for (int i = 0; i < r.count; i++) {
        evs[i].type = KP_ETCD_EV_PUT;
        evs[i].kv = r.kvs[i];
    }
    w->fn(w->arg, KP_ETCD_WATCH_RESET, evs, r.count, r.revision);
    w->next_rev = r.revision + 1;
    free(evs);
    kp_etcd_range_free(&r);
    stats_add(w, 0, 1, 0);
    return 0;
}

static int watch_on_msg(void *arg, const char *msg, size_t len)
{
    kp_etcd_watch_t *w = arg;
    char err[256];
    kp_etcd_watch_msg_t m;
    int rc = kp_etcd_parse_watch_msg(msg, len, &m, err, sizeof(err));
    if (rc) {
        kp_warn("etcd", "watch %s: %s", w->prefix, err);
        w->broken = 1;
        return rc;
    }
    if (m.canceled) {
        if (m.compact_revision > 0) {
            kp_info("etcd", "watch %s: revision %lld compacted (now %lld): reading again",
                    w->prefix, (long long)w->next_rev, (long long)m.compact_revision);
            w->compacted = 1;
        } else {
            w->broken = 1;
        }
        kp_etcd_watch_msg_free(&m);
        return KP_ETCD_ECOMPACTED;
    }
    if (m.nevents > 0) {
        int64_t last = 0;
        for (int i = 0; i < m.nevents; i++)
            if (m.events[i].kv.mod_revision > last) last = m.events[i].kv.mod_revision;
        if (last < w->next_rev) last = w->next_rev - 1; /* a hostile revision cannot rewind */
        w->fn(w->arg, KP_ETCD_WATCH_EVENTS, m.events, m.nevents, last);
        w->next_rev = last + 1;
        stats_add(w, 0, 0, m.nevents);
    } else if (!m.created && m.revision >= w->next_rev) {
        w->next_rev = m.revision + 1; /* a progress notification */
        stats_add(w, 0, 0, 0);
    }
    kp_etcd_watch_msg_free(&m);
    return 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    kp_etcd_watch_t *w = arg;
    size_t n = size * nmemb;
    if (kp_etcd_splitter_feed(&w->split, ptr, n, watch_on_msg, w) != 0) {
        if (!w->compacted) w->broken = 1;
        return 0;
    }
    return n;
}

/* The stream's socket: keepalive probes sooner and fewer than the kernel's default count
 * (curl sets only the idle time and the interval). */
static int watch_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKOPT_OK;
    int cnt = KP_ETCD_WATCH_KEEPCNT;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0)
        kp_debug("etcd", "watch: TCP_KEEPCNT: %s", strerror(errno));
    return CURL_SOCKOPT_OK;
}

static int watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    kp_etcd_watch_t *w = arg;
    return atomic_load(&w->stop) ? 1 : 0;
}

/* One stream on one endpoint, until it ends. 1 when it got as far as an HTTP answer. */
static int watch_stream(kp_etcd_watch_t *w, const char *endpoint)
{
    json_t *cr = json_object(), *req = json_object();
    set_range_fields(cr, w->prefix, NULL, 1);
    json_object_set_new(cr, "start_revision", i64_json(w->next_rev));
    json_object_set_new(cr, "progress_notify", json_true());
    json_object_set_new(req, "create_request", cr);
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!payload) return 0;
    char url[640];
    snprintf(url, sizeof(url), "%s/v3/watch", endpoint);
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    /* a member cut off from its cluster's leader cancels the watch (then the next endpoint
     * is tried) instead of keeping a stream that can deliver nothing (etcd issue 10819) */
    hdrs = curl_slist_append(hdrs, "Grpc-Metadata-hasleader: true");
    if (!h || !hdrs) {
        free(payload);
        curl_slist_free_all(hdrs);
        if (h) curl_easy_cleanup(h);
        return 0;
    }
    setup_common(h, url, hdrs, 0);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)KP_ETCD_WATCH_KEEPIDLE_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)KP_ETCD_WATCH_KEEPINTVL_S);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, watch_sockopt);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
    kp_etcd_splitter_init(&w->split);
    w->compacted = w->broken = 0;
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (!atomic_load(&w->stop) && !w->compacted)
        kp_info("etcd", "watch %s on %s ended: %s", w->prefix, endpoint,
                cc == CURLE_OK ? "stream closed" : curl_easy_strerror(cc));
    kp_etcd_splitter_free(&w->split);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(payload);
    return status != 0;
}

static void watch_sleep(kp_etcd_watch_t *w, int ms)
{
    for (int slept = 0; slept < ms && !atomic_load(&w->stop); slept += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *watch_main(void *arg)
{
    kp_etcd_watch_t *w = arg;
    int backoff = KP_ETCD_WATCH_BACKOFF_MIN_MS;
    int need_reset = w->next_rev == 0, first = 1;
    while (!atomic_load(&w->stop)) {
        if (need_reset) {
            if (watch_reset(w) != 0) {
                watch_sleep(w, backoff);
                backoff = backoff * 2 > KP_ETCD_WATCH_BACKOFF_MAX_MS ? KP_ETCD_WATCH_BACKOFF_MAX_MS
                                                                     : backoff * 2;
                continue;
            }
            need_reset = 0;
        }
        pthread_mutex_lock(&w->e->lock);
        int start = w->e->current;
        pthread_mutex_unlock(&w->e->lock);
        int answered = 0;
        for (int k = 0; k < w->e->nendpoints && !atomic_load(&w->stop); k++) {
            int idx = (start + k) % w->e->nendpoints;
            if (!first) stats_add(w, 1, 0, 0);
            first = 0;
            answered = watch_stream(w, w->e->endpoints[idx]);
            if (answered) break;
        }
        if (atomic_load(&w->stop)) break;
        if (w->compacted) {
            need_reset = 1;
            continue;
        }
        if (answered && !w->broken) backoff = KP_ETCD_WATCH_BACKOFF_MIN_MS;
        watch_sleep(w, backoff);
        backoff =
            backoff * 2 > KP_ETCD_WATCH_BACKOFF_MAX_MS ? KP_ETCD_WATCH_BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

kp_etcd_watch_t *kp_etcd_watch_start(kp_etcd_t *e, const char *prefix, int64_t start_revision,
                                     kp_etcd_watch_fn fn, void *arg, char *err, size_t errlen)
{
    if (key_check(prefix, err, errlen) || !fn || start_revision < 0) {
        snprintf(err, errlen, "etcd watch: bad arguments");
        return NULL;
    }
    kp_etcd_watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->e = e;
    w->prefix = strdup(prefix);
    w->fn = fn;
    w->arg = arg;
    w->next_rev = start_revision;
    pthread_mutex_init(&w->stats_lock, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "etcd watch: cannot start a thread: %s", strerror(errno));
        pthread_mutex_destroy(&w->stats_lock);
        free(w->prefix);
        free(w);
        return NULL;
    }
    return w;
}

void kp_etcd_watch_stop(kp_etcd_watch_t *w)
{
    if (!w) return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->stats_lock);
    free(w->prefix);
    free(w);
}
