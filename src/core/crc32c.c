/*
 * crc32c.c — CRC-32C with a hardware path (SSE4.2) and a portable table path.
 *
 * The hardware path runs three independent crc32q chains over adjacent blocks and merges
 * them with a multiply by x^(8*block) mod P (precomputed per block length), so the three
 * cycles of crc32q latency are overlapped: ~3x the single-chain throughput on large batches.
 */
#include "core/crc32c.h"

#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int use_hw = -1;

static void table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][n] = c;
        }
    }
}

uint32_t kp_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
/* GF(2) helpers to shift a crc forward by n zero bytes: crc * x^(8n) mod P. */
static uint32_t gf2_multiply(uint32_t a, uint32_t b)
{
    /* bit-reflected multiply modulo POLY */
    uint32_t prod = 0;
    for (int i = 0; i < 32; i++) {
        if (a & 0x80000000u) prod ^= b;
        a <<= 1;
        b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
    }
    return prod;
}

static uint32_t x_pow_8n(size_t n)
{
    /* x^(8n) mod P in reflected form; x^0 is 0x80000000. */
    uint32_t result = 0x80000000u, base = 0x00800000u; /* x^8 */
    while (n) {
        if (n & 1) result = gf2_multiply(result, base);
        base = gf2_multiply(base, base);
        n >>= 1;
    }
    return result;
}

#define BLOCK 4096                   /* bytes per chain per round: three chains cover 12 KiB */
static uint32_t shift_block;         /* x^(8*BLOCK) */
static uint32_t shift_table[4][256]; /* crc * x^(8*BLOCK) split by byte */

static void hw_init(void)
{
    shift_block = x_pow_8n(BLOCK);
    for (int k = 0; k < 4; k++)
        for (uint32_t n = 0; n < 256; n++)
            shift_table[k][n] = gf2_multiply(n << (8 * k), shift_block);
}

static inline uint32_t shift_crc(uint32_t crc)
{
    return shift_table[0][crc & 0xff] ^ shift_table[1][(crc >> 8) & 0xff] ^
           shift_table[2][(crc >> 16) & 0xff] ^ shift_table[3][crc >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c0 = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c0 = _mm_crc32_u8((uint32_t)c0, *p++);
        len--;
    }
    while (len >= 3 * BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *p1 = p + BLOCK, *p2 = p + 2 * BLOCK;
        for (size_t i = 0; i < BLOCK; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p1 + i, 8);
            memcpy(&w2, p2 + i, 8);
            c0 = _mm_crc32_u64(c0, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c0 = shift_crc((uint32_t)c0) ^ (uint32_t)c1;
        c0 = shift_crc((uint32_t)c0) ^ (uint32_t)c2;
        p += 3 * BLOCK;
        len -= 3 * BLOCK;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c0 = _mm_crc32_u64(c0, w);
        p += 8;
        len -= 8;
    }
    while (len--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
    return ~(uint32_t)c0;
}
#endif

static void init(void)
{
    table_init();
    use_hw = 0;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) {
        hw_init();
        use_hw = 1;
    }
#endif
}

int kp_crc32c_hw(void)
{
    if (use_hw < 0) init();
    return use_hw;
}

uint32_t kp_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (use_hw < 0) init();
#if defined(__x86_64__)
    if (use_hw) return crc_hw(crc, buf, len);
#endif
    return kp_crc32c_sw(crc, buf, len);
}
