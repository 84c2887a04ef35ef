/* pool_metrics.c — the pools' history from their brokers' /metrics (see pool_metrics.h). */
#include "control/pool_metrics.h"

#include "control/backup_format.h"
#include "control/pool_browse.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/hmap.h"
#include "core/logging.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Histogram buckets kept per sample (kpool's request histogram has 14). */
#define LE_MAX 24
/* Per request to a broker's /metrics. */
#define SCRAPE_TIMEOUT_MS 3000
/* Lag samples (a Kafka client per watched topic) are at least this far apart. */
#define LAG_INTERVAL_MIN_MS 1000
/* Partitions per topic taken from a page (bounds what a hostile page can make us keep). */
#define PARTITION_INDEX_MAX 100000

static json_t *time_json(int64_t ms);

/* ---- the exposition format ---- */

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* One line (without its newline): a sample, or 0 when it is not one. */
static int parse_line(const char *s, const char *end, kp_prom_fn fn, void *arg)
{
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    if (s == end || *s == '#' || !name_start(*s)) return 0;
    const char *name = s;
    while (s < end && name_char(*s)) s++;
    size_t namelen = (size_t)(s - name);
    const char *labels = s;
    size_t labelslen = 0;
    if (s < end && *s == '{') {
        labels = ++s;
        int quoted = 0;
        while (s < end && (quoted || *s != '}')) {
            if (quoted && *s == '\\') {
                if (++s == end) return 0;
            } else if (*s == '"') {
                quoted = !quoted;
            }
            s++;
        }
        if (s == end) return 0;
        labelslen = (size_t)(s - labels);
        s++; /* '}' */
    }
    if (s == end || (*s != ' ' && *s != '\t')) return 0;
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    char num[64];
    size_t n = 0;
    while (s < end && *s != ' ' && *s != '\t' && n < sizeof(num) - 1) num[n++] = *s++;
    if (n == 0 || n == sizeof(num) - 1) return 0;
    num[n] = 0;
    char *e;
    errno = 0;
    double v = strtod(num, &e);
    if (*e) return 0;
    fn(name, namelen, labels, labelslen, v, arg);
    return 1;
}

int kp_prom_parse(const char *text, size_t len, kp_prom_fn fn, void *arg)
{
    int n = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        n += parse_line(p, le, fn, arg);
        p = nl ? nl + 1 : end;
    }
    return n;
}

int kp_prom_label(const char *labels, size_t len, const char *key, char *out, size_t outlen)
{
    const char *p = labels, *end = labels + len;
    size_t klen = strlen(key);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',')) p++;
        const char *k = p;
        while (p < end && *p != '=') p++;
        if (p == end) return -1;
        size_t kl = (size_t)(p - k);
        while (kl > 0 && k[kl - 1] == ' ') kl--;
        p++;
        while (p < end && *p == ' ') p++;
        if (p == end || *p != '"') return -1;
        p++;
        size_t o = 0;
        int match = kl == klen && !memcmp(k, key, klen), toolong = 0;
        while (p < end && *p != '"') {
            char c = *p;
            if (c == '\\' && p + 1 < end) {
                c = *++p == 'n' ? '\n' : *p;
            }
            if (match) {
                if (o + 1 < outlen)
                    out[o++] = c;
                else
                    toolong = 1;
            }
            p++;
        }
        if (p == end) return -1;
        p++;
        if (match) {
            if (toolong || outlen == 0) return -1;
            out[o] = 0;
            return 0;
        }
    }
    return -1;
}

/* A figure from a page as an integer: pages are outside input, so a value beyond int64_t
 * (or negative, or not a number) saturates instead of being converted (undefined in C). */
static int64_t fig_int(double v)
{
    if (!(v > 0)) return 0;
    if (v >= 9.2e18) return INT64_MAX;
    return (int64_t)v;
}

/* ---- one scrape ---- */

typedef struct sample {
    int64_t t_ms;
    double requests, lat_sum, lat_count, bytes_in, bytes_out, records_in;
    double disk_used, disk_free, disk_cap;
    int has_disk;
    int32_t node_id; /* kpool_broker_info's node_id (-1: not on the page) */
    uint32_t mask;   /* a pool's sample: the brokers (bits by index) whose scrape it adds up */
    int nle;
    double le[LE_MAX], bucket[LE_MAX]; /* request latency, every API added up */
} sample_t;

/* One partition's figures: the largest any broker reported (every replica reports its
 * partitions; the leader's log and end are the largest). */
typedef struct part_fig {
    int32_t partition;
    uint8_t has_size, has_end;
    int64_t size, end;
} part_fig_t;

/* One topic's figures in one round of scrapes of a pool's brokers. Kept in a kp_hmap by
 * name and reused round after round (a topic's entry, its key and its partition array are
 * made once), so an idle pool of many topics costs no allocation per scrape. */
typedef struct topic_fig {
    uint64_t round;    /* the round that last saw the topic */
    part_fig_t *parts; /* sorted by partition once the round is complete */
    size_t nparts, cap;
    int unsorted;            /* a page listed a partition out of order */
    int has_sizes, has_ends; /* kpool_partition_size_bytes / _end_offset lines seen */
    int has_traffic;         /* kpool_topic_*_total lines seen */
    double traffic[4];       /* the brokers' kpool_topic_*_total added up */
    double ends;             /* the partitions' end offsets added up */
    /* published rates (kp_pool_metrics_annotate) */
    int has_rate;
    double rate;        /* records/s from the end offsets */
    uint8_t trate_mask; /* bit k: trate[k] is known */
    double trate[4];    /* the kpool_topic_*_total rates */
} topic_fig_t;

