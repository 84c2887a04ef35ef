/*
 * pool_browse.c — a topic's partitions, consumer groups and records for the web console (see
 * pool_browse.h). One short-lived librdkafka consumer per call, never joining a group: it
 * reads with assign() and asks for offsets with the admin API, so it changes nothing in
 * the pool (no commit, no group membership).
 */
#include "control/pool_browse.h"

#include "control/pool_registry.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kp_logf(level <= 3   ? KP_LOG_WARN
            : level <= 6 ? KP_LOG_INFO
                         : KP_LOG_DEBUG,
            "console-client", "%s: %s", fac, buf);
}

static int timeout_of(const kp_pool_conn_t *c)
{
    return c->timeout_ms > 0 ? c->timeout_ms : 10000;
}

static rd_kafka_t *client_new(const kp_pool_conn_t *c, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rk_log);
    struct {
        const char *k, *v;
    } kv[] = {{"bootstrap.servers", c->bootstrap},
              {"client.id", "kpool-console"},
              {"log_level", "4"},
              {"socket.nagle.disable", "true"},
              /* librdkafka wants a group.id even for assign(); nothing joins or commits */
              {"group.id", "kpool-console"},
              {"enable.auto.commit", "false"},
              {"enable.auto.offset.store", "false"},
              {"enable.partition.eof", "true"},
              {"security.protocol", c->cert_path || c->ca_path ? "ssl" : "plaintext"},
              {"ssl.ca.location", c->ca_path},
              {"ssl.certificate.location", c->cert_path},
              {"ssl.key.location", c->key_path}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(*kv); i++) {
        if (!kv[i].v) continue;
        if (rd_kafka_conf_set(conf, kv[i].k, kv[i].v, es, sizeof(es)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s: %s", kv[i].k, es);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es));
    if (!rk) {
        snprintf(err, errlen, "cannot create a Kafka client: %s", es);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
    }
    return rk;
}

static void client_free(rd_kafka_t *rk)
{
    if (rk) rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* The topic's metadata (from an all-topics request, so a pool that auto-creates topics does
 * not create it). NULL with *missing set when the pool has no such topic, NULL with err
 * when the pool did not answer. *md is the caller's to destroy whenever it is set. */
static const rd_kafka_metadata_topic_t *topic_meta(rd_kafka_t *rk, const kp_pool_conn_t *c,
                                                   const char *topic,
                                                   const struct rd_kafka_metadata **md,
                                                   int *missing, char *err, size_t errlen)
{
    *md = NULL;
    *missing = 0;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, timeout_of(c));
    if (e) {
        *md = NULL;
        snprintf(err, errlen, "pool unreachable at %s: %s", c->bootstrap, rd_kafka_err2str(e));
        return NULL;
    }
    for (int i = 0; i < (*md)->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &(*md)->topics[i];
        if (strcmp(t->topic, topic) != 0) continue;
        if (!t->err) return t;
        if (t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            snprintf(err, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(t->err));
            return NULL;
        }
    }
    *missing = 1;
    snprintf(err, errlen, "topic %s does not exist in the pool (yet)", topic);
    return NULL;
}

/* The partitions of t sorted by id (at most KP_BROWSE_PARTITIONS_MAX; malloc'd). */
static int cmp_partition(const void *a, const void *b)
{
    const rd_kafka_metadata_partition_t *x = *(rd_kafka_metadata_partition_t *const *)a;
    const rd_kafka_metadata_partition_t *y = *(rd_kafka_metadata_partition_t *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

static const rd_kafka_metadata_partition_t **sorted_partitions(const rd_kafka_metadata_topic_t *t,
                                                               int *n)
{
    *n = t->partition_cnt < KP_BROWSE_PARTITIONS_MAX ? t->partition_cnt : KP_BROWSE_PARTITIONS_MAX;
    const rd_kafka_metadata_partition_t **v = kp_xcalloc((size_t)*n + 1, sizeof(*v));
    for (int i = 0; i < *n; i++) v[i] = &t->partitions[i];
    qsort(v, (size_t)*n, sizeof(*v), cmp_partition);
    return v;
}

static int watermarks(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic, int32_t p,
                      int64_t *lo, int64_t *hi, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi, timeout_of(c));
    if (!e) return 0;
    snprintf(err, errlen, "offsets of %s[%d]: %s (pool at %s)", topic, (int)p, rd_kafka_err2str(e),
             c->bootstrap);
    return -1;
}

static json_t *int_array(const int32_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

json_t *kp_pool_browse_partitions(const kp_pool_conn_t *c, const char *topic, int *missing,
                                  char *err, size_t errlen)
{
    *missing = 0;
    rd_kafka_t *rk = client_new(c, err, errlen);
    if (!rk) return NULL;
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t = topic_meta(rk, c, topic, &md, missing, err, errlen);
    json_t *out = NULL;
    if (t) {
        int n;
        const rd_kafka_metadata_partition_t **ps = sorted_partitions(t, &n);
        json_t *parts = json_array();
        int64_t total = 0;
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            int64_t lo, hi;
            ok = watermarks(rk, c, topic, ps[i]->id, &lo, &hi, err, errlen) == 0;
            if (!ok) break;
            total += hi - lo;
            json_array_append_new(parts,
                                  json_pack("{s:i, s:i, s:o, s:o, s:I, s:I, s:I}", "partition",
                                            ps[i]->id, "leader", ps[i]->leader, "replicas",
                                            int_array(ps[i]->replicas, ps[i]->replica_cnt), "isr",
                                            int_array(ps[i]->isrs, ps[i]->isr_cnt), "startOffset",
                                            (json_int_t)lo, "endOffset", (json_int_t)hi, "records",
                                            (json_int_t)(hi - lo)));
        }
        free(ps);
        if (ok)
            out = json_pack("{s:o, s:I}", "partitions", parts, "records", (json_int_t)total);
        else
            json_decref(parts);
    }
    if (md) rd_kafka_metadata_destroy(md);
    client_free(rk);
    return out;
}

json_t *kp_pool_browse_health(const kp_pool_conn_t *c, char *err, size_t errlen)
{
    rd_kafka_t *rk = client_new(c, err, errlen);
    if (!rk) return NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_of(c));
    json_t *out = NULL;
    if (e) {
        snprintf(err, errlen, "pool unreachable at %s: %s", c->bootstrap, rd_kafka_err2str(e));
    } else {
        json_t *brokers = json_array();
        for (int i = 0; i < md->broker_cnt; i++)
            json_array_append_new(brokers,
                                  json_pack("{s:i, s:s, s:i}", "id", md->brokers[i].id, "host",
                                            md->brokers[i].host, "port", md->brokers[i].port));
        long long partitions = 0, under = 0, offline = 0;
        for (int t = 0; t < md->topic_cnt; t++)
            for (int p = 0; p < md->topics[t].partition_cnt; p++) {
                const rd_kafka_metadata_partition_t *mp = &md->topics[t].partitions[p];
                partitions++;
                under += mp->isr_cnt < mp->replica_cnt;
                offline += mp->leader < 0;
            }
        out = json_pack("{s:o, s:i, s:I, s:I, s:I}", "brokers", brokers, "topics", md->topic_cnt,
                        "partitions", (json_int_t)partitions, "underReplicatedPartitions",
                        (json_int_t)under, "offlinePartitions", (json_int_t)offline);
    }
    if (md) rd_kafka_metadata_destroy(md);
    client_free(rk);
    return out;
}

/* ---- consumer groups ---- */

/* The committed offsets of group on every partition of ps (offsets[i], -1 when none). */
static int group_offsets(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *group,
                         const char *topic, const rd_kafka_metadata_partition_t **ps, int n,
                         int64_t *offsets, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(parts, topic, ps[i]->id);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    char es[256];
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_AdminOptions_set_request_timeout(o, timeout_of(c), es, sizeof(es));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, o, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_of(c) + 1000);
    int rc = -1;
    const rd_kafka_ListConsumerGroupOffsets_result_t *res =
        ev ? rd_kafka_event_ListConsumerGroupOffsets_result(ev) : NULL;
    if (!ev) {
        snprintf(err, errlen, "offsets of group %s: timed out (pool at %s)", group, c->bootstrap);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "offsets of group %s: %s", group, rd_kafka_event_error_string(ev));
    } else if (res) {
        size_t cnt = 0;
        const rd_kafka_group_result_t **gr =
            rd_kafka_ListConsumerGroupOffsets_result_groups(res, &cnt);
        const rd_kafka_error_t *ge = cnt ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (!cnt || ge) {
            snprintf(err, errlen, "offsets of group %s: %s", group,
                     ge ? rd_kafka_error_string(ge) : "no answer");
        } else {
            const rd_kafka_topic_partition_list_t *got = rd_kafka_group_result_partitions(gr[0]);
            for (int i = 0; i < n; i++) {
                offsets[i] = -1;
                for (int j = 0; got && j < got->cnt; j++)
                    if (got->elems[j].partition == ps[i]->id && !got->elems[j].err &&
                        got->elems[j].offset >= 0)
                        offsets[i] = got->elems[j].offset;
            }
            rc = 0;
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return rc;
}

/* The group's entry (NULL when it committed nothing on the topic). */
static json_t *group_entry(const struct rd_kafka_group_info *g,
                           const rd_kafka_metadata_partition_t **ps, int n, const int64_t *offsets,
                           const int64_t *ends)
{
    json_t *parts = json_array();
    int64_t lag = 0;
    int any = 0;
    for (int i = 0; i < n; i++) {
        if (offsets[i] < 0) continue;
        any = 1;
        int64_t l = ends[i] > offsets[i] ? ends[i] - offsets[i] : 0;
        lag += l;
        json_array_append_new(parts,
                              json_pack("{s:i, s:I, s:I, s:I}", "partition", ps[i]->id,
                                        "committedOffset", (json_int_t)offsets[i], "endOffset",
                                        (json_int_t)ends[i], "lag", (json_int_t)l));
    }
    if (!any) {
        json_decref(parts);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:i, s:I, s:o}", "group", g->group, "state",
                     g->state ? g->state : "", "members", g->member_cnt, "lag", (json_int_t)lag,
                     "partitions", parts);
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const struct rd_kafka_group_info *)a)->group,
                  ((const struct rd_kafka_group_info *)b)->group);
}

