/*
 * broker.h — a pool broker: configuration, loops, listeners, topics and the request path.
 *
 * One kp_broker_t per process (kpool broker / kpool up), passed explicitly — there is no
 * global broker. Loops (num.network.threads, default one per core) each own the connections
 * they accepted; topics, partitions and producer-id allocation are shared and locked.
 */
#ifndef KP_BROKER_H
#define KP_BROKER_H

#include "broker/topics.h"
#include "core/limits.h"
#include "core/props.h"
#include "net/listener.h"
#include "net/loop.h"

#include <pthread.h>
#include <stdatomic.h>

#define KP_LISTENERS_MAX 8

typedef struct kp_listener_cfg {
    char name[32];     /* PLAINTEXT, SSL, or any name mapped by listener.security.protocol.map */
    char security[16]; /* PLAINTEXT or SSL */
    char host[256];
    int port;
    char adv_host[256]; /* advertised (defaults to host, or the machine's name for 0.0.0.0) */
    int adv_port;
} kp_listener_cfg_t;

typedef struct kp_broker_config {
    int32_t node_id;
    char log_dir[3072]; /* leaves room under PATH_MAX for the names below it */
    kp_listener_cfg_t listeners[KP_LISTENERS_MAX];
    int nlisteners;
    int32_t num_partitions;
    int16_t default_replication_factor; /* 0: min(3, live brokers) (a pool's default) */
    int auto_create_topics;
    int64_t socket_request_max_bytes;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    const char *max_connections_per_ip_overrides; /* in props; NULL: none */
    int64_t connections_max_idle_ms;
    int64_t connections_setup_timeout_ms;
    int num_network_threads;
    int num_flush_threads;
    char admin_listener[300];       /* host:port of /livez /readyz /metrics (the daemon/ wiring
                                     * starts that endpoint); empty: off */
    int authorizer_enabled_default; /* `kpool up` turns the authorizer on by default */
    kp_props_t *props;              /* everything given, for topic-config defaults */
    /* replicated pool (SPEC §11): empty endpoints = standalone */
    char etcd_endpoints[1024]; /* metadata.etcd.endpoints */
    char etcd_prefix[256];     /* metadata.etcd.prefix */
    char rack[256];            /* broker.rack */
    int session_timeout_ms;    /* broker.session.timeout.ms */
} kp_broker_config_t;

/* Fills cfg from props (Kafka property names). -1 with a message naming the bad key. */
int kp_broker_config_load(kp_broker_config_t *cfg, kp_props_t *props, char *err, size_t errlen);

typedef struct kp_broker kp_broker_t;
typedef struct kp_loop_ctx kp_loop_ctx_t;

struct kp_broker {
    kp_broker_config_t cfg;
    kp_topics_t *topics;
    int nloops;
    kp_loop_t *loops[KP_LOOPS_MAX];
    kp_loop_ctx_t *loop_ctx[KP_LOOPS_MAX];
    struct kp_conn_watch *conn_watch[KP_LOOPS_MAX]; /* setup and idle deadlines per loop */
    pthread_t threads[KP_LOOPS_MAX];
    kp_listener_t *listeners[KP_LISTENERS_MAX];
    int bound_ports[KP_LISTENERS_MAX];
    char cluster_id[32];
    pthread_mutex_t pid_lock;
    int64_t pid_next, pid_block_end;
    struct kp_coordinator *coordinator;
    struct kp_txn_coord *txn_coordinator;
    struct kp_tls_ctx *tls_ctx; /* shared by SSL listeners; replaced under tls_lock */
    pthread_rwlock_t tls_lock;  /* accept reads tls_ctx under it; a reload swaps it */
    struct kp_dynconf *dynconf; /* dynamic broker configs (dynamic_config.h) */
    struct kp_principal_rules *principal_rules; /* ssl.principal.mapping.rules */
    struct kp_authorizer *authorizer;
    struct kp_log_manager *log_manager;
    struct kp_member *member; /* NULL: standalone */
    struct kp_rpool *pool;    /* the replicated pool's topics and partitions (broker/pool.h) */
    atomic_int ready;         /* serving requests: what /readyz reports (daemon/ wires it) */
    atomic_int stopping;
    atomic_int listening; /* kp_broker_listen ran */
    /* the log directory failed (kp_broker_log_dir_failed): every partition is offline here */
    atomic_int log_dir_failed;
    unsigned long long log_dir_dev, log_dir_ino; /* what cfg.log_dir was at start */
};

/* Opens storage and binds every listener; serves after kp_broker_start. NULL + err. */
kp_broker_t *kp_broker_new(kp_broker_config_t *cfg, char *err, size_t errlen);
/* Starts the network threads and opens the Kafka listeners: at once when standalone; in a
 * pool once the broker has read the pool's state (kp_broker_listen, called by the pool's
 * thread), so that no client is told a partial picture. A pool broker waits here for that
 * first read up to 15 s (its callers expect it to serve on return), then
 * returns anyway, its listeners still closed until the read completes. */
int kp_broker_start(kp_broker_t *b);
/* Opens the Kafka listeners (the first call; later calls do nothing). Any thread. */
void kp_broker_listen(kp_broker_t *b);
/* Blocks until SIGINT/SIGTERM, then stops. */
void kp_broker_run_until_signal(kp_broker_t *b);
void kp_broker_stop(kp_broker_t *b);
void kp_broker_free(kp_broker_t *b);

/* A TLS server context from the (effective) broker properties ssl.*: *out NULL when no
 * listener is SSL. 0, or -1 with err naming the file and what failed. */
int kp_broker_tls_build(kp_broker_t *b, const kp_props_t *props, struct kp_tls_ctx **out, char *err,
                        size_t errlen);
/* Makes ctx the context of new TLS connections (open ones keep theirs) and frees the old. */
void kp_broker_tls_swap(kp_broker_t *b, struct kp_tls_ctx *ctx);

/* Next producer id (allocated in durable blocks; producer_id.c). -1 on storage failure. */
int64_t kp_broker_next_producer_id(kp_broker_t *b);
/* Writes <log.dir>/meta/cluster.json: the cluster id, the node id and the end of the
 * reserved producer-id block (server.c). 0 or -1 (errno). */
int kp_broker_save_meta(kp_broker_t *b, int64_t block_end);
/* The log directory failed (err: an errno; what: where it was seen). The first call takes
 * every log offline (KAFKA_STORAGE_ERROR to clients), logs it once, makes /readyz false,
 * and in a pool wakes the pool's thread, which publishes it in the broker's registration so
 * that its leaderships and ISR memberships move to the other replicas (docs/replication.md,
 * "Disk failure"). Later calls do nothing. Any thread, also with a log's lock held. */
void kp_broker_log_dir_failed(kp_broker_t *b, int err, const char *what);
/* Whether the log directory is still the one the broker started with (stat: it may have
 * been removed or unmounted); calls kp_broker_log_dir_failed when not. Any thread. */
void kp_broker_check_log_dir(kp_broker_t *b);

/* Appends each partition's log size and end offset and the log directory's use to a /metrics
 * page (handle_log_dirs.c). */
struct kp_buf;
void kp_broker_render_log_dirs(struct kp_buf *out, kp_broker_t *b);

#endif
