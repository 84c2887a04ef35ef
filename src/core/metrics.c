/* metrics.c — Prometheus rendering of the counters in metrics.h. */
#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>

kp_metrics_t kp_metrics;

static const double bucket_le_ms[KP_HIST_BUCKETS - 1] = {0.1, 0.25, 0.5, 1,   2.5,  5,   10,
                                                         25,  50,   100, 250, 1000, 5000};
static kp_metrics_gauge_fn gauge_fn;
static void *gauge_arg;
static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    kp_metrics_gauge_fn fn;
    void *arg;
} sources[KP_METRICS_SOURCES_MAX];

void kp_hist_observe_us(kp_hist_t *h, int64_t us)
{
    int i = 0;
    while (i < KP_HIST_BUCKETS - 1 && (double)us > bucket_le_ms[i] * 1000.0) i++;
    kp_metric_add(&h->buckets[i], 1);
    kp_metric_add(&h->count, 1);
    kp_metric_add(&h->sum_us, us);
}

void kp_metrics_set_gauges(kp_metrics_gauge_fn fn, void *arg)
{
    gauge_fn = fn;
    gauge_arg = arg;
}

int kp_metrics_add_source(kp_metrics_gauge_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&sources_lock);
    for (int i = 0; i < KP_METRICS_SOURCES_MAX && rc < 0; i++) {
        if (sources[i].fn) continue;
        sources[i].fn = fn;
        sources[i].arg = arg;
        rc = 0;
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

void kp_metrics_remove_source(kp_metrics_gauge_fn fn, void *arg)
{
    pthread_mutex_lock(&sources_lock);
    for (int i = 0; i < KP_METRICS_SOURCES_MAX; i++)
        if (sources[i].fn == fn && sources[i].arg == arg) sources[i].fn = NULL;
    pthread_mutex_unlock(&sources_lock);
}

void kp_metrics_render_hist(kp_buf_t *out, const char *name, const char *labels, kp_hist_t *h)
{
    long long cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < KP_HIST_BUCKETS; i++) {
        cum += atomic_load(&h->buckets[i]);
        if (i < KP_HIST_BUCKETS - 1)
            kp_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %lld\n", name, labels, sep,
                           bucket_le_ms[i] / 1000.0, cum);
        else
            kp_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", name, labels, sep, cum);
    }
    kp_buf_appendf(out, "%s_sum{%s} %.6f\n", name, labels, (double)atomic_load(&h->sum_us) / 1e6);
    kp_buf_appendf(out, "%s_count{%s} %lld\n", name, labels, (long long)atomic_load(&h->count));
}

void kp_metrics_append_label(kp_buf_t *out, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = s[i] == '\\'   ? "\\\\"
                          : s[i] == '"'  ? "\\\""
                          : s[i] == '\n' ? "\\n"
                                         : NULL;
        if (!esc) continue;
        kp_buf_append(out, s + from, i - from);
        kp_buf_append(out, esc, 2);
        from = i + 1;
    }
    kp_buf_append(out, s + from, len - from);
}

#define COUNTER(name, help, field)                                                                 \
    kp_buf_appendf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %lld\n",      \
                   (long long)atomic_load(&kp_metrics.field))
#define GAUGE(name, help, field)                                                                   \
    kp_buf_appendf(out, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %lld\n",        \
                   (long long)atomic_load(&kp_metrics.field))

void kp_metrics_render(kp_buf_t *out, const char *(*api_name)(int key))
{
    GAUGE("kpool_connections", "Open client connections.", connections_open);
    COUNTER("kpool_connections_accepted_total", "Connections accepted.", connections_total);
    COUNTER("kpool_connections_rejected_total",
            "Connections refused (max.connections, max.connections.per.ip).", connections_rejected);
    COUNTER("kpool_connections_expired_total",
            "Connections closed idle (connections.max.idle.ms) or unfinished "
            "(connections.setup.timeout.ms).",
            connections_expired);
    COUNTER("kpool_network_bytes_in_total", "Bytes received from clients.", bytes_in);
    COUNTER("kpool_network_bytes_out_total", "Bytes sent to clients.", bytes_out);
    COUNTER("kpool_produce_records_total", "Records appended by Produce.", produce_records);
    COUNTER("kpool_produce_bytes_total", "Record batch bytes appended by Produce.", produce_bytes);
    COUNTER("kpool_produce_partition_errors_total", "Produce partitions answered with an error.",
            produce_errors);
    COUNTER("kpool_produce_recompressed_batches_total",
            "Produced batches re-encoded with the topic's compression.type.", produce_recompressed);
    COUNTER("kpool_produce_upconverted_total",
            "Produce v0-2 message sets (magic 0/1) converted to record batches v2.",
            produce_upconverted);
    COUNTER("kpool_fetch_downconverted_total",
            "Fetch v0-3 partition reads converted to message format v0/v1.", fetch_downconverted);
    COUNTER("kpool_fetch_bytes_total", "Record bytes returned by Fetch.", fetch_bytes);
    COUNTER("kpool_malformed_requests_total", "Connections closed for malformed requests.",
            malformed_requests);
    COUNTER("kpool_log_flushes_total", "fsync calls by the group-commit flusher.", flushes);
    COUNTER("kpool_log_interval_flushes_total",
            "Page-cache partition fsyncs queued by flush.messages or flush.ms.",
            flushes_by_interval);
    COUNTER("kpool_log_flush_passes_total",
            "flush.ms passes (one per log.flush.scheduler.interval.ms).", flush_passes);
    COUNTER("kpool_log_flush_pass_partitions_total",
            "Partitions visited by flush.ms passes: only those with unflushed data and a "
            "finite flush.ms, not every partition.",
            flush_pass_partitions);
    kp_buf_appendf(out, "# HELP kpool_log_flush_seconds Latency of one group-commit fsync.\n"
                        "# TYPE kpool_log_flush_seconds histogram\n");
    kp_metrics_render_hist(out, "kpool_log_flush_seconds", "", &kp_metrics.flush_latency);

    kp_buf_appendf(out, "# HELP kpool_requests_total Requests handled, by API.\n"
                        "# TYPE kpool_requests_total counter\n");
    for (int k = 0; k < KP_METRICS_API_MAX; k++) {
        long long n = atomic_load(&kp_metrics.requests[k]);
        if (n) kp_buf_appendf(out, "kpool_requests_total{api=\"%s\"} %lld\n", api_name(k), n);
    }
    kp_buf_appendf(out, "# HELP kpool_request_seconds Request latency from read to response "
                        "queued, by API.\n# TYPE kpool_request_seconds histogram\n");
    for (int k = 0; k < KP_METRICS_API_MAX; k++) {
        if (!atomic_load(&kp_metrics.request_latency[k].count)) continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "api=\"%s\"", api_name(k));
        kp_metrics_render_hist(out, "kpool_request_seconds", labels,
                               &kp_metrics.request_latency[k]);
    }
    if (gauge_fn) gauge_fn(out, gauge_arg);
    pthread_mutex_lock(&sources_lock);
    for (int i = 0; i < KP_METRICS_SOURCES_MAX; i++)
        if (sources[i].fn) sources[i].fn(out, sources[i].arg);
    pthread_mutex_unlock(&sources_lock);
}
