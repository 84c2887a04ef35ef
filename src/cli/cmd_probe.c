/*
 * cmd_probe.c — `kpool probe`: the readiness/liveness building block of SPEC §8, in two
 * modes that share the live check (pki/app_kafka.h kp_app_probe_live, also `kpool doctor`'s
 * and the console doctor's) and the output contract: healthy, exit 0 and one "ok" line on
 * stdout; otherwise exit 1 and ONE line on stderr naming the first thing that is wrong.
 *
 *   -n NS --app APP   the control plane's view. With the application's current credentials
 *                     (fetched through the API) it connects to the pool over TLS and asks for
 *                     the metadata of every topic the app is granted (the Topics whose
 *                     spec.acl matches team NS / application APP). Failures: no secret (with
 *                     the AivenApplication's condition), the API unreachable, pool
 *                     unreachable, TLS refused, topic X not authorized or missing.
 *   --from-env        the application's view, without the API: the credentials the platform
 *                     injected into the environment (kp_app_env_creds_parse), each --topic
 *                     given (or, with none, that the pool authorizes some topic). A liveness
 *                     probe in the pod so keeps passing while the control plane is down.
 *                     Failures: a variable missing, a file unreadable or wrong, pool
 *                     unreachable, TLS refused, topic X not authorized or missing.
 *
 * Neither given: --from-env when KAFKA_BROKERS is set and no option of the API mode is
 * (inside the pod or `kpool run` a bare `kpool probe` does the obvious thing), else the
 * usual "--app APP is required".
 */
#include "cli/app.h"
#include "cli/cli.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ (_GNU_SOURCE) */

static const kp_option_t probe_options[] = {
    KP_APP_OPT_NAMESPACE,
    KP_APP_OPT_APP("the application"),
    KP_OPT_BOOL(0, "from-env", kp_app_opts_t, from_env,
                "the credentials from the environment (see above)"),
    KP_APP_OPT_TOPIC("TOPIC", "with --from-env: a topic to check, by its fully\n"
                              "qualified name (team.orders); repeat for more"),
    KP_APP_OPT_TIMEOUT("budget for connecting and every topic [10]"),
    KP_APP_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_probe_cmd = {
    .name = "probe",
    .usage = "probe -n NS --app APP [--timeout SECS]\n"
             "probe [--from-env] [--topic TOPIC]... [--timeout SECS]",
    .description =
        "Readiness/liveness probe of an application's access to Kafka. Healthy: exit 0,\n"
        "one line on stdout. Otherwise exit 1 and one line on stderr naming what is\n"
        "wrong. 'kpool doctor' explains a failure and prints the fix.\n"
        "\n"
        "With -n/--app (asks the control plane): with the app's current credentials (the\n"
        "secret its AivenApplication names), connects to the pool over TLS and checks\n"
        "that every topic the app is granted (Topics whose spec.acl matches team NS and\n"
        "application APP, wildcards included) exists and is authorized. An app no Topic\n"
        "grants anything is not healthy, unless it is a Kafka Streams app (its own\n"
        "topics) or the pool still authorizes it some topic (one granted in a namespace\n"
        "this token cannot read). Fails on: no secret (with the AivenApplication's\n"
        "condition), the control plane unreachable, pool unreachable, TLS refused, topic\n"
        "X not authorized, topic X does not exist in the pool, not authorized for any\n"
        "topic.\n"
        "\n"
        "With --from-env (no control plane needed): takes the credentials from the\n"
        "environment the platform injects into the application's pod ('kpool run' gives\n"
        "its command the same), connects to KAFKA_BROKERS over TLS and checks that each\n"
        "--topic exists and is authorized; without --topic, that the pool authorizes\n"
        "these credentials some topic (for a Kafka Streams app,\n"
        "KAFKA_STREAMS_APPLICATION_ID set, the connection alone). The probe to run in\n"
        "the pod: it keeps passing while the control plane is down, so a liveness probe\n"
        "does not restart healthy applications. Each credential comes from the first of\n"
        "its variables that is set:\n"
        "  certificate  KAFKA_CERTIFICATE, KAFKA_CERTIFICATE_PATH, KAFKA_KEYSTORE_PATH\n"
        "  key          KAFKA_PRIVATE_KEY, KAFKA_PRIVATE_KEY_PATH, KAFKA_KEYSTORE_PATH\n"
        "  CA           KAFKA_CA, KAFKA_CA_PATH, KAFKA_TRUSTSTORE_PATH\n"
        "(the PKCS#12 stores are opened with KAFKA_CREDSTORE_PASSWORD). Fails on: a\n"
        "variable missing, a file unreadable or not what it should be, a key that does\n"
        "not belong to the certificate, pool unreachable, TLS refused, topic X not\n"
        "authorized, topic X does not exist in the pool, not authorized for any topic.\n"
        "\n"
        "Neither -n/--app nor --from-env: --from-env when KAFKA_BROKERS is set (in the\n"
        "pod, under 'kpool run') and no option of the -n/--app mode is given.\n",
    .options = probe_options,
    .footer = "(With --from-env the control plane is not asked: the connection options do not\n"
              "apply.)\n" KP_OPTS_CONFIG_HELP
              "\nExit status: 0 healthy, 1 not healthy or the control plane could not be asked,\n"
              "2 invalid command line.\n",
};

/* "a, b, c": the "fqn" members of the objects of arr, or arr's strings (cleaned: with
 * --from-env they are what the user typed, or the pool's). */
static void names_join(const json_t *arr, kp_buf_t *out)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        if (i) kp_buf_append(out, ", ", 2);
        kp_app_text_clean(json_string_value(json_is_object(v) ? json_object_get(v, "fqn") : v),
                          out);
    }
}

