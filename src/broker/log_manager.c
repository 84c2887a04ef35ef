/* log_manager.c — retention, cleaning and flush.ms passes over every partition (see
 * log_manager.h). */
#include "broker/log_manager.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "storage/cleaner.h"
#include "storage/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kp_log_manager {
    kp_broker_t *broker;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    int64_t retention_interval_ms;
    int64_t cleaner_backoff_ms;
    int64_t flush_check_interval_ms; /* log.flush.scheduler.interval.ms */
    int cleaner_enabled;
    kp_cleaner_t *cleaner;
    /* dynamic log.cleaner.* (kp_log_manager_reconfigure), under lock; the manager thread
     * applies them before its next pass */
    int reconfigured;
    kp_cleaner_config_t cleaner_cfg;
};

static void retention_pass(kp_log_manager_t *m)
{
    int n;
    kp_topic_t **topics = kp_topics_list(m->broker->topics, &n);
    int64_t now = kp_wall_ms();
    for (int i = 0; i < n; i++) {
        kp_topic_t *t = topics[i];
        if (!atomic_load_explicit(&t->eff.cleanup_delete, memory_order_relaxed)) continue;
        kp_retention_t r = {
            atomic_load_explicit(&t->eff.retention_ms, memory_order_relaxed),
            atomic_load_explicit(&t->eff.retention_bytes, memory_order_relaxed),
        };
        for (int32_t p = 0; p < t->npartitions; p++) {
            kp_partition_t *part = kp_topic_partition(t, p);
            if (part) kp_partition_enforce_retention(part, &r, now);
        }
    }
    kp_topics_list_free(topics, n);
}

/* flush.ms in page-cache mode: queues an fsync (on the flusher threads, never here) for each
 * partition whose last flush is older than its topic's flush.ms. Runs every second; it visits
 * only the partitions appends left with unflushed data under a finite flush.ms (storage/log.c
 * keeps that list), so an idle broker's pass costs nothing however many topics it holds. It
 * used to walk every topic each second (kpool_log_flush_pass_partitions_total counts what it
 * visits now). */
static void flush_pass(void)
{
    kp_partitions_flush_interval_pass(kp_mono_ms(), NULL);
}

/* Cleans every compacted partition that is due. Returns how many moved their first dirty
 * offset forward: such a log may still be dirty (its offset map filled up, or segments
 * rolled while the pass ran), so the caller runs another pass at once rather than after
 * log.cleaner.backoff.ms, as Kafka's cleaner threads do. A pass that only dropped expired
 * tombstones does not count: it leaves nothing due behind it. */
static int cleaner_pass(kp_log_manager_t *m)
{
    int progressed = 0;
    int n;
    kp_topic_t **topics = kp_topics_list(m->broker->topics, &n);
    for (int i = 0; i < n; i++) {
        kp_topic_t *t = topics[i];
        if (!atomic_load_explicit(&t->eff.cleanup_compact, memory_order_relaxed)) continue;
        kp_compaction_t c = {
            atomic_load_explicit(&t->eff.delete_retention_ms, memory_order_relaxed),
            atomic_load_explicit(&t->eff.min_compaction_lag_ms, memory_order_relaxed),
            atomic_load_explicit(&t->eff.max_compaction_lag_ms, memory_order_relaxed),
            (double)atomic_load_explicit(&t->eff.min_cleanable_ratio_ppm, memory_order_relaxed) /
                1e6,
        };
        for (int32_t p = 0; p < t->npartitions; p++) {
            pthread_mutex_lock(&m->lock);
            int stop = m->stop;
            pthread_mutex_unlock(&m->lock);
            if (stop) break;
            kp_partition_t *part = kp_topic_partition(t, p);
            kp_clean_stats_t st;
            if (part && kp_cleaner_clean(m->cleaner, part->log, &c, kp_wall_ms(), &st) > 0 &&
                st.first_dirty_after > st.first_dirty_before)
                progressed++;
        }
    }
    kp_topics_list_free(topics, n);
    return progressed;
}

