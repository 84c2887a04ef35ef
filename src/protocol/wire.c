/* wire.c — the checked reader and the region-splicing writer (see wire.h). */
#include "protocol/wire.h"

#include "core/limits.h"

#include <stdlib.h>

static inline uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t ld64(const uint8_t *p)
{
    return ((uint64_t)ld32(p) << 32) | ld32(p + 4);
}

int8_t kp_rd_i8(kp_rd_t *r)
{
    if (!kp_rd_need(r, 1)) return 0;
    return (int8_t)*r->p++;
}

int16_t kp_rd_i16(kp_rd_t *r)
{
    if (!kp_rd_need(r, 2)) return 0;
    int16_t v = (int16_t)ld16(r->p);
    r->p += 2;
    return v;
}

uint16_t kp_rd_u16(kp_rd_t *r)
{
    return (uint16_t)kp_rd_i16(r);
}

int32_t kp_rd_i32(kp_rd_t *r)
{
    if (!kp_rd_need(r, 4)) return 0;
    int32_t v = (int32_t)ld32(r->p);
    r->p += 4;
    return v;
}

uint32_t kp_rd_u32(kp_rd_t *r)
{
    return (uint32_t)kp_rd_i32(r);
}

int64_t kp_rd_i64(kp_rd_t *r)
{
    if (!kp_rd_need(r, 8)) return 0;
    int64_t v = (int64_t)ld64(r->p);
    r->p += 8;
    return v;
}

double kp_rd_f64(kp_rd_t *r)
{
    int64_t bits = kp_rd_i64(r);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

uint32_t kp_rd_uvarint(kp_rd_t *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift <= 28; shift += 7) {
        if (!kp_rd_need(r, 1)) return 0;
        uint8_t b = *r->p++;
        if (shift == 28 && (b & 0xf0)) break; /* more than 32 bits */
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->err = 1;
    return 0;
}

static uint64_t rd_uvarlong(kp_rd_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (!kp_rd_need(r, 1)) return 0;
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0xfe)) break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->err = 1;
    return 0;
}

