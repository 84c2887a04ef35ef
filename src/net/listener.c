/* listener.c — per-loop SO_REUSEPORT listening sockets (see listener.h). */
#include "net/listener.h"

#include "core/buf.h"
#include "core/logging.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct lsock {
    kp_io_t io;
    int fd;
    kp_loop_t *loop;
    kp_listener_t *owner;
} lsock_t;

struct kp_listener {
    lsock_t *socks;
    int n;
    int port;
    kp_accept_fn fn;
    void *arg;
};

/* atomic: max.connections is a dynamic broker config, set while loops accept */
static _Atomic long long connections_max = 10000;

void kp_connections_set_max(long long max)
{
    connections_max = max;
}

int kp_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') return -1;
        if ((size_t)(rb - s - 1) >= hostlen) return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= hostlen) return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || colon[1] == 0) return -1;
    *port = (int)p;
    return 0;
}

static void on_accept(kp_loop_t *loop, kp_io_t *io, uint32_t events)
{
    lsock_t *ls = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                kp_warn("net", "accept: %s", strerror(errno));
            return;
        }
        if (atomic_load(&kp_metrics.connections_open) >= connections_max) {
            kp_metric_add(&kp_metrics.connections_rejected, 1);
            kp_warn("net", "refusing connection: max.connections (%lld) reached", connections_max);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            port = ntohs(sin6->sin6_port);
        }
        ls->owner->fn(loop, fd, ip, port, ls->owner->arg);
    }
}

static int bind_one(const char *host, int port, int *bound_port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "bind %s:%d: %s", host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

kp_listener_t *kp_listener_new(const char *host, int port, kp_loop_t **loops, int nloops,
                               kp_accept_fn fn, void *arg, char *err, size_t errlen)
{
    kp_listener_t *l = kp_xcalloc(1, sizeof(*l));
    l->socks = kp_xcalloc((size_t)nloops, sizeof(lsock_t));
    l->fn = fn;
    l->arg = arg;
    for (int i = 0; i < nloops; i++) {
        int bound;
        int fd = bind_one(host, i == 0 ? port : l->port, &bound, err, errlen);
        if (fd < 0) {
            kp_listener_free(l);
            return NULL;
        }
        if (i == 0) l->port = bound;
        l->socks[i].fd = fd;
        l->socks[i].loop = loops[i];
        l->socks[i].owner = l;
        l->n = i + 1;
    }
    /* Register only after every socket bound: a failure above leaves nothing in a loop. */
    for (int i = 0; i < l->n; i++)
        kp_loop_add(loops[i], &l->socks[i].io, l->socks[i].fd, KP_READABLE, on_accept,
                    &l->socks[i]);
    return l;
}

int kp_listener_port(const kp_listener_t *l)
{
    return l->port;
}

/* Loops must be stopped (or the call made on their threads) before the sockets are freed. */
void kp_listener_free(kp_listener_t *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        if (l->socks[i].io.fn) kp_loop_del(l->socks[i].loop, &l->socks[i].io);
        close(l->socks[i].fd);
    }
    free(l->socks);
    free(l);
}
