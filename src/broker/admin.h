/*
 * admin.h — the broker's health and metrics HTTP endpoint (admin.listener, default
 * 127.0.0.1:9600): /livez (process up), /readyz (serving Kafka requests), /metrics
 * (Prometheus text). Served by libmicrohttpd on its own thread, off the data path.
 */
#ifndef KP_ADMIN_HTTP_H
#define KP_ADMIN_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct kp_admin_http kp_admin_http_t;

kp_admin_http_t *kp_admin_http_start(const char *hostport, atomic_int *ready,
                                     const char *(*api_name)(int key), char *err, size_t errlen);
void kp_admin_http_stop(kp_admin_http_t *h);

#endif
