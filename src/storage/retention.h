/*
 * retention.h — time/size retention and DeleteRecords for a partition log (retention.c).
 */
#ifndef KP_RETENTION_H
#define KP_RETENTION_H

#include "storage/log.h"

typedef struct kp_retention {
    int64_t retention_ms;    /* -1: unlimited */
    int64_t retention_bytes; /* -1: unlimited */
} kp_retention_t;

#define KP_RETENTION_OUT_OF_RANGE 1
#define KP_RETENTION_STORAGE      2

/* Deletes whole segments beyond the limits; returns how many. Thread-safe. */
int kp_log_enforce_retention(kp_log_t *log, const kp_retention_t *r, int64_t now_ms);
/* DeleteRecords: everything below offset (-1: the high watermark) becomes unreadable.
 * 0, or KP_RETENTION_OUT_OF_RANGE (beyond the high watermark) / KP_RETENTION_STORAGE; the
 * resulting log start offset in *low_watermark either way. */
int kp_log_delete_records(kp_log_t *log, int64_t offset, int64_t *low_watermark);
int64_t kp_log_size_bytes(kp_log_t *log);

#endif
