/*
 * cmd_produce.c — `kpool produce -n NS --app APP --topic T`: a small kcat -P that takes an
 * application's credentials by name. Each line of stdin is one message (the newline is not
 * part of it); -k gives every message the same key, --key-delim splits each line into key
 * and value at the first delimiter. acks=all with idempotence, so a message reported
 * delivered is on disk in the pool and was written once.
 *
 * Before reading stdin it checks the pool is reachable and the topic authorized, so a typo
 * or a missing ACL is one clear line, not a delivery timeout.
 */
#include "cli/app.h"
#include "cli/cli.h"

#include "core/clock.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* A line (a message) longer than this is refused: the largest maxMessageBytes a Topic may
 * have (SPEC §2.1, 5 MiB); the bound keeps a stdin without newlines from growing memory. */
#define PRODUCE_LINE_BYTES_MAX (5 * 1024 * 1024)
/* Default delivery timeout (message.timeout.ms) and final flush budget. */
#define PRODUCE_TIMEOUT_MS_DEFAULT 30000

typedef struct produce_stats {
    long delivered;
    long failed;
    rd_kafka_resp_err_t first_err;
    char first_errstr[512];
} produce_stats_t;

static volatile sig_atomic_t produce_stop;

static void on_signal(int sig)
{
    produce_stop = 1;
}

static const kp_option_t produce_options[] = {
    KP_APP_OPT_NAMESPACE,
    KP_APP_OPT_APP("the application whose credentials are used"),
    KP_APP_OPT_TOPIC("TOPIC", "the topic"),
    KP_OPT_STRING('k', "key", kp_app_opts_t, key, "KEY", "the key of every message [none]"),
    KP_OPT_CALLBACK('K', "key-delim", "C",
                    "split each line at the first C into key and value (a\n"
                    "line without C is a message without key); \\t for tab",
                    kp_app_opt_key_delim),
    KP_APP_OPT_TIMEOUT("give up delivering a message after SECS [30]"),
    KP_APP_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_produce_cmd = {
    .name = "produce",
    .usage = "produce -n NS --app APP --topic TOPIC [-k KEY | --key-delim C]\n"
             "              [--timeout SECS] < messages.txt",
    .description =
        "Produces each line of stdin as one message to TOPIC, with the credentials of\n"
        "application APP (its current secret). TOPIC is the Kafka name (<namespace>.<name>);\n"
        "a Topic resource name of namespace NS is accepted and resolved to its fully\n"
        "qualified name. acks=all with idempotence: a delivered message is on disk, once.\n"
        "Prints how many messages were delivered (stderr).\n",
    .options = produce_options,
    .footer = KP_OPTS_CONFIG_HELP
    "\nExit status: 0 every message delivered, 1 a message was not delivered or the\n"
    "credentials/topic/pool failed (one line says why), 2 invalid command line.\n",
};

/* The per-message opaque is the stats (the conf opaque is the error state). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_stats_t *s = m->_private;
    if (!m->err) {
        s->delivered++;
        return;
    }
    if (!s->failed++) {
        s->first_err = m->err;
        snprintf(s->first_errstr, sizeof(s->first_errstr), "%s", rd_kafka_err2str(m->err));
    }
}

/* Reads one line (without its newline) into line. 1 a line, 0 end of input, -1 after
 * printing why (too long, read error, interrupted). */
static int line_read(FILE *in, kp_buf_t *line)
{
    kp_buf_reset(line);
    char chunk[65536];
    int got = 0;
    while (fgets(chunk, sizeof(chunk), in)) {
        got = 1;
        size_t n = strlen(chunk);
        int end = n && chunk[n - 1] == '\n';
        if (line->len + n > PRODUCE_LINE_BYTES_MAX + 1) {
            fprintf(stderr, "kpool produce: a line is longer than %d bytes\n",
                    PRODUCE_LINE_BYTES_MAX);
            return -1;
        }
        kp_buf_append(line, chunk, n - (size_t)end);
        if (end) return 1;
    }
    if (ferror(in) && !produce_stop) {
        fprintf(stderr, "kpool produce: reading stdin: %s\n", strerror(errno));
        return -1;
    }
    return got && !produce_stop;
}

/* The one line for the producer's fatal error (the idempotent producer's: typically
 * InitProducerId refused because the app may write to no topic). */
static void fatal_print(const kp_app_opts_t *o, rd_kafka_t *rk, const char *topic)
{
    char why[512];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof(why));
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    if (e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
        e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        fprintf(stderr,
                "kpool produce: topic %s not authorized for writing (%s: an idempotent producer "
                "needs write access to a topic): %s (see 'kpool doctor --app %s --topic %s "
                "--access write')\n",
                topic, rd_kafka_err2name(e), why, o->app, topic);
    else
        fprintf(stderr, "kpool produce: %s\n", e ? why : "fatal error");
}

/* Queues one message, waiting while the local queue is full. 0, or -1 (printed). */
static int produce_one(const kp_app_opts_t *o, rd_kafka_t *rk, const char *topic, const void *key,
                       size_t key_len, const void *value, size_t value_len, produce_stats_t *stats)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_OPAQUE(stats), RD_KAFKA_V_END);
        if (!e) return 0;
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            fatal_print(o, rk, topic);
            return -1;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "kpool produce: %s\n", rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 100);
    }
}

