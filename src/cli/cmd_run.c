/*
 * cmd_run.c — `kpool run -n NS --app APP -- CMD...`: runs a program the way the platform
 * runs a deployed application (SPEC §1, §4). The AivenApplication's current Secret is
 * materialized into a fresh private directory, every KAFKA_* text key becomes an
 * environment variable together with the five *_PATH variables, and kpool replaces itself with CMD
 * (execvp), so CMD gets kpool's pid, stdin/stdout/stderr and signals.
 *
 * Because kpool is gone once CMD runs, nobody removes the directory: it outlives the
 * process (on purpose — CMD may re-read its files at any time). It is created under
 * $XDG_RUNTIME_DIR (a per-user tmpfs removed at logout) when set, else /tmp.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit statuses when CMD cannot be started, as env(1) and POSIX shells use them. */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND   127

static void help_print(void)
{
    printf("Usage: kpool run -n NS --app APP [--] CMD [ARG...]\n"
           "\n"
           "Runs CMD with the Kafka credentials of application APP, as the platform runs a\n"
           "deployed application:\n"
           "  1. finds AivenApplication APP in NS and its current secret\n"
           "     (status.synchronizationSecretName; when there is none, the status conditions\n"
           "     say why);\n"
           "  2. writes the secret into a new private directory (mode 0700, files 0600):\n"
           "     kafka.crt, kafka.key, ca.crt, client.keystore.p12, client.truststore.jks,\n"
           "     under $XDG_RUNTIME_DIR when set, else /tmp;\n"
           "  3. sets every KAFKA_* text key of the secret as an environment variable\n"
           "     (KAFKA_BROKERS, KAFKA_CERTIFICATE, KAFKA_PRIVATE_KEY, KAFKA_CA,\n"
           "     KAFKA_CREDSTORE_PASSWORD, KAFKA_SCHEMA_REGISTRY*, ...; other keys are left\n"
           "     out, so a secret cannot set PATH or LD_PRELOAD) and KAFKA_CERTIFICATE_PATH,\n"
           "     KAFKA_PRIVATE_KEY_PATH, KAFKA_CA_PATH, KAFKA_KEYSTORE_PATH,\n"
           "     KAFKA_TRUSTSTORE_PATH;\n"
           "  4. replaces itself with CMD (looked up in $PATH).\n"
           "\n"
           "The directory outlives CMD: kpool is no longer there to remove it when CMD exits\n"
           "(it lives on the tmpfs of $XDG_RUNTIME_DIR, cleared at logout, or in /tmp).\n"
           "Remove it yourself when done: dirname \"$KAFKA_CA_PATH\" names it.\n"
           "Options after CMD belong to CMD; '--' before CMD is optional.\n"
           "\n"
           "Options:\n"
           "  -n, --namespace NS       namespace (the team) [the config's 'namespace']\n"
           "  -a, --app APP            the application whose credentials CMD gets\n");
    kp_app_help_connection(stdout);
    printf("\nExit status: CMD's; before CMD runs: 1 no credentials (the reason is printed),\n"
           "2 invalid command line, 126 CMD cannot be executed, 127 CMD not found.\n");
}

/* The parent of the private directory: $XDG_RUNTIME_DIR when it is a usable absolute
 * directory, else /tmp. */
static const char *run_base_dir(void)
{
    const char *x = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (x && x[0] == '/' && stat(x, &st) == 0 && S_ISDIR(st.st_mode) && access(x, W_OK | X_OK) == 0)
        return x;
    return "/tmp";
}

/* Removes what kp_app_files_write put in dir, and dir (CMD never ran). */
static void run_dir_remove(const char *dir)
{
    for (size_t i = 0; i < KP_APP_FILES_COUNT; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/%s", dir, kp_app_files[i].file);
        unlink(p);
    }
    rmdir(dir);
}

/* Materializes cr into a new directory (path written into dir) and sets the environment.
 * -1 after printing one line. */
static int run_prepare(const kp_app_opts_t *o, const kp_app_creds_t *cr, const char *ns, char *dir,
                       size_t dirlen)
{
    char err[4096];
    /* ns and app are resource names (DNS characters); a '/' would still address another
     * directory, so the name part is sanitized before it is joined */
    char name[128];
    snprintf(name, sizeof(name), "kpool-%.40s-%.40s-XXXXXX", ns, o->app);
    for (char *p = name; *p; p++)
        if (*p == '/') *p = '_';
    snprintf(dir, dirlen, "%s/%s", run_base_dir(), name);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "kpool run: cannot create a directory like %s: %s\n", dir, strerror(errno));
        return -1;
    }
    kp_buf_t missing;
    kp_buf_init(&missing);
    if (kp_app_files_write(&cr->data, dir, &missing, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool run: %s\n", err);
        kp_buf_free(&missing);
        run_dir_remove(dir);
        return -1;
    }
    if (missing.len)
        fprintf(stderr, "kpool run: warning: secret %s has no %.*s\n", cr->secret_name,
                (int)missing.len, (const char *)missing.data);
    kp_buf_free(&missing);
    kp_app_env_t env;
    kp_app_env_build(&cr->data, dir, &env);
    int rc = 0;
    for (size_t i = 0; i < env.n && rc == 0; i++) {
        if (setenv(env.names[i], env.values[i], 1) < 0) {
            fprintf(stderr, "kpool run: cannot set %s: %s\n", env.names[i], strerror(errno));
            rc = -1;
        }
    }
    kp_app_env_free(&env);
    if (rc < 0) run_dir_remove(dir);
    return rc;
}

int kp_cmd_run(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, "run", KP_APP_CMD_RUN, argc, argv, 1);
    if (!rc && o.help)
        help_print();
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && !o.nargs)
        rc = kp_app_usage_error(&o, "which command? kpool run --app APP -- CMD [ARG...]");
    if (rc || o.help) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    char err[4096], dir[PATH_MAX];
    const char *ns = kp_app_namespace(&o, c);
    kp_app_creds_t cr;
    if (kp_app_creds_load(c, ns, o.app, &cr, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool run: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else if (run_prepare(&o, &cr, ns, dir, sizeof(dir)) < 0) {
        rc = KP_APP_EXIT_FAIL;
    }
    /* ns points into the client: done with it before the client goes */
    kp_app_creds_free(&cr);
    kp_client_free(c);
    if (rc) goto out;
    fflush(NULL);
    execvp(o.args[0], o.args);
    int e = errno;
    fprintf(stderr, "kpool run: cannot run %s: %s\n", o.args[0], strerror(e));
    run_dir_remove(dir);
    rc = e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
out:
    kp_app_opts_free(&o);
    return rc;
}
