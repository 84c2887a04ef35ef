/*
 * cmd_team.c — `kpool team create|rotate|revoke NAME` and `kpool team list`: teams'
 * (namespaces') API tokens, admin only. A token is printed once, when it is issued.
 */
#include "cli/cli.h"
#include "core/kubeconfig.h"
#include "cli/res_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The resource commands' options (first: kp_res_opts_t's offsets hold) and the team
 * kubeconfig's. */
typedef struct team_opts {
    kp_res_opts_t res;
    const char *kubeconfig;  /* --kubeconfig FILE: write the team's kubeconfig there */
    const char *kube_server; /* --kube-server URL: its cluster, instead of $KUBECONFIG's */
} team_opts_t;

static const kp_option_t team_options[] = {
    KP_OPT_STRING('o', "output", team_opts_t, res.output, "FORMAT",
                  "json or yaml: print the server's answer as is;\n"
                  "list also takes wide and name"),
    KP_OPT_NONEMPTY(0, "kubeconfig", team_opts_t, kubeconfig, "FILE",
                    "create and rotate: write a kubeconfig for the team\n"
                    "(mode 0600: its token; context kpool-NAME, namespace\n"
                    "NAME) instead of printing the token",
                    "--kubeconfig needs a file name"),
    KP_OPT_NONEMPTY(0, "kube-server", team_opts_t, kube_server, "URL",
                    "the kubectl listener for --kubeconfig (CA: the\n"
                    "config's 'ca') [the current cluster of $KUBECONFIG]",
                    "--kube-server needs a URL"),
    KP_OPT_CONNECTION(team_opts_t, res.client),
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_team_cmd = {
    .name = "team",
    .usage = "team create NAME [-o json|yaml | --kubeconfig FILE [--kube-server URL]]\n"
             "team rotate NAME [-o json|yaml | --kubeconfig FILE [--kube-server URL]]\n"
             "team revoke NAME [-o json|yaml]\n"
             "team list [NAME...] [-o wide|json|yaml|name]",
    .description =
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
        "With --kubeconfig FILE, create and rotate write the new token into a kubeconfig\n"
        "for the team instead of printing it (docs/kubectl.md): the cluster (server and\n"
        "CA) is the current one of $KUBECONFIG (the one 'kpool up' wrote), or\n"
        "--kube-server with the config's 'ca'. A team member then runs\n"
        "'kubectl --kubeconfig FILE get topics' and sees only the team's namespace.\n",
    .options = team_options,
    .footer = KP_RES_FOOTER,
};

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
           "and set KPOOL_CONFIG to it, or pass --token <the token> -n %s (kubectl: "
           "--kubeconfig FILE writes a kubeconfig instead).\n",
           name, name);
    return 0;
}

/* Where the team's kubeconfig points kubectl: --kube-server (CA: the CLI config's), else
 * the current cluster of $KUBECONFIG's first file. Read before the token is issued, so a
 * missing cluster never costs one. 0, or -1 (printed). */
static int team_cluster(const team_opts_t *o, kp_client_t *c, char **server, char **ca,
                        char **ca_data)
{
    char err[512];
    *server = *ca = *ca_data = NULL;
    if (o->kube_server) {
        if (strncmp(o->kube_server, "https://", 8) != 0) {
            fprintf(stderr, "error: --kube-server %s: kubectl sends a token only over https://\n",
                    o->kube_server);
            return -1;
        }
        const char *cfg_ca = kp_client_config(c)->ca;
        *server = kp_xstrdup(o->kube_server);
        if (cfg_ca && *cfg_ca) *ca = kp_xstrdup(cfg_ca);
        return 0;
    }
    const char *env = getenv("KUBECONFIG");
    if (!env || !*env) {
        fprintf(stderr, "error: --kubeconfig: which cluster? Set KUBECONFIG to the kubeconfig "
                        "'kpool up' wrote (<data dir>/kubeconfig) or pass --kube-server URL\n");
        return -1;
    }
    char first[4096];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(env, ":"), env);
    if (kp_kubeconfig_cluster(first, server, ca, ca_data, err, sizeof(err)) < 0) {
        fprintf(stderr, "error: --kubeconfig: %s\n", err);
        return -1;
    }
    return 0;
}

