/*
 * loop_ctx.c — the broker's per-network-loop context (loop_ctx.h): created and freed with the
 * broker's loops, found by loop id, and shut down on its own thread. The parked-fetch list it
 * holds is managed by the Fetch handler (handle_fetch.c); the session list by request.c.
 */
#include "broker/loop_ctx.h"

#include "core/buf.h"
#include "broker/request.h"
#include "net/conn.h"
#include "net/loop.h"

#include <stdlib.h>

kp_loop_ctx_t *kp_loop_ctx_new(kp_broker_t *b, kp_loop_t *loop)
{
    kp_loop_ctx_t *ctx = kp_xcalloc(1, sizeof(*ctx));
    ctx->broker = b;
    ctx->loop = loop;
    return ctx;
}

void kp_loop_ctx_free(kp_loop_ctx_t *ctx)
{
    free(ctx);
}

kp_loop_ctx_t *kp_loop_ctx_of(kp_broker_t *b, kp_loop_t *loop)
{
    return b->loop_ctx[kp_loop_id(loop)];
}

void kp_loop_ctx_shutdown(kp_loop_t *loop, void *arg)
{
    kp_loop_ctx_t *ctx = arg;
    kp_fetch_wait_flush_all(ctx);
    while (ctx->sessions) kp_conn_close(ctx->sessions->conn, "broker shutting down");
    kp_loop_stop(loop);
}
