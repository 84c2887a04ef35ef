/*
 * api_doctor.c — `kpool doctor`'s findings for an application, computed by the control plane
 * for the console (GET .../namespaces/NS/applications/APP/doctor, see api_console.h).
 *
 * The checks are those `kpool doctor -n NS --app APP --no-connect` makes (cli/cmd_doctor.c),
 * read from the store instead of through the API, with the same helpers (pki/app_creds.h)
 * and the same wording: the AivenApplication (missing, not reconciled, no secret, a failed
 * rollout and the fix for its reason), its Secret (present), and every Topic granting it
 * access (synchronized, in the application's pool). What the pool says with the app's own
 * credentials (the CLI's last section, "Pool (with NS/APP's credentials)") is checked only on
 * request (kp_api_doctor_connect, `?connect=true`: the console's button), as it opens a Kafka
 * client with the application's secret — opened with the control plane's master key, used
 * for that one connection and wiped; nothing of it is in the answer.
 */
#include "control/api/api_doctor.h"

#include "control/secrets.h"
#include "pki/app_creds.h"
#include "pki/app_kafka.h"
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct doc {
    json_t *findings;
    const char *ns, *app, *pool;
    int problems;
    const char *section; /* added to each finding when set ("pool": the live check) */
    json_t *granted;     /* kp_app_topics_granted's answer (check_topics), or NULL */
} doc_t;

static void add(doc_t *d, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(doc_t *d, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!strcmp(level, "problem")) d->problems++;
    json_t *f = json_pack("{s:s, s:s}", "level", level, "message", msg);
    if (d->section) json_object_set_new(f, "section", json_string(d->section));
    json_array_append_new(d->findings, f);
}

static const char *jstr(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b) v = json_object_get(v, b);
    return json_string_value(v);
}

static const char *or_none(const char *s)
{
    return s ? s : "<none>";
}

static void fix_for_reason(doc_t *d, const json_t *aivenapp)
{
    kp_buf_t why;
    kp_buf_init(&why);
    kp_app_condition_reason(aivenapp, &why);
    kp_buf_append(&why, "", 1);
    const char *w = (const char *)why.data;
    if (strstr(w, "ValidatePool"))
        add(d, "fix",
            "set spec.kafka.pool of Application %s/%s to a pool that exists ('kpool get "
            "pools'), then apply it again",
            d->ns, d->app);
    else if (strstr(w, "AivenFailure"))
        add(d, "fix",
            "the pool refused the control plane (see the message); it retries with backoff. "
            "Once the pool is back, 'kpool describe aivenapp %s -n %s' shows RolloutComplete",
            d->app, d->ns);
    else
        add(d, "fix",
            "the control plane failed at the step the reason names (see the message); it "
            "retries. Re-apply the Application to force a new deploy; 'kpool describe "
            "aivenapp %s -n %s' shows the status",
            d->app, d->ns);
    if (why.len > 1) add(d, "note", "reason: %s", w);
    kp_buf_free(&why);
}

