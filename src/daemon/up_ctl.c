/*
 * up_ctl.c — the control socket of `kpool up --brokers N` (see up_ctl.h): the request
 * parser, the server (a thread polling the listening socket and a stop pipe) and the client.
 */
#include "daemon/up_ctl.h"

#include "core/logging.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* How long the server waits for a client's request line (a client that says nothing). */
#define UP_CTL_READ_TIMEOUT_MS 5000

int kp_up_ctl_parse(const char *line, size_t len, kp_up_req_t *out, char *err, size_t errlen)
{
    if (len > 0 && line[len - 1] == '\n') len--;
    if (len >= KP_UP_CTL_LINE_MAX) {
        snprintf(err, errlen, "request too long");
        return -1;
    }
    char buf[KP_UP_CTL_LINE_MAX];
    memcpy(buf, line, len);
    buf[len] = 0;
    if (memchr(line, 0, len)) {
        snprintf(err, errlen, "a NUL in the request");
        return -1;
    }
    if (!strcmp(buf, "brokers")) {
        out->kind = KP_UP_REQ_BROKERS;
        out->broker = 0;
        return 0;
    }
    const char *arg = NULL;
    if (!strncmp(buf, "restart ", 8)) {
        out->kind = KP_UP_REQ_RESTART;
        arg = buf + 8;
    } else if (!strncmp(buf, "ready ", 6)) {
        out->kind = KP_UP_REQ_READY;
        arg = buf + 6;
    } else {
        snprintf(err, errlen, "unknown request (brokers, restart K, ready K)");
        return -1;
    }
    int id = 0, digits = 0;
    for (; arg[digits] >= '0' && arg[digits] <= '9' && id <= KP_UP_CTL_BROKER_MAX; digits++)
        id = id * 10 + (arg[digits] - '0');
    if (digits == 0 || arg[digits] || id < 1 || id > KP_UP_CTL_BROKER_MAX) {
        snprintf(err, errlen, "not a broker id (1..%d)", KP_UP_CTL_BROKER_MAX);
        return -1;
    }
    out->broker = id;
    return 0;
}

struct kp_up_ctl {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd, stop_pipe[2];
    kp_up_ctl_fn fn;
    void *arg;
    pthread_t thread;
};

static void set_timeout(int fd, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Reads one line (up to '\n', EOF or max-1 bytes). Its length, or -1. */
static ssize_t read_line(int fd, char *buf, size_t max)
{
    size_t n = 0;
    while (n + 1 < max) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (buf[n++] == '\n') break;
    }
    buf[n] = 0;
    return n > 0 ? (ssize_t)n : -1;
}

static void serve_one(kp_up_ctl_t *c, int fd)
{
    char line[KP_UP_CTL_LINE_MAX + 1], reply[512], err[128];
    set_timeout(fd, UP_CTL_READ_TIMEOUT_MS);
    ssize_t n = read_line(fd, line, sizeof(line));
    if (n < 0) return;
    kp_up_req_t req;
    if (kp_up_ctl_parse(line, (size_t)n, &req, err, sizeof(err)) < 0)
        snprintf(reply, sizeof(reply), "error %s", err);
    else
        c->fn(c->arg, &req, reply, sizeof(reply));
    size_t len = strnlen(reply, sizeof(reply) - 2);
    reply[len++] = '\n';
    ssize_t w = send(fd, reply, len, MSG_NOSIGNAL);
    (void)w; /* a client that left does not hear the answer */
}

static void *ctl_main(void *arg)
{
    kp_up_ctl_t *c = arg;
    for (;;) {
        struct pollfd p[2] = {{c->fd, POLLIN, 0}, {c->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve_one(c, fd);
        close(fd);
    }
    return NULL;
}

static int fill_addr(struct sockaddr_un *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path)) {
        snprintf(err, errlen, "%s: the path is too long for a Unix socket (%zu bytes at most)",
                 path, sizeof(a->sun_path) - 1);
        return -1;
    }
    memcpy(a->sun_path, path, strlen(path) + 1);
    return 0;
}

kp_up_ctl_t *kp_up_ctl_start(const char *path, kp_up_ctl_fn fn, void *arg, char *err, size_t errlen)
{
    struct sockaddr_un a;
    if (fill_addr(&a, path, err, errlen) < 0) return NULL;
    kp_up_ctl_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->fn = fn;
    c->arg = arg;
    c->stop_pipe[0] = c->stop_pipe[1] = -1;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path); /* a socket left by a kpool up that did not stop cleanly */
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0 ||
        listen(c->fd, 8) < 0 || pipe2(c->stop_pipe, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, ctl_main, c) != 0) {
        snprintf(err, errlen, "cannot start the control socket's thread");
        goto fail;
    }
    return c;
fail:
    if (c->fd >= 0) close(c->fd);
    if (c->stop_pipe[0] >= 0) close(c->stop_pipe[0]);
    if (c->stop_pipe[1] >= 0) close(c->stop_pipe[1]);
    unlink(path);
    free(c);
    return NULL;
}

void kp_up_ctl_stop(kp_up_ctl_t *c)
{
    if (!c) return;
    ssize_t w = write(c->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(c->thread, NULL);
    close(c->fd);
    close(c->stop_pipe[0]);
    close(c->stop_pipe[1]);
    unlink(c->path);
    free(c);
}

int kp_up_ctl_call(const char *path, const char *request, char *reply, size_t len, long timeout_ms,
                   char *err, size_t errlen)
{
    struct sockaddr_un a;
    if (fill_addr(&a, path, err, errlen) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        snprintf(err, errlen, "no kpool up answers at %s (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    set_timeout(fd, timeout_ms);
    size_t rl = strlen(request);
    ssize_t n = -1;
    if (send(fd, request, rl, MSG_NOSIGNAL) == (ssize_t)rl && send(fd, "\n", 1, MSG_NOSIGNAL) == 1)
        n = read_line(fd, reply, len);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "no answer from kpool up at %s within %lds", path, timeout_ms / 1000);
        return -1;
    }
    if (n > 0 && reply[n - 1] == '\n') reply[n - 1] = 0;
    return 0;
}
