/*
 * credentials.c — AivenApplication reconciler and the janitor (SPEC 2.3, 3, 4).
 *
 * One pass for an AivenApplication of generation G:
 *   ValidatePool → CreateServiceUser (<team>_<app>_<id>_<G>, principal User:CN=<user> or the
 *   pool's mapping) → PropagateAcls (every Topic whose ACL entries match the team/app is
 *   reconciled now, so the first connection with the new credentials succeeds) →
 *   IssueCertificate (CN=<user>, signed by the pool CA) → BuildStores (PKCS#12 keystore and
 *   truststore, random password) → CreateSecret (sealed at rest) → status Succeeded.
 * A failing step sets RolloutFailed with a condition whose reason names the step: AivenFailure
 * when the pool failed, LocalFailure when we did; it is retried with backoff. Messages never
 * carry key material.
 *
 * Credentials of an existing secret are reused while its certificate has more than the
 * renewal window left; then a new certificate is issued for the same service user (the
 * principal, and so the ACLs, stay the same).
 *
 * Janitor: a credentials secret that is no AivenApplication's current secret (and not kept by
 * a protected, unexpired AivenApplication) is deleted after a grace period, and its service
 * user revoked (its ACLs go). A user whose secret was rewritten for a newer generation is
 * revoked after the grace period too. AivenApplications past spec.expiresAt are deleted.
 * A revoked service user's name is never given out again (user_create).
 */
#include "auth/acl.h"
#include "auth/principal.h"
#include "control/control_int.h"
#include "control/events.h"
#include "control/kinds.h"
#include "control/secrets.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/utf8.h"
#include "pki/pki.h"
#include "core/fs.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANN_USER       KP_ANN_SERVICE_USER
#define ANN_POOL       KP_ANN_POOL
#define ANN_OWNER      KP_ANN_OWNER
#define ANN_SUPERSEDED KP_ANN_SUPERSEDED
#define ANN_STREAMS    "kpool.dev/streams"
#define SECRET_TYPE    KP_CREDENTIALS_SECRET_TYPE
/* Re-creations of an AivenApplication tried for a fresh service user name (user_create);
 * bounds the store lookups of one reconcile. */
#define USER_INCARNATIONS_MAX 100

/* ---- names ---- */

/* The team part of a service user name: one string per namespace, never the same for two
 * (docs/applications.md "Service user names"), since group ownership reads a principal's team
 * from it (docs/groups.md). A namespace that an older kpool wrote out unchanged (a DNS label
 * of at most 20 characters that does not start with "team") is itself: those namespaces keep
 * the team they had. Any other (longer, "team"/"team-" in front, or characters a DNS label
 * cannot hold) is <short>~<16 hex digits of SHA-256 of the whole namespace>: <short> the
 * readable rest (the "team-"/"team" prefix dropped, at most 8 characters) and '~', which no
 * namespace holds, so it never equals a plain one. At most 25 characters. */
#define TEAM_PLAIN_MAX  20
#define TEAM_SHORT_MAX  8
#define TEAM_HASH_BYTES 8

