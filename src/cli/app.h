/*
 * app.h — what the application-facing commands (kpool secret, run, probe, doctor, produce,
 * consume) share beyond the pure parts of app_creds.h:
 *
 *   app_session.c  the options every command declares the same way (opts.h parses), the API
 *                  client, fetching an AivenApplication, its Secret and the visible Topics,
 *                  resolving a topic name, materializing a secret as private files, and
 *                  reading a credentials file (probe --from-env);
 *
 * librdkafka with an app's credentials and the live probe are in pki/app_kafka.h (included
 * here), which the console's doctor (control/api/api_doctor.c) uses too.
 *
 * Exit status of every command: 0 success; 1 the server, the pool or the system refused
 * (one line on stderr says why); 2 invalid command line (nothing was done).
 */
#ifndef KP_CLI_APP_H
#define KP_CLI_APP_H

#include "pki/app_creds.h"
#include "pki/app_kafka.h"
#include "cli/client.h"
#include "cli/opts.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define KP_APP_EXIT_FAIL  1
#define KP_APP_EXIT_USAGE 2

/* --timeout ceiling (seconds): a day is beyond any probe, flush or idle wait. */
#define KP_APP_TIMEOUT_S_MAX 86400

/* ---- options ---- */

typedef struct kp_app_opts {
    const char *cmd; /* "secret get", "probe": for messages */
    const char *ns;
    const char *app;
    const char *topic;   /* the last --topic */
    const char **topics; /* every --topic, in order (probe --from-env checks each) */
    int ntopics;
    const char *key;    /* produce -k */
    int key_delim;      /* produce --key-delim, -1 when not given */
    const char *group;  /* consume --group */
    const char *format; /* consume -f */
    const char *access; /* doctor --access */
    int from_beginning;
    int no_connect;  /* doctor --no-connect */
    int from_env;    /* probe --from-env */
    long count;      /* consume -c, -1 when not given */
    long timeout_ms; /* --timeout, 0 when not given */
    int help;
    kp_client_opts_t client;
    char **args; /* positional arguments (run: the command and its arguments) */
    int nargs;
} kp_app_opts_t;

/* Parses argv for cmd (its table, opts.h) into o. 0 (o->help set when --help was printed),
 * or 2 after printing a usage error. kp_app_opts_free in both cases. */
int kp_app_opts_parse(kp_app_opts_t *o, const kp_opts_cmd_t *cmd, int argc, char **argv);
void kp_app_opts_free(kp_app_opts_t *o);
/* Prints "kpool CMD: <message> (see 'kpool CMD --help')" and returns 2. */
int kp_app_usage_error(const kp_app_opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Callbacks of --topic (the last one, and every one in order), --key-delim and --access. */
int kp_app_opt_topic(void *o, const kp_option_t *opt, const char *value, const char *cmd);
int kp_app_opt_key_delim(void *o, const kp_option_t *opt, const char *value, const char *cmd);
int kp_app_opt_access(void *o, const kp_option_t *opt, const char *value, const char *cmd);

/* The options the application commands declare the same way. */
#define KP_APP_OPT_NAMESPACE                                                                       \
    KP_OPT_NAMESPACE(kp_app_opts_t, ns, "namespace (the team) [the config's 'namespace']")
#define KP_APP_OPT_APP(h)                                                                          \
    KP_OPT_NONEMPTY('a', "app", kp_app_opts_t, app, "APP", h, "--app needs an application name")
#define KP_APP_OPT_TOPIC(argh, h) KP_OPT_CALLBACK('t', "topic", argh, h, kp_app_opt_topic)
#define KP_APP_OPT_TIMEOUT(h)                                                                      \
    KP_OPT_SECONDS(0, "timeout", kp_app_opts_t, timeout_ms, "SECS", h, KP_APP_TIMEOUT_S_MAX)
#define KP_APP_OPT_CONNECTION KP_OPT_CONNECTION(kp_app_opts_t, client)

/* ---- the API ---- */

/* Opens the API client (config file, --server, --token). NULL after printing one line;
 * *rc is then the exit code. */
kp_client_t *kp_app_client_open(const kp_app_opts_t *o, int *rc);
/* -n, else the config's namespace, else "default". */
const char *kp_app_namespace(const kp_app_opts_t *o, const kp_client_t *c);

/* GETs one object of kind (a name kp_kind_find knows). 0 found (*obj, a new reference),
 * 1 not found (404), -1 any other failure with one line in err. */
int kp_app_get(kp_client_t *c, const char *kind, const char *ns, const char *name, json_t **obj,
               char *err, size_t errlen);

/* The Topic objects the token can see: every namespace when allowed, else ns alone (a team
 * token); *all_ns (may be NULL) says which. A new array, or NULL with one line in err. */
json_t *kp_app_topics_list(kp_client_t *c, const char *ns, int *all_ns, char *err, size_t errlen);

/* An application's credentials, as the control plane published them. */
typedef struct kp_app_creds {
    json_t *aivenapp; /* the AivenApplication (NULL when it does not exist) */
    json_t *secret;   /* the Secret object (NULL when not loaded) */
    const char *secret_name;
    kp_app_secret_t data; /* the decoded data */
} kp_app_creds_t;

/* Loads AivenApplication ns/app, its status.synchronizationSecretName and that Secret.
 * 0 on success; -1 with one line in err otherwise: "no secret: ..." (with the
 * AivenApplication's failing condition) when the app has none yet or it was deleted,
 * "no AivenApplication ns/app ..." when the app does not exist, or the API error. out is
 * filled as far as it got (free it with kp_app_creds_free either way). */
int kp_app_creds_load(kp_client_t *c, const char *ns, const char *app, kp_app_creds_t *out,
                      char *err, size_t errlen);
void kp_app_creds_free(kp_app_creds_t *cr);

/* The Kafka topic name for what a user typed: the fully qualified name of Topic ns/name
 * when that resource exists, else name itself (already qualified, or a topic kpool does
 * not manage). Written into out. -1 with err only when the API cannot be reached. */
int kp_app_topic_name(kp_client_t *c, const char *ns, const char *name, char *out, size_t outlen,
                      char *err, size_t errlen);

/* ---- files ---- */

/* Makes dir private: creates it with mode 0700, or accepts an existing directory owned by
 * the user and not accessible by group or others. -1 with err otherwise. */
int kp_app_dir_prepare(const char *dir, char *err, size_t errlen);
/* Writes each file of kp_app_files whose key s holds into dir, mode 0600, atomically (a
 * temporary file renamed over the old one, so a running reader never sees half a key).
 * Keys missing from s are listed in missing (", "-separated, may be NULL). -1 with err. */
int kp_app_files_write(const kp_app_secret_t *s, const char *dir, kp_buf_t *missing, char *err,
                       size_t errlen);
/* The kp_app_file_read_fn of kp_app_env_creds_parse (ctx unused): reads a regular file
 * (following symbolic links, as a mounted Kubernetes secret has them) of at most max bytes.
 * Anything else (a directory, a FIFO that could block a probe forever) is refused. */
int kp_app_file_read(void *ctx, const char *path, size_t max, kp_buf_t *out, char *err,
                     size_t errlen);

#endif
