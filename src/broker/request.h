/*
 * request.h — a Kafka request from frame to response, and the per-connection session that
 * keeps responses in request order.
 *
 * Life of a request (all on the connection's loop thread):
 *   frame → kp_req_t (header parsed, body a checked reader over the frame, borrowed from the
 *   receive chunk) → handler → kp_req_begin_response / encode / kp_req_finish → the session
 *   sends every finished response at the head of its FIFO.
 * A handler that must wait (acks=1/all flush, Fetch long poll) returns without finishing and
 * calls kp_req_finish later on the same loop. A request holds a reference on its connection,
 * so the connection's memory outlives a close until the request is done.
 */
#ifndef KP_REQUEST_H
#define KP_REQUEST_H

#include "auth/principal.h"
#include "broker/broker.h"
#include "core/arena.h"
#include "net/conn.h"
#include "protocol/errors.h"
#include "protocol/wire.h"

typedef struct kp_session kp_session_t;
typedef struct kp_req kp_req_t;

struct kp_req {
    kp_session_t *sess;
    kp_chunk_t *chunk;
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kp_str_t client_id;
    kp_rd_t body;
    kp_arena_t arena;
    kp_wr_t resp;
    int done;
    int no_response;
    int64_t start_us;
    kp_req_t *next;
};

struct kp_session {
    kp_broker_t *broker;
    kp_loop_ctx_t *ctx;
    kp_session_t *ctx_prev, *ctx_next; /* the loop's open sessions */
    kp_conn_t *conn;
    kp_loop_t *loop;
    const kp_listener_cfg_t *listener;
    kp_req_t *head, *tail;
    int inflight;
    int closed;
    char principal[KP_PRINCIPAL_LEN_MAX]; /* "User:ANONYMOUS" until TLS says otherwise */
};

typedef int (*kp_handler_fn)(kp_req_t *req);

/* Starts the response: size placeholder, correlation id, header tagged fields if flexible. */
void kp_req_begin_response(kp_req_t *req);
/* Marks the response complete and sends what is ready at the head of the session. The
 * request may be freed before this returns. */
void kp_req_finish(kp_req_t *req);
/* Completes a request that has no response (Produce with acks=0). */
void kp_req_finish_silent(kp_req_t *req);
/* Allocation from the request arena that aborts the request on exhaustion: handlers check
 * for NULL and return -1 (closing the connection as for a malformed request). */
void *kp_req_alloc(kp_req_t *req, size_t n);

/* Authorization of the request's principal (from its connection) for op on a resource;
 * 1 allowed. Thread-safe: the group coordinator calls it too. */
int kp_req_authorize(kp_req_t *req, int op, int resource_type, kp_str_t name);
int kp_req_authorize_any(kp_req_t *req, int op, int resource_type);

/* Per-API handlers; each returns 0, or -1 for a malformed request (connection closed). */
int kp_handle_api_versions(kp_req_t *req);
int kp_handle_metadata(kp_req_t *req);
int kp_handle_produce(kp_req_t *req);
int kp_handle_fetch(kp_req_t *req);
int kp_handle_list_offsets(kp_req_t *req);
int kp_handle_create_topics(kp_req_t *req);
int kp_handle_delete_topics(kp_req_t *req);
int kp_handle_init_producer_id(kp_req_t *req);
int kp_handle_find_coordinator(kp_req_t *req);
int kp_handle_join_group(kp_req_t *req);
int kp_handle_sync_group(kp_req_t *req);
int kp_handle_heartbeat(kp_req_t *req);
int kp_handle_leave_group(kp_req_t *req);
int kp_handle_offset_commit(kp_req_t *req);
int kp_handle_offset_fetch(kp_req_t *req);
int kp_handle_list_groups(kp_req_t *req);
int kp_handle_describe_groups(kp_req_t *req);
int kp_handle_delete_groups(kp_req_t *req);
int kp_handle_offset_delete(kp_req_t *req);
int kp_handle_describe_log_dirs(kp_req_t *req);
int kp_handle_describe_acls(kp_req_t *req);
int kp_handle_describe_configs(kp_req_t *req);
int kp_handle_alter_configs(kp_req_t *req);
int kp_handle_incremental_alter_configs(kp_req_t *req);
int kp_handle_create_partitions(kp_req_t *req);
int kp_handle_delete_records(kp_req_t *req);
int kp_handle_offsets_for_leader_epoch(kp_req_t *req);
/* handle_reassign.c: KIP-455 partition reassignments */
int kp_handle_alter_partition_reassignments(kp_req_t *req);
int kp_handle_list_partition_reassignments(kp_req_t *req);
int kp_handle_elect_leaders(kp_req_t *req);
int kp_handle_create_acls(kp_req_t *req);
int kp_handle_delete_acls(kp_req_t *req);
/* handle_txn.c */
int kp_handle_add_partitions_to_txn(kp_req_t *req);
int kp_handle_add_offsets_to_txn(kp_req_t *req);
int kp_handle_end_txn(kp_req_t *req);
int kp_handle_write_txn_markers(kp_req_t *req);
int kp_handle_txn_offset_commit(kp_req_t *req);
int kp_handle_describe_producers(kp_req_t *req);
int kp_handle_describe_transactions(kp_req_t *req);
int kp_handle_list_transactions(kp_req_t *req);
struct InitProducerIdRequest;
int kp_handle_init_producer_id_txn(kp_req_t *req, struct InitProducerIdRequest *in);
/* The group coordinator's view of req (group/coordinator.h kp_group_call_t: its caller, the
 * ACL decisions, and a done callback that encodes the typed result and finishes req on its
 * loop), in req's arena; NULL when the arena is exhausted. handle_group.c; TxnOffsetCommit
 * (handle_txn.c) uses it too. */
struct kp_group_call;
struct kp_group_call *kp_req_group_call(kp_req_t *req);

/* The dispatch table entry for an ApiKey (NULL when not served). */
typedef struct kp_api {
    int16_t key;
    const char *name;
    int16_t min_version, max_version, flexible_min;
    kp_handler_fn handler;
} kp_api_t;
const kp_api_t *kp_api_lookup(int16_t key);
const kp_api_t *kp_api_table(int *count);
const char *kp_api_name(int key);

/* Session callbacks for connections (server.c wires them to kp_conn_ops_t). */
extern const kp_conn_ops_t kp_session_ops;
kp_session_t *kp_session_new(kp_broker_t *b, kp_loop_t *loop, const kp_listener_cfg_t *l);
/* Frees a session whose connection could not be created. */
void kp_session_discard(kp_session_t *s);

#endif
