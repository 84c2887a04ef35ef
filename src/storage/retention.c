/*
 * retention.c — removing old data: whole segments by time (retention.ms) and size
 * (retention.bytes), and DeleteRecords, which moves the log start offset explicitly.
 *
 * As Kafka: only a prefix of segments is ever deleted (the first one that must stay stops
 * the walk), only segments entirely below the high watermark, and the active segment only
 * after it is rolled (when all of its data has expired). The log start offset moves to the
 * first offset still stored (or further, for DeleteRecords) and is checkpointed in
 * <dir>/log-start-offset before segments are unlinked, so a crash can only leave extra
 * files behind, never expose deleted offsets again. Readers holding a segment reference
 * keep reading it; the files go when the last reference is dropped.
 */
#include "storage/retention.h"

#include "core/buf.h"
#include "core/logging.h"
#include "core/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* @locks: log->lock held. */
static int checkpoint_log_start(kp_log_t *log)
{
    char path[PATH_MAX], text[32];
    snprintf(path, sizeof(path), "%s/log-start-offset", log->dir);
    int n = snprintf(text, sizeof(text), "%" PRId64 "\n", log->log_start_offset);
    return kp_fs_write_atomic(path, text, (size_t)n);
}

/* Drops the first `count` segments (never the last). @locks: log->lock held. */
static void drop_front(kp_log_t *log, int count)
{
    if (count <= 0) return;
    if (count >= log->nsegs) count = log->nsegs - 1;
    for (int i = 0; i < count; i++) {
        kp_segment_t *seg = log->segs[i];
        seg->deleted = 1; /* files unlinked when the last reader lets go */
        kp_segment_put(seg);
    }
    memmove(log->segs, log->segs + count, (size_t)(log->nsegs - count) * sizeof(*log->segs));
    log->nsegs -= count;
}

/* Moves the log start offset to at least `start` and deletes segments entirely below it.
 * @locks: log->lock held. */
static int advance_start(kp_log_t *log, int64_t start)
{
    if (start > log->log_start_offset) log->log_start_offset = start;
    if (checkpoint_log_start(log) < 0) {
        kp_error("storage", "%s: cannot checkpoint the log start offset: %s", log->dir,
                 strerror(errno));
        return -1;
    }
    int n = 0;
    while (n + 1 < log->nsegs && log->segs[n + 1]->base_offset <= log->log_start_offset) n++;
    drop_front(log, n);
    return n;
}

int kp_log_delete_records(kp_log_t *log, int64_t offset, int64_t *low_watermark)
{
    pthread_mutex_lock(&log->lock);
    int rc = 0;
    if (offset == -1) offset = log->high_watermark; /* Kafka: -1 means the high watermark */
    if (kp_log_is_offline(log)) {
        rc = KP_RETENTION_STORAGE;
    } else if (offset < 0 || offset > log->high_watermark) {
        rc = KP_RETENTION_OUT_OF_RANGE;
    } else if (offset > log->log_start_offset && advance_start(log, offset) < 0) {
        rc = KP_RETENTION_STORAGE;
    }
    *low_watermark = log->log_start_offset;
    pthread_mutex_unlock(&log->lock);
    return rc;
}

/* End offset (exclusive) of segment i: the next one's base, or the log end. */
static int64_t seg_end(const kp_log_t *log, int i)
{
    return i + 1 < log->nsegs ? log->segs[i + 1]->base_offset : log->log_end_offset;
}

int kp_log_enforce_retention(kp_log_t *log, const kp_retention_t *r, int64_t now_ms)
{
    pthread_mutex_lock(&log->lock);
    if (kp_log_is_offline(log)) {
        pthread_mutex_unlock(&log->lock);
        return 0;
    }
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++) total += log->segs[i]->size;
    int n = 0;
    const char *why = "compaction (emptied segments)";
    while (n < log->nsegs) {
        kp_segment_t *seg = log->segs[n];
        if (seg_end(log, n) > log->high_watermark) break; /* not all of it is committed */
        if (seg->size == 0) {
            if (n == log->nsegs - 1) break; /* an empty active segment: nothing to delete */
            /* A sealed segment the cleaner emptied has no timestamp: its age is the time it
             * was rewritten (Kafka: the file's mtime). Stopping at it for good would end time
             * retention of a compact,delete topic. */
            if (!(r->retention_ms >= 0 && now_ms - seg->created_ms > r->retention_ms) &&
                !(r->retention_bytes >= 0 && total >= r->retention_bytes))
                break;
            n++;
            continue;
        }
        int by_time = r->retention_ms >= 0 && seg->max_timestamp >= 0 &&
                      now_ms - seg->max_timestamp > r->retention_ms;
        int by_size = r->retention_bytes >= 0 && total - seg->size >= r->retention_bytes;
        if (!by_time && !by_size) break;
        why = by_time ? "retention.ms" : "retention.bytes";
        total -= seg->size;
        n++;
    }
    if (n == log->nsegs) {
        /* everything expired, the active segment included: roll so it can go too */
        if (kp_log_roll_locked(log, now_ms) < 0) n--;
    }
    int deleted = 0;
    if (n > 0) {
        int64_t new_start = log->segs[n]->base_offset;
        deleted = advance_start(log, new_start);
        if (deleted > 0)
            kp_info("storage", "%s: deleted %d segment(s) by %s; log start offset is now %" PRId64,
                    log->dir, deleted, why, log->log_start_offset);
    }
    pthread_mutex_unlock(&log->lock);
    return deleted < 0 ? 0 : deleted;
}

int64_t kp_log_size_bytes(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++) total += log->segs[i]->size;
    pthread_mutex_unlock(&log->lock);
    return total;
}
