/*
 * backup.c — the backup scheduler, backups on demand, the backup directory (listing,
 * verification, retention) and the backup metrics (see backup.h).
 *
 * Schedule: each pool is due control.backup.interval.ms after its last successful backup
 * (read from the file names at start, so a restart does not reset the clock); a pool without
 * any is due FIRST_DELAY_MS after it is first seen. A failed backup is retried after a
 * backoff (RETRY_MIN_MS doubling up to the interval) and counted in
 * kpool_backup_failures_total. After every success the pool's files are pruned.
 *
 * Files are written atomically (backup_format.c); a crash can leave only ".<name>.tmp"
 * files, which are removed at start.
 */
#include "control/backup_int.h"

#include "control/backup_format.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A pool with no backup yet is first backed up this long after it is seen (or after one
 * interval, when that is shorter): a pool just created by `kpool up` is up by then. */
#define FIRST_DELAY_MS 60000
/* The first retry after a failed backup; doubles per failure up to the interval. */
#define RETRY_MIN_MS 5000
/* The scheduler looks for new pools at least this often. */
#define SCHEDULER_TICK_MS 5000
/* Files of the backup directory considered by one listing (a directory with more is not a
 * backup directory anyone maintains; the bound keeps a listing's memory and time finite). */
#define LIST_FILES_MAX 100000

/* A file's verification result, cached by name (valid while size and mtime match). */
typedef struct verified {
    int64_t size, mtime_ns;
    int ok;
    char *checksum; /* "sha256:..." or NULL */
    char *error;    /* why it failed verification */
    json_t *summary;
} verified_t;

static void verified_free(verified_t *v)
{
    if (!v) return;
    free(v->checksum);
    free(v->error);
    json_decref(v->summary);
    free(v);
}

/* ---- the directory ---- */

typedef struct file_entry {
    char name[320];
    char pool[KP_BACKUP_POOL_NAME_MAX + 1];
    int64_t time_ms, size, mtime_ns;
} file_entry_t;

static int cmp_newest_first(const void *pa, const void *pb)
{
    const file_entry_t *a = pa, *b = pb;
    if (a->time_ms != b->time_ms) return a->time_ms < b->time_ms ? 1 : -1;
    return strcmp(b->name, a->name);
}

/* The backup files in dir (of pool, or all when NULL), newest first. *out malloc'd. */
static int dir_scan(const char *dir, const char *pool, file_entry_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && *n < LIST_FILES_MAX) {
        file_entry_t f;
        memset(&f, 0, sizeof(f));
        if (strlen(e->d_name) >= sizeof(f.name)) continue;
        if (kp_backup_file_parse(e->d_name, f.pool, sizeof(f.pool), &f.time_ms) < 0) continue;
        if (pool && strcmp(pool, f.pool) != 0) continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) continue;
        snprintf(f.name, sizeof(f.name), "%s", e->d_name);
        f.size = (int64_t)st.st_size;
        f.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = kp_xrealloc(*out, (size_t)cap * sizeof(**out));
        }
        (*out)[(*n)++] = f;
    }
    closedir(d);
    if (*n > 1) qsort(*out, (size_t)*n, sizeof(**out), cmp_newest_first);
    return 0;
}

/* Removes temp files a crash left behind (only this control plane writes into dir). */
static void dir_clean_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] != '.' || n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (kp_fs->unlink(path) == 0) kp_info("backup", "removed the unfinished file %s", path);
    }
    closedir(d);
}

/* The cached verification of f, verifying the file when it is new or changed. The result is
 * a copy (free with verified_free). @locks: takes b->lock briefly, not while reading. */
