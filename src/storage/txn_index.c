/*
 * txn_index.c — control records and the aborted-transaction index (txn_index.h).
 */
#include "storage/txn_index.h"

#include "storage/batch.h"
#include "storage/records.h"

#include <stdlib.h>
#include <string.h>

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

int kp_control_batch_parse(const uint8_t *batch, size_t len, int16_t *type,
                           int32_t *coordinator_epoch)
{
    kp_records_iter_t it;
    if (kp_records_begin(&it, batch, len) < 0) return -1;
    if (!(it.info.attributes & KP_BATCH_ATTR_CONTROL) || it.info.magic != 2) return -1;
    kp_record_t rec;
    if (kp_records_next(&it, &rec) != 1 || rec.keylen < 4) return -1;
    const uint8_t *k = rec.key;
    int16_t version = (int16_t)((k[0] << 8) | k[1]);
    int16_t t = (int16_t)((k[2] << 8) | k[3]);
    if (version < 0 || (t != KP_CONTROL_ABORT && t != KP_CONTROL_COMMIT)) return -1;
    *type = t;
    *coordinator_epoch = -1;
    if (rec.valuelen >= 6) {
        const uint8_t *v = rec.value;
        *coordinator_epoch = (int32_t)(((uint32_t)v[2] << 24) | ((uint32_t)v[3] << 16) |
                                       ((uint32_t)v[4] << 8) | v[5]);
    }
    return 0;
}

void kp_control_batch_build(kp_buf_t *out, int64_t producer_id, int16_t producer_epoch,
                            int16_t type, int32_t coordinator_epoch, int64_t timestamp_ms)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, timestamp_ms);
    kp_buf_t key, value;
    kp_buf_init(&key);
    kp_buf_init(&value);
    kp_buf_put_i16(&key, 0);
    kp_buf_put_i16(&key, type);
    kp_buf_put_i16(&value, 0);
    kp_buf_put_i32(&value, coordinator_epoch);
    kp_batch_builder_add(&bb, key.data, (int32_t)key.len, value.data, (int32_t)value.len,
                         timestamp_ms);
    kp_batch_builder_finish(&bb);
    kp_batch_set_producer(bb.buf.data, bb.buf.len,
                          KP_BATCH_ATTR_TRANSACTIONAL | KP_BATCH_ATTR_CONTROL, producer_id,
                          producer_epoch, -1);
    kp_buf_append(out, bb.buf.data, bb.buf.len);
    kp_buf_free(&key);
    kp_buf_free(&value);
    kp_batch_builder_free(&bb);
}

int kp_control_batch_set_delete_horizon(kp_buf_t *out, const uint8_t *batch, size_t len,
                                        int64_t horizon_ms)
{
    kp_records_iter_t it;
    if (kp_records_begin(&it, batch, len) < 0) return -1;
    const kp_batch_info_t *info = &it.info;
    if (!(info->attributes & KP_BATCH_ATTR_CONTROL) || info->magic != 2 ||
        (info->attributes & KP_BATCH_ATTR_COMPRESSION_MASK) || info->records_count != 1)
        return -1;
    kp_record_t rec;
    if (kp_records_next(&it, &rec) != 1 || rec.nheaders != 0 || rec.offset != info->base_offset)
        return -1;
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, horizon_ms);
    kp_batch_builder_add(&bb, rec.key, rec.keylen, rec.value, rec.valuelen, rec.timestamp);
    kp_batch_builder_finish(&bb);
    uint8_t *p = bb.buf.data;
    kp_batch_set_base_offset(p, info->base_offset);
    kp_batch_set_leader_epoch(p, info->leader_epoch);
    /* the original maxTimestamp (the builder's would be the horizon) and lastOffsetDelta;
     * kp_batch_set_producer below recomputes the CRC over them */
    for (int i = 0; i < 8; i++)
        p[35 + i] = (uint8_t)((uint64_t)info->max_timestamp >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        p[23 + i] = (uint8_t)((uint32_t)info->last_offset_delta >> (24 - 8 * i));
    kp_batch_set_producer(p, bb.buf.len, (int16_t)(info->attributes | KP_BATCH_ATTR_DELETE_HORIZON),
                          info->producer_id, info->producer_epoch, info->base_sequence);
    kp_buf_append(out, p, bb.buf.len);
    kp_batch_builder_free(&bb);
    return 0;
}

void kp_txnindex_encode(kp_buf_t *out, const kp_aborted_txn_t *a)
{
    kp_buf_put_i16(out, 0);
    kp_buf_put_i64(out, a->producer_id);
    kp_buf_put_i64(out, a->first_offset);
    kp_buf_put_i64(out, a->last_offset);
    kp_buf_put_i64(out, a->last_stable_offset);
}

int kp_txnindex_parse(const uint8_t *data, size_t len, kp_aborted_txn_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (len % KP_TXNINDEX_ENTRY_BYTES) return -1;
    size_t count = len / KP_TXNINDEX_ENTRY_BYTES;
    if (!count) return 0;
    kp_aborted_txn_t *a = kp_xmalloc(count * sizeof(*a));
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = data + i * KP_TXNINDEX_ENTRY_BYTES;
        if (p[0] != 0 || p[1] != 0) goto bad;
        a[i].producer_id = (int64_t)ld64(p + 2);
        a[i].first_offset = (int64_t)ld64(p + 10);
        a[i].last_offset = (int64_t)ld64(p + 18);
        a[i].last_stable_offset = (int64_t)ld64(p + 26);
        if (a[i].producer_id < 0 || a[i].first_offset < 0 || a[i].last_offset < a[i].first_offset)
            goto bad;
        if (i > 0 && a[i].last_offset <= a[i - 1].last_offset) goto bad;
    }
    *out = a;
    *n = count;
    return 0;
bad:
    free(a);
    return -1;
}

void kp_aborted_list_free(kp_aborted_list_t *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void kp_aborted_list_add(kp_aborted_list_t *l, const kp_aborted_txn_t *a)
{
    size_t i = l->n;
    while (i > 0 && l->items[i - 1].last_offset > a->last_offset) i--;
    if (i > 0 && l->items[i - 1].last_offset == a->last_offset) return; /* known */
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = kp_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    memmove(&l->items[i + 1], &l->items[i], (l->n - i) * sizeof(*l->items));
    l->items[i] = *a;
    l->n++;
}

void kp_aborted_list_trim(kp_aborted_list_t *l, int64_t below, int64_t end)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].last_offset >= below && l->items[i].last_offset < end)
            l->items[k++] = l->items[i];
    l->n = k;
}
