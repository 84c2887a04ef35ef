/*
 * conn.h — a framed connection: transport vtable, receive chunks, ordered send queue.
 *
 * Frames are Kafka's: a 4-byte big-endian length, then that many bytes. Received bytes land
 * in reference-counted chunks; a complete frame is handed to the protocol layer as a slice
 * of its chunk (no copy), and the layer takes a chunk reference for as long as it needs the
 * frame. Small pipelined frames share a chunk; a frame larger than the chunk gets a chunk of
 * its own size, bounded by frame_max (socket.request.max.bytes) *before* anything is buffered.
 *
 * Sending: kp_conn_send() takes a finished response (kp_wr_t: memory plus spliced file
 * regions) and queues it; memory goes out with writev, file regions with the transport's
 * sendfile (sendfile(2) for TCP). Responses leave in the order they were queued.
 *
 * Transports are a vtable (TCP here, TLS in conn_tls.c): the connection logic never branches
 * on which one it has.
 *
 * Lifetime: a connection belongs to one loop and is only touched on that loop's thread. It
 * is reference counted (the protocol layer holds references from requests still in
 * flight); kp_conn_close() shuts the socket at once and the memory goes when the last
 * reference is dropped, after the current event batch.
 */
#ifndef KP_CONN_H
#define KP_CONN_H

#include "net/loop.h"
#include "protocol/wire.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct kp_chunk {
    atomic_int refs;
    size_t cap;
    uint8_t data[];
} kp_chunk_t;

void kp_chunk_get(kp_chunk_t *ch);
void kp_chunk_put(kp_chunk_t *ch);

typedef struct kp_conn kp_conn_t;

typedef struct kp_transport {
    const char *name;
    /* Like read(2)/writev(2): >0 bytes, 0 EOF (read), -1 with errno (EAGAIN: would block). */
    ssize_t (*read)(kp_conn_t *c, void *buf, size_t len);
    ssize_t (*writev)(kp_conn_t *c, const struct iovec *iov, int iovcnt);
    /* Copies len bytes at pos of fd to the peer. Same return convention. */
    ssize_t (*sendfile)(kp_conn_t *c, int fd, int64_t pos, size_t len);
    /* Advances a handshake: 1 done, 0 in progress (c->hs_want says which event), -1 failed. */
    int (*handshake)(kp_conn_t *c);
    /* Bytes already decrypted and buffered inside the transport (TLS), 0 for TCP. */
    size_t (*pending)(kp_conn_t *c);
    /* Optional: TCP_CORK around a response that mixes memory and file regions. */
    void (*cork)(kp_conn_t *c, int on);
    /* Optional, for a transport that buffers what writev/sendfile accepted (TLS gathers
     * responses into full records): writes out what it holds. 0 when nothing is left,
     * -1 with errno (EAGAIN: call again when writable). Called when the queue is empty. */
    int (*flush)(kp_conn_t *c);
    /* Frees transport state; the fd is closed by the connection. */
    void (*destroy)(kp_conn_t *c);
} kp_transport_t;

extern const kp_transport_t kp_transport_tcp;

typedef struct kp_conn_ops {
    /* A complete frame. Return 0 to go on, -1 to close the connection (malformed input). */
    int (*on_frame)(kp_conn_t *c, kp_chunk_t *chunk, const uint8_t *frame, size_t len);
    /* Nonzero while the layer accepts more frames (backpressure on pipelining). */
    int (*can_read)(kp_conn_t *c);
    /* The handshake completed (TLS: the peer certificate is available). -1 closes. */
    int (*on_ready)(kp_conn_t *c);
    /* The connection is closing: drop pointers to it that are not references. */
    void (*on_close)(kp_conn_t *c);
    /* The last reference is gone: free c->user. */
    void (*on_free)(kp_conn_t *c);
    /* Optional: nonzero while the layer still owes responses (a parked long poll), so the
     * connection is not idle however long it has been silent (conn_watch.h). */
    int (*busy)(kp_conn_t *c);
} kp_conn_ops_t;

typedef struct kp_conn_watch kp_conn_watch_t;

/* What a connection tells the watch that keeps its setup and idle deadlines (conn_watch.c,
 * which sets c->watch_ops when it adds c): bytes moved, the first complete frame came (setup
 * done), the connection is closing. Hooks, so that the connection does not depend on the
 * watch that closes it. */
typedef struct kp_conn_watch_ops {
    void (*touch)(kp_conn_t *c);
    void (*first_frame)(kp_conn_t *c);
    void (*remove)(kp_conn_t *c);
} kp_conn_watch_ops_t;

typedef struct kp_sendq_node kp_sendq_node_t;

struct kp_conn {
    kp_io_t io;
    kp_loop_t *loop;
    int fd;
    int refs;
    int closed;
    int handshaking;
    uint32_t hs_want; /* KP_READABLE/KP_WRITABLE wanted by the handshake */
    int paused;       /* reading paused by backpressure */
    int corked;
    const kp_transport_t *tp;
    void *tp_state;
    const kp_conn_ops_t *ops;
    void *user;
    size_t frame_max;
    char peer[64]; /* "ip:port" for logs and host-based ACLs */
    char peer_ip[48];

    kp_chunk_t *rchunk;
    size_t rstart, rend;

    kp_sendq_node_t *sq_head, *sq_tail;
    size_t sq_bytes;

    /* conn_watch.c: setup/idle deadlines (NULL watch and watch_ops: none) */
    kp_conn_watch_t *watch;
    const kp_conn_watch_ops_t *watch_ops;
    kp_conn_t *watch_prev, *watch_next;
    int watch_list;
    int64_t watch_since_ms;
    int ip_counted; /* holds a max.connections.per.ip slot (listener.c) */
};

/* Creates a connection on an accepted, non-blocking socket and registers it with the loop.
 * The handshake (if the transport has one) starts at the first event. */
kp_conn_t *kp_conn_new(kp_loop_t *loop, int fd, const kp_transport_t *tp, void *tp_state,
                       const kp_conn_ops_t *ops, void *user, size_t frame_max);
void kp_conn_ref(kp_conn_t *c);
/* Drops a reference; the memory is freed after the current event batch when it was last. */
void kp_conn_unref(kp_conn_t *c);
/* Closes the socket now (idempotent). Queued responses are discarded. */
void kp_conn_close(kp_conn_t *c, const char *why);
/* Queues a response; takes over wr's contents (wr is left empty). */
void kp_conn_send(kp_conn_t *c, kp_wr_t *wr);
/* Reading was paused by can_read(); call when the layer can take frames again. */
void kp_conn_resume(kp_conn_t *c);

#endif