static verified_t *verify_cached(kp_backup_t *b, const file_entry_t *f)
{
    verified_t *v = NULL;
    pthread_mutex_lock(&b->lock);
    verified_t *c = kp_hmap_get(&b->verified, f->name, strlen(f->name));
    if (c && c->size == f->size && c->mtime_ns == f->mtime_ns) {
        v = kp_xcalloc(1, sizeof(*v));
        *v = *c;
        v->checksum = c->checksum ? kp_xstrdup(c->checksum) : NULL;
        v->error = c->error ? kp_xstrdup(c->error) : NULL;
        v->summary = json_incref(c->summary);
    }
    pthread_mutex_unlock(&b->lock);
    if (v) return v;
    v = kp_xcalloc(1, sizeof(*v));
    v->size = f->size;
    v->mtime_ns = f->mtime_ns;
    char path[PATH_MAX], err[600];
    snprintf(path, sizeof(path), "%s/%s", b->cfg.dir, f->name);
    json_t *doc = kp_backup_file_read(path, NULL, err, sizeof(err));
    if (doc && kp_backup_verify(doc, err, sizeof(err)) == 0) {
        v->ok = 1;
        v->checksum = kp_xstrdup(json_string_value(json_object_get(doc, "checksum")));
        v->summary = json_incref(json_object_get(doc, "summary"));
    } else {
        v->error = kp_xstrdup(err);
    }
    json_decref(doc);
    verified_t *copy = kp_xcalloc(1, sizeof(*copy));
    *copy = *v;
    copy->checksum = v->checksum ? kp_xstrdup(v->checksum) : NULL;
    copy->error = v->error ? kp_xstrdup(v->error) : NULL;
    copy->summary = json_incref(v->summary);
    pthread_mutex_lock(&b->lock);
    verified_free(kp_hmap_put(&b->verified, f->name, strlen(f->name), copy));
    pthread_mutex_unlock(&b->lock);
    return v;
}

static json_t *file_json(const char *dir, const file_entry_t *f, const verified_t *v)
{
    char t[32], path[PATH_MAX];
    kp_backup_time_format(f->time_ms, t);
    snprintf(path, sizeof(path), "%s/%s", dir, f->name);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "name", f->name, "path", path, "pool",
                          f->pool, "time", t, "sizeBytes", (json_int_t)f->size, "state",
                          v->ok ? "Verified" : "Corrupt");
    if (v->checksum) json_object_set_new(o, "checksum", json_string(v->checksum));
    if (v->error) json_object_set_new(o, "error", json_string(v->error));
    if (v->summary) json_object_set(o, "summary", v->summary);
    return o;
}

/* Applies retention to pool's files; `just_written` is known good. */
static void prune(kp_backup_t *b, const char *pool, const char *just_written)
{
    if (b->cfg.retention_count <= 0 && b->cfg.retention_days <= 0) return;
    file_entry_t *f;
    int n;
    if (dir_scan(b->cfg.dir, pool, &f, &n) < 0 || n == 0) {
        free(f);
        return;
    }
    int64_t *times = kp_xcalloc((size_t)n, sizeof(int64_t));
    int *ok = kp_xcalloc((size_t)n, sizeof(int)), *del = kp_xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        times[i] = f[i].time_ms;
        ok[i] = just_written && !strcmp(f[i].name, just_written);
    }
    kp_backup_retention_select(times, ok, (size_t)n, kp_wall_ms(), b->cfg.retention_count,
                               b->cfg.retention_days, del);
    for (int i = 0; i < n; i++) {
        if (!del[i]) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", b->cfg.dir, f[i].name);
        if (kp_fs->unlink(path) == 0)
            kp_info("backup", "retention: removed %s", f[i].name);
        else
            kp_warn("backup", "retention: cannot remove %s: %s", path, strerror(errno));
        pthread_mutex_lock(&b->lock);
        verified_free(kp_hmap_del(&b->verified, f[i].name, strlen(f[i].name)));
        pthread_mutex_unlock(&b->lock);
    }
    if (b->cfg.retention_count > 0 || b->cfg.retention_days > 0) kp_fs_fsync_dir(b->cfg.dir);
    free(times);
    free(ok);
    free(del);
    free(f);
}

/* ---- status ---- */

/* @locks: b->lock held. */
static kp_backup_pool_status_t *status_of(kp_backup_t *b, const char *pool)
{
    for (int i = 0; i < b->npools; i++)
        if (!strcmp(b->pools[i]->pool, pool)) return b->pools[i];
    if (b->npools == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->pools = kp_xrealloc(b->pools, (size_t)b->cap * sizeof(*b->pools));
    }
    kp_backup_pool_status_t *s = kp_xcalloc(1, sizeof(*s));
    s->pool = kp_xstrdup(pool);
    b->pools[b->npools++] = s;
    return s;
}

