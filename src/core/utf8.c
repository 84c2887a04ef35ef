/* utf8.c — UTF-8 validation and lossy conversion (see utf8.h). */
#include "core/utf8.h"

#include <string.h>

size_t kp_utf8_char_len(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, an overlong lead (C0, C1) or past U+10FFFF */
    }
    if (n < len) return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int kp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = kp_utf8_char_len(u + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

void kp_utf8_lossy(const char *s, kp_buf_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = kp_utf8_char_len(u + i, n - i);
        if (len) {
            kp_buf_append(out, u + i, len);
            i += len;
        } else {
            kp_buf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD, one per invalid byte */
            i++;
        }
    }
}

json_t *kp_json_text(const char *s)
{
    if (!s) return json_string("");
    size_t n = strlen(s);
    if (kp_utf8_valid(s, n)) return json_stringn(s, n);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_utf8_lossy(s, &b);
    json_t *v = json_stringn((const char *)b.data, b.len);
    kp_buf_free(&b);
    return v;
}
