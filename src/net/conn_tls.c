/*
 * conn_tls.c — the TLS transport (OpenSSL 3): non-blocking handshake, reads and writes
 * through SSL, and "sendfile" as pread into a per-connection staging buffer + SSL_write.
 *
 * Retry contract: OpenSSL requires a write that returned WANT_WRITE to be retried with the
 * same bytes. The connection layer guarantees that (it only advances by what we report),
 * and file regions are staged per connection and reused for the same file position, so a
 * retried sendfile presents the same bytes. SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the
 * retry come from another address.
 */
#include "net/tls.h"

#include "core/buf.h"
#include "core/logging.h"
#include "storage/fs.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STAGE_BYTES (64 * 1024)

struct kp_tls_ctx {
    SSL_CTX *ctx;
};

typedef struct tls_conn {
    SSL *ssl;
    uint8_t *stage; /* file bytes [stage_pos, stage_pos + stage_len) of stage_fd */
    int stage_fd;
    int64_t stage_pos;
    size_t stage_len;
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
    /* every connection presents and verifies a certificate: no resumption that would skip a
     * revoked or expired client certificate */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
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

void *kp_tls_conn_new(kp_tls_ctx_t *t, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    tls_conn_t *tc = kp_xcalloc(1, sizeof(*tc));
    tc->ssl = ssl;
    tc->stage_fd = -1;
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

static ssize_t tls_read(kp_conn_t *c, void *buf, size_t len)
{
    size_t n = 0;
    errno = 0;
    int ret = SSL_read_ex(tls(c)->ssl, buf, len, &n);
    ssize_t r = io_result(c, ret == 1, n, ret);
    /* a peer's close_notify and a plain EOF both end the connection */
    return r;
}

static ssize_t tls_writev(kp_conn_t *c, const struct iovec *iov, int iovcnt)
{
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t n = 0;
        errno = 0;
        int ret = SSL_write_ex(tls(c)->ssl, iov[i].iov_base, iov[i].iov_len, &n);
        if (ret != 1) {
            ssize_t r = io_result(c, 0, 0, ret);
            return total > 0 ? total : r;
        }
        total += (ssize_t)n;
        if (n < iov[i].iov_len) break;
    }
    return total;
}

static ssize_t tls_sendfile(kp_conn_t *c, int fd, int64_t pos, size_t len)
{
    tls_conn_t *tc = tls(c);
    if (!tc->stage) tc->stage = kp_xmalloc(STAGE_BYTES);
    if (tc->stage_fd != fd || pos < tc->stage_pos ||
        pos >= tc->stage_pos + (int64_t)tc->stage_len) {
        size_t want = len < STAGE_BYTES ? len : STAGE_BYTES;
        if (kp_fs_pread_all(fd, tc->stage, want, pos) < 0) {
            if (!errno) errno = EIO;
            return -1;
        }
        tc->stage_fd = fd;
        tc->stage_pos = pos;
        tc->stage_len = want;
    }
    size_t off = (size_t)(pos - tc->stage_pos);
    size_t avail = tc->stage_len - off;
    if (avail > len) avail = len;
    size_t n = 0;
    errno = 0;
    int ret = SSL_write_ex(tc->ssl, tc->stage + off, avail, &n);
    /* The stage never extends past the region it was loaded for, so once its last byte is
     * written the region is done and the file may be closed: forget the stage, or a file
     * opened later under the same descriptor number would be served these bytes. (A retry
     * after WANT_WRITE wrote nothing and keeps the stage, as OpenSSL requires.) */
    if (ret == 1 && off + n >= tc->stage_len) {
        tc->stage_fd = -1;
        tc->stage_len = 0;
    }
    return io_result(c, ret == 1, n, ret);
}

static int tls_handshake(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    ERR_clear_error();
    int ret = SSL_do_handshake(tc->ssl);
    if (ret == 1) return 1;
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

static size_t tls_pending(kp_conn_t *c)
{
    return (size_t)SSL_pending(tls(c)->ssl);
}

static void tls_destroy(kp_conn_t *c)
{
    tls_conn_t *tc = tls(c);
    if (!tc) return;
    SSL_free(tc->ssl);
    free(tc->stage);
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
