/*
 * up_pool.c — `kpool up --brokers N`: the processes of a replicated dev pool (SPEC §11,
 * docs/replication.md). etcd (Debian's etcd-server) runs as a child with its data under
 * <data>/etcd; broker 1 is the `kpool up` process itself; brokers 2..N are `kpool broker`
 * children with their data under <data>/broker-K and their logs in <data>/broker-K.log.
 * Ports: etcd 2379+offset (peer 2380+offset); broker K's Kafka listener 9093+offset+10(K-1)
 * and its health/metrics 9600+offset+10(K-1). Brokers replicate over their SSL listeners
 * with the pool CA's `kpool-replica` client certificate (a super user).
 */
#include "daemon/up_pool.h"

#include "cluster/etcd.h"
#include "core/logging.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a broker's controlled shutdown may take before it is killed. */
#define UP_BROKER_STOP_MS 60000
/* How long a broker may take to open its health port when it starts. */
#define UP_BROKER_START_MS 60000

/* How broker k (2..N) was started: what restarting it runs again. */
typedef struct up_child {
    char **argv; /* owned, NULL-terminated */
    char log[PATH_MAX + 32];
} up_child_t;

struct kp_up_pool {
    pid_t etcd;
    pid_t brokers[KP_UP_BROKERS_MAX];
    up_child_t child[KP_UP_BROKERS_MAX];
    int nbrokers, offset;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Starts argv with stdout and stderr appended to log. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* `kpool up` blocks SIGTERM for sigwait */
    execvp(argv[0], argv);
    fprintf(stderr, "kpool up: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static int alive(pid_t pid)
{
    return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

/* Whether child broker k still runs; one that exited is reaped and forgotten (its pid may
 * be reused: nothing is sent to it any more). */
static int child_alive(kp_up_pool_t *up, int k)
{
    if (alive(up->brokers[k - 2])) return 1;
    up->brokers[k - 2] = 0;
    return 0;
}

static void stop_child(pid_t pid, int timeout_ms)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int t = 0; t < timeout_ms; t += 50) {
        if (waitpid(pid, NULL, WNOHANG) != 0) return;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int kp_up_pool_etcd(kp_up_pool_t *up, const char *abs, int offset, char *endpoint, size_t n,
                    char *err, size_t errlen)
{
    char dir[PATH_MAX], log[PATH_MAX], client[64], peer[64], cluster[96];
    snprintf(dir, sizeof(dir), "%s/etcd", abs);
    snprintf(log, sizeof(log), "%s/etcd.log", abs);
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", 2379 + offset);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", 2380 + offset);
    snprintf(cluster, sizeof(cluster), "kpool=%s", peer);
    char *argv[] = {"etcd",  "--name",
                    "kpool", "--data-dir",
                    dir,     "--listen-client-urls",
                    client,  "--advertise-client-urls",
                    client,  "--listen-peer-urls",
                    peer,    "--initial-advertise-peer-urls",
                    peer,    "--initial-cluster",
                    cluster, NULL};
    up->etcd = spawn(argv, log);
    if (up->etcd < 0) {
        snprintf(err, errlen, "cannot start etcd: %s", strerror(errno));
        return -1;
    }
    snprintf(endpoint, n, "%s", client);
    kp_etcd_t *e = kp_etcd_open(client, 1000, err, errlen);
    if (!e) return -1;
    for (int t = 0; t < 300; t++) {
        kp_etcd_kv_t kv;
        char e2[256];
        int rc = kp_etcd_get(e, "/kpool/.up-probe", &kv, e2, sizeof(e2));
        if (rc == 0) kp_etcd_kv_free(&kv);
        if (rc == 0 || rc == KP_ETCD_ENOTFOUND) {
            kp_etcd_close(e);
            return 0;
        }
        if (!alive(up->etcd)) break;
        sleep_ms(100);
    }
    kp_etcd_close(e);
    snprintf(err, errlen, "etcd did not start (is etcd-server installed? see %s)", log);
    return -1;
}

/* Waits until child broker k's health port answers. 0, or -1 with err. */
static int wait_started(kp_up_pool_t *up, int k, char *err, size_t errlen)
{
    int port = kp_up_pool_admin_port(up->offset, k);
    for (int t = 0; !port_open(port); t += 100) {
        if (!child_alive(up, k)) {
            snprintf(err, errlen, "broker %d exited at start (see %s)", k, up->child[k - 2].log);
            return -1;
        }
        if (t >= UP_BROKER_START_MS) {
            snprintf(err, errlen, "broker %d did not start (see %s)", k, up->child[k - 2].log);
            return -1;
        }
        sleep_ms(100);
    }
    return 0;
}

int kp_up_pool_admin_port(int offset, int k)
{
    return KP_UP_PORT_METRICS + offset + 10 * (k - 1);
}

int kp_up_pool_brokers(kp_up_pool_t *up, const char *abs, int offset, int n,
                       const kp_props_t *props, char *bootstrap, size_t blen, char *err,
                       size_t errlen)
{
    char exe[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (el <= 0) {
        snprintf(err, errlen, "cannot find the kpool executable");
        return -1;
    }
    exe[el] = 0;
    up->offset = offset;
    size_t off = (size_t)snprintf(bootstrap, blen, "127.0.0.1:%d", KP_UP_PORT_KAFKA + offset);
    for (int k = 2; k <= n && k - 2 < KP_UP_BROKERS_MAX; k++) {
        int port = KP_UP_PORT_KAFKA + offset + 10 * (k - 1),
            admin = kp_up_pool_admin_port(offset, k);
        char over[4][PATH_MAX + 32];
        snprintf(over[0], sizeof(over[0]), "broker.id=%d", k);
        snprintf(over[1], sizeof(over[1]), "listeners=SSL://127.0.0.1:%d", port);
        snprintf(over[2], sizeof(over[2]), "admin.listener=127.0.0.1:%d", admin);
        snprintf(over[3], sizeof(over[3]), "log.dirs=%s/broker-%d", abs, k);
        static const char *const skip[] = {"broker.id",           "node.id",  "listeners",
                                           "admin.listener",      "log.dirs", "log.dir",
                                           "advertised.listeners"};
        size_t np = kp_props_count(props);
        char **argv = calloc(2 * np + 16, sizeof(char *));
        char **kv = calloc(np + 1, sizeof(char *));
        if (!argv || !kv) {
            free(argv);
            free(kv);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int a = 0, nkv = 0;
        argv[a++] = exe;
        argv[a++] = "broker";
        for (size_t i = 0; i < np; i++) {
            const char *key, *val;
            kp_props_at(props, i, &key, &val);
            int drop = !strncmp(key, "control.", 8) || !strncmp(key, "registry.", 9);
            for (size_t s = 0; s < sizeof(skip) / sizeof(skip[0]) && !drop; s++)
                drop = !strcmp(key, skip[s]);
            if (drop) continue;
            size_t l = strlen(key) + strlen(val) + 2;
            kv[nkv] = malloc(l);
            if (!kv[nkv]) continue;
            snprintf(kv[nkv], l, "%s=%s", key, val);
            argv[a++] = "--set";
            argv[a++] = kv[nkv++];
        }
        for (int i = 0; i < 4; i++) {
            argv[a++] = "--set";
            argv[a++] = over[i];
        }
        up_child_t *ch = &up->child[up->nbrokers];
        snprintf(ch->log, sizeof(ch->log), "%s/broker-%d.log", abs, k);
        ch->argv = argv; /* kept, with copies of what it points to, for a restart */
        for (int i = 0; i < a; i++) argv[i] = strdup(argv[i]);
        for (int i = 0; i < nkv; i++) free(kv[i]);
        free(kv);
        pid_t pid = spawn(argv, ch->log);
        if (pid < 0) {
            snprintf(err, errlen, "cannot start broker %d: %s", k, strerror(errno));
            return -1;
        }
        up->brokers[up->nbrokers++] = pid;
        if (off < blen) off += (size_t)snprintf(bootstrap + off, blen - off, ",127.0.0.1:%d", port);
    }
    for (int k = 2; k <= n; k++) /* ready once its health port answers (plain HTTP) */
        if (wait_started(up, k, err, errlen) < 0) return -1;
    return 0;
}

int kp_up_pool_restart(kp_up_pool_t *up, int k, char *err, size_t errlen)
{
    if (!up || k < 2 || k - 2 >= up->nbrokers) {
        snprintf(err, errlen, "no broker %d runs as a child of kpool up", k);
        return -1;
    }
    kp_info("up", "restarting broker %d", k);
    if (child_alive(up, k)) stop_child(up->brokers[k - 2], UP_BROKER_STOP_MS); /* controlled */
    up->brokers[k - 2] = spawn(up->child[k - 2].argv, up->child[k - 2].log);
    if (up->brokers[k - 2] < 0) {
        snprintf(err, errlen, "cannot start broker %d: %s", k, strerror(errno));
        return -1;
    }
    return wait_started(up, k, err, errlen);
}

int kp_up_pool_ready(kp_up_pool_t *up, int k)
{
    if (!up || k < 2 || k - 2 >= up->nbrokers || !child_alive(up, k)) return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)kp_up_pool_admin_port(up->offset, k))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {2, 0};
    char buf[64] = "";
    const char req[] = "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
        connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1) {
        size_t n = 0;
        for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0;)
            n += (size_t)r;
        buf[n] = 0;
    }
    if (fd >= 0) close(fd);
    /* "HTTP/1.x 200 ..." */
    return !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200", 4);
}

kp_up_pool_t *kp_up_pool_new(void)
{
    return calloc(1, sizeof(kp_up_pool_t));
}

void kp_up_pool_stop_brokers(kp_up_pool_t *up)
{
    if (!up) return;
    for (int i = 0; i < up->nbrokers; i++)
        if (up->brokers[i] > 0) kill(up->brokers[i], SIGTERM);
    for (int i = 0; i < up->nbrokers; i++) stop_child(up->brokers[i], 30000);
    up->nbrokers = 0;
}

void kp_up_pool_free(kp_up_pool_t *up)
{
    if (!up) return;
    kp_up_pool_stop_brokers(up);
    for (int i = 0; i < KP_UP_BROKERS_MAX; i++) {
        for (char **a = up->child[i].argv; a && *a; a++) free(*a);
        free(up->child[i].argv);
    }
    stop_child(up->etcd, 15000);
    free(up);
}
