/*
 * cmd_pool.c — `kpool pool status|add-broker|decommission|rebalance|elect-leaders|restart`:
 * operating a replicated pool through its brokers' Kafka protocol (pool_client.h), with plans from
 * pool_plan.h; restart asks the `kpool up` that runs the brokers (up_ctl.h). Moves are KIP-455
 * reassignments (the controller completes each once its new replicas are in the ISR); leaders move
 * by preferred-leader election (ElectLeaders).
 *
 * Exit codes: 0 done (or, for status, a healthy pool), 1 a failure or an unhealthy pool
 * (under-replicated or offline partitions), 2 a usage error.
 */
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/pool_client.h"
#include "cli/pool_plan.h"
#include "daemon/up_ctl.h"

#include "core/clock.h"
#include "core/fs.h"
#include "core/yamljson.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often a waiting command looks at the pool again. */
#define POLL_MS 1000

typedef struct pool_opts {
    const char *bootstrap;
    const char *ca, *cert, *key;
    const char *output;
    const char *data_dir;
    long timeout_ms;
    int dry_run, rolling;
} pool_opts_t;

static const kp_option_t pool_options[] = {
    KP_OPT_NONEMPTY('b', "bootstrap", pool_opts_t, bootstrap, "HOST:PORT[,...]",
                    "brokers of the pool [$KPOOL_BOOTSTRAP, else the CLI configuration's "
                    "pool.bootstrap, which kpool up writes]",
                    "--bootstrap needs HOST:PORT"),
    KP_OPT_NONEMPTY(0, "ca", pool_opts_t, ca, "FILE",
                    "TLS: the CA (PEM) that signed the brokers' certificates (no --ca: "
                    "PLAINTEXT, unless the bootstrap comes from the CLI configuration)",
                    "--ca needs a file"),
    KP_OPT_NONEMPTY(0, "cert", pool_opts_t, cert, "FILE",
                    "TLS: the client certificate (PEM) to present (with --key)",
                    "--cert needs a file"),
    KP_OPT_NONEMPTY(0, "key", pool_opts_t, key, "FILE", "TLS: the client certificate's key (PEM)",
                    "--key needs a file"),
    KP_OPT_STRING('o', "output", pool_opts_t, output, "json", "status: print JSON"),
    KP_OPT_BOOL(0, "dry-run", pool_opts_t, dry_run,
                "add-broker, decommission, rebalance: print the plan, move nothing"),
    KP_OPT_SECONDS(0, "timeout", pool_opts_t, timeout_ms, "SECS",
                   "add-broker, decommission, rebalance, restart: give up waiting after SECS "
                   "[600]",
                   86400),
    KP_OPT_BOOL(0, "rolling", pool_opts_t, rolling, "restart: every broker, one after another"),
    KP_OPT_NONEMPTY(0, "data-dir", pool_opts_t, data_dir, "DIR",
                    "restart: the data directory of the kpool up --brokers N to restart "
                    "[./kpool-data]",
                    "--data-dir needs a directory"),
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_pool_cmd = {
    .name = "pool",
    .usage = "pool status [-o json] [CONNECTION]\n"
             "pool add-broker BROKER [--dry-run] [--timeout SECS] [CONNECTION]\n"
             "pool decommission BROKER [--dry-run] [--timeout SECS] [CONNECTION]\n"
             "pool rebalance [--dry-run] [--timeout SECS] [CONNECTION]\n"
             "pool elect-leaders [CONNECTION]\n"
             "pool restart --rolling|BROKER [--data-dir DIR] [--timeout SECS]",
    .description =
        "Operates a replicated pool through its brokers (docs/replication.md, \"Operating a\n"
        "pool\").\n"
        "\n"
        "CONNECTION: --bootstrap HOST:PORT [--ca FILE [--cert FILE --key FILE]] (no --ca:\n"
        "PLAINTEXT); none: the pool of the CLI configuration (kpool up writes its pool\n"
        "section: the brokers' SSL listeners, the pool CA, its admin client certificate).\n"
        "\n"
        "status         brokers (rack, address), replicas, leaders and disk use per broker;\n"
        "               under-replicated and offline partitions; moves in progress. Exit 1\n"
        "               when a partition is under-replicated or offline.\n"
        "add-broker     puts BROKER (started with the pool's etcd: it joined, holding\n"
        "               nothing) to work: moves replicas onto it only, from the fullest\n"
        "               brokers, and makes it the preferred leader of its share; prints\n"
        "               the moves and the bytes they copy, executes, waits, elects.\n"
        "decommission   moves every replica off BROKER (to the live brokers with the fewest\n"
        "               replicas, rack-aware), waits until it holds none and leads nothing:\n"
        "               the broker may then be stopped.\n"
        "rebalance      evens out replicas, then preferred leaders, across brokers (rack-\n"
        "               aware); prints the moves and the bytes they copy, executes them,\n"
        "               waits, then elects the preferred leaders.\n"
        "elect-leaders  preferred-leader election of every partition (ElectLeaders).\n"
        "restart        restarts the brokers of a `kpool up --brokers N` (every one with\n"
        "               --rolling, in turn): each waits until every broker is in the ISR\n"
        "               of every partition it follows, then the next goes.\n",
    .options = pool_options,
};

/* The CLI configuration's `pool:` section (kpool up writes it: bootstrap, ca, certificate,
 * key), relative paths resolved against the file's directory. */
typedef struct pool_cfg {
    char bootstrap[4096], ca[4096], cert[4096], key[4096];
} pool_cfg_t;

static void cfg_path_of(const json_t *pool, const char *name, const char *dir, char *out, size_t n)
{
    const char *v = json_string_value(json_object_get(pool, name));
    if (!v || !*v) return;
    if (v[0] == '/' || !dir[0])
        snprintf(out, n, "%s", v);
    else
        snprintf(out, n, "%s/%s", dir, v);
}

/* 0 (cfg filled; bootstrap "" when the file or its pool section is absent), or -1 with err. */
static int pool_cfg_load(pool_cfg_t *cfg, char *err, size_t errlen)
{
    char path[4096], dir[4096], yerr[256];
    memset(cfg, 0, sizeof(*cfg));
    kp_client_config_path(path, sizeof(path));
    uint8_t *text;
    size_t len;
    if (kp_fs_read_all(path, KP_CLIENT_CONFIG_BYTES_MAX, &text, &len) < 0) return 0;
    json_t *doc = kp_yaml_parse_one((const char *)text, len, yerr, sizeof(yerr));
    explicit_bzero(text, len); /* the file holds the API token */
    free(text);
    if (!doc) {
        snprintf(err, errlen, "%s: invalid YAML: %s", path, yerr);
        return -1;
    }
    json_t *pool = json_object_get(doc, "pool");
    if (pool && !json_is_object(pool)) {
        snprintf(err, errlen, "%s: 'pool' must be a mapping (bootstrap, ca, certificate, key)",
                 path);
        json_decref(doc);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    const char *b = json_string_value(json_object_get(pool, "bootstrap"));
    if (b) snprintf(cfg->bootstrap, sizeof(cfg->bootstrap), "%s", b);
    cfg_path_of(pool, "ca", dir, cfg->ca, sizeof(cfg->ca));
    cfg_path_of(pool, "certificate", dir, cfg->cert, sizeof(cfg->cert));
    cfg_path_of(pool, "key", dir, cfg->key, sizeof(cfg->key));
    json_decref(doc);
    return 0;
}

/* Fills t from the flags, $KPOOL_BOOTSTRAP, then the CLI configuration (whose TLS files go
 * with its bootstrap only). 0, or an exit status after printing why. */
static int target_of(const pool_opts_t *o, pool_cfg_t *cfg, kp_poolc_target_t *t)
{
    memset(t, 0, sizeof(*t));
    t->bootstrap = o->bootstrap;
    const char *env = getenv("KPOOL_BOOTSTRAP");
    if (!t->bootstrap && env && *env) t->bootstrap = env;
    if (!t->bootstrap) {
        char err[8400];
        if (pool_cfg_load(cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "kpool pool: %s\n", err);
            return 1;
        }
        if (!cfg->bootstrap[0])
            return kp_opts_error("pool", "--bootstrap HOST:PORT is required (or "
                                         "$KPOOL_BOOTSTRAP, or a CLI configuration written "
                                         "by kpool up)");
        t->bootstrap = cfg->bootstrap;
        t->ca = cfg->ca[0] ? cfg->ca : NULL;
        t->cert = cfg->cert[0] ? cfg->cert : NULL;
        t->key = cfg->key[0] ? cfg->key : NULL;
    }
    if (o->ca) t->ca = o->ca;
    if (o->cert) t->cert = o->cert;
    if (o->key) t->key = o->key;
    if (!o->cert != !o->key || !t->cert != !t->key)
        return kp_opts_error("pool", "--cert and --key go together");
    if (t->cert && !t->ca) return kp_opts_error("pool", "--cert needs --ca (TLS)");
    return 0;
}

static void human_bytes(int64_t n, char *out, size_t len)
{
    if (n < 0) {
        snprintf(out, len, "?");
        return;
    }
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void ids_text(const int32_t *ids, int n, char *out, size_t len)
{
    size_t off = 0;
    out[0] = 0;
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%d", i ? "," : "", ids[i]);
}

static int holds(const kp_poolc_part_t *p, int32_t id)
{
    for (int r = 0; r < p->nreplicas; r++)
        if (p->replicas[r] == id) return 1;
    return 0;
}

static json_t *ids_json(const int32_t *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static int status_print(const kp_poolc_snapshot_t *s, int json)
{
    int under = 0, offline = 0, dirs = 0;
    for (int i = 0; i < s->nparts; i++) {
        offline += s->parts[i].leader < 0;
        under += s->parts[i].nisr < s->parts[i].nreplicas;
    }
    for (int b = 0; b < s->nbrokers; b++) dirs += s->brokers[b].offline_dir[0] != 0;
    if (json) {
        json_t *o = json_object(), *bs = json_array(), *ur = json_array(), *off = json_array();
        for (int b = 0; b < s->nbrokers; b++) {
            int reps = 0, leads = 0;
            for (int i = 0; i < s->nparts; i++) {
                reps += holds(&s->parts[i], s->brokers[b].id);
                leads += s->parts[i].leader == s->brokers[b].id;
            }
            json_array_append_new(
                bs, json_pack("{s:i,s:s,s:s,s:i,s:i,s:i,s:I}", "id", s->brokers[b].id, "rack",
                              s->brokers[b].rack, "host", s->brokers[b].host, "port",
                              s->brokers[b].port, "replicas", reps, "leaders", leads, "disk_bytes",
                              (json_int_t)s->brokers[b].disk_bytes));
            if (s->brokers[b].offline_dir[0])
                json_object_set_new(json_array_get(bs, json_array_size(bs) - 1), "offline_log_dir",
                                    json_string(s->brokers[b].offline_dir));
        }
        for (int i = 0; i < s->nparts; i++) {
            const kp_poolc_part_t *p = &s->parts[i];
            json_t *e =
                json_pack("{s:s,s:i,s:i,s:o,s:o}", "topic", p->topic, "partition", p->partition,
                          "leader", p->leader, "replicas", ids_json(p->replicas, p->nreplicas),
                          "isr", ids_json(p->isr, p->nisr));
            if (p->leader < 0) json_array_append(off, e);
            if (p->nisr < p->nreplicas) json_array_append(ur, e);
            json_decref(e);
        }
        json_object_set_new(o, "controller", json_integer(s->controller));
        json_object_set_new(o, "brokers", bs);
        json_object_set_new(o, "partitions", json_integer(s->nparts));
        json_object_set_new(o, "under_replicated", ur);
        json_object_set_new(o, "offline", off);
        json_object_set_new(o, "moves_in_progress", json_integer(s->nmoving));
        char *text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(o);
        return under || offline || dirs ? 1 : 0;
    }
    printf("%d brokers, controller %d, %d partitions, %d under-replicated, %d offline, %d moves "
           "in progress\n\n",
           s->nbrokers, s->controller, s->nparts, under, offline, s->nmoving);
    printf("%-8s %-12s %-24s %9s %8s %12s\n", "BROKER", "RACK", "ADDRESS", "REPLICAS", "LEADERS",
           "DISK");
    for (int b = 0; b < s->nbrokers; b++) {
        int reps = 0, leads = 0;
        for (int i = 0; i < s->nparts; i++) {
            reps += holds(&s->parts[i], s->brokers[b].id);
            leads += s->parts[i].leader == s->brokers[b].id;
        }
        char addr[300], disk[32];
        snprintf(addr, sizeof(addr), "%s:%d", s->brokers[b].host, s->brokers[b].port);
        human_bytes(s->brokers[b].disk_bytes, disk, sizeof(disk));
        printf("%-8d %-12s %-24s %9d %8d %12s\n", s->brokers[b].id,
               s->brokers[b].rack[0] ? s->brokers[b].rack : "-", addr, reps, leads, disk);
    }
    for (int i = 0; i < s->nparts; i++) {
        const kp_poolc_part_t *p = &s->parts[i];
        if (p->leader >= 0 && p->nisr >= p->nreplicas) continue;
        char reps[800], isr[800];
        ids_text(p->replicas, p->nreplicas, reps, sizeof(reps));
        ids_text(p->isr, p->nisr, isr, sizeof(isr));
        printf("%s %s-%d: replicas [%s], in sync [%s]\n",
               p->leader < 0 ? "OFFLINE" : "UNDER-REPLICATED", p->topic, p->partition, reps, isr);
    }
    for (int b = 0; b < s->nbrokers; b++)
        if (s->brokers[b].offline_dir[0])
            printf("LOG DIR FAILED broker %d: %s (replace the disk and restart it)\n",
                   s->brokers[b].id, s->brokers[b].offline_dir);
    return under || offline || dirs ? 1 : 0;
}

static void plan_print(const kp_poolc_snapshot_t *s, const kp_plan_t *plan)
{
    for (int m = 0; m < plan->n; m++) {
        const kp_poolc_move_t *mv = &plan->moves[m];
        const kp_poolc_part_t *p = NULL;
        for (int i = 0; i < s->nparts && !p; i++)
            if (s->parts[i].partition == mv->partition && !strcmp(s->parts[i].topic, mv->topic))
                p = &s->parts[i];
        char from[800], to[800], size[32];
        ids_text(p ? p->replicas : NULL, p ? p->nreplicas : 0, from, sizeof(from));
        ids_text(mv->target, mv->ntarget, to, sizeof(to));
        human_bytes(p ? p->bytes : -1, size, sizeof(size));
        printf("move %s-%d: [%s] -> [%s] (%s)\n", mv->topic, mv->partition, from, to, size);
    }
    char total[32];
    human_bytes(plan->bytes, total, sizeof(total));
    printf("%d moves, %s to copy%s\n", plan->n, total,
           plan->unknown_bytes ? " (and moves of unknown size)" : "");
}

/* Waits until no move is in progress and done(s) holds. 0, or 1 after printing why not. */
static int wait_done(const pool_opts_t *o, const kp_poolc_target_t *target,
                     int (*done)(const kp_poolc_snapshot_t *s, int32_t arg), int32_t arg)
{
    int64_t until = kp_mono_ms() + o->timeout_ms;
    char err[512] = "";
    int left = -1;
    while (kp_mono_ms() < until) {
        kp_poolc_snapshot_t s;
        if (kp_poolc_snapshot(target, 10000, &s, err, sizeof(err)) == 0) {
            int ok = s.nmoving == 0 && done(&s, arg);
            if (left != s.nmoving) printf("%d moves in progress\n", s.nmoving);
            left = s.nmoving;
            kp_poolc_snapshot_free(&s);
            if (ok) return 0;
        }
        fflush(stdout);
        struct timespec ts = {POLL_MS / 1000, (POLL_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "kpool pool: timed out after %lds (%d moves in progress%s%s)\n",
            o->timeout_ms / 1000, left, err[0] ? "; last error: " : "", err);
    return 1;
}

static int broker_empty(const kp_poolc_snapshot_t *s, int32_t id)
{
    for (int i = 0; i < s->nparts; i++)
        if (holds(&s->parts[i], id) || s->parts[i].leader == id) return 0;
    return 1;
}

static int always(const kp_poolc_snapshot_t *s, int32_t arg)
{
    (void)s;
    (void)arg;
    return 1;
}

static int execute(const pool_opts_t *o, const kp_poolc_target_t *target,
                   const kp_poolc_snapshot_t *s, const kp_plan_t *plan)
{
    plan_print(s, plan);
    if (o->dry_run || plan->n == 0) return 0;
    char err[512];
    int refused = kp_poolc_alter(target, 30000, plan->moves, plan->n, err, sizeof(err));
    if (refused < 0) {
        fprintf(stderr, "kpool pool: %s\n", err);
        return 1;
    }
    if (refused > 0) fprintf(stderr, "kpool pool: %d moves refused (above)\n", refused);
    return refused > 0 ? 1 : 0;
}

static int elect(const kp_poolc_target_t *target)
{
    char err[512];
    int failed = 0;
    int n = kp_poolc_elect_preferred(target, 30000, &failed, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "kpool pool: %s\n", err);
        return 1;
    }
    printf("%d preferred leaders elected%s\n", n, failed ? " (some could not be: above)" : "");
    return 0;
}

/* ---- restart (kpool up --brokers N, through its control socket: up_ctl.h) ---- */

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether broker k is in the ISR of every partition it follows: 1, 0, or -1 with err. */
static int broker_ready(const char *sock, int k, char *err, size_t errlen)
{
    char req[32], reply[128];
    snprintf(req, sizeof(req), "ready %d", k);
    if (kp_up_ctl_call(sock, req, reply, sizeof(reply), 30000, err, errlen) < 0) return -1;
    if (!strcmp(reply, "ok 1")) return 1;
    if (!strcmp(reply, "ok 0")) return 0;
    snprintf(err, errlen, "kpool up: %s", reply);
    return -1;
}

/* Waits until every broker of ids (only[0] when only) is ready, up to until (monotonic). 0,
 * or 1 after printing which one is not. */
static int wait_ready(const char *sock, const int *ids, int n, int64_t until, const char *when)
{
    char err[512] = "";
    for (;;) {
        int behind = -1;
        for (int i = 0; i < n && behind < 0; i++) {
            int r = broker_ready(sock, ids[i], err, sizeof(err));
            if (r < 0) {
                fprintf(stderr, "kpool pool: %s\n", err);
                return 1;
            }
            if (!r) behind = ids[i];
        }
        if (behind < 0) return 0;
        if (kp_mono_ms() >= until) {
            fprintf(stderr,
                    "kpool pool: timed out %s: broker %d is still not in the ISR of every "
                    "partition it follows\n",
                    when, behind);
            return 1;
        }
        pause_ms(POLL_MS / 2);
    }
}

static int restart(const pool_opts_t *o, const char *broker)
{
    char sock[4096], reply[512], err[512];
    snprintf(sock, sizeof(sock), "%s/up.sock", o->data_dir ? o->data_dir : "./kpool-data");
    if (kp_up_ctl_call(sock, "brokers", reply, sizeof(reply), 30000, err, sizeof(err)) < 0) {
        fprintf(stderr,
                "kpool pool: %s (restart works on a kpool up --brokers N; see "
                "--data-dir)\n",
                err);
        return 1;
    }
    int ids[64], n = 0;
    for (char *tok = strncmp(reply, "ok", 2) ? NULL : strtok(reply + 2, " "); tok && n < 64;
         tok = strtok(NULL, " "))
        ids[n++] = atoi(tok);
    if (n == 0) {
        fprintf(stderr, "kpool pool: kpool up answered '%s'\n", reply);
        return 1;
    }
    int order[64], norder = 0;
    if (broker) {
        char *end;
        long id = strtol(broker, &end, 10);
        for (int i = 0; i < n && !*end && norder == 0; i++)
            if (ids[i] == id) order[norder++] = ids[i];
        if (norder == 0) {
            fprintf(stderr, "kpool pool: restart: '%s' is not a broker of this pool (it has",
                    broker);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, ")\n");
            return 2;
        }
    } else {
        memcpy(order, ids, sizeof(int) * (size_t)n);
        norder = n;
    }
    int64_t until = kp_mono_ms() + o->timeout_ms;
    for (int i = 0; i < norder; i++) {
        /* never take a broker down while another one is catching up: its partitions could
         * go under min.insync.replicas (or offline) */
        if (wait_ready(sock, ids, n, until, "before the next restart")) return 1;
        printf("restarting broker %d\n", order[i]);
        fflush(stdout);
        int64_t t0 = kp_mono_ms();
        char req[32];
        snprintf(req, sizeof(req), "restart %d", order[i]);
        long left = (long)(until - kp_mono_ms());
        if (kp_up_ctl_call(sock, req, reply, sizeof(reply), left > 1000 ? left : 1000, err,
                           sizeof(err)) < 0) {
            fprintf(stderr, "kpool pool: %s\n", err);
            return 1;
        }
        if (strcmp(reply, "ok")) {
            fprintf(stderr, "kpool pool: broker %d: kpool up: %s\n", order[i], reply);
            return 1;
        }
        if (wait_ready(sock, &order[i], 1, until, "waiting for the restarted broker")) return 1;
        printf("broker %d is back in every ISR (%.1f s)\n", order[i],
               (double)(kp_mono_ms() - t0) / 1000.0);
        fflush(stdout);
    }
    if (wait_ready(sock, ids, n, until, "at the end")) return 1;
    printf("restarted %d broker%s; every broker is in the ISR of every partition it follows\n",
           norder, norder == 1 ? "" : "s");
    return 0;
}

static int run(const pool_opts_t *o, const kp_poolc_target_t *target, char **args, int nargs)
{
    const char *verb = args[0];
    kp_poolc_snapshot_t s;
    char err[512];
    if (!strcmp(verb, "elect-leaders")) return elect(target);
    if (kp_poolc_snapshot(target, 10000, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool pool: %s\n", err);
        return 1;
    }
    int rc = 0;
    kp_plan_t plan = {0};
    if (!strcmp(verb, "status")) {
        rc = status_print(&s, o->output != NULL);
    } else if (!strcmp(verb, "add-broker")) {
        char *end;
        long id = strtol(args[1], &end, 10);
        if (*end || id < 0 || id > INT32_MAX) {
            kp_poolc_snapshot_free(&s);
            return kp_opts_error("pool", "add-broker: '%s' is not a broker id", args[1]);
        }
        if (kp_plan_add_broker(&s, (int32_t)id, &plan, err, sizeof(err)) < 0) {
            fprintf(stderr, "kpool pool: %s\n", err);
            rc = 1;
        } else {
            rc = execute(o, target, &s, &plan);
            if (!rc && !o->dry_run && plan.n > 0) rc = wait_done(o, target, always, 0);
            if (!rc && !o->dry_run) rc = elect(target);
        }
    } else if (!strcmp(verb, "decommission")) {
        char *end;
        long id = strtol(args[1], &end, 10);
        if (*end || id < 0 || id > INT32_MAX) {
            kp_poolc_snapshot_free(&s);
            return kp_opts_error("pool", "decommission: '%s' is not a broker id", args[1]);
        }
        if (kp_plan_decommission(&s, (int32_t)id, &plan, err, sizeof(err)) < 0) {
            fprintf(stderr, "kpool pool: %s\n", err);
            rc = 1;
        } else {
            rc = execute(o, target, &s, &plan);
            if (!rc && !o->dry_run) rc = wait_done(o, target, broker_empty, (int32_t)id);
            if (!rc && !o->dry_run)
                printf("broker %ld holds no replica and leads nothing: it may be stopped\n", id);
        }
    } else {
        kp_plan_rebalance(&s, &plan, err, sizeof(err));
        rc = execute(o, target, &s, &plan);
        if (!rc && !o->dry_run && plan.n > 0) rc = wait_done(o, target, always, 0);
        if (!rc && !o->dry_run) rc = elect(target);
    }
    (void)nargs;
    kp_plan_free(&plan);
    kp_poolc_snapshot_free(&s);
    return rc;
}

static int broker_id_ok(const char *s)
{
    char *end;
    long id = strtol(s, &end, 10);
    return *s && !*end && id >= 0 && id <= INT32_MAX;
}

int kp_cmd_pool(int argc, char **argv)
{
    pool_opts_t o = {.timeout_ms = 600000};
    char **args = NULL;
    int nargs = 0;
    int rc = kp_opts_parse(&kp_pool_cmd, &o, argc, argv, &args, &nargs);
    if (rc) goto out;
    signal(SIGPIPE, SIG_IGN); /* a broker closing a TLS connection is an error, not a kill */
    const char *verbs[] = {"status",        "decommission", "rebalance",
                           "elect-leaders", "restart",      "add-broker"};
    int known = 0;
    for (size_t i = 0; nargs > 0 && i < sizeof(verbs) / sizeof(verbs[0]); i++)
        known |= !strcmp(args[0], verbs[i]);
    int takes_broker =
        nargs > 0 && (!strcmp(args[0], "decommission") || !strcmp(args[0], "add-broker"));
    if (nargs == 0)
        rc = kp_opts_error("pool", "a subcommand is required: status, add-broker, decommission, "
                                   "rebalance, elect-leaders or restart");
    else if (!known)
        rc = kp_opts_error("pool", "unknown subcommand '%s'", args[0]);
    else if (!strcmp(args[0], "restart") && nargs != (o.rolling ? 1 : 2))
        rc = kp_opts_error("pool", o.rolling ? "restart --rolling takes no BROKER"
                                             : "restart takes --rolling or one BROKER id");
    else if (!strcmp(args[0], "restart"))
        rc = restart(&o, nargs > 1 ? args[1] : NULL);
    else if (nargs != takes_broker + 1)
        rc = kp_opts_error("pool", "%s takes %s", args[0],
                           takes_broker ? "one BROKER id" : "no argument");
    else if (takes_broker && !broker_id_ok(args[1]))
        rc = kp_opts_error("pool", "%s: '%s' is not a broker id", args[0], args[1]);
    else if (o.output && strcmp(o.output, "json"))
        rc = kp_opts_error("pool", "-o: only json is known, not '%s'", o.output);
    else {
        pool_cfg_t cfg;
        kp_poolc_target_t target;
        rc = target_of(&o, &cfg, &target);
        if (!rc) rc = run(&o, &target, args, nargs);
    }
out:
    free(args);
    return rc == KP_OPTS_HELP ? 0 : rc;
}