json_t *kp_pool_browse_groups(const kp_pool_conn_t *c, const char *topic, int *missing, char *err,
                              size_t errlen)
{
    *missing = 0;
    rd_kafka_t *rk = client_new(c, err, errlen);
    if (!rk) return NULL;
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t = topic_meta(rk, c, topic, &md, missing, err, errlen);
    const struct rd_kafka_group_list *gl = NULL;
    json_t *items = NULL;
    int n = 0;
    const rd_kafka_metadata_partition_t **ps = t ? sorted_partitions(t, &n) : NULL;
    int64_t *ends = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    int64_t *offsets = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    if (!t) goto out;
    for (int i = 0; i < n; i++) {
        int64_t lo;
        if (watermarks(rk, c, topic, ps[i]->id, &lo, &ends[i], err, errlen) < 0) goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_list_groups(rk, NULL, &gl, timeout_of(c));
    if (e) {
        gl = NULL;
        snprintf(err, errlen, "list groups: %s (pool at %s)", rd_kafka_err2str(e), c->bootstrap);
        goto out;
    }
    /* by name, so the answer does not depend on the order the brokers answered in */
    struct rd_kafka_group_info *gs = gl->groups;
    int ng = gl->group_cnt < KP_BROWSE_GROUPS_MAX ? gl->group_cnt : KP_BROWSE_GROUPS_MAX;
    qsort(gs, (size_t)gl->group_cnt, sizeof(*gs), cmp_group);
    items = json_array();
    for (int g = 0; g < ng; g++) {
        if (group_offsets(rk, c, gs[g].group, topic, ps, n, offsets, err, errlen) < 0) {
            json_decref(items);
            items = NULL;
            goto out;
        }
        json_t *entry = group_entry(&gs[g], ps, n, offsets, ends);
        if (entry) json_array_append_new(items, entry);
    }
out:
    free(ps);
    free(ends);
    free(offsets);
    if (gl) rd_kafka_group_list_destroy(gl);
    if (md) rd_kafka_metadata_destroy(md);
    client_free(rk);
    return items ? json_pack("{s:o}", "items", items) : NULL;
}

/* ---- the message browser ---- */

json_t *kp_pool_browse_bytes_json(const void *ptr, size_t len, const char **encoding,
                                  int *truncated)
{
    if (!ptr) {
        *encoding = "null";
        return json_null();
    }
    const unsigned char *p = ptr;
    size_t n = len;
    if (n > KP_BROWSE_VALUE_BYTES_MAX) {
        n = KP_BROWSE_VALUE_BYTES_MAX;
        *truncated = 1;
        while (n > 0 && (p[n] & 0xC0) == 0x80) /* not in the middle of a UTF-8 sequence */
            n--;
    }
    int text = 1;
    for (size_t i = 0; i < n && text; i++)
        text = p[i] >= 0x20 || p[i] == '\t' || p[i] == '\n' || p[i] == '\r';
    json_t *s = text ? json_stringn((const char *)p, n) : NULL; /* NULL: not UTF-8 */
    if (s) {
        *encoding = "utf8";
        return s;
    }
    static const char hex[] = "0123456789abcdef";
    char *h = kp_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = hex[p[i] >> 4];
        h[2 * i + 1] = hex[p[i] & 15];
    }
    h[2 * n] = 0;
    *encoding = "hex";
    s = json_string(h);
    free(h);
    return s;
}

