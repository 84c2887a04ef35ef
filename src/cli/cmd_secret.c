/*
 * cmd_secret.c — `kpool secret get|env|files`: a credentials Secret (SPEC §4), named or an
 * application's current one (--app), printed, as shell `export` lines, or written as
 * private files.
 *
 * These are the commands that exist to show key material: `get` and `env` print private
 * keys and passwords to stdout (never to stderr, never in an error); `files` writes them
 * into a 0700 directory as 0600 files and prints only paths.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void help_print(void)
{
    printf(
        "Usage: kpool secret get -n NS (NAME | --app APP) [KEY]\n"
        "       kpool secret env -n NS (NAME | --app APP)\n"
        "       kpool secret files -n NS (NAME | --app APP) DIR\n"
        "\n"
        "Shows a Secret's decoded data: the credentials the control plane issued to an\n"
        "application. Name the Secret, or give --app APP for that application's current\n"
        "secret (the one its AivenApplication's status names, as run, probe and doctor\n"
        "use it; 'kpool get aivenapp APP -n NS' shows it too).\n"
        "\n"
        "  get     every key with its value; multi-line values (PEM) as an indented block,\n"
        "          binary keys (*.p12, *.jks) as <N bytes>. With KEY: that value alone,\n"
        "          raw (binary included), e.g. > client.keystore.p12.\n"
        "  env     one export KEY='value' line per KAFKA_* text key, single-quoted for a\n"
        "          POSIX shell (multi-line PEMs included):\n"
        "          eval \"$(kpool secret env -n NS --app APP)\". Binary keys, and keys that are\n"
        "          not KAFKA_* (a secret must not set PATH or LD_PRELOAD), are left out; a\n"
        "          comment names them.\n"
        "  files   writes DIR (created with mode 0700; an existing DIR must be yours and\n"
        "          private) with mode 0600 files:\n"
        "            kafka.crt (KAFKA_CERTIFICATE)   kafka.key (KAFKA_PRIVATE_KEY)\n"
        "            ca.crt (KAFKA_CA)               client.keystore.p12\n"
        "            client.truststore.jks\n"
        "          and prints export lines for KAFKA_CERTIFICATE_PATH,\n"
        "          KAFKA_PRIVATE_KEY_PATH, KAFKA_CA_PATH, KAFKA_KEYSTORE_PATH and\n"
        "          KAFKA_TRUSTSTORE_PATH (absolute paths). Files are replaced atomically.\n"
        "\n"
        "'get' and 'env' print private keys and passwords: they are meant for your terminal\n"
        "or an eval, not for logs.\n"
        "\n"
        "Options:\n"
        "  -n, --namespace NS       namespace [the config's 'namespace', else default]\n"
        "  -a, --app APP            the application whose current secret to show\n");
    kp_app_help_connection(stdout);
    printf("\nExit status: 0 success, 1 the server refused or the files could not be written,\n"
           "2 invalid command line.\n");
}

/* Fetches and decodes Secret ns/name. -1 after printing one line. */
static int secret_load(kp_client_t *c, const kp_app_opts_t *o, const char *ns, const char *name,
                       kp_app_secret_t *out)
{
    char err[2048];
    json_t *obj;
    int rc = kp_app_get(c, "secret", ns, name, &obj, err, sizeof(err));
    if (rc == 1)
        snprintf(err, sizeof(err), "secret %s/%s not found", ns, name);
    else if (rc == 0 && kp_app_secret_decode(obj, out, err, sizeof(err)) < 0)
        rc = -1;
    json_decref(obj);
    if (rc) fprintf(stderr, "kpool %s: %s\n", o->cmd, err);
    return rc ? -1 : 0;
}

/* Appends "KEY: value", or for a multi-line value "KEY: |" and the lines indented. */
static void render_entry(const kp_app_entry_t *e, kp_buf_t *out)
{
    kp_app_text_clean(e->key, out);
    if (e->binary) {
        kp_buf_appendf(out, ": <%zu bytes>\n", e->len);
        return;
    }
    const char *v = (const char *)e->value;
    if (!memchr(v, '\n', e->len)) {
        kp_buf_appendf(out, ": %s\n", v);
        return;
    }
    kp_buf_append(out, ": |\n", 4);
    for (const char *line = v; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        kp_buf_append(out, "    ", 4);
        kp_buf_append(out, line, n);
        kp_buf_append(out, "\n", 1);
        line += n + (nl != NULL);
    }
}

static int secret_get(const kp_app_secret_t *s, const kp_app_opts_t *o, const char *name,
                      const char *key)
{
    if (key) {
        const kp_app_entry_t *e = kp_app_secret_get(s, key);
        if (!e) {
            kp_buf_t keys;
            kp_buf_init(&keys);
            for (size_t i = 0; i < s->n; i++) {
                if (i) kp_buf_append(&keys, ", ", 2);
                kp_app_text_clean(s->entries[i].key, &keys);
            }
            fprintf(stderr, "kpool %s: secret %s has no key %s (keys: %.*s)\n", o->cmd, name, key,
                    (int)keys.len, (const char *)keys.data);
            kp_buf_free(&keys);
            return KP_APP_EXIT_FAIL;
        }
        fwrite(e->value, 1, e->len, stdout);
        return fflush(stdout) ? KP_APP_EXIT_FAIL : 0;
    }
    kp_buf_t out;
    kp_buf_init(&out);
    for (size_t i = 0; i < s->n; i++) render_entry(&s->entries[i], &out);
    fwrite(out.data, 1, out.len, stdout);
    if (out.data) memset(out.data, 0, out.cap);
    kp_buf_free(&out);
    if (!s->n) fprintf(stderr, "kpool %s: secret %s has no data\n", o->cmd, name);
    return fflush(stdout) ? KP_APP_EXIT_FAIL : 0;
}

