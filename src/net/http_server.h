/*
 * http_server.h — the libmicrohttpd glue every HTTP server of kpool shares: the broker's
 * admin endpoint (broker/admin.c), the control plane's API (control/api/api.c) and the schema
 * registry (registry/registry.c). Starting a daemon (host:port parsed and resolved, epoll,
 * IPv6, TLS from PEM in memory, the port it bound) and queueing a reply.
 *
 * Every daemon runs on libmicrohttpd's own threads with epoll (MHD_USE_AUTO), never
 * select(): the process may also run the pool broker, which keeps one descriptor per
 * partition segment, and select() refuses every connection whose descriptor is
 * >= FD_SETSIZE (1024).
 */
#ifndef KP_HTTP_SERVER_H
#define KP_HTTP_SERVER_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct kp_http_listen {
    const char *what;     /* names the setting in errors: "admin.listener", ... */
    const char *hostport; /* host:port ([v6]:port); port 0 picks one */
    unsigned flags;       /* added to the defaults (MHD_ALLOW_SUSPEND_RESUME, ...) */
    /* PEM in memory (kept until the daemon stops); NULL: plain HTTP */
    const char *tls_cert, *tls_key;
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    /* more options (MHD_OPTION_CONNECTION_LIMIT, ...), ended by MHD_OPTION_END; NULL: none */
    const struct MHD_OptionItem *options;
} kp_http_listen_t;

/* Starts a daemon on l->hostport. *port gets the port it bound, host (may be NULL) the host
 * part. NULL with err: "<what>: '<hostport>' is not host:port", "<what>: cannot resolve
 * <host>" or "<what>: cannot listen on <hostport> (in use?)". */
struct MHD_Daemon *kp_http_listen(const kp_http_listen_t *l, int *port, char *host, size_t hostlen,
                                  char *err, size_t errlen);

/* Queues a reply of len bytes of body (mode: MHD_RESPMEM_MUST_COPY, _MUST_FREE (then body
 * is taken, also on failure) or _PERSISTENT) with Content-Type type and the extra headers
 * (name, value pairs ended by NULL; may be NULL). libmicrohttpd's answer. */
enum MHD_Result kp_http_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                              const void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                              const char *const *headers);

#endif
