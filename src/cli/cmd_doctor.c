/*
 * cmd_doctor.c — `kpool doctor -n NS --app APP [--topic NAME]`: the FAQ of SPEC §8 as code.
 * It looks at what the control plane says (the AivenApplication, its Secret, the Topics and
 * their ACLs) and, unless --no-connect, at what the pool says with the app's own
 * credentials, and prints what is fine, what is wrong and the fix:
 *
 *   - "topic not found" with a short name: the fully qualified name to use (from the
 *     Topic's status.fullyQualifiedName); a qualified name no Topic has: the Topics that do
 *     exist and a manifest declaring the missing one;
 *   - "not authorized": which spec.acl entry is missing and the exact YAML to add;
 *   - secret missing: the AivenApplication's status conditions and the reason;
 *   - with --group G: whether the pool lets the app use consumer group G; a group owned by
 *     another team (the first team that uses a group id owns it, docs/groups.md) is said so.
 *
 * Output: sections ("AivenApplication team-a/shop:") of lines "  ok: ...", "  problem:
 * ...", "  fix: ...", "  note: ...", then a summary. Exit 0 when no problem was found, 1
 * otherwise (or when the control plane cannot be asked), 2 for an invalid command line.
 * Text from the server is printed with control characters replaced.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Topics listed when a name is unknown (the rest are counted): a screenful. */
#define DOCTOR_TOPICS_LISTED_MAX 20

typedef struct doctor {
    const kp_app_opts_t *o;
    kp_client_t *c;
    const char *ns, *app;
    const char *pool; /* the AivenApplication's spec.kafka.pool, or NULL */
    int want_access;  /* --access, 0 when not given */
    int all_ns;       /* the token sees Topics of every namespace */
    int problems;
    kp_app_creds_t cr;
    int have_secret; /* cr.data holds the secret */
} doctor_t;

