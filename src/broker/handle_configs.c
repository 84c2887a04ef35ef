/*
 * handle_configs.c — DescribeConfigs v0–2 (topics, this broker, the cluster-wide broker
 * default), AlterConfigs v0–1 and IncrementalAlterConfigs v0 (topics, and dynamic broker
 * configs through dynamic_config.c), CreatePartitions v0–1.
 *
 * Authorization as Kafka: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic or the cluster,
 * ALTER on the topic for CreatePartitions.
 */
#include "auth/acl.h"
#include "broker/dynamic_config.h"
#include "broker/replicated_pool.h"
#include "broker/request.h"
#include "broker/topic_config.h"
#include "broker/topics.h"
#include "kp_msgs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RES_TOPIC  2
#define RES_BROKER 4

static int wanted(const DescribeConfigsRequest_DescribeConfigsResource *r, const char *name)
{
    if (r->ConfigurationKeys.count < 0) return 1;
    for (int32_t i = 0; i < r->ConfigurationKeys.count; i++)
        if (kp_str_eq_c(r->ConfigurationKeys.items[i], name)) return 1;
    return 0;
}

typedef struct cfg_list {
    DescribeConfigsResponse_DescribeConfigsResourceResult *items;
    int n, cap;
} cfg_list_t;

static DescribeConfigsResponse_DescribeConfigsResourceResult *cfg_push(kp_req_t *req, cfg_list_t *l)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        void *n = kp_arena_alloc(&req->arena, (size_t)cap * sizeof(*l->items));
        if (!n) return NULL;
        if (l->n) memcpy(n, l->items, (size_t)l->n * sizeof(*l->items));
        l->items = n;
        l->cap = cap;
    }
    DescribeConfigsResponse_DescribeConfigsResourceResult *c = &l->items[l->n++];
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(c);
    return c;
}

static kp_str_t adup(kp_req_t *req, const char *s)
{
    if (!s) return KP_STR_NULL;
    char *d = kp_arena_strndup(&req->arena, s, strlen(s));
    return d ? kp_str_c(d) : KP_STR_NULL;
}

/* Synonyms in precedence order, as Kafka lists them: the topic override (when topic_name),
 * then the broker property in each layer that sets it (this broker, the cluster-wide
 * default, the static properties), then the built-in default. sensitive: values hidden. */
static int add_synonyms(kp_req_t *req, DescribeConfigsResponse_DescribeConfigsResourceResult *c,
                        const char *topic_name, const kp_props_t *overrides,
                        const char *broker_name, const char *default_value,
                        const kp_broker_layers_t *l, int sensitive)
{
    DescribeConfigsResponse_DescribeConfigsSynonym *syn =
        kp_arena_calloc(&req->arena, 5, sizeof(*syn));
    if (!syn) return -1;
    int n = 0;
    const char *v = topic_name && overrides ? kp_props_get(overrides, topic_name) : NULL;
    if (v)
        syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
            kp_str_c(topic_name), adup(req, v), KP_CONFIG_SOURCE_TOPIC};
    const struct {
        const kp_props_t *p;
        int8_t source;
    } layers[] = {{l->dyn_broker, KP_CONFIG_SOURCE_DYNAMIC_BROKER},
                  {l->dyn_default, KP_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER},
                  {l->statics, KP_CONFIG_SOURCE_STATIC_BROKER}};
    for (size_t i = 0; broker_name && i < sizeof(layers) / sizeof(layers[0]); i++) {
        v = kp_props_get(layers[i].p, broker_name);
        if (v)
            syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
                kp_str_c(broker_name), sensitive ? KP_STR_NULL : adup(req, v), layers[i].source};
    }
    if (default_value)
        syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
            kp_str_c(broker_name ? broker_name : topic_name), kp_str_c(default_value),
            KP_CONFIG_SOURCE_DEFAULT};
    c->Synonyms.items = syn;
    c->Synonyms.count = n;
    return 0;
}