/* Every line of stdin. 0, or -1 when reading or queuing failed (printed). */
static int produce_lines(const kp_app_opts_t *o, rd_kafka_t *rk, const char *topic,
                         const kp_app_kafka_state_t *st, produce_stats_t *stats, long *queued)
{
    kp_buf_t line;
    kp_buf_init(&line);
    int rc = 0, r = 0;
    while (!st->fatal && (r = line_read(stdin, &line)) > 0) {
        const char *p = line.len ? (const char *)line.data : "";
        const char *key = o->key, *value = p;
        size_t key_len = key ? strlen(key) : 0, value_len = line.len;
        const char *delim = o->key_delim >= 0 ? memchr(p, o->key_delim, line.len) : NULL;
        if (delim) {
            key = p;
            key_len = (size_t)(delim - p);
            value = delim + 1;
            value_len = line.len - key_len - 1;
        }
        if (produce_one(o, rk, topic, key, key_len, value, value_len, stats) < 0) {
            rc = -1;
            break;
        }
        (*queued)++;
        rd_kafka_poll(rk, 0);
    }
    if (r < 0) rc = -1;
    kp_buf_free(&line);
    return rc;
}

/* Connects, checks the topic, produces stdin and flushes. The exit code. */
static int produce_run(const kp_app_opts_t *o, const kp_app_creds_t *cr, const char *topic)
{
    char err[2048], ms[32];
    long timeout_ms = o->timeout_ms ? o->timeout_ms : PRODUCE_TIMEOUT_MS_DEFAULT;
    produce_stats_t stats;
    memset(&stats, 0, sizeof(stats));
    kp_app_kafka_state_t st;
    snprintf(ms, sizeof(ms), "%ld", timeout_ms);
    rd_kafka_conf_t *conf = kp_app_kafka_conf(&cr->data, "kpool-produce", &st, err, sizeof(err));
    if (!conf || kp_app_kafka_set(conf, "acks", "all", err, sizeof(err)) < 0 ||
        kp_app_kafka_set(conf, "enable.idempotence", "true", err, sizeof(err)) < 0 ||
        kp_app_kafka_set(conf, "message.timeout.ms", ms, err, sizeof(err)) < 0 ||
        kp_app_kafka_set(conf, "allow.auto.create.topics", "false", err, sizeof(err)) < 0) {
        if (conf) rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kpool produce: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kpool produce: cannot create a Kafka client: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    int rc = 0;
    long queued = 0;
    int64_t deadline = kp_mono_ms() + timeout_ms;
    const char *brokers = kp_app_secret_text(&cr->data, "KAFKA_BROKERS");
    if (kp_app_kafka_connect(rk, &st, brokers, deadline, err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool produce: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    }
    rd_kafka_resp_err_t te = rc ? 0 : kp_app_kafka_topic(rk, topic, deadline, NULL);
    if (te) {
        fprintf(stderr, "kpool produce: topic %s %s (see 'kpool doctor --app %s --topic %s')\n",
                topic, kp_app_kafka_topic_problem(te), o->app, topic);
        rc = KP_APP_EXIT_FAIL;
    }
    if (!rc && produce_lines(o, rk, topic, &st, &stats, &queued) < 0) rc = KP_APP_EXIT_FAIL;
    rd_kafka_flush(rk, (int)timeout_ms);
    int left = rd_kafka_outq_len(rk);
    if (left > 0) stats.failed += left;
    if (rc) {
        /* already explained in one line */
    } else if (st.fatal) {
        fatal_print(o, rk, topic);
        rc = KP_APP_EXIT_FAIL;
    } else if (stats.failed) {
        fprintf(stderr, "kpool produce: %ld of %ld messages not delivered to %s: %s\n",
                stats.failed, queued, topic,
                stats.first_err ? stats.first_errstr : "not acknowledged in time");
        rc = KP_APP_EXIT_FAIL;
    } else {
        fprintf(stderr, "kpool produce: %ld message%s delivered to %s\n", stats.delivered,
                stats.delivered == 1 ? "" : "s", topic);
    }
    rd_kafka_destroy(rk);
    return rc;
}

int kp_cmd_produce(int argc, char **argv)
{
    kp_app_opts_t o;
    int rc = kp_app_opts_parse(&o, &kp_produce_cmd, argc, argv);
    if (o.help)
        rc = 0; /* the parser printed it */
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && !o.topic)
        rc = kp_app_usage_error(&o, "--topic TOPIC is required");
    else if (!rc && o.key && o.key_delim >= 0)
        rc = kp_app_usage_error(&o, "-k and --key-delim exclude each other");
    else if (!rc && o.nargs)
        rc = kp_app_usage_error(&o, "unexpected argument '%s' (messages are read from stdin)",
                                o.args[0]);
    if (rc || o.help) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    char err[4096], topic[512];
    const char *ns = kp_app_namespace(&o, c);
    kp_app_creds_t cr;
    if (kp_app_creds_load(c, ns, o.app, &cr, err, sizeof(err)) < 0 ||
        kp_app_topic_name(c, ns, o.topic, topic, sizeof(topic), err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool produce: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = produce_run(&o, &cr, topic);
    }
    kp_app_creds_free(&cr);
    kp_client_free(c);
out:
    kp_app_opts_free(&o);
    return rc;
}
