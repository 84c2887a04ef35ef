/*
 * buf.h — a growable byte buffer and borrowed slices.
 *
 * kp_buf_t owns its bytes; kp_slice_t borrows them (from a receive chunk, a buffer, a mapped
 * file) and is only valid while the owner is. Growth doubles, so appends are amortised O(1).
 * Allocation failure aborts: kpool treats out-of-memory as fatal rather than threading an
 * error through every append (inputs are bounded before they reach a buffer).
 */
#ifndef KP_BUF_H
#define KP_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct kp_slice {
    const uint8_t *ptr;
    size_t len;
} kp_slice_t;

typedef struct kp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} kp_buf_t;

void kp_buf_init(kp_buf_t *b);
void kp_buf_free(kp_buf_t *b);
void kp_buf_reserve(kp_buf_t *b, size_t extra);
void kp_buf_append(kp_buf_t *b, const void *p, size_t n);
void kp_buf_appendf(kp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns a pointer to n fresh bytes at the end (uninitialised). */
uint8_t *kp_buf_extend(kp_buf_t *b, size_t n);
static inline void kp_buf_reset(kp_buf_t *b)
{
    b->len = 0;
}

/* Big-endian integers, as Kafka's own record formats (keys and values of internal topics)
 * write them. */
static inline void kp_buf_put_i16(kp_buf_t *b, int16_t v)
{
    uint8_t *p = kp_buf_extend(b, 2);
    p[0] = (uint8_t)((uint16_t)v >> 8);
    p[1] = (uint8_t)v;
}

static inline void kp_buf_put_i32(kp_buf_t *b, int32_t v)
{
    uint8_t *p = kp_buf_extend(b, 4);
    p[0] = (uint8_t)((uint32_t)v >> 24);
    p[1] = (uint8_t)((uint32_t)v >> 16);
    p[2] = (uint8_t)((uint32_t)v >> 8);
    p[3] = (uint8_t)v;
}

static inline void kp_buf_put_i64(kp_buf_t *b, int64_t v)
{
    kp_buf_put_i32(b, (int32_t)((uint64_t)v >> 32));
    kp_buf_put_i32(b, (int32_t)v);
}

void *kp_xmalloc(size_t n);
void *kp_xcalloc(size_t n, size_t size);
void *kp_xrealloc(void *p, size_t n);
char *kp_xstrdup(const char *s);
char *kp_xstrndup(const char *s, size_t n);

#endif
