/*
 * compress.h — the record-batch codecs (attributes bits 0-2): gzip, snappy (raw or Java's
 * xerial framing), lz4 (frame format) and zstd, for the log cleaner, which must look inside
 * compressed batches and write the survivors back with the same codec, and for produce
 * checks that look inside batches and topics whose compression.type re-encodes them.
 *
 * Every decompression is bounded by max_out: a batch that would inflate beyond it is
 * treated as not decompressible (a compression bomb cannot exhaust memory).
 */
#ifndef KP_COMPRESS_H
#define KP_COMPRESS_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KP_CODEC_NONE = 0,
    KP_CODEC_GZIP = 1,
    KP_CODEC_SNAPPY = 2,
    KP_CODEC_LZ4 = 3,
    KP_CODEC_ZSTD = 4
};

/* Kafka's name of a codec ("uncompressed", "gzip", ...), "unknown" beyond 4. */
const char *kp_codec_name(int codec);
/* Appends the decompressed bytes to out. 0, or -1 on corrupt input or beyond max_out. */
int kp_decompress(int codec, const uint8_t *in, size_t inlen, kp_buf_t *out, size_t max_out);
/* Appends the compressed bytes to out. 0 or -1. */
int kp_compress(int codec, const uint8_t *in, size_t inlen, kp_buf_t *out);

#endif
