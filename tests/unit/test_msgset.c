/*
 * test_msgset.c — legacy message sets (storage/msgset.c) against what Kafka 3.x does:
 *
 *   - up-conversion: magic 0 and 1, plain and in gzip/snappy/lz4 wrappers, become one v2
 *     batch with every record in order (keys, null keys, values, magic 1 timestamps, magic 0
 *     NO_TIMESTAMP), stored with the wrapper's codec or the topic's; a LogAppendTime wrapper
 *     gives its time to its inner messages; a magic 0 lz4 wrapper with the pre-0.10 frame
 *     header checksum (what kafka-python 0.9 writes) is accepted; refused: a bad CRC-32, a
 *     truncated message, mixed magic, a nested wrapper, zstd, magic 2 inside, an empty set;
 *   - down-conversion: plain batches become plain messages (absolute offsets, CRC-32,
 *     headers dropped), compressed ones one wrapper (codec kept, last offset outside,
 *     relative offsets inside in magic 1, absolute in magic 0, max timestamp outside),
 * LogAppendTime on every message, records below the fetch offset and control batches skipped, zstd
 *     refused; the byte budget: whole messages only, a cut first message without min_one
 *     (Fetch v0-2), the whole first one with it (Fetch v3).
 */
#include "unit.h"

#include "storage/compress.h"
#include "storage/msgset.h"
#include "storage/records.h"

#include <zlib.h>

#define NOW 1700000000000LL

/* Appends one legacy message (independent of the code under test). */
static void legacy_put(kp_buf_t *b, int magic, int64_t offset, uint8_t attributes, int64_t ts,
                       const char *key, const void *value, int32_t valuelen)
{
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i8(&w, (int8_t)magic);
    kp_wr_i8(&w, (int8_t)attributes);
    if (magic) kp_wr_i64(&w, ts);
    kp_wr_bytes(&w, 0, key ? kp_str_c(key) : KP_STR_NULL);
    kp_wr_bytes(&w, 0, (kp_str_t){value, valuelen});
    kp_buf_put_i64(b, offset);
    kp_buf_put_i32(b, (int32_t)w.buf.len + 4);
    kp_buf_put_i32(b, (int32_t)crc32(0, w.buf.data, (uInt)w.buf.len));
    kp_buf_append(b, w.buf.data, w.buf.len);
    kp_wr_free(&w);
}

typedef struct msg {
    int64_t offset, ts;
    int magic, attributes;
    int32_t keylen, valuelen;
    const uint8_t *key, *value;
} msg_t;

/* Parses up to max messages of a legacy set (CRC checked); returns how many. */
static int legacy_parse(const uint8_t *p, size_t len, msg_t *m, int max)
{
    size_t pos = 0;
    int n = 0;
    while (n < max && pos + 12 <= len) {
        uint32_t size = ut_ld32(p + pos + 8);
        if (pos + 12 + size > len) break;
        const uint8_t *q = p + pos + 12;
        assert_int_equal(ut_ld32(q), (uint32_t)crc32(0, q + 4, size - 4));
        m[n].offset = (int64_t)((uint64_t)ut_ld32(p + pos) << 32 | ut_ld32(p + pos + 4));
        m[n].magic = q[4];
        m[n].attributes = q[5];
        q += 6;
        m[n].ts = -1;
        if (m[n].magic == 1) {
            m[n].ts = (int64_t)((uint64_t)ut_ld32(q) << 32 | ut_ld32(q + 4));
            q += 8;
        }
        m[n].keylen = (int32_t)ut_ld32(q);
        m[n].key = q + 4;
        q += 4 + (m[n].keylen > 0 ? m[n].keylen : 0);
        m[n].valuelen = (int32_t)ut_ld32(q);
        m[n].value = q + 4;
        pos += 12 + size;
        n++;
    }
    return n;
}

/* A wrapper of `magic` and codec around the messages in inner. */
static void legacy_wrap(kp_buf_t *out, int magic, int codec, int64_t offset, int64_t ts,
                        const kp_buf_t *inner)
{
    kp_buf_t z;
    kp_buf_init(&z);
    assert_int_equal(kp_compress(codec, inner->data, inner->len, &z), 0);
    legacy_put(out, magic, offset, (uint8_t)codec, ts, NULL, z.data, (int32_t)z.len);
    kp_buf_free(&z);
}

