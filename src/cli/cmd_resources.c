/*
 * cmd_resources.c — `kpool apply`, `get`, `describe`, `delete` and `team`: clients of
 * the control plane API (docs/api.md), with kubectl's grammar and output.
 *
 * Divided into: options (one small parser shared by every command, so flags mean the same
 * everywhere) · help texts · manifests from files · the commands. The pure work (kinds,
 * paths, manifests, tables, describe) is in resources.c / resource_print.c; HTTP in client.c.
 *
 * Exit status: 0 success; 1 the server refused a request or could not be reached; 2 invalid
 * command line or input, in which case nothing was sent. Errors are one line on stderr.
 */
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opts.h"
#include "cli/resources.h"

#include "core/yamljson.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EXIT_API   1
#define EXIT_USAGE 2

/* -f given to one command: each is a file, a directory or stdin. */
#define FILES_MAX 64
/* --request-timeout ceiling: a day is already far beyond any sensible request. */
#define REQUEST_TIMEOUT_S_MAX 86400

/* ---- options ---- */

enum { CMD_APPLY = 1, CMD_GET = 2, CMD_DESCRIBE = 4, CMD_DELETE = 8, CMD_TEAM = 16 };
enum {
    OPT_NS,
    OPT_ALL_NS,
    OPT_OUTPUT,
    OPT_SELECTOR,
    OPT_FILE,
    OPT_IGNORE_NF,
    OPT_SERVER,
    OPT_TOKEN,
    OPT_TIMEOUT,
    OPT_HELP
};

#define ALL_CMDS (CMD_APPLY | CMD_GET | CMD_DESCRIBE | CMD_DELETE | CMD_TEAM)
static const kp_optdef_t optdefs[] = {
    {'n', "namespace", 1, OPT_NS, CMD_APPLY | CMD_GET | CMD_DESCRIBE | CMD_DELETE},
    {'A', "all-namespaces", 0, OPT_ALL_NS, CMD_GET | CMD_DESCRIBE},
    {'o', "output", 1, OPT_OUTPUT, CMD_GET | CMD_TEAM},
    {'l', "selector", 1, OPT_SELECTOR, CMD_GET | CMD_DESCRIBE},
    {'f', "filename", 1, OPT_FILE, CMD_APPLY | CMD_DELETE},
    {0, "ignore-not-found", 0, OPT_IGNORE_NF, CMD_DELETE},
    {0, "server", 1, OPT_SERVER, ALL_CMDS},
    {0, "token", 1, OPT_TOKEN, ALL_CMDS},
    {0, "request-timeout", 1, OPT_TIMEOUT, ALL_CMDS},
    {'h', "help", 0, OPT_HELP, ALL_CMDS},
};

typedef struct res_opts {
    const char *cmd; /* "get", for messages */
    const char *ns;
    int all_ns;
    const char *output;
    const char *selector;
    const char *files[FILES_MAX];
    int nfiles;
    int ignore_not_found;
    int help;
    kp_client_opts_t client;
    char **args; /* positional arguments (argv order) */
    int nargs;
} res_opts_t;

static int usage_error(const res_opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const res_opts_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kpool %s: ", o->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'kpool %s --help')\n", o->cmd);
    va_end(ap);
    return EXIT_USAGE;
}

/* Seconds, optionally with an "s" suffix ("30", "30s"). */
static int opt_apply(res_opts_t *o, const kp_optdef_t *d, const char *val)
{
    switch (d->id) {
    case OPT_NS:
        if (!*val) return usage_error(o, "-n needs a namespace");
        o->ns = val;
        break;
    case OPT_ALL_NS:
        o->all_ns = 1;
        break;
    case OPT_OUTPUT:
        o->output = val;
        break;
    case OPT_SELECTOR:
        o->selector = val;
        break;
    case OPT_FILE:
        if (o->nfiles == FILES_MAX) return usage_error(o, "more than %d -f options", FILES_MAX);
        o->files[o->nfiles++] = val;
        break;
    case OPT_IGNORE_NF:
        o->ignore_not_found = 1;
        break;
    case OPT_SERVER:
        o->client.server = val;
        break;
    case OPT_TOKEN:
        o->client.token = val;
        break;
    case OPT_TIMEOUT:
        if (kp_opt_seconds(val, REQUEST_TIMEOUT_S_MAX, &o->client.timeout_ms) < 0)
            return usage_error(o, "--request-timeout '%s' is not a number of seconds (1-%d)", val,
                               REQUEST_TIMEOUT_S_MAX);
        break;
    case OPT_HELP:
        o->help = 1;
        break;
    }
    return 0;
}

/* Parses argv (after the command name). 0, or the exit code of a usage error (printed).
 * Options and positional arguments may be mixed; "--" ends the options. */
