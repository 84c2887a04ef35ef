/* conn_tcp.c — the plaintext transport: read/writev/sendfile(2) on the socket. */
#include "net/conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t tcp_read(kp_conn_t *c, void *buf, size_t len)
{
    return read(c->fd, buf, len);
}

static ssize_t tcp_writev(kp_conn_t *c, const struct iovec *iov, int iovcnt)
{
    return writev(c->fd, iov, iovcnt);
}

static ssize_t tcp_sendfile(kp_conn_t *c, int fd, int64_t pos, size_t len)
{
    off_t off = (off_t)pos;
    return sendfile(c->fd, fd, &off, len);
}

static void tcp_cork(kp_conn_t *c, int on)
{
    setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

const kp_transport_t kp_transport_tcp = {
    .name = "tcp",
    .read = tcp_read,
    .writev = tcp_writev,
    .sendfile = tcp_sendfile,
    .handshake = NULL,
    .pending = NULL,
    .cork = tcp_cork,
    .destroy = NULL,
};
