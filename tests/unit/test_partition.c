/*
 * test_partition.c — replication/partition: the commit policy of a replicated partition,
 * on a real log in page-cache mode (so the local committed end is the LEO at once):
 *
 *   - a leader's high watermark is the minimum over the ISR of what each replica fetched;
 *     acks=all waiters complete when it passes their batch, with
 *     NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR is below min.insync.replicas by then;
 *   - produce checks: NOT_LEADER_OR_FOLLOWER off the leader, NOT_ENOUGH_REPLICAS when the
 *     ISR is smaller than min.insync.replicas;
 *   - losing the leadership fails pending waiters with NOT_LEADER_OR_FOLLOWER;
 *   - leader epochs: FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for stale and future ones;
 *   - consumers read only up to the high watermark; ISR shrink after the lag time, expand on
 *     catch-up;
 *   - a follower refuses appends fetched under another epoch.
 */
#include "unit.h"

#include "protocol/errors.h"
#include "replication/partition.h"

#define NOW 1700000000000LL

static char dir[PATH_MAX];

static int setup(void **state)
{
    ut_tmpdir_make(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    ut_tmpdir_remove(dir);
    return 0;
}

typedef struct waiter {
    kp_flush_waiter_t w;
    int calls, err;
} waiter_t;

static void done(kp_flush_waiter_t *w, int err)
{
    waiter_t *x = (waiter_t *)w;
    x->calls++;
    x->err = err;
}

static kp_partition_t *open_part(int32_t self)
{
    kp_log_config_t cfg;
    kp_log_config_defaults(&cfg);
    cfg.durable = 0;
    kp_partition_t *p = calloc(1, sizeof(*p));
    p->log = kp_log_open(dir, &cfg, NOW);
    assert_non_null(p->log);
    kp_partition_repl_init(p, self);
    return p;
}

static void close_part(kp_partition_t *p)
{
    kp_partition_repl_free(p);
    kp_log_close(p->log);
    free(p);
}

static int64_t append(kp_partition_t *p, int n)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(n, NOW);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_partition_append(p, b.data, len, &info, NOW, &res);
    assert_int_equal(res.status, KP_APPEND_OK);
    kp_buf_free(&b);
    return res.last_offset;
}

static void state(kp_partition_t *p, int32_t leader, int32_t epoch, const int32_t *isr, int nisr,
                  int64_t version)
{
    static const int32_t replicas[] = {1, 2, 3};
    kp_partition_state_t st = {.leader = leader, .leader_epoch = epoch, .nisr = nisr};
    memcpy(st.isr, isr, (size_t)nisr * sizeof(*isr));
    kp_partition_apply_state(p, replicas, 3, &st, version, NOW);
}

static void follower_fetch(kp_partition_t *p, int32_t id, int64_t offset, int64_t now)
{
    kp_log_read_t rd;
    assert_int_equal(kp_partition_replica_fetch(p, id, -1, offset, 1 << 20, now, &rd), 0);
    if (rd.seg) kp_segment_put(rd.seg);
}

