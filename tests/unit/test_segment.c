/*
 * test_segment.c — storage/segment: append and lookup (sparse offset index, time index),
 * sealing writes index files that a later open trusts (and a damaged index falls back to a
 * scan), a scan truncates a torn tail at the last whole batch, a failed write is cut back,
 * and a segment marked deleted unlinks its files when the last reference goes.
 */
#include "unit.h"

#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>

static char dir[PATH_MAX];

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
    ut_tmpdir_remove(dir);
    return 0;
}

typedef struct appended {
    int64_t base, last, pos, len, max_ts;
} appended_t;

/* Appends batch i (1 + i % 4 records, timestamp 1000 * (i + 1)) at the segment's end. */
static void append_one(kp_segment_t *seg, int i, int32_t interval, appended_t *out)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(1 + i % 4, 1000 * (int64_t)(i + 1));
    o.base_offset = seg->next_offset;
    o.value_len = 50 + i % 7;
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    int64_t pos = seg->size;
    assert_int_equal(kp_segment_append(seg, b.data, len, &info, interval), 0);
    out->base = info.base_offset;
    out->last = kp_batch_last_offset(&info);
    out->pos = pos;
    out->len = (int64_t)len;
    out->max_ts = info.max_timestamp;
    kp_buf_free(&b);
}

static void seg_path(const char *ext, int64_t base, char *p, size_t n)
{
    snprintf(p, n, "%s/%020lld%s", dir, (long long)base, ext);
}

/* kp_segment_offset_for_time, checking that the answer is a record of a stored batch whose
 * timestamp (base_timestamp + its index, as ut_batch_build makes them) is reported. */
static int64_t offset_for_time(const kp_segment_t *seg, int64_t ts)
{
    int64_t found_ts = -1;
    int64_t off = kp_segment_offset_for_time(seg, ts, seg->size, &found_ts);
    if (off < 0) {
        assert_int_equal(found_ts, -1);
    } else {
        int64_t pos, len, base;
        assert_int_equal(kp_segment_find(seg, off, 0, seg->size, &pos, &len, &base), 0);
        uint8_t head[KP_BATCH_HEADER_BYTES];
        assert_int_equal(kp_fs_pread_all(seg->fd, head, sizeof(head), pos), 0);
        kp_batch_info_t info;
        kp_batch_parse_header(head, &info);
        assert_true(off >= info.base_offset && off <= kp_batch_last_offset(&info));
        assert_int_equal(found_ts, info.base_timestamp + (off - info.base_offset));
        assert_true(found_ts >= ts);
        assert_true(off == info.base_offset || found_ts - 1 < ts); /* the first such record */
    }
    return off;
}

/* Every offset is found in its batch, from the index floor and from the start. */
static void check_lookups(const kp_segment_t *seg, const appended_t *a, int n)
{
    for (int i = 0; i < n; i++) {
        for (int64_t off = a[i].base; off <= a[i].last; off++) {
            int64_t from, pos, len, base;
            kp_segment_index_floor(seg, off, &from);
            assert_true(from <= a[i].pos);
            assert_int_equal(kp_segment_find(seg, off, from, seg->size, &pos, &len, &base), 0);
            assert_int_equal(pos, a[i].pos);
            assert_int_equal(len, a[i].len);
            assert_int_equal(base, a[i].base);
            assert_int_equal(kp_segment_find(seg, off, 0, seg->size, &pos, &len, &base), 0);
            assert_int_equal(pos, a[i].pos);
        }
    }
    int64_t pos, len, base;
    assert_int_equal(kp_segment_find(seg, a[n - 1].last + 1, 0, seg->size, &pos, &len, &base), 1);
    /* a limit before the last batch hides it */
    assert_int_equal(kp_segment_find(seg, a[n - 1].base, 0, a[n - 1].pos, &pos, &len, &base), 1);
    /* by time: the first record whose timestamp >= ts (record k of a batch is at its base
     * timestamp + k), inside its batch, and a batch's first record for a time between batches */
    for (int i = 0; i < n; i++) {
        assert_int_equal(offset_for_time(seg, a[i].max_ts), a[i].last);
        assert_int_equal(offset_for_time(seg, a[i].max_ts - 500), a[i].base);
    }
    assert_int_equal(offset_for_time(seg, 0), a[0].base);
    assert_int_equal(offset_for_time(seg, a[n - 1].max_ts + 1), -1);
}