static int opts_parse(res_opts_t *o, const char *cmd, unsigned cmd_bit, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    o->args = kp_xcalloc((size_t)argc + 1, sizeof(char *));
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            o->args[o->nargs++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            only_args = 1;
            continue;
        }
        const char *val;
        const kp_optdef_t *d = kp_opt_lookup(optdefs, sizeof(optdefs) / sizeof(*optdefs), a, &val);
        if (!d || !(d->cmds & cmd_bit)) return usage_error(o, "unknown option '%s'", a);
        if (d->has_arg && !val) {
            if (i + 1 >= argc) return usage_error(o, "option '%s' needs a value", a);
            val = argv[++i];
        }
        int rc = opt_apply(o, d, val);
        if (rc) return rc;
    }
    return 0;
}

static void opts_free(res_opts_t *o)
{
    free(o->args);
}

/* ---- help ---- */

static const char help_connection[] =
    "\n"
    "Connection:\n"
    "      --server URL             control plane API [the config's 'server', else\n"
    "                               " KP_CLIENT_SERVER_DEFAULT "]\n"
    "      --token TOKEN            bearer token [the config's 'token']\n"
    "      --request-timeout SECS   give up on a request after SECS seconds [30]\n"
    "  -h, --help                   this help\n"
    "\n"
    "The config file is $KPOOL_CONFIG, else ~/.config/kpool/config.yaml ('kpool up' writes\n"
    "it): server, token, ca (verifies https servers), namespace (the default -n).\n"
    "Exit status: 0 success, 1 the server refused a request or could not be reached,\n"
    "2 invalid command line or input (nothing was sent).\n";

/* "KIND is one of: ..." wrapped under 90 columns. */
static void help_kinds(FILE *f)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_kind_names(&b);
    kp_buf_append(&b, ".", 2); /* and the NUL */
    fprintf(f, "\nKIND (singular, plural or short name):");
    int col = 38;
    for (char *w = strtok((char *)b.data, " "); w; w = strtok(NULL, " ")) {
        int n = (int)strlen(w);
        if (col + 1 + n > 90) {
            fprintf(f, "\n ");
            col = 1;
        }
        fprintf(f, " %s", w);
        col += 1 + n;
    }
    fprintf(f, "\n");
    kp_buf_free(&b);
}

static void help_print(const char *cmd)
{
    if (!strcmp(cmd, "apply"))
        printf("Usage: kpool apply -f FILE [-f FILE...] [-n NAMESPACE]\n"
               "\n"
               "Creates or replaces the resources in FILE (YAML, several documents separated by\n"
               "'---', or JSON; a List's items; '-' reads stdin; a directory applies its .yaml,\n"
               ".yml and .json files). Prints each as created, configured or unchanged.\n"
               "Every document is checked before the first is sent.\n"
               "\n"
               "Options:\n"
               "  -f, --filename FILE      manifest to apply (repeatable)\n"
               "  -n, --namespace NS       namespace of documents that name none; a document\n"
               "                           naming another namespace is an error\n");
    else if (!strcmp(cmd, "get"))
        printf("Usage: kpool get KIND [NAME...] [-n NS | -A] [-l key=value] [-o FORMAT]\n"
               "\n"
               "Lists resources of KIND in a namespace (or every namespace with -A), or shows\n"
               "the named ones. Secret values are never shown in tables.\n"
               "\n"
               "Options:\n"
               "  -n, --namespace NS       namespace [the config's 'namespace', else default]\n"
               "  -A, --all-namespaces     every namespace the token may read\n"
               "  -l, --selector SEL       only resources whose labels match key=value[,...]\n"
               "  -o, --output FORMAT      wide (more columns), yaml, json, or name\n");
    else if (!strcmp(cmd, "describe"))
        printf("Usage: kpool describe KIND [NAME...] [-n NS | -A] [-l key=value]\n"
               "\n"
               "Shows a resource for humans: metadata, spec, and its status: synchronization\n"
               "state, message, errors and conditions (type, status, reason, message, time).\n"
               "Without NAME, describes every resource of KIND in the namespace.\n"
               "\n"
               "Options:\n"
               "  -n, --namespace NS       namespace [the config's 'namespace', else default]\n"
               "  -A, --all-namespaces     every namespace the token may read\n"
               "  -l, --selector SEL       only resources whose labels match key=value[,...]\n");
    else if (!strcmp(cmd, "delete"))
        printf("Usage: kpool delete KIND NAME... [-n NS]\n"
               "       kpool delete -f FILE [-f FILE...] [-n NS]\n"
               "\n"
               "Deletes resources. The control plane marks them (deletionTimestamp), cleans up\n"
               "in the pool, then removes them. Deleting a Topic keeps its data unless it has\n"
               "the annotation kafka.nais.io/removeDataWhenResourceIsDeleted: \"true\".\n"
               "\n"
               "Options:\n"
               "  -f, --filename FILE      delete the resources a manifest declares\n"
               "  -n, --namespace NS       namespace [the config's 'namespace', else default]\n"
               "      --ignore-not-found   a resource that does not exist is not an error\n");
    else
        printf("Usage: kpool team create NAME [-o json|yaml]\n"
               "       kpool team rotate NAME [-o json|yaml]\n"
               "       kpool team revoke NAME [-o json|yaml]\n"
               "       kpool team list [NAME...] [-o wide|json|yaml|name]\n"
               "\n"
               "A team is a namespace; its API token reads and writes only that namespace.\n"
               "Every subcommand needs the admin token (the one 'kpool up' wrote); a team\n"
               "token is refused (Forbidden). A token is printed once, when it is issued: the\n"
               "control plane keeps only its SHA-256.\n"
               "\n"
               "  create   issue the team's token and print it. A team that already has a\n"
               "           valid token is an error (AlreadyExists): use rotate to replace it.\n"
               "  rotate   issue a new token and revoke every earlier one of the team, in one\n"
               "           step; prints the new token. Old tokens get 401 from the next request.\n"
               "  revoke   revoke every token of the team (401 from the next request). Its\n"
               "           resources stay and keep being reconciled; create issues a new token.\n"
               "  list     teams known by a token (valid or revoked) or by resources in their\n"
               "           namespace: NAME, TOKENS (valid ones), CREATED (age), RESOURCES;\n"
               "           -o wide adds TOKEN AGE (of the newest valid token) and REVOKED.\n"
               "\n"
               "Options:\n"
               "  -o, --output FORMAT      json or yaml: print the server's answer as is;\n"
               "                           list also takes wide and name\n");
    if (strcmp(cmd, "apply") && strcmp(cmd, "team")) help_kinds(stdout);
    fputs(help_connection, stdout);
}