void kp_service_user_team(const char *ns, char *out, size_t n)
{
    const char *ts = ns;
    if (!strncmp(ts, "team-", 5))
        ts += 5;
    else if (!strncmp(ts, "team", 4) && ts[4])
        ts += 4;
    size_t len = strlen(ns);
    int plain = ts == ns && len > 0 && len <= TEAM_PLAIN_MAX &&
                strspn(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
    if (plain) {
        snprintf(out, n, "%s", ns);
        return;
    }
    char s[TEAM_SHORT_MAX + 1];
    size_t sl = 0;
    for (const char *p = ts; *p && sl < TEAM_SHORT_MAX; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') s[sl++] = *p;
    s[sl] = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "kpool team/", 11);
    EVP_DigestUpdate(ctx, ns, len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    char hex[2 * TEAM_HASH_BYTES + 1];
    for (int i = 0; i < TEAM_HASH_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, n, "%s~%s", s, hex);
}

/* <team>_<app>_<id>_<generation>, and for incarnation > 1 "-<incarnation>" after the
 * generation (see user_create). <team> is kp_service_user_team: exact or unique per
 * namespace. The app is shortened (the namespace at its start dropped, then cut to at most
 * 30 characters) so the name stays readable and at most 64 characters; <id> is 8 hex digits
 * of SHA-256 of the AivenApplication's uid, which the store draws at random and nobody can
 * choose. So the shortened app parts may coincide and the id cannot be forged to match; and
 * user_create never hands out a name recorded for another team, application or secret. */
static void user_name(const char *team, const char *app, const char *uid, int64_t generation,
                      int incarnation, char *out, size_t n)
{
    char t[32], a[31];
    kp_service_user_team(team, t, sizeof(t));
    const char *as = app;
    size_t tl = strlen(team);
    if (!strncmp(as, team, tl) && as[tl]) {
        as += tl;
        while (*as == '-' || *as == '_') as++;
        if (!*as) as = app;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char seed[128];
    int seedlen = snprintf(seed, sizeof(seed), "kpool service user/%s", uid ? uid : "");
    EVP_Digest(seed, (size_t)seedlen, md, &mdlen, EVP_sha256(), NULL);
    char suffix[48];
    if (incarnation > 1)
        snprintf(suffix, sizeof(suffix), "_%02x%02x%02x%02x_%lld-%d", md[0], md[1], md[2], md[3],
                 (long long)generation, incarnation);
    else
        snprintf(suffix, sizeof(suffix), "_%02x%02x%02x%02x_%lld", md[0], md[1], md[2], md[3],
                 (long long)generation);
    /* at most 64 characters: a very large generation shortens the app part */
    size_t room = 64 - strlen(t) - 1 - strlen(suffix);
    if (room > sizeof(a) - 1) room = sizeof(a) - 1;
    snprintf(a, room + 1, "%s", as);
    snprintf(out, n, "%s_%s%s", t, a, suffix);
}

void kp_service_user_name(const char *team, const char *app, const char *uid, int64_t generation,
                          char *out, size_t n)
{
    user_name(team, app, uid, generation, 1, out, n);
}

/* ---- helpers ---- */

static char *read_text(const char *path)
{
    uint8_t *data;
    size_t len;
    if (!path || kp_fs_read_all(path, 1 << 20, &data, &len) < 0) return NULL;
    return (char *)data;
}

static char *b64(const void *p, size_t n)
{
    char *out = kp_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static void put_b64(json_t *data, const char *key, const void *p, size_t n)
{
    char *v = b64(p, n);
    json_object_set_new(data, key, json_string(v));
    free(v);
}

static json_t *condition(const char *type, const char *status, const char *reason, const char *msg)
{
    char now[32];
    kp_status_time(now);
    /* msg may be cut inside a character (it embeds spec values): kp_json_text copes */
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "type", type, "status", status, "reason", reason,
                     "message", kp_json_text(msg), "lastUpdateTime", now);
}

static void write_status(kp_control_t *c, json_t *obj, const char *state, const char *secret,
                         const char *user, json_t *cond)
{
    char now[32];
    kp_status_time(now);
    json_t *s = json_pack("{s:s, s:s, s:O, s:[o]}", "synchronizationState", state,
                          "synchronizationTime", now, "observedGeneration",
                          json_object_get(json_object_get(obj, "metadata"), "generation"),
                          "conditions", cond);
    if (secret) json_object_set_new(s, "synchronizationSecretName", json_string(secret));
    if (user) json_object_set_new(s, "serviceUser", json_string(user));
    kp_status_write(c, obj, s);
    json_decref(s);
}

static void fail(kp_control_t *c, json_t *obj, int pool_side, const char *reason, const char *msg,
                 kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    kp_warn("control", "aivenapplication %s/%s: %s failed: %s",
            json_string_value(json_object_get(md, "namespace")),
            json_string_value(json_object_get(md, "name")), reason, msg);
    /* the secret of the last rollout stays the app's while the spec still names it: the
     * janitor keeps it (it goes by spec), its credentials still work, and `kpool probe` and
     * `doctor` can tell "pool unreachable" from "no credentials" */
    json_t *spec = json_object_get(obj, "spec"), *prev = json_object_get(obj, "status");
    const char *want = kp_aivenapp_secret_name(spec);
    const char *had = json_string_value(json_object_get(prev, "synchronizationSecretName"));
    int keep = want && had && !strcmp(want, had);
    write_status(c, obj, "RolloutFailed", keep ? had : NULL,
                 keep ? json_string_value(json_object_get(prev, "serviceUser")) : NULL,
                 condition(pool_side ? "AivenFailure" : "LocalFailure", "True", reason, msg));
    res->retry = 1;
    res->failed = 1;
}

/* The principal the pool sees for a certificate with subject CN=<user>. */
static int principal_for(json_t *pool_spec, const char *user, char *out, size_t n)
{
    const char *rules = json_string_value(json_object_get(pool_spec, "principalMappingRules"));
    char err[256], dn[512], mapped[512];
    snprintf(dn, sizeof(dn), "CN=%s", user);
    kp_principal_rules_t *r = kp_principal_rules_parse(rules, err, sizeof(err));
    if (!r) return -1;
    int rc = kp_principal_rules_apply(r, dn, mapped, sizeof(mapped));
    kp_principal_rules_free(r);
    if (rc < 0) return -1;
    snprintf(out, n, "User:%s", mapped);
    return 0;
}

/* READ on consumer groups for a reader (SPEC 3: any group id, or the pool's prefix). */
static void group_acl(json_t *pool_spec, const char *principal, kp_pool_acl_t *a)
{
    const char *prefix = json_string_value(json_object_get(pool_spec, "consumerGroupPrefix"));
    *a = (kp_pool_acl_t){
        KP_RES_GROUP,  prefix && *prefix ? KP_PAT_PREFIXED : KP_PAT_LITERAL, KP_OP_READ,
        KP_PERM_ALLOW, (char *)(prefix && *prefix ? prefix : "*"),           (char *)principal,
        (char *)"*"};
}

/* Reconciles now every Topic of the pool whose ACL entries match team/app. */
static int propagate_acls(kp_control_t *c, const char *pool, const char *team, const char *app,
                          char *err, size_t errlen)
{
    json_t *topics;
    if (kp_store_list(c->store, "Topic", NULL, &topics, NULL) != KP_STORE_OK) {
        json_decref(topics);
        snprintf(err, errlen, "cannot read topics from the store");
        return -1;
    }
    int rc = 0;
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        json_t *spec = json_object_get(t, "spec");
        const char *tp = json_string_value(json_object_get(spec, "pool"));
        if (!tp || strcmp(tp, pool) != 0) continue;
        int match = 0;
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(spec, "acl"), k, a)
        {
            const char *at = json_string_value(json_object_get(a, "team"));
            const char *aa = json_string_value(json_object_get(a, "application"));
            if (at && aa && kp_glob_match(at, team) && kp_glob_match(aa, app)) match = 1;
        }
        if (!match) continue;
        kp_reconcile_result_t r = {0};
        kp_topic_reconcile(c, t, &r);
        if (r.retry) {
            /* the reason is in the status the reconcile just wrote, not in t's (the status
             * before it, e.g. "Topic synchronized ...") */
            json_t *now = NULL;
            json_t *md = json_object_get(t, "metadata");
            kp_store_get(c->store, "Topic", json_string_value(json_object_get(md, "namespace")),
                         json_string_value(json_object_get(md, "name")), &now);
            const char *m =
                json_string_value(json_object_get(json_object_get(now, "status"), "message"));
            snprintf(err, errlen, "could not grant topic ACLs: %s", m ? m : "pool error");
            json_decref(now);
            rc = -1;
        }
    }
    json_decref(topics);
    /* a Kafka Streams application: its prefixed ACLs too */
    json_t *stream = NULL;
    if (rc == 0 && kp_store_get(c->store, "Stream", team, app, &stream) == KP_STORE_OK) {
        kp_reconcile_result_t r = {0};
        kp_stream_reconcile(c, stream, &r);
        if (r.retry) {
            snprintf(err, errlen, "could not grant the stream's ACLs");
            rc = -1;
        }
    }
    json_decref(stream);
    return rc;
}

/* The current secret of (ns, name), opened; NULL when missing. */
static json_t *load_secret(kp_control_t *c, const char *ns, const char *name)
{
    json_t *s = NULL;
    if (kp_store_get(c->store, "Secret", ns, name, &s) != KP_STORE_OK) return NULL;
    char err[256];
    if (kp_secret_open(&c->master_key, s, err, sizeof(err)) < 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* Seconds of validity left in the secret's certificate, or -1 when unreadable. */
static int64_t cert_left_s(json_t *secret)
{
    const char *v =
        json_string_value(json_object_get(json_object_get(secret, "data"), "KAFKA_CERTIFICATE"));
    if (!v) return -1;
    size_t n = strlen(v);
    unsigned char *pem = kp_xmalloc(n + 4);
    int len = EVP_DecodeBlock(pem, (const unsigned char *)v, (int)n);
    if (len < 0) {
        free(pem);
        return -1;
    }
    pem[len] = 0;
    kp_pki_cert_info_t info;
    char err[256];
    int rc = kp_pki_cert_info((char *)pem, &info, err, sizeof(err));
    free(pem);
    if (rc < 0) return -1;
    return info.not_after_s - (int64_t)time(NULL);
}

/* Builds and stores the credentials secret. */
static int write_secret(kp_control_t *c, json_t *app_obj, json_t *pool_spec, const char *pool_name,
                        const char *secret_name, const char *user, const kp_pki_issued_t *cert,
                        const char *ca_pem, char *err, size_t errlen, const char **reason)
{
    json_t *md = json_object_get(app_obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    *reason = "BuildStores";
    char *password = kp_pki_random_password(32);
    char *registry_password = kp_pki_random_password(32);
    kp_buf_t ks, ts;
    kp_buf_init(&ks);
    kp_buf_init(&ts);
    int rc = -1;
    if (!password || !registry_password ||
        kp_pki_pkcs12_keystore(cert->cert_pem, cert->key_pem, cert->chain_pem, password, &ks, err,
                               errlen) < 0 ||
        kp_pki_pkcs12_truststore(ca_pem, password, &ts, err, errlen) < 0)
        goto out;
    *reason = "CreateSecret";
    char verifier[KP_PKI_PASSWORD_HASH_LEN];
    if (kp_pki_password_hash(registry_password, verifier) < 0 ||
        kp_store_user_set_registry_hash(c->store, user, verifier) < 0) {
        snprintf(err, errlen, "cannot record the schema registry credentials of %s", user);
        goto out;
    }
    char now[32];
    kp_status_time(now);
    const char *bootstrap = json_string_value(json_object_get(pool_spec, "bootstrapServers"));
    const char *registry = json_string_value(json_object_get(pool_spec, "schemaRegistry"));
    json_t *data = json_object();
#define PUT(k, v) put_b64(data, k, v, strlen(v))
    PUT("KAFKA_BROKERS", bootstrap ? bootstrap : "");
    PUT("KAFKA_CERTIFICATE", cert->cert_pem);
    PUT("KAFKA_PRIVATE_KEY", cert->key_pem);
    PUT("KAFKA_CA", ca_pem);
    PUT("KAFKA_CREDSTORE_PASSWORD", password);
    PUT("KAFKA_SCHEMA_REGISTRY", registry ? registry : "");
    PUT("KAFKA_SCHEMA_REGISTRY_USER", user);
    PUT("KAFKA_SCHEMA_REGISTRY_PASSWORD", registry_password);
    PUT("KAFKA_SECRET_UPDATED", now);
    const char *streams =
        json_string_value(json_object_get(json_object_get(md, "annotations"), ANN_STREAMS));
    if (streams && !strcmp(streams, "true")) {
        char id[512];
        snprintf(id, sizeof(id), "%s.%s_stream_", ns, name);
        PUT("KAFKA_STREAMS_APPLICATION_ID", id);
    }
#undef PUT
    put_b64(data, "client.keystore.p12", ks.data, ks.len);
    put_b64(data, "client.truststore.jks", ts.data, ts.len);
    json_t *secret = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, s:s, s:o}", "apiVersion",
        "v1", "kind", "Secret", "metadata", "name", secret_name, "namespace", ns, "labels", "app",
        name, "team", ns, "type", SECRET_TYPE, "annotations", ANN_USER, user, ANN_POOL, pool_name,
        ANN_OWNER, name, "type", SECRET_TYPE, "data", data);
    if (kp_secret_seal(&c->master_key, secret, err, errlen) == 0) {
        json_t *out = NULL;
        int prc = kp_store_put(c->store, secret, -1, 0, &out);
        json_decref(out);
        if (prc == KP_STORE_CREATED || prc == KP_STORE_UPDATED || prc == KP_STORE_UNCHANGED)
            rc = 0;
        else
            snprintf(err, errlen, "cannot store secret %s", secret_name);
    }
    json_decref(secret);
out:
    kp_pki_secret_free(password);
    kp_pki_secret_free(registry_password);
    kp_pki_buf_wipe(&ks);
    kp_pki_buf_wipe(&ts);
    return rc;
}

/* ---- deletion ---- */

/* Revokes every service user of (ns, app). 0, or -1 when one could not be revoked yet. */
static int revoke_users(kp_control_t *c, const char *ns, const char *app)
{
    kp_service_user_t *u;
    int n, rc = 0;
    if (kp_store_users_list(c->store, NULL, &u, &n) < 0) return -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(u[i].team, ns) || strcmp(u[i].app, app)) continue;
        if (kp_revoke_user(c, &u[i]) < 0) rc = -1;
    }
    kp_store_users_free(u, n);
    return rc;
}

