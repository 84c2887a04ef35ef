/*
 * test_compaction.c — the storage pieces behind retention and compaction.
 *
 *   - storage/compress: round trips for the four codecs at block-boundary sizes, each checked
 *     against the codec library used independently (snappy raw and Java's xerial framing,
 *     lz4 frames with and without checksums, gzip and zlib streams, zstd with and without a
 *     content size); truncated input is refused; a compression bomb is refused once it
 *     passes max_out, with the buffer it grew bounded by a small multiple of max_out; exactly
 *     max_out bytes are accepted;
 *   - storage/offset_map: latest offset per key, the 90% fill limit, every key byte counts in
 *     the hash;
 *   - kp_batch_filter on uncompressed and compressed batches: the survivors keep their bytes
 *     (offsets, timestamps, keys, values, headers), the header keeps base offset, last offset
 *     delta, timestamps and producer fields; LogAppendTime batches show records the batch's
 *     append time, as Kafka's record API does;
 *   - kp_cleaner_clean on a log in a temp dir: the latest record of each key survives at its
 *     own offset, tombstones go only after delete.retention.ms, the active segment is
 *     untouched, records above the high watermark or younger than min.compaction.lag.ms stay,
 *     a small offset map takes several passes, the checkpoint file, a reopen after cleaning
 *     and a crash-left *.cleaned.tmp;
 *   - storage/retention: by time and by size only a prefix and only below the high
 *     watermark; everything expired (the active segment rolls); DeleteRecords moves the log
 *     start offset persistently.
 */
#include "unit.h"

#include "core/clock.h"
#include "core/logging.h"
#include "storage/cleaner.h"
#include "storage/compress.h"
#include "storage/log.h"
#include "storage/offset_map.h"
#include "storage/records.h"
#include "storage/retention.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <pthread.h>
#include <snappy-c.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#define NOW 1700000000000LL

static char dir[PATH_MAX];

static int setup(void **state)
{
    ut_tmpdir_make(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    ut_tmpdir_remove(dir);
    return 0;
}

/* ------------------------------------------------------------------ data */

/* Half random, half repetitive: compresses, but not to nothing. */
static void fill_data(uint8_t *p, size_t n, uint64_t seed)
{
    ut_rand_t r;
    ut_rand_seed(&r, seed);
    static const char text[] =
        "kpool compaction test: the quick brown fox jumps over the lazy dog ";
    for (size_t i = 0; i < n; i++)
        p[i] = (i / 64) % 2 ? (uint8_t)ut_rand_u64(&r) : (uint8_t)text[i % (sizeof(text) - 1)];
}

static const size_t test_sizes[] = {0,     1,     17,    4095,  32767, 32768,
                                    32769, 65535, 65536, 65537, 300001};
#define NSIZES (sizeof(test_sizes) / sizeof(test_sizes[0]))
static const int codecs[] = {KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4,
                             KP_CODEC_ZSTD};

/* ------------------------------------------------------------------ independent encoders */

static void ref_gzip(const uint8_t *in, size_t n, kp_buf_t *out, int window_bits)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t bound = deflateBound(&zs, (uLong)n) + 64;
    uint8_t *p = kp_buf_extend(out, bound);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = p;
    zs.avail_out = (uInt)bound;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out->len -= zs.avail_out;
    deflateEnd(&zs);
}

static void ref_snappy_raw(const uint8_t *in, size_t n, kp_buf_t *out)
{
    size_t max = snappy_max_compressed_length(n);
    uint8_t *p = kp_buf_extend(out, max);
    size_t clen = max;
    assert_int_equal(snappy_compress((const char *)in, n, (char *)p, &clen), SNAPPY_OK);
    out->len -= max - clen;
}

/* Java's xerial framing with blocks of `block` bytes. */
static void ref_snappy_xerial(const uint8_t *in, size_t n, size_t block, kp_buf_t *out)
{
    static const uint8_t head[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    kp_buf_append(out, head, 16);
    for (size_t at = 0; at < n; at += block) {
        size_t m = n - at < block ? n - at : block;
        size_t len_at = out->len;
        kp_buf_extend(out, 4);
        ref_snappy_raw(in + at, m, out);
        ut_st32(out->data + len_at, (uint32_t)(out->len - len_at - 4));
    }
}

static void ref_lz4(const uint8_t *in, size_t n, kp_buf_t *out, int checksums)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = checksums ? LZ4F_max256KB : LZ4F_max64KB;
    if (checksums) {
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
        prefs.frameInfo.contentSize = n;
    }
    size_t bound = LZ4F_compressFrameBound(n, &prefs);
    uint8_t *p = kp_buf_extend(out, bound);
    size_t c = LZ4F_compressFrame(p, bound, in, n, &prefs);
    assert_false(LZ4F_isError(c));
    out->len -= bound - c;
}

static void ref_zstd(const uint8_t *in, size_t n, kp_buf_t *out, int streaming)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *p = kp_buf_extend(out, bound);
    size_t c;
    if (!streaming) {
        c = ZSTD_compress(p, bound, in, n, 1);
    } else { /* no content size in the frame header, with a checksum */
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
        ZSTD_outBuffer ob = {p, bound, 0};
        ZSTD_inBuffer ib = {in, n, 0};
        size_t rem;
        do {
            rem = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
            assert_false(ZSTD_isError(rem));
        } while (rem != 0);
        c = ob.pos;
        ZSTD_freeCCtx(cc);
    }
    assert_false(ZSTD_isError(c));
    out->len -= bound - c;
}

/* ------------------------------------------------------------------ independent decoders */

static void ref_decode(int codec, const uint8_t *in, size_t n, kp_buf_t *out)
{
    switch (codec) {
    case KP_CODEC_NONE:
        kp_buf_append(out, in, n);
        return;
    case KP_CODEC_GZIP: {
        assert_true(n >= 2 && in[0] == 0x1f && in[1] == 0x8b); /* gzip, as Kafka writes it */
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)n;
        int rc;
        do {
            kp_buf_reserve(out, 65536);
            zs.next_out = out->data + out->len;
            zs.avail_out = (uInt)(out->cap - out->len);
            rc = inflate(&zs, Z_NO_FLUSH);
            out->len = out->cap - zs.avail_out;
            assert_true(rc == Z_OK || rc == Z_STREAM_END);
        } while (rc != Z_STREAM_END);
        inflateEnd(&zs);
        return;
    }
    case KP_CODEC_SNAPPY: { /* xerial framing, which the Java client requires */
        assert_true(n >= 16 && memcmp(in, "\x82SNAPPY\0", 8) == 0);
        size_t at = 16;
        while (at < n) {
            assert_true(n - at >= 4);
            uint32_t blen = ut_ld32(in + at);
            at += 4;
            assert_true(blen <= n - at);
            size_t ulen;
            assert_int_equal(snappy_uncompressed_length((const char *)in + at, blen, &ulen),
                             SNAPPY_OK);
            uint8_t *p = kp_buf_extend(out, ulen);
            assert_int_equal(snappy_uncompress((const char *)in + at, blen, (char *)p, &ulen),
                             SNAPPY_OK);
            at += blen;
        }
        return;
    }
    case KP_CODEC_LZ4: {
        assert_true(n >= 4 && ut_ld32(in) == 0x04224D18u); /* frame magic 0x184D2204, LE */
        LZ4F_dctx *d;
        assert_false(LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)));
        size_t at = 0, hint = 1;
        while (hint) {
            kp_buf_reserve(out, 65536);
            size_t dst = out->cap - out->len, src = n - at;
            hint = LZ4F_decompress(d, out->data + out->len, &dst, in + at, &src, NULL);
            assert_false(LZ4F_isError(hint));
            out->len += dst;
            at += src;
            assert_true(at < n || dst > 0 || hint == 0);
        }
        LZ4F_freeDecompressionContext(d);
        return;
    }
    case KP_CODEC_ZSTD: {
        assert_true(n >= 4 && ut_ld32(in) == 0x28B52FFDu); /* magic 0xFD2FB528, LE */
        ZSTD_DStream *ds = ZSTD_createDStream();
        ZSTD_initDStream(ds);
        ZSTD_inBuffer ib = {in, n, 0};
        size_t ret = 1;
        while (ret) {
            kp_buf_reserve(out, 65536);
            ZSTD_outBuffer ob = {out->data + out->len, out->cap - out->len, 0};
            ret = ZSTD_decompressStream(ds, &ob, &ib);
            assert_false(ZSTD_isError(ret));
            out->len += ob.pos;
            assert_true(ib.pos < ib.size || ob.pos > 0 || ret == 0);
        }
        ZSTD_freeDStream(ds);
        return;
    }
    }
    fail();
}

