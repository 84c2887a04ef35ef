/*
 * fuzz_segment_recovery.c — libFuzzer target for crash recovery (storage/segment, storage/log):
 * arbitrary bytes as the only segment file of a partition, then kp_log_open.
 *
 * Input: one flags byte, then the segment's bytes. Flag bit 0 re-signs (CRC-32C) every batch
 * the length fields delimit, so mutations reach past the checksum into offsets, lengths and
 * record framing; bit 1 also appends after recovery and reopens. Checked: the open succeeds
 * and never crashes; everything below the high watermark reads back as valid batches with
 * increasing offsets; the recovered log end is stable across a reopen and a new append gets
 * exactly that offset.
 */
#include "core/crc32c.h"
#include "core/logging.h"
#include "storage/batch.h"
#include "core/fs.h"
#include "storage/log.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[PATH_MAX];

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_segment_recovery: %s\n", what);
        abort();
    }
}

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

static void remove_dir(void)
{
    kp_fs_remove_tree(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    kp_logging_set_level((kp_loglevel_t)(KP_LOG_ERROR + 1));
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/kpool-fuzz-seg-XXXXXX", base);
    check(mkdtemp(dir) != NULL, "mkdtemp");
    atexit(remove_dir);
    return 0;
}

/* A minimal valid batch of one record (for the append after recovery). */
static size_t one_batch(uint8_t *b)
{
    /* length 9; attributes, timestampDelta 0, offsetDelta 0, null key, value "abc", no headers */
    static const uint8_t rec[] = {0x12, 0x00, 0x00, 0x00, 0x01, 0x06, 'a', 'b', 'c', 0x00};
    memset(b, 0, KP_BATCH_HEADER_BYTES);
    size_t len = KP_BATCH_HEADER_BYTES + sizeof(rec);
    st32(b + 8, (uint32_t)(len - KP_BATCH_LOG_OVERHEAD));
    b[16] = 2;
    memset(b + 43, 0xff, 8); /* producerId -1 */
    memset(b + 51, 0xff, 2); /* producerEpoch -1 */
    memset(b + 53, 0xff, 4); /* baseSequence -1 */
    st32(b + 57, 1);
    memcpy(b + KP_BATCH_HEADER_BYTES, rec, sizeof(rec));
    st32(b + 17, kp_crc32c(0, b + 21, len - 21));
    return len;
}

/* Reads [log start, HWM) back; every batch must be valid and offsets must increase. */
static void read_all(kp_log_t *log)
{
    int64_t start, hwm, leo;
    kp_log_offsets(log, &start, &hwm, &leo);
    check(start <= hwm && hwm <= leo, "offset order");
    int64_t offset = start;
    while (offset < hwm) {
        kp_log_read_t rd;
        kp_log_read(log, offset, 1 << 20, 1, &rd);
        check(rd.error == 0, "read error below the HWM");
        check(rd.len > 0 && rd.seg != NULL, "nothing to read below the HWM");
        uint8_t *buf = malloc((size_t)rd.len);
        check(kp_fs_pread_all(rd.seg->fd, buf, (size_t)rd.len, rd.pos) == 0, "pread");
        int64_t pos = 0;
        while (pos < rd.len) {
            int64_t total = kp_batch_total_size(buf + pos, (size_t)(rd.len - pos));
            check(total > 0 && pos + total <= rd.len, "partial batch below the HWM");
            kp_batch_info_t info;
            check(kp_batch_validate_stored(buf + pos, (size_t)total, &info) == KP_BATCH_OK,
                  "recovered batch does not validate");
            check(kp_batch_last_offset(&info) >= offset, "offsets go backwards");
            offset = kp_batch_last_offset(&info) + 1;
            pos += total;
        }
        free(buf);
        kp_segment_put(rd.seg);
    }
    check(offset == hwm, "read past the HWM");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t len = size - 1;
    uint8_t *seg = malloc(len ? len : 1);
    if (len) memcpy(seg, data + 1, len);
    if (flags & 1) {
        size_t pos = 0;
        while (len - pos >= KP_BATCH_HEADER_BYTES) {
            int64_t total = (int64_t)(int32_t)ld32(seg + pos + 8) + KP_BATCH_LOG_OVERHEAD;
            if (total < KP_BATCH_HEADER_BYTES || (uint64_t)total > len - pos) break;
            st32(seg + pos + 17, kp_crc32c(0, seg + pos + 21, (size_t)total - 21));
            pos += (size_t)total;
        }
    }

    kp_fs_remove_tree(dir);
    check(mkdir(dir, 0700) == 0, "mkdir");
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", dir);
    FILE *f = fopen(path, "wb");
    check(f != NULL, "create segment");
    check(!len || fwrite(seg, 1, len, f) == len, "write segment");
    fclose(f);
    free(seg);

    kp_log_config_t cfg;
    kp_log_config_defaults(&cfg);
    cfg.segment_bytes = 1 << 20;
    cfg.durable = 0;
    kp_log_t *log = kp_log_open(dir, &cfg, 1700000000000LL);
    check(log != NULL, "kp_log_open failed");
    read_all(log);
    int64_t start, hwm, leo;
    kp_log_offsets(log, &start, &hwm, &leo);
    check(hwm == leo, "recovered data is not all visible");
    kp_log_close(log);

    if (flags & 2) {
        log = kp_log_open(dir, &cfg, 1700000000000LL);
        check(log != NULL, "second open failed");
        int64_t s2, h2, l2;
        kp_log_offsets(log, &s2, &h2, &l2);
        check(s2 == start && h2 == hwm && l2 == leo, "recovery is not stable");
        uint8_t b[128];
        size_t blen = one_batch(b);
        kp_batch_info_t info;
        check(kp_batch_validate(b, blen, &info) == KP_BATCH_OK, "own batch");
        kp_append_result_t res;
        kp_log_append(log, b, blen, &info, 1700000000000LL, &res);
        check(res.status == KP_APPEND_OK && res.base_offset == leo, "append after recovery");
        read_all(log);
        kp_log_close(log);
    }
    return 0;
}
