/* replica_fetcher.c — follower fetch threads (see replica_fetcher.h). */
#include "broker/replica_fetcher.h"

#include "cluster/member.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/logging.h"
#include "kp_msgs.h"
#include "net/tls_client.h"
#include "protocol/errors.h"
#include "replication/throttle.h"
#include "storage/batch.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* replica.fetch.wait.max.ms: how long a follower's Fetch may wait at the leader for data
 * (Kafka's name and default; at most the leader's KP_FETCH_WAIT_MS_MAX) */
#define FETCH_WAIT_MS_DEFAULT 500
/* Per partition and per round. Larger than Kafka's replica.fetch.max.bytes (1 MiB): in
 * durable mode each round ends with an fsync per partition, so a round should carry what
 * the leader gathered meanwhile (a single-partition producer sends ~5 MB per round trip). */
#define FETCH_PART_BYTES    (8 << 20)
#define FETCH_BYTES         (16 << 20)
#define FETCHER_THREADS_MAX 256

typedef struct leader_thread {
    int32_t leader;
    pthread_t thread;
    int fd; /* its connection to the leader, -1 when none (under the fetcher's lock) */
} leader_thread_t;

struct kp_fetcher {
    kp_broker_t *b;
    const kp_listener_cfg_t *listener; /* the inter-broker listener (ours, by name) */
    SSL_CTX *tls;                      /* when it is SSL */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    int64_t wait_max_ms; /* replica.fetch.wait.max.ms */
    leader_thread_t threads[FETCHER_THREADS_MAX];
    int nthreads;
};

typedef struct conn {
    int fd;
    int wait_ms; /* a Fetch's max wait (replica.fetch.wait.max.ms) */
    SSL *ssl;
    int32_t corr;
    char host[256];
    int port;
    /* a fetch thread's connection: its socket is known to kp_fetcher_free, which shuts it
     * down so that a fetch parked at the leader does not hold up the stop (NULL for the
     * one-off connections of kp_fetcher_write_marker) */
    kp_fetcher_t *f;
    leader_thread_t *slot;
} conn_t;

typedef struct fthread_arg {
    kp_fetcher_t *f;
    int32_t leader;
    leader_thread_t *slot;
} fthread_arg_t;

static int stopping(kp_fetcher_t *f)
{
    pthread_mutex_lock(&f->lock);
    int s = f->stopping;
    pthread_mutex_unlock(&f->lock);
    return s;
}

static void pause_ms(kp_fetcher_t *f, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->lock);
    if (!f->stopping) pthread_cond_timedwait(&f->cond, &f->lock, &ts);
    pthread_mutex_unlock(&f->lock);
}

/* The leader's inter-broker endpoint (the listener named as ours). */
static int leader_endpoint(kp_fetcher_t *f, int32_t leader, char *host, size_t hlen, int *port)
{
    kp_broker_t *b = f->b;
    if (!f->listener) return -1;
    const char *name = f->listener->name;
    kp_member_view_t *v = kp_member_view(b->member);
    int rc = -1;
    for (int i = 0; i < v->nbrokers; i++) {
        if (v->brokers[i].id != leader) continue;
        const kp_meta_endpoint_t *ep = kp_member_endpoint(&v->brokers[i], name);
        if (ep && ep->host) {
            snprintf(host, hlen, "%s", ep->host);
            *port = ep->port;
            rc = 0;
        }
    }
    kp_member_view_put(v);
    return rc;
}

static void conn_track(conn_t *c, int fd)
{
    if (!c->slot) return;
    pthread_mutex_lock(&c->f->lock);
    c->slot->fd = fd;
    if (fd >= 0 && c->f->stopping) shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->f->lock);
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0) conn_track(c, -1);
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* TLS on a connected socket, verifying the leader's certificate against ssl.ca.location
 * and its address. */
static int tls_start(conn_t *c, SSL_CTX *ctx, const char *host)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl) return -1;
    SSL_set_fd(c->ssl, c->fd);
    if (kp_tls_client_expect_host(c->ssl, host) < 0 || SSL_connect(c->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        kp_warn("replication", "TLS to %s: %s", host, e);
        return -1;
    }
    return 0;
}

