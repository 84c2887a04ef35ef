/*
 * cmd_up.c — `kpool up` (an embedded pool and the control plane in one process, everything
 * created on first start) and `kpool control` (the control plane alone): their options,
 * help and banners, and the wait for SIGINT/SIGTERM. The parts are started and stopped by
 * daemon/ (up.h: `kpool up`'s sequence and data directory; daemon.h: the control plane).
 */
#include "cli/cli.h"
#include "control/control.h"
#include "core/logging.h"
#include "core/props.h"
#include "daemon/daemon.h"
#include "daemon/up.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_SETTINGS_HELP                                                                      \
    "  control.resync.interval.ms      [60000]  drift check and janitor period\n"                  \
    "  control.retry.max.ms            [30000]  longest backoff after a failed reconcile\n"        \
    "  control.cert.validity.days      [365]    client certificates\n"                             \
    "  control.cert.renew.before.days  [30]     reissue (same principal) when less is left\n"      \
    "  control.cert.key.type           [EC]     EC (P-256) or RSA (2048 bits)\n"                   \
    "  control.janitor.grace.ms        [600000] unused credentials live this long\n"               \
    "  control.backup.interval.ms      [10800000] backups of every pool (3 h; 0: on demand "       \
    "only)\n"                                                                                      \
    "  control.backup.dir              [<data dir>/backups]\n"                                     \
    "  control.backup.retention.count  [56]     backups kept per pool (0: no limit)\n"             \
    "  control.backup.retention.days   [7]      older backups are removed (0: no limit); the\n"    \
    "                                           newest good backup is always kept\n"               \
    "  control.backup.compression      [gzip]   gzip (.json.gz) or none (.json)\n"                 \
    "  control.console.metrics.interval.ms [10000] the console's pool history: each Pool's\n"      \
    "                                           spec.metricsUrl sampled this often (360 kept)\n"

#define UP_STR_(x) #x
#define UP_STR(x)  UP_STR_(x)

