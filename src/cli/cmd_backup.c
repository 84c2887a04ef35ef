/*
 * cmd_backup.c — `kpool backup create|list|restore` (SPEC 7, docs/backups.md), a client of
 * the control plane API's /apis/kpool.dev/v1/backups endpoints (admin token).
 *
 * `restore FILE` reads and verifies the file here first: a damaged or foreign file is refused
 * with its reason before anything is sent, and the control plane verifies it again. The
 * restore itself runs in the control plane (it holds the pool's admin credentials and the
 * store).
 *
 * Exit status: 0 success; 1 the server refused or failed, or could not be reached;
 * 2 invalid command line or input file (nothing was sent).
 */
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opts.h"
#include "cli/resources.h"

#include "control/backup_format.h"
#include "control/kinds.h"
#include "core/yamljson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_API   1
#define EXIT_USAGE 2

/* A backup or restore can take long (every topic, ACL and schema of a pool); the API call
 * waits this long unless --request-timeout says otherwise. */
#define BACKUP_TIMEOUT_MS (15 * 60 * 1000)

typedef struct backup_opts {
    const char *sub;
    const char *pool;
    const char *output; /* NULL, json, yaml */
    const char *file;
    int force;
    kp_client_opts_t client;
} backup_opts_t;

static const kp_option_t backup_options[] = {
    KP_OPT_STRING(0, "pool", backup_opts_t, pool, "POOL", "the pool to back up / restore into"),
    KP_OPT_BOOL(0, "force", backup_opts_t, force,
                "restore into a pool that is not empty (existing\n"
                "topics keep their data and get the backup's configs;\n"
                "existing resources are replaced)"),
    KP_OPT_STRING('o', "output", backup_opts_t, output, "FORMAT", "list as json or yaml"),
    KP_OPT_CONNECTION_T(backup_opts_t, client, "give up after SECS seconds [900]"),
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_backup_cmd = {
    .name = "backup",
    .usage = "backup create [--pool POOL]\n"
             "backup list [-o json|yaml]\n"
             "backup restore [--pool POOL] [--force] FILE",
    .description =
        "Backups of pool configuration and schemas (docs/backups.md). The control plane\n"
        "also takes them on a schedule (control.backup.interval.ms, default every 3 hours)\n"
        "into control.backup.dir (default <data dir>/backups), keeping\n"
        "control.backup.retention.count per pool and control.backup.retention.days.\n"
        "\n"
        "A backup holds the pool's topics (partitions, replication factor, non-default\n"
        "configs), ACLs, service users (names and principals, never keys), the Pool,\n"
        "Topic, Stream, AivenApplication and Application resources, and every record of\n"
        "the schema registry's _schemas topic (schemas, ids, config). Not topic data, not\n"
        "Secrets or private keys: after a restore the control plane issues new credentials.\n"
        "\n"
        "  create    back up POOL (default: every pool) now; prints the files written\n"
        "  list      the backups with their verification state, and each pool's last\n"
        "            successful backup, last error and next scheduled time\n"
        "  restore   check FILE's checksum, then rebuild its configuration and schemas in\n"
        "            POOL (default: the pool it was taken from). The pool must be empty:\n"
        "            no user topics, no schema records, no resources in the control plane\n",
    .options = backup_options,
    .footer = "Backups need the admin token ('kpool up' wrote it).\n"
              "Exit status: 0 success, 1 the control plane refused or failed (or could not be\n"
              "reached), 2 invalid command line or backup file (nothing was sent).\n",
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kp_opts_verror("backup", fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

/* Parses argv (argv[0] is "backup"). 0, KP_OPTS_HELP, or an exit code (printed). */
static int opts_parse(backup_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    char **args;
    int nargs;
    int rc = kp_opts_parse(&kp_backup_cmd, o, argc, argv, &args, &nargs);
    if (!rc && nargs > 2) rc = usage_error("unexpected argument '%s'", args[2]);
    o->sub = nargs > 0 ? args[0] : NULL;
    o->file = nargs > 1 ? args[1] : NULL;
    free(args);
    if (rc) return rc;
    if (!o->sub) return usage_error("which subcommand? create, list or restore");
    if (strcmp(o->sub, "create") && strcmp(o->sub, "list") && strcmp(o->sub, "restore"))
        return usage_error("unknown subcommand '%s' (create, list, restore)", o->sub);
    if (!strcmp(o->sub, "restore") && !o->file) return usage_error("restore needs a FILE");
    if (strcmp(o->sub, "restore") && o->file)
        return usage_error("unexpected argument '%s'", o->file);
    if (o->force && strcmp(o->sub, "restore")) return usage_error("--force is for restore");
    if (o->output &&
        (strcmp(o->sub, "list") || (strcmp(o->output, "json") && strcmp(o->output, "yaml"))))
        return usage_error("-o %s: only 'list' takes -o json or yaml", o->output);
    char why[256];
    if (o->pool && kp_name_check(o->pool, 0, why, sizeof(why)) < 0)
        return usage_error("--pool '%s' is not a pool name", o->pool);
    if (!o->client.timeout_ms) o->client.timeout_ms = BACKUP_TIMEOUT_MS;
    return 0;
}

static kp_client_t *client_open(const backup_opts_t *o)
{
    char err[1024];
    kp_client_t *c = kp_client_new(&o->client, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "error: %s\n", err);
        return NULL;
    }
    const kp_client_config_t *cfg = kp_client_config(c);
    if (!cfg->token || !*cfg->token) {
        fprintf(stderr,
                "error: no token: %s has no 'token' (pass --token; backups need the "
                "admin token 'kpool up' wrote)\n",
                cfg->path);
        kp_client_free(c);
        return NULL;
    }
    return c;
}

/* Sends the request; on a non-2xx answer prints the server's error. 0 with resp filled, or
 * EXIT_API. */
static int call(kp_client_t *c, const char *method, const char *path, const json_t *body,
                kp_client_resp_t *resp)
{
    char err[2048];
    if (kp_client_request(c, method, path, body, resp, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_API;
    }
    if (resp->status / 100 != 2) {
        kp_client_error_format(resp->status, resp->json, &resp->body, err, sizeof(err));
        fprintf(stderr, "%s\n", err);
        kp_client_resp_free(resp);
        return EXIT_API;
    }
    return 0;
}

static void size_format(json_int_t bytes, char *out, size_t n)
{
    if (bytes < 1024)
        snprintf(out, n, "%lldB", (long long)bytes);
    else if (bytes < 1024 * 1024)
        snprintf(out, n, "%.1fKiB", (double)bytes / 1024);
    else
        snprintf(out, n, "%.1fMiB", (double)bytes / (1024 * 1024));
}

static json_int_t summary_of(json_t *item, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(item, "summary"), key));
}

static void print_created(json_t *item)
{
    char size[32];
    size_format(json_integer_value(json_object_get(item, "sizeBytes")), size, sizeof(size));
    printf("backup of pool %s written: %s\n  %lld topics, %lld ACLs, %lld service users, %lld "
           "resources, %lld schema records; %s, %s\n",
           json_string_value(json_object_get(item, "pool")),
           json_string_value(json_object_get(item, "path"))
               ?: json_string_value(json_object_get(item, "name")),
           (long long)summary_of(item, "topics"), (long long)summary_of(item, "acls"),
           (long long)summary_of(item, "serviceUsers"), (long long)summary_of(item, "resources"),
           (long long)summary_of(item, "schemaRecords"), size,
           json_string_value(json_object_get(item, "checksum")));
}

static int do_create(kp_client_t *c, const backup_opts_t *o)
{
    json_t *body = o->pool ? json_pack("{s:s}", "pool", o->pool) : json_object();
    kp_client_resp_t resp;
    int rc = call(c, "POST", "/apis/kpool.dev/v1/backups", body, &resp);
    json_decref(body);
    if (rc) return rc;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(resp.json, "items"), i, item) print_created(item);
    if (!json_array_size(json_object_get(resp.json, "items"))) printf("no pools to back up\n");
    kp_client_resp_free(&resp);
    return 0;
}

