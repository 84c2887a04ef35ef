/*
 * test_log.c — storage/log: a partition's log end to end, in a temp dir per test.
 *
 *   - append/read across segment rolls (segment.bytes of a few KiB): offsets contiguous, every
 *     batch read back byte for byte; kp_log_read honours max_bytes, min_one and the HWM;
 *   - durable mode: the HWM moves only with kp_log_flush (called directly here; the broker's
 *     flusher threads call it), flush waiters complete; page-cache mode: HWM = LEO at once;
 *   - ListOffsets by time (before and after a reopen, which loads sealed indexes);
 *   - recovery: reopen keeps everything; an active segment cut at every byte position of its
 *     tail, or with a flipped byte in its last batch, reopens with the tail dropped and every
 *     earlier batch intact; corruption in a sealed segment drops it and everything after;
 *   - idempotent producers: duplicates are detected after a restart, across a roll, and with
 *     the newest producer snapshot damaged;
 *   - segment.jitter.ms (drawn per segment, bounded by segment.ms), segment.index.bytes
 *     (roll when the offset or the time index is full), flush.messages / flush.ms in
 *     page-cache mode (an fsync queued when due, and only then; nothing in durable mode);
 *   - the flusher pool resized while appends wait (log.flush.threads changed live);
 *   - fault injection (core/fs.h): a failed write returns KP_APPEND_STORAGE_ERROR and
 *     leaves the log consistent; a failed fsync takes the partition offline and fails the
 *     flush waiters.
 */
#include "unit.h"

#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "storage/log.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <sys/stat.h>

#define NOW 1700000000000LL

static char dir[PATH_MAX];
/* recovery tests: a pristine log built once per test, copied into dir for each case */
static char pristine[PATH_MAX];

static int setup(void **state)
{
    ut_tmpdir_make(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    kp_fs = &kp_fs_posix;
    kp_fs_faults.write_budget = -1;
    kp_fs_faults.fail_fsync = 0;
    kp_fs_faults.fail_eio = 0;
    kp_log_set_failure_hook(NULL, NULL);
    ut_tmpdir_remove(dir);
    if (pristine[0]) {
        kp_fs_remove_tree(pristine);
        pristine[0] = 0;
    }
    return 0;
}

static kp_log_config_t small_config(int durable)
{
    kp_log_config_t cfg;
    kp_log_config_defaults(&cfg);
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 512;
    cfg.durable = durable;
    return cfg;
}

/* What a test appended, to check reads against. */
typedef struct rec {
    ut_batch_opts_t opts;
    int64_t base, last;
} rec_t;

/* Batch i: 1 + i % 5 records, values of varying size, timestamp NOW + 1000 * i. */
static ut_batch_opts_t batch_opts(int i)
{
    ut_batch_opts_t o = ut_batch_defaults(1 + i % 5, NOW + 1000 * (int64_t)i);
    o.value_len = 20 + (i * 37) % 300;
    o.nheaders = i % 3;
    return o;
}

static kp_append_result_t append_opts(kp_log_t *log, const ut_batch_opts_t *o)
{
    kp_buf_t b;
    kp_buf_init(&b);
    size_t len = ut_batch_build(&b, o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    memset(&res, 0, sizeof(res));
    kp_log_append(log, b.data, len, &info, o->base_timestamp, &res);
    if (res.status == KP_APPEND_OK) {
        /* the batch was patched in place: offset assigned, still valid */
        assert_int_equal(info.base_offset, res.base_offset);
        assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    }
    kp_buf_free(&b);
    return res;
}

/* Appends n batches batch_opts(first..first+n-1), checking contiguous offsets. */
static void append_many(kp_log_t *log, rec_t *recs, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        int64_t start, hwm, leo;
        kp_log_offsets(log, &start, &hwm, &leo);
        recs[i].opts = batch_opts(i);
        kp_append_result_t res = append_opts(log, &recs[i].opts);
        assert_int_equal(res.status, KP_APPEND_OK);
        assert_int_equal(res.base_offset, leo);
        assert_int_equal(res.last_offset, leo + recs[i].opts.nrecords - 1);
        recs[i].base = res.base_offset;
        recs[i].last = res.last_offset;
    }
}

static void read_bytes(const kp_log_read_t *rd, uint8_t *out)
{
    assert_int_equal(kp_fs_pread_all(rd->seg->fd, out, (size_t)rd->len, rd->pos), 0);
}

/* Reads the batch holding `offset` alone and compares it with what was appended. */
static void expect_batch(kp_log_t *log, const rec_t *r, int64_t offset)
{
    kp_log_read_t rd;
    kp_log_read(log, offset, 1, 1, &rd);
    assert_int_equal(rd.error, 0);
    assert_non_null(rd.seg);
    uint8_t *buf = malloc((size_t)rd.len);
    read_bytes(&rd, buf);
    ut_batch_expect(buf, (size_t)rd.len, &r->opts, r->base, 0);
    free(buf);
    kp_segment_put(rd.seg);
}

/* Every batch in recs[0..n) is readable, from each of its offsets. */
static void expect_all(kp_log_t *log, const rec_t *recs, int n)
{
    for (int i = 0; i < n; i++)
        for (int64_t off = recs[i].base; off <= recs[i].last; off++)
            expect_batch(log, &recs[i], off);
}

static void expect_offsets(kp_log_t *log, int64_t start, int64_t hwm, int64_t leo)
{
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(s, start);
    assert_int_equal(h, hwm);
    assert_int_equal(l, leo);
}

static int count_files(const char *ext)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > el && strcmp(e->d_name + len - el, ext) == 0) n++;
    }
    closedir(d);
    return n;
}

static void seg_file(int64_t base, const char *ext, char *p, size_t n)
{
    snprintf(p, n, "%s/%020lld%s", dir, (long long)base, ext);
}

/* ---- append, read, roll ---- */

static void test_append_read_across_rolls(void **state)
{
    enum { N = 150 };
    static rec_t recs[N];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    assert_non_null(log);
    expect_offsets(log, 0, 0, 0);
    append_many(log, recs, 0, N);
    int64_t leo = recs[N - 1].last + 1;
    expect_offsets(log, 0, leo, leo);
    assert_true(log->nsegs >= 10);
    assert_int_equal(count_files(".log"), log->nsegs);
    /* segments are sealed at roll (index files), the active one is not */
    assert_int_equal(count_files(".index"), log->nsegs - 1);
    for (int i = 0; i < log->nsegs; i++) {
        assert_true(log->segs[i]->size <= cfg.segment_bytes);
        if (i > 0) assert_int_equal(log->segs[i]->base_offset, log->segs[i - 1]->next_offset);
    }
    /* the two newest producer snapshots are kept */
    assert_int_equal(count_files(".snapshot"), 2);
    expect_all(log, recs, N);

    /* a big read returns whole batches from the start of one segment's batch onward */
    kp_log_read_t rd;
    kp_log_read(log, recs[3].base + 1, 1 << 20, 0, &rd);
    assert_int_equal(rd.error, 0);
    assert_non_null(rd.seg);
    assert_int_equal(rd.high_watermark, leo);
    assert_int_equal(rd.log_end_offset, leo);
    uint8_t *buf = malloc((size_t)rd.len);
    read_bytes(&rd, buf);
    int64_t pos = 0;
    int i = 3;
    while (pos < rd.len) {
        int64_t total = kp_batch_total_size(buf + pos, (size_t)(rd.len - pos));
        assert_true(total > 0 && pos + total <= rd.len);
        ut_batch_expect(buf + pos, (size_t)total, &recs[i].opts, recs[i].base, 0);
        pos += total;
        i++;
    }
    assert_int_equal(rd.pos + rd.len, rd.seg->size); /* up to the segment's end */
    free(buf);
    kp_segment_put(rd.seg);
    kp_log_close(log);
}

