/*
 * up.h — `kpool up`'s process, wired (see daemon.h): an embedded pool and the control plane
 * in one process, everything created on first start. cli/cmd_up.c parses the options into a
 * kp_daemon_up_config_t, prints the banner from kp_daemon_up_info_t and waits for a signal.
 *
 * kp_daemon_up_start, in this order: the data directory; kpool up's broker defaults and
 * listen addresses (a bad one is a configuration error); the PKI files; with --brokers N etcd
 * and broker 1's pool settings; broker 1 in this process (kp_daemon_broker_start); brokers
 * 2..N as child processes (up_pool.h); the control plane with its API and kubectl listener
 * (kp_daemon_control_start); the schema registry (its users from the control plane's store;
 * started once it has replayed `_schemas`); the Pool resource, the CLI configuration and the
 * kubeconfig; with --brokers N the control socket (up_ctl.h). kp_daemon_up_stop stops the
 * parts in the reverse order.
 *
 * Data directory layout (`--data-dir`, default ./kpool-data):
 *   pki/      ca.crt ca.key broker.crt broker.key admin.crt admin.key replica.crt
 *             replica.key (keys 0600), registry-admin.password (0600: the schema registry's
 *             admin password)
 *   broker/   the pool's log.dirs (broker 1's)
 *   control/  kpool.db (SQLite)
 *   backups/  the control plane's backups (unless control.backup.dir moves them)
 *   kubeconfig
 *   with --brokers N: etcd/, etcd.log, broker-K/ and broker-K.log (brokers 2..N), up.sock
 *
 * Threads: start and stop run on the main thread, which blocks SIGINT/SIGTERM before (the
 * parts' threads inherit the mask).
 */
#ifndef KP_DAEMON_UP_H
#define KP_DAEMON_UP_H

#include "core/props.h"
#include "daemon/up_pool.h" /* the default ports, KP_UP_BROKERS_MAX */

#include <limits.h>
#include <stddef.h>

typedef struct kp_daemon_up_config {
    const char *data_dir; /* created when missing */
    int port_offset;      /* added to every default port */
    int brokers;          /* 0: one broker; N (1..KP_UP_BROKERS_MAX): etcd and N brokers */
    const char *pool;     /* the Pool resource's name */
    /* Broker properties (Kafka names) and the control.* and registry.* settings; kpool up's
     * defaults are added to it. Borrowed: it must outlive kp_daemon_up_stop (a restart of
     * broker 1 reads it again). */
    kp_props_t *props;
} kp_daemon_up_config_t;

/* What the running parts use: every address as clients reach it, the files written. */
typedef struct kp_daemon_up_info {
    char data[PATH_MAX];              /* the data directory, absolute */
    char bootstrap[300];              /* the pool: every broker's SSL listener, advertised */
    char api[300];                    /* http://host:port of the control plane API */
    char registry[300];               /* https://host:port of the schema registry */
    char registry_password[PATH_MAX]; /* the file holding its admin's password */
    char metrics[320];                /* broker 1's http://host:port/metrics, or "off ..." */
    /* brokers 2..N's /metrics URLs, indexed by broker id; "" when broker 1's is off */
    char broker_metrics[KP_UP_BROKERS_MAX + 1][64];
    char cli_config[PATH_MAX]; /* the CLI configuration written ($KPOOL_CONFIG or ~/.config) */
    char kubeconfig[PATH_MAX]; /* "" when none was written (a warning was logged) */
} kp_daemon_up_info_t;

typedef struct kp_daemon_up kp_daemon_up_t;

/* Starts everything (see above) into *out. 0, or the exit status for the command (1: a part
 * could not start, 2: a configuration error) with err the message to print ("" when it was
 * printed already: kp_daemon_broker_start's); *out then holds the parts that did start,
 * still running, so that the message comes before their shutdown's log lines: stop it with
 * kp_daemon_up_stop after printing. */
int kp_daemon_up_start(const kp_daemon_up_config_t *cfg, kp_daemon_up_t **out, char *err,
                       size_t errlen);
const kp_daemon_up_info_t *kp_daemon_up_info(const kp_daemon_up_t *u);
/* Stops the parts in the reverse order — the control socket (a restart in progress
 * finishes), the registry, the control plane (API first), brokers 2..N (each a controlled
 * shutdown), broker 1 (then its admin endpoint), etcd — and frees u. NULL is ignored. */
void kp_daemon_up_stop(kp_daemon_up_t *u);

#endif
