/*
 * main.c — the `kpool` binary: subcommand dispatch and the top-level help.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#define KPOOL_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "kpool " KPOOL_VERSION " — self-hosted Kafka as a managed service\n"
            "\n"
            "Usage: kpool <command> [options]\n"
            "\n"
            "Commands:\n"
            "  up        run the pool broker (and, as they land, the control plane) with\n"
            "            defaults for a workstation: PLAINTEXT on 127.0.0.1:9092, data in\n"
            "            ./kpool-data, health and metrics on 127.0.0.1:9600\n"
            "  broker    run a pool broker from Kafka-style properties\n"
            "  registry  run a pool's schema registry alone (kpool up runs one already)\n"
            "  bench     load generator (librdkafka): produce/consume throughput and latency\n"
            "  version   print the version\n"
            "\n"
            "Resources (clients of the control plane API; see docs/api.md):\n"
            "  apply     create or replace resources from YAML/JSON: apply -f FILE [-n NS]\n"
            "  get       list or show resources: get KIND [NAME] [-n NS|-A] [-o yaml|json|wide]\n"
            "  describe  show a resource and what its status says: describe KIND NAME [-n NS]\n"
            "  delete    delete resources: delete KIND NAME [-n NS], or delete -f FILE\n"
            "  team      team (namespace) API tokens, admin only: team create|rotate|revoke\n"
            "            NAME, team list [-o wide|json|yaml]\n"
            "  backup    backups of pool configuration and schemas: backup create|list|restore\n"
            "\n"
            "Applications (an app's Kafka credentials by name):\n"
            "  secret    show a credentials secret: secret get|env -n NS NAME,\n"
            "            secret files -n NS NAME DIR (0700 directory, 0600 files)\n"
            "  run       run a program with an app's credentials (KAFKA_* and *_PATH\n"
            "            variables): run -n NS --app APP -- CMD...\n"
            "  probe     readiness/liveness probe: probe -n NS --app APP, or in the app's\n"
            "            environment without the control plane: probe --from-env [--topic T]\n"
            "  doctor    diagnose and print the fix: doctor -n NS --app APP [--topic NAME]\n"
            "  produce   stdin lines to a topic: produce -n NS --app APP --topic T\n"
            "  consume   print a topic: consume -n NS --app APP --topic T [--group G]\n"
            "\n"
            "Run 'kpool <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kpool %s\n", KPOOL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "broker")) return kp_cmd_broker(argc - 1, argv + 1);
    if (!strcmp(cmd, "up")) return kp_cmd_up(argc - 1, argv + 1);
    if (!strcmp(cmd, "control")) return kp_cmd_control(argc - 1, argv + 1);
    if (!strcmp(cmd, "registry")) return kp_cmd_registry(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return kp_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "apply")) return kp_cmd_apply(argc - 1, argv + 1);
    if (!strcmp(cmd, "get")) return kp_cmd_get(argc - 1, argv + 1);
    if (!strcmp(cmd, "describe")) return kp_cmd_describe(argc - 1, argv + 1);
    if (!strcmp(cmd, "delete")) return kp_cmd_delete(argc - 1, argv + 1);
    if (!strcmp(cmd, "team")) return kp_cmd_team(argc - 1, argv + 1);
    if (!strcmp(cmd, "secret")) return kp_cmd_secret(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return kp_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "probe")) return kp_cmd_probe(argc - 1, argv + 1);
    if (!strcmp(cmd, "doctor")) return kp_cmd_doctor(argc - 1, argv + 1);
    if (!strcmp(cmd, "produce")) return kp_cmd_produce(argc - 1, argv + 1);
    if (!strcmp(cmd, "consume")) return kp_cmd_consume(argc - 1, argv + 1);
    if (!strcmp(cmd, "backup")) return kp_cmd_backup(argc - 1, argv + 1);
    if (!strcmp(cmd, "pki-selftest")) return kp_cmd_pki_selftest(argc - 1, argv + 1);
    fprintf(stderr, "kpool: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