static void test_append_find_seal_reopen(void **state)
{
    enum { N = 120 };
    appended_t a[N];
    kp_segment_t *seg = kp_segment_create(dir, 500, 1);
    assert_non_null(seg);
    for (int i = 0; i < N; i++) append_one(seg, i, 256, &a[i]);
    assert_int_equal(a[0].base, 500);
    for (int i = 1; i < N; i++) {
        assert_int_equal(a[i].base, a[i - 1].last + 1);
        assert_int_equal(a[i].pos, a[i - 1].pos + a[i - 1].len);
    }
    assert_int_equal(seg->next_offset, a[N - 1].last + 1);
    assert_int_equal(seg->size, a[N - 1].pos + a[N - 1].len);
    assert_int_equal(seg->max_timestamp, a[N - 1].max_ts);
    /* sparse: an entry about every 256 bytes, not one per batch */
    assert_true(seg->nidx > 10 && seg->nidx < N);
    check_lookups(seg, a, N);

    assert_int_equal(kp_segment_seal(seg), 0);
    assert_int_equal(seg->sealed, 1);
    char p[PATH_MAX + 64];
    seg_path(".index", 500, p, sizeof(p));
    assert_int_equal(ut_file_size(p), seg->nidx * 8);
    seg_path(".timeindex", 500, p, sizeof(p));
    assert_int_equal(ut_file_size(p), seg->ntidx * 12);
    uint32_t nidx = seg->nidx, ntidx = seg->ntidx;
    kp_segment_put(seg);

    /* opened from the index files, without a scan */
    kp_scan_result_t res;
    seg = kp_segment_open(dir, 500, 0, 256, 2, &res);
    assert_non_null(seg);
    assert_int_equal(seg->sealed, 1);
    assert_int_equal(res.truncated, 0);
    assert_int_equal(seg->nidx, nidx);
    assert_int_equal(seg->ntidx, ntidx);
    assert_int_equal(seg->next_offset, a[N - 1].last + 1);
    assert_int_equal(seg->size, a[N - 1].pos + a[N - 1].len);
    /* the segment's max timestamp survives even though the last batch was not indexed */
    assert_int_equal(seg->max_timestamp, a[N - 1].max_ts);
    assert_int_equal(seg->max_timestamp_offset, a[N - 1].last);
    check_lookups(seg, a, N);
    kp_segment_put(seg);

    /* a full scan rebuilds the same indexes */
    seg = kp_segment_open(dir, 500, 1, 256, 2, &res);
    assert_non_null(seg);
    assert_int_equal(seg->sealed, 0);
    assert_int_equal(res.truncated, 0);
    assert_int_equal(res.valid_bytes, a[N - 1].pos + a[N - 1].len);
    assert_int_equal(seg->nidx, nidx);
    assert_int_equal(seg->next_offset, a[N - 1].last + 1);
    check_lookups(seg, a, N);
    kp_segment_put(seg);
}

/* Only the first batch is indexed (interval larger than the segment): the sealed segment must
 * still know its max timestamp when opened from its files, and find batches by time. */
static void test_seal_keeps_max_timestamp(void **state)
{
    enum { N = 5 };
    appended_t a[N];
    kp_segment_t *seg = kp_segment_create(dir, 0, 1);
    for (int i = 0; i < N; i++) append_one(seg, i, 1 << 20, &a[i]);
    assert_int_equal(seg->nidx, 1);
    assert_int_equal(kp_segment_seal(seg), 0);
    kp_segment_put(seg);
    kp_scan_result_t res;
    seg = kp_segment_open(dir, 0, 0, 1 << 20, 2, &res);
    assert_non_null(seg);
    assert_int_equal(seg->sealed, 1);
    assert_int_equal(seg->max_timestamp, a[N - 1].max_ts);
    assert_int_equal(seg->max_timestamp_offset, a[N - 1].last);
    assert_int_equal(seg->first_batch_timestamp, a[0].max_ts);
    check_lookups(seg, a, N);
    kp_segment_put(seg);
}

