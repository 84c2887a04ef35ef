/*
 * test_records.c — what the produce path does inside batches when a topic config asks for it
 * (storage/records.c):
 *
 *   - kp_batch_recompress for every pair of codecs (none, gzip, snappy, lz4, zstd): the same
 *     codec is reported as such (store as produced); otherwise the new batch is valid (CRC,
 *     length, framing), has the target codec, keeps every header field (base offset, leader
 *     epoch, last offset delta, base/max timestamps, producer id/epoch/base sequence, records
 *     count, the other attribute bits) and the exact record bytes;
 *   - batches that cannot be decoded are refused: a damaged compressed body, a records count
 *     that disagrees with the records, bytes after the last record, a body inflating beyond
 *     the bound, an unknown target codec;
 *   - kp_batch_timestamps_check: inclusive bounds on every record (first, middle and last),
 *     compressed batches too, NO_TIMESTAMP records skipped, the producer's timestamps even on
 *     a batch flagged LogAppendTime, undecodable batches reported.
 */
#include "unit.h"

#include "storage/compress.h"
#include "storage/records.h"

#define NOW 1700000000000LL

static const int codecs[] = {KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4,
                             KP_CODEC_ZSTD};
#define NCODECS (int)(sizeof(codecs) / sizeof(codecs[0]))

static ut_batch_opts_t idempotent_opts(int32_t nrecords, int64_t ts)
{
    ut_batch_opts_t o = ut_batch_defaults(nrecords, ts);
    o.base_offset = 4242;
    o.leader_epoch = 7;
    o.producer_id = 123456789;
    o.producer_epoch = 3;
    o.base_sequence = 77;
    o.value_len = 300; /* compressible: 'a'..'z' runs */
    o.nheaders = 2;
    return o;
}

/* Re-encodes the uncompressed batch plain[0..len) with codec into out, by hand (the codec
 * library through kp_compress, header patched), so the input does not depend on the code
 * under test. */
static void encode_with(int codec, const uint8_t *plain, size_t len, kp_buf_t *out)
{
    kp_buf_reset(out);
    kp_buf_append(out, plain, KP_BATCH_HEADER_BYTES);
    assert_int_equal(
        kp_compress(codec, plain + KP_BATCH_HEADER_BYTES, len - KP_BATCH_HEADER_BYTES, out), 0);
    uint8_t *p = out->data;
    p[22] = (uint8_t)((p[22] & ~KP_BATCH_ATTR_COMPRESSION_MASK) | codec);
    ut_st32(p + 8, (uint32_t)(out->len - KP_BATCH_LOG_OVERHEAD));
    ut_batch_fix_crc(p, out->len);
}

/* The header fields a recompression must keep, compared one by one. */
static void expect_same_header(const kp_batch_info_t *a, const kp_batch_info_t *b)
{
    assert_int_equal(a->base_offset, b->base_offset);
    assert_int_equal(a->leader_epoch, b->leader_epoch);
    assert_int_equal(a->magic, b->magic);
    assert_int_equal(a->last_offset_delta, b->last_offset_delta);
    assert_int_equal(a->base_timestamp, b->base_timestamp);
    assert_int_equal(a->max_timestamp, b->max_timestamp);
    assert_int_equal(a->producer_id, b->producer_id);
    assert_int_equal(a->producer_epoch, b->producer_epoch);
    assert_int_equal(a->base_sequence, b->base_sequence);
    assert_int_equal(a->records_count, b->records_count);
    assert_int_equal(a->attributes & ~KP_BATCH_ATTR_COMPRESSION_MASK,
                     b->attributes & ~KP_BATCH_ATTR_COMPRESSION_MASK);
}