/* ---- shared steps ---- */

/* Opens the client; a missing token is reported here, before anything is sent. NULL with
 * the exit code in *rc. */
static kp_client_t *client_open(const res_opts_t *o, int *rc)
{
    char err[1024];
    kp_client_t *c = kp_client_new(&o->client, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "error: %s\n", err);
        *rc = EXIT_USAGE;
        return NULL;
    }
    const kp_client_config_t *cfg = kp_client_config(c);
    if (!cfg->token || !*cfg->token) {
        if (cfg->file_found)
            fprintf(stderr, "error: no token: %s has no 'token' (pass --token)\n", cfg->path);
        else
            fprintf(stderr,
                    "error: no token: %s does not exist (run 'kpool up', set KPOOL_CONFIG, or "
                    "pass --token)\n",
                    cfg->path);
        kp_client_free(c);
        *rc = EXIT_API;
        return NULL;
    }
    return c;
}

/* One request; on a transport failure or a non-2xx status (unless ok_404 and 404) the error
 * line is printed and -1 returned (resp freed). */
static int call(kp_client_t *c, const char *method, const char *path, const json_t *body,
                kp_client_resp_t *resp, int ok_404)
{
    char err[2048];
    if (kp_client_request(c, method, path, body, resp, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if ((resp->status >= 200 && resp->status < 300) || (ok_404 && resp->status == 404)) {
        /* DELETE may answer 204 or an empty 200; everything else returns an object */
        if (resp->status != 404 && strcmp(method, "DELETE") && !json_is_object(resp->json)) {
            fprintf(stderr, "error: the server's answer to %s %s is not a JSON object\n", method,
                    path);
            kp_client_resp_free(resp);
            return -1;
        }
        return 0;
    }
    kp_client_error_format(resp->status, resp->json, &resp->body, err, sizeof(err));
    fprintf(stderr, "%s\n", err);
    kp_client_resp_free(resp);
    return -1;
}

/* The namespace a command acts in: -n, else the config's, else "default". */
static const char *namespace_of(const res_opts_t *o, const kp_client_t *c)
{
    return o->ns ? o->ns : kp_client_namespace(c);
}

static int read_stream(FILE *f, const char *name, kp_buf_t *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + n > KP_MANIFEST_BYTES_MAX) {
            fprintf(stderr, "error: %s: larger than %d MiB\n", name, KP_MANIFEST_BYTES_MAX >> 20);
            return -1;
        }
        kp_buf_append(b, chunk, n);
    }
    if (ferror(f)) {
        fprintf(stderr, "error: %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

static int load_one_file(const char *path, json_t *docs)
{
    kp_buf_t b;
    kp_buf_init(&b);
    int rc;
    if (!strcmp(path, "-")) {
        rc = read_stream(stdin, "stdin", &b);
    } else {
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
            kp_buf_free(&b);
            return -1;
        }
        rc = read_stream(f, path, &b);
        fclose(f);
    }
    char err[1024];
    if (rc == 0 &&
        kp_manifest_load(b.len ? (const char *)b.data : "", b.len,
                         strcmp(path, "-") ? path : "stdin", docs, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = -1;
    }
    kp_buf_free(&b);
    return rc;
}

static int manifest_ext(const struct dirent *d)
{
    const char *dot = strrchr(d->d_name, '.');
    return d->d_name[0] != '.' && dot &&
           (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

/* Every document of every -f (files, directories, stdin), in order. NULL after printing. */
static json_t *load_manifests(const res_opts_t *o)
{
    json_t *docs = json_array();
    for (int i = 0; i < o->nfiles; i++) {
        struct stat st;
        const char *p = o->files[i];
        if (strcmp(p, "-") && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **ents;
            int n = scandir(p, &ents, manifest_ext, alphasort), bad = 0;
            if (n < 0) {
                fprintf(stderr, "error: %s: %s\n", p, strerror(errno));
                goto fail;
            }
            for (int j = 0; j < n; j++) {
                char full[4096];
                snprintf(full, sizeof(full), "%s/%s", p, ents[j]->d_name);
                if (!bad && load_one_file(full, docs) < 0) bad = 1;
                free(ents[j]);
            }
            free(ents);
            if (bad) goto fail;
        } else if (load_one_file(p, docs) < 0) {
            goto fail;
        }
    }
    if (!json_array_size(docs)) {
        fprintf(stderr, "error: no objects passed (the files hold no documents)\n");
        goto fail;
    }
    return docs;
fail:
    json_decref(docs);
    return NULL;
}

/* Loads and prepares every document (kind, namespace) before anything is sent. */
static json_t *prepare_manifests(const res_opts_t *o, const char *default_ns)
{
    json_t *docs = load_manifests(o);
    if (!docs) return NULL;
    size_t i;
    json_t *doc;
    char err[1024];
    json_array_foreach(docs, i, doc)
    {
        if (!kp_manifest_prepare(doc, o->ns, default_ns, err, sizeof(err))) {
            fprintf(stderr, "error: %s\n", err);
            json_decref(docs);
            return NULL;
        }
    }
    return docs;
}

/* Kind, namespace and name of a prepared document, and its path. */
static const kp_kind_t *doc_path(const json_t *doc, kp_buf_t *path, const char **name)
{
    char err[512];
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    const kp_kind_t *k =
        kp_kind_for(api, json_string_value(json_object_get(doc, "kind")), err, sizeof(err));
    json_t *meta = json_object_get(doc, "metadata");
    *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (!k || kp_resource_path(k, ns, *name, NULL, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return NULL;
    }
    return k;
}

/* ---- apply ---- */

/* kubectl's verdict for a 200 replace: unchanged when the generation did not move (or, for
 * a server without generations, when spec, data, labels and annotations are equal). */
static const char *apply_verdict(long status, const json_t *before, const json_t *after)
{
    if (status == 201 || !before) return status == 201 ? "created" : "configured";
    json_t *g0 = json_object_get(json_object_get(before, "metadata"), "generation");
    json_t *g1 = json_object_get(json_object_get(after, "metadata"), "generation");
    if (json_is_integer(g0) && json_is_integer(g1))
        return json_integer_value(g0) == json_integer_value(g1) ? "unchanged" : "configured";
    static const char *keys[] = {"spec", "data", "type"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!json_equal(json_object_get(before, keys[i]), json_object_get(after, keys[i])) &&
            (json_object_get(before, keys[i]) || json_object_get(after, keys[i])))
            return "configured";
    static const char *mkeys[] = {"labels", "annotations"};
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_object_get(json_object_get(before, "metadata"), mkeys[i]);
        json_t *b = json_object_get(json_object_get(after, "metadata"), mkeys[i]);
        if ((a || b) && !json_equal(a, b)) return "configured";
    }
    return "unchanged";
}

static int apply_one(kp_client_t *c, const json_t *doc)
{
    kp_buf_t path, ref;
    kp_buf_init(&path);
    kp_buf_init(&ref);
    const char *name;
    const kp_kind_t *k = doc_path(doc, &path, &name);
    int rc = -1;
    if (!k) goto out;
    kp_buf_append(&path, "", 1);
    kp_client_resp_t before, after;
    if (call(c, "GET", (const char *)path.data, NULL, &before, 1) < 0) goto out;
    json_t *old = before.status == 200 ? before.json : NULL;
    if (call(c, "PUT", (const char *)path.data, doc, &after, 0) == 0) {
        kp_kind_ref(k, name, &ref);
        printf("%.*s %s\n", (int)ref.len, (const char *)ref.data,
               apply_verdict(after.status, old, after.json));
        fflush(stdout);
        kp_client_resp_free(&after);
        rc = 0;
    }
    kp_client_resp_free(&before);
out:
    kp_buf_free(&path);
    kp_buf_free(&ref);
    return rc;
}

int kp_cmd_apply(int argc, char **argv)
{
    res_opts_t o;
    int rc = opts_parse(&o, "apply", CMD_APPLY, argc, argv);
    if (!rc && o.help)
        help_print("apply");
    else if (!rc && !o.nfiles)
        rc = usage_error(&o, "-f FILE is required");
    else if (!rc && o.nargs)
        rc = usage_error(&o, "unexpected argument '%s' (manifests are given with -f)", o.args[0]);
    if (rc || o.help) goto out;
    kp_client_t *c = client_open(&o, &rc);
    if (!c) goto out;
    json_t *docs = prepare_manifests(&o, kp_client_namespace(c));
    if (!docs) {
        rc = EXIT_USAGE;
    } else {
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc) if (apply_one(c, doc) < 0) rc = EXIT_API;
        json_decref(docs);
    }
    kp_client_free(c);
out:
    opts_free(&o);
    return rc;
}

/* ---- get and describe ---- */

typedef enum { OUT_TABLE, OUT_WIDE, OUT_YAML, OUT_JSON, OUT_NAME } out_fmt_t;

static int output_parse(const res_opts_t *o, out_fmt_t *fmt)
{
    static const struct {
        const char *name;
        out_fmt_t fmt;
    } fmts[] = {{"wide", OUT_WIDE}, {"yaml", OUT_YAML}, {"json", OUT_JSON}, {"name", OUT_NAME}};
    *fmt = OUT_TABLE;
    if (!o->output) return 0;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(*fmts); i++) {
        if (!strcmp(o->output, fmts[i].name)) {
            *fmt = fmts[i].fmt;
            return 0;
        }
    }
    return usage_error(o, "unknown output format '%s' (wide, yaml, json, name)", o->output);
}

/* Checks KIND [NAME...] against -A and -l. 0, or the usage exit code (printed). */
static int kind_args(const res_opts_t *o, int need_name, const kp_kind_t **k)
{
    if (!o->nargs) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_kind_names(&b);
        int rc = usage_error(o, "which KIND? one of %.*s", (int)b.len, (const char *)b.data);
        kp_buf_free(&b);
        return rc;
    }
    *k = kp_kind_find(o->args[0]);
    if (!*k) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_kind_names(&b);
        int rc = usage_error(o, "unknown resource type \"%s\" (one of %.*s)", o->args[0],
                             (int)b.len, (const char *)b.data);
        kp_buf_free(&b);
        return rc;
    }
    if (need_name && o->nargs < 2)
        return usage_error(o, "which %s? give its NAME (or -f FILE)", (*k)->singular);
    if (o->nargs > 1 && o->all_ns)
        return usage_error(o, "a resource cannot be retrieved by name across all namespaces");
    if (o->nargs > 1 && o->selector) return usage_error(o, "a NAME cannot be combined with -l");
    if (o->all_ns && o->ns) return usage_error(o, "-A and -n exclude each other");
    return 0;
}

/* Adds apiVersion and kind to list items that lack them (Kubernetes omits them in lists). */
static void items_complete(const kp_kind_t *k, json_t *items)
{
    char api[128];
    kp_kind_api_version(k, api, sizeof(api));
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (!json_is_object(it)) continue;
        json_t *copy = json_copy(it);
        json_object_clear(it);
        json_object_set_new(it, "apiVersion", json_string(api));
        json_object_set_new(it, "kind", json_string(k->kind));
        json_object_update(it, copy); /* the item's own fields win, order kept */
        json_decref(copy);
    }
}