/* ------------------------------------------------------------------ compress.c */

/* kp_compress output decodes with the codec library itself and with kp_decompress; the
 * decompressed bytes are appended after what the buffer already holds. */
static void test_codec_round_trips(void **state)
{
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        for (size_t s = 0; s < NSIZES; s++) {
            size_t n = test_sizes[s];
            uint8_t *data = malloc(n + 1);
            fill_data(data, n, 7 + s);
            kp_buf_t z, back, ref;
            kp_buf_init(&z);
            kp_buf_init(&back);
            kp_buf_init(&ref);
            kp_buf_append(&z, "pfx", 3);
            assert_int_equal(kp_compress(codecs[c], data, n, &z), 0);
            assert_memory_equal(z.data, "pfx", 3);
            ref_decode(codecs[c], z.data + 3, z.len - 3, &ref);
            assert_int_equal(ref.len, n);
            if (n) assert_memory_equal(ref.data, data, n);
            kp_buf_append(&back, "xy", 2);
            int rc = kp_decompress(codecs[c], z.data + 3, z.len - 3, &back, n);
            if (rc != 0)
                print_error("codec %d, %zu bytes: refused with max_out = size\n", codecs[c], n);
            assert_int_equal(rc, 0);
            assert_int_equal(back.len, n + 2);
            assert_memory_equal(back.data, "xy", 2);
            if (n) assert_memory_equal(back.data + 2, data, n);
            /* one byte less room than the data needs: refused */
            if (n > 0) {
                back.len = 0;
                assert_int_equal(kp_decompress(codecs[c], z.data + 3, z.len - 3, &back, n - 1), -1);
            }
            kp_buf_free(&z);
            kp_buf_free(&back);
            kp_buf_free(&ref);
            free(data);
        }
    }
}

static void expect_decodes(int codec, const kp_buf_t *z, const uint8_t *data, size_t n)
{
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kp_decompress(codec, z->data, z->len, &out, n + 16), 0);
    assert_int_equal(out.len, n);
    if (n) assert_memory_equal(out.data, data, n);
    /* exactly n bytes of room is enough */
    out.len = 0;
    int rc = kp_decompress(codec, z->data, z->len, &out, n);
    if (rc != 0) print_error("codec %d, %zu bytes: refused with max_out = size\n", codec, n);
    assert_int_equal(rc, 0);
    assert_int_equal(out.len, n);
    kp_buf_free(&out);
}

/* What other producers write: raw snappy (librdkafka) and xerial with any block size (Java),
 * lz4 frames with checksums and a content size, gzip and zlib streams, zstd without a
 * content size. */
static void test_decode_foreign_encodings(void **state)
{
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = test_sizes[s];
        uint8_t *data = malloc(n + 1);
        fill_data(data, n, 100 + s);
        kp_buf_t z;
        kp_buf_init(&z);
        ref_gzip(data, n, &z, 15 + 16);
        expect_decodes(KP_CODEC_GZIP, &z, data, n);
        z.len = 0;
        ref_gzip(data, n, &z, 15); /* zlib header: accepted too */
        expect_decodes(KP_CODEC_GZIP, &z, data, n);
        if (n >= 1) { /* raw snappy needs at least the length varint; n = 0 is one byte */
            z.len = 0;
            ref_snappy_raw(data, n, &z);
            expect_decodes(KP_CODEC_SNAPPY, &z, data, n);
        }
        static const size_t blocks[] = {1000, 32768, 65536};
        for (size_t b = 0; b < 3; b++) {
            z.len = 0;
            ref_snappy_xerial(data, n, blocks[b], &z);
            expect_decodes(KP_CODEC_SNAPPY, &z, data, n);
        }
        for (int ck = 0; ck < 2; ck++) {
            z.len = 0;
            ref_lz4(data, n, &z, ck);
            expect_decodes(KP_CODEC_LZ4, &z, data, n);
            z.len = 0;
            ref_zstd(data, n, &z, ck);
            expect_decodes(KP_CODEC_ZSTD, &z, data, n);
        }
        kp_buf_free(&z);
        free(data);
    }
}

/* Every proper prefix of a compressed stream is refused (xerial: cuts inside a block; a cut
 * on a block boundary is a valid shorter stream, the format has no total length). */
static void test_truncated_input_refused(void **state)
{
    enum { N = 70000 };
    uint8_t *data = malloc(N);
    fill_data(data, N, 3);
    for (int variant = 0; variant < 7; variant++) {
        kp_buf_t z;
        kp_buf_init(&z);
        int codec;
        switch (variant) {
        case 0:
            codec = KP_CODEC_GZIP;
            ref_gzip(data, N, &z, 31);
            break;
        case 1:
            codec = KP_CODEC_SNAPPY;
            ref_snappy_raw(data, N, &z);
            break;
        case 2:
            codec = KP_CODEC_SNAPPY;
            ref_snappy_xerial(data, N, 32768, &z);
            break;
        case 3:
            codec = KP_CODEC_LZ4;
            ref_lz4(data, N, &z, 0);
            break;
        case 4:
            codec = KP_CODEC_LZ4;
            ref_lz4(data, N, &z, 1);
            break;
        default:
            codec = KP_CODEC_ZSTD;
            ref_zstd(data, N, &z, variant & 1);
            break;
        }
        /* xerial block boundaries */
        size_t bounds[8];
        int nb = 0;
        if (variant == 2)
            for (size_t at = 16; at < z.len && nb < 8; at += 4 + ut_ld32(z.data + at))
                bounds[nb++] = at;
        size_t step = z.len > 4000 ? 7 : 1;
        for (size_t cut = 0; cut < z.len; cut += (cut < 300 || z.len - cut < 300) ? 1 : step) {
            int boundary = 0;
            for (int i = 0; i < nb; i++) boundary |= bounds[i] == cut;
            if (boundary) continue;
            kp_buf_t out;
            kp_buf_init(&out);
            int rc = kp_decompress(codec, z.data, cut, &out, 4 * N);
            if (rc != -1)
                print_error("variant %d: prefix of %zu of %zu bytes accepted\n", variant, cut,
                            z.len);
            assert_int_equal(rc, -1);
            kp_buf_free(&out);
        }
        kp_buf_free(&z);
    }
    free(data);
}

/* A bomb: 64 MiB of zeros inflates from a few KiB. Decompression stops once past max_out and
 * the buffer it grew stays a small multiple of max_out. */
static void test_bomb_bounded(void **state)
{
    enum { BIG = 64 << 20, MAX = 1 << 20 };
    uint8_t *zeros = calloc(1, BIG);
    for (size_t c = 1; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        kp_buf_t z, out;
        kp_buf_init(&z);
        kp_buf_init(&out);
        assert_int_equal(kp_compress(codecs[c], zeros, BIG, &z), 0);
        assert_true(z.len < BIG / 10);
        assert_int_equal(kp_decompress(codecs[c], z.data, z.len, &out, MAX), -1);
        if (out.cap > 4 * (size_t)MAX + (256 << 10))
            print_error("codec %d grew a %zu-byte buffer for max_out %d\n", codecs[c], out.cap,
                        MAX);
        assert_true(out.cap <= 4 * (size_t)MAX + (256 << 10));
        kp_buf_free(&z);
        kp_buf_free(&out);
    }
    /* raw snappy that claims 1 GiB: refused before anything is allocated */
    uint8_t forged[8] = {0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x00, 0x00};
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kp_decompress(KP_CODEC_SNAPPY, forged, sizeof(forged), &out, MAX), -1);
    assert_true(out.cap < (1 << 20));
    /* xerial: many blocks each under the limit, together over it */
    kp_buf_t z;
    kp_buf_init(&z);
    ref_snappy_xerial(zeros, 4 * MAX, 65536, &z);
    assert_int_equal(kp_decompress(KP_CODEC_SNAPPY, z.data, z.len, &out, MAX), -1);
    assert_true(out.cap <= 4 * (size_t)MAX);
    /* uncompressed "codec": the input itself is bounded */
    out.len = 0;
    assert_int_equal(kp_decompress(KP_CODEC_NONE, zeros, MAX + 1, &out, MAX), -1);
    assert_int_equal(kp_decompress(99, zeros, 10, &out, MAX), -1);
    kp_buf_free(&z);
    kp_buf_free(&out);
    free(zeros);
}

