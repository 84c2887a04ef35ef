/*
 * loop_ctx.c — the broker's per-network-loop context (loop_ctx.h): created and freed with the
 * broker's loops and found by loop id. The parked-fetch list it holds is managed by the Fetch
 * handler (handle_fetch.c), the session list by request.c; server.c's loop_shutdown empties
 * both when the broker stops.
 */
#include "broker/loop_ctx.h"

#include "core/buf.h"
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
