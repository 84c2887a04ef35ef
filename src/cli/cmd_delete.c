/*
 * cmd_delete.c — `kpool delete KIND NAME...` or `kpool delete -f FILE`: the control plane
 * marks the resources, cleans up in the pool, then removes them.
 */
#include "cli/cli.h"
#include "cli/res_cmd.h"

#include <stdio.h>
#include <string.h>

static const kp_option_t delete_options[] = {
    KP_RES_OPT_FILES("delete the resources a manifest declares"),
    KP_RES_OPT_NAMESPACE(KP_RES_OPT_NS_HELP),
    KP_OPT_BOOL(0, "ignore-not-found", kp_res_opts_t, ignore_not_found,
                "a resource that does not exist is not an error"),
    KP_RES_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_delete_cmd = {
    .name = "delete",
    .usage = "delete KIND NAME... [-n NS]\ndelete -f FILE [-f FILE...] [-n NS]",
    .description =
        "Deletes resources. The control plane marks them (deletionTimestamp), cleans up\n"
        "in the pool, then removes them. Deleting a Topic keeps its data unless it has\n"
        "the annotation kafka.nais.io/removeDataWhenResourceIsDeleted: \"true\".\n",
    .options = delete_options,
    .extra = kp_res_help_kinds,
    .footer = KP_RES_FOOTER,
};

static int delete_one(kp_client_t *c, const kp_kind_t *k, const char *path, const char *name,
                      int ignore_not_found)
{
    kp_client_resp_t r;
    if (kp_res_call(c, "DELETE", path, NULL, &r, ignore_not_found) < 0) return -1;
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

static int delete_files(kp_client_t *c, const kp_res_opts_t *o)
{
    json_t *docs = kp_res_manifests(o, kp_client_namespace(c));
    if (!docs) return KP_RES_EXIT_USAGE;
    int rc = 0;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        kp_buf_t path;
        kp_buf_init(&path);
        const char *name;
        const kp_kind_t *k = kp_res_doc_path(doc, &path, &name);
        kp_buf_append(&path, "", 1);
        if (!k || delete_one(c, k, (const char *)path.data, name, o->ignore_not_found) < 0)
            rc = KP_RES_EXIT_API;
        kp_buf_free(&path);
    }
    json_decref(docs);
    return rc;
}

int kp_cmd_delete(int argc, char **argv)
{
    kp_res_opts_t o;
    const kp_kind_t *k = NULL;
    int rc = kp_res_opts_parse(&o, &kp_delete_cmd, argc, argv);
    if (!rc && o.files.n && o.nargs)
        rc = kp_res_usage_error(&o, "give either KIND NAME or -f FILE, not both");
    else if (!rc && !o.files.n)
        rc = kp_res_kind_args(&o, 1, &k);
    if (rc) goto out;
    kp_client_t *c = kp_res_client_open(&o, &rc);
    if (!c) goto out;
    if (o.files.n) {
        rc = delete_files(c, &o);
    } else {
        for (int i = 1; i < o.nargs; i++) {
            kp_buf_t path;
            kp_buf_init(&path);
            char err[512];
            if (kp_resource_path(k, kp_res_namespace(&o, c), o.args[i], NULL, &path, err,
                                 sizeof(err)) < 0) {
                fprintf(stderr, "error: %s\n", err);
                rc = KP_RES_EXIT_API;
            } else {
                kp_buf_append(&path, "", 1);
                if (delete_one(c, k, (const char *)path.data, o.args[i], o.ignore_not_found) < 0)
                    rc = KP_RES_EXIT_API;
            }
            kp_buf_free(&path);
        }
    }
    kp_client_free(c);
out:
    kp_res_opts_free(&o);
    return rc == KP_OPTS_HELP ? 0 : rc;
}