static void status_free(kp_backup_pool_status_t *s)
{
    free(s->pool);
    free(s->last_error);
    free(s->last_file);
    free(s);
}

/* The last backup of every pool on disk becomes its last success (at start). */
static void status_from_disk(kp_backup_t *b)
{
    file_entry_t *f;
    int n;
    if (dir_scan(b->cfg.dir, NULL, &f, &n) < 0) return;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < n; i++) { /* newest first: the first seen per pool wins */
        kp_backup_pool_status_t *s = status_of(b, f[i].pool);
        if (s->last_success_ms) continue;
        s->last_success_ms = f[i].time_ms;
        s->last_size_bytes = f[i].size;
        s->last_file = kp_xstrdup(f[i].name);
    }
    pthread_mutex_unlock(&b->lock);
    free(f);
}

static void status_record(kp_backup_t *b, const char *pool, int64_t start_ms, int64_t duration_ms,
                          const char *file, int64_t size, const char *error)
{
    pthread_mutex_lock(&b->lock);
    kp_backup_pool_status_t *s = status_of(b, pool);
    s->last_attempt_ms = start_ms;
    s->last_duration_ms = duration_ms;
    free(s->last_error);
    s->last_error = error ? kp_xstrdup(error) : NULL;
    if (error) {
        s->failures_total++;
        s->consecutive_failures++;
        int64_t retry = RETRY_MIN_MS;
        for (int i = 1; i < s->consecutive_failures && retry < b->cfg.interval_ms; i++) retry *= 2;
        if (b->cfg.interval_ms > 0 && retry > b->cfg.interval_ms) retry = b->cfg.interval_ms;
        s->next_due_mono_ms = kp_mono_ms() + retry;
    } else {
        s->successes_total++;
        s->consecutive_failures = 0;
        s->last_success_ms = start_ms;
        s->last_size_bytes = size;
        free(s->last_file);
        s->last_file = kp_xstrdup(file);
        s->next_due_mono_ms = kp_mono_ms() + b->cfg.interval_ms;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- one backup ---- */

/* Backs up pool into a new file. *entry: its listing entry. @locks: takes run_lock. */
static int backup_one(kp_backup_t *b, const char *pool, json_t **entry, char *err, size_t errlen)
{
    pthread_mutex_lock(&b->run_lock);
    int64_t start_ms = kp_wall_ms(), t0 = kp_mono_ms();
    *entry = NULL;
    int rc = KP_BACKUP_FAILED;
    json_t *doc = kp_backup_snapshot(b, pool, start_ms, err, errlen);
    kp_buf_t data;
    kp_buf_init(&data);
    file_entry_t f;
    memset(&f, 0, sizeof(f));
    if (doc) {
        kp_backup_encode(doc, b->cfg.gzip, &data);
        if (data.len > KP_BACKUP_BYTES_MAX) {
            snprintf(err, errlen, "the backup of pool %s would be larger than %u MiB", pool,
                     KP_BACKUP_BYTES_MAX >> 20);
        } else {
            /* a name no earlier backup has (two backups in the same millisecond) */
            int64_t t = start_ms;
            struct stat st;
            char path[PATH_MAX];
            do {
                kp_backup_file_name(pool, t++, b->cfg.gzip, f.name, sizeof(f.name));
                snprintf(path, sizeof(path), "%s/%s", b->cfg.dir, f.name);
            } while (stat(path, &st) == 0);
            if (kp_backup_file_write(b->cfg.dir, f.name, data.data, data.len, err, errlen) == 0)
                rc = KP_BACKUP_OK;
        }
    }
    int64_t took = kp_mono_ms() - t0;
    if (rc == KP_BACKUP_OK) {
        snprintf(f.pool, sizeof(f.pool), "%s", pool);
        f.time_ms = start_ms;
        f.size = (int64_t)data.len;
        verified_t v = {.ok = 1,
                        .checksum = (char *)json_string_value(json_object_get(doc, "checksum")),
                        .summary = json_object_get(doc, "summary")};
        *entry = file_json(b->cfg.dir, &f, &v);
        kp_info("backup", "pool %s backed up to %s/%s (%zu bytes, %lld ms)", pool, b->cfg.dir,
                f.name, data.len, (long long)took);
        status_record(b, pool, start_ms, took, f.name, (int64_t)data.len, NULL);
        prune(b, pool, f.name);
    } else {
        kp_warn("backup", "pool %s: backup failed: %s", pool, err);
        status_record(b, pool, start_ms, took, NULL, 0, err);
    }
    kp_buf_free(&data);
    json_decref(doc);
    pthread_mutex_unlock(&b->run_lock);
    return rc;
}

/* The names of every Pool resource (not being deleted). */
static json_t *pool_names(kp_backup_t *b)
{
    json_t *items, *names = json_array();
    if (kp_store_list(b->store, "Pool", "", &items, NULL) == KP_STORE_OK) {
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o)
        {
            json_t *md = json_object_get(o, "metadata");
            if (!json_object_get(md, "deletionTimestamp"))
                json_array_append(names, json_object_get(md, "name"));
        }
    }
    json_decref(items);
    return names;
}

int kp_backup_create(kp_backup_t *b, const char *pool, json_t **created, char *err, size_t errlen)
{
    *created = json_array();
    json_t *names = pool_names(b);
    int rc = KP_BACKUP_OK;
    if (pool) {
        int found = 0;
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v) found |= !strcmp(json_string_value(v), pool);
        json_decref(names);
        if (!found) {
            snprintf(err, errlen, "pool \"%s\" does not exist", pool);
            return KP_BACKUP_NO_POOL;
        }
        names = json_pack("[s]", pool);
    }
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        json_t *entry;
        char e[1024];
        if (backup_one(b, json_string_value(v), &entry, e, sizeof(e)) == KP_BACKUP_OK) {
            json_array_append_new(*created, entry);
        } else if (rc == KP_BACKUP_OK) {
            rc = KP_BACKUP_FAILED;
            snprintf(err, errlen, "pool %s: %s", json_string_value(v), e);
        }
    }
    json_decref(names);
    return rc;
}

