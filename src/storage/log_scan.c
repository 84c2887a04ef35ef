/* log_scan.c — sequential batch reads through kp_log_read (see log_scan.h). */
#include "storage/log_scan.h"

#include "core/buf.h"
#include "core/fs.h"

#define SCAN_READ_BYTES (1 << 20)

int kp_log_scan(kp_log_t *log, int64_t from, kp_batch_fn fn, void *arg)
{
    kp_buf_t buf;
    kp_buf_init(&buf);
    int64_t offset = from;
    int rc = 0;
    for (;;) {
        kp_log_read_t rd;
        kp_log_read(log, offset, SCAN_READ_BYTES, 1, &rd);
        if (rd.error == KP_READ_OUT_OF_RANGE && offset < rd.log_start_offset) {
            offset = rd.log_start_offset;
            continue;
        }
        if (rd.error) {
            rc = -1;
            break;
        }
        if (rd.len == 0) break;
        buf.len = 0;
        uint8_t *p = kp_buf_extend(&buf, (size_t)rd.len);
        int io = kp_fs_pread_all(rd.seg->fd, p, (size_t)rd.len, rd.pos);
        kp_segment_put(rd.seg);
        if (io < 0) {
            rc = -1;
            break;
        }
        size_t at = 0, progressed = 0;
        while (at + KP_BATCH_HEADER_BYTES <= buf.len) {
            int64_t total = kp_batch_total_size(p + at, buf.len - at);
            if (total < KP_BATCH_HEADER_BYTES || (size_t)total > buf.len - at) break;
            kp_batch_info_t b;
            kp_batch_parse_header(p + at, &b);
            if (kp_batch_last_offset(&b) >= offset) {
                int r = fn(p + at, (size_t)total, arg);
                if (r) {
                    rc = r;
                    goto out;
                }
            }
            offset = kp_batch_last_offset(&b) + 1;
            at += (size_t)total;
            progressed = 1;
        }
        if (!progressed) {
            rc = -1; /* a batch larger than the read: cannot happen with min_one reads */
            break;
        }
    }
out:
    kp_buf_free(&buf);
    return rc;
}
