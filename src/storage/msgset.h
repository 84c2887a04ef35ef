/*
 * msgset.h — the legacy message formats (magic 0 and 1, "message sets") that Produce v0–2
 * carries and Fetch v0–3 returns, converted to and from record batch v2 as Kafka 3.x does.
 *
 * A message set is a sequence of entries:
 *   offset int64 | messageSize int32 | crc uint32 (CRC-32 of magic..end) | magic int8 |
 *   attributes int8 (bits 0-2 codec, bit 3 LogAppendTime in magic 1) |
 *   [timestamp int64, magic 1 only] | key bytes | value bytes
 * A compressed entry (a "wrapper") holds in its value the compressed message set of its
 * inner messages; in magic 1 the inner offsets are relative (0..n-1) and the wrapper carries
 * the absolute offset of the last one, in magic 0 the inner offsets are absolute.
 *
 * The log stores only v2 batches: produce up-converts (kp_msgset_to_batch), fetch down-converts
 * (kp_msgset_from_batches). Both are pure functions over bounded buffers, so they have a fuzz
 * target (tests/fuzz/fuzz_msgset.c). Neither runs on the v3+ Produce or v4+ Fetch path.
 */
#ifndef KP_MSGSET_H
#define KP_MSGSET_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

#define KP_MSGSET_LOG_OVERHEAD         12 /* offset + messageSize */
#define KP_MSGSET_ATTR_LOG_APPEND_TIME 0x08

typedef enum {
    KP_MSGSET_OK = 0,
    KP_MSGSET_CORRUPT,   /* framing, CRC-32 or a compressed payload: CORRUPT_MESSAGE */
    KP_MSGSET_INVALID,   /* empty, magic 2 inside, mixed magic, nested wrapper: INVALID_RECORD */
    KP_MSGSET_BAD_CODEC, /* a codec the legacy formats cannot carry (zstd and beyond) */
} kp_msgset_status_t;

const char *kp_msgset_status_str(kp_msgset_status_t st);

/* The magic of the message set or batch starting at p (byte 16 in both layouts), or -1 when
 * fewer than 17 bytes. */
int kp_msgset_magic(const uint8_t *p, size_t len);

/* Up-conversion (Produce v0–2): validates every message of the magic 0/1 message set
 * p[0..len) (CRC-32 of each, inner messages of wrappers included; every entry the same magic)
 * and writes into out (replaced) ONE v2 batch holding all its records in order: base offset
 * 0 (assigned on append), offset deltas 0..n-1, each record's timestamp (magic 0: none, -1),
 * no producer id, no headers. The batch is compressed with `codec` (KP_CODEC_*), or with the
 * codec of the first compressed wrapper when codec is -1 (compression.type=producer), as
 * Kafka's LogValidator does. Decompression is bounded by max_bytes (into scratch).
 * Returns KP_MSGSET_OK or the reason for refusing the whole set. */
kp_msgset_status_t kp_msgset_to_batch(const uint8_t *p, size_t len, int codec, kp_buf_t *scratch,
                                      kp_buf_t *out, size_t max_bytes);

/* Down-conversion (Fetch v0–3): appends to out the records of the stored v2 batches in
 * p[0..len) as a message set of `magic` (0 or 1), as Kafka's RecordsUtil.downConvert does:
 * records below first_offset and control batches are skipped, headers dropped; an
 * uncompressed batch becomes plain messages, a compressed one one wrapper message with the
 * batch's codec (inner offsets relative in magic 1; lz4 in magic 0 with the header checksum
 * old clients expect, KAFKA-3160); a LogAppendTime batch gives its append time to every
 * message. A trailing partial batch is ignored.
 * The result holds at most max_bytes: conversion stops at the first whole message (or
 * wrapper) that does not fit. If none fits, min_one (Fetch v3, KIP-74) returns the first one
 * whole; otherwise (Fetch v0–2, a hard limit) its first max_bytes bytes are returned, the
 * partial message old clients take as "grow the fetch size".
 * Returns KP_MSGSET_OK, KP_MSGSET_BAD_CODEC (a zstd batch: UNSUPPORTED_COMPRESSION_TYPE, as
 * Kafka answers a pre-v10 fetch) or KP_MSGSET_CORRUPT (a batch that cannot be decoded). A
 * bad batch after converted ones ends the result with KP_MSGSET_OK (the client gets what
 * precedes it; its next fetch, starting at the bad batch, gets the error). */
kp_msgset_status_t kp_msgset_from_batches(const uint8_t *p, size_t len, int magic,
                                          int64_t first_offset, int64_t max_bytes, int min_one,
                                          kp_buf_t *scratch, kp_buf_t *out, size_t inflate_max);

#endif
