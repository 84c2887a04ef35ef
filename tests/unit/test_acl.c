/*
 * test_acl.c — auth/acl: Kafka's authorizer semantics (AclAuthorizer / StandardAuthorizer):
 * the authorizer disabled, super users, allow.everyone.if.no.acl.found, DENY wins, implied
 * operations (READ/WRITE/DELETE/ALTER -> DESCRIBE, ALTER_CONFIGS -> DESCRIBE_CONFIGS, never
 * the reverse), ALL, "User:*" and host matching, LITERAL "*", PREFIXED, CLUSTER;
 * kp_authorize_any as Kafka's authorizeByResourceType (InitProducerId); AclBindingFilter
 * matching (ANY / MATCH / LITERAL / PREFIXED and the entry fields); validation; the journal
 * (reopen, a torn or corrupt tail cut and the rest kept, compaction, a failed write changes
 * nothing); and 100k ACLs with lookups still correct.
 */
#include "unit.h"

#include "auth/acl.h"
#include "auth/principal.h"
#include "core/logging.h"
#include "core/props.h"

#include <fcntl.h>
#include <pthread.h>

#define ALICE "User:CN=alice,OU=team,O=kpool"
#define BOB   "User:CN=bob,OU=team,O=kpool"
#define HOST  "127.0.0.1"

static kp_authorizer_t *open_with(const char *props_text, const char *meta_dir)
{
    kp_props_t *p = kp_props_new();
    char err[256] = "";
    if (props_text)
        assert_int_equal(kp_props_parse(p, props_text, strlen(props_text), err, sizeof(err)), 0);
    kp_authorizer_t *a = kp_authorizer_open(p, 0, meta_dir, err, sizeof(err));
    if (!a) fail_msg("kp_authorizer_open: %s", err);
    kp_props_free(p);
    return a;
}

static kp_authorizer_t *open_enabled(const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text), "authorizer.enabled=true\n%s", extra ? extra : "");
    return open_with(text, NULL);
}

static kp_acl_t mk(int type, int pattern, const char *name, const char *principal, const char *host,
                   int op, int perm)
{
    kp_acl_t a = {(int8_t)type, (int8_t)pattern,   (int8_t)op,  (int8_t)perm,
                  (char *)name, (char *)principal, (char *)host};
    return a;
}

static void add(kp_authorizer_t *a, int type, int pattern, const char *name, const char *principal,
                const char *host, int op, int perm)
{
    kp_acl_t acl = mk(type, pattern, name, principal, host, op, perm);
    char err[256];
    if (kp_acl_validate(&acl, err, sizeof(err)) < 0) fail_msg("invalid test ACL: %s", err);
    assert_int_equal(kp_acl_add(a, &acl, 1), 0);
}

#define ALLOW(a, type, pattern, name, principal, op)                                               \
    add(a, type, pattern, name, principal, "*", op, KP_PERM_ALLOW)
#define DENY(a, type, pattern, name, principal, op)                                                \
    add(a, type, pattern, name, principal, "*", op, KP_PERM_DENY)

static int can(kp_authorizer_t *a, const char *principal, int op, int type, const char *name)
{
    return kp_authorize(a, principal, HOST, op, type, name, name ? strlen(name) : 0);
}

static int topic(kp_authorizer_t *a, const char *principal, int op, const char *name)
{
    return can(a, principal, op, KP_RES_TOPIC, name);
}

static kp_acl_filter_t any_filter(void)
{
    kp_acl_filter_t f = {KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL};
    return f;
}

static size_t remove_all(kp_authorizer_t *a)
{
    kp_acl_filter_t f = any_filter();
    return (size_t)kp_acl_remove(a, &f, NULL, NULL);
}

/* ---- decisions ---- */

static void test_disabled_allows_everything(void **state)
{
    assert_int_equal(kp_authorize(NULL, ALICE, HOST, KP_OP_WRITE, KP_RES_TOPIC, "t", 1), 1);
    assert_int_equal(kp_authorizer_enabled(NULL), 0);
    kp_authorizer_t *a = open_with("super.users=User:root\n", NULL);
    assert_int_equal(kp_authorizer_enabled(a), 0);
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "*", "User:*", KP_OP_ALL);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "t"), 1);
    assert_int_equal(kp_authorize_any(a, ALICE, HOST, KP_OP_WRITE, KP_RES_TOPIC), 1);
    kp_authorizer_free(a);
    /* enabled_default: `kpool up` turns it on unless the property says otherwise */
    kp_props_t *p = kp_props_new();
    char err[128];
    a = kp_authorizer_open(p, 1, NULL, err, sizeof(err));
    assert_int_equal(kp_authorizer_enabled(a), 1);
    kp_authorizer_free(a);
    kp_props_set(p, "authorizer.enabled", "false");
    a = kp_authorizer_open(p, 1, NULL, err, sizeof(err));
    assert_int_equal(kp_authorizer_enabled(a), 0);
    kp_authorizer_free(a);
    kp_props_set(p, "authorizer.enabled", "maybe");
    assert_null(kp_authorizer_open(p, 0, NULL, err, sizeof(err)));
    kp_props_free(p);
}

static void test_no_acl_denies_unless_allow_everyone(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE, "t"), 0);
    assert_int_equal(can(a, ALICE, KP_OP_DESCRIBE, KP_RES_CLUSTER, NULL), 0);
    kp_authorizer_free(a);

    a = open_enabled("allow.everyone.if.no.acl.found=true\n");
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "t"), 1);
    /* an ACL on the resource, even for someone else, ends "no ACL found" for it */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", BOB, KP_OP_READ);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "t"), 0);
    assert_int_equal(topic(a, BOB, KP_OP_READ, "t"), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "t"), 0);
    /* other resources are still open */
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "u"), 1);
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_GROUP, "t"), 1);
    /* a prefixed ACL and a literal "*" apply to the names they cover */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "pre", BOB, KP_OP_READ);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "prefix"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "pr"), 1);
    ALLOW(a, KP_RES_GROUP, KP_PAT_LITERAL, "*", BOB, KP_OP_READ);
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_GROUP, "any"), 0);
    /* a DENY for someone else also counts as "an ACL exists" */
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "v", BOB, KP_OP_READ);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "v"), 0);
    kp_authorizer_free(a);
}

