/*
 * control.c — control plane lifecycle and the reconciler.
 *
 * The reconciler is one thread with a work queue of objects ("Kind/ns/name"), each with a
 * due time and a failure count. Store changes enqueue the object at once; a failed
 * reconcile is retried with exponential backoff (1 s doubling up to retry_max_ms); every
 * resync_ms all Topics, Streams and Pools are enqueued again, which is how drift made
 * directly in a pool is found and repaired. One thread keeps per-object work ordered and
 * the admin calls to each pool sequential.
 */
#include "control/control_int.h"
#include "control/events.h"

#include "control/backup.h"
#include "control/kinds.h"
#include "control/pool_metrics.h"
#include "core/metrics.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/crc32c.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "http/api.h"
#include "http/k8s_watch.h"
#include "core/fs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct queue_item {
    char kind[64], ns[128], name[256];
    int64_t due_ms;
    uint64_t seq;
    int failures;
    /* the object's resourceVersion when a resync queued it; 0 when a change (or a retry)
     * queued it: only a resync's item may be found unchanged without reading its body */
    int64_t rv;
} queue_item_t;

/* Order matters for a resync: pools first, then what needs them. Secret is here only to
 * finish deletions (nothing else reconciles it). */
static const char *reconciled_kinds[] = {
    "Pool", "Topic", "Stream", "Application", "AivenApplication", "Secret"};

/* ---- queue ---- */

static void enqueue_locked(kp_control_t *c, const char *kind, const char *ns, const char *name,
                           int64_t due_ms, int reset, int64_t rv)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s/%s", kind, ns, name);
    queue_item_t *it = kp_hmap_get(&c->queue, key, strlen(key));
    if (!it) {
        it = kp_xcalloc(1, sizeof(*it));
        snprintf(it->kind, sizeof(it->kind), "%s", kind);
        snprintf(it->ns, sizeof(it->ns), "%s", ns);
        snprintf(it->name, sizeof(it->name), "%s", name);
        it->due_ms = due_ms;
        it->seq = ++c->queue_seq;
        it->rv = rv;
        kp_hmap_put(&c->queue, key, strlen(key), it);
    } else {
        if (due_ms < it->due_ms) {
            it->due_ms = due_ms;
            it->seq = ++c->queue_seq;
        }
        if (it->rv != rv) it->rv = 0; /* merged with a change: read it */
    }
    if (reset) it->failures = 0;
    if (due_ms <= kp_mono_ms()) c->queue_now++;
    pthread_cond_signal(&c->cond);
}

static int reconciled(const char *kind)
{
    for (size_t i = 0; i < sizeof(reconciled_kinds) / sizeof(*reconciled_kinds); i++)
        if (!strcmp(kind, reconciled_kinds[i])) return 1;
    return 0;
}