/* ---- listing ---- */

static json_t *pools_json(kp_backup_t *b)
{
    json_t *out = json_array();
    int64_t now_mono = kp_mono_ms(), now_wall = kp_wall_ms();
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->npools; i++) {
        kp_backup_pool_status_t *s = b->pools[i];
        const char *state = s->last_error ? "Failed" : s->last_success_ms ? "Succeeded" : "None";
        json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "pool", s->pool, "state", state,
                              "successesTotal", (json_int_t)s->successes_total, "failuresTotal",
                              (json_int_t)s->failures_total);
        char t[32];
        if (s->last_success_ms) {
            kp_backup_time_format(s->last_success_ms, t);
            json_object_set_new(o, "lastSuccessTime", json_string(t));
        }
        if (s->last_attempt_ms) {
            kp_backup_time_format(s->last_attempt_ms, t);
            json_object_set_new(o, "lastAttemptTime", json_string(t));
        }
        if (s->last_file) json_object_set_new(o, "lastBackup", json_string(s->last_file));
        if (s->last_error) json_object_set_new(o, "lastError", json_string(s->last_error));
        if (b->cfg.interval_ms > 0 && s->next_due_mono_ms) {
            kp_backup_time_format(now_wall + (s->next_due_mono_ms - now_mono), t);
            json_object_set_new(o, "nextScheduledTime", json_string(t));
        }
        json_array_append_new(out, o);
    }
    pthread_mutex_unlock(&b->lock);
    return out;
}

