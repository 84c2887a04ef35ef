/* cli.h — the `kpool` subcommands; each takes argc/argv after the subcommand name and
 * returns the process exit code. */
#ifndef KP_CLI_H
#define KP_CLI_H

int kp_cmd_broker(int argc, char **argv);
int kp_cmd_up(int argc, char **argv);
int kp_cmd_bench(int argc, char **argv);
/* resource commands, clients of the control plane API (cmd_resources.c) */
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
/* kpool backup create|list|restore (cmd_backup.c) */
int kp_cmd_backup(int argc, char **argv);
/* Hidden (not in --help): writes a test CA, certificates and PKCS#12 stores (cmd_pki.c). */
int kp_cmd_pki_selftest(int argc, char **argv);

/* Shared by broker, up and control (cmd_broker.c). */
#include "broker/broker.h"
void kp_cli_signals_setup(void);
int kp_cli_log_level(const kp_props_t *props);
kp_broker_t *kp_cli_broker_start(kp_props_t *props, int authorizer_default);
/* --config/--set (and with allow_up_flags --data-dir/--port-offset); -1 usage, 1 --help. */
int kp_cli_parse_common(int argc, char **argv, kp_props_t *props, int allow_up_flags,
                        const char **data_dir, int *port_offset);
int kp_cmd_control(int argc, char **argv);
/* The schema registry alone (cmd_registry.c). */
int kp_cmd_registry(int argc, char **argv);

#endif
