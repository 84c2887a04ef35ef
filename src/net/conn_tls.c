/*
 * conn_tls.c — the TLS transport (OpenSSL 3): non-blocking handshake, reads and writes
 * through SSL.
 *
 * Sending (issue 19): writev and "sendfile" copy into one per-connection plaintext buffer —
 * file regions are pread straight into it — and the buffer goes out as full 16 KiB records;
 * what is left when the connection's queue is empty goes out at flush(). So a fetch
 * response's headers and its partitions' data share records instead of each header costing
 * a record and a write(2), and responses queued together share records. The buffer is ours
 * and never changes under a pending write: a write that returned WANT_WRITE is retried with
 * the same bytes (OpenSSL keeps the encrypted record and only finishes writing it, nothing is
 * encrypted twice). The bytes writev/sendfile report are the bytes they buffered.
 *
 * Kernel TLS: where the kernel has the `tls` module (probed once with TCP_ULP at start),
 * OpenSSL is asked to hand the keys to the kernel and file regions go out with SSL_sendfile;
 * otherwise (this development machine) the path above. Which one is used is logged at start.
 *
 * Receiving: OpenSSL reads through our own BIO (rbio_*), which reads the socket in 64 KiB
 * pieces into a per-connection ciphertext buffer and hands OpenSSL each record's header and
 * body from there: one read(2) per 64 KiB that has arrived instead of one per record (OpenSSL's
 * read-ahead buffer holds one record, and with read-ahead it also moves the rest of its buffer
 * to the front at every record). pending() reports the records still in our buffer, and
 * whether the last read(2) filled it: after a short read (the socket was empty) and the last
 * record handed over it is 0, so the connection goes back to epoll (level-triggered: bytes
 * that arrived in between wake it at once) instead of calling read(2) to see EAGAIN, as the
 * plaintext path does after a short read. SSL_read_ex decrypts in OpenSSL's record buffer
 * and copies out into the connection's receive chunk, one record per call.
 */
#include "net/tls.h"

#include "core/buf.h"
#include "core/logging.h"
#include "core/fs.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Plaintext buffered for sending: four full records. */
#define WBUF_BYTES (4 * SSL3_RT_MAX_PLAIN_LENGTH)
/* Ciphertext read from the socket at once (the plaintext receive chunk's size). Below glibc's
 * mmap threshold, so taking and freeing it per burst costs no system call. */
#define RBUF_BYTES (64 * 1024)
/* Resumed sessions (TLS 1.3 tickets) are accepted for this long after the full handshake. */
#define SESSION_SECONDS 3600

struct kp_tls_ctx {
    SSL_CTX *ctx;
    int ktls; /* the kernel has TLS offload and OpenSSL was asked to use it */
};

typedef struct tls_conn {
    SSL *ssl;
    int fd;
    int ktls;
    uint8_t *wbuf; /* plaintext accepted, not yet written: [woff, wlen) */
    size_t woff, wlen;
    uint8_t *rbuf; /* ciphertext read, not yet taken by OpenSSL: [roff, rlen) */
    size_t roff, rlen;
    int rdrained; /* the last read(2) returned less than asked: the socket was empty */
    int reof;     /* read(2) returned 0 */
} tls_conn_t;

static void ssl_errors(char *out, size_t n)
{
    out[0] = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", l ? "; " : "", buf);
    }
}

static int key_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    const char *pw = userdata;
    if (!pw) return 0;
    int n = (int)strlen(pw);
    if (n > size) n = size;
    memcpy(buf, pw, (size_t)n);
    return n;
}

/* Whether the kernel can take TLS keys: TCP_ULP "tls" on an unconnected TCP socket fails with
 * ENOTCONN when the module is there and ENOENT when it is not (no module, no /proc/modules
 * needed). why says what failed. */
static int ktls_probe(char *why, size_t n)
{
#ifdef TCP_ULP
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(why, n, "socket: %s", strerror(errno));
        return 0;
    }
    int rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
    int e = errno;
    close(fd);
    if (rc == 0 || e == ENOTCONN) return 1;
    snprintf(why, n, "TCP_ULP tls: %s", strerror(e));
    return 0;
#else
    snprintf(why, n, "built without TCP_ULP");
    return 0;
#endif
}

