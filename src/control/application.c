/*
 * application.c — the Application reconciler (SPEC 2.4): "what happens on deploy".
 *
 * An Application with spec.kafka.pool owns an AivenApplication of the same name. Each
 * generation of the Application (each changed apply) gets a fresh secret name by the NAIS
 * rule aiven-kafka-<app>-<hash>-<isoyear>-<isoweek>[-<n>]; the changed secret name is a new
 * AivenApplication generation, so a new service user and new credentials. The previous
 * secret stays valid until the janitor finds it unused (running pods keep working during a
 * rollout). With spec.kafka.streams the Application also owns a Stream of its name and its
 * secret carries KAFKA_STREAMS_APPLICATION_ID.
 *
 * The Application's status mirrors its AivenApplication's: a change of that status
 * re-queues the Application (see on_change in control.c).
 */
#include "control/control_int.h"
#include "core/logging.h"
#include "core/utf8.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANN_OWNER_KIND "kpool.dev/owner"
#define ANN_APP_GEN    "kpool.dev/application-generation"
#define ANN_STREAMS    "kpool.dev/streams"
#define OWNER          "Application"

static int owned(json_t *obj)
{
    const char *o = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "annotations"), ANN_OWNER_KIND));
    return o && !strcmp(o, OWNER);
}

/* Marks an owned object of kind (ns, name) deleted; its reconciler finishes the job. */
static void drop_owned(kp_control_t *c, const char *kind, const char *ns, const char *name)
{
    json_t *obj = NULL;
    if (kp_store_get(c->store, kind, ns, name, &obj) != KP_STORE_OK) return;
    if (owned(obj) && !json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")) {
        json_t *out = NULL;
        kp_store_mark_deleted(c->store, kind, ns, name, &out);
        json_decref(out);
    }
    json_decref(obj);
}

/* aiven-kafka-<app>-<hash8>-<isoyear>-<isoweek>, at most 63 characters with a "-<n>"
 * suffix; the hash covers namespace, name, uid and generation, so every deploy differs. */
void kp_application_secret_name(const char *ns, const char *app, const char *uid,
                                int64_t generation, time_t now, int n, char *out, size_t outlen)
{
    char seed[768];
    snprintf(seed, sizeof(seed), "%s/%s/%s/%lld", ns, app, uid ? uid : "", (long long)generation);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(seed, strlen(seed), md, &mdlen, EVP_sha256(), NULL);
    char hash[9];
    for (int i = 0; i < 4; i++) snprintf(hash + 2 * i, 3, "%02x", md[i]);
    struct tm tm;
    gmtime_r(&now, &tm);
    char week[16];
    strftime(week, sizeof(week), "%G-%V", &tm);
    /* "aiven-kafka-" 12 + "-" 1 + hash 8 + "-" 1 + week 7 + "-nn" 3 = 32: the app gets 31 */
    char a[32];
    snprintf(a, sizeof(a), "%s", app);
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '-') a[--al] = 0;
    if (n > 0)
        snprintf(out, outlen, "aiven-kafka-%s-%s-%s-%d", a, hash, week, n);
    else
        snprintf(out, outlen, "aiven-kafka-%s-%s-%s", a, hash, week);
}

static void app_status(kp_control_t *c, json_t *obj, const char *state, const char *message,
                       const char *secret)
{
    char now[32];
    kp_status_time(now);
    json_t *s = json_pack("{s:s, s:s, s:O, s:o}", "synchronizationState", state,
                          "synchronizationTime", now, "observedGeneration",
                          json_object_get(json_object_get(obj, "metadata"), "generation"),
                          "message", kp_json_text(message));
    if (secret) json_object_set_new(s, "kafkaSecretName", json_string(secret));
    kp_status_write(c, obj, s);
    json_decref(s);
}

/* The secret name this generation uses: kept while the generation is the one it was made
 * for, new otherwise (with -<n> when another object already holds the name). */
static void secret_name_for(kp_control_t *c, json_t *obj, json_t *aapp, char *out, size_t n)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *uid = json_string_value(json_object_get(md, "uid"));
    json_int_t gen = json_integer_value(json_object_get(md, "generation"));
    if (aapp) {
        json_t *amd = json_object_get(aapp, "metadata");
        const char *g =
            json_string_value(json_object_get(json_object_get(amd, "annotations"), ANN_APP_GEN));
        const char *cur = json_string_value(
            json_object_get(json_object_get(json_object_get(aapp, "spec"), "kafka"), "secretName"));
        if (g && cur && atoll(g) == gen) {
            snprintf(out, n, "%s", cur);
            return;
        }
    }
    time_t now = time(NULL);
    for (int k = 0; k < 100; k++) {
        kp_application_secret_name(ns, name, uid, gen, now, k, out, n);
        json_t *s = NULL;
        if (kp_store_get(c->store, "Secret", ns, out, &s) != KP_STORE_OK) return;
        json_decref(s);
    }
}

