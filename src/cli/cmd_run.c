/*
 * cmd_run.c — `kpool run -n NS --app APP -- CMD...`: runs a program the way the platform
 * runs a deployed application (SPEC §1, §4). The AivenApplication's current Secret is
 * materialized into a fresh private directory, every KAFKA_* text key becomes an
 * environment variable together with the five *_PATH variables, and CMD runs as kpool's
 * child: kpool forwards the signals it is sent, waits, removes the directory however CMD
 * ended (exit, signal, SIGKILL) and exits with CMD's status (128+N when a signal N ended it,
 * as shells report it).
 *
 * Where the directories live. Every user has one private base directory, 0700 and checked
 * to be theirs: $XDG_RUNTIME_DIR/kpool-run (a per-user tmpfs) when that is set, else
 * $TMPDIR/kpool-run-<uid> (or /tmp/kpool-run-<uid>). A run's directory <ns>-<app>-XXXXXX is
 * made in it and locked (flock on the directory) for as long as kpool run or CMD lives: CMD
 * inherits the locked descriptor. A kpool run that is itself killed with SIGKILL cannot
 * remove its directory; the next `kpool run` of the same user removes every directory in
 * the base whose lock nobody holds any more, i.e. whose kpool run and CMD are both gone.
 * Sweeping and creating happen under an exclusive lock on the base, so a directory being
 * made is never swept.
 *
 * Signals: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH and SIGALRM sent to
 * kpool by a process (kill, a supervisor) are passed on to CMD. The ones the terminal sends
 * (Ctrl-C, Ctrl-\, a resize) reach CMD directly, as it runs in kpool's process group, and
 * are not passed on a second time. Job control (Ctrl-Z) stops both, as for any pipeline.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit statuses when CMD cannot be started, as env(1) and POSIX shells use them. */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND   127
/* A status of 128+N says signal N ended CMD (what shells report). */
#define EXIT_SIGNAL_BASE 128
/* Directories looked at per sweep: stale ones beyond this wait for the next run. */
#define RUN_SWEEP_ENTRIES_MAX 4096
/* Open descriptors nftw may use while removing a directory tree. */
#define RUN_REMOVE_FDS_MAX 16

/* The signals passed on to CMD (SIGCHLD is waited for alongside them). */
static const int run_forwarded[] = {SIGHUP,  SIGINT,  SIGQUIT,  SIGTERM,
                                    SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM};

static void help_print(void)
{
    printf("Usage: kpool run -n NS --app APP [--] CMD [ARG...]\n"
           "\n"
           "Runs CMD with the Kafka credentials of application APP, as the platform runs a\n"
           "deployed application:\n"
           "  1. finds AivenApplication APP in NS and its current secret\n"
           "     (status.synchronizationSecretName; when there is none, the status conditions\n"
           "     say why);\n"
           "  2. writes the secret into a new private directory (mode 0700, files 0600):\n"
           "     kafka.crt, kafka.key, ca.crt, client.keystore.p12, client.truststore.jks,\n"
           "     under $XDG_RUNTIME_DIR/kpool-run when set, else $TMPDIR/kpool-run-UID (or\n"
           "     /tmp/kpool-run-UID);\n"
           "  3. sets every KAFKA_* text key of the secret as an environment variable\n"
           "     (KAFKA_BROKERS, KAFKA_CERTIFICATE, KAFKA_PRIVATE_KEY, KAFKA_CA,\n"
           "     KAFKA_CREDSTORE_PASSWORD, KAFKA_SCHEMA_REGISTRY*, ...; other keys are left\n"
           "     out, so a secret cannot set PATH or LD_PRELOAD) and KAFKA_CERTIFICATE_PATH,\n"
           "     KAFKA_PRIVATE_KEY_PATH, KAFKA_CA_PATH, KAFKA_KEYSTORE_PATH,\n"
           "     KAFKA_TRUSTSTORE_PATH;\n"
           "  4. runs CMD (looked up in $PATH) and waits for it; signals sent to kpool\n"
           "     (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM) are\n"
           "     passed on to CMD;\n"
           "  5. removes the directory when CMD ends, however it ends.\n"
           "\n"
           "If kpool run itself is killed with SIGKILL it cannot remove the directory: CMD\n"
           "keeps running with its files, and the next 'kpool run' of the same user removes\n"
           "the directory once CMD is gone too. CMD inherits one open descriptor (the locked\n"
           "directory) that marks it in use.\n"
           "Options after CMD belong to CMD; '--' before CMD is optional.\n"
           "\n"
           "Options:\n"
           "  -n, --namespace NS       namespace (the team) [the config's 'namespace']\n"
           "  -a, --app APP            the application whose credentials CMD gets\n");
    kp_app_help_connection(stdout);
    printf("\nExit status: CMD's, 128+N when signal N ended it; before CMD runs: 1 no\n"
           "credentials (the reason is printed), 2 invalid command line, 126 CMD cannot be\n"
           "executed, 127 CMD not found.\n");
}

