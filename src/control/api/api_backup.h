/*
 * api_backup.h — the backups endpoints of the control plane API (docs/api.md, docs/backups.md),
 * admin tokens only; api.c authenticates and dispatches here:
 *
 *   GET  /apis/kpool.dev/v1/backups            BackupList: files, per-pool status, schedule
 *   POST /apis/kpool.dev/v1/backups            back up now; body {"pool": "dev"} or ?pool=
 *                                              (none: every pool) -> 201 with the new files
 *   GET  /apis/kpool.dev/v1/backups/files/NAME the bytes of backup file NAME (one the list
 *                                              names; anything else 404), as an attachment
 *   POST /apis/kpool.dev/v1/backups/restore    body: a backup (JSON, or the .gz bytes);
 *                                              ?pool=P (default: the backup's) &force=true
 *
 * Errors are Kubernetes Status objects: 422 Invalid (damaged or not a backup: nothing was
 * changed), 409 Conflict (restore into a pool that is not empty, without force), 404
 * NotFound (no such pool), 500 InternalError (the pool or the disk failed; a restore's
 * Status carries the partial report in details).
 */
#ifndef KP_API_BACKUP_H
#define KP_API_BACKUP_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct kp_backup;

enum {
    KP_API_BACKUP_NONE = 0,
    KP_API_BACKUP_COLLECTION = 1,
    KP_API_BACKUP_RESTORE = 2,
    KP_API_BACKUP_FILE = 3
};

/* Which backups endpoint url is (KP_API_BACKUP_NONE: not one). */
int kp_api_backup_route(const char *url);

/* Answers an authenticated admin's request. b may be NULL (503). Runs on an API thread; a
 * backup or restore blocks it until done. */
enum MHD_Result kp_api_backup_handle(struct kp_backup *b, struct MHD_Connection *conn,
                                     const char *url, const char *method, const uint8_t *body,
                                     size_t len);

#endif
