/*
 * limits.h — every fixed bound of kpool in one place, each with what it prevents.
 *
 * Bounds that users may tune are broker properties (Kafka names) whose *defaults* live here;
 * the hard ceilings below are not configurable: they keep a hostile or buggy peer from making
 * one connection cost unbounded memory or CPU.
 */
#ifndef KP_LIMITS_H
#define KP_LIMITS_H

/* Default socket.request.max.bytes: a larger frame closes the connection before any of it is
 * buffered, so a forged 1 GiB length costs nothing. */
#define KP_REQUEST_BYTES_MAX_DEFAULT (100 * 1024 * 1024)

/* Default max.connections across all loops: beyond it new sockets are accepted and closed at
 * once, so file descriptors cannot be exhausted by idle peers. */
#define KP_CONNECTIONS_MAX_DEFAULT 10000

/* Default connections.max.idle.ms (Kafka's default): a connection that moved no byte for this
 * long is closed, so forgotten or half-open sockets cannot hold max.connections slots and
 * memory forever. */
#define KP_CONN_IDLE_MS_DEFAULT 600000

/* Default connections.setup.timeout.ms: accept to the first complete request, TLS handshake
 * included. Real clients send ApiVersions at once; a socket that connects and says nothing
 * (or stalls its handshake) is closed after this instead of after the idle timeout. */
#define KP_CONN_SETUP_MS_DEFAULT 10000

/* The health and metrics port (admin.listener): connections served at once, seconds a
 * connection may go without progress, and the memory each may use (requests are one GET
 * line; /metrics answers are not counted here). 300 slow clients once filled the old 64
 * slots for 10 s each and /livez stopped answering; with these, 1,000 cost ~16 MiB at most
 * and a probe still finds a slot. */
#define KP_ADMIN_HTTP_CONNECTIONS_MAX   1000
#define KP_ADMIN_HTTP_TIMEOUT_S         3
#define KP_ADMIN_HTTP_CONN_MEMORY_BYTES (16 * 1024)

/* Requests read but not yet answered on one connection. Past it the connection stops reading
 * until responses drain: pipelining cannot queue unbounded work. */
#define KP_CONN_INFLIGHT_MAX 256

/* Response bytes queued on one connection before it stops reading (backpressure against a
 * client that sends fetches but never reads the answers). */
#define KP_CONN_SENDQ_BYTES_MAX (64 * 1024 * 1024)

/* Receive chunk size: small pipelined requests share one chunk; a larger frame gets a chunk
 * of its own size (bounded by socket.request.max.bytes). */
#define KP_RECV_CHUNK_BYTES (64 * 1024)

/* Array elements in one decoded request: with the per-element minimum encoded size checked
 * against the remaining frame, this bounds the memory a request can make us allocate. */
#define KP_ARRAY_COUNT_MAX (1 << 24)

/* Bytes a single request may allocate while being decoded and answered (arena ceiling). */
#define KP_REQUEST_ARENA_BYTES_MAX (256 * 1024 * 1024)

/* Topic name length, as Kafka (249): keeps names valid as directory names with a suffix. */
#define KP_TOPIC_NAME_LEN_MAX 249

/* Partitions per topic accepted by CreateTopics / CreatePartitions (SPEC 2.1: 1..1,000,000);
 * the broker refuses beyond what its file descriptors allow at create time
 * (max.broker.partitions, broker/topics.h). */
#define KP_TOPIC_PARTITIONS_MAX 1000000

/* Open files a broker keeps for everything but its partitions' logs (listeners, client
 * connections, indexes, metadata and state files) when max.broker.partitions follows the
 * open-file limit: what keeps the broker serving once it hosts that many partitions. */
#define KP_BROKER_FD_RESERVE 1024

/* Idempotent producer: batches remembered per (producer, partition), as Kafka. */
#define KP_PRODUCER_BATCHES_MAX 5

/* Loops (threads serving connections). One per core is the design; the cap prevents a typo
 * in num.network.threads from spawning thousands of threads. */
#define KP_LOOPS_MAX 64

/* Length of a properties line / value; longer lines are configuration errors. */
#define KP_PROPERTY_LEN_MAX 8192

/* Records in one batch: Kafka's record count is int32, but a batch claiming more records
 * than it has bytes is corrupt (each record is at least 7 bytes). */
#define KP_BATCH_RECORD_MIN_BYTES 7

/* Fetch long-poll ceiling: max.wait.ms beyond this is clamped, so a parked fetch always
 * completes in bounded time. */
#define KP_FETCH_WAIT_MS_MAX 30000

/* Decompressed size of one produced batch that the broker looks inside (compacted topics'
 * key check, timestamp bounds, broker-side recompression): a small compressed batch could
 * otherwise inflate to gigabytes on the network thread (a compression bomb). */
#define KP_BATCH_INFLATE_BYTES_MAX (64u << 20)

/* Consumer-group partitions a broker's /metrics reports (kpool_consumergroup_lag and
 * kpool_consumergroup_committed_offset, one series each per group, topic and partition with
 * a committed offset): a pool with many groups on wide topics would otherwise make every
 * scrape megabytes and every Prometheus server's index grow with it. Beyond the cap the rest
 * is counted in kpool_consumergroup_series_dropped (docs/metrics.md). */
#define KP_METRICS_LAG_SERIES_MAX 10000
/* How long a scrape waits for the group coordinator's copy of the committed offsets (a busy
 * coordinator answers later; the scrape then goes without the lag series). */
#define KP_METRICS_LAG_WAIT_MS 2000

#endif
