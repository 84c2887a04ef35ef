/*
 * test_fs.c — core/fs.c helpers that are not about files' contents: the open-file limit a
 * broker raises at start (kp_fs_nofile_raise).
 */
#include "unit.h"

#include "core/fs.h"

#include <stdint.h>
#include <sys/resource.h>

static void set_soft(rlim_t soft)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = soft;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static rlim_t soft_now(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
}

static void test_nofile_raise_takes_the_hard_limit_up_to_the_cap(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 512) skip();
    rlim_t hard = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    rlim_t cap_hard = hard > (rlim_t)1 << 20 ? (rlim_t)1 << 20 : hard;

    /* below the hard limit: raised to it (the cap above it) */
    set_soft(256);
    int64_t before = 0;
    assert_int_equal(kp_fs_nofile_raise(1 << 20, &before), (int64_t)cap_hard);
    assert_int_equal(before, 256);
    assert_int_equal(soft_now(), cap_hard);

    /* a cap below the hard limit: raised to the cap only */
    set_soft(256);
    assert_int_equal(kp_fs_nofile_raise(300, &before), 300);
    assert_int_equal(before, 256);
    assert_int_equal(soft_now(), 300);

    /* never lowered: a cap under the soft limit leaves it */
    assert_int_equal(kp_fs_nofile_raise(100, &before), 300);
    assert_int_equal(before, 300);
    assert_int_equal(soft_now(), 300);

    set_soft(rl.rlim_cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nofile_raise_takes_the_hard_limit_up_to_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
