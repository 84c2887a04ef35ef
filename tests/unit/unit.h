/*
 * unit.h — shared helpers for the cmocka unit tests (one test_<module>.c per module).
 *
 *   - cmocka includes in the order cmocka needs them;
 *   - ut_rand_*: a seeded xorshift generator, so a failing test fails the same way every run;
 *   - ut_batch_build: a valid Kafka record batch v2 (magic 2, uncompressed) with N records,
 *     each with key, value and headers, and a correct CRC-32C; ut_batch_fix_crc re-signs a
 *     batch after a test has damaged it on purpose, so validation reaches the deeper checks;
 *   - ut_tmpdir_*: a private directory per test (mkdtemp), removed afterwards.
 *
 * Everything is static: each test binary includes this header once.
 */
#ifndef KP_UNIT_H
#define KP_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "protocol/wire.h"
#include "storage/batch.h"
#include "core/fs.h"

/* ---- deterministic randomness ---- */

typedef struct ut_rand {
    uint64_t s;
} ut_rand_t;

static inline void ut_rand_seed(ut_rand_t *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t ut_rand_u64(ut_rand_t *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* Uniform in [0, n) for n > 0 (the modulo bias is irrelevant for tests). */
static inline uint64_t ut_rand_below(ut_rand_t *r, uint64_t n)
{
    return ut_rand_u64(r) % n;
}

static inline void ut_rand_fill(ut_rand_t *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) p[i] = (uint8_t)ut_rand_u64(r);
}

/* ---- record batch v2 builder ---- */

typedef struct ut_batch_opts {
    int64_t base_offset;
    int32_t leader_epoch;
    int32_t nrecords;
    int64_t base_timestamp; /* record i has base_timestamp + i */
    int64_t producer_id;    /* -1: not idempotent */
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t value_len; /* bytes of each value */
    int32_t nheaders;  /* headers per record */
    int null_keys;     /* 1: every key is null */
    int16_t attributes;
} ut_batch_opts_t;

/* A small idempotence-free batch of n records at timestamp ts. */
static inline ut_batch_opts_t ut_batch_defaults(int32_t nrecords, int64_t ts)
{
    ut_batch_opts_t o;
    memset(&o, 0, sizeof(o));
    o.leader_epoch = -1;
    o.nrecords = nrecords;
    o.base_timestamp = ts;
    o.producer_id = -1;
    o.producer_epoch = -1;
    o.base_sequence = -1;
    o.value_len = 10;
    o.nheaders = 1;
    return o;
}

static inline void ut_st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ut_ld32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void ut_st64(uint8_t *p, uint64_t v)
{
    ut_st32(p, (uint32_t)(v >> 32));
    ut_st32(p + 4, (uint32_t)v);
}

/* Recomputes the CRC-32C of a batch of len bytes (after a test edited it). */
static inline void ut_batch_fix_crc(uint8_t *p, size_t len)
{
    ut_st32(p + 17, kp_crc32c(0, p + 21, len - 21));
}

/* Appends the body of record i (without its length prefix) to w. */
static inline void ut_record_body(kp_wr_t *w, const ut_batch_opts_t *o, int32_t i)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "key-%d", (int)i);
    kp_wr_i8(w, 0);      /* attributes */
    kp_wr_varlong(w, i); /* timestampDelta */
    kp_wr_varint(w, i);  /* offsetDelta */
    if (o->null_keys) {
        kp_wr_varint(w, -1);
    } else {
        kp_wr_varint(w, klen);
        kp_wr_raw(w, key, (size_t)klen);
    }
    kp_wr_varint(w, o->value_len);
    for (int32_t k = 0; k < o->value_len; k++) kp_wr_i8(w, (int8_t)('a' + (i + k) % 26));
    kp_wr_varint(w, o->nheaders);
    for (int32_t h = 0; h < o->nheaders; h++) {
        char hk[16], hv[16];
        int hkl = snprintf(hk, sizeof(hk), "h%d", (int)h);
        int hvl = snprintf(hv, sizeof(hv), "v%d-%d", (int)h, (int)i);
        kp_wr_varint(w, hkl);
        kp_wr_raw(w, hk, (size_t)hkl);
        kp_wr_varint(w, hvl);
        kp_wr_raw(w, hv, (size_t)hvl);
    }
}

/* Builds a valid batch into out (replacing its contents); returns its length. */
static inline size_t ut_batch_build(kp_buf_t *out, const ut_batch_opts_t *o)
{
    kp_wr_t w, rec;
    kp_wr_init(&w);
    kp_wr_i64(&w, o->base_offset);
    kp_wr_i32(&w, 0); /* batchLength, patched */
    kp_wr_i32(&w, o->leader_epoch);
    kp_wr_i8(&w, 2);  /* magic */
    kp_wr_u32(&w, 0); /* crc, patched */
    kp_wr_i16(&w, o->attributes);
    kp_wr_i32(&w, o->nrecords > 0 ? o->nrecords - 1 : 0);
    kp_wr_i64(&w, o->base_timestamp);
    kp_wr_i64(&w, o->base_timestamp + (o->nrecords > 0 ? o->nrecords - 1 : 0));
    kp_wr_i64(&w, o->producer_id);
    kp_wr_i16(&w, o->producer_epoch);
    kp_wr_i32(&w, o->base_sequence);
    kp_wr_i32(&w, o->nrecords);
    for (int32_t i = 0; i < o->nrecords; i++) {
        kp_wr_init(&rec);
        ut_record_body(&rec, o, i);
        kp_wr_varint(&w, (int32_t)rec.buf.len);
        kp_wr_raw(&w, rec.buf.data, rec.buf.len);
        kp_wr_free(&rec);
    }
    size_t len = w.buf.len;
    kp_wr_patch_i32(&w, 8, (int32_t)(len - KP_BATCH_LOG_OVERHEAD));
    ut_batch_fix_crc(w.buf.data, len);
    kp_buf_reset(out);
    kp_buf_append(out, w.buf.data, len);
    kp_wr_free(&w);
    return len;
}

/* Asserts that p[0..len) is the batch o describes, stored at base_offset with leader epoch
 * epoch (the two fields the log patches). */
static inline void ut_batch_expect(const uint8_t *p, size_t len, const ut_batch_opts_t *o,
                                   int64_t base_offset, int32_t epoch)
{
    ut_batch_opts_t want = *o;
    want.base_offset = base_offset;
    want.leader_epoch = epoch;
    kp_buf_t b;
    kp_buf_init(&b);
    size_t n = ut_batch_build(&b, &want);
    assert_int_equal(len, n);
    assert_memory_equal(p, b.data, n);
    kp_buf_free(&b);
}

/* ---- temporary directories ---- */

/* Creates a fresh directory (on tmpfs when /dev/shm is usable: fsync is then cheap). */
static inline void ut_tmpdir_make(char *path, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, cap, "%s/kpool-unit-XXXXXX", base);
    assert_non_null(mkdtemp(path));
}

static inline void ut_tmpdir_remove(const char *path)
{
    assert_int_equal(kp_fs_remove_tree(path), 0);
}

/* Size of a file in bytes (-1 when missing). */
static inline int64_t ut_file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

#endif
