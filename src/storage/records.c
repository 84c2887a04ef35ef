/* records.c — record encoding for internal topics and a walker for uncompressed batches. */
#include "storage/records.h"

#include "core/crc32c.h"
#include "storage/compress.h"
#include "protocol/wire.h"

#include <string.h>

static void put_uvarint(kp_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    kp_buf_append(b, tmp, n);
}

static void put_varlong(kp_buf_t *b, int64_t v)
{
    put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varlong_len(int64_t v)
{
    return uvarint_len(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)(v >> 32));
    st32(p + 4, (uint32_t)v);
}

void kp_batch_builder_init(kp_batch_builder_t *b, int64_t base_timestamp)
{
    kp_buf_init(&b->buf);
    kp_buf_extend(&b->buf, KP_BATCH_HEADER_BYTES);
    b->count = 0;
    b->base_timestamp = base_timestamp;
    b->max_timestamp = base_timestamp;
}

void kp_batch_builder_free(kp_batch_builder_t *b)
{
    kp_buf_free(&b->buf);
}

void kp_batch_builder_add(kp_batch_builder_t *b, const void *key, int32_t keylen, const void *value,
                          int32_t valuelen, int64_t timestamp)
{
    /* wraps as Kafka's (Java) arithmetic does: client timestamps may be anything */
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp);
    size_t body = 1 + varlong_len(ts_delta) + varlong_len(b->count) + varlong_len(keylen) +
                  (keylen > 0 ? (size_t)keylen : 0) + varlong_len(valuelen) +
                  (valuelen > 0 ? (size_t)valuelen : 0) + 1;
    put_varlong(&b->buf, (int64_t)body);
    kp_buf_append(&b->buf, "\0", 1); /* attributes */
    put_varlong(&b->buf, ts_delta);
    put_varlong(&b->buf, b->count);
    put_varlong(&b->buf, keylen);
    if (keylen > 0) kp_buf_append(&b->buf, key, (size_t)keylen);
    put_varlong(&b->buf, valuelen);
    if (valuelen > 0) kp_buf_append(&b->buf, value, (size_t)valuelen);
    put_varlong(&b->buf, 0); /* headers */
    if (timestamp > b->max_timestamp) b->max_timestamp = timestamp;
    b->count++;
}

void kp_batch_builder_finish(kp_batch_builder_t *b)
{
    uint8_t *p = b->buf.data;
    st64(p, 0); /* baseOffset: assigned on append */
    st32(p + 8, (uint32_t)(b->buf.len - KP_BATCH_LOG_OVERHEAD));
    st32(p + 12, 0); /* partitionLeaderEpoch */
    p[16] = 2;       /* magic */
    st16(p + 21, 0); /* attributes: no compression */
    st32(p + 23, (uint32_t)(b->count > 0 ? b->count - 1 : 0));
    st64(p + 27, (uint64_t)b->base_timestamp);
    st64(p + 35, (uint64_t)b->max_timestamp);
    st64(p + 43, (uint64_t)-1); /* producerId */
    st16(p + 51, (uint16_t)-1); /* producerEpoch */
    st32(p + 53, (uint32_t)-1); /* baseSequence */
    st32(p + 57, (uint32_t)b->count);
    st32(p + 17, kp_crc32c(0, p + 21, b->buf.len - 21));
}

int kp_records_begin(kp_records_iter_t *it, const uint8_t *batch, size_t len)
{
    memset(it, 0, sizeof(*it));
    if (len < KP_BATCH_HEADER_BYTES) return -1;
    kp_batch_parse_header(batch, &it->info);
    if ((size_t)it->info.batch_length + KP_BATCH_LOG_OVERHEAD != len) return -1;
    if (it->info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK) return -1;
    it->p = batch + KP_BATCH_HEADER_BYTES;
    it->end = batch + len;
    return 0;
}

void kp_records_begin_raw(kp_records_iter_t *it, const kp_batch_info_t *info, const uint8_t *p,
                          size_t len)
{
    memset(it, 0, sizeof(*it));
    it->info = *info;
    it->p = p;
    it->end = p + len;
}

