/*
 * conn.c — the framed connection (see conn.h): chunked receive, frame extraction, backpressure
 * and a send queue that mixes writev and sendfile.
 */
#include "net/conn.h"

#include "net/conn_limits.h"

#include "core/buf.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/metrics.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IOV_BATCH 64
/* Reads per readable event before yielding to other connections (fairness bound). */
#define READS_PER_EVENT 16

struct kp_sendq_node {
    kp_wr_t wr;
    int piece;     /* index: even = buffer span, odd = file region */
    size_t offset; /* bytes of the current piece already sent */
    kp_sendq_node_t *next;
};

void kp_chunk_get(kp_chunk_t *ch)
{
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}

void kp_chunk_put(kp_chunk_t *ch)
{
    if (ch && atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) == 1) free(ch);
}

static kp_chunk_t *chunk_new(size_t cap)
{
    kp_chunk_t *ch = kp_xmalloc(sizeof(*ch) + cap);
    atomic_init(&ch->refs, 1);
    ch->cap = cap;
    return ch;
}

static void conn_event(kp_loop_t *loop, kp_io_t *io, uint32_t events);

kp_conn_t *kp_conn_new(kp_loop_t *loop, int fd, const kp_transport_t *tp, void *tp_state,
                       const kp_conn_ops_t *ops, void *user, size_t frame_max)
{
    kp_conn_t *c = kp_xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->fd = fd;
    c->refs = 1;
    c->tp = tp;
    c->tp_state = tp_state;
    c->ops = ops;
    c->user = user;
    c->frame_max = frame_max;
    c->handshaking = tp->handshake != NULL;
    c->hs_want = KP_READABLE;
    if (kp_loop_add(loop, &c->io, fd, KP_READABLE | (c->handshaking ? KP_WRITABLE : 0), conn_event,
                    c) < 0) {
        kp_error("net", "epoll add: %s", strerror(errno));
        close(fd);
        if (tp->destroy) tp->destroy(c);
        free(c);
        return NULL;
    }
    kp_metric_add(&kp_metrics.connections_total, 1); /* connections_open: the listener's */
    return c;
}

void kp_conn_ref(kp_conn_t *c)
{
    c->refs++;
}

/* Memory after a flood of connections: what they held (receive chunks, TLS state, sessions)
 * goes back to malloc when they close, but glibc keeps freed pages in its per-thread arenas,
 * so a broker that once served 5,000 connections stayed at that RSS (294 MiB from 21 over
 * three floods). Once TRIM_AFTER_CLOSES connections have closed, a trim is scheduled
 * TRIM_DELAY_MS later on the loop that crossed the mark (one pending at a time across loops),
 * so that a whole flood's closes are freed before one malloc_trim() hands the pages back. */
#define TRIM_AFTER_CLOSES 256
#define TRIM_DELAY_MS     1000

static atomic_int closes_since_trim;
/* When the pending trim was scheduled (0: none). A trim whose loop was freed before it ran
 * never clears it, so one older than 10 s no longer counts as pending. */
static atomic_llong trim_scheduled_ms;

static void trim_task(kp_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    atomic_store(&closes_since_trim, 0);
    malloc_trim(0);
    atomic_store(&trim_scheduled_ms, 0);
}

static void conn_free(kp_loop_t *loop, void *arg)
{
    kp_conn_t *c = arg;
    if (c->ops->on_free) c->ops->on_free(c);
    free(c);
    if (atomic_fetch_add(&closes_since_trim, 1) + 1 < TRIM_AFTER_CLOSES) return;
    long long now = kp_loop_now_ms(loop), at = atomic_load(&trim_scheduled_ms);
    if ((at == 0 || now - at > 10 * TRIM_DELAY_MS) &&
        atomic_compare_exchange_strong(&trim_scheduled_ms, &at, now))
        kp_loop_timer(loop, TRIM_DELAY_MS, trim_task, NULL);
}

void kp_conn_unref(kp_conn_t *c)
{
    if (--c->refs == 0) kp_loop_defer(c->loop, conn_free, c);
}

static void sendq_clear(kp_conn_t *c)
{
    kp_sendq_node_t *n = c->sq_head;
    while (n) {
        kp_sendq_node_t *next = n->next;
        kp_wr_free(&n->wr);
        free(n);
        n = next;
    }
    c->sq_head = c->sq_tail = NULL;
    c->sq_bytes = 0;
}

