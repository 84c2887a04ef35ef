/*
 * client.h — the control plane API client used by the resource commands (apply, get,
 * describe, delete, team) and any other command that talks to the API.
 *
 *   - configuration: $KPOOL_CONFIG, else ~/.config/kpool/config.yaml (docs/api.md: server,
 *     token, ca, namespace), with --server / --token overriding the file;
 *   - requests: libcurl, JSON bodies (jansson), `Authorization: Bearer`, TLS verified against
 *     the configured CA for https, connect and total timeouts, no redirects (a redirect must
 *     never carry the token elsewhere);
 *   - responses: `Warning:` headers are printed to stderr as they are received; a failed
 *     request is turned into one line, kubectl's "Error from server (Reason): message".
 *
 * The token is never printed, logged or put in an error message. One kp_client_t is used by
 * one thread at a time (it holds one curl handle, so connections are reused between calls).
 */
#ifndef KP_CLI_CLIENT_H
#define KP_CLI_CLIENT_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

/* Where the API listens when neither the config nor --server says (docs/api.md). */
#define KP_CLIENT_SERVER_DEFAULT "http://127.0.0.1:8080"
/* Namespace of commands given no -n and no `namespace:` in the config (as kubectl). */
#define KP_CLIENT_NAMESPACE_DEFAULT "default"

/* CLI-only bounds (src/core/limits.h holds the server's):
 * the config file is a handful of lines; a larger one is a mistake, not a config. */
#define KP_CLIENT_CONFIG_BYTES_MAX (64 * 1024)
/* A response body larger than this is refused: a misbehaving server cannot make the CLI
 * allocate without bound (a list of 100,000 resources still fits). */
#define KP_CLIENT_BODY_BYTES_MAX (256 * 1024 * 1024)
/* Warning header bytes kept per response (one short line per unknown field). */
#define KP_CLIENT_WARNINGS_BYTES_MAX (64 * 1024)
/* Default total time of one request, and of establishing its connection. */
#define KP_CLIENT_TIMEOUT_MS_DEFAULT 30000
#define KP_CLIENT_CONNECT_TIMEOUT_MS 10000

/* The CLI configuration file, after overrides. Strings are owned (NULL when unset). */
typedef struct kp_client_config {
    char *server;    /* base URL without trailing '/' */
    char *token;     /* bearer token */
    char *ca;        /* PEM CA file verifying https servers (absolute, or relative to cwd) */
    char *namespace; /* default -n */
    char *path;      /* the file it came from (for messages) */
    int file_found;  /* 0: the file did not exist (defaults only) */
} kp_client_config_t;

/* The config file's path: $KPOOL_CONFIG, else $HOME/.config/kpool/config.yaml. */
void kp_client_config_path(char *out, size_t outlen);

/* Loads path (NULL: kp_client_config_path). A missing file is not an error (file_found = 0,
 * server = the default); an unreadable or invalid one is: -1 with why in err. A relative
 * `ca` is resolved against the config file's directory, as kubectl does. */
int kp_client_config_load(kp_client_config_t *cfg, const char *path, char *err, size_t errlen);
void kp_client_config_free(kp_client_config_t *cfg);

/* What a command's flags override. NULL / 0 fields keep the config's values. */
typedef struct kp_client_opts {
    const char *server;
    const char *token;
    long timeout_ms;
} kp_client_opts_t;

typedef struct kp_client kp_client_t;

/* Loads the config, applies opts and checks it can be used (a URL with http/https, a token
 * without line breaks, a readable CA). NULL with one line in err otherwise. */
kp_client_t *kp_client_new(const kp_client_opts_t *opts, char *err, size_t errlen);
void kp_client_free(kp_client_t *c);
const kp_client_config_t *kp_client_config(const kp_client_t *c);
/* The config's namespace, else "default". */
const char *kp_client_namespace(const kp_client_t *c);

typedef struct kp_client_resp {
    long status;    /* HTTP status code */
    json_t *json;   /* the body parsed as JSON, or NULL (empty or not JSON) */
    kp_buf_t body;  /* the raw body */
    kp_buf_t warns; /* decoded Warning texts, one per line (already printed to stderr) */
} kp_client_resp_t;

void kp_client_resp_free(kp_client_resp_t *r);

/* Sends method path (path starts with '/', query included) with body as JSON (may be NULL).
 * 0: a response was received, whatever its status (resp filled, free it with
 * kp_client_resp_free); -1: no response (connection refused, TLS failure, timeout, body too
 * large): resp is left empty and err holds one line naming the server and the cause. */
int kp_client_request(kp_client_t *c, const char *method, const char *path, const json_t *body,
                      kp_client_resp_t *resp, char *err, size_t errlen);

/* One line for a response that is not 2xx: "Error from server (NotFound): topics \"x\" not
 * found" for a Kubernetes Status body, a generic line with the HTTP status otherwise. */
void kp_client_error_format(long status, const json_t *json, const kp_buf_t *body, char *out,
                            size_t outlen);

/* Decodes the text of one Warning header value: `299 - "unknown field \"spec.foo\""` gives
 * `unknown field "spec.foo"`. A value not in RFC 7234 form is copied as it is. Control
 * characters are dropped (a server cannot drive the terminal). */
void kp_client_warning_decode(const char *value, size_t len, char *out, size_t outlen);

#endif
