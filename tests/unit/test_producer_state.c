/*
 * test_producer_state.c — storage/producer_state: Kafka's idempotent-producer rules (a retry
 * of any of the last five batches is a duplicate answered with its original offset, gaps and
 * stale sequences are out of order, a new epoch starts at 0, a lower epoch is fenced,
 * sequences wrap at INT32_MAX), growth and expiry of the map, and snapshots (round trip;
 * corrupt, truncated or foreign files rejected with the state left empty).
 */
#include "unit.h"

#include "storage/producer_state.h"

static kp_batch_info_t mk(int64_t pid, int16_t epoch, int32_t seq, int32_t n, int64_t offset,
                          int64_t ts)
{
    kp_batch_info_t b;
    memset(&b, 0, sizeof(b));
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    b.last_offset_delta = n - 1;
    b.records_count = n;
    b.base_offset = offset;
    b.base_timestamp = ts;
    b.max_timestamp = ts;
    return b;
}

/* check, and on OK record the batch (as the log does on a successful append) */
static kp_seq_result_t append(kp_pstate_t *ps, kp_batch_info_t b, int64_t *dup)
{
    *dup = -1;
    kp_seq_result_t r = kp_pstate_check(ps, &b, dup);
    if (r == KP_SEQ_OK) kp_pstate_update(ps, &b, b.max_timestamp);
    return r;
}

static void test_seq_add_wraps(void **state)
{
    assert_int_equal(kp_seq_add(0, 0), 0);
    assert_int_equal(kp_seq_add(5, 3), 8);
    assert_int_equal(kp_seq_add(INT32_MAX - 1, 1), INT32_MAX);
    assert_int_equal(kp_seq_add(INT32_MAX, 1), 0);
    assert_int_equal(kp_seq_add(INT32_MAX, 2), 1);
    assert_int_equal(kp_seq_add(INT32_MAX - 2, 5), 2);
    assert_int_equal(kp_seq_add(INT32_MAX, INT32_MAX), INT32_MAX - 1);
}

static void test_unknown_producer_accepted(void **state)
{
    kp_pstate_t ps;
    kp_pstate_init(&ps);
    int64_t dup;
    /* nothing known: any sequence (KIP-360, state may have expired) */
    assert_int_equal(append(&ps, mk(7, 0, 1234, 3, 0, 1000), &dup), KP_SEQ_OK);
    assert_int_equal(ps.count, 1);
    /* then it must continue */
    assert_int_equal(append(&ps, mk(7, 0, 1237, 1, 3, 1000), &dup), KP_SEQ_OK);
    assert_int_equal(append(&ps, mk(7, 0, 1239, 1, 4, 1000), &dup), KP_SEQ_OUT_OF_ORDER);
    /* another producer is independent */
    assert_int_equal(append(&ps, mk(8, 2, 50, 1, 5, 1000), &dup), KP_SEQ_OK);
    assert_int_equal(ps.count, 2);
    kp_pstate_free(&ps);
}

static void test_duplicates_of_last_five(void **state)
{
    kp_pstate_t ps;
    kp_pstate_init(&ps);
    int64_t dup, offset = 100;
    int32_t seq = 0;
    /* 7 batches of 2..8 records */
    int32_t first_seq[7];
    int64_t first_off[7];
    for (int i = 0; i < 7; i++) {
        int32_t n = i + 2;
        first_seq[i] = seq;
        first_off[i] = offset;
        assert_int_equal(append(&ps, mk(1, 0, seq, n, offset, 1000), &dup), KP_SEQ_OK);
        seq += n;
        offset += n + 10; /* other producers' batches in between */
    }
    /* the last five are duplicates, answered with their original offsets */
    for (int i = 2; i < 7; i++) {
        kp_batch_info_t b = mk(1, 0, first_seq[i], i + 2, -1, 1000);
        assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_DUPLICATE);
        assert_int_equal(dup, first_off[i]);
    }
    /* older than five: no longer known, and behind the sequence: out of order */
    for (int i = 0; i < 2; i++) {
        kp_batch_info_t b = mk(1, 0, first_seq[i], i + 2, -1, 1000);
        assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OUT_OF_ORDER);
    }
    /* same first sequence but another length is not a duplicate */
    kp_batch_info_t b = mk(1, 0, first_seq[6], 3, -1, 1000);
    assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OUT_OF_ORDER);
    /* a gap */
    b = mk(1, 0, seq + 1, 1, -1, 1000);
    assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OUT_OF_ORDER);
    /* the exact next sequence */
    b = mk(1, 0, seq, 1, -1, 1000);
    assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OK);
    kp_pstate_free(&ps);
}

