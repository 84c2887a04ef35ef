/* admin.c — /livez, /readyz, /metrics over libmicrohttpd (see admin.h). */
#include "broker/admin.h"

#include "core/buf.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "net/http_server.h"

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
    return kp_http_reply(conn, status, type, body, len, MHD_RESPMEM_MUST_COPY, NULL);
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
    kp_admin_http_t *h = kp_xcalloc(1, sizeof(*h));
    h->ready = ready;
    h->api_name = api_name;
    /* The limits keep /livez and /readyz answering while slow or idle clients hold
     * connections (a liveness probe that times out restarts a healthy pool): epoll serves
     * every connection as its bytes arrive, so a probe only needs a free slot — many of
     * them, each small (a probe's request is one line), and slots held without progress
     * are taken back after KP_ADMIN_HTTP_TIMEOUT_S. */
    const struct MHD_OptionItem limits[] = {
        {MHD_OPTION_CONNECTION_LIMIT, KP_ADMIN_HTTP_CONNECTIONS_MAX, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, KP_ADMIN_HTTP_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, KP_ADMIN_HTTP_CONN_MEMORY_BYTES, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, KP_ADMIN_HTTP_CONNECTIONS_MAX, NULL},
        {MHD_OPTION_END, 0, NULL}};
    kp_http_listen_t l = {.what = "admin.listener",
                          .hostport = hostport,
                          .handler = handle,
                          .handler_cls = h,
                          .options = limits};
    int port;
    h->daemon = kp_http_listen(&l, &port, NULL, 0, err, errlen);
    if (!h->daemon) {
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
