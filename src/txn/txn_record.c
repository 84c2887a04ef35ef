/*
 * txn_record.c — TransactionLogKey/Value encoding (txn_record.h).
 */
#include "txn/txn_record.h"

#include <string.h>

static const char *const status_names[] = {
    "Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
    "CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence",
};

const char *kp_txn_status_name(int status)
{
    return status >= 0 && status <= KP_TXN_PREPARE_EPOCH_FENCE ? status_names[status] : NULL;
}

int kp_txn_status_parse(kp_str_t name)
{
    for (int i = 0; i <= KP_TXN_PREPARE_EPOCH_FENCE; i++)
        if (kp_str_eq_c(name, status_names[i])) return i;
    return -1;
}

static void put_string(kp_buf_t *b, kp_str_t s)
{
    kp_buf_put_i16(b, (int16_t)s.len);
    kp_buf_append(b, s.ptr, (size_t)s.len);
}

void kp_txn_record_key_encode(kp_buf_t *b, kp_str_t transactional_id)
{
    kp_buf_put_i16(b, 0);
    put_string(b, transactional_id);
}

int kp_txn_record_key_decode(const uint8_t *p, size_t len, kp_str_t *id)
{
    kp_rd_t r;
    kp_rd_init(&r, p, len);
    int16_t v = kp_rd_i16(&r);
    *id = kp_rd_string(&r, 0, 0);
    return r.err || v != 0 || kp_rd_left(&r) != 0 ? -1 : 0;
}

void kp_txn_record_encode(kp_buf_t *b, const kp_txn_record_t *r)
{
    kp_buf_put_i16(b, 0);
    kp_buf_put_i64(b, r->producer_id);
    kp_buf_put_i16(b, r->producer_epoch);
    kp_buf_put_i32(b, r->timeout_ms);
    kp_buf_append(b, &r->status, 1);
    kp_buf_put_i32(b, r->ntopics);
    for (int32_t i = 0; i < r->ntopics; i++) {
        put_string(b, r->topics[i].topic);
        kp_buf_put_i32(b, r->topics[i].npartitions);
        for (int32_t j = 0; j < r->topics[i].npartitions; j++)
            kp_buf_put_i32(b, r->topics[i].partitions[j]);
    }
    kp_buf_put_i64(b, r->last_update_ms);
    kp_buf_put_i64(b, r->start_ms);
}

int kp_txn_record_decode(const uint8_t *p, size_t len, kp_arena_t *arena, kp_txn_record_t *r)
{
    memset(r, 0, sizeof(*r));
    kp_rd_t rd;
    kp_rd_init(&rd, p, len);
    int16_t v = kp_rd_i16(&rd);
    if (rd.err || v < 0 || v > 1) return -1;
    int flex = v >= 1;
    r->producer_id = kp_rd_i64(&rd);
    r->producer_epoch = kp_rd_i16(&rd);
    r->timeout_ms = kp_rd_i32(&rd);
    r->status = kp_rd_i8(&rd);
    r->ntopics = kp_rd_array_len(&rd, flex, 1, flex ? 3 : 6);
    if (rd.err) return -1;
    if (r->ntopics > 0) {
        r->topics = kp_arena_calloc(arena, (size_t)r->ntopics, sizeof(*r->topics));
        if (!r->topics) return -1;
    }
    for (int32_t i = 0; i < r->ntopics && !rd.err; i++) {
        kp_txn_record_topic_t *t = &r->topics[i];
        t->topic = kp_rd_string(&rd, flex, 0);
        t->npartitions = kp_rd_array_len(&rd, flex, 0, 4);
        if (rd.err) return -1;
        if (t->npartitions > 0) {
            t->partitions = kp_arena_calloc(arena, (size_t)t->npartitions, sizeof(int32_t));
            if (!t->partitions) return -1;
        }
        for (int32_t j = 0; j < t->npartitions; j++) t->partitions[j] = kp_rd_i32(&rd);
        if (flex) kp_rd_skip_tags(&rd);
    }
    r->last_update_ms = kp_rd_i64(&rd);
    r->start_ms = kp_rd_i64(&rd);
    if (flex) kp_rd_skip_tags(&rd);
    if (rd.err || r->producer_id < -1 || r->status < 0 || r->status > KP_TXN_PREPARE_EPOCH_FENCE)
        return -1;
    return 0;
}