static void test_super_users(void **state)
{
    kp_authorizer_t *a = open_enabled("super.users= User:CN=admin,OU=ops,O=kpool ; User:root;;\n");
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "*", "User:*", KP_OP_ALL);
    DENY(a, KP_RES_CLUSTER, KP_PAT_LITERAL, KP_CLUSTER_RESOURCE, "User:root", KP_OP_ALL);
    for (int op = KP_OP_ALL; op <= KP_OP_DESCRIBE_TOKENS; op++) {
        assert_int_equal(topic(a, "User:CN=admin,OU=ops,O=kpool", op, "t"), 1);
        assert_int_equal(can(a, "User:root", op, KP_RES_CLUSTER, NULL), 1);
        assert_int_equal(can(a, "User:root", op, KP_RES_GROUP, "g"), 1);
    }
    assert_int_equal(kp_authorize_any(a, "User:root", HOST, KP_OP_WRITE, KP_RES_TOPIC), 1);
    /* exact principals only: no prefixes, no other type, no part of a DN */
    assert_int_equal(topic(a, "User:roo", KP_OP_READ, "t"), 0);
    assert_int_equal(topic(a, "User:rooty", KP_OP_READ, "t"), 0);
    assert_int_equal(topic(a, "Group:root", KP_OP_READ, "t"), 0);
    assert_int_equal(topic(a, "User:CN=admin", KP_OP_READ, "t"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 0);
    kp_authorizer_free(a);
}

static void test_deny_wins(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_ALL);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 1);
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_READ);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 0);
    /* a DENY of READ denies READ only: not DESCRIBE, not WRITE */
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE, "t"), 1);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "t"), 1);
    /* DENY of ALL denies every operation, implied ones included */
    DENY(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "t", "User:*", KP_OP_ALL);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "t"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE, "t"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "u"), 0); /* no ACL there at all */
    kp_authorizer_free(a);
}

static void test_deny_through_every_pattern(void **state)
{
    struct {
        int pattern;
        const char *name, *principal;
        int op;
    } denies[] = {
        {KP_PAT_LITERAL, "orders", ALICE, KP_OP_WRITE},
        {KP_PAT_LITERAL, "*", ALICE, KP_OP_WRITE},
        {KP_PAT_PREFIXED, "ord", ALICE, KP_OP_WRITE},
        {KP_PAT_PREFIXED, "orders", ALICE, KP_OP_WRITE}, /* a prefix may be the whole name */
        {KP_PAT_LITERAL, "orders", "User:*", KP_OP_WRITE},
        {KP_PAT_PREFIXED, "o", "User:*", KP_OP_ALL},
    };
    for (size_t i = 0; i < sizeof(denies) / sizeof(denies[0]); i++) {
        kp_authorizer_t *a = open_enabled(NULL);
        ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, KP_OP_WRITE);
        ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "*", ALICE, KP_OP_WRITE);
        assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "orders"), 1);
        DENY(a, KP_RES_TOPIC, denies[i].pattern, denies[i].name, denies[i].principal, denies[i].op);
        assert_int_equal(topic(a, ALICE, KP_OP_WRITE, "orders"), 0);
        assert_int_equal(topic(a, BOB, KP_OP_WRITE, "orders"), 0);
        kp_authorizer_free(a);
    }
}

/* Kafka: ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE; ALTER_CONFIGS implies
 * DESCRIBE_CONFIGS; ALL is every operation. Nothing else implies anything. */
static int implied(int granted, int wanted)
{
    if (granted == KP_OP_ALL || granted == wanted) return 1;
    if (wanted == KP_OP_DESCRIBE)
        return granted == KP_OP_READ || granted == KP_OP_WRITE || granted == KP_OP_DELETE ||
               granted == KP_OP_ALTER;
    return wanted == KP_OP_DESCRIBE_CONFIGS && granted == KP_OP_ALTER_CONFIGS;
}

static void test_implied_operations(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    for (int g = KP_OP_ALL; g <= KP_OP_DESCRIBE_TOKENS; g++) {
        ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, g);
        for (int w = KP_OP_READ; w <= KP_OP_DESCRIBE_TOKENS; w++) {
            if (topic(a, ALICE, w, "t") != implied(g, w))
                fail_msg("granted %d, wanted %d: %d", g, w, topic(a, ALICE, w, "t"));
        }
        assert_int_equal(remove_all(a), 1);
    }
    /* DENY is never implied: DENY of DESCRIBE does not deny READ, DENY of READ does not
     * deny DESCRIBE */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_READ);
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_DESCRIBE);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 1);
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE, "t"), 0);
    remove_all(a);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_READ);
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_ALTER_CONFIGS);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_ALTER_CONFIGS);
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE, "t"), 1);
    assert_int_equal(topic(a, ALICE, KP_OP_ALTER_CONFIGS, "t"), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_DESCRIBE_CONFIGS, "t"), 1);
    kp_authorizer_free(a);
}

static void test_principal_and_host_matching(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    add(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", "User:*", "*", KP_OP_READ, KP_PERM_ALLOW);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 1);
    assert_int_equal(topic(a, KP_PRINCIPAL_ANONYMOUS, KP_OP_READ, "t"), 1);
    add(a, KP_RES_TOPIC, KP_PAT_LITERAL, "u", ALICE, "10.0.0.1", KP_OP_READ, KP_PERM_ALLOW);
    assert_int_equal(kp_authorize(a, ALICE, "10.0.0.1", KP_OP_READ, KP_RES_TOPIC, "u", 1), 1);
    assert_int_equal(kp_authorize(a, ALICE, "10.0.0.10", KP_OP_READ, KP_RES_TOPIC, "u", 1), 0);
    assert_int_equal(kp_authorize(a, ALICE, "10.0.0.", KP_OP_READ, KP_RES_TOPIC, "u", 1), 0);
    assert_int_equal(kp_authorize(a, BOB, "10.0.0.1", KP_OP_READ, KP_RES_TOPIC, "u", 1), 0);
    /* principals compare exactly, type included */
    assert_int_equal(topic(a, "User:CN=alice,OU=team,O=kpool2", KP_OP_READ, "u"), 0);
    assert_int_equal(kp_authorize(a, "Group:CN=alice,OU=team,O=kpool", "10.0.0.1", KP_OP_READ,
                                  KP_RES_TOPIC, "u", 1),
                     0);
    /* "User:*" is the only wildcard form */
    add(a, KP_RES_TOPIC, KP_PAT_LITERAL, "w", "User:CN=*", "*", KP_OP_READ, KP_PERM_ALLOW);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "w"), 0);
    /* a DENY for one host leaves other hosts alone */
    add(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, "10.0.0.9", KP_OP_READ, KP_PERM_DENY);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 1);
    assert_int_equal(kp_authorize(a, ALICE, "10.0.0.9", KP_OP_READ, KP_RES_TOPIC, "t", 1), 0);
    kp_authorizer_free(a);
}