int kp_records_next(kp_records_iter_t *it, kp_record_t *rec)
{
    if (it->err) return -1;
    if (it->index >= it->info.records_count || it->p >= it->end) return 0;
    kp_rd_t r;
    kp_rd_init(&r, it->p, (size_t)(it->end - it->p));
    int32_t rec_len = kp_rd_varint(&r);
    if (r.err || rec_len < 0 || (size_t)rec_len > kp_rd_left(&r)) goto bad;
    const uint8_t *next = r.p + rec_len;
    rec->raw = it->p;
    rec->rawlen = (size_t)(next - it->p);
    kp_rd_t rr;
    kp_rd_init(&rr, r.p, (size_t)rec_len);
    kp_rd_i8(&rr);
    rec->timestamp = (int64_t)((uint64_t)it->info.base_timestamp + (uint64_t)kp_rd_varlong(&rr));
    /* LogAppendTime: every record carries the batch's append time (as Kafka reports it) */
    if (it->info.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME)
        rec->timestamp = it->info.max_timestamp;
    rec->offset = (int64_t)((uint64_t)it->info.base_offset + (uint64_t)(int64_t)kp_rd_varint(&rr));
    rec->keylen = kp_rd_varint(&rr);
    rec->key = rr.p;
    if (rec->keylen > 0)
        kp_rd_skip(&rr, (size_t)rec->keylen);
    else if (rec->keylen < -1)
        goto bad;
    rec->valuelen = kp_rd_varint(&rr);
    rec->value = rr.p;
    if (rec->valuelen > 0)
        kp_rd_skip(&rr, (size_t)rec->valuelen);
    else if (rec->valuelen < -1)
        goto bad;
    rec->nheaders = kp_rd_varint(&rr);
    if (rr.err || rec->nheaders < 0) goto bad;
    it->p = next;
    it->index++;
    return 1;
bad:
    it->err = 1;
    return -1;
}

/* The records of a stored or produced batch (len bytes, header included): *body points into
 * the batch when it is uncompressed, else into scratch (decompressed, at most max_bytes).
 * 0, or -1 when the batch is too short or cannot be decompressed. */
static int batch_records(const uint8_t *batch, size_t len, kp_batch_info_t *info, kp_buf_t *scratch,
                         size_t max_bytes, const uint8_t **body, size_t *body_len)
{
    if (len < KP_BATCH_HEADER_BYTES) return -1;
    kp_batch_parse_header(batch, info);
    *body = batch + KP_BATCH_HEADER_BYTES;
    *body_len = len - KP_BATCH_HEADER_BYTES;
    int codec = info->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec == KP_CODEC_NONE) return 0;
    scratch->len = 0;
    if (kp_decompress(codec, *body, *body_len, scratch, max_bytes) < 0) return -1;
    *body = scratch->data;
    *body_len = scratch->len;
    return 0;
}

/* Writes into out (replaced) a batch with the header of `batch` (base offset, last offset
 * delta, timestamps, producer fields, other attribute bits), codec `codec` and the records
 * plain[0..plain_len), `count` of them; length and CRC are recomputed. 0 or -1. */
static int batch_encode(const uint8_t *batch, int codec, const uint8_t *plain, size_t plain_len,
                        int32_t count, kp_buf_t *out)
{
    out->len = 0;
    kp_buf_append(out, batch, KP_BATCH_HEADER_BYTES);
    if (kp_compress(codec, plain, plain_len, out) < 0) return -1;
    uint8_t *p = out->data;
    uint16_t attributes = (uint16_t)((p[21] << 8) | p[22]);
    attributes = (uint16_t)((attributes & ~KP_BATCH_ATTR_COMPRESSION_MASK) | codec);
    st16(p + 21, attributes);
    st32(p + 8, (uint32_t)(out->len - KP_BATCH_LOG_OVERHEAD));
    st32(p + 57, (uint32_t)count);
    st32(p + 17, kp_crc32c(0, p + 21, out->len - 21));
    return 0;
}

