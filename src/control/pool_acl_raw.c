/*
 * pool_acl_raw.c — ACLs on TransactionalId resources, which librdkafka 2.0's admin API cannot
 * express (its resource types stop at BROKER): CreateAcls, DescribeAcls and DeleteAcls v1
 * sent by hand on one kept connection (TLS as the pool client's), encoded with kpool's
 * generated codec. Only the Kafka protocol, so any Kafka pool works. The drift check's
 * DescribeConfigs goes the same way, without the synonyms librdkafka always asks for.
 *
 * @locality: the reconciler thread (as pool_client.c); blocking, bounded by the timeout.
 */
#include "control/pool_acl_raw.h"

#include "auth/acl.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "kp_msgs.h"
#include "net/tls_client.h"
#include "protocol/errors.h"
#include "protocol/wire.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RESPONSE_MAX (64u << 20)

typedef struct raw_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int64_t deadline;
} raw_conn_t;

struct kp_pool_raw {
    kp_pool_conn_t conf;
    raw_conn_t conn;
    int open;
    int32_t correlation;
};

static void raw_close(raw_conn_t *rc)
{
    if (rc->ssl) {
        SSL_shutdown(rc->ssl);
        SSL_free(rc->ssl);
    }
    if (rc->ctx) SSL_CTX_free(rc->ctx);
    if (rc->fd >= 0) close(rc->fd);
    memset(rc, 0, sizeof(*rc));
    rc->fd = -1;
}

kp_pool_raw_t *kp_pool_raw_new(const kp_pool_conn_t *conf)
{
    kp_pool_raw_t *r = kp_xcalloc(1, sizeof(*r));
    r->conf = *conf;
    r->conn.fd = -1;
    return r;
}

void kp_pool_raw_free(kp_pool_raw_t *r)
{
    if (!r) return;
    if (r->open) raw_close(&r->conn);
    free(r);
}

static int wait_fd(raw_conn_t *rc, short events)
{
    int64_t left = rc->deadline - kp_mono_ms();
    if (left <= 0) return -1;
    struct pollfd p = {rc->fd, events, 0};
    return poll(&p, 1, (int)left) > 0 ? 0 : -1;
}

/* Connects to hostport (the length given of a "host:port,..." list). */
static int raw_open_one(raw_conn_t *rc, const kp_pool_conn_t *c, const char *hostport, size_t hplen,
                        char *err, size_t errlen)
{
    memset(rc, 0, sizeof(*rc));
    rc->fd = -1;
    rc->deadline = kp_mono_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 10000);
    char first[512];
    snprintf(first, sizeof(first), "%.*s", (int)(hplen < 511 ? hplen : 511), hostport);
    char *colon = strrchr(first, ':');
    if (!colon) {
        snprintf(err, errlen, "bad bootstrap address %s", first);
        return -1;
    }
    *colon = 0;
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(first, colon + 1, &hints, &ai) != 0) {
        snprintf(err, errlen, "cannot resolve %s", first);
        return -1;
    }
    for (struct addrinfo *a = ai; a && rc->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        /* The socket is blocking: connect, the TLS handshake and every read and write give
         * up at the deadline instead of waiting on a broker that accepted and went silent
         * (stopped, or its loop stuck), which held the reconciler's thread for good. */
        int64_t left = rc->deadline - kp_mono_ms();
        if (left < 1) left = 1;
        struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            rc->fd = fd;
        else
            close(fd);
    }
    freeaddrinfo(ai);
    if (rc->fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", first, colon + 1, strerror(errno));
        return -1;
    }
    if (!c->ca_path && !c->cert_path) return 0;
    rc->ctx = SSL_CTX_new(TLS_client_method());
    if (!rc->ctx) goto tls_fail;
    SSL_CTX_set_verify(rc->ctx, SSL_VERIFY_PEER, NULL);
    if (c->ca_path && SSL_CTX_load_verify_locations(rc->ctx, c->ca_path, NULL) != 1) goto tls_fail;
    if (c->cert_path && SSL_CTX_use_certificate_chain_file(rc->ctx, c->cert_path) != 1)
        goto tls_fail;
    if (c->key_path && SSL_CTX_use_PrivateKey_file(rc->ctx, c->key_path, SSL_FILETYPE_PEM) != 1)
        goto tls_fail;
    rc->ssl = SSL_new(rc->ctx);
    if (!rc->ssl || SSL_set_fd(rc->ssl, rc->fd) != 1) goto tls_fail;
    /* the pool's certificate is checked against the CA and must name the address dialled,
     * as librdkafka (ssl.endpoint.identification.algorithm=https) does for the rest of the
     * pool client's calls */
    if (kp_tls_client_expect_host(rc->ssl, first) < 0) goto tls_fail;
    if (SSL_connect(rc->ssl) != 1) goto tls_fail;
    return 0;
