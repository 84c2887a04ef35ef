/* http_server.c — libmicrohttpd glue: starting a daemon, queueing a reply (http_server.h). */
#include "net/http_server.h"

#include "net/listener.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct MHD_Daemon *kp_http_listen(const kp_http_listen_t *l, int *port, char *host, size_t hostlen,
                                  char *err, size_t errlen)
{
    char h[256];
    int p;
    if (kp_parse_hostport(l->hostport, h, sizeof(h), &p) < 0) {
        snprintf(err, errlen, "%s: '%s' is not host:port", l->what, l->hostport);
        return NULL;
    }
    if (host) snprintf(host, hostlen, "%s", h);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", p);
    if (getaddrinfo(h[0] ? h : NULL, ps, &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "%s: cannot resolve %s", l->what, h);
        return NULL;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | l->flags;
    if (res->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (l->tls_cert) flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
        {l->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)l->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)l->tls_key},
        {MHD_OPTION_END, 0, NULL}};
    static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)p, NULL, NULL, l->handler, l->handler_cls,
                         MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_ARRAY,
                         l->options ? l->options : none, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    freeaddrinfo(res);
    if (!d) {
        snprintf(err, errlen, "%s: cannot listen on %s (in use?)", l->what, l->hostport);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : p;
    return d;
}

enum MHD_Result kp_http_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                              const void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                              const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free((void *)body);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(r, "Content-Type", type);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}
