/*
 * commands.c — the `kpool` command table and the top-level help generated from it.
 * Each command is one row (name, function, one-line summary, its option table); `kpool
 * --help` lists every row that is not hidden, so a new command cannot be left out of it.
 */
#include "cli/cli.h"

#include <string.h>

#define KPOOL_VERSION "0.1.0"

/* Where a summary starts in `kpool --help`, and the width it is wrapped to. */
#define SUMMARY_COLUMN 12
#define SUMMARY_WIDTH  100

static const kp_option_t version_options[] = {KP_OPT_END()};
const kp_opts_cmd_t kp_version_cmd = {
    .name = "version",
    .usage = "version",
    .description = "Prints the version of kpool.\n",
    .options = version_options,
    .flags = KP_OPTS_NO_ARGS,
};

int kp_cmd_version(int argc, char **argv)
{
    char *none = NULL;
    int rc = kp_opts_parse(&kp_version_cmd, &none, argc, argv, NULL, NULL);
    if (rc) return rc == KP_OPTS_HELP ? 0 : rc;
    printf("kpool %s\n", KPOOL_VERSION);
    return 0;
}

const kp_command_t kp_commands[] = {
    {"up", kp_cmd_up,
     "run the pool broker, the control plane and the schema registry with defaults for a "
     "workstation: TLS on 127.0.0.1:9093, data in ./kpool-data, the API on 127.0.0.1:8080",
     &kp_up_cmd, "Servers:", 0},
    {"broker", kp_cmd_broker, "run a pool broker from Kafka-style properties", &kp_broker_cmd, NULL,
     0},
    {"control", kp_cmd_control,
     "run the control plane alone (pools are Pool resources pointing at brokers)", &kp_control_cmd,
     NULL, 0},
    {"registry", kp_cmd_registry, "run a pool's schema registry alone (kpool up runs one already)",
     &kp_registry_cmd, NULL, 0},
    {"bench", kp_cmd_bench, "load generator (librdkafka): produce/consume throughput and latency",
     &kp_bench_cmd, NULL, 0},
    {"pool", kp_cmd_pool,
     "operate a replicated pool: pool status|decommission BROKER|rebalance [--dry-run]|"
     "elect-leaders --bootstrap HOST:PORT",
     &kp_pool_cmd, NULL, 0},
    {"version", kp_cmd_version, "print the version", &kp_version_cmd, NULL, 0},
    {"apply", kp_cmd_apply, "create or replace resources from YAML/JSON: apply -f FILE [-n NS]",
     &kp_apply_cmd, "Resources (clients of the control plane API; see docs/api.md):", 0},
    {"get", kp_cmd_get, "list or show resources: get KIND [NAME] [-n NS|-A] [-o yaml|json|wide]",
     &kp_get_cmd, NULL, 0},
    {"describe", kp_cmd_describe,
     "show a resource and what its status says: describe KIND NAME [-n NS]", &kp_describe_cmd, NULL,
     0},
    {"delete", kp_cmd_delete, "delete resources: delete KIND NAME [-n NS], or delete -f FILE",
     &kp_delete_cmd, NULL, 0},
    {"team", kp_cmd_team,
     "team (namespace) API tokens, admin only: team create|rotate|revoke NAME, team list "
     "[-o wide|json|yaml]",
     &kp_team_cmd, NULL, 0},
    {"backup", kp_cmd_backup,
     "backups of pool configuration and schemas: backup create|list|restore", &kp_backup_cmd, NULL,
     0},
    {"secret", kp_cmd_secret,
     "show a credentials secret: secret get|env -n NS NAME, secret files -n NS NAME DIR "
     "(0700 directory, 0600 files)",
     &kp_secret_cmd, "Applications (an app's Kafka credentials by name):", 0},
    {"run", kp_cmd_run,
     "run a program with an app's credentials (KAFKA_* and *_PATH variables): run -n NS "
     "--app APP -- CMD...",
     &kp_run_cmd, NULL, 0},
    {"probe", kp_cmd_probe,
     "readiness/liveness probe: probe -n NS --app APP, or in the app's environment without "
     "the control plane: probe --from-env [--topic T]",
     &kp_probe_cmd, NULL, 0},
    {"doctor", kp_cmd_doctor, "diagnose and print the fix: doctor -n NS --app APP [--topic NAME]",
     &kp_doctor_cmd, NULL, 0},
    {"produce", kp_cmd_produce, "stdin lines to a topic: produce -n NS --app APP --topic T",
     &kp_produce_cmd, NULL, 0},
    {"consume", kp_cmd_consume, "print a topic: consume -n NS --app APP --topic T [--group G]",
     &kp_consume_cmd, NULL, 0},
    {"pki-selftest", kp_cmd_pki_selftest,
     "write a test CA, certificates and PKCS#12 stores (a test helper)", &kp_pki_selftest_cmd, NULL,
     1},
    {NULL, NULL, NULL, NULL, NULL, 0},
};

/* "  name      summary" with the summary wrapped at word boundaries. */
static void print_summary(FILE *f, const char *name, const char *summary)
{
    int col = fprintf(f, "  %s", name);
    if (col >= SUMMARY_COLUMN) {
        fprintf(f, "\n");
        col = 0;
    }
    fprintf(f, "%*s", SUMMARY_COLUMN - col, "");
    col = SUMMARY_COLUMN;
    for (const char *p = summary; *p;) {
        size_t n = strcspn(p, " ");
        if (col > SUMMARY_COLUMN && col + 1 + (int)n > SUMMARY_WIDTH) {
            fprintf(f, "\n%*s", SUMMARY_COLUMN, "");
            col = SUMMARY_COLUMN;
        } else if (col > SUMMARY_COLUMN) {
            fputc(' ', f);
            col++;
        }
        col += fprintf(f, "%.*s", (int)n, p);
        p += n;
        while (*p == ' ') p++;
    }
    fputc('\n', f);
}

void kp_cli_usage(FILE *f)
{
    fprintf(f, "kpool " KPOOL_VERSION " — self-hosted Kafka as a managed service\n"
               "\n"
               "Usage: kpool <command> [options]\n");
    for (const kp_command_t *c = kp_commands; c->name; c++) {
        if (c->hidden) continue;
        if (c->section) fprintf(f, "\n%s\n", c->section);
        print_summary(f, c->name, c->summary);
    }
    fprintf(f, "\nRun 'kpool <command> --help' for the options of a command.\n");
}

int kp_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        kp_cli_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        kp_cli_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) cmd = "version";
    for (const kp_command_t *c = kp_commands; c->name; c++)
        if (!strcmp(cmd, c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "kpool: unknown command '%s'\n\n", cmd);
    kp_cli_usage(stderr);
    return 2;
}
