/* up_pool.h — the child processes of `kpool up --brokers N` (see up_pool.c). */
#ifndef KP_UP_POOL_H
#define KP_UP_POOL_H

#include "core/props.h"

#include <stddef.h>

/* The default ports; --port-offset K adds K to each. */
#define KP_UP_PORT_KAFKA    9093
#define KP_UP_PORT_API      8080
#define KP_UP_PORT_REGISTRY 8081
#define KP_UP_PORT_METRICS  9600
#define KP_UP_PORT_KUBE     6443 /* the control plane API over HTTPS, for kubectl */

/* The most brokers a replicated dev pool runs (the children are 2..N). */
#define KP_UP_BROKERS_MAX 16

typedef struct kp_up_pool kp_up_pool_t;

kp_up_pool_t *kp_up_pool_new(void);
/* Starts etcd with its data under abs/etcd and waits until it answers; endpoint gets its
 * client URL. -1 with err. */
int kp_up_pool_etcd(kp_up_pool_t *up, const char *abs, int offset, char *endpoint, size_t n,
                    char *err, size_t errlen);
/* Starts brokers 2..n with props (broker 1's, with their own id, ports and data directory)
 * and waits for their Kafka ports; bootstrap gets every broker's address. -1 with err. */
int kp_up_pool_brokers(kp_up_pool_t *up, const char *abs, int offset, int n,
                       const kp_props_t *props, char *bootstrap, size_t blen, char *err,
                       size_t errlen);
/* Broker k's (2..n) admin.listener port (127.0.0.1): /livez, /readyz, /metrics. */
int kp_up_pool_admin_port(int offset, int k);
/* Restarts child broker k (2..n): SIGTERM (a controlled shutdown; SIGKILL after 60 s), the
 * same command again (the kpool executable at the same path: a new one is an upgrade), and
 * waits until its health port answers. 0, or -1 with err. Not thread-safe with the others. */
int kp_up_pool_restart(kp_up_pool_t *up, int k, char *err, size_t errlen);
/* Whether child broker k (2..n) runs and its /readyz answers 200 (it is in the ISR of every
 * partition it follows). */
int kp_up_pool_ready(kp_up_pool_t *up, int k);
/* SIGTERM to brokers 2..n (controlled shutdown), waiting for them. */
void kp_up_pool_stop_brokers(kp_up_pool_t *up);
/* Stops whatever still runs (brokers, then etcd) and frees. */
void kp_up_pool_free(kp_up_pool_t *up);

#endif