int kp_revoke_user(kp_control_t *c, const kp_service_user_t *u)
{
    char err[512];
    kp_pool_t *pool = kp_control_pool(c, u->pool, err, sizeof(err));
    if (!pool && !strstr(err, "does not exist")) {
        kp_warn("control", "revoking %s: %s; will retry", u->name, err);
        return -1;
    }
    /* every ACL naming the principal, whatever the resource: the user loses access now, also
     * on topics whose own reconcile cannot run (an invalid spec changes nothing) */
    kp_pool_acl_t all = {KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, u->principal, NULL};
    if (pool && kp_pool_delete_acls(pool->client, &all, 1, err, sizeof(err)) < 0) {
        kp_warn("control", "revoking %s: %s; will retry", u->name, err);
        return -1;
    }
    kp_store_user_revoke(c->store, u->name, kp_wall_ms());
    kp_info("control", "revoked service user %s: its ACLs are removed", u->name);
    return 0;
}

/* Removes the secrets and users of an AivenApplication being deleted, then the object;
 * -1 when a user could not be revoked (the caller retries). */
static int delete_app(kp_control_t *c, json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    int protected = json_is_true(json_object_get(json_object_get(obj, "spec"), "protected"));
    json_t *secrets;
    if (kp_store_list(c->store, "Secret", ns, &secrets, NULL) == KP_STORE_OK) {
        size_t i;
        json_t *s;
        json_array_foreach(secrets, i, s)
        {
            json_t *smd = json_object_get(s, "metadata");
            const char *owner =
                json_string_value(json_object_get(json_object_get(smd, "annotations"), ANN_OWNER));
            if (!owner || strcmp(owner, name) != 0) continue;
            if (protected && !json_object_get(md, "deletionTimestamp")) continue;
            kp_store_remove(c->store, "Secret", ns,
                            json_string_value(json_object_get(smd, "name")));
        }
    }
    json_decref(secrets);
    if (revoke_users(c, ns, name) < 0) return -1; /* the pool is unreachable: retried */
    kp_store_remove(c->store, "AivenApplication", ns, name);
    kp_info("control", "aivenapplication %s/%s removed with its credentials", ns, name);
    return 0;
}