static void test_read_bounds(void **state)
{
    enum { N = 30 };
    static rec_t recs[N];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, N);
    int64_t leo = recs[N - 1].last + 1;
    kp_log_read_t rd;

    /* max_bytes caps the length; partial trailing batches are allowed (Kafka) */
    int64_t first_len;
    kp_log_read(log, 0, 1, 1, &rd);
    first_len = rd.len;
    kp_segment_put(rd.seg);
    kp_log_read(log, 0, first_len + 10, 0, &rd);
    assert_int_equal(rd.len, first_len + 10);
    kp_segment_put(rd.seg);
    /* without min_one a first batch larger than max_bytes is not returned at all (as Kafka):
     * a cut-off first batch reads to clients as a batch too large to ever fetch */
    kp_log_read(log, 0, 20, 0, &rd);
    assert_int_equal(rd.error, 0);
    assert_int_equal(rd.len, 0);
    assert_null(rd.seg);
    kp_segment_put(rd.seg);
    /* with min_one it comes whole (KIP-74) */
    kp_log_read(log, 0, 20, 1, &rd);
    assert_int_equal(rd.len, first_len);
    kp_segment_put(rd.seg);
    /* max_bytes 0 without min_one: nothing, no reference held */
    kp_log_read(log, 0, 0, 0, &rd);
    assert_int_equal(rd.error, 0);
    assert_int_equal(rd.len, 0);
    assert_null(rd.seg);

    /* at the HWM: empty, not an error; beyond the LEO or below the start: out of range */
    kp_log_read(log, leo, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, 0);
    assert_int_equal(rd.len, 0);
    assert_null(rd.seg);
    kp_log_read(log, leo + 1, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    kp_log_read(log, -1, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    kp_log_close(log);
}

/* Durable mode: nothing is visible, and no waiter completes, before the fsync. */
typedef struct waiter {
    kp_flush_waiter_t w;
    int calls, err;
} waiter_t;

static void waiter_done(kp_flush_waiter_t *w, int err)
{
    waiter_t *x = (waiter_t *)w;
    x->calls++;
    x->err = err;
}

static int hwm_calls;
static void on_hwm(kp_log_t *log, void *arg)
{
    hwm_calls++;
    assert_ptr_equal(arg, &hwm_calls);
}

static void test_durable_hwm_and_waiters(void **state)
{
    enum { N = 40 };
    static rec_t recs[N];
    kp_log_config_t cfg = small_config(1);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    hwm_calls = 0;
    kp_log_set_hwm_callback(log, on_hwm, &hwm_calls);
    append_many(log, recs, 0, 3);
    int64_t leo3 = recs[2].last + 1;
    expect_offsets(log, 0, 0, leo3);
    kp_log_read_t rd;
    kp_log_read(log, 0, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, 0);
    assert_int_equal(rd.len, 0); /* above the HWM */
    assert_int_equal(rd.high_watermark, 0);

    waiter_t w1 = {{recs[1].last, waiter_done, NULL}, 0, -1};
    waiter_t w2 = {{recs[2].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w1.w);
    kp_log_wait_flush(log, &w2.w);
    assert_int_equal(w1.calls, 0);
    kp_log_flush(log);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(w1.err, 0);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(hwm_calls, 1);
    expect_offsets(log, 0, leo3, leo3);
    expect_all(log, recs, 3);
    /* a waiter for something already flushed completes at once */
    waiter_t w3 = {{recs[0].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w3.w);
    assert_int_equal(w3.calls, 1);
    /* nothing to do: no callback */
    kp_log_flush(log);
    assert_int_equal(hwm_calls, 1);

    /* the HWM stays put across rolls until the next flush, then covers everything */
    append_many(log, recs, 3, N - 3);
    assert_true(log->nsegs > 1);
    expect_offsets(log, 0, leo3, recs[N - 1].last + 1);
    kp_log_read(log, recs[2].base, 1 << 20, 0, &rd);
    assert_int_equal(rd.pos + rd.len, log->hwm_pos); /* bounded by the HWM position */
    kp_segment_put(rd.seg);
    kp_log_read(log, recs[3].base, 1 << 20, 1, &rd);
    assert_int_equal(rd.len, 0);
    kp_log_flush(log);
    expect_offsets(log, 0, recs[N - 1].last + 1, recs[N - 1].last + 1);
    expect_all(log, recs, N);
    /* waiters still queued at close are told the log is shutting down */
    append_many(log, recs, N - 1, 1);
    waiter_t w4 = {{recs[N - 1].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w4.w);
    assert_int_equal(w4.calls, 0);
    kp_log_close(log);
    assert_int_equal(w4.calls, 1);
    assert_int_equal(w4.err, ESHUTDOWN);
}

static void test_page_cache_mode(void **state)
{
    static rec_t recs[5];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    hwm_calls = 0;
    kp_log_set_hwm_callback(log, on_hwm, &hwm_calls);
    append_many(log, recs, 0, 5);
    assert_int_equal(hwm_calls, 5);
    expect_offsets(log, 0, recs[4].last + 1, recs[4].last + 1);
    waiter_t w = {{recs[4].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w.w);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.err, 0);
    kp_log_close(log);
}

/* ---- ListOffsets ---- */

static void check_times(kp_log_t *log, const rec_t *recs, int n)
{
    int64_t ts;
    for (int i = 0; i < n; i++) {
        /* record k of a batch has timestamp base_timestamp + k: each one is found exactly,
         * not its batch's base offset (Kafka answers per record) */
        for (int k = 0; k < recs[i].opts.nrecords; k++) {
            int64_t t = recs[i].opts.base_timestamp + k;
            assert_int_equal(kp_log_offset_for_time(log, t, &ts), recs[i].base + k);
            assert_int_equal(ts, t);
        }
        /* just after the previous batch's timestamps: this batch's first record */
        assert_int_equal(kp_log_offset_for_time(log, recs[i].opts.base_timestamp - 500, &ts),
                         recs[i].base);
        assert_int_equal(ts, recs[i].opts.base_timestamp);
    }
    assert_int_equal(kp_log_offset_for_time(log, 0, &ts), 0);
    assert_int_equal(kp_log_offset_for_time(log, NOW + 1000 * (int64_t)n, &ts), -1);
    assert_int_equal(ts, -1);
    assert_int_equal(kp_log_offset_for_time(log, -2, &ts), 0);
    assert_int_equal(kp_log_offset_for_time(log, -1, &ts), recs[n - 1].last + 1);
}

static void test_list_offsets_by_time(void **state)
{
    enum { N = 60 };
    static rec_t recs[N];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, N);
    assert_true(log->nsegs > 3);
    check_times(log, recs, N);
    kp_log_close(log);
    /* after a reopen, sealed segments answer from their loaded time indexes */
    log = kp_log_open(dir, &cfg, NOW);
    assert_int_equal(log->segs[0]->sealed, 1);
    check_times(log, recs, N);
    kp_log_close(log);

    /* durable: a timestamp only above the HWM is not found yet */
    teardown(state);
    setup(state);
    cfg = small_config(1);
    log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, 2);
    kp_log_flush(log);
    append_many(log, recs, 2, 1);
    int64_t ts;
    assert_int_equal(kp_log_offset_for_time(log, recs[2].opts.base_timestamp, &ts), -1);
    assert_int_equal(kp_log_offset_for_time(log, -1, &ts), recs[1].last + 1);
    kp_log_flush(log);
    assert_int_equal(kp_log_offset_for_time(log, recs[2].opts.base_timestamp, &ts), recs[2].base);
    kp_log_close(log);

    /* LogAppendTime: every record carries the batch's time, so the first record answers */
    teardown(state);
    setup(state);
    cfg = small_config(0);
    log = kp_log_open(dir, &cfg, NOW);
    ut_batch_opts_t o = ut_batch_defaults(5, NOW);
    o.attributes = KP_BATCH_ATTR_LOG_APPEND_TIME;
    kp_append_result_t res = append_opts(log, &o);
    assert_int_equal(res.status, KP_APPEND_OK);
    assert_int_equal(kp_log_offset_for_time(log, NOW + 2, &ts), 0);
    assert_int_equal(ts, NOW + 4);
    kp_log_close(log);
}

/* ---- recovery ---- */

static void test_reopen_keeps_everything(void **state)
{
    enum { N = 100 };
    static rec_t recs[N];
    kp_log_config_t cfg = small_config(1);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, N / 2);
    kp_log_flush(log);
    kp_log_close(log);
    log = kp_log_open(dir, &cfg, NOW);
    int64_t leo = recs[N / 2 - 1].last + 1;
    expect_offsets(log, 0, leo, leo);
    expect_all(log, recs, N / 2);
    /* appends continue the offsets */
    append_many(log, recs, N / 2, N / 2);
    kp_log_close(log); /* close fsyncs; the flush never ran */
    log = kp_log_open(dir, &cfg, NOW);
    leo = recs[N - 1].last + 1;
    expect_offsets(log, 0, leo, leo); /* recovered data counts as durable */
    expect_all(log, recs, N);
    kp_log_close(log);
}

/* Copies every regular file of src into dst (flat directories). */
static void copy_dir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char a[PATH_MAX + 300], b[PATH_MAX + 300];
        snprintf(a, sizeof(a), "%s/%s", src, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", dst, e->d_name);
        uint8_t *data;
        size_t len;
        assert_int_equal(kp_fs_read_all(a, 64 << 20, &data, &len), 0);
        FILE *f = fopen(b, "wb");
        assert_non_null(f);
        if (len) assert_int_equal(fwrite(data, 1, len, f), len);
        fclose(f);
        free(data);
    }
    closedir(d);
}

