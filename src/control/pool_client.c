/* pool_client.c — librdkafka admin calls behind a small synchronous API (see pool_client.h). */
#include "control/pool_client.h"

#include "auth/acl.h"
#include "control/pool_acl_raw.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crc32c.h"
#include "core/hmap.h"
#include "core/logging.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kp_pool_client {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int timeout_ms;
    char *bootstrap;
    uintptr_t call; /* sequence number of the latest call, its options' opaque */
    /* for ACLs librdkafka cannot express (pool_acl_raw.h) */
    kp_pool_raw_t *raw;
    char *ca_path, *cert_path, *key_path;
    const int *cancel; /* nonzero: give up waiting (the owner is stopping) */
    /* Partition counts from one all-topics Metadata request (see partition_count): name ->
     * PARTS_PACK(partitions, replication). parts_at_ms 0: stale. */
    kp_hmap_t parts;
    int64_t parts_at_ms;
    char **names; /* the same answer's topic names, sorted: what to describe ahead */
    size_t nnames;
    /* Topic overrides from batched DescribeConfigs (see kp_pool_describe_topic): name ->
     * topic_cfg_t, valid while cfgs_at_ms is within PARTS_CACHE_MS. */
    kp_hmap_t cfgs;
    int64_t cfgs_at_ms;
    /* Every literal topic ACL binding, sorted by resource name (see kp_pool_describe_acls),
     * valid while acls_at_ms is within PARTS_CACHE_MS. */
    kp_pool_acl_t *acls;
    int nacls;
    int64_t acls_at_ms;
};

typedef struct topic_cfg {
    int nconfigs;
    char **keys, **values;
} topic_cfg_t;

/* Topics described per DescribeConfigs request during a drift check. */
#define DESCRIBE_BATCH 100

static void names_free(kp_pool_client_t *pc);
static void cfgs_clear(kp_pool_client_t *pc);
static void acls_clear(kp_pool_client_t *pc);

/* How long one all-topics Metadata answer serves partition counts. A drift check of every
 * Topic (control.resync.interval.ms) then costs one Metadata request, not one per topic;
 * what this client changes itself (create, partitions, delete) is never served stale. */
#define PARTS_CACHE_MS 5000
#define PARTS_PACK(p, r)                                                                           \
    ((void *)(uintptr_t)((1ull << 63) | ((uint64_t)(uint32_t)(p) << 16) | (uint16_t)(r)))

void kp_pool_client_set_cancel(kp_pool_client_t *pc, const int *flag)
{
    pc->cancel = flag;
}

static int cancelled(const kp_pool_client_t *pc)
{
    return pc->cancel && __atomic_load_n(pc->cancel, __ATOMIC_RELAXED);
}

/* Waits are cut in slices this long so a stop is noticed. */
#define WAIT_SLICE_MS 200

/* rd_kafka_metadata in slices, so that a stop does not wait out a down pool. */
static rd_kafka_resp_err_t metadata(kp_pool_client_t *pc, int all, rd_kafka_topic_t *rkt,
                                    const struct rd_kafka_metadata **md)
{
    int64_t deadline = kp_mono_ms() + pc->timeout_ms;
    for (;;) {
        int64_t left = deadline - kp_mono_ms();
        int slice = left < 500 ? (int)(left > 1 ? left : 1) : 500;
        rd_kafka_resp_err_t e = rd_kafka_metadata(pc->rk, all, rkt, md, slice);
        if (e != RD_KAFKA_RESP_ERR__TIMED_OUT || left <= 500) return e;
        if (cancelled(pc)) return RD_KAFKA_RESP_ERR__DESTROY;
    }
}

/* librdkafka's own log lines, in our format (its levels are syslog's). */
static void rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kp_logf(level <= 3   ? KP_LOG_WARN
            : level <= 6 ? KP_LOG_INFO
                         : KP_LOG_DEBUG,
            "pool-client", "%s: %s", fac, buf);
}

kp_pool_client_t *kp_pool_client_new(const kp_pool_conn_t *c, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
#define SET(k, v)                                                                                  \
    if (rd_kafka_conf_set(conf, k, v, es, sizeof(es)) != RD_KAFKA_CONF_OK) {                       \
        snprintf(err, errlen, "%s: %s", k, es);                                                    \
        rd_kafka_conf_destroy(conf);                                                               \
        return NULL;                                                                               \
    }
    SET("bootstrap.servers", c->bootstrap);
    SET("client.id", "kpool-control-plane");
    SET("log_level", "4");
    rd_kafka_conf_set_log_cb(conf, rk_log);
    SET("reconnect.backoff.max.ms", "2000");
    /* admin requests are request/response: with Nagle, a request librdkafka writes in two
     * TLS records waits for the pool's delayed ACK (~40 ms) before its tail is sent */
    SET("socket.nagle.disable", "true");
    if (c->cert_path || c->ca_path) {
        SET("security.protocol", "ssl");
        if (c->ca_path) SET("ssl.ca.location", c->ca_path);
        if (c->cert_path) SET("ssl.certificate.location", c->cert_path);
        if (c->key_path) SET("ssl.key.location", c->key_path);
    }
#undef SET
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    if (!rk) {
        snprintf(err, errlen, "cannot create a Kafka client: %s", es);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
        return NULL;
    }
    kp_pool_client_t *pc = kp_xcalloc(1, sizeof(*pc));
    kp_hmap_init(&pc->parts);
    kp_hmap_init(&pc->cfgs);
    pc->rk = rk;
    pc->q = rd_kafka_queue_new(rk);
    pc->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 10000;
    pc->bootstrap = kp_xstrdup(c->bootstrap);
    pc->ca_path = c->ca_path ? kp_xstrdup(c->ca_path) : NULL;
    pc->cert_path = c->cert_path ? kp_xstrdup(c->cert_path) : NULL;
    pc->key_path = c->key_path ? kp_xstrdup(c->key_path) : NULL;
    kp_pool_conn_t raw = {pc->bootstrap, pc->ca_path, pc->cert_path, pc->key_path, pc->timeout_ms};
    pc->raw = kp_pool_raw_new(&raw);
    return pc;
}