kp_tls_ctx_t *kp_tls_server_ctx_new(const kp_tls_config_t *cfg, char *err, size_t errlen)
{
    char detail[512];
    if (!cfg->cert_path || !cfg->key_path) {
        snprintf(err, errlen,
                 "an SSL listener needs ssl.certificate.location and "
                 "ssl.key.location");
        return NULL;
    }
    if (cfg->client_auth != KP_TLS_CLIENT_AUTH_NONE && !cfg->ca_path) {
        snprintf(err, errlen, "ssl.client.auth needs ssl.ca.location to verify clients");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) goto ssl_fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* No read-ahead: our receive BIO already reads the socket 64 KiB at a time, and with
     * read-ahead OpenSSL 3.0 would copy from it in buffer-sized pieces and move the rest of
     * its buffer to the front at every record (see the top of the file). */
    /* AES-128-GCM first (server preference): with AES-NI it costs ~30 % less than AES-256
     * on both ends, and both ends of every connection encrypt everything. ChaCha20 stays for
     * clients without AES hardware. */
    /* the TLS 1.2 list is OpenSSL's DEFAULT set, AES-128-GCM moved to the front */
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") != 1 ||
        SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                     "ALL:!COMPLEMENTOFDEFAULT:!eNULL") != 1)
        goto ssl_fail;
    /* Resumption (stateless tickets, keys in memory: a restarted broker does full handshakes)
     * lets a reconnecting client skip the certificate exchange and signatures. A resumed
     * session carries the client certificate verified at the full handshake; tls_handshake()
     * refuses it once that certificate has expired, and tickets expire after SESSION_SECONDS. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_timeout(ctx, SESSION_SECONDS);
    static const unsigned char sid_ctx[] = "kpool";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    /* no renegotiation (TLS 1.2), no compression (OpenSSL 3's default, said here) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    char ktls_why[128];
    int ktls = ktls_probe(ktls_why, sizeof(ktls_why));
    if (ktls) SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    if (cfg->key_password) {
        SSL_CTX_set_default_passwd_cb(ctx, key_password_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)cfg->key_password);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_path) != 1) {
        ssl_errors(detail, sizeof(detail));
        snprintf(err, errlen, "ssl.certificate.location %s: %s", cfg->cert_path, detail);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error(); /* the details could describe the key; say only what failed */
        snprintf(err, errlen,
                 "ssl.key.location %s: cannot load the private key or it does not "
                 "match the certificate",
                 cfg->key_path);
        goto fail;
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (cfg->ca_path) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_path, NULL) != 1) {
            ssl_errors(detail, sizeof(detail));
            snprintf(err, errlen, "ssl.ca.location %s: %s", cfg->ca_path, detail);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_path);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
    }
    int mode = SSL_VERIFY_NONE;
    if (cfg->client_auth == KP_TLS_CLIENT_AUTH_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else if (cfg->client_auth == KP_TLS_CLIENT_AUTH_REQUESTED)
        mode = SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 10);
    kp_tls_ctx_t *t = kp_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->ktls = ktls;
    if (ktls)
        kp_info("tls", "kernel TLS available: fetched file data goes out with SSL_sendfile "
                       "where the negotiated cipher allows it");
    else
        kp_info("tls",
                "kernel TLS unavailable (%s): encrypting in user space, file data read "
                "into full 16 KiB records",
                ktls_why);
    return t;
ssl_fail:
    ssl_errors(detail, sizeof(detail));
    snprintf(err, errlen, "TLS setup failed: %s", detail);
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void kp_tls_ctx_free(kp_tls_ctx_t *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* ---- the receive BIO (see the top of the file) ---- */

static BIO_METHOD *rbio_method;
static pthread_once_t rbio_once = PTHREAD_ONCE_INIT;

static int rbio_read(BIO *b, char *out, size_t outl, size_t *readbytes)
{
    tls_conn_t *tc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *readbytes = 0;
    if (outl == 0) return 0;
    if (tc->roff == tc->rlen) {
        if (!tc->rbuf) tc->rbuf = kp_xmalloc(RBUF_BYTES);
        tc->roff = tc->rlen = 0;
        ssize_t n;
        do n = read(tc->fd, tc->rbuf, RBUF_BYTES);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            int e = errno;
            free(tc->rbuf); /* nothing buffered: hold no memory */
            tc->rbuf = NULL;
            errno = e;
            if (n == 0)
                tc->reof = 1;
            else if (errno == EAGAIN || errno == EWOULDBLOCK)
                BIO_set_retry_read(b);
            return 0; /* errno says why (SSL_ERROR_SYSCALL) */
        }
        tc->rlen = (size_t)n;
        tc->rdrained = (size_t)n < RBUF_BYTES;
    }
    size_t n = tc->rlen - tc->roff < outl ? tc->rlen - tc->roff : outl;
    memcpy(out, tc->rbuf + tc->roff, n);
    tc->roff += n;
    if (tc->roff == tc->rlen && tc->rdrained) {
        free(tc->rbuf); /* the socket was empty: the connection waits for epoll now */
        tc->rbuf = NULL;
        tc->roff = tc->rlen = 0;
    }
    *readbytes = n;
    return 1;
}