/* The line for the first failing topic of granted (errs[i] is topic i's result), when one
 * fails; hint_fqn adds the reminder that a name without a '.' is no fully qualified name.
 * 1 when a line was printed. */
static int topics_failure_print(const json_t *granted, const rd_kafka_resp_err_t *errs,
                                int hint_fqn)
{
    size_t failing = 0, first = 0, n = json_array_size(granted);
    for (size_t i = 0; i < n; i++)
        if (errs[i] && !failing++) first = i;
    if (!failing) return 0;
    const char *fqn = json_string_value(json_object_get(json_array_get(granted, first), "fqn"));
    kp_buf_t name;
    kp_buf_init(&name);
    kp_app_text_clean(fqn, &name);
    fprintf(stderr, "kpool probe: topic %.*s %s", (int)name.len, (const char *)name.data,
            kp_app_kafka_topic_problem(errs[first]));
    if (hint_fqn && !strchr(fqn, '.'))
        fprintf(stderr, " (a topic is known by its fully qualified name, <namespace>.<name>)");
    if (failing > 1) fprintf(stderr, " (and %zu more topics failing)", failing - 1);
    fprintf(stderr, "\n");
    kp_buf_free(&name);
    return 1;
}

/* The probe after the credentials and Topics are known. */
static int probe_run(const kp_app_opts_t *o, const kp_app_creds_t *cr, const char *ns,
                     const json_t *topics)
{
    const char *pool = json_string_value(
        json_object_get(json_object_get(json_object_get(cr->aivenapp, "spec"), "kafka"), "pool"));
    json_t *granted = kp_app_topics_granted(topics, ns, o->app, pool);
    size_t n = json_array_size(granted);
    /* No Topic the caller can see grants the app anything. Unless it is a Kafka Streams
     * app (its own prefixed topics), that is only healthy when the pool still lets it see
     * some topic (granted in a namespace a team token cannot read). */
    int streams = kp_app_secret_text(&cr->data, "KAFKA_STREAMS_APPLICATION_ID") != NULL;
    json_t *visible = !n && !streams ? json_array() : NULL;
    rd_kafka_resp_err_t *errs = kp_xcalloc(n + 1, sizeof(*errs));
    char err[2048];
    long timeout_ms = o->timeout_ms ? o->timeout_ms : KP_APP_PROBE_TIMEOUT_MS_DEFAULT;
    int rc = 0;
    if (kp_app_probe_live(&cr->data, "kpool-probe", granted, timeout_ms, errs, visible, err,
                          sizeof(err)) < 0) {
        fprintf(stderr, "kpool probe: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    }
    const char *brokers = kp_app_secret_text(&cr->data, "KAFKA_BROKERS");
    kp_buf_t names;
    kp_buf_init(&names);
    if (rc == 0 && topics_failure_print(granted, errs, 0)) {
        rc = KP_APP_EXIT_FAIL;
    } else if (rc == 0 && visible && !json_array_size(visible)) {
        fprintf(stderr,
                "kpool probe: %s/%s is not authorized for any topic: no Topic's spec.acl grants "
                "team %s, application %s access (see 'kpool doctor -n %s --app %s --topic "
                "TOPIC')\n",
                ns, o->app, ns, o->app, ns, o->app);
        rc = KP_APP_EXIT_FAIL;
    } else if (rc == 0 && visible) {
        names_join(visible, &names);
        printf("ok: %s/%s reached %s over TLS; no Topic this token can see grants it access, "
               "the pool authorizes %zu topic%s (%.*s)\n",
               ns, o->app, brokers, json_array_size(visible),
               json_array_size(visible) == 1 ? "" : "s", (int)names.len, (const char *)names.data);
    } else if (rc == 0) {
        names_join(granted, &names);
        printf("ok: %s/%s reached %s over TLS; %zu topic%s authorized%s%.*s%s%s\n", ns, o->app,
               brokers, n, n == 1 ? "" : "s", n ? " (" : "", (int)names.len,
               names.len ? (const char *)names.data : "", n ? ")" : "",
               streams && !n ? " (a Kafka Streams app: its own topics are not checked)" : "");
    }
    kp_buf_free(&names);
    json_decref(visible);
    free(errs);
    json_decref(granted);
    return rc;
}

/* -n/--app: the credentials and the Topics from the control plane. */
static int probe_api(const kp_app_opts_t *o)
{
    int rc = 0;
    kp_client_t *c = kp_app_client_open(o, &rc);
    if (!c) return rc;
    char err[4096];
    const char *ns = kp_app_namespace(o, c);
    kp_app_creds_t cr;
    json_t *topics = NULL;
    if (kp_app_creds_load(c, ns, o->app, &cr, err, sizeof(err)) < 0 ||
        !(topics = kp_app_topics_list(c, ns, NULL, err, sizeof(err)))) {
        fprintf(stderr, "kpool probe: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else {
        rc = probe_run(o, &cr, ns, topics);
    }
    json_decref(topics);
    kp_app_creds_free(&cr);
    kp_client_free(c);
    return rc;
}

/* The ok line of --from-env (after "ok: "). */
static void env_ok_print(const kp_app_env_creds_t *ec, const json_t *checked, const json_t *visible)
{
    kp_buf_t names;
    kp_buf_init(&names);
    const json_t *listed = visible ? visible : checked;
    size_t n = json_array_size(listed);
    names_join(listed, &names);
    printf("ok: %s reached %s over TLS (credentials from the environment); ", ec->subject,
           kp_app_secret_text(&ec->data, "KAFKA_BROKERS"));
    if (visible)
        printf("the pool authorizes %zu topic%s (%.*s)\n", n, n == 1 ? "" : "s", (int)names.len,
               (const char *)names.data);
    else if (n)
        printf("%zu topic%s authorized (%.*s)\n", n, n == 1 ? "" : "s", (int)names.len,
               (const char *)names.data);
    else
        printf("a Kafka Streams app: its own topics are not checked\n");
    kp_buf_free(&names);
}

/* --from-env: the credentials from the environment, each --topic checked (or, with none,
 * that the pool authorizes some topic). The control plane is not asked. */
static int probe_env(const kp_app_opts_t *o)
{
    char err[2048];
    kp_app_env_creds_t ec;
    if (kp_app_env_creds_parse(environ, kp_app_file_read, NULL, &ec, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool probe: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    json_t *checked = json_array();
    for (int i = 0; i < o->ntopics; i++)
        json_array_append_new(checked, json_pack("{s:s}", "fqn", o->topics[i]));
    int streams = kp_app_secret_text(&ec.data, "KAFKA_STREAMS_APPLICATION_ID") != NULL;
    json_t *visible = !o->ntopics && !streams ? json_array() : NULL;
    rd_kafka_resp_err_t *errs = kp_xcalloc((size_t)o->ntopics + 1, sizeof(*errs));
    long timeout_ms = o->timeout_ms ? o->timeout_ms : KP_APP_PROBE_TIMEOUT_MS_DEFAULT;
    int rc = 0;
    if (kp_app_probe_live(&ec.data, "kpool-probe", checked, timeout_ms, errs, visible, err,
                          sizeof(err)) < 0) {
        fprintf(stderr, "kpool probe: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else if (topics_failure_print(checked, errs, 1)) {
        rc = KP_APP_EXIT_FAIL;
    } else if (visible && !json_array_size(visible)) {
        fprintf(stderr,
                "kpool probe: %s is not authorized for any topic in the pool at %s: no Topic's "
                "spec.acl grants this application access (see 'kpool doctor -n TEAM --app "
                "APP')\n",
                ec.subject, kp_app_secret_text(&ec.data, "KAFKA_BROKERS"));
        rc = KP_APP_EXIT_FAIL;
    } else {
        env_ok_print(&ec, checked, visible);
    }
    free(errs);
    json_decref(visible);
    json_decref(checked);
    kp_app_env_creds_free(&ec);
    return rc;
}

/* The first option of the -n/--app mode given, as typed in messages; NULL when none. */
static const char *api_option_given(const kp_app_opts_t *o)
{
    if (o->app) return "--app";
    if (o->ns) return "-n/--namespace";
    if (o->client.server) return "--server";
    if (o->client.token) return "--token";
    if (o->client.timeout_ms) return "--request-timeout";
    return NULL;
}

/* Picks the mode (o->from_env set when the environment is to be used). 0, or 2 after a
 * usage error. */
static int probe_mode(kp_app_opts_t *o)
{
    const char *api = api_option_given(o);
    const char *brokers = getenv("KAFKA_BROKERS");
    if (o->from_env && api)
        return kp_app_usage_error(o,
                                  "%s does not go with --from-env (which takes the credentials "
                                  "from the environment, not from the control plane)",
                                  api);
    if (!o->from_env && !api && brokers && *brokers) o->from_env = 1;
    if (!o->from_env && !o->app)
        return kp_app_usage_error(o, "--app APP is required (or --from-env, where the "
                                     "application's KAFKA_* variables are set)");
    if (!o->from_env && o->ntopics)
        return kp_app_usage_error(o, "--topic goes with --from-env (with --app the probe checks "
                                     "every topic the app is granted)");
    return 0;
}

int kp_cmd_probe(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, &kp_probe_cmd, argc, argv);
    if (o.help)
        rc = 0; /* the parser printed it */
    else if (!rc && o.nargs)
        rc = kp_app_usage_error(&o, "unexpected argument '%s'", o.args[0]);
    else if (!rc)
        rc = probe_mode(&o);
    if (!rc && !o.help) rc = o.from_env ? probe_env(&o) : probe_api(&o);
    kp_app_opts_free(&o);
    return rc;
}
