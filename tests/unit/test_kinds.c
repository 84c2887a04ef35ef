/*
 * test_kinds.c — control/kinds: the kinds table as the reconciler dispatches through it.
 *
 *   - every kind kpool reconciles has its hook, and a Secret's is there to finish deletions;
 *   - a resync queues pools before every other reconciled kind (their reconciles need the
 *     pool's client), with one rank per kind;
 *   - an AivenApplication's change also queues its Application (which mirrors its status),
 *     and what reconcile_also names is itself reconciled;
 *   - kp_kind_named finds each kind by its name and nothing else.
 */
#include "unit.h"

#include "control/control_int.h"
#include "control/kinds.h"

static void test_reconcile_hooks(void **state)
{
    (void)state;
    const char *reconciled[] = {"Pool",  "Topic", "Stream", "Application", "AivenApplication",
                                "Secret"};
    for (size_t i = 0; i < sizeof(reconciled) / sizeof(*reconciled); i++) {
        const kp_kind_t *k = kp_kind_named(reconciled[i]);
        assert_non_null(k);
        assert_non_null(k->reconcile);
    }
    assert_ptr_equal(kp_kind_named("Pool")->reconcile, kp_pool_reconcile);
    assert_ptr_equal(kp_kind_named("Topic")->reconcile, kp_topic_reconcile);
    assert_ptr_equal(kp_kind_named("Secret")->reconcile, kp_secret_reconcile);
    assert_null(kp_kind_named("ServiceUser"));
    assert_null(kp_kind_named("topic")); /* the kind's name, not the singular */
    assert_null(kp_kind_named(""));
}

static void test_resync_order(void **state)
{
    (void)state;
    int pool = kp_kind_named("Pool")->resync_rank;
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const kp_kind_t *k = &kp_kinds[i];
        if (!k->reconcile) continue;
        if (strcmp(k->kind, "Pool")) assert_true(k->resync_rank > pool);
        for (size_t j = i + 1; j < kp_kinds_count; j++)
            if (kp_kinds[j].reconcile)
                assert_int_not_equal(k->resync_rank, kp_kinds[j].resync_rank);
    }
}

static void test_reconcile_also(void **state)
{
    (void)state;
    assert_string_equal(kp_kind_named("AivenApplication")->reconcile_also, "Application");
    for (size_t i = 0; i < kp_kinds_count; i++) {
        const char *also = kp_kinds[i].reconcile_also;
        if (!also) continue;
        assert_non_null(kp_kinds[i].reconcile);
        assert_non_null(kp_kind_named(also));
        assert_non_null(kp_kind_named(also)->reconcile);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconcile_hooks),
        cmocka_unit_test(test_resync_order),
        cmocka_unit_test(test_reconcile_also),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