static void test_literal_wildcard_prefixed_and_types(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "*", ALICE, KP_OP_READ);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "anything"), 1);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "*"), 1);
    /* the wildcard is for its resource type only */
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_GROUP, "anything"), 0);
    /* LITERAL "team" is the name team, not a prefix; "*" inside a name is no wildcard */
    ALLOW(a, KP_RES_GROUP, KP_PAT_LITERAL, "team", BOB, KP_OP_READ);
    ALLOW(a, KP_RES_GROUP, KP_PAT_LITERAL, "a*", BOB, KP_OP_READ);
    assert_int_equal(can(a, BOB, KP_OP_READ, KP_RES_GROUP, "team"), 1);
    assert_int_equal(can(a, BOB, KP_OP_READ, KP_RES_GROUP, "team.x"), 0);
    assert_int_equal(can(a, BOB, KP_OP_READ, KP_RES_GROUP, "ab"), 0);
    assert_int_equal(can(a, BOB, KP_OP_READ, KP_RES_GROUP, "a*"), 1);
    /* PREFIXED "team." */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "team.", BOB, KP_OP_WRITE);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team."), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team.x"), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team.x.y"), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team"), 0);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "teamx"), 0);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "xteam.x"), 0);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "TEAM.x"), 0);
    /* names are lengths, not C strings: "team.x" given as the first 4 bytes is "team" */
    assert_int_equal(kp_authorize(a, BOB, HOST, KP_OP_WRITE, KP_RES_TOPIC, "team.x", 4), 0);
    assert_int_equal(kp_authorize(a, BOB, HOST, KP_OP_WRITE, KP_RES_TOPIC, "team.xyz", 5), 1);
    /* several prefix lengths at once, and removing one length keeps the others */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "t", "User:t1", KP_OP_READ);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "te", "User:t2", KP_OP_READ);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "tea", "User:t3", KP_OP_READ);
    for (int i = 1; i <= 3; i++) {
        char p[32];
        snprintf(p, sizeof(p), "User:t%d", i);
        assert_int_equal(topic(a, p, KP_OP_READ, "team.z"), 1);
        assert_int_equal(topic(a, p, KP_OP_READ, "te"), i <= 2);
    }
    kp_acl_filter_t f = any_filter();
    f.pattern_type = KP_PAT_PREFIXED;
    f.resource_name = "te";
    assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), 1);
    assert_int_equal(topic(a, "User:t1", KP_OP_READ, "team.z"), 1);
    assert_int_equal(topic(a, "User:t2", KP_OP_READ, "team.z"), 0);
    assert_int_equal(topic(a, "User:t3", KP_OP_READ, "team.z"), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team.x"), 1);
    /* every resource type is separate */
    for (int t = KP_RES_TOPIC; t < KP_RES_TYPES; t++) {
        if (t == KP_RES_CLUSTER) continue;
        ALLOW(a, t, KP_PAT_LITERAL, "same-name", "User:typed", KP_OP_ALTER);
        for (int u = KP_RES_TOPIC; u < KP_RES_TYPES; u++)
            if (u != KP_RES_CLUSTER)
                assert_int_equal(can(a, "User:typed", KP_OP_ALTER, u, "same-name"), u <= t);
    }
    /* ANY and UNKNOWN are no resource types to authorize */
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_ANY, "x"), 0);
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_UNKNOWN, "x"), 0);
    assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_TYPES, "x"), 0);
    kp_authorizer_free(a);
}

static void test_cluster(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    ALLOW(a, KP_RES_CLUSTER, KP_PAT_LITERAL, KP_CLUSTER_RESOURCE, ALICE, KP_OP_ALTER);
    /* the name is always kafka-cluster, whatever the caller passes */
    assert_int_equal(can(a, ALICE, KP_OP_ALTER, KP_RES_CLUSTER, NULL), 1);
    assert_int_equal(can(a, ALICE, KP_OP_ALTER, KP_RES_CLUSTER, KP_CLUSTER_RESOURCE), 1);
    assert_int_equal(can(a, ALICE, KP_OP_ALTER, KP_RES_CLUSTER, "other"), 1);
    assert_int_equal(can(a, ALICE, KP_OP_DESCRIBE, KP_RES_CLUSTER, NULL), 1); /* implied */
    assert_int_equal(can(a, ALICE, KP_OP_CREATE, KP_RES_CLUSTER, NULL), 0);
    assert_int_equal(can(a, BOB, KP_OP_DESCRIBE, KP_RES_CLUSTER, NULL), 0);
    /* a topic named kafka-cluster is not the cluster */
    assert_int_equal(topic(a, ALICE, KP_OP_ALTER, KP_CLUSTER_RESOURCE), 0);
    ALLOW(a, KP_RES_CLUSTER, KP_PAT_LITERAL, KP_CLUSTER_RESOURCE, BOB, KP_OP_IDEMPOTENT_WRITE);
    assert_int_equal(can(a, BOB, KP_OP_IDEMPOTENT_WRITE, KP_RES_CLUSTER, NULL), 1);
    assert_int_equal(can(a, BOB, KP_OP_DESCRIBE, KP_RES_CLUSTER, NULL), 0);
    kp_authorizer_free(a);
}

/* kp_authorize_any is Kafka's authorizeByResourceType (Authorizer.java): allowed when the
 * principal may do op on at least one resource of the type, taking DENYs into account the
 * way Kafka does (a wildcard DENY rules out everything; an allowed literal is ruled out by a
 * DENY of the same literal or of a prefix of it; an allowed prefix by a DENY prefix of it). */
static int any_write(kp_authorizer_t *a, const char *principal)
{
    return kp_authorize_any(a, principal, HOST, KP_OP_WRITE, KP_RES_TOPIC);
}

