/*
 * log.c — a partition's log: recovery on open, append with idempotence checks and segment
 * roll, group-commit flushing, reads for Fetch and ListOffsets.
 *
 * Recovery (kp_log_open):
 *   1. Leftovers of interrupted work (*.tmp, *.deleted) are removed.
 *   2. Sealed segments open from their index files; one without valid indexes is scanned
 *      and CRC-checked, and a corruption there truncates it and drops every later segment
 *      (offsets stay contiguous).
 *   3. The last segment is always scanned and CRC-checked; a torn or corrupt tail is cut.
 *   4. Producer state: the newest snapshot at or below the log end, then the batch headers
 *      after it are replayed. Transactions come back with it: the open ones from the
 *      snapshot and the replay, the aborted ones from each sealed segment's .txnindex plus
 *      the markers replayed (txn_index.h).
 *   5. The active segment is fsynced: everything recovered counts as durable (HWM = LEO).
 *
 * Flushing: appends queue the log on a global queue served by flusher threads. A flush
 * captures (LEO, active segment, its size) under the lock, fsyncs without it, then advances
 * the flushed end and completes waiters — every append that arrived during an fsync rides on
 * the next one (group commit).
 */
#include "storage/log.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- flusher queue ---- */

static pthread_mutex_t fq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fq_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fq_idle = PTHREAD_COND_INITIALIZER;
static kp_log_t *fq_head, *fq_tail;
static int fq_stop;
static pthread_t *fq_threads;
static int fq_nthreads;
static int fq_target; /* flusher threads with an index at or above it leave (resize) */
static pthread_mutex_t fq_resize_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct log_private {
    int flush_busy; /* flusher threads or a flush.ms pass working on it (under fq_lock) */
    int fsyncing;   /* kp_log_flush is between taking its target and recording it (log->lock) */
    int closing;
    /* on the flush.ms list (iv_head) or held by a pass: set and cleared with log->lock held
     * (and fq_lock for the list itself) */
    int iv_listed;
    kp_log_t *iv_prev, *iv_next;
} log_private_t;

/* The private part lives right after the public struct. */
typedef struct log_full {
    kp_log_t log;
    log_private_t priv;
} log_full_t;

static void epoch_note(kp_log_t *log, int32_t epoch, int64_t start);
static int epochs_rebuild(kp_log_t *log);

static log_private_t *priv(kp_log_t *log)
{
    return &((log_full_t *)log)->priv;
}

/* @locks: log->lock held. */
static void queue_flush(kp_log_t *log)
{
    if (log->flush_queued) return;
    pthread_mutex_lock(&fq_lock);
    if (!priv(log)->closing && fq_nthreads > 0) {
        log->flush_queued = 1;
        log->flush_next = NULL;
        if (fq_tail)
            fq_tail->flush_next = log;
        else
            fq_head = log;
        fq_tail = log;
        pthread_cond_signal(&fq_cond);
    }
    pthread_mutex_unlock(&fq_lock);
}

/* ---- flush.ms: the logs that may come due ----
 *
 * Page-cache logs with a finite flush.ms and unflushed data. The flush.ms pass
 * (kp_log_flush_interval_pass, once per log.flush.scheduler.interval.ms) visits these and
 * no other: it used to walk every topic of the broker each second, which with 10,000 idle
 * topics was most of an idle broker's CPU. An append (or a config change) that leaves such
 * a log with unflushed data puts it on the list; the pass takes off the ones that have
 * nothing left to flush. Doubly linked, under fq_lock (taken inside log->lock, as for the
 * flusher queue). */
static kp_log_t *iv_head;

static void iv_push_locked(kp_log_t *log)
{
    priv(log)->iv_prev = NULL;
    priv(log)->iv_next = iv_head;
    if (iv_head) priv(iv_head)->iv_prev = log;
    iv_head = log;
}

static void iv_unlink_locked(kp_log_t *log)
{
    log_private_t *p = priv(log);
    if (p->iv_prev)
        priv(p->iv_prev)->iv_next = p->iv_next;
    else if (iv_head == log)
        iv_head = p->iv_next;
    if (p->iv_next) priv(p->iv_next)->iv_prev = p->iv_prev;
    p->iv_prev = p->iv_next = NULL;
}

/* Whether flush.ms may ever queue an fsync for the log as it is now. @locks: log->lock. */
static int iv_wanted(const kp_log_t *log)
{
    return !log->cfg.durable && log->cfg.flush_ms != INT64_MAX && !kp_log_is_offline(log) &&
           log->flushed_offset < log->log_end_offset;
}

/* After an append or a config change: lists the log when flush.ms may come due for it.
 * Costs one compare when it is listed already (a busy log) or flush.ms is unset (the
 * default). @locks: log->lock held. */
static void iv_watch(kp_log_t *log)
{
    if (priv(log)->iv_listed || !iv_wanted(log)) return;
    pthread_mutex_lock(&fq_lock);
    if (!priv(log)->closing) {
        priv(log)->iv_listed = 1;
        iv_push_locked(log);
    }
    pthread_mutex_unlock(&fq_lock);
}

int kp_log_flush_interval_pass(int64_t now_mono_ms, int *queued)
{
    /* the listed logs are taken off the list and held (flush_busy: a close waits for the
     * pass to be done with them); appends meanwhile see them listed and do not push */
    pthread_mutex_lock(&fq_lock);
    kp_log_t *batch = iv_head;
    iv_head = NULL;
    for (kp_log_t *l = batch; l; l = priv(l)->iv_next) priv(l)->flush_busy++;
    pthread_mutex_unlock(&fq_lock);
    int visited = 0, nq = 0;
    for (kp_log_t *l = batch, *next; l; l = next) {
        next = priv(l)->iv_next;
        visited++;
        pthread_mutex_lock(&l->lock);
        int keep = iv_wanted(l);
        /* not while an fsync runs: it cleared flush_queued when it started, and records its
         * time and offset only when done (a second fsync of the same data otherwise) */
        if (keep && !l->flush_queued && !priv(l)->fsyncing &&
            now_mono_ms - l->last_flush_mono_ms >= l->cfg.flush_ms) {
            queue_flush(l);
            nq += l->flush_queued;
        }
        /* decided under log->lock, as appends decide to push: an append after this sees
         * iv_listed as left here */
        pthread_mutex_lock(&fq_lock);
        if (keep && !priv(l)->closing) {
            iv_push_locked(l);
        } else {
            priv(l)->iv_listed = 0;
            priv(l)->iv_prev = priv(l)->iv_next = NULL;
        }
        if (--priv(l)->flush_busy == 0) pthread_cond_broadcast(&fq_idle);
        pthread_mutex_unlock(&fq_lock);
        pthread_mutex_unlock(&l->lock);
    }
    if (nq) kp_metric_add(&kp_metrics.flushes_by_interval, nq);
    kp_metric_add(&kp_metrics.flush_passes, 1);
    kp_metric_add(&kp_metrics.flush_pass_partitions, visited);
    if (queued) *queued = nq;
    return visited;
}

static void *flusher_main(void *arg)
{
    int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&fq_lock);
    for (;;) {
        while (!fq_head && !fq_stop && index < fq_target) pthread_cond_wait(&fq_cond, &fq_lock);
        if (index >= fq_target) {
            /* shrinking: a queued log whose signal woke this thread goes to another one */
            if (fq_head) pthread_cond_signal(&fq_cond);
            break;
        }
        if (!fq_head && fq_stop) break;
        kp_log_t *log = fq_head;
        fq_head = log->flush_next;
        if (!fq_head) fq_tail = NULL;
        priv(log)->flush_busy++;
        pthread_mutex_unlock(&fq_lock);
        kp_log_flush(log);
        pthread_mutex_lock(&fq_lock);
        if (--priv(log)->flush_busy == 0) pthread_cond_broadcast(&fq_idle);
    }
    pthread_mutex_unlock(&fq_lock);
    return NULL;
}

