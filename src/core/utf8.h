/*
 * utf8.h — UTF-8 checks and the lossy conversion every reply or log line that carries outside
 * input goes through.
 *
 * JSON (and so jansson) takes only valid UTF-8: json_string() and json_pack() return NULL
 * for anything else. A name from a URL (%FF), one byte of a multi-byte character printed
 * with %c, or a message cut by snprintf in the middle of a character would then turn an
 * error reply into a NULL. kp_json_text() never does: invalid sequences become U+FFFD.
 */
#ifndef KP_UTF8_H
#define KP_UTF8_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

/* The length (1-4) of the valid UTF-8 character at s (n bytes available), or 0 when the
 * bytes there are not one (overlong forms, surrogates and code points past U+10FFFF are
 * not). */
size_t kp_utf8_char_len(const unsigned char *s, size_t n);
/* Whether s[0..n) is valid UTF-8 (NUL bytes are valid characters). */
int kp_utf8_valid(const char *s, size_t n);
/* Appends s (NUL-terminated) to out with every invalid sequence replaced by U+FFFD. */
void kp_utf8_lossy(const char *s, kp_buf_t *out);
/* A JSON string of s with invalid UTF-8 replaced by U+FFFD; "" for NULL. Never NULL (but
 * for memory exhaustion, which kp_x* allocations abort on anyway). */
json_t *kp_json_text(const char *s);

#endif