static const kp_option_t doctor_options[] = {
    KP_APP_OPT_NAMESPACE,
    KP_APP_OPT_APP("the application"),
    KP_APP_OPT_TOPIC("NAME", "the topic APP fails to use (short or fully qualified)"),
    KP_OPT_CALLBACK(0, "access", "ACCESS",
                    "what APP needs on it: read, write or readwrite [any;\n"
                    "a missing entry is suggested as readwrite]",
                    kp_app_opt_access),
    KP_OPT_NONEMPTY('g', "group", kp_app_opts_t, group, "G",
                    "the consumer group id APP fails to use", "--group needs a group id"),
    KP_OPT_BOOL(0, "no-connect", kp_app_opts_t, no_connect,
                "only ask the control plane, not the pool"),
    KP_APP_OPT_TIMEOUT("budget of the pool check [10]"),
    KP_APP_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_doctor_cmd = {
    .name = "doctor",
    .usage = "doctor -n NS --app APP [--topic NAME] [--access read|write|readwrite]\n"
             "             [--group G] [--no-connect] [--timeout SECS]",
    .description =
        "Diagnoses why application APP cannot use Kafka and prints the fix:\n"
        "  - its AivenApplication and secret: when the secret is missing, the status\n"
        "    conditions (type, status, reason, message) and the reason;\n"
        "  - with --topic NAME: whether NAME is what Kafka calls the topic (a Topic is\n"
        "    known to Kafka by its fully qualified name <namespace>.<name>; a short name\n"
        "    gives \"topic not found\"), whether the Topic is synchronized, and whether its\n"
        "    spec.acl grants team NS, application APP access; a missing entry is printed as\n"
        "    the YAML to add under spec.acl;\n"
        "  - without --topic: every Topic granting APP access;\n"
        "  - then, with APP's own credentials, what the pool says: reachable over TLS, each\n"
        "    topic authorized and present; with --group G, whether APP may use consumer\n"
        "    group G (a group id belongs to the first team that used it).\n"
        "What is fine is printed too.\n",
    .options = doctor_options,
    .footer = KP_OPTS_CONFIG_HELP
    "\nExit status: 0 no problem found, 1 problems found (or the control plane could not\n"
    "be asked), 2 invalid command line.\n",
};

/* ---- output ---- */

static void say(const char *tag, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void say(const char *tag, const char *fmt, va_list ap)
{
    printf("  %s: ", tag);
    vprintf(fmt, ap);
    printf("\n");
}

static void ok(doctor_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(doctor_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fix(doctor_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(doctor_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ok(doctor_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("ok", fmt, ap);
    va_end(ap);
}

static void problem(doctor_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("problem", fmt, ap);
    va_end(ap);
    d->problems++;
}

static void fix(doctor_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("fix", fmt, ap);
    va_end(ap);
}

static void note(doctor_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("note", fmt, ap);
    va_end(ap);
}

/* Prints a block of lines (YAML, conditions) as it is. */
static void block(const kp_buf_t *b)
{
    fwrite(b->data, 1, b->len, stdout);
}

/* Text chosen by the server, cleaned, in one of a few rotating buffers (each call's result
 * stays valid for the next CLEAN_SLOTS - 1 calls: enough for one printf). */
#define CLEAN_SLOTS     8
#define CLEAN_BYTES_MAX 1024
static const char *cl(const char *s)
{
    static char slots[CLEAN_SLOTS][CLEAN_BYTES_MAX];
    static int next;
    char *out = slots[next];
    next = (next + 1) % CLEAN_SLOTS;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_text_clean(s, &b);
    snprintf(out, CLEAN_BYTES_MAX, "%.*s", (int)b.len, (const char *)b.data);
    kp_buf_free(&b);
    return out;
}

static const char *jstr(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b) v = json_object_get(v, b);
    return json_string_value(v);
}

/* ---- the AivenApplication and its secret ---- */

/* What to do about the condition reason of a failed rollout. */
static void fix_for_reason(doctor_t *d, const json_t *aivenapp)
{
    kp_buf_t why;
    kp_buf_init(&why);
    kp_app_condition_reason(aivenapp, &why);
    kp_buf_append(&why, "", 1);
    const char *w = (const char *)why.data;
    if (strstr(w, "ValidatePool"))
        fix(d,
            "set spec.kafka.pool of Application %s/%s to a pool that exists ('kpool get "
            "pools'), then apply it again",
            d->ns, d->app);
    else if (strstr(w, "AivenFailure"))
        fix(d,
            "the pool refused the control plane (see the message); it retries with backoff. "
            "Once the pool is back, 'kpool describe aivenapp %s -n %s' shows RolloutComplete",
            d->app, d->ns);
    else
        fix(d,
            "the control plane failed at the step the reason names (see the message); it "
            "retries. Re-apply the Application to force a new deploy; 'kpool describe "
            "aivenapp %s -n %s' shows the status",
            d->app, d->ns);
    kp_buf_free(&why);
}

static void print_conditions(const json_t *aivenapp)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_app_conditions_render(aivenapp, "    ", &b);
    printf("  conditions:\n");
    block(&b);
    kp_buf_reset(&b);
    if (kp_app_condition_reason(aivenapp, &b))
        printf("  reason: %.*s\n", (int)b.len, (const char *)b.data);
    kp_buf_free(&b);
}

/* No AivenApplication: is there an Application it should come from? */
static int doctor_no_aivenapp(doctor_t *d)
{
    char err[2048];
    json_t *app = NULL;
    problem(d, "AivenApplication %s/%s does not exist, so the app has no credentials", d->ns,
            d->app);
    int rc = kp_app_get(d->c, "application", d->ns, d->app, &app, err, sizeof(err));
    if (rc == 0) {
        const char *pool = jstr(json_object_get(app, "spec"), "kafka", "pool");
        if (pool)
            fix(d,
                "Application %s/%s has spec.kafka.pool %s: the control plane creates the "
                "AivenApplication when it reconciles it; see 'kpool describe app %s -n %s'",
                d->ns, d->app, cl(pool), d->app, d->ns);
        else
            fix(d,
                "Application %s/%s has no spec.kafka.pool: add 'kafka: {pool: dev}' under "
                "its spec and apply it",
                d->ns, d->app);
    } else {
        fix(d,
            "deploy the application with spec.kafka.pool (an Application), or apply an "
            "AivenApplication %s in namespace %s",
            d->app, d->ns);
    }
    json_decref(app);
    return 0;
}

/* The secret the AivenApplication names. */
static int doctor_secret(doctor_t *d)
{
    char err[2048];
    const json_t *aivenapp = d->cr.aivenapp;
    printf("Secret %s/%s:\n", d->ns, cl(d->cr.secret_name));
    int rc = kp_app_get(d->c, "secret", d->ns, d->cr.secret_name, &d->cr.secret, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "kpool doctor: %s\n", err);
        return -1;
    }
    if (rc == 1) {
        problem(d, "no secret: %s, named by status.synchronizationSecretName, does not exist",
                cl(d->cr.secret_name));
        print_conditions(aivenapp);
        fix(d, "the control plane writes it again on its next reconcile; re-apply the "
               "Application to force a new deploy with fresh credentials");
        return 0;
    }
    if (kp_app_secret_decode(d->cr.secret, &d->cr.data, err, sizeof(err)) < 0) {
        problem(d, "the secret cannot be read: %s", err);
        return 0;
    }
    d->have_secret = 1;
    static const char *const required[] = {"KAFKA_BROKERS", "KAFKA_CERTIFICATE",
                                           "KAFKA_PRIVATE_KEY", "KAFKA_CA"};
    int missing = 0;
    for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++) {
        if (!kp_app_secret_text(&d->cr.data, required[i])) {
            problem(d, "the secret has no %s", required[i]);
            missing = 1;
        }
    }
    if (missing) {
        d->have_secret = 0;
        fix(d, "re-apply the Application: the control plane issues a complete secret");
        return 0;
    }
    const char *updated = kp_app_secret_text(&d->cr.data, "KAFKA_SECRET_UPDATED");
    ok(d, "%zu keys; brokers %s; issued %s", d->cr.data.n,
       cl(kp_app_secret_text(&d->cr.data, "KAFKA_BROKERS")), updated ? cl(updated) : "<unknown>");
    return 0;
}

/* -1: the API failed (printed), 0: diagnosed (problems counted). */
static int doctor_app(doctor_t *d)
{
    char err[2048];
    printf("AivenApplication %s/%s:\n", d->ns, d->app);
    int rc = kp_app_get(d->c, "aivenapplication", d->ns, d->app, &d->cr.aivenapp, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "kpool doctor: %s\n", err);
        return -1;
    }
    if (rc == 1) return doctor_no_aivenapp(d);
    const json_t *a = d->cr.aivenapp, *status = json_object_get(a, "status");
    d->pool = jstr(json_object_get(a, "spec"), "kafka", "pool");
    const char *state = jstr(status, "synchronizationState", NULL);
    d->cr.secret_name = jstr(status, "synchronizationSecretName", NULL);
    json_t *gen = json_object_get(json_object_get(a, "metadata"), "generation");
    json_t *observed = json_object_get(status, "observedGeneration");
    if (json_is_integer(gen) && json_is_integer(observed) &&
        json_integer_value(observed) < json_integer_value(gen))
        note(d, "the status describes generation %lld; generation %lld is not reconciled yet",
             json_integer_value(observed), json_integer_value(gen));
    if (!status) {
        problem(d, "no secret: the control plane has not reconciled the AivenApplication yet "
                   "(no status)");
        fix(d,
            "wait a few seconds; if it stays so, is the control plane running? ('kpool "
            "describe aivenapp %s -n %s')",
            d->app, d->ns);
        return 0;
    }
    if (!d->cr.secret_name || !*d->cr.secret_name) {
        d->cr.secret_name = NULL;
        problem(d, "no secret: the AivenApplication has no synchronized secret (%s)",
                state ? cl(state) : "no synchronizationState");
        print_conditions(a);
        fix_for_reason(d, a);
        return 0;
    }
    if (state && !strcmp(state, "RolloutFailed")) {
        problem(d,
                "the last rollout failed (RolloutFailed); the app still has its previous "
                "secret %s",
                cl(d->cr.secret_name));
        print_conditions(a);
        fix_for_reason(d, a);
    } else {
        const char *user = jstr(status, "serviceUser", NULL);
        ok(d, "%s; current secret %s%s%s%s; pool %s", state ? cl(state) : "no state",
           cl(d->cr.secret_name), user ? " (service user " : "", user ? cl(user) : "",
           user ? ")" : "", d->pool ? cl(d->pool) : "<none>");
    }
    return doctor_secret(d);
}

/* ---- topics ---- */

/* Checks one Topic resource: deletion, synchronization, pool. */
static void doctor_topic_state(doctor_t *d, const json_t *t, const char *fqn)
{
    const char *tns = jstr(t, "metadata", "namespace"), *tname = jstr(t, "metadata", "name");
    const json_t *st = json_object_get(t, "status");
    const char *state = jstr(st, "synchronizationState", NULL);
    const char *tpool = jstr(t, "spec", "pool");
    if (jstr(t, "metadata", "deletionTimestamp"))
        problem(d, "Topic %s/%s is being deleted (since %s)", cl(tns), cl(tname),
                cl(jstr(t, "metadata", "deletionTimestamp")));
    if (state && !strcmp(state, "RolloutComplete")) {
        ok(d, "Topic %s/%s is RolloutComplete in pool %s; Kafka name %s", cl(tns), cl(tname),
           cl(tpool), cl(fqn));
    } else {
        problem(d, "Topic %s/%s is %s: %s", cl(tns), cl(tname),
                state ? cl(state) : "not synchronized yet", cl(jstr(st, "message", NULL)));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(st, "errors"), i, e)
            printf("    error: %s\n", cl(json_string_value(e)));
        if (state && !strcmp(state, "FailedPrepare"))
            fix(d, "correct the spec as the message says and apply the Topic again");
        else
            fix(d,
                "the control plane retries with backoff; 'kpool describe topic %s -n %s' "
                "shows its progress",
                cl(tname), cl(tns));
    }
    if (d->pool && tpool && strcmp(d->pool, tpool)) {
        problem(d, "Topic %s/%s is in pool %s, but %s/%s's credentials are for pool %s", cl(tns),
                cl(tname), cl(tpool), d->ns, d->app, cl(d->pool));
        fix(d, "a Topic and the applications using it must be in the same pool: change "
               "spec.pool of one of them");
    }
}