static void on_change(const char *kind, const char *ns, const char *name, void *arg)
{
    kp_control_t *c = arg;
    pthread_mutex_lock(&c->lock);
    if (reconciled(kind)) {
        /* a changed Pool's client is rebuilt by kp_control_pool on the reconciler thread,
         * the only thread that uses clients */
        enqueue_locked(c, kind, ns, name, kp_mono_ms(), 1, 0);
        /* an Application mirrors its AivenApplication's status */
        if (!strcmp(kind, "AivenApplication"))
            enqueue_locked(c, "Application", ns, name, kp_mono_ms(), 1, 0);
    } else if (!strcmp(kind, "ServiceUser")) {
        /* a user came or went: every topic's ACLs may change */
        c->users_gen++;
        c->next_resync_ms = kp_mono_ms();
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

/* A resync: every object of the reconciled kinds, by key only (no body is read here; the
 * reconcile reads what it needs). */
static void enqueue_all(kp_control_t *c)
{
    for (size_t k = 0; k < sizeof(reconciled_kinds) / sizeof(*reconciled_kinds); k++) {
        kp_store_key_t *keys;
        size_t n;
        if (kp_store_keys(c->store, reconciled_kinds[k], &keys, &n) < 0) continue;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < n; i++)
            enqueue_locked(c, reconciled_kinds[k], keys[i].ns, keys[i].name, kp_mono_ms(), 0,
                           keys[i].rv);
        pthread_mutex_unlock(&c->lock);
        kp_store_keys_free(keys, n);
    }
}

int kp_control_users(kp_control_t *c, const kp_service_user_t **out, int *n)
{
    pthread_mutex_lock(&c->lock);
    uint64_t gen = c->users_gen;
    pthread_mutex_unlock(&c->lock);
    /* read after taking gen: a change committed meanwhile bumps it again, so the next call
     * reads once more */
    if (c->users_loaded != gen || !c->users_loaded) {
        kp_service_user_t *u;
        int nu;
        if (kp_store_users_list(c->store, NULL, &u, &nu) < 0) return -1;
        kp_store_users_free(c->users, c->nusers);
        c->users = u;
        c->nusers = nu;
        c->users_loaded = gen;
        /* what desired ACLs read of each user, in the order they are read */
        uint32_t h1 = (uint32_t)nu, h2 = 0x75736572;
        for (int i = 0; i < nu; i++) {
            const char *f[] = {u[i].name, u[i].team, u[i].app, u[i].pool, u[i].principal};
            for (size_t k = 0; k < sizeof(f) / sizeof(*f); k++) {
                const char *p = f[k] ? f[k] : "";
                h1 = kp_crc32c(h1, p, strlen(p) + 1);
                h2 = kp_crc32c(h2 ^ h1, p, strlen(p) + 1);
            }
        }
        c->users_fp = (uint64_t)h1 << 32 | h2;
    }
    *out = c->users;
    *n = c->nusers;
    return 0;
}

void kp_control_enqueue(kp_control_t *c, const char *kind, const char *ns, const char *name)
{
    pthread_mutex_lock(&c->lock);
    enqueue_locked(c, kind, ns, name, kp_mono_ms(), 0, 0);
    pthread_mutex_unlock(&c->lock);
}

void kp_control_resync(kp_control_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->next_resync_ms = 0;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static int due_cmp(const void *a, const void *b)
{
    const queue_item_t *x = *(queue_item_t *const *)a, *y = *(queue_item_t *const *)b;
    if (x->due_ms != y->due_ms) return x->due_ms < y->due_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void item_key(const queue_item_t *q, char *key, size_t n)
{
    snprintf(key, n, "%s/%s/%s", q->kind, q->ns, q->name);
}

/* Takes every due item out of the queue, most overdue first (ties: enqueue order), in one
 * pass: taking them one pass each made a resync of N objects cost N*N/2 steps (10,000
 * Topics: 50 million). *wait_ms says how long to sleep when none is due. */
static queue_item_t **take_due_locked(kp_control_t *c, int64_t now, int64_t *wait_ms, size_t *n)
{
    queue_item_t **due = NULL;
    size_t cap = 0;
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    *n = 0;
    *wait_ms = 1000;
    while (kp_hmap_next(&c->queue, &it, &k, &kl, &v)) {
        queue_item_t *q = v;
        if (q->due_ms <= now) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                due = kp_xrealloc(due, cap * sizeof(*due));
            }
            due[(*n)++] = q;
        } else if (q->due_ms - now < *wait_ms) {
            *wait_ms = q->due_ms - now;
        }
    }
    for (size_t i = 0; i < *n; i++) {
        char key[512];
        item_key(due[i], key, sizeof(key));
        kp_hmap_del(&c->queue, key, strlen(key));
    }
    if (*n > 1) qsort(due, *n, sizeof(*due), due_cmp);
    return due;
}

/* Puts a taken item back (a batch was cut short); merges with one queued since. */
static void requeue_locked(kp_control_t *c, queue_item_t *q)
{
    char key[512];
    item_key(q, key, sizeof(key));
    queue_item_t *have = kp_hmap_get(&c->queue, key, strlen(key));
    if (!have) {
        kp_hmap_put(&c->queue, key, strlen(key), q);
        return;
    }
    if (q->due_ms < have->due_ms) {
        have->due_ms = q->due_ms;
        have->seq = q->seq;
    }
    if (have->rv != q->rv) have->rv = 0;
    free(q);
}

static void reconcile_one(kp_control_t *c, queue_item_t *q)
{
    /* a drift check of a Topic that nothing changed since it was last found in sync, in the
     * store or in the pool, reads no body and writes nothing */
    int topic = !strcmp(q->kind, "Topic");
    if (topic && q->rv > 0) {
        if (kp_topic_unchanged(c, q->ns, q->name, q->rv)) {
            kp_metric_add(&c->topic_checks_unchanged, 1);
            free(q);
            return;
        }
        kp_metric_add(&c->topic_checks_full, 1);
    }
    json_t *obj = NULL;
    kp_store_get(c->store, q->kind, q->ns, q->name, &obj);
    if (!obj) {
        if (topic) kp_topic_memo_forget(c, q->ns, q->name);
        free(q);
        return; /* deleted meanwhile */
    }
    kp_reconcile_result_t res = {0, 0, 0};
    int64_t start_us = kp_mono_us();
    if (!strcmp(q->kind, "Topic"))
        kp_topic_reconcile(c, obj, &res);
    else if (!strcmp(q->kind, "Stream"))
        kp_stream_reconcile(c, obj, &res);
    else if (!strcmp(q->kind, "Pool"))
        kp_pool_reconcile(c, obj, &res);
    else if (!strcmp(q->kind, "Application"))
        kp_application_reconcile(c, obj, &res);
    else if (!strcmp(q->kind, "AivenApplication"))
        kp_aivenapp_reconcile(c, obj, &res);
    else if (!strcmp(q->kind, "Secret") &&
             json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        kp_store_remove(c->store, "Secret", q->ns, q->name);
    json_decref(obj);
    kp_control_metrics_reconciled(q->kind, res.failed, kp_mono_us() - start_us);
    if (!res.retry) {
        free(q);
        return;
    }
    int64_t backoff = res.retry_ms;
    if (backoff <= 0) {
        backoff = 1000;
        for (int i = 0; i < q->failures && backoff < c->cfg.retry_max_ms; i++) backoff *= 2;
        if (backoff > c->cfg.retry_max_ms) backoff = c->cfg.retry_max_ms;
    }
    pthread_mutex_lock(&c->lock);
    int failures = q->failures + 1;
    enqueue_locked(c, q->kind, q->ns, q->name, kp_mono_ms() + backoff, 0, 0);
    char key[512];
    snprintf(key, sizeof(key), "%s/%s/%s", q->kind, q->ns, q->name);
    queue_item_t *again = kp_hmap_get(&c->queue, key, strlen(key));
    if (again && again->due_ms > kp_mono_ms()) again->failures = failures;
    pthread_mutex_unlock(&c->lock);
    free(q);
}

static void *reconciler_main(void *arg)
{
    kp_control_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        int64_t now = kp_mono_ms();
        if (now >= c->next_resync_ms) {
            c->next_resync_ms = now + c->cfg.resync_ms;
            c->users_gen++; /* users are read again once per pass */
            pthread_mutex_unlock(&c->lock);
            kp_janitor_pass(c);
            enqueue_all(c);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        int64_t wait;
        size_t n;
        queue_item_t **due = take_due_locked(c, now, &wait, &n);
        if (n) {
            /* new work (an API change) cuts the batch short so that it is not queued behind a
             * whole resync: the rest goes back and is sorted in with it */
            uint64_t now_seen = c->queue_now;
            size_t i = 0;
            while (i < n && !c->stop && c->queue_now == now_seen) {
                pthread_mutex_unlock(&c->lock);
                reconcile_one(c, due[i++]);
                pthread_mutex_lock(&c->lock);
            }
            for (; i < n; i++) requeue_locked(c, due[i]);
            free(due);
            continue;
        }
        free(due);
        if (c->next_resync_ms - now < wait) wait = c->next_resync_ms - now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- pools ---- */

static void pool_free(kp_pool_t *p)
{
    if (!p) return;
    kp_pool_client_free(p->client);
    free(p->name);
    free(p->fingerprint);
    free(p);
}

kp_pool_t *kp_control_pool(kp_control_t *c, const char *name, char *err, size_t errlen)
{
    json_t *obj = NULL;
    /* every Topic asks for its pool: the Pool's body is read and parsed again only when its
     * resourceVersion moved (a client built from a spec whose rv is unchanged is current) */
    kp_pool_t *have = NULL;
    int64_t rv = 0;
    if (name) {
        pthread_mutex_lock(&c->lock);
        have = kp_hmap_get(&c->pools, name, strlen(name));
        pthread_mutex_unlock(&c->lock);
    }
    int rc =
        name ? kp_store_get_if_changed(c->store, "Pool", "", name, have ? have->rv : -1, &obj, &rv)
             : KP_STORE_NOT_FOUND;
    if (rc == KP_STORE_UNCHANGED) return have;
    if (rc != KP_STORE_OK) {
        char names[512];
        kp_control_pool_names(c, names, sizeof(names));
        snprintf(err, errlen, "pool \"%s\" does not exist (pools: %s)", name ? name : "",
                 names[0] ? names : "none");
        return NULL;
    }
    json_t *spec = json_object_get(obj, "spec");
    json_t *tls = json_object_get(spec, "tls");
    const char *bootstrap = json_string_value(json_object_get(spec, "bootstrapServers"));
    const char *ca = json_string_value(json_object_get(tls, "caLocation"));
    const char *cert = json_string_value(json_object_get(tls, "certificateLocation"));
    const char *key = json_string_value(json_object_get(tls, "keyLocation"));
    if (!bootstrap || !*bootstrap) {
        snprintf(err, errlen, "pool \"%s\": spec.bootstrapServers is required", name);
        json_decref(obj);
        return NULL;
    }
    char fp[4096];
    snprintf(fp, sizeof(fp), "%s|%s|%s|%s", bootstrap, ca ? ca : "", cert ? cert : "",
             key ? key : "");
    pthread_mutex_lock(&c->lock);
    kp_pool_t *p = kp_hmap_get(&c->pools, name, strlen(name));
    if (p && strcmp(p->fingerprint, fp) != 0) {
        kp_hmap_del(&c->pools, name, strlen(name));
        pool_free(p);
        p = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (!p) {
        kp_pool_conn_t conn = {bootstrap, ca, cert, key, c->cfg.pool_timeout_ms};
        kp_pool_client_t *client = kp_pool_client_new(&conn, err, errlen);
        if (!client) {
            json_decref(obj);
            return NULL;
        }
        kp_pool_client_set_cancel(client, &c->stop);
        p = kp_xcalloc(1, sizeof(*p));
        p->name = kp_xstrdup(name);
        p->fingerprint = kp_xstrdup(fp);
        p->client = client;
        pthread_mutex_lock(&c->lock);
        kp_hmap_put(&c->pools, name, strlen(name), p);
        pthread_mutex_unlock(&c->lock);
    }
    json_t *repl = json_object_get(spec, "replication");
    p->repl_min = json_is_integer(json_object_get(repl, "min"))
                      ? (int32_t)json_integer_value(json_object_get(repl, "min"))
                      : 1;
    p->repl_max = json_is_integer(json_object_get(repl, "max"))
                      ? (int32_t)json_integer_value(json_object_get(repl, "max"))
                      : 1;
    p->repl_default = json_is_integer(json_object_get(repl, "default"))
                          ? (int32_t)json_integer_value(json_object_get(repl, "default"))
                          : p->repl_min;
    p->embedded = json_is_true(json_object_get(spec, "embedded"));
    p->rv = rv;
    json_decref(obj);
    return p;
}

void kp_control_pool_names(kp_control_t *c, char *out, size_t n)
{
    out[0] = 0;
    json_t *items;
    if (kp_store_list(c->store, "Pool", "", &items, NULL) == KP_STORE_OK) {
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o)
        {
            size_t l = strlen(out);
            snprintf(out + l, n - l, "%s%s", l ? ", " : "",
                     json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
        }
    }
    json_decref(items);
}

/* ---- status helpers ---- */

void kp_status_time(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *without_times(json_t *status)
{
    json_t *s = json_deep_copy(status);
    /* a Pool's lastUpdateTime too: rewriting it alone each resync moved the store's
     * resourceVersion on an idle pool, and every watch hub then read every object again */
    json_object_del(s, "lastUpdateTime");
    json_object_del(s, "synchronizationTime");
    json_object_del(s, "latestSyncFailure");
    json_t *conds = json_object_get(s, "conditions");
    size_t i;
    json_t *cnd;
    json_array_foreach(conds, i, cnd) json_object_del(cnd, "lastUpdateTime");
    return s;
}

/* The state of a status: synchronizationState, else a Pool's state. */
static const char *status_state(const json_t *s)
{
    const char *st = json_string_value(json_object_get(s, "synchronizationState"));
    return st ? st : json_string_value(json_object_get(s, "state"));
}

/* Its message: message, else the first condition's "reason: message". */
static void status_message(const json_t *s, char *out, size_t n)
{
    const char *m = json_string_value(json_object_get(s, "message"));
    const json_t *cond = json_array_get(json_object_get(s, "conditions"), 0);
    const char *cm = json_string_value(json_object_get(cond, "message"));
    const char *cr = json_string_value(json_object_get(cond, "reason"));
    if (m)
        snprintf(out, n, "%s", m);
    else if (cm)
        snprintf(out, n, "%s%s%s", cr ? cr : "", cr ? ": " : "", cm);
    else
        out[0] = 0;
}

/* An Event (events.h) for a status written over old (may be NULL) when its state or message
 * changed, or a new generation was taken up: what `kubectl describe` shows. */
static void status_event(const json_t *obj, const json_t *old, const json_t *status)
{
    const char *state = status_state(status), *was = status_state(old);
    char msg[768], old_msg[768];
    status_message(status, msg, sizeof(msg));
    status_message(old, old_msg, sizeof(old_msg));
    json_t *gen = json_object_get(status, "observedGeneration");
    int new_gen = gen && !json_equal(gen, json_object_get(old, "observedGeneration"));
    if (!state || (was && !strcmp(state, was) && !strcmp(msg, old_msg) && !new_gen)) return;
    int bad = strstr(state, "Fail") || strstr(state, "Error") || !strcmp(state, "Invalid") ||
              !strcmp(state, "Unreachable");
    if (!msg[0] && json_is_integer(gen))
        snprintf(msg, sizeof(msg), "%s (generation %lld)", state,
                 (long long)json_integer_value(gen));
    kp_event_record(obj, bad ? "Warning" : "Normal", state, "%s", msg[0] ? msg : state);
}

int kp_status_write(kp_control_t *c, json_t *obj, json_t *status)
{
    /* a reconcile cut short by a stop says nothing: the next start does it again */
    if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) return 1;
    json_t *old = json_object_get(obj, "status");
    json_t *a = old ? without_times(old) : json_object(), *b = without_times(status);
    int same = old && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (same) return 0;
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (kp_store_put_status(c->store, json_string_value(json_object_get(obj, "kind")), ns ? ns : "",
                            json_string_value(json_object_get(md, "name")), status,
                            NULL) == KP_STORE_UPDATED)
        status_event(obj, old, status);
    return 1;
}

/* kpool up's /metrics: how drift checks of Topics went */
static void render_metrics(kp_buf_t *out, void *arg)
{
    kp_control_t *c = arg;
    kp_buf_appendf(
        out,
        "# HELP kpool_control_topic_checks_total Drift checks of Topics "
        "(control.resync.interval.ms): unchanged = nothing moved in the store or the "
        "pool since the Topic was last found in sync (no body read, nothing "
        "written); full = reconciled.\n"
        "# TYPE kpool_control_topic_checks_total counter\n"
        "kpool_control_topic_checks_total{result=\"unchanged\"} %lld\n"
        "kpool_control_topic_checks_total{result=\"full\"} %lld\n",
        (long long)atomic_load_explicit(&c->topic_checks_unchanged, memory_order_relaxed),
        (long long)atomic_load_explicit(&c->topic_checks_full, memory_order_relaxed));
    kp_k8s_watch_metrics_render(out);
}

int kp_glob_match(const char *p, const char *s)
{
    if (!*p) return !*s;
    if (*p == '*') {
        for (const char *t = s;; t++) {
            if (kp_glob_match(p + 1, t)) return 1;
            if (!*t) return 0;
        }
    }
    return *s && *p == *s && kp_glob_match(p + 1, s + 1);
}

/* ---- lifecycle ---- */

kp_control_t *kp_control_start(const kp_control_config_t *cfg, char *err, size_t errlen)
{
    kp_control_t *c = kp_xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    if (c->cfg.resync_ms <= 0) c->cfg.resync_ms = 60000;
    if (c->cfg.retry_max_ms <= 0) c->cfg.retry_max_ms = 60000;
    if (c->cfg.pool_timeout_ms <= 0) c->cfg.pool_timeout_ms = 10000;
    if (c->cfg.cert_validity_days <= 0) c->cfg.cert_validity_days = 365;
    if (c->cfg.cert_renew_before_s <= 0) c->cfg.cert_renew_before_s = 30 * 86400;
    if (c->cfg.janitor_grace_ms <= 0) c->cfg.janitor_grace_ms = 10 * 60000;
    kp_hmap_init(&c->pools);
    kp_hmap_init(&c->queue);
    kp_hmap_init(&c->topic_memo);
    c->users_gen = 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (kp_fs_mkdirs(cfg->state_dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", cfg->state_dir, strerror(errno));
        free(c);
        return NULL;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/master.key", cfg->state_dir);
    if (kp_pki_master_key_load_or_create(path, &c->master_key, err, errlen) < 0) {
        free(c);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/kpool.db", cfg->state_dir);
    c->store = kp_store_open(path, err, errlen);
    if (!c->store) {
        kp_pki_master_key_wipe(&c->master_key);
        free(c);
        return NULL;
    }
    kp_store_on_change(c->store, on_change, c);
    if (cfg->backup_dir)
        snprintf(path, sizeof(path), "%s", cfg->backup_dir);
    else
        snprintf(path, sizeof(path), "%s/backups", cfg->state_dir);
    kp_backup_config_t bcfg = {path,
                               cfg->backup_interval_ms,
                               cfg->backup_retention_count,
                               cfg->backup_retention_days,
                               cfg->backup_gzip,
                               c->cfg.pool_timeout_ms};
    c->backup = kp_backup_start(&bcfg, c->store, err, errlen);
    if (!c->backup) {
        kp_control_stop(c);
        return NULL;
    }
    kp_metrics_add_source(kp_control_metrics_render, NULL);
    char merr[128];
    c->metrics_sampler =
        kp_pool_metrics_start(c->store, cfg->console_metrics_interval_ms, merr, sizeof(merr)) == 0;
    if (!c->metrics_sampler) kp_warn("control", "no pool history for the console: %s", merr);
    kp_api_config_t acfg = {.listen = cfg->listen,
                            .cert_path = cfg->api_cert,
                            .key_path = cfg->api_key,
                            .master_key = &c->master_key,
                            .backup = c->backup};
    c->api = kp_api_start(&acfg, c->store, err, errlen);
    if (!c->api) {
        kp_control_stop(c);
        return NULL;
    }
    if (cfg->kube_listen) {
        kp_api_config_t kcfg = acfg;
        kcfg.listen = cfg->kube_listen;
        kcfg.cert_path = cfg->kube_cert;
        kcfg.key_path = cfg->kube_key;
        kcfg.tls = 1;
        /* kubectl's door is a convenience: without it (a busy port) the API still serves */
        char kerr[512];
        c->kube_api = kp_api_start(&kcfg, c->store, kerr, sizeof(kerr));
        if (!c->kube_api) kp_warn("control", "no kubectl listener: %s", kerr);
    }
    if (pthread_create(&c->thread, NULL, reconciler_main, c) != 0) {
        snprintf(err, errlen, "cannot start the reconciler thread");
        kp_control_stop(c);
        return NULL;
    }
    c->metrics_source = kp_metrics_add_source(render_metrics, c) == 0;
    return c;
}

kp_store_t *kp_control_store(kp_control_t *c)
{
    return c->store;
}

int kp_control_api_port(const kp_control_t *c)
{
    return kp_api_port(c->api);
}

int kp_control_kube_port(const kp_control_t *c)
{
    return c->kube_api ? kp_api_port(c->kube_api) : 0;
}

void kp_control_stop(kp_control_t *c)
{
    if (!c) return;
    if (c->metrics_source) kp_metrics_remove_source(render_metrics, c);
    kp_api_stop(c->api); /* no new writes */
    kp_api_stop(c->kube_api);
    if (c->thread) {
        pthread_mutex_lock(&c->lock);
        __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    kp_metrics_remove_source(kp_control_metrics_render, NULL);
    if (c->metrics_sampler) kp_pool_metrics_stop(); /* before the store closes */
    kp_backup_stop(c->backup); /* waits for a backup in progress; before the store closes */
    size_t it = 0;
    void *v;
    while (kp_hmap_next(&c->queue, &it, NULL, NULL, &v)) free(v);
    kp_hmap_free(&c->queue);
    it = 0;
    while (kp_hmap_next(&c->pools, &it, NULL, NULL, &v)) pool_free(v);
    kp_hmap_free(&c->pools);
    kp_store_users_free(c->users, c->nusers);
    kp_topic_memo_clear(c);
    if (c->store) kp_store_on_change(c->store, NULL, NULL);
    kp_store_close(c->store);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    kp_pki_master_key_wipe(&c->master_key);
    free(c);
}
