/*
 * log.c — logfmt lines on stderr. The message is escaped so a quote or newline coming from
 * a peer (a client id, a topic name) cannot forge a second log line, and bytes that are not
 * UTF-8 (a name from a URL) are shown as \xNN so every line stays valid UTF-8. Below it, the
 * rate-limited conditions (kp_log_limit_t, see logging.h).
 */
#include "core/logging.h"

#include "core/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static kp_loglevel_t log_level = KP_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void kp_logging_set_level(kp_loglevel_t level)
{
    log_level = level;
}

int kp_logging_enabled(kp_loglevel_t level)
{
    return level >= log_level;
}

int kp_logging_level_parse(const char *s, kp_loglevel_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (kp_loglevel_t)i;
            return 0;
        }
    }
    return -1;
}

void kp_logf(kp_loglevel_t level, const char *comp, const char *fmt, ...)
{
    if (level < log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return;

    char line[4608];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t len = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    len += (size_t)snprintf(line + len, sizeof(line) - len, ".%03dZ level=%s comp=%s msg=\"",
                            (int)(tv.tv_usec / 1000), level_names[level], comp);
    for (const char *p = msg; *p && len < sizeof(line) - 8; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[len++] = '\\';
            line[len++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(line + len, sizeof(line) - len, "\\x%02x", c);
        } else if (c >= 0x80) {
            size_t clen = kp_utf8_char_len((const unsigned char *)p, strnlen(p, 4));
            if (!clen) {
                len += (size_t)snprintf(line + len, sizeof(line) - len, "\\x%02x", c);
            } else {
                memcpy(line + len, p, clen);
                len += clen;
                p += clen - 1;
            }
        } else {
            line[len++] = (char)c;
        }
    }
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* ---- conditions that repeat ---- */

void kp_log_limit_init(kp_log_limit_t *l, int64_t interval_ms)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
    l->interval_ms = interval_ms;
}

void kp_log_limit_destroy(kp_log_limit_t *l)
{
    pthread_mutex_destroy(&l->lock);
}

int kp_log_limit_active(kp_log_limit_t *l)
{
    return atomic_load_explicit(&l->active, memory_order_relaxed);
}

/* "<seconds>.<tenths>" of a duration in ms, for "over 12.3 s". */
static void seconds_fmt(int64_t ms, char out[32])
{
    if (ms < 0) ms = 0;
    snprintf(out, 32, "%" PRId64 ".%" PRId64, ms / 1000, (ms % 1000) / 100);
}

int kp_log_limit_hit(kp_log_limit_t *l, int64_t now_ms, kp_loglevel_t level, const char *comp,
                     const char *fmt, ...)
{
    pthread_mutex_lock(&l->lock);
    int first = !atomic_load_explicit(&l->active, memory_order_relaxed);
    if (first) {
        atomic_store_explicit(&l->active, 1, memory_order_relaxed);
        l->since_ms = now_ms;
        l->count = 0;
        l->suppressed = 0;
        l->logged = 0;
    }
    l->count++;
    int due = first || now_ms - l->last_ms >= l->interval_ms;
    uint64_t suppressed = l->suppressed, count = l->count;
    int64_t since = l->since_ms;
    if (due) {
        l->last_ms = now_ms;
        l->suppressed = 0;
        l->logged++;
    } else {
        l->suppressed++;
    }
    pthread_mutex_unlock(&l->lock);
    if (!due || !kp_logging_enabled(level)) return due;
    char msg[1024], secs[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (first) {
        kp_logf(level, comp, "%s", msg);
    } else {
        seconds_fmt(now_ms - since, secs);
        kp_logf(level, comp,
                "%s (%" PRIu64 " more since the last report, %" PRIu64 " in all over %s s)", msg,
                suppressed, count, secs);
    }
    return 1;
}

int kp_log_limit_clear(kp_log_limit_t *l, int64_t now_ms, kp_loglevel_t level, const char *comp,
                       const char *fmt, ...)
{
    if (!atomic_load_explicit(&l->active, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&l->lock);
    int was = atomic_exchange_explicit(&l->active, 0, memory_order_relaxed);
    uint64_t count = l->count, unlogged = l->count - l->logged;
    int64_t since = l->since_ms;
    pthread_mutex_unlock(&l->lock);
    if (!was) return 0; /* another thread cleared it first */
    char msg[1024], secs[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    seconds_fmt(now_ms - since, secs);
    kp_logf(level, comp, "%s (after %" PRIu64 " occurrences over %s s, %" PRIu64 " not logged)",
            msg, count, secs, unlogged);
    return 1;
}