/* Garbage never crashes and never yields more than max_out. */
static void test_garbage_input(void **state)
{
    ut_rand_t r;
    ut_rand_seed(&r, 99);
    uint8_t buf[512];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)ut_rand_below(&r, sizeof(buf));
        ut_rand_fill(&r, buf, n);
        if (i % 4 == 1 && n >= 16) memcpy(buf, "\x82SNAPPY\0\0\0\0\1\0\0\0\1", 16);
        if (i % 4 == 2 && n >= 4) memcpy(buf, "\x04\x22\x4d\x18", 4);
        if (i % 4 == 3 && n >= 4) memcpy(buf, "\x28\xb5\x2f\xfd", 4);
        for (size_t c = 1; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
            kp_buf_t out;
            kp_buf_init(&out);
            if (kp_decompress(codecs[c], buf, n, &out, 4096) == 0) assert_true(out.len <= 4096);
            kp_buf_free(&out);
        }
    }
}

/* ------------------------------------------------------------------ offset_map.c */

static kp_key_hash_t hkey(const char *prefix, int i)
{
    char k[64];
    int n = snprintf(k, sizeof(k), "%s%d", prefix, i);
    return kp_key_hash(k, (size_t)n);
}

static void test_offset_map(void **state)
{
    kp_offset_map_t m;
    kp_offset_map_init(&m, 1); /* the minimum: 1024 slots, 90% of them usable */
    assert_int_equal(m.slots, 1024);
    assert_true(m.limit >= 900 && m.limit <= 922);
    const int lim = (int)m.limit;
    assert_int_equal(kp_offset_map_get(&m, hkey("k", 1)), -1);
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 1), 10), 0);
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 1), 5), 0); /* older: ignored */
    assert_int_equal(kp_offset_map_get(&m, hkey("k", 1)), 10);
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 1), 12), 0);
    assert_int_equal(kp_offset_map_get(&m, hkey("k", 1)), 12);
    assert_int_equal(m.used, 1);
    for (int i = 2; i <= lim; i++)
        assert_int_equal(kp_offset_map_put(&m, hkey("k", i), 1000 + i), 0);
    assert_int_equal(m.used, lim);
    /* full: a new key is refused, a known one still updates */
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 5000), 1), -1);
    assert_int_equal(kp_offset_map_get(&m, hkey("k", 5000)), -1);
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 700), 99999), 0);
    for (int i = 2; i <= lim; i++)
        assert_int_equal(kp_offset_map_get(&m, hkey("k", i)), i == 700 ? 99999 : 1000 + i);
    kp_offset_map_clear(&m);
    assert_int_equal(m.used, 0);
    assert_int_equal(kp_offset_map_get(&m, hkey("k", 700)), -1);
    assert_int_equal(kp_offset_map_put(&m, hkey("k", 5000), 1), 0);
    kp_offset_map_free(&m);

    /* a big map: 200k keys, every one found with its own offset */
    kp_offset_map_init(&m, 8 << 20);
    for (int i = 0; i < 200000; i++) assert_int_equal(kp_offset_map_put(&m, hkey("key-", i), i), 0);
    for (int i = 0; i < 200000; i++) assert_int_equal(kp_offset_map_get(&m, hkey("key-", i)), i);
    assert_int_equal(m.used, 200000);
    kp_offset_map_free(&m);
}

/* Every byte of a key contributes to its hash (each MurmurHash3 tail length too), the
 * length counts ("" vs "\0"), and no key hashes to the empty-slot marker. */
static void test_key_hash(void **state)
{
    uint8_t key[48];
    for (size_t len = 0; len <= sizeof(key); len++) {
        memset(key, 'x', sizeof(key));
        kp_key_hash_t base = kp_key_hash(key, len);
        assert_false(base.h1 == 0 && base.h2 == 0);
        kp_key_hash_t again = kp_key_hash(key, len);
        assert_true(again.h1 == base.h1 && again.h2 == base.h2);
        for (size_t i = 0; i < len; i++) {
            key[i] ^= 1;
            kp_key_hash_t h = kp_key_hash(key, len);
            key[i] ^= 1;
            if (h.h1 == base.h1 && h.h2 == base.h2)
                print_error("byte %zu of a %zu-byte key does not change its hash\n", i, len);
            assert_false(h.h1 == base.h1 && h.h2 == base.h2);
        }
        if (len < sizeof(key)) { /* a longer key of the same bytes differs */
            kp_key_hash_t longer = kp_key_hash(key, len + 1);
            assert_false(longer.h1 == base.h1 && longer.h2 == base.h2);
        }
    }
    kp_key_hash_t e = kp_key_hash("", 0), z = kp_key_hash("\0", 1);
    assert_false(e.h1 == z.h1 && e.h2 == z.h2);
}

/* ------------------------------------------------------------------ record batches */

/* A record of the test log: key index (-1: null key), sequence number (value "v<seq>" and
 * header "h" = "<seq>"; tomb: null value), timestamp, and the offset it got. */
typedef struct xrec {
    int key;
    int seq;
    int tomb;
    int64_t ts;
    int64_t offset;
} xrec_t;

/* Appends the body-with-length of one record, as a producer encodes it. */
static void enc_record(kp_wr_t *w, const xrec_t *r, int32_t delta, int64_t base_ts)
{
    kp_wr_t b;
    kp_wr_init(&b);
    kp_wr_i8(&b, 0);
    kp_wr_varlong(&b, r->ts - base_ts);
    kp_wr_varint(&b, delta);
    char k[32], v[48], h[16];
    if (r->key < 0) {
        kp_wr_varint(&b, -1);
    } else {
        int kl = snprintf(k, sizeof(k), "key-%d", r->key);
        kp_wr_varint(&b, kl);
        kp_wr_raw(&b, k, (size_t)kl);
    }
    if (r->tomb) {
        kp_wr_varint(&b, -1);
    } else {
        int vl = snprintf(v, sizeof(v), "value-%d-of-key-%d", r->seq, r->key);
        kp_wr_varint(&b, vl);
        kp_wr_raw(&b, v, (size_t)vl);
    }
    int hl = snprintf(h, sizeof(h), "%d", r->seq);
    kp_wr_varint(&b, 1);
    kp_wr_varint(&b, 1);
    kp_wr_raw(&b, "h", 1);
    kp_wr_varint(&b, hl);
    kp_wr_raw(&b, h, (size_t)hl);
    kp_wr_varint(w, (int32_t)b.buf.len);
    kp_wr_raw(w, b.buf.data, b.buf.len);
    kp_wr_free(&b);
}

typedef struct batch_hdr {
    int64_t base_offset;
    int16_t attributes; /* codec in bits 0-2 */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int64_t max_ts; /* -1: from the records */
} batch_hdr_t;

static batch_hdr_t hdr_plain(int codec)
{
    return (batch_hdr_t){0, (int16_t)codec, -1, -1, -1, -1};
}

/* Builds a batch of recs[0..n) into out (replaced). Offset deltas 0..n-1. */
static size_t build_batch(kp_buf_t *out, const xrec_t *recs, int n, const batch_hdr_t *h)
{
    int64_t base_ts = recs[0].ts, max_ts = recs[0].ts;
    for (int i = 0; i < n; i++)
        if (recs[i].ts > max_ts) max_ts = recs[i].ts;
    if (h->max_ts >= 0) max_ts = h->max_ts;
    kp_wr_t raw;
    kp_wr_init(&raw);
    for (int i = 0; i < n; i++) enc_record(&raw, &recs[i], i, base_ts);
    kp_buf_t body;
    kp_buf_init(&body);
    assert_int_equal(kp_compress(h->attributes & 7, raw.buf.data, raw.buf.len, &body), 0);
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i64(&w, h->base_offset);
    kp_wr_i32(&w, 0);
    kp_wr_i32(&w, -1);
    kp_wr_i8(&w, 2);
    kp_wr_u32(&w, 0);
    kp_wr_i16(&w, h->attributes);
    kp_wr_i32(&w, n - 1);
    kp_wr_i64(&w, base_ts);
    kp_wr_i64(&w, max_ts);
    kp_wr_i64(&w, h->producer_id);
    kp_wr_i16(&w, h->producer_epoch);
    kp_wr_i32(&w, h->base_sequence);
    kp_wr_i32(&w, n);
    kp_wr_raw(&w, body.data, body.len);
    size_t len = w.buf.len;
    kp_wr_patch_i32(&w, 8, (int32_t)(len - KP_BATCH_LOG_OVERHEAD));
    ut_batch_fix_crc(w.buf.data, len);
    kp_buf_reset(out);
    kp_buf_append(out, w.buf.data, len);
    kp_wr_free(&w);
    kp_wr_free(&raw);
    kp_buf_free(&body);
    return len;
}

