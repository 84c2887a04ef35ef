/*
 * test_txn.c — transactions in storage and the transaction log records:
 *
 *   - control batches (COMMIT/ABORT markers): built, parsed back, malformed ones refused;
 *   - the aborted-transaction index entry (.txnindex): round trip, bad files refused;
 *   - __transaction_state records (TransactionLogKey v0, TransactionLogValue v0/v1): round
 *     trip, the flexible v1 encoding read, malformed values refused;
 *   - a partition's log: an open transaction holds the last stable offset at its first offset
 *     and bounds read_committed reads; a commit moves the LSO to the HWM; an abort records
 *     the aborted range; a fenced (lower-epoch) marker is refused; everything is rebuilt on
 *     reopen, from the active segment's replay and from a sealed segment's .txnindex;
 *   - the cleaner: an aborted transaction's records are removed and do not shadow the
 *     committed record of the same key; nothing at or past the LSO is cleaned; a marker
 *     whose transaction has no record left gets a delete horizon (KIP-534: base timestamp,
 *     attribute 0x40, the record's own timestamp kept) and is removed by the first pass
 *     after it, an ABORT's index entry first; a marker whose transaction kept a record stays.
 */
#include "unit.h"

#include "core/logging.h"
#include "core/fs.h"
#include "storage/cleaner.h"
#include "storage/log.h"
#include "storage/log_scan.h"
#include "storage/records.h"
#include "storage/txn_index.h"
#include "txn/txn_record.h"

#define NOW 1700000000000LL

static char dir[PATH_MAX];

static int setup(void **state)
{
    ut_tmpdir_make(dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    ut_tmpdir_remove(dir);
    return 0;
}

static void test_control_batch(void **state)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_control_batch_build(&b, 42, 7, KP_CONTROL_COMMIT, 3, NOW);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, b.len, &info), KP_BATCH_OK);
    assert_int_equal(info.producer_id, 42);
    assert_int_equal(info.producer_epoch, 7);
    assert_int_equal(info.base_sequence, -1);
    assert_true(info.attributes & KP_BATCH_ATTR_CONTROL);
    assert_true(info.attributes & KP_BATCH_ATTR_TRANSACTIONAL);
    int16_t type;
    int32_t cepoch;
    assert_int_equal(kp_control_batch_parse(b.data, b.len, &type, &cepoch), 0);
    assert_int_equal(type, KP_CONTROL_COMMIT);
    assert_int_equal(cepoch, 3);
    /* every truncation is refused, never read past */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(kp_control_batch_parse(b.data, n, &type, &cepoch), -1);
    /* a data batch is not a marker */
    kp_buf_t d;
    kp_buf_init(&d);
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    size_t len = ut_batch_build(&d, &o);
    assert_int_equal(kp_control_batch_parse(d.data, len, &type, &cepoch), -1);
    kp_buf_free(&d);
    kp_buf_free(&b);
}