/* Fetches KIND NAME... (into a v1 List) or the KIND collection. Returns the list with
 * *failed set when some name failed (printed); NULL when nothing could be fetched. */
static json_t *fetch(kp_client_t *c, const res_opts_t *o, const kp_kind_t *k, int *failed)
{
    const char *ns = o->all_ns ? NULL : namespace_of(o, c);
    char err[512];
    kp_buf_t path;
    kp_buf_init(&path);
    kp_client_resp_t r;
    json_t *list = NULL;
    *failed = 0;
    if (o->nargs < 2) {
        if (kp_resource_path(k, ns, NULL, o->selector, &path, err, sizeof(err)) < 0) {
            fprintf(stderr, "error: %s\n", err);
            goto out;
        }
        kp_buf_append(&path, "", 1);
        if (call(c, "GET", (const char *)path.data, NULL, &r, 0) < 0) goto out;
        list = json_incref(r.json);
        kp_client_resp_free(&r);
        if (!json_is_array(json_object_get(list, "items")))
            json_object_set_new(list, "items", json_array());
        if (!json_object_get(list, "kind")) {
            char kind[128];
            snprintf(kind, sizeof(kind), "%sList", k->kind);
            json_object_set_new(list, "kind", json_string(kind));
        }
        items_complete(k, json_object_get(list, "items"));
        goto out;
    }
    json_t *items = json_array();
    for (int i = 1; i < o->nargs; i++) {
        kp_buf_reset(&path);
        if (kp_resource_path(k, ns, o->args[i], NULL, &path, err, sizeof(err)) < 0) {
            fprintf(stderr, "error: %s\n", err);
            *failed = 1;
            continue;
        }
        kp_buf_append(&path, "", 1);
        if (call(c, "GET", (const char *)path.data, NULL, &r, 0) < 0) {
            *failed = 1;
            continue;
        }
        json_array_append(items, r.json);
        kp_client_resp_free(&r);
    }
    items_complete(k, items);
    list = json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", "v1", "kind", "List", "metadata",
                     "resourceVersion", "", "items", items);