/* The records of a v2 batch (decompressed into plain). */
static int batch_records(const kp_buf_t *b, kp_record_t *recs, int max, kp_buf_t *plain,
                         kp_batch_info_t *info)
{
    assert_int_equal(kp_batch_validate(b->data, b->len, info), KP_BATCH_OK);
    const uint8_t *body = b->data + KP_BATCH_HEADER_BYTES;
    size_t body_len = b->len - KP_BATCH_HEADER_BYTES;
    int codec = info->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec) {
        assert_int_equal(kp_decompress(codec, body, body_len, plain, 1 << 20), 0);
        body = plain->data;
        body_len = plain->len;
    }
    kp_records_iter_t it;
    kp_records_begin_raw(&it, info, body, body_len);
    int n = 0;
    while (n < max && kp_records_next(&it, &recs[n]) == 1) n++;
    return n;
}

static void test_up_plain_and_wrapped(void **state)
{
    (void)state;
    static const int codecs[] = {KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4};
    for (int magic = 0; magic <= 1; magic++) {
        for (int c = 0; c < 4; c++) {
            kp_buf_t set, inner, out, scratch, plain;
            kp_buf_init(&set);
            kp_buf_init(&inner);
            kp_buf_init(&out);
            kp_buf_init(&scratch);
            kp_buf_init(&plain);
            kp_buf_t *dst = codecs[c] ? &inner : &set;
            legacy_put(dst, magic, 0, 0, NOW + 5, "a", "one", 3);
            legacy_put(dst, magic, 1, 0, NOW + 7, NULL, "", 0);
            legacy_put(dst, magic, 2, 0, NOW + 6, "c", "three", 5);
            if (codecs[c]) legacy_wrap(&set, magic, codecs[c], 2, NOW + 7, &inner);
            assert_int_equal(kp_msgset_magic(set.data, set.len), magic);
            assert_int_equal(kp_msgset_to_batch(set.data, set.len, -1, &scratch, &out, 1 << 20),
                             KP_MSGSET_OK);
            kp_batch_info_t info;
            kp_record_t r[4];
            assert_int_equal(batch_records(&out, r, 4, &plain, &info), 3);
            assert_int_equal(info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, codecs[c]);
            assert_int_equal(info.records_count, 3);
            assert_int_equal(info.last_offset_delta, 2);
            assert_int_equal(info.producer_id, -1);
            assert_int_equal(info.base_timestamp, magic ? NOW + 5 : -1);
            assert_int_equal(info.max_timestamp, magic ? NOW + 7 : -1);
            assert_int_equal(r[0].keylen, 1);
            assert_memory_equal(r[0].value, "one", 3);
            assert_int_equal(r[1].keylen, -1);
            assert_int_equal(r[1].valuelen, 0);
            assert_memory_equal(r[2].value, "three", 5);
            for (int i = 0; i < 3; i++) {
                assert_int_equal(r[i].offset, i);
                assert_int_equal(r[i].nheaders, 0);
            }
            assert_int_equal(r[2].timestamp, magic ? NOW + 6 : -1);
            /* compression.type of the topic wins over the wrapper's */
            assert_int_equal(
                kp_msgset_to_batch(set.data, set.len, KP_CODEC_ZSTD, &scratch, &out, 1 << 20),
                KP_MSGSET_OK);
            kp_buf_reset(&plain);
            assert_int_equal(batch_records(&out, r, 4, &plain, &info), 3);
            assert_int_equal(info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, KP_CODEC_ZSTD);
            kp_buf_free(&set);
            kp_buf_free(&inner);
            kp_buf_free(&out);
            kp_buf_free(&scratch);
            kp_buf_free(&plain);
        }
    }
}