/* ---- the private directories ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* what cannot be removed stays: nothing better to do */
    return 0;
}

/* Removes dir and everything in it (CMD may have added files), never following links. */
static void run_dir_remove(const char *dir)
{
    nftw(dir, remove_entry, RUN_REMOVE_FDS_MAX, FTW_DEPTH | FTW_PHYS);
}

/* Opens (creating it when missing) the user's base directory, and checks that it is a
 * directory of this user that nobody else can enter. Its path goes into base. The fd, or
 * -1 with err. */
static int run_base_open(char *base, size_t n, char *err, size_t errlen)
{
    const char *x = getenv("XDG_RUNTIME_DIR"), *t = getenv("TMPDIR");
    struct stat st;
    int r;
    if (x && x[0] == '/' && stat(x, &st) == 0 && S_ISDIR(st.st_mode) && access(x, W_OK | X_OK) == 0)
        r = snprintf(base, n, "%s/kpool-run", x);
    else
        r = snprintf(base, n, "%s/kpool-run-%u",
                     t && t[0] == '/' && access(t, W_OK | X_OK) == 0 ? t : "/tmp",
                     (unsigned)geteuid());
    if (r < 0 || (size_t)r >= n) {
        snprintf(err, errlen, "the directory for credentials would be too long a path");
        return -1;
    }
    if (mkdir(base, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", base, strerror(errno));
        return -1;
    }
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", base, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077)) {
        snprintf(err, errlen, "%s is not a private directory of yours (owner %u, mode %03o)", base,
                 (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    return fd;
}

/* Removes the directories of runs that are over (nobody holds their lock: their kpool run
 * was killed and their CMD is gone). @locks: the base's exclusive lock held. */
static void run_sweep(int basefd, const char *base)
{
    int dfd = dup(basefd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0) close(dfd);
        return;
    }
    struct dirent *e;
    for (int seen = 0; seen < RUN_SWEEP_ENTRIES_MAX && (e = readdir(d)); seen++) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int fd = openat(basefd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            char p[PATH_MAX];
            if ((size_t)snprintf(p, sizeof(p), "%s/%s", base, e->d_name) < sizeof(p))
                run_dir_remove(p);
        }
        close(fd);
    }
    closedir(d);
}

/* Makes this run's directory (path into dir) under the base, locked: the lock's descriptor
 * (not close-on-exec: CMD inherits it) into *lockfd. Stale directories are swept first.
 * -1 with err. */
static int run_dir_create(const char *ns, const char *app, char *dir, size_t dirlen, int *lockfd,
                          char *err, size_t errlen)
{
    char base[PATH_MAX - 128];
    int basefd = run_base_open(base, sizeof(base), err, errlen);
    if (basefd < 0) return -1;
    flock(basefd, LOCK_EX); /* advisory: without it a concurrent sweep is the only risk */
    run_sweep(basefd, base);
    /* ns and app are resource names (DNS characters); a '/' would still address another
     * directory, so the name part is sanitized before it is joined */
    char name[128];
    snprintf(name, sizeof(name), "%.40s-%.40s-XXXXXX", ns, app);
    for (char *p = name; *p; p++)
        if (*p == '/') *p = '_';
    snprintf(dir, dirlen, "%s/%s", base, name);
    int rc = -1;
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "cannot create a directory like %.3000s: %s", dir, strerror(errno));
    } else if ((*lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)) < 0 ||
               flock(*lockfd, LOCK_EX) < 0) {
        snprintf(err, errlen, "cannot lock %.3000s: %s", dir, strerror(errno));
        if (*lockfd >= 0) close(*lockfd);
        rmdir(dir);
    } else {
        rc = 0;
    }
    flock(basefd, LOCK_UN);
    close(basefd);
    return rc;
}

/* Materializes cr into a new directory (path written into dir, its lock into *lockfd) and
 * sets the environment. -1 after printing one line (nothing left behind). */