/* 1 when the app has a secret to check, 0 when a problem ends the section. */
static int check_app(doc_t *d, kp_store_t *store, const json_t *a)
{
    if (!a) {
        add(d, "problem", "AivenApplication %s/%s does not exist, so the app has no credentials",
            d->ns, d->app);
        json_t *app = NULL;
        if (kp_store_get(store, "Application", d->ns, d->app, &app) == KP_STORE_OK) {
            const char *pool = jstr(json_object_get(app, "spec"), "kafka", "pool");
            if (pool)
                add(d, "fix",
                    "Application %s/%s has spec.kafka.pool %s: the control plane creates the "
                    "AivenApplication when it reconciles it; see 'kpool describe app %s -n %s'",
                    d->ns, d->app, pool, d->app, d->ns);
            else
                add(d, "fix",
                    "Application %s/%s has no spec.kafka.pool: add 'kafka: {pool: dev}' under "
                    "its spec and apply it",
                    d->ns, d->app);
        }
        json_decref(app);
        return 0;
    }
    const json_t *status = json_object_get(a, "status");
    const char *state = jstr(status, "synchronizationState", NULL);
    const char *secret = jstr(status, "synchronizationSecretName", NULL);
    json_t *gen = json_object_get(json_object_get(a, "metadata"), "generation");
    json_t *observed = json_object_get(status, "observedGeneration");
    if (json_is_integer(gen) && json_is_integer(observed) &&
        json_integer_value(observed) < json_integer_value(gen))
        add(d, "note",
            "the status describes generation %lld; generation %lld is not reconciled yet",
            (long long)json_integer_value(observed), (long long)json_integer_value(gen));
    if (!status) {
        add(d, "problem",
            "no secret: the control plane has not reconciled the AivenApplication yet (no "
            "status)");
        return 0;
    }
    if (!secret || !*secret) {
        add(d, "problem", "no secret: the AivenApplication has no synchronized secret (%s)",
            state ? state : "no synchronizationState");
        fix_for_reason(d, a);
        return 0;
    }
    if (state && !strcmp(state, "RolloutFailed")) {
        add(d, "problem",
            "the last rollout failed (RolloutFailed); the app still has its previous secret %s",
            secret);
        fix_for_reason(d, a);
    } else {
        const char *user = jstr(status, "serviceUser", NULL);
        add(d, "ok", "%s; current secret %s%s%s%s; pool %s", state ? state : "no state", secret,
            user ? " (service user " : "", user ? user : "", user ? ")" : "", or_none(d->pool));
    }
    json_t *s = NULL;
    if (kp_store_get(store, "Secret", d->ns, secret, &s) != KP_STORE_OK) {
        add(d, "problem",
            "no secret: %s, named by status.synchronizationSecretName, does not exist", secret);
        add(d, "fix",
            "the control plane writes it again on its next reconcile; re-apply the "
            "Application to force a new deploy with fresh credentials");
    } else {
        add(d, "ok", "Secret %s/%s exists", d->ns, secret);
    }
    json_decref(s);
    return 1;
}

static void check_topics(doc_t *d, kp_store_t *store, int all_ns)
{
    json_t *topics = NULL;
    int64_t rv;
    if (kp_store_list(store, "Topic", all_ns ? NULL : d->ns, &topics, &rv) != KP_STORE_OK) {
        json_decref(topics);
        add(d, "problem", "cannot read the Topics");
        return;
    }
    json_t *granted = kp_app_topics_granted(topics, d->ns, d->app, d->pool);
    if (!json_array_size(granted))
        add(d, "note",
            "no Topic grants team %s, application %s access (a Topic lists the apps that may "
            "use it under spec.acl; 'kpool doctor --topic NAME' shows what to add)",
            d->ns, d->app);
    size_t i;
    json_t *g;
    json_array_foreach(granted, i, g)
    {
        const json_t *t = json_object_get(g, "topic");
        const char *fqn = json_string_value(json_object_get(g, "fqn"));
        const char *tns = jstr(t, "metadata", "namespace"), *tname = jstr(t, "metadata", "name");
        const json_t *st = json_object_get(t, "status");
        const char *state = jstr(st, "synchronizationState", NULL);
        if (state && !strcmp(state, "RolloutComplete")) {
            add(d, "ok", "%s: %s (Topic %s/%s)", or_none(fqn),
                kp_app_access_name((int)json_integer_value(json_object_get(g, "access"))),
                or_none(tns), or_none(tname));
            continue;
        }
        add(d, "problem", "Topic %s/%s is %s: %s", or_none(tns), or_none(tname),
            state ? state : "not synchronized yet", or_none(jstr(st, "message", NULL)));
        if (state && !strcmp(state, "FailedPrepare"))
            add(d, "fix", "correct the spec as the message says and apply the Topic again");
        else
            add(d, "fix",
                "the control plane retries with backoff; 'kpool describe topic %s -n %s' shows "
                "its progress",
                or_none(tname), or_none(tns));
    }
    d->granted = json_incref(granted); /* its "topic"s hold references of their own */
    json_decref(granted);
    json_decref(topics);
}

/* The pool's answers with the app's credentials for each granted topic (the CLI's
 * doctor_live, same wording). */
static void live_topics(doc_t *d, const rd_kafka_resp_err_t *errs)
{
    size_t i;
    json_t *g;
    json_array_foreach(d->granted, i, g)
    {
        const char *fqn = or_none(json_string_value(json_object_get(g, "fqn")));
        int access = (int)json_integer_value(json_object_get(g, "access"));
        const json_t *t = json_object_get(g, "topic");
        if (!errs[i])
            add(d, "ok", "%s: exists and is authorized", fqn);
        else if (errs[i] == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED && !access)
            add(d, "note", "the pool confirms: %s not authorized", fqn);
        else if (errs[i] == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            add(d, "problem",
                "%s: the pool says not authorized although spec.acl grants %s/%s access", fqn,
                d->ns, d->app);
            add(d, "fix",
                "the control plane has not written the ACLs for this service user yet (or "
                "they were removed in the pool; its resync restores them): see 'kpool "
                "describe topic %s -n %s'",
                or_none(jstr(t, "metadata", "name")), or_none(jstr(t, "metadata", "namespace")));
        } else
            add(d, "problem", "%s: %s", fqn, kp_app_kafka_topic_problem(errs[i]));
    }
}

