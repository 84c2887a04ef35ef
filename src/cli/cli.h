/* cli.h — the `kpool` subcommands; each takes argc/argv after the subcommand name and
 * returns the process exit code. */
#ifndef KP_CLI_H
#define KP_CLI_H

#include <stdio.h>

int kp_cmd_broker(int argc, char **argv);
int kp_cmd_up(int argc, char **argv);
int kp_cmd_bench(int argc, char **argv);
/* resource commands, clients of the control plane API (cmd_apply.c, cmd_get.c,
 * cmd_delete.c, cmd_team.c) */
int kp_cmd_apply(int argc, char **argv);
int kp_cmd_get(int argc, char **argv);
int kp_cmd_describe(int argc, char **argv);
int kp_cmd_delete(int argc, char **argv);
int kp_cmd_team(int argc, char **argv);
/* application-facing commands: an app's credentials by name (cmd_secret.c, cmd_run.c,
 * cmd_probe.c, cmd_doctor.c, cmd_produce.c, cmd_consume.c) */
int kp_cmd_secret(int argc, char **argv);
int kp_cmd_run(int argc, char **argv);
int kp_cmd_probe(int argc, char **argv);
int kp_cmd_doctor(int argc, char **argv);
int kp_cmd_produce(int argc, char **argv);
int kp_cmd_consume(int argc, char **argv);
/* kpool pool status|decommission|rebalance|elect-leaders (cmd_pool.c) */
int kp_cmd_pool(int argc, char **argv);
/* kpool backup create|list|restore (cmd_backup.c) */
int kp_cmd_backup(int argc, char **argv);
/* Hidden (not in --help): writes a test CA, certificates and PKCS#12 stores (cmd_pki.c). */
int kp_cmd_pki_selftest(int argc, char **argv);

/* Shared by broker, up, control and registry (cmd_broker.c). */
#include "cli/opts.h"
#include "core/props.h"
void kp_cli_signals_setup(void);
int kp_cli_log_level(const kp_props_t *props);

/* The options of the servers (broker, up, control, registry). */
typedef struct kp_daemon_opts {
    kp_props_t *props;    /* --config and --set, in order (a later one wins) */
    const char *data_dir; /* up, control: --data-dir */
    long port_offset;     /* up: --port-offset */
    long brokers;         /* up: --brokers (0: a standalone broker) */
    const char *pool;     /* up: --pool (NULL: dev) */
} kp_daemon_opts_t;
int kp_cli_opt_config(void *base, const kp_option_t *opt, const char *value, const char *cmd);
int kp_cli_opt_set(void *base, const kp_option_t *opt, const char *value, const char *cmd);
#define KP_DAEMON_OPT_CONFIG                                                                       \
    KP_OPT_CALLBACK('c', "config", "FILE", "Kafka-style properties file", kp_cli_opt_config)
#define KP_DAEMON_OPT_SET                                                                          \
    KP_OPT_CALLBACK(0, "set", "key=value", "one property; repeatable, overrides the file",         \
                    kp_cli_opt_set)
#define KP_DAEMON_OPT_DATA_DIR(dflt)                                                               \
    KP_OPT_STRING(0, "data-dir", kp_daemon_opts_t, data_dir, "DIR",                                \
                  "where the state lives [" dflt "]")
#define KP_DAEMON_OPT_PORT_OFFSET(h)                                                               \
    KP_OPT_INT(0, "port-offset", kp_daemon_opts_t, port_offset, "K", h, 0, 50000,                  \
               "--port-offset: '%s' is not a number in 0..50000")
/* Parses argv into o (o->props is created: free it in every case). 0, KP_OPTS_HELP (help
 * printed) or 2 (usage error printed). */
int kp_cli_daemon_parse(const kp_opts_cmd_t *cmd, kp_daemon_opts_t *o, int argc, char **argv);
int kp_cmd_control(int argc, char **argv);
/* The schema registry alone (cmd_registry.c). */
int kp_cmd_registry(int argc, char **argv);
/* `kpool version`, and the command table behind `kpool --help` (commands.c). */
int kp_cmd_version(int argc, char **argv);
typedef struct kp_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *summary;               /* for kpool --help; wrapped there */
    const kp_opts_cmd_t *opts;         /* its options and help */
    const char *section;               /* a heading before it in kpool --help, or NULL */
    int hidden;                        /* left out of kpool --help (test helpers) */
} kp_command_t;
extern const kp_command_t kp_commands[];
/* The `kpool` program: dispatch through kp_commands. Returns the exit code. */
int kp_cli_main(int argc, char **argv);
void kp_cli_usage(FILE *f);

/* Every command's table (in the command's file). */
extern const kp_opts_cmd_t kp_pool_cmd;
extern const kp_opts_cmd_t kp_broker_cmd, kp_up_cmd, kp_control_cmd, kp_registry_cmd, kp_bench_cmd,
    kp_apply_cmd, kp_get_cmd, kp_describe_cmd, kp_delete_cmd, kp_team_cmd, kp_secret_cmd,
    kp_run_cmd, kp_probe_cmd, kp_doctor_cmd, kp_produce_cmd, kp_consume_cmd, kp_backup_cmd,
    kp_pki_selftest_cmd, kp_version_cmd;

#endif