json_t *kp_backup_list(kp_backup_t *b)
{
    file_entry_t *f;
    int n;
    json_t *items = json_array();
    if (dir_scan(b->cfg.dir, NULL, &f, &n) == 0) {
        for (int i = 0; i < n; i++) {
            verified_t *v = verify_cached(b, &f[i]);
            json_array_append_new(items, file_json(b->cfg.dir, &f[i], v));
            verified_free(v);
        }
        free(f);
    }
    json_t *sched =
        json_pack("{s:s, s:I, s:I, s:I, s:s}", "directory", b->cfg.dir, "intervalMs",
                  (json_int_t)b->cfg.interval_ms, "retentionCount",
                  (json_int_t)b->cfg.retention_count, "retentionDays",
                  (json_int_t)b->cfg.retention_days, "compression", b->cfg.gzip ? "gzip" : "none");
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                     "BackupList", "schedule", sched, "pools", pools_json(b), "items", items);
}

int kp_backup_open_file(kp_backup_t *b, const char *name, int *fd, int64_t *size)
{
    file_entry_t *f;
    int n, found = -1;
    *fd = -1;
    if (dir_scan(b->cfg.dir, NULL, &f, &n) < 0) return -1;
    for (int i = 0; i < n && found < 0; i++)
        if (!strcmp(f[i].name, name)) found = i;
    if (found >= 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", b->cfg.dir, f[found].name);
        struct stat st;
        *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (*fd >= 0 && (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode))) {
            close(*fd);
            *fd = -1;
        } else if (*fd >= 0) {
            *size = (int64_t)st.st_size;
        }
    }
    free(f);
    if (*fd < 0 && found < 0) errno = ENOENT;
    return *fd >= 0 ? 0 : -1;
}

/* ---- metrics ---- */

static void render_metrics(kp_buf_t *out, void *arg)
{
    kp_backup_t *b = arg;
    pthread_mutex_lock(&b->lock);
    static const struct {
        const char *name, *type, *help;
        int field;
    } m[] = {
        {"kpool_backup_last_success_timestamp_seconds", "gauge",
         "Unix time of the pool's last successful backup (0: none yet).", 0},
        {"kpool_backup_last_attempt_timestamp_seconds", "gauge",
         "Unix time of the pool's last backup attempt.", 1},
        {"kpool_backup_last_size_bytes", "gauge", "Size of the pool's last backup file.", 2},
        {"kpool_backup_last_duration_seconds", "gauge", "Time the last backup attempt took.", 3},
        {"kpool_backup_success_total", "counter", "Backups written since start.", 4},
        {"kpool_backup_failures_total", "counter", "Backups that failed since start.", 5},
    };
    for (size_t k = 0; k < sizeof(m) / sizeof(*m); k++) {
        kp_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name,
                       m[k].type);
        for (int i = 0; i < b->npools; i++) {
            kp_backup_pool_status_t *s = b->pools[i];
            if (m[k].field <= 1 || m[k].field == 3) {
                int64_t ms = m[k].field == 0   ? s->last_success_ms
                             : m[k].field == 1 ? s->last_attempt_ms
                                               : s->last_duration_ms;
                kp_buf_appendf(out, "%s{pool=\"%s\"} %.3f\n", m[k].name, s->pool,
                               (double)ms / 1000.0);
            } else {
                int64_t n = m[k].field == 2   ? s->last_size_bytes
                            : m[k].field == 4 ? s->successes_total
                                              : s->failures_total;
                kp_buf_appendf(out, "%s{pool=\"%s\"} %lld\n", m[k].name, s->pool, (long long)n);
            }
        }
    }
    /* the age Prometheus alerts on (time() - the timestamp above, without clock arithmetic
     * in the alert rule); only pools with a successful backup have one */
    kp_buf_appendf(out, "# HELP kpool_backup_age_seconds Seconds since the pool's last "
                        "successful backup.\n# TYPE kpool_backup_age_seconds gauge\n");
    int64_t now_ms = kp_wall_ms();
    for (int i = 0; i < b->npools; i++) {
        kp_backup_pool_status_t *s = b->pools[i];
        if (s->last_success_ms <= 0) continue;
        int64_t age_ms = now_ms > s->last_success_ms ? now_ms - s->last_success_ms : 0;
        kp_buf_appendf(out, "kpool_backup_age_seconds{pool=\"%s\"} %.3f\n", s->pool,
                       (double)age_ms / 1000.0);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- scheduler ---- */

/* Runs the backups that are due; returns the time until the next is due (ms). */
static int64_t scheduler_pass(kp_backup_t *b)
{
    json_t *names = pool_names(b);
    int64_t wait = SCHEDULER_TICK_MS;
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        const char *pool = json_string_value(v);
        pthread_mutex_lock(&b->lock);
        kp_backup_pool_status_t *s = status_of(b, pool);
        int64_t now = kp_mono_ms();
        if (!s->next_due_mono_ms) {
            int64_t first =
                b->cfg.interval_ms < FIRST_DELAY_MS ? b->cfg.interval_ms : FIRST_DELAY_MS;
            int64_t age = s->last_success_ms ? kp_wall_ms() - s->last_success_ms : -1;
            s->next_due_mono_ms = age < 0                     ? now + first
                                  : age >= b->cfg.interval_ms ? now
                                                              : now + (b->cfg.interval_ms - age);
        }
        int due = s->next_due_mono_ms <= now, stop = b->stop;
        int64_t left = s->next_due_mono_ms - now;
        pthread_mutex_unlock(&b->lock);
        if (stop) break;
        if (due) {
            json_t *entry = NULL;
            char err[1024];
            backup_one(b, pool, &entry, err, sizeof(err));
            json_decref(entry);
            pthread_mutex_lock(&b->lock);
            left = s->next_due_mono_ms - kp_mono_ms();
            pthread_mutex_unlock(&b->lock);
        }
        if (left < wait) wait = left;
    }
    json_decref(names);
    return wait < 0 ? 0 : wait;
}