void kp_pool_client_free(kp_pool_client_t *pc)
{
    if (!pc) return;
    rd_kafka_queue_destroy(pc->q);
    rd_kafka_destroy(pc->rk);
    kp_hmap_free(&pc->parts);
    names_free(pc);
    cfgs_clear(pc);
    kp_hmap_free(&pc->cfgs);
    acls_clear(pc);
    kp_pool_raw_free(pc->raw);
    free(pc->bootstrap);
    free(pc->ca_path);
    free(pc->cert_path);
    free(pc->key_path);
    free(pc);
}

static rd_kafka_AdminOptions_t *options(kp_pool_client_t *pc, rd_kafka_admin_op_t op)
{
    char es[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(pc->rk, op);
    rd_kafka_AdminOptions_set_request_timeout(o, pc->timeout_ms, es, sizeof(es));
    rd_kafka_AdminOptions_set_opaque(o, (void *)++pc->call);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        rd_kafka_AdminOptions_set_operation_timeout(o, pc->timeout_ms, es, sizeof(es));
    return o;
}

/* Waits for the result event of the call just made. NULL with err filled on timeout. */
static rd_kafka_event_t *wait_result(kp_pool_client_t *pc, const char *what, char *err,
                                     size_t errlen)
{
    /* every call shares the one queue: a late result of an earlier call that we gave up on
     * must not be taken for this call's (same type, another topic) — match the opaque */
    int64_t deadline = kp_mono_ms() + pc->timeout_ms + 2000;
    rd_kafka_event_t *ev = NULL;
    for (;;) {
        int64_t left = deadline - kp_mono_ms();
        if (left <= 0) break;
        if (cancelled(pc)) {
            snprintf(err, errlen, "%s: the control plane is stopping", what);
            return NULL;
        }
        ev = rd_kafka_queue_poll(pc->q, (int)(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS));
        if (!ev) continue;
        if ((uintptr_t)rd_kafka_event_opaque(ev) == pc->call) break;
        rd_kafka_event_destroy(ev); /* a stale answer */
        ev = NULL;
    }
    if (!ev) {
        snprintf(err, errlen, "%s: no answer from the pool at %s within %d ms", what, pc->bootstrap,
                 pc->timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "%s: %s (pool at %s)", what, rd_kafka_event_error_string(ev),
                 pc->bootstrap);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

/* ---- topics ---- */

void kp_pool_topic_free(kp_pool_topic_t *t)
{
    for (int i = 0; i < t->nconfigs; i++) {
        free(t->config_keys[i]);
        free(t->config_values[i]);
    }
    free(t->config_keys);
    free(t->config_values);
    memset(t, 0, sizeof(*t));
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(kp_pool_client_t *pc)
{
    for (size_t i = 0; i < pc->nnames; i++) free(pc->names[i]);
    free(pc->names);
    pc->names = NULL;
    pc->nnames = 0;
}

static void parts_fill(kp_pool_client_t *pc, const struct rd_kafka_metadata *md)
{
    kp_hmap_free(&pc->parts);
    kp_hmap_init(&pc->parts);
    names_free(pc);
    pc->names = kp_xcalloc((size_t)md->topic_cnt + 1, sizeof(char *));
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (t->err) continue;
        int16_t repl = t->partition_cnt ? (int16_t)t->partitions[0].replica_cnt : 0;
        kp_hmap_put(&pc->parts, t->topic, strlen(t->topic), PARTS_PACK(t->partition_cnt, repl));
        pc->names[pc->nnames++] = kp_xstrdup(t->topic);
    }
    qsort(pc->names, pc->nnames, sizeof(char *), cmp_name);
    pc->parts_at_ms = kp_mono_ms();
}

static void cfgs_clear(kp_pool_client_t *pc)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&pc->cfgs, &it, &k, &kl, &v)) {
        topic_cfg_t *tc = v;
        for (int i = 0; i < tc->nconfigs; i++) {
            free(tc->keys[i]);
            free(tc->values[i]);
        }
        free(tc->keys);
        free(tc->values);
        free(tc);
    }
    kp_hmap_free(&pc->cfgs);
    kp_hmap_init(&pc->cfgs);
    pc->cfgs_at_ms = 0;
}