/* A pristine log (several segments) built in `pristine`, copied into `dir` per case. */
enum { RN = 45 };
static rec_t rrecs[RN];

static void build_pristine(void)
{
    ut_tmpdir_make(pristine, sizeof(pristine));
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(pristine, &cfg, NOW);
    append_many(log, rrecs, 0, RN);
    assert_true(log->nsegs >= 3);
    kp_log_close(log);
}

/* Index of the first record in rrecs stored in the last (active) segment. */
static int active_first(void)
{
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(pristine, &cfg, NOW);
    int64_t base = log->segs[log->nsegs - 1]->base_offset;
    kp_log_close(log);
    int i = 0;
    while (rrecs[i].base < base) i++;
    return i;
}

/* Reopens dir and checks that exactly rrecs[0..keep) survived. */
static void expect_recovered(int keep)
{
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    assert_non_null(log);
    int64_t leo = keep ? rrecs[keep - 1].last + 1 : 0;
    expect_offsets(log, 0, leo, leo);
    expect_all(log, rrecs, keep);
    /* and the log is usable: the next append gets the next offset, and survives a reopen */
    ut_batch_opts_t o = batch_opts(1000);
    kp_append_result_t res = append_opts(log, &o);
    assert_int_equal(res.status, KP_APPEND_OK);
    assert_int_equal(res.base_offset, leo);
    kp_log_close(log);
    log = kp_log_open(dir, &cfg, NOW);
    expect_offsets(log, 0, leo + o.nrecords, leo + o.nrecords);
    rec_t r = {o, leo, leo + o.nrecords - 1};
    expect_batch(log, &r, leo);
    kp_log_close(log);
}

/* Replaces dir (same path) with a copy of the pristine log. */
static void fresh_copy(void)
{
    ut_tmpdir_remove(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    copy_dir(pristine, dir);
}

static void truncate_file(const char *p, int64_t len)
{
    assert_int_equal(truncate(p, len), 0);
}

/* The active segment cut at every byte of its last batches (and at coarser steps before). */
static void test_recover_truncated_active_segment(void **state)
{
    build_pristine();
    int first = active_first();
    assert_true(first < RN - 3);
    char p[PATH_MAX + 64];
    seg_file(rrecs[first].base, ".log", p, sizeof(p));
    int64_t seg_size = 0;
    {
        char q[PATH_MAX + 64];
        snprintf(q, sizeof(q), "%s/%020lld.log", pristine, (long long)rrecs[first].base);
        seg_size = ut_file_size(q);
    }
    assert_true(seg_size > 0);
    /* positions of the batches inside the segment */
    int64_t ends[RN];
    int64_t pos = 0;
    for (int i = first; i < RN; i++) {
        kp_buf_t b;
        kp_buf_init(&b);
        pos += (int64_t)ut_batch_build(&b, &rrecs[i].opts);
        ends[i] = pos;
        kp_buf_free(&b);
    }
    assert_int_equal(pos, seg_size);
    int64_t tail_from = ends[RN - 3 > first ? RN - 4 : first];
    int cases = 0;
    for (int64_t cut = 0; cut < seg_size; cut += cut < tail_from ? 41 : 1) {
        fresh_copy();
        truncate_file(p, cut);
        int keep = first;
        while (keep < RN && ends[keep] <= cut) keep++;
        expect_recovered(keep);
        cases++;
    }
    assert_true(cases > 100);
}

/* A flipped byte anywhere in the checksummed part (or the length or magic) of the last batch
 * drops that batch and nothing before it. The base offset (bytes 0..7) and leader epoch
 * (12..15) are outside the CRC in Kafka's format and are not covered here. */
static void test_recover_flipped_byte_in_tail(void **state)
{
    build_pristine();
    char p[PATH_MAX + 64];
    int first = active_first();
    seg_file(rrecs[first].base, ".log", p, sizeof(p));
    kp_buf_t b;
    kp_buf_init(&b);
    size_t last_len = ut_batch_build(&b, &rrecs[RN - 1].opts);
    kp_buf_free(&b);
    char q[PATH_MAX + 64];
    snprintf(q, sizeof(q), "%s/%020lld.log", pristine, (long long)rrecs[first].base);
    int64_t seg_size = ut_file_size(q);
    int64_t last_pos = seg_size - (int64_t)last_len;
    for (size_t k = 8; k < last_len; k++) {
        if (k >= 12 && k < 16) continue;
        fresh_copy();
        FILE *f = fopen(p, "r+b");
        assert_non_null(f);
        fseek(f, last_pos + (long)k, SEEK_SET);
        int c = fgetc(f);
        fseek(f, last_pos + (long)k, SEEK_SET);
        fputc(c ^ 0x01, f);
        fclose(f);
        expect_recovered(RN - 1);
    }
    /* a base offset that goes backwards is caught too */
    fresh_copy();
    FILE *f = fopen(p, "r+b");
    fseek(f, last_pos + 7, SEEK_SET);
    fputc(0, f);
    fseek(f, last_pos + 6, SEEK_SET);
    fputc(0, f);
    fclose(f);
    expect_recovered(RN - 1);
    /* garbage appended after the last batch (a torn header) */
    fresh_copy();
    f = fopen(p, "ab");
    fwrite("\0\0\0\0\0\0\0\0\0\0\0\x30garbage", 1, 19, f);
    fclose(f);
    expect_recovered(RN);
}

/* Damage in a sealed segment: it is cut there, and every later segment is dropped so the
 * offsets stay contiguous. */
static void test_recover_corrupt_sealed_segment(void **state)
{
    build_pristine();
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(pristine, &cfg, NOW);
    int64_t seg1 = log->segs[1]->base_offset, seg2 = log->segs[2]->base_offset;
    kp_log_close(log);
    int i1 = 0;
    while (rrecs[i1].base < seg1) i1++;

    /* the .log of segment 1 cut inside its second batch */
    fresh_copy();
    kp_buf_t b;
    kp_buf_init(&b);
    int64_t cut = (int64_t)ut_batch_build(&b, &rrecs[i1].opts) + 30;
    kp_buf_free(&b);
    char p[PATH_MAX + 64];
    seg_file(seg1, ".log", p, sizeof(p));
    truncate_file(p, cut);
    expect_recovered(i1 + 1);
    seg_file(seg2, ".log", p, sizeof(p));
    assert_int_equal(ut_file_size(p), -1); /* dropped */

    /* a flipped byte in segment 1's first batch, with its offset index gone (so the sealed
     * segment is scanned rather than trusted): cut at segment 1's base */
    fresh_copy();
    seg_file(seg1, ".index", p, sizeof(p));
    unlink(p);
    seg_file(seg1, ".log", p, sizeof(p));
    FILE *f = fopen(p, "r+b");
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0x80, f);
    fclose(f);
    expect_recovered(i1);
}