/* ---- reconcile ---- */

/* The active user an earlier pass recorded for this AivenApplication generation (same team,
 * application, pool and secret), copied into user; 0 when there is none. It keeps its name
 * whatever rule made it: users issued under an older naming rule (<team>_<app>_<crc32>_<gen>)
 * go on working, with their certificates and ACLs, until a new generation replaces them. */
static int user_recorded(kp_control_t *c, const char *ns, const char *app, const char *pool,
                         const char *secret, int64_t gen, char *user, size_t user_len)
{
    kp_service_user_t *u;
    int n, found = 0;
    if (kp_store_users_list(c->store, NULL, &u, &n) < 0) return 0;
    for (int i = 0; i < n && !found; i++) {
        found = !strcmp(u[i].team, ns) && !strcmp(u[i].app, app) && !strcmp(u[i].pool, pool) &&
                u[i].secret && !strcmp(u[i].secret, secret) && u[i].generation == gen;
        if (found) snprintf(user, user_len, "%s", u[i].name);
    }
    kp_store_users_free(u, n);
    return found;
}

/* Whether an active user other than `user` has `principal` (principal mapping rules may map
 * two CNs to one principal: ACLs and revocations of one would then hit the other). */
static int principal_taken(kp_control_t *c, const char *user, const char *principal)
{
    kp_service_user_t *u;
    int n, taken = 0;
    if (kp_store_users_list(c->store, NULL, &u, &n) < 0) return 1;
    for (int i = 0; i < n && !taken; i++)
        taken = strcmp(u[i].name, user) != 0 && !strcmp(u[i].principal, principal);
    kp_store_users_free(u, n);
    return taken;
}

