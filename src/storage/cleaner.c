/*
 * cleaner.c — log compaction (see cleaner.h).
 *
 * One pass over a log:
 *   1. The cleanable range is [log start, end) where end is the first of: the active
 *      segment, the high watermark, the first segment younger than min.compaction.lag.ms.
 *      The dirty part starts at the checkpoint in <dir>/cleaner-offset-checkpoint.
 *   2. Due when dirty/(clean+dirty) >= min.cleanable.dirty.ratio, or the oldest dirty data
 *      is older than max.compaction.lag.ms.
 *   3. The offset map learns the latest offset of every key in the dirty part (stopping
 *      early, at a batch boundary, when the map is full: the rest stays dirty).
 *   4. Each segment below that point is rewritten into <base>.log.cleaned.tmp keeping a
 *      record when no later record has its key, dropping tombstones past
 *      delete.retention.ms. Batches keep their base offset; untouched batches are copied
 *      byte for byte; changed ones are rebuilt with the same codec.
 *   5. Swap: the temp file is fsynced, the segment's index files removed, the temp file
 *      renamed over <base>.log (atomic), the new segment opened, indexed and sealed, and
 *      the log's segment list updated. A crash at any point leaves either the old or the
 *      new file under the name, both valid; a missing index is rebuilt on start and temp
 *      files are removed.
 *   6. The checkpoint moves to the end of the map's range.
 * Transactions, as Kafka's cleaner: nothing at or above the last stable offset is cleaned;
 * records of aborted transactions (the log's aborted-transaction index) are removed and never
 * enter the offset map, so they cannot shadow a committed record of the same key. A marker
 * (COMMIT/ABORT control batch) stays while any record of its transaction does; the first pass
 * that finds its transaction without data (a later record of every key, an abort) gives it a
 * delete horizon, now + delete.retention.ms, written as Kafka 3 does (KIP-534: baseTimestamp,
 * attribute 0x40), and the first pass after that horizon removes it. An ABORT marker's entry
 * in the aborted-transaction index is forgotten once its records are gone (after the swap of
 * the segment that held the last of them), and the marker is removed only in a later pass
 * that started without that entry, so a crash in between never leaves an entry without its
 * marker (a read_committed client would then skip the producer's later records). The
 * checkpoint keeps the earliest pending horizon so that a pass runs when it passes.
 */
#include "storage/cleaner.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/fs.h"
#include "core/hmap.h"
#include "storage/offset_map.h"
#include "storage/records.h"
#include "storage/txn_index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK (1 << 20)

struct kp_cleaner {
    kp_cleaner_config_t cfg;
    kp_offset_map_t map;
    kp_buf_t read_buf, scratch, out_batch, write_buf;
    int64_t throttle_start_us;
    int64_t throttle_bytes;
    kp_aborted_txn_t *aborted; /* this pass's copy of the log's aborted transactions */
    size_t naborted;
    kp_hmap_t txn_data;         /* pass 2: producer id -> its open transaction kept a record */
    kp_aborted_txn_t *forget;   /* pass 2: the ABORTs of the segment being cleaned whose */
    size_t nforget, forget_cap; /* records are all gone (kp_log_forget_aborted) */
};

/* 1 when the aborted-transaction index held, at the start of this pass, the transaction
 * whose ABORT marker is at offset (c->aborted is ordered by marker). */
static int abort_indexed(const kp_cleaner_t *c, int64_t producer_id, int64_t offset)
{
    size_t lo = 0, hi = c->naborted;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->aborted[mid].last_offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < c->naborted && c->aborted[lo].last_offset == offset; lo++)
        if (c->aborted[lo].producer_id == producer_id) return 1;
    return 0;
}

/* 1 when the batch belongs to an aborted transaction. */
static int batch_aborted(const kp_cleaner_t *c, const kp_batch_info_t *b)
{
    if (!(b->attributes & KP_BATCH_ATTR_TRANSACTIONAL) || b->producer_id < 0) return 0;
    for (size_t i = 0; i < c->naborted; i++)
        if (c->aborted[i].producer_id == b->producer_id &&
            c->aborted[i].first_offset <= b->base_offset &&
            b->base_offset < c->aborted[i].last_offset)
            return 1;
    return 0;
}