/* What this client is about to change makes both caches wrong. */
static void caches_invalidate(kp_pool_client_t *pc)
{
    pc->parts_at_ms = 0;
    cfgs_clear(pc);
    acls_clear(pc);
}

/* Partitions and replication factor of one topic.
 *
 * Not through a Metadata request for that topic: librdkafka needs a topic handle for it
 * (rd_kafka_topic_new), keeps every topic it ever had a handle for until the client is
 * destroyed, and then scans all of them, and all their partitions, every second on its
 * own threads — with 5,000 Topics that was most of an idle `kpool up`'s CPU. One
 * all-topics Metadata answer instead serves every topic for PARTS_CACHE_MS and leaves the
 * client with no topic handles at all. A topic missing from a cached answer asks again
 * once (it may have been created since). Returns 0, -1 with err when the pool gave no
 * answer, or 1 with err when an answer asked just now does not list the topic. */
static int partition_count(kp_pool_client_t *pc, const char *name, int32_t *parts, int16_t *repl,
                           char *err, size_t errlen)
{
    size_t nl = strlen(name);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = pc->parts_at_ms && kp_mono_ms() - pc->parts_at_ms < PARTS_CACHE_MS;
        if (fresh) {
            uintptr_t v = (uintptr_t)kp_hmap_get(&pc->parts, name, nl);
            if (v) {
                *parts = (int32_t)(uint32_t)((v >> 16) & 0xffffffffu);
                *repl = (int16_t)(v & 0xffff);
                return 0;
            }
            if (attempt > 0) break;
        }
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = metadata(pc, 1, NULL, &md);
        if (e) {
            snprintf(err, errlen, "metadata of %s: %s (pool at %s)", name, rd_kafka_err2str(e),
                     pc->bootstrap);
            return -1;
        }
        parts_fill(pc, md);
        rd_kafka_metadata_destroy(md);
    }
    snprintf(err, errlen, "metadata of %s: topic missing", name);
    return 1;
}

/* Up to DESCRIBE_BATCH names: `name`, then the topics after it in name order (the order a
 * drift check goes through them), as far as the last Metadata answer knows them. */
