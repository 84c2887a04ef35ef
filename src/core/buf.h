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

void *kp_xmalloc(size_t n);
void *kp_xcalloc(size_t n, size_t size);
void *kp_xrealloc(void *p, size_t n);
char *kp_xstrdup(const char *s);
char *kp_xstrndup(const char *s, size_t n);

#endif