/* What the pool says with the credentials in secret (the CLI's "Pool" section). */
static void check_live(doc_t *d, json_t *secret, const kp_pki_master_key_t *mk)
{
    char err[2048];
    kp_app_secret_t data;
    memset(&data, 0, sizeof(data));
    if (!mk || kp_secret_open(mk, secret, err, sizeof(err)) < 0 ||
        kp_app_secret_decode(secret, &data, err, sizeof(err)) < 0) {
        add(d, "problem", "cannot read the application's secret: %s", mk ? err : "no master key");
        return;
    }
    size_t n = json_array_size(d->granted);
    rd_kafka_resp_err_t *errs = kp_xcalloc(n + 1, sizeof(*errs));
    const char *brokers = kp_app_secret_text(&data, "KAFKA_BROKERS");
    /* nothing granted (and no Kafka Streams app): does the pool authorize anything at all? */
    json_t *visible =
        !n && !kp_app_secret_text(&data, "KAFKA_STREAMS_APPLICATION_ID") ? json_array() : NULL;
    if (kp_app_probe_live(&data, "kpool-console-doctor", d->granted,
                          KP_APP_PROBE_TIMEOUT_MS_DEFAULT, errs, visible, err, sizeof(err)) < 0) {
        add(d, "problem", "%s", err);
        if (!strncmp(err, "TLS", 3))
            add(d, "fix",
                "the pool did not accept these credentials (revoked, expired, or from another "
                "CA): re-apply the Application for fresh ones");
        else
            add(d, "fix", "is the pool running and reachable at %s? ('kpool get pools')",
                or_none(brokers));
    } else {
        add(d, "ok", "connected to %s over TLS", or_none(brokers));
        if (visible && !json_array_size(visible)) {
            add(d, "problem", "%s/%s is not authorized for any topic in the pool", d->ns, d->app);
            add(d, "fix",
                "each Topic %s/%s uses must list it under spec.acl (its owning team applies "
                "it); 'kpool doctor -n %s --app %s --topic NAME' prints the entry to add",
                d->ns, d->app, d->ns, d->app);
        } else if (visible) {
            add(d, "ok", "the pool authorizes %zu topic%s for these credentials",
                json_array_size(visible), json_array_size(visible) == 1 ? "" : "s");
        }
        live_topics(d, errs);
    }
    json_decref(visible);
    free(errs);
    kp_app_secret_free(&data);
}

static json_t *doctor(kp_store_t *store, const kp_pki_master_key_t *mk, int connect, const char *ns,
                      const char *app, int all_ns)
{
    doc_t d = {json_array(), ns, app, NULL, 0, NULL, NULL};
    json_t *a = NULL;
    if (kp_store_get(store, "AivenApplication", ns, app, &a) != KP_STORE_OK) a = NULL;
    d.pool = jstr(json_object_get(a, "spec"), "kafka", "pool");
    int have_secret = check_app(&d, store, a);
    check_topics(&d, store, all_ns);
    json_t *secret = NULL;
    const char *secret_name = jstr(json_object_get(a, "status"), "synchronizationSecretName", NULL);
    if (connect && have_secret && secret_name &&
        kp_store_get(store, "Secret", ns, secret_name, &secret) == KP_STORE_OK) {
        d.section = "pool";
        check_live(&d, secret, mk);
    }
    json_decref(secret); /* opened in place: its data is freed with it */
    json_t *doc =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:i, s:b, s:o}", "apiVersion", "kpool.dev/v1", "kind",
                  "DoctorReport", "metadata", "name", app, "namespace", ns, "problems", d.problems,
                  "connected", connect && d.section != NULL, "findings", d.findings);
    json_decref(d.granted);
    json_decref(a);
    return doc;
}

json_t *kp_api_doctor(kp_store_t *store, const char *ns, const char *app, int all_ns)
{
    return doctor(store, NULL, 0, ns, app, all_ns);
}

json_t *kp_api_doctor_connect(kp_store_t *store, const kp_pki_master_key_t *mk, const char *ns,
                              const char *app, int all_ns)
{
    return doctor(store, mk, 1, ns, app, all_ns);
}