/* What the broker's layers say about each topic config (kp_topic_config_defs' order), looked
 * up once per request: every topic of a DescribeConfigs shares them. (Per topic, each config
 * cost a few linear searches of the broker's properties: a control plane's drift check asks
 * 100 topics per request, 10,000 topics a pass.) */
typedef struct topic_layers {
    int ready;
    kp_broker_layers_t layers;  /* copies: an AlterConfigs may replace them meanwhile */
    const char **value;         /* the effective broker value, NULL when no layer sets it */
    int *source;                /* and its source */
    const char *(*in_layer)[3]; /* the value in dyn_broker, dyn_default, statics */
} topic_layers_t;

static const int8_t layer_sources[3] = {KP_CONFIG_SOURCE_DYNAMIC_BROKER,
                                        KP_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER,
                                        KP_CONFIG_SOURCE_STATIC_BROKER};

static int topic_layers_load(kp_req_t *req, topic_layers_t *tl)
{
    if (tl->ready) return 0;
    size_t n = kp_topic_config_defs_count;
    tl->value = kp_arena_calloc(&req->arena, n + 1, sizeof(*tl->value));
    tl->source = kp_arena_calloc(&req->arena, n + 1, sizeof(*tl->source));
    tl->in_layer = kp_arena_calloc(&req->arena, n + 1, sizeof(*tl->in_layer));
    if (!tl->value || !tl->source || !tl->in_layer) return -1;
    kp_dynconf_layers(req->sess->broker->dynconf, &tl->layers);
    tl->ready = 1;
    const kp_props_t *each[3] = {tl->layers.dyn_broker, tl->layers.dyn_default, tl->layers.statics};
    for (size_t i = 0; i < n; i++) {
        const char *bn = kp_topic_config_defs[i].broker_name;
        if (!bn) continue;
        tl->value[i] = kp_broker_layers_get(&tl->layers, bn, &tl->source[i]);
        for (int k = 0; k < 3; k++) tl->in_layer[i][k] = kp_props_get(each[k], bn);
    }
    return 0;
}

/* add_synonyms for config i of a topic whose override is ov_value (NULL: none), from tl. */
static int add_topic_synonyms(kp_req_t *req,
                              DescribeConfigsResponse_DescribeConfigsResourceResult *c, size_t i,
                              const char *ov_value, const topic_layers_t *tl)
{
    const kp_config_def_t *d = &kp_topic_config_defs[i];
    DescribeConfigsResponse_DescribeConfigsSynonym *syn =
        kp_arena_calloc(&req->arena, 5, sizeof(*syn));
    if (!syn) return -1;
    int n = 0;
    if (ov_value)
        syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
            kp_str_c(d->name), adup(req, ov_value), KP_CONFIG_SOURCE_TOPIC};
    for (int k = 0; d->broker_name && k < 3; k++)
        if (tl->in_layer[i][k])
            syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
                kp_str_c(d->broker_name), adup(req, tl->in_layer[i][k]), layer_sources[k]};
    if (d->default_value)
        syn[n++] = (DescribeConfigsResponse_DescribeConfigsSynonym){
            kp_str_c(d->broker_name ? d->broker_name : d->name), kp_str_c(d->default_value),
            KP_CONFIG_SOURCE_DEFAULT};
    c->Synonyms.items = syn;
    c->Synonyms.count = n;
    return 0;
}

