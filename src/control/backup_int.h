/*
 * backup_int.h — shared by backup.c (scheduler, status, files), backup_snapshot.c (what a
 * backup holds) and backup_restore.c (putting it back).
 *
 * @locks: b->lock guards pools[], verified and stop; b->run_lock is held for the whole of a
 * backup or a restore (never while waiting for b->lock's condition).
 */
#ifndef KP_BACKUP_INT_H
#define KP_BACKUP_INT_H

#include "control/backup.h"
#include "control/pool_client.h"
#include "core/hmap.h"

#include <pthread.h>

/* What the scheduler and /metrics know about one pool. */
typedef struct kp_backup_pool_status {
    char *pool;
    int64_t last_success_ms; /* wall clock; 0: never (also read from the files at start) */
    int64_t last_attempt_ms;
    int64_t last_duration_ms;
    int64_t last_size_bytes;
    int64_t successes_total, failures_total;
    int consecutive_failures;
    char *last_error; /* NULL after a success */
    char *last_file;
    int64_t next_due_mono_ms; /* 0: not scheduled yet */
} kp_backup_pool_status_t;

struct kp_backup {
    kp_backup_config_t cfg; /* cfg.dir is owned */
    kp_store_t *store;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t run_lock;
    int stop;
    kp_backup_pool_status_t **pools;
    int npools, cap;
    kp_hmap_t verified; /* file name -> verified_t (backup.c) */
};

/* The kinds a backup holds, in the order a restore writes them (what they need first). */
extern const char *const kp_backup_kinds[];
extern const size_t kp_backup_kinds_count;

/* The pool an object belongs to (spec.pool or spec.kafka.pool; a Pool's own name). */
const char *kp_backup_object_pool(const json_t *obj);

/* Connection settings of pool from its Pool resource. *pool_obj holds the strings conn
 * points into (json_decref it after use). 0, or KP_BACKUP_NO_POOL / KP_BACKUP_FAILED with
 * err. */
int kp_backup_pool_conn(kp_backup_t *b, const char *pool, kp_pool_conn_t *conn, json_t **pool_obj,
                        char *err, size_t errlen);

/* A complete, sealed backup document of pool, taken at now_ms. NULL with err. The caller
 * holds run_lock. */
json_t *kp_backup_snapshot(kp_backup_t *b, const char *pool, int64_t now_ms, char *err,
                           size_t errlen);

/* Checks every member a restore uses (types, ranges, ACL enum names, record bytes) so a
 * restore fails before it changes anything. 0, or -1 with the member's path in err. Pure:
 * the fuzz target calls it on arbitrary documents. */
int kp_backup_validate(const json_t *doc, char *err, size_t errlen);

#endif
