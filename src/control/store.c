/*
 * store.c — SQLite persistence of the control plane (see store.h).
 *
 * Tables:
 *   resources(kind, ns, name, rv, body)   body = the whole object as JSON text
 *   meta(key, value)                      'rv' = the last resourceVersion handed out
 *   tokens(hash, ns, description, created, revoked)
 *                                         hash = hex SHA-256 of the token; revoked = when
 *                                         (RFC 3339), NULL while the token is valid
 *   service_users(...)
 * Every write runs in one transaction (BEGIN IMMEDIATE) and is durable when it returns
 * (WAL with synchronous=FULL).
 */
#include "control/store.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/notify.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Prepared statements kept for the connection's life: preparing one costs more than most of
 * the queries run here (a drift check reads every Topic). One entry per distinct SQL text
 * used by this file; past the limit a statement is prepared and finalized per call. */
#define STMT_CACHE_MAX 48

typedef struct stmt_slot {
    const char *sql; /* a string literal of this file */
    sqlite3_stmt *st;
} stmt_slot_t;

struct kp_store {
    sqlite3 *db;
    pthread_mutex_t lock; /* covers db and stmts: the connection is used by one thread at once */
    stmt_slot_t stmts[STMT_CACHE_MAX];
    int nstmts;
    /* writes failing because the disk is full: logged once, then once a minute, then when a
     * write succeeds again (a full disk fails every write, many a second) */
    kp_log_limit_t full_log;
    kp_store_change_fn on_change;
    void *on_change_arg;
    kp_notify_t moved; /* kp_store_listen: every move of the resourceVersion */
};

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS resources(kind TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
    "  rv INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(kind, ns, name));"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens(hash TEXT PRIMARY KEY, ns TEXT, description TEXT,"
    "  created TEXT NOT NULL, revoked TEXT);"
    "CREATE TABLE IF NOT EXISTS service_users(name TEXT PRIMARY KEY, team TEXT NOT NULL,"
    "  app TEXT NOT NULL, pool TEXT NOT NULL, principal TEXT NOT NULL, secret TEXT,"
    "  generation INTEGER NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER NOT NULL"
    "  DEFAULT 0, registry_hash TEXT);";

kp_store_t *kp_store_open(const char *path, char *err, size_t errlen)
{
    kp_store_t *s = kp_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    kp_notify_init(&s->moved);
    kp_log_limit_init(&s->full_log, KP_LOG_LIMIT_INTERVAL_MS_DEFAULT);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "?");
        kp_store_close(s);
        return NULL;
    }
    /* the store holds sealed secrets and token hashes: owner only (SQLite gives its -wal
     * and -shm files the database file's mode) */
    if (chmod(path, 0600) < 0)
        kp_warn("store", "cannot make %s private: %s", path, strerror(errno));
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot initialise %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        kp_store_close(s);
        return NULL;
    }
    /* stores made before service users had registry credentials: add the column (an error
     * here only means it is there already) */
    sqlite3_exec(s->db, "ALTER TABLE service_users ADD COLUMN registry_hash TEXT", NULL, NULL,
                 NULL);
    /* stores made before tokens could be revoked: every token in them is valid */
    sqlite3_exec(s->db, "ALTER TABLE tokens ADD COLUMN revoked TEXT", NULL, NULL, NULL);
    return s;
}

void kp_store_close(kp_store_t *s)
{
    if (!s) return;
    for (int i = 0; i < s->nstmts; i++) sqlite3_finalize(s->stmts[i].st);
    if (s->db) sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    kp_notify_destroy(&s->moved);
    kp_log_limit_destroy(&s->full_log);
    free(s);
}

