/*
 * log.h — structured log lines (logfmt): ts, level, comp(onent), msg.
 *
 *   ts=2026-11-27T06:10:00.123Z level=info comp=net msg="listening on 127.0.0.1:9092"
 *
 * Thread-safe (one write(2) per line). Never pass key material or secrets as arguments:
 * log lines are for operators and end up in shared places. A condition that repeats (a full
 * disk) goes through a kp_log_limit_t: once, then at intervals, then when it clears.
 */
#ifndef KP_LOGGING_H
#define KP_LOGGING_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

typedef enum { KP_LOG_DEBUG = 0, KP_LOG_INFO, KP_LOG_WARN, KP_LOG_ERROR } kp_loglevel_t;

void kp_logging_set_level(kp_loglevel_t level);
int kp_logging_level_parse(const char *s, kp_loglevel_t *out);
int kp_logging_enabled(kp_loglevel_t level);
void kp_logf(kp_loglevel_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define kp_debug(comp, ...)                                                                        \
    do {                                                                                           \
        if (kp_logging_enabled(KP_LOG_DEBUG)) kp_logf(KP_LOG_DEBUG, comp, __VA_ARGS__);            \
    } while (0)
#define kp_info(comp, ...)  kp_logf(KP_LOG_INFO, comp, __VA_ARGS__)
#define kp_warn(comp, ...)  kp_logf(KP_LOG_WARN, comp, __VA_ARGS__)
#define kp_error(comp, ...) kp_logf(KP_LOG_ERROR, comp, __VA_ARGS__)

/* ---- conditions that repeat: logged once, then at intervals, then when they clear ----
 *
 * A condition that can fail every operation many times a second (a full disk under a
 * database, a log, a backup directory) would bury everything else in the log. One
 * kp_log_limit_t per condition: kp_log_limit_hit logs its first occurrence, then at most one
 * line per interval saying how many occurrences were not logged; kp_log_limit_clear (called
 * on the next success) logs once that the condition is over, with the counts. Thread-safe;
 * kp_log_limit_clear is one atomic load while the condition is not active, so it may sit on
 * a hot path.
 *
 *   static kp_log_limit_t full = KP_LOG_LIMIT_INIT(KP_LOG_LIMIT_INTERVAL_MS_DEFAULT);
 *   if (write failed with ENOSPC)
 *       kp_log_limit_hit(&full, kp_mono_ms(), KP_LOG_ERROR, "store", "disk full: %s", what);
 *   else
 *       kp_log_limit_clear(&full, kp_mono_ms(), KP_LOG_INFO, "store", "writes succeed again");
 */

/* Between two lines about the same ongoing condition: a minute keeps a day of a full disk to
 * 1,440 lines, and an operator still sees it is ongoing. */
#define KP_LOG_LIMIT_INTERVAL_MS_DEFAULT 60000

typedef struct kp_log_limit {
    pthread_mutex_t lock;
    int64_t interval_ms;
    atomic_int active;   /* the condition holds (since its first occurrence, until cleared) */
    int64_t since_ms;    /* its first occurrence (monotonic ms) */
    int64_t last_ms;     /* the last line written about it */
    uint64_t count;      /* occurrences since since_ms */
    uint64_t suppressed; /* occurrences since last_ms that were not logged */
    uint64_t logged;     /* lines written since since_ms */
} kp_log_limit_t;

#define KP_LOG_LIMIT_INIT(interval)                                                                \
    {                                                                                              \
        .lock = PTHREAD_MUTEX_INITIALIZER, .interval_ms = (interval)                               \
    }

void kp_log_limit_init(kp_log_limit_t *l, int64_t interval_ms);
void kp_log_limit_destroy(kp_log_limit_t *l);
/* One occurrence at now_ms (kp_mono_ms()). Logs the message when the condition begins, and
 * again with "(N more since the last report, M in all over T s)" once interval_ms has passed
 * since the last line; otherwise only counts. 1 when a line was written, else 0. */
int kp_log_limit_hit(kp_log_limit_t *l, int64_t now_ms, kp_loglevel_t level, const char *comp,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The condition is over: when it was active, logs the message with "(after M occurrences
 * over T s, N not logged)" and returns 1; otherwise does nothing and returns 0. The next hit
 * begins a new episode (logged at once). */
int kp_log_limit_clear(kp_log_limit_t *l, int64_t now_ms, kp_loglevel_t level, const char *comp,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 1 while the condition is active (hit, and not cleared since). */
int kp_log_limit_active(kp_log_limit_t *l);

#endif
