/*
 * res_common.c — the steps the resource commands share (see res_cmd.h): options, the
 * client, manifests from files, output formats.
 */
#include "cli/res_cmd.h"

#include "core/yamljson.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- options ---- */

int kp_res_opts_parse(kp_res_opts_t *o, const kp_opts_cmd_t *cmd, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd->name;
    return kp_opts_parse(cmd, o, argc, argv, &o->args, &o->nargs);
}

void kp_res_opts_free(kp_res_opts_t *o)
{
    free(o->args);
    o->args = NULL;
    kp_strlist_free(&o->files);
}

int kp_res_usage_error(const kp_res_opts_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kp_opts_verror(o->cmd, fmt, ap);
    va_end(ap);
    return KP_RES_EXIT_USAGE;
}

/* "KIND is one of: ..." wrapped under 90 columns. */
void kp_res_help_kinds(FILE *f)
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

/* ---- shared steps ---- */

/* Opens the client; a missing token is reported here, before anything is sent. NULL with
 * the exit code in *rc. */
kp_client_t *kp_res_client_open(const kp_res_opts_t *o, int *rc)
{
    char err[1024];
    kp_client_t *c = kp_client_new(&o->client, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "error: %s\n", err);
        *rc = KP_RES_EXIT_USAGE;
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
        *rc = KP_RES_EXIT_API;
        return NULL;
    }
    return c;
}

/* One request; on a transport failure or a non-2xx status (unless ok_404 and 404) the error
 * line is printed and -1 returned (resp freed). */
int kp_res_call(kp_client_t *c, const char *method, const char *path, const json_t *body,
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
const char *kp_res_namespace(const kp_res_opts_t *o, const kp_client_t *c)
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
static json_t *load_manifests(const kp_res_opts_t *o)
{
    json_t *docs = json_array();
    for (int i = 0; i < o->files.n; i++) {
        struct stat st;
        const char *p = o->files.v[i];
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
json_t *kp_res_manifests(const kp_res_opts_t *o, const char *default_ns)
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
const kp_kind_t *kp_res_doc_path(const json_t *doc, kp_buf_t *path, const char **name)
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

int kp_res_output_parse(const kp_res_opts_t *o, kp_res_out_t *fmt)
{
    static const struct {
        const char *name;
        kp_res_out_t fmt;
    } fmts[] = {{"wide", KP_RES_OUT_WIDE},
                {"yaml", KP_RES_OUT_YAML},
                {"json", KP_RES_OUT_JSON},
                {"name", KP_RES_OUT_NAME}};
    *fmt = KP_RES_OUT_TABLE;
    if (!o->output) return 0;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(*fmts); i++) {
        if (!strcmp(o->output, fmts[i].name)) {
            *fmt = fmts[i].fmt;
            return 0;
        }
    }
    return kp_res_usage_error(o, "unknown output format '%s' (wide, yaml, json, name)", o->output);
}

void kp_res_print_doc(const json_t *v, kp_res_out_t fmt)
{
    if (fmt == KP_RES_OUT_JSON) {
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

/* Checks KIND [NAME...] against -A and -l. 0, or the usage exit code (printed). */
int kp_res_kind_args(const kp_res_opts_t *o, int need_name, const kp_kind_t **k)
{
    if (!o->nargs) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_kind_names(&b);
        int rc = kp_res_usage_error(o, "which KIND? one of %.*s", (int)b.len, (const char *)b.data);
        kp_buf_free(&b);
        return rc;
    }
    *k = kp_kind_find(o->args[0]);
    if (!*k) {
        kp_buf_t b;
        kp_buf_init(&b);
        kp_kind_names(&b);
        int rc = kp_res_usage_error(o, "unknown resource type \"%s\" (one of %.*s)", o->args[0],
                                    (int)b.len, (const char *)b.data);
        kp_buf_free(&b);
        return rc;
    }
    if (need_name && o->nargs < 2)
        return kp_res_usage_error(o, "which %s? give its NAME (or -f FILE)", (*k)->singular);
    if (o->nargs > 1 && o->all_ns)
        return kp_res_usage_error(o,
                                  "a resource cannot be retrieved by name across all namespaces");
    if (o->nargs > 1 && o->selector)
        return kp_res_usage_error(o, "a NAME cannot be combined with -l");
    if (o->all_ns && o->ns) return kp_res_usage_error(o, "-A and -n exclude each other");
    return 0;
}
