/*
 * test_reassign.c — partition reassignment decisions (cluster/reassign.c), the topic record's
 * `reassigning` list (meta_store.c codec), and `kpool pool`'s plans (cli/pool_plan.c).
 */
#include "unit.h"

#include "cli/pool_plan.h"
#include "cluster/meta_store.h"
#include "cluster/reassign.h"

static kp_meta_topic_t topic3(void) /* 2 partitions, RF 3: [1,2,3], [2,3,4] */
{
    static int32_t rows[6];
    const int32_t init[6] = {1, 2, 3, 2, 3, 4};
    memcpy(rows, init, sizeof(rows));
    kp_meta_topic_t t = {0};
    t.name = (char *)"t";
    t.partitions = 2;
    t.replication_factor = 3;
    t.replicas = rows;
    return t;
}

static void test_replicas_adding_removing(void **state)
{
    (void)state;
    kp_meta_topic_t t = topic3();
    int32_t out[KP_REPLICAS_MAX];
    assert_int_equal(kp_reassign_replicas(&t, 0, out), 3);
    assert_null(kp_reassign_find(&t, 0));
    assert_int_equal(kp_reassign_adding(&t, 0, out), 0);
    kp_reassign_set(&t, 0, (int32_t[]){4, 2, 5});
    assert_non_null(kp_reassign_find(&t, 0));
    /* Kafka's order: the target, then the original replicas leaving */
    assert_int_equal(kp_reassign_replicas(&t, 0, out), 5);
    assert_memory_equal(out, ((int32_t[]){4, 2, 5, 1, 3}), 5 * sizeof(int32_t));
    assert_int_equal(kp_reassign_adding(&t, 0, out), 2);
    assert_memory_equal(out, ((int32_t[]){4, 5}), 2 * sizeof(int32_t));
    assert_int_equal(kp_reassign_removing(&t, 0, out), 2);
    assert_memory_equal(out, ((int32_t[]){1, 3}), 2 * sizeof(int32_t));
    /* a new target replaces the old one; the row stays the original */
    kp_reassign_set(&t, 0, (int32_t[]){3, 2, 1});
    assert_int_equal(t.nreassigning, 1);
    assert_int_equal(kp_reassign_adding(&t, 0, out), 0);
    /* moving back to the row is no move at all */
    kp_reassign_set(&t, 0, (int32_t[]){1, 2, 3});
    assert_int_equal(t.nreassigning, 0);
    assert_int_equal(kp_reassign_clear(&t, 0), 0);
    /* completion: the row becomes the target */
    kp_reassign_set(&t, 1, (int32_t[]){5, 3, 4});
    assert_int_equal(kp_reassign_complete(&t, 1), 1);
    assert_memory_equal(&t.replicas[3], ((int32_t[]){5, 3, 4}), 3 * sizeof(int32_t));
    assert_int_equal(t.nreassigning, 0);
    assert_int_equal(kp_reassign_complete(&t, 1), 0);
    free(t.reassigning);
}

static void test_caught_up_and_validate(void **state)
{
    (void)state;
    kp_meta_reassign_t r = {.partition = 0, .target = {4, 2, 5}};
    kp_partition_state_t st = {.leader = 1, .isr = {1, 2, 3, 4}, .nisr = 4};
    assert_false(kp_reassign_caught_up(&r, 3, &st));
    st.isr[4] = 5;
    st.nisr = 5;
    assert_true(kp_reassign_caught_up(&r, 3, &st));
    int32_t live_ids[] = {1, 2, 3, 4, 5};
    kp_id_set_t live = {live_ids, 5};
    char msg[256];
    assert_int_equal(kp_reassign_validate((int32_t[]){1, 2, 3}, 3, 3, live, msg, sizeof(msg)), 0);
    assert_int_equal(kp_reassign_validate((int32_t[]){1, 2}, 2, 3, live, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "replication factor"));
    assert_int_equal(kp_reassign_validate((int32_t[]){1, 1, 2}, 3, 3, live, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "twice"));
    assert_int_equal(kp_reassign_validate((int32_t[]){1, 2, 9}, 3, 3, live, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "Broker 9"));
}

