/* buf.c — growable buffers and the aborting allocators (see buf.h for the policy). */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "kpool: out of memory allocating %zu bytes\n", n);
    abort();
}

void *kp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *kp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *kp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *kp_xstrdup(const char *s)
{
    return kp_xstrndup(s, strlen(s));
}

char *kp_xstrndup(const char *s, size_t n)
{
    char *d = kp_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void kp_buf_init(kp_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kp_buf_free(kp_buf_t *b)
{
    free(b->data);
    kp_buf_init(b);
}

void kp_buf_reserve(kp_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    b->data = kp_xrealloc(b->data, cap);
    b->cap = cap;
}

uint8_t *kp_buf_extend(kp_buf_t *b, size_t n)
{
    kp_buf_reserve(b, n);
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

void kp_buf_append(kp_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return;
    memcpy(kp_buf_extend(b, n), p, n);
}

void kp_buf_appendf(kp_buf_t *b, const char *fmt, ...)
{
    /* format once into the room there is; a second time only when it did not fit */
    kp_buf_reserve(b, 256);
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    if ((size_t)n >= room) {
        kp_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}