out:
    kp_buf_free(&path);
    return list;
}

static void no_resources(const kp_kind_t *k, const res_opts_t *o, const char *ns)
{
    if (o->all_ns || !k->namespaced)
        fprintf(stderr, "No resources found\n");
    else
        fprintf(stderr, "No resources found in %s namespace.\n", ns);
}

static void print_doc(const json_t *v, out_fmt_t fmt)
{
    if (fmt == OUT_JSON) {
        char *s = json_dumps(v, JSON_INDENT(4));
        printf("%s\n", s);
        free(s);
        return;
    }
    kp_buf_t y;
    kp_buf_init(&y);
    kp_yaml_emit(v, &y);
    fwrite(y.data, 1, y.len, stdout);
    kp_buf_free(&y);
}

static void get_print(const kp_kind_t *k, const res_opts_t *o, json_t *list, out_fmt_t fmt,
                      const char *ns)
{
    json_t *items = json_object_get(list, "items");
    size_t i;
    json_t *it;
    switch (fmt) {
    case OUT_YAML:
    case OUT_JSON:
        /* one object by name prints the object itself, as kubectl */
        print_doc(o->nargs == 2 && json_array_size(items) == 1 ? json_array_get(items, 0) : list,
                  fmt);
        return;
    case OUT_NAME:
        json_array_foreach(items, i, it)
        {
            kp_buf_t ref;
            kp_buf_init(&ref);
            const char *name =
                json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
            kp_kind_ref(k, name ? name : "", &ref);
            printf("%.*s\n", (int)ref.len, (const char *)ref.data);
            kp_buf_free(&ref);
        }
        return;
    default:
        if (!json_array_size(items)) {
            if (o->nargs < 2) no_resources(k, o, ns);
            return;
        }
        kp_buf_t t;
        kp_buf_init(&t);
        kp_table_render(k, items, fmt == OUT_WIDE, o->all_ns, time(NULL), &t);
        fwrite(t.data, 1, t.len, stdout);
        kp_buf_free(&t);
    }
}