/* The topics of a round: name -> topic_fig_t. */
typedef struct figs {
    kp_hmap_t topics;
    uint64_t round;
} figs_t;

typedef struct scrape {
    sample_t s;
    figs_t *figs; /* the round's topics, the brokers' figures merged as they are parsed */
} scrape_t;

/* kpool_topic_*_total (handle_log_dirs.c), in the order of topic_fig_t.traffic. */
static const char *const traffic_names[] = {
    "kpool_topic_records_in_total", "kpool_topic_records_out_total", "kpool_topic_bytes_in_total",
    "kpool_topic_bytes_out_total"};
/* Their rates' names in a topic's partitions answer (kp_pool_metrics_annotate). */
static const char *const traffic_rates[] = {"produceRecordsPerSecond", "consumeRecordsPerSecond",
                                            "produceBytesPerSecond", "consumeBytesPerSecond"};
#define NTRAFFIC 4

static void figs_init(figs_t *f)
{
    kp_hmap_init(&f->topics);
    f->round = 0;
}

static void figs_free(figs_t *f)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&f->topics, &it, &k, &kl, &v)) {
        topic_fig_t *t = v;
        free(t->parts);
        free(t);
    }
    kp_hmap_free(&f->topics);
}

/* The topic's entry in this round, made or reset when the round first sees it. */
static topic_fig_t *figs_topic(figs_t *f, const char *name)
{
    size_t len = strlen(name);
    topic_fig_t *t = kp_hmap_get(&f->topics, name, len);
    if (!t) {
        t = kp_xcalloc(1, sizeof(*t));
        kp_hmap_put(&f->topics, name, len, t);
    }
    if (t->round != f->round) {
        t->round = f->round;
        t->nparts = 0;
        t->unsorted = t->has_sizes = t->has_ends = t->has_traffic = 0;
        t->has_rate = 0;
        t->trate_mask = 0;
        memset(t->traffic, 0, sizeof(t->traffic));
    }
    return t;
}

/* Partition p's figures of t, appended when missing (pages list partitions in order: the
 * last one is checked first; another order is sorted out by figs_finish). */
static part_fig_t *topic_part(topic_fig_t *t, int32_t p)
{
    if (t->nparts && t->parts[t->nparts - 1].partition == p) return &t->parts[t->nparts - 1];
    if (!t->unsorted) {
        /* a second broker's page revisits the partitions: binary search the sorted array */
        size_t lo = 0, hi = t->nparts;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (t->parts[mid].partition < p)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < t->nparts && t->parts[lo].partition == p) return &t->parts[lo];
        if (lo < t->nparts) t->unsorted = 1;
    }
    if (t->nparts == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4;
        t->parts = kp_xrealloc(t->parts, t->cap * sizeof(*t->parts));
    }
    part_fig_t *pf = &t->parts[t->nparts++];
    memset(pf, 0, sizeof(*pf));
    pf->partition = p;
    return pf;
}

static int part_cmp(const void *a, const void *b)
{
    const part_fig_t *x = a, *y = b;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* After the round's pages: topics not seen go, out-of-order partitions are sorted and their
 * duplicates merged (largest figures), and each topic's end offsets are added up. */
static void figs_finish(figs_t *f)
{
    size_t it = 0, nstale = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&f->topics, &it, &k, &kl, &v)) {
        topic_fig_t *t = v;
        if (t->round != f->round) {
            nstale++;
            continue;
        }
        if (t->unsorted) {
            qsort(t->parts, t->nparts, sizeof(*t->parts), part_cmp);
            size_t o = 0;
            for (size_t i = 0; i < t->nparts; i++) {
                part_fig_t *a = &t->parts[i];
                if (o && t->parts[o - 1].partition == a->partition) {
                    part_fig_t *m = &t->parts[o - 1];
                    if (a->has_size && (!m->has_size || a->size > m->size))
                        m->size = a->size, m->has_size = 1;
                    if (a->has_end && (!m->has_end || a->end > m->end))
                        m->end = a->end, m->has_end = 1;
                } else {
                    t->parts[o++] = *a;
                }
            }
            t->nparts = o;
            t->unsorted = 0;
        }
        t->ends = 0;
        for (size_t i = 0; i < t->nparts; i++)
            if (t->parts[i].has_end) t->ends += (double)t->parts[i].end;
    }
    while (nstale) { /* deleted topics (rare): collect, then delete outside the iteration */
        char *names[64];
        size_t n = 0;
        it = 0;
        while (n < 64 && kp_hmap_next(&f->topics, &it, &k, &kl, &v))
            if (((topic_fig_t *)v)->round != f->round) names[n++] = kp_xstrdup(k);
        for (size_t i = 0; i < n; i++) {
            topic_fig_t *t = kp_hmap_del(&f->topics, names[i], strlen(names[i]));
            free(t->parts);
            free(t);
            free(names[i]);
        }
        nstale -= n;
        if (n == 0) break;
    }
}

