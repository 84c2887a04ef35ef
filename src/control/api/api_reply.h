/*
 * api_reply.h — building and sending the API's JSON replies (api.c, api_teams.c,
 * api_backup.c): Kubernetes Status objects and the serialization of any reply.
 *
 * Replies embed outside input (names from the URL or the body, parser messages), which may
 * be invalid UTF-8 or cut in the middle of a character; jansson would refuse such text and
 * give NULL. Everything here takes any bytes and never yields NULL: invalid UTF-8 becomes
 * U+FFFD (core/utf8.h), a body that cannot be serialized becomes a 500 Status.
 */
#ifndef KP_API_REPLY_H
#define KP_API_REPLY_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

/* A Kubernetes Status (status Failure) with message msg (any bytes). Never NULL. */
json_t *kp_api_status(unsigned code, const char *reason, const char *msg);
json_t *kp_api_statusf(unsigned code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reply text of body (pretty JSON), malloc'd and never NULL: a NULL body, or one that
 * cannot be serialized, gives a 500 Status instead and *code is set to 500. */
char *kp_api_reply_text(const json_t *body, unsigned *code, size_t *len);
/* One Warning header value for an unknown field (RFC 7234 warn-text: a quoted string with
 * '"' and '\' escaped and anything but printable ASCII shown as '?'). */
void kp_api_warning_value(const char *field, char *out, size_t outlen);
/* Queues the reply (body and warnings are borrowed). */
enum MHD_Result kp_api_send(struct MHD_Connection *conn, unsigned code, const json_t *body,
                            const json_t *warnings);

#endif