/* Checks spec.acl of Topic t for ns/app. Returns the access granted. */
static int doctor_topic_acl(doctor_t *d, const json_t *t)
{
    const char *tns = jstr(t, "metadata", "namespace"), *tname = jstr(t, "metadata", "name");
    const json_t *acl = json_object_get(json_object_get(t, "spec"), "acl");
    int access = kp_app_acl_access(acl, d->ns, d->app);
    int want = d->want_access;
    kp_buf_t y;
    kp_buf_init(&y);
    if (access && (!want || (access & want) == want)) {
        size_t i;
        json_t *a;
        json_array_foreach(acl, i, a)
        {
            const char *team = jstr(a, "team", NULL), *ap = jstr(a, "application", NULL);
            if (team && ap && kp_app_glob_match(team, d->ns) && kp_app_glob_match(ap, d->app)) {
                ok(d,
                   "spec.acl grants team %s, application %s %s access (entry %zu: team %s, "
                   "application %s, access %s)",
                   d->ns, d->app, kp_app_access_name(access), i, cl(team), cl(ap),
                   cl(jstr(a, "access", NULL)));
                break;
            }
        }
    } else if (access) {
        problem(d,
                "not authorized for %s: spec.acl of Topic %s/%s grants team %s, application "
                "%s only %s access",
                kp_app_access_name(want), cl(tns), cl(tname), d->ns, d->app,
                kp_app_access_name(access));
        kp_app_acl_suggest(d->ns, d->app, access | want, "      ", &y);
        fix(d,
            "add under spec.acl of Topic %s/%s (or widen the matching entry's access), then "
            "'kpool apply -f' it:",
            cl(tns), cl(tname));
        block(&y);
    } else {
        problem(d,
                "not authorized: no entry of spec.acl of Topic %s/%s matches team %s, "
                "application %s",
                cl(tns), cl(tname), d->ns, d->app);
        size_t i;
        json_t *a;
        json_array_foreach(acl, i, a) printf(
            "    spec.acl[%zu]: team %s, application %s, access %s\n", i, cl(jstr(a, "team", NULL)),
            cl(jstr(a, "application", NULL)), cl(jstr(a, "access", NULL)));
        kp_app_acl_suggest(d->ns, d->app, want ? want : KP_APP_ACCESS_RW, "      ", &y);
        fix(d, "add under spec.acl of Topic %s/%s, then 'kpool apply -f' it (-n %s):", cl(tns),
            cl(tname), cl(tns));
        block(&y);
    }
    kp_buf_free(&y);
    return access;
}

