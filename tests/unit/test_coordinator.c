/*
 * test_coordinator.c — group/coordinator.h driven through its typed calls, without a
 * connection or the wire: what a handler (or a test of the state machine) sees.
 *
 * Checked: a JoinGroup call makes its caller the leader of generation 1 and the result comes
 * back typed (a JoinGroupResponse, the member id prefixed by the call's client id); its
 * SyncGroup hands back its assignment; DescribeGroups names the call's client id and host; a
 * commit with that generation is durable and an OffsetFetch call returns it, a stale
 * generation is refused; the handler's ACL decision (call->may) is what the coordinator
 * applies (a refused group answers GROUP_AUTHORIZATION_FAILED per call and per committed
 * partition, a refused topic TOPIC_AUTHORIZATION_FAILED); group.ownership: the first team to
 * commit owns the group, another team is refused, a caller the handler lets ALTER the cluster
 * is not; TxnOffsetCommit: the offsets stay pending (UNSTABLE_OFFSET_COMMIT with
 * RequireStable, invisible otherwise) until the transaction's marker completes them.
 */
#include "unit.h"

#include "auth/acl.h"
#include "broker/topics.h"
#include "group/coordinator.h"
#include "protocol/errors.h"
#include "storage/log.h"

#include <pthread.h>
#include <time.h>

/* What a done callback saw (copied: the result is borrowed for the callback only). */
typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    kp_group_op_t op;
    int16_t error; /* the call's error, or its first partition's */
    int32_t generation;
    char member_id[128], leader[128], client[128], host[64];
    int32_t nmembers;
    int64_t offset; /* OffsetFetch: the first partition's committed offset */
} seen_t;

typedef struct caller {
    kp_group_call_t call;
    kp_arena_t arena;
    seen_t seen;
    int allow_group, allow_topic; /* the handler's ACL decisions */
    int admin;                    /* ALTER on the cluster: exempt from group.ownership */
} caller_t;

static void copy_str(char *dst, size_t cap, kp_str_t s)
{
    snprintf(dst, cap, "%.*s", s.len > 0 ? s.len : 0, s.ptr ? s.ptr : "");
}

