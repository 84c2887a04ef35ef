/*
 * app_session.c — the shared steps of the application-facing commands (see app.h):
 * options · the API (client, objects, Topics, an app's credentials, topic names) · private
 * directories and files (writing a secret's, reading a credentials file).
 */
#include "cli/app.h"
#include "cli/opts.h"
#include "cli/resources.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ---- */

enum {
    OPT_NS,
    OPT_APP,
    OPT_TOPIC,
    OPT_KEY,
    OPT_KEY_DELIM,
    OPT_GROUP,
    OPT_FROM_BEGINNING,
    OPT_COUNT,
    OPT_TIMEOUT,
    OPT_FORMAT,
    OPT_ACCESS,
    OPT_NO_CONNECT,
    OPT_FROM_ENV,
    OPT_SERVER,
    OPT_TOKEN,
    OPT_REQUEST_TIMEOUT,
    OPT_HELP
};

#define CMDS_ALL                                                                                   \
    (KP_APP_CMD_SECRET | KP_APP_CMD_RUN | KP_APP_CMD_PROBE | KP_APP_CMD_DOCTOR |                   \
     KP_APP_CMD_PRODUCE | KP_APP_CMD_CONSUME)
#define CMDS_KAFKA (KP_APP_CMD_PRODUCE | KP_APP_CMD_CONSUME)

static const kp_optdef_t optdefs[] = {
    {'n', "namespace", 1, OPT_NS, CMDS_ALL},
    {'a', "app", 1, OPT_APP, CMDS_ALL},
    {'t', "topic", 1, OPT_TOPIC, CMDS_KAFKA | KP_APP_CMD_DOCTOR | KP_APP_CMD_PROBE},
    {'k', "key", 1, OPT_KEY, KP_APP_CMD_PRODUCE},
    {'K', "key-delim", 1, OPT_KEY_DELIM, KP_APP_CMD_PRODUCE},
    {'g', "group", 1, OPT_GROUP, KP_APP_CMD_CONSUME},
    {0, "from-beginning", 0, OPT_FROM_BEGINNING, KP_APP_CMD_CONSUME},
    {'c', "count", 1, OPT_COUNT, KP_APP_CMD_CONSUME},
    {0, "timeout", 1, OPT_TIMEOUT,
     KP_APP_CMD_PROBE | KP_APP_CMD_DOCTOR | KP_APP_CMD_PRODUCE | KP_APP_CMD_CONSUME},
    {'f', "format", 1, OPT_FORMAT, KP_APP_CMD_CONSUME},
    {0, "access", 1, OPT_ACCESS, KP_APP_CMD_DOCTOR},
    {0, "no-connect", 0, OPT_NO_CONNECT, KP_APP_CMD_DOCTOR},
    {0, "from-env", 0, OPT_FROM_ENV, KP_APP_CMD_PROBE},
    {0, "server", 1, OPT_SERVER, CMDS_ALL},
    {0, "token", 1, OPT_TOKEN, CMDS_ALL},
    {0, "request-timeout", 1, OPT_REQUEST_TIMEOUT, CMDS_ALL},
    {'h', "help", 0, OPT_HELP, CMDS_ALL},
};

int kp_app_usage_error(const kp_app_opts_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kpool %s: ", o->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'kpool %s --help')\n", o->cmd);
    va_end(ap);
    return KP_APP_EXIT_USAGE;
}

/* Seconds, optionally with an "s" suffix ("30", "30s"). */
/* One delimiter character: "x", or the escapes "\t" and "\n". */
static int parse_delim(const char *s)
{
    if (!strcmp(s, "\\t")) return '\t';
    if (s[0] && !s[1] && s[0] != '\n') return (unsigned char)s[0];
    return -1;
}

