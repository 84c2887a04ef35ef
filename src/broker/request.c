/*
 * request.c — request header parsing, dispatch by ApiKey, response ordering per connection.
 */
#include "broker/request.h"

#include "broker/loop_ctx.h"
#include <stddef.h>

#include "auth/acl.h"
#include "core/buf.h"
#include "net/tls.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "kp_msgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The handler of each served ApiKey, keyed by the generated KP_API_* constants; the versions
 * come from the protocol definitions (kp_api_defs). An API without a handler is not served
 * (nor advertised by ApiVersions). */
static const kp_handler_fn handlers[KP_METRICS_API_MAX] = {
    [KP_API_PRODUCE] = kp_handle_produce,
    [KP_API_FETCH] = kp_handle_fetch,
    [KP_API_LIST_OFFSETS] = kp_handle_list_offsets,
    [KP_API_METADATA] = kp_handle_metadata,
    [KP_API_OFFSET_COMMIT] = kp_handle_offset_commit,
    [KP_API_OFFSET_FETCH] = kp_handle_offset_fetch,
    [KP_API_FIND_COORDINATOR] = kp_handle_find_coordinator,
    [KP_API_JOIN_GROUP] = kp_handle_join_group,
    [KP_API_HEARTBEAT] = kp_handle_heartbeat,
    [KP_API_LEAVE_GROUP] = kp_handle_leave_group,
    [KP_API_SYNC_GROUP] = kp_handle_sync_group,
    [KP_API_DESCRIBE_GROUPS] = kp_handle_describe_groups,
    [KP_API_LIST_GROUPS] = kp_handle_list_groups,
    [KP_API_API_VERSIONS] = kp_handle_api_versions,
    [KP_API_CREATE_TOPICS] = kp_handle_create_topics,
    [KP_API_DELETE_TOPICS] = kp_handle_delete_topics,
    [KP_API_DELETE_RECORDS] = kp_handle_delete_records,
    [KP_API_INIT_PRODUCER_ID] = kp_handle_init_producer_id,
    [KP_API_DESCRIBE_ACLS] = kp_handle_describe_acls,
    [KP_API_CREATE_ACLS] = kp_handle_create_acls,
    [KP_API_DELETE_ACLS] = kp_handle_delete_acls,
    [KP_API_DESCRIBE_CONFIGS] = kp_handle_describe_configs,
    [KP_API_ALTER_CONFIGS] = kp_handle_alter_configs,
    [KP_API_CREATE_PARTITIONS] = kp_handle_create_partitions,
    [KP_API_DELETE_GROUPS] = kp_handle_delete_groups,
    [KP_API_INCREMENTAL_ALTER_CONFIGS] = kp_handle_incremental_alter_configs,
    [KP_API_OFFSET_DELETE] = kp_handle_offset_delete,
    [KP_API_DESCRIBE_LOG_DIRS] = kp_handle_describe_log_dirs,
    [KP_API_OFFSET_FOR_LEADER_EPOCH] = kp_handle_offsets_for_leader_epoch,
    /* pool operations (handle_reassign.c) */
    [KP_API_ELECT_LEADERS] = kp_handle_elect_leaders,
    [KP_API_ALTER_PARTITION_REASSIGNMENTS] = kp_handle_alter_partition_reassignments,
    [KP_API_LIST_PARTITION_REASSIGNMENTS] = kp_handle_list_partition_reassignments,
    /* transactions (handle_txn.c) */
    [KP_API_ADD_PARTITIONS_TO_TXN] = kp_handle_add_partitions_to_txn,
    [KP_API_ADD_OFFSETS_TO_TXN] = kp_handle_add_offsets_to_txn,
    [KP_API_END_TXN] = kp_handle_end_txn,
    [KP_API_WRITE_TXN_MARKERS] = kp_handle_write_txn_markers,
    [KP_API_TXN_OFFSET_COMMIT] = kp_handle_txn_offset_commit,
    [KP_API_DESCRIBE_PRODUCERS] = kp_handle_describe_producers,
    [KP_API_DESCRIBE_TRANSACTIONS] = kp_handle_describe_transactions,
    [KP_API_LIST_TRANSACTIONS] = kp_handle_list_transactions,
};

static kp_api_t api_table[KP_API_DEFS_COUNT];
static int api_count = -1;
static const kp_api_t *api_by_key[KP_METRICS_API_MAX];

static void api_init(void)
{
    api_count = 0;
    for (int i = 0; i < KP_API_DEFS_COUNT; i++) {
        const kp_api_def_t *d = &kp_api_defs[i];
        if (d->key < 0 || d->key >= KP_METRICS_API_MAX || !handlers[d->key]) continue;
        kp_api_t *a = &api_table[api_count++];
        a->key = d->key;
        a->name = d->name;
        a->min_version = d->min_version;
        a->max_version = d->max_version;
        a->flexible_min = d->flexible_min;
        a->handler = handlers[d->key];
        api_by_key[a->key] = a;
    }
}