static long rbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_conn_t *tc = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return tc && tc->reof && tc->roff == tc->rlen;
    case BIO_CTRL_PENDING:
        return tc ? (long)(tc->rlen - tc->roff) : 0;
    default:
        return 0; /* no kernel TLS on the receive side, no fd for OpenSSL to find */
    }
}

static int rbio_write(BIO *b, const char *in, size_t inl, size_t *written)
{
    (void)b;
    (void)in;
    (void)inl;
    *written = 0;
    return 0; /* OpenSSL writes through the socket BIO */
}

static void rbio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kpool tls read");
    if (m && BIO_meth_set_read_ex(m, rbio_read) == 1 && BIO_meth_set_write_ex(m, rbio_write) == 1 &&
        BIO_meth_set_ctrl(m, rbio_ctrl) == 1) {
        rbio_method = m;
        return;
    }
    BIO_meth_free(m);
}

void *kp_tls_conn_new(kp_tls_ctx_t *t, int fd)
{
    pthread_once(&rbio_once, rbio_method_init);
    if (!rbio_method) return NULL;
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) return NULL;
    BIO *rbio = BIO_new(rbio_method);
    BIO *wbio = BIO_new_socket(fd, BIO_NOCLOSE);
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return NULL;
    }
    tls_conn_t *tc = kp_xcalloc(1, sizeof(*tc));
    tc->ssl = ssl;
    tc->fd = fd;
    tc->ktls = t->ktls;
    BIO_set_data(rbio, tc);
    BIO_set_init(rbio, 1);
    SSL_set_bio(ssl, rbio, wbio); /* the SSL owns both */
    SSL_set_accept_state(ssl);
    return tc;
}

static tls_conn_t *tls(kp_conn_t *c)
{
    return c->tp_state;
}

