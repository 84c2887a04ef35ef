/*
 * pool_metrics.h — the console's view of each pool over time, read from the brokers' own
 * Prometheus text (/metrics on each broker's admin.listener: the Pool's spec.metricsUrls,
 * one per broker, or spec.metricsUrl for a pool of one; `kpool up` sets both).
 *
 * One sampler thread per control plane scrapes every broker of every Pool that has metrics
 * URLs each interval (control.console.metrics.interval.ms, default 10 s) and keeps the last
 * KP_POOL_METRICS_SAMPLES samples per pool in a ring (one hour at the default), in memory
 * only, the brokers' figures added up: request rate and latency (mean and 99th percentile,
 * from the request histograms), bytes in and out, records produced, the log directories'
 * use; each broker's latest two scrapes (its own rates, disk and node id); and the latest
 * size and produce rate of each partition (kpool_partition_size_bytes — the figures
 * DescribeLogDirs answers — and kpool_partition_end_offset, the largest a replica reports).
 * A pool without metrics URLs has no history.
 *
 * The API reads it from any thread (docs/api.md, "Console").
 */
#ifndef KP_POOL_METRICS_H
#define KP_POOL_METRICS_H

#include "control/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KP_POOL_METRICS_SAMPLES 360
/* A /metrics page larger than this is not read (a broker's is some kB per 100 partitions). */
#define KP_POOL_METRICS_PAGE_MAX (16 * 1024 * 1024)
/* Brokers' metrics URLs scraped per pool (spec.metricsUrls; more are ignored): bounds the
 * sampler's work per interval (each scrape may take SCRAPE_TIMEOUT_MS). */
#define KP_POOL_METRICS_BROKERS_MAX 16

/* Starts the sampler (one per process; a second start fails). 0, or -1 with err. */
int kp_pool_metrics_start(kp_store_t *store, int64_t interval_ms, char *err, size_t errlen);
/* Stops and forgets everything; safe when not started. */
void kp_pool_metrics_stop(void);

/* {"intervalMs", "metricsUrl" (the first broker's), "metricsUrls", "lastScrapeTime",
 * "lastError" (the first failing broker's), "samples": [{time, requestsPerSecond,
 * latencyMeanMs, latencyP99Ms, bytesInPerSecond, bytesOutPerSecond, recordsInPerSecond,
 * diskUsedBytes}] (every broker added up; no rates across a round where the brokers that
 * answered changed), "brokers": [{metricsUrl, nodeId, lastError, diskUsedBytes,
 * diskFreeBytes, diskCapacityBytes, requestsPerSecond, bytesInPerSecond, bytesOutPerSecond,
 * recordsInPerSecond}]} for pool, oldest sample first (a new reference); NULL when the
 * sampler does not run or the pool has no metrics URL. */
json_t *kp_pool_metrics_history(const char *pool);

/* Adds the latest scrape's "sizeBytes" to each element of partitions (an array of objects
 * with "partition") of topic in pool, and "sizeBytes", "recordsPerSecond" (from the end
 * offsets) and the rates of the brokers' kpool_topic_*_total counters between the last two
 * scrapes ("produceRecordsPerSecond", "consumeRecordsPerSecond", "produceBytesPerSecond",
 * "consumeBytesPerSecond"; null before two scrapes) to doc. Nothing when the pool or topic
 * has not been scraped. */
void kp_pool_metrics_annotate(const char *pool, const char *topic, json_t *doc, json_t *partitions);

/* Consumer-group lag over time, for the topic pages people look at: the consumergroups answer
 * (kp_pool_browse_groups' document) of topic in pool is recorded, and for
 * KP_POOL_METRICS_LAG_WATCH_MS after the last such request the sampler asks the pool for it
 * each interval too (one Kafka client per watched topic and interval: only watched topics
 * cost anything). Adds "lagHistory": [{"time", "lag": {group: records}}] (oldest first, at
 * most KP_POOL_METRICS_SAMPLES) to groups_doc. */
#define KP_POOL_METRICS_LAG_WATCH_MS (10 * 60 * 1000)
/* Topics watched at once (the oldest watch is dropped beyond). */
#define KP_POOL_METRICS_LAG_TOPICS_MAX 64
void kp_pool_metrics_lag(const char *pool, const char *topic, json_t *groups_doc);

/* Prometheus text exposition parser: calls fn for each sample line "name{labels} value"
 * (labels without the braces, possibly empty; the timestamp, if any, ignored). Comment and
 * blank lines are skipped; a malformed line is skipped too. Returns the samples reported. */
typedef void (*kp_prom_fn)(const char *name, size_t namelen, const char *labels, size_t labelslen,
                           double value, void *arg);
int kp_prom_parse(const char *text, size_t len, kp_prom_fn fn, void *arg);
/* The value of label key in labels (as kp_prom_parse passes them), unescaped into out. 0, or
 * -1 when absent or longer than outlen - 1. */
int kp_prom_label(const char *labels, size_t len, const char *key, char *out, size_t outlen);

/* For the fuzz target (tests/fuzz/fuzz_prom.c): reads page as one broker's scrape twice —
 * every figure the sampler takes from a page, the brokers' sums and merges — and forgets
 * it. Returns the samples kp_prom_parse reported. */
int kp_pool_metrics_digest(const char *page, size_t len);

#endif
