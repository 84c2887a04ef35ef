/*
 * kubeconfig.h — the kubeconfigs kpool writes (docs/kubectl.md): `kpool up`'s, next to its
 * data (the admin token), and a team's (`kpool team create NAME --kubeconfig FILE`, the
 * team's token, its namespace as the context's). Either points an unmodified kubectl at the
 * control plane; ~/.kube/config is never touched.
 */
#ifndef KP_KUBECONFIG_H
#define KP_KUBECONFIG_H

#include <stddef.h>

/* What a kubeconfig holds: one cluster, one user, one context. */
typedef struct kp_kubeconfig {
    const char *server;  /* https://127.0.0.1:6443 */
    const char *ca;      /* certificate-authority (a PEM file), or NULL */
    const char *ca_data; /* certificate-authority-data (base64 PEM), or NULL */
    const char *token;
    const char *cluster, *user, *context; /* the names of the three entries */
    const char *ns;                       /* the context's namespace */
    const char *writer;                   /* "kpool up": the first line's comment */
} kp_kubeconfig_t;

/* Writes kc to path with mode 0600 (it holds a token), replacing it atomically. The token
 * is wiped from the memory used. 0, or -1 with err (never naming the token). */
int kp_kubeconfig_write_to(const char *path, const kp_kubeconfig_t *kc, char *err, size_t errlen);

/* Writes `kpool up`'s kubeconfig at path for server with the token and CA (PEM file, NULL or
 * "" for http) of the CLI configuration at cli_config. 0, or -1 with err. */
int kp_kubeconfig_write(const char *path, const char *cli_config, const char *server, char *err,
                        size_t errlen);

/* Reads the cluster of the current context of the kubeconfig at path: *server, and *ca or
 * *ca_data (malloc'd, NULL when absent; a relative ca is made relative to path's directory).
 * 0, or -1 with err. */
int kp_kubeconfig_cluster(const char *path, char **server, char **ca, char **ca_data, char *err,
                          size_t errlen);

#endif
