/*
 * handle_admin.c — ApiVersions, Metadata, CreateTopics, DeleteTopics (InitProducerId:
 * producer_id.c).
 */
#include "auth/acl.h"
#include "broker/request.h"
#include "broker/replicated_pool.h"
#include "broker/topic_config.h"
#include "cluster/member.h"
#include "core/logging.h"
#include "kp_msgs.h"

#include <stdio.h>
#include <string.h>

/* ---- ApiVersions ---- */

int kp_handle_api_versions(kp_req_t *req)
{
    ApiVersionsRequest in;
    if (ApiVersionsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    ApiVersionsResponse out;
    ApiVersionsResponse_init(&out);
    int n;
    const kp_api_t *t = kp_api_table(&n);
    out.ApiKeys.items = kp_req_alloc(req, (size_t)n * sizeof(*out.ApiKeys.items));
    if (!out.ApiKeys.items) return -1;
    out.ApiKeys.count = n;
    for (int i = 0; i < n; i++) {
        out.ApiKeys.items[i].ApiKey = t[i].key;
        out.ApiKeys.items[i].MinVersion = t[i].min_version;
        out.ApiKeys.items[i].MaxVersion = t[i].max_version;
    }
    kp_req_begin_response(req);
    ApiVersionsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- Metadata ---- */

static int32_t *arena_ids(kp_req_t *req, const int32_t *ids, int n)
{
    int32_t *a = kp_req_alloc(req, (size_t)(n + 1) * sizeof(*a));
    if (a && n > 0) memcpy(a, ids, (size_t)n * sizeof(*a));
    return a;
}

/* A replicated pool: leader, replicas, ISR and offline replicas as this broker knows them
 * (offline: its broker is not live, or its log directory failed, as Kafka's replicas in an
 * offline log directory). */
static int fill_pool_partition(kp_req_t *req, kp_partition_t *p, const kp_member_view_t *live,
                               MetadataResponse_MetadataResponsePartition *mp)
{
    kp_repl_view_t v;
    kp_partition_view(p, &v);
    int32_t offline[KP_REPLICAS_MAX];
    int noff = 0;
    for (int i = 0; i < v.nreplicas; i++) {
        int alive = 0;
        for (int j = 0; j < live->nbrokers && !alive; j++)
            alive = live->brokers[j].id == v.replicas[i] && !live->brokers[j].offline_dir;
        if (!alive) offline[noff++] = v.replicas[i];
    }
    mp->LeaderId = v.leader;
    mp->LeaderEpoch = v.leader_epoch;
    mp->ErrorCode = v.leader < 0 ? KERR_LEADER_NOT_AVAILABLE : 0;
    mp->ReplicaNodes.items = arena_ids(req, v.replicas, v.nreplicas);
    mp->ReplicaNodes.count = v.nreplicas;
    mp->IsrNodes.items = arena_ids(req, v.isr, v.nisr);
    mp->IsrNodes.count = v.nisr;
    mp->OfflineReplicas.items = arena_ids(req, offline, noff);
    mp->OfflineReplicas.count = noff;
    return mp->ReplicaNodes.items && mp->IsrNodes.items && mp->OfflineReplicas.items ? 0 : -1;
}

static int fill_topic(kp_req_t *req, kp_topic_t *topic, MetadataResponse_MetadataResponseTopic *mt)
{
    kp_broker_t *b = req->sess->broker;
    if (b->member) {
        mt->Name = kp_str_c(topic->name);
        mt->IsInternal = (int8_t)topic->internal;
        int32_t n = topic->npartitions;
        mt->Partitions.count = n;
        mt->Partitions.items = kp_req_alloc(req, (size_t)(n + 1) * sizeof(*mt->Partitions.items));
        if (!mt->Partitions.items) return -1;
        kp_member_view_t *live = kp_member_view(b->member);
        int rc = 0;
        for (int32_t i = 0; i < n && rc == 0; i++) {
            MetadataResponse_MetadataResponsePartition *mp = &mt->Partitions.items[i];
            MetadataResponse_MetadataResponsePartition_init(mp);
            mp->PartitionIndex = i;
            rc = fill_pool_partition(req, topic->partitions[i], live, mp);
        }
        kp_member_view_put(live);
        return rc;
    }
    mt->Name = kp_str_c(topic->name);
    mt->IsInternal = (int8_t)topic->internal;
    mt->ErrorCode = 0;
    int32_t n = topic->npartitions;
    mt->Partitions.count = n;
    mt->Partitions.items = kp_req_alloc(req, (size_t)n * sizeof(*mt->Partitions.items));
    int32_t *node = kp_req_alloc(req, sizeof(int32_t));
    if (!mt->Partitions.items || !node) return -1;
    *node = b->cfg.node_id;
    for (int32_t i = 0; i < n; i++) {
        MetadataResponse_MetadataResponsePartition *mp = &mt->Partitions.items[i];
        MetadataResponse_MetadataResponsePartition_init(mp);
        mp->PartitionIndex = i;
        mp->LeaderId = b->cfg.node_id;
        mp->LeaderEpoch = kp_partition_leader_epoch(topic->partitions[i]);
        mp->ReplicaNodes.items = node;
        mp->ReplicaNodes.count = 1;
        mp->IsrNodes.items = node;
        mp->IsrNodes.count = 1;
    }
    return 0;
}

/* default.replication.factor, or in a pool without it min(3, live brokers). */
static int pool_default_rf(kp_broker_t *b)
{
    if (b->cfg.default_replication_factor > 0) return b->cfg.default_replication_factor;
    int live = kp_rpool_live_brokers(b->pool);
    return live < 3 ? (live > 0 ? live : 1) : 3;
}

static kp_str_t arena_str(kp_req_t *req, const char *s)
{
    if (!s) return KP_STR_NULL;
    size_t n = strlen(s);
    char *p = kp_req_alloc(req, n + 1);
    if (!p) return KP_STR_NULL;
    memcpy(p, s, n + 1);
    return (kp_str_t){p, (int32_t)n};
}

/* A replicated pool: every live broker that has this request's listener, and the
 * controller, as the pool last told this broker. */
static int fill_pool_brokers(kp_req_t *req, MetadataResponse *out)
{
    kp_broker_t *b = req->sess->broker;
    kp_member_view_t *v = kp_member_view(b->member);
    MetadataResponse_MetadataResponseBroker *list =
        kp_req_alloc(req, (size_t)(v->nbrokers + 1) * sizeof(*list));
    int k = 0;
    for (int i = 0; list && i < v->nbrokers; i++) {
        const kp_meta_endpoint_t *ep =
            kp_member_endpoint(&v->brokers[i], req->sess->listener->name);
        if (!ep) continue;
        MetadataResponse_MetadataResponseBroker *mb = &list[k++];
        MetadataResponse_MetadataResponseBroker_init(mb);
        mb->NodeId = v->brokers[i].id;
        mb->Host = arena_str(req, ep->host);
        mb->Port = ep->port;
        mb->Rack = arena_str(req, v->brokers[i].rack);
    }
    out->Brokers.items = list;
    out->Brokers.count = k;
    out->ControllerId = v->controller_id;
    kp_member_view_put(v);
    return list ? 0 : -1;
}

static kp_topic_t *auto_create(kp_req_t *req, kp_str_t name, int16_t *err)
{
    kp_broker_t *b = req->sess->broker;
    char msg[256];
    kp_topic_spec_t spec = {.name = name, .partitions = b->cfg.num_partitions};
    int16_t rc =
        b->pool ? kp_rpool_create_topic(b->pool, &spec, pool_default_rf(b), 0, msg, sizeof(msg))
                : kp_topics_create(b->topics, &spec, 0, msg, sizeof(msg));
    if (rc != 0 && rc != KERR_TOPIC_ALREADY_EXISTS) {
        *err = rc;
        return NULL;
    }
    kp_topic_t *t = kp_topics_get(b->topics, name);
    *err = t ? 0 : KERR_LEADER_NOT_AVAILABLE;
    return t;
}

int kp_handle_metadata(kp_req_t *req)
{
    MetadataRequest in;
    if (MetadataRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    const kp_listener_cfg_t *l = req->sess->listener;
    MetadataResponse out;
    MetadataResponse_init(&out);
    MetadataResponse_MetadataResponseBroker *broker = kp_req_alloc(req, sizeof(*broker));
    if (!broker) return -1;
    MetadataResponse_MetadataResponseBroker_init(broker);
    broker->NodeId = b->cfg.node_id;
    broker->Host = kp_str_c(l->adv_host);
    broker->Port = l->adv_port;
    out.Brokers.items = broker;
    out.Brokers.count = 1;
    out.ClusterId = kp_str_c(b->cluster_id);
    out.ControllerId = b->cfg.node_id;
    if (b->member && fill_pool_brokers(req, &out) < 0) return -1;

    /* v0: an empty array means all topics; v1+: null means all topics */
    int all = in.Topics.count < 0 || (req->api_version == 0 && in.Topics.count == 0);
    kp_topic_t **held = NULL;
    int nheld = 0;
    if (all) {
        held = kp_topics_list(b->topics, &nheld);
        out.Topics.items = kp_req_alloc(req, (size_t)(nheld + 1) * sizeof(*out.Topics.items));
        if (!out.Topics.items) goto fail;
        int k = 0;
        for (int i = 0; i < nheld; i++) {
            /* all-topics metadata lists only what the principal may describe */
            if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TOPIC, kp_str_c(held[i]->name)))
                continue;
            if (b->pool && !kp_rpool_topic_known(held[i])) continue; /* local-only */
            MetadataResponse_MetadataResponseTopic_init(&out.Topics.items[k]);
            if (fill_topic(req, held[i], &out.Topics.items[k++]) < 0) goto fail;
        }
        out.Topics.count = k;
    } else {
        int32_t n = in.Topics.count;
        held = kp_xcalloc((size_t)n + 1, sizeof(*held));
        out.Topics.items = kp_req_alloc(req, (size_t)(n + 1) * sizeof(*out.Topics.items));
        if (!out.Topics.items) goto fail;
        out.Topics.count = n;
        int allow_auto =
            b->cfg.auto_create_topics && (req->api_version < 4 || in.AllowAutoTopicCreation);
        for (int32_t i = 0; i < n; i++) {
            MetadataResponse_MetadataResponseTopic *mt = &out.Topics.items[i];
            MetadataResponse_MetadataResponseTopic_init(mt);
            kp_str_t name = in.Topics.items[i].Name;
            mt->Name = name;
            char msg[256];
            if (kp_topic_name_check(name, msg, sizeof(msg)) < 0) {
                mt->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            if (!kp_req_authorize(req, KP_OP_DESCRIBE, KP_RES_TOPIC, name)) {
                mt->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED; /* never "unknown" */
                continue;
            }
            kp_topic_t *t = kp_topics_get(b->topics, name);
            int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!t && allow_auto &&
                !kp_req_authorize(req, KP_OP_CREATE, KP_RES_CLUSTER,
                                  KP_STR_LIT(KP_CLUSTER_RESOURCE)) &&
                !kp_req_authorize(req, KP_OP_CREATE, KP_RES_TOPIC, name)) {
                mt->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (t && b->pool && !kp_rpool_topic_known(t)) { /* local-only: not the pool's */
                kp_topic_put(t);
                t = NULL;
            }
            if (!t && b->pool && !kp_rpool_synced(b->pool)) {
                /* the pool's topics not read yet: the topic may well exist, so the client is
                 * told to retry (a producer told UNKNOWN_TOPIC_OR_PARTITION fails its
                 * messages for a topic that exists). Not reached while the listeners open
                 * only after the first read (kp_broker_start); kept as the safe answer. */
                mt->ErrorCode = KERR_LEADER_NOT_AVAILABLE;
                continue;
            }
            if (!t && allow_auto) t = auto_create(req, name, &err);
            if (!t) {
                mt->ErrorCode = err;
                continue;
            }
            held[nheld++] = t;
            if (fill_topic(req, t, mt) < 0) goto fail;
        }
    }
    kp_req_begin_response(req);
    MetadataResponse_encode(&req->resp, req->api_version, &out);
    kp_topics_list_free(held, nheld);
    kp_req_finish(req);
    return 0;
fail:
    kp_topics_list_free(held, nheld);
    return -1;
}

/* ---- CreateTopics ---- */

int kp_handle_create_topics(kp_req_t *req)
{
    CreateTopicsRequest in;
    if (CreateTopicsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    CreateTopicsResponse out;
    CreateTopicsResponse_init(&out);
    int32_t n = in.Topics.count > 0 ? in.Topics.count : 0;
    out.Topics.count = n;
    out.Topics.items = kp_req_alloc(req, (size_t)(n + 1) * sizeof(*out.Topics.items));
    if (!out.Topics.items) return -1;
    for (int32_t i = 0; i < n; i++) {
        CreateTopicsRequest_CreatableTopic *t = &in.Topics.items[i];
        CreateTopicsResponse_CreatableTopicResult *r = &out.Topics.items[i];
        CreateTopicsResponse_CreatableTopicResult_init(r);
        r->Name = t->Name;
        char msg[512] = "";
        int16_t err = 0;
        for (int32_t j = 0; j < i && !err; j++) {
            if (kp_str_eq(in.Topics.items[j].Name, t->Name)) {
                err = KERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "Topic appears more than once in the request");
            }
        }
        int32_t partitions = t->NumPartitions;
        int16_t rf = t->ReplicationFactor;
        if (!err && t->Assignments.count > 0) {
            if (partitions != -1 || rf != -1) {
                err = KERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg),
                         "Both numPartitions or replicationFactor and "
                         "replicasAssignments were set");
            }
            partitions = t->Assignments.count;
            for (int32_t a = 0; a < t->Assignments.count && !err; a++) {
                const CreateTopicsRequest_CreatableReplicaAssignment *as = &t->Assignments.items[a];
                if (b->pool) { /* explicit assignments are not taken in a pool (yet) */
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg),
                             "Replica assignments are not supported in a replicated pool yet: "
                             "give numPartitions and replicationFactor");
                } else if (as->PartitionIndex != a || as->BrokerIds.count != 1 ||
                           as->BrokerIds.items[0] != b->cfg.node_id) {
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg),
                             "Replica assignment must place partitions 0..%d "
                             "on broker %d, the only broker of this pool",
                             t->Assignments.count - 1, b->cfg.node_id);
                }
            }
        }
        if (!err &&
            !kp_req_authorize(req, KP_OP_CREATE, KP_RES_CLUSTER, KP_STR_LIT(KP_CLUSTER_RESOURCE)) &&
            !kp_req_authorize(req, KP_OP_CREATE, KP_RES_TOPIC, t->Name)) {
            err = KERR_TOPIC_AUTHORIZATION_FAILED;
            snprintf(msg, sizeof(msg), "Authorization failed.");
        }
        if (partitions == -1) partitions = b->cfg.num_partitions;
        if (rf == -1) rf = b->pool ? pool_default_rf(b) : b->cfg.default_replication_factor;
        if (!err && !b->pool && rf != 1) {
            err = KERR_INVALID_REPLICATION_FACTOR;
            snprintf(msg, sizeof(msg), "Replication factor: %d larger than available brokers: 1.",
                     rf);
        }
        if (!err && partitions < 1) {
            err = KERR_INVALID_PARTITIONS;
            snprintf(msg, sizeof(msg), "Number of partitions must be larger than 0.");
        }
        if (!err) {
            int32_t nc = t->Configs.count > 0 ? t->Configs.count : 0;
            const char **keys = kp_req_alloc(req, (size_t)(nc + 1) * sizeof(char *));
            const char **vals = kp_req_alloc(req, (size_t)(nc + 1) * sizeof(char *));
            if (!keys || !vals) return -1;
            for (int32_t c = 0; c < nc; c++) {
                kp_str_t k = t->Configs.items[c].Name, v = t->Configs.items[c].Value;
                keys[c] = kp_arena_strndup(&req->arena, k.ptr, (size_t)(k.len > 0 ? k.len : 0));
                vals[c] = v.len < 0 ? NULL : kp_arena_strndup(&req->arena, v.ptr, (size_t)v.len);
                if (!keys[c] || (v.len >= 0 && !vals[c])) return -1;
            }
            kp_topic_spec_t spec = {.name = t->Name,
                                    .partitions = partitions,
                                    .config_keys = keys,
                                    .config_values = vals,
                                    .nconfigs = nc};
            err = b->pool
                      ? kp_rpool_create_topic(b->pool, &spec, rf, in.ValidateOnly, msg, sizeof(msg))
                      : kp_topics_create(b->topics, &spec, in.ValidateOnly, msg, sizeof(msg));
        }
        r->ErrorCode = err;
        if (err) {
            size_t ml = strlen(msg);
            char *m = kp_arena_strndup(&req->arena, msg, ml);
            r->ErrorMessage = m ? (kp_str_t){m, (int32_t)ml} : KP_STR_NULL;
        }
    }
    kp_req_begin_response(req);
    CreateTopicsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}