int kp_flusher_start(int nthreads)
{
    fq_stop = 0;
    fq_nthreads = 0;
    fq_threads = NULL;
    return kp_flusher_resize(nthreads);
}

int kp_flusher_resize(int nthreads)
{
    if (nthreads < 1) return -1;
    pthread_mutex_lock(&fq_resize_lock);
    int rc = 0, old = fq_nthreads;
    if (nthreads > old) {
        pthread_t *grown = kp_xcalloc((size_t)nthreads, sizeof(pthread_t));
        if (old) memcpy(grown, fq_threads, (size_t)old * sizeof(pthread_t));
        pthread_mutex_lock(&fq_lock);
        free(fq_threads);
        fq_threads = grown;
        fq_target = nthreads;
        pthread_mutex_unlock(&fq_lock);
        for (int i = old; i < nthreads; i++) {
            if (pthread_create(&fq_threads[i], NULL, flusher_main, (void *)(intptr_t)i) != 0) {
                pthread_mutex_lock(&fq_lock);
                fq_target = i;
                pthread_mutex_unlock(&fq_lock);
                rc = -1;
                break;
            }
            fq_nthreads = i + 1;
        }
    } else if (nthreads < old) {
        pthread_mutex_lock(&fq_lock);
        fq_target = nthreads;
        pthread_cond_broadcast(&fq_cond);
        pthread_mutex_unlock(&fq_lock);
        /* a leaving thread finishes the fsync it is in first */
        for (int i = nthreads; i < old; i++) pthread_join(fq_threads[i], NULL);
        fq_nthreads = nthreads;
    }
    pthread_mutex_unlock(&fq_resize_lock);
    return rc;
}

void kp_flusher_stop(void)
{
    pthread_mutex_lock(&fq_resize_lock);
    pthread_mutex_lock(&fq_lock);
    fq_stop = 1;
    pthread_cond_broadcast(&fq_cond);
    pthread_mutex_unlock(&fq_lock);
    for (int i = 0; i < fq_nthreads; i++) pthread_join(fq_threads[i], NULL);
    free(fq_threads);
    fq_threads = NULL;
    fq_nthreads = 0;
    fq_target = 0;
    pthread_mutex_unlock(&fq_resize_lock);
}

/* Removes the log from the flusher queue and waits until no flusher works on it. */
static void unqueue_flush(kp_log_t *log)
{
    pthread_mutex_lock(&fq_lock);
    priv(log)->closing = 1;
    if (log->flush_queued) {
        kp_log_t **pp = &fq_head, *prev = NULL;
        while (*pp && *pp != log) {
            prev = *pp;
            pp = &(*pp)->flush_next;
        }
        if (*pp) {
            *pp = log->flush_next;
            if (fq_tail == log) fq_tail = prev;
        }
        log->flush_queued = 0;
    }
    while (priv(log)->flush_busy > 0) pthread_cond_wait(&fq_idle, &fq_lock);
    /* no pass holds it now (closing: none will list it again) */
    if (priv(log)->iv_listed) {
        iv_unlink_locked(log);
        priv(log)->iv_listed = 0;
    }
    pthread_mutex_unlock(&fq_lock);
}

/* ---- config ---- */

void kp_log_config_defaults(kp_log_config_t *cfg)
{
    cfg->segment_bytes = 1024 * 1024 * 1024;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->segment_jitter_ms = 0;
    cfg->segment_index_bytes = 10 * 1024 * 1024;
    cfg->index_interval_bytes = 4096;
    cfg->durable = 1;
    cfg->flush_messages = INT64_MAX;
    cfg->flush_ms = INT64_MAX;
    cfg->producer_expiration_ms = 24LL * 3600 * 1000;
}

/* segment.jitter.ms as Kafka draws it, once per segment: uniform in [0, min(jitter,
 * segment.ms)), so a segment rolls after segment.ms - jitter and segments created together
 * (many partitions, one restart) do not all roll at the same moment. */
static int64_t draw_roll_jitter(const kp_log_config_t *cfg)
{
    if (cfg->segment_jitter_ms <= 0) return 0;
    int64_t bound =
        cfg->segment_jitter_ms < cfg->segment_ms ? cfg->segment_jitter_ms : cfg->segment_ms;
    if (bound <= 0) return 0;
    uint64_t r = ((uint64_t)arc4random() << 32) | arc4random();
    return (int64_t)(r % (uint64_t)bound);
}

void kp_log_set_config(kp_log_t *log, const kp_log_config_t *cfg)
{
    pthread_mutex_lock(&log->lock);
    int redraw = cfg->segment_jitter_ms != log->cfg.segment_jitter_ms ||
                 cfg->segment_ms != log->cfg.segment_ms;
    log->cfg = *cfg;
    if (redraw) log->roll_jitter_ms = draw_roll_jitter(cfg);
    iv_watch(log); /* flush.ms set, or page-cache mode, with data unflushed */
    pthread_mutex_unlock(&log->lock);
}

int kp_log_rename_dir(kp_log_t *log, const char *new_dir)
{
    pthread_mutex_lock(&log->lock);
    int rc = kp_fs->rename(log->dir, new_dir);
    if (rc == 0) {
        free(log->dir);
        log->dir = kp_xstrdup(new_dir);
        for (int i = 0; i < log->nsegs; i++) {
            char p[PATH_MAX];
            snprintf(p, sizeof(p), "%s/%020" PRId64, new_dir, log->segs[i]->base_offset);
            free(log->segs[i]->path);
            log->segs[i]->path = kp_xstrdup(p);
        }
    }
    pthread_mutex_unlock(&log->lock);
    return rc;
}

/* ---- open / recovery ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses "<20 digits><ext>" into *base. */
static int parse_name(const char *name, const char *ext, int64_t *base)
{
    size_t n = strlen(name), el = strlen(ext);
    if (n != 20 + el || strcmp(name + 20, ext) != 0) return 0;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        if (v > (INT64_MAX - 9) / 10) return 0;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 1;
}

static void segs_push(kp_log_t *log, kp_segment_t *seg)
{
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? log->segs_cap * 2 : 8;
        log->segs = kp_xrealloc(log->segs, (size_t)log->segs_cap * sizeof(*log->segs));
    }
    log->segs[log->nsegs++] = seg;
}

static kp_segment_t *active(const kp_log_t *log)
{
    return log->segs[log->nsegs - 1];
}

static void set_hwm(kp_log_t *log, int64_t hwm, kp_segment_t *seg, int64_t pos)
{
    if (log->hwm_seg != seg) {
        kp_ref_get(&seg->ref);
        kp_segment_put(log->hwm_seg);
        log->hwm_seg = seg;
    }
    log->high_watermark = hwm;
    log->hwm_pos = pos;
}

/* Offsets below this may have been compacted (gaps allowed); above it recovery requires
 * contiguous batches. The cleaner raises it before it rewrites anything. */
static int64_t read_compacted_below(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/compacted-below", dir);
    uint8_t *data;
    size_t len;
    int64_t v = 0;
    if (kp_fs_read_all(p, 64, &data, &len) < 0) return 0;
    if (sscanf((const char *)data, "%" SCNd64, &v) != 1 || v < 0)
        v = INT64_MAX; /* unreadable: lenient */
    free(data);
    return v;
}

static void read_log_start(kp_log_t *log)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/log-start-offset", log->dir);
    uint8_t *data;
    size_t len;
    if (kp_fs_read_all(p, 64, &data, &len) < 0) return;
    int64_t v;
    if (sscanf((const char *)data, "%" SCNd64, &v) == 1 && v >= 0) log->log_start_offset = v;
    free(data);
}

