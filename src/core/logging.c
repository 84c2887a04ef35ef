/*
 * log.c — logfmt lines on stderr. The message is escaped so a quote or newline coming from
 * a peer (a client id, a topic name) cannot forge a second log line, and bytes that are not
 * UTF-8 (a name from a URL) are shown as \xNN so every line stays valid UTF-8.
 */
#include "core/logging.h"

#include "core/utf8.h"

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
