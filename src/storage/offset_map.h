/*
 * offset_map.h — the log cleaner's fixed-size map from record key to its latest offset.
 *
 * Keys are stored as 128-bit hashes (MurmurHash3 x64/128), as Kafka's cleaner stores MD5
 * digests: the memory is fixed by log.cleaner.dedupe.buffer.size no matter how long the keys
 * are, and a collision (2^-64 per pair) is accepted the same way Kafka accepts it. The map
 * refuses inserts past 90% load, which tells the cleaner to stop its dirty scan there.
 */
#ifndef KP_OFFSET_MAP_H
#define KP_OFFSET_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kp_key_hash {
    uint64_t h1, h2;
} kp_key_hash_t;

typedef struct kp_offset_map {
    kp_key_hash_t *keys; /* h1 == 0 && h2 == 0 marks an empty slot */
    int64_t *offsets;
    size_t slots, used, limit;
} kp_offset_map_t;

kp_key_hash_t kp_key_hash(const void *key, size_t len);

/* Sizes the map to fit in `bytes` (at least 1024 slots). */
void kp_offset_map_init(kp_offset_map_t *m, size_t bytes);
void kp_offset_map_free(kp_offset_map_t *m);
void kp_offset_map_clear(kp_offset_map_t *m);
/* Records offset for the key (keeping the larger if present). -1 when the map is full. */
int kp_offset_map_put(kp_offset_map_t *m, kp_key_hash_t k, int64_t offset);
/* The latest offset of the key, or -1. */
int64_t kp_offset_map_get(const kp_offset_map_t *m, kp_key_hash_t k);

#endif
