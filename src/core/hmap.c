/* hmap.c — open-addressing hash map (see hmap.h). */
#include "core/hmap.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

void kp_hmap_init(kp_hmap_t *m)
{
    m->slots = NULL;
    m->cap = m->count = 0;
}

void kp_hmap_free(kp_hmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    kp_hmap_init(m);
}

static kp_hmap_slot_t *find(const kp_hmap_t *m, const void *key, size_t keylen, uint64_t h)
{
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        kp_hmap_slot_t *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->hash == h && s->keylen == keylen && !memcmp(s->key, key, keylen)) return s;
    }
}

void *kp_hmap_get(const kp_hmap_t *m, const void *key, size_t keylen)
{
    kp_hmap_slot_t *s = find(m, key, keylen, hash_bytes(key, keylen));
    return s ? s->value : NULL;
}

static void place(kp_hmap_t *m, kp_hmap_slot_t slot)
{
    size_t i = slot.hash & (m->cap - 1);
    while (m->slots[i].key) i = (i + 1) & (m->cap - 1);
    m->slots[i] = slot;
}

static void grow(kp_hmap_t *m)
{
    kp_hmap_slot_t *old = m->slots;
    size_t old_cap = m->cap;
    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = kp_xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) place(m, old[i]);
    free(old);
}

void *kp_hmap_put(kp_hmap_t *m, const void *key, size_t keylen, void *value)
{
    uint64_t h = hash_bytes(key, keylen);
    kp_hmap_slot_t *s = find(m, key, keylen, h);
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->count + 1) * 4 > m->cap * 3) grow(m);
    kp_hmap_slot_t slot = {kp_xmalloc(keylen + 1), keylen, h, value};
    memcpy(slot.key, key, keylen);
    slot.key[keylen] = 0;
    place(m, slot);
    m->count++;
    return NULL;
}

void *kp_hmap_del(kp_hmap_t *m, const void *key, size_t keylen)
{
    kp_hmap_slot_t *s = find(m, key, keylen, hash_bytes(key, keylen));
    if (!s) return NULL;
    void *value = s->value;
    free(s->key);
    s->key = NULL;
    m->count--;
    /* backward-shift the cluster that follows so lookups never stop early */
    size_t i = (size_t)(s - m->slots);
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].key; j = (j + 1) & (m->cap - 1)) {
        size_t home = m->slots[j].hash & (m->cap - 1);
        /* move j into the hole at i if home is not cyclically within (i, j] */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

int kp_hmap_next(const kp_hmap_t *m, size_t *iter, const char **key, size_t *keylen, void **value)
{
    while (*iter < m->cap) {
        kp_hmap_slot_t *s = &m->slots[(*iter)++];
        if (!s->key) continue;
        if (key) *key = s->key;
        if (keylen) *keylen = s->keylen;
        if (value) *value = s->value;
        return 1;
    }
    return 0;
}
