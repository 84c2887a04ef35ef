/*
 * kubeconfig.h — the kubeconfig `kpool up` writes next to its data (docs/kubectl.md): one
 * cluster, user and context named `kpool`, so `export KUBECONFIG=<data dir>/kubeconfig`
 * points an unmodified kubectl at the control plane. ~/.kube/config is never touched.
 */
#ifndef KP_KUBECONFIG_H
#define KP_KUBECONFIG_H

#include <stddef.h>

/* Writes path (mode 0600: it holds the token) for server with the token and CA (PEM file,
 * NULL or "" for http) of the CLI configuration at cli_config. 0, or -1 with err. */
int kp_kubeconfig_write(const char *path, const char *cli_config, const char *server, char *err,
                        size_t errlen);

#endif
