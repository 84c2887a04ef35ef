/*
 * test_crc32c.c — core/crc32c: the RFC 3720 check values, the hardware path against the table
 * path and against a bit-at-a-time reference on random buffers (lengths 0..100k, every start
 * alignment, both sides of the 3 x 4 KiB interleave boundary), and continued CRCs.
 */
#include "unit.h"

#include "core/crc32c.h"

/* Bit-at-a-time CRC-32C: slow, obviously correct, shares no tables with the code under test. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* RFC 3720 appendix B.4 and the usual "123456789" check value. */
static void test_rfc3720_vectors(void **state)
{
    uint8_t buf[48];

    memset(buf, 0, 32);
    assert_int_equal(kp_crc32c(0, buf, 32), 0x8a9136aa);
    assert_int_equal(kp_crc32c_sw(0, buf, 32), 0x8a9136aa);

    memset(buf, 0xff, 32);
    assert_int_equal(kp_crc32c(0, buf, 32), 0x62a8ab43);
    assert_int_equal(kp_crc32c_sw(0, buf, 32), 0x62a8ab43);

    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    assert_int_equal(kp_crc32c(0, buf, 32), 0x46dd794e);
    assert_int_equal(kp_crc32c_sw(0, buf, 32), 0x46dd794e);

    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    assert_int_equal(kp_crc32c(0, buf, 32), 0x113fdb5c);
    assert_int_equal(kp_crc32c_sw(0, buf, 32), 0x113fdb5c);

    static const uint8_t read_pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(kp_crc32c(0, read_pdu, sizeof(read_pdu)), 0xd9963a56);
    assert_int_equal(kp_crc32c_sw(0, read_pdu, sizeof(read_pdu)), 0xd9963a56);

    assert_int_equal(kp_crc32c(0, "123456789", 9), 0xe3069283);
    assert_int_equal(kp_crc32c_sw(0, "123456789", 9), 0xe3069283);
    assert_int_equal(crc_ref(0, (const uint8_t *)"123456789", 9), 0xe3069283);

    /* the empty buffer leaves the running value as it was */
    assert_int_equal(kp_crc32c(0, buf, 0), 0);
    assert_int_equal(kp_crc32c(0x12345678, buf, 0), 0x12345678);
    assert_int_equal(kp_crc32c_sw(0x12345678, buf, 0), 0x12345678);
}

/* The CPUs we deploy on have SSE4.2: say so when the hardware path is not under test. */
static void test_hw_path_present(void **state)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    assert_int_equal(kp_crc32c_hw(), __builtin_cpu_supports("sse4.2") ? 1 : 0);
#else
    assert_int_equal(kp_crc32c_hw(), 0);
#endif
    if (!kp_crc32c_hw()) print_message("note: no SSE4.2, hardware path not exercised\n");
}

#define BIG (100 * 1024 + 64)

/* Lengths where the implementations change strategy: the 8-byte main loop, and the 3-chain
 * interleave that needs 3 * 4096 bytes (after alignment) per round. */
static const size_t edge_lengths[] = {
    0,     1,     7,     8,     9,     15,    16,    17,    63,    64,    65,    4095,
    4096,  4097,  8191,  8192,  12279, 12280, 12287, 12288, 12289, 12295, 12296, 24575,
    24576, 24577, 24583, 36863, 36864, 36865, 49152, 65536, 98303, 98304, 98311, 102400,
};