/* A marker closes its producer's transaction; an ABORT records the aborted range. The
 * last stable offset an entry carries is only informative: recovery records the marker's. */
static void apply_marker(kp_log_t *log, const kp_batch_info_t *b, int16_t type, int64_t lso)
{
    const kp_pstate_entry_t *e = kp_pstate_find(&log->pstate, b->producer_id);
    int64_t first = e ? e->txn_first_offset : -1;
    kp_pstate_update(&log->pstate, b, b->max_timestamp);
    if (type == KP_CONTROL_ABORT && first >= 0) {
        kp_aborted_txn_t a = {b->producer_id, first, b->base_offset, lso};
        kp_aborted_list_add(&log->aborted, &a);
    }
    log->first_unstable = kp_pstate_first_unstable(&log->pstate);
}

static int replay_marker(kp_log_t *log, kp_segment_t *seg, int64_t pos, const kp_batch_info_t *b)
{
    uint8_t buf[256];
    size_t len = (size_t)b->batch_length + KP_BATCH_LOG_OVERHEAD;
    int16_t type;
    int32_t cepoch;
    if (len > sizeof(buf) || kp_fs_pread_all(seg->fd, buf, len, pos) < 0 ||
        kp_control_batch_parse(buf, len, &type, &cepoch) < 0) {
        kp_warn("storage", "%s: unreadable control batch at offset %" PRId64, log->dir,
                b->base_offset);
        return 0;
    }
    apply_marker(log, b, type, b->base_offset);
    return 0;
}

static void txnindex_path(const kp_log_t *log, int64_t base, char *p, size_t n)
{
    snprintf(p, n, "%s/%020" PRId64 ".txnindex", log->dir, base);
}

/* Loads the aborted transactions of the sealed segments (all but the active one). */
static void load_txnindexes(kp_log_t *log)
{
    for (int i = 0; i + 1 < log->nsegs; i++) {
        char p[PATH_MAX];
        txnindex_path(log, log->segs[i]->base_offset, p, sizeof(p));
        uint8_t *data;
        size_t len;
        if (kp_fs_read_all(p, 64u << 20, &data, &len) < 0) continue; /* none: no aborts */
        kp_aborted_txn_t *a;
        size_t n;
        if (kp_txnindex_parse(data, len, &a, &n) < 0)
            kp_warn("storage", "%s: unreadable transaction index, ignored", p);
        for (size_t k = 0; k < n; k++) kp_aborted_list_add(&log->aborted, &a[k]);
        free(a);
        free(data);
    }
}

/* Seals seg's aborted transactions into its .txnindex. @locks: log->lock held. */
static int write_txnindex(kp_log_t *log, const kp_segment_t *seg)
{
    kp_buf_t b;
    kp_buf_init(&b);
    for (size_t i = 0; i < log->aborted.n; i++) {
        const kp_aborted_txn_t *a = &log->aborted.items[i];
        if (a->last_offset >= seg->base_offset && a->last_offset < seg->next_offset)
            kp_txnindex_encode(&b, a);
    }
    int rc = 0;
    if (b.len) {
        char p[PATH_MAX];
        txnindex_path(log, seg->base_offset, p, sizeof(p));
        rc = kp_fs_write_atomic(p, b.data, b.len);
    }
    kp_buf_free(&b);
    return rc;
}

/* Replays batch headers in [from, LEO) into the producer state. */
static int replay_producers(kp_log_t *log, int64_t from)
{
    for (int i = 0; i < log->nsegs; i++) {
        kp_segment_t *seg = log->segs[i];
        int64_t end_off = i + 1 < log->nsegs ? log->segs[i + 1]->base_offset : INT64_MAX;
        if (end_off <= from) continue;
        int64_t pos;
        kp_segment_index_floor(seg, from, &pos);
        while (pos + KP_BATCH_HEADER_BYTES <= seg->size) {
            uint8_t head[KP_BATCH_HEADER_BYTES];
            if (kp_fs_pread_all(seg->fd, head, sizeof(head), pos) < 0) return -1;
            kp_batch_info_t b;
            kp_batch_parse_header(head, &b);
            if (b.base_offset >= from && b.producer_id >= 0) {
                if (b.attributes & KP_BATCH_ATTR_CONTROL) {
                    if (replay_marker(log, seg, pos, &b) < 0) return -1;
                } else {
                    kp_pstate_update(&log->pstate, &b, b.max_timestamp);
                }
            }
            pos += (int64_t)b.batch_length + KP_BATCH_LOG_OVERHEAD;
        }
    }
    return 0;
}

static void recover_producers(kp_log_t *log, const int64_t *snaps, int nsnaps)
{
    char p[PATH_MAX];
    int64_t from = log->log_start_offset;
    for (int i = nsnaps - 1; i >= 0; i--) {
        snprintf(p, sizeof(p), "%s/%020" PRId64 ".snapshot", log->dir, snaps[i]);
        if (snaps[i] > log->log_end_offset) {
            kp_fs->unlink(p); /* describes offsets recovery truncated away */
            continue;
        }
        if (kp_pstate_read_snapshot(&log->pstate, p) == 0) {
            from = snaps[i];
            break;
        }
        kp_warn("storage", "%s: unreadable producer snapshot, trying an older one", p);
    }
    if (replay_producers(log, from) < 0)
        kp_warn("storage", "%s: producer state replay failed: %s", log->dir, strerror(errno));
}

static int list_dir(kp_log_t *log, int64_t **bases, int *nbases, int64_t **snaps, int *nsnaps)
{
    DIR *d = opendir(log->dir);
    if (!d) return -1;
    struct dirent *e;
    int cb = 0, cs = 0;
    while ((e = readdir(d))) {
        int64_t v;
        char p[PATH_MAX];
        size_t n = strlen(e->d_name);
        if ((n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) ||
            (n > 8 && !strcmp(e->d_name + n - 8, ".deleted"))) {
            snprintf(p, sizeof(p), "%s/%s", log->dir, e->d_name);
            kp_fs->unlink(p);
        } else if (parse_name(e->d_name, ".log", &v)) {
            if (*nbases == cb) *bases = kp_xrealloc(*bases, (size_t)(cb = cb * 2 + 8) * 8);
            (*bases)[(*nbases)++] = v;
        } else if (parse_name(e->d_name, ".snapshot", &v)) {
            if (*nsnaps == cs) *snaps = kp_xrealloc(*snaps, (size_t)(cs = cs * 2 + 8) * 8);
            (*snaps)[(*nsnaps)++] = v;
        }
    }
    closedir(d);
    if (*nbases) qsort(*bases, (size_t)*nbases, 8, cmp_i64);
    if (*nsnaps) qsort(*snaps, (size_t)*nsnaps, 8, cmp_i64);
    return 0;
}

static void drop_segment_files(const char *dir, int64_t base)
{
    char p[PATH_MAX];
    static const char *exts[] = {".log", ".index", ".timeindex", ".txnindex"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%020" PRId64 "%s", dir, base, exts[i]);
        kp_fs->unlink(p);
    }
}