static int is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && !memcmp(name, want, n);
}

static void on_sample(const char *name, size_t n, const char *labels, size_t ll, double v,
                      void *arg)
{
    scrape_t *sc = arg;
    sample_t *s = &sc->s;
    if (!isfinite(v) && !is(name, n, "kpool_request_seconds_bucket")) return;
    if (is(name, n, "kpool_requests_total"))
        s->requests += v;
    else if (is(name, n, "kpool_request_seconds_sum"))
        s->lat_sum += v;
    else if (is(name, n, "kpool_request_seconds_count"))
        s->lat_count += v;
    else if (is(name, n, "kpool_network_bytes_in_total"))
        s->bytes_in = v;
    else if (is(name, n, "kpool_network_bytes_out_total"))
        s->bytes_out = v;
    else if (is(name, n, "kpool_produce_records_total"))
        s->records_in = v;
    else if (is(name, n, "kpool_log_dir_size_bytes"))
        s->disk_used = v, s->has_disk = 1;
    else if (is(name, n, "kpool_log_dir_free_bytes"))
        s->disk_free = v;
    else if (is(name, n, "kpool_log_dir_capacity_bytes"))
        s->disk_cap = v;
    else if (n > 12 && !memcmp(name, "kpool_topic_", 12)) {
        char topic[256];
        for (int k = 0; k < NTRAFFIC; k++)
            if (is(name, n, traffic_names[k]) &&
                kp_prom_label(labels, ll, "topic", topic, sizeof(topic)) == 0 && v >= 0) {
                /* each broker counts the traffic it led: the pool's is the sum */
                topic_fig_t *t = figs_topic(sc->figs, topic);
                t->traffic[k] += v;
                t->has_traffic = 1;
            }
    } else if (is(name, n, "kpool_broker_info")) {
        char id[16];
        if (kp_prom_label(labels, ll, "node_id", id, sizeof(id)) == 0) s->node_id = atoi(id);
    } else if (is(name, n, "kpool_request_seconds_bucket")) {
        char les[32];
        if (kp_prom_label(labels, ll, "le", les, sizeof(les)) < 0 || isnan(v)) return;
        double le = strtod(les, NULL); /* "+Inf" is inf */
        int i = 0;
        while (i < s->nle && s->le[i] != le) i++;
        if (i == s->nle) {
            if (s->nle == LE_MAX) return;
            s->le[s->nle] = le;
            s->bucket[s->nle++] = 0;
        }
        s->bucket[i] += v;
    } else if (is(name, n, "kpool_partition_size_bytes") ||
               is(name, n, "kpool_partition_end_offset")) {
        char topic[256], part[16];
        if (kp_prom_label(labels, ll, "topic", topic, sizeof(topic)) < 0 ||
            kp_prom_label(labels, ll, "partition", part, sizeof(part)) < 0 || v < 0)
            return;
        char *e;
        long p = strtol(part, &e, 10);
        if (*e || !*part || p < 0 || p > PARTITION_INDEX_MAX) return;
        topic_fig_t *t = figs_topic(sc->figs, topic);
        part_fig_t *pf = topic_part(t, (int32_t)p);
        int64_t x = fig_int(v);
        if (name[n - 1] == 's') { /* ..._bytes */
            if (!pf->has_size || x > pf->size) pf->size = x, pf->has_size = 1;
            t->has_sizes = 1;
        } else {
            if (!pf->has_end || x > pf->end) pf->end = x, pf->has_end = 1;
            t->has_ends = 1;
        }
    }
}

typedef struct page {
    char *data;
    size_t len, cap;
} page_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    page_t *p = arg;
    size_t n = size * nmemb;
    if (p->len + n > KP_POOL_METRICS_PAGE_MAX) return 0; /* curl fails the transfer */
    if (p->len + n + 1 > p->cap) { /* doubling: a page of some MB is not copied per chunk */
        size_t cap = p->cap ? p->cap : 65536;
        while (cap < p->len + n + 1) cap *= 2;
        char *d = realloc(p->data, cap);
        if (!d) return 0;
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + p->len, ptr, n);
    p->len += n;
    p->data[p->len] = 0;
    return n;
}

/* GETs url into *page (malloc'd). 0, or -1 with err. */
static int fetch_page(const char *url, page_t *page, char *err, size_t errlen)
{
    memset(page, 0, sizeof(*page));
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot make an HTTP client");
        return -1;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)SCRAPE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, page);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || code != 200) {
        if (rc != CURLE_OK)
            snprintf(err, errlen, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        else
            snprintf(err, errlen, "%s: HTTP %ld", url, code);
        free(page->data);
        page->data = NULL;
        return -1;
    }
    return 0;
}

/* ---- the history ---- */

/* One broker of a pool: its latest two scrapes (its own rates and disk on the pools page). */
typedef struct broker_hist {
    char *url;
    sample_t last, prev; /* n_ok of them valid, last newest */
    int n_ok;
    int64_t last_ms; /* wall time of the last attempt */
    char err[512];   /* the last attempt's error, "" when it worked */
} broker_hist_t;

