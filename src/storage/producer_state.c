/*
 * producer_state.c — an open-addressing map from producer id to its recent batches, plus a
 * snapshot format:  "KPPS" u32 version | u32 count | entries | u32 crc32c(all before).
 * Version 2 adds each producer's open transaction's first offset (i64, -1 none) after its
 * last timestamp; version 1 files (written before transactions) still load.
 */
#include "storage/producer_state.h"

#include "core/buf.h"
#include "core/crc32c.h"
#include "core/fs.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_VERSION   2
#define SNAPSHOT_MAX_BYTES (256u * 1024 * 1024)

void kp_pstate_init(kp_pstate_t *ps)
{
    ps->slots = NULL;
    ps->cap = ps->count = 0;
}

void kp_pstate_free(kp_pstate_t *ps)
{
    free(ps->slots);
    kp_pstate_init(ps);
}

void kp_pstate_clear(kp_pstate_t *ps)
{
    for (size_t i = 0; i < ps->cap; i++) ps->slots[i].producer_id = -1;
    ps->count = 0;
}

int32_t kp_seq_add(int32_t seq, int32_t delta)
{
    /* sequences wrap from INT32_MAX to 0, as Kafka's DefaultRecordBatch.incrementSequence */
    if (seq > INT32_MAX - delta) return delta - (INT32_MAX - seq) - 1;
    return seq + delta;
}

static size_t slot_of(const kp_pstate_t *ps, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (ps->cap - 1);
}

static kp_pstate_entry_t *find(const kp_pstate_t *ps, int64_t pid)
{
    if (!ps->cap) return NULL;
    for (size_t i = slot_of(ps, pid);; i = (i + 1) & (ps->cap - 1)) {
        kp_pstate_entry_t *e = &ps->slots[i];
        if (e->producer_id == pid) return e;
        if (e->producer_id == -1) return NULL;
    }
}

static void grow(kp_pstate_t *ps)
{
    size_t old_cap = ps->cap;
    kp_pstate_entry_t *old = ps->slots;
    ps->cap = old_cap ? old_cap * 2 : 16;
    ps->slots = kp_xmalloc(ps->cap * sizeof(*ps->slots));
    for (size_t i = 0; i < ps->cap; i++) ps->slots[i].producer_id = -1;
    ps->count = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].producer_id < 0) continue;
        size_t j = slot_of(ps, old[i].producer_id);
        while (ps->slots[j].producer_id != -1) j = (j + 1) & (ps->cap - 1);
        ps->slots[j] = old[i];
        ps->count++;
    }
    free(old);
}

static kp_pstate_entry_t *insert(kp_pstate_t *ps, int64_t pid)
{
    if ((ps->count + 1) * 4 > ps->cap * 3) grow(ps);
    size_t i = slot_of(ps, pid);
    while (ps->slots[i].producer_id != -1) i = (i + 1) & (ps->cap - 1);
    kp_pstate_entry_t *e = &ps->slots[i];
    memset(e, 0, sizeof(*e));
    e->producer_id = pid;
    e->epoch = -1;
    e->txn_first_offset = -1;
    ps->count++;
    return e;
}

kp_seq_result_t kp_pstate_check(const kp_pstate_t *ps, const kp_batch_info_t *b,
                                int64_t *dup_offset)
{
    const kp_pstate_entry_t *e = find(ps, b->producer_id);
    if (!e) return KP_SEQ_OK;
    if ((b->attributes & KP_BATCH_ATTR_CONTROL) || b->base_sequence < 0)
        return b->producer_epoch < e->epoch ? KP_SEQ_INVALID_EPOCH : KP_SEQ_OK;
    int32_t first = b->base_sequence;
    int32_t last = kp_seq_add(first, b->last_offset_delta);
    if (b->producer_epoch == e->epoch) {
        for (int i = 0; i < e->count; i++) {
            if (e->batches[i].first_seq == first && e->batches[i].last_seq == last) {
                *dup_offset = e->batches[i].first_offset;
                return KP_SEQ_DUPLICATE;
            }
        }
    }
    if (b->producer_epoch < e->epoch) return KP_SEQ_INVALID_EPOCH;
    if (b->producer_epoch > e->epoch) return first == 0 ? KP_SEQ_OK : KP_SEQ_OUT_OF_ORDER;
    if (e->count == 0) return first == 0 ? KP_SEQ_OK : KP_SEQ_OUT_OF_ORDER;
    int32_t expected = kp_seq_add(e->batches[e->count - 1].last_seq, 1);
    return first == expected ? KP_SEQ_OK : KP_SEQ_OUT_OF_ORDER;
}

void kp_pstate_update(kp_pstate_t *ps, const kp_batch_info_t *b, int64_t now_ms)
{
    kp_pstate_entry_t *e = find(ps, b->producer_id);
    if (!e) e = insert(ps, b->producer_id);
    if (b->producer_epoch != e->epoch) {
        e->epoch = b->producer_epoch;
        e->count = 0;
    }
    if (b->attributes & KP_BATCH_ATTR_CONTROL) {
        e->txn_first_offset = -1;
        e->last_timestamp_ms = b->max_timestamp > 0 ? b->max_timestamp : now_ms;
        return;
    }
    if ((b->attributes & KP_BATCH_ATTR_TRANSACTIONAL) && e->txn_first_offset < 0)
        e->txn_first_offset = b->base_offset;
    if (b->base_sequence < 0) { /* a coordinator's write (transactional offsets): no sequence */
        e->last_timestamp_ms = b->max_timestamp > 0 ? b->max_timestamp : now_ms;
        return;
    }
    if (e->count == KP_PRODUCER_BATCHES_MAX) {
        memmove(&e->batches[0], &e->batches[1],
                (KP_PRODUCER_BATCHES_MAX - 1) * sizeof(kp_pstate_batch_t));
        e->count--;
    }
    kp_pstate_batch_t *nb = &e->batches[e->count++];
    nb->first_seq = b->base_sequence;
    nb->last_seq = kp_seq_add(b->base_sequence, b->last_offset_delta);
    nb->first_offset = b->base_offset;
    nb->last_offset = b->base_offset + b->last_offset_delta;
    e->last_timestamp_ms = b->max_timestamp > 0 ? b->max_timestamp : now_ms;
}