kp_log_t *kp_log_open(const char *dir, const kp_log_config_t *cfg, int64_t now_ms)
{
    if (kp_fs_mkdirs(dir, KP_FS_DIR_MODE) < 0) {
        kp_error("storage", "mkdir %s: %s", dir, strerror(errno));
        return NULL;
    }
    log_full_t *full = kp_xcalloc(1, sizeof(*full));
    kp_log_t *log = &full->log;
    pthread_mutex_init(&log->lock, NULL);
    log->dir = kp_xstrdup(dir);
    log->cfg = *cfg;
    kp_pstate_init(&log->pstate);
    log->first_unstable = INT64_MAX;

    int64_t *bases = NULL, *snaps = NULL;
    int nbases = 0, nsnaps = 0;
    if (list_dir(log, &bases, &nbases, &snaps, &nsnaps) < 0) goto fail;
    read_log_start(log);
    int64_t contiguous_from = read_compacted_below(dir);

    for (int i = 0; i < nbases; i++) {
        int last = i == nbases - 1;
        kp_scan_result_t res;
        kp_segment_t *seg = kp_segment_open_strict(dir, bases[i], last, cfg->index_interval_bytes,
                                                   now_ms, contiguous_from, &res);
        if (!seg) goto fail;
        if (log->nsegs > 0 && seg->base_offset < active(log)->next_offset) {
            kp_warn("storage",
                    "%s: segment %" PRId64 " overlaps its predecessor; dropping it "
                    "and later segments",
                    dir, bases[i]);
            kp_segment_put(seg);
            for (int j = i; j < nbases; j++) drop_segment_files(dir, bases[j]);
            break;
        }
        segs_push(log, seg);
        if (res.truncated) {
            kp_warn("storage",
                    "%s: recovered segment %" PRId64 ": %s; kept %" PRId64
                    " valid bytes, truncated the rest",
                    dir, bases[i], res.why ? res.why : "invalid data", res.valid_bytes);
            for (int j = i + 1; j < nbases; j++) drop_segment_files(dir, bases[j]);
            seg->sealed = 0; /* it is the active segment now */
            break;
        }
    }
    if (log->nsegs > 0 && active(log)->sealed) {
        /* the last segment had index files: it must still be scanned like an active one */
        kp_segment_t *seg = active(log);
        kp_scan_result_t res;
        log->nsegs--;
        kp_segment_t *again = kp_segment_open_strict(
            dir, seg->base_offset, 1, cfg->index_interval_bytes, now_ms, contiguous_from, &res);
        kp_segment_put(seg);
        if (!again) goto fail;
        segs_push(log, again);
    }
    if (log->nsegs == 0) {
        kp_segment_t *seg = kp_segment_create(dir, log->log_start_offset, now_ms);
        if (!seg) goto fail;
        segs_push(log, seg);
    }
    kp_segment_t *act = active(log);
    log->log_end_offset = act->next_offset;
    if (log->log_start_offset < log->segs[0]->base_offset)
        log->log_start_offset = log->segs[0]->base_offset;
    if (log->log_start_offset > log->log_end_offset) log->log_start_offset = log->log_end_offset;
    load_txnindexes(log);
    recover_producers(log, snaps, nsnaps);
    kp_aborted_list_trim(&log->aborted, log->log_start_offset, log->log_end_offset);
    log->first_unstable = kp_pstate_first_unstable(&log->pstate);
    if (kp_segment_flush(act) < 0) goto fail;
    kp_fs_fsync_dir(dir);
    log->flushed_offset = log->log_end_offset;
    log->last_flush_mono_ms = kp_mono_ms();
    log->roll_jitter_ms = draw_roll_jitter(cfg);
    set_hwm(log, log->log_end_offset, act, act->size);
    if (epochs_rebuild(log) < 0) goto fail;
    free(bases);
    free(snaps);
    return log;
fail:
    kp_error("storage", "cannot open log %s: %s", dir, strerror(errno));
    free(bases);
    free(snaps);
    for (int i = 0; i < log->nsegs; i++) kp_segment_put(log->segs[i]);
    kp_segment_put(log->hwm_seg);
    free(log->segs);
    free(log->epochs);
    free(log->epoch_starts);
    kp_pstate_free(&log->pstate);
    kp_aborted_list_free(&log->aborted);
    free(log->dir);
    pthread_mutex_destroy(&log->lock);
    free(full);
    return NULL;
}

static atomic_int all_failed; /* kp_log_fail_all */

void kp_log_fail_all(void)
{
    atomic_store(&all_failed, 1);
}

int kp_log_is_offline(const kp_log_t *log)
{
    return log->offline || atomic_load_explicit(&all_failed, memory_order_relaxed);
}

static kp_log_failure_fn failure_fn;
static void *failure_arg;

void kp_log_set_failure_hook(kp_log_failure_fn fn, void *arg)
{
    failure_fn = fn;
    failure_arg = arg;
}

/* A write, fsync or file operation of log failed with err: the failure hook hears of it when
 * err says the device or file system failed — not a full disk (ENOSPC, EDQUOT: it frees up
 * again), nor an error of one file (ENOENT, EBADF...: that log alone goes offline, as before;
 * a directory that vanished is the broker's periodic check's to find). */
static void io_failed(kp_log_t *log, int err)
{
    switch (err) {
    case EIO:
    case EROFS:
    case ENODEV:
    case ENXIO:
    case ESTALE:
#ifdef EUCLEAN
    case EUCLEAN: /* the file system found itself corrupted */
#endif
        if (failure_fn) failure_fn(log->dir, err, failure_arg);
        break;
    default:
        break;
    }
}

static void fail_waiters(kp_log_t *log, int err)
{
    pthread_mutex_lock(&log->lock);
    kp_flush_waiter_t *w = log->waiters;
    log->waiters = NULL;
    pthread_mutex_unlock(&log->lock);
    while (w) {
        kp_flush_waiter_t *next = w->next;
        w->done(w, err);
        w = next;
    }
}

static void log_free(kp_log_t *log, int remove)
{
    unqueue_flush(log);
    if (!remove && !kp_log_is_offline(log)) kp_segment_flush(active(log));
    fail_waiters(log, ESHUTDOWN);
    for (int i = 0; i < log->nsegs; i++) {
        if (remove) log->segs[i]->deleted = 1;
        kp_segment_put(log->segs[i]);
    }
    kp_segment_put(log->hwm_seg);
    if (remove) kp_fs_remove_tree(log->dir);
    free(log->segs);
    free(log->epochs);
    free(log->epoch_starts);
    kp_pstate_free(&log->pstate);
    kp_aborted_list_free(&log->aborted);
    free(log->dir);
    pthread_mutex_destroy(&log->lock);
    free((log_full_t *)log);
}

void kp_log_set_offline(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    log->offline = 1;
    pthread_mutex_unlock(&log->lock);
    fail_waiters(log, EIO);
}

void kp_log_close(kp_log_t *log)
{
    if (log) log_free(log, 0);
}

void kp_log_destroy(kp_log_t *log)
{
    if (log) log_free(log, 1);
}

/* ---- append ---- */

static void snapshot_path(const kp_log_t *log, int64_t offset, char *p, size_t n)
{
    snprintf(p, n, "%s/%020" PRId64 ".snapshot", log->dir, offset);
}

/* Seals the active segment and starts a new one at the LEO. @locks: log->lock held. */
static int roll(kp_log_t *log, int64_t now_ms)
{
    kp_segment_t *old = active(log);
    if (kp_segment_seal(old) < 0) return -1;
    kp_aborted_list_trim(&log->aborted, log->log_start_offset, INT64_MAX);
    if (write_txnindex(log, old) < 0) return -1;
    char p[PATH_MAX];
    kp_pstate_expire(&log->pstate, now_ms - log->cfg.producer_expiration_ms);
    snapshot_path(log, log->log_end_offset, p, sizeof(p));
    if (kp_pstate_write_snapshot(&log->pstate, p) < 0) return -1;
    kp_segment_t *seg = kp_segment_create(log->dir, log->log_end_offset, now_ms);
    if (!seg) return -1;
    segs_push(log, seg);
    kp_fs_fsync_dir(log->dir);
    /* keep the two newest snapshots */
    int seen = 0;
    for (int i = log->nsegs - 1; i >= 1; i--) {
        snapshot_path(log, log->segs[i]->base_offset, p, sizeof(p));
        if (++seen > 2) kp_fs->unlink(p);
    }
    if (log->flushed_offset < old->next_offset) {
        log->flushed_offset = old->next_offset; /* sealing fsynced it */
        log->last_flush_mono_ms = kp_mono_ms();
    }
    log->roll_jitter_ms = draw_roll_jitter(&log->cfg);
    return 0;
}

