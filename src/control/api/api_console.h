/*
 * api_console.h — the API endpoints the web console needs beyond the resources (docs/api.md,
 * "Console"). api.c authenticates and hands the caller here; a team token reaches only its
 * own namespace (403 otherwise), exactly like the resources:
 *
 *   GET /apis/kpool.dev/v1/whoami                         {"admin": bool, "namespace": ns}
 *   GET /apis/kpool.dev/v1/namespaces/NS/topics/T/partitions      leader, ISR, offsets
 *   GET /apis/kpool.dev/v1/namespaces/NS/topics/T/consumergroups  committed offsets, lag
 *   GET /apis/kpool.dev/v1/namespaces/NS/topics/T/messages        the message browser:
 *        ?limit=N (1..500, default 20) [&partition=P] [&offset=O | &timestamp=MS]
 *   GET /apis/kpool.dev/v1/namespaces/NS/subjects                 schema subjects "NS.…"
 *        with their versions, read from the pools' `_schemas` (pool_registry.h)
 *   GET /apis/kpool.dev/v1/namespaces/NS/applications/A/doctor   `kpool doctor`'s findings
 *        [?connect=true: also what the pool says with the application's own credentials]
 *   GET /apis/kpool.dev/v1/pools/P/health                        brokers, partitions,
 *        under-replicated and offline ones (any valid token: teams may read Pools)
 *
 * T is the Topic resource's name in NS; its pool and fully qualified name come from the
 * store, so a team can only ever name its own topics. The pool is read with the control
 * plane's credentials (pool_browse.h). Errors are Kubernetes Status objects: 400 a bad
 * query, 403 another namespace, 404 no such Topic (or not in the pool yet), 503 the pool
 * did not answer.
 */
#ifndef KP_API_CONSOLE_H
#define KP_API_CONSOLE_H

#include "control/store.h"
#include "pki/pki.h"

#include <microhttpd.h>

/* Whether url is one of these endpoints. */
int kp_api_console_route(const char *url);

/* Answers an authenticated caller: admin, or a team token of namespace ns. Runs on an API
 * thread and blocks it while the pool answers. */
enum MHD_Result kp_api_console_handle(kp_store_t *store, const kp_pki_master_key_t *mk,
                                      struct MHD_Connection *conn, const char *url,
                                      const char *method, int admin, const char *ns);

/* Drops the answer kept for conn, if any: api.c calls it when a connection ends (a client
 * that went away while its answer was being computed). Any thread. */
void kp_api_console_forget(struct MHD_Connection *conn);

/* Waits until no console request is being computed (each one's connection resumed): api.c
 * calls it before stopping the daemon, which must not stop with suspended connections. */
void kp_api_console_drain(void);

#endif