typedef struct pool_hist {
    char *name;
    char *urls; /* the metrics URLs, "\n"-joined: a changed list starts a new history */
    broker_hist_t brokers[KP_POOL_METRICS_BROKERS_MAX];
    int nbrokers;
    sample_t ring[KP_POOL_METRICS_SAMPLES]; /* the brokers' samples added up */
    int head, n;                            /* ring[head] is the next slot; n samples held */
    figs_t figs[2];     /* the topics' figures of the latest round and the next one */
    figs_t *pub;        /* the latest round that some broker answered (lock held) */
    figs_t *scratch;    /* the round being scraped (the sampler's thread only) */
    int has_prev;       /* pub may serve as the previous round for rates */
    int64_t prev_ms;    /* pub's time */
    uint32_t prev_mask; /* the brokers that made pub */
    sample_t last;      /* the latest sample (disk figures) */
    int64_t last_ms;    /* wall time of the last attempt */
    char err[512];      /* the last attempt's error, "" when it worked */
    int seen;
    struct pool_hist *next;
} pool_hist_t;

/* A topic whose lag the console looks at (kp_pool_metrics_lag). */
typedef struct lag_watch {
    char *pool, *topic;
    int64_t watched_ms;                    /* monotonic: the last console request */
    int64_t t_ms[KP_POOL_METRICS_SAMPLES]; /* wall time of each sample */
    json_t *lags[KP_POOL_METRICS_SAMPLES]; /* {group: lag} */
    int head, n;
    struct lag_watch *next;
} lag_watch_t;

static lag_watch_t *watches;
static int nwatches;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pool_hist_t *pools;
static int running, stopping;
static int64_t interval;
static kp_store_t *the_store;
static pthread_t thread;

static void watch_free(lag_watch_t *w)
{
    for (int i = 0; i < KP_POOL_METRICS_SAMPLES; i++) json_decref(w->lags[i]);
    free(w->pool);
    free(w->topic);
    free(w);
}

/* Records groups (kp_pool_browse_groups' document) as w's newest sample. Caller holds lock. */
static void watch_record(lag_watch_t *w, const json_t *groups)
{
    json_t *lag = json_object();
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(groups, "items"), i, g)
    {
        const char *name = json_string_value(json_object_get(g, "group"));
        json_t *l = json_object_get(g, "lag");
        if (name && json_is_integer(l)) json_object_set(lag, name, l);
    }
    json_decref(w->lags[w->head]);
    w->lags[w->head] = lag;
    w->t_ms[w->head] = kp_wall_ms();
    w->head = (w->head + 1) % KP_POOL_METRICS_SAMPLES;
    if (w->n < KP_POOL_METRICS_SAMPLES) w->n++;
}

static void hist_free(pool_hist_t *h)
{
    free(h->name);
    free(h->urls);
    for (int i = 0; i < h->nbrokers; i++) free(h->brokers[i].url);
    figs_free(&h->figs[0]);
    figs_free(&h->figs[1]);
    free(h);
}

/* The entry of name for these brokers' URLs, made when missing. Caller holds lock. */
static pool_hist_t *hist_of(const char *name, const char *const *urls, int n)
{
    kp_buf_t key;
    kp_buf_init(&key);
    for (int i = 0; i < n; i++) kp_buf_appendf(&key, "%s%s", i ? "\n" : "", urls[i]);
    kp_buf_append(&key, "", 1);
    pool_hist_t *h = pools;
    while (h && strcmp(h->name, name) != 0) h = h->next;
    if (h && strcmp(h->urls, (char *)key.data) != 0) { /* other brokers: another history */
        for (int i = 0; i < h->nbrokers; i++) free(h->brokers[i].url);
        memset(h->brokers, 0, sizeof(h->brokers));
        h->nbrokers = 0;
        free(h->urls);
        h->urls = NULL;
        h->n = h->head = 0;
        h->has_prev = 0;
    }
    if (!h) {
        h = kp_xcalloc(1, sizeof(*h));
        h->name = kp_xstrdup(name);
        figs_init(&h->figs[0]);
        figs_init(&h->figs[1]);
        h->pub = &h->figs[0];
        h->scratch = &h->figs[1];
        h->next = pools;
        pools = h;
    }
    if (!h->urls) {
        h->urls = kp_xstrdup((char *)key.data);
        for (int i = 0; i < n; i++) h->brokers[i].url = kp_xstrdup(urls[i]);
        h->nbrokers = n;
    }
    kp_buf_free(&key);
    return h;
}

/* dst += src: counters, disk and the latency buckets (by bound; a bound beyond LE_MAX is
 * dropped). */
static void sample_add(sample_t *dst, const sample_t *src)
{
    dst->requests += src->requests;
    dst->lat_sum += src->lat_sum;
    dst->lat_count += src->lat_count;
    dst->bytes_in += src->bytes_in;
    dst->bytes_out += src->bytes_out;
    dst->records_in += src->records_in;
    dst->disk_used += src->disk_used;
    dst->disk_free += src->disk_free;
    dst->disk_cap += src->disk_cap;
    dst->has_disk |= src->has_disk;
    for (int k = 0; k < src->nle; k++) {
        int i = 0;
        while (i < dst->nle && dst->le[i] != src->le[k]) i++;
        if (i == dst->nle) {
            if (dst->nle == LE_MAX) continue;
            dst->le[dst->nle] = src->le[k];
            dst->bucket[dst->nle++] = 0;
        }
        dst->bucket[i] += src->bucket[k];
    }
}

