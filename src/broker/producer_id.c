/*
 * producer_id.c — producer ids: the allocator and InitProducerId for idempotent producers
 * (transactional ones go to the transaction coordinator: handle_txn.c, which also takes its
 * ids from here).
 *
 * Ids are handed out from blocks of PID_BLOCK reserved before any id of the block is used,
 * so a restart never hands out an id twice: standalone, the block's end is written to
 * <log.dir>/meta/cluster.json (kp_broker_save_meta) first; in a replicated pool the blocks
 * are cluster-wide, reserved in the metadata store (one round trip per block). Thread-safe:
 * b->pid_lock.
 */
#include "auth/acl.h"
#include "broker/broker.h"
#include "broker/request.h"
#include "cluster/member.h"
#include "core/logging.h"
#include "kp_msgs.h"

#include <errno.h>
#include <string.h>

#define PID_BLOCK 1000

int64_t kp_broker_next_producer_id(kp_broker_t *b)
{
    pthread_mutex_lock(&b->pid_lock);
    if (b->member && b->pid_next >= b->pid_block_end) {
        /* a pool: blocks are cluster-wide, reserved in the metadata store (one round trip
         * per PID_BLOCK ids) */
        int64_t first;
        char err[512];
        if (kp_meta_producer_ids_alloc(kp_member_store(b->member), PID_BLOCK, &first, err,
                                       sizeof(err)) != 0) {
            pthread_mutex_unlock(&b->pid_lock);
            kp_error("broker", "cannot reserve producer ids: %s", err);
            return -1;
        }
        b->pid_next = first;
        b->pid_block_end = first + PID_BLOCK;
    } else if (b->pid_next >= b->pid_block_end) {
        /* reserve the next block durably before handing out any id from it, so a restart can
         * never give out an id twice */
        int64_t end = b->pid_block_end + PID_BLOCK;
        if (kp_broker_save_meta(b, end) < 0) {
            pthread_mutex_unlock(&b->pid_lock);
            kp_error("broker", "cannot persist producer id block: %s", strerror(errno));
            return -1;
        }
        b->pid_block_end = end;
    }
    int64_t id = b->pid_next++;
    pthread_mutex_unlock(&b->pid_lock);
    return id;
}

/* ---- InitProducerId ---- */

int kp_handle_init_producer_id(kp_req_t *req)
{
    InitProducerIdRequest in;
    if (InitProducerIdRequest_decode(&req->body, req->api_version, &req->arena, &in) < 0) return -1;
    if (in.TransactionalId.len >= 0) { /* transactional: the coordinator (handle_txn.c) */
        InitProducerIdRequest *copy = kp_req_alloc(req, sizeof(*copy));
        if (!copy) return -1;
        *copy = in;
        return kp_handle_init_producer_id_txn(req, copy);
    }
    InitProducerIdResponse out;
    InitProducerIdResponse_init(&out);
    if (!kp_req_authorize(req, KP_OP_IDEMPOTENT_WRITE, KP_RES_CLUSTER,
                          KP_STR_LIT(KP_CLUSTER_RESOURCE)) &&
        !kp_req_authorize_any(req, KP_OP_WRITE, KP_RES_TOPIC)) {
        out.ErrorCode = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if ((in.ProducerId == -1) != (in.ProducerEpoch == -1)) { /* v3+: both or neither */
        out.ErrorCode = KERR_INVALID_REQUEST;
    } else { /* as Kafka: without a transactional id, a new producer id whatever was given */
        int64_t id = kp_broker_next_producer_id(req->sess->broker);
        if (id < 0) {
            out.ErrorCode = KERR_KAFKA_STORAGE_ERROR;
        } else {
            out.ProducerId = id;
            out.ProducerEpoch = 0;
        }
    }
    kp_req_begin_response(req);
    InitProducerIdResponse_encode(&req->resp, req->api_version, &out);
    kp_req_finish(req);
    return 0;
}
