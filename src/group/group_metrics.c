/*
 * group_metrics.c — consumer-group lag in the broker's /metrics (kafka_exporter's and
 * Burrow's figures): the committed offset of every group, topic and partition this broker's
 * coordinator holds, and its lag (the partition's high watermark minus the committed offset).
 *
 * The committed offsets belong to the coordinator's thread (group_int.h), so a scrape posts
 * a copy job to the coordinator's loop and waits for it (KP_METRICS_LAG_WAIT_MS at most); the
 * job is reference counted, so a scrape that gave up leaves it to free itself. The lag is
 * then computed on the scraping thread from the partitions' high watermarks — nothing on
 * the produce or fetch path changes.
 *
 * Bounds: only groups with committed offsets have series (an empty group has none), at most
 * KP_METRICS_LAG_SERIES_MAX group/topic/partition triples; beyond that the rest are counted
 * in kpool_consumergroup_series_dropped. A partition this broker does not hold has its
 * committed offset but no lag (a replicated pool: another broker leads it).
 */
#include "core/limits.h"
#include "core/metrics.h"
#include "group/group_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lag_entry {
    char *group;
    char *topic;
    int32_t partition;
    int64_t offset;
} lag_entry_t;

typedef struct lag_job {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs; /* the scraper and the coordinator's task */
    int done;
    kp_coordinator_t *c;
    lag_entry_t *entries;
    size_t n, total;
} lag_job_t;

static void job_put(lag_job_t *j)
{
    pthread_mutex_lock(&j->lock);
    int left = --j->refs;
    pthread_mutex_unlock(&j->lock);
    if (left) return;
    for (size_t i = 0; i < j->n; i++) {
        free(j->entries[i].group);
        free(j->entries[i].topic);
    }
    free(j->entries);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* @locality: the coordinator's thread (or its drain at stop). */
static void copy_task(kp_loop_t *loop, void *arg)
{
    (void)loop;
    lag_job_t *j = arg;
    kp_coordinator_t *c = j->c;
    size_t it = 0, n = 0, total = 0, cap = 0;
    lag_entry_t *e = NULL;
    const char *gid;
    size_t gl;
    void *gv;
    while (kp_hmap_next(&c->groups, &it, &gid, &gl, &gv)) {
        group_t *g = gv;
        size_t oit = 0;
        const char *key;
        size_t kl;
        void *ov;
        while (kp_hmap_next(&g->offsets, &oit, &key, &kl, &ov)) {
            total++;
            if (n >= KP_METRICS_LAG_SERIES_MAX || kl < 5) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                e = kp_xrealloc(e, cap * sizeof(*e));
            }
            size_t tl = kl - 5; /* "topic\0" + 4 bytes of partition (offset_key) */
            e[n].group = kp_xstrdup(g->id);
            e[n].topic = kp_xmalloc(tl + 1);
            memcpy(e[n].topic, key, tl);
            e[n].topic[tl] = 0;
            memcpy(&e[n].partition, key + tl + 1, 4);
            e[n].offset = ((offset_entry_t *)ov)->offset;
            n++;
        }
    }
    pthread_mutex_lock(&j->lock);
    j->entries = e;
    j->n = n;
    j->total = total;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    job_put(j);
}

/* Posts the copy and waits for it: the job (done set) or NULL when the coordinator did not
 * answer in time. The caller job_put()s a non-NULL job. */
static lag_job_t *snapshot(kp_coordinator_t *c)
{
    lag_job_t *j = kp_xcalloc(1, sizeof(*j));
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cond, &attr);
    pthread_condattr_destroy(&attr);
    j->refs = 2;
    j->c = c;
    kp_loop_post(c->loop, copy_task, j);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += KP_METRICS_LAG_WAIT_MS / 1000;
    until.tv_nsec += (long)(KP_METRICS_LAG_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->lock);
    while (!j->done)
        if (pthread_cond_timedwait(&j->cond, &j->lock, &until) == ETIMEDOUT) break;
    int done = j->done;
    pthread_mutex_unlock(&j->lock);
    if (done) return j;
    job_put(j);
    return NULL;
}

static void series(kp_buf_t *out, const char *name, const lag_entry_t *e, int64_t v)
{
    kp_buf_appendf(out, "%s{group=\"", name);
    kp_metrics_append_label(out, e->group, strlen(e->group));
    kp_buf_appendf(out, "\",topic=\"");
    kp_metrics_append_label(out, e->topic, strlen(e->topic));
    kp_buf_appendf(out, "\",partition=\"%d\"} %" PRId64 "\n", (int)e->partition, v);
}

void kp_coordinator_render_lag(kp_coordinator_t *c, kp_buf_t *out)
{
    if (!c || !c->running) return;
    lag_job_t *j = snapshot(c);
    if (!j) {
        kp_buf_appendf(out, "# kpool_consumergroup_*: the group coordinator did not answer "
                            "in time\n");
        return;
    }
    kp_buf_appendf(out, "# HELP kpool_consumergroup_committed_offset The offset a consumer "
                        "group committed, by group, topic and partition.\n"
                        "# TYPE kpool_consumergroup_committed_offset gauge\n");
    for (size_t i = 0; i < j->n; i++)
        series(out, "kpool_consumergroup_committed_offset", &j->entries[i], j->entries[i].offset);
    kp_buf_appendf(out, "# HELP kpool_consumergroup_lag Records a consumer group has yet to "
                        "consume: the partition's high watermark minus the committed offset.\n"
                        "# TYPE kpool_consumergroup_lag gauge\n");
    const kp_partition_dir_t *dir = &c->dir;
    for (size_t i = 0; i < j->n; i++) {
        const lag_entry_t *e = &j->entries[i];
        struct kp_topic *t = dir->get(dir->arg, kp_str_c(e->topic));
        kp_partition_t *p = t ? dir->partition(t, e->partition) : NULL;
        if (p) {
            int64_t hwm = kp_partition_high_watermark(p);
            int64_t lag = e->offset >= 0 && hwm > e->offset ? hwm - e->offset : 0;
            if (e->offset < 0) lag = hwm; /* a committed -1: nothing consumed yet */
            series(out, "kpool_consumergroup_lag", e, lag);
        }
        dir->put(t);
    }
    kp_buf_appendf(out,
                   "# HELP kpool_consumergroup_series_dropped Committed offsets left out of "
                   "kpool_consumergroup_* (more than %d).\n"
                   "# TYPE kpool_consumergroup_series_dropped gauge\n"
                   "kpool_consumergroup_series_dropped %zu\n",
                   KP_METRICS_LAG_SERIES_MAX, j->total - j->n);
    job_put(j);
}