/* "3m ago" for an RFC 3339 time. */
static void ago(const char *t, char *out, size_t n)
{
    time_t then;
    if (!t || kp_time_parse(t, &then) < 0) {
        snprintf(out, n, "never");
        return;
    }
    char age[32];
    kp_age_format((long long)(time(NULL) - then), age, sizeof(age));
    snprintf(out, n, "%s (%s ago)", t, age);
}

static void print_list(json_t *list)
{
    json_t *items = json_object_get(list, "items");
    size_t i;
    json_t *it;
    if (!json_array_size(items)) {
        printf("No backups in %s.\n",
               json_string_value(json_object_get(json_object_get(list, "schedule"), "directory")));
    } else {
        printf("%-10s %-40s %-10s %-9s %7s %6s %6s %8s\n", "POOL", "NAME", "SIZE", "STATE",
               "TOPICS", "ACLS", "USERS", "SCHEMAS");
        json_array_foreach(items, i, it)
        {
            char size[32];
            size_format(json_integer_value(json_object_get(it, "sizeBytes")), size, sizeof(size));
            printf("%-10s %-40s %-10s %-9s %7lld %6lld %6lld %8lld\n",
                   json_string_value(json_object_get(it, "pool")),
                   json_string_value(json_object_get(it, "name")), size,
                   json_string_value(json_object_get(it, "state")),
                   (long long)summary_of(it, "topics"), (long long)summary_of(it, "acls"),
                   (long long)summary_of(it, "serviceUsers"),
                   (long long)summary_of(it, "schemaRecords"));
        }
    }
    json_t *sched = json_object_get(list, "schedule");
    json_int_t interval = json_integer_value(json_object_get(sched, "intervalMs"));
    printf("\nDirectory %s; ", json_string_value(json_object_get(sched, "directory")));
    if (interval > 0)
        printf("every %lld s, ", (long long)(interval / 1000));
    else
        printf("on demand only, ");
    printf("keeping %lld per pool and %lld days (0: no limit).\n",
           (long long)json_integer_value(json_object_get(sched, "retentionCount")),
           (long long)json_integer_value(json_object_get(sched, "retentionDays")));
    json_array_foreach(json_object_get(list, "pools"), i, it)
    {
        char last[96];
        ago(json_string_value(json_object_get(it, "lastSuccessTime")), last, sizeof(last));
        printf("pool %s: %s; last success %s; %lld failed",
               json_string_value(json_object_get(it, "pool")),
               json_string_value(json_object_get(it, "state")), last,
               (long long)json_integer_value(json_object_get(it, "failuresTotal")));
        const char *next = json_string_value(json_object_get(it, "nextScheduledTime"));
        if (next) printf("; next %s", next);
        printf("\n");
        const char *e = json_string_value(json_object_get(it, "lastError"));
        if (e) printf("  last error: %s\n", e);
    }
    json_array_foreach(items, i, it)
    {
        const char *e = json_string_value(json_object_get(it, "error"));
        if (e) printf("%s: %s\n", json_string_value(json_object_get(it, "name")), e);
    }
}