/* Lists up to DOCTOR_TOPICS_LISTED_MAX Topics of namespace ns. */
static void list_topics_of(const json_t *topics, const char *ns)
{
    size_t i, shown = 0, total = 0;
    json_t *t;
    char fqn[512];
    json_array_foreach(topics, i, t)
    {
        const char *tns = jstr(t, "metadata", "namespace");
        if (!tns || strcmp(tns, ns)) continue;
        if (total++ < DOCTOR_TOPICS_LISTED_MAX && kp_app_topic_fqn(t, fqn, sizeof(fqn))) {
            printf("    Topic %s/%s: %s\n", cl(tns), cl(jstr(t, "metadata", "name")), cl(fqn));
            shown++;
        }
    }
    if (!total)
        printf("    (no Topics in namespace %s)\n", cl(ns));
    else if (total > shown)
        printf("    ... and %zu more ('kpool get topics -n %s')\n", total - shown, cl(ns));
}

/* A name no Topic has: what exists, and a manifest for the missing one. Returns 1 when the
 * Topic may exist in a namespace the token cannot read (then only the pool can tell). */
static int doctor_topic_missing(doctor_t *d, const json_t *topics, const char *name,
                                kp_app_topic_match_t m)
{
    char tns[256], tname[512];
    if (m == KP_APP_TOPIC_FQN_MISSING) {
        const char *dot = strchr(name, '.');
        snprintf(tns, sizeof(tns), "%.*s", (int)(dot - name), name);
        snprintf(tname, sizeof(tname), "%s", dot + 1);
        if (!d->all_ns && strcmp(tns, d->ns)) {
            note(d,
                 "this token reads the Topics of namespace %s only: Topic %s/%s cannot be "
                 "checked here (an admin token can); the pool is asked below",
                 d->ns, cl(tns), cl(tname));
            return 1;
        }
        problem(d,
                "topic %s does not exist: no Topic has that fully qualified name (it would "
                "be Topic %s in namespace %s)",
                cl(name), cl(tname), cl(tns));
    } else {
        snprintf(tns, sizeof(tns), "%s", d->ns);
        snprintf(tname, sizeof(tname), "%s", name);
        problem(d,
                "topic %s does not exist: there is no Topic %s in namespace %s (nor in another "
                "namespace you can see)",
                cl(name), cl(name), d->ns);
    }
    printf("  Topics in namespace %s:\n", cl(tns));
    list_topics_of(topics, tns);
    kp_buf_t y;
    kp_buf_init(&y);
    kp_app_topic_suggest(tns, tname, d->pool, d->ns, d->app,
                         d->want_access ? d->want_access : KP_APP_ACCESS_RW, &y);
    kp_buf_append(&y, "", 1);
    fix(d,
        "use one of the names above, or declare the topic (kpool apply -f topic.yaml) and "
        "use %s.%s:",
        cl(tns), cl(tname));
    for (char *line = strtok((char *)y.data, "\n"); line; line = strtok(NULL, "\n"))
        printf("      %s\n", line);
    kp_buf_free(&y);
    return 0;
}