void kp_application_reconcile(kp_control_t *c, json_t *obj, kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *kafka = json_object_get(json_object_get(obj, "spec"), "kafka");
    if (json_object_get(md, "deletionTimestamp")) {
        drop_owned(c, "AivenApplication", ns, name);
        drop_owned(c, "Stream", ns, name);
        kp_store_remove(c->store, "Application", ns, name);
        kp_info("control", "application %s/%s deleted", ns, name);
        return;
    }
    const char *pool = json_string_value(json_object_get(kafka, "pool"));
    if (!pool) {
        drop_owned(c, "AivenApplication", ns, name);
        drop_owned(c, "Stream", ns, name);
        app_status(c, obj, "RolloutComplete",
                   kafka ? "spec.kafka.pool is not set: no Kafka credentials"
                         : "no spec.kafka: no Kafka credentials",
                   NULL);
        return;
    }
    json_t *streams_v = json_object_get(kafka, "streams");
    if (streams_v && !json_is_boolean(streams_v)) {
        res->failed = 1;
        app_status(c, obj, "RolloutFailed", "spec.kafka.streams: must be true or false", NULL);
        return;
    }
    int streams = json_is_true(streams_v);
    json_t *aapp = NULL;
    kp_store_get(c->store, "AivenApplication", ns, name, &aapp);
    if (aapp && !owned(aapp)) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "AivenApplication %s/%s exists and was not created by this Application; "
                 "delete it or rename the Application",
                 ns, name);
        res->failed = 1;
        app_status(c, obj, "RolloutFailed", msg, NULL);
        json_decref(aapp);
        return;
    }
    char secret[64];
    secret_name_for(c, obj, aapp, secret, sizeof(secret));
    char gens[32];
    snprintf(gens, sizeof(gens), "%lld",
             (long long)json_integer_value(json_object_get(md, "generation")));
    json_t *want = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}, s:{s:{s:s, s:s}}}", "apiVersion",
        "aiven.nais.io/v1", "kind", "AivenApplication", "metadata", "name", name, "namespace", ns,
        "labels", "app", name, "team", ns, "annotations", ANN_OWNER_KIND, OWNER, ANN_APP_GEN, gens,
        "spec", "kafka", "pool", pool, "secretName", secret);
    if (streams)
        json_object_set_new(json_object_get(json_object_get(want, "metadata"), "annotations"),
                            ANN_STREAMS, json_string("true"));
    json_t *out = NULL;
    int rc = kp_store_put(c->store, want, -1, 0, &out);
    json_decref(want);
    json_decref(out);
    if (rc != KP_STORE_CREATED && rc != KP_STORE_UPDATED && rc != KP_STORE_UNCHANGED) {
        res->failed = 1;
        app_status(c, obj, "RolloutFailed",
                   rc == KP_STORE_CONFLICT ? "the previous AivenApplication is still being deleted"
                                           : "cannot write the AivenApplication",
                   NULL);
        json_decref(aapp);
        res->retry = 1;
        return;
    }
    if (streams) {
        json_t *st =
            json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion",
                      "kafka.nais.io/v1", "kind", "Stream", "metadata", "name", name, "namespace",
                      ns, "annotations", ANN_OWNER_KIND, OWNER, "spec", "pool", pool);
        json_t *sout = NULL;
        kp_store_put(c->store, st, -1, 0, &sout);
        json_decref(sout);
        json_decref(st);
    } else {
        drop_owned(c, "Stream", ns, name);
    }
    json_decref(aapp);
    /* mirror the AivenApplication's outcome for this secret */
    aapp = NULL;
    kp_store_get(c->store, "AivenApplication", ns, name, &aapp);
    json_t *as = json_object_get(aapp, "status");
    const char *astate = json_string_value(json_object_get(as, "synchronizationState"));
    const char *asecret = json_string_value(json_object_get(as, "synchronizationSecretName"));
    json_t *cond = json_array_get(json_object_get(as, "conditions"), 0);
    const char *amsg = json_string_value(json_object_get(cond, "message"));
    char msg[1024];
    if (astate && !strcmp(astate, "RolloutComplete") && asecret && !strcmp(asecret, secret)) {
        snprintf(msg, sizeof(msg), "Kafka credentials are in secret %s", secret);
        app_status(c, obj, "RolloutComplete", msg, secret);
    } else if (astate && !strcmp(astate, "RolloutFailed")) {
        snprintf(msg, sizeof(msg), "AivenApplication %s: %s: %s", name,
                 json_string_value(json_object_get(cond, "reason")) ?: "failed", amsg ? amsg : "");
        res->failed = 1;
        app_status(c, obj, "RolloutFailed", msg, secret);
    } else {
        snprintf(msg, sizeof(msg), "waiting for AivenApplication %s to write secret %s", name,
                 secret);
        app_status(c, obj, "Synchronized", msg, secret);
    }
    json_decref(aapp);
}
