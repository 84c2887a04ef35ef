/* pool_metrics.c — the pools' history from their brokers' /metrics (see pool_metrics.h). */
#include "control/pool_metrics.h"

#include "control/backup_format.h"
#include "control/pool_browse.h"
#include "core/buf.h"
#include "core/clock.h"
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

typedef struct scrape {
    sample_t s;
    json_t *sizes;   /* {topic: {"<partition>": bytes}} */
    json_t *ends;    /* {topic: {"<partition>": end offset}} */
    json_t *traffic; /* {topic: [records in, records out, bytes in, bytes out]} (counters) */
} scrape_t;

/* kpool_topic_*_total (handle_log_dirs.c), in the order of scrape_t.traffic's arrays. */
static const char *const traffic_names[] = {
    "kpool_topic_records_in_total", "kpool_topic_records_out_total", "kpool_topic_bytes_in_total",
    "kpool_topic_bytes_out_total"};
/* Their rates' names in a topic's partitions answer (kp_pool_metrics_annotate). */
static const char *const traffic_rates[] = {"produceRecordsPerSecond", "consumeRecordsPerSecond",
                                            "produceBytesPerSecond", "consumeBytesPerSecond"};
#define NTRAFFIC 4

/* into[topic][k] += v. */
static void traffic_add(json_t *into, const char *topic, int k, double v)
{
    json_t *t = json_object_get(into, topic);
    if (!t) {
        t = json_pack("[f, f, f, f]", 0.0, 0.0, 0.0, 0.0);
        json_object_set_new(into, topic, t);
    }
    json_array_set_new(t, (size_t)k, json_real(json_real_value(json_array_get(t, (size_t)k)) + v));
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
                kp_prom_label(labels, ll, "topic", topic, sizeof(topic)) == 0 && v >= 0)
                traffic_add(sc->traffic, topic, k, v);
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
        json_t *m = name[n - 1] == 's' ? sc->sizes : sc->ends; /* ..._bytes : ..._offset */
        json_t *t = json_object_get(m, topic);
        if (!t) json_object_set_new(m, topic, t = json_object());
        char key[16];
        snprintf(key, sizeof(key), "%ld", p);
        json_object_set_new(t, key, json_integer((json_int_t)v));
    }
}

