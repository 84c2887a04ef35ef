/* api_reply.c — Status objects and reply serialization that no input can break (see
 * api_reply.h). */
#include "control/api/api_reply.h"

#include "core/buf.h"
#include "core/utf8.h"
#include "net/http_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *kp_api_status(unsigned code, const char *reason, const char *msg)
{
    json_t *s = json_object();
    json_object_set_new(s, "kind", json_string("Status"));
    json_object_set_new(s, "apiVersion", json_string("v1"));
    json_object_set_new(s, "metadata", json_object());
    json_object_set_new(s, "status", json_string("Failure"));
    json_object_set_new(s, "message", kp_json_text(msg));
    json_object_set_new(s, "reason", kp_json_text(reason));
    json_object_set_new(s, "code", json_integer(code));
    return s;
}

json_t *kp_api_statusf(unsigned code, const char *reason, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kp_api_status(code, reason, msg);
}

char *kp_api_reply_text(const json_t *body, unsigned *code, size_t *len)
{
    char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (!text) {
        json_t *s = kp_api_status(500, "InternalError", "the reply could not be built");
        text = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(s);
        *code = 500;
    }
    if (!text) abort(); /* a fixed ASCII Status: only memory exhaustion gets here */
    *len = strlen(text);
    return text;
}

void kp_api_warning_value(const char *field, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "299 - \"unknown field \\\"");
    for (const unsigned char *c = (const unsigned char *)field; *c && n + 8 < outlen; c++) {
        if (*c == '"' || *c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*c;
        } else {
            out[n++] = *c >= 0x20 && *c < 0x7F ? (char)*c : '?';
        }
    }
    snprintf(out + n, outlen - n, "\\\"\"");
}

enum MHD_Result kp_api_send(struct MHD_Connection *conn, unsigned code, const json_t *body,
                            const json_t *warnings)
{
    size_t n;
    char *text = kp_api_reply_text(body, &code, &n);
    /* one Warning header per warning (name, value pairs for kp_http_reply) */
    size_t nw = json_array_size(warnings), i;
    const char **headers = kp_xcalloc(2 * nw + 1, sizeof(*headers));
    char(*values)[1200] = nw ? kp_xmalloc(nw * sizeof(*values)) : NULL;
    json_t *w;
    json_array_foreach(warnings, i, w)
    {
        kp_api_warning_value(json_string_value(w), values[i], sizeof(values[i]));
        headers[2 * i] = "Warning";
        headers[2 * i + 1] = values[i];
    }
    enum MHD_Result rc =
        kp_http_reply(conn, code, "application/json", text, n, MHD_RESPMEM_MUST_FREE, headers);
    free(values);
    free(headers);
    return rc;
}
