/*
 * cmd_broker.c — `kpool broker` and (until the control plane lands) `kpool up`.
 */
#include "cli/cli.h"
#include "daemon/daemon.h"
#include "core/logging.h"
#include "core/props.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kp_option_t broker_options[] = {
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_broker_cmd = {
    .name = "broker",
    .usage = "broker [--config FILE] [--set key=value]...",
    .description =
        "Runs one pool broker. Configuration uses Kafka's property names; --set overrides\n"
        "the file. The main ones (defaults in brackets):\n"
        "  listeners                  [PLAINTEXT://127.0.0.1:9092]\n"
        "  advertised.listeners       [the listeners]\n"
        "  log.dirs                   [./kpool-data]\n"
        "  node.id                    [1]\n"
        "  num.partitions             [1]\n"
        "  auto.create.topics.enable  [false]\n"
        "  log.flush.policy           [durable] durable: acks=all is answered after fsync\n"
        "                             and consumers only see fsynced data; pagecache: Kafka's\n"
        "                             default behaviour (no fsync before the ack)\n"
        "  log.segment.bytes          [1073741824]\n"
        "  log.roll.ms                [604800000]\n"
        "  message.max.bytes          [1048588]\n"
        "  socket.request.max.bytes   [104857600]\n"
        "  max.connections            [10000]\n"
        "  max.connections.per.ip     [2147483647] exceptions:\n"
        "                             max.connections.per.ip.overrides (host:count,...)\n"
        "  connections.max.idle.ms    [600000] close a connection silent this long\n"
        "  connections.setup.timeout.ms  [10000] close one without a first request\n"
        "                             (TLS handshake included) by then\n"
        "  num.network.threads        [number of CPUs]\n"
        "  log.flush.threads          [2]\n"
        "  admin.listener             [127.0.0.1:9600] /livez /readyz /metrics\n"
        "  log.level                  [info] debug, info, warn or error\n",
    .options = broker_options,
    .flags = KP_OPTS_NO_ARGS,
};

void kp_cli_signals_setup(void)
{
    /* SIGINT/SIGTERM are taken by sigwait in the main thread, so block them before any
     * thread starts; a peer closing a socket must not kill us */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int kp_cli_log_level(const kp_props_t *props)
{
    const char *lvl = kp_props_get(props, "log.level");
    kp_loglevel_t level;
    if (!lvl) return 0;
    if (kp_logging_level_parse(lvl, &level) < 0) {
        fprintf(stderr, "kpool: log.level: '%s' is not debug, info, warn or error\n", lvl);
        return -1;
    }
    kp_logging_set_level(level);
    return 0;
}

static int run_broker(kp_props_t *props)
{
    if (kp_cli_log_level(props) < 0) return 2;
    kp_cli_signals_setup();
    kp_daemon_broker_t *d = kp_daemon_broker_start(props, 0);
    if (!d) return 1;
    kp_broker_run_until_signal(d->broker);
    kp_daemon_broker_stop(d);
    return 0;
}

int kp_cli_opt_config(void *base, const kp_option_t *opt, const char *value, const char *cmd)
{
    (void)opt, (void)cmd;
    char err[512];
    if (kp_props_load_file(((kp_daemon_opts_t *)base)->props, value, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: %s\n", err);
        return KP_OPTS_EXIT_USAGE;
    }
    return 0;
}

int kp_cli_opt_set(void *base, const kp_option_t *opt, const char *value, const char *cmd)
{
    (void)opt, (void)cmd;
    char err[512];
    if (kp_props_set_kv(((kp_daemon_opts_t *)base)->props, value, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: %s\n", err);
        return KP_OPTS_EXIT_USAGE;
    }
    return 0;
}

int kp_cli_daemon_parse(const kp_opts_cmd_t *cmd, kp_daemon_opts_t *o, int argc, char **argv)
{
    o->props = kp_props_new();
    return kp_opts_parse(cmd, o, argc, argv, NULL, NULL);
}

int kp_cmd_broker(int argc, char **argv)
{
    kp_daemon_opts_t o = {0};
    int rc = kp_cli_daemon_parse(&kp_broker_cmd, &o, argc, argv);
    if (rc == 0) rc = run_broker(o.props);
    kp_props_free(o.props);
    return rc == KP_OPTS_HELP ? 0 : rc;
}