void kp_conn_close(kp_conn_t *c, const char *why)
{
    if (c->closed) return;
    c->closed = 1;
    if (why) kp_debug("net", "closing %s: %s", c->peer, why);
    kp_loop_del(c->loop, &c->io);
    if (c->watch_ops) c->watch_ops->remove(c);
    if (c->ip_counted) kp_connections_ip_release(c->peer_ip);
    c->ip_counted = 0;
    if (c->tp->destroy) c->tp->destroy(c);
    close(c->fd);
    c->fd = -1;
    sendq_clear(c);
    kp_chunk_put(c->rchunk);
    c->rchunk = NULL;
    kp_metric_add(&kp_metrics.connections_open, -1);
    if (c->ops->on_close) c->ops->on_close(c);
    kp_conn_unref(c);
}

/* ---- sending ---- */

/* Piece i of a response: even i are buffer spans between regions, odd i are regions. */
static int piece_count(const kp_wr_t *wr)
{
    return 2 * wr->nregions + 1;
}

static void piece_span(const kp_wr_t *wr, int i, size_t *start, size_t *len)
{
    int k = i / 2;
    size_t s = k == 0 ? 0 : wr->regions[k - 1].at;
    size_t e = k < wr->nregions ? wr->regions[k].at : wr->buf.len;
    *start = s;
    *len = e - s;
}

static size_t piece_len(const kp_wr_t *wr, int i)
{
    if (i & 1) return wr->regions[i / 2].len;
    size_t s, l;
    piece_span(wr, i, &s, &l);
    return l;
}

/* Advances the queue by n sent bytes, freeing finished responses. */
static void sendq_advance(kp_conn_t *c, size_t n)
{
    c->sq_bytes -= n;
    while (n > 0 || (c->sq_head && c->sq_head->piece >= piece_count(&c->sq_head->wr))) {
        kp_sendq_node_t *node = c->sq_head;
        if (!node) break;
        if (node->piece >= piece_count(&node->wr)) {
            c->sq_head = node->next;
            if (!c->sq_head) c->sq_tail = NULL;
            kp_wr_free(&node->wr);
            free(node);
            continue;
        }
        size_t left = piece_len(&node->wr, node->piece) - node->offset;
        if (n >= left) {
            n -= left;
            node->piece++;
            node->offset = 0;
        } else {
            node->offset += n;
            n = 0;
        }
    }
    /* skip empty pieces so the head always points at bytes to send (or is freed) */
    while (c->sq_head) {
        kp_sendq_node_t *node = c->sq_head;
        while (node->piece < piece_count(&node->wr) && piece_len(&node->wr, node->piece) == 0)
            node->piece++;
        if (node->piece < piece_count(&node->wr)) break;
        c->sq_head = node->next;
        if (!c->sq_head) c->sq_tail = NULL;
        kp_wr_free(&node->wr);
        free(node);
    }
}

/* Writes as much as the socket takes. Returns 0 (maybe with bytes left queued) or -1 after
 * closing the connection. */
static int conn_flush(kp_conn_t *c)
{
    while (c->sq_head) {
        kp_sendq_node_t *node = c->sq_head;
        ssize_t n;
        if (node->piece & 1) {
            const kp_wr_region_t *r = &node->wr.regions[node->piece / 2];
            if (!c->corked && c->tp->cork) {
                c->tp->cork(c, 1);
                c->corked = 1;
            }
            n = c->tp->sendfile(c, r->fd, r->pos + (int64_t)node->offset, r->len - node->offset);
        } else {
            struct iovec iov[IOV_BATCH];
            int cnt = 0;
            for (kp_sendq_node_t *q = node; q && cnt < IOV_BATCH; q = q->next) {
                int i = q == node ? q->piece : 0;
                size_t off = q == node ? q->offset : 0;
                for (; i < piece_count(&q->wr) && cnt < IOV_BATCH; i++, off = 0) {
                    if (i & 1) goto gathered; /* a file region ends the gather */
                    size_t s, l;
                    piece_span(&q->wr, i, &s, &l);
                    if (l - off == 0) continue;
                    iov[cnt].iov_base = q->wr.buf.data + s + off;
                    iov[cnt].iov_len = l - off;
                    cnt++;
                }
            }
        gathered:
            if (cnt == 0) {
                sendq_advance(c, 0);
                continue;
            }
            n = c->tp->writev(c, iov, cnt);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                kp_loop_set(c->loop, &c->io, (c->paused ? 0 : KP_READABLE) | KP_WRITABLE);
                return 0;
            }
            if (errno == EINTR) continue;
            kp_conn_close(c, strerror(errno));
            return -1;
        }
        kp_metric_add(&kp_metrics.bytes_out, n);
        if (c->watch_ops) c->watch_ops->touch(c);
        sendq_advance(c, (size_t)n);
    }
    if (c->tp->flush && c->tp->flush(c) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            kp_loop_set(c->loop, &c->io, (c->paused ? 0 : KP_READABLE) | KP_WRITABLE);
            return 0;
        }
        kp_conn_close(c, strerror(errno));
        return -1;
    }
    if (c->corked) {
        c->tp->cork(c, 0);
        c->corked = 0;
    }
    kp_loop_set(c->loop, &c->io, c->paused ? 0 : KP_READABLE);
    return 0;
}

