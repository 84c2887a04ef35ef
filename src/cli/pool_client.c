/*
 * pool_client.c — `kpool pool`'s Kafka requests (see pool_client.h).
 *
 * One connection per request (the commands make a handful), the request header v1 (v2 for
 * flexible versions), the generated codecs of src/protocol/defs for bodies. Every answer is
 * decoded with the checked reader: a short or malformed one is an error.
 */
#include "cli/pool_client.h"

#include "core/arena.h"
#include "core/buf.h"
#include "kp_msgs.h"
#include "net/tls_client.h"
#include "protocol/errors.h"
#include "protocol/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* An answer larger than this is refused (a whole pool's metadata fits many times). */
#define RESPONSE_BYTES_MAX (256 << 20)

/* One connection: a socket, and its TLS session when the target has a CA. */
typedef struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} conn_t;

static void conn_close(conn_t *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->ctx) SSL_CTX_free(c->ctx);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->ctx = NULL;
    c->ssl = NULL;
}

static int io_all(conn_t *c, uint8_t *p, size_t n, int writing)
{
    while (n > 0) {
        ssize_t r;
        if (c->ssl) {
            int k = n > INT32_MAX ? INT32_MAX : (int)n;
            r = writing ? SSL_write(c->ssl, p, k) : SSL_read(c->ssl, p, k);
        } else {
            r = writing ? send(c->fd, p, n, MSG_NOSIGNAL) : recv(c->fd, p, n, 0);
            if (r < 0 && errno == EINTR) continue;
        }
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* TLS over c->fd (already connected to host): the broker's chain verified against t->ca and
 * its name (or IP address) checked, t's client certificate presented. 0, or -1 with err
 * (which names files, never what the key holds). */
static int tls_start(conn_t *c, const kp_poolc_target_t *t, const char *host, int port, char *err,
                     size_t errlen)
{
    const char *what = "TLS";
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    what = "the CA file";
    if (SSL_CTX_load_verify_locations(c->ctx, t->ca, NULL) != 1) goto fail;
    what = "the client certificate";
    if (t->cert && SSL_CTX_use_certificate_chain_file(c->ctx, t->cert) != 1) goto fail;
    what = "the client key";
    if (t->key && (SSL_CTX_use_PrivateKey_file(c->ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
                   SSL_CTX_check_private_key(c->ctx) != 1))
        goto fail;
    what = "TLS";
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) goto fail;
    if (kp_tls_client_expect_host(c->ssl, host) < 0) goto fail;
    what = "the TLS handshake";
    if (SSL_connect(c->ssl) != 1) goto fail;
    return 0;
fail : {
    unsigned long e = ERR_get_error();
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (v != X509_V_OK)
        snprintf(err, errlen, "%s:%d: TLS: the broker's certificate: %s (CA %s)", host, port,
                 X509_verify_cert_error_string(v), t->ca);
    else
        snprintf(err, errlen, "%s:%d: %s: %s", host, port, what,
                 e ? ERR_reason_error_string(e) : "failed");
    ERR_clear_error();
    return -1;
}
}

static int dial(conn_t *c, const kp_poolc_target_t *t, const char *host, int port, int timeout_ms,
                char *err, size_t errlen)
{
    char ps[16];
    c->fd = -1;
    c->ctx = NULL;
    c->ssl = NULL;
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int grc = getaddrinfo(host, ps, &hints, &ai);
    if (grc != 0 || !ai) {
        snprintf(err, errlen, "%s:%d: %s", host, port, gai_strerror(grc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (fd >= 0) {
        /* bound connect, every read and write, and so the TLS handshake too */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(err, errlen, "%s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    c->fd = fd;
    if (fd < 0) return -1;
    if (t->ca && tls_start(c, t, host, port, err, errlen) < 0) {
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Sends body as request key/version to host:port and reads the answer's body (after the
 * response header) into *out (malloc'd). 0 or -1 with err. */
static int call(const kp_poolc_target_t *t, const char *host, int port, int16_t key,
                int16_t version, int flexible, const kp_wr_t *body, int timeout_ms, uint8_t **out,
                size_t *outlen, char *err, size_t errlen)
{
    conn_t c;
    *out = NULL;
    if (dial(&c, t, host, port, timeout_ms, err, errlen) < 0) return -1;
    kp_wr_t w;
    kp_wr_init(&w);
    kp_wr_i32(&w, 0);
    kp_wr_i16(&w, key);
    kp_wr_i16(&w, version);
    kp_wr_i32(&w, 1);
    kp_wr_string(&w, 0, kp_str_c("kpool-pool"));
    if (flexible) kp_wr_uvarint(&w, 0); /* header tagged fields */
    kp_wr_raw(&w, body->buf.data, body->buf.len);
    kp_wr_patch_i32(&w, 0, (int32_t)(w.buf.len - 4));
    errno = 0;
    int rc = io_all(&c, w.buf.data, w.buf.len, 1);
    kp_wr_free(&w);
    uint8_t hdr[8];
    if (rc < 0 || io_all(&c, hdr, sizeof(hdr), 0) < 0) {
        snprintf(err, errlen, "%s:%d: no answer (%s)%s", host, port,
                 errno ? strerror(errno) : "closed",
                 !t->ca     ? " (a TLS listener? give --ca, --cert and --key)"
                 : !t->cert ? " (do the brokers want a client certificate? --cert, --key)"
                            : "");
        ERR_clear_error();
        conn_close(&c);
        return -1;
    }
    int32_t size = (int32_t)ntohl(*(uint32_t *)hdr), corr = (int32_t)ntohl(*(uint32_t *)(hdr + 4));
    if (size < 4 || size > RESPONSE_BYTES_MAX || corr != 1) {
        snprintf(err, errlen, "%s:%d: a malformed answer", host, port);
        conn_close(&c);
        return -1;
    }
    *outlen = (size_t)size - 4;
    *out = kp_xmalloc(*outlen + 1);
    rc = io_all(&c, *out, *outlen, 0);
    conn_close(&c);
    if (rc < 0) {
        snprintf(err, errlen, "%s:%d: the answer was cut short", host, port);
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* call() to the first server of bootstrap that answers. */
static int call_any(const kp_poolc_target_t *t, int16_t key, int16_t version, int flexible,
                    const kp_wr_t *body, int timeout_ms, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen)
{
    char *list = kp_xstrdup(t->bootstrap), *save = NULL;
    int rc = -1;
    snprintf(err, errlen, "no bootstrap server given");
    for (char *tok = strtok_r(list, ",", &save); tok && rc < 0; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon) {
            snprintf(err, errlen, "%s: not HOST:PORT", tok);
            continue;
        }
        *colon = 0;
        rc = call(t, tok, atoi(colon + 1), key, version, flexible, body, timeout_ms, out, outlen,
                  err, errlen);
    }
    free(list);
    return rc;
}

/* A response body decoded into a fresh arena; the caller frees both. */
typedef struct answer {
    uint8_t *data;
    size_t len;
    kp_arena_t arena;
    kp_rd_t rd;
} answer_t;

static void answer_init(answer_t *a, int flexible)
{
    kp_arena_init(&a->arena, a->len * 8 + 65536);
    kp_rd_init(&a->rd, a->data, a->len);
    if (flexible) kp_rd_skip_tags(&a->rd); /* response header v1 */
}

static void answer_free(answer_t *a)
{
    kp_arena_free(&a->arena);
    free(a->data);
}

static int by_id(const void *a, const void *b)
{
    const kp_poolc_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int by_name(const void *a, const void *b)
{
    const kp_poolc_part_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static int copy_ids(int32_t *dst, const int32_t *src, int32_t n)
{
    if (n < 0) return 0;
    if (n > KP_POOLC_REPLICAS_MAX) n = KP_POOLC_REPLICAS_MAX;
    memcpy(dst, src, (size_t)n * sizeof(*dst));
    return n;
}

static int read_metadata(const kp_poolc_target_t *target, int timeout_ms, kp_poolc_snapshot_t *s,
                         char *err, size_t errlen)
{
    MetadataRequest rq;
    MetadataRequest_init(&rq);
    rq.Topics.count = -1;
    rq.AllowAutoTopicCreation = 0;
    kp_wr_t body;
    kp_wr_init(&body);
    MetadataRequest_encode(&body, 7, &rq);
    answer_t a;
    int rc = call_any(target, 3, 7, 0, &body, timeout_ms, &a.data, &a.len, err, errlen);
    kp_wr_free(&body);
    if (rc < 0) return -1;
    answer_init(&a, 0);
    MetadataResponse md;
    if (MetadataResponse_decode(&a.rd, 7, &a.arena, &md) < 0 ||
        md.Brokers.count > KP_POOLC_BROKERS_MAX) {
        snprintf(err, errlen, "a malformed Metadata answer");
        answer_free(&a);
        return -1;
    }
    s->controller = md.ControllerId;
    s->brokers = kp_xcalloc((size_t)md.Brokers.count + 1, sizeof(*s->brokers));
    for (int32_t i = 0; i < md.Brokers.count; i++) {
        const MetadataResponse_MetadataResponseBroker *b = &md.Brokers.items[i];
        kp_poolc_broker_t *o = &s->brokers[s->nbrokers++];
        o->id = b->NodeId;
        snprintf(o->host, sizeof(o->host), "%.*s", b->Host.len, b->Host.ptr);
        o->port = b->Port;
        if (b->Rack.len > 0) snprintf(o->rack, sizeof(o->rack), "%.*s", b->Rack.len, b->Rack.ptr);
        o->disk_bytes = -1;
    }
    qsort(s->brokers, (size_t)s->nbrokers, sizeof(*s->brokers), by_id);
    size_t total = 0;
    for (int32_t i = 0; i < md.Topics.count; i++)
        if (md.Topics.items[i].Partitions.count > 0)
            total += (size_t)md.Topics.items[i].Partitions.count;
    if (total > KP_POOLC_PARTITIONS_MAX) total = KP_POOLC_PARTITIONS_MAX;
    s->parts = kp_xcalloc(total + 1, sizeof(*s->parts));
    for (int32_t i = 0; i < md.Topics.count; i++) {
        const MetadataResponse_MetadataResponseTopic *t = &md.Topics.items[i];
        if (t->ErrorCode && t->ErrorCode != 5 /* LEADER_NOT_AVAILABLE: offline partitions */)
            continue;
        for (int32_t k = 0; k < t->Partitions.count && (size_t)s->nparts < total; k++) {
            const MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[k];
            kp_poolc_part_t *o = &s->parts[s->nparts++];
            snprintf(o->topic, sizeof(o->topic), "%.*s", t->Name.len, t->Name.ptr);
            o->partition = p->PartitionIndex;
            o->leader = p->LeaderId;
            o->nreplicas = copy_ids(o->replicas, p->ReplicaNodes.items, p->ReplicaNodes.count);
            o->nisr = copy_ids(o->isr, p->IsrNodes.items, p->IsrNodes.count);
            o->bytes = -1;
        }
    }
    qsort(s->parts, (size_t)s->nparts, sizeof(*s->parts), by_name);
    answer_free(&a);
    return 0;
}

static kp_poolc_part_t *find_part(kp_poolc_snapshot_t *s, const char *topic, int len, int32_t p)
{
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].partition == p && (int)strlen(s->parts[i].topic) == len &&
            !memcmp(s->parts[i].topic, topic, (size_t)len))
            return &s->parts[i];
    return NULL;
}

/* The bytes of every partition on broker b (DescribeLogDirs v1); leaves -1 when it fails. */
static void read_log_dirs(const kp_poolc_target_t *target, kp_poolc_snapshot_t *s,
                          kp_poolc_broker_t *b, int timeout_ms)
{
    DescribeLogDirsRequest rq;
    DescribeLogDirsRequest_init(&rq);
    rq.Topics.count = -1;
    kp_wr_t body;
    kp_wr_init(&body);
    DescribeLogDirsRequest_encode(&body, 1, &rq);
    answer_t a;
    char err[256];
    int rc = call(target, b->host, b->port, 35, 1, 0, &body, timeout_ms, &a.data, &a.len, err,
                  sizeof(err));
    kp_wr_free(&body);
    if (rc < 0) return;
    answer_init(&a, 0);
    DescribeLogDirsResponse r;
    if (DescribeLogDirsResponse_decode(&a.rd, 1, &a.arena, &r) == 0) {
        b->disk_bytes = 0;
        for (int32_t i = 0; i < r.Results.count; i++)
            if (r.Results.items[i].ErrorCode == KERR_KAFKA_STORAGE_ERROR && !b->offline_dir[0])
                snprintf(b->offline_dir, sizeof(b->offline_dir), "%.*s",
                         r.Results.items[i].LogDir.len > 0 ? r.Results.items[i].LogDir.len : 0,
                         r.Results.items[i].LogDir.ptr);
        for (int32_t i = 0; i < r.Results.count; i++)
            for (int32_t j = 0; j < r.Results.items[i].Topics.count; j++) {
                const DescribeLogDirsResponse_DescribeLogDirsTopic *t =
                    &r.Results.items[i].Topics.items[j];
                for (int32_t k = 0; k < t->Partitions.count; k++) {
                    int64_t size = t->Partitions.items[k].PartitionSize;
                    kp_poolc_part_t *p = find_part(s, t->Name.ptr, t->Name.len,
                                                   t->Partitions.items[k].PartitionIndex);
                    int held = 0;
                    for (int x = 0; p && x < p->nreplicas; x++) held |= p->replicas[x] == b->id;
                    if (!held) continue; /* a copy kept from before a move: not the pool's */
                    b->disk_bytes += size;
                    if (size > p->bytes) p->bytes = size;
                }
            }
    }
    answer_free(&a);
}

static int read_moves(const kp_poolc_target_t *target, int timeout_ms, kp_poolc_snapshot_t *s,
                      char *err, size_t errlen)
{
    ListPartitionReassignmentsRequest rq;
    ListPartitionReassignmentsRequest_init(&rq);
    kp_wr_t body;
    kp_wr_init(&body);
    ListPartitionReassignmentsRequest_encode(&body, 0, &rq);
    answer_t a;
    int rc = call_any(target, 46, 0, 1, &body, timeout_ms, &a.data, &a.len, err, errlen);
    kp_wr_free(&body);
    if (rc < 0) return -1;
    answer_init(&a, 1);
    ListPartitionReassignmentsResponse r;
    rc = -1;
    if (ListPartitionReassignmentsResponse_decode(&a.rd, 0, &a.arena, &r) < 0) {
        snprintf(err, errlen, "a malformed ListPartitionReassignments answer");
    } else if (r.ErrorCode) {
        snprintf(err, errlen, "ListPartitionReassignments: error %d: %.*s", r.ErrorCode,
                 r.ErrorMessage.len > 0 ? r.ErrorMessage.len : 0, r.ErrorMessage.ptr);
    } else {
        rc = 0;
        for (int32_t i = 0; i < r.Topics.count; i++)
            for (int32_t k = 0; k < r.Topics.items[i].Partitions.count; k++) {
                kp_poolc_part_t *p =
                    find_part(s, r.Topics.items[i].Name.ptr, r.Topics.items[i].Name.len,
                              r.Topics.items[i].Partitions.items[k].PartitionIndex);
                s->nmoving++;
                if (p) p->moving = 1;
            }
    }
    answer_free(&a);
    return rc;
}

int kp_poolc_snapshot(const kp_poolc_target_t *target, int timeout_ms, kp_poolc_snapshot_t *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (read_metadata(target, timeout_ms, out, err, errlen) < 0 ||
        read_moves(target, timeout_ms, out, err, errlen) < 0) {
        kp_poolc_snapshot_free(out);
        return -1;
    }
    for (int i = 0; i < out->nbrokers; i++)
        read_log_dirs(target, out, &out->brokers[i], timeout_ms);
    return 0;
}

void kp_poolc_snapshot_free(kp_poolc_snapshot_t *s)
{
    free(s->brokers);
    free(s->parts);
    memset(s, 0, sizeof(*s));
}

int kp_poolc_alter(const kp_poolc_target_t *target, int timeout_ms, const kp_poolc_move_t *moves,
                   int n, char *err, size_t errlen)
{
    AlterPartitionReassignmentsRequest rq;
    AlterPartitionReassignmentsRequest_init(&rq);
    rq.TimeoutMs = timeout_ms;
    rq.Topics.items = kp_xcalloc((size_t)n + 1, sizeof(*rq.Topics.items));
    AlterPartitionReassignmentsRequest_ReassignablePartition *parts =
        kp_xcalloc((size_t)n + 1, sizeof(*parts));
    /* moves of one topic are adjacent (the plans are sorted): one entry per run */
    for (int i = 0; i < n; i++) {
        AlterPartitionReassignmentsRequest_ReassignableTopic *t =
            rq.Topics.count ? &rq.Topics.items[rq.Topics.count - 1] : NULL;
        if (!t || !kp_str_eq_c(t->Name, moves[i].topic)) {
            t = &rq.Topics.items[rq.Topics.count++];
            AlterPartitionReassignmentsRequest_ReassignableTopic_init(t);
            t->Name = kp_str_c(moves[i].topic);
            t->Partitions.items = &parts[i];
        }
        AlterPartitionReassignmentsRequest_ReassignablePartition *p =
            &t->Partitions.items[t->Partitions.count++];
        AlterPartitionReassignmentsRequest_ReassignablePartition_init(p);
        p->PartitionIndex = moves[i].partition;
        p->Replicas.items = (int32_t *)moves[i].target;
        p->Replicas.count = moves[i].ntarget;
    }
    kp_wr_t body;
    kp_wr_init(&body);
    AlterPartitionReassignmentsRequest_encode(&body, 0, &rq);
    free(rq.Topics.items);
    free(parts);
    answer_t a;
    int rc = call_any(target, 45, 0, 1, &body, timeout_ms, &a.data, &a.len, err, errlen);
    kp_wr_free(&body);
    if (rc < 0) return -1;
    answer_init(&a, 1);
    AlterPartitionReassignmentsResponse r;
    rc = -1;
    if (AlterPartitionReassignmentsResponse_decode(&a.rd, 0, &a.arena, &r) < 0) {
        snprintf(err, errlen, "a malformed AlterPartitionReassignments answer");
    } else if (r.ErrorCode) {
        snprintf(err, errlen, "AlterPartitionReassignments: error %d: %.*s", r.ErrorCode,
                 r.ErrorMessage.len > 0 ? r.ErrorMessage.len : 0, r.ErrorMessage.ptr);
    } else {
        rc = 0;
        for (int32_t i = 0; i < r.Responses.count; i++)
            for (int32_t k = 0; k < r.Responses.items[i].Partitions.count; k++) {
                const AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *p =
                    &r.Responses.items[i].Partitions.items[k];
                if (!p->ErrorCode) continue;
                rc++;
                fprintf(stderr, "kpool pool: %.*s-%d: refused (error %d): %.*s\n",
                        r.Responses.items[i].Name.len, r.Responses.items[i].Name.ptr,
                        p->PartitionIndex, p->ErrorCode,
                        p->ErrorMessage.len > 0 ? p->ErrorMessage.len : 0, p->ErrorMessage.ptr);
            }
    }
    answer_free(&a);
    return rc;
}

int kp_poolc_elect_preferred(const kp_poolc_target_t *target, int timeout_ms, int *failed,
                             char *err, size_t errlen)
{
    ElectLeadersRequest rq;
    ElectLeadersRequest_init(&rq);
    rq.ElectionType = 0;
    rq.TimeoutMs = timeout_ms;
    kp_wr_t body;
    kp_wr_init(&body);
    ElectLeadersRequest_encode(&body, 1, &rq);
    answer_t a;
    int rc = call_any(target, 43, 1, 0, &body, timeout_ms, &a.data, &a.len, err, errlen);
    kp_wr_free(&body);
    if (rc < 0) return -1;
    answer_init(&a, 0);
    ElectLeadersResponse r;
    *failed = 0;
    rc = -1;
    if (ElectLeadersResponse_decode(&a.rd, 1, &a.arena, &r) < 0) {
        snprintf(err, errlen, "a malformed ElectLeaders answer");
    } else if (r.ErrorCode) {
        snprintf(err, errlen, "ElectLeaders: error %d", r.ErrorCode);
    } else {
        rc = 0;
        for (int32_t i = 0; i < r.ReplicaElectionResults.count; i++) {
            const ElectLeadersResponse_ReplicaElectionResult *t =
                &r.ReplicaElectionResults.items[i];
            for (int32_t k = 0; k < t->PartitionResult.count; k++) {
                const ElectLeadersResponse_PartitionResult *p = &t->PartitionResult.items[k];
                if (!p->ErrorCode) {
                    rc++;
                    continue;
                }
                (*failed)++;
                fprintf(stderr, "kpool pool: %.*s-%d: no election (error %d): %.*s\n", t->Topic.len,
                        t->Topic.ptr, p->PartitionId, p->ErrorCode,
                        p->ErrorMessage.len > 0 ? p->ErrorMessage.len : 0, p->ErrorMessage.ptr);
            }
        }
    }
    answer_free(&a);
    return rc;
}
