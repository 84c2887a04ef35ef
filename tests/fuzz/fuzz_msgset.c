/*
 * fuzz_msgset.c — libFuzzer target for the legacy message formats (storage/msgset): the
 * up-converter Produce v0–2 runs on client bytes and the down-converter Fetch v0–3 runs on
 * stored batches.
 *
 * The first input byte chooses: bit 0 up (the rest is a magic 0/1 message set) or down (the
 * rest is a run of v2 batches); bit 1 fixes every top-level CRC (CRC-32 of messages, CRC-32C
 * and batchLength of batches) so mutations reach the record framing and the codecs; bits
 * 2-3 the codec asked of up-conversion (-1 = the source's, none, gzip, lz4); bits 4-7 the
 * down-conversion budget. Checked: no crash or out-of-bounds access for any input; an
 * accepted message set becomes one valid v2 batch; every up-converted batch survives a round
 * trip (down to magic 0 and to magic 1, up again) with the same keys and values in order; a
 * down-converted result respects its byte budget unless min_one let one unit through whole.
 */
#include "core/crc32c.h"
#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/msgset.h"
#include "storage/records.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define INFLATE_MAX (4u << 20) /* keeps a compression bomb from slowing the fuzzer */

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_msgset: %s\n", what);
        abort();
    }
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void fix_messages(uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (len - pos >= 12 + 14) {
        uint32_t size = ld32(p + pos + 8);
        if (size < 14 || size > len - pos - 12) return;
        st32(p + pos + 12, (uint32_t)crc32(0, p + pos + 16, size - 4));
        pos += 12 + size;
    }
}

static void fix_batches(uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (len - pos >= KP_BATCH_HEADER_BYTES) {
        int64_t total = kp_batch_total_size(p + pos, len - pos);
        if (total < KP_BATCH_HEADER_BYTES || (size_t)total > len - pos) return;
        st32(p + pos + 17, kp_crc32c(0, p + pos + 21, (size_t)total - 21));
        pos += (size_t)total;
    }
}

/* Appends "<keylen><key><valuelen><value>" of every record of a valid batch to out. */
static void records_of(const uint8_t *batch, size_t len, kp_buf_t *out)
{
    kp_batch_info_t info;
    check(kp_batch_validate(batch, len, &info) == KP_BATCH_OK, "up-converted batch invalid");
    kp_buf_t plain;
    kp_buf_init(&plain);
    const uint8_t *body = batch + KP_BATCH_HEADER_BYTES;
    size_t body_len = len - KP_BATCH_HEADER_BYTES;
    int codec = info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec) {
        check(kp_decompress(codec, body, body_len, &plain, INFLATE_MAX * 4) == 0,
              "up-converted batch does not decompress");
        body = plain.data;
        body_len = plain.len;
    }
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body, body_len);
    kp_record_t rec;
    int rc, n = 0;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        kp_buf_append(out, &rec.keylen, sizeof(rec.keylen));
        if (rec.keylen > 0) kp_buf_append(out, rec.key, (size_t)rec.keylen);
        kp_buf_append(out, &rec.valuelen, sizeof(rec.valuelen));
        if (rec.valuelen > 0) kp_buf_append(out, rec.value, (size_t)rec.valuelen);
        n++;
    }
    check(rc == 0 && n == info.records_count, "up-converted records do not decode");
    kp_buf_free(&plain);
}

/* batch (up-converted) → magic 0/1 → batch again: same keys and values. */
static void round_trip(const uint8_t *batch, size_t len)
{
    kp_buf_t want, got, set, again, scratch;
    kp_buf_init(&want);
    kp_buf_init(&scratch);
    records_of(batch, len, &want);
    for (int magic = 0; magic <= 1; magic++) {
        kp_buf_init(&got);
        kp_buf_init(&set);
        kp_buf_init(&again);
        check(kp_msgset_from_batches(batch, len, magic, 0, INT64_MAX, 0, &scratch, &set,
                                     INFLATE_MAX * 4) == KP_MSGSET_OK,
              "down-conversion of an up-converted batch failed");
        check(set.len > 0, "down-conversion lost every record");
        check(kp_msgset_magic(set.data, set.len) == magic, "down-converted magic");
        check(kp_msgset_to_batch(set.data, set.len, -1, &scratch, &again, INFLATE_MAX * 4) ==
                  KP_MSGSET_OK,
              "a down-converted message set is refused");
        records_of(again.data, again.len, &got);
        check(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
              "round trip changed keys or values");
        kp_buf_free(&got);
        kp_buf_free(&set);
        kp_buf_free(&again);
    }
    kp_buf_free(&want);
    kp_buf_free(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1);
    if (len) memcpy(p, data + 1, len);
    kp_buf_t out, scratch;
    kp_buf_init(&out);
    kp_buf_init(&scratch);
    if (mode & 1) {
        if (mode & 2) fix_messages(p, len);
        static const int codecs[] = {-1, KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_LZ4};
        kp_msgset_status_t st =
            kp_msgset_to_batch(p, len, codecs[(mode >> 2) & 3], &scratch, &out, INFLATE_MAX);
        check(st >= KP_MSGSET_OK && st <= KP_MSGSET_BAD_CODEC, "status out of range");
        check(kp_msgset_status_str(st) != NULL, "status string");
        if (st == KP_MSGSET_OK) round_trip(out.data, out.len);
    } else {
        if (mode & 2) fix_batches(p, len);
        int64_t budget = (int64_t)(mode >> 4) * 64;
        int magic = (mode >> 2) & 1, min_one = (mode >> 3) & 1;
        kp_msgset_status_t st =
            kp_msgset_from_batches(p, len, magic, 0, budget, min_one, &scratch, &out, INFLATE_MAX);
        check(st == KP_MSGSET_OK || out.len == 0, "an error after output");
        if (!min_one) check((int64_t)out.len <= budget, "over the byte budget");
        if (st == KP_MSGSET_OK && out.len > 0 && (int64_t)out.len <= budget)
            check(kp_msgset_magic(out.data, out.len) == magic, "down-converted magic");
    }
    kp_buf_free(&out);
    kp_buf_free(&scratch);
    free(p);
    return 0;
}