/* baseOffset is outside the CRC: a damaged one far beyond the segment (which would overflow
 * the offsets) ends the valid part there, in the active segment (scanned) and in a sealed one
 * (opened from its index, then walked to its end). */
static void test_recover_damaged_base_offset(void **state)
{
    build_pristine();
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(pristine, &cfg, NOW);
    int64_t seg1 = log->segs[1]->base_offset;
    int64_t seg0_size = log->segs[0]->size;
    int64_t active = log->segs[log->nsegs - 1]->base_offset;
    int64_t active_size = log->segs[log->nsegs - 1]->size;
    kp_log_close(log);
    static const int64_t bad[] = {INT64_MAX, INT64_MAX - 3, (int64_t)1 << 40};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        for (int which = 0; which < 2; which++) {
            /* the last batch of segment 0 (sealed) or of the active segment */
            int last = 0;
            while (last + 1 < RN && rrecs[last + 1].base < (which ? RN * 100 : seg1)) last++;
            kp_buf_t b;
            kp_buf_init(&b);
            int64_t len = (int64_t)ut_batch_build(&b, &rrecs[last].opts);
            kp_buf_free(&b);
            fresh_copy();
            char p[PATH_MAX + 64];
            seg_file(which ? active : 0, ".log", p, sizeof(p));
            FILE *f = fopen(p, "r+b");
            assert_non_null(f);
            fseek(f, (which ? active_size : seg0_size) - len, SEEK_SET);
            uint8_t be[8];
            ut_st64(be, (uint64_t)bad[k]);
            fwrite(be, 1, 8, f);
            fclose(f);
            expect_recovered(last);
        }
    }
}

/* Leftovers of interrupted work are removed; a log-start-offset file is honoured. */
static void test_recover_leftovers_and_log_start(void **state)
{
    static rec_t recs[20];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, 20);
    kp_log_close(log);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/00000000000000000000.index.tmp", dir);
    FILE *f = fopen(p, "w");
    fclose(f);
    snprintf(p, sizeof(p), "%s/00000000000000000000.log.deleted", dir);
    f = fopen(p, "w");
    fclose(f);
    snprintf(p, sizeof(p), "%s/log-start-offset", dir);
    f = fopen(p, "w");
    fprintf(f, "%lld\n", (long long)recs[5].base);
    fclose(f);
    log = kp_log_open(dir, &cfg, NOW);
    assert_int_equal(count_files(".tmp"), 0);
    assert_int_equal(count_files(".deleted"), 0);
    int64_t leo = recs[19].last + 1;
    expect_offsets(log, recs[5].base, leo, leo);
    kp_log_read_t rd;
    kp_log_read(log, recs[5].base - 1, 100, 1, &rd);
    assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    int64_t ts;
    assert_int_equal(kp_log_offset_for_time(log, -2, &ts), recs[5].base);
    /* a timestamp in an earlier batch answers with the log start */
    assert_int_equal(kp_log_offset_for_time(log, NOW, &ts), recs[5].base);
    expect_all(log, recs + 5, 15);
    kp_log_close(log);
}

/* ---- idempotent producers ---- */

static ut_batch_opts_t pbatch(int64_t pid, int16_t epoch, int32_t seq, int32_t n)
{
    ut_batch_opts_t o = ut_batch_defaults(n, NOW);
    o.producer_id = pid;
    o.producer_epoch = epoch;
    o.base_sequence = seq;
    o.value_len = 300;
    return o;
}

static void test_producer_state_survives_restart(void **state)
{
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20; /* no roll here */
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    int64_t offs[6];
    int32_t seq = 0;
    for (int i = 0; i < 6; i++) {
        ut_batch_opts_t o = pbatch(42, 1, seq, 2);
        kp_append_result_t r = append_opts(log, &o);
        assert_int_equal(r.status, KP_APPEND_OK);
        offs[i] = r.base_offset;
        seq += 2;
        /* interleave another producer */
        o = pbatch(43, 0, i, 1);
        assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    }
    ut_batch_opts_t dup = pbatch(42, 1, 10, 2);
    kp_append_result_t r = append_opts(log, &dup);
    assert_int_equal(r.status, KP_APPEND_DUPLICATE);
    assert_int_equal(r.base_offset, offs[5]);
    int64_t leo = log->log_end_offset;
    kp_log_close(log);

    log = kp_log_open(dir, &cfg, NOW);
    /* the last five batches of 42 are still duplicates with their offsets */
    for (int i = 1; i < 6; i++) {
        dup = pbatch(42, 1, 2 * i, 2);
        r = append_opts(log, &dup);
        assert_int_equal(r.status, KP_APPEND_DUPLICATE);
        assert_int_equal(r.base_offset, offs[i]);
        assert_int_equal(r.last_offset, offs[i] + 1);
    }
    dup = pbatch(42, 1, 0, 2);
    assert_int_equal(append_opts(log, &dup).status, KP_APPEND_OUT_OF_ORDER);
    dup = pbatch(42, 1, 14, 1);
    assert_int_equal(append_opts(log, &dup).status, KP_APPEND_OUT_OF_ORDER);
    dup = pbatch(42, 0, 12, 1);
    assert_int_equal(append_opts(log, &dup).status, KP_APPEND_INVALID_EPOCH);
    dup = pbatch(43, 0, 6, 1);
    assert_int_equal(append_opts(log, &dup).status, KP_APPEND_OK);
    expect_offsets(log, 0, leo + 1, leo + 1); /* only the last one appended */
    kp_log_close(log);
}

