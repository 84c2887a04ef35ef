/* batch.c — record batch v2 parsing and validation (see batch.h). */
#include "storage/batch.h"

#include "core/crc32c.h"
#include "core/limits.h"
#include "protocol/wire.h"

static inline uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t ld64(const uint8_t *p)
{
    return ((uint64_t)ld32(p) << 32) | ld32(p + 4);
}
static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)(v >> 32));
    st32(p + 4, (uint32_t)v);
}

const char *kp_batch_status_str(kp_batch_status_t st)
{
    switch (st) {
    case KP_BATCH_OK:
        return "ok";
    case KP_BATCH_TRUNCATED:
        return "truncated batch";
    case KP_BATCH_BAD_MAGIC:
        return "record batch magic is not 2";
    case KP_BATCH_BAD_CRC:
        return "record batch CRC-32C mismatch";
    case KP_BATCH_BAD_LENGTH:
        return "record batch length inconsistent";
    case KP_BATCH_BAD_RECORDS:
        return "records inconsistent with batch header";
    case KP_BATCH_BAD_CODEC:
        return "unknown compression codec";
    }
    return "?";
}

void kp_batch_parse_header(const uint8_t *p, kp_batch_info_t *b)
{
    b->base_offset = (int64_t)ld64(p);
    b->batch_length = (int32_t)ld32(p + 8);
    b->leader_epoch = (int32_t)ld32(p + 12);
    b->magic = (int8_t)p[16];
    b->crc = ld32(p + 17);
    b->attributes = (int16_t)((p[21] << 8) | p[22]);
    b->last_offset_delta = (int32_t)ld32(p + 23);
    b->base_timestamp = (int64_t)ld64(p + 27);
    b->max_timestamp = (int64_t)ld64(p + 35);
    b->producer_id = (int64_t)ld64(p + 43);
    b->producer_epoch = (int16_t)((p[51] << 8) | p[52]);
    b->base_sequence = (int32_t)ld32(p + 53);
    b->records_count = (int32_t)ld32(p + 57);
}

int64_t kp_batch_total_size(const uint8_t *p, size_t avail)
{
    if (avail < KP_BATCH_LOG_OVERHEAD) return -1;
    int32_t len = (int32_t)ld32(p + 8);
    return len < 0 ? -1 : (int64_t)len + KP_BATCH_LOG_OVERHEAD;
}

/* Walks uncompressed records: each is a varint length then exactly that many bytes of
 * attributes, timestampDelta, offsetDelta (must be its index), key, value, headers. */
static int records_valid(const uint8_t *p, size_t len, int32_t count)
{
    kp_rd_t r;
    kp_rd_init(&r, p, len);
    for (int32_t i = 0; i < count; i++) {
        int32_t rec_len = kp_rd_varint(&r);
        if (r.err || rec_len < 0 || (size_t)rec_len > kp_rd_left(&r)) return 0;
        kp_rd_t rr;
        kp_rd_init(&rr, r.p, (size_t)rec_len);
        r.p += rec_len;
        kp_rd_i8(&rr);      /* attributes */
        kp_rd_varlong(&rr); /* timestampDelta */
        if (kp_rd_varint(&rr) != i) return 0;
        int32_t klen = kp_rd_varint(&rr);
        if (klen >= 0)
            kp_rd_skip(&rr, (size_t)klen);
        else if (klen != -1)
            return 0;
        int32_t vlen = kp_rd_varint(&rr);
        if (vlen >= 0)
            kp_rd_skip(&rr, (size_t)vlen);
        else if (vlen != -1)
            return 0;
        int32_t nh = kp_rd_varint(&rr);
        if (nh < 0) return 0;
        for (int32_t h = 0; h < nh && !rr.err; h++) {
            int32_t hk = kp_rd_varint(&rr);
            if (hk < 0) return 0;
            kp_rd_skip(&rr, (size_t)hk);
            int32_t hv = kp_rd_varint(&rr);
            if (hv >= 0)
                kp_rd_skip(&rr, (size_t)hv);
            else if (hv != -1)
                return 0;
        }
        if (rr.err || kp_rd_left(&rr) != 0) return 0;
    }
    return kp_rd_left(&r) == 0 && !r.err;
}