/* The raw bytes record r has in a batch whose base offset is base and base timestamp ts. */
static void expected_raw(const xrec_t *r, int64_t base_offset, int64_t base_ts, kp_buf_t *out)
{
    kp_wr_t w;
    kp_wr_init(&w);
    enc_record(&w, r, (int32_t)(r->offset - base_offset), base_ts);
    kp_buf_reset(out);
    kp_buf_append(out, w.buf.data, w.buf.len);
    kp_wr_free(&w);
}

/* A stored record as read back. */
typedef struct got {
    int64_t offset, batch_base, batch_base_ts, ts;
    int codec;
    kp_buf_t raw;
} got_t;

typedef struct got_list {
    got_t *items;
    int n, cap;
} got_list_t;

static void got_free(got_list_t *g)
{
    for (int i = 0; i < g->n; i++) kp_buf_free(&g->items[i].raw);
    free(g->items);
    memset(g, 0, sizeof(*g));
}

/* Decodes one stored batch, checking it is sound: CRC, magic, length, a records count equal
 * to what is inside, offsets within [base, base + lastOffsetDelta]. */
static void collect_batch(const uint8_t *p, size_t len, got_list_t *g)
{
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate_stored(p, len, &info), KP_BATCH_OK);
    int codec = info.attributes & 7;
    kp_buf_t body;
    kp_buf_init(&body);
    assert_int_equal(kp_decompress(codec, p + KP_BATCH_HEADER_BYTES, len - KP_BATCH_HEADER_BYTES,
                                   &body, 64 << 20),
                     0);
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body.data, body.len);
    kp_record_t rec;
    int n = 0;
    while (kp_records_next(&it, &rec) == 1) {
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 256;
            g->items = realloc(g->items, (size_t)g->cap * sizeof(*g->items));
        }
        got_t *x = &g->items[g->n++];
        x->offset = rec.offset;
        x->batch_base = info.base_offset;
        x->batch_base_ts = info.base_timestamp;
        x->ts = rec.timestamp;
        x->codec = codec;
        kp_buf_init(&x->raw);
        kp_buf_append(&x->raw, rec.raw, rec.rawlen);
        assert_true(rec.offset >= info.base_offset && rec.offset <= kp_batch_last_offset(&info));
        n++;
    }
    assert_int_equal(it.err, 0);
    assert_int_equal(n, info.records_count);
    assert_true(it.p == it.end);
    kp_buf_free(&body);
}

/* ------------------------------------------------------------------ kp_batch_filter */

typedef struct keep_ctx {
    int mode; /* 0 odd offsets, 1 all, 2 none, 3 only the last */
    int64_t last;
    int64_t seen_ts[64];
    int nseen;
} keep_ctx_t;

static int keep_fn(const kp_record_t *rec, void *arg)
{
    keep_ctx_t *k = arg;
    if (k->nseen < 64) k->seen_ts[k->nseen++] = rec->timestamp;
    switch (k->mode) {
    case 0:
        return rec->offset % 2 == 1;
    case 1:
        return 1;
    case 2:
        return 0;
    default:
        return rec->offset == k->last;
    }
}

static void filter_case(int codec)
{
    enum { N = 40 };
    xrec_t recs[N];
    for (int i = 0; i < N; i++) {
        recs[i] = (xrec_t){i % 7, i, i % 9 == 4, NOW + 3 * i + (i % 5), 1000 + i};
        if (i == 13) recs[i].key = -1;
    }
    kp_buf_t b, scratch, out;
    kp_buf_init(&b);
    kp_buf_init(&scratch);
    kp_buf_init(&out);
    batch_hdr_t h = {1000, (int16_t)codec, 77, 3, 500, -1};
    size_t len = build_batch(&b, recs, N, &h);
    kp_batch_info_t in;
    assert_int_equal(kp_batch_validate(b.data, len, &in), KP_BATCH_OK);

    keep_ctx_t k = {.mode = 1};
    assert_int_equal(kp_batch_filter(b.data, len, keep_fn, &k, &scratch, &out, 1 << 20),
                     KP_FILTER_ALL);
    assert_int_equal(k.nseen, N);
    for (int i = 0; i < N; i++) assert_int_equal(k.seen_ts[i], recs[i].ts);
    k = (keep_ctx_t){.mode = 2};
    assert_int_equal(kp_batch_filter(b.data, len, keep_fn, &k, &scratch, &out, 1 << 20),
                     KP_FILTER_NONE);

    for (int mode = 0; mode <= 3; mode += 3) {
        k = (keep_ctx_t){.mode = mode, .last = 1000 + N - 1};
        assert_int_equal(kp_batch_filter(b.data, len, keep_fn, &k, &scratch, &out, 1 << 20),
                         KP_FILTER_SOME);
        kp_batch_info_t o;
        assert_int_equal(kp_batch_validate_stored(out.data, out.len, &o), KP_BATCH_OK);
        /* the header: same offsets range, timestamps, producer fields and codec */
        assert_int_equal(o.base_offset, in.base_offset);
        assert_int_equal(o.last_offset_delta, in.last_offset_delta);
        assert_int_equal(o.base_timestamp, in.base_timestamp);
        assert_int_equal(o.max_timestamp, in.max_timestamp);
        assert_int_equal(o.producer_id, 77);
        assert_int_equal(o.producer_epoch, 3);
        assert_int_equal(o.base_sequence, 500);
        assert_int_equal(o.attributes, in.attributes);
        assert_int_equal(o.leader_epoch, in.leader_epoch);
        assert_int_equal(o.records_count, mode == 0 ? N / 2 : 1);
        /* the survivors, byte for byte */
        got_list_t g = {0};
        collect_batch(out.data, out.len, &g);
        kp_buf_t want;
        kp_buf_init(&want);
        int j = 0;
        for (int i = 0; i < N; i++) {
            int kept = mode == 0 ? recs[i].offset % 2 == 1 : i == N - 1;
            if (!kept) continue;
            assert_true(j < g.n);
            assert_int_equal(g.items[j].offset, recs[i].offset);
            assert_int_equal(g.items[j].ts, recs[i].ts);
            expected_raw(&recs[i], 1000, recs[0].ts, &want);
            assert_int_equal(g.items[j].raw.len, want.len);
            assert_memory_equal(g.items[j].raw.data, want.data, want.len);
            j++;
        }
        assert_int_equal(j, g.n);
        if (codec) { /* still compressed, and decodable by the codec library itself */
            kp_buf_t plain;
            kp_buf_init(&plain);
            ref_decode(codec, out.data + KP_BATCH_HEADER_BYTES, out.len - KP_BATCH_HEADER_BYTES,
                       &plain);
            assert_true(plain.len > 0);
            kp_buf_free(&plain);
        }
        kp_buf_free(&want);
        got_free(&g);
    }

    /* a batch that would inflate beyond max_bytes is not decodable: kept as is */
    if (codec) {
        k = (keep_ctx_t){.mode = 0};
        assert_int_equal(kp_batch_filter(b.data, len, keep_fn, &k, &scratch, &out, 100), -1);
        assert_int_equal(k.nseen, 0);
    }
    /* a records count that disagrees with the records: not decodable */
    uint8_t *bad = malloc(len);
    memcpy(bad, b.data, len);
    ut_st32(bad + 57, N + 1);
    ut_batch_fix_crc(bad, len);
    k = (keep_ctx_t){.mode = 0};
    assert_int_equal(kp_batch_filter(bad, len, keep_fn, &k, &scratch, &out, 1 << 20), -1);
    free(bad);
    kp_buf_free(&b);
    kp_buf_free(&scratch);
    kp_buf_free(&out);
}

static void test_filter_uncompressed(void **state)
{
    filter_case(KP_CODEC_NONE);
}
static void test_filter_gzip(void **state)
{
    filter_case(KP_CODEC_GZIP);
}
static void test_filter_snappy(void **state)
{
    filter_case(KP_CODEC_SNAPPY);
}
static void test_filter_lz4(void **state)
{
    filter_case(KP_CODEC_LZ4);
}
static void test_filter_zstd(void **state)
{
    filter_case(KP_CODEC_ZSTD);
}

