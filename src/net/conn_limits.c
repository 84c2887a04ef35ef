/*
 * conn_limits.c — max.connections and the per-address connection counts (see conn_limits.h):
 * the limits, the overrides parser, and the counts a listener takes at accept and a
 * connection gives back at close.
 */
#include "net/conn_limits.h"

#include "core/buf.h"
#include "core/hmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Limits shared by every listener and loop; atomics so that they can change at runtime. */
static atomic_llong connections_max = 10000;
static atomic_llong connections_max_per_ip = LLONG_MAX;

/* Open connections per peer address, and max.connections.per.ip.overrides, both keyed by
 * the address as inet_ntop prints it. Values are counts (overrides: limit + 1, so that a
 * limit of 0 is not NULL). Taken once per accept and once per close: never on the data
 * path. */
static pthread_mutex_t ip_lock = PTHREAD_MUTEX_INITIALIZER;
static kp_hmap_t ip_counts;
static kp_hmap_t ip_overrides;

void kp_connections_set_max(long long max)
{
    atomic_store(&connections_max, max);
}

long long kp_connections_max(void)
{
    return atomic_load(&connections_max);
}

/* "addr:N" with the address as a literal or a host name (every address it resolves to). */
static int override_add(kp_hmap_t *m, const char *item, char *err, size_t errlen)
{
    const char *colon = strrchr(item, ':');
    char host[256];
    if (!colon || colon == item || (size_t)(colon - item) >= sizeof(host)) goto bad;
    memcpy(host, item, (size_t)(colon - item));
    host[colon - item] = 0;
    char *end;
    errno = 0;
    long long n = strtoll(colon + 1, &end, 10);
    if (errno || *end || colon[1] == 0 || n < 0 || n > INT32_MAX) goto bad;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "max.connections.per.ip.overrides: cannot resolve '%s'", host);
        return -1;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *addr = a->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if (inet_ntop(a->ai_family, addr, ip, sizeof(ip)))
            kp_hmap_put(m, ip, strlen(ip), (void *)(uintptr_t)(n + 1));
    }
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, errlen, "max.connections.per.ip.overrides: '%s' is not host:count (count 0..%d)",
             item, INT32_MAX);
    return -1;
}

int kp_connections_set_per_ip(long long max, const char *overrides, char *err, size_t errlen)
{
    kp_hmap_t m;
    kp_hmap_init(&m);
    if (overrides) {
        char *copy = kp_xstrdup(overrides), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            size_t l = strlen(tok);
            while (l > 0 && tok[l - 1] == ' ') tok[--l] = 0;
            if (!*tok) continue;
            if (override_add(&m, tok, err, errlen) < 0) {
                free(copy);
                kp_hmap_free(&m);
                return -1;
            }
        }
        free(copy);
    }
    pthread_mutex_lock(&ip_lock);
    kp_hmap_t old = ip_overrides;
    ip_overrides = m;
    atomic_store(&connections_max_per_ip, max);
    pthread_mutex_unlock(&ip_lock);
    kp_hmap_free(&old);
    return 0;
}

int kp_connections_ip_acquire(const char *ip, long long *limit)
{
    size_t l = strlen(ip);
    pthread_mutex_lock(&ip_lock);
    uintptr_t o = (uintptr_t)kp_hmap_get(&ip_overrides, ip, l);
    *limit = o ? (long long)(o - 1) : atomic_load(&connections_max_per_ip);
    uintptr_t n = (uintptr_t)kp_hmap_get(&ip_counts, ip, l);
    int rc = -1;
    if ((long long)n < *limit) {
        kp_hmap_put(&ip_counts, ip, l, (void *)(n + 1));
        rc = 0;
    }
    pthread_mutex_unlock(&ip_lock);
    return rc;
}

void kp_connections_ip_release(const char *ip)
{
    size_t l = strlen(ip);
    pthread_mutex_lock(&ip_lock);
    uintptr_t n = (uintptr_t)kp_hmap_get(&ip_counts, ip, l);
    if (n <= 1)
        kp_hmap_del(&ip_counts, ip, l);
    else
        kp_hmap_put(&ip_counts, ip, l, (void *)(n - 1));
    pthread_mutex_unlock(&ip_lock);
}