tls_fail : {
    unsigned long e = ERR_get_error();
    long v = rc->ssl ? SSL_get_verify_result(rc->ssl) : X509_V_OK;
    if (v != X509_V_OK)
        snprintf(err, errlen, "TLS to the pool at %s:%s: the broker's certificate: %s", first,
                 colon + 1, X509_verify_cert_error_string(v));
    else
        snprintf(err, errlen, "TLS to the pool at %s:%s: %s", first, colon + 1,
                 e ? ERR_reason_error_string(e) : "failed");
    ERR_clear_error();
    raw_close(rc);
    return -1;
}
}

/* Connects to the first address of "host:port,..." that answers (err: the last failure). */
static int raw_open(raw_conn_t *rc, const kp_pool_conn_t *c, char *err, size_t errlen)
{
    const char *p = c->bootstrap;
    do {
        size_t len = strcspn(p, ",");
        if (raw_open_one(rc, c, p, len, err, errlen) == 0) return 0;
        p += len;
    } while (*p++ == ',' && *p);
    return -1;
}

static int raw_write(raw_conn_t *rc, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (wait_fd(rc, POLLOUT) < 0) return -1;
        ssize_t w = rc->ssl ? SSL_write(rc->ssl, p, (int)n) : send(rc->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int raw_read(raw_conn_t *rc, uint8_t *p, size_t n)
{
    while (n > 0) {
        if (!(rc->ssl && SSL_pending(rc->ssl)) && wait_fd(rc, POLLIN) < 0) return -1;
        ssize_t r = rc->ssl ? SSL_read(rc->ssl, p, (int)n) : recv(rc->fd, p, n, 0);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One exchange on the open connection; 0, or -1 (the connection is then closed). */
static int raw_exchange(kp_pool_raw_t *r, int16_t key, int16_t version, kp_wr_t *body,
                        kp_buf_t *resp)
{
    raw_conn_t *rc = &r->conn;
    rc->deadline = kp_mono_ms() + (r->conf.timeout_ms > 0 ? r->conf.timeout_ms : 10000);
    int32_t corr = ++r->correlation;
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i32(&w, 0);
    kp_wr_i16(&w, key);
    kp_wr_i16(&w, version);
    kp_wr_i32(&w, corr);
    kp_wr_string(&w, 0, KP_STR_LIT("kpool-control-plane"));
    kp_wr_raw(&w, body->buf.data, body->buf.len);
    kp_wr_patch_i32(&w, 0, (int32_t)(w.buf.len - 4));
    int ok = raw_write(rc, w.buf.data, w.buf.len) == 0;
    kp_wr_free(&w);
    uint8_t head[8];
    uint32_t size = 0;
    if (ok && raw_read(rc, head, 8) == 0) {
        size = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) |
               head[3];
        int32_t got = (int32_t)(((uint32_t)head[4] << 24) | ((uint32_t)head[5] << 16) |
                                ((uint32_t)head[6] << 8) | head[7]);
        ok = size >= 4 && size <= RESPONSE_MAX && got == corr;
    } else {
        ok = 0;
    }
    if (ok) {
        resp->len = 0;
        uint8_t *p = kp_buf_extend(resp, size - 4);
        ok = raw_read(rc, p, size - 4) == 0;
    }
    if (!ok) {
        raw_close(rc);
        r->open = 0;
    }
    return ok ? 0 : -1;
}

/* One request (header v1: key, version, correlation id, client id) and its response body
 * (after the correlation id) into resp. A kept connection that turns out broken (the pool
 * restarted) is reopened once: these requests may be repeated safely. */
static int raw_call(kp_pool_raw_t *r, int16_t key, int16_t version, kp_wr_t *body, kp_buf_t *resp,
                    char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = r->open;
        if (!r->open) {
            if (raw_open(&r->conn, &r->conf, err, errlen) < 0) return -1;
            r->open = 1;
        }
        if (raw_exchange(r, key, version, body, resp) == 0) return 0;
        if (!reused) break;
    }
    snprintf(err, errlen, "no answer from the pool at %s", r->conf.bootstrap);
    return -1;
}

static const char *error_text(int16_t code, kp_str_t msg, char *buf, size_t n)
{
    if (msg.len > 0)
        snprintf(buf, n, "%.*s", msg.len, msg.ptr);
    else
        snprintf(buf, n, "Kafka error %d", code);
    return buf;
}

/* A response body and what decoding it needs. */
typedef struct raw_answer {
    kp_buf_t resp;
    kp_arena_t arena;
    kp_rd_t rd;
} raw_answer_t;

/* Sends body (v1 of key; freed here) and readies the answer for its _decode: 0, or -1 with
 * err set. The answer is to be freed either way. */
static int raw_ask(kp_pool_raw_t *c, int16_t key, kp_wr_t *body, raw_answer_t *a, char *err,
                   size_t errlen)
{
    kp_buf_init(&a->resp);
    kp_arena_init(&a->arena, RESPONSE_MAX);
    int rc = raw_call(c, key, 1, body, &a->resp, err, errlen);
    kp_wr_free(body);
    kp_rd_init(&a->rd, a->resp.data, rc == 0 ? a->resp.len : 0);
    return rc;
}

static void raw_answer_free(raw_answer_t *a)
{
    kp_arena_free(&a->arena);
    kp_buf_free(&a->resp);
}

static int malformed(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: malformed answer", what);
    return -1;
}

int kp_pool_raw_create_acls(kp_pool_raw_t *c, const kp_pool_acl_t *acls, int n, char *err,
                            size_t errlen)
{
    CreateAclsRequest in;
    CreateAclsRequest_init(&in);
    in.Creations.items = kp_xcalloc((size_t)n + 1, sizeof(*in.Creations.items));
    in.Creations.count = n;
    for (int i = 0; i < n; i++) {
        CreateAclsRequest_AclCreation *a = &in.Creations.items[i];
        a->ResourceType = acls[i].resource_type;
        a->ResourceName = kp_str_c(acls[i].resource_name);
        a->ResourcePatternType = acls[i].pattern_type;
        a->Principal = kp_str_c(acls[i].principal);
        a->Host = kp_str_c(acls[i].host);
        a->Operation = acls[i].operation;
        a->PermissionType = acls[i].permission;
    }
    kp_wr_t body;
    kp_wr_init(&body);
    CreateAclsRequest_encode(&body, 1, &in);
    free(in.Creations.items);
    raw_answer_t a;
    int rc = raw_ask(c, KP_API_CREATE_ACLS, &body, &a, err, errlen);
    CreateAclsResponse out;
    if (rc == 0 && CreateAclsResponse_decode(&a.rd, 1, &a.arena, &out) < 0)
        rc = malformed("create ACL", err, errlen);
    for (int32_t i = 0; rc == 0 && i < out.Results.count; i++) {
        if (!out.Results.items[i].ErrorCode) continue;
        char t[256];
        snprintf(err, errlen, "create ACL: %s",
                 error_text(out.Results.items[i].ErrorCode, out.Results.items[i].ErrorMessage, t,
                            sizeof(t)));
        rc = -1;
    }
    raw_answer_free(&a);
    return rc;
}

int kp_pool_raw_describe_acls(kp_pool_raw_t *c, int8_t resource_type, const char *name,
                              int8_t pattern_type, kp_pool_acl_t **out, int *n, char *err,
                              size_t errlen)
{
    *out = NULL;
    *n = 0;
    DescribeAclsRequest in;
    DescribeAclsRequest_init(&in);
    in.ResourceTypeFilter = resource_type;
    in.ResourceNameFilter = name ? kp_str_c(name) : KP_STR_NULL;
    in.PatternTypeFilter = pattern_type;
    in.PrincipalFilter = KP_STR_NULL;
    in.HostFilter = KP_STR_NULL;
    in.Operation = KP_OP_ANY;
    in.PermissionType = 1; /* ANY */
    kp_wr_t body;
    kp_wr_init(&body);
    DescribeAclsRequest_encode(&body, 1, &in);
    raw_answer_t ans;
    int rc = raw_ask(c, KP_API_DESCRIBE_ACLS, &body, &ans, err, errlen);
    DescribeAclsResponse o;
    char t[256];
    if (rc == 0 && DescribeAclsResponse_decode(&ans.rd, 1, &ans.arena, &o) < 0) {
        rc = malformed("describe ACLs", err, errlen);
    } else if (rc == 0 && o.ErrorCode) {
        snprintf(err, errlen, "describe ACLs: %s",
                 error_text(o.ErrorCode, o.ErrorMessage, t, sizeof(t)));
        rc = -1;
    }
    int total = 0;
    for (int32_t i = 0; rc == 0 && i < o.Resources.count; i++)
        total += o.Resources.items[i].Acls.count > 0 ? o.Resources.items[i].Acls.count : 0;
    if (rc == 0) *out = kp_xcalloc((size_t)total + 1, sizeof(**out));
    for (int32_t i = 0; rc == 0 && i < o.Resources.count; i++) {
        DescribeAclsResponse_DescribeAclsResource *r = &o.Resources.items[i];
        for (int32_t k = 0; k < r->Acls.count; k++) {
            DescribeAclsResponse_AclDescription *d = &r->Acls.items[k];
            kp_pool_acl_t *a = &(*out)[(*n)++];
            a->resource_type = r->ResourceType;
            a->pattern_type = r->PatternType;
            a->operation = d->Operation;
            a->permission = d->PermissionType;
            a->resource_name = kp_xstrndup(r->ResourceName.ptr, (size_t)r->ResourceName.len);
            a->principal = kp_xstrndup(d->Principal.ptr, (size_t)d->Principal.len);
            a->host = kp_xstrndup(d->Host.ptr, (size_t)d->Host.len);
        }
    }
    raw_answer_free(&ans);
    return rc;
}

int kp_pool_raw_delete_acls(kp_pool_raw_t *c, const kp_pool_acl_t *acls, int n, char *err,
                            size_t errlen)
{
    DeleteAclsRequest in;
    DeleteAclsRequest_init(&in);
    in.Filters.items = kp_xcalloc((size_t)n + 1, sizeof(*in.Filters.items));
    in.Filters.count = n;
    for (int i = 0; i < n; i++) {
        DeleteAclsRequest_DeleteAclsFilter *f = &in.Filters.items[i];
        f->ResourceTypeFilter = acls[i].resource_type;
        f->ResourceNameFilter = kp_str_c(acls[i].resource_name);
        f->PatternTypeFilter = acls[i].pattern_type;
        f->PrincipalFilter = kp_str_c(acls[i].principal);
        f->HostFilter = kp_str_c(acls[i].host);
        f->Operation = acls[i].operation;
        f->PermissionType = acls[i].permission;
    }
    kp_wr_t body;
    kp_wr_init(&body);
    DeleteAclsRequest_encode(&body, 1, &in);
    free(in.Filters.items);
    raw_answer_t a;
    int rc = raw_ask(c, KP_API_DELETE_ACLS, &body, &a, err, errlen);
    DeleteAclsResponse out;
    if (rc == 0 && DeleteAclsResponse_decode(&a.rd, 1, &a.arena, &out) < 0)
        rc = malformed("delete ACLs", err, errlen);
    for (int32_t i = 0; rc == 0 && i < out.FilterResults.count; i++) {
        if (!out.FilterResults.items[i].ErrorCode) continue;
        char t[256];
        snprintf(err, errlen, "delete ACLs: %s",
                 error_text(out.FilterResults.items[i].ErrorCode,
                            out.FilterResults.items[i].ErrorMessage, t, sizeof(t)));
        rc = -1;
    }
    raw_answer_free(&a);
    return rc;
}

int kp_pool_raw_offline_log_dirs(const kp_pool_conn_t *conf, const char *hostport, char ***dirs,
                                 int *n, char *err, size_t errlen)
{
    *dirs = NULL;
    *n = 0;
    kp_pool_conn_t one = *conf;
    one.bootstrap = hostport;
    if (one.timeout_ms <= 0 || one.timeout_ms > 5000) one.timeout_ms = 5000;
    kp_pool_raw_t *r = kp_pool_raw_new(&one);
    DescribeLogDirsRequest in;
    DescribeLogDirsRequest_init(&in);
    DescribeLogDirsRequest_DescribableLogDirTopic none;
    in.Topics.items = &none; /* an empty list, not null: the directories without partitions */
    in.Topics.count = 0;
    kp_wr_t body;
    kp_wr_init(&body);
    DescribeLogDirsRequest_encode(&body, 1, &in);
    raw_answer_t a;
    int rc = raw_ask(r, KP_API_DESCRIBE_LOG_DIRS, &body, &a, err, errlen);
    DescribeLogDirsResponse o;
    if (rc == 0 && DescribeLogDirsResponse_decode(&a.rd, 1, &a.arena, &o) < 0) {
        snprintf(err, errlen, "describe log dirs at %s: malformed answer", hostport);
        rc = -1;
    }
    for (int32_t i = 0; rc == 0 && i < o.Results.count; i++) {
        const DescribeLogDirsResponse_DescribeLogDirsResult *d = &o.Results.items[i];
        if (d->ErrorCode != KERR_KAFKA_STORAGE_ERROR || d->LogDir.len <= 0) continue;
        *dirs = kp_xrealloc(*dirs, (size_t)(*n + 1) * sizeof(**dirs));
        (*dirs)[(*n)++] = kp_xstrndup(d->LogDir.ptr, (size_t)d->LogDir.len);
    }
    raw_answer_free(&a);
    kp_pool_raw_free(r);
    return rc;
}

int kp_pool_raw_parse_controller_racks(const uint8_t *p, size_t len, int32_t *controller,
                                       int32_t **ids, char ***racks, int *n, char *err,
                                       size_t errlen)
{
    *controller = -1;
    *ids = NULL;
    *racks = NULL;
    *n = 0;
    kp_arena_t arena;
    kp_arena_init(&arena, RESPONSE_MAX);
    kp_rd_t rd;
    kp_rd_init(&rd, p, len);
    MetadataResponse o;
    int rc =
        MetadataResponse_decode(&rd, 1, &arena, &o) < 0 ? malformed("metadata", err, errlen) : 0;
    if (rc == 0) {
        *controller = o.ControllerId >= 0 ? o.ControllerId : -1;
        int cnt = o.Brokers.count > 0 ? o.Brokers.count : 0;
        *ids = kp_xcalloc((size_t)cnt + 1, sizeof(**ids));
        *racks = kp_xcalloc((size_t)cnt + 1, sizeof(**racks));
        for (int i = 0; i < cnt; i++) {
            const MetadataResponse_MetadataResponseBroker *b = &o.Brokers.items[i];
            (*ids)[i] = b->NodeId;
            /* (a rack with a NUL in it is no name a status could show: none) */
            if (b->Rack.ptr && b->Rack.len > 0 && !memchr(b->Rack.ptr, 0, (size_t)b->Rack.len))
                (*racks)[i] = kp_xstrndup(b->Rack.ptr, (size_t)b->Rack.len);
        }
        *n = cnt;
    }
    kp_arena_free(&arena);
    return rc;
}

void kp_pool_raw_racks_free(int32_t *ids, char **racks, int n)
{
    for (int i = 0; racks && i < n; i++) free(racks[i]);
    free(racks);
    free(ids);
}

int kp_pool_raw_controller_racks(kp_pool_raw_t *c, int32_t *controller, int32_t **ids,
                                 char ***racks, int *n, char *err, size_t errlen)
{
    *controller = -1;
    *ids = NULL;
    *racks = NULL;
    *n = 0;
    MetadataRequest in;
    MetadataRequest_init(&in);
    MetadataRequest_MetadataRequestTopic none;
    in.Topics.items = &none; /* an empty list, not null (every topic) */
    in.Topics.count = 0;
    kp_wr_t body;
    kp_wr_init(&body);
    MetadataRequest_encode(&body, 1, &in);
    raw_answer_t a;
    int rc = raw_ask(c, KP_API_METADATA, &body, &a, err, errlen);
    if (rc == 0)
        rc = kp_pool_raw_parse_controller_racks(a.resp.data, a.resp.len, controller, ids, racks, n,
                                                err, errlen);
    raw_answer_free(&a);
    return rc;
}

void kp_pool_raw_topic_cfgs_free(kp_pool_raw_topic_cfg_t *t, int n)
{
    if (!t) return;
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].message);
        for (int k = 0; k < t[i].nconfigs; k++) {
            free(t[i].keys[k]);
            free(t[i].values[k]);
        }
        free(t[i].keys);
        free(t[i].values);
    }
    free(t);
}