static void test_authorize_any(void **state)
{
    kp_authorizer_t *a = open_enabled("super.users=User:root\n");
    assert_int_equal(any_write(a, ALICE), 0);
    assert_int_equal(any_write(a, "User:root"), 1);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_READ);
    assert_int_equal(any_write(a, ALICE), 0);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_WRITE);
    assert_int_equal(any_write(a, ALICE), 1);
    assert_int_equal(any_write(a, BOB), 0);
    assert_int_equal(kp_authorize_any(a, ALICE, HOST, KP_OP_WRITE, KP_RES_GROUP), 0);
    assert_int_equal(kp_authorize_any(a, ALICE, HOST, KP_OP_WRITE, KP_RES_ANY), 0);
    DENY(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_WRITE);
    assert_int_equal(any_write(a, ALICE), 0);
    remove_all(a);

    struct {
        const char *what;
        int allow_pattern;
        const char *allow_name;
        int deny_pattern; /* 0: none */
        const char *deny_name;
        const char *deny_principal;
        int want;
    } cases[] = {
        {"literal", KP_PAT_LITERAL, "orders", 0, NULL, NULL, 1},
        {"prefix", KP_PAT_PREFIXED, "team.", 0, NULL, NULL, 1},
        {"wildcard", KP_PAT_LITERAL, "*", 0, NULL, NULL, 1},
        {"literal, same literal denied", KP_PAT_LITERAL, "orders", KP_PAT_LITERAL, "orders", ALICE,
         0},
        {"literal, other literal denied", KP_PAT_LITERAL, "orders", KP_PAT_LITERAL, "other", ALICE,
         1},
        {"literal, prefix of it denied", KP_PAT_LITERAL, "orders", KP_PAT_PREFIXED, "ord", ALICE,
         0},
        {"literal, itself denied as prefix", KP_PAT_LITERAL, "orders", KP_PAT_PREFIXED, "orders",
         ALICE, 0},
        {"literal, longer prefix denied", KP_PAT_LITERAL, "orders", KP_PAT_PREFIXED, "orders.",
         ALICE, 1},
        {"literal, everyone denied a prefix", KP_PAT_LITERAL, "orders", KP_PAT_PREFIXED, "o",
         "User:*", 0},
        {"prefix, shorter prefix denied", KP_PAT_PREFIXED, "team.", KP_PAT_PREFIXED, "team", ALICE,
         0},
        {"prefix, same prefix denied", KP_PAT_PREFIXED, "team.", KP_PAT_PREFIXED, "team.", ALICE,
         0},
        {"prefix, longer prefix denied", KP_PAT_PREFIXED, "team.", KP_PAT_PREFIXED, "team.a", ALICE,
         1},
        {"prefix, a literal under it denied", KP_PAT_PREFIXED, "team.", KP_PAT_LITERAL, "team.x",
         ALICE, 1},
        {"wildcard allowed, a literal denied", KP_PAT_LITERAL, "*", KP_PAT_LITERAL, "orders", ALICE,
         1},
        {"wildcard denied", KP_PAT_LITERAL, "orders", KP_PAT_LITERAL, "*", ALICE, 0},
        {"wildcard denied to everyone", KP_PAT_PREFIXED, "team.", KP_PAT_LITERAL, "*", "User:*", 0},
        {"someone else denied", KP_PAT_LITERAL, "orders", KP_PAT_PREFIXED, "o", BOB, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ALLOW(a, KP_RES_TOPIC, cases[i].allow_pattern, cases[i].allow_name, ALICE, KP_OP_WRITE);
        if (cases[i].deny_pattern)
            DENY(a, KP_RES_TOPIC, cases[i].deny_pattern, cases[i].deny_name,
                 cases[i].deny_principal, KP_OP_WRITE);
        if (any_write(a, ALICE) != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].what, any_write(a, ALICE), cases[i].want);
        remove_all(a);
    }
    /* ALL counts as the operation; User:* and the host count as for kp_authorize */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", "User:*", KP_OP_ALL);
    assert_int_equal(any_write(a, BOB), 1);
    remove_all(a);
    add(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, "10.1.1.1", KP_OP_WRITE, KP_PERM_ALLOW);
    assert_int_equal(any_write(a, ALICE), 0);
    assert_int_equal(kp_authorize_any(a, ALICE, "10.1.1.1", KP_OP_WRITE, KP_RES_TOPIC), 1);
    kp_authorizer_free(a);

    /* allow.everyone.if.no.acl.found: a principal may write some topic as long as there is a
     * topic no ACL applies to (Kafka asks for an arbitrary name first) */
    a = open_enabled("allow.everyone.if.no.acl.found=true\n");
    assert_int_equal(any_write(a, ALICE), 1);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "protected", BOB, KP_OP_READ);
    assert_int_equal(any_write(a, ALICE), 1);
    /* ... unless ACLs cover every name */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "*", BOB, KP_OP_READ);
    assert_int_equal(any_write(a, ALICE), 0);
    kp_authorizer_free(a);
}

/* ---- filters ---- */