static void check_pair(const ut_batch_opts_t *o, int from, int to)
{
    kp_buf_t plain, in, out, scratch, body;
    kp_buf_init(&plain);
    kp_buf_init(&in);
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    kp_buf_init(&body);
    size_t plen = ut_batch_build(&plain, o);
    encode_with(from, plain.data, plen, &in);
    kp_batch_info_t want, got;
    assert_int_equal(kp_batch_validate(in.data, in.len, &want), KP_BATCH_OK);

    int rc = kp_batch_recompress(in.data, in.len, to, &scratch, &out, 64 << 20);
    if (from == to) {
        assert_int_equal(rc, KP_RECOMPRESS_SAME);
        goto done;
    }
    assert_int_equal(rc, KP_RECOMPRESS_DONE);
    /* a valid batch: length, magic, CRC-32C, and record framing when uncompressed */
    assert_int_equal(kp_batch_validate(out.data, out.len, &got), KP_BATCH_OK);
    assert_int_equal((size_t)got.batch_length + KP_BATCH_LOG_OVERHEAD, out.len);
    assert_int_equal(got.crc, kp_crc32c(0, out.data + 21, out.len - 21));
    assert_int_equal(got.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, to);
    expect_same_header(&want, &got);
    /* the records, byte for byte */
    assert_int_equal(kp_decompress(to, out.data + KP_BATCH_HEADER_BYTES,
                                   out.len - KP_BATCH_HEADER_BYTES, &body, 64 << 20),
                     0);
    assert_int_equal(body.len, plen - KP_BATCH_HEADER_BYTES);
    assert_memory_equal(body.data, plain.data + KP_BATCH_HEADER_BYTES, body.len);
    /* and the walker reads them back with their offsets and timestamps */
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &got, body.data, body.len);
    kp_record_t rec;
    int32_t n = 0;
    while (kp_records_next(&it, &rec) == 1) {
        assert_int_equal(rec.offset, o->base_offset + n);
        if (!(o->attributes & KP_BATCH_ATTR_LOG_APPEND_TIME))
            assert_int_equal(rec.timestamp, o->base_timestamp + n);
        n++;
    }
    assert_int_equal(it.err, 0);
    assert_int_equal(n, o->nrecords);
done:
    kp_buf_free(&plain);
    kp_buf_free(&in);
    kp_buf_free(&out);
    kp_buf_free(&scratch);
    kp_buf_free(&body);
}

static void test_recompress_every_pair(void **state)
{
    ut_batch_opts_t o = idempotent_opts(25, NOW);
    for (int f = 0; f < NCODECS; f++)
        for (int t = 0; t < NCODECS; t++) check_pair(&o, codecs[f], codecs[t]);
    /* one record, no producer id, the timestamp-type bit: kept as well */
    ut_batch_opts_t one = ut_batch_defaults(1, NOW);
    one.attributes = KP_BATCH_ATTR_LOG_APPEND_TIME;
    for (int f = 0; f < NCODECS; f++)
        for (int t = 0; t < NCODECS; t++) check_pair(&one, codecs[f], codecs[t]);
    /* bigger than one xerial / lz4 block */
    ut_batch_opts_t big = idempotent_opts(400, NOW);
    for (int t = 1; t < NCODECS; t++) check_pair(&big, KP_CODEC_NONE, codecs[t]);
}

static void test_recompress_refuses_undecodable(void **state)
{
    ut_batch_opts_t o = idempotent_opts(10, NOW);
    kp_buf_t plain, in, out, scratch;
    kp_buf_init(&plain);
    kp_buf_init(&in);
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    size_t plen = ut_batch_build(&plain, &o);

    /* a damaged compressed body (CRC re-signed, so only decoding can notice) */
    for (int f = 1; f < NCODECS; f++) {
        encode_with(codecs[f], plain.data, plen, &in);
        for (size_t i = KP_BATCH_HEADER_BYTES; i < in.len; i++) in.data[i] ^= 0x5a;
        ut_batch_fix_crc(in.data, in.len);
        assert_int_equal(
            kp_batch_recompress(in.data, in.len, KP_CODEC_NONE, &scratch, &out, 1 << 20), -1);
    }
    /* a records count that disagrees with the records */
    kp_buf_reset(&in);
    kp_buf_append(&in, plain.data, plen);
    ut_st32(in.data + 57, 11);
    ut_batch_fix_crc(in.data, in.len);
    assert_int_equal(kp_batch_recompress(in.data, in.len, KP_CODEC_ZSTD, &scratch, &out, 1 << 20),
                     -1);
    /* bytes after the last record */
    kp_buf_reset(&in);
    kp_buf_append(&in, plain.data, plen);
    kp_buf_append(&in, "\x02\x00", 2);
    ut_st32(in.data + 8, (uint32_t)(in.len - KP_BATCH_LOG_OVERHEAD));
    ut_batch_fix_crc(in.data, in.len);
    assert_int_equal(kp_batch_recompress(in.data, in.len, KP_CODEC_LZ4, &scratch, &out, 1 << 20),
                     -1);
    /* inflating beyond the bound */
    encode_with(KP_CODEC_GZIP, plain.data, plen, &in);
    assert_int_equal(kp_batch_recompress(in.data, in.len, KP_CODEC_NONE, &scratch, &out, 100), -1);
    assert_int_equal(kp_batch_recompress(in.data, in.len, KP_CODEC_NONE, &scratch, &out, 1 << 20),
                     KP_RECOMPRESS_DONE);
    /* no codec 5, and a batch shorter than its header */
    assert_int_equal(kp_batch_recompress(in.data, in.len, 5, &scratch, &out, 1 << 20), -1);
    assert_int_equal(kp_batch_recompress(in.data, 30, KP_CODEC_ZSTD, &scratch, &out, 1 << 20), -1);
    kp_buf_free(&plain);
    kp_buf_free(&in);
    kp_buf_free(&out);
    kp_buf_free(&scratch);
}