int32_t kp_rd_varint(kp_rd_t *r)
{
    uint32_t u = kp_rd_uvarint(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kp_rd_varlong(kp_rd_t *r)
{
    uint64_t u = rd_uvarlong(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

kp_uuid_t kp_rd_uuid(kp_rd_t *r)
{
    kp_uuid_t u = {{0}};
    if (!kp_rd_need(r, 16)) return u;
    memcpy(u.b, r->p, 16);
    r->p += 16;
    return u;
}

void kp_rd_skip(kp_rd_t *r, size_t n)
{
    if (kp_rd_need(r, n)) r->p += n;
}

static kp_str_t rd_blob(kp_rd_t *r, int compact, int nullable, int wide)
{
    int64_t len;
    if (compact) {
        len = (int64_t)kp_rd_uvarint(r) - 1;
    } else {
        len = wide ? kp_rd_i32(r) : kp_rd_i16(r);
    }
    if (r->err) return KP_STR_NULL;
    if (len < 0) {
        if (len != -1 || !nullable) r->err = 1;
        return KP_STR_NULL;
    }
    if (!kp_rd_need(r, (size_t)len)) return KP_STR_NULL;
    kp_str_t s = {(const char *)r->p, (int32_t)len};
    r->p += len;
    return s;
}

kp_str_t kp_rd_string(kp_rd_t *r, int compact, int nullable)
{
    return rd_blob(r, compact, nullable, 0);
}

kp_str_t kp_rd_bytes(kp_rd_t *r, int compact, int nullable)
{
    return rd_blob(r, compact, nullable, 1);
}

int32_t kp_rd_array_len(kp_rd_t *r, int compact, int nullable, size_t elem_min_bytes)
{
    int64_t n = compact ? (int64_t)kp_rd_uvarint(r) - 1 : kp_rd_i32(r);
    if (r->err) return 0;
    if (n < 0) {
        if (n != -1 || !nullable) r->err = 1;
        return -1;
    }
    if (n > KP_ARRAY_COUNT_MAX ||
        (size_t)n * (elem_min_bytes ? elem_min_bytes : 1) > kp_rd_left(r)) {
        r->err = 1;
        return 0;
    }
    return (int32_t)n;
}

void kp_rd_skip_tags(kp_rd_t *r)
{
    uint32_t n = kp_rd_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        kp_rd_uvarint(r); /* tag */
        uint32_t size = kp_rd_uvarint(r);
        kp_rd_skip(r, size);
    }
}

/* ---- writer ---- */

void kp_wr_init(kp_wr_t *w)
{
    kp_buf_init(&w->buf);
    w->regions = NULL;
    w->nregions = w->cap_regions = 0;
    w->region_bytes = 0;
}

void kp_wr_free(kp_wr_t *w)
{
    for (int i = 0; i < w->nregions; i++) kp_ref_put(w->regions[i].owner);
    free(w->regions);
    kp_buf_free(&w->buf);
    kp_wr_init(w);
}

static inline uint8_t *wr_extend(kp_wr_t *w, size_t n)
{
    return kp_buf_extend(&w->buf, n);
}

void kp_wr_i8(kp_wr_t *w, int8_t v)
{
    *wr_extend(w, 1) = (uint8_t)v;
}

void kp_wr_i16(kp_wr_t *w, int16_t v)
{
    uint8_t *p = wr_extend(w, 2);
    p[0] = (uint8_t)((uint16_t)v >> 8);
    p[1] = (uint8_t)v;
}

void kp_wr_u16(kp_wr_t *w, uint16_t v)
{
    kp_wr_i16(w, (int16_t)v);
}

static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void kp_wr_i32(kp_wr_t *w, int32_t v)
{
    st32(wr_extend(w, 4), (uint32_t)v);
}

void kp_wr_u32(kp_wr_t *w, uint32_t v)
{
    st32(wr_extend(w, 4), v);
}

void kp_wr_i64(kp_wr_t *w, int64_t v)
{
    uint8_t *p = wr_extend(w, 8);
    st32(p, (uint32_t)((uint64_t)v >> 32));
    st32(p + 4, (uint32_t)v);
}

void kp_wr_f64(kp_wr_t *w, double v)
{
    int64_t bits;
    memcpy(&bits, &v, 8);
    kp_wr_i64(w, bits);
}

size_t kp_uvarint_size(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void kp_wr_uvarint(kp_wr_t *w, uint32_t v)
{
    uint8_t tmp[5];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    kp_wr_raw(w, tmp, n);
}

static void wr_uvarlong(kp_wr_t *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    kp_wr_raw(w, tmp, n);
}

void kp_wr_varint(kp_wr_t *w, int32_t v)
{
    kp_wr_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kp_wr_varlong(kp_wr_t *w, int64_t v)
{
    wr_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kp_wr_uuid(kp_wr_t *w, kp_uuid_t v)
{
    kp_wr_raw(w, v.b, 16);
}

void kp_wr_raw(kp_wr_t *w, const void *p, size_t n)
{
    kp_buf_append(&w->buf, p, n);
}

static void wr_blob(kp_wr_t *w, int compact, kp_str_t s, int wide)
{
    if (compact) {
        kp_wr_uvarint(w, s.len < 0 ? 0 : (uint32_t)s.len + 1);
    } else if (wide) {
        kp_wr_i32(w, s.len < 0 ? -1 : s.len);
    } else {
        kp_wr_i16(w, (int16_t)(s.len < 0 ? -1 : s.len));
    }
    if (s.len > 0) kp_wr_raw(w, s.ptr, (size_t)s.len);
}

void kp_wr_string(kp_wr_t *w, int compact, kp_str_t s)
{
    wr_blob(w, compact, s, 0);
}

void kp_wr_bytes(kp_wr_t *w, int compact, kp_str_t s)
{
    wr_blob(w, compact, s, 1);
}

void kp_wr_records(kp_wr_t *w, int compact, const kp_records_t *rec)
{
    if (!rec->file_owner) {
        wr_blob(w, compact, (kp_str_t){(const char *)rec->ptr, rec->len}, 1);
        return;
    }
    if (compact) {
        kp_wr_uvarint(w, (uint32_t)rec->len + 1);
    } else {
        kp_wr_i32(w, rec->len);
    }
    if (rec->len > 0) kp_wr_file(w, rec->file_owner, rec->file_fd, rec->file_pos, (size_t)rec->len);
}

void kp_wr_array_len(kp_wr_t *w, int compact, int32_t count)
{
    if (compact) {
        kp_wr_uvarint(w, count < 0 ? 0 : (uint32_t)count + 1);
    } else {
        kp_wr_i32(w, count);
    }
}

void kp_wr_patch_i32(kp_wr_t *w, size_t off, int32_t v)
{
    st32(w->buf.data + off, (uint32_t)v);
}

void kp_wr_file(kp_wr_t *w, kp_ref_t *owner, int fd, int64_t pos, size_t len)
{
    if (w->nregions == w->cap_regions) {
        w->cap_regions = w->cap_regions ? w->cap_regions * 2 : 8;
        w->regions = kp_xrealloc(w->regions, (size_t)w->cap_regions * sizeof(kp_wr_region_t));
    }
    kp_ref_get(owner);
    w->regions[w->nregions++] = (kp_wr_region_t){w->buf.len, owner, fd, pos, len};
    w->region_bytes += len;
}