static void test_txnindex(void **state)
{
    kp_aborted_txn_t in[2] = {{5, 10, 20, 10}, {6, 11, 30, 11}};
    kp_buf_t b;
    kp_buf_init(&b);
    kp_txnindex_encode(&b, &in[0]);
    kp_txnindex_encode(&b, &in[1]);
    assert_int_equal(b.len, 2 * KP_TXNINDEX_ENTRY_BYTES);
    kp_aborted_txn_t *out;
    size_t n;
    assert_int_equal(kp_txnindex_parse(b.data, b.len, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, in, sizeof(in));
    free(out);
    assert_int_equal(kp_txnindex_parse(b.data, b.len - 1, &out, &n), -1);
    b.data[0] = 1; /* unknown version */
    assert_int_equal(kp_txnindex_parse(b.data, b.len, &out, &n), -1);
    assert_null(out);
    kp_buf_free(&b);
    /* out of order, and last < first */
    kp_buf_init(&b);
    kp_txnindex_encode(&b, &in[1]);
    kp_txnindex_encode(&b, &in[0]);
    assert_int_equal(kp_txnindex_parse(b.data, b.len, &out, &n), -1);
    kp_buf_reset(&b);
    kp_aborted_txn_t bad = {1, 9, 8, 0};
    kp_txnindex_encode(&b, &bad);
    assert_int_equal(kp_txnindex_parse(b.data, b.len, &out, &n), -1);
    kp_buf_free(&b);
}

static void test_txn_record(void **state)
{
    kp_buf_t k, v;
    kp_buf_init(&k);
    kp_buf_init(&v);
    kp_txn_record_key_encode(&k, KP_STR_LIT("app-1"));
    kp_str_t id;
    assert_int_equal(kp_txn_record_key_decode(k.data, k.len, &id), 0);
    assert_true(kp_str_eq_c(id, "app-1"));
    int32_t parts[2] = {0, 3};
    kp_txn_record_topic_t topics[1] = {{KP_STR_LIT("orders"), parts, 2}};
    kp_txn_record_t r = {1000, 4, 60000, KP_TXN_ONGOING, topics, 1, NOW, NOW - 5};
    kp_txn_record_encode(&v, &r);
    kp_arena_t arena;
    kp_arena_init(&arena, 1 << 20);
    kp_txn_record_t back;
    assert_int_equal(kp_txn_record_decode(v.data, v.len, &arena, &back), 0);
    assert_int_equal(back.producer_id, 1000);
    assert_int_equal(back.producer_epoch, 4);
    assert_int_equal(back.timeout_ms, 60000);
    assert_int_equal(back.status, KP_TXN_ONGOING);
    assert_int_equal(back.ntopics, 1);
    assert_true(kp_str_eq_c(back.topics[0].topic, "orders"));
    assert_int_equal(back.topics[0].npartitions, 2);
    assert_int_equal(back.topics[0].partitions[1], 3);
    assert_int_equal(back.last_update_ms, NOW);
    assert_int_equal(back.start_ms, NOW - 5);
    for (size_t n = 0; n < v.len; n++)
        assert_int_equal(kp_txn_record_decode(v.data, n, &arena, &back), -1);
    /* v1: the flexible encoding of the same fields */
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i16(&w, 1);
    kp_wr_i64(&w, 1000);
    kp_wr_i16(&w, 4);
    kp_wr_i32(&w, 60000);
    kp_wr_i8(&w, KP_TXN_PREPARE_COMMIT);
    kp_wr_uvarint(&w, 2); /* one topic */
    kp_wr_uvarint(&w, 7);
    kp_wr_raw(&w, "orders", 6);
    kp_wr_uvarint(&w, 2); /* one partition */
    kp_wr_i32(&w, 9);
    kp_wr_uvarint(&w, 0); /* tags */
    kp_wr_i64(&w, NOW);
    kp_wr_i64(&w, NOW - 1);
    kp_wr_uvarint(&w, 0);
    assert_int_equal(kp_txn_record_decode(w.buf.data, w.buf.len, &arena, &back), 0);
    assert_int_equal(back.status, KP_TXN_PREPARE_COMMIT);
    assert_int_equal(back.topics[0].partitions[0], 9);
    kp_wr_free(&w);
    /* names */
    assert_string_equal(kp_txn_status_name(KP_TXN_COMPLETE_ABORT), "CompleteAbort");
    assert_int_equal(kp_txn_status_parse(KP_STR_LIT("Ongoing")), KP_TXN_ONGOING);
    assert_int_equal(kp_txn_status_parse(KP_STR_LIT("Bogus")), -1);
    kp_arena_free(&arena);
    kp_buf_free(&k);
    kp_buf_free(&v);
}

/* ---- the log ---- */

static kp_append_result_t append_txn(kp_log_t *log, int64_t pid, int16_t epoch, int32_t seq, int n)
{
    ut_batch_opts_t o = ut_batch_defaults(n, NOW);
    o.producer_id = pid;
    o.producer_epoch = epoch;
    o.base_sequence = seq;
    o.attributes = KP_BATCH_ATTR_TRANSACTIONAL;
    o.value_len = 200;
    kp_buf_t b;
    kp_buf_init(&b);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append(log, b.data, len, &info, NOW, &res);
    kp_buf_free(&b);
    return res;
}

static kp_append_result_t append_plain(kp_log_t *log)
{
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    kp_buf_t b;
    kp_buf_init(&b);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append(log, b.data, len, &info, NOW, &res);
    kp_buf_free(&b);
    return res;
}

static kp_append_result_t append_marker(kp_log_t *log, int64_t pid, int16_t epoch, int16_t type)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_control_batch_build(&b, pid, epoch, type, 0, NOW);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, b.len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append(log, b.data, b.len, &info, NOW, &res);
    kp_buf_free(&b);
    return res;
}