static void test_up_log_append_time_wrapper(void **state)
{
    (void)state;
    kp_buf_t set, inner, out, scratch, plain;
    kp_buf_init(&set);
    kp_buf_init(&inner);
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    kp_buf_init(&plain);
    legacy_put(&inner, 1, 0, 0, 5, "a", "x", 1);
    legacy_put(&inner, 1, 1, 0, 6, "b", "y", 1);
    kp_buf_t z;
    kp_buf_init(&z);
    assert_int_equal(kp_compress(KP_CODEC_GZIP, inner.data, inner.len, &z), 0);
    legacy_put(&set, 1, 1, KP_CODEC_GZIP | KP_MSGSET_ATTR_LOG_APPEND_TIME, NOW, NULL, z.data,
               (int32_t)z.len);
    assert_int_equal(kp_msgset_to_batch(set.data, set.len, -1, &scratch, &out, 1 << 20),
                     KP_MSGSET_OK);
    kp_batch_info_t info;
    kp_record_t r[2];
    assert_int_equal(batch_records(&out, r, 2, &plain, &info), 2);
    assert_int_equal(r[0].timestamp, NOW);
    assert_int_equal(r[1].timestamp, NOW);
    kp_buf_free(&z);
    kp_buf_free(&set);
    kp_buf_free(&inner);
    kp_buf_free(&out);
    kp_buf_free(&scratch);
    kp_buf_free(&plain);
}

/* A magic 0 lz4 wrapper as pre-0.10 clients write it (frame header checksum over the magic
 * bytes too): liblz4 refuses it as is, up-conversion accepts it. Made by down-conversion,
 * which writes the old checksum for magic 0. */
static void test_up_lz4_magic0_old_checksum(void **state)
{
    (void)state;
    kp_buf_t b, z, set, out, scratch, plain;
    kp_buf_init(&b);
    kp_buf_init(&z);
    kp_buf_init(&set);
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    kp_buf_init(&plain);
    ut_batch_opts_t o = ut_batch_defaults(4, NOW);
    ut_batch_build(&b, &o);
    assert_int_equal(kp_batch_recompress(b.data, b.len, KP_CODEC_LZ4, &scratch, &z, 1 << 20),
                     KP_RECOMPRESS_DONE);
    assert_int_equal(
        kp_msgset_from_batches(z.data, z.len, 0, 0, 1 << 20, 0, &scratch, &set, 1 << 20),
        KP_MSGSET_OK);
    msg_t m[2];
    assert_int_equal(legacy_parse(set.data, set.len, m, 2), 1);
    assert_int_equal(m[0].attributes, KP_CODEC_LZ4);
    kp_buf_t raw;
    kp_buf_init(&raw);
    assert_int_equal(kp_decompress(KP_CODEC_LZ4, m[0].value, (size_t)m[0].valuelen, &raw, 1 << 20),
                     -1);
    kp_buf_free(&raw);
    assert_int_equal(kp_msgset_to_batch(set.data, set.len, -1, &scratch, &out, 1 << 20),
                     KP_MSGSET_OK);
    kp_batch_info_t info;
    kp_record_t r[5];
    assert_int_equal(batch_records(&out, r, 5, &plain, &info), 4);
    assert_int_equal(info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, KP_CODEC_LZ4);
    assert_memory_equal(r[3].key, "key-3", 5);
    kp_buf_free(&b);
    kp_buf_free(&z);
    kp_buf_free(&set);
    kp_buf_free(&out);
    kp_buf_free(&scratch);
    kp_buf_free(&plain);
}

static kp_msgset_status_t up(const kp_buf_t *set)
{
    kp_buf_t out, scratch;
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    kp_msgset_status_t st = kp_msgset_to_batch(set->data, set->len, -1, &scratch, &out, 1 << 20);
    kp_buf_free(&out);
    kp_buf_free(&scratch);
    return st;
}