static void test_hw_equals_sw_random(void **state)
{
    ut_rand_t r;
    ut_rand_seed(&r, 0xc0ffee);
    uint8_t *buf = malloc(BIG + 8);
    ut_rand_fill(&r, buf, BIG + 8);

    /* every short length at every alignment, against the reference too */
    for (size_t len = 0; len <= 300; len++) {
        for (size_t a = 0; a < 8; a++) {
            uint32_t want = crc_ref(0, buf + a, len);
            assert_int_equal(kp_crc32c_sw(0, buf + a, len), want);
            assert_int_equal(kp_crc32c(0, buf + a, len), want);
        }
    }
    /* strategy edges, every alignment */
    for (size_t i = 0; i < sizeof(edge_lengths) / sizeof(edge_lengths[0]); i++) {
        for (size_t a = 0; a < 8; a++) {
            size_t len = edge_lengths[i];
            uint32_t sw = kp_crc32c_sw(0, buf + a, len);
            assert_int_equal(kp_crc32c(0, buf + a, len), sw);
            if (a == 0 || a == 5) assert_int_equal(crc_ref(0, buf + a, len), sw);
        }
    }
    /* random lengths 0..100k at random starts, random initial crc */
    for (int i = 0; i < 300; i++) {
        size_t a = (size_t)ut_rand_below(&r, 8);
        size_t len = (size_t)ut_rand_below(&r, BIG - 64);
        uint32_t init = (uint32_t)ut_rand_u64(&r);
        uint32_t sw = kp_crc32c_sw(init, buf + a, len);
        assert_int_equal(kp_crc32c(init, buf + a, len), sw);
        if (i < 20) assert_int_equal(crc_ref(init, buf + a, len), sw);
    }
    free(buf);
}

/* A single flipped bit anywhere changes the CRC, in both paths (large buffers go through the
 * chain merge, where a wrong shift constant would cancel some positions). */
static void test_bit_flip_detected(void **state)
{
    ut_rand_t r;
    ut_rand_seed(&r, 7);
    size_t len = 3 * 12288 + 100;
    uint8_t *buf = malloc(len);
    ut_rand_fill(&r, buf, len);
    uint32_t base = kp_crc32c(0, buf, len);
    assert_int_equal(base, kp_crc32c_sw(0, buf, len));
    for (int i = 0; i < 200; i++) {
        size_t pos = (size_t)ut_rand_below(&r, len);
        uint8_t bit = (uint8_t)(1u << ut_rand_below(&r, 8));
        buf[pos] ^= bit;
        uint32_t hw = kp_crc32c(0, buf, len);
        assert_int_not_equal(hw, base);
        assert_int_equal(hw, kp_crc32c_sw(0, buf, len));
        buf[pos] ^= bit;
    }
    free(buf);
}

/* crc(a || b) == crc(crc(a), b), for any split, in both paths and mixing them. */
static void test_incremental(void **state)
{
    ut_rand_t r;
    ut_rand_seed(&r, 99);
    size_t len = 40000;
    uint8_t *buf = malloc(len);
    ut_rand_fill(&r, buf, len);
    uint32_t whole = kp_crc32c(0, buf, len);
    assert_int_equal(whole, kp_crc32c_sw(0, buf, len));
    static const size_t splits[] = {0, 1, 3, 8, 13, 4096, 12288, 12289, 20000, 39999, 40000};
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        size_t s = splits[i];
        assert_int_equal(kp_crc32c(kp_crc32c(0, buf, s), buf + s, len - s), whole);
        assert_int_equal(kp_crc32c_sw(kp_crc32c_sw(0, buf, s), buf + s, len - s), whole);
        assert_int_equal(kp_crc32c_sw(kp_crc32c(0, buf, s), buf + s, len - s), whole);
    }
    /* byte by byte over a short prefix */
    uint32_t c = 0;
    for (size_t i = 0; i < 1000; i++) c = kp_crc32c(c, buf + i, 1);
    assert_int_equal(c, kp_crc32c_sw(0, buf, 1000));
    /* many random pieces */
    c = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t n = (size_t)ut_rand_below(&r, 15000) + 1;
        if (n > len - pos) n = len - pos;
        c = kp_crc32c(c, buf + pos, n);
        pos += n;
    }
    assert_int_equal(c, whole);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3720_vectors),     cmocka_unit_test(test_hw_path_present),
        cmocka_unit_test(test_hw_equals_sw_random), cmocka_unit_test(test_bit_flip_detected),
        cmocka_unit_test(test_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