void kp_store_on_change(kp_store_t *s, kp_store_change_fn fn, void *arg)
{
    pthread_mutex_lock(&s->lock);
    s->on_change = fn;
    s->on_change_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

int kp_store_listen(kp_store_t *s, void (*fn)(void *arg), void *arg)
{
    return kp_notify_add(&s->moved, fn, arg);
}

void kp_store_unlisten(kp_store_t *s, void (*fn)(void *arg), void *arg)
{
    kp_notify_remove(&s->moved, fn, arg);
}

static void notify(kp_store_t *s, const char *kind, const char *ns, const char *name)
{
    if (s->on_change) s->on_change(kind, ns, name, s->on_change_arg);
}

/* ---- helpers ---- */

/* The prepared statement for sql (a string literal), ready to bind: from the cache, or
 * prepared now (and kept while there is room). NULL on error. Give it back with stmt_done.
 * @locks: s->lock held. */
static sqlite3_stmt *stmt(kp_store_t *s, const char *sql)
{
    for (int i = 0; i < s->nstmts; i++) {
        if (s->stmts[i].sql == sql || !strcmp(s->stmts[i].sql, sql)) {
            sqlite3_reset(s->stmts[i].st); /* a no-op after stmt_done */
            return s->stmts[i].st;
        }
    }
    sqlite3_stmt *st = NULL;
    int keep = s->nstmts < STMT_CACHE_MAX;
    if (sqlite3_prepare_v3(s->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    if (keep) s->stmts[s->nstmts++] = (stmt_slot_t){sql, st};
    return st;
}

/* Ends a use of a statement from stmt(): reset (ending its read of the database) with its
 * parameters cleared (they may point at the caller's strings), or finalized when it was
 * not kept. @locks: s->lock held. */
static void stmt_done(kp_store_t *s, sqlite3_stmt *st)
{
    for (int i = 0; i < s->nstmts; i++) {
        if (s->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    }
    sqlite3_finalize(st);
}

static void rfc3339_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void new_uid(char out[37])
{
    uint8_t r[16];
    RAND_bytes(r, sizeof(r));
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

/* Column i as a malloc'd string, "" for NULL. */
static char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return kp_xstrdup(v ? (const char *)v : "");
}

/* Logs a failed write: a full disk through full_log (rate-limited), anything else at once. */
static void write_failed(kp_store_t *s, const char *what, int rc, const char *msg)
{
    if ((rc & 0xff) == SQLITE_FULL)
        kp_log_limit_hit(&s->full_log, kp_mono_ms(), KP_LOG_ERROR, "store",
                         "%s: %s: the disk under the control plane's store is full; writes fail "
                         "until space is freed",
                         what, msg ? msg : "?");
    else
        kp_error("store", "%s: %s", what, msg ? msg : "?");
}

/* A write went through: a disk-full episode, if any, is over. */
static void write_ok(kp_store_t *s)
{
    if (kp_log_limit_active(&s->full_log))
        kp_log_limit_clear(&s->full_log, kp_mono_ms(), KP_LOG_INFO, "store",
                           "the control plane's store is writable again");
}

/* Steps a write statement. A failure is logged (write_failed); a success outside a
 * transaction is durable, so it ends a disk-full episode (inside one, COMMIT does). The
 * step's result. */
static int step_write(kp_store_t *s, sqlite3_stmt *st, const char *what)
{
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE)
        write_failed(s, what, r, sqlite3_errmsg(s->db));
    else if (sqlite3_get_autocommit(s->db))
        write_ok(s);
    return r;
}

/* Runs BEGIN IMMEDIATE, COMMIT or ROLLBACK (kept prepared, as every write runs them). */
static int exec(kp_store_t *s, const char *sql)
{
    /* a COMMIT that failed (disk full, I/O error) has rolled the transaction back already:
     * a ROLLBACK then would only fail with "no transaction is active" */
    if (!strcmp(sql, "ROLLBACK") && sqlite3_get_autocommit(s->db)) return 0;
    sqlite3_stmt *st = stmt(s, sql);
    int rc = st ? sqlite3_step(st) : sqlite3_errcode(s->db);
    if (rc != SQLITE_DONE) {
        write_failed(s, sql, rc, sqlite3_errmsg(s->db));
        if (st) stmt_done(s, st);
        return -1;
    }
    stmt_done(s, st);
    if (!strcmp(sql, "COMMIT")) write_ok(s);
    return 0;
}

int kp_store_disk_full(kp_store_t *s)
{
    return kp_log_limit_active(&s->full_log);
}

/* Takes the next resourceVersion (in the caller's transaction) and tells the listeners
 * (kp_store_listen). They are told before the commit, still under s->lock: one that reads
 * the store waits for the lock, so it sees the write once committed (or nothing new after a
 * rollback: a wake-up for nothing). @locks: s->lock held. */
static int64_t next_rv(kp_store_t *s)
{
    sqlite3_stmt *st;
    int64_t rv = 0;
    if ((st = stmt(s, "SELECT value FROM meta WHERE key='rv'")) == NULL) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) rv = atoll((const char *)sqlite3_column_text(st, 0));
    stmt_done(s, st);
    rv++;
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)rv);
    if ((st = stmt(s, "INSERT OR REPLACE INTO meta(key, value) VALUES('rv', ?)")) == NULL)
        return -1;
    sqlite3_bind_text(st, 1, buf, -1, SQLITE_TRANSIENT);
    int r = step_write(s, st, "INSERT INTO meta");
    stmt_done(s, st);
    if (r != SQLITE_DONE) return -1;
    kp_notify_fire(&s->moved);
    return rv;
}