/* LogAppendTime: every record's timestamp is the batch's maxTimestamp (the append time), as
 * Kafka's DefaultRecordBatch reports it; the create times inside are not what the cleaner
 * must compare with delete.retention.ms. */
static void test_filter_log_append_time(void **state)
{
    xrec_t recs[5];
    for (int i = 0; i < 5; i++) recs[i] = (xrec_t){i, i, 0, 1000 + i, i};
    kp_buf_t b, scratch, out;
    kp_buf_init(&b);
    kp_buf_init(&scratch);
    kp_buf_init(&out);
    batch_hdr_t h = hdr_plain(KP_CODEC_LZ4);
    size_t len = build_batch(&b, recs, 5, &h);
    kp_batch_set_log_append_time(b.data, len, NOW);
    keep_ctx_t k = {.mode = 1};
    assert_int_equal(kp_batch_filter(b.data, len, keep_fn, &k, &scratch, &out, 1 << 20),
                     KP_FILTER_ALL);
    assert_int_equal(k.nseen, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(k.seen_ts[i], NOW);
    kp_buf_free(&b);
    kp_buf_free(&scratch);
    kp_buf_free(&out);
}

/* ------------------------------------------------------------------ a log to clean */

static kp_log_config_t log_config(int durable)
{
    kp_log_config_t cfg;
    kp_log_config_defaults(&cfg);
    cfg.segment_bytes = 1 << 30; /* the tests roll explicitly */
    cfg.index_interval_bytes = 256;
    cfg.durable = durable;
    return cfg;
}

static kp_log_t *open_log(int durable)
{
    kp_log_config_t cfg = log_config(durable);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    assert_non_null(log);
    return log;
}

static void roll_log(kp_log_t *log, int64_t now)
{
    pthread_mutex_lock(&log->lock);
    assert_int_equal(kp_log_roll_locked(log, now), 0);
    pthread_mutex_unlock(&log->lock);
}

/* Appends recs[0..n) as one batch; fills their offsets. */
static void append_recs(kp_log_t *log, xrec_t *recs, int n, int codec)
{
    kp_buf_t b;
    kp_buf_init(&b);
    batch_hdr_t h = hdr_plain(codec);
    size_t len = build_batch(&b, recs, n, &h);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append(log, b.data, len, &info, recs[n - 1].ts, &res);
    assert_int_equal(res.status, KP_APPEND_OK);
    for (int i = 0; i < n; i++) recs[i].offset = res.base_offset + i;
    kp_buf_free(&b);
}

/* Every record stored in the log, in file order. */
static void collect_log(kp_log_t *log, got_list_t *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->nsegs; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s.log", log->segs[i]->path);
        uint8_t *data;
        size_t len;
        assert_int_equal(kp_fs_read_all(p, 1 << 30, &data, &len), 0);
        assert_int_equal((int64_t)len, log->segs[i]->size);
        size_t at = 0;
        while (at < len) {
            int64_t total = kp_batch_total_size(data + at, len - at);
            assert_true(total >= KP_BATCH_HEADER_BYTES && (size_t)total <= len - at);
            collect_batch(data + at, (size_t)total, g);
            at += (size_t)total;
        }
        free(data);
    }
    pthread_mutex_unlock(&log->lock);
}

static int64_t active_base(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    int64_t b = log->segs[log->nsegs - 1]->base_offset;
    pthread_mutex_unlock(&log->lock);
    return b;
}

/* What compaction must leave: below `end` (the first offset it may not touch), the latest
 * record of each key among offsets < end, minus tombstones older than horizon; null-key
 * records and everything at or beyond end stay. Returns the survivors' indexes. */
static int model(const xrec_t *recs, int n, int64_t end, int64_t horizon, int *keep)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const xrec_t *r = &recs[i];
        int kept = 1;
        if (r->offset < end && r->key >= 0) {
            for (int j = 0; j < n; j++)
                if (recs[j].key == r->key && recs[j].offset > r->offset && recs[j].offset < end)
                    kept = 0;
            if (kept && r->tomb && r->ts < horizon) kept = 0;
        }
        if (kept) keep[k++] = i;
    }
    return k;
}

/* The log holds exactly recs[keep[0..nkeep)], in order, each record's bytes intact (so its
 * offset, timestamp, key, value and headers are the produced ones). */
static void expect_log(kp_log_t *log, const xrec_t *recs, const int *keep, int nkeep, int codec)
{
    got_list_t g;
    collect_log(log, &g);
    kp_buf_t want;
    kp_buf_init(&want);
    if (g.n != nkeep) print_error("log holds %d records, expected %d\n", g.n, nkeep);
    assert_int_equal(g.n, nkeep);
    for (int i = 0; i < nkeep; i++) {
        const xrec_t *r = &recs[keep[i]];
        got_t *x = &g.items[i];
        if (x->offset != r->offset)
            print_error("record %d: offset %" PRId64 ", expected %" PRId64 "\n", i, x->offset,
                        r->offset);
        assert_int_equal(x->offset, r->offset);
        assert_int_equal(x->ts, r->ts);
        assert_int_equal(x->codec, codec);
        if (i) assert_true(x->offset > g.items[i - 1].offset);
        expected_raw(r, x->batch_base, x->batch_base_ts, &want);
        assert_int_equal(x->raw.len, want.len);
        assert_memory_equal(x->raw.data, want.data, want.len);
    }
    kp_buf_free(&want);
    got_free(&g);
}

static void read_checkpoint(int64_t *a, int64_t *b)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/cleaner-offset-checkpoint", dir);
    uint8_t *data;
    size_t len;
    assert_int_equal(kp_fs_read_all(p, 128, &data, &len), 0);
    char text[129];
    memcpy(text, data, len);
    text[len] = 0;
    free(data);
    assert_int_equal(sscanf(text, "%" SCNd64 " %" SCNd64, a, b), 2);
}

static uint8_t *file_bytes(const char *path, size_t *len)
{
    uint8_t *data;
    assert_int_equal(kp_fs_read_all(path, 1 << 30, &data, len), 0);
    return data;
}

static kp_cleaner_t *new_cleaner(size_t dedupe)
{
    kp_cleaner_config_t cc = {dedupe, 0, 64u << 20};
    return kp_cleaner_new(&cc);
}

/* 60 keys, 8 sealed segments of 6 batches x 10 records, a few tombstones (some of them the
 * key's last word, some followed by a new value) and one null-key record; then an active
 * segment that repeats keys. Timestamps NOW + seq. */
enum { NSEALED_BATCHES = 48, NACTIVE_BATCHES = 3, BATCH_RECS = 10 };
#define NRECS ((NSEALED_BATCHES + NACTIVE_BATCHES) * BATCH_RECS)

static void build_log(kp_log_t *log, xrec_t *recs, int codec)
{
    ut_rand_t r;
    ut_rand_seed(&r, 4242);
    for (int i = 0; i < NRECS; i++) {
        recs[i] = (xrec_t){(int)ut_rand_below(&r, 60), i, 0, NOW + i, -1};
        if (i == 77) recs[i].key = -1;
    }
    /* keys 0..4: a tombstone in the sealed part is their last record there */
    for (int k = 0; k < 5; k++) {
        int last = -1;
        for (int i = 0; i < NSEALED_BATCHES * BATCH_RECS; i++)
            if (recs[i].key == k) last = i;
        assert_true(last >= 0);
        recs[last].tomb = 1;
    }
    /* and a tombstone that a later value supersedes */
    recs[100].tomb = 1;
    for (int b = 0; b < NSEALED_BATCHES + NACTIVE_BATCHES; b++) {
        if (b > 0 && b % 6 == 0 && b <= NSEALED_BATCHES) roll_log(log, NOW + b * BATCH_RECS);
        append_recs(log, &recs[b * BATCH_RECS], BATCH_RECS, codec);
    }
    assert_int_equal(log->nsegs, NSEALED_BATCHES / 6 + 1);
}

