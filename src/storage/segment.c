/*
 * segment.c — segment files: create, open (index load or full scan with recovery), append,
 * lookup by offset and by time, seal. See segment.h for the file layout and the invariants.
 */
#include "storage/segment.h"

#include "core/buf.h"
#include "core/logging.h"
#include "core/fs.h"
#include "storage/records.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_CHUNK_BYTES (1 << 20)

static inline uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t ld64(const uint8_t *p)
{
    return ((uint64_t)ld32(p) << 32) | ld32(p + 4);
}
static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void seg_release(kp_ref_t *ref)
{
    kp_segment_t *seg = (kp_segment_t *)ref;
    if (seg->fd >= 0) kp_fs->close(seg->fd);
    if (seg->deleted) {
        char p[PATH_MAX];
        static const char *exts[] = {".log", ".index", ".timeindex", ".snapshot", ".txnindex"};
        for (int i = 0; i < 5; i++) {
            snprintf(p, sizeof(p), "%s%s", seg->path, exts[i]);
            kp_fs->unlink(p);
        }
    }
    free(seg->idx);
    free(seg->tidx);
    free(seg->path);
    free(seg);
}

void kp_segment_put(kp_segment_t *seg)
{
    if (seg) kp_ref_put(&seg->ref);
}

static kp_segment_t *seg_alloc(const char *dir, int64_t base_offset, int64_t now_ms)
{
    kp_segment_t *seg = kp_xcalloc(1, sizeof(*seg));
    atomic_init(&seg->ref.refs, 1);
    seg->ref.release = seg_release;
    seg->base_offset = base_offset;
    seg->next_offset = base_offset;
    seg->fd = -1;
    seg->max_timestamp = -1;
    seg->max_timestamp_offset = -1;
    seg->first_batch_timestamp = -1;
    seg->created_ms = now_ms;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%020lld", dir, (long long)base_offset);
    seg->path = kp_xstrdup(p);
    return seg;
}

static int open_file(const kp_segment_t *seg, const char *ext, int flags)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s%s", seg->path, ext);
    return kp_fs->open(p, flags, KP_FS_FILE_MODE);
}

kp_segment_t *kp_segment_create(const char *dir, int64_t base_offset, int64_t now_ms)
{
    kp_segment_t *seg = seg_alloc(dir, base_offset, now_ms);
    /* index files left by an earlier segment of the same base (a crash mid-delete) */
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s.index", seg->path);
    kp_fs->unlink(p);
    snprintf(p, sizeof(p), "%s.timeindex", seg->path);
    kp_fs->unlink(p);
    seg->fd = open_file(seg, ".log", O_RDWR | O_CREAT | O_TRUNC);
    if (seg->fd < 0) {
        int e = errno;
        kp_error("storage", "create %s.log: %s", seg->path, strerror(e));
        kp_segment_put(seg);
        errno = e;
        return NULL;
    }
    return seg;
}

static void idx_push(kp_segment_t *seg, int64_t offset, int64_t pos)
{
    if (seg->nidx == seg->idx_cap) {
        seg->idx_cap = seg->idx_cap ? seg->idx_cap * 2 : 64;
        seg->idx = kp_xrealloc(seg->idx, seg->idx_cap * sizeof(*seg->idx));
    }
    seg->idx[seg->nidx++] =
        (kp_index_entry_t){(uint32_t)(offset - seg->base_offset), (uint32_t)pos};
}

static void tidx_push(kp_segment_t *seg, int64_t ts, int64_t offset)
{
    if (seg->ntidx && seg->tidx[seg->ntidx - 1].timestamp >= ts) return;
    if (seg->ntidx == seg->tidx_cap) {
        seg->tidx_cap = seg->tidx_cap ? seg->tidx_cap * 2 : 64;
        seg->tidx = kp_xrealloc(seg->tidx, seg->tidx_cap * sizeof(*seg->tidx));
    }
    seg->tidx[seg->ntidx++] = (kp_time_entry_t){ts, (uint32_t)(offset - seg->base_offset)};
}

