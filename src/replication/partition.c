/* partition.c — the partition layer, standalone policy (see partition.h). */
#include "replication/partition.h"

#include "protocol/errors.h"
#include "storage/retention.h"

int kp_partition_isr_size(kp_partition_t *p)
{
    (void)p;
    return 1; /* standalone: this broker is the only replica */
}

int16_t kp_partition_check_produce(kp_partition_t *p, int16_t acks, int min_insync)
{
    if (acks == -1 && kp_partition_isr_size(p) < min_insync) return KERR_NOT_ENOUGH_REPLICAS;
    return 0;
}

void kp_partition_append(kp_partition_t *p, uint8_t *batch, size_t len, kp_batch_info_t *info,
                         int64_t now_ms, kp_append_result_t *res)
{
    kp_log_append(p->log, batch, len, info, now_ms, res);
}

int kp_partition_wait_committed(kp_partition_t *p, int64_t last_offset, kp_flush_waiter_t *w)
{
    /* standalone: committed = fsynced (durable) or appended (page cache) */
    if (!p->log->cfg.durable) return 0;
    w->offset = last_offset;
    kp_log_wait_flush(p->log, w);
    return 1;
}

void kp_partition_read(kp_partition_t *p, int64_t offset, int64_t max_bytes, int min_one,
                       kp_log_read_t *out)
{
    kp_log_read(p->log, offset, max_bytes, min_one, out);
}

int64_t kp_partition_high_watermark(kp_partition_t *p)
{
    int64_t start, hwm, leo;
    kp_log_offsets(p->log, &start, &hwm, &leo);
    return hwm;
}

void kp_partition_offsets(kp_partition_t *p, int64_t *log_start, int64_t *hwm, int64_t *leo)
{
    kp_log_offsets(p->log, log_start, hwm, leo);
}

int64_t kp_partition_offset_for_time(kp_partition_t *p, int64_t ts, int64_t *ts_out)
{
    return kp_log_offset_for_time(p->log, ts, ts_out);
}

int32_t kp_partition_leader_epoch(kp_partition_t *p)
{
    return p->log->leader_epoch;
}

int kp_partition_delete_records(kp_partition_t *p, int64_t offset, int64_t *low_watermark)
{
    return kp_log_delete_records(p->log, offset, low_watermark);
}

void kp_partition_set_hwm_callback(kp_partition_t *p, kp_log_hwm_fn fn, void *arg)
{
    kp_log_set_hwm_callback(p->log, fn, arg);
}