static void clean_case(int codec)
{
    static xrec_t recs[NRECS];
    static int keep[NRECS];
    kp_log_t *log = open_log(0);
    build_log(log, recs, codec);
    int64_t end = active_base(log);
    assert_int_equal(end, NSEALED_BATCHES * BATCH_RECS);
    char active_path[PATH_MAX + 64];
    snprintf(active_path, sizeof(active_path), "%s/%020" PRId64 ".log", dir, end);
    size_t alen, alen2;
    uint8_t *active_before = file_bytes(active_path, &alen);

    kp_cleaner_t *c = new_cleaner(1 << 20);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.5};
    kp_clean_stats_t st;
    int64_t now = NOW + 100000;
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 1);
    assert_int_equal(st.segments, NSEALED_BATCHES / 6);
    assert_int_equal(st.first_dirty_before, 0);
    assert_int_equal(st.first_dirty_after, end);
    assert_int_equal(st.tombstones_removed, 0);
    int nkeep = model(recs, NRECS, end, INT64_MIN, keep);
    assert_int_equal(st.records_removed, NRECS - nkeep);
    expect_log(log, recs, keep, nkeep, codec);
    /* the tombstones are still there, the active segment is untouched */
    int64_t cp, oldest;
    read_checkpoint(&cp, &oldest);
    assert_int_equal(cp, end);
    int64_t want_oldest = -1;
    for (int i = 0; i < nkeep; i++)
        if (recs[keep[i]].tomb && (want_oldest < 0 || recs[keep[i]].ts < want_oldest))
            want_oldest = recs[keep[i]].ts;
    assert_true(want_oldest > 0);
    assert_int_equal(oldest, want_oldest);
    uint8_t *active_after = file_bytes(active_path, &alen2);
    assert_int_equal(alen, alen2);
    assert_memory_equal(active_before, active_after, alen);
    free(active_after);

    /* nothing new: nothing to do */
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 0);

    /* delete.retention.ms passes for the tombstones: they go, nothing else does */
    p.delete_retention_ms = 1000;
    now = NOW + NRECS + 1001;
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 1);
    int nkeep2 = model(recs, NRECS, end, now - 1000, keep);
    assert_int_equal(st.tombstones_removed, nkeep - nkeep2);
    assert_int_equal(st.records_removed, 0);
    assert_true(nkeep - nkeep2 >= 5);
    expect_log(log, recs, keep, nkeep2, codec);
    read_checkpoint(&cp, &oldest);
    assert_int_equal(cp, end);
    assert_int_equal(oldest, -1);
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 0);
    active_after = file_bytes(active_path, &alen2);
    assert_int_equal(alen, alen2);
    assert_memory_equal(active_before, active_after, alen);
    free(active_after);

    /* reads across the holes: from any offset, the first record at or after it */
    for (int64_t off = 0; off < NRECS; off++) {
        /* as a consumer does: a batch whose survivors are all below the fetch offset moves
         * the fetch past the batch's last offset (kept in its header) */
        int64_t first = -1, fetch = off;
        for (int hops = 0; first < 0; hops++) {
            assert_true(hops < 10);
            kp_log_read_t rd;
            kp_log_read(log, fetch, 1, 1, &rd);
            assert_int_equal(rd.error, 0);
            assert_non_null(rd.seg);
            uint8_t *buf = malloc((size_t)rd.len);
            assert_int_equal(kp_fs_pread_all(rd.seg->fd, buf, (size_t)rd.len, rd.pos), 0);
            kp_batch_info_t info;
            kp_batch_parse_header(buf, &info);
            assert_true(kp_batch_last_offset(&info) >= fetch);
            got_list_t g = {0};
            collect_batch(buf, (size_t)rd.len, &g);
            for (int i = 0; i < g.n && first < 0; i++)
                if (g.items[i].offset >= off) first = g.items[i].offset;
            fetch = kp_batch_last_offset(&info) + 1;
            got_free(&g);
            free(buf);
            kp_segment_put(rd.seg);
        }
        int64_t want = -1;
        for (int i = 0; i < nkeep2 && want < 0; i++)
            if (recs[keep[i]].offset >= off) want = recs[keep[i]].offset;
        assert_int_equal(first, want);
    }

    /* a reopen serves the same (indexes were rebuilt at the swap) */
    int64_t s0, h0, l0, s1, h1, l1;
    kp_log_offsets(log, &s0, &h0, &l0);
    kp_log_close(log);
    log = open_log(0);
    kp_log_offsets(log, &s1, &h1, &l1);
    assert_int_equal(s1, s0);
    assert_int_equal(l1, l0);
    assert_int_equal(l1, NRECS);
    expect_log(log, recs, keep, nkeep2, codec);
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 0);
    kp_log_close(log);
    kp_cleaner_free(c);
    free(active_before);
}

static void test_clean_uncompressed(void **state)
{
    clean_case(KP_CODEC_NONE);
}
static void test_clean_gzip(void **state)
{
    clean_case(KP_CODEC_GZIP);
}
static void test_clean_snappy(void **state)
{
    clean_case(KP_CODEC_SNAPPY);
}
static void test_clean_lz4(void **state)
{
    clean_case(KP_CODEC_LZ4);
}
static void test_clean_zstd(void **state)
{
    clean_case(KP_CODEC_ZSTD);
}

/* A tiny offset map (918 keys) against 2000 keys written twice: each pass maps what fits
 * and moves the checkpoint that far; repeated passes reach the same result as one big map. */
static void test_clean_small_map_several_passes(void **state)
{
    enum { KEYS = 2000, N = 2 * KEYS };
    static xrec_t recs[N + 10];
    static int keep[N + 10];
    for (int i = 0; i < N; i++) recs[i] = (xrec_t){i % KEYS, i, 0, NOW + i, -1};
    for (int i = N; i < N + 10; i++) recs[i] = (xrec_t){i, i, 0, NOW + i, -1};
    kp_log_t *log = open_log(0);
    for (int b = 0; b < N / 10; b++) {
        if (b > 0 && b % 25 == 0) roll_log(log, NOW + b * 10);
        append_recs(log, &recs[b * 10], 10, KP_CODEC_NONE);
    }
    roll_log(log, NOW + N);
    append_recs(log, &recs[N], 10, KP_CODEC_NONE);
    kp_cleaner_t *c = new_cleaner(1);
    kp_offset_map_t probe_map;
    kp_offset_map_init(&probe_map, 1);
    size_t c_limit = probe_map.limit;
    kp_offset_map_free(&probe_map);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.0};
    kp_clean_stats_t st;
    int passes = 0;
    int64_t prev = 0, cp, oldest;
    while (kp_cleaner_clean(c, log, &p, NOW + N + 1000, &st) == 1) {
        passes++;
        assert_true(passes < 20);
        read_checkpoint(&cp, &oldest);
        assert_true(cp > prev);                     /* progress every pass */
        assert_true(cp - prev <= (int64_t)c_limit); /* never more than the map holds */
        assert_int_equal(cp % 10, 0);               /* a batch boundary */
        prev = cp;
    }
    assert_true(passes >= 5);
    assert_int_equal(prev, N);
    int nkeep = model(recs, N + 10, N, INT64_MIN, keep);
    assert_int_equal(nkeep, KEYS + 10);
    expect_log(log, recs, keep, nkeep, KP_CODEC_NONE);
    kp_log_close(log);
    kp_cleaner_free(c);
}

/* What the cleaner may not touch: data above the high watermark, segments younger than
 * min.compaction.lag.ms; and when it is not due: dirty ratio below the threshold unless the
 * dirty data is older than max.compaction.lag.ms. */
static void test_clean_limits(void **state)
{
    static xrec_t recs[200];
    static int keep[200];
    for (int i = 0; i < 200; i++) recs[i] = (xrec_t){i % 5, i, 0, NOW + 1000 * i, -1};
    kp_log_t *log = open_log(1); /* durable: the HWM moves with kp_log_flush only */
    for (int b = 0; b < 10; b++) {
        if (b && b % 2 == 0) roll_log(log, NOW);
        append_recs(log, &recs[b * 10], 10, KP_CODEC_NONE);
    }
    kp_cleaner_t *c = new_cleaner(1 << 20);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.0};
    kp_clean_stats_t st;
    int64_t s, hwm, leo;
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(hwm, 0);
    assert_int_equal(leo, 100);
    /* nothing is committed: nothing is cleaned */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 1000000, &st), 0);
    int n = model(recs, 100, 0, INT64_MIN, keep);
    assert_int_equal(n, 100);
    expect_log(log, recs, keep, n, KP_CODEC_NONE);
    kp_log_flush(log);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(hwm, 100);

    /* min.compaction.lag.ms: at NOW + 60s only segments whose newest record is at least 20s
     * old may be cleaned: [0, 20) and [20, 40) (newest +39s), not [40, 60) (newest +59s) */
    p.min_compaction_lag_ms = 20000;
    int64_t now = NOW + 60000;
    assert_int_equal(kp_cleaner_clean(c, log, &p, now, &st), 1);
    assert_int_equal(st.first_dirty_after, 40); /* segment [40, 60) has records at +59s */
    n = model(recs, 100, 40, INT64_MIN, keep);
    expect_log(log, recs, keep, n, KP_CODEC_NONE);

    /* ratio: the rest becomes cleanable; with a threshold of 0.99 it is not due ... */
    p.min_compaction_lag_ms = 0;
    p.min_cleanable_ratio = 0.99;
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 200000, &st), 0);
    /* ... unless the dirty data is older than max.compaction.lag.ms */
    p.max_compaction_lag_ms = 1000;
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 200000, &st), 1);
    assert_int_equal(st.first_dirty_after, 80);
    n = model(recs, 100, 80, INT64_MIN, keep);
    expect_log(log, recs, keep, n, KP_CODEC_NONE);
    kp_log_close(log);
    kp_cleaner_free(c);
}