static void test_epochs(void **state)
{
    kp_pstate_t ps;
    kp_pstate_init(&ps);
    int64_t dup;
    assert_int_equal(append(&ps, mk(5, 3, 0, 4, 0, 1000), &dup), KP_SEQ_OK);
    assert_int_equal(append(&ps, mk(5, 3, 4, 4, 4, 1000), &dup), KP_SEQ_OK);
    /* a new epoch must start at 0 */
    assert_int_equal(append(&ps, mk(5, 4, 8, 1, 8, 1000), &dup), KP_SEQ_OUT_OF_ORDER);
    assert_int_equal(append(&ps, mk(5, 4, 0, 2, 8, 1000), &dup), KP_SEQ_OK);
    /* the old epoch is fenced, even for what would have been a duplicate or the next seq */
    assert_int_equal(append(&ps, mk(5, 3, 4, 4, 4, 1000), &dup), KP_SEQ_INVALID_EPOCH);
    assert_int_equal(append(&ps, mk(5, 3, 8, 1, 4, 1000), &dup), KP_SEQ_INVALID_EPOCH);
    assert_int_equal(append(&ps, mk(5, 0, 0, 1, 4, 1000), &dup), KP_SEQ_INVALID_EPOCH);
    /* the new epoch's batches are the duplicates now */
    assert_int_equal(append(&ps, mk(5, 4, 0, 2, -1, 1000), &dup), KP_SEQ_DUPLICATE);
    assert_int_equal(dup, 8);
    assert_int_equal(append(&ps, mk(5, 4, 2, 1, 10, 1000), &dup), KP_SEQ_OK);
    /* a jump of several epochs is fine from 0 */
    assert_int_equal(append(&ps, mk(5, 100, 0, 1, 11, 1000), &dup), KP_SEQ_OK);
    kp_pstate_free(&ps);
}

/* Sequences wrap from INT32_MAX to 0, inside a batch and between batches. */
static void test_sequence_wrap(void **state)
{
    kp_pstate_t ps;
    kp_pstate_init(&ps);
    int64_t dup;
    assert_int_equal(append(&ps, mk(9, 1, INT32_MAX - 4, 3, 0, 1000), &dup), KP_SEQ_OK);
    /* MAX-1, MAX, 0 */
    assert_int_equal(append(&ps, mk(9, 1, INT32_MAX - 1, 3, 3, 1000), &dup), KP_SEQ_OK);
    /* next is 1 */
    assert_int_equal(append(&ps, mk(9, 1, 0, 1, 6, 1000), &dup), KP_SEQ_OUT_OF_ORDER);
    assert_int_equal(append(&ps, mk(9, 1, 1, 2, 6, 1000), &dup), KP_SEQ_OK);
    /* the wrapping batch is recognised as a duplicate */
    assert_int_equal(append(&ps, mk(9, 1, INT32_MAX - 1, 3, -1, 1000), &dup), KP_SEQ_DUPLICATE);
    assert_int_equal(dup, 3);
    /* a batch ending exactly at INT32_MAX: next is 0 */
    kp_pstate_clear(&ps);
    assert_int_equal(append(&ps, mk(9, 1, INT32_MAX - 1, 2, 0, 1000), &dup), KP_SEQ_OK);
    assert_int_equal(append(&ps, mk(9, 1, 0, 1, 2, 1000), &dup), KP_SEQ_OK);
    kp_pstate_free(&ps);
}

static void test_many_producers_and_expiry(void **state)
{
    kp_pstate_t ps;
    kp_pstate_init(&ps);
    int64_t dup;
    for (int64_t pid = 0; pid < 3000; pid++)
        assert_int_equal(append(&ps, mk(pid * 7919, 0, 0, 1, pid, 1000 + pid), &dup), KP_SEQ_OK);
    assert_int_equal(ps.count, 3000);
    assert_true(ps.count * 4 <= ps.cap * 3);
    for (int64_t pid = 0; pid < 3000; pid++) {
        kp_batch_info_t b = mk(pid * 7919, 0, 0, 1, -1, 0);
        assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_DUPLICATE);
        assert_int_equal(dup, pid);
    }
    /* producers idle since before 1000 + 2000 go; the rest keep their state */
    kp_pstate_expire(&ps, 3000);
    assert_int_equal(ps.count, 1000);
    for (int64_t pid = 0; pid < 3000; pid++) {
        kp_batch_info_t b = mk(pid * 7919, 0, 1, 1, -1, 0);
        /* expired ones are unknown again (any sequence is OK); kept ones expect 1 */
        assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OK);
        b = mk(pid * 7919, 0, 5, 1, -1, 0);
        assert_int_equal(kp_pstate_check(&ps, &b, &dup),
                         pid < 2000 ? KP_SEQ_OK : KP_SEQ_OUT_OF_ORDER);
    }
    /* a batch without a timestamp takes now */
    kp_batch_info_t b = mk(424242, 0, 0, 1, 0, -1);
    kp_pstate_update(&ps, &b, 99999);
    kp_pstate_expire(&ps, 50000);
    assert_int_equal(
        kp_pstate_check(&ps, &(kp_batch_info_t){.producer_id = 424242, .base_sequence = 5}, &dup),
        KP_SEQ_OUT_OF_ORDER);
    kp_pstate_clear(&ps);
    assert_int_equal(ps.count, 0);
    assert_int_equal(kp_pstate_check(&ps, &b, &dup), KP_SEQ_OK);
    kp_pstate_free(&ps);
}

