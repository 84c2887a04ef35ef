/*
 * msgset.c — legacy message sets (magic 0/1) to and from record batch v2.
 *
 * Layout: byte helpers and XXH32 (for the LZ4 frame header checksum of magic 0), the
 * message parser and writer, up-conversion (Produce v0–2), down-conversion (Fetch v0–3).
 * Both directions copy; they serve only old clients, never the v3+/v4+ paths.
 */
#include "storage/msgset.h"

#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/records.h"

#include <string.h>
#include <zlib.h>

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t ld64(const uint8_t *p)
{
    return (int64_t)((uint64_t)ld32(p) << 32 | ld32(p + 4));
}
static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void st64(uint8_t *p, int64_t v)
{
    st32(p, (uint32_t)((uint64_t)v >> 32));
    st32(p + 4, (uint32_t)v);
}

const char *kp_msgset_status_str(kp_msgset_status_t st)
{
    switch (st) {
    case KP_MSGSET_OK:
        return "ok";
    case KP_MSGSET_CORRUPT:
        return "corrupt message (framing, CRC-32 or compressed payload)";
    case KP_MSGSET_INVALID:
        return "invalid message set (empty, mixed magic or nested wrapper)";
    case KP_MSGSET_BAD_CODEC:
        return "compression codec not allowed in message format v0/v1";
    }
    return "unknown";
}

int kp_msgset_magic(const uint8_t *p, size_t len)
{
    return len > 16 ? (int8_t)p[16] : -1;
}

/* ---- LZ4 frame header checksum ----
 * Kafka before 0.10 hashed the LZ4 frame descriptor together with the 4 magic bytes
 * (KAFKA-3160); magic 0 keeps that, so up-conversion repairs the byte before liblz4 checks it
 * and down-conversion to magic 0 writes it the old way. XXH32 over a dozen bytes. */

#define XXH_P1 2654435761u
#define XXH_P2 2246822519u
#define XXH_P3 3266489917u
#define XXH_P4 668265263u
#define XXH_P5 374761393u

static uint32_t rotl32(uint32_t x, int r)
{
    return x << r | x >> (32 - r);
}
static uint32_t ld32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t xxh32_round(uint32_t v, const uint8_t *p)
{
    return rotl32(v + ld32le(p) * XXH_P2, 13) * XXH_P1;
}

static uint32_t xxh32(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint32_t h;
    if (len >= 16) {
        uint32_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = 0u - XXH_P1;
        while (end - p >= 16) {
            v1 = xxh32_round(v1, p);
            v2 = xxh32_round(v2, p + 4);
            v3 = xxh32_round(v3, p + 8);
            v4 = xxh32_round(v4, p + 12);
            p += 16;
        }
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = XXH_P5;
    }
    h += (uint32_t)len;
    for (; end - p >= 4; p += 4) h = rotl32(h + ld32le(p) * XXH_P3, 17) * XXH_P4;
    for (; p < end; p++) h = rotl32(h + *p * XXH_P5, 11) * XXH_P1;
    h ^= h >> 15;
    h *= XXH_P2;
    h ^= h >> 13;
    h *= XXH_P3;
    h ^= h >> 16;
    return h;
}

/* Rewrites the header checksum byte of the LZ4 frame f[0..len): `broken` the pre-0.10 way
 * (magic bytes hashed too), else as the frame format says. No-op on anything else. */
static void lz4_set_hc(uint8_t *f, size_t len, int broken)
{
    if (len < 7 || ld32le(f) != 0x184D2204u) return;
    size_t hc = 6 + ((f[4] & 0x08) ? 8 : 0) + ((f[4] & 0x01) ? 4 : 0);
    if (hc >= len) return;
    size_t from = broken ? 0 : 4;
    f[hc] = (uint8_t)(xxh32(f + from, hc - from) >> 8);
}

/* ---- one message ---- */

typedef struct legacy_msg {
    int64_t offset;
    int8_t magic;
    uint8_t attributes;
    int64_t timestamp; /* -1 in magic 0 */
    const uint8_t *key, *value;
    int32_t keylen, valuelen; /* -1: null */
} legacy_msg_t;

#define MSG_MIN_BYTES 14 /* crc, magic, attributes, key and value lengths */

