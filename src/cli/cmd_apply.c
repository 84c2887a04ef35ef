/*
 * cmd_apply.c — `kpool apply -f FILE`: create or replace the resources of manifests, with
 * kubectl's verdicts (created, configured, unchanged). Every document is checked before the
 * first is sent.
 */
#include "cli/cli.h"
#include "cli/res_cmd.h"

#include <stdio.h>
#include <string.h>

static const kp_option_t apply_options[] = {
    KP_RES_OPT_FILES("manifest to apply (repeatable)"),
    KP_RES_OPT_NAMESPACE("namespace of documents that name none; a document\n"
                         "naming another namespace is an error"),
    KP_RES_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_apply_cmd = {
    .name = "apply",
    .usage = "apply -f FILE [-f FILE...] [-n NAMESPACE]",
    .description =
        "Creates or replaces the resources in FILE (YAML, several documents separated by\n"
        "'---', or JSON; a List's items; '-' reads stdin; a directory applies its .yaml,\n"
        ".yml and .json files). Prints each as created, configured or unchanged.\n"
        "Every document is checked before the first is sent.\n",
    .options = apply_options,
    .footer = KP_RES_FOOTER,
};

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
    const kp_kind_t *k = kp_res_doc_path(doc, &path, &name);
    int rc = -1;
    if (!k) goto out;
    kp_buf_append(&path, "", 1);
    kp_client_resp_t before, after;
    if (kp_res_call(c, "GET", (const char *)path.data, NULL, &before, 1) < 0) goto out;
    json_t *old = before.status == 200 ? before.json : NULL;
    if (kp_res_call(c, "PUT", (const char *)path.data, doc, &after, 0) == 0) {
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
    kp_res_opts_t o;
    int rc = kp_res_opts_parse(&o, &kp_apply_cmd, argc, argv);
    if (!rc && !o.files.n)
        rc = kp_res_usage_error(&o, "-f FILE is required");
    else if (!rc && o.nargs)
        rc = kp_res_usage_error(&o, "unexpected argument '%s' (manifests are given with -f)",
                                o.args[0]);
    if (rc) goto out;
    kp_client_t *c = kp_res_client_open(&o, &rc);
    if (!c) goto out;
    json_t *docs = kp_res_manifests(&o, kp_client_namespace(c));
    if (!docs) {
        rc = KP_RES_EXIT_USAGE;
    } else {
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc) if (apply_one(c, doc) < 0) rc = KP_RES_EXIT_API;
        json_decref(docs);
    }
    kp_client_free(c);
out:
    kp_res_opts_free(&o);
    return rc == KP_OPTS_HELP ? 0 : rc;
}