/* The registry's state, read from `_schemas` the first time a record in its wire format is
 * met (most topics have none, and then nothing is read). */
typedef struct lazy_registry {
    const kp_pool_conn_t *conn;
    int loaded; /* 0 not yet, 1 loaded, -1 failed (err says why) */
    kp_reg_state_t st;
    char err[256];
} lazy_registry_t;

static void decode_framed(lazy_registry_t *reg, const void *data, size_t len, json_t *obj,
                          const char *field)
{
    const uint8_t *p = data;
    if (!p || len < 5 || p[0] != 0) return;
    if (!reg->loaded) {
        kp_reg_state_init(&reg->st);
        reg->loaded =
            kp_pool_registry_load(reg->conn, &reg->st, reg->err, sizeof(reg->err)) == 0 ? 1 : -1;
    }
    if (reg->loaded > 0) {
        kp_pool_registry_decode(&reg->st, p, len, obj, field);
        return;
    }
    char name[64], msg[320];
    snprintf(name, sizeof(name), "%sSchemaError", field);
    snprintf(msg, sizeof(msg), "cannot read the registry's schemas: %s", reg->err);
    json_object_set_new(obj, name, json_string(msg));
}

static json_t *record_json(const rd_kafka_message_t *m, lazy_registry_t *reg)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    const char *kenc, *venc;
    int truncated = 0;
    json_t *key = kp_pool_browse_bytes_json(m->key, m->key_len, &kenc, &truncated);
    json_t *value = kp_pool_browse_bytes_json(m->payload, m->len, &venc, &truncated);
    json_t *r =
        json_pack("{s:i, s:I, s:I, s:s, s:o, s:s, s:o, s:s, s:I}", "partition", (int)m->partition,
                  "offset", (json_int_t)m->offset, "timestamp", (json_int_t)ts, "timestampType",
                  tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime",
                  "key", key, "keyEncoding", kenc, "value", value, "valueEncoding", venc,
                  "valueBytes", (json_int_t)m->len);
    /* Confluent's wire format: magic 0, then the registry's schema id (big endian) */
    const unsigned char *v = m->payload;
    if (v && m->len >= 5 && v[0] == 0)
        json_object_set_new(r, "schemaId",
                            json_integer((json_int_t)((uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 |
                                                      (uint32_t)v[3] << 8 | v[4])));
    json_t *headers = json_array();
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *hv;
        size_t hlen;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &hv, &hlen); i++) {
            const char *henc;
            json_t *val = kp_pool_browse_bytes_json(hv, hlen, &henc, &truncated);
            json_array_append_new(headers, json_pack("{s:s, s:o, s:s}", "key", name, "value", val,
                                                     "valueEncoding", henc));
        }
    }
    json_object_set_new(r, "headers", headers);
    if (truncated) json_object_set_new(r, "truncated", json_true());
    decode_framed(reg, m->key, m->key_len, r, "key");
    decode_framed(reg, m->payload, m->len, r, "value");
    return r;
}