/* Writes the team's kubeconfig with its new token. 0, or -1 (printed). */
static int team_kubeconfig(const team_opts_t *o, const char *name, const char *token,
                           const char *server, const char *ca, const char *ca_data)
{
    char user[128], context[128], err[512];
    snprintf(user, sizeof(user), "kpool-team-%s", name);
    snprintf(context, sizeof(context), "kpool-%s", name);
    kp_kubeconfig_t kc = {
        .server = server,
        .ca = ca,
        .ca_data = ca_data,
        .token = token,
        .cluster = "kpool",
        .user = user,
        .context = context,
        .ns = name,
        .writer = "kpool team",
    };
    if (kp_kubeconfig_write_to(o->kubeconfig, &kc, err, sizeof(err)) < 0) {
        fprintf(stderr,
                "error: %s; the token was issued but not written: 'kpool team rotate %s "
                "--kubeconfig FILE' issues another\n",
                err, name);
        return -1;
    }
    return 0;
}

/* create (POST teams), rotate (POST teams/NAME/rotate) and revoke (DELETE teams/NAME). */
static int team_change(kp_client_t *c, const team_opts_t *o, const char *sub, const char *name,
                       kp_res_out_t fmt)
{
    char path[256];
    json_t *body = NULL;
    const char *method = "POST";
    char *server = NULL, *ca = NULL, *ca_data = NULL;
    if (o->kubeconfig && team_cluster(o, c, &server, &ca, &ca_data) < 0) return KP_RES_EXIT_USAGE;
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
    int rc = kp_res_call(c, method, path, body, &r, 0);
    json_decref(body);
    if (rc < 0) goto out;
    if (!json_is_object(r.json)) {
        fprintf(stderr, "error: the server's answer to %s %s is not a JSON object\n", method, path);
        rc = -1;
    } else if (o->kubeconfig) {
        const char *token = team_token(r.json);
        if (!token) {
            fprintf(stderr, "error: team \"%s\": the server's answer has no token\n", name);
            rc = -1;
        } else {
            rc = team_kubeconfig(o, name, token, server, ca, ca_data);
        }
        if (!rc)
            printf("team/%s %s\n"
                   "kubeconfig written to %s (mode 0600: it holds the team's token; context "
                   "kpool-%s, namespace %s).\n"
                   "Give it to the team: kubectl --kubeconfig %s get topics\n",
                   name, !strcmp(sub, "create") ? "created" : "token rotated", o->kubeconfig, name,
                   name, o->kubeconfig);
    } else if (fmt == KP_RES_OUT_JSON || fmt == KP_RES_OUT_YAML) {
        kp_res_print_doc(r.json, fmt);
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
out:
    free(server);
    free(ca);
    free(ca_data);
    return rc < 0 ? KP_RES_EXIT_API : 0;
}

/* list [NAME...]: every team, or the named ones (each a request; a missing one is an error
 * and the others are still shown). */
static int team_list(kp_client_t *c, const kp_res_opts_t *o, kp_res_out_t fmt)
{
    kp_client_resp_t r;
    json_t *list;
    int failed = 0;
    if (o->nargs < 2) {
        if (kp_res_call(c, "GET", TEAMS_PATH, NULL, &r, 0) < 0) return KP_RES_EXIT_API;
        list = json_incref(r.json);
        kp_client_resp_free(&r);
        if (!json_is_array(json_object_get(list, "items")))
            json_object_set_new(list, "items", json_array());
    } else {
        json_t *items = json_array();
        for (int i = 1; i < o->nargs; i++) {
            char path[256];
            snprintf(path, sizeof(path), TEAMS_PATH "/%s", o->args[i]);
            if (kp_res_call(c, "GET", path, NULL, &r, 0) < 0) {
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
    if (fmt == KP_RES_OUT_JSON || fmt == KP_RES_OUT_YAML) {
        kp_res_print_doc(
            o->nargs == 2 && json_array_size(items) == 1 ? json_array_get(items, 0) : list, fmt);
    } else if (fmt == KP_RES_OUT_NAME) {
        json_array_foreach(items, i, it)
        {
            const char *name =
                json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
            printf("team/%s\n", name ? name : "");
        }
    } else if (json_array_size(items)) {
        kp_buf_t t;
        kp_buf_init(&t);
        kp_teams_table_render(items, fmt == KP_RES_OUT_WIDE, time(NULL), &t);
        fwrite(t.data, 1, t.len, stdout);
        kp_buf_free(&t);
    } else if (o->nargs < 2) {
        fprintf(stderr, "No teams found\n");
    }
    json_decref(list);
    return failed ? KP_RES_EXIT_API : 0;
}

/* Checks the command line of `kpool team`. 0, or the usage exit code (printed). */
static int team_args(const team_opts_t *t, kp_res_out_t fmt)
{
    const kp_res_opts_t *o = &t->res;
    static const char subs[] = "create, rotate, revoke, list";
    if (o->nargs < 1) return kp_res_usage_error(o, "which subcommand? %s", subs);
    const char *sub = o->args[0];
    int list = !strcmp(sub, "list");
    if (!list && strcmp(sub, "create") && strcmp(sub, "rotate") && strcmp(sub, "revoke"))
        return kp_res_usage_error(o, "unknown subcommand '%s' (%s)", sub, subs);
    if (!list && o->nargs != 2) return kp_res_usage_error(o, "team %s needs exactly one NAME", sub);
    if (!list && (fmt == KP_RES_OUT_WIDE || fmt == KP_RES_OUT_NAME))
        return kp_res_usage_error(o, "-o %s is not supported by team %s (json or yaml)", o->output,
                                  sub);
    if ((t->kubeconfig || t->kube_server) && strcmp(sub, "create") && strcmp(sub, "rotate"))
        return kp_res_usage_error(o, "--kubeconfig and --kube-server go with create and rotate");
    if (t->kube_server && !t->kubeconfig)
        return kp_res_usage_error(o, "--kube-server goes with --kubeconfig FILE");
    if (t->kubeconfig && o->output)
        return kp_res_usage_error(o, "--kubeconfig writes the token into a file: no -o");
    for (int i = 1; i < o->nargs; i++) {
        char why[256];
        /* checked here, so a name can never address another path */
        if (kp_name_check(o->args[i], 1, why, sizeof(why)) < 0)
            return kp_res_usage_error(o, "team name \"%s\": %s", o->args[i], why);
    }
    return 0;
}

int kp_cmd_team(int argc, char **argv)
{
    team_opts_t t;
    kp_res_opts_t *o = &t.res;
    kp_res_out_t fmt = KP_RES_OUT_TABLE;
    memset(&t, 0, sizeof(t));
    o->cmd = kp_team_cmd.name;
    int rc = kp_opts_parse(&kp_team_cmd, &t, argc, argv, &o->args, &o->nargs);
    if (!rc) rc = kp_res_output_parse(o, &fmt);
    if (!rc) rc = team_args(&t, fmt);
    if (rc) goto out;
    kp_client_t *c = kp_res_client_open(o, &rc);
    if (!c) goto out;
    if (!strcmp(o->args[0], "list"))
        rc = team_list(c, o, fmt);
    else
        rc = team_change(c, &t, o->args[0], o->args[1], fmt);
    kp_client_free(c);
out:
    kp_res_opts_free(o);
    return rc == KP_OPTS_HELP ? 0 : rc;
}