/* A damaged or missing index file is not trusted: the open falls back to a scan. */
static void test_bad_index_falls_back_to_scan(void **state)
{
    enum { N = 40 };
    appended_t a[N];
    kp_segment_t *seg = kp_segment_create(dir, 0, 1);
    for (int i = 0; i < N; i++) append_one(seg, i, 128, &a[i]);
    assert_int_equal(kp_segment_seal(seg), 0);
    kp_segment_put(seg);
    char p[PATH_MAX + 64];
    seg_path(".index", 0, p, sizeof(p));
    uint8_t *idx;
    size_t idx_len;
    assert_int_equal(kp_fs_read_all(p, 1 << 20, &idx, &idx_len), 0);

    for (int variant = 0; variant < 4; variant++) {
        FILE *f = fopen(p, "wb");
        if (variant == 0) {
            fwrite(idx, 1, idx_len - 3, f); /* not a multiple of 8 */
        } else if (variant == 1) {
            uint8_t *bad = malloc(idx_len);
            memcpy(bad, idx, idx_len);
            ut_st32(bad + 12, 0xffffff); /* a position beyond the file */
            fwrite(bad, 1, idx_len, f);
            free(bad);
        } else if (variant == 2) {
            uint8_t *bad = malloc(idx_len);
            memcpy(bad, idx, idx_len);
            memcpy(bad + 8, bad, 8); /* not increasing */
            fwrite(bad, 1, idx_len, f);
            free(bad);
        }
        fclose(f);
        if (variant == 3) unlink(p);
        kp_scan_result_t res;
        seg = kp_segment_open(dir, 0, 0, 128, 2, &res);
        assert_non_null(seg);
        assert_int_equal(seg->sealed, 0); /* it was scanned */
        assert_int_equal(seg->next_offset, a[N - 1].last + 1);
        check_lookups(seg, a, N);
        kp_segment_put(seg);
    }
    free(idx);
}

/* A torn tail is cut at the last whole, valid batch, for every cut position. */
static void test_scan_truncates_torn_tail(void **state)
{
    enum { N = 6 };
    appended_t a[N];
    kp_segment_t *seg = kp_segment_create(dir, 0, 1);
    for (int i = 0; i < N; i++) append_one(seg, i, 4096, &a[i]);
    int64_t full = seg->size;
    kp_segment_put(seg);
    char p[PATH_MAX + 64];
    seg_path(".log", 0, p, sizeof(p));
    uint8_t *orig;
    size_t orig_len;
    assert_int_equal(kp_fs_read_all(p, 1 << 20, &orig, &orig_len), 0);
    assert_int_equal(orig_len, full);

    for (int64_t cut = 0; cut <= full; cut++) {
        FILE *f = fopen(p, "wb");
        fwrite(orig, 1, (size_t)cut, f);
        fclose(f);
        int whole = 0;
        while (whole < N && a[whole].pos + a[whole].len <= cut) whole++;
        int64_t keep = whole ? a[whole - 1].pos + a[whole - 1].len : 0;
        kp_scan_result_t res;
        seg = kp_segment_open(dir, 0, 1, 4096, 2, &res);
        assert_non_null(seg);
        assert_int_equal(res.valid_bytes, keep);
        assert_int_equal(res.truncated, keep < cut);
        if (keep < cut) assert_non_null(res.why);
        assert_int_equal(seg->size, keep);
        assert_int_equal(seg->next_offset, whole ? a[whole - 1].last + 1 : 0);
        assert_int_equal(ut_file_size(p), keep); /* the file itself was cut */
        kp_segment_put(seg);
    }
    free(orig);
}