typedef struct browsed {
    int64_t timestamp, offset;
    int32_t partition;
    json_t *json;
} browsed_t;

static int cmp_browsed(const void *a, const void *b)
{
    const browsed_t *x = a, *y = b;
    if (x->timestamp != y->timestamp) return x->timestamp < y->timestamp ? -1 : 1;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Where each partition's read starts and stops (stop exclusive; start == stop: nothing). */
static int read_range(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic,
                      const kp_browse_query_t *q, int32_t p, int64_t *start, int64_t *stop,
                      char *err, size_t errlen)
{
    int64_t lo, hi;
    if (watermarks(rk, c, topic, p, &lo, &hi, err, errlen) < 0) return -1;
    *start = lo;
    if (q->offset >= 0) {
        *start = q->offset > lo ? q->offset : lo;
    } else if (q->timestamp_ms >= 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = q->timestamp_ms;
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, timeout_of(c));
        int64_t at = l->elems[0].offset;
        if (!e) e = l->elems[0].err;
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            snprintf(err, errlen, "offset for time of %s[%d]: %s", topic, (int)p,
                     rd_kafka_err2str(e));
            return -1;
        }
        *start = at < 0 ? hi : at; /* -1: no record at or after that time */
    } else if (hi - lo > q->limit) {
        *start = hi - q->limit;
    }
    if (*start > hi) *start = hi;
    *stop = hi - *start > q->limit ? *start + q->limit : hi;
    return 0;
}