/* ---- DeleteTopics ---- */

int kp_handle_delete_topics(kp_req_t *req)
{
    DeleteTopicsRequest in;
    if (DeleteTopicsRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    kp_broker_t *b = req->sess->broker;
    DeleteTopicsResponse out;
    DeleteTopicsResponse_init(&out);
    int32_t n = in.TopicNames.count > 0 ? in.TopicNames.count : 0;
    out.Responses.count = n;
    out.Responses.items = kp_req_alloc(req, (size_t)(n + 1) * sizeof(*out.Responses.items));
    if (!out.Responses.items) return -1;
    for (int32_t i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *r = &out.Responses.items[i];
        DeleteTopicsResponse_DeletableTopicResult_init(r);
        r->Name = in.TopicNames.items[i];
        char msg[256];
        kp_topic_t *t = NULL;
        if (!kp_req_authorize(req, KP_OP_DELETE, KP_RES_TOPIC, r->Name)) {
            r->ErrorCode = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        t = kp_topics_get(b->topics, r->Name);
        if (t && t->internal) {
            r->ErrorCode = KERR_INVALID_REQUEST; /* internal topics are not deletable */
        } else {
            r->ErrorCode = b->pool ? kp_rpool_delete_topic(b->pool, r->Name, msg, sizeof(msg))
                                   : kp_topics_delete(b->topics, r->Name, msg, sizeof(msg));
        }
        kp_topic_put(t);
    }
    kp_req_begin_response(req);
    DeleteTopicsResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
