/*
 * backup.h — backups of pool configuration and schemas (SPEC 7, docs/backups.md).
 *
 * A kp_backup_t belongs to the control plane. It runs a scheduler thread (every
 * control.backup.interval.ms per pool; none when 0), takes backups on demand, lists the
 * files of the backup directory with their verification state, prunes them by count and
 * age, restores a backup into a pool, and renders its status as Prometheus metrics.
 *
 * Every backup and restore talks to the pool through clients of its own (not the
 * reconciler's), made from the Pool resource's connection settings. One backup or restore
 * runs at a time (a run lock); the functions below may be called from any thread.
 */
#ifndef KP_BACKUP_H
#define KP_BACKUP_H

#include "control/store.h"
#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_backup kp_backup_t;

typedef struct kp_backup_config {
    const char *dir;         /* control.backup.dir (created 0700 when missing) */
    int64_t interval_ms;     /* control.backup.interval.ms; 0: no scheduled backups */
    int64_t retention_count; /* control.backup.retention.count; 0: no count limit */
    int64_t retention_days;  /* control.backup.retention.days; 0: no age limit */
    int gzip;                /* control.backup.compression=gzip (else plain JSON) */
    int pool_timeout_ms;     /* per Kafka call */
} kp_backup_config_t;

kp_backup_t *kp_backup_start(const kp_backup_config_t *cfg, kp_store_t *store, char *err,
                             size_t errlen);
/* Stops the scheduler (waiting for a backup in progress) and frees b. */
void kp_backup_stop(kp_backup_t *b);

/* Results of create and restore, mapped to HTTP codes by the API. */
enum {
    KP_BACKUP_OK = 0,
    KP_BACKUP_INVALID = -1,   /* the document is not a valid, intact backup (422) */
    KP_BACKUP_NOT_EMPTY = -2, /* restore into a pool that has topics/resources, no force (409) */
    KP_BACKUP_NO_POOL = -3,   /* the pool does not exist (404) */
    KP_BACKUP_FAILED = -4,    /* the pool or the disk failed (500) */
};

/* Backs up pool now (NULL: every pool). *created: a new JSON array of the files written
 * (entries as in kp_backup_list's items). KP_BACKUP_OK, or an error with err filled (the
 * first failure; other pools are still attempted). */
int kp_backup_create(kp_backup_t *b, const char *pool, json_t **created, char *err, size_t errlen);

/* {"items": [...files, newest first...], "pools": [...status per pool...], "schedule": {...}}
 * (docs/backups.md). Files are verified once and the result cached by name, size and mtime. */
json_t *kp_backup_list(kp_backup_t *b);

/* Opens the backup file called name for reading, only if kp_backup_list would list it: a
 * name the directory scan accepts (a backup file name, a regular file in the directory), so no
 * other path can be reached. The descriptor in *fd (the caller closes it), its size in *size.
 * 0, or -1 (errno ENOENT: no such backup). */
int kp_backup_open_file(kp_backup_t *b, const char *name, int *fd, int64_t *size);

typedef struct kp_backup_restore_opts {
    const char *pool; /* target pool; NULL: the backup's pool */
    int force;        /* restore into a pool that is not empty */
} kp_backup_restore_opts_t;

/* Restores doc (a parsed backup) into a pool: verifies the checksum and the whole document
 * first (nothing is changed when it fails), refuses a pool with user topics, schema records
 * or resources unless force, then creates topics with their configs and partition counts,
 * ACLs, the schema records (in order, so ids stay the same), service users and resources.
 * *report: a new JSON object of what was done (also on a failure part way). One of the
 * KP_BACKUP_* results, with err filled on failure. */
int kp_backup_restore(kp_backup_t *b, const json_t *doc, const kp_backup_restore_opts_t *o,
                      json_t **report, char *err, size_t errlen);

#endif
