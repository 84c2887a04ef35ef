/* kubeconfig.c — writing `kpool up`'s kubeconfig (see kubeconfig.h). */
#include "cli/kubeconfig.h"

#include "core/buf.h"
#include "core/yamljson.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    free(text);
    const char *token = json_string_value(json_object_get(cfg, "token"));
    const char *ca = json_string_value(json_object_get(cfg, "ca"));
    if (!token) {
        json_decref(cfg);
        snprintf(err, errlen, "%s holds no token", cli_config);
        return -1;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_appendf(&b,
                   "# written by kpool up: kubectl's way to the control plane (docs/kubectl.md)\n"
                   "apiVersion: v1\nkind: Config\nclusters:\n- name: kpool\n  cluster:\n"
                   "    server: %s\n",
                   server);
    if (ca && *ca && !strncmp(server, "https:", 6))
        kp_buf_appendf(&b, "    certificate-authority: %s\n", ca);
    kp_buf_appendf(&b,
                   "users:\n- name: kpool-admin\n  user:\n    token: %s\ncontexts:\n- name: kpool\n"
                   "  context:\n    cluster: kpool\n    user: kpool-admin\n"
                   "    namespace: default\ncurrent-context: kpool\n",
                   token);
    json_decref(cfg);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    memset(b.data, 0, b.len); /* the token */
    kp_buf_free(&b);
    if (!ok || rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