/* Reads one row. @locks: s->lock held. */
static json_t *load(kp_store_t *s, const char *kind, const char *ns, const char *name)
{
    sqlite3_stmt *st;
    if ((st = stmt(s, "SELECT body FROM resources WHERE kind=? AND ns=? AND name=?")) == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    json_t *obj = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        obj = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    stmt_done(s, st);
    return obj;
}

static int save(kp_store_t *s, const char *kind, const char *ns, const char *name, int64_t rv,
                json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(
             s, "INSERT OR REPLACE INTO resources(kind, ns, name, rv, body) VALUES(?,?,?,?,?)")) !=
        NULL) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, rv);
        sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
        rc = step_write(s, st, "INSERT INTO resources") == SQLITE_DONE ? 0 : -1;
        stmt_done(s, st);
    }
    free(body);
    return rc;
}

static const char *meta_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* The parts a user controls: everything but status and server-set metadata. */
static json_t *user_view(json_t *obj)
{
    json_t *v = json_deep_copy(obj);
    json_object_del(v, "status");
    json_t *md = json_object_get(v, "metadata");
    static const char *server[] = {
        "uid",          "generation", "resourceVersion", "creationTimestamp", "deletionTimestamp",
        "managedFields"};
    for (size_t i = 0; md && i < sizeof(server) / sizeof(*server); i++)
        json_object_del(md, server[i]);
    return v;
}

/* ---- resources ---- */

int kp_store_get(kp_store_t *s, const char *kind, const char *ns, const char *name, json_t **out)
{
    pthread_mutex_lock(&s->lock);
    *out = load(s, kind, ns ? ns : "", name);
    pthread_mutex_unlock(&s->lock);
    return *out ? KP_STORE_OK : KP_STORE_NOT_FOUND;
}

int kp_store_get_if_changed(kp_store_t *s, const char *kind, const char *ns, const char *name,
                            int64_t known_rv, json_t **out, int64_t *rv)
{
    *out = NULL;
    *rv = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, "SELECT rv FROM resources WHERE kind=? AND ns=? AND name=?");
    if (!st) {
        pthread_mutex_unlock(&s->lock);
        return KP_STORE_ERROR;
    }
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) *rv = sqlite3_column_int64(st, 0);
    stmt_done(s, st);
    int rc = KP_STORE_NOT_FOUND;
    if (*rv && *rv == known_rv) {
        rc = KP_STORE_UNCHANGED;
    } else if (*rv) {
        /* same transaction-less read as kp_store_get; under the lock nothing wrote since */
        *out = load(s, kind, ns ? ns : "", name);
        rc = *out ? KP_STORE_OK : KP_STORE_NOT_FOUND;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Rows of (ns, name, rv[, value]) of a kind into *out (elem bytes each, a kp_store_key_t
 * first). @locks: s->lock held. */
static int keys_read(kp_store_t *s, sqlite3_stmt *st, size_t elem, void **out, size_t *n)
{
    size_t cap = 0;
    int r;
    *out = NULL;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = kp_xrealloc(*out, cap * elem);
        }
        char *row = (char *)*out + (*n)++ * elem;
        memset(row, 0, elem);
        kp_store_key_t *k = (kp_store_key_t *)row;
        k->ns = col(st, 0);
        k->name = col(st, 1);
        k->rv = sqlite3_column_int64(st, 2);
        if (elem == sizeof(kp_store_field_t)) {
            const unsigned char *v = sqlite3_column_text(st, 3);
            ((kp_store_field_t *)row)->value = v ? kp_xstrdup((const char *)v) : NULL;
        }
    }
    stmt_done(s, st);
    return r == SQLITE_DONE ? 0 : -1;
}

int kp_store_keys(kp_store_t *s, const char *kind, kp_store_key_t **out, size_t *n)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, "SELECT ns, name, rv FROM resources WHERE kind=? ORDER BY ns, name");
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (st) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        rc = keys_read(s, st, sizeof(**out), (void **)out, n);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        kp_store_keys_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void kp_store_keys_free(kp_store_key_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(k[i].ns);
        free(k[i].name);
    }
    free(k);
}

int kp_store_fields(kp_store_t *s, const char *kind, const char *path, kp_store_field_t **out,
                    size_t *n)
{
    pthread_mutex_lock(&s->lock);
    /* json_extract answers NULL for a missing path; CASE keeps only strings */
    sqlite3_stmt *st =
        stmt(s, "SELECT ns, name, rv, CASE WHEN json_type(body, ?2) = 'text'"
                " THEN json_extract(body, ?2) END FROM resources WHERE kind=?1 ORDER BY ns, name");
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (st) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        rc = keys_read(s, st, sizeof(**out), (void **)out, n);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        kp_store_fields_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void kp_store_fields_free(kp_store_field_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].key.ns);
        free(f[i].key.name);
        free(f[i].value);
    }
    free(f);
}