/* Accounts a batch at pos (already in the file) in the in-memory state. */
static void account(kp_segment_t *seg, int64_t pos, int64_t len, const kp_batch_info_t *b,
                    int32_t interval)
{
    if (seg->first_batch_timestamp < 0) seg->first_batch_timestamp = b->max_timestamp;
    if (b->max_timestamp > seg->max_timestamp) {
        seg->max_timestamp = b->max_timestamp;
        seg->max_timestamp_offset = kp_batch_last_offset(b);
    }
    if (seg->nidx == 0 || seg->bytes_since_index >= interval) {
        idx_push(seg, b->base_offset, pos);
        tidx_push(seg, seg->max_timestamp, kp_batch_last_offset(b));
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += len;
    seg->size = pos + len;
    seg->next_offset = kp_batch_last_offset(b) + 1;
}

int kp_segment_append(kp_segment_t *seg, const uint8_t *batch, size_t len,
                      const kp_batch_info_t *info, int32_t index_interval_bytes)
{
    if (len > UINT32_MAX || seg->size + (int64_t)len > (int64_t)UINT32_MAX) {
        errno = EFBIG; /* positions are 32-bit in the index, as Kafka's */
        return -1;
    }
    if (kp_fs_pwrite_all(seg->fd, batch, len, seg->size) < 0) {
        int e = errno;
        if (kp_fs->ftruncate(seg->fd, seg->size) < 0) {
            errno = e;
            return -2;
        }
        errno = e;
        return -1;
    }
    account(seg, seg->size, (int64_t)len, info, index_interval_bytes);
    return 0;
}

/* Scans [0, file size): validates every batch (CRC too when `full`), rebuilds the indexes and
 * truncates the file at the first invalid byte. */
static int scan(kp_segment_t *seg, int full, int32_t interval, int64_t contiguous_from,
                kp_scan_result_t *res)
{
    int64_t fsize = kp_fs->size(seg->fd);
    if (fsize < 0) return -1;
    seg->nidx = seg->ntidx = 0;
    seg->size = 0;
    seg->bytes_since_index = 0;
    seg->next_offset = seg->base_offset;
    seg->max_timestamp = seg->max_timestamp_offset = seg->first_batch_timestamp = -1;
    res->valid_bytes = 0;
    res->truncated = 0;
    res->why = NULL;

    kp_buf_t buf;
    kp_buf_init(&buf);
    int64_t pos = 0;
    while (pos < fsize) {
        uint8_t head[KP_BATCH_HEADER_BYTES];
        if (fsize - pos < KP_BATCH_HEADER_BYTES) {
            res->why = "partial batch header at the end";
            break;
        }
        if (kp_fs_pread_all(seg->fd, head, sizeof(head), pos) < 0) goto ioerr;
        kp_batch_info_t b;
        kp_batch_parse_header(head, &b);
        int64_t total = (int64_t)b.batch_length + KP_BATCH_LOG_OVERHEAD;
        if (b.batch_length < KP_BATCH_HEADER_BYTES - KP_BATCH_LOG_OVERHEAD || b.magic != 2) {
            res->why = "invalid batch header";
            break;
        }
        if (total > fsize - pos) {
            res->why = "batch extends past the end of the file (torn write)";
            break;
        }
        if (b.base_offset < seg->next_offset || b.last_offset_delta < 0) {
            res->why = "batch offsets go backwards";
            break;
        }
        if (seg->next_offset >= contiguous_from && b.base_offset != seg->next_offset) {
            res->why = "batch offsets are not contiguous (damaged base offset)";
            break;
        }
        /* baseOffset is outside the CRC: a damaged one must not overflow next_offset or the
         * 32-bit relative offsets of the index (Kafka's range check at recovery too) */
        if (b.base_offset - seg->base_offset > (int64_t)INT32_MAX - b.last_offset_delta) {
            res->why = "batch offsets beyond the segment's range";
            break;
        }
        if (full) {
            buf.len = 0;
            uint8_t *p = kp_buf_extend(&buf, (size_t)total);
            if (kp_fs_pread_all(seg->fd, p, (size_t)total, pos) < 0) goto ioerr;
            kp_batch_status_t st = kp_batch_validate_stored(p, (size_t)total, &b);
            if (st != KP_BATCH_OK) {
                res->why = kp_batch_status_str(st);
                break;
            }
        }
        account(seg, pos, total, &b, interval);
        pos += total;
    }
    kp_buf_free(&buf);
    res->valid_bytes = pos;
    if (pos < fsize) {
        res->truncated = 1;
        if (kp_fs->ftruncate(seg->fd, pos) < 0 || kp_fs->fdatasync(seg->fd) < 0) return -1;
    }
    return 0;
ioerr:
    kp_buf_free(&buf);
    return -1;
}

/* Loads sealed index files; 0 when both are present and consistent with the log size. */
static int load_indexes(kp_segment_t *seg, int64_t log_size)
{
    char p[PATH_MAX];
    uint8_t *data = NULL;
    size_t len;
    snprintf(p, sizeof(p), "%s.index", seg->path);
    if (kp_fs_read_all(p, 64u << 20, &data, &len) < 0 || len % 8 != 0) goto bad;
    seg->nidx = 0;
    for (size_t i = 0; i < len; i += 8) {
        uint32_t rel = ld32(data + i), pos = ld32(data + i + 4);
        if (seg->nidx &&
            (rel <= seg->idx[seg->nidx - 1].rel_offset || pos <= seg->idx[seg->nidx - 1].pos))
            goto bad;
        if ((int64_t)pos >= log_size) goto bad;
        idx_push(seg, seg->base_offset + rel, pos);
    }
    free(data);
    data = NULL;
    snprintf(p, sizeof(p), "%s.timeindex", seg->path);
    if (kp_fs_read_all(p, 64u << 20, &data, &len) < 0 || len % 12 != 0) goto bad;
    seg->ntidx = 0;
    for (size_t i = 0; i < len; i += 12) {
        int64_t ts = (int64_t)ld64(data + i);
        uint32_t rel = ld32(data + i + 8);
        tidx_push(seg, ts, seg->base_offset + rel);
    }
    free(data);
    if (log_size > 0 && seg->nidx == 0) return -1;
    return 0;
bad:
    free(data);
    seg->nidx = seg->ntidx = 0;
    return -1;
}

/* For a sealed segment opened from its indexes: walks batch headers after the last index
 * entry to learn next_offset and to check the file ends on a batch boundary. */
static int tail_walk(kp_segment_t *seg, int64_t log_size)
{
    int64_t pos = seg->nidx ? seg->idx[seg->nidx - 1].pos : 0;
    seg->next_offset = seg->base_offset;
    while (pos < log_size) {
        uint8_t head[27];
        if (log_size - pos < KP_BATCH_HEADER_BYTES) return -1;
        if (kp_fs_pread_all(seg->fd, head, sizeof(head), pos) < 0) return -1;
        int64_t total = (int64_t)(int32_t)ld32(head + 8) + KP_BATCH_LOG_OVERHEAD;
        if (total < KP_BATCH_HEADER_BYTES || total > log_size - pos) return -1;
        int64_t base = (int64_t)ld64(head);
        int32_t delta = (int32_t)ld32(head + 23);
        /* as in scan(): a damaged base offset sends the segment to a full scan */
        if (base < seg->next_offset || delta < 0 ||
            base - seg->base_offset > (int64_t)INT32_MAX - delta)
            return -1;
        seg->next_offset = base + delta + 1;
        pos += total;
    }
    seg->size = log_size;
    if (seg->ntidx) {
        seg->max_timestamp = seg->tidx[seg->ntidx - 1].timestamp;
        seg->max_timestamp_offset = seg->base_offset + seg->tidx[seg->ntidx - 1].rel_offset;
        seg->first_batch_timestamp = seg->tidx[0].timestamp;
    }
    seg->sealed = 1;
    return 0;
}

kp_segment_t *kp_segment_open_strict(const char *dir, int64_t base_offset, int full_scan,
                                     int32_t interval, int64_t now_ms, int64_t contiguous_from,
                                     kp_scan_result_t *res)
{
    kp_segment_t *seg = seg_alloc(dir, base_offset, now_ms);
    res->truncated = 0;
    res->why = NULL;
    seg->fd = open_file(seg, ".log", O_RDWR);
    if (seg->fd < 0) goto fail;
    int64_t size = kp_fs->size(seg->fd);
    if (size < 0) goto fail;
    res->valid_bytes = size;
    if (!full_scan && load_indexes(seg, size) == 0 && tail_walk(seg, size) == 0) return seg;
    if (scan(seg, 1, interval, contiguous_from, res) < 0) goto fail;
    return seg;
fail:
    kp_error("storage", "open %s.log: %s", seg->path, strerror(errno));
    kp_segment_put(seg);
    return NULL;
}

kp_segment_t *kp_segment_open(const char *dir, int64_t base_offset, int full_scan, int32_t interval,
                              int64_t now_ms, kp_scan_result_t *res)
{
    return kp_segment_open_strict(dir, base_offset, full_scan, interval, now_ms, INT64_MAX, res);
}

void kp_segment_index_floor(const kp_segment_t *seg, int64_t offset, int64_t *pos)
{
    uint32_t lo = 0, hi = seg->nidx;
    int64_t rel = offset - seg->base_offset;
    *pos = 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((int64_t)seg->idx[mid].rel_offset <= rel) {
            *pos = seg->idx[mid].pos;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
}

int kp_segment_find(const kp_segment_t *seg, int64_t offset, int64_t from, int64_t limit,
                    int64_t *pos, int64_t *batch_len, int64_t *batch_base)
{
    int64_t p = from;
    while (p + KP_BATCH_HEADER_BYTES <= limit) {
        uint8_t head[27];
        if (kp_fs_pread_all(seg->fd, head, sizeof(head), p) < 0) return -1;
        int64_t total = (int64_t)(int32_t)ld32(head + 8) + KP_BATCH_LOG_OVERHEAD;
        if (total < KP_BATCH_HEADER_BYTES) return -1;
        int64_t base = (int64_t)ld64(head);
        int64_t last = base + (int32_t)ld32(head + 23);
        if (last >= offset) {
            *pos = p;
            *batch_len = total;
            *batch_base = base;
            return 0;
        }
        p += total;
    }
    return 1;
}

/* batches are read whole to find the record; larger ones (never written by a producer within
 * message.max.bytes) answer with their base offset */
#define OFFSET_FOR_TIME_BATCH_MAX (64LL << 20)

int64_t kp_segment_offset_for_time(const kp_segment_t *seg, int64_t ts, int64_t limit,
                                   int64_t *ts_out)
{
    /* time index: largest entry with timestamp < ts gives a safe starting offset */
    int64_t start_offset = seg->base_offset;
    for (uint32_t i = 0; i < seg->ntidx; i++) {
        if (seg->tidx[i].timestamp >= ts) break;
        start_offset = seg->base_offset + seg->tidx[i].rel_offset;
    }
    int64_t p;
    kp_segment_index_floor(seg, start_offset, &p);
    while (p + KP_BATCH_HEADER_BYTES <= limit) {
        uint8_t head[43];
        if (kp_fs_pread_all(seg->fd, head, sizeof(head), p) < 0) return -1;
        int64_t total = (int64_t)(int32_t)ld32(head + 8) + KP_BATCH_LOG_OVERHEAD;
        if (total < KP_BATCH_HEADER_BYTES) return -1;
        if ((int64_t)ld64(head + 35) >= ts) {
            /* this batch holds the answer: the first of its records at or after ts, as
             * Kafka answers (not the batch's base offset, which may be earlier) */
            int64_t off = (int64_t)ld64(head), found_ts = (int64_t)ld64(head + 35);
            if (p + total <= limit && total <= OFFSET_FOR_TIME_BATCH_MAX) {
                uint8_t *batch = kp_xmalloc((size_t)total);
                kp_buf_t scratch;
                kp_buf_init(&scratch);
                int64_t o, t;
                if (kp_fs_pread_all(seg->fd, batch, (size_t)total, p) == 0 &&
                    kp_batch_first_at_or_after(batch, (size_t)total, ts, &o, &t, &scratch,
                                               OFFSET_FOR_TIME_BATCH_MAX * 8) == 1) {
                    off = o;
                    found_ts = t;
                }
                kp_buf_free(&scratch);
                free(batch);
            }
            *ts_out = found_ts;
            return off;
        }
        p += total;
    }
    return -1;
}

int kp_segment_flush(kp_segment_t *seg)
{
    return kp_fs->fdatasync(seg->fd);
}

static int write_index_file(kp_segment_t *seg, const char *ext, const uint8_t *data, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s%s", seg->path, ext);
    return kp_fs_write_atomic(p, data, len);
}

int kp_segment_seal(kp_segment_t *seg)
{
    if (seg->sealed) return 0;
    if (kp_fs->fdatasync(seg->fd) < 0) return -1;
    /* a final time-index entry for the segment's max timestamp (Kafka appends one at roll
     * too): entries are only made every index.interval.bytes, and a sealed segment opened
     * from its files takes max_timestamp from the last entry */
    if (seg->max_timestamp >= 0) tidx_push(seg, seg->max_timestamp, seg->max_timestamp_offset);
    uint8_t *buf = kp_xmalloc((size_t)seg->nidx * 8 + (size_t)seg->ntidx * 12 + 1);
    for (uint32_t i = 0; i < seg->nidx; i++) {
        st32(buf + i * 8, seg->idx[i].rel_offset);
        st32(buf + i * 8 + 4, seg->idx[i].pos);
    }
    int rc = write_index_file(seg, ".index", buf, (size_t)seg->nidx * 8);
    for (uint32_t i = 0; rc == 0 && i < seg->ntidx; i++) {
        uint64_t ts = (uint64_t)seg->tidx[i].timestamp;
        st32(buf + i * 12, (uint32_t)(ts >> 32));
        st32(buf + i * 12 + 4, (uint32_t)ts);
        st32(buf + i * 12 + 8, seg->tidx[i].rel_offset);
    }
    if (rc == 0) rc = write_index_file(seg, ".timeindex", buf, (size_t)seg->ntidx * 12);
    free(buf);
    if (rc == 0) seg->sealed = 1;
    return rc;
}
