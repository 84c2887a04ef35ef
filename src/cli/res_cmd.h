/*
 * res_cmd.h — what the resource commands (cmd_apply.c, cmd_get.c, cmd_delete.c, cmd_team.c)
 * share: their options struct, the client and its one-request helper, manifests from files,
 * output formats and the parts of their help. The pure work (kinds, paths, manifests,
 * tables, describe) is in resources.c / resource_print.c; HTTP in client.c.
 *
 * Exit status: 0 success; 1 the server refused a request or could not be reached; 2 invalid
 * command line or input, in which case nothing was sent. Errors are one line on stderr.
 */
#ifndef KP_CLI_RES_CMD_H
#define KP_CLI_RES_CMD_H

#include "cli/client.h"
#include "cli/opts.h"
#include "cli/resources.h"

#include <stdio.h>

#define KP_RES_EXIT_API   1
#define KP_RES_EXIT_USAGE 2

/* -f given to one command: each is a file, a directory or stdin. */
#define KP_RES_FILES_MAX 64

typedef struct kp_res_opts {
    const char *cmd; /* "get", for messages */
    const char *ns;
    int all_ns;
    const char *output;
    const char *selector;
    kp_strlist_t files;
    int ignore_not_found;
    kp_client_opts_t client;
    char **args; /* positional arguments (argv order) */
    int nargs;
} kp_res_opts_t;

/* The options every resource command declares the same way. */
#define KP_RES_OPT_NAMESPACE(h) KP_OPT_NAMESPACE(kp_res_opts_t, ns, h)
#define KP_RES_OPT_NS_HELP      "namespace [the config's 'namespace', else default]"
#define KP_RES_OPT_ALL_NS                                                                          \
    KP_OPT_BOOL('A', "all-namespaces", kp_res_opts_t, all_ns, "every namespace the token may read")
#define KP_RES_OPT_SELECTOR                                                                        \
    KP_OPT_STRING('l', "selector", kp_res_opts_t, selector, "SEL",                                 \
                  "only resources whose labels match key=value[,...]")
#define KP_RES_OPT_FILES(h)                                                                        \
    KP_OPT_LIST('f', "filename", kp_res_opts_t, files, "FILE", h, KP_RES_FILES_MAX)
#define KP_RES_OPT_CONNECTION KP_OPT_CONNECTION(kp_res_opts_t, client)

/* The end of every resource command's help. */
#define KP_RES_FOOTER                                                                              \
    KP_OPTS_CONFIG_HELP                                                                            \
    "Exit status: 0 success, 1 the server refused a request or could not be reached,\n"            \
    "2 invalid command line or input (nothing was sent).\n"

/* Parses argv for cmd into o. 0, KP_OPTS_HELP (help printed) or the usage exit code. Free
 * with kp_res_opts_free in every case. */
int kp_res_opts_parse(kp_res_opts_t *o, const kp_opts_cmd_t *cmd, int argc, char **argv);
void kp_res_opts_free(kp_res_opts_t *o);
int kp_res_usage_error(const kp_res_opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "KIND (singular, plural or short name): ..." for the help of get, describe and delete. */
void kp_res_help_kinds(FILE *f);

/* Opens the client; a missing token is reported here, before anything is sent. NULL with
 * the exit code in *rc. */
kp_client_t *kp_res_client_open(const kp_res_opts_t *o, int *rc);
/* One request; on a transport failure or a non-2xx status (unless ok_404 and 404) the error
 * line is printed and -1 returned (resp freed). */
int kp_res_call(kp_client_t *c, const char *method, const char *path, const json_t *body,
                kp_client_resp_t *resp, int ok_404);
/* The namespace a command acts in: -n, else the config's, else "default". */
const char *kp_res_namespace(const kp_res_opts_t *o, const kp_client_t *c);
/* Every document of every -f, loaded and prepared (kind, namespace) before anything is
 * sent. NULL after printing. */
json_t *kp_res_manifests(const kp_res_opts_t *o, const char *default_ns);
/* Kind, namespace and name of a prepared document, and its path. NULL after printing. */
const kp_kind_t *kp_res_doc_path(const json_t *doc, kp_buf_t *path, const char **name);

typedef enum {
    KP_RES_OUT_TABLE,
    KP_RES_OUT_WIDE,
    KP_RES_OUT_YAML,
    KP_RES_OUT_JSON,
    KP_RES_OUT_NAME
} kp_res_out_t;
/* -o: 0, or the usage exit code (printed). */
int kp_res_output_parse(const kp_res_opts_t *o, kp_res_out_t *fmt);
/* v as YAML or JSON on stdout. */
void kp_res_print_doc(const json_t *v, kp_res_out_t fmt);
/* Checks KIND [NAME...] against -A and -l. 0, or the usage exit code (printed). */
int kp_res_kind_args(const kp_res_opts_t *o, int need_name, const kp_kind_t **k);

#endif
