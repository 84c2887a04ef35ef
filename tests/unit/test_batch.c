/*
 * test_batch.c — storage/batch: record batch v2 validation outcomes (ok, bad CRC, bad magic,
 * truncated, length mismatch, record framing and offset-delta errors, unknown codec), header
 * parsing, kp_batch_total_size, and the in-place patches (base offset and leader epoch leave
 * the CRC valid; LogAppendTime recomputes it).
 */
#include "unit.h"

#include "storage/batch.h"

/* A batch header for `count` records with lastOffsetDelta `last_delta`, followed by the given
 * record bytes, with batchLength and CRC made consistent. */
static size_t make_raw(kp_buf_t *out, int32_t count, int32_t last_delta, const kp_wr_t *records)
{
    ut_batch_opts_t o = ut_batch_defaults(0, 1000);
    ut_batch_build(out, &o);
    kp_buf_append(out, records->buf.data, records->buf.len);
    ut_st32(out->data + 8, (uint32_t)(out->len - KP_BATCH_LOG_OVERHEAD));
    ut_st32(out->data + 23, (uint32_t)last_delta);
    ut_st32(out->data + 57, (uint32_t)count);
    ut_batch_fix_crc(out->data, out->len);
    return out->len;
}

/* Appends a record with the given offset delta, key/value lengths (-1 null) and header count;
 * `extra` bytes of slack inside the record's length, `short_by` bytes missing from it. */
static void add_record(kp_wr_t *w, int32_t offset_delta, int32_t klen, int32_t vlen,
                       int32_t nheaders, int extra, int short_by)
{
    kp_wr_t r;
    kp_wr_init(&r);
    kp_wr_i8(&r, 0);
    kp_wr_varlong(&r, 0);
    kp_wr_varint(&r, offset_delta);
    kp_wr_varint(&r, klen);
    for (int32_t i = 0; i < klen; i++) kp_wr_i8(&r, 'k');
    kp_wr_varint(&r, vlen);
    for (int32_t i = 0; i < vlen; i++) kp_wr_i8(&r, 'v');
    kp_wr_varint(&r, nheaders);
    for (int32_t h = 0; h < nheaders; h++) {
        kp_wr_varint(&r, 2);
        kp_wr_raw(&r, "hk", 2);
        kp_wr_varint(&r, -1); /* null header value is allowed */
    }
    for (int i = 0; i < extra; i++) kp_wr_i8(&r, 0);
    kp_wr_varint(w, (int32_t)r.buf.len - short_by);
    kp_wr_raw(w, r.buf.data, r.buf.len);
    kp_wr_free(&r);
}

static void test_valid_batches(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_batch_info_t info;
    static const int32_t counts[] = {1, 2, 10, 500};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        ut_batch_opts_t o = ut_batch_defaults(counts[i], 1700000000123);
        o.base_offset = 77;
        o.producer_id = 1000;
        o.producer_epoch = 3;
        o.base_sequence = 40;
        o.nheaders = (int32_t)i;
        o.value_len = 100 * (int32_t)i;
        size_t len = ut_batch_build(&b, &o);
        memset(&info, 0xee, sizeof(info));
        assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
        assert_int_equal(info.base_offset, 77);
        assert_int_equal(info.batch_length, len - 12);
        assert_int_equal(info.leader_epoch, -1);
        assert_int_equal(info.magic, 2);
        assert_int_equal(info.attributes, 0);
        assert_int_equal(info.last_offset_delta, counts[i] - 1);
        assert_true(info.base_timestamp == 1700000000123);
        assert_true(info.max_timestamp == 1700000000123 + counts[i] - 1);
        assert_int_equal(info.producer_id, 1000);
        assert_int_equal(info.producer_epoch, 3);
        assert_int_equal(info.base_sequence, 40);
        assert_int_equal(info.records_count, counts[i]);
        assert_int_equal(kp_batch_last_offset(&info), 77 + counts[i] - 1);
        assert_int_equal(kp_batch_total_size(b.data, len), len);
    }
    /* null keys */
    ut_batch_opts_t o = ut_batch_defaults(3, 1);
    o.null_keys = 1;
    size_t len = ut_batch_build(&b, &o);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    /* a compressed batch: the records are opaque, only the header is checked */
    o = ut_batch_defaults(3, 1);
    o.attributes = 1; /* gzip */
    len = ut_batch_build(&b, &o);
    memset(b.data + KP_BATCH_HEADER_BYTES, 0x42, len - KP_BATCH_HEADER_BYTES);
    ut_batch_fix_crc(b.data, len);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    /* ... but its header must still agree with itself: 3 records cannot span 1001 offsets */
    ut_st32(b.data + 23, 1000);
    ut_batch_fix_crc(b.data, len);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_BAD_RECORDS);
    kp_buf_free(&b);
}