static int count_suffix(const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

/* A crash during cleaning leaves <base>.log.cleaned.tmp (before the swap) or a cleaned
 * segment without index files (after the rename, before sealing): a reopen removes the
 * temp file, rebuilds the index and serves the same records. */
static void test_clean_crash_leftovers(void **state)
{
    static xrec_t recs[NRECS];
    static int keep[NRECS];
    kp_log_t *log = open_log(0);
    build_log(log, recs, KP_CODEC_LZ4);
    kp_cleaner_t *c = new_cleaner(1 << 20);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.5};
    kp_clean_stats_t st;
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 100000, &st), 1);
    int64_t end = active_base(log);
    int nkeep = model(recs, NRECS, end, INT64_MIN, keep);
    kp_log_close(log);
    assert_int_equal(count_suffix(".cleaned.tmp"), 0);

    char p1[PATH_MAX + 64], p2[PATH_MAX + 64];
    snprintf(p1, sizeof(p1), "%s/%020d.log.cleaned.tmp", dir, 0);
    assert_int_equal(kp_fs_write_atomic(p1, "half a segment", 14), 0);
    snprintf(p2, sizeof(p2), "%s/%020d.log.cleaned.tmp", dir, 120);
    assert_int_equal(kp_fs_write_atomic(p2, "", 0), 0);
    snprintf(p1, sizeof(p1), "%s/%020d.index", dir, 60);
    assert_int_equal(unlink(p1), 0);
    snprintf(p1, sizeof(p1), "%s/%020d.timeindex", dir, 60);
    assert_int_equal(unlink(p1), 0);
    assert_int_equal(count_suffix(".cleaned.tmp"), 2);

    log = open_log(0);
    assert_int_equal(count_suffix(".cleaned.tmp"), 0);
    expect_log(log, recs, keep, nkeep, KP_CODEC_LZ4);
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(l, NRECS);
    /* and it cleans on from there: nothing is due */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 100000, &st), 0);
    kp_log_close(log);
    kp_cleaner_free(c);
}

/* ------------------------------------------------------------------ retention.c */

/* Segment i holds batches with timestamps ts[i]; the last one is active. Returns bases. */
static kp_log_t *build_timed_log(const int64_t *ts, int nsegs, int batches, int durable,
                                 int64_t *bases, int64_t *sizes)
{
    kp_log_t *log = open_log(durable);
    int seq = 0;
    for (int s = 0; s < nsegs; s++) {
        if (s) roll_log(log, NOW);
        bases[s] = active_base(log);
        for (int b = 0; b < batches; b++) {
            xrec_t recs[4];
            for (int i = 0; i < 4; i++) recs[i] = (xrec_t){seq % 11, seq, 0, ts[s], -1}, seq++;
            append_recs(log, recs, 4, KP_CODEC_NONE);
        }
        sizes[s] = log->segs[s]->size;
    }
    if (durable) kp_log_flush(log);
    return log;
}

static int seg_exists(int64_t base)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%020" PRId64 ".log", dir, base);
    return access(p, F_OK) == 0;
}

static int64_t read_log_start_file(void)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/log-start-offset", dir);
    uint8_t *data;
    size_t len;
    if (kp_fs_read_all(p, 64, &data, &len) < 0) return -1;
    char text[65];
    memcpy(text, data, len);
    text[len] = 0;
    free(data);
    return strtoll(text, NULL, 10);
}

static void expect_read_from(kp_log_t *log, int64_t start)
{
    kp_log_read_t rd;
    if (start > 0) {
        kp_log_read(log, start - 1, 1 << 20, 1, &rd);
        assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    }
    kp_log_read(log, start, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, 0);
    if (rd.seg) {
        uint8_t head[KP_BATCH_HEADER_BYTES];
        assert_int_equal(kp_fs_pread_all(rd.seg->fd, head, sizeof(head), rd.pos), 0);
        kp_batch_info_t info;
        kp_batch_parse_header(head, &info);
        assert_true(info.base_offset <= start && kp_batch_last_offset(&info) >= start);
        kp_segment_put(rd.seg);
    }
    int64_t ts;
    assert_int_equal(kp_log_offset_for_time(log, -2, &ts), start);
}

static void test_retention_by_time_prefix_only(void **state)
{
    const int64_t H = 3600 * 1000LL;
    /* old, old, new, old (only a prefix goes: the third stops the walk), old active */
    int64_t ts[] = {NOW - 5 * H, NOW - 4 * H, NOW, NOW - 3 * H, NOW - 3 * H};
    int64_t bases[5], sizes[5];
    kp_log_t *log = build_timed_log(ts, 5, 3, 0, bases, sizes);
    kp_retention_t r = {2 * H, -1};
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW + 1000), 2);
    assert_int_equal(log->nsegs, 3);
    assert_false(seg_exists(bases[0]));
    assert_false(seg_exists(bases[1]));
    assert_true(seg_exists(bases[2]));
    assert_int_equal(read_log_start_file(), bases[2]);
    expect_read_from(log, bases[2]);
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW + 1000), 0);
    /* unlimited: nothing */
    kp_retention_t none = {-1, -1};
    assert_int_equal(kp_log_enforce_retention(log, &none, NOW + 100 * H), 0);
    /* later everything expires, the active segment too: it rolls and goes */
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW + 3 * H), 3);
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(l, 5 * 3 * 4);
    assert_int_equal(s, l);
    assert_int_equal(log->nsegs, 1);
    assert_int_equal(log->segs[0]->base_offset, l);
    for (int i = 0; i < 4; i++) assert_false(seg_exists(bases[i]));
    kp_log_read_t rd;
    kp_log_read(log, l, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, 0);
    assert_null(rd.seg);
    /* new data continues at the old end, and the start survives a reopen */
    xrec_t more[2] = {{1, 1000, 0, NOW, -1}, {2, 1001, 0, NOW, -1}};
    append_recs(log, more, 2, KP_CODEC_NONE);
    assert_int_equal(more[0].offset, l);
    /* the rolled-away active segment's files went once the high watermark left it */
    assert_false(seg_exists(bases[4]));
    kp_log_close(log);
    log = open_log(0);
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(s, 60);
    assert_int_equal(l, 62);
    expect_read_from(log, 60);
    kp_log_close(log);
}

static void test_retention_by_size(void **state)
{
    int64_t ts[] = {NOW, NOW, NOW, NOW, NOW};
    int64_t bases[5], sizes[5];
    kp_log_t *log = build_timed_log(ts, 5, 3, 0, bases, sizes);
    int64_t total = 0;
    for (int i = 0; i < 5; i++) total += sizes[i];
    /* exactly the size of the last three: the first two go (what remains >= retention) */
    kp_retention_t r = {-1, total - sizes[0] - sizes[1]};
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 2);
    assert_int_equal(kp_log_size_bytes(log), total - sizes[0] - sizes[1]);
    assert_false(seg_exists(bases[1]));
    assert_true(seg_exists(bases[2]));
    expect_read_from(log, bases[2]);
    /* one byte more than the last two: deleting the next would leave too little */
    r.retention_bytes = sizes[3] + sizes[4] + 1;
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 0);
    r.retention_bytes = sizes[3] + sizes[4];
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 1);
    expect_read_from(log, bases[3]);
    /* retention.bytes=0 keeps nothing: the active segment rolls and goes too (as Kafka) */
    r.retention_bytes = 0;
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 2);
    assert_int_equal(log->nsegs, 1);
    assert_int_equal(log->log_start_offset, 60);
    assert_int_equal(log->segs[0]->base_offset, 60);
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 0); /* empty active: stays */
    kp_log_close(log);
    log = open_log(0);
    assert_int_equal(log->log_start_offset, 60);
    kp_log_close(log);
}

