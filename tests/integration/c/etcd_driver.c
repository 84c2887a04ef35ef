/*
 * etcd_driver.c — drives src/cluster (the etcd client and the etcd metadata store) against
 * a real etcd for tests/integration/test_etcd.py. Built by `make unit-bins` as
 * $(B)/tests/etcd_driver (it links libkpool.a).
 *
 * Usage: etcd_driver ENDPOINTS COMMAND ARGS...
 *   put KEY VALUE                 -> "ok REV"
 *   get KEY                       -> "value VALUE MOD_REV" | "notfound"
 *   getn KEY N                    N gets on one client, one line each as get (an error as
 *                                 "error RC MESSAGE", without exiting)
 *   watchn PREFIX SECONDS         a watch for SECONDS, then "stats RECONNECTS RESETS EVENTS"
 *   cas KEY VALUE EXPECTED_MOD    -> "ok REV" | "conflict MOD_REV"
 *   lease TTL                     -> "lease ID TTL"          (hex id)
 *   keepalive ID                  -> "ttl N" | "expired"
 *   register PREFIX ID TTL        registers broker ID under a session, prints "registered",
 *                                 then renews it while reading stdin; "stop" on stdin exits
 *                                 without revoking (the session then expires), EOF revokes
 *   brokers PREFIX                -> "broker ID RACK" per live broker, then "end"
 *   campaign PREFIX ID TTL        registers, campaigns (renewing the session meanwhile),
 *                                 prints "leader ID EPOCH" once elected, then renews until
 *                                 stdin says "revoke" (revokes the session) or EOF
 *   controller PREFIX             -> "controller ID EPOCH" | "none"
 *   claim PREFIX LOCAL_ID         -> "cluster ID" (exit 0) | "mismatch MESSAGE" (exit 3)
 *   watch PREFIX [START_REV]      prints "reset N REV", "put KEY VALUE REV", "delete KEY REV"
 *                                 as they come, until stdin closes; then "stats RECONNECTS
 *                                 RESETS"
 *   meta-selftest PREFIX          topics, partition CAS (conflict and fencing), ACLs,
 *                                 producer-id blocks from two threads; prints "ok" or the
 *                                 first failed check
 * Errors print "error RC MESSAGE" and exit 2. Output is line-buffered.
 */
#include "cluster/etcd.h"
#include "cluster/meta_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

static char err[1024];

static void die(int rc)
{
    printf("error %d %s\n", rc, err);
    exit(2);
}

/* Reads a stdin line if one is ready within ms; 1 line, 0 nothing yet, -1 EOF. */
static int stdin_line(char *buf, size_t len, int ms)
{
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(0, &fds);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (select(1, &fds, NULL, NULL, &tv) <= 0) return 0;
    if (!fgets(buf, (int)len, stdin)) return -1;
    buf[strcspn(buf, "\n")] = 0;
    return 1;
}

static kp_meta_store_t *meta(const char *ep, const char *prefix, int32_t id)
{
    kp_meta_store_t *s = kp_meta_etcd_open(ep, prefix, 3000, id, err, sizeof(err));
    if (!s) die(-100);
    return s;
}

static void do_register(kp_meta_store_t *s, int32_t id, int ttl)
{
    kp_meta_endpoint_t ep = {"PLAINTEXT", "127.0.0.1", 9092 + id, "PLAINTEXT"};
    char rack[16];
    snprintf(rack, sizeof(rack), "r%d", id % 2);
    kp_meta_broker_t b = {.id = id, .rack = rack, .endpoints = &ep, .nendpoints = 1};
    int rc = kp_meta_broker_register(s, &b, ttl, err, sizeof(err));
    if (rc) die(rc);
}

/* Renews the session every `every` ms until stdin has a line or EOF; returns the line. */
static int hold(kp_meta_store_t *s, int every, char *line, size_t len)
{
    for (;;) {
        int r = stdin_line(line, len, every);
        if (r) return r;
        int rc = kp_meta_broker_keepalive(s, err, sizeof(err));
        if (rc) printf("keepalive %d %s\n", rc, err);
    }
}