static void test_filter_matching(void **state)
{
    kp_acl_t acls[] = {
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),   /* 0 */
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "*", BOB, "*", KP_OP_READ, KP_PERM_ALLOW),          /* 1 */
        mk(KP_RES_TOPIC, KP_PAT_PREFIXED, "ord", BOB, "*", KP_OP_WRITE, KP_PERM_DENY),       /* 2 */
        mk(KP_RES_TOPIC, KP_PAT_PREFIXED, "orders.", ALICE, HOST, KP_OP_ALL, KP_PERM_ALLOW), /* 3 */
        mk(KP_RES_GROUP, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),   /* 4 */
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders.eu", "User:*", "*", KP_OP_DESCRIBE,
           KP_PERM_ALLOW), /* 5 */
    };
    struct {
        kp_acl_filter_t f;
        const char *want; /* one char per ACL */
    } cases[] = {
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "111111"},
        {{KP_RES_TOPIC, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "111101"},
        {{KP_RES_GROUP, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "000010"},
        {{KP_RES_CLUSTER, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "000000"},
        /* ANY with a name: that exact name, any pattern type */
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL}, "100010"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, "ord", NULL, NULL}, "001000"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, "*", NULL, NULL}, "010000"},
        /* MATCH: literal equal, literal "*", prefixed that are prefixes of the name */
        {{KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL}, "111000"},
        {{KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "orders.eu", NULL, NULL}, "011101"},
        {{KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "orders.", NULL, NULL}, "011100"},
        {{KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "or", NULL, NULL}, "010000"},
        {{KP_RES_ANY, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL}, "111010"},
        {{KP_RES_ANY, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "111111"},
        /* LITERAL / PREFIXED: that pattern type, and that exact name when given */
        {{KP_RES_ANY, KP_PAT_LITERAL, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "110011"},
        {{KP_RES_TOPIC, KP_PAT_LITERAL, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL}, "100000"},
        {{KP_RES_TOPIC, KP_PAT_LITERAL, KP_OP_ANY, KP_PERM_ANY, "orders.eu", NULL, NULL}, "000001"},
        {{KP_RES_TOPIC, KP_PAT_PREFIXED, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "001100"},
        {{KP_RES_TOPIC, KP_PAT_PREFIXED, KP_OP_ANY, KP_PERM_ANY, "orders.", NULL, NULL}, "000100"},
        {{KP_RES_TOPIC, KP_PAT_PREFIXED, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL}, "000000"},
        /* the entry: exact principal / host / operation / permission */
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, ALICE, NULL}, "100110"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, "User:*", NULL}, "000001"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, HOST}, "000100"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, "*"}, "111011"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_READ, KP_PERM_ANY, NULL, NULL, NULL}, "110010"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ALL, KP_PERM_ANY, NULL, NULL, NULL}, "000100"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_DESCRIBE, KP_PERM_ANY, NULL, NULL, NULL}, "000001"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_DENY, NULL, NULL, NULL}, "001000"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ALLOW, NULL, NULL, NULL}, "110111"},
        {{KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_READ, KP_PERM_ALLOW, "orders", ALICE, "*"}, "100000"},
        /* UNKNOWN matches nothing */
        {{KP_RES_UNKNOWN, KP_PAT_ANY, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "000000"},
        {{KP_RES_ANY, KP_PAT_UNKNOWN, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL}, "000000"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_UNKNOWN, KP_PERM_ANY, NULL, NULL, NULL}, "000000"},
        {{KP_RES_ANY, KP_PAT_ANY, KP_OP_ANY, KP_PERM_UNKNOWN, NULL, NULL, NULL}, "000000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[8] = "";
        for (size_t k = 0; k < 6; k++)
            got[k] = kp_acl_filter_matches(&cases[i].f, &acls[k]) ? '1' : '0';
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("filter %zu: got %s, want %s", i, got, cases[i].want);
    }
}

typedef struct seen {
    int n;
    char names[16][64];
} seen_t;

static void note(const kp_acl_t *acl, void *arg)
{
    seen_t *s = arg;
    if (s->n < 16)
        snprintf(s->names[s->n], sizeof(s->names[0]), "%d:%s:%s:%d", acl->pattern_type,
                 acl->resource_name, acl->principal, acl->operation);
    s->n++;
}

static int seen_has(const seen_t *s, const char *name)
{
    for (int i = 0; i < s->n && i < 16; i++)
        if (!strcmp(s->names[i], name)) return 1;
    return 0;
}

static void test_list_add_remove(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    kp_acl_t batch[] = {
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),
        mk(KP_RES_TOPIC, KP_PAT_PREFIXED, "ord", BOB, "*", KP_OP_WRITE, KP_PERM_DENY),
        mk(KP_RES_GROUP, KP_PAT_LITERAL, "g", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW), /* dup */
    };
    assert_int_equal(kp_acl_add(a, batch, 4), 0);
    assert_int_equal(kp_acl_count(a), 3);
    /* adding existing bindings again changes nothing */
    assert_int_equal(kp_acl_add(a, batch, 2), 0);
    assert_int_equal(kp_acl_count(a), 3);
    /* same binding with another permission / host / pattern is another binding */
    kp_acl_t other[] = {
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_DENY),
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, HOST, KP_OP_READ, KP_PERM_ALLOW),
        mk(KP_RES_TOPIC, KP_PAT_PREFIXED, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),
    };
    assert_int_equal(kp_acl_add(a, other, 3), 0);
    assert_int_equal(kp_acl_count(a), 6);

    seen_t s = {0};
    kp_acl_filter_t f = {KP_RES_TOPIC, KP_PAT_MATCH, KP_OP_ANY, KP_PERM_ANY, "orders", NULL, NULL};
    kp_acl_list(a, &f, note, &s);
    assert_int_equal(s.n, 5);
    assert_true(seen_has(&s, "4:ord:" BOB ":4"));
    assert_true(seen_has(&s, "4:orders:" ALICE ":3"));
    /* remove: the callback sees each removed binding; the count is returned */
    memset(&s, 0, sizeof(s));
    kp_acl_filter_t r = {KP_RES_TOPIC, KP_PAT_LITERAL, KP_OP_READ, KP_PERM_ANY,
                         "orders",     ALICE,          NULL};
    assert_int_equal(kp_acl_remove(a, &r, note, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(kp_acl_count(a), 3);
    assert_int_equal(kp_acl_remove(a, &r, NULL, NULL), 0);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "orders"), 1); /* via PREFIXED "orders" */
    kp_acl_filter_t p = {KP_RES_ANY, KP_PAT_PREFIXED, KP_OP_ANY, KP_PERM_ANY, NULL, NULL, NULL};
    assert_int_equal(kp_acl_remove(a, &p, NULL, NULL), 2);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "orders"), 0);
    assert_int_equal(kp_acl_count(a), 1);
    kp_authorizer_free(a);
}

/* ---- validation ---- */

static void expect_invalid(kp_acl_t acl, const char *msg_part)
{
    char err[256] = "";
    assert_int_equal(kp_acl_validate(&acl, err, sizeof(err)), -1);
    if (!strstr(err, msg_part)) fail_msg("'%s' does not say '%s'", err, msg_part);
}