static kp_log_t *open_log(int64_t segment_bytes)
{
    kp_log_config_t cfg;
    kp_log_config_defaults(&cfg);
    cfg.durable = 0;
    cfg.segment_bytes = segment_bytes;
    kp_log_t *log = kp_log_open(dir, &cfg, NOW);
    assert_non_null(log);
    return log;
}

/* The end of a read_committed read from offset 0 (the offset after its last batch). */
static int64_t committed_end(kp_log_t *log)
{
    kp_log_read_t rd;
    kp_log_read_isolated(log, 0, 1 << 20, 1, 1, &rd);
    assert_int_equal(rd.error, 0);
    int64_t end = 0;
    if (rd.len > 0) {
        uint8_t *buf = malloc((size_t)rd.len);
        assert_int_equal(kp_fs_pread_all(rd.seg->fd, buf, (size_t)rd.len, rd.pos), 0);
        for (int64_t p = 0; p + KP_BATCH_HEADER_BYTES <= rd.len;) {
            kp_batch_info_t b;
            kp_batch_parse_header(buf + p, &b);
            end = b.base_offset + b.last_offset_delta + 1;
            p += b.batch_length + KP_BATCH_LOG_OVERHEAD;
        }
        free(buf);
        kp_segment_put(rd.seg);
    }
    return end;
}

static void test_log_lso_and_aborts(void **state)
{
    kp_log_t *log = open_log(1 << 20);
    assert_int_equal(append_plain(log).status, KP_APPEND_OK);     /* 0 */
    assert_int_equal(append_txn(log, 7, 0, 0, 2).base_offset, 1); /* 1-2 open */
    assert_int_equal(append_plain(log).status, KP_APPEND_OK);     /* 3 */
    assert_int_equal(append_txn(log, 8, 0, 0, 1).base_offset, 4); /* 4 open */
    assert_int_equal(append_txn(log, 7, 0, 2, 1).base_offset, 5); /* 5 */
    assert_int_equal(kp_log_last_stable_offset(log), 1);
    assert_int_equal(committed_end(log), 1);
    /* a read_uncommitted read sees everything */
    kp_log_read_t rd;
    kp_log_read(log, 0, 1 << 20, 1, &rd);
    assert_int_equal(rd.last_stable_offset, 1);
    kp_segment_put(rd.seg);
    /* commit pid 7: the LSO moves to pid 8's first offset */
    assert_int_equal(append_marker(log, 7, 0, KP_CONTROL_COMMIT).base_offset, 6);
    assert_int_equal(kp_log_last_stable_offset(log), 4);
    assert_int_equal(committed_end(log), 4);
    /* a fenced marker (lower epoch) is refused */
    assert_int_equal(append_txn(log, 8, 1, 0, 1).status, KP_APPEND_OK); /* 7: epoch 1 */
    assert_int_equal(append_marker(log, 8, 0, KP_CONTROL_ABORT).status, KP_APPEND_INVALID_EPOCH);
    /* the abort with the current epoch: range 4..8 recorded */
    assert_int_equal(append_marker(log, 8, 1, KP_CONTROL_ABORT).base_offset, 8);
    assert_int_equal(kp_log_last_stable_offset(log), 9);
    kp_aborted_txn_t *a;
    assert_int_equal(kp_log_aborted_txns(log, 0, 9, &a), 1);
    assert_int_equal(a[0].producer_id, 8);
    assert_int_equal(a[0].first_offset, 4);
    assert_int_equal(a[0].last_offset, 8);
    free(a);
    assert_int_equal(kp_log_aborted_txns(log, 9, 100, &a), 0); /* ended before */
    assert_int_equal(kp_log_aborted_txns(log, 0, 4, &a), 0);   /* starts after */
    /* a new open transaction, then a restart: LSO and the abort come back by replay */
    assert_int_equal(append_txn(log, 9, 0, 0, 1).base_offset, 9);
    kp_log_close(log);
    log = open_log(1 << 20);
    assert_int_equal(kp_log_last_stable_offset(log), 9);
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 1);
    assert_int_equal(a[0].first_offset, 4);
    free(a);
    /* producer 7 continues its sequence after the commit */
    assert_int_equal(append_txn(log, 7, 0, 3, 1).status, KP_APPEND_OK);
    kp_log_close(log);
}