/* Parses the entry at p (avail bytes): *entry_len is its size with the log overhead. */
static kp_msgset_status_t msg_parse(const uint8_t *p, size_t avail, legacy_msg_t *m,
                                    size_t *entry_len)
{
    if (avail < KP_MSGSET_LOG_OVERHEAD) return KP_MSGSET_CORRUPT;
    m->offset = ld64(p);
    int32_t size = (int32_t)ld32(p + 8);
    if (size < MSG_MIN_BYTES || (size_t)size > avail - KP_MSGSET_LOG_OVERHEAD)
        return KP_MSGSET_CORRUPT;
    const uint8_t *q = p + KP_MSGSET_LOG_OVERHEAD, *end = q + size;
    m->magic = (int8_t)q[4];
    if (m->magic != 0 && m->magic != 1) return KP_MSGSET_INVALID;
    if ((uint32_t)crc32(0, q + 4, (uInt)(size - 4)) != ld32(q)) return KP_MSGSET_CORRUPT;
    m->attributes = q[5];
    q += 6;
    m->timestamp = -1;
    if (m->magic == 1) {
        if (end - q < 8 + 8) return KP_MSGSET_CORRUPT;
        m->timestamp = ld64(q);
        q += 8;
    }
    m->keylen = (int32_t)ld32(q);
    q += 4;
    if (m->keylen < -1 || m->keylen > end - q - 4) return KP_MSGSET_CORRUPT;
    m->key = q;
    if (m->keylen > 0) q += m->keylen;
    m->valuelen = (int32_t)ld32(q);
    q += 4;
    if (m->valuelen < -1 || m->valuelen > end - q) return KP_MSGSET_CORRUPT;
    m->value = q;
    if (m->valuelen > 0) q += m->valuelen;
    if (q != end) return KP_MSGSET_CORRUPT;
    *entry_len = KP_MSGSET_LOG_OVERHEAD + (size_t)size;
    return KP_MSGSET_OK;
}

/* Appends one entry (CRC-32 computed) to out. */
static void msg_put(kp_buf_t *out, int magic, int64_t offset, uint8_t attributes, int64_t timestamp,
                    const uint8_t *key, int32_t keylen, const uint8_t *value, int32_t valuelen)
{
    size_t size = MSG_MIN_BYTES + (magic ? 8 : 0) + (keylen > 0 ? (size_t)keylen : 0) +
                  (valuelen > 0 ? (size_t)valuelen : 0);
    uint8_t *h = kp_buf_extend(out, KP_MSGSET_LOG_OVERHEAD + size);
    st64(h, offset);
    st32(h + 8, (uint32_t)size);
    uint8_t *q = h + 16;
    *q++ = (uint8_t)magic;
    *q++ = attributes;
    if (magic) {
        st64(q, timestamp);
        q += 8;
    }
    st32(q, (uint32_t)keylen);
    q += 4;
    if (keylen > 0) memcpy(q, key, (size_t)keylen);
    q += keylen > 0 ? keylen : 0;
    st32(q, (uint32_t)valuelen);
    q += 4;
    if (valuelen > 0) memcpy(q, value, (size_t)valuelen);
    st32(h + 12, (uint32_t)crc32(0, h + 16, (uInt)(size - 4)));
}

/* ---- up-conversion ---- */

typedef struct up_state {
    kp_batch_builder_t b;
    int started;
    int magic;       /* of the first entry; every other must match */
    int src_codec;   /* of the first wrapper */
    size_t inflated; /* decompressed bytes so far, bounded by max_bytes */
} up_state_t;

static void up_add(up_state_t *u, const legacy_msg_t *m, int64_t timestamp)
{
    if (!u->started) {
        kp_batch_builder_init(&u->b, timestamp);
        u->started = 1;
    }
    kp_batch_builder_add(&u->b, m->key, m->keylen, m->value, m->valuelen, timestamp);
}