typedef struct page {
    char *data;
    size_t len;
} page_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    page_t *p = arg;
    size_t n = size * nmemb;
    if (p->len + n > KP_POOL_METRICS_PAGE_MAX) return 0; /* curl fails the transfer */
    char *d = realloc(p->data, p->len + n + 1);
    if (!d) return 0;
    memcpy(d + p->len, ptr, n);
    p->data = d;
    p->len += n;
    d[p->len] = 0;
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
    json_t *sizes, *rates; /* latest: {topic: {"<p>": bytes}}, {topic: records/s} */
    json_t *prev_ends;     /* the previous scrape's end offsets per topic */
    int64_t prev_ends_ms;  /* and its time */
    json_t *traffic;       /* latest: {topic: {produceRecordsPerSecond, ...}} */
    json_t *prev_traffic;  /* the previous scrape's kpool_topic_*_total, added up */
    uint32_t prev_mask;    /* the brokers that made it */
    sample_t last;         /* the latest sample (disk figures) */
    int64_t last_ms;       /* wall time of the last attempt */
    char err[512];         /* the last attempt's error, "" when it worked */
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
    json_decref(h->sizes);
    json_decref(h->rates);
    json_decref(h->prev_ends);
    json_decref(h->traffic);
    json_decref(h->prev_traffic);
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
        json_decref(h->prev_ends);
        h->prev_ends = NULL;
        json_decref(h->prev_traffic);
        h->prev_traffic = NULL;
    }
    if (!h) {
        h = kp_xcalloc(1, sizeof(*h));
        h->name = kp_xstrdup(name);
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

/* into[topic][partition] = max(into's, from's): every replica reports its partitions; the
 * leader's figures are the largest (a follower's log and end trail it). */
static void merge_max(json_t *into, json_t *from)
{
    const char *topic, *part;
    json_t *parts, *v;
    json_object_foreach(from, topic, parts)
    {
        json_t *t = json_object_get(into, topic);
        if (!t) json_object_set_new(into, topic, t = json_object());
        json_object_foreach(parts, part, v)
        {
            json_t *have = json_object_get(t, part);
            if (!have || json_integer_value(have) < json_integer_value(v))
                json_object_set(t, part, v);
        }
    }
}

/* What one round of scrapes of a pool's brokers found. */
typedef struct round {
    scrape_t pool; /* the brokers' samples added up, the partitions' figures merged */
    sample_t s[KP_POOL_METRICS_BROKERS_MAX];
    char err[KP_POOL_METRICS_BROKERS_MAX][512]; /* "" when the broker's scrape worked */
} round_t;

/* The topics' traffic rates between the previous round and this one (dt seconds), when the
 * same brokers answered both (a counter that went down, a restart, gives no rate). Caller
 * holds lock. */
static void record_traffic(pool_hist_t *h, scrape_t *sc, double dt)
{
    json_t *rates = json_object();
    const char *topic;
    json_t *now;
    json_object_foreach(sc->traffic, topic, now)
    {
        json_t *prev = h->prev_traffic && h->prev_mask == sc->s.mask
                           ? json_object_get(h->prev_traffic, topic)
                           : NULL;
        if (!prev || dt <= 0) continue;
        json_t *r = json_object();
        for (int k = 0; k < NTRAFFIC; k++) {
            double d = json_real_value(json_array_get(now, (size_t)k)) -
                       json_real_value(json_array_get(prev, (size_t)k));
            if (d >= 0) json_object_set_new(r, traffic_rates[k], json_real(d / dt));
        }
        json_object_set_new(rates, topic, r);
    }
    json_decref(h->traffic);
    h->traffic = rates;
    json_decref(h->prev_traffic);
    h->prev_traffic = json_incref(sc->traffic);
    h->prev_mask = sc->s.mask;
}

static void record(const char *name, const char *const *urls, int n, round_t *r)
{
    pthread_mutex_lock(&lock);
    pool_hist_t *h = hist_of(name, urls, n);
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
    if (r->pool.s.mask) {
        scrape_t *sc = &r->pool;
        h->ring[h->head] = sc->s;
        h->head = (h->head + 1) % KP_POOL_METRICS_SAMPLES;
        if (h->n < KP_POOL_METRICS_SAMPLES) h->n++;
        h->last = sc->s;
        json_decref(h->sizes);
        h->sizes = json_incref(sc->sizes);
        json_t *ends = json_object(); /* {topic: the partitions' end offsets added up} */
        const char *topic, *part;
        json_t *parts, *v;
        json_object_foreach(sc->ends, topic, parts)
        {
            double sum = 0;
            json_object_foreach(parts, part, v) sum += (double)json_integer_value(v);
            json_object_set_new(ends, topic, json_real(sum));
        }
        json_t *rates = json_object();
        double dt = (double)(sc->s.t_ms - h->prev_ends_ms) / 1000.0;
        json_t *end;
        json_object_foreach(ends, topic, end)
        {
            json_t *prev = h->prev_ends ? json_object_get(h->prev_ends, topic) : NULL;
            double d = prev ? json_real_value(end) - json_real_value(prev) : -1;
            if (prev && dt > 0 && d >= 0) json_object_set_new(rates, topic, json_real(d / dt));
        }
        json_decref(h->rates);
        h->rates = rates;
        json_decref(h->prev_ends);
        h->prev_ends = ends;
        h->prev_ends_ms = sc->s.t_ms;
        record_traffic(h, sc, dt);
    }
    pthread_mutex_unlock(&lock);
}

/* Scrapes each of the pool's brokers (one after the other, SCRAPE_TIMEOUT_MS each) and
 * records the round. */
static void scrape_pool(const char *name, const char *const *urls, int n)
{
    round_t *r = kp_xcalloc(1, sizeof(*r));
    r->pool.sizes = json_object();
    r->pool.ends = json_object();
    r->pool.traffic = json_object();
    r->pool.s.node_id = -1;
    for (int i = 0; i < n; i++) {
        scrape_t sc;
        memset(&sc, 0, sizeof(sc));
        sc.s.node_id = -1;
        sc.sizes = json_object();
        sc.ends = json_object();
        sc.traffic = json_object();
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
                merge_max(r->pool.sizes, sc.sizes);
                merge_max(r->pool.ends, sc.ends);
                /* each broker counts the traffic it led: the pool's is the sum */
                const char *topic;
                json_t *t;
                json_object_foreach(sc.traffic, topic, t) for (int k = 0; k < NTRAFFIC; k++)
                    traffic_add(r->pool.traffic, topic, k,
                                json_real_value(json_array_get(t, (size_t)k)));
            }
            free(page.data);
        }
        json_decref(sc.sizes);
        json_decref(sc.ends);
        json_decref(sc.traffic);
    }
    record(name, urls, n, r);
    json_decref(r->pool.sizes);
    json_decref(r->pool.ends);
    json_decref(r->pool.traffic);
    free(r);
}

