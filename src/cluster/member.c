/*
 * member.c — a broker's membership in a replicated pool (see member.h).
 *
 * Two threads of its own, both only talking to the store:
 *   session    renews the lease every third of the session timeout; when the lease has
 *              lapsed (etcd away longer than the timeout) registers again; refreshes the
 *              cached view when the watch says brokers or the controller changed (and at
 *              every renewal, so a missed change is repaired within a third of the timeout);
 *   controller campaigns (blocking at most a second at a time, so a stop is prompt); once
 *              elected, checks at every renewal that it still is.
 * The watch thread only flags changes and wakes the session thread.
 */
#include "cluster/member.h"

#include "core/clock.h"
#include "core/logging.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kp_member {
    kp_member_config_t cfg;
    kp_meta_store_t *store;
    kp_meta_broker_t self; /* owned copies of the strings */
    int ttl_s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    kp_member_view_t *view; /* guarded by lock */
    int dirty;              /* the watch saw a change: refresh the view */
    int stopping;
    int started;
    atomic_int controller;
    pthread_t session_thread, controller_thread;
    kp_meta_watch_fn listener;
    void *listener_arg;
};

/* ---- the view ---- */

static kp_member_view_t *view_new(void)
{
    kp_member_view_t *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    atomic_init(&v->refs, 1);
    v->controller_id = -1;
    return v;
}

void kp_member_view_put(kp_member_view_t *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1) return;
    kp_meta_brokers_free(v->brokers, v->nbrokers);
    free(v);
}

kp_member_view_t *kp_member_view(kp_member_t *m)
{
    pthread_mutex_lock(&m->lock);
    kp_member_view_t *v = m->view;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return v;
}

const kp_meta_endpoint_t *kp_member_endpoint(const kp_meta_broker_t *b, const char *listener)
{
    for (int i = 0; i < b->nendpoints; i++)
        if (b->endpoints[i].listener && !strcmp(b->endpoints[i].listener, listener))
            return &b->endpoints[i];
    return NULL;
}

int kp_member_is_controller(kp_member_t *m)
{
    return atomic_load(&m->controller);
}

kp_meta_store_t *kp_member_store(kp_member_t *m)
{
    return m->store;
}

/* Reads brokers and controller from the store; keeps the old view on failure. */
static void refresh_view(kp_member_t *m)
{
    char err[512];
    kp_member_view_t *v = view_new();
    if (!v) return;
    int rc = kp_meta_brokers_list(m->store, &v->brokers, &v->nbrokers, err, sizeof(err));
    if (rc) {
        kp_debug("cluster", "cannot list brokers: %s", err);
        kp_member_view_put(v);
        return;
    }
    int32_t id;
    int64_t epoch;
    rc = kp_meta_controller_get(m->store, &id, &epoch, err, sizeof(err));
    if (rc == 0) {
        v->controller_id = id;
        v->controller_epoch = epoch;
    }
    pthread_mutex_lock(&m->lock);
    kp_member_view_t *old = m->view;
    int changed = !old || old->nbrokers != v->nbrokers || old->controller_id != v->controller_id;
    for (int i = 0; !changed && i < v->nbrokers; i++)
        changed = old->brokers[i].id != v->brokers[i].id;
    m->view = v;
    pthread_mutex_unlock(&m->lock);
    if (changed) {
        char ids[256] = "";
        size_t off = 0;
        for (int i = 0; i < v->nbrokers && off < sizeof(ids) - 16; i++)
            off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%d", i ? "," : "",
                                    v->brokers[i].id);
        kp_info("cluster", "live brokers [%s], controller %d", ids, v->controller_id);
    }
    kp_member_view_put(old);
}

void kp_member_set_listener(kp_member_t *m, kp_meta_watch_fn fn, void *arg)
{
    m->listener = fn;
    m->listener_arg = arg;
}

