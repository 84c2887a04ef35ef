/*
 * bench_hist.c — the latency histogram of `kpool bench`, in the manner of HdrHistogram: values
 * below 2^SUB_BITS get a bucket each; above, every power of two [2^k, 2^(k+1)) is split into
 * 2^SUB_BITS equal buckets, so the relative error is below 2^-SUB_BITS whatever the magnitude.
 * The counters are one fixed array (about 34 KiB); recording is a few instructions and never
 * allocates, so it can sit on the per-message path.
 */
#include "cli/bench.h"

#include <string.h>

#define SUB_COUNT (1 << KP_BENCH_HIST_SUB_BITS)
#define VALUE_MAX ((INT64_C(1) << KP_BENCH_HIST_MAX_BITS) - 1)

void kp_bench_hist_reset(kp_bench_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min_us = INT64_MAX;
}

static int bucket_of(int64_t v)
{
    if (v < SUB_COUNT) return (int)v;
    int k = 63 - __builtin_clzll((unsigned long long)v); /* k >= SUB_BITS */
    int shift = k - KP_BENCH_HIST_SUB_BITS;
    int sub = (int)(v >> shift) - SUB_COUNT; /* 0 .. SUB_COUNT-1 */
    return ((shift + 1) << KP_BENCH_HIST_SUB_BITS) + sub;
}

/* Lowest value of bucket b and the bucket's width. */
static void bucket_range(int b, int64_t *low, int64_t *width)
{
    if (b < SUB_COUNT) {
        *low = b;
        *width = 1;
        return;
    }
    int shift = (b >> KP_BENCH_HIST_SUB_BITS) - 1;
    int sub = b & (SUB_COUNT - 1);
    *low = (int64_t)(SUB_COUNT + sub) << shift;
    *width = INT64_C(1) << shift;
}

void kp_bench_hist_record(kp_bench_hist_t *h, int64_t value_us)
{
    if (value_us < 0) value_us = 0;
    if (value_us < h->min_us) h->min_us = value_us;
    if (value_us > h->max_us) h->max_us = value_us;
    h->sum_us += (double)value_us;
    h->total++;
    h->counts[bucket_of(value_us > VALUE_MAX ? VALUE_MAX : value_us)]++;
}

int64_t kp_bench_hist_percentile(const kp_bench_hist_t *h, double pct)
{
    if (h->total == 0) return 0;
    if (pct <= 0) return h->min_us;
    if (pct >= 100) return h->max_us;
    /* rank of the sample at pct, 1-based: the smallest value with at least pct% at or below */
    uint64_t rank = (uint64_t)((pct / 100.0) * (double)h->total + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < KP_BENCH_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            int64_t low, width;
            bucket_range(b, &low, &width);
            int64_t v = low + (width - 1) / 2;
            if (v < h->min_us) v = h->min_us;
            if (v > h->max_us) v = h->max_us;
            return v;
        }
    }
    return h->max_us;
}