static void test_validation(void **state)
{
    char err[256];
    for (int t = KP_RES_TOPIC; t < KP_RES_TYPES; t++)
        for (int op = KP_OP_ALL; op <= KP_OP_DESCRIBE_TOKENS; op++)
            for (int perm = KP_PERM_DENY; perm <= KP_PERM_ALLOW; perm++) {
                const char *name = t == KP_RES_CLUSTER ? KP_CLUSTER_RESOURCE : "n";
                kp_acl_t ok = mk(t, KP_PAT_LITERAL, name, "User:x", "*", op, perm);
                assert_int_equal(kp_acl_validate(&ok, err, sizeof(err)), 0);
                ok.pattern_type = KP_PAT_PREFIXED;
                assert_int_equal(kp_acl_validate(&ok, err, sizeof(err)),
                                 t == KP_RES_CLUSTER ? -1 : 0);
            }
    kp_acl_t base = mk(KP_RES_TOPIC, KP_PAT_LITERAL, "t", "User:x", "*", KP_OP_READ, KP_PERM_ALLOW);
    kp_acl_t x;
#define BAD(field, value, msg)                                                                     \
    do {                                                                                           \
        x = base;                                                                                  \
        x.field = value;                                                                           \
        expect_invalid(x, msg);                                                                    \
    } while (0)
    BAD(resource_type, KP_RES_UNKNOWN, "resource type");
    BAD(resource_type, KP_RES_ANY, "resource type");
    BAD(resource_type, KP_RES_TYPES, "resource type");
    BAD(resource_type, -1, "resource type");
    BAD(pattern_type, KP_PAT_UNKNOWN, "pattern type");
    BAD(pattern_type, KP_PAT_ANY, "pattern type");
    BAD(pattern_type, KP_PAT_MATCH, "pattern type");
    BAD(pattern_type, 5, "pattern type");
    BAD(operation, KP_OP_UNKNOWN, "operation");
    BAD(operation, KP_OP_ANY, "operation");
    BAD(operation, KP_OP_DESCRIBE_TOKENS + 1, "operation");
    BAD(permission, KP_PERM_UNKNOWN, "permission");
    BAD(permission, KP_PERM_ANY, "permission");
    BAD(permission, 4, "permission");
    BAD(resource_name, "", "empty");
    BAD(resource_name, NULL, "empty");
    BAD(principal, "alice", "principal");
    BAD(principal, ":alice", "principal");
    BAD(principal, "User:", "principal");
    BAD(principal, NULL, "principal");
    BAD(host, "", "Host");
    BAD(host, NULL, "host");
    x = base;
    x.resource_type = KP_RES_CLUSTER;
    x.resource_name = "my-cluster";
    expect_invalid(x, KP_CLUSTER_RESOURCE);
    static char longname[65537];
    memset(longname, 'n', sizeof(longname) - 1);
    BAD(resource_name, longname, "too long");
    longname[65535] = 0; /* 65535 bytes: the longest name the journal can hold */
    x = base;
    x.resource_name = longname;
    assert_int_equal(kp_acl_validate(&x, err, sizeof(err)), 0);
#undef BAD
}

/* ---- journal ---- */

static char journal_path[PATH_MAX];

static kp_authorizer_t *open_dir(const char *dir)
{
    snprintf(journal_path, sizeof(journal_path), "%s/acls.journal", dir);
    return open_with("authorizer.enabled=true\n", dir);
}

static void test_journal_reopen(void **state)
{
    char dir[PATH_MAX];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_authorizer_t *a = open_dir(dir);
    assert_int_equal(ut_file_size(journal_path), 0);
    kp_acl_t two[] = {
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "orders", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),
        mk(KP_RES_TOPIC, KP_PAT_PREFIXED, "team.", BOB, HOST, KP_OP_WRITE, KP_PERM_ALLOW),
    };
    assert_int_equal(kp_acl_add(a, two, 2), 0);
    ALLOW(a, KP_RES_GROUP, KP_PAT_LITERAL, "g", ALICE, KP_OP_READ);
    DENY(a, KP_RES_CLUSTER, KP_PAT_LITERAL, KP_CLUSTER_RESOURCE, "User:*", KP_OP_ALTER);
    kp_acl_filter_t f = any_filter();
    f.resource_type = KP_RES_GROUP;
    assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), 1);
    kp_authorizer_free(a);

    for (int round = 0; round < 2; round++) {
        a = open_dir(dir);
        assert_int_equal(kp_acl_count(a), 3);
        assert_int_equal(topic(a, ALICE, KP_OP_READ, "orders"), 1);
        assert_int_equal(topic(a, BOB, KP_OP_WRITE, "team.x"), 1);
        assert_int_equal(kp_authorize(a, BOB, "10.0.0.1", KP_OP_WRITE, KP_RES_TOPIC, "team.x", 6),
                         0);
        assert_int_equal(can(a, ALICE, KP_OP_READ, KP_RES_GROUP, "g"), 0);
        seen_t s = {0};
        kp_acl_filter_t all = any_filter();
        kp_acl_list(a, &all, note, &s);
        assert_int_equal(s.n, 3);
        assert_true(seen_has(&s, "3:kafka-cluster:User:*:7"));
        kp_authorizer_free(a);
    }
    ut_tmpdir_remove(dir);
}

static void append_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_journal_torn_tail_is_cut(void **state)
{
    char dir[PATH_MAX];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_authorizer_t *a = open_dir(dir);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "one", ALICE, KP_OP_READ);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "two", ALICE, KP_OP_READ);
    int64_t good = ut_file_size(journal_path);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "three", ALICE, KP_OP_READ);
    int64_t full = ut_file_size(journal_path);
    kp_authorizer_free(a);
    assert_true(full > good);

    /* every torn length of the last record: the first two stay, the tail is cut */
    uint8_t *data;
    size_t len;
    assert_int_equal(kp_fs_read_all(journal_path, 1 << 20, &data, &len), 0);
    for (int64_t cut = good + 1; cut < full; cut++) {
        assert_int_equal(truncate(journal_path, cut), 0);
        a = open_dir(dir);
        assert_int_equal(kp_acl_count(a), 2);
        assert_int_equal(topic(a, ALICE, KP_OP_READ, "two"), 1);
        assert_int_equal(topic(a, ALICE, KP_OP_READ, "three"), 0);
        assert_int_equal(ut_file_size(journal_path), good);
        kp_authorizer_free(a);
        FILE *f = fopen(journal_path, "wb");
        fwrite(data, 1, len, f);
        fclose(f);
    }
    /* garbage after the last record (zeros of a preallocated block, random bytes) */
    uint8_t zeros[64] = {0};
    append_bytes(journal_path, zeros, sizeof(zeros));
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), 3);
    assert_int_equal(ut_file_size(journal_path), full);
    /* the repaired journal takes new records that survive the next reopen */
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "four", ALICE, KP_OP_READ);
    kp_authorizer_free(a);
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), 4);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "four"), 1);
    kp_authorizer_free(a);

    /* a corrupt record (bad CRC) in the middle: replay stops there, the rest is cut */
    free(data);
    assert_int_equal(kp_fs_read_all(journal_path, 1 << 20, &data, &len), 0);
    FILE *f = fopen(journal_path, "r+b");
    assert_non_null(f);
    fseek(f, (long)good + 12, SEEK_SET); /* inside the payload of record three */
    fputc(0x5a ^ data[good + 12], f);
    fclose(f);
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), 2);
    assert_int_equal(ut_file_size(journal_path), good);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "four"), 0);
    kp_authorizer_free(a);
    free(data);
    ut_tmpdir_remove(dir);
}