static void on_done(kp_group_call_t *call, kp_group_result_t res)
{
    seen_t *s = &((caller_t *)call->handler_data)->seen;
    pthread_mutex_lock(&s->mu);
    s->op = res.op;
    assert_non_null(res.any);
    assert_int_equal(res.op, call->op);
    switch (res.op) {
    case KP_GROUP_OP_JOIN:
        s->error = res.join->ErrorCode;
        s->generation = res.join->GenerationId;
        copy_str(s->member_id, sizeof(s->member_id), res.join->MemberId);
        copy_str(s->leader, sizeof(s->leader), res.join->Leader);
        s->nmembers = res.join->Members.count;
        break;
    case KP_GROUP_OP_SYNC:
        s->error = res.sync->ErrorCode;
        s->nmembers = res.sync->Assignment.len; /* the assignment's length */
        break;
    case KP_GROUP_OP_DESCRIBE:
        assert_int_equal(res.describe->Groups.count, 1);
        s->error = res.describe->Groups.items[0].ErrorCode;
        s->nmembers = res.describe->Groups.items[0].Members.count;
        if (s->nmembers > 0) {
            copy_str(s->client, sizeof(s->client),
                     res.describe->Groups.items[0].Members.items[0].ClientId);
            copy_str(s->host, sizeof(s->host),
                     res.describe->Groups.items[0].Members.items[0].ClientHost);
        }
        break;
    case KP_GROUP_OP_COMMIT:
        assert_int_equal(res.commit->Topics.count, 1);
        s->error = res.commit->Topics.items[0].Partitions.items[0].ErrorCode;
        break;
    case KP_GROUP_OP_TXN_COMMIT:
        assert_int_equal(res.txn_commit->Topics.count, 1);
        s->error = res.txn_commit->Topics.items[0].Partitions.items[0].ErrorCode;
        break;
    case KP_GROUP_OP_FETCH:
        s->error = res.fetch->ErrorCode;
        assert_int_equal(res.fetch->Topics.count, 1);
        if (!s->error) s->error = res.fetch->Topics.items[0].Partitions.items[0].ErrorCode;
        s->offset = res.fetch->Topics.items[0].Partitions.items[0].CommittedOffset;
        break;
    default:
        fail_msg("unexpected result op %d", res.op);
    }
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int may(const kp_group_call_t *call, int op, int type, kp_str_t name)
{
    const caller_t *c = call->handler_data;
    if (type == KP_RES_GROUP) return c->allow_group;
    if (type == KP_RES_TOPIC) return c->allow_topic;
    if (type == KP_RES_CLUSTER) return c->admin;
    return 0;
}

/* A caller allowed on every group and topic (no authorizer: it administers the cluster too). */
static caller_t *caller_new(const char *principal, int16_t version, int admin)
{
    caller_t *c = calloc(1, sizeof(*c));
    kp_arena_init(&c->arena, 1 << 20);
    pthread_mutex_init(&c->seen.mu, NULL);
    pthread_cond_init(&c->seen.cv, NULL);
    c->allow_group = c->allow_topic = 1;
    c->admin = admin;
    c->call.api_version = version;
    c->call.client_id = KP_STR_LIT("unit");
    c->call.client_host = "192.0.2.7";
    c->call.principal = principal;
    c->call.arena = &c->arena;
    c->call.may = may;
    c->call.done = on_done;
    c->call.handler_data = c;
    return c;
}

/* Waits until *flag is set under mu (the coordinator answers on its own thread): 60 s at
 * most, however loaded the machine. */
static void wait_flag(pthread_mutex_t *mu, pthread_cond_t *cv, const int *flag)
{
    pthread_mutex_lock(mu);
    for (int i = 0; !*flag && i < 60; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(cv, mu, &ts);
    }
    int done = *flag;
    pthread_mutex_unlock(mu);
    assert_true(done);
}

static seen_t *wait_done(caller_t *c)
{
    wait_flag(&c->seen.mu, &c->seen.cv, &c->seen.done);
    return &c->seen;
}

/* Ready for another call (the previous result was read). */
static caller_t *again(caller_t *c)
{
    c->seen.done = 0;
    return c;
}

static void caller_free(caller_t *c)
{
    kp_arena_free(&c->arena);
    pthread_mutex_destroy(&c->seen.mu);
    pthread_cond_destroy(&c->seen.cv);
    free(c);
}

static seen_t *join(kp_coordinator_t *co, caller_t *c, const char *group)
{
    JoinGroupRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    JoinGroupRequest_init(in);
    in->GroupId = kp_str_c(group);
    in->SessionTimeoutMs = 10000;
    in->RebalanceTimeoutMs = 10000;
    in->MemberId = KP_STR_LIT("");
    in->ProtocolType = KP_STR_LIT("consumer");
    JoinGroupRequest_JoinGroupRequestProtocol *p = kp_arena_calloc(&c->arena, 1, sizeof(*p));
    p->Name = KP_STR_LIT("range");
    p->Metadata = (kp_str_t){"\0\0\0\0\0\0\0\0", 8};
    in->Protocols.items = p;
    in->Protocols.count = 1;
    kp_group_join(co, &c->call, in);
    return wait_done(c);
}

/* The leader's SyncGroup: its assignment for itself (the group turns Stable once stored). */
static seen_t *sync_leader(kp_coordinator_t *co, caller_t *c, const char *group, int32_t generation,
                           const char *member)
{
    SyncGroupRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    SyncGroupRequest_init(in);
    in->GroupId = kp_str_c(group);
    in->GenerationId = generation;
    in->MemberId = kp_str_c(member);
    SyncGroupRequest_SyncGroupRequestAssignment *a = kp_arena_calloc(&c->arena, 1, sizeof(*a));
    a->MemberId = kp_str_c(member);
    a->Assignment = KP_STR_LIT("assignment");
    in->Assignments.items = a;
    in->Assignments.count = 1;
    kp_group_sync(co, &c->call, in);
    return wait_done(c);
}

static seen_t *describe(kp_coordinator_t *co, caller_t *c, const char *group)
{
    DescribeGroupsRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    DescribeGroupsRequest_init(in);
    kp_str_t *names = kp_arena_calloc(&c->arena, 1, sizeof(*names));
    names[0] = kp_str_c(group);
    in->Groups.items = names;
    in->Groups.count = 1;
    kp_group_describe(co, &c->call, in);
    return wait_done(c);
}

static seen_t *commit(kp_coordinator_t *co, caller_t *c, const char *group, int32_t generation,
                      const char *member, int64_t offset)
{
    OffsetCommitRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    OffsetCommitRequest_init(in);
    in->GroupId = kp_str_c(group);
    in->GenerationId = generation;
    in->MemberId = kp_str_c(member);
    OffsetCommitRequest_OffsetCommitRequestTopic *t = kp_arena_calloc(&c->arena, 1, sizeof(*t));
    OffsetCommitRequest_OffsetCommitRequestPartition *p = kp_arena_calloc(&c->arena, 1, sizeof(*p));
    t->Name = KP_STR_LIT("orders");
    p->PartitionIndex = 0;
    p->CommittedOffset = offset;
    p->CommittedLeaderEpoch = -1;
    p->CommittedMetadata = KP_STR_LIT("");
    t->Partitions.items = p;
    t->Partitions.count = 1;
    in->Topics.items = t;
    in->Topics.count = 1;
    kp_group_offset_commit(co, &c->call, in);
    return wait_done(c);
}

static seen_t *txn_commit(kp_coordinator_t *co, caller_t *c, const char *group, int64_t pid,
                          int64_t offset)
{
    TxnOffsetCommitRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    TxnOffsetCommitRequest_init(in);
    in->TransactionalId = KP_STR_LIT("txn-unit");
    in->GroupId = kp_str_c(group);
    in->ProducerId = pid;
    in->ProducerEpoch = 0;
    TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t =
        kp_arena_calloc(&c->arena, 1, sizeof(*t));
    TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition *p =
        kp_arena_calloc(&c->arena, 1, sizeof(*p));
    t->Name = KP_STR_LIT("orders");
    p->PartitionIndex = 0;
    p->CommittedOffset = offset;
    p->CommittedLeaderEpoch = -1;
    p->CommittedMetadata = KP_STR_LIT("");
    t->Partitions.items = p;
    t->Partitions.count = 1;
    in->Topics.items = t;
    in->Topics.count = 1;
    kp_group_txn_offset_commit(co, &c->call, in);
    return wait_done(c);
}

/* OffsetFetch v7 of orders-0 (require_stable: KIP-447's RequireStable). */
static seen_t *fetch(kp_coordinator_t *co, caller_t *c, const char *group, int require_stable)
{
    OffsetFetchRequest *in = kp_arena_calloc(&c->arena, 1, sizeof(*in));
    OffsetFetchRequest_init(in);
    in->GroupId = kp_str_c(group);
    in->RequireStable = (int8_t)require_stable;
    OffsetFetchRequest_OffsetFetchRequestTopic *t = kp_arena_calloc(&c->arena, 1, sizeof(*t));
    int32_t *parts = kp_arena_calloc(&c->arena, 1, sizeof(*parts));
    t->Name = KP_STR_LIT("orders");
    t->PartitionIndexes.items = parts;
    t->PartitionIndexes.count = 1;
    in->Topics.items = t;
    in->Topics.count = 1;
    kp_group_offset_fetch(co, &c->call, in);
    return wait_done(c);
}

typedef struct fixture {
    char dir[256];
    kp_props_t *props;
    kp_topics_t *topics;
    kp_coordinator_t *co;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    ut_tmpdir_make(f->dir, sizeof(f->dir));
    f->props = kp_props_new();
    kp_props_set(f->props, "offsets.topic.num.partitions", "1");
    kp_props_set(f->props, "group.initial.rebalance.delay.ms", "0");
    char err[512];
    assert_int_equal(kp_flusher_start(1), 0);
    f->topics = kp_topics_open(f->dir, f->props, err, sizeof(err));
    assert_non_null(f->topics);
    kp_topic_spec_t spec = {.name = KP_STR_LIT("orders"), .partitions = 1};
    assert_int_equal(kp_topics_create(f->topics, &spec, 0, err, sizeof(err)), 0);
    kp_coord_config_t cfg;
    assert_int_equal(kp_coord_config_load(&cfg, f->props, err, sizeof(err)), 0);
    kp_partition_dir_t dir = kp_topics_dir(f->topics);
    f->co = kp_coordinator_start(&dir, f->dir, 0, &cfg, err, sizeof(err));
    assert_non_null(f->co);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kp_coordinator_stop(f->co);
    kp_flusher_stop();
    kp_topics_close(f->topics);
    kp_props_free(f->props);
    ut_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void test_join_sync_commit_fetch(void **state)
{
    fixture_t *f = *state;
    caller_t *c = caller_new("User:ANONYMOUS", 3, 1);
    seen_t *s = join(f->co, c, "g1");
    assert_int_equal(s->op, KP_GROUP_OP_JOIN);
    assert_int_equal(s->error, 0);
    assert_int_equal(s->generation, 1);
    assert_string_equal(s->leader, s->member_id);
    assert_true(!strncmp(s->member_id, "unit-", 5)); /* the call's client id is the prefix */
    assert_int_equal(s->nmembers, 1);
    char member[128];
    snprintf(member, sizeof(member), "%s", s->member_id);
    seen_t *ss = sync_leader(f->co, again(c), "g1", 1, member);
    assert_int_equal(ss->op, KP_GROUP_OP_SYNC);
    assert_int_equal(ss->error, 0);
    assert_int_equal(ss->nmembers, (int)strlen("assignment"));
    seen_t *ds = describe(f->co, again(c), "g1");
    assert_int_equal(ds->error, 0);
    assert_int_equal(ds->nmembers, 1);
    assert_string_equal(ds->client, "unit");
    assert_string_equal(ds->host, "192.0.2.7");
    assert_int_equal(commit(f->co, again(c), "g1", 1, member, 42)->error, 0);
    assert_int_equal(commit(f->co, again(c), "g1", 2, member, 43)->error, KERR_ILLEGAL_GENERATION);
    c->call.api_version = 7;
    seen_t *fs = fetch(f->co, again(c), "g1", 0);
    assert_int_equal(fs->error, 0);
    assert_int_equal(fs->offset, 42);
    caller_free(c);
}

static void test_handler_acl_decision_applies(void **state)
{
    fixture_t *f = *state;
    caller_t *c = caller_new("User:ANONYMOUS", 3, 1);
    c->allow_group = 0;
    assert_int_equal(join(f->co, c, "g2")->error, KERR_GROUP_AUTHORIZATION_FAILED);
    c->call.api_version = 7;
    assert_int_equal(commit(f->co, again(c), "g2", -1, "", 1)->error,
                     KERR_GROUP_AUTHORIZATION_FAILED);
    c->allow_group = 1;
    c->allow_topic = 0;
    assert_int_equal(commit(f->co, again(c), "g2", -1, "", 1)->error,
                     KERR_TOPIC_AUTHORIZATION_FAILED);
    caller_free(c);
}

static void test_first_team_owns_the_group(void **state)
{
    fixture_t *f = *state;
    caller_t *a = caller_new("User:CN=teama_app_0123abcd_1", 7, 0);
    assert_int_equal(commit(f->co, a, "g3", -1, "", 5)->error, 0);
    caller_t *b = caller_new("User:CN=teamb_app_0123abcd_1", 7, 0);
    assert_int_equal(commit(f->co, b, "g3", -1, "", 6)->error, KERR_GROUP_AUTHORIZATION_FAILED);
    assert_int_equal(join(f->co, again(b), "g3")->error, KERR_GROUP_AUTHORIZATION_FAILED);
    caller_t *admin = caller_new("User:CN=teamb_app_0123abcd_1", 7, 1);
    assert_int_equal(commit(f->co, admin, "g3", -1, "", 7)->error, 0);
    assert_int_equal(fetch(f->co, again(a), "g3", 0)->offset, 7);
    caller_free(a);
    caller_free(b);
    caller_free(admin);
}

typedef struct completion {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} completion_t;

static void completed(void *arg)
{
    completion_t *k = arg;
    pthread_mutex_lock(&k->mu);
    k->done = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* The transaction coordinator's marker is durable: the pending offsets apply. */
static void txn_complete(kp_coordinator_t *co, int64_t pid, int commit_it)
{
    completion_t k = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    kp_coordinator_txn_complete(co, pid, commit_it, completed, &k);
    wait_flag(&k.mu, &k.cv, &k.done);
}

static void test_txn_offsets_pending_until_the_marker(void **state)
{
    fixture_t *f = *state;
    caller_t *c = caller_new("User:ANONYMOUS", 3, 1);
    assert_int_equal(commit(f->co, c, "g4", -1, "", 10)->error, 0);
    assert_int_equal(txn_commit(f->co, again(c), "g4", 4000, 20)->error, 0);
    c->call.api_version = 7;
    seen_t *s = fetch(f->co, again(c), "g4", 1);
    assert_int_equal(s->error, KERR_UNSTABLE_OFFSET_COMMIT);
    assert_int_equal(fetch(f->co, again(c), "g4", 0)->offset, 10); /* not visible yet */
    txn_complete(f->co, 4000, 1);
    s = fetch(f->co, again(c), "g4", 1);
    assert_int_equal(s->error, 0);
    assert_int_equal(s->offset, 20);
    /* an aborted transaction's offsets never apply */
    c->call.api_version = 3;
    assert_int_equal(txn_commit(f->co, again(c), "g4", 4001, 30)->error, 0);
    txn_complete(f->co, 4001, 0);
    c->call.api_version = 7;
    s = fetch(f->co, again(c), "g4", 1);
    assert_int_equal(s->error, 0);
    assert_int_equal(s->offset, 20);
    caller_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_sync_commit_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_acl_decision_applies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_team_owns_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_offsets_pending_until_the_marker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
