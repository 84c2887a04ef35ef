/* compress.c — gzip (zlib), snappy (libsnappy, xerial framing), lz4 frames, zstd. */
#include "storage/compress.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_BLOCK (32 * 1024)

static uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int gzip_decompress(const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return -1; /* gzip or zlib header */
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)inlen;
    size_t start = out->len;
    int rc;
    do {
        if (out->len - start > max_out) {
            inflateEnd(&zs);
            return -1;
        }
        kp_buf_reserve(out, 64 * 1024);
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len = out->cap - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            return -1;
        }
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) break; /* truncated */
    } while (rc != Z_STREAM_END);
    inflateEnd(&zs);
    return rc == Z_STREAM_END && out->len - start <= max_out ? 0 : -1;
}

static int gzip_compress(const uint8_t *in, size_t inlen, kp_buf_t *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;
    size_t bound = deflateBound(&zs, (uLong)inlen) + 32;
    kp_buf_reserve(out, bound);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)inlen;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)(out->cap - out->len);
    int rc = deflate(&zs, Z_FINISH);
    out->len = out->cap - zs.avail_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

static int snappy_block(const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out,
                        size_t start)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, inlen, &n) != SNAPPY_OK) return -1;
    if (out->len - start + n > max_out) return -1;
    if (n == 0) return 0; /* an empty block: out may still have no memory to point into */
    kp_buf_reserve(out, n);
    if (snappy_uncompress((const char *)in, inlen, (char *)out->data + out->len, &n) != SNAPPY_OK)
        return -1;
    out->len += n;
    return 0;
}

static int snappy_decompress_any(const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out)
{
    size_t start = out->len;
    if (inlen < 16 || memcmp(in, xerial_magic, 8) != 0)
        return snappy_block(in, inlen, out, max_out, start); /* raw snappy */
    size_t at = 16;
    while (at < inlen) {
        if (inlen - at < 4) return -1;
        uint32_t blen = ld32(in + at);
        at += 4;
        if (blen > inlen - at) return -1;
        if (snappy_block(in + at, blen, out, max_out, start) < 0) return -1;
        at += blen;
    }
    return 0;
}

static int snappy_compress_xerial(const uint8_t *in, size_t inlen, kp_buf_t *out)
{
    uint8_t head[16];
    memcpy(head, xerial_magic, 8);
    st32(head + 8, 1);  /* version */
    st32(head + 12, 1); /* minimum compatible version */
    kp_buf_append(out, head, 16);
    for (size_t at = 0; at < inlen || (inlen == 0 && at == 0);) {
        size_t n = inlen - at < XERIAL_BLOCK ? inlen - at : XERIAL_BLOCK;
        size_t max = snappy_max_compressed_length(n);
        size_t len_at = out->len;
        kp_buf_extend(out, 4);
        kp_buf_reserve(out, max);
        size_t clen = max;
        if (snappy_compress((const char *)in + at, n, (char *)out->data + out->len, &clen) !=
            SNAPPY_OK)
            return -1;
        out->len += clen;
        st32(out->data + len_at, (uint32_t)clen);
        at += n;
        if (inlen == 0) break;
    }
    return 0;
}

static int lz4_decompress(const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out)
{
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return -1;
    size_t start = out->len, at = 0, hint = 1;
    int rc = -1;
    while (hint != 0) {
        if (out->len - start > max_out) goto done;
        kp_buf_reserve(out, 64 * 1024);
        size_t dst = out->cap - out->len, src = inlen - at;
        hint = LZ4F_decompress(dctx, out->data + out->len, &dst, in + at, &src, NULL);
        if (LZ4F_isError(hint)) goto done;
        out->len += dst;
        at += src;
        if (at >= inlen && dst == 0 && hint != 0) goto done; /* truncated frame */
    }
    rc = out->len - start <= max_out ? 0 : -1;
done:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

static int lz4_compress(const uint8_t *in, size_t inlen, kp_buf_t *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    size_t bound = LZ4F_compressFrameBound(inlen, &prefs);
    kp_buf_reserve(out, bound);
    size_t n = LZ4F_compressFrame(out->data + out->len, bound, in, inlen, &prefs);
    if (LZ4F_isError(n)) return -1;
    out->len += n;
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return -1;
    ZSTD_initDStream(ds);
    ZSTD_inBuffer ib = {in, inlen, 0};
    size_t start = out->len, ret = 1;
    int rc = -1;
    while (ret != 0) {
        if (out->len - start > max_out) goto done;
        kp_buf_reserve(out, 64 * 1024);
        ZSTD_outBuffer ob = {out->data + out->len, out->cap - out->len, 0};
        ret = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(ret)) goto done;
        out->len += ob.pos;
        if (ib.pos == ib.size && ob.pos == 0 && ret != 0) goto done; /* truncated */
    }
    rc = out->len - start <= max_out ? 0 : -1;
done:
    ZSTD_freeDStream(ds);
    return rc;
}

static int zstd_compress(const uint8_t *in, size_t inlen, kp_buf_t *out)
{
    size_t bound = ZSTD_compressBound(inlen);
    kp_buf_reserve(out, bound);
    size_t n = ZSTD_compress(out->data + out->len, bound, in, inlen, 3);
    if (ZSTD_isError(n)) return -1;
    out->len += n;
    return 0;
}

const char *kp_codec_name(int codec)
{
    static const char *const names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    return codec >= 0 && codec <= KP_CODEC_ZSTD ? names[codec] : "unknown";
}

int kp_decompress(int codec, const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out)
{
    switch (codec) {
    case KP_CODEC_NONE:
        if (inlen > max_out) return -1;
        kp_buf_append(out, in, inlen);
        return 0;
    case KP_CODEC_GZIP:
        return gzip_decompress(in, inlen, out, max_out);
    case KP_CODEC_SNAPPY:
        return snappy_decompress_any(in, inlen, out, max_out);
    case KP_CODEC_LZ4:
        return lz4_decompress(in, inlen, out, max_out);
    case KP_CODEC_ZSTD:
        return zstd_decompress(in, inlen, out, max_out);
    }
    return -1;
}

int kp_compress(int codec, const uint8_t *in, size_t inlen, kp_buf_t *out)
{
    switch (codec) {
    case KP_CODEC_NONE:
        kp_buf_append(out, in, inlen);
        return 0;
    case KP_CODEC_GZIP:
        return gzip_compress(in, inlen, out);
    case KP_CODEC_SNAPPY:
        return snappy_compress_xerial(in, inlen, out);
    case KP_CODEC_LZ4:
        return lz4_compress(in, inlen, out);
    case KP_CODEC_ZSTD:
        return zstd_compress(in, inlen, out);
    }
    return -1;
}
