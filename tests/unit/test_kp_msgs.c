/*
 * test_kp_msgs.c — the generated codec (tools/kpgen.py → build/<dir>/gen/kp_msgs.[ch]).
 *
 * For real messages across their versions: the encoding matches hand-computed bytes or sizes
 * (which fields exist in which version), decode(encode(x)) gives x back, encode is stable
 * under another round, and every strict prefix of a valid encoding fails to decode (each
 * prefix is copied into an exactly sized allocation, so ASan catches a read past it). Also:
 * forged array counts fail without allocating, unknown tagged fields are skipped, and the API
 * table carries the versions SPEC section 9 requires.
 */
#include "unit.h"

#include "core/arena.h"
#include "core/limits.h"
#include "kp_msgs.h"

static kp_arena_t arena;

static int setup(void **state)
{
    kp_arena_init(&arena, KP_REQUEST_ARENA_BYTES_MAX);
    return 0;
}

static int teardown(void **state)
{
    kp_arena_free(&arena);
    return 0;
}

/*
 * Encodes *in at version ver into w (the caller frees w: *out borrows from it), checks that
 * every prefix fails, that the whole decodes into *out consuming every byte, and that
 * encoding *out again gives the same bytes.
 */
#define CHECK_ROUNDTRIP(M, ver, in, out, w)                                                        \
    do {                                                                                           \
        kp_wr_init(w);                                                                             \
        M##_encode((w), (ver), (in));                                                              \
        size_t len_ = (w)->buf.len;                                                                \
        for (size_t cut_ = 0; cut_ < len_; cut_++) {                                               \
            uint8_t *copy_ = malloc(cut_ ? cut_ : 1);                                              \
            memcpy(copy_, (w)->buf.data, cut_);                                                    \
            kp_rd_t rc_;                                                                           \
            kp_rd_init(&rc_, copy_, cut_);                                                         \
            M tmp_;                                                                                \
            if (M##_decode(&rc_, (ver), &arena, &tmp_) != -1)                                      \
                fail_msg("%s v%d: prefix of %zu/%zu bytes decoded", #M, (int)(ver), cut_, len_);   \
            free(copy_);                                                                           \
        }                                                                                          \
        kp_rd_t r_;                                                                                \
        kp_rd_init(&r_, (w)->buf.data, len_);                                                      \
        assert_int_equal(M##_decode(&r_, (ver), &arena, (out)), 0);                                \
        assert_int_equal(kp_rd_left(&r_), 0);                                                      \
        kp_wr_t w2_;                                                                               \
        kp_wr_init(&w2_);                                                                          \
        M##_encode(&w2_, (ver), (out));                                                            \
        assert_int_equal(w2_.buf.len, len_);                                                       \
        assert_memory_equal(w2_.buf.data, (w)->buf.data, len_);                                    \
        kp_wr_free(&w2_);                                                                          \
    } while (0)

/* ---- requests ---- */

static void test_metadata_request_versions(void **state)
{
    MetadataRequest_MetadataRequestTopic topics[2] = {{KP_STR_LIT("a")}, {KP_STR_LIT("bc")}};
    MetadataRequest in, out;
    MetadataRequest_init(&in);
    assert_int_equal(in.AllowAutoTopicCreation, 1); /* default=true */
    in.Topics.items = topics;
    in.Topics.count = 2;
    in.AllowAutoTopicCreation = 0;
    kp_wr_t w;

    /* v0: int32 count, then int16-length strings; no AllowAutoTopicCreation */
    CHECK_ROUNDTRIP(MetadataRequest, 0, &in, &out, &w);
    static const uint8_t v0[] = {0, 0, 0, 2, 0, 1, 'a', 0, 2, 'b', 'c'};
    assert_int_equal(w.buf.len, sizeof(v0));
    assert_memory_equal(w.buf.data, v0, sizeof(v0));
    assert_int_equal(out.Topics.count, 2);
    assert_true(kp_str_eq_c(out.Topics.items[1].Name, "bc"));
    assert_int_equal(out.AllowAutoTopicCreation, 1); /* absent in v0: the default */
    kp_wr_free(&w);

    /* v1: null = all topics */
    in.Topics.count = -1;
    CHECK_ROUNDTRIP(MetadataRequest, 1, &in, &out, &w);
    static const uint8_t v1[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(w.buf.len, sizeof(v1));
    assert_memory_equal(w.buf.data, v1, sizeof(v1));
    assert_int_equal(out.Topics.count, -1);
    kp_wr_free(&w);

    /* v0 may not carry a null array */
    kp_rd_t r;
    kp_rd_init(&r, v1, sizeof(v1));
    assert_int_equal(MetadataRequest_decode(&r, 0, &arena, &out), -1);

    /* v4: AllowAutoTopicCreation follows */
    in.Topics.count = 1;
    CHECK_ROUNDTRIP(MetadataRequest, 4, &in, &out, &w);
    static const uint8_t v4[] = {0, 0, 0, 1, 0, 1, 'a', 0};
    assert_int_equal(w.buf.len, sizeof(v4));
    assert_memory_equal(w.buf.data, v4, sizeof(v4));
    assert_int_equal(out.AllowAutoTopicCreation, 0);
    kp_wr_free(&w);

    for (int16_t v = 0; v <= 7; v++) {
        in.Topics.count = 2;
        CHECK_ROUNDTRIP(MetadataRequest, v, &in, &out, &w);
        assert_true(kp_str_eq_c(out.Topics.items[0].Name, "a"));
        kp_wr_free(&w);
    }
}

static void test_produce_request_versions(void **state)
{
    kp_buf_t batch;
    kp_buf_init(&batch);
    ut_batch_opts_t o = ut_batch_defaults(3, 1700000000000);
    size_t blen = ut_batch_build(&batch, &o);

    ProduceRequest_PartitionProduceData parts[2];
    ProduceRequest_PartitionProduceData_init(&parts[0]);
    ProduceRequest_PartitionProduceData_init(&parts[1]);
    parts[0].Index = 0;
    parts[0].Records.ptr = batch.data;
    parts[0].Records.len = (int32_t)blen;
    parts[1].Index = 7; /* null records */
    ProduceRequest_TopicProduceData topic = {KP_STR_LIT("orders"), {parts, 2}};
    ProduceRequest in, out;
    ProduceRequest_init(&in);
    assert_int_equal(in.TransactionalId.len, -1);
    in.Acks = -1;
    in.TimeoutMs = 30000;
    in.TopicData.items = &topic;
    in.TopicData.count = 1;

    for (int16_t v = 3; v <= 7; v++) {
        kp_wr_t w;
        CHECK_ROUNDTRIP(ProduceRequest, v, &in, &out, &w);
        /* null txn id(2) acks(2) timeout(4) topics(4) name(2+6) parts(4) p0(4+4+blen) p1(4+4) */
        assert_int_equal(w.buf.len, 2 + 2 + 4 + 4 + 8 + 4 + 8 + blen + 8);
        assert_int_equal(out.TransactionalId.len, -1);
        assert_int_equal(out.Acks, -1);
        assert_int_equal(out.TimeoutMs, 30000);
        assert_int_equal(out.TopicData.count, 1);
        assert_true(kp_str_eq_c(out.TopicData.items[0].Name, "orders"));
        assert_int_equal(out.TopicData.items[0].PartitionData.count, 2);
        const ProduceRequest_PartitionProduceData *p =
            &out.TopicData.items[0].PartitionData.items[0];
        assert_int_equal(p->Records.len, blen);
        assert_memory_equal(p->Records.ptr, batch.data, blen);
        assert_null(p->Records.file_owner);
        /* the records are borrowed from the frame */
        assert_true(p->Records.ptr >= w.buf.data && p->Records.ptr < w.buf.data + w.buf.len);
        kp_batch_info_t info;
        assert_int_equal(kp_batch_validate(p->Records.ptr, (size_t)p->Records.len, &info),
                         KP_BATCH_OK);
        assert_int_equal(out.TopicData.items[0].PartitionData.items[1].Index, 7);
        assert_int_equal(out.TopicData.items[0].PartitionData.items[1].Records.len, -1);
        kp_wr_free(&w);
    }
    /* a transactional id */
    in.TransactionalId = KP_STR_LIT("txn-1");
    kp_wr_t w;
    CHECK_ROUNDTRIP(ProduceRequest, 5, &in, &out, &w);
    assert_true(kp_str_eq_c(out.TransactionalId, "txn-1"));
    kp_wr_free(&w);
    kp_buf_free(&batch);
}

/* The fields FetchRequest gains per version, as sizes of one topic "t" with one partition. */
static void test_fetch_request_versions(void **state)
{
    FetchRequest_FetchPartition part;
    FetchRequest_FetchPartition_init(&part);
    assert_int_equal(part.CurrentLeaderEpoch, -1);
    assert_int_equal(part.LogStartOffset, -1);
    part.Partition = 3;
    part.CurrentLeaderEpoch = 9;
    part.FetchOffset = 1234567890123;
    part.LogStartOffset = 5;
    part.PartitionMaxBytes = 1 << 20;
    FetchRequest_FetchTopic topic = {KP_STR_LIT("t"), {&part, 1}};
    FetchRequest in, out;
    FetchRequest_init(&in);
    assert_int_equal(in.MaxBytes, 0x7fffffff);
    assert_int_equal(in.SessionEpoch, -1);
    in.ReplicaId = -1;
    in.MaxWaitMs = 500;
    in.MinBytes = 1;
    in.MaxBytes = 52428800;
    in.IsolationLevel = 1;
    in.SessionId = 77;
    in.SessionEpoch = 2;
    in.Topics.items = &topic;
    in.Topics.count = 1;
    in.ForgottenTopicsData.count = 0;
    in.RackId = KP_STR_LIT("");

    static const size_t sizes[12] = {0, 0, 0, 0, 44, 52, 52, 64, 64, 68, 68, 70};
    for (int16_t v = 4; v <= 11; v++) {
        kp_wr_t w;
        CHECK_ROUNDTRIP(FetchRequest, v, &in, &out, &w);
        assert_int_equal(w.buf.len, sizes[v]);
        assert_int_equal(out.ReplicaId, -1);
        assert_int_equal(out.MaxWaitMs, 500);
        assert_int_equal(out.MaxBytes, 52428800);
        assert_int_equal(out.IsolationLevel, 1);
        assert_int_equal(out.SessionId, v >= 7 ? 77 : 0);
        assert_int_equal(out.SessionEpoch, v >= 7 ? 2 : -1);
        const FetchRequest_FetchPartition *p = &out.Topics.items[0].Partitions.items[0];
        assert_int_equal(p->Partition, 3);
        assert_true(p->FetchOffset == 1234567890123);
        assert_int_equal(p->CurrentLeaderEpoch, v >= 9 ? 9 : -1);
        assert_int_equal(p->LogStartOffset, v >= 5 ? 5 : -1);
        assert_int_equal(p->PartitionMaxBytes, 1 << 20);
        kp_wr_free(&w);
    }
    /* v7+: forgotten topics, v11: a rack */
    int32_t forgotten_parts[3] = {1, 2, 3};
    FetchRequest_ForgottenTopic ft = {KP_STR_LIT("old"), {forgotten_parts, 3}};
    in.ForgottenTopicsData.items = &ft;
    in.ForgottenTopicsData.count = 1;
    in.RackId = KP_STR_LIT("rack-a");
    kp_wr_t w;
    CHECK_ROUNDTRIP(FetchRequest, 11, &in, &out, &w);
    assert_int_equal(out.ForgottenTopicsData.count, 1);
    assert_true(kp_str_eq_c(out.ForgottenTopicsData.items[0].Topic, "old"));
    assert_int_equal(out.ForgottenTopicsData.items[0].Partitions.count, 3);
    assert_int_equal(out.ForgottenTopicsData.items[0].Partitions.items[2], 3);
    assert_true(kp_str_eq_c(out.RackId, "rack-a"));
    kp_wr_free(&w);
}

/* ApiVersions v3 is flexible: compact strings and a tagged-field section. */
static void test_api_versions_request_flexible(void **state)
{
    ApiVersionsRequest in, out;
    ApiVersionsRequest_init(&in);
    in.ClientSoftwareName = KP_STR_LIT("kcat");
    in.ClientSoftwareVersion = KP_STR_LIT("1.7");
    kp_wr_t w;
    CHECK_ROUNDTRIP(ApiVersionsRequest, 3, &in, &out, &w);
    static const uint8_t v3[] = {0x05, 'k', 'c', 'a', 't', 0x04, '1', '.', '7', 0x00};
    assert_int_equal(w.buf.len, sizeof(v3));
    assert_memory_equal(w.buf.data, v3, sizeof(v3));
    assert_true(kp_str_eq_c(out.ClientSoftwareName, "kcat"));
    assert_true(kp_str_eq_c(out.ClientSoftwareVersion, "1.7"));
    kp_wr_free(&w);

    /* v0..v2 have an empty body */
    for (int16_t v = 0; v <= 2; v++) {
        kp_wr_init(&w);
        ApiVersionsRequest_encode(&w, v, &in);
        assert_int_equal(w.buf.len, 0);
        kp_rd_t r;
        kp_rd_init(&r, "", 0);
        assert_int_equal(ApiVersionsRequest_decode(&r, v, &arena, &out), 0);
        kp_wr_free(&w);
    }

    /* unknown tagged fields (as a newer client might send) are skipped */
    static const uint8_t tagged[] = {0x05, 'k',  'c',  'a',  't', 0x04, '1',  '.',
                                     '7',  0x02, 0x00, 0x02, 'x', 'y',  0x7f, 0x00};
    kp_rd_t r;
    kp_rd_init(&r, tagged, sizeof(tagged));
    assert_int_equal(ApiVersionsRequest_decode(&r, 3, &arena, &out), 0);
    assert_int_equal(kp_rd_left(&r), 0);
    assert_true(kp_str_eq_c(out.ClientSoftwareVersion, "1.7"));
    /* ... and a tag whose size overruns the frame is an error */
    kp_rd_init(&r, tagged, sizeof(tagged) - 3);
    assert_int_equal(ApiVersionsRequest_decode(&r, 3, &arena, &out), -1);
    /* the name is not nullable: compact null fails */
    static const uint8_t null_name[] = {0x00, 0x01, 0x00};
    kp_rd_init(&r, null_name, sizeof(null_name));
    assert_int_equal(ApiVersionsRequest_decode(&r, 3, &arena, &out), -1);
}

static void test_other_requests(void **state)
{
    kp_wr_t w;
    /* CreateTopics with assignments and configs (nullable value) */
    int32_t brokers[2] = {1, 2};
    CreateTopicsRequest_CreatableReplicaAssignment asg = {0, {brokers, 2}};
    CreateTopicsRequest_CreatableTopicConfig cfgs[2] = {
        {KP_STR_LIT("cleanup.policy"), KP_STR_LIT("compact")},
        {KP_STR_LIT("retention.ms"), KP_STR_NULL},
    };
    CreateTopicsRequest_CreatableTopic t = {KP_STR_LIT("events"), 6, 3, {&asg, 1}, {cfgs, 2}};
    CreateTopicsRequest ct, ct_out;
    CreateTopicsRequest_init(&ct);
    ct.Topics.items = &t;
    ct.Topics.count = 1;
    ct.TimeoutMs = 1000;
    ct.ValidateOnly = 1;
    for (int16_t v = 0; v <= 4; v++) {
        CHECK_ROUNDTRIP(CreateTopicsRequest, v, &ct, &ct_out, &w);
        const CreateTopicsRequest_CreatableTopic *o = &ct_out.Topics.items[0];
        assert_true(kp_str_eq_c(o->Name, "events"));
        assert_int_equal(o->NumPartitions, 6);
        assert_int_equal(o->ReplicationFactor, 3);
        assert_int_equal(o->Assignments.items[0].BrokerIds.items[1], 2);
        assert_int_equal(o->Configs.items[1].Value.len, -1);
        assert_true(kp_str_eq_c(o->Configs.items[0].Value, "compact"));
        assert_int_equal(ct_out.ValidateOnly, v >= 1 ? 1 : 0);
        kp_wr_free(&w);
    }
    /* DeleteTopics */
    kp_str_t names[3] = {KP_STR_LIT("a"), KP_STR_LIT("b"), KP_STR_LIT("")};
    DeleteTopicsRequest dt, dt_out;
    DeleteTopicsRequest_init(&dt);
    dt.TopicNames.items = names;
    dt.TopicNames.count = 3;
    dt.TimeoutMs = 5;
    for (int16_t v = 0; v <= 3; v++) {
        CHECK_ROUNDTRIP(DeleteTopicsRequest, v, &dt, &dt_out, &w);
        assert_int_equal(dt_out.TopicNames.count, 3);
        assert_true(kp_str_eq_c(dt_out.TopicNames.items[1], "b"));
        kp_wr_free(&w);
    }
    /* InitProducerId: null transactional id by default */
    InitProducerIdRequest ip, ip_out;
    InitProducerIdRequest_init(&ip);
    ip.TransactionTimeoutMs = 60000;
    for (int16_t v = 0; v <= 1; v++) {
        CHECK_ROUNDTRIP(InitProducerIdRequest, v, &ip, &ip_out, &w);
        assert_int_equal(w.buf.len, 6);
        assert_int_equal(ip_out.TransactionalId.len, -1);
        assert_int_equal(ip_out.TransactionTimeoutMs, 60000);
        kp_wr_free(&w);
    }
    /* ListOffsets: MaxNumOffsets only in v0, IsolationLevel from v2, epoch from v4 */
    ListOffsetsRequest_ListOffsetsPartition lp;
    ListOffsetsRequest_ListOffsetsPartition_init(&lp);
    assert_int_equal(lp.MaxNumOffsets, 1);
    lp.PartitionIndex = 2;
    lp.CurrentLeaderEpoch = 4;
    lp.Timestamp = -2;
    ListOffsetsRequest_ListOffsetsTopic lt = {KP_STR_LIT("t"), {&lp, 1}};
    ListOffsetsRequest lo, lo_out;
    ListOffsetsRequest_init(&lo);
    lo.ReplicaId = -1;
    lo.IsolationLevel = 1;
    lo.Topics.items = &lt;
    lo.Topics.count = 1;
    /* replica(4) [iso(1)] topics(4) name(3) parts(4) idx(4) [epoch(4)] ts(8) [max(4)] */
    static const size_t lo_sizes[6] = {31, 27, 28, 28, 32, 32};
    for (int16_t v = 0; v <= 5; v++) {
        CHECK_ROUNDTRIP(ListOffsetsRequest, v, &lo, &lo_out, &w);
        assert_int_equal(w.buf.len, lo_sizes[v]);
        const ListOffsetsRequest_ListOffsetsPartition *p =
            &lo_out.Topics.items[0].Partitions.items[0];
        assert_int_equal(p->Timestamp, -2);
        assert_int_equal(p->CurrentLeaderEpoch, v >= 4 ? 4 : -1);
        assert_int_equal(lo_out.IsolationLevel, v >= 2 ? 1 : 0);
        kp_wr_free(&w);
    }
}

/* ---- responses (the broker only encodes them; round trips keep the definitions honest) */

static void test_responses(void **state)
{
    kp_wr_t w;
    /* ApiVersions v0 and v3 (flexible) */
    ApiVersionsResponse_ApiVersion keys[2] = {{0, 3, 7}, {18, 0, 3}};
    ApiVersionsResponse av, av_out;
    ApiVersionsResponse_init(&av);
    av.ApiKeys.items = keys;
    av.ApiKeys.count = 2;
    av.ThrottleTimeMs = 0;
    CHECK_ROUNDTRIP(ApiVersionsResponse, 0, &av, &av_out, &w);
    assert_int_equal(w.buf.len, 2 + 4 + 12);
    kp_wr_free(&w);
    CHECK_ROUNDTRIP(ApiVersionsResponse, 3, &av, &av_out, &w);
    /* error(2) compact count(1) 2 x (6 + tags 1) throttle(4) tags(1) */
    assert_int_equal(w.buf.len, 2 + 1 + 14 + 4 + 1);
    assert_int_equal(av_out.ApiKeys.items[0].MaxVersion, 7);
    assert_int_equal(av_out.ApiKeys.items[1].ApiKey, 18);
    kp_wr_free(&w);

    /* Metadata v0..v7 */
    int32_t replicas[3] = {1, 2, 3};
    MetadataResponse_MetadataResponsePartition mp;
    MetadataResponse_MetadataResponsePartition_init(&mp);
    mp.LeaderId = 1;
    mp.LeaderEpoch = 5;
    mp.ReplicaNodes.items = replicas;
    mp.ReplicaNodes.count = 3;
    mp.IsrNodes.items = replicas;
    mp.IsrNodes.count = 2;
    MetadataResponse_MetadataResponseTopic mt = {0, KP_STR_LIT("t"), 0, {&mp, 1}};
    MetadataResponse_MetadataResponseBroker mb = {1, KP_STR_LIT("127.0.0.1"), 9092, KP_STR_NULL};
    MetadataResponse md, md_out;
    MetadataResponse_init(&md);
    md.Brokers.items = &mb;
    md.Brokers.count = 1;
    md.ClusterId = KP_STR_LIT("kpool");
    md.ControllerId = 1;
    md.Topics.items = &mt;
    md.Topics.count = 1;
    for (int16_t v = 0; v <= 7; v++) {
        CHECK_ROUNDTRIP(MetadataResponse, v, &md, &md_out, &w);
        assert_int_equal(md_out.Brokers.items[0].Port, 9092);
        assert_int_equal(md_out.ControllerId, v >= 1 ? 1 : -1);
        assert_int_equal(md_out.ClusterId.len, v >= 2 ? 5 : -1);
        const MetadataResponse_MetadataResponsePartition *p =
            &md_out.Topics.items[0].Partitions.items[0];
        assert_int_equal(p->LeaderEpoch, v >= 7 ? 5 : -1);
        assert_int_equal(p->IsrNodes.count, 2);
        assert_int_equal(p->OfflineReplicas.count, 0);
        kp_wr_free(&w);
    }

    /* Fetch v4..v11 with inline records and a null aborted list */
    uint8_t rec[70];
    memset(rec, 0xab, sizeof(rec));
    FetchResponse_PartitionData fp;
    FetchResponse_PartitionData_init(&fp);
    assert_int_equal(fp.Records.len, -1);
    fp.HighWatermark = 10;
    fp.LastStableOffset = 10;
    fp.LogStartOffset = 0;
    fp.AbortedTransactions.count = -1;
    fp.Records.ptr = rec;
    fp.Records.len = sizeof(rec);
    FetchResponse_FetchableTopicResponse ftr = {KP_STR_LIT("t"), {&fp, 1}};
    FetchResponse fr, fr_out;
    FetchResponse_init(&fr);
    fr.Responses.items = &ftr;
    fr.Responses.count = 1;
    for (int16_t v = 4; v <= 11; v++) {
        CHECK_ROUNDTRIP(FetchResponse, v, &fr, &fr_out, &w);
        const FetchResponse_PartitionData *p = &fr_out.Responses.items[0].Partitions.items[0];
        assert_int_equal(p->HighWatermark, 10);
        assert_int_equal(p->AbortedTransactions.count, -1);
        assert_int_equal(p->Records.len, sizeof(rec));
        assert_memory_equal(p->Records.ptr, rec, sizeof(rec));
        assert_int_equal(p->LogStartOffset, v >= 5 ? 0 : -1);
        kp_wr_free(&w);
    }

    /* Produce v3..v7 */
    ProduceResponse_PartitionProduceResponse pp;
    ProduceResponse_PartitionProduceResponse_init(&pp);
    pp.BaseOffset = 42;
    pp.LogStartOffset = 7;
    ProduceResponse_TopicProduceResponse ptr_ = {KP_STR_LIT("t"), {&pp, 1}};
    ProduceResponse pr, pr_out;
    ProduceResponse_init(&pr);
    pr.Responses.items = &ptr_;
    pr.Responses.count = 1;
    for (int16_t v = 3; v <= 7; v++) {
        CHECK_ROUNDTRIP(ProduceResponse, v, &pr, &pr_out, &w);
        /* topics(4) name(3) parts(4) idx(4) err(2) base(8) time(8) [start(8)] throttle(4) */
        assert_int_equal(w.buf.len, 37 + (v >= 5 ? 8 : 0));
        assert_int_equal(pr_out.Responses.items[0].PartitionResponses.items[0].BaseOffset, 42);
        kp_wr_free(&w);
    }
}

/* Flexible versions bound array counts by the compact sizes: two empty topics (3 bytes each:
 * name, partitions, tags) decode — the old bound used the classic sizes (6 bytes each) and
 * refused this valid request. */
static void test_flexible_array_bound(void **state)
{
    static const uint8_t body[] = {0x03, 0x01, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00};
    kp_rd_t r;
    kp_rd_init(&r, body, sizeof(body));
    DescribeProducersRequest d;
    assert_int_equal(DescribeProducersRequest_decode(&r, 0, &arena, &d), 0);
    assert_int_equal(d.Topics.count, 2);
    assert_int_equal(kp_rd_left(&r), 0);
}

/* Forged counts fail before the decoder allocates anything sized by them. */
static void test_forged_counts(void **state)
{
    kp_arena_free(&arena);
    kp_arena_init(&arena, KP_REQUEST_ARENA_BYTES_MAX);
    kp_rd_t r;
    MetadataRequest m;
    uint8_t buf[32] = {0x00, 0xff, 0xff, 0xff}; /* 16M topics in a 32-byte frame */
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(MetadataRequest_decode(&r, 1, &arena, &m), -1);
    assert_int_equal(arena.used_total, 0);
    /* a count that fits the frame only if elements were 1 byte: topics need 2 bytes each */
    ut_st32(buf, 15);
    kp_rd_init(&r, buf, 4 + 15);
    assert_int_equal(MetadataRequest_decode(&r, 1, &arena, &m), -1);
    assert_int_equal(arena.used_total, 0);
    /* nested: a produce request whose partition count is forged */
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_string(&w, 0, KP_STR_NULL);
    kp_wr_i16(&w, 1);
    kp_wr_i32(&w, 100);
    kp_wr_i32(&w, 1);
    kp_wr_string(&w, 0, KP_STR_LIT("t"));
    kp_wr_i32(&w, 0x10000000);
    kp_wr_i32(&w, 0);
    ProduceRequest p;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_int_equal(ProduceRequest_decode(&r, 7, &arena, &p), -1);
    assert_true(arena.used_total < 256);
    kp_wr_free(&w);
    /* an array of strings: two names decode, a count of 1000 in the same frame does not */
    kp_wr_init(&w);
    kp_wr_i32(&w, 2);
    kp_wr_string(&w, 0, KP_STR_LIT("a"));
    kp_wr_string(&w, 0, KP_STR_LIT("b"));
    kp_wr_i32(&w, 5000);
    DeleteTopicsRequest d;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_int_equal(DeleteTopicsRequest_decode(&r, 0, &arena, &d), 0);
    assert_int_equal(d.TimeoutMs, 5000);
    size_t used = arena.used_total;
    ut_st32(w.buf.data, 1000);
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_int_equal(DeleteTopicsRequest_decode(&r, 0, &arena, &d), -1);
    assert_int_equal(arena.used_total, used);
    kp_wr_free(&w);
}

/* The API table: sorted unique keys, sane ranges, the first flexible version Kafka's message
 * specs give (ApiVersions v3; the group APIs at the versions Kafka 3.6 serves, issue 20; the
 * transaction APIs Kafka defines flexible from v0, served at v0 only; the rest
 * non-flexible), and for every API SPEC lists that is defined, exactly the versions
 * served (SPEC section 9's minimum, more where Kafka 3.x serves more). The first eight must be
 * there. */
static int16_t flexible_min_of(int16_t key)
{
    static const int16_t flex[][2] = {{8, 8},  {9, 6},  {10, 3}, {11, 6}, {12, 4}, {13, 4},
                                      {14, 4}, {15, 5}, {16, 3}, {18, 3}, {22, 2}, {24, 3},
                                      {25, 3}, {26, 3}, {27, 1}, {28, 3}, {42, 2}, {43, 2},
                                      {45, 0}, {46, 0}, {61, 0}, {65, 0}, {66, 0}};
    for (size_t i = 0; i < sizeof(flex) / sizeof(flex[0]); i++)
        if (flex[i][0] == key) return flex[i][1];
    return -1;
}

static void test_api_table(void **state)
{
    static const struct {
        int16_t key, min, max;
        int required;
    } spec[] = {
        /* Produce 0-2 and Fetch 0-3 are served with message format conversion, as Kafka 3.x */
        {0, 0, 7, 1},
        {1, 0, 11, 1},
        {2, 0, 5, 1},
        {3, 0, 7, 1},
        {18, 0, 3, 1},
        {19, 0, 4, 1},
        {20, 0, 3, 1},
        {22, 0, 4, 1},
        {8, 0, 8, 0},
        {9, 0, 8, 0},
        {10, 0, 4, 0},
        {11, 0, 9, 0},
        {12, 0, 4, 0},
        {13, 0, 5, 0},
        {14, 0, 5, 0},
        {15, 0, 5, 0},
        {16, 0, 4, 0},
        {21, 0, 1, 0},
        {29, 0, 1, 0},
        {30, 0, 1, 0},
        {31, 0, 1, 0},
        {32, 0, 2, 0},
        {33, 0, 1, 0},
        {37, 0, 1, 0},
        {42, 0, 2, 0},
        {44, 0, 0, 0},
        /* pool operations: ElectLeaders flexible from v2, the reassignments from v0 (KIP-455) */
        {43, 0, 2, 1},
        {45, 0, 0, 1},
        {46, 0, 0, 1},
        /* transactions: through the flexible versions of KIP-890 part 1, not those that only
         * add TRANSACTION_ABORTABLE (docs/transactions.md) */
        {24, 0, 4, 1},
        {25, 0, 3, 1},
        {26, 0, 3, 1},
        {27, 0, 1, 1},
        {28, 0, 3, 1},
        {61, 0, 0, 1},
        {65, 0, 0, 1},
        {66, 0, 1, 1},
    };
    for (int i = 0; i < KP_API_DEFS_COUNT; i++) {
        const kp_api_def_t *d = &kp_api_defs[i];
        if (i > 0) assert_true(d->key > kp_api_defs[i - 1].key);
        assert_true(d->min_version >= 0 && d->min_version <= d->max_version);
        assert_int_equal(d->flexible_min, flexible_min_of(d->key));
        assert_non_null(d->name);
    }
    for (size_t k = 0; k < sizeof(spec) / sizeof(spec[0]); k++) {
        const kp_api_def_t *d = NULL;
        for (int i = 0; i < KP_API_DEFS_COUNT; i++)
            if (kp_api_defs[i].key == spec[k].key) d = &kp_api_defs[i];
        if (!d) {
            if (spec[k].required) fail_msg("ApiKey %d is not defined", spec[k].key);
            continue;
        }
        if (d->min_version != spec[k].min || d->max_version != spec[k].max)
            fail_msg("%s: versions %d..%d, SPEC says %d..%d", d->name, d->min_version,
                     d->max_version, spec[k].min, spec[k].max);
    }
    assert_string_equal(kp_api_defs[0].name, "Produce");
    assert_int_equal(KP_API_INIT_PRODUCER_ID, 22);
    assert_int_equal(KP_API_API_VERSIONS, 18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metadata_request_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_produce_request_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_request_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_versions_request_flexible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flexible_array_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