static void test_up_refusals(void **state)
{
    (void)state;
    kp_buf_t set, inner;
    kp_buf_init(&set);
    kp_buf_init(&inner);
    assert_int_equal(up(&set), KP_MSGSET_INVALID); /* empty */
    legacy_put(&set, 1, 0, 0, NOW, "k", "v", 1);
    set.data[set.len - 1] ^= 1; /* CRC-32 no longer matches */
    assert_int_equal(up(&set), KP_MSGSET_CORRUPT);
    set.data[set.len - 1] ^= 1;
    assert_int_equal(up(&set), KP_MSGSET_OK);
    set.len--; /* truncated */
    assert_int_equal(up(&set), KP_MSGSET_CORRUPT);
    set.len++;
    legacy_put(&set, 0, 1, 0, 0, "k", "v", 1); /* mixed magic */
    assert_int_equal(up(&set), KP_MSGSET_INVALID);
    kp_buf_reset(&set);
    legacy_put(&inner, 1, 0, 0, NOW, "k", "v", 1);
    legacy_wrap(&set, 1, KP_CODEC_ZSTD, 0, NOW, &inner); /* zstd: not in v0/v1 */
    assert_int_equal(up(&set), KP_MSGSET_BAD_CODEC);
    kp_buf_t nested;
    kp_buf_init(&nested);
    legacy_wrap(&nested, 1, KP_CODEC_GZIP, 0, NOW, &inner);
    kp_buf_reset(&set);
    legacy_wrap(&set, 1, KP_CODEC_GZIP, 0, NOW, &nested); /* a wrapper inside a wrapper */
    assert_int_equal(up(&set), KP_MSGSET_INVALID);
    kp_buf_reset(&set);
    legacy_put(&set, 2, 0, 0, NOW, "k", "v", 1); /* magic 2 is not a message */
    assert_int_equal(up(&set), KP_MSGSET_INVALID);
    kp_buf_reset(&set);
    legacy_put(&set, 1, 0, KP_CODEC_GZIP, NOW, NULL, "garbage", 7); /* undecodable payload */
    assert_int_equal(up(&set), KP_MSGSET_CORRUPT);
    kp_buf_free(&set);
    kp_buf_free(&inner);
    kp_buf_free(&nested);
}

/* Two batches (offsets 10..12 plain with headers, 13..15 in codec) down to magic. */
static void down(int codec, int magic, int64_t first, int64_t budget, int min_one,
                 int16_t extra_attrs, kp_buf_t *out, kp_msgset_status_t want)
{
    kp_buf_t a, b, z, scratch, log;
    kp_buf_init(&a);
    kp_buf_init(&b);
    kp_buf_init(&z);
    kp_buf_init(&scratch);
    kp_buf_init(&log);
    ut_batch_opts_t o = ut_batch_defaults(3, NOW);
    o.base_offset = 10;
    o.attributes = extra_attrs;
    ut_batch_build(&a, &o);
    o.base_offset = 13;
    o.base_timestamp = NOW + 100;
    ut_batch_build(&b, &o);
    if (codec)
        assert_int_equal(kp_batch_recompress(b.data, b.len, codec, &scratch, &z, 1 << 20),
                         KP_RECOMPRESS_DONE);
    else
        kp_buf_append(&z, b.data, b.len);
    kp_buf_append(&log, a.data, a.len);
    kp_buf_append(&log, z.data, z.len);
    kp_buf_append(&log, z.data, 30); /* a partial batch at the end of the read */
    assert_int_equal(kp_msgset_from_batches(log.data, log.len, magic, first, budget, min_one,
                                            &scratch, out, 1 << 20),
                     want);
    kp_buf_free(&a);
    kp_buf_free(&b);
    kp_buf_free(&z);
    kp_buf_free(&scratch);
    kp_buf_free(&log);
}

static void test_down_plain_and_wrapped(void **state)
{
    (void)state;
    for (int magic = 0; magic <= 1; magic++) {
        kp_buf_t out, inner_raw;
        kp_buf_init(&out);
        kp_buf_init(&inner_raw);
        down(KP_CODEC_GZIP, magic, 11, INT64_MAX, 0, 0, &out, KP_MSGSET_OK);
        msg_t m[8];
        assert_int_equal(legacy_parse(out.data, out.len, m, 8), 3); /* 11, 12, wrapper */
        for (int i = 0; i < 2; i++) {
            assert_int_equal(m[i].offset, 11 + i);
            assert_int_equal(m[i].magic, magic);
            assert_int_equal(m[i].attributes, 0);
            assert_int_equal(m[i].ts, magic ? NOW + 1 + i : -1);
            assert_int_equal(m[i].keylen, 5);
            assert_int_equal(m[i].valuelen, 10); /* the header is gone, the value intact */
        }
        assert_int_equal(m[2].offset, 15); /* the wrapper: its last record's offset */
        assert_int_equal(m[2].attributes, KP_CODEC_GZIP);
        assert_int_equal(m[2].ts, magic ? NOW + 102 : -1);
        assert_int_equal(
            kp_decompress(KP_CODEC_GZIP, m[2].value, (size_t)m[2].valuelen, &inner_raw, 1 << 20),
            0);
        msg_t in[4];
        assert_int_equal(legacy_parse(inner_raw.data, inner_raw.len, in, 4), 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(in[i].offset, magic ? i : 13 + i); /* relative in magic 1 */
            assert_int_equal(in[i].ts, magic ? NOW + 100 + i : -1);
            assert_int_equal(in[i].attributes, 0);
        }
        kp_buf_free(&out);
        kp_buf_free(&inner_raw);
    }
}