int kp_store_list(kp_store_t *s, const char *kind, const char *ns, json_t **items, int64_t *rv)
{
    sqlite3_stmt *st;
    *items = json_array();
    pthread_mutex_lock(&s->lock);
    const char *sql = ns ? "SELECT body FROM resources WHERE kind=? AND ns=? ORDER BY ns, name"
                         : "SELECT body FROM resources WHERE kind=? ORDER BY ns, name";
    int rc = KP_STORE_ERROR;
    if ((st = stmt(s, sql)) != NULL) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        if (ns) sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
            if (o) json_array_append_new(*items, o);
        }
        stmt_done(s, st);
        rc = KP_STORE_OK;
    }
    if (rv) {
        *rv = 0;
        if ((st = stmt(s, "SELECT value FROM meta WHERE key='rv'")) != NULL) {
            if (sqlite3_step(st) == SQLITE_ROW)
                *rv = atoll((const char *)sqlite3_column_text(st, 0));
            stmt_done(s, st);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int64_t kp_store_rv(kp_store_t *s)
{
    sqlite3_stmt *st;
    int64_t rv = -1;
    pthread_mutex_lock(&s->lock);
    if ((st = stmt(s, "SELECT value FROM meta WHERE key='rv'")) != NULL) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rv = atoll((const char *)sqlite3_column_text(st, 0));
        else if (rc == SQLITE_DONE)
            rv = 0; /* nothing written yet */
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rv;
}

int64_t kp_store_data_version(kp_store_t *s)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    pthread_mutex_lock(&s->lock);
    if ((st = stmt(s, "PRAGMA data_version")) != NULL) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return v;
}

int kp_store_put(kp_store_t *s, json_t *obj, int64_t expected_rv, int create_only, json_t **out)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = meta_str(obj, "name");
    const char *ns = meta_str(obj, "namespace");
    if (!ns) ns = "";
    *out = NULL;
    if (!kind || !name) return KP_STORE_ERROR;
    char *kind_c = kp_xstrdup(kind), *name_c = kp_xstrdup(name), *ns_c = kp_xstrdup(ns);
    int rc;
    pthread_mutex_lock(&s->lock);
    if (exec(s, "BEGIN IMMEDIATE") < 0) {
        rc = KP_STORE_ERROR;
        goto unlock;
    }
    json_t *old = load(s, kind_c, ns_c, name_c);
    if (old && create_only) {
        rc = KP_STORE_EXISTS;
        *out = old;
        goto rollback;
    }
    if (expected_rv >= 0) {
        const char *orv = old ? meta_str(old, "resourceVersion") : NULL;
        if (!orv || atoll(orv) != expected_rv) {
            rc = KP_STORE_CONFLICT;
            json_decref(old);
            goto rollback;
        }
    }
    if (old && meta_str(old, "deletionTimestamp")) {
        rc = KP_STORE_CONFLICT; /* being deleted: re-create once it is gone */
        json_decref(old);
        goto rollback;
    }
    json_t *nu = json_deep_copy(obj);
    json_object_del(nu, "status");
    json_t *md = json_object_get(nu, "metadata");
    if (old) {
        json_t *a = user_view(old), *b = user_view(nu);
        int same = json_equal(a, b);
        int spec_same = json_equal(json_object_get(a, "spec"), json_object_get(b, "spec"));
        json_decref(a);
        json_decref(b);
        if (same) {
            rc = KP_STORE_UNCHANGED;
            *out = old;
            json_decref(nu);
            goto rollback;
        }
        json_t *omd = json_object_get(old, "metadata");
        json_object_set(md, "uid", json_object_get(omd, "uid"));
        json_object_set(md, "creationTimestamp", json_object_get(omd, "creationTimestamp"));
        json_int_t gen = json_integer_value(json_object_get(omd, "generation"));
        json_object_set_new(md, "generation", json_integer(spec_same ? gen : gen + 1));
        json_t *status = json_object_get(old, "status");
        if (status) json_object_set(nu, "status", status);
        json_decref(old);
        rc = KP_STORE_UPDATED;
    } else {
        char uid[37], ts[32];
        new_uid(uid);
        rfc3339_now(ts);
        json_object_set_new(md, "uid", json_string(uid));
        json_object_set_new(md, "creationTimestamp", json_string(ts));
        json_object_set_new(md, "generation", json_integer(1));
        rc = KP_STORE_CREATED;
    }
    json_object_del(md, "deletionTimestamp");
    int64_t rv = next_rv(s);
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_object_set_new(md, "resourceVersion", json_string(rvs));
    if (rv < 0 || save(s, kind_c, ns_c, name_c, rv, nu) < 0 || exec(s, "COMMIT") < 0) {
        json_decref(nu);
        rc = KP_STORE_ERROR;
        goto rollback;
    }
    *out = nu;
    pthread_mutex_unlock(&s->lock);
    notify(s, kind_c, ns_c, name_c);
    goto done;
rollback:
    exec(s, "ROLLBACK");
unlock:
    pthread_mutex_unlock(&s->lock);
done:
    free(kind_c);
    free(name_c);
    free(ns_c);
    return rc;
}

