/*
 * cmd_broker.c — `kpool broker` and (until the control plane lands) `kpool up`.
 */
#include "broker/broker.h"
#include "cli/cli.h"
#include "core/logging.h"
#include "core/props.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void broker_usage(FILE *f)
{
    fprintf(f,
            "Usage: kpool broker [--config FILE] [--set key=value]...\n"
            "\n"
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
            "  num.network.threads        [number of CPUs]\n"
            "  log.flush.threads          [2]\n"
            "  admin.listener             [127.0.0.1:9600] /livez /readyz /metrics\n"
            "  log.level                  [info] debug, info, warn or error\n");
}

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

kp_broker_t *kp_cli_broker_start(kp_props_t *props, int authorizer_default)
{
    char err[1024];
    kp_broker_config_t cfg;
    if (kp_broker_config_load(&cfg, props, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool: configuration error: %s\n", err);
        return NULL;
    }
    cfg.authorizer_enabled_default = authorizer_default;
    kp_broker_t *b = kp_broker_new(&cfg, err, sizeof(err));
    if (!b) {
        fprintf(stderr, "kpool: cannot start broker: %s\n", err);
        return NULL;
    }
    if (kp_broker_start(b) < 0) {
        fprintf(stderr, "kpool: cannot start the broker (see the log above)\n");
        kp_broker_free(b);
        return NULL;
    }
    return b;
}

static int run_broker(kp_props_t *props)
{
    if (kp_cli_log_level(props) < 0) return 2;
    kp_cli_signals_setup();
    kp_broker_t *b = kp_cli_broker_start(props, 0);
    if (!b) return 1;
    kp_broker_run_until_signal(b);
    kp_broker_free(b);
    return 0;
}

/* Parses --config/--set into props; returns -1 on bad usage, 1 after --help. */
int kp_cli_parse_common(int argc, char **argv, kp_props_t *props, int allow_up_flags,
                        const char **data_dir, int *port_offset)
{
    char err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if ((!strcmp(a, "--config") || !strcmp(a, "-c")) && i + 1 < argc) {
            if (kp_props_load_file(props, argv[++i], err, sizeof(err)) < 0) {
                fprintf(stderr, "kpool: %s\n", err);
                return -1;
            }
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            if (kp_props_set_kv(props, argv[++i], err, sizeof(err)) < 0) {
                fprintf(stderr, "kpool: %s\n", err);
                return -1;
            }
        } else if (allow_up_flags && !strcmp(a, "--data-dir") && i + 1 < argc) {
            *data_dir = argv[++i];
        } else if (allow_up_flags && !strcmp(a, "--port-offset") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 50000) {
                fprintf(stderr, "kpool: --port-offset: '%s' is not a number in 0..50000\n",
                        argv[i]);
                return -1;
            }
            *port_offset = (int)v;
        } else {
            fprintf(stderr, "kpool: unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
    }
    return 0;
}

int kp_cmd_broker(int argc, char **argv)
{
    kp_props_t *props = kp_props_new();
    int rc = kp_cli_parse_common(argc, argv, props, 0, NULL, NULL);
    if (rc == 1) broker_usage(stdout);
    if (rc < 0) broker_usage(stderr);
    if (rc == 0)
        rc = run_broker(props);
    else
        rc = rc == 1 ? 0 : 2;
    kp_props_free(props);
    return rc;
}