/* The service user of this AivenApplication generation, recorded in the store: the user an
 * earlier pass created for it, or a new one. A name is never handed out twice: one already
 * in the store (revoked, or another team's, application's or secret's) is burnt. A revoked
 * name in particular: a deleted AivenApplication created anew starts again at generation 1,
 * and reusing a name would make the revoked certificates of the old one valid again (they
 * carry the same CN). Such a generation gets the next free "-<n>" suffix instead. Fills
 * user and principal; NULL, or a message saying what failed. */
static const char *user_create(kp_control_t *c, json_t *pspec, const char *ns, const char *app,
                               const char *uid, const char *pool_name, const char *secret_name,
                               int64_t gen, char *user, size_t user_len, char *principal,
                               size_t principal_len)
{
    if (user_recorded(c, ns, app, pool_name, secret_name, gen, user, user_len)) {
        if (principal_for(pspec, user, principal, principal_len) < 0)
            return "the pool's principalMappingRules do not map CN=<user>";
        return NULL;
    }
    for (int incarnation = 1; incarnation <= USER_INCARNATIONS_MAX; incarnation++) {
        user_name(ns, app, uid, gen, incarnation, user, user_len);
        if (principal_for(pspec, user, principal, principal_len) < 0)
            return "the pool's principalMappingRules do not map CN=<user>";
        if (principal_taken(c, user, principal)) continue;
        kp_service_user_t su = {user,      (char *)ns,          (char *)app, (char *)pool_name,
                                principal, (char *)secret_name, gen,         kp_wall_ms(),
                                0};
        int rc = kp_store_user_put(c->store, &su);
        if (rc < 0) return "cannot record the service user";
        if (rc == 1) return NULL;
        /* the name exists, and it is not this generation's (user_recorded): burnt */
    }
    return "no unused service user name left for this generation";
}