/* Adds the inner messages of wrapper w (decompressed into scratch). */
static kp_msgset_status_t up_wrapper(up_state_t *u, const legacy_msg_t *w, kp_buf_t *scratch,
                                     kp_buf_t *fix, size_t max_bytes)
{
    int codec = w->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec > KP_CODEC_LZ4) return KP_MSGSET_BAD_CODEC;
    if (w->valuelen <= 0) return KP_MSGSET_CORRUPT; /* a wrapper without a payload */
    if (!u->src_codec) u->src_codec = codec;
    const uint8_t *z = w->value;
    if (codec == KP_CODEC_LZ4 && w->magic == 0) {
        fix->len = 0;
        kp_buf_append(fix, w->value, (size_t)w->valuelen);
        lz4_set_hc(fix->data, fix->len, 0);
        z = fix->data;
    }
    scratch->len = 0;
    if (kp_decompress(codec, z, (size_t)w->valuelen, scratch, max_bytes - u->inflated) < 0)
        return KP_MSGSET_CORRUPT;
    u->inflated += scratch->len;
    /* magic 1 with LogAppendTime on the wrapper: its time holds for every inner message */
    int lat = w->magic == 1 && (w->attributes & KP_MSGSET_ATTR_LOG_APPEND_TIME);
    size_t pos = 0, n;
    int count = 0;
    while (pos < scratch->len) {
        legacy_msg_t m;
        kp_msgset_status_t st = msg_parse(scratch->data + pos, scratch->len - pos, &m, &n);
        if (st) return st;
        if (m.magic != w->magic || (m.attributes & KP_BATCH_ATTR_COMPRESSION_MASK))
            return KP_MSGSET_INVALID;
        up_add(u, &m, lat ? w->timestamp : m.timestamp);
        pos += n;
        count++;
    }
    return count ? KP_MSGSET_OK : KP_MSGSET_INVALID;
}

kp_msgset_status_t kp_msgset_to_batch(const uint8_t *p, size_t len, int codec, kp_buf_t *scratch,
                                      kp_buf_t *out, size_t max_bytes)
{
    up_state_t u = {.started = 0, .magic = -1, .src_codec = 0, .inflated = 0};
    kp_buf_t fix;
    kp_buf_init(&fix);
    kp_msgset_status_t st = len ? KP_MSGSET_OK : KP_MSGSET_INVALID;
    size_t pos = 0, n;
    while (!st && pos < len) {
        legacy_msg_t m;
        st = msg_parse(p + pos, len - pos, &m, &n);
        if (st) break;
        pos += n;
        if (u.magic < 0) u.magic = m.magic;
        if (m.magic != u.magic) {
            st = KP_MSGSET_INVALID;
        } else if (m.attributes & KP_BATCH_ATTR_COMPRESSION_MASK) {
            st = up_wrapper(&u, &m, scratch, &fix, max_bytes);
        } else {
            up_add(&u, &m, m.timestamp);
        }
    }
    if (!st && !u.started) st = KP_MSGSET_INVALID;
    if (!st) {
        kp_batch_builder_finish(&u.b);
        int target = codec >= 0 ? codec : u.src_codec;
        if (target == KP_CODEC_NONE) {
            kp_buf_t old = *out; /* hand the builder's buffer over, no copy */
            *out = u.b.buf;
            u.b.buf = old;
        } else if (kp_batch_recompress(u.b.buf.data, u.b.buf.len, target, scratch, out, max_bytes) <
                   0) {
            st = KP_MSGSET_CORRUPT;
        }
    }
    if (u.started) kp_batch_builder_free(&u.b);
    kp_buf_free(&fix);
    return st;
}

/* ---- down-conversion ---- */

/* Appends the converted unit (a message or a wrapper) to out within the budget. 1 when the
 * caller may go on, 0 when the result is complete. */
static int emit(kp_buf_t *out, size_t start, const kp_buf_t *unit, int64_t max_bytes, int min_one)
{
    size_t have = out->len - start;
    if ((int64_t)(have + unit->len) <= max_bytes) {
        kp_buf_append(out, unit->data, unit->len);
        return 1;
    }
    if (have > 0) return 0;
    size_t n = unit->len;
    if (!min_one) n = max_bytes > 0 ? (size_t)max_bytes : 0; /* the partial message */
    kp_buf_append(out, unit->data, n);
    return 0;
}

typedef struct down_ctx {
    int magic;
    int64_t first_offset, max_bytes;
    int min_one;
    size_t start;
    kp_buf_t unit, inner, z;
} down_ctx_t;

/* Converts one batch whose records are body[0..body_len). 1: go on, 0: out is complete,
 * or a negative status. */