/* --topic NAME: resolves it and checks the Topic. Returns the topics to check live. */
static json_t *doctor_topic(doctor_t *d, const json_t *topics, const char *name)
{
    printf("Topic %s:\n", cl(name));
    const json_t *t;
    kp_app_topic_match_t m = kp_app_topic_resolve(topics, d->ns, name, &t);
    json_t *live = json_array();
    if (m == KP_APP_TOPIC_FQN_MISSING || m == KP_APP_TOPIC_UNKNOWN) {
        /* access -1: unknown (a Topic the token cannot see) */
        if (doctor_topic_missing(d, topics, name, m))
            json_array_append_new(live, json_pack("{s:s, s:i}", "fqn", name, "access", -1));
        return live;
    }
    char fqn[512];
    kp_app_topic_fqn(t, fqn, sizeof(fqn));
    const char *tns = jstr(t, "metadata", "namespace"), *tname = jstr(t, "metadata", "name");
    if (m == KP_APP_TOPIC_FQN) {
        ok(d, "%s is the fully qualified name of Topic %s/%s", cl(name), cl(tns), cl(tname));
    } else {
        problem(d,
                "topic %s not found: Kafka knows Topic %s/%s by its fully qualified name, "
                "not by its resource name",
                cl(name), cl(tns), cl(tname));
        fix(d, "use the topic name %s (status.fullyQualifiedName of Topic %s/%s)", cl(fqn), cl(tns),
            cl(tname));
    }
    doctor_topic_state(d, t, fqn);
    int access = doctor_topic_acl(d, t);
    json_array_append_new(live,
                          json_pack("{s:s, s:i, s:O}", "fqn", fqn, "access", access, "topic", t));
    return live;
}