/* Durable mode: segments not entirely below the high watermark are never deleted. */
static void test_retention_below_hwm_only(void **state)
{
    int64_t ts[] = {NOW - 1000000, NOW - 1000000, NOW - 1000000};
    int64_t bases[3], sizes[3];
    kp_log_t *log = build_timed_log(ts, 3, 2, 1, bases, sizes);
    /* more old data in new segments, not flushed: the HWM stays at the end of segment 2 */
    int64_t s, hwm, leo;
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(hwm, leo);
    int64_t committed = hwm;
    roll_log(log, NOW);
    xrec_t recs[4];
    for (int i = 0; i < 4; i++) recs[i] = (xrec_t){i, 500 + i, 0, NOW - 1000000, -1};
    append_recs(log, recs, 4, KP_CODEC_NONE);
    roll_log(log, NOW);
    for (int i = 0; i < 4; i++) recs[i] = (xrec_t){i, 600 + i, 0, NOW - 1000000, -1};
    append_recs(log, recs, 4, KP_CODEC_NONE);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(hwm, committed);
    assert_true(leo > hwm);
    kp_retention_t r = {1000, -1};
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 3);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(s, committed);
    assert_int_equal(log->nsegs, 2);
    /* once flushed, the rest can go (the active segment rolls) */
    kp_log_flush(log);
    assert_int_equal(kp_log_enforce_retention(log, &r, NOW), 2);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(s, leo);
    kp_log_close(log);
}

/* A segment the cleaner emptied (compact,delete) has no timestamp: retention takes its age
 * from when it was rewritten (Kafka: the file's mtime). While young it stops the walk like
 * any unexpired segment; once older than retention.ms it goes with the expired data behind
 * it instead of stopping time retention for good. By size it is deleted like any segment. */
static void test_retention_past_emptied_segment(void **state)
{
    const int64_t H = 3600 * 1000LL;
    const int64_t W = kp_wall_ms(); /* the cleaner stamps rewritten segments with wall time */
    kp_log_t *log = open_log(0);
    xrec_t recs[30];
    for (int i = 0; i < 30; i++) recs[i] = (xrec_t){i < 10 ? 1 : 2, i, 0, W - 5 * H, -1};
    append_recs(log, recs, 10, KP_CODEC_NONE); /* segment 0: key 1 only */
    roll_log(log, W);
    append_recs(log, recs + 10, 10, KP_CODEC_NONE); /* segment 1: key 2 */
    for (int i = 20; i < 30; i++) recs[i].key = 1;
    append_recs(log, recs + 20, 10, KP_CODEC_NONE); /* supersedes all of segment 0 */
    roll_log(log, W);
    xrec_t act = {9, 99, 0, W + 10 * H, -1}; /* the active segment never expires here */
    append_recs(log, &act, 1, KP_CODEC_NONE);
    kp_cleaner_t *c = new_cleaner(1 << 20);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.0};
    kp_clean_stats_t st;
    assert_int_equal(kp_cleaner_clean(c, log, &p, W, &st), 1);
    assert_int_equal(log->segs[0]->size, 0);
    assert_int_equal(log->nsegs, 3);
    kp_retention_t r = {H, -1};
    int64_t s, h, l;
    /* just emptied: it holds the walk (segment 1 behind it has expired) */
    assert_int_equal(kp_log_enforce_retention(log, &r, W + 1000), 0);
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(s, 0);
    /* retention.ms later: it goes, and so does the expired segment after it */
    assert_int_equal(kp_log_enforce_retention(log, &r, W + 2 * H), 2);
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(s, 30);
    assert_int_equal(log->nsegs, 1);
    kp_log_close(log);

    /* by size: an empty sealed segment goes when the rest is at least retention.bytes */
    kp_fs_remove_tree(dir);
    log = open_log(0);
    for (int i = 0; i < 30; i++) recs[i] = (xrec_t){i < 10 ? 1 : 2, 100 + i, 0, W, -1};
    append_recs(log, recs, 10, KP_CODEC_NONE);
    roll_log(log, W);
    append_recs(log, recs + 10, 10, KP_CODEC_NONE);
    for (int i = 20; i < 30; i++) recs[i].key = 1;
    append_recs(log, recs + 20, 10, KP_CODEC_NONE);
    roll_log(log, W);
    append_recs(log, &act, 1, KP_CODEC_NONE);
    assert_int_equal(kp_cleaner_clean(c, log, &p, W, &st), 1);
    assert_int_equal(log->segs[0]->size, 0);
    int64_t rest = log->segs[1]->size + log->segs[2]->size;
    r = (kp_retention_t){-1, rest + 1};
    assert_int_equal(kp_log_enforce_retention(log, &r, W), 0);
    r.retention_bytes = rest;
    assert_int_equal(kp_log_enforce_retention(log, &r, W), 1);
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(s, 10);
    kp_log_close(log);
    kp_cleaner_free(c);
}

static void test_delete_records(void **state)
{
    int64_t ts[] = {NOW, NOW, NOW, NOW};
    int64_t bases[4], sizes[4];
    kp_log_t *log = build_timed_log(ts, 4, 3, 1, bases, sizes); /* 12 records per segment */
    int64_t low;
    /* the middle of segment 1: segment 0 goes, offsets below 17 become unreadable */
    assert_int_equal(kp_log_delete_records(log, 17, &low), 0);
    assert_int_equal(low, 17);
    assert_false(seg_exists(bases[0]));
    assert_true(seg_exists(bases[1]));
    assert_int_equal(read_log_start_file(), 17);
    expect_read_from(log, 17);
    /* lower than the start: no change */
    assert_int_equal(kp_log_delete_records(log, 5, &low), 0);
    assert_int_equal(low, 17);
    /* beyond the high watermark: refused, nothing moves */
    xrec_t extra[2] = {{1, 900, 0, NOW, -1}, {2, 901, 0, NOW, -1}};
    append_recs(log, extra, 2, KP_CODEC_NONE); /* LEO 50, HWM 48 (not flushed) */
    int64_t s, hwm, leo;
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(hwm, 48);
    assert_int_equal(leo, 50);
    assert_int_equal(kp_log_delete_records(log, 49, &low), KP_RETENTION_OUT_OF_RANGE);
    assert_int_equal(kp_log_delete_records(log, -5, &low), KP_RETENTION_OUT_OF_RANGE);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(s, 17);
    /* persistent across a reopen */
    kp_log_close(log);
    log = open_log(1);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(s, 17);
    assert_int_equal(leo, 50);
    expect_read_from(log, 17);
    /* -1: the high watermark (everything); the active segment stays, empty of readable data */
    assert_int_equal(kp_log_delete_records(log, -1, &low), 0);
    assert_int_equal(low, 50);
    kp_log_read_t rd;
    kp_log_read(log, 49, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    kp_log_close(log);
    log = open_log(1);
    kp_log_offsets(log, &s, &hwm, &leo);
    assert_int_equal(s, 50);
    assert_int_equal(leo, 50);
    xrec_t next = {3, 902, 0, NOW, -1};
    append_recs(log, &next, 1, KP_CODEC_NONE);
    assert_int_equal(next.offset, 50);
    kp_log_close(log);
}

int main(void)
{
    /* the cleaner and retention log at info level; recovery warnings are expected here */
    kp_logging_set_level((kp_loglevel_t)(KP_LOG_ERROR + 1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trips),
        cmocka_unit_test(test_decode_foreign_encodings),
        cmocka_unit_test(test_truncated_input_refused),
        cmocka_unit_test(test_bomb_bounded),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_offset_map),
        cmocka_unit_test(test_key_hash),
        cmocka_unit_test(test_filter_uncompressed),
        cmocka_unit_test(test_filter_gzip),
        cmocka_unit_test(test_filter_snappy),
        cmocka_unit_test(test_filter_lz4),
        cmocka_unit_test(test_filter_zstd),
        cmocka_unit_test(test_filter_log_append_time),
        cmocka_unit_test_setup_teardown(test_clean_uncompressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_snappy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_lz4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_small_map_several_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_crash_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_time_prefix_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_below_hwm_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_past_emptied_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