int kp_store_restore(kp_store_t *s, const json_t *obj, int replace)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = meta_str((json_t *)obj, "name");
    const char *ns = meta_str((json_t *)obj, "namespace");
    if (!ns) ns = "";
    if (!kind || !name) return KP_STORE_ERROR;
    json_t *nu = json_deep_copy(obj);
    json_object_del(nu, "status");
    json_t *md = json_object_get(nu, "metadata");
    json_object_del(md, "deletionTimestamp");
    json_object_del(md, "managedFields");
    if (!json_is_string(json_object_get(md, "uid"))) {
        char uid[37];
        new_uid(uid);
        json_object_set_new(md, "uid", json_string(uid));
    }
    json_t *gen = json_object_get(md, "generation");
    if (!json_is_integer(gen) || json_integer_value(gen) < 1)
        json_object_set_new(md, "generation", json_integer(1));
    if (!json_is_string(json_object_get(md, "creationTimestamp"))) {
        char ts[32];
        rfc3339_now(ts);
        json_object_set_new(md, "creationTimestamp", json_string(ts));
    }
    char *kind_c = kp_xstrdup(kind), *name_c = kp_xstrdup(name), *ns_c = kp_xstrdup(ns);
    int rc;
    pthread_mutex_lock(&s->lock);
    if (exec(s, "BEGIN IMMEDIATE") < 0) {
        pthread_mutex_unlock(&s->lock);
        rc = KP_STORE_ERROR;
        goto done;
    }
    json_t *old = load(s, kind_c, ns_c, name_c);
    rc = !old                                 ? KP_STORE_CREATED
         : meta_str(old, "deletionTimestamp") ? KP_STORE_CONFLICT
         : replace                            ? KP_STORE_UPDATED
                                              : KP_STORE_EXISTS;
    json_decref(old);
    if (rc == KP_STORE_CREATED || rc == KP_STORE_UPDATED) {
        int64_t rv = next_rv(s);
        char rvs[32];
        snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
        json_object_set_new(md, "resourceVersion", json_string(rvs));
        if (rv < 0 || save(s, kind_c, ns_c, name_c, rv, nu) < 0 || exec(s, "COMMIT") < 0)
            rc = KP_STORE_ERROR;
    }
    if (rc != KP_STORE_CREATED && rc != KP_STORE_UPDATED) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    if (rc == KP_STORE_CREATED || rc == KP_STORE_UPDATED) notify(s, kind_c, ns_c, name_c);
done:
    json_decref(nu);
    free(kind_c);
    free(name_c);
    free(ns_c);
    return rc;
}

/* Common read-modify-write of one row. fn edits obj; returns 1 to save, 0 for no change. */
static int modify(kp_store_t *s, const char *kind, const char *ns, const char *name,
                  int (*fn)(json_t *obj, void *arg), void *arg, json_t **out, int do_notify)
{
    if (!ns) ns = "";
    pthread_mutex_lock(&s->lock);
    if (out) *out = NULL;
    if (exec(s, "BEGIN IMMEDIATE") < 0) {
        pthread_mutex_unlock(&s->lock);
        return KP_STORE_ERROR;
    }
    json_t *obj = load(s, kind, ns, name);
    if (!obj) {
        exec(s, "ROLLBACK");
        pthread_mutex_unlock(&s->lock);
        return KP_STORE_NOT_FOUND;
    }
    if (!fn(obj, arg)) {
        exec(s, "ROLLBACK");
        pthread_mutex_unlock(&s->lock);
        if (out)
            *out = obj;
        else
            json_decref(obj);
        return KP_STORE_UNCHANGED;
    }
    int64_t rv = next_rv(s);
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rvs));
    if (rv < 0 || save(s, kind, ns, name, rv, obj) < 0 || exec(s, "COMMIT") < 0) {
        exec(s, "ROLLBACK");
        pthread_mutex_unlock(&s->lock);
        json_decref(obj);
        return KP_STORE_ERROR;
    }
    pthread_mutex_unlock(&s->lock);
    if (do_notify) notify(s, kind, ns, name);
    if (out)
        *out = obj;
    else
        json_decref(obj);
    return KP_STORE_UPDATED;
}

