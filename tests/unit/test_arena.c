/*
 * test_arena.c — core/arena: 16-byte alignment across the embedded block and grown blocks,
 * the ceiling (allocations that would cross it return NULL, whatever block they would come
 * from), size overflow, calloc zeroing, strndup, and reuse after kp_arena_free.
 */
#include "unit.h"

#include "core/arena.h"

static void test_alignment(void **state)
{
    kp_arena_t a;
    kp_arena_init(&a, 64 << 20);
    static const size_t sizes[] = {1, 3, 15, 16, 17, 100, 2047, 2048, 5000, 9000, 1, 70000, 7};
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint8_t *p = kp_arena_alloc(&a, sizes[i]);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 16, 0);
            memset(p, 0x5a, sizes[i]); /* ASan: the whole size is addressable */
        }
    }
    /* zero-byte allocations are valid and aligned too */
    void *z = kp_arena_alloc(&a, 0);
    assert_non_null(z);
    assert_int_equal((uintptr_t)z % 16, 0);
    kp_arena_free(&a);
}

/* Consecutive allocations do not overlap and keep their contents. */
static void test_no_overlap(void **state)
{
    kp_arena_t a;
    kp_arena_init(&a, 64 << 20);
    uint8_t *ptrs[500];
    size_t lens[500];
    ut_rand_t r;
    ut_rand_seed(&r, 5);
    for (int i = 0; i < 500; i++) {
        lens[i] = (size_t)ut_rand_below(&r, 3000) + 1;
        ptrs[i] = kp_arena_alloc(&a, lens[i]);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], i & 0xff, lens[i]);
    }
    for (int i = 0; i < 500; i++)
        for (size_t k = 0; k < lens[i]; k++) assert_int_equal(ptrs[i][k], i & 0xff);
    kp_arena_free(&a);
}

/* Allocations stop at the ceiling: within the embedded first block as well as in grown
 * blocks, and a single request larger than the ceiling fails outright. */
static void test_limit(void **state)
{
    kp_arena_t a;
    /* a ceiling below the embedded block */
    kp_arena_init(&a, 256);
    size_t got = 0;
    while (kp_arena_alloc(&a, 32)) got += 32;
    assert_int_equal(got, 256);
    assert_null(kp_arena_alloc(&a, 1));
    assert_true(a.used_total <= 256);
    kp_arena_free(&a);

    /* a ceiling spanning several blocks */
    kp_arena_init(&a, 100000);
    got = 0;
    void *p;
    while ((p = kp_arena_alloc(&a, 1000))) got += 1008; /* rounded to 16 */
    assert_true(got <= 100000);
    assert_true(got > 100000 - 1008);
    assert_true(a.used_total <= 100000);
    /* smaller requests may still fit what is left */
    size_t left = 100000 - a.used_total;
    if (left >= 16) assert_non_null(kp_arena_alloc(&a, 16));
    kp_arena_free(&a);

    kp_arena_init(&a, 4096);
    assert_null(kp_arena_alloc(&a, 4097));
    assert_non_null(kp_arena_alloc(&a, 4096));
    assert_null(kp_arena_alloc(&a, 1));
    kp_arena_free(&a);
}

/* Sizes near SIZE_MAX must fail, not wrap to a tiny allocation. */
static void test_overflow(void **state)
{
    kp_arena_t a;
    kp_arena_init(&a, SIZE_MAX);
    assert_null(kp_arena_alloc(&a, SIZE_MAX));
    assert_null(kp_arena_alloc(&a, SIZE_MAX - 7));
    assert_null(kp_arena_calloc(&a, SIZE_MAX / 2, 4));
    assert_null(kp_arena_calloc(&a, 1, SIZE_MAX - 3));
    kp_arena_free(&a);
}

static void test_calloc_and_strndup(void **state)
{
    kp_arena_t a;
    kp_arena_init(&a, 1 << 20);
    /* dirty the first block, free, and check calloc zeroes what it hands out */
    memset(kp_arena_alloc(&a, 1024), 0xff, 1024);
    kp_arena_free(&a);
    assert_int_equal(a.used_total, 0);
    uint32_t *v = kp_arena_calloc(&a, 256, sizeof(uint32_t));
    assert_non_null(v);
    for (int i = 0; i < 256; i++) assert_int_equal(v[i], 0);
    uint8_t *big = kp_arena_calloc(&a, 3, 10000);
    assert_non_null(big);
    for (int i = 0; i < 30000; i++) assert_int_equal(big[i], 0);
    char *s = kp_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    s = kp_arena_strndup(&a, "", 0);
    assert_string_equal(s, "");
    kp_arena_free(&a);
    /* the arena is usable again after free, with the same ceiling */
    assert_int_equal(a.limit, 1 << 20);
    assert_non_null(kp_arena_alloc(&a, 100));
    assert_null(kp_arena_alloc(&a, 2 << 20));
    kp_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_no_overlap),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_calloc_and_strndup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