/* No --topic: every Topic granting the app access. */
static json_t *doctor_granted(doctor_t *d, const json_t *topics)
{
    printf("Topics granted to %s/%s:\n", d->ns, d->app);
    json_t *granted = kp_app_topics_granted(topics, d->ns, d->app, d->pool);
    if (!json_array_size(granted))
        note(d,
             "no Topic grants team %s, application %s access (a Topic lists the apps that "
             "may use it under spec.acl; 'kpool doctor --topic NAME' shows what to add)",
             d->ns, d->app);
    size_t i;
    json_t *g;
    json_array_foreach(granted, i, g)
    {
        const json_t *t = json_object_get(g, "topic");
        const char *fqn = json_string_value(json_object_get(g, "fqn"));
        const char *state = jstr(t, "status", "synchronizationState");
        if (state && !strcmp(state, "RolloutComplete"))
            ok(d, "%s: %s (Topic %s/%s)", cl(fqn),
               kp_app_access_name((int)json_integer_value(json_object_get(g, "access"))),
               cl(jstr(t, "metadata", "namespace")), cl(jstr(t, "metadata", "name")));
        else
            doctor_topic_state(d, t, fqn);
    }
    return granted;
}

/* ---- the pool ---- */

/* The pool's answer for a topic of a namespace the token cannot read. */
static void doctor_live_unseen(doctor_t *d, const char *fqn, rd_kafka_resp_err_t e)
{
    problem(d, "%s: %s", cl(fqn), kp_app_kafka_topic_problem(e));
    if (e != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) return;
    const char *dot = strchr(fqn, '.');
    kp_buf_t y;
    kp_buf_init(&y);
    kp_app_acl_suggest(d->ns, d->app, d->want_access ? d->want_access : KP_APP_ACCESS_RW, "      ",
                       &y);
    fix(d,
        "if it exists, the team owning it (namespace %.*s) adds under spec.acl of its Topic "
        "%s:",
        (int)(dot - fqn), cl(fqn), cl(dot + 1));
    block(&y);
    kp_buf_free(&y);
}