static int do_list(kp_client_t *c, const backup_opts_t *o)
{
    kp_client_resp_t resp;
    int rc = call(c, "GET", "/apis/kpool.dev/v1/backups", NULL, &resp);
    if (rc) return rc;
    if (o->output && !strcmp(o->output, "json")) {
        char *text = json_dumps(resp.json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "null");
        free(text);
    } else if (o->output) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_yaml_emit(resp.json, &b);
        fwrite(b.data, 1, b.len, stdout);
        kp_buf_free(&b);
    } else {
        print_list(resp.json);
    }
    kp_client_resp_free(&resp);
    return 0;
}

static json_int_t report_n(json_t *report, const char *section, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(report, section), key));
}

static void print_report(json_t *report)
{
    json_t *from = json_object_get(report, "backup");
    printf("restored the backup of pool %s taken %s into pool %s:\n",
           json_string_value(json_object_get(from, "pool")),
           json_string_value(json_object_get(from, "createdAt")),
           json_string_value(json_object_get(report, "pool")));
    printf("  topics: %lld created, %lld updated, %lld kept\n",
           (long long)report_n(report, "topics", "created"),
           (long long)report_n(report, "topics", "updated"),
           (long long)report_n(report, "topics", "kept"));
    printf("  ACLs: %lld\n", (long long)report_n(report, "acls", "created"));
    printf("  schema records: %lld\n", (long long)report_n(report, "schemas", "records"));
    printf("  service users: %lld restored, %lld already there, %lld superseded ones left out\n",
           (long long)report_n(report, "serviceUsers", "restored"),
           (long long)report_n(report, "serviceUsers", "kept"),
           (long long)report_n(report, "serviceUsers", "skipped"));
    printf("  resources: %lld created, %lld replaced, %lld kept\n",
           (long long)report_n(report, "resources", "created"),
           (long long)report_n(report, "resources", "replaced"),
           (long long)report_n(report, "resources", "kept"));
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(report, "warnings"), i, w)
        printf("  warning: %s\n", json_string_value(w));
    printf("The control plane now reconciles the resources and issues new credentials to the\n"
           "applications (Secrets are not in backups): `kpool get aivenapps -A` shows them.\n");
}