void kp_aivenapp_reconcile(kp_control_t *c, json_t *obj, kp_reconcile_result_t *res)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *spec = json_object_get(obj, "spec");
    if (json_object_get(md, "deletionTimestamp")) {
        if (delete_app(c, obj) < 0) res->retry = 1;
        return;
    }
    const char *expires = json_string_value(json_object_get(spec, "expiresAt"));
    if (expires) {
        struct tm tm = {0};
        const char *end = strptime(expires, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end) {
            fail(c, obj, 0, "ValidateSpec", "spec.expiresAt: not an RFC 3339 time", res);
            res->retry = 0;
            return;
        }
        if (timegm(&tm) <= time(NULL)) {
            kp_info("control", "aivenapplication %s/%s expired at %s", ns, name, expires);
            json_object_set_new(md, "deletionTimestamp", json_string(expires));
            if (delete_app(c, obj) < 0) res->retry = 1;
            return;
        }
        res->retry = 1; /* come back to expire it */
        res->retry_ms = (int64_t)(timegm(&tm) - time(NULL)) * 1000 + 1000;
        if (res->retry_ms > 3600000) res->retry_ms = 3600000;
    }
    json_t *kafka = json_object_get(spec, "kafka");
    const char *pool_name = json_string_value(json_object_get(kafka, "pool"));
    const char *secret_name = kp_aivenapp_secret_name(spec);
    char err[1024] = "";
    if (!pool_name || !secret_name) {
        fail(c, obj, 0, "ValidateSpec",
             !pool_name ? "spec.kafka.pool: required" : "spec.kafka.secretName: required", res);
        res->retry = 0;
        return;
    }
    kp_pool_t *pool = kp_control_pool(c, pool_name, err, sizeof(err));
    if (!pool) {
        fail(c, obj, 0, "ValidatePool", err, res);
        return;
    }
    json_t *pobj = NULL;
    kp_store_get(c->store, "Pool", "", pool_name, &pobj);
    json_t *pspec = json_object_get(pobj, "spec");
    json_int_t gen = json_integer_value(json_object_get(md, "generation"));
    /* CreateServiceUser: the store first (ACLs follow from it), then the group ACL */
    char user[128], principal[600];
    const char *uid = json_string_value(json_object_get(md, "uid"));
    const char *why = user_create(c, pspec, ns, name, uid, pool_name, secret_name, gen, user,
                                  sizeof(user), principal, sizeof(principal));
    if (why) {
        fail(c, obj, 0, "CreateServiceUser", why, res);
        json_decref(pobj);
        return;
    }
    kp_pool_acl_t g[3];
    group_acl(pspec, principal, &g[0]);
    /* SPEC 12: transactional ids prefixed with the user's own <namespace>.<application> */
    char txn_prefix[300];
    snprintf(txn_prefix, sizeof(txn_prefix), "%s.%s", ns, name);
    for (int k = 1; k < 3; k++)
        g[k] = (kp_pool_acl_t){KP_RES_TRANSACTIONAL_ID,
                               KP_PAT_PREFIXED,
                               k == 1 ? KP_OP_WRITE : KP_OP_DESCRIBE,
                               KP_PERM_ALLOW,
                               txn_prefix,
                               principal,
                               (char *)"*"};
    if (kp_pool_create_acls(pool->client, g, 3, err, sizeof(err)) < 0) {
        fail(c, obj, 1, "CreateServiceUser", err, res);
        json_decref(pobj);
        return;
    }
    if (propagate_acls(c, pool_name, ns, name, err, sizeof(err)) < 0) {
        fail(c, obj, 1, "PropagateAcls", err, res);
        json_decref(pobj);
        return;
    }
    /* reuse the current credentials while they are this user's and not due for renewal */
    json_t *cur = load_secret(c, ns, secret_name);
    const char *cur_user =
        cur ? json_string_value(json_object_get(
                  json_object_get(json_object_get(cur, "metadata"), "annotations"), ANN_USER))
            : NULL;
    int64_t left = cur ? cert_left_s(cur) : -1;
    int fresh = cur_user && !strcmp(cur_user, user) && left > c->cfg.cert_renew_before_s;
    json_decref(cur);
    if (!fresh) {
        int64_t issue_start_us = kp_mono_us();
        const char *ca_path =
            json_string_value(json_object_get(json_object_get(pspec, "tls"), "caLocation"));
        const char *cakey_path =
            json_string_value(json_object_get(json_object_get(pspec, "tls"), "caKeyLocation"));
        char *ca_pem = read_text(ca_path), *cakey_pem = read_text(cakey_path);
        kp_pki_ca_t *ca =
            ca_pem && cakey_pem ? kp_pki_ca_load(ca_pem, cakey_pem, err, sizeof(err)) : NULL;
        kp_pki_secret_free(cakey_pem);
        if (!ca) {
            if (!err[0])
                snprintf(err, sizeof(err),
                         "pool %s has no usable CA (spec.tls.caLocation and caKeyLocation)",
                         pool_name);
            free(ca_pem);
            kp_control_metrics_credential(0, 0);
            fail(c, obj, 0, "IssueCertificate", err, res);
            json_decref(pobj);
            return;
        }
        char subject[160];
        snprintf(subject, sizeof(subject), "CN=%s", user);
        kp_pki_issue_req_t req = {.subject = subject,
                                  .validity_days = c->cfg.cert_validity_days,
                                  .key_type = c->cfg.cert_key_type,
                                  .usage = KP_PKI_USAGE_CLIENT};
        kp_pki_issued_t cert;
        int irc = kp_pki_issue(ca, &req, &cert, err, sizeof(err));
        kp_pki_ca_free(ca);
        if (irc < 0) {
            free(ca_pem);
            kp_control_metrics_credential(0, 0);
            fail(c, obj, 0, "IssueCertificate", err, res);
            json_decref(pobj);
            return;
        }
        const char *reason = "CreateSecret";
        int wrc = write_secret(c, obj, pspec, pool_name, secret_name, user, &cert, ca_pem, err,
                               sizeof(err), &reason);
        kp_pki_issued_free(&cert);
        free(ca_pem);
        if (wrc < 0) {
            kp_control_metrics_credential(0, 0);
            fail(c, obj, 0, reason, err, res);
            json_decref(pobj);
            return;
        }
        kp_control_metrics_credential(1, kp_mono_us() - issue_start_us);
        kp_info("control", "aivenapplication %s/%s: credentials for %s written to secret %s", ns,
                name, user, secret_name);
        kp_event_record(obj, "Normal", "CredentialsIssued",
                        "a client certificate for service user %s (valid %d days) is in secret %s",
                        user, c->cfg.cert_validity_days, secret_name);
    }
    json_decref(pobj);
    char msg[512];
    snprintf(msg, sizeof(msg), "credentials for service user %s are in secret %s", user,
             secret_name);
    write_status(c, obj, "RolloutComplete", secret_name, user,
                 condition("Succeeded", "True", "Synchronized", msg));
}