static int opt_apply(kp_app_opts_t *o, const kp_optdef_t *d, const char *val)
{
    char *end;
    switch (d->id) {
    case OPT_NS:
        if (!*val) return kp_app_usage_error(o, "-n needs a namespace");
        o->ns = val;
        break;
    case OPT_APP:
        if (!*val) return kp_app_usage_error(o, "--app needs an application name");
        o->app = val;
        break;
    case OPT_TOPIC:
        if (!*val) return kp_app_usage_error(o, "--topic needs a topic name");
        o->topic = val;
        o->topics[o->ntopics++] = val;
        break;
    case OPT_KEY:
        o->key = val;
        break;
    case OPT_KEY_DELIM:
        o->key_delim = parse_delim(val);
        if (o->key_delim < 0)
            return kp_app_usage_error(o, "--key-delim takes one character (or \\t), not '%s'", val);
        break;
    case OPT_GROUP:
        if (!*val) return kp_app_usage_error(o, "--group needs a group id");
        o->group = val;
        break;
    case OPT_FROM_BEGINNING:
        o->from_beginning = 1;
        break;
    case OPT_COUNT:
        errno = 0;
        o->count = strtol(val, &end, 10);
        if (errno || end == val || *end || o->count <= 0)
            return kp_app_usage_error(o, "-c '%s' is not a positive number of messages", val);
        break;
    case OPT_TIMEOUT:
        if (kp_opt_seconds(val, KP_APP_TIMEOUT_S_MAX, &o->timeout_ms) < 0)
            return kp_app_usage_error(o, "--timeout '%s' is not a number of seconds (1-%d)", val,
                                      KP_APP_TIMEOUT_S_MAX);
        break;
    case OPT_FORMAT:
        o->format = val;
        break;
    case OPT_ACCESS:
        if (!kp_app_access_parse(val))
            return kp_app_usage_error(o, "--access '%s': read, write or readwrite", val);
        o->access = val;
        break;
    case OPT_NO_CONNECT:
        o->no_connect = 1;
        break;
    case OPT_FROM_ENV:
        o->from_env = 1;
        break;
    case OPT_SERVER:
        o->client.server = val;
        break;
    case OPT_TOKEN:
        o->client.token = val;
        break;
    case OPT_REQUEST_TIMEOUT:
        if (kp_opt_seconds(val, KP_APP_TIMEOUT_S_MAX, &o->client.timeout_ms) < 0)
            return kp_app_usage_error(o, "--request-timeout '%s' is not a number of seconds (1-%d)",
                                      val, KP_APP_TIMEOUT_S_MAX);
        break;
    case OPT_HELP:
        o->help = 1;
        break;
    }
    return 0;
}

int kp_app_opts_parse(kp_app_opts_t *o, const char *cmd, unsigned cmd_bit, int argc, char **argv,
                      int stop_at_arg)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    o->key_delim = -1;
    o->count = -1;
    o->args = kp_xcalloc((size_t)argc + 1, sizeof(char *));
    o->topics = kp_xcalloc((size_t)argc + 1, sizeof(char *));
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            o->args[o->nargs++] = argv[i];
            if (stop_at_arg) only_args = 1;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_args = 1;
            continue;
        }
        const char *val;
        const kp_optdef_t *d = kp_opt_lookup(optdefs, sizeof(optdefs) / sizeof(*optdefs), a, &val);
        if (!d || !(d->cmds & cmd_bit)) return kp_app_usage_error(o, "unknown option '%s'", a);
        if (d->has_arg && !val) {
            if (i + 1 >= argc) return kp_app_usage_error(o, "option '%s' needs a value", a);
            val = argv[++i];
        }
        int rc = opt_apply(o, d, val);
        if (rc) return rc;
    }
    return 0;
}

void kp_app_opts_free(kp_app_opts_t *o)
{
    free(o->args);
    free(o->topics);
    o->args = NULL;
    o->topics = NULL;
}

void kp_app_help_connection(FILE *f)
{
    fputs("\n"
          "Connection to the control plane:\n"
          "      --server URL             control plane API [the config's 'server', else\n"
          "                               " KP_CLIENT_SERVER_DEFAULT "]\n"
          "      --token TOKEN            bearer token [the config's 'token']\n"
          "      --request-timeout SECS   give up on an API request after SECS seconds [30]\n"
          "  -h, --help                   this help\n"
          "\n"
          "The config file is $KPOOL_CONFIG, else ~/.config/kpool/config.yaml ('kpool up'\n"
          "writes it): server, token, ca (verifies https servers), namespace (the default -n).\n",
          f);
}

/* ---- the API ---- */

kp_client_t *kp_app_client_open(const kp_app_opts_t *o, int *rc)
{
    char err[1024];
    kp_client_t *c = kp_client_new(&o->client, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kpool %s: %s\n", o->cmd, err);
        *rc = KP_APP_EXIT_USAGE;
        return NULL;
    }
    const kp_client_config_t *cfg = kp_client_config(c);
    if (!cfg->token || !*cfg->token) {
        fprintf(stderr,
                "kpool %s: no token: %s %s (run 'kpool up', set KPOOL_CONFIG, or pass "
                "--token)\n",
                o->cmd, cfg->path, cfg->file_found ? "has no 'token'" : "does not exist");
        kp_client_free(c);
        *rc = KP_APP_EXIT_FAIL;
        return NULL;
    }
    return c;
}

const char *kp_app_namespace(const kp_app_opts_t *o, const kp_client_t *c)
{
    return o->ns ? o->ns : kp_client_namespace(c);
}