static void *manager_main(void *arg)
{
    kp_log_manager_t *m = arg;
    pthread_mutex_lock(&m->lock);
    int64_t next_retention = kp_mono_ms() + m->retention_interval_ms;
    int64_t next_clean = kp_mono_ms() + m->cleaner_backoff_ms;
    int64_t next_flush = kp_mono_ms() + m->flush_check_interval_ms;
    while (!m->stop) {
        int64_t now = kp_mono_ms();
        int64_t wake =
            next_retention < next_clean || !m->cleaner_enabled ? next_retention : next_clean;
        if (next_flush < wake) wake = next_flush;
        if (now < wake && !m->reconfigured) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ms = wake - now;
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&m->cond, &m->lock, &ts);
            continue;
        }
        int64_t backoff_ms = m->cleaner_backoff_ms;
        if (m->reconfigured) {
            /* a shorter backoff counts from now; a new dedupe buffer or I/O rate takes a new
             * cleaner (between passes: nothing holds the old one) */
            kp_cleaner_config_t cc = m->cleaner_cfg;
            m->reconfigured = 0;
            pthread_mutex_unlock(&m->lock);
            if (next_clean > now + backoff_ms) next_clean = now + backoff_ms;
            kp_cleaner_free(m->cleaner);
            m->cleaner = kp_cleaner_new(&cc);
            pthread_mutex_lock(&m->lock);
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        if (now >= next_flush) {
            flush_pass();
            next_flush = kp_mono_ms() + m->flush_check_interval_ms;
        }
        if (now >= next_retention) {
            retention_pass(m);
            next_retention = kp_mono_ms() + m->retention_interval_ms;
        }
        if (m->cleaner_enabled && now >= next_clean) {
            /* back off only when nothing was cleanable; each pass with progress moves some
             * log's first dirty offset up towards its (finite) cleanable end, so this ends
             * once the logs are clean and no new segments roll */
            int progressed = cleaner_pass(m);
            next_clean = kp_mono_ms() + (progressed ? 0 : backoff_ms);
        }
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* The cleaner's settings from the (effective) broker properties. -1 with err. */
static int cleaner_settings(const kp_props_t *p, int64_t *backoff_ms, kp_cleaner_config_t *cc,
                            char *err, size_t errlen)
{
    int64_t dedupe, io;
    if (kp_props_get_i64(p, "log.cleaner.backoff.ms", 15000, 1, INT32_MAX, backoff_ms, err,
                         errlen) < 0 ||
        kp_props_get_i64(p, "log.cleaner.dedupe.buffer.size", 32 << 20, 1 << 16, 1LL << 34, &dedupe,
                         err, errlen) < 0 ||
        kp_props_get_i64(p, "log.cleaner.io.max.bytes.per.second", 64 << 20, 0, INT64_MAX, &io, err,
                         errlen) < 0)
        return -1;
    *cc = (kp_cleaner_config_t){(size_t)dedupe, io, 64u << 20};
    return 0;
}

void kp_log_manager_reconfigure(kp_log_manager_t *m, const kp_props_t *props)
{
    int64_t backoff;
    kp_cleaner_config_t cc;
    char err[256];
    if (cleaner_settings(props, &backoff, &cc, err, sizeof(err)) < 0) {
        kp_warn("config", "log manager: %s; keeping the current settings", err);
        return;
    }
    pthread_mutex_lock(&m->lock);
    m->cleaner_backoff_ms = backoff;
    m->cleaner_cfg = cc;
    m->reconfigured = 1;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

kp_log_manager_t *kp_log_manager_start(kp_broker_t *b, const kp_props_t *p, char *err,
                                       size_t errlen)
{
    kp_log_manager_t *m = kp_xcalloc(1, sizeof(*m));
    m->broker = b;
    if (kp_props_get_i64(p, "log.retention.check.interval.ms", 300000, 1, INT32_MAX,
                         &m->retention_interval_ms, err, errlen) < 0 ||
        cleaner_settings(p, &m->cleaner_backoff_ms, &m->cleaner_cfg, err, errlen) < 0 ||
        /* Kafka's default is Long.MAX (flush.ms then only acts at roll); ours checks every
         * second so that a topic's flush.ms works without a second setting */
        kp_props_get_i64(p, "log.flush.scheduler.interval.ms", 1000, 1, INT32_MAX,
                         &m->flush_check_interval_ms, err, errlen) < 0 ||
        kp_props_get_bool(p, "log.cleaner.enable", 1, &m->cleaner_enabled, err, errlen) < 0) {
        free(m);
        return NULL;
    }
    m->cleaner = kp_cleaner_new(&m->cleaner_cfg);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    if (pthread_create(&m->thread, NULL, manager_main, m) != 0) {
        snprintf(err, errlen, "cannot start the log manager thread");
        kp_cleaner_free(m->cleaner);
        free(m);
        return NULL;
    }
    return m;
}

void kp_log_manager_stop(kp_log_manager_t *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    kp_cleaner_free(m->cleaner);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}