/* get (describe = 0) and describe (describe = 1) share everything up to the printing. */
static int get_or_describe(int argc, char **argv, int describe)
{
    const char *cmd = describe ? "describe" : "get";
    res_opts_t o;
    out_fmt_t fmt = OUT_TABLE;
    const kp_kind_t *k = NULL;
    int rc = opts_parse(&o, cmd, describe ? CMD_DESCRIBE : CMD_GET, argc, argv);
    if (!rc && o.help) help_print(cmd);
    if (!rc && !o.help) rc = output_parse(&o, &fmt);
    if (!rc && !o.help) rc = kind_args(&o, 0, &k);
    if (rc || o.help) goto out;
    kp_client_t *c = client_open(&o, &rc);
    if (!c) goto out;
    int failed;
    json_t *list = fetch(c, &o, k, &failed);
    if (list && !describe) {
        get_print(k, &o, list, fmt, namespace_of(&o, c));
    } else if (list) {
        json_t *items = json_object_get(list, "items");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            kp_buf_t d;
            kp_buf_init(&d);
            if (i) kp_buf_append(&d, "\n\n", 2);
            kp_describe_render(k, it, time(NULL), &d);
            fwrite(d.data, 1, d.len, stdout);
            kp_buf_free(&d);
        }
        if (!json_array_size(items) && o.nargs < 2) no_resources(k, &o, namespace_of(&o, c));
    }
    rc = !list || failed ? EXIT_API : 0;
    json_decref(list);
    kp_client_free(c);
out:
    opts_free(&o);
    return rc;
}

int kp_cmd_get(int argc, char **argv)
{
    return get_or_describe(argc, argv, 0);
}

int kp_cmd_describe(int argc, char **argv)
{
    return get_or_describe(argc, argv, 1);
}

/* ---- delete ---- */