static void test_producer_state_across_roll(void **state)
{
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    /* ~1 KiB batches, four to a segment: several rolls; remember the offsets */
    enum { N = 30 };
    int64_t offs[N];
    for (int i = 0; i < N; i++) {
        ut_batch_opts_t o = pbatch(7, 0, i, 1);
        o.value_len = 900;
        kp_append_result_t r = append_opts(log, &o);
        assert_int_equal(r.status, KP_APPEND_OK);
        offs[i] = r.base_offset;
    }
    int nsegs = log->nsegs;
    assert_true(nsegs >= 4);
    int64_t active_base = log->segs[nsegs - 1]->base_offset;
    assert_true(offs[N - 5] < active_base); /* the oldest remembered batch is before the roll */
    kp_log_close(log);

    for (int variant = 0; variant < 3; variant++) {
        if (variant == 1) {
            /* newest snapshot damaged: the older one plus a longer replay */
            char p[PATH_MAX + 64];
            seg_file(active_base, ".snapshot", p, sizeof(p));
            FILE *f = fopen(p, "r+b");
            assert_non_null(f);
            fseek(f, 14, SEEK_SET);
            fputc(0x55, f);
            fclose(f);
        } else if (variant == 2) {
            /* no snapshots at all: replay of the whole log */
            DIR *d = opendir(dir);
            struct dirent *e;
            while ((e = readdir(d))) {
                size_t n = strlen(e->d_name);
                if (n > 9 && strcmp(e->d_name + n - 9, ".snapshot") == 0) {
                    char p[PATH_MAX + 300];
                    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                    unlink(p);
                }
            }
            closedir(d);
        }
        log = kp_log_open(dir, &cfg, NOW);
        for (int i = N - 5; i < N; i++) {
            ut_batch_opts_t o = pbatch(7, 0, i, 1);
            o.value_len = 900;
            kp_append_result_t r = append_opts(log, &o);
            assert_int_equal(r.status, KP_APPEND_DUPLICATE);
            assert_int_equal(r.base_offset, offs[i]);
        }
        ut_batch_opts_t o = pbatch(7, 0, N + 1, 1);
        assert_int_equal(append_opts(log, &o).status, KP_APPEND_OUT_OF_ORDER);
        kp_log_close(log);
    }
}

/* ---- fault injection ---- */

static void test_write_failure(void **state)
{
    static rec_t recs[12];
    kp_log_config_t cfg = small_config(1);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, 4);
    kp_log_flush(log);
    int64_t leo = recs[3].last + 1;
    int64_t size = log->segs[log->nsegs - 1]->size;

    kp_fs = &kp_fs_faulty;
    static const int64_t budgets[] = {0, 1, 60, 61, 100};
    for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
        kp_fs_faults.write_budget = budgets[k];
        ut_batch_opts_t o = batch_opts(4);
        kp_append_result_t r = append_opts(log, &o);
        assert_int_equal(r.status, KP_APPEND_STORAGE_ERROR);
        expect_offsets(log, 0, leo, leo);
        assert_int_equal(log->segs[log->nsegs - 1]->size, size);
        assert_int_equal(kp_fs_posix.size(log->segs[log->nsegs - 1]->fd), size);
        assert_int_equal(log->offline, 0); /* the torn write was cut back */
    }
    kp_fs_faults.write_budget = -1;
    append_many(log, recs, 4, 1);
    assert_int_equal(recs[4].base, leo);
    kp_log_flush(log);
    expect_all(log, recs, 5);
    kp_fs = &kp_fs_posix;
    kp_log_close(log);
    log = kp_log_open(dir, &cfg, NOW);
    expect_offsets(log, 0, recs[4].last + 1, recs[4].last + 1);
    expect_all(log, recs, 5);
    kp_log_close(log);
}

/* A write that fails while rolling (sealing writes the index files) takes the partition
 * offline; after a restart the log is consistent. */
static void test_write_failure_during_roll(void **state)
{
    static rec_t recs[40];
    kp_log_config_t cfg = small_config(0);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    int n = 0;
    /* fill the active segment up to just before a roll */
    for (;;) {
        ut_batch_opts_t o = batch_opts(n);
        kp_buf_t b;
        kp_buf_init(&b);
        size_t len = ut_batch_build(&b, &o);
        kp_buf_free(&b);
        if (log->segs[0]->size + (int64_t)len > cfg.segment_bytes) break;
        append_many(log, recs, n, 1);
        n++;
    }
    assert_int_equal(log->nsegs, 1);
    kp_fs = &kp_fs_faulty;
    kp_fs_faults.write_budget = 0;
    ut_batch_opts_t o = batch_opts(n);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_STORAGE_ERROR);
    assert_int_equal(log->offline, 1);
    kp_fs_faults.write_budget = -1;
    /* offline stays offline */
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_STORAGE_ERROR);
    kp_log_read_t rd;
    kp_log_read(log, 0, 100, 1, &rd);
    assert_int_equal(rd.error, KP_READ_STORAGE);
    kp_fs = &kp_fs_posix;
    kp_log_close(log);
    log = kp_log_open(dir, &cfg, NOW);
    int64_t leo = recs[n - 1].last + 1;
    expect_offsets(log, 0, leo, leo);
    expect_all(log, recs, n);
    append_many(log, recs, n, 1);
    assert_true(log->nsegs == 2);
    kp_log_close(log);
}

static void test_fsync_failure(void **state)
{
    static rec_t recs[4];
    kp_log_config_t cfg = small_config(1);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, 2);
    kp_log_flush(log);
    int64_t hwm = recs[1].last + 1;
    append_many(log, recs, 2, 1);
    waiter_t w1 = {{recs[2].last, waiter_done, NULL}, 0, -1};
    waiter_t w2 = {{recs[2].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w1.w);
    kp_log_wait_flush(log, &w2.w);

    kp_fs = &kp_fs_faulty;
    kp_fs_faults.fail_fsync = 1;
    kp_log_flush(log);
    assert_int_equal(log->offline, 1);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(w1.err, EIO);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(w2.err, EIO);
    /* the HWM did not move past what was durable */
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(h, hwm);
    /* the partition refuses I/O */
    ut_batch_opts_t o = batch_opts(3);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_STORAGE_ERROR);
    kp_log_read_t rd;
    kp_log_read(log, 0, 100, 1, &rd);
    assert_int_equal(rd.error, KP_READ_STORAGE);
    assert_null(rd.seg);
    waiter_t w3 = {{recs[0].last, waiter_done, NULL}, 0, -1};
    kp_log_wait_flush(log, &w3.w);
    assert_int_equal(w3.calls, 1);
    assert_int_equal(w3.err, EIO);
    /* a later flush does not bring it back */
    kp_fs_faults.fail_fsync = 0;
    kp_log_flush(log);
    assert_int_equal(log->offline, 1);
    kp_fs = &kp_fs_posix;
    kp_log_close(log);
    /* after a restart, what reached the file is recovered */
    log = kp_log_open(dir, &cfg, NOW);
    assert_int_equal(log->offline, 0);
    expect_offsets(log, 0, recs[2].last + 1, recs[2].last + 1);
    expect_all(log, recs, 3);
    kp_log_close(log);
}

/* The failure hook (the broker's "log directory failed"): called for an I/O error, not for a
 * full disk, with the log's directory and the errno. */
typedef struct hook_rec {
    int calls, err;
    char dir[512];
} hook_rec_t;

static void on_failure(const char *d, int err, void *arg)
{
    hook_rec_t *h = arg;
    h->calls++;
    h->err = err;
    snprintf(h->dir, sizeof(h->dir), "%s", d);
}

static void test_failure_hook(void **state)
{
    static rec_t recs[4];
    hook_rec_t h = {0};
    kp_log_set_failure_hook(on_failure, &h);
    kp_log_config_t cfg = small_config(1);
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    append_many(log, recs, 0, 1);
    kp_fs = &kp_fs_faulty;
    kp_fs_faults.write_budget = 0; /* a full disk: appends fail, the directory is fine */
    ut_batch_opts_t o = batch_opts(1);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_STORAGE_ERROR);
    assert_int_equal(h.calls, 0);
    kp_fs_faults.write_budget = -1;
    append_many(log, recs, 1, 1);            /* space again: appends succeed */
    atomic_store(&kp_fs_faults.fail_eio, 1); /* the disk dies */
    o = batch_opts(2);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_STORAGE_ERROR);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.err, EIO);
    assert_string_equal(h.dir, log->dir);
    atomic_store(&kp_fs_faults.fail_eio, 0);
    kp_fs = &kp_fs_posix;
    kp_log_set_failure_hook(NULL, NULL);
    kp_log_close(log);
}