kp_batch_status_t kp_batch_validate(const uint8_t *p, size_t len, kp_batch_info_t *b)
{
    if (len < KP_BATCH_HEADER_BYTES) return KP_BATCH_TRUNCATED;
    kp_batch_parse_header(p, b);
    if (b->magic != 2) return KP_BATCH_BAD_MAGIC;
    if (b->batch_length < KP_BATCH_HEADER_BYTES - KP_BATCH_LOG_OVERHEAD ||
        (size_t)b->batch_length + KP_BATCH_LOG_OVERHEAD != len)
        return len < (size_t)b->batch_length + KP_BATCH_LOG_OVERHEAD ? KP_BATCH_TRUNCATED
                                                                     : KP_BATCH_BAD_LENGTH;
    if (kp_crc32c(0, p + 21, len - 21) != b->crc) return KP_BATCH_BAD_CRC;
    if (b->records_count < 0 || b->last_offset_delta < 0) return KP_BATCH_BAD_RECORDS;
    /* compressed or not: the offsets a batch claims must match its record count, else one
     * batch could make the log assign (and skip) any number of offsets */
    if (b->records_count > 0 && b->last_offset_delta != b->records_count - 1)
        return KP_BATCH_BAD_RECORDS;
    int codec = b->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec > 4) return KP_BATCH_BAD_CODEC;
    size_t body = len - KP_BATCH_HEADER_BYTES;
    if (codec == 0) {
        if ((uint64_t)b->records_count * KP_BATCH_RECORD_MIN_BYTES > body)
            return KP_BATCH_BAD_RECORDS;
        if (!records_valid(p + KP_BATCH_HEADER_BYTES, body, b->records_count))
            return KP_BATCH_BAD_RECORDS;
    }
    return KP_BATCH_OK;
}

kp_batch_status_t kp_batch_validate_stored(const uint8_t *p, size_t len, kp_batch_info_t *b)
{
    if (len < KP_BATCH_HEADER_BYTES) return KP_BATCH_TRUNCATED;
    kp_batch_parse_header(p, b);
    if (b->magic != 2) return KP_BATCH_BAD_MAGIC;
    if (b->batch_length < KP_BATCH_HEADER_BYTES - KP_BATCH_LOG_OVERHEAD ||
        (size_t)b->batch_length + KP_BATCH_LOG_OVERHEAD != len)
        return KP_BATCH_BAD_LENGTH;
    if (kp_crc32c(0, p + 21, len - 21) != b->crc) return KP_BATCH_BAD_CRC;
    if (b->records_count < 0 || b->last_offset_delta < 0) return KP_BATCH_BAD_RECORDS;
    return KP_BATCH_OK;
}

void kp_batch_set_base_offset(uint8_t *p, int64_t offset)
{
    st64(p, (uint64_t)offset);
}

void kp_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    st32(p + 12, (uint32_t)epoch);
}

void kp_batch_set_log_append_time(uint8_t *p, size_t len, int64_t ts)
{
    int16_t attrs = (int16_t)((p[21] << 8) | p[22]);
    attrs |= KP_BATCH_ATTR_LOG_APPEND_TIME;
    p[21] = (uint8_t)((uint16_t)attrs >> 8);
    p[22] = (uint8_t)attrs;
    st64(p + 35, (uint64_t)ts);
    st32(p + 17, kp_crc32c(0, p + 21, len - 21));
}

void kp_batch_set_producer(uint8_t *p, size_t len, int16_t attrs, int64_t producer_id,
                           int16_t epoch, int32_t base_sequence)
{
    p[21] = (uint8_t)((uint16_t)attrs >> 8);
    p[22] = (uint8_t)attrs;
    st64(p + 43, (uint64_t)producer_id);
    p[51] = (uint8_t)((uint16_t)epoch >> 8);
    p[52] = (uint8_t)epoch;
    st32(p + 53, (uint32_t)base_sequence);
    st32(p + 17, kp_crc32c(0, p + 21, len - 21));
}
