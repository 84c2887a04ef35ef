/*
 * fuzz_request.c — libFuzzer target for whole Kafka request frames (the bytes after the size).
 *
 * The input is parsed as src/broker/request.c does: ApiKey, ApiVersion, CorrelationId, the
 * nullable ClientId, and the tagged fields of header v2 when the version is flexible. So that
 * every input exercises some decoder, an ApiKey we do not define selects kp_api_defs[key %
 * count] and a version outside the API's range is folded into it. The body is then decoded
 * with the generated decoder of that API (request arena with the real ceiling) and, when that
 * succeeds, checked for encode(decode(encode(x))) == encode(x) — the decoder and encoder agree
 * on every field of every version.
 *
 * Every API of kp_api_defs must have an entry below (guarded by the generated KP_API_* macro,
 * so the file builds whichever definitions exist); a missing one aborts at start-up, so a new
 * message definition cannot silently escape fuzzing.
 */
#include "core/arena.h"
#include "core/limits.h"
#include "core/logging.h"
#include "kp_msgs.h"
#include "protocol/wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*roundtrip_fn)(kp_rd_t *rd, int16_t version, kp_arena_t *arena);

static void die(const char *msg_name, int16_t version, const char *what)
{
    fprintf(stderr, "fuzz_request: %s v%d: %s\n", msg_name, version, what);
    abort();
}