const kp_pstate_entry_t *kp_pstate_find(const kp_pstate_t *ps, int64_t producer_id)
{
    return find(ps, producer_id);
}

int64_t kp_pstate_first_unstable(const kp_pstate_t *ps)
{
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < ps->cap; i++) {
        const kp_pstate_entry_t *e = &ps->slots[i];
        if (e->producer_id >= 0 && e->txn_first_offset >= 0 && e->txn_first_offset < min)
            min = e->txn_first_offset;
    }
    return min;
}

void kp_pstate_expire(kp_pstate_t *ps, int64_t cutoff_ms)
{
    int any = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        if (ps->slots[i].producer_id >= 0 && ps->slots[i].txn_first_offset < 0 &&
            ps->slots[i].last_timestamp_ms < cutoff_ms) {
            ps->slots[i].producer_id = -2; /* tombstone, rebuilt below */
            any = 1;
        }
    }
    if (!any) return;
    /* rehash without tombstones */
    kp_pstate_entry_t *old = ps->slots;
    size_t old_cap = ps->cap;
    ps->slots = kp_xmalloc(old_cap * sizeof(*ps->slots));
    for (size_t i = 0; i < old_cap; i++) ps->slots[i].producer_id = -1;
    ps->count = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].producer_id < 0) continue;
        size_t j = slot_of(ps, old[i].producer_id);
        while (ps->slots[j].producer_id != -1) j = (j + 1) & (ps->cap - 1);
        ps->slots[j] = old[i];
        ps->count++;
    }
    free(old);
}

static void put32(kp_buf_t *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kp_buf_append(b, t, 4);
}
static void put64(kp_buf_t *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}
static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get64(const uint8_t *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

#define ENTRY_HEAD  19 /* pid 8, epoch 2, count 1, last ts 8 */
#define ENTRY_BATCH 24 /* first seq 4, last seq 4, first off 8, last off 8 */

int kp_pstate_write_snapshot(const kp_pstate_t *ps, const char *path)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_append(&b, "KPPS", 4);
    put32(&b, SNAPSHOT_VERSION);
    put32(&b, (uint32_t)ps->count);
    for (size_t i = 0; i < ps->cap; i++) {
        const kp_pstate_entry_t *e = &ps->slots[i];
        if (e->producer_id < 0) continue;
        put64(&b, (uint64_t)e->producer_id);
        uint8_t ep[3] = {(uint8_t)((uint16_t)e->epoch >> 8), (uint8_t)e->epoch, e->count};
        kp_buf_append(&b, ep, 3);
        put64(&b, (uint64_t)e->last_timestamp_ms);
        put64(&b, (uint64_t)e->txn_first_offset);
        for (int k = 0; k < e->count; k++) {
            put32(&b, (uint32_t)e->batches[k].first_seq);
            put32(&b, (uint32_t)e->batches[k].last_seq);
            put64(&b, (uint64_t)e->batches[k].first_offset);
            put64(&b, (uint64_t)e->batches[k].last_offset);
        }
    }
    put32(&b, kp_crc32c(0, b.data, b.len));
    int rc = kp_fs_write_atomic(path, b.data, b.len);
    kp_buf_free(&b);
    return rc;
}

int kp_pstate_read_snapshot(kp_pstate_t *ps, const char *path)
{
    uint8_t *data;
    size_t len;
    kp_pstate_clear(ps);
    if (kp_fs_read_all(path, SNAPSHOT_MAX_BYTES, &data, &len) < 0) return -1;
    int rc = -1;
    if (len < 16 || memcmp(data, "KPPS", 4) != 0) goto out;
    uint32_t version = get32(data + 4);
    if (version != 1 && version != SNAPSHOT_VERSION) goto out;
    size_t head = ENTRY_HEAD + (version >= 2 ? 8 : 0);
    if (kp_crc32c(0, data, len - 4) != get32(data + len - 4)) goto out;
    uint32_t count = get32(data + 8);
    const uint8_t *p = data + 12, *end = data + len - 4;
    for (uint32_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < head) goto out;
        int64_t pid = (int64_t)get64(p);
        uint8_t n = p[10];
        if (pid < 0 || n > KP_PRODUCER_BATCHES_MAX ||
            (size_t)(end - p) < head + (size_t)n * ENTRY_BATCH)
            goto out;
        kp_pstate_entry_t *e = insert(ps, pid);
        e->epoch = (int16_t)((p[8] << 8) | p[9]);
        e->count = n;
        e->last_timestamp_ms = (int64_t)get64(p + 11);
        e->txn_first_offset = version >= 2 ? (int64_t)get64(p + 19) : -1;
        if (e->txn_first_offset < -1) goto out;
        p += head;
        for (int k = 0; k < n; k++, p += ENTRY_BATCH) {
            e->batches[k].first_seq = (int32_t)get32(p);
            e->batches[k].last_seq = (int32_t)get32(p + 4);
            e->batches[k].first_offset = (int64_t)get64(p + 8);
            e->batches[k].last_offset = (int64_t)get64(p + 16);
        }
    }
    rc = p == end ? 0 : -1;
out:
    if (rc < 0) kp_pstate_clear(ps);
    free(data);
    return rc;
}