static void test_log_txnindex_survives_roll(void **state)
{
    /* small segments: the aborted range ends up in a sealed segment's .txnindex, and an open
     * transaction spans a roll (its first offset comes back from the producer snapshot) */
    kp_log_t *log = open_log(2048);
    assert_int_equal(append_txn(log, 1, 0, 0, 2).status, KP_APPEND_OK);
    assert_int_equal(append_marker(log, 1, 0, KP_CONTROL_ABORT).status, KP_APPEND_OK);
    int64_t open_first = append_txn(log, 2, 0, 0, 1).base_offset;
    for (int i = 0; i < 80; i++) assert_int_equal(append_plain(log).status, KP_APPEND_OK);
    assert_true(log->nsegs > 2);
    kp_log_close(log);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/00000000000000000000.txnindex", dir);
    assert_true(ut_file_size(p) == KP_TXNINDEX_ENTRY_BYTES);
    log = open_log(2048);
    kp_aborted_txn_t *a;
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 1);
    assert_int_equal(a[0].producer_id, 1);
    assert_int_equal(a[0].first_offset, 0);
    assert_int_equal(a[0].last_offset, 2);
    free(a);
    assert_int_equal(kp_log_last_stable_offset(log), open_first);
    assert_int_equal(committed_end(log), open_first);
    assert_int_equal(append_marker(log, 2, 0, KP_CONTROL_COMMIT).status, KP_APPEND_OK);
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(kp_log_last_stable_offset(log), h);
    kp_log_close(log);
}

static int collect_offsets(const uint8_t *batch, size_t len, void *arg)
{
    kp_batch_info_t b;
    kp_batch_parse_header(batch, &b);
    int64_t *offs = arg;
    offs[++offs[0]] = b.base_offset;
    return offs[0] >= 255;
}

static kp_append_result_t append_filler(kp_log_t *log)
{
    ut_batch_opts_t o = ut_batch_defaults(1, NOW);
    o.null_keys = 1;
    o.value_len = 400;
    kp_buf_t b;
    kp_buf_init(&b);
    size_t len = ut_batch_build(&b, &o);
    kp_batch_info_t info;
    assert_int_equal(kp_batch_validate(b.data, len, &info), KP_BATCH_OK);
    kp_append_result_t res;
    kp_log_append(log, b.data, len, &info, NOW, &res);
    kp_buf_free(&b);
    return res;
}

static void test_cleaner_removes_aborted(void **state)
{
    kp_log_t *log = open_log(2048);
    assert_int_equal(append_plain(log).base_offset, 0);           /* key-0 */
    assert_int_equal(append_txn(log, 5, 0, 0, 1).base_offset, 1); /* key-0 */
    assert_int_equal(append_marker(log, 5, 0, KP_CONTROL_ABORT).base_offset, 2);
    int64_t open_at = -1;
    for (int i = 0; i < 20; i++) assert_int_equal(append_filler(log).status, KP_APPEND_OK);
    open_at = append_txn(log, 6, 0, 0, 1).base_offset; /* open: the cleaner stops below */
    for (int i = 0; i < 20; i++) assert_int_equal(append_filler(log).status, KP_APPEND_OK);
    kp_cleaner_config_t cc = {1 << 20, 0, 64u << 20};
    kp_cleaner_t *c = kp_cleaner_new(&cc);
    kp_compaction_t p = {1000000000LL, 0, INT64_MAX, 0.0};
    kp_clean_stats_t st;
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW, &st), 1);
    assert_true(st.first_dirty_after <= open_at);
    int64_t offs[256] = {0};
    assert_int_equal(kp_log_scan(log, 0, collect_offsets, offs) >= 0, 1);
    assert_true(offs[0] > 3);
    assert_int_equal(offs[1], 0); /* the committed key-0 record stays */
    assert_int_equal(offs[2], 2); /* the aborted batch is gone, its marker stays */
    int seen_open = 0;
    for (int64_t i = 1; i <= offs[0]; i++) seen_open |= offs[i] == open_at;
    assert_true(seen_open);
    kp_cleaner_free(c);
    kp_log_close(log);
}