static int describe_topic(kp_req_t *req, const DescribeConfigsRequest *in,
                          const DescribeConfigsRequest_DescribeConfigsResource *r,
                          DescribeConfigsResponse_DescribeConfigsResult *out, topic_layers_t *tl)
{
    kp_broker_t *b = req->sess->broker;
    if (!kp_req_authorize(req, KP_OP_DESCRIBE_CONFIGS, KP_RES_TOPIC, r->ResourceName)) {
        out->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
        return 0;
    }
    kp_topic_t *topic = kp_topics_get(b->topics, r->ResourceName);
    if (!topic) {
        out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->ErrorMessage = KP_STR_LIT("Topic does not exist");
        return 0;
    }
    if (topic_layers_load(req, tl) < 0) {
        kp_topic_put(topic);
        return -1;
    }
    /* a copy of the overrides: an AlterConfigs on another loop may replace them meanwhile */
    kp_props_t *ov = kp_props_new();
    kp_topic_overrides_copy(topic, ov);
    cfg_list_t l = {0};
    int rc = 0;
    for (size_t i = 0; i < kp_topic_config_defs_count && !rc; i++) {
        const kp_config_def_t *d = &kp_topic_config_defs[i];
        if (!wanted(r, d->name)) continue;
        int source = KP_CONFIG_SOURCE_TOPIC;
        const char *ov_value = kp_props_get(ov, d->name), *v = ov_value;
        if (!v && d->broker_name) {
            v = tl->value[i];
            source = tl->source[i];
        }
        if (!v) {
            v = d->default_value;
            source = KP_CONFIG_SOURCE_DEFAULT;
        }
        DescribeConfigsResponse_DescribeConfigsResourceResult *c = cfg_push(req, &l);
        if (!c) {
            rc = -1;
            break;
        }
        c->Name = kp_str_c(d->name);
        c->Value = adup(req, v);
        c->ReadOnly = 0;
        c->IsDefault = source == KP_CONFIG_SOURCE_DEFAULT;
        c->ConfigSource = (int8_t)source;
        if (in->IncludeSynonyms && add_topic_synonyms(req, c, i, ov_value, tl) < 0) rc = -1;
    }
    out->Configs.items = l.items;
    out->Configs.count = l.n;
    kp_props_free(ov);
    kp_topic_put(topic);
    return rc;
}

/* One broker property: its effective value and source across the layers. */
static int broker_entry(kp_req_t *req, const DescribeConfigsRequest *in, cfg_list_t *l,
                        const kp_broker_layers_t *layers, const char *name,
                        const char *default_value, int dynamic, int sensitive)
{
    int source;
    const char *v = kp_broker_layers_get(layers, name, &source);
    DescribeConfigsResponse_DescribeConfigsResourceResult *c = cfg_push(req, l);
    if (!c) return -1;
    c->Name = kp_str_c(name);
    c->IsSensitive = (int8_t)sensitive;
    c->Value = sensitive ? KP_STR_NULL : adup(req, v ? v : default_value);
    c->ReadOnly = (int8_t)!dynamic;
    c->IsDefault = v == NULL;
    c->ConfigSource = (int8_t)source;
    if (in->IncludeSynonyms)
        return add_synonyms(req, c, NULL, NULL, name, default_value, layers, sensitive);
    return 0;
}

/* The cluster-wide default (resource name ""): only what is set there, as Kafka. */
static int describe_broker_default(kp_req_t *req, const DescribeConfigsRequest *in,
                                   const DescribeConfigsRequest_DescribeConfigsResource *r,
                                   const kp_broker_layers_t *layers, cfg_list_t *l)
{
    kp_props_t *none = kp_props_new();
    kp_broker_layers_t only = {none, layers->dyn_default, none};
    int rc = 0;
    for (size_t i = 0; i < kp_props_count(layers->dyn_default) && !rc; i++) {
        const char *k, *v;
        kp_props_at(layers->dyn_default, i, &k, &v);
        if (!wanted(r, k)) continue;
        const kp_broker_prop_def_t *p = kp_broker_prop_find(k);
        rc = broker_entry(req, in, l, &only, kp_arena_strndup(&req->arena, k, strlen(k)), NULL, 1,
                          p && (p->flags & KP_BPROP_SENSITIVE));
    }
    kp_props_free(none);
    return rc;
}

