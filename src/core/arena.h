/*
 * arena.h — a bump allocator freed in one call (one per request: everything decoded from a
 * request and everything its response needs lives here and dies when the response is sent).
 *
 * The first block is embedded so that small requests allocate nothing beyond the arena
 * itself. A hard ceiling (KP_REQUEST_ARENA_BYTES_MAX) turns a runaway request into an error
 * (NULL) instead of exhausting memory; callers treat NULL as a malformed request.
 */
#ifndef KP_ARENA_H
#define KP_ARENA_H

#include <stddef.h>

typedef struct kp_arena_block kp_arena_block_t;

typedef struct kp_arena {
    kp_arena_block_t *head;
    size_t used_total;
    size_t limit;
    unsigned char *cur;
    size_t cur_left;
    _Alignas(16) unsigned char first[2048];
} kp_arena_t;

void kp_arena_init(kp_arena_t *a, size_t limit);
/* Frees every block; the arena can be reused after kp_arena_init. */
void kp_arena_free(kp_arena_t *a);
/* 16-byte aligned, uninitialised. NULL only when the ceiling would be crossed. */
void *kp_arena_alloc(kp_arena_t *a, size_t n);
/* Zeroed; n*size overflow returns NULL. */
void *kp_arena_calloc(kp_arena_t *a, size_t n, size_t size);
char *kp_arena_strndup(kp_arena_t *a, const char *s, size_t n);

#endif