/* ---- janitor ---- */

static int is_current(json_t *apps, const char *ns, const char *secret, int64_t now_s,
                      int *protected_owner)
{
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a)
    {
        json_t *md = json_object_get(a, "metadata"), *spec = json_object_get(a, "spec");
        if (strcmp(json_string_value(json_object_get(md, "namespace")), ns) != 0) continue;
        const char *cur = kp_aivenapp_secret_name(spec);
        if (cur && !strcmp(cur, secret)) return 1;
        (void)now_s;
        (void)protected_owner;
    }
    return 0;
}

static int owner_protected(json_t *apps, const char *ns, const char *owner, int64_t now_s)
{
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a)
    {
        json_t *md = json_object_get(a, "metadata"), *spec = json_object_get(a, "spec");
        if (strcmp(json_string_value(json_object_get(md, "namespace")), ns) ||
            strcmp(json_string_value(json_object_get(md, "name")), owner))
            continue;
        if (!json_is_true(json_object_get(spec, "protected"))) return 0;
        const char *exp = json_string_value(json_object_get(spec, "expiresAt"));
        if (!exp) return 1;
        struct tm tm = {0};
        return strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) && timegm(&tm) > now_s;
    }
    return 0;
}

/* A change of an AivenApplication that keeps its secretName makes a new generation whose
 * user's credentials overwrite that same secret: the replaced user is then in no secret,
 * and no secret's cleanup would ever revoke it. It is revoked once the user that replaced it
 * (same team, app and secret) is older than the grace period, the time running pods get to
 * pick up the rewritten secret. A user whose secret is missing is left alone: the
 * AivenApplication's next pass writes its secret again. */
