/* cli.h — the `kpool` subcommands; each takes argc/argv after the subcommand name and
 * returns the process exit code. */
#ifndef KP_CLI_H
#define KP_CLI_H

int kp_cmd_broker(int argc, char **argv);
int kp_cmd_up(int argc, char **argv);
int kp_cmd_bench(int argc, char **argv);

#endif