/* The batches of the log from offset 0: offsets, attributes and base timestamps. */
typedef struct batches {
    int n;
    int64_t offset[64], base_ts[64];
    int16_t attrs[64];
} batches_t;

static int collect_batches(const uint8_t *batch, size_t len, void *arg)
{
    batches_t *bs = arg;
    kp_batch_info_t b;
    assert_int_equal(kp_batch_validate_stored(batch, len, &b), KP_BATCH_OK);
    bs->offset[bs->n] = b.base_offset;
    bs->attrs[bs->n] = b.attributes;
    bs->base_ts[bs->n] = b.base_timestamp;
    return ++bs->n >= 64;
}

static int find_batch(const batches_t *bs, int64_t offset)
{
    for (int i = 0; i < bs->n; i++)
        if (bs->offset[i] == offset) return i;
    return -1;
}

static void test_cleaner_removes_markers(void **state)
{
    kp_log_t *log = open_log(2048);
    assert_int_equal(append_txn(log, 5, 0, 0, 1).base_offset, 0); /* key-0, aborted */
    assert_int_equal(append_marker(log, 5, 0, KP_CONTROL_ABORT).base_offset, 1);
    assert_int_equal(append_txn(log, 6, 0, 0, 1).base_offset, 2); /* key-0, replaced */
    assert_int_equal(append_marker(log, 6, 0, KP_CONTROL_COMMIT).base_offset, 3);
    assert_int_equal(append_txn(log, 6, 0, 1, 1).base_offset, 4); /* key-0, the latest */
    assert_int_equal(append_marker(log, 6, 0, KP_CONTROL_COMMIT).base_offset, 5);
    for (int i = 0; i < 20; i++) assert_int_equal(append_filler(log).status, KP_APPEND_OK);
    assert_true(log->nsegs > 2);
    kp_aborted_txn_t *a;
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 1);
    free(a);
    kp_cleaner_config_t cc = {1 << 20, 0, 64u << 20};
    kp_cleaner_t *c = kp_cleaner_new(&cc);
    kp_compaction_t p = {1000, 0, INT64_MAX, 0.0}; /* delete.retention.ms 1 s */
    kp_clean_stats_t st;

    /* pass 1: the data goes; markers 1 and 3 get their horizon, 5 (offset 4 stays) not */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW, &st), 1);
    assert_int_equal(st.markers_removed, 0);
    batches_t bs = {0};
    assert_true(kp_log_scan(log, 0, collect_batches, &bs) >= 0);
    assert_int_equal(find_batch(&bs, 0), -1);
    assert_int_equal(find_batch(&bs, 2), -1);
    int i1 = find_batch(&bs, 1), i3 = find_batch(&bs, 3), i5 = find_batch(&bs, 5);
    assert_true(i1 >= 0 && i3 >= 0 && i5 >= 0 && find_batch(&bs, 4) >= 0);
    assert_true(bs.attrs[i1] & KP_BATCH_ATTR_DELETE_HORIZON);
    assert_int_equal(bs.base_ts[i1], NOW + 1000);
    assert_true(bs.attrs[i3] & KP_BATCH_ATTR_DELETE_HORIZON);
    assert_int_equal(bs.base_ts[i3], NOW + 1000);
    assert_false(bs.attrs[i5] & KP_BATCH_ATTR_DELETE_HORIZON);
    assert_int_equal(bs.base_ts[i5], NOW);
    /* the ABORT's records are gone: its index entry too, in memory and on disk */
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 0);
    /* a marker with a horizon still parses, and its record keeps its timestamp */
    uint8_t buf[256];
    kp_log_read_t rd;
    kp_log_read(log, 1, sizeof(buf), 1, &rd);
    assert_true(rd.len > 0 && rd.len <= (int64_t)sizeof(buf));
    assert_int_equal(kp_fs_pread_all(rd.seg->fd, buf, (size_t)rd.len, rd.pos), 0);
    kp_segment_put(rd.seg);
    kp_batch_info_t mi;
    assert_int_equal(kp_batch_validate(buf, (size_t)kp_batch_total_size(buf, (size_t)rd.len), &mi),
                     KP_BATCH_OK);
    int16_t type;
    int32_t ce;
    assert_int_equal(
        kp_control_batch_parse(buf, (size_t)kp_batch_total_size(buf, sizeof(buf)), &type, &ce), 0);
    assert_int_equal(type, KP_CONTROL_ABORT);
    kp_records_iter_t it;
    kp_record_t rec;
    assert_int_equal(kp_records_begin(&it, buf, (size_t)kp_batch_total_size(buf, sizeof(buf))), 0);
    assert_int_equal(kp_records_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, NOW);
    assert_int_equal(mi.max_timestamp, NOW);

    /* before the horizon nothing is due; at it, both markers go and 5 stays */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 999, &st), 0);
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 1000, &st), 1);
    assert_int_equal(st.markers_removed, 2);
    memset(&bs, 0, sizeof(bs));
    assert_true(kp_log_scan(log, 0, collect_batches, &bs) >= 0);
    assert_int_equal(find_batch(&bs, 1), -1);
    assert_int_equal(find_batch(&bs, 3), -1);
    assert_true(find_batch(&bs, 4) >= 0 && find_batch(&bs, 5) >= 0);
    /* nothing more to do */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 5000, &st), 0);
    kp_cleaner_free(c);

    /* rebuilt on start: no open transaction, no aborted one, everything committed readable */
    kp_log_close(log);
    log = open_log(2048);
    int64_t s, h, l;
    kp_log_offsets(log, &s, &h, &l);
    assert_int_equal(kp_log_last_stable_offset(log), h);
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 0);
    assert_int_equal(append_txn(log, 6, 0, 2, 1).status, KP_APPEND_OK);
    kp_log_close(log);
}