void kp_conn_send(kp_conn_t *c, kp_wr_t *wr)
{
    if (c->closed) {
        kp_wr_free(wr);
        return;
    }
    kp_sendq_node_t *node = kp_xmalloc(sizeof(*node));
    node->wr = *wr;
    kp_wr_init(wr);
    node->piece = 0;
    node->offset = 0;
    node->next = NULL;
    c->sq_bytes += kp_wr_len(&node->wr);
    if (c->sq_tail)
        c->sq_tail->next = node;
    else
        c->sq_head = node;
    c->sq_tail = node;
    if (!c->handshaking) conn_flush(c);
}

/* ---- receiving ---- */

static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int should_pause(kp_conn_t *c)
{
    return c->sq_bytes > KP_CONN_SENDQ_BYTES_MAX || (c->ops->can_read && !c->ops->can_read(c));
}

/* Hands every complete buffered frame to the layer. Returns -1 if the connection closed. */
static int conn_parse(kp_conn_t *c)
{
    while (c->rchunk && c->rend - c->rstart >= 4) {
        if (should_pause(c)) {
            c->paused = 1;
            kp_loop_set(c->loop, &c->io, c->sq_head ? KP_WRITABLE : 0);
            return 0;
        }
        kp_chunk_t *ch = c->rchunk;
        uint32_t len = be32(ch->data + c->rstart);
        if (len > c->frame_max || len > INT32_MAX) {
            kp_warn("net", "closing %s: request of %u bytes exceeds socket.request.max.bytes (%zu)",
                    c->peer, len, c->frame_max);
            kp_conn_close(c, NULL);
            return -1;
        }
        size_t avail = c->rend - c->rstart - 4;
        if (avail < len) {
            if (c->rstart + 4 + (size_t)len > ch->cap) {
                /* move the partial frame to a chunk that can hold all of it */
                size_t need = 4 + (size_t)len;
                kp_chunk_t *nc = chunk_new(need > KP_RECV_CHUNK_BYTES ? need : KP_RECV_CHUNK_BYTES);
                memcpy(nc->data, ch->data + c->rstart, c->rend - c->rstart);
                c->rend -= c->rstart;
                c->rstart = 0;
                c->rchunk = nc;
                kp_chunk_put(ch);
            }
            return 0;
        }
        const uint8_t *frame = ch->data + c->rstart + 4;
        c->rstart += 4 + (size_t)len;
        if (c->watch_ops) c->watch_ops->first_frame(c);
        kp_chunk_get(ch); /* the frame's chunk must survive a close inside on_frame */
        int rc = c->ops->on_frame(c, ch, frame, len);
        kp_chunk_put(ch);
        if (rc < 0) {
            kp_conn_close(c, "malformed request");
            return -1;
        }
        if (c->closed) return -1;
    }
    return 0;
}

/* Bytes the transport holds that epoll cannot see (OpenSSL's decrypted records). */
static int tls_buffered(kp_conn_t *c)
{
    return c->tp->pending && c->tp->pending(c) > 0;
}

static void read_task(kp_loop_t *loop, void *arg);

/* The peer sent part of a request and is waiting: acknowledge now. A client with Nagle on
 * (librdkafka's default, socket.nagle.disable=false) that writes one request in two pieces
 * — as it does over TLS, one record per piece — holds the second until the first is acked,
 * and Linux delays that ack by up to 40 ms: measured, p50 produce latency 23 ms over TLS
 * against 1 ms with this. TCP_QUICKACK is not sticky, so it is set each time. */