const kp_api_t *kp_api_table(int *count)
{
    if (api_count < 0) api_init();
    *count = api_count;
    return api_table;
}

const kp_api_t *kp_api_lookup(int16_t key)
{
    if (api_count < 0) api_init();
    return key >= 0 && key < KP_METRICS_API_MAX ? api_by_key[key] : NULL;
}

const char *kp_api_name(int key)
{
    for (int i = 0; i < KP_API_DEFS_COUNT; i++)
        if (kp_api_defs[i].key == key) return kp_api_defs[i].name;
    return "Unknown";
}

static int flexible(const kp_api_t *api, int16_t version)
{
    return api->flexible_min >= 0 && version >= api->flexible_min;
}

void kp_req_begin_response(kp_req_t *req)
{
    kp_wr_i32(&req->resp, 0); /* size, patched in kp_req_finish */
    kp_wr_i32(&req->resp, req->correlation_id);
    /* ApiVersions answers with header v0 always, so clients can read it before they know
     * which header versions we speak (KIP-511). */
    const kp_api_t *api = kp_api_lookup(req->api_key);
    if (api && req->api_key != KP_API_API_VERSIONS && flexible(api, req->api_version))
        kp_wr_uvarint(&req->resp, 0);
}

void *kp_req_alloc(kp_req_t *req, size_t n)
{
    return kp_arena_calloc(&req->arena, 1, n);
}

static void req_free(kp_req_t *req)
{
    kp_wr_free(&req->resp);
    kp_arena_free(&req->arena);
    kp_chunk_put(req->chunk);
    kp_conn_unref(req->sess->conn);
    free(req);
}

/* Sends every finished response at the head of the FIFO. */
static void session_drain(kp_session_t *s)
{
    while (s->head && s->head->done) {
        kp_req_t *req = s->head;
        s->head = req->next;
        if (!s->head) s->tail = NULL;
        s->inflight--;
        if (!s->closed && !req->no_response) {
            kp_wr_patch_i32(&req->resp, 0, (int32_t)(kp_wr_len(&req->resp) - 4));
            kp_conn_send(s->conn, &req->resp);
        }
        req_free(req);
    }
    if (!s->closed && s->conn->paused) kp_conn_resume(s->conn);
}

static void req_account(kp_req_t *req)
{
    if (req->api_key >= 0 && req->api_key < KP_METRICS_API_MAX) {
        kp_metric_add(&kp_metrics.requests[req->api_key], 1);
        kp_hist_observe_us(&kp_metrics.request_latency[req->api_key], kp_mono_us() - req->start_us);
    }
}

void kp_req_finish(kp_req_t *req)
{
    req->done = 1;
    req_account(req);
    session_drain(req->sess);
}

void kp_req_finish_silent(kp_req_t *req)
{
    req->no_response = 1;
    kp_req_finish(req);
}

/* Unsupported ApiVersions version: error 35 with the v0 body listing what we serve. */
static void api_versions_unsupported(kp_req_t *req)
{
    req->api_version = 0;
    kp_req_begin_response(req);
    kp_wr_i16(&req->resp, KERR_UNSUPPORTED_VERSION);
    int n;
    const kp_api_t *t = kp_api_table(&n);
    kp_wr_i32(&req->resp, n);
    for (int i = 0; i < n; i++) {
        kp_wr_i16(&req->resp, t[i].key);
        kp_wr_i16(&req->resp, t[i].min_version);
        kp_wr_i16(&req->resp, t[i].max_version);
    }
    kp_req_finish(req);
}

static int session_frame(kp_conn_t *c, kp_chunk_t *chunk, const uint8_t *frame, size_t len)
{
    kp_session_t *s = c->user;
    kp_rd_t rd;
    kp_rd_init(&rd, frame, len);
    int16_t key = kp_rd_i16(&rd);
    int16_t version = kp_rd_i16(&rd);
    int32_t corr = kp_rd_i32(&rd);
    if (rd.err) goto malformed;
    const kp_api_t *api = kp_api_lookup(key);
    if (!api) {
        kp_warn("request", "closing %s: unknown ApiKey %d", c->peer, key);
        goto malformed;
    }
    int unsupported = version < api->min_version || version > api->max_version;
    if (unsupported && key != KP_API_API_VERSIONS) {
        kp_warn("request", "closing %s: %s v%d is not supported (%d..%d)", c->peer, api->name,
                version, api->min_version, api->max_version);
        goto malformed;
    }
    kp_str_t client_id = kp_rd_string(&rd, 0, 1);
    if (!unsupported && flexible(api, version)) kp_rd_skip_tags(&rd);
    if (rd.err && !unsupported) goto malformed;

    kp_req_t *req = kp_xmalloc(sizeof(*req));
    memset(req, 0, offsetof(kp_req_t, arena));
    kp_arena_init(&req->arena, KP_REQUEST_ARENA_BYTES_MAX);
    kp_wr_init(&req->resp);
    req->done = 0;
    req->no_response = 0;
    req->next = NULL;
    req->sess = s;
    req->chunk = chunk;
    kp_chunk_get(chunk);
    kp_conn_ref(c);
    req->api_key = key;
    req->api_version = version;
    req->correlation_id = corr;
    req->client_id = client_id;
    req->body = rd;
    req->start_us = kp_mono_us();
    if (s->tail)
        s->tail->next = req;
    else
        s->head = req;
    s->tail = req;
    s->inflight++;

    if (unsupported) {
        api_versions_unsupported(req);
        return 0;
    }
    if (api->handler(req) < 0) {
        kp_warn("request", "closing %s: malformed %s v%d request", c->peer, api->name, version);
        kp_metric_add(&kp_metrics.malformed_requests, 1);
        /* the request stays in the FIFO, finished without response, and is freed below */
        req->done = 1;
        req->no_response = 1;
        return -1;
    }
    return 0;
malformed:
    kp_metric_add(&kp_metrics.malformed_requests, 1);
    return -1;
}