/* Fills ps with producers holding 1..5 batches each. */
static void fill(kp_pstate_t *ps, int nproducers)
{
    int64_t offset = 0;
    for (int p = 0; p < nproducers; p++) {
        int32_t seq = p * 3;
        for (int k = 0; k <= p % 7; k++) {
            kp_batch_info_t b = mk(1000 + p, (int16_t)(p % 3), seq, 1 + k, offset, 5000 + p);
            kp_pstate_update(ps, &b, 0);
            seq += 1 + k;
            offset += 1 + k;
        }
    }
}

static const kp_pstate_entry_t *entry(const kp_pstate_t *ps, int64_t pid)
{
    for (size_t i = 0; i < ps->cap; i++)
        if (ps->slots[i].producer_id == pid) return &ps->slots[i];
    return NULL;
}

static void test_snapshot_roundtrip(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/00000000000000000042.snapshot", dir);
    kp_pstate_t a, b;
    kp_pstate_init(&a);
    kp_pstate_init(&b);
    fill(&a, 200);
    assert_int_equal(kp_pstate_write_snapshot(&a, path), 0);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), 0);
    assert_int_equal(b.count, a.count);
    for (int p = 0; p < 200; p++) {
        const kp_pstate_entry_t *x = entry(&a, 1000 + p), *y = entry(&b, 1000 + p);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(y->epoch, x->epoch);
        assert_int_equal(y->count, x->count);
        assert_int_equal(y->count, p % 7 < 5 ? p % 7 + 1 : 5);
        assert_int_equal(y->last_timestamp_ms, x->last_timestamp_ms);
        assert_memory_equal(y->batches, x->batches, x->count * sizeof(kp_pstate_batch_t));
    }
    /* duplicate detection works from the loaded state */
    int64_t dup;
    const kp_pstate_entry_t *x = entry(&a, 1000 + 6);
    kp_batch_info_t d = mk(1000 + 6, x->epoch, x->batches[2].first_seq,
                           x->batches[2].last_seq - x->batches[2].first_seq + 1, -1, 0);
    assert_int_equal(kp_pstate_check(&b, &d, &dup), KP_SEQ_DUPLICATE);
    assert_int_equal(dup, x->batches[2].first_offset);
    /* an empty state round trips too */
    kp_pstate_t e;
    kp_pstate_init(&e);
    assert_int_equal(kp_pstate_write_snapshot(&e, path), 0);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), 0);
    assert_int_equal(b.count, 0);
    /* no temp file left behind */
    char tmp[PATH_MAX + 40];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
    kp_pstate_free(&a);
    kp_pstate_free(&b);
    kp_pstate_free(&e);
    ut_tmpdir_remove(dir);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_snapshot_corrupt(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    ut_tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/s.snapshot", dir);
    kp_pstate_t a, b;
    kp_pstate_init(&a);
    kp_pstate_init(&b);
    fill(&a, 10);
    assert_int_equal(kp_pstate_write_snapshot(&a, path), 0);
    uint8_t *good;
    size_t len;
    assert_int_equal(kp_fs_read_all(path, 1 << 20, &good, &len), 0);
    uint8_t *bad = malloc(len + 64);

    /* every single flipped byte is rejected, leaving the state empty */
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(bad, good, len);
        bad[pos] ^= 0x40;
        write_file(path, bad, len);
        fill(&b, 3);
        assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
        assert_int_equal(b.count, 0);
    }
    /* every truncation */
    for (size_t cut = 0; cut < len; cut += 7) {
        write_file(path, good, cut);
        assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
        assert_int_equal(b.count, 0);
    }
    /* a valid checksum over inconsistent content: count larger than the entries */
    memcpy(bad, good, len);
    ut_st32(bad + 8, ut_ld32(bad + 8) + 1);
    ut_st32(bad + len - 4, kp_crc32c(0, bad, len - 4));
    write_file(path, bad, len);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
    /* ... count smaller than the entries (trailing bytes) */
    ut_st32(bad + 8, ut_ld32(good + 8) - 1);
    ut_st32(bad + len - 4, kp_crc32c(0, bad, len - 4));
    write_file(path, bad, len);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
    /* ... an entry claiming more than 5 batches */
    memcpy(bad, good, len);
    bad[12 + 10] = 6;
    ut_st32(bad + len - 4, kp_crc32c(0, bad, len - 4));
    write_file(path, bad, len);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
    /* another version */
    memcpy(bad, good, len);
    ut_st32(bad + 4, 3); /* v1 and v2 are read; v3 is not ours */
    ut_st32(bad + len - 4, kp_crc32c(0, bad, len - 4));
    write_file(path, bad, len);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
    assert_int_equal(b.count, 0);
    /* missing file */
    snprintf(path, sizeof(path), "%s/missing.snapshot", dir);
    assert_int_equal(kp_pstate_read_snapshot(&b, path), -1);
    free(bad);
    free(good);
    kp_pstate_free(&a);
    kp_pstate_free(&b);
    ut_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_add_wraps),
        cmocka_unit_test(test_unknown_producer_accepted),
        cmocka_unit_test(test_duplicates_of_last_five),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_sequence_wrap),
        cmocka_unit_test(test_many_producers_and_expiry),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_snapshot_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
