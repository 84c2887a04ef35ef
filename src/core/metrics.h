/*
 * metrics.h — process-wide counters and histograms, rendered in Prometheus text format.
 *
 * Updates are relaxed atomic adds (no locks on the data path). Per-API request counters and
 * latency histograms are indexed by ApiKey. Gauges that are cheaper to compute on scrape
 * (partitions, topics) are supplied by a callback registered by the broker.
 */
#ifndef KP_METRICS_H
#define KP_METRICS_H

#include "core/buf.h"

#include <stdatomic.h>
#include <stdint.h>

#define KP_METRICS_API_MAX 128
#define KP_HIST_BUCKETS    14

typedef struct kp_hist {
    atomic_llong buckets[KP_HIST_BUCKETS]; /* cumulative on render, per bucket here */
    atomic_llong count;
    atomic_llong sum_us;
} kp_hist_t;

typedef struct kp_metrics {
    atomic_llong connections_open;
    atomic_llong connections_total;
    atomic_llong connections_rejected;
    atomic_llong connections_expired;
    atomic_llong bytes_in;
    atomic_llong bytes_out;
    atomic_llong requests[KP_METRICS_API_MAX];
    kp_hist_t request_latency[KP_METRICS_API_MAX];
    atomic_llong produce_records;
    atomic_llong produce_bytes;
    atomic_llong produce_errors;
    atomic_llong produce_recompressed; /* batches stored with the topic's compression.type */
    atomic_llong produce_upconverted;  /* Produce v0-2 message sets converted to v2 batches */
    atomic_llong fetch_downconverted;  /* Fetch v0-3 partitions converted to magic 0/1 */
    atomic_llong fetch_bytes;
    atomic_llong flushes;
    atomic_llong flushes_by_interval;   /* page-cache fsyncs asked by flush.messages/flush.ms */
    atomic_llong flush_passes;          /* flush.ms passes (log.flush.scheduler.interval.ms) */
    atomic_llong flush_pass_partitions; /* partitions those passes visited */
    kp_hist_t flush_latency;
    atomic_llong malformed_requests;
} kp_metrics_t;

extern kp_metrics_t kp_metrics;

static inline void kp_metric_add(atomic_llong *m, long long v)
{
    atomic_fetch_add_explicit(m, v, memory_order_relaxed);
}

void kp_hist_observe_us(kp_hist_t *h, int64_t us);
/* Appends h as the _bucket/_sum/_count lines of histogram `name` with labels (a label list
 * without braces, "" for none). The # HELP/# TYPE lines are the caller's. */
void kp_metrics_render_hist(kp_buf_t *out, const char *name, const char *labels, kp_hist_t *h);
/* Appends s[0..len) as a label value (without the quotes): backslash, double quote and
 * newline escaped as the exposition format asks. */
void kp_metrics_append_label(kp_buf_t *out, const char *s, size_t len);

/* Gauges computed at render time. */
typedef void (*kp_metrics_gauge_fn)(kp_buf_t *out, void *arg);
void kp_metrics_set_gauges(kp_metrics_gauge_fn fn, void *arg);
/* More gauges from other subsystems (the control plane's backups), rendered after the
 * broker's. At most KP_METRICS_SOURCES_MAX; remove waits for a render in progress, so arg
 * may be freed once it returns. Thread-safe. */
#define KP_METRICS_SOURCES_MAX 8
int kp_metrics_add_source(kp_metrics_gauge_fn fn, void *arg);
void kp_metrics_remove_source(kp_metrics_gauge_fn fn, void *arg);
/* Renders everything in Prometheus text exposition format. api_name(key) names ApiKeys. */
void kp_metrics_render(kp_buf_t *out, const char *(*api_name)(int key));

#endif