static void test_conform(void **state)
{
    (void)state;
    int32_t live_ids[] = {1, 2, 3, 4, 5};
    kp_id_set_t live = {live_ids, 5}, target = {(int32_t[]){4, 2, 5}, 3};
    kp_partition_state_t cur = {.leader = 1,
                                .leader_epoch = 7,
                                .partition_epoch = 9,
                                .isr = {1, 2, 3, 4, 5},
                                .nisr = 5},
                         next;
    /* the leader left: the first target replica in the ISR leads, under a new epoch */
    assert_int_equal(kp_reassign_conform(target, &cur, live, &next), 1);
    assert_int_equal(next.leader, 4);
    assert_int_equal(next.leader_epoch, 8);
    assert_int_equal(next.nisr, 3);
    assert_memory_equal(next.isr, ((int32_t[]){2, 4, 5}), 3 * sizeof(int32_t));
    /* the leader stays: only the ISR shrinks, same leader epoch */
    cur.leader = 2;
    assert_int_equal(kp_reassign_conform(target, &cur, live, &next), 1);
    assert_int_equal(next.leader, 2);
    assert_int_equal(next.leader_epoch, 7);
    assert_int_equal(next.partition_epoch, 10);
    assert_int_equal(next.nisr, 3);
    /* conforming already */
    assert_int_equal(kp_reassign_conform(target, &next, live, &next), 0);
    /* no eligible leader (the target's in-sync replicas are down): wait */
    kp_id_set_t few = {(int32_t[]){1}, 1};
    cur.leader = 1;
    assert_int_equal(kp_reassign_conform(target, &cur, few, &next), 0);
}

static void test_topic_record_round_trip(void **state)
{
    (void)state;
    kp_meta_topic_t t = topic3();
    memset(t.id, 7, sizeof(t.id));
    kp_reassign_set(&t, 1, (int32_t[]){5, 3, 4});
    char *enc = kp_meta_topic_encode(&t);
    assert_non_null(strstr(enc, "\"reassigning\""));
    kp_meta_topic_t back;
    char err[256];
    assert_int_equal(kp_meta_topic_decode("t", enc, strlen(enc), &back, err, sizeof(err)), 0);
    assert_int_equal(back.nreassigning, 1);
    assert_int_equal(back.reassigning[0].partition, 1);
    assert_memory_equal(back.reassigning[0].target, ((int32_t[]){5, 3, 4}), 3 * sizeof(int32_t));
    kp_meta_topic_free(&back);
    free(enc);
    free(t.reassigning);
    /* hostile lists: a partition out of range, twice, a short or duplicate target */
    const char *bad[] = {
        "[{\"partition\":2,\"target\":[1,2,3]}]",
        "[{\"partition\":0,\"target\":[1,2,3]},{\"partition\":0,\"target\":[1,2,4]}]",
        "[{\"partition\":0,\"target\":[1,2]}]",
        "[{\"partition\":0,\"target\":[1,1,2]}]",
        "{\"partition\":0}",
        "[7]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"id\":\"00112233445566778899aabbccddeeff\",\"partitions\":2,"
                 "\"replication_factor\":3,\"replicas\":[[1,2,3],[2,3,4]],\"reassigning\":%s}",
                 bad[i]);
        assert_int_equal(kp_meta_topic_decode("t", json, strlen(json), &back, err, sizeof(err)),
                         KP_META_ECORRUPT);
        assert_non_null(strstr(err, "reassigning"));
    }
}

/* ---- plans ---- */