static int down_batch(down_ctx_t *d, const kp_batch_info_t *info, const uint8_t *body,
                      size_t body_len, kp_buf_t *out)
{
    int codec = info->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    int lat = (info->attributes & KP_BATCH_ATTR_LOG_APPEND_TIME) != 0;
    uint8_t ts_attr = d->magic == 1 && lat ? KP_MSGSET_ATTR_LOG_APPEND_TIME : 0;
    kp_records_iter_t it;
    kp_records_begin_raw(&it, info, body, body_len);
    kp_record_t rec;
    int rc;
    int64_t first_kept = -1, last_kept = -1, max_ts = -1;
    d->inner.len = 0;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        if (rec.offset < d->first_offset) continue;
        if (first_kept < 0) first_kept = rec.offset;
        last_kept = rec.offset;
        if (rec.timestamp > max_ts) max_ts = rec.timestamp;
        if (codec) { /* magic 1 wrappers hold relative offsets */
            msg_put(&d->inner, d->magic, d->magic == 1 ? rec.offset - first_kept : rec.offset,
                    ts_attr, rec.timestamp, rec.key, rec.keylen, rec.value, rec.valuelen);
            continue;
        }
        d->unit.len = 0;
        msg_put(&d->unit, d->magic, rec.offset, ts_attr, rec.timestamp, rec.key, rec.keylen,
                rec.value, rec.valuelen);
        if (!emit(out, d->start, &d->unit, d->max_bytes, d->min_one)) return 0;
    }
    if (rc < 0) return -KP_MSGSET_CORRUPT;
    if (!codec || d->inner.len == 0) return 1;
    d->z.len = 0;
    if (kp_compress(codec, d->inner.data, d->inner.len, &d->z) < 0) return -KP_MSGSET_CORRUPT;
    if (codec == KP_CODEC_LZ4 && d->magic == 0) lz4_set_hc(d->z.data, d->z.len, 1);
    d->unit.len = 0;
    msg_put(&d->unit, d->magic, last_kept, (uint8_t)(codec | ts_attr),
            lat ? info->max_timestamp : max_ts, NULL, -1, d->z.data, (int32_t)d->z.len);
    return emit(out, d->start, &d->unit, d->max_bytes, d->min_one);
}

kp_msgset_status_t kp_msgset_from_batches(const uint8_t *p, size_t len, int magic,
                                          int64_t first_offset, int64_t max_bytes, int min_one,
                                          kp_buf_t *scratch, kp_buf_t *out, size_t inflate_max)
{
    down_ctx_t d = {.magic = magic ? 1 : 0,
                    .first_offset = first_offset,
                    .max_bytes = max_bytes,
                    .min_one = min_one,
                    .start = out->len};
    kp_buf_init(&d.unit);
    kp_buf_init(&d.inner);
    kp_buf_init(&d.z);
    kp_msgset_status_t st = KP_MSGSET_OK;
    size_t pos = 0;
    while (pos + KP_BATCH_HEADER_BYTES <= len) {
        int64_t total = kp_batch_total_size(p + pos, len - pos);
        if (total < KP_BATCH_HEADER_BYTES || (size_t)total > len - pos) break; /* partial */
        const uint8_t *bp = p + pos;
        pos += (size_t)total;
        kp_batch_info_t info;
        kp_batch_parse_header(bp, &info);
        int64_t last;
        if (info.magic != 2 ||
            __builtin_add_overflow(info.base_offset, info.last_offset_delta, &last)) {
            st = KP_MSGSET_CORRUPT;
            break;
        }
        if ((info.attributes & KP_BATCH_ATTR_CONTROL) || last < first_offset) continue;
        int codec = info.attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
        if (codec > KP_CODEC_LZ4) {
            st = KP_MSGSET_BAD_CODEC;
            break;
        }
        const uint8_t *body = bp + KP_BATCH_HEADER_BYTES;
        size_t body_len = (size_t)total - KP_BATCH_HEADER_BYTES;
        if (codec) {
            scratch->len = 0;
            if (kp_decompress(codec, body, body_len, scratch, inflate_max) < 0) {
                st = KP_MSGSET_CORRUPT;
                break;
            }
            body = scratch->data;
            body_len = scratch->len;
            if (body_len == 0) continue; /* no records (and maybe no buffer) */
        }
        int r = down_batch(&d, &info, body, body_len, out);
        if (r < 0) st = (kp_msgset_status_t)-r;
        if (r <= 0) break;
    }
    /* a bad batch after converted ones: hand out those, the next fetch meets the error */
    if (st && out->len > d.start) st = KP_MSGSET_OK;
    kp_buf_free(&d.unit);
    kp_buf_free(&d.inner);
    kp_buf_free(&d.z);
    return st;
}