/* Decodes the body; on success re-encodes, decodes that and requires the same bytes. */
#define ROUNDTRIP(M)                                                                               \
    static void roundtrip_##M(kp_rd_t *rd, int16_t version, kp_arena_t *arena)                     \
    {                                                                                              \
        M m1, m2;                                                                                  \
        if (M##_decode(rd, version, arena, &m1) < 0) return;                                       \
        kp_wr_t w1, w2;                                                                            \
        kp_wr_init(&w1);                                                                           \
        M##_encode(&w1, version, &m1);                                                             \
        if (w1.nregions != 0) die(#M, version, "a decoded request encoded a file region");         \
        kp_rd_t r2;                                                                                \
        kp_rd_init(&r2, w1.buf.len ? w1.buf.data : (const uint8_t *)"", w1.buf.len);               \
        if (M##_decode(&r2, version, arena, &m2) < 0) die(#M, version, "re-decode failed");        \
        if (kp_rd_left(&r2) != 0) die(#M, version, "re-decode left bytes");                        \
        kp_wr_init(&w2);                                                                           \
        M##_encode(&w2, version, &m2);                                                             \
        if (w2.buf.len != w1.buf.len ||                                                            \
            (w1.buf.len && memcmp(w1.buf.data, w2.buf.data, w1.buf.len) != 0))                     \
            die(#M, version, "encode(decode(encode(x))) != encode(x)");                            \
        kp_wr_free(&w1);                                                                           \
        kp_wr_free(&w2);                                                                           \
    }

#ifdef KP_API_PRODUCE
ROUNDTRIP(ProduceRequest)
#endif
#ifdef KP_API_FETCH
ROUNDTRIP(FetchRequest)
#endif
#ifdef KP_API_LIST_OFFSETS
ROUNDTRIP(ListOffsetsRequest)
#endif
#ifdef KP_API_METADATA
ROUNDTRIP(MetadataRequest)
#endif
#ifdef KP_API_OFFSET_COMMIT
ROUNDTRIP(OffsetCommitRequest)
#endif
#ifdef KP_API_OFFSET_FETCH
ROUNDTRIP(OffsetFetchRequest)
#endif
#ifdef KP_API_FIND_COORDINATOR
ROUNDTRIP(FindCoordinatorRequest)
#endif
#ifdef KP_API_JOIN_GROUP
ROUNDTRIP(JoinGroupRequest)
#endif
#ifdef KP_API_HEARTBEAT
ROUNDTRIP(HeartbeatRequest)
#endif
#ifdef KP_API_LEAVE_GROUP
ROUNDTRIP(LeaveGroupRequest)
#endif
#ifdef KP_API_SYNC_GROUP
ROUNDTRIP(SyncGroupRequest)
#endif
#ifdef KP_API_DESCRIBE_GROUPS
ROUNDTRIP(DescribeGroupsRequest)
#endif
#ifdef KP_API_LIST_GROUPS
ROUNDTRIP(ListGroupsRequest)
#endif
#ifdef KP_API_SASL_HANDSHAKE
ROUNDTRIP(SaslHandshakeRequest)
#endif
#ifdef KP_API_API_VERSIONS
ROUNDTRIP(ApiVersionsRequest)
#endif
#ifdef KP_API_CREATE_TOPICS
ROUNDTRIP(CreateTopicsRequest)
#endif
#ifdef KP_API_DELETE_TOPICS
ROUNDTRIP(DeleteTopicsRequest)
#endif
#ifdef KP_API_OFFSET_FOR_LEADER_EPOCH
ROUNDTRIP(OffsetForLeaderEpochRequest)
#endif
#ifdef KP_API_DELETE_RECORDS
ROUNDTRIP(DeleteRecordsRequest)
#endif
#ifdef KP_API_INIT_PRODUCER_ID
ROUNDTRIP(InitProducerIdRequest)
#endif
#ifdef KP_API_ADD_PARTITIONS_TO_TXN
ROUNDTRIP(AddPartitionsToTxnRequest)
#endif
#ifdef KP_API_ADD_OFFSETS_TO_TXN
ROUNDTRIP(AddOffsetsToTxnRequest)
#endif
#ifdef KP_API_END_TXN
ROUNDTRIP(EndTxnRequest)
#endif
#ifdef KP_API_WRITE_TXN_MARKERS
ROUNDTRIP(WriteTxnMarkersRequest)
#endif
#ifdef KP_API_TXN_OFFSET_COMMIT
ROUNDTRIP(TxnOffsetCommitRequest)
#endif
#ifdef KP_API_DESCRIBE_ACLS
ROUNDTRIP(DescribeAclsRequest)
#endif
#ifdef KP_API_CREATE_ACLS
ROUNDTRIP(CreateAclsRequest)
#endif
#ifdef KP_API_DELETE_ACLS
ROUNDTRIP(DeleteAclsRequest)
#endif
#ifdef KP_API_DESCRIBE_CONFIGS
ROUNDTRIP(DescribeConfigsRequest)
#endif
#ifdef KP_API_ALTER_CONFIGS
ROUNDTRIP(AlterConfigsRequest)
#endif
#ifdef KP_API_SASL_AUTHENTICATE
ROUNDTRIP(SaslAuthenticateRequest)
#endif
#ifdef KP_API_CREATE_PARTITIONS
ROUNDTRIP(CreatePartitionsRequest)
#endif
#ifdef KP_API_DELETE_GROUPS
ROUNDTRIP(DeleteGroupsRequest)
#endif
#ifdef KP_API_INCREMENTAL_ALTER_CONFIGS
ROUNDTRIP(IncrementalAlterConfigsRequest)
#endif
#ifdef KP_API_OFFSET_DELETE
ROUNDTRIP(OffsetDeleteRequest)
#endif
#ifdef KP_API_DESCRIBE_LOG_DIRS
ROUNDTRIP(DescribeLogDirsRequest)
#endif
#ifdef KP_API_DESCRIBE_PRODUCERS
ROUNDTRIP(DescribeProducersRequest)
#endif
#ifdef KP_API_DESCRIBE_TRANSACTIONS
ROUNDTRIP(DescribeTransactionsRequest)
#endif
#ifdef KP_API_LIST_TRANSACTIONS
ROUNDTRIP(ListTransactionsRequest)
#endif
#ifdef KP_API_ELECT_LEADERS
ROUNDTRIP(ElectLeadersRequest)
#endif
#ifdef KP_API_ALTER_PARTITION_REASSIGNMENTS
ROUNDTRIP(AlterPartitionReassignmentsRequest)
#endif
#ifdef KP_API_LIST_PARTITION_REASSIGNMENTS
ROUNDTRIP(ListPartitionReassignmentsRequest)
#endif

static const struct {
    int16_t key;
    roundtrip_fn fn;
} entries[] = {
#ifdef KP_API_PRODUCE
    {KP_API_PRODUCE, roundtrip_ProduceRequest},
#endif
#ifdef KP_API_FETCH
    {KP_API_FETCH, roundtrip_FetchRequest},
#endif
#ifdef KP_API_LIST_OFFSETS
    {KP_API_LIST_OFFSETS, roundtrip_ListOffsetsRequest},
#endif
#ifdef KP_API_METADATA
    {KP_API_METADATA, roundtrip_MetadataRequest},
#endif
#ifdef KP_API_OFFSET_COMMIT
    {KP_API_OFFSET_COMMIT, roundtrip_OffsetCommitRequest},
#endif
#ifdef KP_API_OFFSET_FETCH
    {KP_API_OFFSET_FETCH, roundtrip_OffsetFetchRequest},
#endif
#ifdef KP_API_FIND_COORDINATOR
    {KP_API_FIND_COORDINATOR, roundtrip_FindCoordinatorRequest},
#endif
#ifdef KP_API_JOIN_GROUP
    {KP_API_JOIN_GROUP, roundtrip_JoinGroupRequest},
#endif
#ifdef KP_API_HEARTBEAT
    {KP_API_HEARTBEAT, roundtrip_HeartbeatRequest},
#endif
#ifdef KP_API_LEAVE_GROUP
    {KP_API_LEAVE_GROUP, roundtrip_LeaveGroupRequest},
#endif
#ifdef KP_API_SYNC_GROUP
    {KP_API_SYNC_GROUP, roundtrip_SyncGroupRequest},
#endif
#ifdef KP_API_DESCRIBE_GROUPS
    {KP_API_DESCRIBE_GROUPS, roundtrip_DescribeGroupsRequest},
#endif
#ifdef KP_API_LIST_GROUPS
    {KP_API_LIST_GROUPS, roundtrip_ListGroupsRequest},
#endif
#ifdef KP_API_SASL_HANDSHAKE
    {KP_API_SASL_HANDSHAKE, roundtrip_SaslHandshakeRequest},
#endif
#ifdef KP_API_API_VERSIONS
    {KP_API_API_VERSIONS, roundtrip_ApiVersionsRequest},
#endif
#ifdef KP_API_CREATE_TOPICS
    {KP_API_CREATE_TOPICS, roundtrip_CreateTopicsRequest},
#endif
#ifdef KP_API_DELETE_TOPICS
    {KP_API_DELETE_TOPICS, roundtrip_DeleteTopicsRequest},
#endif
#ifdef KP_API_OFFSET_FOR_LEADER_EPOCH
    {KP_API_OFFSET_FOR_LEADER_EPOCH, roundtrip_OffsetForLeaderEpochRequest},
#endif
#ifdef KP_API_DELETE_RECORDS
    {KP_API_DELETE_RECORDS, roundtrip_DeleteRecordsRequest},
#endif
#ifdef KP_API_INIT_PRODUCER_ID
    {KP_API_INIT_PRODUCER_ID, roundtrip_InitProducerIdRequest},
#endif
#ifdef KP_API_ADD_PARTITIONS_TO_TXN
    {KP_API_ADD_PARTITIONS_TO_TXN, roundtrip_AddPartitionsToTxnRequest},
#endif
#ifdef KP_API_ADD_OFFSETS_TO_TXN
    {KP_API_ADD_OFFSETS_TO_TXN, roundtrip_AddOffsetsToTxnRequest},
#endif
#ifdef KP_API_END_TXN
    {KP_API_END_TXN, roundtrip_EndTxnRequest},
#endif
#ifdef KP_API_WRITE_TXN_MARKERS
    {KP_API_WRITE_TXN_MARKERS, roundtrip_WriteTxnMarkersRequest},
#endif
#ifdef KP_API_TXN_OFFSET_COMMIT
    {KP_API_TXN_OFFSET_COMMIT, roundtrip_TxnOffsetCommitRequest},
#endif
#ifdef KP_API_DESCRIBE_ACLS
    {KP_API_DESCRIBE_ACLS, roundtrip_DescribeAclsRequest},
#endif
#ifdef KP_API_CREATE_ACLS
    {KP_API_CREATE_ACLS, roundtrip_CreateAclsRequest},
#endif
#ifdef KP_API_DELETE_ACLS
    {KP_API_DELETE_ACLS, roundtrip_DeleteAclsRequest},
#endif
#ifdef KP_API_DESCRIBE_CONFIGS
    {KP_API_DESCRIBE_CONFIGS, roundtrip_DescribeConfigsRequest},
#endif
#ifdef KP_API_ALTER_CONFIGS
    {KP_API_ALTER_CONFIGS, roundtrip_AlterConfigsRequest},
#endif
#ifdef KP_API_SASL_AUTHENTICATE
    {KP_API_SASL_AUTHENTICATE, roundtrip_SaslAuthenticateRequest},
#endif
#ifdef KP_API_CREATE_PARTITIONS
    {KP_API_CREATE_PARTITIONS, roundtrip_CreatePartitionsRequest},
#endif
#ifdef KP_API_DELETE_GROUPS
    {KP_API_DELETE_GROUPS, roundtrip_DeleteGroupsRequest},
#endif
#ifdef KP_API_INCREMENTAL_ALTER_CONFIGS
    {KP_API_INCREMENTAL_ALTER_CONFIGS, roundtrip_IncrementalAlterConfigsRequest},
#endif
#ifdef KP_API_OFFSET_DELETE
    {KP_API_OFFSET_DELETE, roundtrip_OffsetDeleteRequest},
#endif
#ifdef KP_API_DESCRIBE_LOG_DIRS
    {KP_API_DESCRIBE_LOG_DIRS, roundtrip_DescribeLogDirsRequest},
#endif
#ifdef KP_API_DESCRIBE_PRODUCERS
    {KP_API_DESCRIBE_PRODUCERS, roundtrip_DescribeProducersRequest},
#endif
#ifdef KP_API_DESCRIBE_TRANSACTIONS
    {KP_API_DESCRIBE_TRANSACTIONS, roundtrip_DescribeTransactionsRequest},
#endif
#ifdef KP_API_LIST_TRANSACTIONS
    {KP_API_LIST_TRANSACTIONS, roundtrip_ListTransactionsRequest},
#endif
#ifdef KP_API_ELECT_LEADERS
    {KP_API_ELECT_LEADERS, roundtrip_ElectLeadersRequest},
#endif
#ifdef KP_API_ALTER_PARTITION_REASSIGNMENTS
    {KP_API_ALTER_PARTITION_REASSIGNMENTS, roundtrip_AlterPartitionReassignmentsRequest},
#endif
#ifdef KP_API_LIST_PARTITION_REASSIGNMENTS
    {KP_API_LIST_PARTITION_REASSIGNMENTS, roundtrip_ListPartitionReassignmentsRequest},
#endif
};

#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

static roundtrip_fn fn_for(int16_t key)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (entries[i].key == key) return entries[i].fn;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    kp_logging_set_level((kp_loglevel_t)(KP_LOG_ERROR + 1));
    for (int i = 0; i < KP_API_DEFS_COUNT; i++) {
        if (!fn_for(kp_api_defs[i].key)) {
            fprintf(stderr,
                    "fuzz_request: ApiKey %d (%s) has no entry; add ROUNDTRIP(%sRequest) and its "
                    "table line to tests/fuzz/fuzz_request.c\n",
                    kp_api_defs[i].key, kp_api_defs[i].name, kp_api_defs[i].name);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_rd_t rd;
    kp_rd_init(&rd, data, size);
    int16_t key = kp_rd_i16(&rd);
    int16_t version = kp_rd_i16(&rd);
    (void)kp_rd_i32(&rd); /* CorrelationId */
    if (rd.err) return 0;

    const kp_api_def_t *api = NULL;
    for (int i = 0; i < KP_API_DEFS_COUNT; i++)
        if (kp_api_defs[i].key == key) api = &kp_api_defs[i];
    if (!api) api = &kp_api_defs[(uint16_t)key % KP_API_DEFS_COUNT];
    if (version < api->min_version || version > api->max_version)
        version = (int16_t)(api->min_version +
                            (uint16_t)version % (api->max_version - api->min_version + 1));
    int flexible = api->flexible_min >= 0 && version >= api->flexible_min;

    (void)kp_rd_string(&rd, 0, 1); /* ClientId: classic nullable string even in header v2 */
    if (flexible) kp_rd_skip_tags(&rd);
    if (rd.err) return 0;

    static kp_arena_t arena;
    kp_arena_init(&arena, KP_REQUEST_ARENA_BYTES_MAX);
    fn_for(api->key)(&rd, version, &arena);
    kp_arena_free(&arena);
    return 0;
}