static void test_journal_compaction(void **state)
{
    char dir[PATH_MAX];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_authorizer_t *a = open_dir(dir);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "kept", ALICE, KP_OP_READ);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "kept.", BOB, KP_OP_WRITE);
    int64_t peak = 0;
    kp_acl_filter_t f = any_filter();
    f.principal = "User:churn";
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "churn-%d", i);
        ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, name, "User:churn", KP_OP_READ);
        assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), 1);
        int64_t sz = ut_file_size(journal_path);
        if (sz > peak) peak = sz;
    }
    /* compacted whenever it held ~1k dead records: never near the 6002 records (40 bytes
     * each) written */
    assert_true(peak < 50000);
    assert_true(ut_file_size(journal_path) < 50000);
    assert_int_equal(kp_acl_count(a), 2);
    kp_authorizer_free(a);
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), 2);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "kept"), 1);
    assert_int_equal(topic(a, BOB, KP_OP_WRITE, "kept.x"), 1);
    assert_int_equal(topic(a, "User:churn", KP_OP_READ, "churn-2999"), 0);
    kp_authorizer_free(a);
    ut_tmpdir_remove(dir);
}

static void test_journal_write_failure_changes_nothing(void **state)
{
    char dir[PATH_MAX];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_authorizer_t *a = open_dir(dir);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, KP_OP_READ);
    int64_t size = ut_file_size(journal_path);
    kp_acl_t more[] = {
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "u", ALICE, "*", KP_OP_READ, KP_PERM_ALLOW),
        mk(KP_RES_TOPIC, KP_PAT_LITERAL, "t", ALICE, "*", KP_OP_READ, KP_PERM_DENY),
    };
    kp_acl_filter_t f = any_filter();
    kp_fs = &kp_fs_faulty;
    /* any write budget short of the two records (each as long as the first one) */
    for (int64_t budget = 0; budget < 2 * size; budget += 7) {
        kp_fs_faults.write_budget = budget;
        kp_fs_faults.fail_fsync = 0;
        assert_int_equal(kp_acl_add(a, more, 2), -1);
        kp_fs_faults.write_budget = -1;
        kp_fs_faults.fail_fsync = 1;
        assert_int_equal(kp_acl_add(a, more, 2), -1);
        assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), -1);
        assert_int_equal(kp_acl_count(a), 1);
        assert_int_equal(topic(a, ALICE, KP_OP_READ, "t"), 1);
        assert_int_equal(topic(a, ALICE, KP_OP_READ, "u"), 0);
    }
    kp_fs_faults.write_budget = -1;
    kp_fs_faults.fail_fsync = 0;
    kp_fs = &kp_fs_posix;
    assert_int_equal(ut_file_size(journal_path), size);
    /* and the journal is still good afterwards */
    assert_int_equal(kp_acl_add(a, more, 1), 0);
    kp_authorizer_free(a);
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), 2);
    assert_int_equal(topic(a, ALICE, KP_OP_READ, "u"), 1);
    kp_authorizer_free(a);
    ut_tmpdir_remove(dir);
}

/* ---- many ACLs ---- */

#define MANY 100000

