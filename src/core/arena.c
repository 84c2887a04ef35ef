/* arena.c — bump allocation in growing blocks (see arena.h). */
#include "core/arena.h"

#include "core/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct kp_arena_block {
    kp_arena_block_t *next;
    size_t size;
    _Alignas(16) unsigned char data[];
};

void kp_arena_init(kp_arena_t *a, size_t limit)
{
    a->head = NULL;
    a->used_total = 0;
    a->limit = limit;
    a->cur = a->first;
    a->cur_left = sizeof(a->first);
}

void kp_arena_free(kp_arena_t *a)
{
    kp_arena_block_t *b = a->head;
    while (b) {
        kp_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    kp_arena_init(a, a->limit);
}

void *kp_arena_alloc(kp_arena_t *a, size_t n)
{
    if (n > SIZE_MAX - 15) return NULL; /* rounding up would wrap to a tiny size */
    n = (n + 15) & ~(size_t)15;
    /* the ceiling holds for every allocation, not only those that need a new block */
    if (n > a->limit || a->used_total > a->limit - n) return NULL;
    if (n > a->cur_left) {
        size_t size = a->head ? a->head->size * 2 : 8192;
        if (size > 1024 * 1024) size = 1024 * 1024;
        if (size < n) size = n;
        kp_arena_block_t *b = kp_xmalloc(sizeof(*b) + size);
        b->size = size;
        b->next = a->head;
        a->head = b;
        a->cur = b->data;
        a->cur_left = size;
    }
    void *p = a->cur;
    a->cur += n;
    a->cur_left -= n;
    a->used_total += n;
    return p;
}

void *kp_arena_calloc(kp_arena_t *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = kp_arena_alloc(a, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

char *kp_arena_strndup(kp_arena_t *a, const char *s, size_t n)
{
    char *d = kp_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