/* Sets record i's timestamp delta to deltas[i] (one-byte varlongs only: |delta| < 64). */
static size_t build_with_deltas(kp_buf_t *out, const ut_batch_opts_t *o, const int *deltas)
{
    size_t len = ut_batch_build(out, o);
    uint8_t *p = out->data + KP_BATCH_HEADER_BYTES;
    for (int32_t i = 0; i < o->nrecords; i++) {
        kp_rd_t r;
        kp_rd_init(&r, p, (size_t)(out->data + len - p));
        int32_t rec_len = kp_rd_varint(&r);
        uint8_t *body = (uint8_t *)r.p;
        /* body[0] attributes, body[1] the timestamp delta (zig-zag, one byte) */
        body[1] = (uint8_t)(((uint32_t)deltas[i] << 1) ^ (uint32_t)(deltas[i] >> 31));
        p = body + rec_len;
    }
    ut_batch_fix_crc(out->data, len);
    return len;
}

static void test_timestamps_check(void **state)
{
    kp_buf_t b, z, scratch;
    kp_buf_init(&b);
    kp_buf_init(&z);
    kp_buf_init(&scratch);
    ut_batch_opts_t o = ut_batch_defaults(5, NOW);
    /* record timestamps NOW+0, NOW-30, NOW+20, NOW+1, NOW+2: the extremes are in the middle */
    const int deltas[] = {0, -30, 20, 1, 2};
    size_t len = build_with_deltas(&b, &o, deltas);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    for (int c = 0; c < NCODECS; c++) {
        encode_with(codecs[c], b.data, len, &z);
        const uint8_t *p = z.data;
        size_t n = z.len;
        /* inclusive bounds */
        assert_int_equal(kp_batch_timestamps_check(p, n, NOW - 30, NOW + 20, &scratch, 1 << 20), 0);
        assert_int_equal(kp_batch_timestamps_check(p, n, NOW - 29, NOW + 20, &scratch, 1 << 20), 1);
        assert_int_equal(kp_batch_timestamps_check(p, n, NOW - 30, NOW + 19, &scratch, 1 << 20), 1);
        assert_int_equal(kp_batch_timestamps_check(p, n, INT64_MIN, INT64_MAX, &scratch, 1 << 20),
                         0);
        /* all records in the future / in the past */
        assert_int_equal(kp_batch_timestamps_check(p, n, NOW + 100, INT64_MAX, &scratch, 1 << 20),
                         1);
        assert_int_equal(kp_batch_timestamps_check(p, n, INT64_MIN, NOW - 100, &scratch, 1 << 20),
                         1);
    }
    /* a LogAppendTime-flagged batch is judged by what the producer wrote in the records */
    kp_buf_reset(&z);
    kp_buf_append(&z, b.data, len);
    z.data[22] |= KP_BATCH_ATTR_LOG_APPEND_TIME;
    ut_batch_fix_crc(z.data, len);
    assert_int_equal(kp_batch_timestamps_check(z.data, len, NOW - 29, NOW + 20, &scratch, 1 << 20),
                     1);
    /* NO_TIMESTAMP records are not checked */
    ut_batch_opts_t none = ut_batch_defaults(1, -1);
    len = ut_batch_build(&b, &none);
    assert_int_equal(kp_batch_timestamps_check(b.data, len, NOW - 1, NOW + 1, &scratch, 1 << 20),
                     0);
    /* undecodable: damaged zstd body, or inflating beyond the bound */
    o = ut_batch_defaults(5, NOW);
    o.value_len = 200;
    len = ut_batch_build(&b, &o);
    encode_with(KP_CODEC_ZSTD, b.data, len, &z);
    assert_int_equal(kp_batch_timestamps_check(z.data, z.len, NOW - 1, NOW + 10, &scratch, 64), -1);
    for (size_t i = KP_BATCH_HEADER_BYTES; i < z.len; i++) z.data[i] ^= 0x33;
    ut_batch_fix_crc(z.data, z.len);
    assert_int_equal(
        kp_batch_timestamps_check(z.data, z.len, INT64_MIN, INT64_MAX, &scratch, 1 << 20), -1);
    kp_buf_free(&b);
    kp_buf_free(&z);
    kp_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recompress_every_pair),
        cmocka_unit_test(test_recompress_refuses_undecodable),
        cmocka_unit_test(test_timestamps_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