static void on_event(void *arg, int kind, const kp_etcd_event_t *ev, int n, int64_t rev)
{
    if (kind == KP_ETCD_WATCH_RESET) printf("reset %d %lld\n", n, (long long)rev);
    for (int i = 0; i < n; i++) {
        if (ev[i].type == KP_ETCD_EV_PUT)
            printf("put %s %s %lld\n", ev[i].kv.key, ev[i].kv.value,
                   (long long)ev[i].kv.mod_revision);
        else
            printf("delete %s %lld\n", ev[i].kv.key, (long long)ev[i].kv.mod_revision);
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAILED line %d: %s (%s)\n", __LINE__, #cond, err);                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static kp_meta_store_t *pid_store;
static int64_t pid_firsts[2][50];

static void *pid_thread(void *arg)
{
    int64_t *out = arg;
    char e2[256];
    for (int i = 0; i < 50; i++)
        if (kp_meta_producer_ids_alloc(pid_store, 1000, &out[i], e2, sizeof(e2))) out[i] = -1;
    return NULL;
}

/* What the store's watch reported during the selftest (kinds seen, in order of arrival). */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int seen_kind[4096], seen_deleted[4096], seen_partition[4096], nseen;
static char seen_topic[4096][32];

static void on_change(void *arg, const kp_meta_change_t *c, int n)
{
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < n && nseen < 4096; i++, nseen++) {
        seen_kind[nseen] = c[i].kind;
        seen_deleted[nseen] = c[i].deleted;
        seen_partition[nseen] = c[i].partition;
        snprintf(seen_topic[nseen], sizeof(seen_topic[nseen]), "%s", c[i].topic ? c[i].topic : "");
    }
    pthread_mutex_unlock(&seen_lock);
}

static int seen(int kind, const char *topic, int partition, int deleted)
{
    pthread_mutex_lock(&seen_lock);
    int found = 0;
    for (int i = 0; i < nseen && !found; i++)
        found = seen_kind[i] == kind && seen_deleted[i] == deleted &&
                (!topic || !strcmp(seen_topic[i], topic)) &&
                (partition < 0 || seen_partition[i] == partition);
    pthread_mutex_unlock(&seen_lock);
    return found;
}

static int selftest(const char *ep, const char *prefix)
{
    kp_meta_store_t *s = meta(ep, prefix, 1);
    CHECK(kp_meta_watch_start(s, on_change, NULL, err, sizeof(err)) == 0);
    int32_t replicas[6] = {1, 2, 2, 3, 3, 1};
    char *ck[1] = {"retention.ms"}, *cv[1] = {"1000"};
    kp_meta_topic_t t = {.name = "orders",
                         .id = {1, 2, 3},
                         .partitions = 3,
                         .replication_factor = 2,
                         .replicas = replicas,
                         .config_keys = ck,
                         .config_values = cv,
                         .nconfigs = 1};
    int64_t v1;
    CHECK(kp_meta_topic_create(s, &t, &v1, err, sizeof(err)) == 0);
    CHECK(kp_meta_topic_create(s, &t, NULL, err, sizeof(err)) == KP_META_EEXISTS);
    CHECK(strstr(err, "already exists"));
    kp_meta_topic_t got;
    CHECK(kp_meta_topic_get(s, "orders", &got, err, sizeof(err)) == 0);
    CHECK(got.partitions == 3 && got.replication_factor == 2 && got.version == v1);
    CHECK(got.replicas[4] == 3 && got.nconfigs == 1 && !strcmp(got.config_values[0], "1000"));
    CHECK(got.id[2] == 3);
    /* initial partition state: leader = first replica, ISR = replicas, epochs 0 */
    kp_meta_pstate_t ps;
    CHECK(kp_meta_partition_get(s, "orders", 1, &ps, err, sizeof(err)) == 0);
    CHECK(ps.state.leader == 2 && ps.state.nisr == 2 && ps.state.isr[1] == 3);
    /* CAS: success, then a stale writer loses */
    kp_partition_state_t next;
    kp_partition_state_set_isr(&ps.state, (int32_t[]){2}, 1, &next);
    int64_t pv;
    CHECK(kp_meta_partition_cas(s, "orders", 1, &next, ps.version, 0, &pv, err, sizeof(err)) == 0);
    CHECK(kp_meta_partition_cas(s, "orders", 1, &next, ps.version, 0, NULL, err, sizeof(err)) ==
          KP_META_ECONFLICT);
    kp_meta_pstate_t ps2;
    CHECK(kp_meta_partition_get(s, "orders", 1, &ps2, err, sizeof(err)) == 0);
    CHECK(ps2.version == pv && ps2.state.nisr == 1 && ps2.state.partition_epoch == 1);
    /* fenced writes need the controllership */
    CHECK(kp_meta_partition_cas(s, "orders", 1, &next, pv, 1, NULL, err, sizeof(err)) ==
          KP_META_EFENCED);
    do_register(s, 1, 10);
    int64_t epoch;
    CHECK(kp_meta_controller_campaign(s, 5000, &epoch, err, sizeof(err)) == 0);
    CHECK(kp_meta_partition_cas(s, "orders", 1, &next, pv, 1, &pv, err, sizeof(err)) == 0);
    CHECK(kp_meta_controller_resign(s, err, sizeof(err)) == 0);
    CHECK(kp_meta_partition_cas(s, "orders", 1, &next, pv, 1, NULL, err, sizeof(err)) ==
          KP_META_EFENCED);
    /* update: grow to 5 partitions; a stale version conflicts; shrinking is refused */
    int32_t replicas5[10] = {1, 2, 2, 3, 3, 1, 1, 3, 2, 1};
    got.partitions = 5;
    free(got.replicas);
    got.replicas = malloc(sizeof(replicas5));
    memcpy(got.replicas, replicas5, sizeof(replicas5));
    int64_t v2;
    CHECK(kp_meta_topic_update(s, &got, &v2, err, sizeof(err)) == 0);
    CHECK(kp_meta_topic_update(s, &got, NULL, err, sizeof(err)) == KP_META_ECONFLICT);
    CHECK(kp_meta_partition_get(s, "orders", 4, &ps, err, sizeof(err)) == 0);
    CHECK(ps.state.leader == 2);
    got.version = v2;
    got.partitions = 2;
    CHECK(kp_meta_topic_update(s, &got, NULL, err, sizeof(err)) == KP_META_EINVAL);
    kp_meta_topic_free(&got);
    /* a big topic: partition states span several transactions */
    int32_t *big = malloc(300 * sizeof(int32_t));
    for (int i = 0; i < 300; i++) big[i] = 1 + i % 3;
    kp_meta_topic_t tb = {
        .name = "big", .partitions = 300, .replication_factor = 1, .replicas = big};
    CHECK(kp_meta_topic_create(s, &tb, NULL, err, sizeof(err)) == 0);
    CHECK(kp_meta_partition_get(s, "big", 299, &ps, err, sizeof(err)) == 0);
    CHECK(ps.state.leader == 1 + 299 % 3);
    free(big);
    kp_meta_topic_t *list;
    int n;
    CHECK(kp_meta_topics_list(s, &list, &n, err, sizeof(err)) == 0);
    CHECK(n == 2 && !strcmp(list[0].name, "big") && !strcmp(list[1].name, "orders"));
    kp_meta_topics_free(list, n);
    /* delete: a stale version conflicts; then the record and every partition state go */
    CHECK(kp_meta_topic_delete(s, "orders", v1, err, sizeof(err)) == KP_META_ECONFLICT);
    CHECK(kp_meta_topic_delete(s, "orders", 0, err, sizeof(err)) == 0);
    CHECK(kp_meta_topic_delete(s, "orders", 0, err, sizeof(err)) == KP_META_ENOTFOUND);
    CHECK(kp_meta_partition_get(s, "orders", 4, &ps, err, sizeof(err)) == KP_META_ENOTFOUND);
    CHECK(kp_meta_topic_get(s, "../x", &got, err, sizeof(err)) == KP_META_EINVAL);
    /* ACLs: idempotent add, exact remove */
    kp_acl_t acls[2] = {
        {KP_RES_TOPIC, KP_PAT_LITERAL, KP_OP_READ, KP_PERM_ALLOW, "orders", "User:alice", "*"},
        {KP_RES_GROUP, KP_PAT_PREFIXED, KP_OP_ALL, KP_PERM_DENY, "g", "User:bob", "10.0.0.1"},
    };
    CHECK(kp_meta_acls_add(s, acls, 2, err, sizeof(err)) == 0);
    CHECK(kp_meta_acls_add(s, acls, 1, err, sizeof(err)) == 0);
    kp_acl_t *al;
    CHECK(kp_meta_acls_list(s, &al, &n, err, sizeof(err)) == 0);
    CHECK(n == 2);
    kp_meta_acls_free(al, n);
    CHECK(kp_meta_acl_remove(s, &acls[1], err, sizeof(err)) == 0);
    CHECK(kp_meta_acl_remove(s, &acls[1], err, sizeof(err)) == KP_META_ENOTFOUND);
    CHECK(kp_meta_acls_list(s, &al, &n, err, sizeof(err)) == 0);
    CHECK(n == 1 && al[0].operation == KP_OP_READ && !strcmp(al[0].principal, "User:alice"));
    kp_meta_acls_free(al, n);
    /* producer-id blocks from two threads: never overlapping */
    pid_store = s;
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, pid_thread, pid_firsts[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 100; i++) {
        int64_t a = pid_firsts[i / 50][i % 50];
        CHECK(a >= 0 && a % 1000 == 0);
        for (int j = 0; j < i; j++) CHECK(pid_firsts[j / 50][j % 50] != a);
    }
    CHECK(kp_meta_broker_unregister(s, err, sizeof(err)) == 0);
    /* the watch saw every kind of record change, starting with a resync */
    for (int i = 0; i < 100 && !seen(KP_META_CH_BROKER, NULL, -1, 1); i++) usleep(50000);
    CHECK(nseen > 0 && seen_kind[0] == KP_META_CH_RESYNC);
    CHECK(seen(KP_META_CH_TOPIC, "orders", -1, 0));
    CHECK(seen(KP_META_CH_PARTITION, "orders", 4, 0));
    CHECK(seen(KP_META_CH_PARTITION, "big", 299, 0));
    CHECK(seen(KP_META_CH_TOPIC, "orders", -1, 1));
    CHECK(seen(KP_META_CH_PARTITION, "orders", 1, 1));
    CHECK(seen(KP_META_CH_BROKER, NULL, -1, 0));
    CHECK(seen(KP_META_CH_BROKER, NULL, -1, 1)); /* the session ended */
    CHECK(seen(KP_META_CH_CONTROLLER, NULL, -1, 0));
    CHECK(seen(KP_META_CH_ACL, NULL, -1, 0));
    CHECK(seen(KP_META_CH_ACL, NULL, -1, 1));
    CHECK(seen(KP_META_CH_PRODUCER_IDS, NULL, -1, 0));
    kp_meta_close(s);
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: etcd_driver ENDPOINTS COMMAND ARGS...\n");
        return 1;
    }
    const char *ep = argv[1], *cmd = argv[2];
    char line[256];
    int rc;
    if (!strcmp(cmd, "meta-selftest") && argc == 4) return selftest(ep, argv[3]);
    if (!strcmp(cmd, "register") && argc == 6) {
        kp_meta_store_t *s = meta(ep, argv[3], atoi(argv[4]));
        do_register(s, atoi(argv[4]), atoi(argv[5]));
        printf("registered\n");
        int r = hold(s, 500, line, sizeof(line));
        if (r < 0) kp_meta_broker_unregister(s, err, sizeof(err));
        kp_meta_close(s);
        return 0;
    }
    if (!strcmp(cmd, "brokers") && argc == 4) {
        kp_meta_store_t *s = meta(ep, argv[3], 0);
        kp_meta_broker_t *b;
        int n;
        if ((rc = kp_meta_brokers_list(s, &b, &n, err, sizeof(err)))) die(rc);
        for (int i = 0; i < n; i++) printf("broker %d %s\n", b[i].id, b[i].rack ? b[i].rack : "-");
        printf("end\n");
        kp_meta_brokers_free(b, n);
        kp_meta_close(s);
        return 0;
    }
    if (!strcmp(cmd, "campaign") && argc == 6) {
        int32_t id = atoi(argv[4]);
        kp_meta_store_t *s = meta(ep, argv[3], id);
        do_register(s, id, atoi(argv[5]));
        int64_t epoch;
        for (;;) {
            rc = kp_meta_controller_campaign(s, 1000, &epoch, err, sizeof(err));
            if (rc == 0) break;
            if (rc != KP_META_ETIMEDOUT) die(rc);
            if ((rc = kp_meta_broker_keepalive(s, err, sizeof(err)))) die(rc);
        }
        printf("leader %d %lld\n", id, (long long)epoch);
        int r;
        while ((r = hold(s, 500, line, sizeof(line))) > 0 && strcmp(line, "revoke") != 0) {
        }
        kp_meta_broker_unregister(s, err, sizeof(err));
        kp_meta_close(s);
        return 0;
    }
    if (!strcmp(cmd, "controller") && argc == 4) {
        kp_meta_store_t *s = meta(ep, argv[3], 0);
        int32_t id;
        int64_t epoch;
        rc = kp_meta_controller_get(s, &id, &epoch, err, sizeof(err));
        if (rc == KP_META_ENOTFOUND)
            printf("none\n");
        else if (rc)
            die(rc);
        else
            printf("controller %d %lld\n", id, (long long)epoch);
        kp_meta_close(s);
        return 0;
    }
    if (!strcmp(cmd, "claim") && argc == 5) {
        kp_meta_store_t *s = meta(ep, argv[3], 0);
        char id[128];
        rc = kp_meta_cluster_claim(s, argv[4], id, sizeof(id), err, sizeof(err));
        kp_meta_close(s);
        if (rc == KP_META_ECLUSTER) {
            printf("mismatch %s\n", err);
            return 3;
        }
        if (rc) die(rc);
        printf("cluster %s\n", id);
        return 0;
    }
    kp_etcd_t *e = kp_etcd_open(ep, 3000, err, sizeof(err));
    if (!e) die(-100);
    if (!strcmp(cmd, "put") && argc == 5) {
        int64_t rev;
        if ((rc = kp_etcd_put(e, argv[3], argv[4], strlen(argv[4]), 0, &rev, err, sizeof(err))))
            die(rc);
        printf("ok %lld\n", (long long)rev);
    } else if (!strcmp(cmd, "get") && argc == 4) {
        kp_etcd_kv_t kv;
        rc = kp_etcd_get(e, argv[3], &kv, err, sizeof(err));
        if (rc == KP_ETCD_ENOTFOUND)
            printf("notfound\n");
        else if (rc)
            die(rc);
        else
            printf("value %s %lld\n", kv.value, (long long)kv.mod_revision);
        kp_etcd_kv_free(&kv);
    } else if (!strcmp(cmd, "getn") && argc == 5) {
        for (int i = 0; i < atoi(argv[4]); i++) {
            kp_etcd_kv_t kv;
            rc = kp_etcd_get(e, argv[3], &kv, err, sizeof(err));
            if (rc == KP_ETCD_ENOTFOUND)
                printf("notfound\n");
            else if (rc)
                printf("error %d %s\n", rc, err);
            else
                printf("value %s %lld\n", kv.value, (long long)kv.mod_revision);
            kp_etcd_kv_free(&kv);
        }
    } else if (!strcmp(cmd, "watchn") && argc == 5) {
        kp_etcd_watch_t *w = kp_etcd_watch_start(e, argv[3], 0, on_event, NULL, err, sizeof(err));
        if (!w) die(-100);
        sleep((unsigned)atoi(argv[4]));
        kp_etcd_watch_stats_t st;
        kp_etcd_watch_stats(w, &st);
        kp_etcd_watch_stop(w);
        printf("stats %lld %lld %lld\n", (long long)st.reconnects, (long long)st.resets,
               (long long)st.events);
    } else if (!strcmp(cmd, "cas") && argc == 6) {
        int64_t rev;
        kp_etcd_kv_t cur;
        rc = kp_etcd_cas(e, argv[3], argv[4], strlen(argv[4]), atoll(argv[5]), 0, &rev, &cur, err,
                         sizeof(err));
        if (rc == KP_ETCD_ECONFLICT)
            printf("conflict %lld\n", (long long)cur.mod_revision);
        else if (rc)
            die(rc);
        else
            printf("ok %lld\n", (long long)rev);
        kp_etcd_kv_free(&cur);
    } else if (!strcmp(cmd, "lease") && argc == 4) {
        int64_t id, ttl;
        if ((rc = kp_etcd_lease_grant(e, atoll(argv[3]), &id, &ttl, err, sizeof(err)))) die(rc);
        printf("lease %llx %lld\n", (unsigned long long)id, (long long)ttl);
    } else if (!strcmp(cmd, "keepalive") && argc == 4) {
        int64_t ttl;
        rc = kp_etcd_lease_keepalive(e, (int64_t)strtoull(argv[3], NULL, 16), &ttl, err,
                                     sizeof(err));
        if (rc == KP_ETCD_ENOTFOUND)
            printf("expired\n");
        else if (rc)
            die(rc);
        else
            printf("ttl %lld\n", (long long)ttl);
    } else if (!strcmp(cmd, "watch") && (argc == 4 || argc == 5)) {
        kp_etcd_watch_t *w = kp_etcd_watch_start(e, argv[3], argc == 5 ? atoll(argv[4]) : 0,
                                                 on_event, NULL, err, sizeof(err));
        if (!w) die(-100);
        while (stdin_line(line, sizeof(line), 200) >= 0) {
        }
        kp_etcd_watch_stats_t st;
        kp_etcd_watch_stats(w, &st);
        kp_etcd_watch_stop(w);
        printf("stats %lld %lld\n", (long long)st.reconnects, (long long)st.resets);
    } else {
        fprintf(stderr, "etcd_driver: unknown command or wrong arguments: %s\n", cmd);
        kp_etcd_close(e);
        return 1;
    }
    kp_etcd_close(e);
    return 0;
}
