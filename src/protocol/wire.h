/*
 * wire.h — Kafka wire primitives: a bounds-checked reader and a response writer.
 *
 * Reader (kp_rd_t): every read checks the remaining length; a short or malformed read sets a
 * sticky error flag and returns a zero value, so decoders read straight through and check
 * `rd->err` once (the generated decoders check before allocating anything). Strings and
 * bytes are borrowed slices of the input — nothing is copied.
 *
 * Writer (kp_wr_t): appends big-endian fields to a buffer and can splice in *file regions*
 * (a segment's bytes by fd/offset/length) without copying them, so a Fetch response is sent
 * with writev + sendfile. A region holds a reference on its owner (kp_ref_t) until released.
 */
#ifndef KP_WIRE_H
#define KP_WIRE_H

#include "core/arena.h"
#include "core/buf.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Borrowed string or bytes; len -1 means null. */
typedef struct kp_str {
    const char *ptr;
    int32_t len;
} kp_str_t;

#define KP_STR_NULL   ((kp_str_t){NULL, -1})
#define KP_STR_LIT(s) ((kp_str_t){(s), (int32_t)(sizeof(s) - 1)})
static inline kp_str_t kp_str_c(const char *s)
{
    return (kp_str_t){s, s ? (int32_t)strlen(s) : -1};
}
static inline int kp_str_eq(kp_str_t a, kp_str_t b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}
static inline int kp_str_eq_c(kp_str_t a, const char *s)
{
    return kp_str_eq(a, kp_str_c(s));
}

/* A reference-counted owner of something a response points into (a segment file). */
typedef struct kp_ref {
    atomic_int refs;
    void (*release)(struct kp_ref *ref); /* called when refs drops to 0 */
} kp_ref_t;

static inline void kp_ref_get(kp_ref_t *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}
static inline void kp_ref_put(kp_ref_t *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) r->release(r);
}

/* Record data in a message: inline bytes (ptr/len) or, for responses, a file region. */
typedef struct kp_records {
    const uint8_t *ptr;
    int32_t len;          /* -1: null */
    kp_ref_t *file_owner; /* non-NULL: bytes are [file_pos, file_pos+len) of file_fd */
    int file_fd;
    int64_t file_pos;
} kp_records_t;

#define KP_RECORDS_NULL ((kp_records_t){NULL, -1, NULL, -1, 0})

typedef struct kp_uuid {
    uint8_t b[16];
} kp_uuid_t;

/* ---- reader ---- */

typedef struct kp_rd {
    const uint8_t *p;
    const uint8_t *end;
    int err;
} kp_rd_t;

static inline void kp_rd_init(kp_rd_t *r, const void *p, size_t len)
{
    r->p = p;
    r->end = r->p + len;
    r->err = 0;
}
static inline size_t kp_rd_left(const kp_rd_t *r)
{
    return (size_t)(r->end - r->p);
}
static inline int kp_rd_need(kp_rd_t *r, size_t n)
{
    if (r->err || kp_rd_left(r) < n) {
        r->err = 1;
        return 0;
    }
    return 1;
}

int8_t kp_rd_i8(kp_rd_t *r);
int16_t kp_rd_i16(kp_rd_t *r);
int32_t kp_rd_i32(kp_rd_t *r);
int64_t kp_rd_i64(kp_rd_t *r);
uint16_t kp_rd_u16(kp_rd_t *r);
uint32_t kp_rd_u32(kp_rd_t *r);
double kp_rd_f64(kp_rd_t *r);
uint32_t kp_rd_uvarint(kp_rd_t *r);
int32_t kp_rd_varint(kp_rd_t *r);
int64_t kp_rd_varlong(kp_rd_t *r);
kp_uuid_t kp_rd_uuid(kp_rd_t *r);
void kp_rd_skip(kp_rd_t *r, size_t n);
/* String/bytes in classic (int16/int32 length) or compact (uvarint length+1) form. A null
 * where nullable is 0 sets err. */
kp_str_t kp_rd_string(kp_rd_t *r, int compact, int nullable);
kp_str_t kp_rd_bytes(kp_rd_t *r, int compact, int nullable);
/* Array length (null = -1 if nullable). Fails when count * elem_min_bytes exceeds what is
 * left, so a forged count cannot make the decoder allocate more than the frame justifies. */
int32_t kp_rd_array_len(kp_rd_t *r, int compact, int nullable, size_t elem_min_bytes);
/* Skips a whole tagged-field section (used where no tags are known). */
void kp_rd_skip_tags(kp_rd_t *r);

/* ---- writer ---- */

typedef struct kp_wr_region {
    size_t at; /* offset in buf where the region is spliced */
    kp_ref_t *owner;
    int fd;
    int64_t pos;
    size_t len;
} kp_wr_region_t;

typedef struct kp_wr {
    kp_buf_t buf;
    kp_wr_region_t *regions;
    int nregions, cap_regions;
    size_t region_bytes;
} kp_wr_t;

void kp_wr_init(kp_wr_t *w);
/* Releases the buffer and every region's reference. */
void kp_wr_free(kp_wr_t *w);
static inline size_t kp_wr_len(const kp_wr_t *w)
{
    return w->buf.len + w->region_bytes;
}

void kp_wr_i8(kp_wr_t *w, int8_t v);
void kp_wr_i16(kp_wr_t *w, int16_t v);
void kp_wr_i32(kp_wr_t *w, int32_t v);
void kp_wr_i64(kp_wr_t *w, int64_t v);
void kp_wr_u16(kp_wr_t *w, uint16_t v);
void kp_wr_u32(kp_wr_t *w, uint32_t v);
void kp_wr_f64(kp_wr_t *w, double v);
void kp_wr_uvarint(kp_wr_t *w, uint32_t v);
void kp_wr_varint(kp_wr_t *w, int32_t v);
void kp_wr_varlong(kp_wr_t *w, int64_t v);
void kp_wr_uuid(kp_wr_t *w, kp_uuid_t v);
void kp_wr_raw(kp_wr_t *w, const void *p, size_t n);
void kp_wr_string(kp_wr_t *w, int compact, kp_str_t s);
void kp_wr_bytes(kp_wr_t *w, int compact, kp_str_t s);
void kp_wr_records(kp_wr_t *w, int compact, const kp_records_t *rec);
void kp_wr_array_len(kp_wr_t *w, int compact, int32_t count);
/* Overwrites 4 bytes at off (used for the frame size). */
void kp_wr_patch_i32(kp_wr_t *w, size_t off, int32_t v);
/* Splices a file region at the current position, taking a reference on owner. */
void kp_wr_file(kp_wr_t *w, kp_ref_t *owner, int fd, int64_t pos, size_t len);

size_t kp_uvarint_size(uint32_t v);

#endif