/* The config source of a topic's own override (DescribeConfigs v1+ ConfigSource). */
#define SOURCE_DYNAMIC_TOPIC_CONFIG 1

/* A copy of s; a null string as "". */
static char *str_dup(kp_str_t s)
{
    return s.len > 0 ? kp_xstrndup(s.ptr, (size_t)s.len) : kp_xstrdup("");
}

int kp_pool_raw_parse_topic_configs(const uint8_t *p, size_t len, kp_pool_raw_topic_cfg_t **out,
                                    int *nout, char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    kp_arena_t arena;
    kp_arena_init(&arena, RESPONSE_MAX);
    kp_rd_t rd;
    kp_rd_init(&rd, p, len);
    DescribeConfigsResponse o;
    int rc = 0;
    if (DescribeConfigsResponse_decode(&rd, 1, &arena, &o) < 0) {
        snprintf(err, errlen, "describe topic configs: malformed answer");
        rc = -1;
    } else {
        int cnt = o.Results.count > 0 ? o.Results.count : 0;
        kp_pool_raw_topic_cfg_t *t = kp_xcalloc((size_t)cnt + 1, sizeof(*t));
        for (int i = 0; i < cnt; i++) {
            DescribeConfigsResponse_DescribeConfigsResult *r = &o.Results.items[i];
            kp_pool_raw_topic_cfg_t *d = &t[i];
            d->name = str_dup(r->ResourceName);
            d->error = r->ErrorCode;
            if (r->ErrorCode && r->ErrorMessage.len > 0) d->message = str_dup(r->ErrorMessage);
            int nc = r->Configs.count > 0 ? r->Configs.count : 0;
            d->keys = kp_xcalloc((size_t)nc + 1, sizeof(char *));
            d->values = kp_xcalloc((size_t)nc + 1, sizeof(char *));
            for (int k = 0; !r->ErrorCode && k < nc; k++) {
                DescribeConfigsResponse_DescribeConfigsResourceResult *e = &r->Configs.items[k];
                if (e->ConfigSource != SOURCE_DYNAMIC_TOPIC_CONFIG) continue;
                d->keys[d->nconfigs] = str_dup(e->Name);
                d->values[d->nconfigs++] = str_dup(e->Value);
            }
        }
        *out = t;
        *nout = cnt;
    }
    kp_arena_free(&arena);
    return rc;
}