/* The body of a failed answer, as one line. */
static void answer_error(const kp_client_resp_t *r, char *err, size_t errlen)
{
    kp_client_error_format(r->status, r->json, &r->body, err, errlen);
}

/* kp_app_get, also reporting the HTTP status (0: no answer; -1: no path can address that
 * name). */
static int get_object(kp_client_t *c, const char *kind, const char *ns, const char *name,
                      json_t **obj, long *status, char *err, size_t errlen)
{
    *obj = NULL;
    *status = 0;
    const kp_kind_t *k = kp_kind_find(kind);
    kp_buf_t path;
    kp_buf_init(&path);
    if (!k || kp_resource_path(k, ns, name, NULL, &path, err, errlen) < 0) {
        if (!k) snprintf(err, errlen, "unknown kind %s", kind);
        kp_buf_free(&path);
        *status = -1;
        return -1;
    }
    kp_buf_append(&path, "", 1);
    kp_client_resp_t r;
    int rc = kp_client_request(c, "GET", (const char *)path.data, NULL, &r, err, errlen);
    kp_buf_free(&path);
    if (rc < 0) return -1;
    *status = r.status;
    if (r.status == 404) {
        rc = 1;
    } else if (r.status < 200 || r.status >= 300) {
        answer_error(&r, err, errlen);
        rc = -1;
    } else if (!json_is_object(r.json)) {
        snprintf(err, errlen, "the server's answer for %s %s/%s is not a JSON object", k->singular,
                 ns ? ns : "", name);
        rc = -1;
    } else {
        *obj = json_incref(r.json);
    }
    kp_client_resp_free(&r);
    return rc;
}

int kp_app_get(kp_client_t *c, const char *kind, const char *ns, const char *name, json_t **obj,
               char *err, size_t errlen)
{
    long status;
    return get_object(c, kind, ns, name, obj, &status, err, errlen);
}

/* GET of a Topic collection; 0 with *items, 1 when the every-namespace list is refused
 * (403 for a team token) or not served (404), -1 with err. */
static int topics_get(kp_client_t *c, const char *ns, json_t **items, char *err, size_t errlen)
{
    kp_buf_t path;
    kp_buf_init(&path);
    if (kp_resource_path(kp_kind_find("topic"), ns, NULL, NULL, &path, err, errlen) < 0) {
        kp_buf_free(&path);
        return -1;
    }
    kp_buf_append(&path, "", 1);
    kp_client_resp_t r;
    int rc = kp_client_request(c, "GET", (const char *)path.data, NULL, &r, err, errlen);
    kp_buf_free(&path);
    if (rc < 0) return -1;
    if ((r.status == 403 || r.status == 404) && !ns) {
        rc = 1;
    } else if (r.status < 200 || r.status >= 300) {
        answer_error(&r, err, errlen);
        rc = -1;
    } else {
        json_t *it = json_object_get(r.json, "items");
        *items = json_is_array(it) ? json_incref(it) : json_array();
    }
    kp_client_resp_free(&r);
    return rc;
}

json_t *kp_app_topics_list(kp_client_t *c, const char *ns, int *all_ns, char *err, size_t errlen)
{
    json_t *items = NULL;
    int rc = topics_get(c, NULL, &items, err, errlen);
    if (all_ns) *all_ns = rc == 0;
    if (rc == 1) rc = topics_get(c, ns, &items, err, errlen);
    return rc == 0 ? items : NULL;
}

void kp_app_creds_free(kp_app_creds_t *cr)
{
    json_decref(cr->aivenapp);
    json_decref(cr->secret);
    kp_app_secret_free(&cr->data);
    memset(cr, 0, sizeof(*cr));
}

/* "no secret: <what>" plus the AivenApplication's failing condition, into err. */
static void no_secret(const kp_app_creds_t *cr, const char *ns, const char *app, const char *what,
                      char *err, size_t errlen)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_buf_appendf(&b, "no secret: AivenApplication %s/%s %s", ns, app, what);
    const char *state = json_string_value(
        json_object_get(json_object_get(cr->aivenapp, "status"), "synchronizationState"));
    if (state) {
        kp_buf_append(&b, " (", 2);
        kp_app_text_clean(state, &b);
        kp_buf_append(&b, ")", 1);
    }
    kp_buf_t why;
    kp_buf_init(&why);
    if (kp_app_condition_reason(cr->aivenapp, &why)) {
        kp_buf_append(&b, ": ", 2);
        kp_buf_append(&b, why.data, why.len);
    } else if (!json_object_get(cr->aivenapp, "status")) {
        kp_buf_appendf(&b, ": the control plane has not reconciled it yet (no status)");
    }
    kp_buf_free(&why);
    snprintf(err, errlen, "%.*s", (int)b.len, (const char *)b.data);
    kp_buf_free(&b);
}