static void add_part(kp_poolc_snapshot_t *s, const char *topic, int32_t p, const int32_t *reps,
                     int n)
{
    kp_poolc_part_t *o = &s->parts[s->nparts++];
    memset(o, 0, sizeof(*o));
    snprintf(o->topic, sizeof(o->topic), "%s", topic);
    o->partition = p;
    o->leader = reps[0];
    memcpy(o->replicas, reps, (size_t)n * sizeof(int32_t));
    memcpy(o->isr, reps, (size_t)n * sizeof(int32_t));
    o->nreplicas = o->nisr = n;
    o->bytes = 1000 * (p + 1);
}

static void snapshot(kp_poolc_snapshot_t *s, int nbrokers, const char *const *racks)
{
    memset(s, 0, sizeof(*s));
    s->brokers = calloc((size_t)nbrokers, sizeof(*s->brokers));
    s->parts = calloc(64, sizeof(*s->parts));
    s->nbrokers = nbrokers;
    for (int i = 0; i < nbrokers; i++) {
        s->brokers[i].id = i + 1;
        if (racks) snprintf(s->brokers[i].rack, sizeof(s->brokers[i].rack), "%s", racks[i]);
    }
}

static void test_plan_decommission(void **state)
{
    (void)state;
    kp_poolc_snapshot_t s;
    snapshot(&s, 4, NULL);
    for (int p = 0; p < 8; p++) /* RF 3 over 4 brokers, 6 replicas each */
        add_part(&s, "t", p, (int32_t[]){p % 4 + 1, (p + 1) % 4 + 1, (p + 2) % 4 + 1}, 3);
    kp_plan_t plan;
    char err[256];
    assert_int_equal(kp_plan_decommission(&s, 4, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.n, 6);
    int load[5] = {0};
    for (int m = 0; m < plan.n; m++) {
        for (int r = 0; r < 3; r++) {
            assert_int_not_equal(plan.moves[m].target[r], 4);
            for (int q = 0; q < r; q++)
                assert_int_not_equal(plan.moves[m].target[q], plan.moves[m].target[r]);
        }
    }
    for (int i = 0; i < s.nparts; i++) {
        const int32_t *row = s.parts[i].replicas;
        for (int m = 0; m < plan.n; m++)
            if (plan.moves[m].partition == s.parts[i].partition) row = plan.moves[m].target;
        for (int r = 0; r < 3; r++) load[row[r]]++;
    }
    assert_int_equal(load[4], 0);
    assert_int_equal(load[1] + load[2] + load[3], 24);
    assert_true(load[1] == 8 && load[2] == 8 && load[3] == 8);
    kp_plan_free(&plan);
    /* refusals: not live; no room (RF 3 on 3 brokers) */
    assert_int_equal(kp_plan_decommission(&s, 9, &plan, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a live broker"));
    s.nbrokers = 3;
    s.nparts = 1;
    s.parts[0].replicas[0] = 3;
    assert_int_equal(kp_plan_decommission(&s, 3, &plan, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no other live broker"));
    free(s.brokers);
    free(s.parts);
}

static void test_plan_decommission_racks(void **state)
{
    (void)state;
    const char *racks[] = {"a", "b", "a", "b", "c"};
    kp_poolc_snapshot_t s;
    snapshot(&s, 5, racks);
    add_part(&s, "t", 0, (int32_t[]){2, 1}, 2); /* racks b, a */
    kp_plan_t plan;
    char err[256];
    /* 2 (rack b) goes: 3 (a) would put both replicas in rack a; 4 (b) or 5 (c) keep two */
    assert_int_equal(kp_plan_decommission(&s, 2, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.n, 1);
    assert_true(plan.moves[0].target[0] == 4 || plan.moves[0].target[0] == 5);
    kp_plan_free(&plan);
    free(s.brokers);
    free(s.parts);
}

static void test_plan_rebalance(void **state)
{
    (void)state;
    kp_poolc_snapshot_t s;
    snapshot(&s, 4, NULL);
    /* created on 1..3 before broker 4 joined: 12 partitions, RF 3 */
    for (int p = 0; p < 12; p++)
        add_part(&s, "t", p, (int32_t[]){p % 3 + 1, (p + 1) % 3 + 1, (p + 2) % 3 + 1}, 3);
    kp_plan_t plan;
    char err[256];
    assert_int_equal(kp_plan_rebalance(&s, &plan, err, sizeof(err)), 0);
    assert_true(plan.n > 0);
    assert_true(plan.bytes > 0);
    int load[5] = {0}, first[5] = {0};
    for (int i = 0; i < s.nparts; i++) {
        const int32_t *row = s.parts[i].replicas;
        for (int m = 0; m < plan.n; m++)
            if (plan.moves[m].partition == s.parts[i].partition) row = plan.moves[m].target;
        first[row[0]]++;
        for (int r = 0; r < 3; r++) {
            load[row[r]]++;
            for (int q = 0; q < r; q++) assert_int_not_equal(row[q], row[r]);
        }
    }
    for (int b = 1; b <= 4; b++) {
        assert_int_equal(load[b], 9);
        assert_int_equal(first[b], 3);
    }
    kp_plan_free(&plan);
    /* balanced already: nothing to do; a moving partition is left alone */
    kp_poolc_snapshot_t even;
    snapshot(&even, 3, NULL);
    for (int p = 0; p < 3; p++) add_part(&even, "t", p, (int32_t[]){p % 3 + 1, (p + 1) % 3 + 1}, 2);
    assert_int_equal(kp_plan_rebalance(&even, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.n, 0);
    kp_plan_free(&plan);
    free(even.brokers);
    free(even.parts);
    free(s.brokers);
    free(s.parts);
}

static void test_plan_add_broker(void **state)
{
    (void)state;
    kp_poolc_snapshot_t s;
    snapshot(&s, 5, NULL);
    /* created on 1..4 before broker 5 joined: 10 partitions, RF 2 (5 replicas each) */
    for (int p = 0; p < 10; p++) add_part(&s, "t", p, (int32_t[]){p % 4 + 1, (p + 1) % 4 + 1}, 2);
    kp_plan_t plan;
    char err[256];
    assert_int_equal(kp_plan_add_broker(&s, 5, &plan, err, sizeof(err)), 0);
    assert_true(plan.n > 0 && plan.bytes > 0);
    int load[6] = {0}, first[6] = {0};
    for (int i = 0; i < s.nparts; i++) {
        const int32_t *row = s.parts[i].replicas;
        for (int m = 0; m < plan.n; m++) {
            if (plan.moves[m].partition != s.parts[i].partition) continue;
            row = plan.moves[m].target;
            /* only broker 5 joins a row: every other member was there already */
            for (int r = 0; r < 2; r++)
                assert_true(row[r] == 5 || row[r] == s.parts[i].replicas[0] ||
                            row[r] == s.parts[i].replicas[1]);
        }
        first[row[0]]++;
        for (int r = 0; r < 2; r++) load[row[r]]++;
        assert_int_not_equal(row[0], row[1]);
    }
    for (int b = 1; b <= 5; b++) { /* 20 replicas over 5: 4 each; leaders 2 each */
        assert_int_equal(load[b], 4);
        assert_int_equal(first[b], 2);
    }
    kp_plan_free(&plan);
    /* refusals: not live; moves in progress */
    assert_int_equal(kp_plan_add_broker(&s, 9, &plan, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a live broker"));
    s.nmoving = 1;
    assert_int_equal(kp_plan_add_broker(&s, 5, &plan, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "in progress"));
    free(s.brokers);
    free(s.parts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicas_adding_removing),
        cmocka_unit_test(test_caught_up_and_validate),
        cmocka_unit_test(test_conform),
        cmocka_unit_test(test_topic_record_round_trip),
        cmocka_unit_test(test_plan_decommission),
        cmocka_unit_test(test_plan_decommission_racks),
        cmocka_unit_test(test_plan_rebalance),
        cmocka_unit_test(test_plan_add_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