static void test_bad_crc(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(5, 1000);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    /* any byte in the CRC'd range (attributes..end), and the CRC itself */
    for (size_t pos = 17; pos < len; pos++) {
        b.data[pos] ^= 0x10;
        assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_BAD_CRC);
        b.data[pos] ^= 0x10;
    }
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    /* base offset and leader epoch are outside the CRC on purpose */
    b.data[3] ^= 1;
    b.data[13] ^= 1;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_buf_free(&b);
}

static void test_bad_magic(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(2, 1000);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    static const uint8_t magics[] = {0, 1, 3, 0xff};
    for (size_t i = 0; i < sizeof(magics); i++) {
        b.data[16] = magics[i];
        assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_BAD_MAGIC);
    }
    kp_buf_free(&b);
}

static void test_truncated_and_length(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(4, 1000);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    /* every shorter length */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.data, cut);
        assert_int_equal(kp_batch_validate(copy, cut, &info), KP_BATCH_TRUNCATED);
        free(copy);
    }
    /* trailing bytes beyond batchLength */
    kp_buf_append(&b, "xx", 2);
    assert_int_equal(kp_batch_validate(b.data, len + 2, &info), KP_BATCH_BAD_LENGTH);
    b.len = len;
    /* batchLength smaller than a header */
    uint8_t saved[4];
    memcpy(saved, b.data + 8, 4);
    ut_st32(b.data + 8, 10);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_BAD_LENGTH);
    ut_st32(b.data + 8, 0xffffffff);
    assert_int_not_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    ut_st32(b.data + 8, 0x80000000);
    assert_int_not_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    memcpy(b.data + 8, saved, 4);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);

    /* kp_batch_total_size */
    assert_int_equal(kp_batch_total_size(b.data, 11), -1);
    assert_int_equal(kp_batch_total_size(b.data, 12), len);
    ut_st32(b.data + 8, 0x80000000);
    assert_int_equal(kp_batch_total_size(b.data, len), -1);
    ut_st32(b.data + 8, 0x7fffffff);
    assert_true(kp_batch_total_size(b.data, len) == 0x7fffffffLL + 12);
    kp_buf_free(&b);
}