int kp_pool_metrics_digest(const char *page, size_t len)
{
    round_t *r = kp_xcalloc(1, sizeof(*r));
    r->pool.sizes = json_object();
    r->pool.ends = json_object();
    r->pool.traffic = json_object();
    int n = 0;
    for (int i = 0; i < 2; i++) { /* twice: the second adds up and merges into the first */
        scrape_t sc;
        memset(&sc, 0, sizeof(sc));
        sc.sizes = json_object();
        sc.ends = json_object();
        sc.traffic = json_object();
        n = kp_prom_parse(page, len, on_sample, &sc);
        sample_add(&r->pool.s, &sc.s);
        merge_max(r->pool.sizes, sc.sizes);
        merge_max(r->pool.ends, sc.ends);
        const char *topic;
        json_t *t;
        json_object_foreach(sc.traffic, topic, t) for (int k = 0; k < NTRAFFIC; k++)
            traffic_add(r->pool.traffic, topic, k, json_real_value(json_array_get(t, (size_t)k)));
        json_decref(sc.sizes);
        json_decref(sc.ends);
        json_decref(sc.traffic);
    }
    json_decref(r->pool.sizes);
    json_decref(r->pool.ends);
    json_decref(r->pool.traffic);
    free(r);
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
        json_object_set_new(o, "diskUsedBytes", json_integer((json_int_t)l->disk_used));
        json_object_set_new(o, "diskFreeBytes", json_integer((json_int_t)l->disk_free));
        json_object_set_new(o, "diskCapacityBytes", json_integer((json_int_t)l->disk_cap));
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
                b->has_disk ? json_integer((json_int_t)b->disk_used) : json_null()));
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
    json_t *sizes = h && h->sizes ? json_object_get(h->sizes, topic) : NULL;
    if (sizes) {
        json_int_t total = 0;
        size_t i;
        json_t *p;
        json_array_foreach(partitions, i, p)
        {
            char key[24];
            snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(p, "partition")));
            json_t *s = json_object_get(sizes, key);
            if (s) {
                json_object_set(p, "sizeBytes", s);
                total += json_integer_value(s);
            }
        }
        json_object_set_new(doc, "sizeBytes", json_integer(total));
        json_t *rate = json_object_get(h->rates, topic);
        json_object_set_new(doc, "recordsPerSecond",
                            rate ? json_real(round(json_real_value(rate) * 1000) / 1000)
                                 : json_null());
        json_t *traffic = json_object_get(h->traffic, topic);
        for (int k = 0; k < NTRAFFIC; k++) {
            json_t *v = json_object_get(traffic, traffic_rates[k]);
            json_object_set_new(doc, traffic_rates[k],
                                v ? json_real(round(json_real_value(v) * 1000) / 1000)
                                  : json_null());
        }
    }
    pthread_mutex_unlock(&lock);
}