static void test_100k_acls(void **state)
{
    char dir[PATH_MAX];
    ut_tmpdir_make(dir, sizeof(dir));
    kp_authorizer_t *a = open_dir(dir);
    /* 100k bindings: per user i WRITE on topic-i, READ on prefix pre-i. and on group-i */
    enum { BATCH = 1000 };
    static char names[BATCH][3][48];
    static char principals[BATCH][32];
    kp_acl_t batch[BATCH];
    int made = 0;
    for (int base = 0; made < MANY; base += BATCH / 3) {
        int n = 0;
        for (int i = base; i < base + BATCH / 3 && made < MANY; i++) {
            int k = i - base;
            snprintf(principals[k], sizeof(principals[k]), "User:u%d", i);
            snprintf(names[k][0], sizeof(names[k][0]), "topic-%d", i);
            snprintf(names[k][1], sizeof(names[k][1]), "pre-%d.", i);
            snprintf(names[k][2], sizeof(names[k][2]), "group-%d", i);
            batch[n++] = mk(KP_RES_TOPIC, KP_PAT_LITERAL, names[k][0], principals[k], "*",
                            KP_OP_WRITE, KP_PERM_ALLOW);
            if (++made == MANY) break;
            batch[n++] = mk(KP_RES_TOPIC, KP_PAT_PREFIXED, names[k][1], principals[k], "*",
                            KP_OP_READ, KP_PERM_ALLOW);
            if (++made == MANY) break;
            batch[n++] = mk(KP_RES_GROUP, KP_PAT_LITERAL, names[k][2], principals[k], "*",
                            KP_OP_READ, KP_PERM_ALLOW);
            ++made;
        }
        assert_int_equal(kp_acl_add(a, batch, n), 0);
    }
    assert_int_equal(kp_acl_count(a), MANY);
    ut_rand_t r;
    ut_rand_seed(&r, 100000);
    for (int probe = 0; probe < 2000; probe++) {
        int i = (int)ut_rand_below(&r, (uint64_t)(MANY / 3));
        int j = (i + 1 + (int)ut_rand_below(&r, (uint64_t)(MANY / 3 - 1))) % (MANY / 3);
        char p[32], t[48], x[64], g[48];
        snprintf(p, sizeof(p), "User:u%d", i);
        snprintf(t, sizeof(t), "topic-%d", i);
        snprintf(x, sizeof(x), "pre-%d.sub-%d", i, probe);
        snprintf(g, sizeof(g), "group-%d", i);
        assert_int_equal(topic(a, p, KP_OP_WRITE, t), 1);
        assert_int_equal(topic(a, p, KP_OP_DESCRIBE, t), 1);
        assert_int_equal(topic(a, p, KP_OP_READ, t), 0);
        assert_int_equal(topic(a, p, KP_OP_READ, x), 1);
        assert_int_equal(topic(a, p, KP_OP_WRITE, x), 0);
        assert_int_equal(can(a, p, KP_OP_READ, KP_RES_GROUP, g), 1);
        /* someone else's resources */
        char q[32], tq[48], xq[64];
        snprintf(q, sizeof(q), "User:u%d", j);
        snprintf(tq, sizeof(tq), "topic-%d", j);
        snprintf(xq, sizeof(xq), "pre-%d.y", j);
        assert_int_equal(topic(a, p, KP_OP_WRITE, tq), 0);
        assert_int_equal(topic(a, p, KP_OP_READ, xq), 0);
        assert_int_equal(topic(a, q, KP_OP_WRITE, t), 0);
        assert_int_equal(can(a, p, KP_OP_READ, KP_RES_GROUP, "group-x"), 0);
        /* "pre-1" is no prefix of "pre-12.", but "pre-12." covers "pre-12.x" only */
        snprintf(xq, sizeof(xq), "pre-%d", i);
        assert_int_equal(topic(a, p, KP_OP_READ, xq), 0);
    }
    assert_int_equal(kp_authorize_any(a, "User:u77", HOST, KP_OP_WRITE, KP_RES_TOPIC), 1);
    assert_int_equal(kp_authorize_any(a, "User:nobody", HOST, KP_OP_WRITE, KP_RES_TOPIC), 0);
    /* a wildcard DENY on top of 100k ALLOWs */
    DENY(a, KP_RES_TOPIC, KP_PAT_PREFIXED, "pre-4", "User:*", KP_OP_READ);
    assert_int_equal(topic(a, "User:u4", KP_OP_READ, "pre-4.x"), 0);
    assert_int_equal(topic(a, "User:u42", KP_OP_READ, "pre-42.x"), 0);
    assert_int_equal(topic(a, "User:u5", KP_OP_READ, "pre-5.x"), 1);
    /* remove one user's bindings out of 100k, then reopen from the journal */
    kp_acl_filter_t f = any_filter();
    f.principal = "User:u777";
    assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), 3);
    assert_int_equal(topic(a, "User:u777", KP_OP_WRITE, "topic-777"), 0);
    kp_authorizer_free(a);
    a = open_dir(dir);
    assert_int_equal(kp_acl_count(a), MANY - 3 + 1);
    assert_int_equal(topic(a, "User:u777", KP_OP_WRITE, "topic-777"), 0);
    assert_int_equal(topic(a, "User:u778", KP_OP_WRITE, "topic-778"), 1);
    assert_int_equal(topic(a, "User:u33332", KP_OP_READ, "pre-33332.z"), 1);
    assert_int_equal(topic(a, "User:u4", KP_OP_READ, "pre-4.x"), 0);
    kp_authorizer_free(a);
    ut_tmpdir_remove(dir);
}

/* ---- threads ---- */

typedef struct race {
    kp_authorizer_t *a;
    int stop;
    long checks;
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
        /* "stable" is never touched by the writer */
        if (!topic(r->a, ALICE, KP_OP_READ, "stable")) abort();
        if (topic(r->a, BOB, KP_OP_READ, "stable")) abort();
        topic(r->a, BOB, KP_OP_READ, "flip");
        kp_authorize_any(r->a, BOB, HOST, KP_OP_WRITE, KP_RES_TOPIC);
        __atomic_fetch_add(&r->checks, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_concurrent_changes_and_decisions(void **state)
{
    kp_authorizer_t *a = open_enabled(NULL);
    ALLOW(a, KP_RES_TOPIC, KP_PAT_LITERAL, "stable", ALICE, KP_OP_READ);
    race_t r = {a, 0, 0};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
    kp_acl_filter_t f = any_filter();
    f.principal = BOB;
    for (int i = 0; i < 2000; i++) {
        ALLOW(a, KP_RES_TOPIC, i % 2 ? KP_PAT_PREFIXED : KP_PAT_LITERAL, "flip", BOB, KP_OP_READ);
        /* a change is visible to the very next decision */
        assert_int_equal(topic(a, BOB, KP_OP_READ, "flip"), 1);
        assert_int_equal(kp_acl_remove(a, &f, NULL, NULL), 1);
        assert_int_equal(topic(a, BOB, KP_OP_READ, "flip"), 0);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_true(r.checks > 0);
    kp_authorizer_free(a);
}

/* every test starts on the real file system, even after one that failed mid-fault */
static int real_fs(void **state)
{
    kp_fs = &kp_fs_posix;
    kp_fs_faults.write_budget = -1;
    kp_fs_faults.fail_fsync = 0;
    return 0;
}

#define TEST(fn) cmocka_unit_test_setup(fn, real_fs)

int main(void)
{
    /* the journal's repair warnings would drown the report */
    kp_logging_set_level(KP_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        TEST(test_disabled_allows_everything),
        TEST(test_no_acl_denies_unless_allow_everyone),
        TEST(test_super_users),
        TEST(test_deny_wins),
        TEST(test_deny_through_every_pattern),
        TEST(test_implied_operations),
        TEST(test_principal_and_host_matching),
        TEST(test_literal_wildcard_prefixed_and_types),
        TEST(test_cluster),
        TEST(test_authorize_any),
        TEST(test_filter_matching),
        TEST(test_list_add_remove),
        TEST(test_validation),
        TEST(test_journal_reopen),
        TEST(test_journal_torn_tail_is_cut),
        TEST(test_journal_compaction),
        TEST(test_journal_write_failure_changes_nothing),
        TEST(test_100k_acls),
        TEST(test_concurrent_changes_and_decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