static void test_record_framing(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_batch_info_t info;
    kp_wr_t w;

    /* the helper itself produces valid batches */
    kp_wr_init(&w);
    add_record(&w, 0, 3, 4, 2, 0, 0);
    add_record(&w, 1, -1, -1, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 2, 1, &w), &info), KP_BATCH_OK);
    kp_wr_free(&w);

    /* count says 3, two records present */
    kp_wr_init(&w);
    add_record(&w, 0, 3, 4, 0, 0, 0);
    add_record(&w, 1, 3, 4, 0, 0, 0);
    kp_wr_raw(&w, "\0\0\0\0\0\0\0", 7); /* enough bytes to pass the count * 7 check */
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 3, 2, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* count says 1, two records present (trailing bytes) */
    kp_wr_init(&w);
    add_record(&w, 0, 3, 4, 0, 0, 0);
    add_record(&w, 1, 3, 4, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* offset deltas must be 0, 1, 2, ... */
    kp_wr_init(&w);
    add_record(&w, 0, 1, 1, 0, 0, 0);
    add_record(&w, 2, 1, 1, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 2, 1, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    kp_wr_init(&w);
    add_record(&w, 1, 1, 1, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* lastOffsetDelta must be count - 1; negative deltas and counts are corrupt */
    kp_wr_init(&w);
    add_record(&w, 0, 1, 1, 0, 0, 0);
    add_record(&w, 1, 1, 1, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 2, 2, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 2, -1, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, -2, 1, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    /* a count no body could hold */
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 0x7fffffff, 0x7ffffffe, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* slack inside a record, or a record length past its fields */
    kp_wr_init(&w);
    add_record(&w, 0, 2, 2, 1, 3, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    kp_wr_init(&w);
    add_record(&w, 0, 2, 2, 1, 0, 2);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* key / value lengths below -1, key or value running past the record */
    kp_wr_init(&w);
    add_record(&w, 0, -2, 1, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    kp_wr_init(&w);
    add_record(&w, 0, 1, -5, 0, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);

    /* a record whose length varint says more than the batch holds */
    kp_wr_init(&w);
    kp_wr_varint(&w, 1000);
    kp_wr_raw(&w, "\0\0\0\0\0\0\0\0\0\0", 10);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    /* negative record length */
    kp_wr_init(&w);
    kp_wr_varint(&w, -3);
    kp_wr_raw(&w, "\0\0\0\0\0\0\0\0\0\0", 10);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    /* negative header count, header key null */
    kp_wr_init(&w);
    add_record(&w, 0, 1, 1, -1, 0, 0);
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    kp_wr_init(&w);
    {
        kp_wr_t r;
        kp_wr_init(&r);
        kp_wr_i8(&r, 0);
        kp_wr_varlong(&r, 0);
        kp_wr_varint(&r, 0);
        kp_wr_varint(&r, -1);
        kp_wr_varint(&r, -1);
        kp_wr_varint(&r, 1);
        kp_wr_varint(&r, -1); /* header key may not be null */
        kp_wr_varint(&r, -1);
        kp_wr_varint(&w, (int32_t)r.buf.len);
        kp_wr_raw(&w, r.buf.data, r.buf.len);
        kp_wr_free(&r);
    }
    assert_int_equal(kp_batch_validate(b.data, make_raw(&b, 1, 0, &w), &info),
                     KP_BATCH_BAD_RECORDS);
    kp_wr_free(&w);
    kp_buf_free(&b);
}

static void test_codec(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_batch_info_t info;
    ut_batch_opts_t o = ut_batch_defaults(1, 1000);
    for (int codec = 0; codec < 8; codec++) {
        o.attributes = (int16_t)codec;
        size_t len = ut_batch_build(&b, &o);
        assert_int_equal(kp_batch_validate(b.data, len, &info),
                         codec <= 4 ? KP_BATCH_OK : KP_BATCH_BAD_CODEC);
    }
    kp_buf_free(&b);
}

static void test_patches(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_batch_info_t info;
    ut_batch_opts_t o = ut_batch_defaults(3, 5000);
    size_t len = ut_batch_build(&b, &o);
    uint32_t crc_before = ut_ld32(b.data + 17);

    kp_batch_set_base_offset(b.data, 0x0102030405060708LL);
    kp_batch_set_leader_epoch(b.data, 17);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    assert_true(info.base_offset == 0x0102030405060708LL);
    assert_int_equal(info.leader_epoch, 17);
    assert_int_equal(ut_ld32(b.data + 17), crc_before);

    kp_batch_set_log_append_time(b.data, len, 1700000009999);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    assert_int_not_equal(ut_ld32(b.data + 17), crc_before);
    assert_true(info.max_timestamp == 1700000009999);
    assert_true(info.base_timestamp == 5000); /* untouched */
    assert_int_equal(info.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME,
                     KP_BATCH_ATTR_LOG_APPEND_TIME);
    assert_int_equal(info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, 0);
    /* idempotent, and keeps other attribute bits (codec, transactional) */
    o.attributes = KP_BATCH_ATTR_TRANSACTIONAL | 3;
    len = ut_batch_build(&b, &o);
    kp_batch_set_log_append_time(b.data, len, 42);
    kp_batch_set_log_append_time(b.data, len, 43);
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    assert_int_equal(info.attributes,
                     KP_BATCH_ATTR_TRANSACTIONAL | KP_BATCH_ATTR_LOG_APPEND_TIME | 3);
    assert_int_equal(info.max_timestamp, 43);
    kp_buf_free(&b);
}

static void test_status_strings(void **state)
{
    for (int i = KP_BATCH_OK; i <= KP_BATCH_BAD_CODEC; i++) {
        const char *s = kp_batch_status_str((kp_batch_status_t)i);
        assert_non_null(s);
        assert_string_not_equal(s, "?");
        for (int j = KP_BATCH_OK; j < i; j++)
            assert_string_not_equal(s, kp_batch_status_str((kp_batch_status_t)j));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_batches),  cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_bad_magic),      cmocka_unit_test(test_truncated_and_length),
        cmocka_unit_test(test_record_framing), cmocka_unit_test(test_codec),
        cmocka_unit_test(test_patches),        cmocka_unit_test(test_status_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
