/*
 * cmd_probe.c — `kpool probe -n NS --app APP`: the readiness/liveness building block of
 * SPEC §8. With the application's current credentials it connects to the pool over TLS and
 * asks for the metadata of every topic the app is granted (the Topics whose spec.acl
 * matches team NS / application APP). Healthy: exit 0 and one "ok" line on stdout.
 * Otherwise exit 1 and ONE line on stderr naming the first thing that is wrong: no secret
 * (with the AivenApplication's condition), pool unreachable, TLS refused, topic X not
 * authorized or missing.
 *
 * The live check itself is kp_app_probe_live, shared with `kpool doctor`.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

static void help_print(void)
{
    printf("Usage: kpool probe -n NS --app APP [--timeout SECS]\n"
           "\n"
           "Readiness/liveness probe for application APP: with the app's current credentials\n"
           "(the secret its AivenApplication names), connects to the pool over TLS and checks\n"
           "that every topic the app is granted (Topics whose spec.acl matches team NS and\n"
           "application APP, wildcards included) exists and is authorized.\n"
           "\n"
           "An app no Topic grants anything is not healthy, unless it is a Kafka Streams app\n"
           "(its own topics) or the pool still authorizes it some topic (one granted in a\n"
           "namespace this token cannot read).\n"
           "\n"
           "Healthy: exit 0, one line on stdout. Otherwise exit 1 and one line on stderr:\n"
           "no secret (with the AivenApplication's condition), pool unreachable, TLS refused,\n"
           "topic X not authorized, topic X does not exist in the pool, not authorized for\n"
           "any topic.\n"
           "'kpool doctor' explains a failure and prints the fix.\n"
           "\n"
           "Options:\n"
           "  -n, --namespace NS       namespace (the team) [the config's 'namespace']\n"
           "  -a, --app APP            the application\n"
           "      --timeout SECS       budget for connecting and every topic [10]\n");
    kp_app_help_connection(stdout);
    printf("\nExit status: 0 healthy, 1 not healthy or the control plane could not be asked,\n"
           "2 invalid command line.\n");
}

int kp_app_probe_live(const kp_app_secret_t *s, const char *client_id, const json_t *granted,
                      long timeout_ms, rd_kafka_resp_err_t *errs, json_t *visible, char *err,
                      size_t errlen)
{
    kp_app_kafka_state_t st;
    rd_kafka_conf_t *conf = kp_app_kafka_conf(s, client_id, &st, err, errlen);
    if (!conf) return -1;
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create a Kafka client: %s", rderr);
        return -1;
    }
    int64_t deadline = kp_mono_ms() + timeout_ms;
    int rc = kp_app_kafka_connect(rk, &st, kp_app_secret_text(s, "KAFKA_BROKERS"), deadline, err,
                                  errlen);
    for (size_t i = 0; rc == 0 && i < json_array_size(granted); i++) {
        const char *fqn = json_string_value(json_object_get(json_array_get(granted, i), "fqn"));
        errs[i] = kp_app_kafka_topic(rk, fqn, deadline, NULL);
    }
    rd_kafka_resp_err_t ve;
    if (rc == 0 && visible && (ve = kp_app_kafka_topics_visible(rk, deadline, visible))) {
        snprintf(err, errlen, "no answer from the pool (%s) which topics are authorized: %s",
                 kp_app_secret_text(s, "KAFKA_BROKERS"), rd_kafka_err2str(ve));
        rc = -1;
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return rc;
}

/* "a, b, c": the "fqn" members of the objects of arr, or arr's strings. */
static void names_join(const json_t *arr, kp_buf_t *out)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        if (i) kp_buf_append(out, ", ", 2);
        kp_buf_appendf(out, "%s",
                       json_string_value(json_is_object(v) ? json_object_get(v, "fqn") : v));
    }
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
    size_t failing = 0, first = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (errs[i] && !failing++) first = i;
    const char *brokers = kp_app_secret_text(&cr->data, "KAFKA_BROKERS");
    kp_buf_t names;
    kp_buf_init(&names);
    if (failing) {
        const char *fqn = json_string_value(json_object_get(json_array_get(granted, first), "fqn"));
        fprintf(stderr, "kpool probe: topic %s %s", fqn, kp_app_kafka_topic_problem(errs[first]));
        if (failing > 1) fprintf(stderr, " (and %zu more topics failing)", failing - 1);
        fprintf(stderr, "\n");
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

int kp_cmd_probe(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, "probe", KP_APP_CMD_PROBE, argc, argv, 0);
    if (!rc && o.help)
        help_print();
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && o.nargs)
        rc = kp_app_usage_error(&o, "unexpected argument '%s'", o.args[0]);
    if (rc || o.help) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    char err[4096];
    const char *ns = kp_app_namespace(&o, c);
    kp_app_creds_t cr;
    json_t *topics = NULL;
    if (kp_app_creds_load(c, ns, o.app, &cr, err, sizeof(err)) < 0 ||
        !(topics = kp_app_topics_list(c, ns, NULL, err, sizeof(err)))) {
        fprintf(stderr, "kpool probe: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else {
        rc = probe_run(&o, &cr, ns, topics);
    }
    json_decref(topics);
    kp_app_creds_free(&cr);
    kp_client_free(c);
out:
    kp_app_opts_free(&o);
    return rc;
}
