/*
 * test_wire.c — protocol/wire: the checked reader and the writer. Zigzag varint/varlong edge
 * values against known encodings, overlong and overflowing varints rejected, strings and
 * bytes (classic, compact, null, non-nullable null), array length bounds (a forged count
 * fails before any allocation could be sized from it), tagged-field skipping, the sticky
 * error flag, and file regions holding references.
 */
#include "unit.h"

#include "core/limits.h"
#include "protocol/wire.h"

static void wr_bytes(kp_wr_t *w, const uint8_t **p, size_t *n)
{
    *p = w->buf.data;
    *n = w->buf.len;
}

/* Known zigzag encodings from the Kafka protocol guide / protobuf. */
static void test_varint_known_encodings(void **state)
{
    static const struct {
        int32_t v;
        uint8_t enc[5];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {1, {0x02}, 1},
        {-2, {0x03}, 1},
        {63, {0x7e}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {-65, {0x81, 0x01}, 2},
        {150, {0xac, 0x02}, 2},
        {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
        {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kp_wr_t w;
        kp_wr_init(&w);
        kp_wr_varint(&w, cases[i].v);
        assert_int_equal(w.buf.len, cases[i].n);
        assert_memory_equal(w.buf.data, cases[i].enc, cases[i].n);
        kp_rd_t r;
        kp_rd_init(&r, cases[i].enc, cases[i].n);
        assert_int_equal(kp_rd_varint(&r), cases[i].v);
        assert_int_equal(r.err, 0);
        assert_int_equal(kp_rd_left(&r), 0);
        kp_wr_free(&w);
    }
}

static void test_varlong_edges(void **state)
{
    static const int64_t vals[] = {0,
                                   1,
                                   -1,
                                   63,
                                   -64,
                                   64,
                                   INT32_MAX,
                                   INT32_MIN,
                                   (int64_t)INT32_MAX + 1,
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT64_MAX - 1,
                                   INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        kp_wr_t w;
        kp_wr_init(&w);
        kp_wr_varlong(&w, vals[i]);
        kp_rd_t r;
        kp_rd_init(&r, w.buf.data, w.buf.len);
        assert_int_equal(kp_rd_varlong(&r), vals[i]);
        assert_int_equal(r.err, 0);
        assert_int_equal(kp_rd_left(&r), 0);
        if (vals[i] == INT64_MAX || vals[i] == INT64_MIN) assert_int_equal(w.buf.len, 10);
        kp_wr_free(&w);
    }
    /* INT64_MIN is zigzag 0xffff...ff: nine 0xff then 0x01 */
    static const uint8_t min_enc[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kp_rd_t r;
    kp_rd_init(&r, min_enc, sizeof(min_enc));
    assert_true(kp_rd_varlong(&r) == INT64_MIN);
    assert_int_equal(r.err, 0);
}

/* Every value round trips, and the encoded size is what kp_uvarint_size predicts. */
static void test_varint_random_roundtrip(void **state)
{
    ut_rand_t rnd;
    ut_rand_seed(&rnd, 42);
    kp_wr_t w;
    kp_wr_init(&w);
    int32_t v32[2000];
    int64_t v64[2000];
    for (int i = 0; i < 2000; i++) {
        int shift = (int)ut_rand_below(&rnd, 64);
        v64[i] = (int64_t)(ut_rand_u64(&rnd) >> shift);
        if (i & 1) v64[i] = -v64[i];
        v32[i] = (int32_t)(ut_rand_u64(&rnd) >> (shift / 2 + 32));
        if (i & 2) v32[i] = -v32[i] - 1;
        uint32_t u = (uint32_t)ut_rand_u64(&rnd) >> (shift / 2);
        size_t before = w.buf.len;
        kp_wr_uvarint(&w, u);
        assert_int_equal(w.buf.len - before, kp_uvarint_size(u));
        kp_rd_t one;
        kp_rd_init(&one, w.buf.data + before, w.buf.len - before);
        assert_int_equal(kp_rd_uvarint(&one), u);
        kp_wr_varint(&w, v32[i]);
        kp_wr_varlong(&w, v64[i]);
    }
    kp_rd_t r;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    for (int i = 0; i < 2000; i++) {
        kp_rd_uvarint(&r);
        assert_int_equal(kp_rd_varint(&r), v32[i]);
        assert_true(kp_rd_varlong(&r) == v64[i]);
    }
    assert_int_equal(r.err, 0);
    assert_int_equal(kp_rd_left(&r), 0);
    kp_wr_free(&w);
}

static void test_uvarint_overflow_rejected(void **state)
{
    kp_rd_t r;
    /* UINT32_MAX is the largest: 0xff 0xff 0xff 0xff 0x0f */
    static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    kp_rd_init(&r, max, sizeof(max));
    assert_int_equal(kp_rd_uvarint(&r), UINT32_MAX);
    assert_int_equal(r.err, 0);
    /* a 5th byte with bits beyond 32 */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    kp_rd_init(&r, over, sizeof(over));
    assert_int_equal(kp_rd_uvarint(&r), 0);
    assert_int_equal(r.err, 1);
    /* six bytes (continuation on the 5th) */
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    kp_rd_init(&r, six, sizeof(six));
    kp_rd_uvarint(&r);
    assert_int_equal(r.err, 1);
    /* continuation bit on the last available byte: truncated */
    static const uint8_t cut[] = {0x80, 0x80};
    kp_rd_init(&r, cut, sizeof(cut));
    kp_rd_uvarint(&r);
    assert_int_equal(r.err, 1);
    /* varint (signed) shares the check */
    kp_rd_init(&r, over, sizeof(over));
    kp_rd_varint(&r);
    assert_int_equal(r.err, 1);
    /* varlong: 10 bytes max, the 10th may only carry bit 63 */
    static const uint8_t l_over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03};
    kp_rd_init(&r, l_over, sizeof(l_over));
    kp_rd_varlong(&r);
    assert_int_equal(r.err, 1);
    static const uint8_t l_eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x00};
    kp_rd_init(&r, l_eleven, sizeof(l_eleven));
    kp_rd_varlong(&r);
    assert_int_equal(r.err, 1);
}

/* The error flag is sticky and every later read returns zero without moving. */
static void test_reader_sticky_error(void **state)
{
    static const uint8_t data[] = {0x00, 0x01, 0x02};
    kp_rd_t r;
    kp_rd_init(&r, data, sizeof(data));
    assert_int_equal(kp_rd_i16(&r), 1);
    assert_int_equal(kp_rd_i32(&r), 0); /* only one byte left */
    assert_int_equal(r.err, 1);
    assert_int_equal(kp_rd_i8(&r), 0); /* the byte is there, but the reader has failed */
    assert_int_equal(kp_rd_left(&r), 1);
    kp_rd_init(&r, data, 0);
    assert_int_equal(kp_rd_i8(&r), 0);
    assert_int_equal(r.err, 1);
}

static void test_fixed_width_roundtrip(void **state)
{
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i8(&w, -128);
    kp_wr_i16(&w, -2);
    kp_wr_u16(&w, 0xfffe);
    kp_wr_i32(&w, INT32_MIN);
    kp_wr_u32(&w, 0xdeadbeef);
    kp_wr_i64(&w, INT64_MIN + 5);
    kp_wr_f64(&w, -1.5);
    kp_uuid_t u;
    for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)(i * 17);
    kp_wr_uuid(&w, u);
    assert_int_equal(w.buf.len, 1 + 2 + 2 + 4 + 4 + 8 + 8 + 16);
    /* big-endian on the wire */
    assert_int_equal(w.buf.data[1], 0xff);
    assert_int_equal(w.buf.data[2], 0xfe);
    assert_int_equal(w.buf.data[9], 0xde);
    kp_rd_t r;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_int_equal(kp_rd_i8(&r), -128);
    assert_int_equal(kp_rd_i16(&r), -2);
    assert_int_equal(kp_rd_u16(&r), 0xfffe);
    assert_int_equal(kp_rd_i32(&r), INT32_MIN);
    assert_int_equal(kp_rd_u32(&r), 0xdeadbeef);
    assert_true(kp_rd_i64(&r) == INT64_MIN + 5);
    assert_true(kp_rd_f64(&r) == -1.5);
    kp_uuid_t u2 = kp_rd_uuid(&r);
    assert_memory_equal(u2.b, u.b, 16);
    assert_int_equal(r.err, 0);
    assert_int_equal(kp_rd_left(&r), 0);
    kp_wr_free(&w);
}

static void test_strings_classic(void **state)
{
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_string(&w, 0, KP_STR_LIT("topic"));
    kp_wr_string(&w, 0, KP_STR_NULL);
    kp_wr_string(&w, 0, KP_STR_LIT(""));
    kp_wr_bytes(&w, 0, KP_STR_LIT("ab"));
    kp_wr_bytes(&w, 0, KP_STR_NULL);
    const uint8_t *p;
    size_t n;
    wr_bytes(&w, &p, &n);
    static const uint8_t want[] = {0x00, 0x05, 't',  'o',  'p', 'i', 'c',  0xff, 0xff, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x02, 'a', 'b', 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(p, want, n);

    kp_rd_t r;
    kp_rd_init(&r, p, n);
    kp_str_t s = kp_rd_string(&r, 0, 0);
    assert_true(kp_str_eq_c(s, "topic"));
    assert_ptr_equal(s.ptr, p + 2); /* borrowed, not copied */
    s = kp_rd_string(&r, 0, 1);
    assert_int_equal(s.len, -1);
    s = kp_rd_string(&r, 0, 0);
    assert_int_equal(s.len, 0);
    s = kp_rd_bytes(&r, 0, 0);
    assert_true(kp_str_eq_c(s, "ab"));
    s = kp_rd_bytes(&r, 0, 1);
    assert_int_equal(s.len, -1);
    assert_int_equal(r.err, 0);
    assert_int_equal(kp_rd_left(&r), 0);

    /* null where the field is not nullable */
    kp_rd_init(&r, p + 7, 2);
    kp_rd_string(&r, 0, 0);
    assert_int_equal(r.err, 1);
    /* negative lengths other than -1 */
    static const uint8_t neg2[] = {0xff, 0xfe};
    kp_rd_init(&r, neg2, 2);
    kp_rd_string(&r, 0, 1);
    assert_int_equal(r.err, 1);
    static const uint8_t neg2b[] = {0xff, 0xff, 0xff, 0xfe};
    kp_rd_init(&r, neg2b, 4);
    kp_rd_bytes(&r, 0, 1);
    assert_int_equal(r.err, 1);
    /* length beyond the data */
    kp_rd_init(&r, p, 6);
    s = kp_rd_string(&r, 0, 0);
    assert_int_equal(r.err, 1);
    assert_null(s.ptr);
    kp_wr_free(&w);
}

static void test_strings_compact(void **state)
{
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_string(&w, 1, KP_STR_LIT("abc"));
    kp_wr_string(&w, 1, KP_STR_NULL);
    kp_wr_string(&w, 1, KP_STR_LIT(""));
    static const uint8_t want[] = {0x04, 'a', 'b', 'c', 0x00, 0x01};
    assert_int_equal(w.buf.len, sizeof(want));
    assert_memory_equal(w.buf.data, want, sizeof(want));
    kp_rd_t r;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_true(kp_str_eq_c(kp_rd_string(&r, 1, 0), "abc"));
    assert_int_equal(kp_rd_string(&r, 1, 1).len, -1);
    assert_int_equal(kp_rd_string(&r, 1, 0).len, 0);
    assert_int_equal(r.err, 0);
    /* compact null where not nullable */
    kp_rd_init(&r, want + 4, 1);
    kp_rd_string(&r, 1, 0);
    assert_int_equal(r.err, 1);
    /* a long compact string: 300 bytes, two-byte length */
    char big[300];
    memset(big, 'x', sizeof(big));
    kp_wr_free(&w);
    kp_wr_init(&w);
    kp_wr_bytes(&w, 1, (kp_str_t){big, 300});
    assert_int_equal(w.buf.len, 302);
    assert_int_equal(w.buf.data[0], (301 & 0x7f) | 0x80);
    assert_int_equal(w.buf.data[1], 301 >> 7);
    kp_rd_init(&r, w.buf.data, w.buf.len);
    assert_int_equal(kp_rd_bytes(&r, 1, 0).len, 300);
    /* compact length claiming ~4 GiB on a tiny buffer */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 'a'};
    kp_rd_init(&r, huge, sizeof(huge));
    kp_rd_bytes(&r, 1, 1);
    assert_int_equal(r.err, 1);
    kp_wr_free(&w);
}

static void test_array_len_bounds(void **state)
{
    kp_rd_t r;
    uint8_t buf[64] = {0};
    /* classic: a forged count far beyond what the frame can hold */
    ut_st32(buf, 0x7fffffff);
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(kp_rd_array_len(&r, 0, 0, 4), 0);
    assert_int_equal(r.err, 1);
    /* more than KP_ARRAY_COUNT_MAX even with min size 0 */
    ut_st32(buf, KP_ARRAY_COUNT_MAX + 1);
    kp_rd_init(&r, buf, sizeof(buf));
    kp_rd_array_len(&r, 0, 0, 0);
    assert_int_equal(r.err, 1);
    /* count * elem_min_bytes must fit in what is left (60 bytes after the count) */
    ut_st32(buf, 15);
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(kp_rd_array_len(&r, 0, 0, 4), 15);
    assert_int_equal(r.err, 0);
    kp_rd_init(&r, buf, sizeof(buf));
    kp_rd_array_len(&r, 0, 0, 5);
    assert_int_equal(r.err, 1);
    /* null: -1 only when nullable; other negatives never */
    ut_st32(buf, 0xffffffff);
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(kp_rd_array_len(&r, 0, 1, 4), -1);
    assert_int_equal(r.err, 0);
    kp_rd_init(&r, buf, sizeof(buf));
    kp_rd_array_len(&r, 0, 0, 4);
    assert_int_equal(r.err, 1);
    ut_st32(buf, 0xfffffffe);
    kp_rd_init(&r, buf, sizeof(buf));
    kp_rd_array_len(&r, 0, 1, 4);
    assert_int_equal(r.err, 1);
    /* compact: 0 = null, n+1 = n */
    buf[0] = 0;
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(kp_rd_array_len(&r, 1, 1, 1), -1);
    assert_int_equal(r.err, 0);
    kp_rd_init(&r, buf, sizeof(buf));
    kp_rd_array_len(&r, 1, 0, 1);
    assert_int_equal(r.err, 1);
    buf[0] = 4;
    kp_rd_init(&r, buf, sizeof(buf));
    assert_int_equal(kp_rd_array_len(&r, 1, 0, 1), 3);
    /* compact forged count */
    static const uint8_t forged[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0};
    kp_rd_init(&r, forged, sizeof(forged));
    kp_rd_array_len(&r, 1, 1, 1);
    assert_int_equal(r.err, 1);
    /* writer */
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_array_len(&w, 1, -1);
    kp_wr_array_len(&w, 1, 2);
    kp_wr_array_len(&w, 0, -1);
    static const uint8_t want[] = {0x00, 0x03, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(w.buf.data, want, sizeof(want));
    kp_wr_free(&w);
}

static void test_skip_tags(void **state)
{
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_uvarint(&w, 2); /* two tagged fields */
    kp_wr_uvarint(&w, 0);
    kp_wr_uvarint(&w, 3);
    kp_wr_raw(&w, "abc", 3);
    kp_wr_uvarint(&w, 1000);
    kp_wr_uvarint(&w, 0);
    kp_wr_i8(&w, 0x55); /* what follows */
    kp_rd_t r;
    kp_rd_init(&r, w.buf.data, w.buf.len);
    kp_rd_skip_tags(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(kp_rd_i8(&r), 0x55);
    /* a tag claiming more bytes than there are */
    kp_rd_init(&r, w.buf.data, 5);
    kp_rd_skip_tags(&r);
    assert_int_equal(r.err, 1);
    /* a forged huge tag count terminates with an error */
    static const uint8_t many[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00};
    kp_rd_init(&r, many, sizeof(many));
    kp_rd_skip_tags(&r);
    assert_int_equal(r.err, 1);
    kp_wr_free(&w);
}

static int released;
static void note_release(kp_ref_t *ref)
{
    released++;
}

/* A spliced file region holds a reference until the writer is freed. */
static void test_writer_file_regions(void **state)
{
    kp_ref_t owner;
    atomic_init(&owner.refs, 1);
    owner.release = note_release;
    released = 0;
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i32(&w, 7);
    kp_records_t rec = {NULL, 100, &owner, 3, 4096};
    kp_wr_records(&w, 0, &rec);
    assert_int_equal(w.nregions, 1);
    assert_int_equal(w.regions[0].at, 8); /* after the i32 and the records length */
    assert_int_equal(w.regions[0].len, 100);
    assert_int_equal(w.regions[0].pos, 4096);
    assert_int_equal(kp_wr_len(&w), 8 + 100);
    assert_int_equal(ut_ld32(w.buf.data + 4), 100);
    assert_int_equal(atomic_load(&owner.refs), 2);
    kp_wr_free(&w);
    assert_int_equal(atomic_load(&owner.refs), 1);
    assert_int_equal(released, 0);
    kp_ref_put(&owner);
    assert_int_equal(released, 1);

    /* inline records and null records */
    kp_wr_init(&w);
    kp_records_t inl = {(const uint8_t *)"xyz", 3, NULL, -1, 0};
    kp_wr_records(&w, 1, &inl);
    kp_records_t nul = KP_RECORDS_NULL;
    kp_wr_records(&w, 0, &nul);
    static const uint8_t want[] = {0x04, 'x', 'y', 'z', 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(w.buf.len, sizeof(want));
    assert_memory_equal(w.buf.data, want, sizeof(want));
    assert_int_equal(w.nregions, 0);
    /* patch */
    kp_wr_patch_i32(&w, 4, 0x01020304);
    assert_int_equal(ut_ld32(w.buf.data + 4), 0x01020304);
    kp_wr_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_known_encodings),
        cmocka_unit_test(test_varlong_edges),
        cmocka_unit_test(test_varint_random_roundtrip),
        cmocka_unit_test(test_uvarint_overflow_rejected),
        cmocka_unit_test(test_reader_sticky_error),
        cmocka_unit_test(test_fixed_width_roundtrip),
        cmocka_unit_test(test_strings_classic),
        cmocka_unit_test(test_strings_compact),
        cmocka_unit_test(test_array_len_bounds),
        cmocka_unit_test(test_skip_tags),
        cmocka_unit_test(test_writer_file_regions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
