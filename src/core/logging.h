/*
 * log.h — structured log lines (logfmt): ts, level, comp(onent), msg.
 *
 *   ts=2026-11-27T06:10:00.123Z level=info comp=net msg="listening on 127.0.0.1:9092"
 *
 * Thread-safe (one write(2) per line). Never pass key material or secrets as arguments:
 * log lines are for operators and end up in shared places.
 */
#ifndef KP_LOGGING_H
#define KP_LOGGING_H

#include <stdarg.h>

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

#endif
