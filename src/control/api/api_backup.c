/* api_backup.c — the backups endpoints (see api_backup.h). */
#include "control/api/api_backup.h"

#include "control/backup.h"
#include "control/backup_format.h"
#include "core/logging.h"
#include "control/api/api_reply.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREFIX "/apis/kpool.dev/v1/backups"

int kp_api_backup_route(const char *url)
{
    size_t n = strlen(PREFIX);
    if (strncmp(url, PREFIX, n) != 0) return KP_API_BACKUP_NONE;
    const char *rest = url + n;
    if (!*rest || !strcmp(rest, "/")) return KP_API_BACKUP_COLLECTION;
    if (!strcmp(rest, "/restore")) return KP_API_BACKUP_RESTORE;
    if (!strncmp(rest, "/files/", 7)) return KP_API_BACKUP_FILE;
    return KP_API_BACKUP_NONE;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned code, json_t *body)
{
    return kp_api_send(conn, code, body, NULL);
}

/* A Kubernetes Status; details (may be NULL) is stolen. */
static enum MHD_Result status(struct MHD_Connection *conn, unsigned code, const char *reason,
                              json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result status(struct MHD_Connection *conn, unsigned code, const char *reason,
                              json_t *details, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *s = kp_api_status(code, reason, msg);
    if (details) json_object_set_new(s, "details", details);
    enum MHD_Result rc = send_json(conn, code, s);
    json_decref(s);
    return rc;
}

static enum MHD_Result failure(struct MHD_Connection *conn, int rc, json_t *details,
                               const char *err)
{
    switch (rc) {
    case KP_BACKUP_INVALID:
        return status(conn, 422, "Invalid", details, "%s", err);
    case KP_BACKUP_NOT_EMPTY:
        return status(conn, 409, "Conflict", details, "%s", err);
    case KP_BACKUP_NO_POOL:
        return status(conn, 404, "NotFound", details, "%s", err);
    default:
        return status(conn, 500, "InternalError", details, "%s", err);
    }
}

static enum MHD_Result do_create(struct kp_backup *b, struct MHD_Connection *conn,
                                 const uint8_t *body, size_t len)
{
    const char *pool = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "pool");
    json_t *req = NULL;
    if (len) {
        json_error_t je;
        req = json_loadb((const char *)body, len, 0, &je);
        if (!json_is_object(req)) {
            json_decref(req);
            return status(conn, 400, "BadRequest", NULL,
                          "the body must be a JSON object like {\"pool\": \"dev\"}");
        }
        json_t *p = json_object_get(req, "pool");
        if (p && !json_is_string(p)) {
            json_decref(req);
            return status(conn, 400, "BadRequest", NULL, "pool: must be a string");
        }
        if (p) pool = json_string_value(p);
    }
    char err[2048] = "";
    json_t *created = NULL;
    int rc = kp_backup_create(b, pool && *pool ? pool : NULL, &created, err, sizeof(err));
    json_decref(req);
    if (rc != KP_BACKUP_OK) {
        json_t *d = NULL;
        if (json_array_size(created))
            d = json_pack("{s:o}", "created", created);
        else
            json_decref(created);
        return failure(conn, rc, d, err);
    }
    json_t *out = json_pack("{s:s, s:s, s:o}", "apiVersion", "kpool.dev/v1", "kind", "BackupList",
                            "items", created);
    enum MHD_Result ret = send_json(conn, 201, out);
    json_decref(out);
    return ret;
}

static enum MHD_Result do_restore(struct kp_backup *b, struct MHD_Connection *conn,
                                  const uint8_t *body, size_t len)
{
    if (!len) return status(conn, 400, "BadRequest", NULL, "the body must be a backup");
    char err[2048];
    json_t *doc = kp_backup_decode(body, len, err, sizeof(err));
    if (!doc)
        return status(conn, 422, "Invalid", NULL, "invalid backup: %s; nothing was restored", err);
    const char *force = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "force");
    kp_backup_restore_opts_t o = {MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "pool"),
                                  force && (!strcmp(force, "true") || !strcmp(force, "1"))};
    json_t *report = NULL;
    int rc = kp_backup_restore(b, doc, &o, &report, err, sizeof(err));
    json_decref(doc);
    if (rc != KP_BACKUP_OK)
        return failure(conn, rc, report ? json_pack("{s:o}", "report", report) : NULL, err);
    json_t *out = json_pack("{s:s, s:s, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                            "BackupRestore", "report", report);
    enum MHD_Result ret = send_json(conn, 200, out);
    json_decref(out);
    return ret;
}

/* GET backups/files/NAME: the file itself, only one that the list names (the directory
 * scan decides, so "..", slashes or any other file of the directory are 404). */
static enum MHD_Result do_download(struct kp_backup *b, struct MHD_Connection *conn,
                                   const char *url)
{
    const char *name = url + strlen(PREFIX "/files/");
    int fd;
    int64_t size;
    if (!*name || strchr(name, '/') || strlen(name) > 255 ||
        kp_backup_open_file(b, name, &fd, &size) < 0)
        return status(conn, 404, "NotFound", NULL, "backup file \"%.255s\" not found", name);
    struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)size, fd);
    if (!r) {
        close(fd);
        return status(conn, 500, "InternalError", NULL, "cannot send the file");
    }
    size_t n = strlen(name);
    int gz = n > 3 && !strcmp(name + n - 3, ".gz");
    /* the list's names are a pool's name and a time; any other byte of a file someone put
     * in the directory becomes '_' so the header stays one quoted token */
    char safe[256], disp[320];
    for (size_t i = 0; i <= n; i++) {
        char ch = name[i];
        safe[i] = !ch || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'
                      ? ch
                      : '_';
    }
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", safe);
    MHD_add_response_header(r, "Content-Type", gz ? "application/gzip" : "application/json");
    MHD_add_response_header(r, "Content-Disposition", disp);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result kp_api_backup_handle(struct kp_backup *b, struct MHD_Connection *conn,
                                     const char *url, const char *method, const uint8_t *body,
                                     size_t len)
{
    if (!b) return status(conn, 503, "ServiceUnavailable", NULL, "backups are not configured");
    int route = kp_api_backup_route(url);
    if (route == KP_API_BACKUP_COLLECTION && !strcmp(method, "GET")) {
        json_t *list = kp_backup_list(b);
        enum MHD_Result rc = send_json(conn, 200, list);
        json_decref(list);
        return rc;
    }
    if (route == KP_API_BACKUP_COLLECTION && !strcmp(method, "POST"))
        return do_create(b, conn, body, len);
    if (route == KP_API_BACKUP_FILE && (!strcmp(method, "GET") || !strcmp(method, "HEAD")))
        return do_download(b, conn, url);
    if (route == KP_API_BACKUP_RESTORE && !strcmp(method, "POST"))
        return do_restore(b, conn, body, len);
    return status(conn, 405, "MethodNotAllowed", NULL, "%s is not supported on %s", method, url);
}
