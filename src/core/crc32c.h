/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of Kafka record batches v2.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at start), else a
 * slicing-by-8 table. Both produce identical results (tested against the RFC 3720 vectors).
 */
#ifndef KP_CRC32C_H
#define KP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc of buf, continuing from crc (pass 0 to start). */
uint32_t kp_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t kp_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* 1 when the hardware path is in use. */
int kp_crc32c_hw(void);

#endif