static int session_can_read(kp_conn_t *c)
{
    kp_session_t *s = c->user;
    return s->inflight < KP_CONN_INFLIGHT_MAX;
}

static void session_unlink(kp_session_t *s)
{
    if (s->ctx_prev)
        s->ctx_prev->ctx_next = s->ctx_next;
    else if (s->ctx->sessions == s)
        s->ctx->sessions = s->ctx_next;
    if (s->ctx_next) s->ctx_next->ctx_prev = s->ctx_prev;
    s->ctx_prev = s->ctx_next = NULL;
}

void kp_session_discard(kp_session_t *s)
{
    session_unlink(s);
    free(s);
}

static void session_close(kp_conn_t *c)
{
    kp_session_t *s = c->user;
    s->closed = 1;
    session_unlink(s);
    /* finished requests go now; pending ones are freed when their handler finishes them */
    session_drain(s);
}

/* TLS handshake done: the verified certificate's subject becomes the principal. */
static int session_ready(kp_conn_t *c)
{
    kp_session_t *s = c->user;
    X509 *cert = kp_tls_peer_cert(c);
    if (!cert) return 0; /* ssl.client.auth=requested/none without a certificate: anonymous */
    char dn[KP_PRINCIPAL_LEN_MAX - 16], name[KP_PRINCIPAL_LEN_MAX - 16];
    if (kp_cert_subject_rfc2253(cert, dn, sizeof(dn)) < 0) {
        kp_warn("auth", "refused %s: cannot read the certificate subject", c->peer);
        return -1;
    }
    if (kp_principal_rules_apply(s->broker->principal_rules, dn, name, sizeof(name)) < 0) {
        kp_warn("auth", "refused %s: no ssl.principal.mapping.rules rule matches '%s'", c->peer,
                dn);
        return -1;
    }
    snprintf(s->principal, sizeof(s->principal), "User:%s", name);
    kp_debug("auth", "%s authenticated as %s", c->peer, s->principal);
    return 0;
}

int kp_req_authorize(kp_req_t *req, int op, int type, kp_str_t name)
{
    kp_session_t *s = req->sess;
    return kp_authorize(s->broker->authorizer, s->principal, s->conn->peer_ip, op, type, name.ptr,
                        name.len > 0 ? (size_t)name.len : 0);
}

int kp_req_authorize_any(kp_req_t *req, int op, int type)
{
    kp_session_t *s = req->sess;
    return kp_authorize_any(s->broker->authorizer, s->principal, s->conn->peer_ip, op, type);
}

/* Responses still owed (a parked Fetch, a JoinGroup waiting for its group): not idle. */
static int session_busy(kp_conn_t *c)
{
    kp_session_t *s = c->user;
    return s->inflight > 0;
}

static void session_free(kp_conn_t *c)
{
    free(c->user);
}

const kp_conn_ops_t kp_session_ops = {
    .on_frame = session_frame,
    .can_read = session_can_read,
    .on_ready = session_ready,
    .on_close = session_close,
    .on_free = session_free,
    .busy = session_busy,
};

kp_session_t *kp_session_new(kp_broker_t *b, kp_loop_t *loop, const kp_listener_cfg_t *l)
{
    kp_session_t *s = kp_xcalloc(1, sizeof(*s));
    s->broker = b;
    s->loop = loop;
    s->listener = l;
    snprintf(s->principal, sizeof(s->principal), "%s", KP_PRINCIPAL_ANONYMOUS);
    s->ctx = kp_loop_ctx_of(b, loop);
    s->ctx_next = s->ctx->sessions;
    if (s->ctx_next) s->ctx_next->ctx_prev = s;
    s->ctx->sessions = s;
    return s;
}
