/* kubeconfig.c — writing and reading kubeconfigs (see kubeconfig.h). */
#include "core/kubeconfig.h"

#include "core/buf.h"
#include "core/yamljson.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A YAML scalar as a double-quoted JSON string (JSON is YAML): any name or path is safe. */
static void yaml_str(kp_buf_t *b, const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    kp_buf_appendf(b, "%s", t ? t : "\"\"");
    free(t);
    json_decref(j);
}

int kp_kubeconfig_write_to(const char *path, const kp_kubeconfig_t *kc, char *err, size_t errlen)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_appendf(&b,
                   "# written by %s: kubectl's way to the control plane (docs/kubectl.md)\n"
                   "apiVersion: v1\nkind: Config\nclusters:\n- name: ",
                   kc->writer);
    yaml_str(&b, kc->cluster);
    kp_buf_appendf(&b, "\n  cluster:\n    server: ");
    yaml_str(&b, kc->server);
    kp_buf_appendf(&b, "\n");
    if (kc->ca && *kc->ca) {
        kp_buf_appendf(&b, "    certificate-authority: ");
        yaml_str(&b, kc->ca);
        kp_buf_appendf(&b, "\n");
    } else if (kc->ca_data && *kc->ca_data) {
        kp_buf_appendf(&b, "    certificate-authority-data: ");
        yaml_str(&b, kc->ca_data);
        kp_buf_appendf(&b, "\n");
    }
    kp_buf_appendf(&b, "users:\n- name: ");
    yaml_str(&b, kc->user);
    kp_buf_appendf(&b, "\n  user:\n    token: ");
    yaml_str(&b, kc->token);
    kp_buf_appendf(&b, "\ncontexts:\n- name: ");
    yaml_str(&b, kc->context);
    kp_buf_appendf(&b, "\n  context:\n    cluster: ");
    yaml_str(&b, kc->cluster);
    kp_buf_appendf(&b, "\n    user: ");
    yaml_str(&b, kc->user);
    kp_buf_appendf(&b, "\n    namespace: ");
    yaml_str(&b, kc->ns);
    kp_buf_appendf(&b, "\ncurrent-context: ");
    yaml_str(&b, kc->context);
    kp_buf_appendf(&b, "\n");
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp); /* O_EXCL below: never write through a file (or link) someone left there */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0) close(fd);
    memset(b.data, 0, b.len); /* the token */
    kp_buf_free(&b);
    if (!ok || rename(tmp, path) < 0) {
        if (ok) saved = errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int kp_kubeconfig_write(const char *path, const char *cli_config, const char *server, char *err,
                        size_t errlen)
{
    uint8_t *text;
    size_t len;
    if (kp_fs_read_all(cli_config, 1 << 20, &text, &len) < 0) {
        snprintf(err, errlen, "cannot read %s", cli_config);
        return -1;
    }
    char e[256];
    json_t *cfg = kp_yaml_parse_one((char *)text, len, e, sizeof(e));
    memset(text, 0, len); /* the token */
    free(text);
    const char *token = json_string_value(json_object_get(cfg, "token"));
    const char *ca = json_string_value(json_object_get(cfg, "ca"));
    if (!token) {
        json_decref(cfg);
        snprintf(err, errlen, "%s holds no token", cli_config);
        return -1;
    }
    kp_kubeconfig_t kc = {
        .server = server,
        .ca = ca && *ca && !strncmp(server, "https:", 6) ? ca : NULL,
        .token = token,
        .cluster = "kpool",
        .user = "kpool-admin",
        .context = "kpool",
        .ns = "default",
        .writer = "kpool up",
    };
    int rc = kp_kubeconfig_write_to(path, &kc, err, errlen);
    json_decref(cfg);
    return rc;
}

/* The entry named name of the list key ("clusters", "contexts") of cfg, its inner object
 * (key "cluster", "context"). */
static json_t *named(json_t *cfg, const char *list, const char *inner, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(cfg, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && name && !strcmp(n, name)) return json_object_get(e, inner);
    }
    return NULL;
}

int kp_kubeconfig_cluster(const char *path, char **server, char **ca, char **ca_data, char *err,
                          size_t errlen)
{
    *server = *ca = *ca_data = NULL;
    uint8_t *text;
    size_t len;
    if (kp_fs_read_all(path, 1 << 20, &text, &len) < 0) {
        snprintf(err, errlen, "cannot read the kubeconfig %s", path);
        return -1;
    }
    char e[256];
    json_t *cfg = kp_yaml_parse_one((char *)text, len, e, sizeof(e));
    memset(text, 0, len); /* it may hold a token */
    free(text);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        snprintf(err, errlen, "%s: not a kubeconfig", path);
        return -1;
    }
    const char *cur = json_string_value(json_object_get(cfg, "current-context"));
    json_t *ctx = named(cfg, "contexts", "context", cur);
    json_t *cl =
        named(cfg, "clusters", "cluster", json_string_value(json_object_get(ctx, "cluster")));
    const char *srv = json_string_value(json_object_get(cl, "server"));
    if (!srv || !*srv) {
        json_decref(cfg);
        snprintf(err, errlen, "%s: its current context (%s) names no cluster with a server", path,
                 cur ? cur : "none");
        return -1;
    }
    *server = kp_xstrdup(srv);
    const char *c = json_string_value(json_object_get(cl, "certificate-authority"));
    const char *d = json_string_value(json_object_get(cl, "certificate-authority-data"));
    if (c && *c) {
        const char *slash = strrchr(path, '/');
        kp_buf_t b;
        kp_buf_init(&b);
        if (c[0] != '/' && slash)
            kp_buf_appendf(&b, "%.*s/%s", (int)(slash - path), path, c);
        else
            kp_buf_appendf(&b, "%s", c);
        kp_buf_append(&b, "", 1);
        /* the file written may live elsewhere: an absolute path keeps pointing at the CA */
        char *abs = realpath((char *)b.data, NULL);
        *ca = abs ? abs : kp_xstrdup((char *)b.data);
        kp_buf_free(&b);
    } else if (d && *d) {
        *ca_data = kp_xstrdup(d);
    }
    json_decref(cfg);
    return 0;
}