static int set_status(json_t *obj, void *arg)
{
    json_t *status = arg;
    if (json_equal(json_object_get(obj, "status"), status)) return 0;
    json_object_set(obj, "status", status);
    return 1;
}

int kp_store_put_status(kp_store_t *s, const char *kind, const char *ns, const char *name,
                        json_t *status, json_t **out)
{
    /* status writes do not wake the reconciler: they are its own output */
    return modify(s, kind, ns, name, set_status, status, out, 0);
}

static int set_deleted(json_t *obj, void *arg)
{
    json_t *md = json_object_get(obj, "metadata");
    if (json_object_get(md, "deletionTimestamp")) return 0;
    char ts[32];
    rfc3339_now(ts);
    json_object_set_new(md, "deletionTimestamp", json_string(ts));
    return 1;
}

int kp_store_mark_deleted(kp_store_t *s, const char *kind, const char *ns, const char *name,
                          json_t **out)
{
    return modify(s, kind, ns, name, set_deleted, NULL, out, 1);
}

int kp_store_remove(kp_store_t *s, const char *kind, const char *ns, const char *name)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = KP_STORE_ERROR;
    if (exec(s, "BEGIN IMMEDIATE") < 0) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    if ((st = stmt(s, "DELETE FROM resources WHERE kind=? AND ns=? AND name=?")) != NULL) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        rc = step_write(s, st, "DELETE FROM resources") == SQLITE_DONE
                 ? (sqlite3_changes(s->db) ? KP_STORE_OK : KP_STORE_NOT_FOUND)
                 : KP_STORE_ERROR;
        stmt_done(s, st);
    }
    /* a removal is a change: it takes a resourceVersion, as in Kubernetes, so a watch
     * (control/api/k8s_watch.c) sees it */
    if (rc == KP_STORE_OK && next_rv(s) < 0) rc = KP_STORE_ERROR;
    if (exec(s, rc == KP_STORE_ERROR ? "ROLLBACK" : "COMMIT") < 0) rc = KP_STORE_ERROR;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- tokens ---- */

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A fresh token (32 random bytes, hex) and its hash. -1 when there is no randomness. */
static int token_new(char token_out[65], char hash[65])
{
    uint8_t r[32];
    if (RAND_bytes(r, sizeof(r)) != 1) return -1;
    for (int i = 0; i < 32; i++) snprintf(token_out + 2 * i, 3, "%02x", r[i]);
    sha256_hex(token_out, hash);
    return 0;
}

/* @locks: s->lock held. 0 or -1. */
static int token_insert(kp_store_t *s, const char *hash, const char *ns, const char *description,
                        const char *ts)
{
    sqlite3_stmt *st;
    if ((st = stmt(s, "INSERT INTO tokens(hash, ns, description, created) VALUES(?,?,?,?)")) ==
        NULL)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (ns)
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ts, -1, SQLITE_STATIC);
    int rc = step_write(s, st, "INSERT INTO tokens") == SQLITE_DONE ? 0 : -1;
    stmt_done(s, st);
    return rc;
}

int kp_store_token_create(kp_store_t *s, const char *ns, const char *description,
                          char token_out[65])
{
    char hash[65], ts[32];
    if (token_new(token_out, hash) < 0) return -1;
    rfc3339_now(ts);
    pthread_mutex_lock(&s->lock);
    int rc = token_insert(s, hash, ns, description, ts);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kp_store_token_lookup(kp_store_t *s, const char *token, int *is_admin, char **ns)
{
    if (!token || strlen(token) != 64) return -1;
    char hash[65];
    sha256_hex(token, hash);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, "SELECT ns FROM tokens WHERE hash=? AND revoked IS NULL")) != NULL) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, 0);
            *is_admin = v == NULL;
            *ns = v ? kp_xstrdup((const char *)v) : NULL;
            rc = 0;
        }
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- team tokens ---- */