static void *scheduler_main(void *arg)
{
    kp_backup_t *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        pthread_mutex_unlock(&b->lock);
        int64_t wait = scheduler_pass(b);
        pthread_mutex_lock(&b->lock);
        if (b->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- lifecycle ---- */

kp_backup_t *kp_backup_start(const kp_backup_config_t *cfg, kp_store_t *store, char *err,
                             size_t errlen)
{
    if (!cfg->dir || !*cfg->dir) {
        snprintf(err, errlen, "control.backup.dir is empty");
        return NULL;
    }
    if (kp_fs_mkdirs(cfg->dir, 0700) < 0) {
        snprintf(err, errlen, "control.backup.dir: cannot create %s: %s", cfg->dir,
                 strerror(errno));
        return NULL;
    }
    kp_backup_t *b = kp_xcalloc(1, sizeof(*b));
    b->cfg = *cfg;
    b->cfg.dir = kp_xstrdup(cfg->dir);
    if (b->cfg.pool_timeout_ms <= 0) b->cfg.pool_timeout_ms = 10000;
    b->store = store;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->run_lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    kp_hmap_init(&b->verified);
    dir_clean_temps(b->cfg.dir);
    status_from_disk(b);
    if (b->cfg.interval_ms > 0) {
        if (pthread_create(&b->thread, NULL, scheduler_main, b) != 0) {
            snprintf(err, errlen, "cannot start the backup scheduler thread");
            kp_backup_stop(b);
            return NULL;
        }
        b->thread_started = 1;
    }
    kp_metrics_add_source(render_metrics, b);
    kp_info("backup", "backups in %s, %s", b->cfg.dir,
            b->cfg.interval_ms > 0 ? "scheduled" : "on demand only (interval 0)");
    return b;
}

void kp_backup_stop(kp_backup_t *b)
{
    if (!b) return;
    kp_metrics_remove_source(render_metrics, b); /* waits for a scrape in progress */
    if (b->thread_started) {
        pthread_mutex_lock(&b->lock);
        b->stop = 1;
        pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->thread, NULL);
    }
    for (int i = 0; i < b->npools; i++) status_free(b->pools[i]);
    free(b->pools);
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&b->verified, &it, NULL, NULL, &v)) verified_free(v);
    kp_hmap_free(&b->verified);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->run_lock);
    pthread_cond_destroy(&b->cond);
    free((char *)b->cfg.dir);
    free(b);
}