static int delete_one(kp_client_t *c, const kp_kind_t *k, const char *path, const char *name,
                      int ignore_not_found)
{
    kp_client_resp_t r;
    if (call(c, "DELETE", path, NULL, &r, ignore_not_found) < 0) return -1;
    if (r.status != 404) {
        kp_buf_t ref;
        kp_buf_init(&ref);
        kp_kind_ref(k, NULL, &ref);
        printf("%.*s \"%s\" deleted\n", (int)ref.len, (const char *)ref.data, name);
        fflush(stdout);
        kp_buf_free(&ref);
    }
    kp_client_resp_free(&r);
    return 0;
}

static int delete_files(kp_client_t *c, const res_opts_t *o)
{
    json_t *docs = prepare_manifests(o, kp_client_namespace(c));
    if (!docs) return EXIT_USAGE;
    int rc = 0;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        kp_buf_t path;
        kp_buf_init(&path);
        const char *name;
        const kp_kind_t *k = doc_path(doc, &path, &name);
        kp_buf_append(&path, "", 1);
        if (!k || delete_one(c, k, (const char *)path.data, name, o->ignore_not_found) < 0)
            rc = EXIT_API;
        kp_buf_free(&path);
    }
    json_decref(docs);
    return rc;
}

int kp_cmd_delete(int argc, char **argv)
{
    res_opts_t o;
    const kp_kind_t *k = NULL;
    int rc = opts_parse(&o, "delete", CMD_DELETE, argc, argv);
    if (!rc && o.help)
        help_print("delete");
    else if (!rc && o.nfiles && o.nargs)
        rc = usage_error(&o, "give either KIND NAME or -f FILE, not both");
    else if (!rc && !o.nfiles)
        rc = kind_args(&o, 1, &k);
    if (rc || o.help) goto out;
    kp_client_t *c = client_open(&o, &rc);
    if (!c) goto out;
    if (o.nfiles) {
        rc = delete_files(c, &o);
    } else {
        for (int i = 1; i < o.nargs; i++) {
            kp_buf_t path;
            kp_buf_init(&path);
            char err[512];
            if (kp_resource_path(k, namespace_of(&o, c), o.args[i], NULL, &path, err, sizeof(err)) <
                0) {
                fprintf(stderr, "error: %s\n", err);
                rc = EXIT_API;
            } else {
                kp_buf_append(&path, "", 1);
                if (delete_one(c, k, (const char *)path.data, o.args[i], o.ignore_not_found) < 0)
                    rc = EXIT_API;
            }
            kp_buf_free(&path);
        }
    }
    kp_client_free(c);
out:
    opts_free(&o);
    return rc;
}

/* ---- team ---- */

#define TEAMS_PATH "/apis/kpool.dev/v1/teams"

/* The token in the server's answer: "token", else "status.token". */
static const char *team_token(const json_t *answer)
{
    const char *t = json_string_value(json_object_get(answer, "token"));
    if (!t) t = json_string_value(json_object_get(json_object_get(answer, "status"), "token"));
    return t;
}

/* "1 token", "2 tokens". */
static const char *tokens_word(long long n)
{
    return n == 1 ? "token" : "tokens";
}

/* create and rotate: the new token, for the user who asked for it. -1 when the answer has
 * none (printed). */
static int team_token_print(const char *name, const json_t *answer, int rotated)
{
    const char *token = team_token(answer);
    if (!token) {
        fprintf(stderr, "error: team \"%s\": the server's answer has no token\n", name);
        return -1;
    }
    /* the user asked for this token: printing it is the point of the command */
    if (rotated) {
        long long n = json_integer_value(json_object_get(answer, "revoked"));
        printf("team/%s token rotated (%lld previous %s revoked)\n"
               "token: %s\n"
               "The previous token is refused from now on: give the team this one.\n",
               name, n, tokens_word(n), token);
    } else {
        printf("team/%s created\n"
               "token: %s\n",
               name, token);
    }
    printf("To act as this team: put 'token: <the token>' and 'namespace: %s' in a config file "
           "and set KPOOL_CONFIG to it, or pass --token <the token> -n %s.\n",
           name, name);
    return 0;
}

/* create (POST teams), rotate (POST teams/NAME/rotate) and revoke (DELETE teams/NAME). */
static int team_change(kp_client_t *c, const char *sub, const char *name, out_fmt_t fmt)
{
    char path[256];
    json_t *body = NULL;
    const char *method = "POST";
    if (!strcmp(sub, "create")) {
        snprintf(path, sizeof(path), TEAMS_PATH);
        body = json_pack("{s:s}", "name", name);
    } else if (!strcmp(sub, "rotate")) {
        snprintf(path, sizeof(path), TEAMS_PATH "/%s/rotate", name);
    } else {
        snprintf(path, sizeof(path), TEAMS_PATH "/%s", name);
        method = "DELETE";
    }
    kp_client_resp_t r;
    int rc = call(c, method, path, body, &r, 0);
    json_decref(body);
    if (rc < 0) return EXIT_API;
    if (!json_is_object(r.json)) {
        fprintf(stderr, "error: the server's answer to %s %s is not a JSON object\n", method, path);
        rc = -1;
    } else if (fmt == OUT_JSON || fmt == OUT_YAML) {
        print_doc(r.json, fmt);
    } else if (strcmp(sub, "revoke")) {
        rc = team_token_print(name, r.json, !strcmp(sub, "rotate"));
    } else {
        long long n = json_integer_value(json_object_get(r.json, "revoked"));
        printf("team/%s: %lld %s revoked; requests with %s are refused (401) from now on.\n"
               "The team's resources stay and keep being reconciled. 'kpool team create %s' "
               "issues a new token.\n",
               name, n, tokens_word(n), n == 1 ? "it" : "them", name);
    }
    kp_client_resp_free(&r);
    return rc < 0 ? EXIT_API : 0;
}