/* ---- group commit with the real flusher threads ---- */

enum { WORKERS = 4, PER_WORKER = 150 };

typedef struct worker {
    pthread_t thread;
    kp_log_t *log;
    int id, failures;
    int64_t base[PER_WORKER], count[PER_WORKER];
    waiter_t waiters[PER_WORKER];
} worker_t;

static atomic_int flushed_ok, flushed_err;

static void worker_done(kp_flush_waiter_t *w, int err)
{
    atomic_fetch_add(err ? &flushed_err : &flushed_ok, 1);
}

/* Appends PER_WORKER batches and waits (asynchronously) for each to be durable. No cmocka
 * asserts here: they may not run off the main thread. */
static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    kp_buf_t b;
    kp_buf_init(&b);
    for (int i = 0; i < PER_WORKER; i++) {
        ut_batch_opts_t o = ut_batch_defaults(1 + (wk->id + i) % 3, NOW + i);
        o.value_len = 40 + wk->id;
        size_t len = ut_batch_build(&b, &o);
        kp_batch_info_t info;
        if (kp_batch_validate(b.data, len, &info) != KP_BATCH_OK) wk->failures++;
        kp_append_result_t res;
        kp_log_append(wk->log, b.data, len, &info, NOW + i, &res);
        if (res.status != KP_APPEND_OK) wk->failures++;
        wk->base[i] = res.base_offset;
        wk->count[i] = o.nrecords;
        wk->waiters[i].w.offset = res.last_offset;
        wk->waiters[i].w.done = worker_done;
        kp_log_wait_flush(wk->log, &wk->waiters[i].w);
    }
    kp_buf_free(&b);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_flusher_threads(void **state)
{
    static worker_t wk[WORKERS];
    kp_log_config_t cfg = small_config(1);
    cfg.segment_bytes = 64 * 1024;
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    atomic_store(&flushed_ok, 0);
    atomic_store(&flushed_err, 0);
    assert_int_equal(kp_flusher_start(2), 0);
    for (int t = 0; t < WORKERS; t++) {
        memset(&wk[t], 0, sizeof(wk[t]));
        wk[t].log = log;
        wk[t].id = t;
        assert_int_equal(pthread_create(&wk[t].thread, NULL, worker_main, &wk[t]), 0);
    }
    for (int t = 0; t < WORKERS; t++) pthread_join(wk[t].thread, NULL);
    for (int ms = 0; ms < 20000 && atomic_load(&flushed_ok) < WORKERS * PER_WORKER; ms += 5)
        usleep(5000);
    kp_flusher_stop();
    assert_int_equal(atomic_load(&flushed_err), 0);
    assert_int_equal(atomic_load(&flushed_ok), WORKERS * PER_WORKER);
    /* offsets: disjoint, contiguous, covering [0, LEO); everything is durable and visible */
    static int64_t ranges[WORKERS * PER_WORKER][2];
    int n = 0;
    for (int t = 0; t < WORKERS; t++) {
        assert_int_equal(wk[t].failures, 0);
        for (int i = 0; i < PER_WORKER; i++) {
            ranges[n][0] = wk[t].base[i];
            ranges[n][1] = wk[t].count[i];
            n++;
        }
    }
    qsort(ranges, (size_t)n, sizeof(ranges[0]), cmp_i64);
    int64_t next = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(ranges[i][0], next);
        next += ranges[i][1];
    }
    expect_offsets(log, 0, next, next);
    kp_log_close(log);
    log = kp_log_open(dir, &cfg, NOW);
    expect_offsets(log, 0, next, next);
    kp_log_close(log);
}

/* segment.ms: a segment older than that (by its first batch's timestamp) rolls. */
static void test_roll_by_time(void **state)
{
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20;
    cfg.segment_ms = 60000;
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    o.base_timestamp = NOW + 60000;
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    assert_int_equal(log->nsegs, 1);
    o.base_timestamp = NOW + 60001;
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    assert_int_equal(log->nsegs, 2);
    assert_int_equal(log->segs[1]->base_offset, 2);
    kp_log_close(log);
}

/* segment.jitter.ms: each segment draws a jitter in [0, min(jitter, segment.ms)) and rolls
 * once older than segment.ms - jitter; the draws differ. */
static void test_roll_jitter(void **state)
{
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20;
    cfg.segment_ms = 60000;
    cfg.segment_jitter_ms = 1000000; /* above segment.ms: bounded by segment.ms */
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    int64_t first = log->roll_jitter_ms, t = NOW;
    int differ = 0;
    ut_batch_opts_t o = ut_batch_defaults(1, t);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    for (int i = 0; i < 20; i++) {
        int64_t j = log->roll_jitter_ms;
        assert_true(j >= 0 && j < cfg.segment_ms);
        if (j != first) differ = 1;
        int nsegs = log->nsegs;
        /* exactly at segment.ms - jitter: not yet; one ms later: rolls */
        o.base_timestamp = t + cfg.segment_ms - j;
        assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
        assert_int_equal(log->nsegs, nsegs);
        o.base_timestamp = t = t + cfg.segment_ms - j + 1;
        assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
        assert_int_equal(log->nsegs, nsegs + 1);
    }
    assert_true(differ);
    /* no jitter configured: exactly segment.ms */
    cfg.segment_jitter_ms = 0;
    kp_log_set_config(log, &cfg);
    assert_int_equal(log->roll_jitter_ms, 0);
    kp_log_close(log);
}

/* segment.index.bytes: a segment rolls once its offset index (8-byte entries) or its time
 * index (12-byte entries) is full. */
static void test_roll_by_index_size(void **state)
{
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20;
    cfg.index_interval_bytes = 0; /* an index entry per batch */
    cfg.segment_index_bytes = 36; /* 4 offset entries, 3 time entries */
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    /* rising timestamps: a time entry per batch too, so the time index fills first */
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    for (int i = 0; i < 7; i++) {
        o.base_timestamp = NOW + i;
        assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    }
    assert_int_equal(log->nsegs, 3);
    assert_int_equal(log->segs[1]->base_offset, 3);
    assert_int_equal(log->segs[2]->base_offset, 6);
    /* equal timestamps add no time entry: the offset index fills first, after 4 batches
     * (offsets 6..9 in the segment at 6, 10..13, then 14) */
    for (int i = 0; i < 8; i++) assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    assert_int_equal(log->nsegs, 5);
    assert_int_equal(log->segs[3]->base_offset, 10);
    assert_int_equal(log->segs[4]->base_offset, 14);
    kp_log_close(log);
}

/* log.flush.threads changed while appends wait for fsyncs: the pool grows and shrinks, a
 * leaving thread hands queued logs to the others, and every waiter completes. */
static void test_flusher_resize(void **state)
{
    static worker_t wk[WORKERS];
    kp_log_config_t cfg = small_config(1);
    cfg.segment_bytes = 64 * 1024;
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    atomic_store(&flushed_ok, 0);
    atomic_store(&flushed_err, 0);
    assert_int_equal(kp_flusher_start(1), 0);
    for (int t = 0; t < WORKERS; t++) {
        memset(&wk[t], 0, sizeof(wk[t]));
        wk[t].log = log;
        wk[t].id = t;
        assert_int_equal(pthread_create(&wk[t].thread, NULL, worker_main, &wk[t]), 0);
    }
    static const int sizes[] = {4, 1, 3, 2, 1, 5};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(kp_flusher_resize(sizes[i]), 0);
        usleep(2000);
    }
    assert_int_equal(kp_flusher_resize(0), -1);
    for (int t = 0; t < WORKERS; t++) pthread_join(wk[t].thread, NULL);
    assert_int_equal(kp_flusher_resize(1), 0); /* shrinking after the last append */
    for (int ms = 0; ms < 20000 && atomic_load(&flushed_ok) < WORKERS * PER_WORKER; ms += 5)
        usleep(5000);
    kp_flusher_stop();
    assert_int_equal(atomic_load(&flushed_err), 0);
    assert_int_equal(atomic_load(&flushed_ok), WORKERS * PER_WORKER);
    for (int t = 0; t < WORKERS; t++) assert_int_equal(wk[t].failures, 0);
    int64_t start, hwm, leo;
    kp_log_offsets(log, &start, &hwm, &leo);
    assert_int_equal(hwm, leo);
    kp_log_close(log);
}