static void ack_partial_request(kp_conn_t *c)
{
    if (c->rchunk && c->rend > c->rstart) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
}

/* A connection between requests holds no receive chunk (64 KiB): idle connections cost
 * only their structs, and a chunk still borrowed by requests in flight is freed by them. */
static void chunk_release_idle(kp_conn_t *c)
{
    if (c->rchunk && c->rstart == c->rend) {
        kp_chunk_put(c->rchunk);
        c->rchunk = NULL;
        c->rstart = c->rend = 0;
    }
}

static void conn_read(kp_conn_t *c)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (!c->rchunk) {
            c->rchunk = chunk_new(KP_RECV_CHUNK_BYTES);
            c->rstart = c->rend = 0;
        } else if (c->rstart == c->rend && atomic_load(&c->rchunk->refs) == 1) {
            c->rstart = c->rend = 0; /* nobody borrows it: reuse from the start */
        } else if (c->rend == c->rchunk->cap) {
            /* full and borrowed by requests in flight: continue in a fresh chunk */
            kp_chunk_t *nc = chunk_new(KP_RECV_CHUNK_BYTES);
            memcpy(nc->data, c->rchunk->data + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
            kp_chunk_put(c->rchunk);
            c->rchunk = nc;
        }
        size_t room = c->rchunk->cap - c->rend;
        ssize_t n = c->tp->read(c, c->rchunk->data + c->rend, room);
        if (n == 0) {
            kp_conn_close(c, "peer closed");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ack_partial_request(c);
                chunk_release_idle(c);
                return;
            }
            if (errno == EINTR) continue;
            kp_conn_close(c, strerror(errno));
            return;
        }
        kp_metric_add(&kp_metrics.bytes_in, n);
        if (c->watch_ops) c->watch_ops->touch(c);
        c->rend += (size_t)n;
        if (conn_parse(c) < 0 || c->paused) return;
        if ((size_t)n < room && !tls_buffered(c)) {
            ack_partial_request(c);
            chunk_release_idle(c);
            return;
        }
    }
    /* out of reads for this event: bytes the transport already holds (decrypted TLS
     * records) never make the socket readable again, so come back for them */
    if (tls_buffered(c)) {
        kp_conn_ref(c);
        kp_loop_defer(c->loop, read_task, c);
    }
}

static void read_task(kp_loop_t *loop, void *arg)
{
    (void)loop;
    kp_conn_t *c = arg;
    if (!c->closed && !c->paused && !c->handshaking) conn_read(c);
    kp_conn_unref(c);
}

static void conn_event(kp_loop_t *loop, kp_io_t *io, uint32_t events)
{
    kp_conn_t *c = io->data;
    if (c->closed) return;
    if (c->handshaking) {
        int rc = c->tp->handshake(c);
        if (rc < 0) {
            kp_conn_close(c, "handshake failed");
            return;
        }
        if (rc == 0) {
            kp_loop_set(loop, io, c->hs_want);
            return;
        }
        c->handshaking = 0;
        if (c->ops->on_ready && c->ops->on_ready(c) < 0) {
            kp_conn_close(c, "refused after handshake");
            return;
        }
        kp_loop_set(loop, io, KP_READABLE | (c->sq_head ? KP_WRITABLE : 0));
        events = KP_READABLE | KP_WRITABLE;
    }
    kp_conn_ref(c);
    if ((events & KP_WRITABLE) && (c->sq_head || c->tp->flush)) conn_flush(c);
    if (!c->closed && (events & KP_READABLE) && !c->paused) conn_read(c);
    if (!c->closed && c->paused && !should_pause(c)) kp_conn_resume(c);
    kp_conn_unref(c);
}

static void resume_task(kp_loop_t *loop, void *arg)
{
    kp_conn_t *c = arg;
    if (!c->closed && c->paused && !should_pause(c)) {
        c->paused = 0;
        kp_loop_set(c->loop, &c->io, KP_READABLE | (c->sq_head ? KP_WRITABLE : 0));
        /* the pause may have left decrypted bytes in the transport: read them now */
        if (conn_parse(c) == 0 && !c->closed && !c->paused && tls_buffered(c)) conn_read(c);
    }
    kp_conn_unref(c);
}

void kp_conn_resume(kp_conn_t *c)
{
    if (c->closed || !c->paused) return;
    kp_conn_ref(c);
    kp_loop_defer(c->loop, resume_task, c);
}
