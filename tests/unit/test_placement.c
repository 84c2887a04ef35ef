/*
 * test_placement.c — cluster/placement: replica assignment against the layouts Kafka's own
 * tests expect (AdminZkClientTest.testReplicaAssignment, AdminRackAwareTest), the rack
 * properties over many random layouts (every partition on min(rf, racks) racks, leaders
 * balanced, no broker twice), refusals (rf > brokers, mixed racks, duplicate ids), leader
 * election (clean, unclean, controlled shutdown, preferred), ISR shrink/expand and the high
 * watermark, and the epoch rules of the state transitions.
 */
#include "unit.h"

#include "cluster/placement.h"

#define SET(...)                                                                                   \
    ((kp_id_set_t){(const int32_t[]){__VA_ARGS__},                                                 \
                   sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)})
#define EMPTY ((kp_id_set_t){NULL, 0})

static void test_rack_unaware_matches_kafka(void **state)
{
    /* AdminZkClientTest.testReplicaAssignment: brokers 0..4, 10 partitions, rf 3, start 0 */
    kp_place_broker_t b[5] = {{3, NULL}, {1, NULL}, {0, NULL}, {4, NULL}, {2, NULL}};
    static const int32_t want[10][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
                                        {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
    int32_t out[30];
    char err[256];
    assert_int_equal(kp_placement_assign(b, 5, 10, 3, 0, 0, 0, 0, out, err, sizeof(err)), 0);
    for (int p = 0; p < 10; p++)
        for (int r = 0; r < 3; r++) assert_int_equal(out[p * 3 + r], want[p][r]);
}

static void test_rack_alternated_matches_kafka(void **state)
{
    /* AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers */
    kp_place_broker_t b[6] = {{0, "rack1"}, {1, "rack3"}, {2, "rack3"},
                              {3, "rack2"}, {4, "rack2"}, {5, "rack1"}};
    int32_t order[6];
    assert_int_equal(kp_placement_rack_alternated(b, 6, order), 0);
    static const int32_t want_order[6] = {0, 3, 1, 5, 4, 2};
    for (int i = 0; i < 6; i++) assert_int_equal(order[i], want_order[i]);

    static const int32_t want[7][3] = {{0, 3, 1}, {3, 1, 5}, {1, 5, 4}, {5, 4, 2},
                                       {4, 2, 0}, {2, 0, 3}, {0, 4, 2}};
    int32_t out[21];
    char err[256];
    assert_int_equal(kp_placement_assign(b, 6, 7, 3, 0, 0, 0, 0, out, err, sizeof(err)), 0);
    for (int p = 0; p < 7; p++)
        for (int r = 0; r < 3; r++) assert_int_equal(out[p * 3 + r], want[p][r]);
}

/* The properties Kafka's rack-aware tests check, over random layouts. */
static void test_rack_aware_properties(void **state)
{
    ut_rand_t rnd;
    ut_rand_seed(&rnd, 0x5eed);
    char rack_names[8][16];
    for (int i = 0; i < 8; i++) snprintf(rack_names[i], sizeof(rack_names[i]), "r%d", i);
    for (int iter = 0; iter < 300; iter++) {
        int nb = 1 + (int)(ut_rand_u64(&rnd) % 12);
        int nr = 1 + (int)(ut_rand_u64(&rnd) % (nb < 5 ? nb : 5));
        kp_place_broker_t b[12];
        for (int i = 0; i < nb; i++) {
            b[i].id = 100 + i * 7;
            b[i].rack = rack_names[i % nr]; /* every rack gets at least one broker */
        }
        int rf = 1 + (int)(ut_rand_u64(&rnd) % nb);
        int np = 1 + (int)(ut_rand_u64(&rnd) % 40);
        int start = (int)(ut_rand_u64(&rnd) % nb);
        int32_t out[40 * 12];
        char err[256];
        assert_int_equal(
            kp_placement_assign(b, nb, np, rf, 0, start, start, 0, out, err, sizeof(err)), 0);
        int leaders[12] = {0};
        for (int p = 0; p < np; p++) {
            int32_t *row = out + p * rf;
            int racks_seen = 0;
            const char *seen[12];
            for (int r = 0; r < rf; r++) {
                int idx = (row[r] - 100) / 7;
                assert_true(idx >= 0 && idx < nb);
                if (r == 0) leaders[idx]++;
                for (int q = 0; q < r; q++) assert_int_not_equal(row[q], row[r]);
                int known = 0;
                for (int q = 0; q < racks_seen; q++) known |= !strcmp(seen[q], b[idx].rack);
                if (!known) seen[racks_seen++] = b[idx].rack;
            }
            /* spread over as many racks as possible */
            assert_int_equal(racks_seen, rf < nr ? rf : nr);
        }
        /* leaders round-robin over the rack-alternated list: balanced within one */
        int lo = np, hi = 0;
        for (int i = 0; i < nb; i++) {
            if (leaders[i] < lo) lo = leaders[i];
            if (leaders[i] > hi) hi = leaders[i];
        }
        assert_true(hi - lo <= 1);
    }
}

static void test_assign_refusals(void **state)
{
    char err[256];
    int32_t out[64];
    kp_place_broker_t b[3] = {{1, NULL}, {2, NULL}, {3, NULL}};
    assert_int_equal(kp_placement_assign(b, 3, 1, 4, 0, 0, 0, 0, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than available brokers: 3"));
    assert_int_equal(kp_placement_assign(b, 3, 1, 0, 0, 0, 0, 0, out, err, sizeof(err)), -1);
    assert_int_equal(kp_placement_assign(b, 0, 1, 1, 0, 0, 0, 0, out, err, sizeof(err)), -1);
    kp_place_broker_t dup[2] = {{1, NULL}, {1, NULL}};
    assert_int_equal(kp_placement_assign(dup, 2, 1, 1, 0, 0, 0, 0, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    kp_place_broker_t mixed[3] = {{1, "a"}, {2, NULL}, {3, "b"}};
    assert_int_equal(kp_placement_assign(mixed, 3, 2, 2, 0, 0, 0, 0, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "rack information"));
    /* ignore_racks: as the rack-unaware layout */
    assert_int_equal(kp_placement_assign(mixed, 3, 2, 2, 0, 0, 0, 1, out, err, sizeof(err)), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    /* a single broker, rf 1 */
    assert_int_equal(kp_placement_assign(b, 1, 5, 1, 0, 0, 0, 0, out, err, sizeof(err)), 0);
    for (int p = 0; p < 5; p++) assert_int_equal(out[p], 1);
}

/* CreatePartitions continues the layout (Kafka passes startPartitionId): with the same
 * seeds, partitions 3..9 assigned alone get the rows they get in a 0..9 layout (the shift
 * moves at partition ids 4 and 8 in both). */
static void test_assign_continues_partitions(void **state)
{
    kp_place_broker_t b[4] = {{1, "a"}, {2, "b"}, {3, "a"}, {4, "b"}};
    int32_t all[10 * 2], tail[7 * 2];
    char err[256];
    assert_int_equal(kp_placement_assign(b, 4, 10, 2, 0, 1, 1, 0, all, err, sizeof(err)), 0);
    assert_int_equal(kp_placement_assign(b, 4, 7, 2, 3, 1, 1 + 0, 0, tail, err, sizeof(err)), 0);
    for (int i = 0; i < 14; i++) assert_int_equal(tail[i], all[6 + i]);
}

static void test_elect_leader(void **state)
{
    int unclean = -1;
    /* first alive ISR member in assignment order, not the first in the ISR */
    assert_int_equal(kp_elect_leader(SET(3, 1, 2), SET(2, 1), SET(1, 2, 3), 0, &unclean), 1);
    assert_int_equal(unclean, 0);
    assert_int_equal(kp_elect_leader(SET(3, 1, 2), SET(2, 1), SET(2, 3), 0, NULL), 2);
    /* no live ISR member: offline unless unclean */
    assert_int_equal(kp_elect_leader(SET(3, 1, 2), SET(1), SET(2, 3), 0, &unclean), -1);
    assert_int_equal(kp_elect_leader(SET(3, 1, 2), SET(1), SET(2, 3), 1, &unclean), 3);
    assert_int_equal(unclean, 1);
    assert_int_equal(kp_elect_leader(SET(3, 1, 2), SET(1), EMPTY, 1, &unclean), -1);
    /* a live ISR member that is not a replica (stale state) never leads */
    assert_int_equal(kp_elect_leader(SET(1, 2), SET(9), SET(9), 0, NULL), -1);

    assert_int_equal(kp_elect_leader_shutdown(SET(1, 2, 3), SET(1, 2, 3), SET(1, 2, 3), SET(1)), 2);
    assert_int_equal(kp_elect_leader_shutdown(SET(1, 2, 3), SET(1), SET(1, 2, 3), SET(1)), -1);
    assert_int_equal(kp_elect_leader_preferred(SET(2, 1), SET(1, 2), SET(1, 2)), 2);
    assert_int_equal(kp_elect_leader_preferred(SET(2, 1), SET(1), SET(1, 2)), -1);
    assert_int_equal(kp_elect_leader_preferred(SET(2, 1), SET(1, 2), SET(1)), -1);
}

static void test_isr_shrink_expand_hwm(void **state)
{
    kp_replica_state_t rs[3] = {
        {1, 100, 10000, 100, 0, 0}, /* leader */
        {2, 100, 1000, 100, 0, 0},  /* at the leader's LEO: in sync however long ago it caught up */
        {3, 90, 5000, 90, 0, 0},    /* behind, caught up 5 s ago */
    };
    int32_t out[8];
    /* lag max 30 s at t=20 s: everyone stays */
    assert_int_equal(kp_isr_shrink(SET(1, 2, 3), 1, rs, 3, 20000, 30000, out), 3);
    /* at t=40 s replica 3 is out (35 s since it caught up) */
    assert_int_equal(kp_isr_shrink(SET(1, 2, 3), 1, rs, 3, 40000, 30000, out), 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    /* exactly at the limit it stays (Kafka: > maxLagMs) */
    assert_int_equal(kp_isr_shrink(SET(1, 3), 1, rs, 3, 35000, 30000, out), 2);
    /* the leader is never dropped, even when the state says nothing about it */
    assert_int_equal(kp_isr_shrink(SET(7), 7, rs, 3, 1 << 30, 1, out), 1);
    /* an ISR member the leader has no state for is dropped */
    assert_int_equal(kp_isr_shrink(SET(1, 9), 1, rs, 3, 0, 30000, out), 1);

    /* HWM: min over the ISR only */
    assert_int_equal(kp_isr_high_watermark(SET(1, 2), rs, 3), 100);
    assert_int_equal(kp_isr_high_watermark(SET(1, 2, 3), rs, 3), 90);
    assert_int_equal(kp_isr_high_watermark(SET(1, 9), rs, 3), 0);

    /* expand: 3 joins once its LEO reaches the HWM and the epoch start offset */
    assert_int_equal(kp_isr_expand(SET(1, 2), SET(1, 2, 3), rs, 3, 100, 0, out), 2);
    assert_int_equal(kp_isr_expand(SET(1, 2), SET(1, 2, 3), rs, 3, 90, 0, out), 3);
    assert_int_equal(out[2], 3);
    assert_int_equal(kp_isr_expand(SET(1, 2), SET(1, 2, 3), rs, 3, 90, 95, out), 2);
    /* a replica not in the assignment never joins */
    assert_int_equal(kp_isr_expand(SET(1), SET(1, 2), rs, 3, 0, 0, out), 2);
}

static void test_state_transitions(void **state)
{
    kp_partition_state_t cur = {
        .leader = 1, .leader_epoch = 4, .partition_epoch = 9, .isr = {1, 2, 3}, .nisr = 3};
    kp_partition_state_t next;
    kp_partition_state_elect(&cur, 2, (int32_t[]){2, 3}, 2, &next);
    assert_int_equal(next.leader, 2);
    assert_int_equal(next.leader_epoch, 5);
    assert_int_equal(next.partition_epoch, 10);
    assert_int_equal(next.nisr, 2);
    kp_partition_state_set_isr(&next, (int32_t[]){2}, 1, &next); /* in place */
    assert_int_equal(next.leader, 2);
    assert_int_equal(next.leader_epoch, 5);
    assert_int_equal(next.partition_epoch, 11);
    assert_int_equal(next.nisr, 1);
    assert_int_equal(next.isr[0], 2);
    /* offline */
    kp_partition_state_elect(&next, -1, next.isr, next.nisr, &next);
    assert_int_equal(next.leader, -1);
    assert_int_equal(next.leader_epoch, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rack_unaware_matches_kafka),
        cmocka_unit_test(test_rack_alternated_matches_kafka),
        cmocka_unit_test(test_rack_aware_properties),
        cmocka_unit_test(test_assign_refusals),
        cmocka_unit_test(test_assign_continues_partitions),
        cmocka_unit_test(test_elect_leader),
        cmocka_unit_test(test_isr_shrink_expand_hwm),
        cmocka_unit_test(test_state_transitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
