/*
 * cmd_registry.c — `kpool registry`: a pool's schema registry alone (for operators who run
 * pools and the control plane separately). Configuration is Kafka-style properties
 * (--config FILE, --set key=value); the registry reaches `_schemas` with the Kafka client
 * settings (bootstrap.servers, ssl.*) and, when given the control plane's SQLite store,
 * accepts that pool's service users.
 */
#include "cli/cli.h"
#include "core/logging.h"
#include "core/props.h"
#include "daemon/daemon.h"
#include "registry/registry.h"
#include "core/fs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kp_option_t registry_options[] = {
    KP_DAEMON_OPT_CONFIG,
    KP_DAEMON_OPT_SET,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_registry_cmd = {
    .name = "registry",
    .usage = "registry [--config FILE] [--set key=value]...",
    .description =
        "Runs the schema registry of one pool (docs/registry.md). `kpool up` runs one for\n"
        "its pool already; this is for pools run separately. Settings:\n"
        "  bootstrap.servers                  the pool (required)\n"
        "  ssl.ca.location, ssl.certificate.location, ssl.key.location\n"
        "                                     TLS client settings for the pool (a super user)\n"
        "  registry.listener                  [127.0.0.1:8081]\n"
        "  registry.ssl.certificate.location  HTTPS certificate (chain) and key, PEM\n"
        "  registry.ssl.key.location          (required)\n"
        "  registry.admin.password.file       the admin's password, user kpool-admin (required)\n"
        "  registry.pool                      [dev] whose service users are accepted\n"
        "  registry.store.path                the control plane's kpool.db (service users);\n"
        "                                     unset: the admin only\n"
        "  registry.topic                     [_schemas]\n"
        "  registry.topic.replication         [-1] when the topic is created (-1: pool default)\n"
        "  registry.auth.cache.ms             [2000] a revoked user is refused after this\n",
    .options = registry_options,
    .flags = KP_OPTS_NO_ARGS,
};

int kp_cmd_registry(int argc, char **argv)
{
    kp_daemon_opts_t o = {0};
    int rc = kp_cli_daemon_parse(&kp_registry_cmd, &o, argc, argv);
    kp_props_t *props = o.props;
    if (rc != 0) {
        kp_props_free(props);
        return rc == KP_OPTS_HELP ? 0 : rc;
    }
    if (kp_cli_log_level(props) < 0) {
        kp_props_free(props);
        return 2;
    }
    char err[1024];
    int64_t cache_ms, repl;
    const char *bootstrap = kp_props_get(props, "bootstrap.servers");
    const char *pwfile = kp_props_get(props, "registry.admin.password.file");
    const char *storepath = kp_props_get(props, "registry.store.path");
    if (!bootstrap || !pwfile) {
        fprintf(
            stderr,
            "kpool registry: bootstrap.servers and registry.admin.password.file are required\n");
        kp_props_free(props);
        return 2;
    }
    if (kp_props_get_i64(props, "registry.auth.cache.ms", 2000, 1, 600000, &cache_ms, err,
                         sizeof(err)) < 0 ||
        kp_props_get_i64(props, "registry.topic.replication", -1, -1, 32767, &repl, err,
                         sizeof(err)) < 0) {
        fprintf(stderr, "kpool registry: %s\n", err);
        kp_props_free(props);
        return 2;
    }
    uint8_t *pw;
    size_t len;
    if (kp_fs_read_all(pwfile, 4096, &pw, &len) < 0) {
        fprintf(stderr, "kpool registry: cannot read %s\n", pwfile);
        kp_props_free(props);
        return 1;
    }
    while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r')) pw[--len] = 0;
    kp_cli_signals_setup();
    kp_registry_config_t rcfg = {
        .listen = kp_props_get_str(props, "registry.listener", "127.0.0.1:8081"),
        .cert_path = kp_props_get(props, "registry.ssl.certificate.location"),
        .key_path = kp_props_get(props, "registry.ssl.key.location"),
        .pool = kp_props_get_str(props, "registry.pool", "dev"),
        .admin_password = (const char *)pw,
        .auth_cache_ms = (int)cache_ms,
        .log = {.bootstrap = bootstrap,
                .ca_path = kp_props_get(props, "ssl.ca.location"),
                .cert_path = kp_props_get(props, "ssl.certificate.location"),
                .key_path = kp_props_get(props, "ssl.key.location"),
                .topic = kp_props_get_str(props, "registry.topic", "_schemas"),
                .replication = (int)repl}};
    kp_daemon_registry_t *r = kp_daemon_registry_start(&rcfg, storepath, err, sizeof(err));
    memset(pw, 0, len);
    free(pw);
    if (!r) {
        fprintf(stderr, "kpool registry: %s\n", err);
        kp_props_free(props);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
    kp_info("registry", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kp_daemon_registry_stop(r);
    kp_props_free(props);
    return 0;
}