static int wait_flushed(kp_log_t *log, int64_t offset)
{
    for (int ms = 0; ms < 10000; ms += 2) {
        pthread_mutex_lock(&log->lock);
        int64_t f = log->flushed_offset;
        pthread_mutex_unlock(&log->lock);
        if (f >= offset) return 1;
        usleep(2000);
    }
    return 0;
}

/* flush.messages / flush.ms in page-cache mode: an fsync is queued once that many messages
 * are unflushed or the last flush is that old, and only then. */
static void test_page_cache_flush_intervals(void **state)
{
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20;
    cfg.flush_messages = 5;
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    assert_int_equal(kp_flusher_start(1), 0);
    long long before = atomic_load(&kp_metrics.flushes);
    long long by_interval = atomic_load(&kp_metrics.flushes_by_interval);
    ut_batch_opts_t o = ut_batch_defaults(2, NOW);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK); /* 4 unflushed */
    usleep(50000);
    assert_int_equal(log->flushed_offset, 0);
    assert_int_equal(atomic_load(&kp_metrics.flushes), before);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK); /* 6: due */
    assert_true(wait_flushed(log, 6));
    assert_int_equal(atomic_load(&kp_metrics.flushes_by_interval), by_interval + 1);
    /* a flush does not keep re-queueing itself in page-cache mode */
    long long after = atomic_load(&kp_metrics.flushes);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK); /* 2 unflushed */
    usleep(50000);
    assert_int_equal(atomic_load(&kp_metrics.flushes), after);
    assert_int_equal(log->flushed_offset, 6);

    /* flush.ms: not before it is due, then once; nothing when nothing is unflushed. The
     * config change lists the log (2 messages unflushed) for the flush.ms pass. */
    cfg.flush_messages = INT64_MAX;
    cfg.flush_ms = 100000;
    kp_log_set_config(log, &cfg);
    int64_t last = log->last_flush_mono_ms;
    int queued = -1;
    assert_int_equal(kp_log_flush_interval_pass(last + 99999, &queued), 1);
    assert_int_equal(queued, 0);
    assert_int_equal(kp_log_flush_interval_pass(last + 100000, &queued), 1);
    assert_int_equal(queued, 1);
    assert_true(wait_flushed(log, 8));
    /* clean: visited once more, queues nothing and leaves the list */
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 200000, &queued), 1);
    assert_int_equal(queued, 0);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 200000, &queued), 0);
    assert_int_equal(atomic_load(&kp_metrics.flushes_by_interval), by_interval + 2);
    /* durable mode: these settings change nothing (every ack is fsynced anyway) */
    cfg.durable = 1;
    cfg.flush_ms = 0;
    kp_log_set_config(log, &cfg);
    assert_int_equal(append_opts(log, &o).status, KP_APPEND_OK);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 200000, &queued), 0);
    kp_flusher_stop();
    kp_log_close(log);
}

/* The flush.ms pass visits the partitions with unflushed data under a finite flush.ms, not
 * every open one: with 10,000 idle topics a pass over all of them each second was most of
 * an idle broker's CPU. A closed log leaves the list whatever state it was in. */
static void test_flush_pass_visits_only_unflushed_logs(void **state)
{
    enum { NLOGS = 40 };
    kp_log_config_t cfg = small_config(0);
    cfg.segment_bytes = 1 << 20;
    cfg.flush_ms = 1000;
    kp_log_t *logs[NLOGS];
    for (int i = 0; i < NLOGS; i++) {
        char sub[PATH_MAX + 16];
        snprintf(sub, sizeof(sub), "%s/p-%d", dir, i);
        logs[i] = kp_log_open(sub, &cfg, NOW);
        assert_non_null(logs[i]);
    }
    assert_int_equal(kp_flusher_start(1), 0);
    long long passes = atomic_load(&kp_metrics.flush_passes);
    long long visits = atomic_load(&kp_metrics.flush_pass_partitions);
    int queued = -1;
    /* all flushed at open: nothing to visit */
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms(), &queued), 0);
    ut_batch_opts_t o = ut_batch_defaults(3, NOW);
    assert_int_equal(append_opts(logs[7], &o).status, KP_APPEND_OK);
    assert_int_equal(append_opts(logs[23], &o).status, KP_APPEND_OK);
    assert_int_equal(append_opts(logs[23], &o).status, KP_APPEND_OK); /* listed once */
    assert_int_equal(append_opts(logs[31], &o).status, KP_APPEND_OK);
    kp_log_close(logs[31]); /* listed, then closed: off the list */
    logs[31] = NULL;
    /* not due yet: visited, kept */
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms(), &queued), 2);
    assert_int_equal(queued, 0);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms(), &queued), 2);
    /* due: both fsynced, then dropped by the next pass */
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 2000, &queued), 2);
    assert_int_equal(queued, 2);
    assert_true(wait_flushed(logs[7], 3));
    assert_true(wait_flushed(logs[23], 6));
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 4000, &queued), 2);
    assert_int_equal(queued, 0);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 4000, &queued), 0);
    assert_int_equal(atomic_load(&kp_metrics.flush_passes), passes + 6);
    assert_int_equal(atomic_load(&kp_metrics.flush_pass_partitions), visits + 8);
    /* an append lists it again */
    assert_int_equal(append_opts(logs[7], &o).status, KP_APPEND_OK);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms(), &queued), 1);
    /* flush.ms back to unset: dropped at the next pass */
    cfg.flush_ms = INT64_MAX;
    kp_log_set_config(logs[7], &cfg);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 4000, &queued), 1);
    assert_int_equal(queued, 0);
    assert_int_equal(kp_log_flush_interval_pass(kp_mono_ms() + 4000, &queued), 0);
    kp_flusher_stop();
    for (int i = 0; i < NLOGS; i++) kp_log_close(logs[i]);
}

/* ---- lifecycle ---- */

static void test_rename_and_destroy(void **state)
{
    static rec_t recs[30];
    kp_log_config_t cfg = small_config(0);
    char sub[PATH_MAX + 16], moved[PATH_MAX + 16];
    snprintf(sub, sizeof(sub), "%s/t-0", dir);
    snprintf(moved, sizeof(moved), "%s/t-0.deleting", dir);
    kp_log_t *log = kp_log_open(sub, &cfg, NOW);
    assert_non_null(log);
    append_many(log, recs, 0, 20);
    assert_int_equal(kp_log_rename_dir(log, moved), 0);
    append_many(log, recs, 20, 10); /* rolls write into the new directory */
    expect_all(log, recs, 30);
    struct stat st;
    assert_int_equal(stat(sub, &st), -1);
    kp_log_destroy(log);
    assert_int_equal(stat(moved, &st), -1);
}

/* Replication primitives: a follower copies the leader's batches with their offsets and
 * epochs (kp_log_append_replica), the epoch cache answers OffsetsForLeaderEpoch, a read can
 * be bounded below the HWM (kp_log_read_upto), and a divergent tail is truncated across
 * segments — all surviving a reopen. */