int kp_pool_raw_describe_topic_configs(kp_pool_raw_t *c, const char *const *names, int n,
                                       kp_pool_raw_topic_cfg_t **out, int *nout, char *err,
                                       size_t errlen)
{
    *out = NULL;
    *nout = 0;
    DescribeConfigsRequest in;
    DescribeConfigsRequest_init(&in);
    in.Resources.items = kp_xcalloc((size_t)n + 1, sizeof(*in.Resources.items));
    in.Resources.count = n;
    for (int i = 0; i < n; i++) {
        in.Resources.items[i].ResourceType = KP_RES_TOPIC;
        in.Resources.items[i].ResourceName = kp_str_c(names[i]);
        in.Resources.items[i].ConfigurationKeys.count = -1; /* null: every config */
    }
    in.IncludeSynonyms = 0;
    kp_wr_t body;
    kp_wr_init(&body);
    DescribeConfigsRequest_encode(&body, 1, &in);
    free(in.Resources.items);
    raw_answer_t a;
    int rc = raw_ask(c, KP_API_DESCRIBE_CONFIGS, &body, &a, err, errlen);
    if (rc == 0)
        rc = kp_pool_raw_parse_topic_configs(a.resp.data, a.resp.len, out, nout, err, errlen);
    raw_answer_free(&a);
    return rc;
}