/* Maps an SSL result to the read(2)-like convention. */
static ssize_t io_result(kp_conn_t *c, int ok, size_t n, int ret)
{
    if (ok) return (ssize_t)n;
    switch (SSL_get_error(tls(c)->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!errno) errno = ECONNRESET;
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

/* One record (SSL_read_ex returns at most one), so the connection parses after each: a big
 * request gets its own chunk after its first record, not after the 64 KiB chunk filled. A
 * short read does not mean the socket is drained here: pending() says what is left. */
static ssize_t tls_read(kp_conn_t *c, void *buf, size_t len)
{
    size_t n = 0;
    errno = 0;
    int ret = SSL_read_ex(tls(c)->ssl, buf, len, &n);
    /* a peer's close_notify and a plain EOF both end the connection */
    return io_result(c, ret == 1, n, ret);
}

/* Writes buffered plaintext while at least min bytes are buffered (min 1: everything), full
 * records first. 0, or -1 with errno (EAGAIN: the socket is full). */
static int wbuf_write(kp_conn_t *c, size_t min)
{
    tls_conn_t *tc = tls(c);
    while (tc->wlen - tc->woff >= min && tc->wlen > tc->woff) {
        size_t n = 0;
        errno = 0;
        int ret = SSL_write_ex(tc->ssl, tc->wbuf + tc->woff, tc->wlen - tc->woff, &n);
        if (ret != 1) return (int)io_result(c, 0, 0, ret);
        tc->woff += n;
    }
    if (tc->woff == tc->wlen) tc->woff = tc->wlen = 0;
    return 0;
}

/* Room for more plaintext: compacts (allowed between retries thanks to
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) and writes out full records when the buffer is full.
 * Returns the room, 0 with errno set when there is none. */
static size_t wbuf_room(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    if (!tc->wbuf) tc->wbuf = kp_xmalloc(WBUF_BYTES);
    if (tc->wlen == WBUF_BYTES && wbuf_write(c, SSL3_RT_MAX_PLAIN_LENGTH) < 0 &&
        (errno != EAGAIN || tc->woff == 0))
        return 0; /* errno says why */
    if (tc->woff > 0 && WBUF_BYTES - tc->wlen < SSL3_RT_MAX_PLAIN_LENGTH) {
        memmove(tc->wbuf, tc->wbuf + tc->woff, tc->wlen - tc->woff);
        tc->wlen -= tc->woff;
        tc->woff = 0;
    }
    return WBUF_BYTES - tc->wlen;
}

/* After accepting n bytes: writes the full records; a full socket is not an error here (the
 * bytes are accepted, flush() or the next call writes them). */
static ssize_t accepted(kp_conn_t *c, size_t n)
{
    if (wbuf_write(c, SSL3_RT_MAX_PLAIN_LENGTH) < 0 && errno != EAGAIN) return -1;
    return (ssize_t)n;
}

static ssize_t tls_writev(kp_conn_t *c, const struct iovec *iov, int iovcnt)
{
    tls_conn_t *tc = tls(c);
    size_t room = wbuf_room(c), total = 0;
    if (room == 0) return -1;
    for (int i = 0; i < iovcnt && total < room; i++) {
        size_t n = iov[i].iov_len < room - total ? iov[i].iov_len : room - total;
        memcpy(tc->wbuf + tc->wlen, iov[i].iov_base, n);
        tc->wlen += n;
        total += n;
    }
    return accepted(c, total);
}

static ssize_t tls_sendfile(kp_conn_t *c, int fd, int64_t pos, size_t len)
{
    tls_conn_t *tc = tls(c);
    if (tc->ktls && tc->wlen == tc->woff && BIO_get_ktls_send(SSL_get_wbio(tc->ssl))) {
        errno = 0;
        ossl_ssize_t n = SSL_sendfile(tc->ssl, fd, (off_t)pos, len, 0);
        if (n >= 0) return (ssize_t)n;
        return io_result(c, 0, 0, (int)n);
    }
    size_t room = wbuf_room(c);
    if (room == 0) return -1;
    size_t n = len < room ? len : room;
    /* the file may be closed once the region is reported sent: copy now */
    if (kp_fs_pread_all(fd, tc->wbuf + tc->wlen, n, pos) < 0) {
        if (!errno) errno = EIO;
        return -1;
    }
    tc->wlen += n;
    return accepted(c, n);
}

static int tls_flush(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    if (!tc->wbuf) return 0;
    if (wbuf_write(c, 1) < 0) return -1;
    /* an idle connection holds no send buffer */
    free(tc->wbuf);
    tc->wbuf = NULL;
    return 0;
}

static int tls_handshake(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    ERR_clear_error();
    int ret = SSL_do_handshake(tc->ssl);
    if (ret == 1) {
        X509 *peer = SSL_get0_peer_certificate(tc->ssl);
        if (SSL_session_reused(tc->ssl) && peer &&
            X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0) {
            kp_warn("tls", "refused %s: resumed session's client certificate has expired", c->peer);
            return -1;
        }
        return 1;
    }
    int e = SSL_get_error(tc->ssl, ret);
    if (e == SSL_ERROR_WANT_READ) {
        c->hs_want = KP_READABLE;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->hs_want = KP_WRITABLE;
        return 0;
    }
    char detail[512];
    long vr = SSL_get_verify_result(tc->ssl);
    ssl_errors(detail, sizeof(detail));
    if (vr != X509_V_OK)
        kp_warn("tls", "refused %s: client certificate rejected: %s", c->peer,
                X509_verify_cert_error_string(vr));
    else
        kp_warn("tls", "refused %s: TLS handshake failed: %s", c->peer,
                detail[0] ? detail : (e == SSL_ERROR_SYSCALL ? "connection closed" : "error"));
    return -1;
}

/* Decrypted bytes OpenSSL holds, ciphertext in our buffer, and 1 while the last read(2)
 * filled our buffer (the socket may hold more). 0 means a short read(2) found the socket
 * empty and everything since has been handed over: the connection waits for epoll, as a
 * plaintext connection does after a short read. Without read-ahead OpenSSL holds no whole
 * record it has not decrypted; a partial one needs more from the socket, which epoll
 * reports. */
static size_t tls_pending(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    return (size_t)SSL_pending(tc->ssl) + (tc->rlen - tc->roff) + (tc->rbuf && !tc->rdrained);
}

static void tls_destroy(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    if (!tc) return;
    SSL_free(tc->ssl);
    free(tc->wbuf);
    free(tc->rbuf);
    free(tc);
    c->tp_state = NULL;
}

const kp_transport_t kp_transport_tls = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .handshake = tls_handshake,
    .pending = tls_pending,
    .cork = NULL,
    .flush = tls_flush,
    .destroy = tls_destroy,
};

X509 *kp_tls_peer_cert(kp_conn_t *c)
{
    if (c->tp != &kp_transport_tls || !c->tp_state) return NULL;
    return SSL_get0_peer_certificate(tls(c)->ssl);
}

int kp_tls_client_auth_parse(const char *s, kp_tls_client_auth_t *out)
{
    if (!s || !strcasecmp(s, "none"))
        *out = KP_TLS_CLIENT_AUTH_NONE;
    else if (!strcasecmp(s, "requested"))
        *out = KP_TLS_CLIENT_AUTH_REQUESTED;
    else if (!strcasecmp(s, "required"))
        *out = KP_TLS_CLIENT_AUTH_REQUIRED;
    else
        return -1;
    return 0;
}