/* What one round of scrapes of a pool's brokers found. */
typedef struct round {
    scrape_t pool; /* the brokers' samples added up, the topics' figures in h->scratch */
    sample_t s[KP_POOL_METRICS_BROKERS_MAX];
    char err[KP_POOL_METRICS_BROKERS_MAX][512]; /* "" when the broker's scrape worked */
} round_t;

/* The rates of cur's topics since prev (dt seconds): records/s from the end offsets, and
 * the kpool_topic_*_total rates when the same brokers answered both rounds (a counter that
 * went down, a restart, gives no rate). */
static void figs_rates(figs_t *cur, const figs_t *prev, int same_brokers, double dt)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (kp_hmap_next(&cur->topics, &it, &k, &kl, &v)) {
        topic_fig_t *t = v;
        t->has_rate = 0;
        t->trate_mask = 0;
        const topic_fig_t *p = prev ? kp_hmap_get(&prev->topics, k, kl) : NULL;
        if (!p || dt <= 0) continue;
        if (t->has_ends && p->has_ends && t->ends - p->ends >= 0) {
            t->rate = (t->ends - p->ends) / dt;
            t->has_rate = 1;
        }
        if (!t->has_traffic || !p->has_traffic || !same_brokers) continue;
        for (int i = 0; i < NTRAFFIC; i++) {
            double d = t->traffic[i] - p->traffic[i];
            if (d >= 0) {
                t->trate[i] = d / dt;
                t->trate_mask |= (uint8_t)(1u << i);
            }
        }
    }
}

static void record(pool_hist_t *h, const char *const *urls, int n, round_t *r)
{
    pthread_mutex_lock(&lock);
    h->seen = 1;
    h->last_ms = kp_wall_ms();
    h->err[0] = 0;
    for (int i = 0; i < n; i++) {
        broker_hist_t *b = &h->brokers[i];
        b->last_ms = h->last_ms;
        snprintf(b->err, sizeof(b->err), "%s", r->err[i]);
        if (r->err[i][0]) {
            if (!h->err[0]) snprintf(h->err, sizeof(h->err), "%s", r->err[i]);
            continue;
        }
        b->prev = b->last;
        b->last = r->s[i];
        if (b->n_ok < 2) b->n_ok++;
    }
    (void)urls;
    if (r->pool.s.mask) {
        scrape_t *sc = &r->pool;
        h->ring[h->head] = sc->s;
        h->head = (h->head + 1) % KP_POOL_METRICS_SAMPLES;
        if (h->n < KP_POOL_METRICS_SAMPLES) h->n++;
        h->last = sc->s;
        double dt = (double)(sc->s.t_ms - h->prev_ms) / 1000.0;
        figs_rates(h->scratch, h->has_prev ? h->pub : NULL, h->prev_mask == sc->s.mask, dt);
        figs_t *t = h->pub; /* the round just made is published; the old one is reused */
        h->pub = h->scratch;
        h->scratch = t;
        h->has_prev = 1;
        h->prev_ms = sc->s.t_ms;
        h->prev_mask = sc->s.mask;
    }
    pthread_mutex_unlock(&lock);
}

/* Scrapes each of the pool's brokers (one after the other, SCRAPE_TIMEOUT_MS each) and
 * records the round. */
static void scrape_pool(const char *name, const char *const *urls, int n)
{
    pthread_mutex_lock(&lock);
    pool_hist_t *h = hist_of(name, urls, n);
    figs_t *figs = h->scratch; /* only this thread touches it, and only it frees h */
    pthread_mutex_unlock(&lock);
    figs->round++;
    round_t *r = kp_xcalloc(1, sizeof(*r));
    r->pool.figs = figs;
    r->pool.s.node_id = -1;
    for (int i = 0; i < n; i++) {
        scrape_t sc;
        memset(&sc, 0, sizeof(sc));
        sc.s.node_id = -1;
        sc.figs = figs;
        page_t page;
        if (fetch_page(urls[i], &page, r->err[i], sizeof(r->err[i])) == 0) {
            sc.s.t_ms = kp_wall_ms();
            if (kp_prom_parse(page.data ? page.data : "", page.len, on_sample, &sc) == 0) {
                snprintf(r->err[i], sizeof(r->err[i]), "%s: the page holds no metrics", urls[i]);
            } else {
                r->s[i] = sc.s;
                sample_add(&r->pool.s, &sc.s);
                r->pool.s.mask |= 1u << i;
                r->pool.s.t_ms = sc.s.t_ms;
            }
            free(page.data);
        }
    }
    if (r->pool.s.mask) figs_finish(figs);
    record(h, urls, n, r);
    free(r);
}

int kp_pool_metrics_digest(const char *page, size_t len)
{
    figs_t f[2];
    figs_init(&f[0]);
    figs_init(&f[1]);
    int n = 0;
    for (int round = 0; round < 2; round++) { /* the second round's rates against the first */
        figs_t *figs = &f[round];
        figs->round++;
        sample_t pool;
        memset(&pool, 0, sizeof(pool));
        for (int i = 0; i < 2; i++) { /* twice: the second adds up and merges into the first */
            scrape_t sc;
            memset(&sc, 0, sizeof(sc));
            sc.s.node_id = -1;
            sc.figs = figs;
            n = kp_prom_parse(page, len, on_sample, &sc);
            sample_add(&pool, &sc.s);
        }
        figs_finish(figs);
        if (round) figs_rates(&f[1], &f[0], 1, 10.0);
    }
    figs_free(&f[0]);
    figs_free(&f[1]);
    return n;
}