/* list [NAME...]: every team, or the named ones (each a request; a missing one is an error
 * and the others are still shown). */
static int team_list(kp_client_t *c, const res_opts_t *o, out_fmt_t fmt)
{
    kp_client_resp_t r;
    json_t *list;
    int failed = 0;
    if (o->nargs < 2) {
        if (call(c, "GET", TEAMS_PATH, NULL, &r, 0) < 0) return EXIT_API;
        list = json_incref(r.json);
        kp_client_resp_free(&r);
        if (!json_is_array(json_object_get(list, "items")))
            json_object_set_new(list, "items", json_array());
    } else {
        json_t *items = json_array();
        for (int i = 1; i < o->nargs; i++) {
            char path[256];
            snprintf(path, sizeof(path), TEAMS_PATH "/%s", o->args[i]);
            if (call(c, "GET", path, NULL, &r, 0) < 0) {
                failed = 1;
                continue;
            }
            json_array_append(items, r.json);
            kp_client_resp_free(&r);
        }
        list = json_pack("{s:s, s:s, s:{}, s:o}", "apiVersion", "kpool.dev/v1", "kind", "TeamList",
                         "metadata", "items", items);
    }
    json_t *items = json_object_get(list, "items");
    size_t i;
    json_t *it;
    if (fmt == OUT_JSON || fmt == OUT_YAML) {
        print_doc(o->nargs == 2 && json_array_size(items) == 1 ? json_array_get(items, 0) : list,
                  fmt);
    } else if (fmt == OUT_NAME) {
        json_array_foreach(items, i, it)
        {
            const char *name =
                json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
            printf("team/%s\n", name ? name : "");
        }
    } else if (json_array_size(items)) {
        kp_buf_t t;
        kp_buf_init(&t);
        kp_teams_table_render(items, fmt == OUT_WIDE, time(NULL), &t);
        fwrite(t.data, 1, t.len, stdout);
        kp_buf_free(&t);
    } else if (o->nargs < 2) {
        fprintf(stderr, "No teams found\n");
    }
    json_decref(list);
    return failed ? EXIT_API : 0;
}

/* Checks the command line of `kpool team`. 0, or the usage exit code (printed). */
static int team_args(const res_opts_t *o, out_fmt_t fmt)
{
    static const char subs[] = "create, rotate, revoke, list";
    if (o->nargs < 1) return usage_error(o, "which subcommand? %s", subs);
    const char *sub = o->args[0];
    int list = !strcmp(sub, "list");
    if (!list && strcmp(sub, "create") && strcmp(sub, "rotate") && strcmp(sub, "revoke"))
        return usage_error(o, "unknown subcommand '%s' (%s)", sub, subs);
    if (!list && o->nargs != 2) return usage_error(o, "team %s needs exactly one NAME", sub);
    if (!list && (fmt == OUT_WIDE || fmt == OUT_NAME))
        return usage_error(o, "-o %s is not supported by team %s (json or yaml)", o->output, sub);
    for (int i = 1; i < o->nargs; i++) {
        char why[256];
        /* checked here, so a name can never address another path */
        if (kp_name_check(o->args[i], 1, why, sizeof(why)) < 0)
            return usage_error(o, "team name \"%s\": %s", o->args[i], why);
    }
    return 0;
}

int kp_cmd_team(int argc, char **argv)
{
    res_opts_t o;
    out_fmt_t fmt = OUT_TABLE;
    int rc = opts_parse(&o, "team", CMD_TEAM, argc, argv);
    if (!rc && o.help)
        help_print("team");
    else if (!rc)
        rc = output_parse(&o, &fmt);
    if (!rc && !o.help) rc = team_args(&o, fmt);
    if (rc || o.help) goto out;
    kp_client_t *c = client_open(&o, &rc);
    if (!c) goto out;
    if (!strcmp(o.args[0], "list"))
        rc = team_list(c, &o, fmt);
    else
        rc = team_change(c, o.args[0], o.args[1], fmt);
    kp_client_free(c);
out:
    opts_free(&o);
    return rc;
}