/* A failed write leaves the segment exactly as it was; the next append succeeds. */
static void test_append_write_failure(void **state)
{
    appended_t a[3];
    kp_segment_t *seg = kp_segment_create(dir, 0, 1);
    append_one(seg, 0, 4096, &a[0]);
    int64_t size = seg->size, next = seg->next_offset;
    uint32_t nidx = seg->nidx;

    kp_buf_t b;
    kp_buf_init(&b);
    ut_batch_opts_t o = ut_batch_defaults(3, 5000);
    o.base_offset = next;
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_fs = &kp_fs_faulty;
    /* nothing written, one byte written, all but the last byte written */
    const int64_t budgets[3] = {0, 1, (int64_t)len - 1};
    for (int i = 0; i < 3; i++) {
        kp_fs_faults.write_budget = budgets[i];
        errno = 0;
        assert_int_equal(kp_segment_append(seg, b.data, len, &info, 4096), -1);
        assert_int_equal(errno, ENOSPC);
        assert_int_equal(seg->size, size);
        assert_int_equal(seg->next_offset, next);
        assert_int_equal(seg->nidx, nidx);
        assert_int_equal(kp_fs->size(seg->fd), size); /* the partial write was cut back */
    }
    kp_fs_faults.write_budget = -1;
    assert_int_equal(kp_segment_append(seg, b.data, len, &info, 4096), 0);
    assert_int_equal(seg->next_offset, next + 3);
    kp_fs = &kp_fs_posix;
    kp_segment_put(seg);

    kp_scan_result_t res;
    seg = kp_segment_open(dir, 0, 1, 4096, 2, &res);
    assert_int_equal(res.truncated, 0);
    assert_int_equal(seg->next_offset, next + 3);
    kp_segment_put(seg);
    kp_buf_free(&b);
}

/* A deleted segment keeps its files while referenced and unlinks them with the last put. */
static void test_refcount_and_delete(void **state)
{
    appended_t a;
    kp_segment_t *seg = kp_segment_create(dir, 7, 1);
    append_one(seg, 0, 4096, &a);
    assert_int_equal(kp_segment_seal(seg), 0);
    char p[PATH_MAX + 64];
    seg_path(".log", 7, p, sizeof(p));
    kp_ref_get(&seg->ref); /* a response still splices it */
    seg->deleted = 1;
    kp_segment_put(seg);
    assert_true(ut_file_size(p) > 0);
    kp_segment_put(seg);
    assert_int_equal(ut_file_size(p), -1);
    seg_path(".index", 7, p, sizeof(p));
    assert_int_equal(ut_file_size(p), -1);
    seg_path(".timeindex", 7, p, sizeof(p));
    assert_int_equal(ut_file_size(p), -1);
    /* opening a segment that does not exist fails cleanly */
    kp_scan_result_t res;
    assert_null(kp_segment_open(dir, 7, 1, 4096, 2, &res));
}

/* Timestamps that do not increase (producer clocks) still give a usable time index. */
static void test_time_index_non_monotonic(void **state)
{
    kp_segment_t *seg = kp_segment_create(dir, 0, 1);
    static const int64_t ts[] = {5000, 3000, 9000, 8000, 12000, 1000};
    int64_t bases[6];
    kp_buf_t b;
    kp_buf_init(&b);
    for (int i = 0; i < 6; i++) {
        ut_batch_opts_t o = ut_batch_defaults(1, ts[i]);
        o.base_offset = seg->next_offset;
        size_t len = ut_batch_build(&b, &o);
        kp_batch_info_t info;
        kp_batch_validate(b.data, len, &info);
        bases[i] = info.base_offset;
        assert_int_equal(kp_segment_append(seg, b.data, len, &info, 1), 0);
    }
    assert_int_equal(seg->max_timestamp, 12000);
    assert_int_equal(seg->max_timestamp_offset, bases[4]);
    /* the first batch with max timestamp >= ts, in file order */
    assert_int_equal(offset_for_time(seg, 2000), bases[0]);
    assert_int_equal(offset_for_time(seg, 5000), bases[0]);
    assert_int_equal(offset_for_time(seg, 5001), bases[2]);
    assert_int_equal(offset_for_time(seg, 8500), bases[2]);
    assert_int_equal(offset_for_time(seg, 9001), bases[4]);
    assert_int_equal(offset_for_time(seg, 12001), -1);
    kp_buf_free(&b);
    kp_segment_put(seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_find_seal_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_keeps_max_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index_falls_back_to_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_truncates_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcount_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_index_non_monotonic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
