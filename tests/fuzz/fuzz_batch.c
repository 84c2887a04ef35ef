/*
 * fuzz_batch.c — libFuzzer target for record batch v2 validation (storage/batch), the first
 * thing the broker runs on produced bytes and recovery runs on segment files.
 *
 * The input is one batch. So that mutations get past the checksum into the record framing,
 * the low bits of the first byte (part of baseOffset, which validation ignores) ask the target
 * to fix batchLength (bit 0) and the CRC-32C (bit 1) before validating. Checked: no crash or
 * out-of-bounds read for any input; when validation passes, the header agrees with itself,
 * kp_batch_total_size agrees with the length, and the in-place patches the log applies (base
 * offset, leader epoch, LogAppendTime) keep the batch valid.
 */
#include "core/crc32c.h"
#include "storage/batch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_batch: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t total = kp_batch_total_size(data, size);
    check(size >= KP_BATCH_LOG_OVERHEAD ? total != -1 || (data[8] & 0x80) : total == -1,
          "kp_batch_total_size");

    uint8_t *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    if (size >= KP_BATCH_HEADER_BYTES && size - KP_BATCH_LOG_OVERHEAD <= INT32_MAX) {
        if (p[0] & 1) st32(p + 8, (uint32_t)(size - KP_BATCH_LOG_OVERHEAD));
        if (p[0] & 2) st32(p + 17, kp_crc32c(0, p + 21, size - 21));
    }
    kp_batch_info_t info;
    kp_batch_status_t st = kp_batch_validate(p, size, &info);
    check(st >= KP_BATCH_OK && st <= KP_BATCH_BAD_CODEC, "status out of range");
    check(kp_batch_status_str(st) != NULL, "status string");
    if (st == KP_BATCH_OK) {
        check(size >= KP_BATCH_HEADER_BYTES, "ok below the header size");
        check((size_t)info.batch_length + KP_BATCH_LOG_OVERHEAD == size, "length");
        check(info.magic == 2, "magic");
        check(kp_crc32c(0, p + 21, size - 21) == info.crc, "crc");
        check(info.records_count >= 0 && info.last_offset_delta >= 0, "counts");
        check(info.records_count == 0 || info.last_offset_delta == info.records_count - 1,
              "lastOffsetDelta");
        check((info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK) <= 4, "codec");
        check(kp_batch_total_size(p, size) == (int64_t)size, "total size of a valid batch");

        kp_batch_set_base_offset(p, 0x123456789aLL);
        kp_batch_set_leader_epoch(p, 77);
        kp_batch_info_t again;
        check(kp_batch_validate(p, size, &again) == KP_BATCH_OK, "patched offsets invalid");
        check(again.base_offset == 0x123456789aLL && again.leader_epoch == 77, "patch");
        kp_batch_set_log_append_time(p, size, 1700000000000LL);
        check(kp_batch_validate(p, size, &again) == KP_BATCH_OK, "LogAppendTime invalid");
        check(again.max_timestamp == 1700000000000LL, "LogAppendTime timestamp");
        check(again.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME, "LogAppendTime attribute");
        check(again.records_count == info.records_count, "records count changed");
    }
    free(p);
    return 0;
}