static int run_prepare(const kp_app_opts_t *o, const kp_app_creds_t *cr, const char *ns, char *dir,
                       size_t dirlen, int *lockfd)
{
    char err[4096];
    if (run_dir_create(ns, o->app, dir, dirlen, lockfd, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool run: %s\n", err);
        return -1;
    }
    kp_buf_t missing;
    kp_buf_init(&missing);
    int rc = kp_app_files_write(&cr->data, dir, &missing, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "kpool run: %s\n", err);
    else if (missing.len)
        fprintf(stderr, "kpool run: warning: secret %s has no %.*s\n", cr->secret_name,
                (int)missing.len, (const char *)missing.data);
    kp_buf_free(&missing);
    kp_app_env_t env;
    kp_app_env_build(&cr->data, dir, &env);
    for (size_t i = 0; i < env.n && rc == 0; i++) {
        if (setenv(env.names[i], env.values[i], 1) < 0) {
            fprintf(stderr, "kpool run: cannot set %s: %s\n", env.names[i], strerror(errno));
            rc = -1;
        }
    }
    kp_app_env_free(&env);
    if (rc < 0) {
        run_dir_remove(dir);
        close(*lockfd);
    }
    return rc;
}

/* ---- the child ---- */

/* In the child: the signal mask and SIGCHLD's disposition as kpool found them, then CMD.
 * An exec failure's errno goes to the parent through errfd. Never returns. */
static void run_child_exec(char **args, const sigset_t *mask, const struct sigaction *chld,
                           int errfd)
{
    sigaction(SIGCHLD, chld, NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    execvp(args[0], args);
    int e = errno;
    ssize_t w = write(errfd, &e, sizeof(e));
    (void)w;
    _exit(EXIT_CANNOT_EXEC);
}

/* Passes signals on and waits for the child. Its wait status. */
static int run_child_wait(pid_t pid, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0) continue; /* EINTR (a stop and continue) */
        if (sig != SIGCHLD) {
            /* from a process (SI_USER, SI_QUEUE, ...: codes <= 0) and not from CMD itself;
             * the terminal's signals (SI_KERNEL) went to CMD's process group already */
            if (si.si_code <= 0 && si.si_pid != pid) kill(pid, sig);
            continue;
        }
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return 0; /* cannot happen: pid is our child */
    }
}

/* Runs args as a child and waits for it. The exit status kpool should return: CMD's,
 * 128+N for signal N, 126/127 when it could not be started (one line printed). */
static int run_child(char **args)
{
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(run_forwarded) / sizeof(*run_forwarded); i++)
        sigaddset(&set, run_forwarded[i]);
    sigaddset(&set, SIGCHLD);
    /* SIGCHLD ignored (inherited) would reap CMD behind our back: the default (which is to
     * discard it, but lets sigwaitinfo see it while blocked) until CMD is gone */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, chld;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, &chld);
    sigprocmask(SIG_BLOCK, &set, &old); /* blocked before fork: none is lost */
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        fprintf(stderr, "kpool run: cannot run %s: %s\n", args[0], strerror(errno));
        return EXIT_CANNOT_EXEC;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) run_child_exec(args, &old, &chld, pipefd[1]);
    close(pipefd[1]);
    if (pid < 0) {
        fprintf(stderr, "kpool run: cannot run %s: %s\n", args[0], strerror(errno));
        close(pipefd[0]);
        return EXIT_CANNOT_EXEC;
    }
    int e = 0;
    ssize_t n;
    do n = read(pipefd[0], &e, sizeof(e)); /* EOF: exec succeeded */
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    int status = run_child_wait(pid, &set);
    if (n == (ssize_t)sizeof(e)) {
        fprintf(stderr, "kpool run: cannot run %s: %s\n", args[0], strerror(e));
        return e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
    }
    if (WIFSIGNALED(status)) return EXIT_SIGNAL_BASE + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CANNOT_EXEC;
}

int kp_cmd_run(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, "run", KP_APP_CMD_RUN, argc, argv, 1);
    if (!rc && o.help)
        help_print();
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && !o.nargs)
        rc = kp_app_usage_error(&o, "which command? kpool run --app APP -- CMD [ARG...]");
    if (rc || o.help) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    char err[4096], dir[PATH_MAX];
    int lockfd = -1;
    const char *ns = kp_app_namespace(&o, c);
    kp_app_creds_t cr;
    if (kp_app_creds_load(c, ns, o.app, &cr, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool run: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else if (run_prepare(&o, &cr, ns, dir, sizeof(dir), &lockfd) < 0) {
        rc = KP_APP_EXIT_FAIL;
    }
    /* ns points into the client: done with it before the client goes */
    kp_app_creds_free(&cr);
    kp_client_free(c);
    if (rc) goto out;
    rc = run_child(o.args);
    run_dir_remove(dir);
    close(lockfd);
out:
    kp_app_opts_free(&o);
    return rc;
}