kp_cleaner_t *kp_cleaner_new(const kp_cleaner_config_t *cfg)
{
    kp_cleaner_t *c = kp_xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    kp_offset_map_init(&c->map, cfg->dedupe_buffer_bytes);
    kp_buf_init(&c->read_buf);
    kp_buf_init(&c->scratch);
    kp_buf_init(&c->out_batch);
    kp_buf_init(&c->write_buf);
    kp_hmap_init(&c->txn_data);
    return c;
}

void kp_cleaner_free(kp_cleaner_t *c)
{
    if (!c) return;
    kp_offset_map_free(&c->map);
    kp_buf_free(&c->read_buf);
    kp_buf_free(&c->scratch);
    kp_buf_free(&c->out_batch);
    kp_buf_free(&c->write_buf);
    free(c->aborted);
    kp_hmap_free(&c->txn_data);
    free(c->forget);
    free(c);
}

/* Sleeps as needed to keep I/O under the configured rate. */
static void throttle(kp_cleaner_t *c, int64_t bytes)
{
    if (c->cfg.io_bytes_per_second <= 0) return;
    int64_t now = kp_mono_us();
    if (now - c->throttle_start_us > 1000000) {
        c->throttle_start_us = now;
        c->throttle_bytes = 0;
    }
    c->throttle_bytes += bytes;
    int64_t due_us = c->throttle_bytes * 1000000 / c->cfg.io_bytes_per_second;
    int64_t ahead = due_us - (now - c->throttle_start_us);
    if (ahead > 1000) {
        struct timespec ts = {ahead / 1000000, (ahead % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- checkpoint ---- */

/* "<first dirty offset> <oldest retained tombstone timestamp or -1> <earliest delete horizon
 * of a kept marker or -1>" (a file of two fields, older, has no horizon) */
static void read_checkpoint(const char *dir, int64_t *first_dirty, int64_t *oldest_tombstone,
                            int64_t *marker_horizon)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/cleaner-offset-checkpoint", dir);
    uint8_t *data;
    size_t len;
    *first_dirty = 0;
    *oldest_tombstone = *marker_horizon = -1;
    if (kp_fs_read_all(path, 128, &data, &len) == 0) {
        int64_t a = 0, b = -1, h = -1;
        int n = sscanf((const char *)data, "%" SCNd64 " %" SCNd64 " %" SCNd64, &a, &b, &h);
        if (n >= 1 && a >= 0) *first_dirty = a;
        if (n >= 2) *oldest_tombstone = b;
        if (n == 3) *marker_horizon = h;
        free(data);
    }
}

static int write_checkpoint(const char *dir, int64_t first_dirty, int64_t oldest_tombstone,
                            int64_t marker_horizon)
{
    char path[PATH_MAX], text[96];
    snprintf(path, sizeof(path), "%s/cleaner-offset-checkpoint", dir);
    int n = snprintf(text, sizeof(text), "%" PRId64 " %" PRId64 " %" PRId64 "\n", first_dirty,
                     oldest_tombstone, marker_horizon);
    return kp_fs_write_atomic(path, text, (size_t)n);
}

static int raise_compacted_below(const char *dir, int64_t offset)
{
    char path[PATH_MAX], text[32];
    snprintf(path, sizeof(path), "%s/compacted-below", dir);
    uint8_t *data;
    size_t len;
    int64_t cur = 0;
    if (kp_fs_read_all(path, 64, &data, &len) == 0) {
        if (sscanf((const char *)data, "%" SCNd64, &cur) != 1) cur = 0;
        free(data);
    }
    if (cur >= offset) return 0;
    int n = snprintf(text, sizeof(text), "%" PRId64 "\n", offset);
    return kp_fs_write_atomic(path, text, (size_t)n);
}

/* ---- batch iteration over a segment ---- */

typedef int (*batch_cb)(kp_cleaner_t *c, const uint8_t *batch, size_t len, void *arg);

/* Calls cb for each batch of seg in [0, limit). 0, cb's nonzero value, or -1 on I/O error. */
static int for_each_batch(kp_cleaner_t *c, kp_segment_t *seg, int64_t limit, batch_cb cb, void *arg)
{
    int64_t pos = 0;
    kp_buf_t *b = &c->read_buf;
    while (pos + KP_BATCH_HEADER_BYTES <= limit) {
        size_t want = (size_t)(limit - pos < READ_CHUNK ? limit - pos : READ_CHUNK);
        b->len = 0;
        uint8_t *p = kp_buf_extend(b, want);
        if (kp_fs_pread_all(seg->fd, p, want, pos) < 0) return -1;
        throttle(c, (int64_t)want);
        size_t at = 0;
        while (at + KP_BATCH_HEADER_BYTES <= want) {
            int64_t total = kp_batch_total_size(b->data + at, want - at);
            if (total < KP_BATCH_HEADER_BYTES) return -1;
            if ((size_t)total > want - at) {
                if (at > 0) break; /* read again from this batch */
                /* a batch larger than the chunk: read it whole */
                if (pos + total > limit) return -1;
                b->len = 0;
                p = kp_buf_extend(b, (size_t)total);
                if (kp_fs_pread_all(seg->fd, p, (size_t)total, pos) < 0) return -1;
                want = (size_t)total;
            }
            int r = cb(c, b->data + at, (size_t)total, arg);
            if (r) return r;
            at += (size_t)total;
        }
        pos += (int64_t)at;
    }
    return 0;
}

/* ---- pass 1: the offset map ---- */

typedef struct map_ctx {
    int64_t end;       /* stop at this offset (exclusive) */
    int64_t mapped_to; /* offsets below this are in the map */
    int full;
} map_ctx_t;

static int map_key(const kp_record_t *rec, void *arg)
{
    kp_offset_map_t *m = arg;
    if (rec->keylen >= 0)
        kp_offset_map_put(m, kp_key_hash(rec->key, (size_t)rec->keylen), rec->offset);
    return 1;
}

static int map_batch(kp_cleaner_t *c, const uint8_t *batch, size_t len, void *arg)
{
    map_ctx_t *mc = arg;
    kp_batch_info_t info;
    kp_batch_parse_header(batch, &info);
    if (info.base_offset >= mc->end) return 1;
    if (kp_batch_last_offset(&info) < mc->mapped_to) return 0; /* already mapped (clean) */
    if (c->map.used + (size_t)info.records_count > c->map.limit) {
        mc->full = 1;
        return 1;
    }
    if ((info.attributes & KP_BATCH_ATTR_CONTROL) || batch_aborted(c, &info)) {
        mc->mapped_to = kp_batch_last_offset(&info) + 1;
        return 0;
    }
    /* kp_batch_filter walks (and decompresses) the records; map_key keeps all of them */
    int r = kp_batch_filter(batch, len, map_key, &c->map, &c->scratch, &c->out_batch,
                            c->cfg.max_batch_bytes);
    (void)r; /* an undecodable batch maps nothing: its records are all kept later */
    mc->mapped_to = kp_batch_last_offset(&info) + 1;
    return 0;
}

/* ---- pass 2: rewriting segments ---- */

typedef struct clean_ctx {
    kp_cleaner_t *c;
    int64_t map_end;           /* records at or beyond it are always kept */
    int64_t delete_horizon_ms; /* tombstones older than this go */
    int fd;
    int64_t written;
    kp_clean_stats_t *st;
    int64_t oldest_tombstone; /* of the tombstones kept, -1 when none */
    int64_t now_ms, delete_retention_ms;
    int64_t marker_horizon; /* the earliest delete horizon of the markers kept, -1 when none */
} clean_ctx_t;

static int keep_record(const kp_record_t *rec, void *arg)
{
    clean_ctx_t *cc = arg;
    if (rec->offset >= cc->map_end || rec->keylen < 0) return 1;
    int64_t latest = kp_offset_map_get(&cc->c->map, kp_key_hash(rec->key, (size_t)rec->keylen));
    if (latest > rec->offset) {
        cc->st->records_removed++;
        return 0; /* a later record has this key */
    }
    if (rec->valuelen < 0) {
        if (rec->timestamp < cc->delete_horizon_ms) {
            cc->st->tombstones_removed++;
            return 0; /* a tombstone everyone had delete.retention.ms to see */
        }
        if (cc->oldest_tombstone < 0 || rec->timestamp < cc->oldest_tombstone)
            cc->oldest_tombstone = rec->timestamp;
    }
    return 1;
}

static int write_out(clean_ctx_t *cc, const uint8_t *p, size_t len)
{
    if (kp_fs_pwrite_all(cc->fd, p, len, cc->written) < 0) return -1;
    cc->written += (int64_t)len;
    cc->st->bytes_written += (int64_t)len;
    throttle(cc->c, (int64_t)len);
    return 0;
}

static void note_horizon(clean_ctx_t *cc, int64_t horizon)
{
    if (cc->marker_horizon < 0 || horizon < cc->marker_horizon) cc->marker_horizon = horizon;
}

/* A marker below the map's end: kept while its transaction has a record left; then given a
 * delete horizon; removed after it (see the top of this file). */
static int clean_marker(clean_ctx_t *cc, const uint8_t *batch, size_t len,
                        const kp_batch_info_t *info)
{
    kp_cleaner_t *c = cc->c;
    int64_t pid = info->producer_id;
    int16_t type;
    int32_t coordinator_epoch;
    /* the marker closes its producer's transaction */
    int has_data = kp_hmap_del(&c->txn_data, &pid, sizeof(pid)) != NULL;
    if (has_data || pid < 0 || kp_control_batch_parse(batch, len, &type, &coordinator_epoch) < 0)
        return write_out(cc, batch, len);
    int indexed = 0;
    if (type == KP_CONTROL_ABORT) {
        /* its records are gone: its index entry goes after this segment's swap */
        if (c->nforget == c->forget_cap) {
            c->forget_cap = c->forget_cap ? 2 * c->forget_cap : 16;
            c->forget = kp_xrealloc(c->forget, c->forget_cap * sizeof(*c->forget));
        }
        c->forget[c->nforget++] = (kp_aborted_txn_t){pid, -1, info->base_offset, -1};
        indexed = abort_indexed(c, pid, info->base_offset);
    }
    if (info->attributes & KP_BATCH_ATTR_DELETE_HORIZON) {
        if (info->base_timestamp <= cc->now_ms && !indexed) {
            cc->st->markers_removed++;
            return 0;
        }
        note_horizon(cc, info->base_timestamp);
        return write_out(cc, batch, len);
    }
    int64_t horizon = cc->delete_retention_ms > INT64_MAX - cc->now_ms
                          ? INT64_MAX
                          : cc->now_ms + cc->delete_retention_ms;
    c->out_batch.len = 0;
    if (kp_control_batch_set_delete_horizon(&c->out_batch, batch, len, horizon) < 0)
        return write_out(cc, batch, len); /* not one we know how to mark: kept */
    note_horizon(cc, horizon);
    return write_out(cc, c->out_batch.data, c->out_batch.len);
}

static int clean_batch(kp_cleaner_t *c, const uint8_t *batch, size_t len, void *arg)
{
    clean_ctx_t *cc = arg;
    kp_batch_info_t info;
    kp_batch_parse_header(batch, &info);
    if (info.base_offset >= cc->map_end) return write_out(cc, batch, len) < 0 ? -1 : 0;
    if (info.attributes & KP_BATCH_ATTR_CONTROL)
        return clean_marker(cc, batch, len, &info) < 0 ? -1 : 0;
    if (batch_aborted(c, &info)) {
        cc->st->records_removed += info.records_count;
        return 0;
    }
    int r = kp_batch_filter(batch, len, keep_record, cc, &c->scratch, &c->out_batch,
                            c->cfg.max_batch_bytes);
    if (r != KP_FILTER_NONE && (info.attributes & KP_BATCH_ATTR_TRANSACTIONAL) &&
        info.producer_id >= 0) /* its marker stays while this record does */
        kp_hmap_put(&c->txn_data, &info.producer_id, sizeof(info.producer_id), (void *)1);
    switch (r) {
    case KP_FILTER_NONE:
        /* the batch vanishes; idempotent-producer state does not depend on it (it lives in
         * memory, in snapshots, and in the active segment, which is never cleaned) */
        return 0;
    case KP_FILTER_SOME:
        return write_out(cc, c->out_batch.data, c->out_batch.len) < 0 ? -1 : 0;
    default:
        return write_out(cc, batch, len) < 0 ? -1 : 0; /* all kept, or not decodable */
    }
}

static void path_of(const char *dir, int64_t base, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRId64 "%s", dir, base, ext);
}

/* Rewrites one segment and swaps it in. 1 when swapped, 0 when the segment went away
 * meanwhile, -1 on I/O error. dir: the log's directory as copied under its lock (a topic
 * deletion renames it and frees log->dir meanwhile; the old path then simply fails). */
static int clean_segment(kp_cleaner_t *c, kp_log_t *log, const char *dir, int32_t interval,
                         kp_segment_t *seg, clean_ctx_t *cc)
{
    char tmp[PATH_MAX], final[PATH_MAX], idx[PATH_MAX], tidx[PATH_MAX];
    path_of(dir, seg->base_offset, ".log.cleaned.tmp", tmp, sizeof(tmp));
    path_of(dir, seg->base_offset, ".log", final, sizeof(final));
    path_of(dir, seg->base_offset, ".index", idx, sizeof(idx));
    path_of(dir, seg->base_offset, ".timeindex", tidx, sizeof(tidx));
    kp_clean_stats_t *st = cc->st;
    c->nforget = 0;
    cc->written = 0;
    cc->fd = kp_fs->open(tmp, O_RDWR | O_CREAT | O_TRUNC, KP_FS_FILE_MODE);
    if (cc->fd < 0) return -1;
    st->bytes_read += seg->size;
    int rc = for_each_batch(c, seg, seg->size, clean_batch, cc);
    if (rc == 0 && kp_fs->fdatasync(cc->fd) < 0) rc = -1;
    kp_fs->close(cc->fd);
    if (rc != 0) {
        kp_fs->unlink(tmp);
        return -1;
    }
    /* swap the file under the log lock so retention cannot delete the segment meanwhile */
    pthread_mutex_lock(&log->lock);
    int present = 0;
    for (int i = 0; i < log->nsegs - 1; i++) present |= log->segs[i] == seg;
    if (!present) {
        pthread_mutex_unlock(&log->lock);
        kp_fs->unlink(tmp);
        return 0;
    }
    kp_fs->unlink(idx);
    kp_fs->unlink(tidx);
    if (kp_fs->rename(tmp, final) < 0) {
        pthread_mutex_unlock(&log->lock);
        kp_fs->unlink(tmp);
        return -1;
    }
    kp_fs_fsync_dir(log->dir);
    pthread_mutex_unlock(&log->lock);

    kp_scan_result_t res;
    kp_segment_t *fresh = kp_segment_open(dir, seg->base_offset, 1, interval, kp_wall_ms(), &res);
    if (!fresh || kp_segment_seal(fresh) < 0) {
        /* the file is in place and valid; the old segment object still serves reads
         * until the next start rebuilds the index */
        kp_segment_put(fresh);
        return -1;
    }
    pthread_mutex_lock(&log->lock);
    for (int i = 0; i < log->nsegs - 1; i++) {
        if (log->segs[i] != seg) continue;
        log->segs[i] = fresh;
        fresh = NULL;
        if (log->hwm_seg == seg) {
            /* the HWM sat at the end of this segment: it is at the end of the new one */
            kp_ref_get(&log->segs[i]->ref);
            log->hwm_seg = log->segs[i];
            log->hwm_pos = log->segs[i]->size;
            kp_segment_put(seg); /* the HWM's reference */
        }
        kp_segment_put(seg); /* the log's reference; same path, so not marked deleted */
        break;
    }
    pthread_mutex_unlock(&log->lock);
    if (fresh) kp_segment_put(fresh); /* the segment was deleted meanwhile */
    st->segments++;
    /* the aborted transactions whose records are gone now: out of the index */
    if (c->nforget && kp_log_forget_aborted(log, seg->base_offset, c->forget, c->nforget) < 0)
        kp_warn("storage", "%s: rewriting the transaction index of segment %" PRId64 " failed: %s",
                dir, seg->base_offset, strerror(errno));
    return 1;
}

/* ---- one pass ---- */

int kp_cleaner_clean(kp_cleaner_t *c, kp_log_t *log, const kp_compaction_t *p, int64_t now_ms,
                     kp_clean_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    /* snapshot the cleanable segments (referenced) */
    pthread_mutex_lock(&log->lock);
    if (kp_log_is_offline(log) || log->nsegs < 2) {
        pthread_mutex_unlock(&log->lock);
        return 0;
    }
    int n = 0;
    kp_segment_t **segs = kp_xmalloc((size_t)log->nsegs * sizeof(*segs));
    for (int i = 0; i < log->nsegs - 1; i++) {
        kp_segment_t *s = log->segs[i];
        int64_t end = log->segs[i + 1]->base_offset;
        if (end > log->high_watermark || end > log->first_unstable) break;
        if (s->max_timestamp >= 0 && now_ms - s->max_timestamp < p->min_compaction_lag_ms) break;
        kp_ref_get(&s->ref);
        segs[n++] = s;
    }
    int64_t log_start = log->log_start_offset;
    int64_t cleanable_end = n ? log->segs[n]->base_offset : 0;
    char *dir = kp_xstrdup(log->dir); /* kp_log_rename_dir frees log->dir under the lock */
    int32_t interval = log->cfg.index_interval_bytes;
    pthread_mutex_unlock(&log->lock);

    int rc = 0;
    free(c->aborted);
    c->naborted = kp_log_aborted_txns(log, log_start, cleanable_end, &c->aborted);
    int64_t first_dirty, oldest_tombstone;
    int64_t marker_horizon;
    read_checkpoint(dir, &first_dirty, &oldest_tombstone, &marker_horizon);
    if (first_dirty < log_start) first_dirty = log_start;
    if (first_dirty > cleanable_end && n) first_dirty = cleanable_end;
    st->first_dirty_before = st->first_dirty_after = first_dirty;
    if (n == 0) goto out;

    int64_t clean_bytes = 0, dirty_bytes = 0, oldest_dirty_ts = -1;
    for (int i = 0; i < n; i++) {
        int64_t seg_end = i + 1 < n ? segs[i + 1]->base_offset : cleanable_end;
        if (seg_end <= first_dirty) {
            clean_bytes += segs[i]->size;
        } else {
            dirty_bytes += segs[i]->size;
            if (oldest_dirty_ts < 0) oldest_dirty_ts = segs[i]->first_batch_timestamp;
        }
    }
    double ratio = dirty_bytes ? (double)dirty_bytes / (double)(clean_bytes + dirty_bytes) : 0;
    int lagging = oldest_dirty_ts >= 0 && now_ms - oldest_dirty_ts > p->max_compaction_lag_ms;
    int dirty_due = dirty_bytes > 0 && (ratio >= p->min_cleanable_ratio || lagging);
    /* tombstones kept by an earlier pass whose delete.retention.ms has passed (KIP-534) */
    int tombstones_due =
        (oldest_tombstone >= 0 && now_ms - oldest_tombstone > p->delete_retention_ms) ||
        (marker_horizon >= 0 && now_ms >= marker_horizon); /* a marker to remove */
    if (!dirty_due && !tombstones_due) goto out;

    int64_t map_end = first_dirty;
    kp_offset_map_clear(&c->map);
    if (dirty_due) {
        /* pass 1: map the dirty part */
        map_ctx_t mc = {cleanable_end, first_dirty, 0};
        for (int i = 0; i < n && !mc.full; i++) {
            int64_t seg_end = i + 1 < n ? segs[i + 1]->base_offset : cleanable_end;
            if (seg_end <= first_dirty) continue;
            st->bytes_read += segs[i]->size;
            int r = for_each_batch(c, segs[i], segs[i]->size, map_batch, &mc);
            if (r < 0) {
                rc = -1;
                goto out;
            }
            if (r == 1) break;
        }
        map_end = mc.mapped_to;
    }
    if (map_end <= log_start) goto out; /* not even one batch fitted */

    /* tell recovery, before anything is rewritten, that offsets below map_end may have gaps
     * from now on (a crash mid-pass must not make it truncate a cleaned segment) */
    if (raise_compacted_below(dir, map_end) < 0) {
        rc = -1;
        goto out;
    }
    /* pass 2: rewrite every segment that starts below map_end */
    clean_ctx_t cc = {c,  map_end, now_ms - p->delete_retention_ms, -1, 0, st,
                      -1, now_ms,  p->delete_retention_ms,          -1};
    kp_hmap_free(&c->txn_data); /* what the last pass left (a marker at or past its end) */
    kp_hmap_init(&c->txn_data);
    for (int i = 0; i < n; i++) {
        if (segs[i]->base_offset >= map_end) break;
        if (clean_segment(c, log, dir, interval, segs[i], &cc) < 0) {
            kp_warn("storage", "%s: cleaning segment %" PRId64 " failed: %s", dir,
                    segs[i]->base_offset, strerror(errno));
            rc = -1;
            goto out;
        }
    }
    if (write_checkpoint(dir, map_end, cc.oldest_tombstone, cc.marker_horizon) < 0) {
        rc = -1;
        goto out;
    }
    st->first_dirty_after = map_end;
    rc = 1;
    char markers[64] = "";
    if (st->markers_removed)
        snprintf(markers, sizeof(markers), ", %" PRId64 " transaction markers removed",
                 st->markers_removed);
    kp_info("storage",
            "%s: cleaned %d segment(s) up to offset %" PRId64 ": removed %" PRId64
            " records and %" PRId64 " tombstones, %" PRId64 " -> %" PRId64 " bytes%s",
            dir, st->segments, map_end, st->records_removed, st->tombstones_removed, st->bytes_read,
            st->bytes_written, markers);
out:
    for (int i = 0; i < n; i++) kp_segment_put(segs[i]);
    free(segs);
    free(dir);
    return rc;
}