int kp_app_creds_load(kp_client_t *c, const char *ns, const char *app, kp_app_creds_t *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = kp_app_get(c, "aivenapplication", ns, app, &out->aivenapp, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) {
        snprintf(err, errlen,
                 "no AivenApplication %s/%s (deploy an Application with spec.kafka.pool, or "
                 "apply an AivenApplication)",
                 ns, app);
        return -1;
    }
    json_t *status = json_object_get(out->aivenapp, "status");
    out->secret_name = json_string_value(json_object_get(status, "synchronizationSecretName"));
    if (!out->secret_name || !*out->secret_name) {
        no_secret(out, ns, app, "has no synchronized secret", err, errlen);
        return -1;
    }
    rc = kp_app_get(c, "secret", ns, out->secret_name, &out->secret, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) {
        char what[512];
        snprintf(what, sizeof(what), "names secret %s, which does not exist", out->secret_name);
        no_secret(out, ns, app, what, err, errlen);
        return -1;
    }
    char why[512];
    if (kp_app_secret_decode(out->secret, &out->data, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "secret %s/%s: %s", ns, out->secret_name, why);
        return -1;
    }
    return 0;
}

int kp_app_topic_name(kp_client_t *c, const char *ns, const char *name, char *out, size_t outlen,
                      char *err, size_t errlen)
{
    json_t *topic = NULL;
    long status;
    char why[1024];
    int rc = get_object(c, "topic", ns, name, &topic, &status, why, sizeof(why));
    int resolved = rc == 0 && kp_app_topic_fqn(topic, out, outlen);
    json_decref(topic);
    if (resolved) return 0;
    /* no answer at all is an error (the API is needed for the credentials anyway); a name
     * that is no Topic resource (404), one a resource name cannot be ("a..b": no path), or
     * a token that may not read Topics is used as it is */
    if (rc < 0 && status == 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    snprintf(out, outlen, "%s", name);
    return 0;
}

/* ---- files ---- */

int kp_app_dir_prepare(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0) return 0;
    if (errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s belongs to another user (uid %u): use a directory of your own",
                 dir, (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s is accessible by others (mode %04o): private keys need a private directory "
                 "(chmod 700 %s, or give a new directory)",
                 dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

/* Writes len bytes to dir/name through dir/.name.tmp, 0600, fsynced, renamed into place. */
static int file_write(const char *dir, const char *name, const uint8_t *p, size_t len, char *err,
                      size_t errlen)
{
    char tmp[4096], final[4096];
    snprintf(final, sizeof(final), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(n < 0 ? errno : EIO));
            goto fail;
        }
        off += (size_t)n;
    }
    /* the umask cannot widen 0600, but an fchmod states the intent and survives any umask */
    if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) < 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

int kp_app_files_write(const kp_app_secret_t *s, const char *dir, kp_buf_t *missing, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < KP_APP_FILES_COUNT; i++) {
        const kp_app_entry_t *e = kp_app_secret_get(s, kp_app_files[i].key);
        if (!e) {
            if (missing) {
                if (missing->len) kp_buf_append(missing, ", ", 2);
                kp_buf_appendf(missing, "%s", kp_app_files[i].key);
            }
            continue;
        }
        if (file_write(dir, kp_app_files[i].file, e->value, e->len, err, errlen) < 0) return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* the renames; a failure here loses nothing the caller can act on */
        close(fd);
    }
    return 0;
}

/* Growth of kp_app_file_read's buffer when a file is longer than fstat said. */
#define FILE_READ_CHUNK_BYTES 4096

int kp_app_file_read(void *ctx, const char *path, size_t max, kp_buf_t *out, char *err,
                     size_t errlen)
{
    kp_buf_reset(out);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        rc = -1;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        rc = -1;
    } else if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "larger than %zu bytes", max);
        rc = -1;
    } else {
        /* room for all of it up front: no realloc leaves a copy of a key behind */
        kp_buf_reserve(out, (size_t)st.st_size + 1);
    }
    while (rc == 0) {
        if (out->len == out->cap) kp_buf_reserve(out, FILE_READ_CHUNK_BYTES);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            rc = -1;
        } else if (n == 0) {
            break;
        } else if ((out->len += (size_t)n) > max) { /* it grew while being read */
            snprintf(err, errlen, "larger than %zu bytes", max);
            rc = -1;
        }
    }
    close(fd);
    if (rc < 0) {
        /* what was read may be a key */
        if (out->data) memset(out->data, 0, out->cap);
        kp_buf_reset(out);
    }
    return rc;
}