static int do_restore(kp_client_t *c, const backup_opts_t *o, json_t *doc)
{
    kp_buf_t path;
    kp_buf_init(&path);
    kp_buf_appendf(&path, "/apis/kpool.dev/v1/backups/restore");
    if (o->pool) kp_buf_appendf(&path, "?pool=%s", o->pool); /* a checked DNS name */
    if (o->force) kp_buf_appendf(&path, "%sforce=true", o->pool ? "&" : "?");
    kp_buf_append(&path, "", 1);
    kp_client_resp_t resp;
    int rc = call(c, "POST", (const char *)path.data, doc, &resp);
    kp_buf_free(&path);
    if (rc) return rc;
    print_report(json_object_get(resp.json, "report"));
    kp_client_resp_free(&resp);
    return 0;
}

int kp_cmd_backup(int argc, char **argv)
{
    backup_opts_t o;
    int rc = opts_parse(&o, argc, argv);
    if (rc) return rc == KP_OPTS_HELP ? 0 : rc;
    json_t *doc = NULL;
    if (!strcmp(o.sub, "restore")) { /* the file is checked before anything is sent */
        char err[1536], why[1024];
        doc = kp_backup_file_read(o.file, NULL, err, sizeof(err)); /* err names the file */
        if (doc && kp_backup_verify(doc, why, sizeof(why)) < 0) {
            snprintf(err, sizeof(err), "%s: %s", o.file, why);
            json_decref(doc);
            doc = NULL;
        }
        if (!doc) {
            fprintf(stderr, "kpool backup restore: %s; nothing was restored\n", err);
            return EXIT_USAGE;
        }
    }
    kp_client_t *c = client_open(&o);
    if (!c) {
        json_decref(doc);
        return EXIT_USAGE;
    }
    if (!strcmp(o.sub, "create"))
        rc = do_create(c, &o);
    else if (!strcmp(o.sub, "list"))
        rc = do_list(c, &o);
    else
        rc = do_restore(c, &o, doc);
    kp_client_free(c);
    json_decref(doc);
    return rc;
}