static int secret_env(const kp_app_secret_t *s)
{
    kp_app_env_t env;
    kp_app_env_build(s, NULL, &env);
    kp_buf_t out;
    kp_buf_init(&out);
    kp_app_env_render(&env, &out);
    if (env.skipped.len)
        kp_buf_appendf(&out,
                       "# left out (binary, or not a KAFKA_ variable): %.*s; "
                       "'kpool secret files' writes the stores\n",
                       (int)env.skipped.len, (const char *)env.skipped.data);
    fwrite(out.data, 1, out.len, stdout);
    if (out.data) memset(out.data, 0, out.cap);
    kp_buf_free(&out);
    kp_app_env_free(&env);
    return fflush(stdout) ? KP_APP_EXIT_FAIL : 0;
}

static int secret_files(const kp_app_secret_t *s, const kp_app_opts_t *o, const char *dir)
{
    char err[4096], abs[PATH_MAX];
    if (kp_app_dir_prepare(dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool %s: %s\n", o->cmd, err);
        return KP_APP_EXIT_FAIL;
    }
    if (!realpath(dir, abs)) snprintf(abs, sizeof(abs), "%s", dir);
    kp_buf_t missing;
    kp_buf_init(&missing);
    int rc = 0;
    if (kp_app_files_write(s, abs, &missing, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool %s: %s\n", o->cmd, err);
        rc = KP_APP_EXIT_FAIL;
    } else {
        if (missing.len)
            fprintf(stderr, "kpool %s: warning: the secret has no %.*s (not written)\n", o->cmd,
                    (int)missing.len, (const char *)missing.data);
        /* paths only: the values stay in the files */
        kp_buf_t out;
        kp_buf_init(&out);
        for (size_t i = 0; i < KP_APP_FILES_COUNT; i++) {
            if (!kp_app_secret_get(s, kp_app_files[i].key)) continue;
            char path[PATH_MAX + 64];
            snprintf(path, sizeof(path), "%s/%s", abs, kp_app_files[i].file);
            kp_buf_appendf(&out, "export %s=", kp_app_files[i].path_var);
            kp_app_shell_quote(path, strlen(path), &out);
            kp_buf_append(&out, "\n", 1);
        }
        fwrite(out.data, 1, out.len, stdout);
        kp_buf_free(&out);
        if (fflush(stdout)) rc = KP_APP_EXIT_FAIL;
    }
    kp_buf_free(&missing);
    return rc;
}

/* Checks the positional arguments after the subcommand: [NAME] then get's [KEY] or files'
 * DIR (NAME absent with --app). 0, or 2 after a usage error. */
static int secret_args_check(const kp_app_opts_t *o, const char *sub)
{
    int first = o->app ? 1 : 2; /* index of KEY / DIR */
    int n = o->nargs;
    if (!o->app && n < 2) return kp_app_usage_error(o, "which secret? give its NAME, or --app APP");
    if (!strcmp(sub, "files") && n < first + 1)
        return kp_app_usage_error(o, "give the directory: secret files %s DIR",
                                  o->app ? "--app APP" : "NAME");
    int max = !strcmp(sub, "env") ? first : first + 1;
    if (n > max) return kp_app_usage_error(o, "unexpected argument '%s'", o->args[max]);
    return 0;
}

/* Runs sub on the secret: NAME's, or with --app the app's current one. */
static int secret_do(kp_client_t *c, const kp_app_opts_t *o, const char *sub)
{
    const char *ns = kp_app_namespace(o, c), *name;
    const char *arg = NULL; /* KEY or DIR */
    kp_app_secret_t s;
    kp_app_creds_t cr;
    memset(&cr, 0, sizeof(cr));
    if (o->app) {
        char err[4096];
        if (kp_app_creds_load(c, ns, o->app, &cr, err, sizeof(err)) < 0) {
            fprintf(stderr, "kpool %s: %s\n", o->cmd, err);
            kp_app_creds_free(&cr);
            return KP_APP_EXIT_FAIL;
        }
        name = cr.secret_name;
        s = cr.data;
        if (o->nargs > 1) arg = o->args[1];
    } else {
        name = o->args[1];
        if (secret_load(c, o, ns, name, &s) < 0) return KP_APP_EXIT_FAIL;
        if (o->nargs > 2) arg = o->args[2];
    }
    int rc;
    if (!strcmp(sub, "get"))
        rc = secret_get(&s, o, name, arg);
    else if (!strcmp(sub, "env"))
        rc = secret_env(&s);
    else
        rc = secret_files(&s, o, arg);
    if (o->app)
        kp_app_creds_free(&cr); /* frees (and wipes) s */
    else
        kp_app_secret_free(&s);
    return rc;
}

int kp_cmd_secret(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, "secret", KP_APP_CMD_SECRET, argc, argv, 0);
    const char *sub = o.nargs ? o.args[0] : NULL;
    static char cmd[32];
    if (!rc && sub && (!strcmp(sub, "get") || !strcmp(sub, "env") || !strcmp(sub, "files"))) {
        snprintf(cmd, sizeof(cmd), "secret %s", sub);
        o.cmd = cmd;
    }
    if (rc || o.help) {
        if (!rc) help_print();
        goto out;
    }
    if (!sub)
        rc = kp_app_usage_error(&o, "which subcommand? get, env or files");
    else if (strcmp(sub, "get") && strcmp(sub, "env") && strcmp(sub, "files"))
        rc = kp_app_usage_error(&o, "unknown subcommand '%s' (get, env, files)", sub);
    else
        rc = secret_args_check(&o, sub);
    if (rc) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    rc = secret_do(c, &o, sub);
    kp_client_free(c);
out:
    kp_app_opts_free(&o);
    return rc;
}