static int conn_open(conn_t *c, SSL_CTX *tls, const char *host, int port)
{
    conn_close(c);
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    struct timeval tv = {.tv_sec = (c->wait_ms + 5000) / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect too */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    conn_track(c, fd);
    if (tls && tls_start(c, tls, host) < 0) {
        conn_close(c);
        return -1;
    }
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    return 0;
}

static int write_all(conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(conn_t *c, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r =
            c->ssl ? SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n) : recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends a request whose body is in body (after a v1 header) and reads the response body
 * (after the correlation id) into *out (malloc'd). 0 or -1 (the connection is closed). */
static int roundtrip(conn_t *c, int16_t key, int16_t version, kp_wr_t *body, int32_t self,
                     uint8_t **out, size_t *outlen)
{
    kp_wr_t w;
    kp_wr_init(&w);
    char client[32];
    snprintf(client, sizeof(client), "kpool-replica-%d", self);
    kp_wr_i32(&w, 0);
    kp_wr_i16(&w, key);
    kp_wr_i16(&w, version);
    int32_t corr = ++c->corr;
    kp_wr_i32(&w, corr);
    kp_wr_string(&w, 0, kp_str_c(client));
    kp_wr_raw(&w, body->buf.data, body->buf.len);
    kp_wr_patch_i32(&w, 0, (int32_t)(w.buf.len - 4));
    int rc = write_all(c, w.buf.data, w.buf.len);
    kp_wr_free(&w);
    uint8_t hdr[8];
    if (rc < 0 || read_all(c, hdr, sizeof(hdr)) < 0) goto fail;
    int32_t size = (int32_t)ntohl(*(uint32_t *)hdr), got = (int32_t)ntohl(*(uint32_t *)(hdr + 4));
    if (size < 4 || size > FETCH_BYTES + (1 << 20) || got != corr) goto fail;
    *outlen = (size_t)size - 4;
    *out = malloc(*outlen + 1);
    if (!*out || read_all(c, *out, *outlen) < 0) {
        free(*out);
        *out = NULL;
        goto fail;
    }
    return 0;
fail:
    conn_close(c);
    return -1;
}

/* A round's fsync waits: every partition appended to registers one, and the round ends once
 * all are done (the flusher threads fsync the partitions in parallel). A failed fsync takes
 * the partition offline (storage does), so the round has nothing more to do about it. */
typedef struct round_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pending;
} round_wait_t;

typedef struct part_wait {
    kp_flush_waiter_t w;
    round_wait_t *round;
} part_wait_t;

/* What one thread fetches this round: partitions following `leader`, referenced. */
typedef struct follow {
    kp_topic_t *topic;
    kp_partition_t *p;
    int32_t epoch;
    int64_t offset;
    int throttled; /* a move adds this replica: follower.replication.throttled.rate */
    /* this round's answer for it, applied once what it appended is fsynced */
    int answered;
    int64_t leader_hwm, leader_start;
    part_wait_t wait;
} follow_t;

static int collect(kp_broker_t *b, int32_t leader, follow_t **out)
{
    int ntopics;
    kp_topic_t **list = kp_topics_list(b->topics, &ntopics);
    int n = 0, cap = 0;
    follow_t *v = NULL;
    for (int i = 0; i < ntopics; i++) {
        for (int32_t j = 0; j < list[i]->npartitions; j++) {
            kp_partition_t *p = kp_topic_partition(list[i], j);
            kp_repl_view_t rv;
            if (!p) continue;
            kp_partition_view(p, &rv);
            if (rv.role != KP_ROLE_FOLLOWER || rv.leader != leader) continue;
            if (kp_partition_is_offline(p)) continue; /* its directory failed: copies nothing */
            if (n == cap) v = kp_xrealloc(v, (size_t)(cap = cap * 2 + 8) * sizeof(*v));
            kp_topic_ref(list[i]);
            v[n++] = (follow_t){.topic = list[i], .p = p, .epoch = rv.leader_epoch};
        }
    }
    kp_topics_list_free(list, ntopics);
    *out = v;
    return n;
}

static void release(follow_t *v, int n)
{
    for (int i = 0; i < n; i++) kp_topic_put(v[i].topic);
    free(v);
}

/* KIP-101: asks the leader where our last epoch ends and cuts what lies beyond. */
static int truncate_divergent(conn_t *c, kp_broker_t *b, follow_t *fw)
{
    kp_repl_t *r = fw->p->repl;
    pthread_mutex_lock(&r->lock);
    int done = r->fetch_epoch == fw->epoch;
    pthread_mutex_unlock(&r->lock);
    if (done) return 0;
    int32_t last = kp_partition_last_epoch(fw->p);
    int64_t start, hwm, leo;
    kp_partition_log_offsets(fw->p, &start, &hwm, &leo);
    if (last >= 0 && leo > start) {
        OffsetForLeaderEpochRequest rq;
        OffsetForLeaderEpochRequest_init(&rq);
        rq.ReplicaId = b->cfg.node_id;
        OffsetForLeaderEpochRequest_OffsetForLeaderTopic t = {0};
        OffsetForLeaderEpochRequest_OffsetForLeaderPartition part = {0};
        t.Topic = kp_str_c(fw->topic->name);
        part.Partition = fw->p->index;
        part.CurrentLeaderEpoch = fw->epoch;
        part.LeaderEpoch = last;
        t.Partitions.items = &part;
        t.Partitions.count = 1;
        rq.Topics.items = &t;
        rq.Topics.count = 1;
        kp_wr_t body;
        kp_wr_init(&body);
        OffsetForLeaderEpochRequest_encode(&body, 3, &rq);
        uint8_t *resp = NULL;
        size_t rlen = 0;
        int rc = roundtrip(c, 23, 3, &body, b->cfg.node_id, &resp, &rlen);
        kp_wr_free(&body);
        if (rc < 0) return -1;
        kp_arena_t arena;
        kp_arena_init(&arena, rlen * 4 + 4096);
        kp_rd_t rd;
        kp_rd_init(&rd, resp, rlen);
        OffsetForLeaderEpochResponse out;
        int ok = OffsetForLeaderEpochResponse_decode(&rd, 3, &arena, &out) == 0 &&
                 out.Topics.count == 1 && out.Topics.items[0].Partitions.count == 1;
        int16_t err = ok ? out.Topics.items[0].Partitions.items[0].ErrorCode : -1;
        int32_t end_epoch = ok ? out.Topics.items[0].Partitions.items[0].LeaderEpoch : -1;
        int64_t end = ok ? out.Topics.items[0].Partitions.items[0].EndOffset : -1;
        kp_arena_free(&arena);
        free(resp);
        if (!ok || err) return -1;
        /* the leader does not know our epoch at all: keep only what it had committed when
         * we last heard of it (our copy of its high watermark) */
        int64_t to = end_epoch < 0 ? kp_partition_high_watermark(fw->p) : end;
        if (to < leo) {
            kp_warn("replication",
                    "%s: the leader's epoch %d ends at %" PRId64 ", ours at %" PRId64
                    ": truncating the divergent tail",
                    fw->p->log->dir, end_epoch, to, leo);
            if (kp_partition_truncate(fw->p, fw->epoch, to, kp_wall_ms()) < 0) return -1;
        }
    }
    pthread_mutex_lock(&r->lock);
    r->fetch_epoch = fw->epoch;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void part_flushed(kp_flush_waiter_t *w, int err)
{
    (void)err;
    round_wait_t *rw = ((part_wait_t *)w)->round;
    pthread_mutex_lock(&rw->lock);
    if (--rw->pending == 0) pthread_cond_signal(&rw->cond);
    pthread_mutex_unlock(&rw->lock);
}

/* Durable mode: registers a wait for the fsync of everything up to last_offset (the next
 * fetch offset tells the leader so); round_wait_all waits for them all. */
static void wait_fsynced(round_wait_t *rw, follow_t *fw, int64_t last_offset)
{
    fw->wait = (part_wait_t){.w = {.done = part_flushed}, .round = rw};
    pthread_mutex_lock(&rw->lock);
    rw->pending++;
    pthread_mutex_unlock(&rw->lock);
    /* page-cache mode: nothing to wait for (and part_flushed is not called) */
    if (!kp_partition_wait_local(fw->p, last_offset, &fw->wait.w)) part_flushed(&fw->wait.w, 0);
}

static void round_wait_all(round_wait_t *rw)
{
    pthread_mutex_lock(&rw->lock);
    while (rw->pending > 0) pthread_cond_wait(&rw->cond, &rw->lock);
    pthread_mutex_unlock(&rw->lock);
}

/* Appends the whole batches of one partition's records; returns 1 if anything was. */
static int append_records(round_wait_t *rw, follow_t *fw, const kp_records_t *rec)
{
    if (!rec->ptr || rec->len <= 0) return 0;
    const uint8_t *p = rec->ptr;
    size_t left = (size_t)rec->len;
    int64_t last = -1;
    while (left >= KP_BATCH_HEADER_BYTES) {
        int64_t total = kp_batch_total_size(p, left);
        if (total <= 0 || (size_t)total > left) break; /* a partial batch ends the data */
        kp_batch_info_t info;
        if (kp_batch_validate_stored(p, (size_t)total, &info) != KP_BATCH_OK) {
            kp_warn("replication", "%s: corrupt batch from the leader at %" PRId64, fw->p->log->dir,
                    info.base_offset);
            break;
        }
        int64_t start, hwm, leo;
        kp_partition_log_offsets(fw->p, &start, &hwm, &leo);
        if (info.base_offset + info.last_offset_delta < leo) { /* already have it */
            p += total;
            left -= (size_t)total;
            continue;
        }
        kp_append_result_t res;
        kp_partition_append_replica(fw->p, fw->epoch, p, (size_t)total, &info, kp_wall_ms(), &res);
        if (res.status == KP_APPEND_OUT_OF_ORDER && start == leo && info.base_offset < leo &&
            kp_partition_restart_at(fw->p, fw->epoch, info.base_offset, kp_wall_ms()) == 0) {
            /* an empty log started at the leader's log start, which falls inside this batch
             * (DeleteRecords cuts between records): start at the batch instead and take it
             * whole, as Kafka's follower does; the leader's log start is applied after */
            kp_partition_append_replica(fw->p, fw->epoch, p, (size_t)total, &info, kp_wall_ms(),
                                        &res);
        }
        if (res.status == KP_APPEND_OUT_OF_ORDER) break; /* no longer following that epoch */
        if (res.status != KP_APPEND_OK) {
            kp_warn("replication", "%s: replica append at %" PRId64 " failed (%d)", fw->p->log->dir,
                    info.base_offset, res.status);
            break;
        }
        last = res.last_offset;
        p += total;
        left -= (size_t)total;
    }
    if (last >= 0) wait_fsynced(rw, fw, last);
    return last >= 0;
}

/* One Fetch round to the leader for every partition in v, asked from v[first] on (the
 * leader fills partitions in request order up to FETCH_BYTES: a moving start keeps a few
 * far-behind partitions from starving the rest). -1 on a connection failure. */
static int fetch_round(conn_t *c, kp_broker_t *b, follow_t *v, int n, int first)
{
    FetchRequest rq;
    FetchRequest_init(&rq);
    rq.ReplicaId = b->cfg.node_id;
    rq.MaxWaitMs = c->wait_ms;
    rq.MinBytes = 1;
    rq.MaxBytes = FETCH_BYTES;
    rq.SessionEpoch = -1;
    FetchRequest_FetchTopic *topics = kp_xcalloc((size_t)n, sizeof(*topics));
    FetchRequest_FetchPartition *parts = kp_xcalloc((size_t)n, sizeof(*parts));
    int nt = 0, m = 0;
    int64_t allow = -1; /* follower.replication.throttled.rate, once a replica needs it */
    for (int j = 0; j < n; j++) {
        int i = (first + j) % n;
        v[i].throttled = kp_partition_replica_throttled(v[i].p, b->cfg.node_id);
        if (v[i].throttled && allow < 0)
            allow = kp_throttle_allowance(&kp_repl_throttle_follower, kp_mono_ms());
        if (v[i].throttled && allow == 0) continue; /* nothing left this second */
        int64_t start, hwm, leo;
        kp_partition_log_offsets(v[i].p, &start, &hwm, &leo);
        v[i].offset = hwm; /* the committed (in durable mode: fsynced) end */
        FetchRequest_FetchPartition *fp = &parts[m++];
        FetchRequest_FetchPartition_init(fp);
        fp->Partition = v[i].p->index;
        fp->CurrentLeaderEpoch = v[i].epoch;
        fp->FetchOffset = hwm;
        fp->LogStartOffset = start;
        fp->PartitionMaxBytes = FETCH_PART_BYTES;
        if (v[i].throttled && allow < FETCH_PART_BYTES) fp->PartitionMaxBytes = (int32_t)allow;
        if (nt == 0 || topics[nt - 1].Partitions.items + topics[nt - 1].Partitions.count != fp ||
            !kp_str_eq(topics[nt - 1].Topic, kp_str_c(v[i].topic->name))) {
            FetchRequest_FetchTopic_init(&topics[nt]);
            topics[nt].Topic = kp_str_c(v[i].topic->name);
            topics[nt].Partitions.items = fp;
            topics[nt].Partitions.count = 0;
            nt++;
        }
        topics[nt - 1].Partitions.count++;
    }
    if (m == 0) { /* only throttled replicas, and their second is used up */
        free(topics);
        free(parts);
        return 1;
    }
    rq.Topics.items = topics;
    rq.Topics.count = nt;
    kp_wr_t body;
    kp_wr_init(&body);
    FetchRequest_encode(&body, 11, &rq);
    free(topics);
    free(parts);
    uint8_t *resp = NULL;
    size_t rlen = 0;
    int rc = roundtrip(c, 1, 11, &body, b->cfg.node_id, &resp, &rlen);
    kp_wr_free(&body);
    if (rc < 0) return -1;
    kp_arena_t arena;
    kp_arena_init(&arena, rlen * 2 + 65536);
    kp_rd_t rd;
    kp_rd_init(&rd, resp, rlen);
    FetchResponse out;
    int progressed = 0, errors = 0;
    round_wait_t rw = {.pending = 0};
    pthread_mutex_init(&rw.lock, NULL);
    pthread_cond_init(&rw.cond, NULL);
    if (FetchResponse_decode(&rd, 11, &arena, &out) == 0) {
        for (int32_t i = 0; i < out.Responses.count; i++) {
            FetchResponse_FetchableTopicResponse *tr = &out.Responses.items[i];
            for (int32_t j = 0; j < tr->Partitions.count; j++) {
                FetchResponse_PartitionData *pd = &tr->Partitions.items[j];
                follow_t *fw = NULL;
                for (int k = 0; k < n && !fw; k++)
                    if (v[k].p->index == pd->PartitionIndex &&
                        kp_str_eq(tr->Topic, kp_str_c(v[k].topic->name)))
                        fw = &v[k];
                if (!fw || fw->answered) continue; /* a partition answered twice: once */
                if (pd->ErrorCode == KERR_OFFSET_OUT_OF_RANGE && pd->LogStartOffset > fw->offset) {
                    /* behind the leader's log start (retention or DeleteRecords deleted what
                     * we miss): start over there, as Kafka's truncateFullyAndStartAt */
                    kp_warn("replication",
                            "%s: fetch offset %" PRId64 " is below the leader's log start "
                            "%" PRId64 ": starting the log over there",
                            fw->p->log->dir, fw->offset, pd->LogStartOffset);
                    if (kp_partition_restart_at(fw->p, fw->epoch, pd->LogStartOffset,
                                                kp_wall_ms()) == 0)
                        progressed = 1;
                    else
                        errors++;
                    continue;
                }
                if (pd->ErrorCode == KERR_OFFSET_OUT_OF_RANGE) {
                    /* our end is past the leader's: find the divergence again */
                    pthread_mutex_lock(&fw->p->repl->lock);
                    fw->p->repl->fetch_epoch = -1;
                    pthread_mutex_unlock(&fw->p->repl->lock);
                    errors++;
                    continue;
                }
                if (pd->ErrorCode) {
                    errors++;
                    continue;
                }
                if (fw->throttled && pd->Records.len > 0)
                    kp_throttle_spend(&kp_repl_throttle_follower, pd->Records.len);
                progressed |= append_records(&rw, fw, &pd->Records);
                fw->answered = 1;
                fw->leader_hwm = pd->HighWatermark;
                fw->leader_start = pd->LogStartOffset;
            }
        }
        /* the leader's HWM and log start apply once our copy is on disk */
        round_wait_all(&rw);
        for (int k = 0; k < n; k++) {
            if (!v[k].answered) continue;
            v[k].answered = 0;
            kp_partition_follower_progress(v[k].p, v[k].epoch, v[k].leader_hwm);
            kp_partition_follower_log_start(v[k].p, v[k].epoch, v[k].leader_start);
        }
    } else {
        kp_warn("replication", "undecodable fetch response from %s:%d", c->host, c->port);
        conn_close(c);
        errors++;
    }
    pthread_cond_destroy(&rw.cond);
    pthread_mutex_destroy(&rw.lock);
    kp_arena_free(&arena);
    free(resp);
    return errors && !progressed ? 1 : 0;
}

static void *leader_main(void *arg)
{
    fthread_arg_t *a = arg;
    kp_fetcher_t *f = a->f;
    kp_broker_t *b = f->b;
    int32_t leader = a->leader;
    conn_t c = {.fd = -1, .wait_ms = (int)f->wait_max_ms, .f = f, .slot = a->slot};
    free(a);
    unsigned rounds = 0;
    while (!stopping(f)) {
        follow_t *v;
        int n = collect(b, leader, &v);
        if (n == 0) {
            release(v, n);
            conn_close(&c);
            pause_ms(f, 100);
            continue;
        }
        char host[256];
        int port = 0;
        if (leader_endpoint(f, leader, host, sizeof(host), &port) < 0) {
            release(v, n);
            pause_ms(f, 200);
            continue;
        }
        if ((c.fd < 0 || strcmp(c.host, host) || c.port != port) &&
            conn_open(&c, f->tls, host, port) < 0) {
            kp_debug("replication", "cannot connect to leader %d at %s:%d", leader, host, port);
            release(v, n);
            pause_ms(f, 200);
            continue;
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (truncate_divergent(&c, b, &v[i]) == 0)
                v[k++] = v[i];
            else
                kp_topic_put(v[i].topic);
        }
        int rc = k > 0 ? fetch_round(&c, b, v, k, (int)(rounds++ % (unsigned)k)) : 1;
        release(v, k);
        if (rc != 0) pause_ms(f, rc < 0 ? 200 : 50);
    }
    conn_close(&c);
    return NULL;
}

/* The client side of an SSL inter-broker listener: ssl.ca.location to verify leaders,
 * replica.ssl.certificate.location / replica.ssl.key.location (default: the broker's own
 * ssl.certificate.location / ssl.key.location) to be one. */
static SSL_CTX *tls_client(const kp_props_t *p, char *err, size_t errlen)
{
    const char *ca = kp_props_get(p, "ssl.ca.location");
    const char *crt = kp_props_get_str(p, "replica.ssl.certificate.location",
                                       kp_props_get_str(p, "ssl.certificate.location", ""));
    const char *key = kp_props_get_str(p, "replica.ssl.key.location",
                                       kp_props_get_str(p, "ssl.key.location", ""));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    if (!ca || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        (*crt && SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) ||
        (*key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        const char *why = ERR_reason_error_string(ERR_get_error());
        snprintf(err, errlen,
                 "the SSL inter-broker listener needs ssl.ca.location and a client certificate "
                 "(replica.ssl.certificate.location / replica.ssl.key.location): %s",
                 why ? why : "not readable");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

kp_fetcher_t *kp_fetcher_new(kp_broker_t *b, char *err, size_t errlen)
{
    kp_fetcher_t *f = kp_xcalloc(1, sizeof(*f));
    f->b = b;
    if (kp_props_get_i64(b->cfg.props, "replica.fetch.wait.max.ms", FETCH_WAIT_MS_DEFAULT, 0,
                         KP_FETCH_WAIT_MS_MAX, &f->wait_max_ms, err, errlen) < 0) {
        free(f);
        return NULL;
    }
    const char *name = kp_props_get(b->cfg.props, "inter.broker.listener.name");
    for (int i = 0; i < b->cfg.nlisteners && !f->listener; i++)
        if (!name || !strcmp(b->cfg.listeners[i].name, name)) f->listener = &b->cfg.listeners[i];
    if (!f->listener) {
        snprintf(err, errlen, "inter.broker.listener.name: %s is not in listeners", name);
        free(f);
        return NULL;
    }
    if (!strcmp(f->listener->security, "SSL") &&
        !(f->tls = tls_client(b->cfg.props, err, errlen))) {
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    return f;
}

void kp_fetcher_follow(kp_fetcher_t *f, int32_t leader)
{
    pthread_mutex_lock(&f->lock);
    int have = f->stopping;
    for (int i = 0; i < f->nthreads && !have; i++) have = f->threads[i].leader == leader;
    if (!have && f->nthreads < FETCHER_THREADS_MAX) {
        fthread_arg_t *a = kp_xcalloc(1, sizeof(*a));
        a->f = f;
        a->leader = leader;
        a->slot = &f->threads[f->nthreads];
        a->slot->fd = -1;
        if (pthread_create(&f->threads[f->nthreads].thread, NULL, leader_main, a) == 0)
            f->threads[f->nthreads++].leader = leader;
        else
            free(a);
    }
    pthread_mutex_unlock(&f->lock);
}

int16_t kp_fetcher_write_marker(kp_fetcher_t *f, int32_t leader, int64_t producer_id,
                                int16_t producer_epoch, int commit, const char *topic,
                                int32_t partition)
{
    char host[256];
    int port = 0;
    if (leader_endpoint(f, leader, host, sizeof(host), &port) < 0) return -1;
    conn_t c = {.fd = -1};
    if (conn_open(&c, f->tls, host, port) < 0) return -1;
    WriteTxnMarkersRequest rq;
    WriteTxnMarkersRequest_init(&rq);
    WriteTxnMarkersRequest_WritableTxnMarker mk;
    WriteTxnMarkersRequest_WritableTxnMarker_init(&mk);
    WriteTxnMarkersRequest_WritableTxnMarkerTopic mt;
    WriteTxnMarkersRequest_WritableTxnMarkerTopic_init(&mt);
    mt.Name = kp_str_c(topic);
    mt.PartitionIndexes.items = &partition;
    mt.PartitionIndexes.count = 1;
    mk.ProducerId = producer_id;
    mk.ProducerEpoch = producer_epoch;
    mk.TransactionResult = (int8_t)(commit != 0);
    mk.Topics.items = &mt;
    mk.Topics.count = 1;
    rq.Markers.items = &mk;
    rq.Markers.count = 1;
    kp_wr_t body;
    kp_wr_init(&body);
    WriteTxnMarkersRequest_encode(&body, 0, &rq);
    uint8_t *resp = NULL;
    size_t rlen = 0;
    int rc = roundtrip(&c, 27, 0, &body, f->b->cfg.node_id, &resp, &rlen);
    kp_wr_free(&body);
    conn_close(&c);
    if (rc < 0) return -1;
    kp_arena_t arena;
    kp_arena_init(&arena, rlen * 4 + 4096);
    kp_rd_t rd;
    kp_rd_init(&rd, resp, rlen);
    WriteTxnMarkersResponse out;
    int ok = WriteTxnMarkersResponse_decode(&rd, 0, &arena, &out) == 0 && out.Markers.count == 1 &&
             out.Markers.items[0].Topics.count == 1 &&
             out.Markers.items[0].Topics.items[0].Partitions.count == 1;
    int16_t err = ok ? out.Markers.items[0].Topics.items[0].Partitions.items[0].ErrorCode : -1;
    kp_arena_free(&arena);
    free(resp);
    return err;
}

void kp_fetcher_free(kp_fetcher_t *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_cond_broadcast(&f->cond);
    /* a thread blocked in a fetch parked at its leader (up to replica.fetch.wait.max.ms)
     * reads end-of-stream at once */
    for (int i = 0; i < f->nthreads; i++)
        if (f->threads[i].fd >= 0) shutdown(f->threads[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < f->nthreads; i++) pthread_join(f->threads[i].thread, NULL);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    if (f->tls) SSL_CTX_free(f->tls);
    free(f);
}