/* The team's valid tokens, or -1. @locks: s->lock held. */
static int team_tokens_valid(kp_store_t *s, const char *team)
{
    sqlite3_stmt *st;
    if ((st = stmt(s, "SELECT count(*) FROM tokens WHERE ns=? AND revoked IS NULL")) == NULL)
        return -1;
    sqlite3_bind_text(st, 1, team, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    stmt_done(s, st);
    return n;
}

/* Marks the team's valid tokens revoked at ts: how many, or -1. @locks: s->lock held. */
static int team_tokens_mark_revoked(kp_store_t *s, const char *team, const char *ts)
{
    sqlite3_stmt *st;
    if ((st = stmt(s, "UPDATE tokens SET revoked=? WHERE ns=? AND revoked IS NULL")) == NULL)
        return -1;
    sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, team, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
    stmt_done(s, st);
    return n;
}

/* The three team operations share one shape: in a transaction, count the valid tokens, then
 * revoke them (revoke) and/or insert a new one (issue). need_valid: the count must be > 0
 * (rotate, revoke), else 0 (create). Returns a KP_STORE_* code. */
static int team_tokens_change(kp_store_t *s, const char *team, int need_valid, int revoke,
                              const char *issue_description, char token_out[65], int *revoked_n)
{
    char hash[65], ts[32];
    if (issue_description && token_new(token_out, hash) < 0) return KP_STORE_ERROR;
    rfc3339_now(ts);
    if (revoked_n) *revoked_n = 0;
    pthread_mutex_lock(&s->lock);
    if (exec(s, "BEGIN IMMEDIATE") < 0) {
        pthread_mutex_unlock(&s->lock);
        return KP_STORE_ERROR;
    }
    int rc = KP_STORE_ERROR;
    int valid = team_tokens_valid(s, team);
    if (valid < 0) goto rollback;
    if (need_valid && valid == 0) {
        rc = KP_STORE_NOT_FOUND;
        goto rollback;
    }
    if (!need_valid && valid > 0) {
        rc = KP_STORE_EXISTS;
        goto rollback;
    }
    int revoked = revoke ? team_tokens_mark_revoked(s, team, ts) : 0;
    if (revoked < 0) goto rollback;
    if (issue_description && token_insert(s, hash, team, issue_description, ts) < 0) goto rollback;
    if (exec(s, "COMMIT") < 0) goto rollback;
    pthread_mutex_unlock(&s->lock);
    if (revoked_n) *revoked_n = revoked;
    return issue_description && !revoke ? KP_STORE_CREATED : KP_STORE_UPDATED;
rollback:
    exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    if (issue_description) memset(token_out, 0, 65); /* never issued */
    return rc;
}

int kp_store_team_token_create(kp_store_t *s, const char *team, char token_out[65])
{
    return team_tokens_change(s, team, 0, 0, "team token", token_out, NULL);
}

int kp_store_team_token_rotate(kp_store_t *s, const char *team, char token_out[65], int *revoked_n)
{
    return team_tokens_change(s, team, 1, 1, "team token (rotated)", token_out, revoked_n);
}

int kp_store_team_tokens_revoke(kp_store_t *s, const char *team, int *revoked_n)
{
    return team_tokens_change(s, team, 1, 1, NULL, NULL, revoked_n);
}

/* One row per team: its tokens (t) and its namespace's resources (r), joined on the name.
 * Timestamps are RFC 3339 in UTC, so text order is time order. */
static const char teams_sql[] =
    "WITH t AS (SELECT ns AS name, sum(revoked IS NULL) AS valid, sum(revoked IS NOT NULL) AS rev,"
    "    min(created) AS first, max(CASE WHEN revoked IS NULL THEN created END) AS newest,"
    "    max(revoked) AS last_rev FROM tokens WHERE ns IS NOT NULL GROUP BY ns),"
    "  r AS (SELECT ns AS name, count(*) AS n,"
    "    min(json_extract(body, '$.metadata.creationTimestamp')) AS first"
    "    FROM resources WHERE ns <> '' GROUP BY ns),"
    "  names AS (SELECT name FROM t UNION SELECT name FROM r)"
    " SELECT names.name, coalesce(t.valid, 0), coalesce(t.rev, 0), coalesce(r.n, 0),"
    "   coalesce(min(t.first, r.first), t.first, r.first), t.newest, t.last_rev"
    " FROM names LEFT JOIN t ON t.name = names.name LEFT JOIN r ON r.name = names.name"
    " WHERE ?1 IS NULL OR names.name = ?1 ORDER BY names.name";

int kp_store_teams_list(kp_store_t *s, const char *team, kp_store_team_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    if ((st = stmt(s, teams_sql)) == NULL) {
        kp_error("store", "teams: %s", sqlite3_errmsg(s->db));
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    if (team)
        sqlite3_bind_text(st, 1, team, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = kp_xrealloc(*out, (size_t)cap * sizeof(**out));
        }
        kp_store_team_t *t = &(*out)[(*n)++];
        t->name = col(st, 0);
        t->tokens = sqlite3_column_int(st, 1);
        t->tokens_revoked = sqlite3_column_int(st, 2);
        t->resources = sqlite3_column_int(st, 3);
        t->created = col(st, 4);
        t->token_created = col(st, 5);
        t->last_revoked = col(st, 6);
    }
    stmt_done(s, st);
    pthread_mutex_unlock(&s->lock);
    if (rc != SQLITE_DONE) {
        kp_store_teams_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void kp_store_teams_free(kp_store_team_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].created);
        free(t[i].token_created);
        free(t[i].last_revoked);
    }
    free(t);
}