/* An ABORT whose index entry is still there when the pass starts (a crash came between the
 * segment's swap and the index's rewrite) is not removed in that pass, past its horizon
 * or not: a read_committed client would otherwise skip the producer's later records. */
static void test_cleaner_keeps_indexed_abort(void **state)
{
    kp_log_t *log = open_log(2048);
    assert_int_equal(append_txn(log, 5, 0, 0, 1).base_offset, 0);
    assert_int_equal(append_marker(log, 5, 0, KP_CONTROL_ABORT).base_offset, 1);
    for (int i = 0; i < 20; i++) assert_int_equal(append_filler(log).status, KP_APPEND_OK);
    kp_cleaner_config_t cc = {1 << 20, 0, 64u << 20};
    kp_cleaner_t *c = kp_cleaner_new(&cc);
    kp_compaction_t p = {0, 0, INT64_MAX, 0.0}; /* delete.retention.ms 0 */
    kp_clean_stats_t st;
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW, &st), 1);
    assert_int_equal(st.markers_removed, 0); /* the entry was there at the start */
    kp_aborted_txn_t *a;
    assert_int_equal(kp_log_aborted_txns(log, 0, 100, &a), 0);
    /* the next pass (due: the horizon has passed) removes it */
    assert_int_equal(kp_cleaner_clean(c, log, &p, NOW + 1, &st), 1);
    assert_int_equal(st.markers_removed, 1);
    batches_t bs = {0};
    assert_true(kp_log_scan(log, 0, collect_batches, &bs) >= 0);
    assert_int_equal(find_batch(&bs, 1), -1);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/00000000000000000000.txnindex", dir);
    assert_true(access(path, F_OK) != 0);
    kp_cleaner_free(c);
    kp_log_close(log);
}

int main(void)
{
    kp_logging_set_level((kp_loglevel_t)(KP_LOG_ERROR + 1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_batch),
        cmocka_unit_test(test_txnindex),
        cmocka_unit_test(test_txn_record),
        cmocka_unit_test_setup_teardown(test_log_lso_and_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_txnindex_survives_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaner_removes_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaner_removes_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaner_keeps_indexed_abort, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