static void on_watch(void *arg, const kp_meta_change_t *changes, int n)
{
    kp_member_t *m = arg;
    if (m->listener) m->listener(m->listener_arg, changes, n);
    int wake = 0;
    for (int i = 0; i < n; i++)
        wake |= changes[i].kind == KP_META_CH_RESYNC || changes[i].kind == KP_META_CH_BROKER ||
                changes[i].kind == KP_META_CH_CONTROLLER;
    if (!wake) return;
    pthread_mutex_lock(&m->lock);
    m->dirty = 1;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* ---- session ---- */

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Sleeps up to ms or until signalled. @locks: m->lock held. Returns m->stopping. */
static int wait_locked(kp_member_t *m, int64_t ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    if (!m->stopping && !m->dirty) pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    return m->stopping;
}

/* Registers, retrying while a previous session of this id lives (at most its timeout).
 * 0, or the store's error when it persists past give_up_ms. */
static int register_self(kp_member_t *m, int64_t give_up_ms, char *err, size_t errlen)
{
    int64_t until = kp_mono_ms() + give_up_ms;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        int stop = m->stopping;
        pthread_mutex_unlock(&m->lock);
        if (stop) {
            snprintf(err, errlen, "stopping");
            return KP_META_EFENCED;
        }
        kp_meta_broker_t self = m->self; /* offline_dir may be set meanwhile (never freed) */
        pthread_mutex_lock(&m->lock);
        self.offline_dir = m->self.offline_dir;
        pthread_mutex_unlock(&m->lock);
        int rc = kp_meta_broker_register(m->store, &self, m->ttl_s, err, errlen);
        if (rc == 0) return 0;
        if (kp_mono_ms() >= until) return rc;
        kp_debug("cluster", "registration: %s (retrying)", err);
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void *session_main(void *arg)
{
    kp_member_t *m = arg;
    int64_t interval = (int64_t)m->ttl_s * 1000 / 3;
    int64_t next_renew = kp_mono_ms() + interval;
    char err[512];
    pthread_mutex_lock(&m->lock);
    for (;;) {
        int64_t left = next_renew - kp_mono_ms();
        if (left > 0 && wait_locked(m, left)) break;
        if (m->stopping) break;
        int dirty = m->dirty;
        m->dirty = 0;
        pthread_mutex_unlock(&m->lock);
        if (kp_mono_ms() >= next_renew) {
            next_renew = kp_mono_ms() + interval;
            int rc = kp_meta_broker_keepalive(m->store, err, sizeof(err));
            if (rc == KP_META_EFENCED) {
                kp_warn("cluster", "%s: registering again", err);
                atomic_store(&m->controller, 0);
                if (register_self(m, interval, err, sizeof(err)) != 0)
                    kp_warn("cluster", "cannot register again yet: %s", err);
            } else if (rc) {
                kp_warn("cluster", "session renewal failed: %s", err);
            }
            dirty = 1;
        }
        if (dirty) refresh_view(m);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int kp_member_set_offline_dir(kp_member_t *m, const char *dir, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->lock);
    if (!m->self.offline_dir) m->self.offline_dir = strdup(dir);
    kp_meta_broker_t self = m->self;
    pthread_mutex_unlock(&m->lock);
    if (!self.offline_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = kp_meta_broker_update(m->store, &self, err, errlen);
    if (rc == KP_META_EFENCED) rc = 0; /* the next registration carries it */
    pthread_mutex_lock(&m->lock);
    m->dirty = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return rc ? -1 : 0;
}

/* ---- controller candidacy ---- */

static void *controller_main(void *arg)
{
    kp_member_t *m = arg;
    char err[512];
    int64_t check_ms = (int64_t)m->ttl_s * 1000 / 3;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        int stop = m->stopping;
        pthread_mutex_unlock(&m->lock);
        if (stop) break;
        if (atomic_load(&m->controller)) {
            /* still the controller? (the session may have lapsed meanwhile) */
            int32_t id = -1;
            int rc = kp_meta_controller_get(m->store, &id, NULL, err, sizeof(err));
            if (rc == 0 && id != m->cfg.broker_id) {
                kp_warn("cluster", "broker %d is no longer the controller (now %d)",
                        m->cfg.broker_id, id);
                atomic_store(&m->controller, 0);
                continue;
            }
            pthread_mutex_lock(&m->lock);
            struct timespec ts;
            deadline_in(&ts, check_ms);
            if (!m->stopping) pthread_cond_timedwait(&m->cond, &m->lock, &ts);
            pthread_mutex_unlock(&m->lock);
            continue;
        }
        int64_t epoch;
        int rc = kp_meta_controller_campaign(m->store, 1000, &epoch, err, sizeof(err));
        if (rc == 0) {
            atomic_store(&m->controller, 1);
            pthread_mutex_lock(&m->lock);
            m->dirty = 1;
            pthread_cond_broadcast(&m->cond);
            pthread_mutex_unlock(&m->lock);
        } else if (rc != KP_META_ETIMEDOUT) {
            kp_debug("cluster", "campaign: %s", err);
            struct timespec ts = {0, 300 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

kp_member_t *kp_member_open(const kp_member_config_t *cfg, const char *local_id,
                            const char *fresh_id, char *cluster_id, size_t idlen, char *err,
                            size_t errlen)
{
    kp_member_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->ttl_s = (cfg->session_timeout_ms + 999) / 1000;
    if (m->ttl_s < 2) m->ttl_s = 2; /* etcd's shortest lease with its default timings */
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    m->view = view_new();
    m->store = kp_meta_etcd_open(cfg->endpoints, cfg->prefix, cfg->request_timeout_ms,
                                 cfg->broker_id, err, errlen);
    if (!m->view || !m->store) goto fail;
    int rc = kp_meta_cluster_claim(m->store, local_id, cluster_id, idlen, err, errlen);
    if (rc == KP_META_EINVAL && (!local_id || !*local_id)) /* empty store, new directory */
        rc = kp_meta_cluster_claim(m->store, fresh_id, cluster_id, idlen, err, errlen);
    if (rc) goto fail;
    return m;
fail:
    kp_member_free(m);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int kp_member_start(kp_member_t *m, const kp_meta_broker_t *self, char *err, size_t errlen)
{
    m->self.id = self->id;
    m->self.rack = dup_or_null(self->rack);
    m->self.endpoints = calloc((size_t)self->nendpoints + 1, sizeof(*m->self.endpoints));
    if (!m->self.endpoints) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < self->nendpoints; i++) {
        m->self.endpoints[i].listener = dup_or_null(self->endpoints[i].listener);
        m->self.endpoints[i].host = dup_or_null(self->endpoints[i].host);
        m->self.endpoints[i].security = dup_or_null(self->endpoints[i].security);
        m->self.endpoints[i].port = self->endpoints[i].port;
        m->self.nendpoints++;
    }
    /* a restarted broker's previous session may still live: wait it out, and a little */
    if (register_self(m, (int64_t)m->ttl_s * 1000 + 2000, err, errlen) != 0) return -1;
    refresh_view(m);
    if (kp_meta_watch_start(m->store, on_watch, m, err, errlen) != 0) return -1;
    if (pthread_create(&m->session_thread, NULL, session_main, m) != 0) {
        snprintf(err, errlen, "cannot start the session thread: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&m->controller_thread, NULL, controller_main, m) != 0) {
        pthread_mutex_lock(&m->lock);
        m->stopping = 1;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->session_thread, NULL);
        snprintf(err, errlen, "cannot start the controller thread: %s", strerror(errno));
        return -1;
    }
    m->started = 1;
    return 0;
}

void kp_member_stop(kp_member_t *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    int was = m->stopping;
    m->stopping = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (was || !m->store) return;
    char err[512];
    if (atomic_exchange(&m->controller, 0) &&
        kp_meta_controller_resign(m->store, err, sizeof(err)) != 0)
        kp_warn("cluster", "controller resign: %s", err);
    if (kp_meta_broker_unregister(m->store, err, sizeof(err)) != 0)
        kp_warn("cluster", "ending the session: %s (it expires by itself)", err);
    if (m->started) {
        pthread_join(m->session_thread, NULL);
        pthread_join(m->controller_thread, NULL);
        m->started = 0;
    }
    kp_meta_watch_stop(m->store);
    kp_info("cluster", "broker %d left the pool", m->cfg.broker_id);
}

void kp_member_free(kp_member_t *m)
{
    if (!m) return;
    kp_member_stop(m);
    if (m->store) kp_meta_close(m->store);
    kp_member_view_put(m->view);
    kp_meta_broker_free(&m->self);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