/* ---- meta ---- */

int kp_store_meta_get(kp_store_t *s, const char *key, char **value)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    *value = NULL;
    if ((st = stmt(s, "SELECT value FROM meta WHERE key=?")) != NULL) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *value = kp_xstrdup((const char *)sqlite3_column_text(st, 0));
            rc = 0;
        }
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kp_store_meta_set(kp_store_t *s, const char *key, const char *value)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, "INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)")) != NULL) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = step_write(s, st, "INSERT INTO meta") == SQLITE_DONE ? 0 : -1;
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- service users ---- */

int kp_store_user_put(kp_store_t *s, const kp_service_user_t *u)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, "INSERT OR IGNORE INTO service_users(name, team, app, pool, principal,"
                      " secret, generation, created_ms, revoked_ms) VALUES(?,?,?,?,?,?,?,?,?)")) !=
        NULL) {
        sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->team, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, u->app, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, u->pool, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, u->principal, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, u->secret ? u->secret : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, u->generation);
        sqlite3_bind_int64(st, 8, u->created_ms);
        sqlite3_bind_int64(st, 9, u->revoked_ms);
        rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->db) == 1 : -1;
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == 1) notify(s, "ServiceUser", u->team, u->name);
    return rc;
}

int kp_store_user_set_registry_hash(kp_store_t *s, const char *name, const char *hash)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, "UPDATE service_users SET registry_hash=? WHERE name=?")) != NULL) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(s->db) == 1 ? 0 : -1;
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kp_store_user_registry_auth(kp_store_t *s, const char *name, char **hash, char **team,
                                char **pool)
{
    *hash = *team = *pool = NULL;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, "SELECT registry_hash, team, pool FROM service_users WHERE name=? AND"
                      " revoked_ms=0 AND registry_hash IS NOT NULL")) != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *hash = col(st, 0);
            *team = col(st, 1);
            *pool = col(st, 2);
            rc = 0;
        }
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kp_store_users_list(kp_store_t *s, const char *pool, kp_service_user_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1, cap = 0;
    const char *sql =
        pool ? "SELECT name, team, app, pool, principal, secret, generation, created_ms,"
               " revoked_ms FROM service_users WHERE revoked_ms=0 AND pool=? ORDER BY name"
             : "SELECT name, team, app, pool, principal, secret, generation, created_ms,"
               " revoked_ms FROM service_users WHERE revoked_ms=0 ORDER BY name";
    if ((st = stmt(s, sql)) != NULL) {
        if (pool) sqlite3_bind_text(st, 1, pool, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = kp_xrealloc(*out, (size_t)cap * sizeof(**out));
            }
            kp_service_user_t *u = &(*out)[(*n)++];
            u->name = col(st, 0);
            u->team = col(st, 1);
            u->app = col(st, 2);
            u->pool = col(st, 3);
            u->principal = col(st, 4);
            u->secret = col(st, 5);
            u->generation = sqlite3_column_int64(st, 6);
            u->created_ms = sqlite3_column_int64(st, 7);
            u->revoked_ms = sqlite3_column_int64(st, 8);
        }
        stmt_done(s, st);
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int user_exec(kp_store_t *s, const char *sql, const char *name, int64_t v, int bind_v)
{
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st;
    int rc = -1;
    if ((st = stmt(s, sql)) != NULL) {
        if (bind_v) {
            sqlite3_bind_int64(st, 1, v);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        }
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        stmt_done(s, st);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == 0) notify(s, "ServiceUser", "", name);
    return rc;
}

int kp_store_user_revoke(kp_store_t *s, const char *name, int64_t now_ms)
{
    return user_exec(s, "UPDATE service_users SET revoked_ms=? WHERE name=?", name, now_ms, 1);
}

int kp_store_user_delete(kp_store_t *s, const char *name)
{
    return user_exec(s, "DELETE FROM service_users WHERE name=?", name, 0, 0);
}

void kp_store_users_free(kp_service_user_t *u, int n)
{
    for (int i = 0; i < n; i++) {
        free(u[i].name);
        free(u[i].team);
        free(u[i].app);
        free(u[i].pool);
        free(u[i].principal);
        free(u[i].secret);
    }
    free(u);
}
