/*
 * hmap.h — a hash map from byte-string keys to pointers (open addressing, linear probing,
 * tombstone-free deletion by backward shift). Keys are copied; values are the caller's.
 * Not thread-safe: the owner's lock or thread covers it.
 */
#ifndef KP_HMAP_H
#define KP_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kp_hmap_slot {
    char *key; /* NULL: empty */
    size_t keylen;
    uint64_t hash;
    void *value;
} kp_hmap_slot_t;

typedef struct kp_hmap {
    kp_hmap_slot_t *slots;
    size_t cap, count;
} kp_hmap_t;

void kp_hmap_init(kp_hmap_t *m);
/* Frees the map's key copies (not the values). */
void kp_hmap_free(kp_hmap_t *m);
void *kp_hmap_get(const kp_hmap_t *m, const void *key, size_t keylen);
/* Inserts or replaces; returns the previous value (NULL if none). */
void *kp_hmap_put(kp_hmap_t *m, const void *key, size_t keylen, void *value);
/* Removes; returns the value that was there (NULL if none). */
void *kp_hmap_del(kp_hmap_t *m, const void *key, size_t keylen);

/* Iteration: for (size_t i = 0; kp_hmap_next(m, &i, &k, &kl, &v);) — no inserts/deletes
 * while iterating. */
int kp_hmap_next(const kp_hmap_t *m, size_t *iter, const char **key, size_t *keylen, void **value);

static inline size_t kp_hmap_count(const kp_hmap_t *m)
{
    return m->count;
}

#endif
