/*
 * log_scan.h — reading a partition's batches back in order (internal topics: committed
 * offsets, schemas, ACL changes are replayed from their logs on start).
 */
#ifndef KP_LOG_SCAN_H
#define KP_LOG_SCAN_H

#include "storage/log.h"

/* Called for each complete batch at or after `from`, up to the high watermark. Return 0 to
 * continue, nonzero to stop (returned by kp_log_scan). */
typedef int (*kp_batch_fn)(const uint8_t *batch, size_t len, void *arg);

/* 0 when the end was reached, the callback's nonzero value, or -1 on an I/O error. */
int kp_log_scan(kp_log_t *log, int64_t from, kp_batch_fn fn, void *arg);

#endif