/* Reads [start, stop) of every partition in ps into out (at most q->limit each). */
static int read_records(rd_kafka_t *rk, const kp_pool_conn_t *c, const char *topic,
                        const rd_kafka_metadata_partition_t **ps, int n, const int64_t *start,
                        const int64_t *stop, lazy_registry_t *reg, browsed_t *out, int *nout,
                        char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(n);
    int open = 0;
    for (int i = 0; i < n; i++)
        if (start[i] < stop[i]) {
            rd_kafka_topic_partition_list_add(assign, topic, ps[i]->id)->offset = start[i];
            open++;
        }
    rd_kafka_resp_err_t e = open ? rd_kafka_assign(rk, assign) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(assign);
    if (e) {
        snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
        return -1;
    }
    int64_t deadline = kp_mono_ms() + timeout_of(c);
    int *done = kp_xcalloc((size_t)n + 1, sizeof(int));
    int rc = 0;
    while (open > 0) {
        if (kp_mono_ms() > deadline) {
            snprintf(err, errlen, "reading %s: timed out (pool at %s)", topic, c->bootstrap);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        int i = 0;
        while (i < n && ps[i]->id != m->partition) i++;
        if (i == n || done[i]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(err, errlen, "reading %s[%d]: %s", topic, (int)m->partition,
                     rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            rc = -1;
            break;
        }
        if (!m->err && m->offset < stop[i]) {
            browsed_t *b = &out[(*nout)++];
            b->json = record_json(m, reg);
            b->timestamp = rd_kafka_message_timestamp(m, NULL);
            b->partition = m->partition;
            b->offset = m->offset;
        }
        /* a compacted or transactional log may skip offsets: EOF or passing stop ends it */
        if (m->err || m->offset + 1 >= stop[i]) {
            done[i] = 1;
            open--;
        }
        rd_kafka_message_destroy(m);
    }
    free(done);
    return rc;
}

json_t *kp_pool_browse_messages(const kp_pool_conn_t *c, const char *topic,
                                const kp_browse_query_t *q, int *missing, char *err, size_t errlen)
{
    *missing = 0;
    rd_kafka_t *rk = client_new(c, err, errlen);
    if (!rk) return NULL;
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t = topic_meta(rk, c, topic, &md, missing, err, errlen);
    int n = 0, nout = 0, ok = 0;
    const rd_kafka_metadata_partition_t **ps = t ? sorted_partitions(t, &n) : NULL;
    if (t && q->partition >= 0) { /* only that partition */
        int i = 0;
        while (i < n && ps[i]->id != q->partition) i++;
        if (i == n) {
            *missing = 1;
            snprintf(err, errlen, "partition %d of %s does not exist (it has %d)",
                     (int)q->partition, topic, t->partition_cnt);
            n = 0;
            t = NULL;
        } else {
            ps[0] = ps[i];
            n = 1;
        }
    }
    int64_t *start = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    int64_t *stop = kp_xcalloc((size_t)n + 1, sizeof(int64_t));
    browsed_t *out = NULL;
    lazy_registry_t reg = {.conn = c};
    if (t) {
        ok = 1;
        for (int i = 0; i < n && ok; i++)
            ok = read_range(rk, c, topic, q, ps[i]->id, &start[i], &stop[i], err, errlen) == 0;
        out = kp_xcalloc((size_t)n * (size_t)q->limit + 1, sizeof(*out));
        if (ok)
            ok = read_records(rk, c, topic, ps, n, start, stop, &reg, out, &nout, err, errlen) == 0;
    }
    json_t *items = NULL;
    if (ok) {
        qsort(out, (size_t)nout, sizeof(*out), cmp_browsed);
        int newest = q->offset < 0 && q->timestamp_ms < 0;
        items = json_array();
        int take = nout < q->limit ? nout : q->limit;
        for (int k = 0; k < take; k++)
            json_array_append(items, out[newest ? nout - 1 - k : k].json);
    }
    if (reg.loaded) kp_reg_state_free(&reg.st);
    for (int k = 0; k < nout; k++) json_decref(out[k].json);
    free(out);
    free(start);
    free(stop);
    free(ps);
    if (md) rd_kafka_metadata_destroy(md);
    client_free(rk);
    return items ? json_pack("{s:o}", "items", items) : NULL;
}