/* The metrics URLs of a Pool's spec: metricsUrls (one per broker), else metricsUrl; at
 * most KP_POOL_METRICS_BROKERS_MAX (borrowed from spec). */
static int pool_urls(json_t *spec, const char **urls)
{
    int n = 0;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(spec, "metricsUrls"), i, u)
    {
        const char *s = json_string_value(u);
        if (s && *s && n < KP_POOL_METRICS_BROKERS_MAX) urls[n++] = s;
    }
    const char *one = json_string_value(json_object_get(spec, "metricsUrl"));
    if (n == 0 && one && *one) urls[n++] = one;
    return n;
}

static void sample_all(void)
{
    json_t *list = NULL;
    int64_t rv;
    if (kp_store_list(the_store, "Pool", "", &list, &rv) != KP_STORE_OK) {
        json_decref(list);
        return;
    }
    pthread_mutex_lock(&lock);
    for (pool_hist_t *h = pools; h; h = h->next) h->seen = 0;
    pthread_mutex_unlock(&lock);
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        const char *name =
            json_string_value(json_object_get(json_object_get(p, "metadata"), "name"));
        const char *urls[KP_POOL_METRICS_BROKERS_MAX];
        int nurls = pool_urls(json_object_get(p, "spec"), urls);
        if (!name || !nurls) continue;
        pthread_mutex_lock(&lock);
        int stop = stopping;
        pthread_mutex_unlock(&lock);
        if (stop) break;
        scrape_pool(name, urls, nurls);
    }
    json_decref(list);
    pthread_mutex_lock(&lock); /* pools deleted, or without metricsUrl now: forgotten */
    for (pool_hist_t **hp = &pools; *hp;) {
        if (!(*hp)->seen && !stopping) {
            pool_hist_t *dead = *hp;
            *hp = dead->next;
            hist_free(dead);
        } else {
            hp = &(*hp)->next;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* How to reach pool p (strings borrowed from p). -1 without bootstrap servers. */
static int conn_of(const json_t *p, kp_pool_conn_t *c)
{
    const json_t *spec = json_object_get(p, "spec"), *tls = json_object_get(spec, "tls");
    memset(c, 0, sizeof(*c));
    c->bootstrap = json_string_value(json_object_get(spec, "bootstrapServers"));
    c->ca_path = json_string_value(json_object_get(tls, "caLocation"));
    c->cert_path = json_string_value(json_object_get(tls, "certificateLocation"));
    c->key_path = json_string_value(json_object_get(tls, "keyLocation"));
    c->timeout_ms = SCRAPE_TIMEOUT_MS;
    return c->bootstrap && *c->bootstrap ? 0 : -1;
}

/* One lag sample of every watched topic; watches past KP_POOL_METRICS_LAG_WATCH_MS go. */
static void sample_lag(void)
{
    static int64_t last_ms; /* the sampler's thread only */
    int64_t now = kp_mono_ms();
    /* each sample opens a Kafka client per topic: never more often than once a second */
    if (last_ms &&
        now - last_ms < (interval > LAG_INTERVAL_MIN_MS ? interval : LAG_INTERVAL_MIN_MS))
        return;
    last_ms = now;
    char *todo[KP_POOL_METRICS_LAG_TOPICS_MAX][2];
    int n = 0;
    pthread_mutex_lock(&lock);
    for (lag_watch_t **wp = &watches; *wp;) {
        lag_watch_t *w = *wp;
        if (now - w->watched_ms > KP_POOL_METRICS_LAG_WATCH_MS) {
            *wp = w->next;
            watch_free(w);
            nwatches--;
            continue;
        }
        if (n < KP_POOL_METRICS_LAG_TOPICS_MAX) {
            todo[n][0] = kp_xstrdup(w->pool);
            todo[n++][1] = kp_xstrdup(w->topic);
        }
        wp = &w->next;
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) {
        json_t *pool = NULL, *groups = NULL;
        kp_pool_conn_t c;
        char err[512];
        int missing = 0;
        pthread_mutex_lock(&lock);
        int stop = stopping;
        pthread_mutex_unlock(&lock);
        if (!stop && kp_store_get(the_store, "Pool", "", todo[i][0], &pool) == KP_STORE_OK &&
            conn_of(pool, &c) == 0)
            groups = kp_pool_browse_groups(&c, todo[i][1], &missing, err, sizeof(err));
        if (groups) {
            pthread_mutex_lock(&lock);
            for (lag_watch_t *w = watches; w; w = w->next)
                if (!strcmp(w->pool, todo[i][0]) && !strcmp(w->topic, todo[i][1]))
                    watch_record(w, groups);
            pthread_mutex_unlock(&lock);
        }
        json_decref(groups);
        json_decref(pool);
        free(todo[i][0]);
        free(todo[i][1]);
    }
}

void kp_pool_metrics_lag(const char *pool, const char *topic, json_t *groups_doc)
{
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    lag_watch_t *w = watches, *oldest = NULL;
    for (; w; w = w->next) {
        if (!strcmp(w->pool, pool) && !strcmp(w->topic, topic)) break;
        if (!oldest || w->watched_ms < oldest->watched_ms) oldest = w;
    }
    if (!w) {
        if (nwatches >= KP_POOL_METRICS_LAG_TOPICS_MAX && oldest) { /* reuse the oldest */
            for (lag_watch_t **wp = &watches; *wp; wp = &(*wp)->next)
                if (*wp == oldest) {
                    *wp = oldest->next;
                    break;
                }
            watch_free(oldest);
            nwatches--;
        }
        w = kp_xcalloc(1, sizeof(*w));
        w->pool = kp_xstrdup(pool);
        w->topic = kp_xstrdup(topic);
        w->next = watches;
        watches = w;
        nwatches++;
    }
    w->watched_ms = kp_mono_ms();
    /* this answer is a sample too, unless the sampler took one a moment ago */
    int64_t last =
        w->n ? w->t_ms[(w->head + KP_POOL_METRICS_SAMPLES - 1) % KP_POOL_METRICS_SAMPLES] : 0;
    if (!w->n || kp_wall_ms() - last >= interval / 2) watch_record(w, groups_doc);
    json_t *hist = json_array();
    int first = (w->head - w->n + KP_POOL_METRICS_SAMPLES) % KP_POOL_METRICS_SAMPLES;
    for (int k = 0; k < w->n; k++) {
        int i = (first + k) % KP_POOL_METRICS_SAMPLES;
        json_array_append_new(
            hist, json_pack("{s:o, s:O}", "time", time_json(w->t_ms[i]), "lag", w->lags[i]));
    }
    json_object_set_new(groups_doc, "lagHistory", hist);
    pthread_mutex_unlock(&lock);
}

static void *sampler_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        pthread_mutex_unlock(&lock);
        sample_all();
        sample_lag();
        pthread_mutex_lock(&lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval / 1000;
        until.tv_nsec += (interval % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        while (!stopping && pthread_cond_timedwait(&wake, &lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int kp_pool_metrics_start(kp_store_t *store, int64_t interval_ms, char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    if (running) {
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "the pool metrics sampler already runs");
        return -1;
    }
    the_store = store;
    interval = interval_ms > 0 ? interval_ms : 10000;
    stopping = 0;
    running = 1;
    pthread_mutex_unlock(&lock);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pthread_create(&thread, NULL, sampler_main, NULL) != 0) {
        pthread_mutex_lock(&lock);
        running = 0;
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "cannot start the pool metrics thread");
        return -1;
    }
    return 0;
}

void kp_pool_metrics_stop(void)
{
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    stopping = 1;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&lock);
    while (pools) {
        pool_hist_t *h = pools;
        pools = h->next;
        hist_free(h);
    }
    while (watches) {
        lag_watch_t *w = watches;
        watches = w->next;
        watch_free(w);
    }
    nwatches = 0;
    running = 0;
    pthread_mutex_unlock(&lock);
}

static json_t *num_or_null(int ok, double v)
{
    return ok && isfinite(v) ? json_real(round(v * 1000) / 1000) : json_null();
}

/* The 99th percentile (ms) of the requests between a and b, from the bucket differences:
 * the upper bound of the bucket holding it (the largest finite bound when beyond). */
static double p99_ms(const sample_t *a, const sample_t *b, double count)
{
    /* a has no buckets when no request had been made yet: all zero then */
    if (count <= 0 || (a->nle != b->nle && a->nle != 0)) return NAN;
    double want = 0.99 * count, last_finite = NAN;
    for (int i = 0; i < b->nle; i++) {
        if (a->nle && a->le[i] != b->le[i]) return NAN;
        if (isfinite(b->le[i])) last_finite = b->le[i];
        if (b->bucket[i] - (a->nle ? a->bucket[i] : 0) >= want)
            return (isfinite(b->le[i]) ? b->le[i] : last_finite) * 1000;
    }
    return last_finite * 1000;
}

static json_t *time_json(int64_t ms)
{
    char t[32];
    kp_backup_time_format(ms, t); /* RFC 3339 UTC with milliseconds, as the backups' times */
    return json_string(t);
}

/* One broker's entry of the history: its URL, node id, last error, disk and its rates
 * between its last two scrapes. Caller holds lock. */
static json_t *broker_json(const broker_hist_t *b)
{
    json_t *o = json_pack("{s:s, s:o}", "metricsUrl", b->url, "lastError",
                          b->err[0] ? json_string(b->err) : json_null());
    if (!b->n_ok) return o;
    const sample_t *l = &b->last, *p = &b->prev;
    if (l->node_id >= 0) json_object_set_new(o, "nodeId", json_integer(l->node_id));
    if (l->has_disk) {
        json_object_set_new(o, "diskUsedBytes", json_integer(fig_int(l->disk_used)));
        json_object_set_new(o, "diskFreeBytes", json_integer(fig_int(l->disk_free)));
        json_object_set_new(o, "diskCapacityBytes", json_integer(fig_int(l->disk_cap)));
    }
    double dt = (double)(l->t_ms - p->t_ms) / 1000.0;
    int ok = b->n_ok == 2 && dt > 0 && l->requests >= p->requests && l->bytes_in >= p->bytes_in &&
             l->bytes_out >= p->bytes_out && l->records_in >= p->records_in;
    json_object_set_new(o, "requestsPerSecond", num_or_null(ok, (l->requests - p->requests) / dt));
    json_object_set_new(o, "bytesInPerSecond", num_or_null(ok, (l->bytes_in - p->bytes_in) / dt));
    json_object_set_new(o, "bytesOutPerSecond",
                        num_or_null(ok, (l->bytes_out - p->bytes_out) / dt));
    json_object_set_new(o, "recordsInPerSecond",
                        num_or_null(ok, (l->records_in - p->records_in) / dt));
    return o;
}

json_t *kp_pool_metrics_history(const char *pool)
{
    pthread_mutex_lock(&lock);
    pool_hist_t *h = pools;
    while (h && strcmp(h->name, pool) != 0) h = h->next;
    if (!running || !h) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    json_t *samples = json_array();
    int first = (h->head - h->n + KP_POOL_METRICS_SAMPLES) % KP_POOL_METRICS_SAMPLES;
    for (int k = 1; k < h->n; k++) {
        const sample_t *a = &h->ring[(first + k - 1) % KP_POOL_METRICS_SAMPLES];
        const sample_t *b = &h->ring[(first + k) % KP_POOL_METRICS_SAMPLES];
        double dt = (double)(b->t_ms - a->t_ms) / 1000.0;
        /* a counter that went down: the broker restarted, no rate over that gap; nor when
         * the brokers added up are not the same (one did not answer) */
        int ok = dt > 0 && a->mask == b->mask && b->requests >= a->requests &&
                 b->bytes_in >= a->bytes_in && b->bytes_out >= a->bytes_out &&
                 b->records_in >= a->records_in && b->lat_count >= a->lat_count;
        double dc = b->lat_count - a->lat_count;
        json_array_append_new(
            samples,
            json_pack(
                "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "time", time_json(b->t_ms),
                "requestsPerSecond", num_or_null(ok, (b->requests - a->requests) / dt),
                "latencyMeanMs", num_or_null(ok && dc > 0, (b->lat_sum - a->lat_sum) / dc * 1000),
                "latencyP99Ms", num_or_null(ok && dc > 0, p99_ms(a, b, dc)), "bytesInPerSecond",
                num_or_null(ok, (b->bytes_in - a->bytes_in) / dt), "bytesOutPerSecond",
                num_or_null(ok, (b->bytes_out - a->bytes_out) / dt), "recordsInPerSecond",
                num_or_null(ok, (b->records_in - a->records_in) / dt), "diskUsedBytes",
                b->has_disk ? json_integer(fig_int(b->disk_used)) : json_null()));
    }
    json_t *brokers = json_array(), *urls = json_array();
    for (int i = 0; i < h->nbrokers; i++) {
        json_array_append_new(urls, json_string(h->brokers[i].url));
        json_array_append_new(brokers, broker_json(&h->brokers[i]));
    }
    json_t *doc = json_pack("{s:I, s:I, s:s, s:o, s:o, s:o, s:o}", "intervalMs",
                            (json_int_t)interval, "samplesMax", (json_int_t)KP_POOL_METRICS_SAMPLES,
                            "metricsUrl", h->nbrokers ? h->brokers[0].url : "", "metricsUrls", urls,
                            "lastScrapeTime", h->last_ms ? time_json(h->last_ms) : json_null(),
                            "samples", samples, "brokers", brokers);
    json_object_set_new(doc, "lastError", h->err[0] ? json_string(h->err) : json_null());
    pthread_mutex_unlock(&lock);
    return doc;
}

void kp_pool_metrics_annotate(const char *pool, const char *topic, json_t *doc, json_t *partitions)
{
    pthread_mutex_lock(&lock);
    pool_hist_t *h = pools;
    while (h && strcmp(h->name, pool) != 0) h = h->next;
    const topic_fig_t *t = h ? kp_hmap_get(&h->pub->topics, topic, strlen(topic)) : NULL;
    if (t && t->has_sizes) {
        json_int_t total = 0;
        size_t i;
        json_t *p;
        json_array_foreach(partitions, i, p)
        {
            json_int_t want = json_integer_value(json_object_get(p, "partition"));
            size_t lo = 0, hi = t->nparts;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (t->parts[mid].partition < want)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < t->nparts && t->parts[lo].partition == want && t->parts[lo].has_size) {
                json_object_set_new(p, "sizeBytes", json_integer((json_int_t)t->parts[lo].size));
                total += (json_int_t)t->parts[lo].size;
            }
        }
        json_object_set_new(doc, "sizeBytes", json_integer(total));
        json_object_set_new(doc, "recordsPerSecond",
                            t->has_rate ? json_real(round(t->rate * 1000) / 1000) : json_null());
        for (int k = 0; k < NTRAFFIC; k++)
            json_object_set_new(doc, traffic_rates[k],
                                t->trate_mask & (1u << k)
                                    ? json_real(round(t->trate[k] * 1000) / 1000)
                                    : json_null());
    }
    pthread_mutex_unlock(&lock);
}