static void doctor_live(doctor_t *d, const json_t *live)
{
    printf("Pool (with %s/%s's credentials):\n", d->ns, d->app);
    size_t n = json_array_size(live);
    rd_kafka_resp_err_t *errs = kp_xcalloc(n + 1, sizeof(*errs));
    char err[2048];
    const char *brokers = kp_app_secret_text(&d->cr.data, "KAFKA_BROKERS");
    long timeout_ms = d->o->timeout_ms ? d->o->timeout_ms : KP_APP_PROBE_TIMEOUT_MS_DEFAULT;
    /* no --topic and nothing granted (and no Kafka Streams app): does the pool authorize
     * anything at all? */
    json_t *visible =
        !n && !d->o->topic && !kp_app_secret_text(&d->cr.data, "KAFKA_STREAMS_APPLICATION_ID")
            ? json_array()
            : NULL;
    if (kp_app_probe_live(&d->cr.data, "kpool-doctor", live, timeout_ms, errs, visible, err,
                          sizeof(err)) < 0) {
        problem(d, "%s", err);
        if (!strncmp(err, "TLS", 3))
            fix(d, "the pool did not accept these credentials (revoked, expired, or from another "
                   "CA): re-apply the Application for fresh ones");
        else
            fix(d, "is the pool running and reachable at %s? ('kpool get pools')", cl(brokers));
        json_decref(visible);
        free(errs);
        return;
    }
    ok(d, "connected to %s over TLS", cl(brokers));
    if (visible && !json_array_size(visible)) {
        problem(d, "%s/%s is not authorized for any topic in the pool", d->ns, d->app);
        fix(d,
            "each Topic %s/%s uses must list it under spec.acl (its owning team applies it); "
            "'kpool doctor -n %s --app %s --topic NAME' prints the entry to add",
            d->ns, d->app, d->ns, d->app);
    } else if (visible) {
        kp_buf_t names;
        kp_buf_init(&names);
        for (size_t i = 0; i < json_array_size(visible); i++)
            kp_buf_appendf(&names, "%s%s", i ? ", " : "",
                           cl(json_string_value(json_array_get(visible, i))));
        ok(d, "the pool authorizes %zu topic%s for these credentials (%.*s)",
           json_array_size(visible), json_array_size(visible) == 1 ? "" : "s", (int)names.len,
           (const char *)names.data);
        kp_buf_free(&names);
    }
    json_decref(visible);
    for (size_t i = 0; i < n; i++) {
        const json_t *g = json_array_get(live, i);
        const char *fqn = json_string_value(json_object_get(g, "fqn"));
        int access = (int)json_integer_value(json_object_get(g, "access"));
        const json_t *t = json_object_get(g, "topic");
        if (!errs[i]) {
            ok(d, "%s: exists and is authorized", cl(fqn));
        } else if (access < 0) {
            doctor_live_unseen(d, fqn, errs[i]);
        } else if (errs[i] == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED && !access) {
            note(d, "the pool confirms: %s not authorized", cl(fqn));
        } else if (errs[i] == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            problem(d, "%s: the pool says not authorized although spec.acl grants %s/%s access",
                    cl(fqn), d->ns, d->app);
            fix(d,
                "the control plane has not written the ACLs for this service user yet (or "
                "they were removed in the pool; its resync restores them): see 'kpool "
                "describe topic %s -n %s'",
                cl(jstr(t, "metadata", "name")), cl(jstr(t, "metadata", "namespace")));
        } else {
            problem(d, "%s: %s", cl(fqn), kp_app_kafka_topic_problem(errs[i]));
        }
    }
    free(errs);
}

/* The pool's answer to OffsetFetch of group (every topic) with the app's credentials: its
 * group-level error, or -1 with err when the pool gave no answer. */