static void copy_batch(kp_log_t *from, kp_log_t *to, int64_t offset)
{
    kp_log_read_t rd;
    kp_log_read(from, offset, 1, 1, &rd);
    assert_int_equal(rd.error, 0);
    assert_non_null(rd.seg);
    uint8_t *buf = malloc((size_t)rd.len);
    read_bytes(&rd, buf);
    kp_segment_put(rd.seg);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(buf, (size_t)rd.len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append_replica(to, buf, (size_t)rd.len, &info, NOW, &res);
    assert_int_equal(res.status, KP_APPEND_OK);
    assert_int_equal(res.base_offset, info.base_offset);
    free(buf);
}

/* The batches of recs[0..n) read the same, byte for byte, from both logs. */
static void same_batches(kp_log_t *a, kp_log_t *b, const rec_t *recs, int n)
{
    for (int i = 0; i < n; i++) {
        kp_log_read_t ra, rb;
        kp_log_read(a, recs[i].base, 1, 1, &ra);
        kp_log_read(b, recs[i].base, 1, 1, &rb);
        assert_non_null(ra.seg);
        assert_non_null(rb.seg);
        assert_int_equal(ra.len, rb.len);
        uint8_t *x = malloc((size_t)ra.len), *y = malloc((size_t)rb.len);
        read_bytes(&ra, x);
        read_bytes(&rb, y);
        assert_memory_equal(x, y, (size_t)ra.len);
        free(x);
        free(y);
        kp_segment_put(ra.seg);
        kp_segment_put(rb.seg);
    }
}

static void test_replica_primitives(void **state)
{
    char ldir[PATH_MAX + 16], fdir[PATH_MAX + 16];
    snprintf(ldir, sizeof(ldir), "%s/leader", dir);
    snprintf(fdir, sizeof(fdir), "%s/follower", dir);
    kp_log_config_t cfg = small_config(0);
    kp_log_t *leader = kp_log_open(ldir, &cfg, NOW);
    kp_log_t *follower = kp_log_open(fdir, &cfg, NOW);
    rec_t recs[40];
    kp_log_set_leader_epoch(leader, 1);
    append_many(leader, recs, 0, 20);
    kp_log_set_leader_epoch(leader, 4);
    append_many(leader, recs, 20, 20);
    assert_true(leader->nsegs > 2);
    /* the follower copies everything, same offsets */
    for (int i = 0; i < 40; i++) copy_batch(leader, follower, recs[i].base);
    int64_t s1, h1, l1, s2, h2, l2;
    kp_log_offsets(leader, &s1, &h1, &l1);
    kp_log_offsets(follower, &s2, &h2, &l2);
    assert_int_equal(l1, l2);
    same_batches(leader, follower, recs, 40);
    /* a batch not at the LEO is refused */
    {
        kp_log_read_t rd;
        kp_log_read(leader, recs[3].base, 1, 1, &rd);
        uint8_t *buf = malloc((size_t)rd.len);
        read_bytes(&rd, buf);
        kp_segment_put(rd.seg);
        kp_batch_info_t info;
        kp_batch_validate(buf, (size_t)rd.len, &info);
        kp_append_result_t res;
        kp_log_append_replica(follower, buf, (size_t)rd.len, &info, NOW, &res);
        assert_int_equal(res.status, KP_APPEND_OUT_OF_ORDER);
        free(buf);
    }
    /* epochs: 1 from 0, 4 from recs[20].base; asking for 2 or 3 answers epoch 1 ending there */
    int32_t e;
    int64_t end;
    kp_log_epoch_end(follower, 3, &e, &end);
    assert_int_equal(e, 1);
    assert_int_equal(end, recs[20].base);
    kp_log_epoch_end(follower, 4, &e, &end);
    assert_int_equal(e, 4);
    assert_int_equal(end, l2);
    kp_log_epoch_end(follower, 0, &e, &end);
    assert_int_equal(e, -1);
    assert_int_equal(end, -1);
    assert_int_equal(kp_log_last_epoch(follower), 4);
    /* a read bounded at a batch boundary stops there */
    kp_log_read_t rd;
    kp_log_read_upto(follower, recs[2].base, 1 << 20, 1, recs[5].base, &rd);
    assert_int_equal(rd.high_watermark, recs[5].base);
    assert_non_null(rd.seg);
    int64_t p, blen, bbase;
    assert_int_equal(kp_segment_find(rd.seg, recs[5].base, rd.pos, INT64_MAX, &p, &blen, &bbase),
                     0);
    assert_int_equal(rd.pos + rd.len, p);
    kp_segment_put(rd.seg);
    kp_log_read_upto(follower, recs[5].base, 1 << 20, 1, recs[5].base, &rd);
    assert_null(rd.seg);
    /* truncate into an earlier segment: later segments go, the rest stays intact */
    int64_t leo = kp_log_truncate(follower, recs[12].base, NOW);
    assert_int_equal(leo, recs[12].base);
    kp_log_offsets(follower, &s2, &h2, &l2);
    assert_int_equal(l2, recs[12].base);
    assert_true(h2 <= l2);
    same_batches(leader, follower, recs, 12);
    assert_int_equal(kp_log_last_epoch(follower), 1);
    /* and it continues from there */
    for (int i = 12; i < 40; i++) copy_batch(leader, follower, recs[i].base);
    same_batches(leader, follower, recs, 40);
    kp_log_close(follower);
    follower = kp_log_open(fdir, &cfg, NOW);
    kp_log_offsets(follower, &s2, &h2, &l2);
    assert_int_equal(l2, l1);
    same_batches(leader, follower, recs, 40);
    kp_log_epoch_end(follower, 3, &e, &end);
    assert_int_equal(end, recs[20].base);
    /* truncating to the start leaves an empty log at the start offset */
    assert_int_equal(kp_log_truncate(follower, 0, NOW), 0);
    /* starting over beyond the end (a follower below the leader's log start): nothing of
     * the old log is left, start = end = committed = the new offset, and it takes the
     * leader's batches from there, also after a reopen */
    copy_batch(leader, follower, recs[0].base);
    assert_int_equal(kp_log_restart_at(follower, recs[30].base, NOW), 0);
    kp_log_offsets(follower, &s2, &h2, &l2);
    assert_int_equal(s2, recs[30].base);
    assert_int_equal(h2, recs[30].base);
    assert_int_equal(l2, recs[30].base);
    assert_int_equal(kp_log_last_epoch(follower), -1);
    kp_log_read(follower, recs[0].base, 1 << 20, 1, &rd);
    assert_int_equal(rd.error, KP_READ_OUT_OF_RANGE);
    for (int i = 30; i < 40; i++) copy_batch(leader, follower, recs[i].base);
    kp_log_close(follower);
    follower = kp_log_open(fdir, &cfg, NOW);
    kp_log_offsets(follower, &s2, &h2, &l2);
    assert_int_equal(s2, recs[30].base);
    assert_int_equal(l2, l1);
    same_batches(leader, follower, recs + 30, 10);
    assert_int_equal(kp_log_last_epoch(follower), 4);
    kp_log_close(follower);
    kp_log_close(leader);
}

int main(void)
{
    /* recovery warnings and injected I/O errors are expected here */
    kp_logging_set_level((kp_loglevel_t)(KP_LOG_ERROR + 1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_across_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_hwm_and_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_cache_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_offsets_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_truncated_active_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_flipped_byte_in_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_corrupt_sealed_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_damaged_base_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_leftovers_and_log_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_state_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_state_across_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_during_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flusher_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_jitter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_index_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_cache_flush_intervals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_pass_visits_only_unflushed_logs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flusher_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_and_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replica_primitives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_hook, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