static const kp_option_t up_options[] = {
    KP_DAEMON_OPT_DATA_DIR("./kpool-data"),
    KP_DAEMON_OPT_PORT_OFFSET("add K to every default port (several pools on one host)"),
    KP_OPT_INT(0, "brokers", kp_daemon_opts_t, brokers, "N",
               "a replicated pool of N brokers with etcd (docs/replication.md)", 1, 9,
               "--brokers: '%s' is not a number in 1..9"),
    KP_OPT_STRING(0, "pool", kp_daemon_opts_t, pool, "NAME", "the Pool resource's name [dev]"),
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

/* clang-format cannot lay out string pieces made by a macro (UP_STR) */
// clang-format off
const kp_opts_cmd_t kp_up_cmd = {
    .name = "up",
    .usage =
        "up [--data-dir DIR] [--port-offset K] [--brokers N] [--pool NAME] [--set key=value]...",
    .description =
        "Runs an embedded pool (`dev`) and the control plane in one process. On first start\n"
        "it creates the pool CA, the broker and admin certificates, an admin token, and the\n"
        "CLI configuration ($KPOOL_CONFIG or ~/.config/kpool/config.yaml).\n"
        "\n"
        "--brokers N runs a replicated pool (docs/replication.md): etcd (127.0.0.1:2379+K,\n"
        "data in DIR/etcd) and N brokers, broker B on Kafka port 9093+K+10(B-1) and\n"
        "metrics port 9600+K+10(B-1) (broker 1 in this process, the others as children\n"
        "logging to DIR/broker-B.log). --pool names the Pool resource (default dev).\n"
        "\n"
        "Endpoints (K = --port-offset, default 0):\n"
        "  Kafka (TLS, client certificates required)  127.0.0.1:" UP_STR(KP_UP_PORT_KAFKA) "+K\n"
        "  control plane API                          http://127.0.0.1:" UP_STR(KP_UP_PORT_API) "+K\n"
        "  schema registry (HTTPS, basic auth)        https://127.0.0.1:" UP_STR(KP_UP_PORT_REGISTRY) "+K\n"
        "  broker health and metrics                  http://127.0.0.1:" UP_STR(KP_UP_PORT_METRICS) "+K/metrics\n"
        "  kubectl (HTTPS, the kubeconfig's token)    https://127.0.0.1:" UP_STR(KP_UP_PORT_KUBE) "+K\n"
        "\n"
        "--set passes broker properties (Kafka names, see `kpool broker --help`; `listeners`\n"
        "and `admin.listener` move the pool and the health endpoint) and the control\n"
        "plane's settings:\n"
        "  control.listener                [127.0.0.1:8080+K] the API (host:port)\n"
        "  control.kubernetes.listener     [127.0.0.1:6443+K] the API over HTTPS, for kubectl\n"
        "  registry.listener               [127.0.0.1:8081+K] the schema registry\n"
        CONTROL_SETTINGS_HELP
        "  registry.auth.cache.ms          [2000]   a revoked user is refused after this\n"
        "  registry.start.timeout.ms       [60000]  how long the registry may take to replay\n"
        "                                           `_schemas` before kpool up gives up\n"
        "The addresses printed once everything is up are the ones in use.\n",
    .options = up_options,
    .flags = KP_OPTS_NO_ARGS,
};
// clang-format on

static const kp_option_t control_options[] = {
    KP_DAEMON_OPT_DATA_DIR("./kpool-control"),
    KP_DAEMON_OPT_PORT_OFFSET("accepted as by kpool up; the control plane alone\n"
                              "takes its address from control.listener"),
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_control_cmd = {
    .name = "control",
    .usage = "control [--data-dir DIR] [--set key=value]...",
    .description =
        "Runs the control plane alone; pools are Pool resources (kpool apply -f pool.yaml)\n"
        "pointing at kpool brokers or Apache Kafka clusters. Settings:\n"
        "  control.listener             [127.0.0.1:8080] (TLS required elsewhere:\n"
        "  control.ssl.certificate.location / control.ssl.key.location)\n" CONTROL_SETTINGS_HELP
        "An admin token is printed on first start.\n",
    .options = control_options,
    .flags = KP_OPTS_NO_ARGS,
};

/* The banner: every address as the running servers use it. */
static void up_banner_print(const kp_daemon_up_info_t *a, const char *pool, int nbrokers)
{
    char label[160], more[1024];
    if (nbrokers > 1)
        snprintf(label, sizeof(label), "pool %s, %d brokers (Kafka, TLS + client certificates)",
                 pool, nbrokers);
    else
        snprintf(label, sizeof(label), "pool %s (Kafka, TLS + client certificates)", pool);
    /* brokers 2..N's /metrics, one line each */
    size_t used = 0;
    more[0] = 0;
    for (int k = 2; k <= nbrokers && k <= KP_UP_BROKERS_MAX; k++) {
        if (!a->broker_metrics[k][0]) continue;
        int w = snprintf(more + used, sizeof(more) - used, "    broker %-35d %s\n", k,
                         a->broker_metrics[k]);
        if (w > 0 && used + (size_t)w < sizeof(more)) used += (size_t)w;
    }
    printf(
        "kpool is up.\n"
        "  %-43s  %s\n"
        "  control plane API                            %s\n"
        "  schema registry (HTTPS, basic auth)          %s\n"
        "    admin user kpool-admin, password in        %s\n"
        "  broker health and metrics                    %s\n"
        "%s"
        "  data                                         %s\n"
        "  CLI configuration                            %s\n"
        "\n"
        "Next:\n"
        "  kpool apply -f examples/topic.yaml -f examples/app.yaml  # a topic, and an app using "
        "it\n"
        "  kpool get aivenapp -n myteam            # RolloutComplete: its credentials are ready\n"
        "  echo hello | kpool produce -n myteam --app ownerapp --topic myteam.mytopic\n"
        "\nCtrl-C stops everything.\n",
        label, a->bootstrap, a->api, a->registry, a->registry_password, a->metrics, more, a->data,
        a->cli_config);
    fflush(stdout);
}

int kp_cmd_up(int argc, char **argv)
{
    kp_daemon_opts_t o = {.data_dir = "./kpool-data"};
    int rc = kp_cli_daemon_parse(&kp_up_cmd, &o, argc, argv);
    kp_props_t *props = o.props;
    if (rc != 0) {
        kp_props_free(props);
        return rc == KP_OPTS_HELP ? 0 : rc;
    }
    if (kp_cli_log_level(props) < 0) {
        kp_props_free(props);
        return 2;
    }
    kp_cli_signals_setup();
    kp_daemon_up_config_t cfg = {.data_dir = o.data_dir,
                                 .port_offset = (int)o.port_offset,
                                 .brokers = (int)o.brokers,
                                 .pool = o.pool && o.pool[0] ? o.pool : "dev",
                                 .props = props};
    char err[PATH_MAX + 2048];
    kp_daemon_up_t *u = NULL;
    rc = kp_daemon_up_start(&cfg, &u, err, sizeof(err));
    if (rc != 0) {
        if (err[0]) fprintf(stderr, "kpool: %s\n", err);
        kp_daemon_up_stop(u); /* what did start, after the message */
        kp_props_free(props);
        return rc;
    }
    const kp_daemon_up_info_t *info = kp_daemon_up_info(u);
    up_banner_print(info, cfg.pool, cfg.brokers);
    if (info->kubeconfig[0])
        printf("\nkubectl (docs/kubectl.md):\n  export KUBECONFIG=%s\n", info->kubeconfig);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    kp_info("up", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kp_daemon_up_stop(u);
    kp_props_free(props);
    return 0;
}

int kp_cmd_control(int argc, char **argv)
{
    kp_daemon_opts_t o = {.data_dir = "./kpool-control"};
    int rc = kp_cli_daemon_parse(&kp_control_cmd, &o, argc, argv);
    kp_props_t *props = o.props;
    const char *data_dir = o.data_dir;
    if (rc != 0) {
        kp_props_free(props);
        return rc == KP_OPTS_HELP ? 0 : rc;
    }
    kp_cli_signals_setup();
    char err[1024];
    kp_control_config_t cc = {.state_dir = data_dir};
    kp_daemon_api_config_t ac = {
        .listen = kp_props_get_str(props, "control.listener", "127.0.0.1:8080"),
        .api_cert = kp_props_get(props, "control.ssl.certificate.location"),
        .api_key = kp_props_get(props, "control.ssl.key.location")};
    kp_daemon_control_t *c = NULL;
    if (kp_daemon_control_settings(props, &cc, err, sizeof(err)) == 0)
        c = kp_daemon_control_start(&cc, &ac, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kpool: cannot start the control plane: %s\n", err);
        kp_props_free(props);
        return 1;
    }
    char token[65];
    if (kp_daemon_control_first_token(c, token) == 1) {
        printf("admin token (shown once): %s\n", token);
        explicit_bzero(token, sizeof(token));
    }
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
    kp_daemon_control_stop(c);
    kp_props_free(props);
    return 0;
}
