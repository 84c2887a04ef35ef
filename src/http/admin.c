/* admin.c — /livez, /readyz, /metrics over libmicrohttpd (see admin.h). */
#include "http/admin.h"

#include "core/buf.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "net/listener.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kp_admin_http {
    struct MHD_Daemon *daemon;
    atomic_int *ready;
    const char *(*api_name)(int key);
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    kp_admin_http_t *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", "method not allowed\n", 19);
    if (!strcmp(url, "/livez")) return reply(conn, 200, "text/plain", "ok\n", 3);
    if (!strcmp(url, "/readyz")) {
        if (atomic_load(h->ready)) return reply(conn, 200, "text/plain", "ready\n", 6);
        return reply(conn, 503, "text/plain", "not ready\n", 10);
    }
    if (!strcmp(url, "/metrics")) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_metrics_render(&b, h->api_name);
        enum MHD_Result rc =
            reply(conn, 200, "text/plain; version=0.0.4", (const char *)b.data, b.len);
        kp_buf_free(&b);
        return rc;
    }
    return reply(conn, 404, "text/plain", "not found\n", 10);
}

kp_admin_http_t *kp_admin_http_start(const char *hostport, atomic_int *ready,
                                     const char *(*api_name)(int key), char *err, size_t errlen)
{
    char host[256];
    int port;
    if (kp_parse_hostport(hostport, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "admin.listener: '%s' is not host:port", hostport);
        return NULL;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host[0] ? host : NULL, ps, &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "admin.listener: cannot resolve %s", host);
        return NULL;
    }
    kp_admin_http_t *h = kp_xcalloc(1, sizeof(*h));
    h->ready = ready;
    h->api_name = api_name;
    /* epoll, not select(): the broker in the same process holds one descriptor per segment,
     * and select() refuses every connection whose descriptor is >= FD_SETSIZE (1024).
     * The limits keep /livez and /readyz answering while slow or idle clients hold
     * connections (a liveness probe that times out restarts a healthy pool): epoll serves
     * every connection as its bytes arrive, so a probe only needs a free slot — many of
     * them, each small (a probe's request is one line), and slots held without progress
     * are taken back after KP_ADMIN_HTTP_TIMEOUT_S. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, res->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)KP_ADMIN_HTTP_CONNECTIONS_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)KP_ADMIN_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KP_ADMIN_HTTP_CONN_MEMORY_BYTES,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)KP_ADMIN_HTTP_CONNECTIONS_MAX, MHD_OPTION_END);
    freeaddrinfo(res);
    if (!h->daemon) {
        snprintf(err, errlen, "admin.listener: cannot listen on %s (in use?)", hostport);
        free(h);
        return NULL;
    }
    kp_info("http", "health and metrics on http://%s/metrics", hostport);
    return h;
}

void kp_admin_http_stop(kp_admin_http_t *h)
{
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