static int should_roll(const kp_log_t *log, size_t len, int64_t now_ms)
{
    const kp_segment_t *seg = active(log);
    if (seg->size == 0) return 0;
    if (seg->size + (int64_t)len > log->cfg.segment_bytes) return 1;
    if (seg->size + (int64_t)len > (int64_t)UINT32_MAX) return 1;
    /* segment.index.bytes bounds Kafka's index files: 8-byte offset entries, 12-byte time
     * entries; a full index rolls the segment even if this batch would add no entry */
    if ((int64_t)seg->nidx >= log->cfg.segment_index_bytes / 8 ||
        (int64_t)seg->ntidx >= log->cfg.segment_index_bytes / 12)
        return 1;
    int64_t since = seg->first_batch_timestamp > 0 ? seg->first_batch_timestamp : seg->created_ms;
    return now_ms - since > log->cfg.segment_ms - log->roll_jitter_ms;
}

/* Appends failing because the disk (or quota) is full fail every produce a client retries,
 * on every partition of that disk: logged once, then once a minute with a count, then when an
 * append succeeds again. */
static kp_log_limit_t append_full_log = KP_LOG_LIMIT_INIT(KP_LOG_LIMIT_INTERVAL_MS_DEFAULT);

void kp_log_append(kp_log_t *log, uint8_t *batch, size_t len, kp_batch_info_t *info, int64_t now_ms,
                   kp_append_result_t *res)
{
    int notify = 0;
    pthread_mutex_lock(&log->lock);
    res->log_start_offset = log->log_start_offset;
    if (kp_log_is_offline(log)) {
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    int32_t cepoch;
    int16_t marker_type = -1;
    if ((info->attributes & KP_BATCH_ATTR_CONTROL) &&
        (info->producer_id < 0 || kp_control_batch_parse(batch, len, &marker_type, &cepoch) < 0)) {
        res->status = KP_APPEND_INVALID_RECORD;
        goto out;
    }
    if (info->producer_id >= 0) {
        int64_t dup;
        switch (kp_pstate_check(&log->pstate, info, &dup)) {
        case KP_SEQ_OK:
            break;
        case KP_SEQ_DUPLICATE:
            res->status = KP_APPEND_DUPLICATE;
            res->base_offset = dup;
            res->last_offset = dup + info->last_offset_delta;
            goto out;
        case KP_SEQ_OUT_OF_ORDER:
            res->status = KP_APPEND_OUT_OF_ORDER;
            goto out;
        case KP_SEQ_INVALID_EPOCH:
            res->status = KP_APPEND_INVALID_EPOCH;
            goto out;
        }
    }
    if (should_roll(log, len, now_ms) && roll(log, now_ms) < 0) {
        int e = errno;
        kp_error("storage", "%s: segment roll failed: %s; partition offline", log->dir,
                 strerror(e));
        log->offline = 1;
        io_failed(log, e);
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    int64_t base = log->log_end_offset;
    kp_batch_set_base_offset(batch, base);
    kp_batch_set_leader_epoch(batch, log->leader_epoch);
    info->base_offset = base;
    info->leader_epoch = log->leader_epoch;
    kp_segment_t *seg = active(log);
    int rc = kp_segment_append(seg, batch, len, info, log->cfg.index_interval_bytes);
    if (rc == -1 && (errno == ENOSPC || errno == EDQUOT)) {
        kp_log_limit_hit(&append_full_log, kp_mono_ms(), KP_LOG_ERROR, "storage",
                         "%s: append failed: %s: produce requests fail with "
                         "KAFKA_STORAGE_ERROR until space is freed",
                         log->dir, strerror(errno));
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    if (rc < 0) {
        int e = errno;
        kp_error("storage", "%s: append failed: %s%s", log->dir, strerror(e),
                 rc == -2 ? "; could not cut back the torn write, partition offline" : "");
        if (rc == -2) log->offline = 1;
        io_failed(log, e);
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    if (kp_log_limit_active(&append_full_log))
        kp_log_limit_clear(&append_full_log, kp_mono_ms(), KP_LOG_INFO, "storage",
                           "appends succeed again (%s)", log->dir);
    log->log_end_offset = base + info->last_offset_delta + 1;
    if (info->attributes & KP_BATCH_ATTR_CONTROL) {
        apply_marker(log, info, marker_type,
                     log->first_unstable < log->high_watermark ? log->first_unstable
                                                               : log->high_watermark);
    } else if (info->producer_id >= 0) {
        kp_pstate_update(&log->pstate, info, now_ms);
        if ((info->attributes & KP_BATCH_ATTR_TRANSACTIONAL) && base < log->first_unstable &&
            kp_pstate_find(&log->pstate, info->producer_id)->txn_first_offset == base)
            log->first_unstable = base;
    }
    epoch_note(log, log->leader_epoch, base);
    res->status = KP_APPEND_OK;
    res->base_offset = base;
    res->last_offset = log->log_end_offset - 1;
    if (log->cfg.durable) {
        queue_flush(log);
    } else {
        set_hwm(log, log->log_end_offset, seg, seg->size);
        notify = 1;
        /* flush.messages: INT64_MAX by default, so this compare never fires */
        if (log->log_end_offset - log->flushed_offset >= log->cfg.flush_messages &&
            !log->flush_queued) {
            queue_flush(log);
            kp_metric_add(&kp_metrics.flushes_by_interval, 1);
        }
        iv_watch(log);
    }
out:
    pthread_mutex_unlock(&log->lock);
    if (notify && log->on_hwm) log->on_hwm(log, log->on_hwm_arg);
}

void kp_log_wait_flush(kp_log_t *log, kp_flush_waiter_t *w)
{
    pthread_mutex_lock(&log->lock);
    if (kp_log_is_offline(log)) {
        pthread_mutex_unlock(&log->lock);
        w->done(w, EIO);
        return;
    }
    if (!log->cfg.durable || log->flushed_offset > w->offset) {
        pthread_mutex_unlock(&log->lock);
        w->done(w, 0);
        return;
    }
    w->next = log->waiters;
    log->waiters = w;
    queue_flush(log);
    pthread_mutex_unlock(&log->lock);
}

void kp_log_flush(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    log->flush_queued = 0;
    if (kp_log_is_offline(log)) { /* its directory failed meanwhile: nothing will flush */
        kp_flush_waiter_t *w = log->waiters;
        log->waiters = NULL;
        pthread_mutex_unlock(&log->lock);
        while (w) {
            kp_flush_waiter_t *next = w->next;
            w->done(w, EIO);
            w = next;
        }
        return;
    }
    if (log->flushed_offset >= log->log_end_offset && !log->waiters) {
        pthread_mutex_unlock(&log->lock);
        return;
    }
    int64_t target = log->log_end_offset;
    kp_segment_t *seg = active(log);
    int64_t pos = seg->size;
    kp_ref_get(&seg->ref);
    priv(log)->fsyncing++;
    pthread_mutex_unlock(&log->lock);

    int64_t t0 = kp_mono_us();
    int rc = kp_segment_flush(seg);
    int err = rc < 0 ? errno : 0;
    kp_hist_observe_us(&kp_metrics.flush_latency, kp_mono_us() - t0);
    kp_metric_add(&kp_metrics.flushes, 1);

    int advanced = 0;
    kp_flush_waiter_t *done = NULL;
    pthread_mutex_lock(&log->lock);
    priv(log)->fsyncing--;
    if (rc < 0) {
        kp_error("storage", "%s: fsync failed: %s; partition offline", log->dir, strerror(err));
        log->offline = 1;
        io_failed(log, err);
        done = log->waiters;
        log->waiters = NULL;
    } else {
        if (target > log->flushed_offset) log->flushed_offset = target;
        log->last_flush_mono_ms = kp_mono_ms();
        if (log->cfg.durable && target > log->high_watermark) {
            set_hwm(log, target, seg, pos);
            advanced = 1;
        }
        kp_flush_waiter_t **pp = &log->waiters;
        while (*pp) {
            kp_flush_waiter_t *w = *pp;
            if (log->flushed_offset > w->offset) {
                *pp = w->next;
                w->next = done;
                done = w;
            } else {
                pp = &w->next;
            }
        }
        /* durable: everything appended meanwhile rides on the next fsync; page cache: only
         * what flush.messages still asks for (else every append would keep fsyncing) */
        int64_t unflushed = log->log_end_offset - log->flushed_offset;
        if (log->waiters ||
            (unflushed > 0 && (log->cfg.durable || unflushed >= log->cfg.flush_messages)))
            queue_flush(log);
    }
    pthread_mutex_unlock(&log->lock);
    kp_segment_put(seg);
    while (done) {
        kp_flush_waiter_t *next = done->next;
        done->done(done, err);
        done = next;
    }
    if (advanced && log->on_hwm) log->on_hwm(log, log->on_hwm_arg);
}

/* ---- reads ---- */

/* Index of the last segment with base_offset <= offset. @locks: log->lock held. */
static int seg_for(const kp_log_t *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs - 1, ans = 0;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (log->segs[mid]->base_offset <= offset) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

static int64_t lso_locked(const kp_log_t *log)
{
    return log->first_unstable < log->high_watermark ? log->first_unstable : log->high_watermark;
}

void kp_log_read(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one, kp_log_read_t *out)
{
    kp_log_read_isolated(log, offset, max_bytes, min_one, 0, out);
}

/* What bounds a read: the HWM (the committed end), the last stable offset
 * (read_committed) or the log end (a leader serving its followers). */
typedef enum { READ_TO_HWM, READ_TO_STABLE, READ_TO_LOG_END } read_bound_t;

static void read_bounded(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one,
                         read_bound_t bound, kp_log_read_t *out);

void kp_log_read_isolated(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one,
                          int committed, kp_log_read_t *out)
{
    read_bounded(log, offset, max_bytes, min_one, committed ? READ_TO_STABLE : READ_TO_HWM, out);
}

void kp_log_read_replica(kp_log_t *log, int64_t offset, int64_t max_bytes, kp_log_read_t *out)
{
    read_bounded(log, offset, max_bytes, 1, READ_TO_LOG_END, out);
}

static void read_bounded(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one,
                         read_bound_t bound, kp_log_read_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&log->lock);
    out->high_watermark = log->high_watermark;
    out->last_stable_offset = lso_locked(log);
    /* read_committed: the stable end bounds the read; its batch starts there (an open
     * transaction's first batch), found in its segment below */
    int committed = bound == READ_TO_STABLE;
    int64_t end = committed                  ? out->last_stable_offset
                  : bound == READ_TO_LOG_END ? log->log_end_offset
                                             : log->high_watermark;
    kp_segment_t *end_seg = NULL;
    if (committed && end < log->high_watermark) end_seg = log->segs[seg_for(log, end)];
    out->log_start_offset = log->log_start_offset;
    out->log_end_offset = log->log_end_offset;
    if (kp_log_is_offline(log)) {
        out->error = KP_READ_STORAGE;
        pthread_mutex_unlock(&log->lock);
        return;
    }
    if (offset < log->log_start_offset || offset > log->log_end_offset) {
        out->error = KP_READ_OUT_OF_RANGE;
        pthread_mutex_unlock(&log->lock);
        return;
    }
    if (offset >= end) {
        pthread_mutex_unlock(&log->lock);
        return;
    }
    int i = seg_for(log, offset);
    for (;;) {
        kp_segment_t *seg = log->segs[i];
        int64_t limit;
        if (end_seg && seg->base_offset > end_seg->base_offset)
            break;
        else if (bound == READ_TO_LOG_END)
            limit = seg->size; /* written, in durable mode maybe not yet fsynced */
        else if (seg == log->hwm_seg)
            limit = log->hwm_pos;
        else if (seg->base_offset < log->hwm_seg->base_offset)
            limit = seg->size;
        else
            break;
        int64_t from;
        kp_segment_index_floor(seg, offset, &from);
        kp_ref_get(&seg->ref);
        pthread_mutex_unlock(&log->lock);

        int64_t pos, blen, bbase;
        if (seg == end_seg) {
            /* the read stops where the batch at the stable end starts */
            int64_t efrom, epos, eblen, ebase;
            kp_segment_index_floor(seg, end, &efrom);
            if (kp_segment_find(seg, end, efrom, limit, &epos, &eblen, &ebase) == 0 && ebase == end)
                limit = epos;
        }
        int rc = kp_segment_find(seg, offset, from, limit, &pos, &blen, &bbase);
        if (rc == 0) {
            int64_t len = limit - pos;
            if (len > max_bytes) len = max_bytes;
            if (len < blen) {
                /* the first batch does not fit: whole when this is the first data of the
                 * response (KIP-74), otherwise none of it (as Kafka) — never a cut-off
                 * first batch, which clients take for a batch too large to fetch */
                len = min_one ? (blen < limit - pos ? blen : limit - pos) : 0;
            }
            if (len > 0) {
                out->seg = seg;
                out->pos = pos;
                out->len = len;
            } else {
                kp_segment_put(seg);
            }
            return;
        }
        int64_t seg_base = seg->base_offset;
        kp_segment_put(seg);
        if (rc < 0) {
            out->error = KP_READ_STORAGE;
            return;
        }
        pthread_mutex_lock(&log->lock);
        /* nothing at or after offset in this segment (a gap): continue in the next one */
        i = seg_for(log, seg_base) + 1;
        if (i >= log->nsegs) break;
        offset = log->segs[i]->base_offset > offset ? log->segs[i]->base_offset : offset;
    }
    pthread_mutex_unlock(&log->lock);
}

int64_t kp_log_offset_for_time(kp_log_t *log, int64_t ts, int64_t *ts_out)
{
    *ts_out = -1;
    pthread_mutex_lock(&log->lock);
    if (ts == -2) {
        int64_t v = log->log_start_offset;
        pthread_mutex_unlock(&log->lock);
        return v;
    }
    if (ts == -1) {
        int64_t v = log->high_watermark; /* read_committed asks kp_log_last_stable_offset */
        pthread_mutex_unlock(&log->lock);
        return v;
    }
    for (int i = 0; i < log->nsegs; i++) {
        kp_segment_t *seg = log->segs[i];
        if (seg->max_timestamp < ts) continue;
        int64_t limit = seg == log->hwm_seg ? log->hwm_pos : seg->size;
        if (seg->base_offset > log->hwm_seg->base_offset) break;
        kp_ref_get(&seg->ref);
        int64_t hwm = log->high_watermark, start = log->log_start_offset;
        pthread_mutex_unlock(&log->lock);
        int64_t found_ts = -1;
        int64_t off = kp_segment_offset_for_time(seg, ts, limit, &found_ts);
        kp_segment_put(seg);
        if (off >= 0 && off < hwm) {
            *ts_out = found_ts;
            return off < start ? start : off;
        }
        pthread_mutex_lock(&log->lock);
    }
    pthread_mutex_unlock(&log->lock);
    return -1;
}

int64_t kp_log_last_stable_offset(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    int64_t v = lso_locked(log);
    pthread_mutex_unlock(&log->lock);
    return v;
}

size_t kp_log_aborted_txns(kp_log_t *log, int64_t from, int64_t upto, kp_aborted_txn_t **out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&log->lock);
    /* ordered by marker: skip those that ended before from with a binary search */
    size_t lo = 0, hi = log->aborted.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->aborted.items[mid].last_offset < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < log->aborted.n; i++) {
        const kp_aborted_txn_t *a = &log->aborted.items[i];
        if (a->first_offset >= upto) continue;
        if (n == cap) *out = kp_xrealloc(*out, (cap = cap * 2 + 4) * sizeof(**out));
        (*out)[n++] = *a;
    }
    pthread_mutex_unlock(&log->lock);
    return n;
}

int kp_log_forget_aborted(kp_log_t *log, int64_t seg_base, const kp_aborted_txn_t *a, size_t n)
{
    pthread_mutex_lock(&log->lock);
    size_t o = 0, removed = 0;
    for (size_t i = 0; i < log->aborted.n; i++) {
        const kp_aborted_txn_t *e = &log->aborted.items[i];
        int gone = 0;
        for (size_t k = 0; k < n && !gone; k++)
            gone = e->producer_id == a[k].producer_id && e->last_offset == a[k].last_offset;
        if (gone)
            removed++;
        else
            log->aborted.items[o++] = *e;
    }
    log->aborted.n = o;
    int rc = 0;
    for (int i = 0; removed && i + 1 < log->nsegs; i++) {
        const kp_segment_t *seg = log->segs[i];
        if (seg->base_offset != seg_base) continue;
        char p[PATH_MAX];
        txnindex_path(log, seg->base_offset, p, sizeof(p));
        int any = 0;
        for (size_t k = 0; k < log->aborted.n && !any; k++)
            any = log->aborted.items[k].last_offset >= seg->base_offset &&
                  log->aborted.items[k].last_offset < seg->next_offset;
        if (any)
            rc = write_txnindex(log, seg);
        else if (kp_fs->unlink(p) < 0 && errno != ENOENT)
            rc = -1;
        break;
    }
    pthread_mutex_unlock(&log->lock);
    return rc;
}

size_t kp_log_producers(kp_log_t *log, kp_pstate_entry_t **out)
{
    pthread_mutex_lock(&log->lock);
    size_t n = 0;
    *out = kp_xmalloc((log->pstate.count + 1) * sizeof(**out));
    for (size_t i = 0; i < log->pstate.cap; i++)
        if (log->pstate.slots[i].producer_id >= 0) (*out)[n++] = log->pstate.slots[i];
    pthread_mutex_unlock(&log->lock);
    return n;
}

void kp_log_offsets(kp_log_t *log, int64_t *log_start, int64_t *hwm, int64_t *leo)
{
    pthread_mutex_lock(&log->lock);
    *log_start = log->log_start_offset;
    *hwm = log->high_watermark;
    *leo = log->log_end_offset;
    pthread_mutex_unlock(&log->lock);
}

void kp_log_set_hwm_callback(kp_log_t *log, kp_log_hwm_fn fn, void *arg)
{
    pthread_mutex_lock(&log->lock);
    log->on_hwm = fn;
    log->on_hwm_arg = arg;
    pthread_mutex_unlock(&log->lock);
}

int kp_log_roll_locked(kp_log_t *log, int64_t now_ms)
{
    if (active(log)->size == 0) return 0;
    if (roll(log, now_ms) < 0) {
        int e = errno;
        kp_error("storage", "%s: segment roll failed: %s; partition offline", log->dir,
                 strerror(e));
        log->offline = 1;
        io_failed(log, e);
        return -1;
    }
    return 0;
}

/* ---- replication: epoch cache, follower appends, truncation ---- */

/* Records that epoch starts at start (ignored unless newer than the last). @locks */
static void epoch_note(kp_log_t *log, int32_t epoch, int64_t start)
{
    if (epoch < 0 || (log->nepochs > 0 && log->epochs[log->nepochs - 1] >= epoch)) return;
    if (log->nepochs == log->epochs_cap) {
        log->epochs_cap = log->epochs_cap * 2 + 4;
        log->epochs = kp_xrealloc(log->epochs, (size_t)log->epochs_cap * sizeof(*log->epochs));
        log->epoch_starts =
            kp_xrealloc(log->epoch_starts, (size_t)log->epochs_cap * sizeof(*log->epoch_starts));
    }
    log->epochs[log->nepochs] = epoch;
    log->epoch_starts[log->nepochs++] = start;
}

/* Rebuilds the epoch cache from the batch headers. @locks (or not yet shared) */
static int epochs_rebuild(kp_log_t *log)
{
    log->nepochs = 0;
    for (int i = 0; i < log->nsegs; i++) {
        kp_segment_t *seg = log->segs[i];
        int64_t pos = 0;
        while (pos + KP_BATCH_HEADER_BYTES <= seg->size) {
            uint8_t head[KP_BATCH_HEADER_BYTES];
            if (kp_fs_pread_all(seg->fd, head, sizeof(head), pos) < 0) return -1;
            kp_batch_info_t b;
            kp_batch_parse_header(head, &b);
            epoch_note(log, b.leader_epoch, b.base_offset);
            pos += (int64_t)b.batch_length + KP_BATCH_LOG_OVERHEAD;
        }
    }
    return 0;
}

void kp_log_read_upto(kp_log_t *log, int64_t offset, int64_t max_bytes, int min_one, int64_t upto,
                      kp_log_read_t *out)
{
    kp_log_read(log, offset, max_bytes, min_one, out);
    if (out->high_watermark > upto) out->high_watermark = upto;
    if (out->error || !out->seg) return;
    int64_t cut = out->pos + out->len;
    if (offset >= upto) {
        cut = out->pos;
    } else {
        int64_t p, blen, bbase;
        /* the first batch at or above upto ends the region (upto is a batch boundary; a
         * batch straddling it would not be committed whole, so it is left out too) */
        int rc = kp_segment_find(out->seg, upto, out->pos, out->pos + out->len, &p, &blen, &bbase);
        if (rc == 0) cut = p;
    }
    out->len = cut - out->pos;
    if (out->len <= 0) {
        kp_segment_put(out->seg);
        out->seg = NULL;
        out->len = 0;
    }
}

void kp_log_append_replica(kp_log_t *log, const uint8_t *batch, size_t len,
                           const kp_batch_info_t *info, int64_t now_ms, kp_append_result_t *res)
{
    pthread_mutex_lock(&log->lock);
    res->log_start_offset = log->log_start_offset;
    if (kp_log_is_offline(log)) {
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    if (info->base_offset != log->log_end_offset) {
        res->status = KP_APPEND_OUT_OF_ORDER;
        goto out;
    }
    int16_t marker_type = -1;
    int32_t cepoch;
    if ((info->attributes & KP_BATCH_ATTR_CONTROL) &&
        (info->producer_id < 0 || kp_control_batch_parse(batch, len, &marker_type, &cepoch) < 0)) {
        res->status = KP_APPEND_INVALID_RECORD;
        goto out;
    }
    if (should_roll(log, len, now_ms) && roll(log, now_ms) < 0) {
        int e = errno;
        kp_error("storage", "%s: segment roll failed: %s; partition offline", log->dir,
                 strerror(e));
        log->offline = 1;
        io_failed(log, e);
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    kp_segment_t *seg = active(log);
    int rc = kp_segment_append(seg, batch, len, info, log->cfg.index_interval_bytes);
    if (rc < 0) {
        int e = errno;
        kp_error("storage", "%s: replica append failed: %s", log->dir, strerror(e));
        if (rc == -2) log->offline = 1;
        io_failed(log, e);
        res->status = KP_APPEND_STORAGE_ERROR;
        goto out;
    }
    int64_t base = log->log_end_offset;
    log->log_end_offset = base + info->last_offset_delta + 1;
    /* the leader's transactions as the leader tracks them: a follower that takes over
     * serves the same last stable offset and aborted transactions (read_committed) */
    if (marker_type >= 0) {
        apply_marker(log, info, marker_type,
                     log->first_unstable < log->high_watermark ? log->first_unstable
                                                               : log->high_watermark);
    } else if (info->producer_id >= 0) {
        kp_pstate_update(&log->pstate, info, now_ms);
        if ((info->attributes & KP_BATCH_ATTR_TRANSACTIONAL) && base < log->first_unstable &&
            kp_pstate_find(&log->pstate, info->producer_id)->txn_first_offset == base)
            log->first_unstable = base;
    }
    epoch_note(log, info->leader_epoch, base);
    res->status = KP_APPEND_OK;
    res->base_offset = base;
    res->last_offset = log->log_end_offset - 1;
    if (log->cfg.durable) {
        queue_flush(log);
    } else {
        /* no on_hwm call: nobody waits on a follower's committed end (its HWM is the
         * leader's, kp_partition_follower_progress), and the caller holds the partition's
         * lock, which the callback takes (a page-cache follower deadlocked on its first
         * append) */
        set_hwm(log, log->log_end_offset, seg, seg->size);
        iv_watch(log); /* flush.ms holds for a follower's copy too */
    }
out:
    pthread_mutex_unlock(&log->lock);
}

void kp_log_set_leader_epoch(kp_log_t *log, int32_t epoch)
{
    pthread_mutex_lock(&log->lock);
    log->leader_epoch = epoch;
    epoch_note(log, epoch, log->log_end_offset);
    pthread_mutex_unlock(&log->lock);
}

void kp_log_epoch_end(kp_log_t *log, int32_t epoch, int32_t *end_epoch, int64_t *end_offset)
{
    pthread_mutex_lock(&log->lock);
    int i = log->nepochs - 1;
    while (i >= 0 && log->epochs[i] > epoch) i--;
    if (i < 0) {
        *end_epoch = -1;
        *end_offset = -1;
    } else {
        *end_epoch = log->epochs[i];
        *end_offset = i + 1 < log->nepochs ? log->epoch_starts[i + 1] : log->log_end_offset;
    }
    pthread_mutex_unlock(&log->lock);
}

int32_t kp_log_last_epoch(kp_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    int32_t e = log->nepochs > 0 ? log->epochs[log->nepochs - 1] : -1;
    pthread_mutex_unlock(&log->lock);
    return e;
}

int kp_log_restart_at(kp_log_t *log, int64_t offset, int64_t now_ms)
{
    pthread_mutex_lock(&log->lock);
    if (kp_log_is_offline(log)) {
        pthread_mutex_unlock(&log->lock);
        return -1;
    }
    kp_warn("storage", "%s: dropping offsets %" PRId64 "..%" PRId64 " and starting at %" PRId64,
            log->dir, log->log_start_offset, log->log_end_offset, offset);
    kp_segment_t *seg = kp_segment_create(log->dir, offset, now_ms);
    if (!seg) {
        int e = errno;
        kp_error("storage", "%s: cannot start at %" PRId64 ": %s; partition offline", log->dir,
                 offset, strerror(e));
        log->offline = 1;
        io_failed(log, e);
        pthread_mutex_unlock(&log->lock);
        return -1;
    }
    int nold = log->nsegs;
    kp_segment_t **old = kp_xcalloc((size_t)nold, sizeof(*old));
    memcpy(old, log->segs, (size_t)nold * sizeof(*old));
    log->nsegs = 0;
    segs_push(log, seg);
    set_hwm(log, offset, seg, 0);
    char p[PATH_MAX];
    for (int i = 0; i < nold; i++) {
        snapshot_path(log, old[i]->base_offset, p, sizeof(p));
        kp_fs->unlink(p);
        old[i]->deleted = 1; /* files unlinked when the last reader lets go */
        kp_segment_put(old[i]);
    }
    free(old);
    snapshot_path(log, offset, p, sizeof(p));
    kp_fs->unlink(p);
    log->log_start_offset = log->log_end_offset = log->flushed_offset = offset;
    kp_pstate_clear(&log->pstate);
    kp_aborted_list_trim(&log->aborted, INT64_MAX, INT64_MAX);
    log->first_unstable = kp_pstate_first_unstable(&log->pstate);
    log->nepochs = 0;
    kp_fs_fsync_dir(log->dir);
    pthread_mutex_unlock(&log->lock);
    return 0;
}

int64_t kp_log_truncate(kp_log_t *log, int64_t offset, int64_t now_ms)
{
    pthread_mutex_lock(&log->lock);
    if (kp_log_is_offline(log)) {
        pthread_mutex_unlock(&log->lock);
        return -1;
    }
    if (offset >= log->log_end_offset) {
        int64_t leo = log->log_end_offset;
        pthread_mutex_unlock(&log->lock);
        return leo;
    }
    if (offset < log->log_start_offset) offset = log->log_start_offset;
    kp_info("storage", "%s: truncating from %" PRId64 " to %" PRId64, log->dir, log->log_end_offset,
            offset);
    while (log->nsegs > 1 && active(log)->base_offset >= offset) {
        kp_segment_t *gone = log->segs[--log->nsegs];
        gone->deleted = 1;
        kp_segment_put(gone);
    }
    kp_segment_t *seg = active(log);
    int64_t pos = 0;
    if (offset > seg->base_offset) {
        int64_t from, blen, bbase;
        kp_segment_index_floor(seg, offset, &from);
        int rc = kp_segment_find(seg, offset, from, seg->size, &pos, &blen, &bbase);
        if (rc > 0) pos = seg->size;
        if (rc < 0) goto fail;
    }
    if (kp_fs->ftruncate(seg->fd, pos) < 0) goto fail;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%020" PRId64 ".index", log->dir, seg->base_offset);
    kp_fs->unlink(p);
    snprintf(p, sizeof(p), "%s/%020" PRId64 ".timeindex", log->dir, seg->base_offset);
    kp_fs->unlink(p);
    kp_scan_result_t res;
    kp_segment_t *again =
        kp_segment_open_strict(log->dir, seg->base_offset, 1, log->cfg.index_interval_bytes, now_ms,
                               read_compacted_below(log->dir), &res);
    if (!again) goto fail;
    again->sealed = 0;
    log->segs[log->nsegs - 1] = again;
    if (kp_segment_flush(again) < 0) {
        kp_segment_put(seg);
        goto fail;
    }
    log->log_end_offset = again->next_offset;
    if (log->flushed_offset > log->log_end_offset) log->flushed_offset = log->log_end_offset;
    if (log->high_watermark >= log->log_end_offset)
        set_hwm(log, log->log_end_offset, again, again->size);
    else if (log->hwm_seg == seg)
        set_hwm(log, log->high_watermark, again, log->hwm_pos);
    kp_segment_put(seg);
    int64_t *bases = NULL, *snaps = NULL;
    int nbases = 0, nsnaps = 0;
    /* the cut-off tail's aborted transactions go; the replay below redoes the open ones */
    kp_aborted_list_trim(&log->aborted, INT64_MIN, log->log_end_offset);
    if (list_dir(log, &bases, &nbases, &snaps, &nsnaps) == 0) {
        kp_pstate_clear(&log->pstate);
        recover_producers(log, snaps, nsnaps);
    }
    log->first_unstable = kp_pstate_first_unstable(&log->pstate);
    free(bases);
    free(snaps);
    while (log->nepochs > 0 && log->epoch_starts[log->nepochs - 1] >= log->log_end_offset)
        log->nepochs--;
    int64_t leo = log->log_end_offset;
    pthread_mutex_unlock(&log->lock);
    return leo;
fail : {
    int e = errno;
    kp_error("storage", "%s: truncation failed: %s; partition offline", log->dir, strerror(e));
    log->offline = 1;
    io_failed(log, e);
    pthread_mutex_unlock(&log->lock);
    return -1;
}
}
