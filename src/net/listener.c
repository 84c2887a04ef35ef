/* listener.c — per-loop SO_REUSEPORT listening sockets (see listener.h). */
#include "net/listener.h"

#include "core/buf.h"
#include "core/clock.h"
#include "net/conn_limits.h"
#include "core/logging.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
    kp_timer_t *pause_timer; /* accepting paused after a failure (accept_pause) */
} lsock_t;

/* Connections the kernel completes before a loop accepts them (listen(2)'s backlog). */
#define LISTEN_BACKLOG 1024

struct kp_listener {
    lsock_t *socks;
    int n;
    int port;
    atomic_int started; /* kp_listener_start ran */
    kp_accept_fn fn;
    void *arg;
};

/* A flood of refused connections must not flood the log: one line per 10 s at most. */
static void refuse(int fd, const char *what, const char *ip, long long limit)
{
    static _Atomic int64_t last_warn_ms;
    kp_metric_add(&kp_metrics.connections_rejected, 1);
    close(fd);
    int64_t now = kp_mono_ms(), last = atomic_load(&last_warn_ms);
    if (now - last < 10000 || !atomic_compare_exchange_strong(&last_warn_ms, &last, now)) return;
    kp_warn("net",
            "refusing connections from %s (and maybe others): %s (%lld) reached; %lld refused "
            "since start",
            ip, what, limit, (long long)atomic_load(&kp_metrics.connections_rejected));
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

static void accept_resume(kp_loop_t *loop, void *arg)
{
    lsock_t *ls = arg;
    ls->pause_timer = NULL;
    kp_loop_set(loop, &ls->io, KP_READABLE);
}

/* accept() failed with the connection still queued (out of descriptors: EMFILE/ENFILE, or
 * memory): the listening socket stays readable, and retrying at once spun a loop thread at
 * 100 % and wrote millions of identical log lines. Stop watching the socket for
 * ACCEPT_PAUSE_MS (connections wait in the backlog meanwhile, or are served by another
 * loop) and say so at most once per 10 s. */
#define ACCEPT_PAUSE_MS 100

static void accept_pause(kp_loop_t *loop, lsock_t *ls, int err)
{
    static _Atomic int64_t last_warn_ms;
    int64_t now = kp_mono_ms(), last = atomic_load(&last_warn_ms);
    if (now - last >= 10000 && atomic_compare_exchange_strong(&last_warn_ms, &last, now))
        kp_warn("net",
                "accept: %s; pausing accepts for %d ms (raise the open files limit or "
                "lower max.connections)",
                strerror(err), ACCEPT_PAUSE_MS);
    if (ls->pause_timer) return;
    kp_loop_set(loop, &ls->io, 0);
    ls->pause_timer = kp_loop_timer(loop, ACCEPT_PAUSE_MS, accept_resume, ls);
}

static void on_accept(kp_loop_t *loop, kp_io_t *io, uint32_t events)
{
    lsock_t *ls = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            accept_pause(loop, ls, errno);
            return;
        }
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
        /* Reserve the slot before the connection exists: with one accepting loop per
         * network thread, a load-then-check let two loops both take the last slot. The
         * connection gives it back when it closes (kp_conn_close). */
        long long limit = kp_connections_max();
        if (atomic_fetch_add(&kp_metrics.connections_open, 1) >= limit) {
            atomic_fetch_sub(&kp_metrics.connections_open, 1);
            refuse(fd, "max.connections", ip, limit);
            continue;
        }
        if (kp_connections_ip_acquire(ip, &limit) < 0) {
            atomic_fetch_sub(&kp_metrics.connections_open, 1);
            refuse(fd, "max.connections.per.ip", ip, limit);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        kp_conn_t *c = ls->owner->fn(loop, fd, ip, port, ls->owner->arg);
        if (!c) {
            atomic_fetch_sub(&kp_metrics.connections_open, 1);
            kp_connections_ip_release(ip);
            continue;
        }
        snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", ip);
        c->ip_counted = 1;
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
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
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
    return l;
}

int kp_listener_start(kp_listener_t *l, char *err, size_t errlen)
{
    if (atomic_exchange(&l->started, 1)) return 0;
    for (int i = 0; i < l->n; i++) {
        if (listen(l->socks[i].fd, LISTEN_BACKLOG) < 0) {
            snprintf(err, errlen, "listen on port %d: %s", l->port, strerror(errno));
            return -1;
        }
    }
    /* watched only once every socket listens: a failure above leaves nothing in a loop */
    for (int i = 0; i < l->n; i++)
        kp_loop_add(l->socks[i].loop, &l->socks[i].io, l->socks[i].fd, KP_READABLE, on_accept,
                    &l->socks[i]);
    return 0;
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
        if (l->socks[i].pause_timer)
            kp_loop_timer_cancel(l->socks[i].loop, l->socks[i].pause_timer);
        if (l->socks[i].io.fn) kp_loop_del(l->socks[i].loop, &l->socks[i].io);
        close(l->socks[i].fd);
    }
    free(l->socks);
    free(l);
}