static int describe_broker(kp_req_t *req, const DescribeConfigsRequest *in,
                           const DescribeConfigsRequest_DescribeConfigsResource *r,
                           DescribeConfigsResponse_DescribeConfigsResult *out)
{
    kp_broker_t *b = req->sess->broker;
    char id[16];
    snprintf(id, sizeof(id), "%d", b->cfg.node_id);
    if (!kp_req_authorize(req, KP_OP_DESCRIBE_CONFIGS, KP_RES_CLUSTER,
                          KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
        out->ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
        return 0;
    }
    if (r->ResourceName.len > 0 && !kp_str_eq_c(r->ResourceName, id)) {
        out->ErrorCode = KERR_INVALID_REQUEST;
        out->ErrorMessage = KP_STR_LIT("Unexpected broker id: this pool has one broker");
        return 0;
    }
    kp_broker_layers_t layers;
    kp_dynconf_layers(b->dynconf, &layers);
    cfg_list_t l = {0};
    int rc = 0;
    if (r->ResourceName.len <= 0) {
        rc = describe_broker_default(req, in, r, &layers, &l);
    } else {
        for (size_t i = 0; i < kp_broker_prop_defs_count && !rc; i++) {
            const kp_broker_prop_def_t *p = &kp_broker_prop_defs[i];
            if (!wanted(r, p->name)) continue;
            const char *def = p->default_value;
            char derived[24];
            if (!def && !strcmp(p->name, "max.broker.partitions")) { /* from the fd limit */
                snprintf(derived, sizeof(derived), "%" PRId64,
                         kp_topics_partitions_max(NULL, NULL));
                def = kp_arena_strndup(&req->arena, derived, strlen(derived)); /* synonyms */
                if (!def) {
                    rc = -1;
                    break;
                }
            }
            rc =
                broker_entry(req, in, &l, &layers, p->name, def, (p->flags & KP_BPROP_DYNAMIC) != 0,
                             (p->flags & KP_BPROP_SENSITIVE) != 0);
        }
        for (size_t i = 0; i < kp_topic_config_defs_count && !rc; i++) {
            const kp_config_def_t *d = &kp_topic_config_defs[i];
            if (!d->broker_name || !wanted(r, d->broker_name)) continue;
            rc = broker_entry(req, in, &l, &layers, d->broker_name, d->default_value, 1, 0);
        }
    }
    kp_broker_layers_free(&layers);
    out->Configs.items = l.items;
    out->Configs.count = l.n;
    return rc;
}

int kp_handle_describe_configs(kp_req_t *req)
{
    DescribeConfigsRequest in;
    if (DescribeConfigsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    DescribeConfigsResponse out;
    DescribeConfigsResponse_init(&out);
    int32_t n = in.Resources.count > 0 ? in.Resources.count : 0;
    out.Results.items = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Results.items));
    if (!out.Results.items) return -1;
    out.Results.count = n;
    topic_layers_t tl = {0};
    int failed = 0;
    for (int32_t i = 0; i < n && !failed; i++) {
        const DescribeConfigsRequest_DescribeConfigsResource *r = &in.Resources.items[i];
        DescribeConfigsResponse_DescribeConfigsResult *o = &out.Results.items[i];
        DescribeConfigsResponse_DescribeConfigsResult_init(o);
        o->ResourceType = r->ResourceType;
        o->ResourceName = r->ResourceName;
        int rc = 0;
        if (r->ResourceType == RES_TOPIC)
            rc = describe_topic(req, &in, r, o, &tl);
        else if (r->ResourceType == RES_BROKER)
            rc = describe_broker(req, &in, r, o);
        else {
            o->ErrorCode = KERR_INVALID_REQUEST;
            o->ErrorMessage = KP_STR_LIT("Unsupported resource type: only TOPIC and BROKER");
        }
        failed = rc < 0;
    }
    if (tl.ready) kp_broker_layers_free(&tl.layers);
    if (failed) return -1;
    kp_req_begin_response(req);
    DescribeConfigsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- AlterConfigs / IncrementalAlterConfigs ---- */

typedef struct alter_item {
    int8_t type;
    kp_str_t name;
    int32_t n;
    const char **keys, **values;
    int8_t *ops;
} alter_item_t;

static int16_t alter_one(kp_req_t *req, const alter_item_t *a, int incremental, int validate,
                         kp_str_t *msg)
{
    char err[512] = "";
    int16_t rc;
    if (a->type == RES_BROKER) {
        kp_broker_t *b = req->sess->broker;
        char id[16];
        snprintf(id, sizeof(id), "%d", b->cfg.node_id);
        if (!kp_req_authorize(req, KP_OP_ALTER_CONFIGS, KP_RES_CLUSTER,
                              KP_STR_LIT(KP_CLUSTER_RESOURCE))) {
            rc = KERR_CLUSTER_AUTHORIZATION_FAILED;
        } else if (a->name.len > 0 && !kp_str_eq_c(a->name, id)) {
            rc = KERR_INVALID_REQUEST;
            snprintf(err, sizeof(err),
                     "Unexpected broker id %.*s: this pool has one broker, %d (an empty name "
                     "is the cluster-wide default)",
                     a->name.len, a->name.ptr, b->cfg.node_id);
        } else {
            rc = kp_dynconf_alter(b, a->name.len > 0, a->keys, a->values,
                                  incremental ? a->ops : NULL, a->n, validate, err, sizeof(err));
        }
    } else if (a->type != RES_TOPIC) {
        rc = KERR_INVALID_REQUEST;
        snprintf(err, sizeof(err), "Unsupported resource type %d: only TOPIC and BROKER", a->type);
    } else if (!kp_req_authorize(req, KP_OP_ALTER_CONFIGS, KP_RES_TOPIC, a->name)) {
        rc = KERR_TOPIC_AUTHORIZATION_FAILED;
    } else {
        rc = kp_topics_alter_configs(req->sess->broker->topics, a->name, a->keys, a->values,
                                     incremental ? a->ops : NULL, a->n, validate, err, sizeof(err));
        if (!rc && !validate && req->sess->broker->pool) /* the whole pool takes them */
            rc = kp_rpool_publish_configs(req->sess->broker->pool, a->name, err, sizeof(err));
    }
    if (rc && err[0]) {
        char *m = kp_arena_strndup(&req->arena, err, strlen(err));
        *msg = m ? kp_str_c(m) : KP_STR_NULL;
    }
    return rc;
}

static const char *cstr(kp_req_t *req, kp_str_t s)
{
    return s.len < 0 ? NULL : kp_arena_strndup(&req->arena, s.ptr ? s.ptr : "", (size_t)s.len);
}

int kp_handle_alter_configs(kp_req_t *req)
{
    AlterConfigsRequest in;
    if (AlterConfigsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    AlterConfigsResponse out;
    AlterConfigsResponse_init(&out);
    int32_t n = in.Resources.count > 0 ? in.Resources.count : 0;
    out.Responses.items = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Responses.items));
    if (!out.Responses.items) return -1;
    out.Responses.count = n;
    for (int32_t i = 0; i < n; i++) {
        const AlterConfigsRequest_AlterConfigsResource *r = &in.Resources.items[i];
        alter_item_t a = {.type = r->ResourceType,
                          .name = r->ResourceName,
                          .n = r->Configs.count > 0 ? r->Configs.count : 0};
        a.keys = kp_arena_calloc(&req->arena, (size_t)a.n + 1, sizeof(char *));
        a.values = kp_arena_calloc(&req->arena, (size_t)a.n + 1, sizeof(char *));
        if (!a.keys || !a.values) return -1;
        for (int32_t k = 0; k < a.n; k++) {
            a.keys[k] = cstr(req, r->Configs.items[k].Name);
            a.values[k] = cstr(req, r->Configs.items[k].Value);
        }
        AlterConfigsResponse_AlterConfigsResourceResponse *o = &out.Responses.items[i];
        AlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = r->ResourceType;
        o->ResourceName = r->ResourceName;
        o->ErrorCode = alter_one(req, &a, 0, in.ValidateOnly, &o->ErrorMessage);
    }
    kp_req_begin_response(req);
    AlterConfigsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

int kp_handle_incremental_alter_configs(kp_req_t *req)
{
    IncrementalAlterConfigsRequest in;
    if (IncrementalAlterConfigsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    IncrementalAlterConfigsResponse out;
    IncrementalAlterConfigsResponse_init(&out);
    int32_t n = in.Resources.count > 0 ? in.Resources.count : 0;
    out.Responses.items = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Responses.items));
    if (!out.Responses.items) return -1;
    out.Responses.count = n;
    for (int32_t i = 0; i < n; i++) {
        const IncrementalAlterConfigsRequest_AlterConfigsResource *r = &in.Resources.items[i];
        alter_item_t a = {.type = r->ResourceType,
                          .name = r->ResourceName,
                          .n = r->Configs.count > 0 ? r->Configs.count : 0};
        a.keys = kp_arena_calloc(&req->arena, (size_t)a.n + 1, sizeof(char *));
        a.values = kp_arena_calloc(&req->arena, (size_t)a.n + 1, sizeof(char *));
        a.ops = kp_arena_calloc(&req->arena, (size_t)a.n + 1, 1);
        if (!a.keys || !a.values || !a.ops) return -1;
        for (int32_t k = 0; k < a.n; k++) {
            a.keys[k] = cstr(req, r->Configs.items[k].Name);
            a.values[k] = cstr(req, r->Configs.items[k].Value);
            a.ops[k] = r->Configs.items[k].ConfigOperation;
        }
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *o = &out.Responses.items[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = r->ResourceType;
        o->ResourceName = r->ResourceName;
        o->ErrorCode = alter_one(req, &a, 1, in.ValidateOnly, &o->ErrorMessage);
    }
    kp_req_begin_response(req);
    IncrementalAlterConfigsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- CreatePartitions ---- */

int kp_handle_create_partitions(kp_req_t *req)
{
    CreatePartitionsRequest in;
    if (CreatePartitionsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0)
        return -1;
    kp_broker_t *b = req->sess->broker;
    CreatePartitionsResponse out;
    CreatePartitionsResponse_init(&out);
    int32_t n = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Results.items = kp_arena_calloc(&req->arena, (size_t)n + 1, sizeof(*out.Results.items));
    if (!out.Results.items) return -1;
    out.Results.count = n;
    for (int32_t i = 0; i < n; i++) {
        const CreatePartitionsRequest_CreatePartitionsTopic *t = &in.Topics.items[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult *o = &out.Results.items[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult_init(o);
        o->Name = t->Name;
        char err[512] = "";
        for (int32_t j = 0; j < i && !o->ErrorCode; j++)
            if (kp_str_eq(in.Topics.items[j].Name, t->Name)) {
                o->ErrorCode = KERR_INVALID_REQUEST;
                snprintf(err, sizeof(err), "Duplicate topic in request");
            }
        if (!o->ErrorCode && !kp_req_authorize(req, KP_OP_ALTER, KP_RES_TOPIC, t->Name))
            o->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
        if (!o->ErrorCode && !b->pool && t->Assignments.count >= 0) {
            for (int32_t a = 0; a < t->Assignments.count && !o->ErrorCode; a++) {
                const CreatePartitionsRequest_CreatePartitionsAssignment *as =
                    &t->Assignments.items[a];
                if (as->BrokerIds.count != 1 || as->BrokerIds.items[0] != b->cfg.node_id) {
                    o->ErrorCode = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(err, sizeof(err),
                             "Every new partition must be assigned to broker %d, "
                             "the only broker of this pool",
                             b->cfg.node_id);
                }
            }
        }
        if (!o->ErrorCode && b->pool && t->Assignments.count > 0) {
            o->ErrorCode = KERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(err, sizeof(err),
                     "Replica assignments are not supported in a replicated pool yet");
        }
        if (!o->ErrorCode)
            o->ErrorCode = b->pool ? kp_rpool_add_partitions(b->pool, t->Name, t->Count,
                                                             in.ValidateOnly, err, sizeof(err))
                                   : kp_topics_add_partitions(b->topics, t->Name, t->Count,
                                                              in.ValidateOnly, err, sizeof(err));
        if (o->ErrorCode && err[0]) {
            char *m = kp_arena_strndup(&req->arena, err, strlen(err));
            o->ErrorMessage = m ? kp_str_c(m) : KP_STR_NULL;
        }
    }
    kp_req_begin_response(req);
    CreatePartitionsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
