/* offset_map.c — open-addressing key-hash → offset map and MurmurHash3 x64/128. */
#include "storage/offset_map.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

kp_key_hash_t kp_key_hash(const void *key, size_t len)
{
    const uint8_t *data = key;
    size_t nblocks = len / 16;
    uint64_t h1 = 0x9747b28c, h2 = 0x9747b28c;
    const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1, k2;
        memcpy(&k1, data + i * 16, 8);
        memcpy(&k2, data + i * 16 + 8, 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    const uint8_t *tail = data + nblocks * 16;
    uint64_t k1 = 0, k2 = 0;
    switch (len & 15) {
    case 15:
        k2 ^= (uint64_t)tail[14] << 48; /* fall through */
    case 14:
        k2 ^= (uint64_t)tail[13] << 40; /* fall through */
    case 13:
        k2 ^= (uint64_t)tail[12] << 32; /* fall through */
    case 12:
        k2 ^= (uint64_t)tail[11] << 24; /* fall through */
    case 11:
        k2 ^= (uint64_t)tail[10] << 16; /* fall through */
    case 10:
        k2 ^= (uint64_t)tail[9] << 8; /* fall through */
    case 9:
        k2 ^= (uint64_t)tail[8];
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        /* fall through */
    case 8:
        k1 ^= (uint64_t)tail[7] << 56; /* fall through */
    case 7:
        k1 ^= (uint64_t)tail[6] << 48; /* fall through */
    case 6:
        k1 ^= (uint64_t)tail[5] << 40; /* fall through */
    case 5:
        k1 ^= (uint64_t)tail[4] << 32; /* fall through */
    case 4:
        k1 ^= (uint64_t)tail[3] << 24; /* fall through */
    case 3:
        k1 ^= (uint64_t)tail[2] << 16; /* fall through */
    case 2:
        k1 ^= (uint64_t)tail[1] << 8; /* fall through */
    case 1:
        k1 ^= (uint64_t)tail[0];
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    if (h1 == 0 && h2 == 0) h1 = 1; /* (0,0) marks empty slots */
    return (kp_key_hash_t){h1, h2};
}

void kp_offset_map_init(kp_offset_map_t *m, size_t bytes)
{
    size_t slots = bytes / (sizeof(kp_key_hash_t) + sizeof(int64_t));
    if (slots < 1024) slots = 1024;
    m->slots = slots;
    m->limit = slots / 10 * 9;
    m->used = 0;
    m->keys = kp_xcalloc(slots, sizeof(*m->keys));
    m->offsets = kp_xmalloc(slots * sizeof(*m->offsets));
}

void kp_offset_map_free(kp_offset_map_t *m)
{
    free(m->keys);
    free(m->offsets);
    memset(m, 0, sizeof(*m));
}

void kp_offset_map_clear(kp_offset_map_t *m)
{
    memset(m->keys, 0, m->slots * sizeof(*m->keys));
    m->used = 0;
}

static size_t probe(const kp_offset_map_t *m, kp_key_hash_t k)
{
    size_t i = (size_t)(k.h1 % m->slots);
    for (;;) {
        const kp_key_hash_t *s = &m->keys[i];
        if ((s->h1 == 0 && s->h2 == 0) || (s->h1 == k.h1 && s->h2 == k.h2)) return i;
        i = i + 1 == m->slots ? 0 : i + 1;
    }
}

int kp_offset_map_put(kp_offset_map_t *m, kp_key_hash_t k, int64_t offset)
{
    size_t i = probe(m, k);
    kp_key_hash_t *s = &m->keys[i];
    if (s->h1 == 0 && s->h2 == 0) {
        if (m->used >= m->limit) return -1;
        *s = k;
        m->offsets[i] = offset;
        m->used++;
        return 0;
    }
    if (offset > m->offsets[i]) m->offsets[i] = offset;
    return 0;
}

int64_t kp_offset_map_get(const kp_offset_map_t *m, kp_key_hash_t k)
{
    size_t i = probe(m, k);
    const kp_key_hash_t *s = &m->keys[i];
    return (s->h1 == 0 && s->h2 == 0) ? -1 : m->offsets[i];
}