static int doctor_group_error(doctor_t *d, const char *group, long timeout_ms,
                              rd_kafka_resp_err_t *out, char *err, size_t errlen)
{
    kp_app_kafka_state_t st;
    char errstr[512];
    rd_kafka_conf_t *conf = kp_app_kafka_conf(&d->cr.data, "kpool-doctor", &st, err, errlen);
    if (!conf) return -1;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "librdkafka: %s", errstr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(opts, (int)timeout_ms, errstr, sizeof(errstr));
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)timeout_ms + 1000);
    int rc = -1;
    if (!ev) {
        snprintf(err, errlen, "the pool did not answer in time");
    } else if (rd_kafka_event_error(ev)) {
        *out = rd_kafka_event_error(ev);
        rc = 0;
    } else {
        size_t n = 0;
        const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *e = n ? rd_kafka_group_result_error(gr[0]) : NULL;
        *out = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
        /* librdkafka may put the group's error on its partitions instead */
        const rd_kafka_topic_partition_list_t *l =
            n ? rd_kafka_group_result_partitions(gr[0]) : NULL;
        for (int i = 0; l && !*out && i < l->cnt; i++) *out = l->elems[i].err;
        rc = 0;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* --group: may the app use the consumer group? A refusal under the default group ACL (READ
 * on every group id) means another team owns the group. */
static void doctor_group(doctor_t *d, const char *group)
{
    printf("Consumer group %s:\n", cl(group));
    char err[1024];
    long timeout_ms = d->o->timeout_ms ? d->o->timeout_ms : KP_APP_PROBE_TIMEOUT_MS_DEFAULT;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (doctor_group_error(d, group, timeout_ms, &e, err, sizeof(err)) < 0) {
        problem(d, "cannot ask the pool about group %s: %s", cl(group), err);
        return;
    }
    if (!e) {
        ok(d, "%s/%s may use group %s (unused, or its team's)", d->ns, d->app, cl(group));
        return;
    }
    if (e != RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
        problem(d, "group %s: the pool answers %s", cl(group), rd_kafka_err2str(e));
        return;
    }
    json_t *pool = NULL;
    const char *prefix = NULL;
    if (d->pool && kp_app_get(d->c, "pool", NULL, d->pool, &pool, err, sizeof(err)) == 0)
        prefix = json_string_value(
            json_object_get(json_object_get(pool, "spec"), "consumerGroupPrefix"));
    if (prefix && *prefix && strncmp(group, prefix, strlen(prefix)) != 0) {
        problem(d, "group %s: not authorized: pool %s allows only group ids starting with '%s'",
                cl(group), cl(d->pool), cl(prefix));
        fix(d, "use a group id starting with '%s'", cl(prefix));
    } else {
        problem(d,
                "group %s is owned by another team: the first team that uses a group id owns "
                "it, and the pool refuses it to every other team (GROUP_AUTHORIZATION_FAILED)",
                cl(group));
        fix(d,
            "use a group id of your own (for example '%s.%s'), or ask the pool's admin to "
            "release %s (an admin's DeleteGroups: see docs/groups.md; if your namespace used "
            "it before a redeploy, it may have been claimed under the team part of an older "
            "kpool's service user names, see \"Users named by an older kpool\" there)",
            d->ns, d->app, cl(group));
    }
    json_decref(pool);
}

/* ---- the command ---- */

static int doctor_run(doctor_t *d)
{
    char err[2048];
    if (doctor_app(d) < 0) return KP_APP_EXIT_FAIL;
    json_t *topics = kp_app_topics_list(d->c, d->ns, &d->all_ns, err, sizeof(err));
    if (!topics) {
        fprintf(stderr, "kpool doctor: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    json_t *live = d->o->topic ? doctor_topic(d, topics, d->o->topic) : doctor_granted(d, topics);
    if (d->have_secret && !d->o->no_connect) doctor_live(d, live);
    if (d->have_secret && !d->o->no_connect && d->o->group) doctor_group(d, d->o->group);
    json_decref(live);
    json_decref(topics);
    if (d->problems)
        printf("%d problem%s found.\n", d->problems, d->problems == 1 ? "" : "s");
    else
        printf("No problems found.\n");
    return d->problems ? KP_APP_EXIT_FAIL : 0;
}

int kp_cmd_doctor(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, &kp_doctor_cmd, argc, argv);
    if (o.help)
        rc = 0; /* the parser printed it */
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && o.nargs)
        rc = kp_app_usage_error(&o, "unexpected argument '%s'", o.args[0]);
    if (rc || o.help) goto out;
    doctor_t d;
    memset(&d, 0, sizeof(d));
    d.o = &o;
    d.c = kp_app_client_open(&o, &rc);
    if (!d.c) goto out;
    d.ns = kp_app_namespace(&o, d.c);
    d.app = o.app;
    d.want_access = kp_app_access_parse(o.access);
    rc = doctor_run(&d);
    kp_app_creds_free(&d.cr);
    kp_client_free(d.c);
out:
    kp_app_opts_free(&o);
    return rc;
}
