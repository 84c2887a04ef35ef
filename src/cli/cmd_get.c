/*
 * cmd_get.c — `kpool get` and `kpool describe`: list or show resources (tables, wide, yaml,
 * json, name) and explain what their status says. They share everything up to the printing.
 */
#include "cli/cli.h"
#include "cli/res_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const kp_option_t get_options[] = {
    KP_RES_OPT_NAMESPACE(KP_RES_OPT_NS_HELP),
    KP_RES_OPT_ALL_NS,
    KP_RES_OPT_SELECTOR,
    KP_OPT_STRING('o', "output", kp_res_opts_t, output, "FORMAT",
                  "wide (more columns), yaml, json, or name"),
    KP_RES_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_get_cmd = {
    .name = "get",
    .usage = "get KIND [NAME...] [-n NS | -A] [-l key=value] [-o FORMAT]",
    .description = "Lists resources of KIND in a namespace (or every namespace with -A), or shows\n"
                   "the named ones. Secret values are never shown in tables.\n",
    .options = get_options,
    .extra = kp_res_help_kinds,
    .footer = KP_RES_FOOTER,
};

static const kp_option_t describe_options[] = {
    KP_RES_OPT_NAMESPACE(KP_RES_OPT_NS_HELP),
    KP_RES_OPT_ALL_NS,
    KP_RES_OPT_SELECTOR,
    KP_RES_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_describe_cmd = {
    .name = "describe",
    .usage = "describe KIND [NAME...] [-n NS | -A] [-l key=value]",
    .description = "Shows a resource for humans: metadata, spec, and its status: synchronization\n"
                   "state, message, errors and conditions (type, status, reason, message, time).\n"
                   "Without NAME, describes every resource of KIND in the namespace.\n",
    .options = describe_options,
    .extra = kp_res_help_kinds,
    .footer = KP_RES_FOOTER,
};

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
static json_t *fetch(kp_client_t *c, const kp_res_opts_t *o, const kp_kind_t *k, int *failed)
{
    const char *ns = o->all_ns ? NULL : kp_res_namespace(o, c);
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
        if (kp_res_call(c, "GET", (const char *)path.data, NULL, &r, 0) < 0) goto out;
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
        if (kp_res_call(c, "GET", (const char *)path.data, NULL, &r, 0) < 0) {
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

static void no_resources(const kp_kind_t *k, const kp_res_opts_t *o, const char *ns)
{
    if (o->all_ns || !k->namespaced)
        fprintf(stderr, "No resources found\n");
    else
        fprintf(stderr, "No resources found in %s namespace.\n", ns);
}

static void get_print(const kp_kind_t *k, const kp_res_opts_t *o, json_t *list, kp_res_out_t fmt,
                      const char *ns)
{
    json_t *items = json_object_get(list, "items");
    size_t i;
    json_t *it;
    switch (fmt) {
    case KP_RES_OUT_YAML:
    case KP_RES_OUT_JSON:
        /* one object by name prints the object itself, as kubectl */
        kp_res_print_doc(
            o->nargs == 2 && json_array_size(items) == 1 ? json_array_get(items, 0) : list, fmt);
        return;
    case KP_RES_OUT_NAME:
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
        kp_table_render(k, items, fmt == KP_RES_OUT_WIDE, o->all_ns, time(NULL), &t);
        fwrite(t.data, 1, t.len, stdout);
        kp_buf_free(&t);
    }
}

/* get (describe = 0) and describe (describe = 1) share everything up to the printing. */
static int get_or_describe(int argc, char **argv, int describe)
{
    kp_res_opts_t o;
    kp_res_out_t fmt = KP_RES_OUT_TABLE;
    const kp_kind_t *k = NULL;
    int rc = kp_res_opts_parse(&o, describe ? &kp_describe_cmd : &kp_get_cmd, argc, argv);
    if (!rc) rc = kp_res_output_parse(&o, &fmt);
    if (!rc) rc = kp_res_kind_args(&o, 0, &k);
    if (rc) goto out;
    kp_client_t *c = kp_res_client_open(&o, &rc);
    if (!c) goto out;
    int failed;
    json_t *list = fetch(c, &o, k, &failed);
    if (list && !describe) {
        get_print(k, &o, list, fmt, kp_res_namespace(&o, c));
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
        if (!json_array_size(items) && o.nargs < 2) no_resources(k, &o, kp_res_namespace(&o, c));
    }
    rc = !list || failed ? KP_RES_EXIT_API : 0;
    json_decref(list);
    kp_client_free(c);
out:
    kp_res_opts_free(&o);
    return rc == KP_OPTS_HELP ? 0 : rc;
}

int kp_cmd_get(int argc, char **argv)
{
    return get_or_describe(argc, argv, 0);
}

int kp_cmd_describe(int argc, char **argv)
{
    return get_or_describe(argc, argv, 1);
}