int kp_batch_first_at_or_after(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                               int64_t *timestamp, kp_buf_t *scratch, size_t max_bytes)
{
    kp_batch_info_t info;
    const uint8_t *body;
    size_t body_len;
    if (batch_records(batch, len, &info, scratch, max_bytes, &body, &body_len) < 0) return -1;
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body, body_len);
    kp_record_t rec;
    int rc;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        if (rec.timestamp >= ts) {
            *offset = rec.offset;
            *timestamp = rec.timestamp;
            return 1;
        }
    }
    return rc < 0 ? -1 : 0;
}

int kp_batch_filter(const uint8_t *batch, size_t len,
                    int (*keep)(const kp_record_t *rec, void *arg), void *arg, kp_buf_t *scratch,
                    kp_buf_t *out, size_t max_bytes)
{
    kp_batch_info_t info;
    const uint8_t *body;
    size_t body_len;
    if (batch_records(batch, len, &info, scratch, max_bytes, &body, &body_len) < 0) return -1;
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body, body_len);
    kp_record_t rec;
    int32_t kept = 0, seen = 0;
    /* first pass: decide; the raw bytes of kept records are gathered in a second buffer */
    kp_buf_t plain;
    kp_buf_init(&plain);
    int rc;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        seen++;
        if (!keep(&rec, arg)) continue;
        kept++;
        kp_buf_append(&plain, rec.raw, rec.rawlen);
    }
    if (rc < 0 || seen != info.records_count) {
        kp_buf_free(&plain);
        return -1;
    }
    if (kept == seen) {
        kp_buf_free(&plain);
        return KP_FILTER_ALL;
    }
    if (kept == 0) {
        kp_buf_free(&plain);
        return KP_FILTER_NONE;
    }
    int codec = info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    int ok = batch_encode(batch, codec, plain.data, plain.len, kept, out) == 0;
    kp_buf_free(&plain);
    return ok ? KP_FILTER_SOME : -1;
}

int kp_batch_recompress(const uint8_t *batch, size_t len, int codec, kp_buf_t *scratch,
                        kp_buf_t *out, size_t max_bytes)
{
    kp_batch_info_t info;
    const uint8_t *body;
    size_t body_len;
    if (codec < KP_CODEC_NONE || codec > KP_CODEC_ZSTD) return -1;
    if (len < KP_BATCH_HEADER_BYTES) return -1;
    kp_batch_parse_header(batch, &info);
    if ((info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK) == codec) return KP_RECOMPRESS_SAME;
    if (batch_records(batch, len, &info, scratch, max_bytes, &body, &body_len) < 0) return -1;
    /* every record must decode and the records must fill the body exactly: what is stored
     * has to be what a consumer can read back */
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body, body_len);
    kp_record_t rec;
    int32_t seen = 0;
    int rc;
    while ((rc = kp_records_next(&it, &rec)) == 1) seen++;
    if (rc < 0 || seen != info.records_count || it.p != it.end) return -1;
    return batch_encode(batch, codec, body, body_len, seen, out) == 0 ? KP_RECOMPRESS_DONE : -1;
}

int kp_batch_timestamps_check(const uint8_t *batch, size_t len, int64_t min_ts, int64_t max_ts,
                              kp_buf_t *scratch, size_t max_bytes)
{
    kp_batch_info_t info;
    const uint8_t *body;
    size_t body_len;
    if (batch_records(batch, len, &info, scratch, max_bytes, &body, &body_len) < 0) return -1;
    kp_records_iter_t it;
    kp_records_begin_raw(&it, &info, body, body_len);
    /* the raw timestamps: the iterator reports LogAppendTime batches' append time instead */
    it.info.attributes &= (int16_t)~KP_BATCH_ATTR_LOG_APPEND_TIME;
    kp_record_t rec;
    int rc, outside = 0;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        if (rec.timestamp == -1) continue; /* NO_TIMESTAMP: Kafka skips the check */
        if (rec.timestamp < min_ts || rec.timestamp > max_ts) outside = 1;
    }
    return rc < 0 ? -1 : outside;
}