static void test_leader_commit(void **st)
{
    kp_partition_t *p = open_part(1);
    static const int32_t all[] = {1, 2, 3};
    assert_int_equal(kp_partition_check_produce(p, -1, 1), KERR_NOT_LEADER_OR_FOLLOWER);
    state(p, 1, 5, all, 3, 10);
    assert_int_equal(kp_partition_check_produce(p, -1, 2), 0);
    int64_t last = append(p, 4); /* offsets 0..3 */
    waiter_t w = {.w = {.done = done}};
    assert_int_equal(kp_partition_wait_committed(p, last, &w.w), 1);
    assert_int_equal(w.calls, 0);
    assert_int_equal(kp_partition_high_watermark(p), 0);
    follower_fetch(p, 2, 4, NOW);
    assert_int_equal(w.calls, 0); /* replica 3 has nothing yet */
    assert_int_equal(kp_partition_high_watermark(p), 0);
    follower_fetch(p, 3, 2, NOW);
    assert_int_equal(kp_partition_high_watermark(p), 2);
    /* a consumer reads up to the HWM only */
    kp_log_read_t rd;
    kp_partition_read(p, 0, 1 << 20, 1, &rd);
    assert_int_equal(rd.high_watermark, 2);
    assert_null(rd.seg); /* the one batch (0..3) is not committed whole */
    follower_fetch(p, 3, 4, NOW);
    assert_int_equal(kp_partition_high_watermark(p), 4);
    assert_int_equal(w.calls, 1);
    assert_int_equal(kp_partition_commit_error(w.err), 0);
    kp_partition_read(p, 0, 1 << 20, 1, &rd);
    assert_non_null(rd.seg);
    kp_segment_put(rd.seg);
    /* epochs */
    assert_int_equal(kp_partition_check_leader(p, 4), KERR_FENCED_LEADER_EPOCH);
    assert_int_equal(kp_partition_check_leader(p, 6), KERR_UNKNOWN_LEADER_EPOCH);
    assert_int_equal(kp_partition_check_leader(p, 5), 0);
    int32_t ee;
    int64_t eo;
    assert_int_equal(kp_partition_epoch_end(p, 5, 5, &ee, &eo), 0);
    assert_int_equal(ee, 5);
    assert_int_equal(eo, 4);
    /* ISR below min.insync: refused before append; after append: AFTER_APPEND */
    last = append(p, 1);
    waiter_t w2 = {.w = {.done = done}};
    kp_partition_check_produce(p, -1, 3); /* the topic's min.insync.replicas, as produce sees it */
    assert_int_equal(kp_partition_wait_committed(p, last, &w2.w), 1);
    static const int32_t two[] = {1, 2};
    state(p, 1, 5, two, 2, 11);
    assert_int_equal(kp_partition_check_produce(p, -1, 3), KERR_NOT_ENOUGH_REPLICAS);
    follower_fetch(p, 2, 5, NOW);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(kp_partition_commit_error(w2.err), KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    /* losing the leadership fails what still waits */
    last = append(p, 1);
    waiter_t w3 = {.w = {.done = done}};
    assert_int_equal(kp_partition_wait_committed(p, last, &w3.w), 1);
    state(p, 2, 6, two, 2, 12);
    assert_int_equal(w3.calls, 1);
    assert_int_equal(kp_partition_commit_error(w3.err), KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(kp_partition_check_leader(p, -1), KERR_NOT_LEADER_OR_FOLLOWER);
    /* a follower of epoch 6 refuses a batch fetched under epoch 5 */
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_set_base_offset(b.data, 6);
    kp_batch_info_t info;
    kp_batch_validate(b.data, len, &info);
    kp_append_result_t res;
    kp_partition_append_replica(p, 5, b.data, len, &info, NOW, &res);
    assert_int_equal(res.status, KP_APPEND_OUT_OF_ORDER);
    kp_partition_append_replica(p, 6, b.data, len, &info, NOW, &res);
    assert_int_equal(res.status, KP_APPEND_OK);
    kp_buf_free(&b);
    close_part(p);
}

static void test_isr_shrink_and_expand(void **st)
{
    kp_partition_t *p = open_part(1);
    static const int32_t all[] = {1, 2, 3};
    state(p, 1, 1, all, 3, 10);
    append(p, 2);
    follower_fetch(p, 2, 2, NOW);
    follower_fetch(p, 3, 0, NOW);
    kp_partition_state_t next;
    int64_t version;
    assert_int_equal(kp_partition_isr_update(p, NOW + 1000, 30000, &next, &version), 0);
    /* replica 3 has not caught up for longer than the lag time: out */
    assert_int_equal(kp_partition_isr_update(p, NOW + 31000, 30000, &next, &version), 1);
    assert_int_equal(version, 10);
    assert_int_equal(next.nisr, 2);
    assert_int_equal(next.isr[0], 1);
    assert_int_equal(next.isr[1], 2);
    assert_int_equal(next.leader_epoch, 1);
    static const int32_t two[] = {1, 2};
    state(p, 1, 1, two, 2, 11);
    /* it catches up: back in (not before the retry interval) */
    follower_fetch(p, 3, 2, NOW + 32000);
    assert_int_equal(kp_partition_isr_update(p, NOW + 32000, 30000, &next, &version), 1);
    assert_int_equal(next.nisr, 3);
    assert_int_equal(version, 11);
    close_part(p);
}

/* A steady producer: a record arrives during every follower round trip, so each fetch finds
 * the end one record further than the fetch offset. Followers that reach where the end was
 * at their previous fetch keep pace and stay in the ISR past the lag time (Kafka's rule);
 * with "caught up only when exactly at the end" they were never caught up and left it. A
 * follower that stops making progress still goes. */
static void test_isr_keeps_followers_under_steady_load(void **st)
{
    kp_partition_t *p = open_part(1);
    static const int32_t all[] = {1, 2, 3};
    state(p, 1, 1, all, 3, 10);
    int64_t end = append(p, 1) + 1;
    follower_fetch(p, 2, end, NOW);
    follower_fetch(p, 3, end, NOW);
    for (int64_t t = 1; t <= 40; t++) {
        int64_t was = end;
        end = append(p, 1) + 1; /* arrives before the fetches below */
        follower_fetch(p, 2, was, NOW + t * 1000);
        if (t <= 5) follower_fetch(p, 3, was, NOW + t * 1000); /* then replica 3 stalls */
    }
    kp_partition_state_t next;
    int64_t version;
    assert_int_equal(kp_partition_isr_update(p, NOW + 40000, 30000, &next, &version), 1);
    assert_int_equal(next.nisr, 2); /* 3 went, 2 stayed */
    assert_int_equal(next.isr[0], 1);
    assert_int_equal(next.isr[1], 2);
    close_part(p);
}

/* An idle partition: the controller takes a dead broker out of the ISR; what that replica
 * fetched before it died reaches the high watermark, but only a new fetch takes it back
 * (the leader re-added it from the old figures, and the two undid each other's change). */
static void test_isr_no_rejoin_without_fetch(void **st)
{
    kp_partition_t *p = open_part(1);
    static const int32_t all[] = {1, 2, 3}, two[] = {1, 2};
    state(p, 1, 1, all, 3, 10);
    append(p, 2);
    follower_fetch(p, 2, 2, NOW);
    follower_fetch(p, 3, 2, NOW);
    kp_partition_state_t next;
    int64_t version;
    assert_int_equal(kp_partition_isr_update(p, NOW + 1000, 30000, &next, &version), 0);
    state(p, 1, 1, two, 2, 11); /* the controller: broker 3 is dead */
    assert_int_equal(kp_partition_isr_update(p, NOW + 2000, 30000, &next, &version), 0);
    follower_fetch(p, 3, 2, NOW + 3000); /* it is back and fetches */
    assert_int_equal(kp_partition_isr_update(p, NOW + 3000, 30000, &next, &version), 1);
    assert_int_equal(next.nisr, 3);
    close_part(p);
}

/* A new leader of an empty partition does not take in a replica outside the ISR that has
 * not fetched from it (it was seeded at offset 0, which an empty log's high watermark is). */
static void test_new_leader_no_join_without_fetch(void **st)
{
    kp_partition_t *p = open_part(1);
    static const int32_t two[] = {1, 2};
    state(p, 1, 1, two, 2, 10);
    kp_partition_state_t next;
    int64_t version;
    assert_int_equal(kp_partition_isr_update(p, NOW + 1000, 30000, &next, &version), 0);
    follower_fetch(p, 3, 0, NOW + 2000);
    assert_int_equal(kp_partition_isr_update(p, NOW + 2000, 30000, &next, &version), 1);
    assert_int_equal(next.nisr, 3);
    close_part(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isr_shrink_and_expand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isr_keeps_followers_under_steady_load, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_isr_no_rejoin_without_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_leader_no_join_without_fetch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