static void revoke_replaced(kp_control_t *c, json_t *secrets)
{
    kp_service_user_t *u;
    int n;
    if (kp_store_users_list(c->store, NULL, &u, &n) < 0) return;
    kp_hmap_t holders; /* "ns/secret" -> the service user it holds (borrowed from secrets) */
    kp_hmap_init(&holders);
    char key[512];
    size_t i;
    json_t *s;
    json_array_foreach(secrets, i, s)
    {
        json_t *md = json_object_get(s, "metadata");
        const char *user =
            json_string_value(json_object_get(json_object_get(md, "annotations"), ANN_USER));
        int len =
            snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(md, "namespace")),
                     json_string_value(json_object_get(md, "name")));
        if (user) kp_hmap_put(&holders, key, (size_t)len, (void *)user);
    }
    int64_t now_ms = kp_wall_ms();
    for (int r = 0; r < n; r++) {
        if (!u[r].secret) continue;
        int len = snprintf(key, sizeof(key), "%s/%s", u[r].team, u[r].secret);
        const char *holder = kp_hmap_get(&holders, key, (size_t)len);
        if (!holder || !strcmp(holder, u[r].name)) continue;
        for (int k = 0; k < n; k++) {
            if (strcmp(u[k].name, holder) || strcmp(u[k].team, u[r].team) ||
                strcmp(u[k].app, u[r].app) || now_ms - u[k].created_ms < c->cfg.janitor_grace_ms)
                continue;
            kp_info("control", "janitor: secret %s/%s holds %s now; revoking the replaced %s",
                    u[r].team, u[r].secret, holder, u[r].name);
            kp_revoke_user(c, &u[r]);
            break;
        }
    }
    kp_hmap_free(&holders);
    kp_store_users_free(u, n);
}

/* Whether u is the user named `user` whose credentials the control plane wrote to secret
 * ns/name. The service user's row (team, secret) is written by the control plane only; a
 * secret's annotations are what a client sent, so they alone never decide whose user is
 * revoked: a secret naming another team's user, or a user issued into another secret, is
 * not acted on. */
static int issued_in(const kp_service_user_t *u, const char *user, const char *ns, const char *name)
{
    return !strcmp(u->name, user) && !strcmp(u->team, ns) && u->secret && !strcmp(u->secret, name);
}

void kp_janitor_pass(kp_control_t *c)
{
    json_t *apps, *secrets;
    if (kp_store_list(c->store, "AivenApplication", NULL, &apps, NULL) != KP_STORE_OK) {
        json_decref(apps);
        return;
    }
    if (kp_store_list(c->store, "Secret", NULL, &secrets, NULL) != KP_STORE_OK) {
        json_decref(apps);
        json_decref(secrets);
        return;
    }
    int64_t now_s = (int64_t)time(NULL);
    size_t i;
    json_t *s;
    json_array_foreach(secrets, i, s)
    {
        json_t *md = json_object_get(s, "metadata");
        json_t *ann = json_object_get(md, "annotations");
        const char *type = json_string_value(json_object_get(s, "type"));
        if (!type || strcmp(type, SECRET_TYPE) != 0) continue;
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *owner = json_string_value(json_object_get(ann, ANN_OWNER));
        if (is_current(apps, ns, name, now_s, NULL)) continue;
        if (owner && owner_protected(apps, ns, owner, now_s)) continue;
        const char *since = json_string_value(json_object_get(ann, ANN_SUPERSEDED));
        if (!since) {
            /* first seen unused: start the grace period */
            char ts[32];
            snprintf(ts, sizeof(ts), "%lld", (long long)now_s);
            json_t *copy = json_deep_copy(s);
            json_object_set_new(json_object_get(json_object_get(copy, "metadata"), "annotations"),
                                ANN_SUPERSEDED, json_string(ts));
            json_object_del(json_object_get(copy, "metadata"), "resourceVersion");
            json_t *out = NULL;
            kp_store_put(c->store, copy, -1, 0, &out);
            json_decref(out);
            json_decref(copy);
            continue;
        }
        if ((now_s - atoll(since)) * 1000 < c->cfg.janitor_grace_ms) continue;
        const char *user = json_string_value(json_object_get(ann, ANN_USER));
        int revoked = 0, issued = 0;
        if (user) {
            kp_service_user_t *u;
            int n;
            if (kp_store_users_list(c->store, NULL, &u, &n) == 0) {
                for (int k = 0; k < n; k++) {
                    if (!issued_in(&u[k], user, ns, name)) continue;
                    issued = 1;
                    kp_info("control",
                            "janitor: secret %s/%s is no longer used; deleting it and revoking %s",
                            ns, name, user);
                    if (kp_revoke_user(c, &u[k]) < 0) revoked = -1;
                }
                kp_store_users_free(u, n);
            }
        }
        if (!issued)
            kp_info("control",
                    "janitor: secret %s/%s is no longer used; deleting it (it holds no active "
                    "service user the control plane issued into it: nobody is revoked)",
                    ns, name);
        /* a user that could not be revoked keeps its secret: the next pass tries again */
        if (revoked == 0) kp_store_remove(c->store, "Secret", ns, name);
    }
    revoke_replaced(c, secrets);
    json_decref(secrets);
    json_decref(apps);
}