static int describe_batch_names(kp_pool_client_t *pc, const char *name, const char **out)
{
    int n = 0;
    out[n++] = name;
    if (!pc->parts_at_ms || kp_mono_ms() - pc->parts_at_ms >= PARTS_CACHE_MS) return n;
    size_t lo = 0, hi = pc->nnames;
    while (lo < hi) { /* first name > `name` */
        size_t mid = (lo + hi) / 2;
        if (strcmp(pc->names[mid], name) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < pc->nnames && n < DESCRIBE_BATCH; i++)
        if (!kp_hmap_get(&pc->cfgs, pc->names[i], strlen(pc->names[i]))) out[n++] = pc->names[i];
    return n;
}

static topic_cfg_t *cfg_from_resource(const rd_kafka_ConfigResource_t *r)
{
    size_t nc;
    const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(r, &nc);
    topic_cfg_t *tc = kp_xcalloc(1, sizeof(*tc));
    tc->keys = kp_xcalloc(nc + 1, sizeof(char *));
    tc->values = kp_xcalloc(nc + 1, sizeof(char *));
    for (size_t i = 0; i < nc; i++) {
        if (rd_kafka_ConfigEntry_source(ce[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
            continue;
        const char *v = rd_kafka_ConfigEntry_value(ce[i]);
        tc->keys[tc->nconfigs] = kp_xstrdup(rd_kafka_ConfigEntry_name(ce[i]));
        tc->values[tc->nconfigs++] = kp_xstrdup(v ? v : "");
    }
    return tc;
}

/* describe_configs through the raw connection (pool_acl_raw.h): DescribeConfigs without
 * synonyms, which librdkafka always asks for and parses (~30 entries and their synonyms per
 * topic, most of a drift check's CPU at 10,000 topics). Same answers: each topic's
 * DYNAMIC_TOPIC_CONFIG entries. Returns describe_configs' 0 or -1, or -2 when the pool gave
 * no usable answer there (then librdkafka, which knows every broker, is asked). */
static int describe_configs_raw(kp_pool_client_t *pc, const char *name, const char **names, int n,
                                int *exists, char *err, size_t errlen)
{
    kp_pool_raw_topic_cfg_t *t;
    int cnt;
    char rerr[256];
    if (cancelled(pc)) return -2; /* librdkafka's wait says so */
    if (kp_pool_raw_describe_topic_configs(pc->raw, names, n, &t, &cnt, rerr, sizeof(rerr)) < 0) {
        kp_logf(KP_LOG_DEBUG, "pool-client", "describe topics without librdkafka: %s", rerr);
        return -2;
    }
    int rc = -1;
    snprintf(err, errlen, "describe topic %s: no answer for it", name);
    for (int i = 0; i < cnt; i++) {
        const char *rn = t[i].name;
        int mine = !strcmp(rn, name);
        if (!t[i].error && !kp_hmap_get(&pc->cfgs, rn, strlen(rn))) {
            topic_cfg_t *tc = kp_xcalloc(1, sizeof(*tc));
            tc->nconfigs = t[i].nconfigs;
            tc->keys = t[i].keys; /* moved: NULL-terminated as cfg_from_resource's */
            tc->values = t[i].values;
            t[i].keys = t[i].values = NULL;
            t[i].nconfigs = 0;
            kp_hmap_put(&pc->cfgs, rn, strlen(rn), tc);
        }
        if (!mine) continue;
        if (!t[i].error || t[i].error == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            *exists = !t[i].error;
            err[0] = 0;
            rc = 0;
        } else {
            snprintf(err, errlen, "describe topic %s: %s", name,
                     t[i].message ? t[i].message
                                  : rd_kafka_err2str((rd_kafka_resp_err_t)t[i].error));
        }
    }
    kp_pool_raw_topic_cfgs_free(t, cnt);
    return rc;
}

/* One DescribeConfigs for `name` and the topics likely asked next; their overrides go to
 * the cache. Returns 0 with *exists, or -1 with err (about `name` only). */
static int describe_configs(kp_pool_client_t *pc, const char *name, int *exists, char *err,
                            size_t errlen)
{
    if (!pc->cfgs_at_ms || kp_mono_ms() - pc->cfgs_at_ms >= PARTS_CACHE_MS) {
        cfgs_clear(pc);
        pc->cfgs_at_ms = kp_mono_ms();
    }
    const char *names[DESCRIBE_BATCH];
    int n = describe_batch_names(pc, name, names);
    int rc = describe_configs_raw(pc, name, names, n, exists, err, errlen);
    if (rc != -2) return rc;
    rd_kafka_ConfigResource_t *res[DESCRIBE_BATCH];
    for (int i = 0; i < n; i++)
        res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, names[i]);
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(pc->rk, res, (size_t)n, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    for (int i = 0; i < n; i++) rd_kafka_ConfigResource_destroy(res[i]);
    rd_kafka_event_t *ev = wait_result(pc, "describe topic", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
    rc = -1;
    snprintf(err, errlen, "describe topic %s: no answer for it", name);
    for (size_t i = 0; i < cnt; i++) {
        const char *rn = rd_kafka_ConfigResource_name(rs[i]);
        rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[i]);
        int mine = !strcmp(rn, name);
        if (!e && !kp_hmap_get(&pc->cfgs, rn, strlen(rn)))
            kp_hmap_put(&pc->cfgs, rn, strlen(rn), cfg_from_resource(rs[i]));
        if (!mine) continue;
        if (!e || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            *exists = !e;
            err[0] = 0;
            rc = 0;
        } else {
            const char *m = rd_kafka_ConfigResource_error_string(rs[i]);
            snprintf(err, errlen, "describe topic %s: %s", name, m ? m : rd_kafka_err2str(e));
        }
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* A drift check describes every topic of the pool. One DescribeConfigs request per topic
 * cost ~0.4 ms of CPU each (thread hand-offs inside librdkafka, the round trip): 10,000
 * Topics every control.resync.interval.ms kept an idle `kpool up` at ~10 % of a core. So
 * configs are asked DESCRIBE_BATCH topics at a time (the one wanted and those after it in
 * name order) and partition counts come from one all-topics Metadata answer; both serve
 * for PARTS_CACHE_MS. What this client changes itself invalidates them, so only changes
 * made by others (through Kafka's admin API) may be seen up to PARTS_CACHE_MS late. */
/* The topic's cached overrides (asked DESCRIBE_BATCH at a time when stale): 0 with *tc (NULL
 * when the topic does not exist), or -1 with err. */
static int topic_cfg(kp_pool_client_t *pc, const char *name, topic_cfg_t **tc, char *err,
                     size_t errlen)
{
    /* DescribeConfigs first: it tells "missing" without asking the pool to auto-create it,
     * which a Metadata request for one topic might */
    int fresh = pc->cfgs_at_ms && kp_mono_ms() - pc->cfgs_at_ms < PARTS_CACHE_MS;
    *tc = fresh ? kp_hmap_get(&pc->cfgs, name, strlen(name)) : NULL;
    if (*tc) return 0;
    int exists = 0;
    if (describe_configs(pc, name, &exists, err, errlen) < 0) return -1;
    if (!exists) return 0;
    *tc = kp_hmap_get(&pc->cfgs, name, strlen(name));
    if (!*tc) {
        snprintf(err, errlen, "describe topic %s: no answer for it", name);
        return -1;
    }
    return 0;
}

int kp_pool_describe_topic(kp_pool_client_t *pc, const char *name, kp_pool_topic_t *out, char *err,
                           size_t errlen)
{
    /* Two answers, DescribeConfigs (overrides, maybe cached) then Metadata (partitions):
     * a topic deleted by someone else in between is in the first and missing from the
     * second, asked just now. It is gone, not an error: the overrides are asked again,
     * uncached, and "missing" from them is the answer (an error only if the two still
     * disagree). As an error it failed the very pass that was to repair that drift. */
    for (int attempt = 0;; attempt++) {
        memset(out, 0, sizeof(*out));
        err[0] = 0;
        topic_cfg_t *tc;
        if (topic_cfg(pc, name, &tc, err, errlen) < 0) return -1;
        if (!tc) return 0;
        out->exists = 1;
        out->config_keys = kp_xcalloc((size_t)tc->nconfigs + 1, sizeof(char *));
        out->config_values = kp_xcalloc((size_t)tc->nconfigs + 1, sizeof(char *));
        for (int i = 0; i < tc->nconfigs; i++) {
            out->config_keys[i] = kp_xstrdup(tc->keys[i]);
            out->config_values[i] = kp_xstrdup(tc->values[i]);
        }
        out->nconfigs = tc->nconfigs;
        int rc = partition_count(pc, name, &out->partitions, &out->replication, err, errlen);
        if (rc == 0) return 0;
        kp_pool_topic_free(out);
        if (rc < 0 || attempt > 0) return -1;
        cfgs_clear(pc);
    }
}

/* 64 bits of one item (two CRC-32Cs, mixed): items are summed, so order does not matter. */
static uint64_t item_hash(const char *a, const char *b, const char *c, uint64_t n)
{
    uint32_t h1 = kp_crc32c(0, &n, sizeof(n)), h2 = kp_crc32c(0x6b706f6f, &n, sizeof(n));
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        const char *p = parts[i] ? parts[i] : "";
        size_t len = strlen(p) + 1; /* the NUL separates the parts */
        h1 = kp_crc32c(h1, p, len);
        h2 = kp_crc32c(h2 ^ h1, p, len);
    }
    uint64_t x = ((uint64_t)h1 << 32 | h2) + 0x9e3779b97f4a7c15ull; /* splitmix64's finalizer */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int kp_pool_topic_fingerprint(kp_pool_client_t *pc, const char *name, uint64_t *fp, char *err,
                              size_t errlen)
{
    err[0] = 0;
    topic_cfg_t *tc;
    if (topic_cfg(pc, name, &tc, err, errlen) < 0) return -1;
    uint64_t h = item_hash("exists", NULL, NULL, tc != NULL);
    if (tc) {
        int32_t parts;
        int16_t repl;
        if (partition_count(pc, name, &parts, &repl, err, errlen) != 0) return -1;
        h += item_hash("partitions", NULL, NULL, (uint64_t)(uint32_t)parts << 16 | (uint16_t)repl);
        for (int i = 0; i < tc->nconfigs; i++)
            h += item_hash("config", tc->keys[i], tc->values[i], 0);
    }
    kp_pool_acl_t *acls;
    int nacls;
    if (kp_pool_describe_acls(pc, KP_RES_TOPIC, name, KP_PAT_LITERAL, &acls, &nacls, err, errlen) <
        0)
        return -1;
    for (int i = 0; i < nacls; i++)
        h += item_hash(acls[i].principal, acls[i].host, acls[i].resource_name,
                       (uint64_t)(uint8_t)acls[i].resource_type << 24 |
                           (uint64_t)(uint8_t)acls[i].pattern_type << 16 |
                           (uint64_t)(uint8_t)acls[i].operation << 8 | (uint8_t)acls[i].permission);
    kp_pool_acls_free(acls, nacls);
    *fp = h;
    return 0;
}

static int topic_result(const rd_kafka_topic_result_t **tr, size_t cnt, const char *what,
                        const char *name, char *err, size_t errlen)
{
    if (cnt < 1) {
        snprintf(err, errlen, "%s %s: empty answer", what, name);
        return -1;
    }
    if (rd_kafka_topic_result_error(tr[0])) {
        const char *m = rd_kafka_topic_result_error_string(tr[0]);
        snprintf(err, errlen, "%s %s: %s", what, name,
                 m ? m : rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
        return -1;
    }
    return 0;
}

int kp_pool_create_topic(kp_pool_client_t *pc, const char *name, int32_t partitions,
                         int16_t replication, const char **keys, const char **values, int n,
                         char *err, size_t errlen)
{
    char es[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, replication, es, sizeof(es));
    if (!nt) {
        snprintf(err, errlen, "create topic %s: %s", name, es);
        return -1;
    }
    for (int i = 0; i < n; i++) rd_kafka_NewTopic_set_config(nt, keys[i], values[i]);
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    caches_invalidate(pc);
    rd_kafka_CreateTopics(pc->rk, &nt, 1, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = wait_result(pc, "create topic", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    int rc = topic_result(tr, cnt, "create topic", name, err, errlen);
    rd_kafka_event_destroy(ev);
    return rc;
}

int kp_pool_set_configs(kp_pool_client_t *pc, const char *name, const char **keys,
                        const char **values, int n, char *err, size_t errlen)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
    for (int i = 0; i < n; i++) rd_kafka_ConfigResource_set_config(res, keys[i], values[i]);
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    caches_invalidate(pc);
    rd_kafka_AlterConfigs(pc->rk, &res, 1, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = wait_result(pc, "alter configs", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
    int rc = 0;
    if (cnt < 1 || rd_kafka_ConfigResource_error(rs[0])) {
        const char *m = cnt ? rd_kafka_ConfigResource_error_string(rs[0]) : NULL;
        snprintf(err, errlen, "alter configs of %s: %s", name,
                 m     ? m
                 : cnt ? rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0]))
                       : "empty answer");
        rc = -1;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

int kp_pool_add_partitions(kp_pool_client_t *pc, const char *name, int32_t total, char *err,
                           size_t errlen)
{
    char es[256];
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(name, (size_t)total, es, sizeof(es));
    if (!np) {
        snprintf(err, errlen, "add partitions to %s: %s", name, es);
        return -1;
    }
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    caches_invalidate(pc);
    rd_kafka_CreatePartitions(pc->rk, &np, 1, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_event_t *ev = wait_result(pc, "add partitions", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &cnt);
    int rc = topic_result(tr, cnt, "add partitions to", name, err, errlen);
    rd_kafka_event_destroy(ev);
    return rc;
}

int kp_pool_delete_topic(kp_pool_client_t *pc, const char *name, char *err, size_t errlen)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    caches_invalidate(pc);
    rd_kafka_DeleteTopics(pc->rk, &dt, 1, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_event_t *ev = wait_result(pc, "delete topic", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    int rc = 0;
    if (cnt >= 1 && rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        rc = 0; /* already gone */
    else
        rc = topic_result(tr, cnt, "delete topic", name, err, errlen);
    rd_kafka_event_destroy(ev);
    return rc;
}

int kp_pool_list_topics(kp_pool_client_t *pc, char ***names, int *n, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = metadata(pc, 1, NULL, &md);
    *names = NULL;
    *n = 0;
    if (e) {
        snprintf(err, errlen, "list topics: %s (pool at %s)", rd_kafka_err2str(e), pc->bootstrap);
        return -1;
    }
    parts_fill(pc, md);
    *names = kp_xcalloc((size_t)md->topic_cnt + 1, sizeof(char *));
    for (int i = 0; i < md->topic_cnt; i++) {
        if (md->topics[i].topic[0] == '_' && md->topics[i].topic[1] == '_') continue;
        (*names)[(*n)++] = kp_xstrdup(md->topics[i].topic);
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* ---- brokers ---- */

/* The entry of broker id in c (added as down when missing). */
static kp_pool_broker_t *cluster_broker(kp_pool_cluster_t *c, int32_t id)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id) return &c->brokers[i];
    c->brokers = kp_xrealloc(c->brokers, (size_t)(c->nbrokers + 1) * sizeof(*c->brokers));
    c->brokers[c->nbrokers] = (kp_pool_broker_t){.id = id};
    return &c->brokers[c->nbrokers++];
}

static int cmp_broker(const void *a, const void *b)
{
    const kp_pool_broker_t *x = a, *y = b;
    if (!x->host != !y->host) return x->host ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int kp_pool_describe_cluster(kp_pool_client_t *pc, kp_pool_cluster_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = metadata(pc, 1, NULL, &md);
    if (e) {
        snprintf(err, errlen, "metadata: %s (pool at %s)", rd_kafka_err2str(e), pc->bootstrap);
        return -1;
    }
    for (int i = 0; i < md->broker_cnt; i++) {
        kp_pool_broker_t *b = cluster_broker(out, md->brokers[i].id);
        free(b->host);
        b->host = kp_xstrdup(md->brokers[i].host ? md->brokers[i].host : "");
        b->port = md->brokers[i].port;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (t->err) continue;
        for (int j = 0; j < t->partition_cnt; j++) {
            const struct rd_kafka_metadata_partition *p = &t->partitions[j];
            out->partitions++;
            if (p->leader < 0) out->offline++;
            if (p->isr_cnt < p->replica_cnt) out->under_replicated++;
            if (p->leader >= 0) cluster_broker(out, p->leader)->leaders++;
            for (int k = 0; k < p->replica_cnt; k++) {
                kp_pool_broker_t *b = cluster_broker(out, p->replicas[k]);
                b->replicas++;
                int in_isr = 0;
                for (int x = 0; x < p->isr_cnt && !in_isr; x++)
                    in_isr = p->isrs[x] == p->replicas[k];
                if (!in_isr) b->out_of_sync++;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    int32_t *ids, ctl;
    char **racks, ignore_err[256];
    int nracks;
    out->controller = -1;
    if (kp_pool_raw_controller_racks(pc->raw, &ctl, &ids, &racks, &nracks, ignore_err,
                                     sizeof(ignore_err)) == 0) {
        out->controller = ctl;
        for (int i = 0; i < nracks; i++)
            for (int k = 0; k < out->nbrokers && racks[i]; k++)
                if (out->brokers[k].id == ids[i] && out->brokers[k].host && !out->brokers[k].rack) {
                    out->brokers[k].rack = racks[i];
                    racks[i] = NULL;
                }
        kp_pool_raw_racks_free(ids, racks, nracks);
    }
    kp_pool_conn_t conf = {pc->bootstrap, pc->ca_path, pc->cert_path, pc->key_path, pc->timeout_ms};
    for (int i = 0; i < out->nbrokers; i++) {
        kp_pool_broker_t *b = &out->brokers[i];
        if (!b->host) continue;
        out->nlive++;
        char hp[300], ignore[256];
        snprintf(hp, sizeof(hp), "%s:%d", b->host, b->port);
        /* no answer: nothing known of its directories (Metadata said it is live) */
        kp_pool_raw_offline_log_dirs(&conf, hp, &b->offline_dirs, &b->noffline_dirs, ignore,
                                     sizeof(ignore));
    }
    qsort(out->brokers, (size_t)out->nbrokers, sizeof(*out->brokers), cmp_broker);
    return 0;
}

void kp_pool_cluster_free(kp_pool_cluster_t *c)
{
    for (int i = 0; i < c->nbrokers; i++) {
        free(c->brokers[i].host);
        for (int k = 0; k < c->brokers[i].noffline_dirs; k++) free(c->brokers[i].offline_dirs[k]);
        free(c->brokers[i].offline_dirs);
        free(c->brokers[i].rack);
    }
    free(c->brokers);
    memset(c, 0, sizeof(*c));
}

/* ---- ACLs ---- */

void kp_pool_acls_free(kp_pool_acl_t *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].resource_name);
        free(a[i].principal);
        free(a[i].host);
    }
    free(a);
}

static int describe_acls_call(kp_pool_client_t *pc, int8_t resource_type, const char *name,
                              int8_t pattern_type, kp_pool_acl_t **out, int *n, char *err,
                              size_t errlen)
{
    char es[256];
    *out = NULL;
    *n = 0;
    if (resource_type == KP_RES_TRANSACTIONAL_ID)
        return kp_pool_raw_describe_acls(pc->raw, resource_type, name, pattern_type, out, n, err,
                                         errlen);
    rd_kafka_AclBindingFilter_t *f = rd_kafka_AclBindingFilter_new(
        (rd_kafka_ResourceType_t)resource_type, name, (rd_kafka_ResourcePatternType_t)pattern_type,
        NULL, NULL, RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, es, sizeof(es));
    if (!f) {
        snprintf(err, errlen, "describe ACLs: %s", es);
        return -1;
    }
    rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
    rd_kafka_DescribeAcls(pc->rk, f, o, pc->q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_AclBinding_destroy(f);
    rd_kafka_event_t *ev = wait_result(pc, "describe ACLs", err, errlen);
    if (!ev) return -1;
    size_t cnt;
    const rd_kafka_AclBinding_t **acls =
        rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &cnt);
    *out = kp_xcalloc(cnt + 1, sizeof(**out));
    for (size_t i = 0; i < cnt; i++) {
        kp_pool_acl_t *a = &(*out)[(*n)++];
        a->resource_type = (int8_t)rd_kafka_AclBinding_restype(acls[i]);
        a->pattern_type = (int8_t)rd_kafka_AclBinding_resource_pattern_type(acls[i]);
        a->operation = (int8_t)rd_kafka_AclBinding_operation(acls[i]);
        a->permission = (int8_t)rd_kafka_AclBinding_permission_type(acls[i]);
        a->resource_name = kp_xstrdup(rd_kafka_AclBinding_name(acls[i]));
        a->principal = kp_xstrdup(rd_kafka_AclBinding_principal(acls[i]));
        a->host = kp_xstrdup(rd_kafka_AclBinding_host(acls[i]));
        if (a->resource_type == 0) { /* a type librdkafka does not know: asked for below */
            free(a->resource_name);
            free(a->principal);
            free(a->host);
            (*n)--;
        }
    }
    rd_kafka_event_destroy(ev);
    if (resource_type == KP_RES_ANY) { /* TransactionalId ACLs too, which librdkafka drops */
        kp_pool_acl_t *more;
        int nmore;
        if (kp_pool_raw_describe_acls(pc->raw, KP_RES_TRANSACTIONAL_ID, name, pattern_type, &more,
                                      &nmore, err, errlen) < 0) {
            kp_pool_acls_free(*out, *n);
            *out = NULL;
            *n = 0;
            return -1;
        }
        *out = kp_xrealloc(*out, (size_t)(*n + nmore + 1) * sizeof(**out));
        memcpy(*out + *n, more, (size_t)nmore * sizeof(*more));
        *n += nmore;
        free(more);
    }
    return 0;
}

static void acls_clear(kp_pool_client_t *pc)
{
    kp_pool_acls_free(pc->acls, pc->nacls);
    pc->acls = NULL;
    pc->nacls = 0;
    pc->acls_at_ms = 0;
}

static int cmp_acl_name(const void *a, const void *b)
{
    return strcmp(((const kp_pool_acl_t *)a)->resource_name,
                  ((const kp_pool_acl_t *)b)->resource_name);
}

/* ACLs of one topic (literal): a drift check asks this for every Topic, so one DescribeAcls
 * for all literal topic bindings serves every topic for PARTS_CACHE_MS (as partition counts
 * and configs do, see kp_pool_describe_topic); other filters go to the pool each time. */
int kp_pool_describe_acls(kp_pool_client_t *pc, int8_t resource_type, const char *name,
                          int8_t pattern_type, kp_pool_acl_t **out, int *n, char *err,
                          size_t errlen)
{
    if (!name || resource_type != KP_RES_TOPIC || pattern_type != KP_PAT_LITERAL)
        return describe_acls_call(pc, resource_type, name, pattern_type, out, n, err, errlen);
    if (!pc->acls_at_ms || kp_mono_ms() - pc->acls_at_ms >= PARTS_CACHE_MS) {
        acls_clear(pc);
        if (describe_acls_call(pc, KP_RES_TOPIC, NULL, KP_PAT_LITERAL, &pc->acls, &pc->nacls, err,
                               errlen) < 0)
            return -1;
        qsort(pc->acls, (size_t)pc->nacls, sizeof(*pc->acls), cmp_acl_name);
        pc->acls_at_ms = kp_mono_ms();
    }
    int lo = 0, hi = pc->nacls;
    while (lo < hi) { /* first binding with resource_name >= name */
        int mid = (lo + hi) / 2;
        if (strcmp(pc->acls[mid].resource_name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int end = lo;
    while (end < pc->nacls && !strcmp(pc->acls[end].resource_name, name)) end++;
    *n = 0;
    *out = kp_xcalloc((size_t)(end - lo) + 1, sizeof(**out));
    for (int i = lo; i < end; i++) {
        kp_pool_acl_t *a = &(*out)[(*n)++];
        *a = pc->acls[i];
        a->resource_name = kp_xstrdup(pc->acls[i].resource_name);
        a->principal = kp_xstrdup(pc->acls[i].principal);
        a->host = kp_xstrdup(pc->acls[i].host);
    }
    return 0;
}

int kp_pool_create_acls(kp_pool_client_t *pc, const kp_pool_acl_t *acls, int n, char *err,
                        size_t errlen)
{
    if (n == 0) return 0;
    caches_invalidate(pc);
    for (int i = 0; i < n; i++)
        if (acls[i].resource_type == KP_RES_TRANSACTIONAL_ID)
            return kp_pool_raw_create_acls(pc->raw, acls, n, err, errlen); /* all, at once */
    char es[256];
    rd_kafka_AclBinding_t **b = kp_xcalloc((size_t)n, sizeof(*b));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        b[i] = rd_kafka_AclBinding_new(
            (rd_kafka_ResourceType_t)acls[i].resource_type, acls[i].resource_name,
            (rd_kafka_ResourcePatternType_t)acls[i].pattern_type, acls[i].principal, acls[i].host,
            (rd_kafka_AclOperation_t)acls[i].operation,
            (rd_kafka_AclPermissionType_t)acls[i].permission, es, sizeof(es));
        if (!b[i]) {
            snprintf(err, errlen, "create ACL: %s", es);
            rc = -1;
        }
    }
    if (rc == 0) {
        rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_CREATEACLS);
        rd_kafka_CreateAcls(pc->rk, b, (size_t)n, o, pc->q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_event_t *ev = wait_result(pc, "create ACLs", err, errlen);
        if (!ev) {
            rc = -1;
        } else {
            size_t cnt;
            const rd_kafka_acl_result_t **res =
                rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
            for (size_t i = 0; i < cnt && rc == 0; i++) {
                const rd_kafka_error_t *e = rd_kafka_acl_result_error(res[i]);
                if (e) {
                    snprintf(err, errlen, "create ACL: %s", rd_kafka_error_string(e));
                    rc = -1;
                }
            }
            rd_kafka_event_destroy(ev);
        }
    }
    for (int i = 0; i < n; i++)
        if (b[i]) rd_kafka_AclBinding_destroy(b[i]);
    free(b);
    return rc;
}

int kp_pool_delete_acls(kp_pool_client_t *pc, const kp_pool_acl_t *acls, int n, char *err,
                        size_t errlen)
{
    if (n == 0) return 0;
    caches_invalidate(pc);
    for (int i = 0; i < n; i++)
        if (acls[i].resource_type == KP_RES_TRANSACTIONAL_ID)
            return kp_pool_raw_delete_acls(pc->raw, acls, n, err, errlen);
    char es[256];
    rd_kafka_AclBindingFilter_t **f = kp_xcalloc((size_t)n, sizeof(*f));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        f[i] = rd_kafka_AclBindingFilter_new(
            (rd_kafka_ResourceType_t)acls[i].resource_type, acls[i].resource_name,
            (rd_kafka_ResourcePatternType_t)acls[i].pattern_type, acls[i].principal, acls[i].host,
            (rd_kafka_AclOperation_t)acls[i].operation,
            (rd_kafka_AclPermissionType_t)acls[i].permission, es, sizeof(es));
        if (!f[i]) {
            snprintf(err, errlen, "delete ACL: %s", es);
            rc = -1;
        }
    }
    if (rc == 0) {
        rd_kafka_AdminOptions_t *o = options(pc, RD_KAFKA_ADMIN_OP_DELETEACLS);
        rd_kafka_DeleteAcls(pc->rk, f, (size_t)n, o, pc->q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_event_t *ev = wait_result(pc, "delete ACLs", err, errlen);
        if (!ev) {
            rc = -1;
        } else {
            size_t cnt;
            const rd_kafka_DeleteAcls_result_response_t **res =
                rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(ev), &cnt);
            for (size_t i = 0; i < cnt && rc == 0; i++) {
                const rd_kafka_error_t *e = rd_kafka_DeleteAcls_result_response_error(res[i]);
                if (e) {
                    snprintf(err, errlen, "delete ACL: %s", rd_kafka_error_string(e));
                    rc = -1;
                }
            }
            rd_kafka_event_destroy(ev);
        }
    }
    for (int i = 0; i < n; i++)
        if (f[i]) rd_kafka_AclBinding_destroy(f[i]);
    free(f);
    return rc;
}
