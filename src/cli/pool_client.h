/*
 * pool_client.h — what `kpool pool` (cmd_pool.c) reads from and asks of a pool's brokers,
 * over Kafka's own protocol (PLAINTEXT listeners, or SSL ones with a client certificate, as
 * `kpool up --brokers N` has them): a snapshot of the pool (Metadata v7:
 * brokers, racks, controller, every partition's replicas, ISR and leader; DescribeLogDirs v1
 * to every broker: bytes per partition and per broker; ListPartitionReassignments), and the
 * changes (AlterPartitionReassignments, ElectLeaders). Blocking, one request at a time, each
 * bounded by the timeout given; a malformed answer is an error, never a crash.
 */
#ifndef KP_CLI_POOL_CLIENT_H
#define KP_CLI_POOL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Replicas of one partition the CLI handles (as the broker's KP_REPLICAS_MAX). */
#define KP_POOLC_REPLICAS_MAX 64
/* Brokers and partitions of a snapshot: bounds on what a (hostile) answer can make us hold. */
#define KP_POOLC_BROKERS_MAX    4096
#define KP_POOLC_PARTITIONS_MAX (1 << 20)

typedef struct kp_poolc_broker {
    int32_t id;
    char host[256];
    int port;
    char rack[256];         /* "" when none */
    int64_t disk_bytes;     /* -1: unknown (DescribeLogDirs failed) */
    char offline_dir[1024]; /* a log directory it reports failed (KAFKA_STORAGE_ERROR), or "" */
} kp_poolc_broker_t;

typedef struct kp_poolc_part {
    char topic[250];
    int32_t partition;
    int32_t leader; /* -1: offline */
    int32_t replicas[KP_POOLC_REPLICAS_MAX], isr[KP_POOLC_REPLICAS_MAX];
    int nreplicas, nisr;
    int64_t bytes; /* the largest copy's size (a move's cost), -1 unknown */
    int moving;    /* a reassignment is in progress */
} kp_poolc_part_t;

typedef struct kp_poolc_snapshot {
    kp_poolc_broker_t *brokers; /* sorted by id */
    int nbrokers;
    int32_t controller;
    kp_poolc_part_t *parts; /* sorted by topic, partition */
    int nparts;
    int nmoving;
} kp_poolc_snapshot_t;

/* Where the pool is and how to reach it. ca NULL: PLAINTEXT; else TLS, the broker's
 * certificate verified against ca (chain and host name or IP address), presenting cert/key
 * (both or neither) when the brokers ask for a client certificate. Paths only: the key is
 * read by OpenSSL and never copied, printed or put in an error. */
typedef struct kp_poolc_target {
    const char *bootstrap; /* HOST:PORT[,HOST:PORT...] */
    const char *ca, *cert, *key;
} kp_poolc_target_t;

/* Reads the pool through the first bootstrap server that answers. 0, or -1 with err. */
int kp_poolc_snapshot(const kp_poolc_target_t *t, int timeout_ms, kp_poolc_snapshot_t *out,
                      char *err, size_t errlen);
void kp_poolc_snapshot_free(kp_poolc_snapshot_t *s);

/* One partition's target for AlterPartitionReassignments. */
typedef struct kp_poolc_move {
    const char *topic;
    int32_t partition;
    int32_t target[KP_POOLC_REPLICAS_MAX];
    int ntarget;
} kp_poolc_move_t;

/* Sends the moves (one request); per-move failures are printed to stderr. Returns the number
 * of moves refused, or -1 with err when the request failed. */
int kp_poolc_alter(const kp_poolc_target_t *t, int timeout_ms, const kp_poolc_move_t *moves, int n,
                   char *err, size_t errlen);

/* Preferred-leader election of every partition (ElectLeaders v1, partitions null). Returns
 * how many partitions got a new leader (*failed: how many could not), or -1 with err. */
int kp_poolc_elect_preferred(const kp_poolc_target_t *t, int timeout_ms, int *failed, char *err,
                             size_t errlen);

#endif