static void test_down_skips_and_refusals(void **state)
{
    (void)state;
    kp_buf_t out;
    kp_buf_init(&out);
    msg_t m[8];
    /* LogAppendTime: magic 1 messages say so and carry the batch's max timestamp */
    down(KP_CODEC_NONE, 1, 0, INT64_MAX, 0, KP_BATCH_ATTR_LOG_APPEND_TIME, &out, KP_MSGSET_OK);
    assert_int_equal(legacy_parse(out.data, out.len, m, 8), 6);
    assert_int_equal(m[0].attributes, KP_MSGSET_ATTR_LOG_APPEND_TIME);
    assert_int_equal(m[0].ts, NOW + 2);
    assert_int_equal(m[4].ts, NOW + 102);
    /* control batches are skipped */
    kp_buf_reset(&out);
    down(KP_CODEC_NONE, 1, 0, INT64_MAX, 0, KP_BATCH_ATTR_CONTROL, &out, KP_MSGSET_OK);
    assert_int_equal(out.len, 0);
    /* zstd cannot be sent in v0/v1; what precedes it is handed out first */
    kp_buf_reset(&out);
    down(KP_CODEC_ZSTD, 1, 13, INT64_MAX, 0, 0, &out, KP_MSGSET_BAD_CODEC);
    assert_int_equal(out.len, 0);
    kp_buf_reset(&out);
    down(KP_CODEC_ZSTD, 1, 10, INT64_MAX, 0, 0, &out, KP_MSGSET_OK);
    assert_int_equal(legacy_parse(out.data, out.len, m, 8), 3);
    kp_buf_free(&out);
}

static void test_down_budget(void **state)
{
    (void)state;
    kp_buf_t all, out;
    kp_buf_init(&all);
    kp_buf_init(&out);
    down(KP_CODEC_NONE, 1, 0, INT64_MAX, 0, 0, &all, KP_MSGSET_OK);
    size_t one = all.len / 6;
    assert_int_equal(all.len, one * 6); /* six messages of the same size */
    /* whole messages only */
    down(KP_CODEC_NONE, 1, 0, (int64_t)(2 * one + one / 2), 0, 0, &out, KP_MSGSET_OK);
    assert_int_equal(out.len, 2 * one);
    /* nothing whole fits: Fetch v0-2 get the first message cut at the limit */
    kp_buf_reset(&out);
    down(KP_CODEC_NONE, 1, 0, 20, 0, 0, &out, KP_MSGSET_OK);
    assert_int_equal(out.len, 20);
    assert_memory_equal(out.data, all.data, 20);
    /* Fetch v3 (min_one): the first message whole */
    kp_buf_reset(&out);
    down(KP_CODEC_NONE, 1, 0, 20, 1, 0, &out, KP_MSGSET_OK);
    assert_int_equal(out.len, one);
    /* a wrapper is one unit: it fits whole or not at all */
    kp_buf_reset(&out);
    down(KP_CODEC_GZIP, 1, 0, (int64_t)(3 * one + 10), 0, 0, &out, KP_MSGSET_OK);
    assert_int_equal(out.len, 3 * one);
    kp_buf_free(&all);
    kp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_plain_and_wrapped),
        cmocka_unit_test(test_up_log_append_time_wrapper),
        cmocka_unit_test(test_up_lz4_magic0_old_checksum),
        cmocka_unit_test(test_up_refusals),
        cmocka_unit_test(test_down_plain_and_wrapped),
        cmocka_unit_test(test_down_skips_and_refusals),
        cmocka_unit_test(test_down_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
