/*
 * cmd_consume.c — `kpool consume -n NS --app APP --topic T`: a small kcat -C that takes an
 * application's credentials by name. Without --group it reads every partition directly
 * (assign, nothing committed); with --group it joins that consumer group (subscribe,
 * offsets committed). It stops after -c COUNT messages, after --timeout SECS without a new
 * message, or at Ctrl-C, and closes the consumer cleanly (leaving the group, committing).
 */
#include "cli/app.h"
#include "cli/cli.h"

#include "core/clock.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* How long one poll waits: the granularity of --timeout and of noticing Ctrl-C. */
#define CONSUME_POLL_MS 100
/* Budget of the initial connection and topic check when no --timeout is given. */
#define CONSUME_CONNECT_TIMEOUT_MS 30000
/* Partitions assigned without a group: beyond any Topic a pool accepts in practice (the
 * SPEC allows 1,000,000; assigning that many from a CLI would be a mistake). */
#define CONSUME_PARTITIONS_MAX 100000

static volatile sig_atomic_t consume_stop;

static void on_signal(int sig)
{
    consume_stop = 1;
}

static const kp_option_t consume_options[] = {
    KP_APP_OPT_NAMESPACE,
    KP_APP_OPT_APP("the application whose credentials are used"),
    KP_APP_OPT_TOPIC("TOPIC", "the topic"),
    KP_OPT_NONEMPTY('g', "group", kp_app_opts_t, group, "G",
                    "consumer group id [none: read partitions directly]",
                    "--group needs a group id"),
    KP_OPT_BOOL(0, "from-beginning", kp_app_opts_t, from_beginning,
                "start at the oldest message (with --group: when the\n"
                "group has no committed offset) [newest]"),
    KP_OPT_INT('c', "count", kp_app_opts_t, count, "COUNT", "exit after COUNT messages", 1,
               LONG_MAX, "-c '%s' is not a positive number of messages"),
    KP_APP_OPT_TIMEOUT("exit after SECS without a new message [wait forever]"),
    KP_OPT_STRING('f', "format", kp_app_opts_t, format, "FORMAT",
                  "how a message is printed [%s]: %s value, %k key,\n"
                  "%t topic, %p partition, %o offset, %T timestamp\n"
                  "(ms), %S value size, %K key size, %% a percent; \\n\n"
                  "\\t \\r \\\\ escapes; a newline is added unless FORMAT\n"
                  "ends with \\n. Example: -f '%k %s'"),
    KP_APP_OPT_CONNECTION,
    KP_OPT_END(),
};

const kp_opts_cmd_t kp_consume_cmd = {
    .name = "consume",
    .usage = "consume -n NS --app APP --topic TOPIC [--group G] [--from-beginning]\n"
             "              [-c COUNT] [--timeout SECS] [-f FORMAT]",
    .description =
        "Prints the messages of TOPIC, read with the credentials of application APP (its\n"
        "current secret). TOPIC is the Kafka name (<namespace>.<name>); a Topic resource\n"
        "name of namespace NS is accepted and resolved to its fully qualified name.\n"
        "Without --group every partition is read directly and no offset is committed;\n"
        "with --group the consumer joins group G and commits its offsets.\n",
    .options = consume_options,
    .footer = KP_OPTS_CONFIG_HELP
    "\nExit status: 0 done (COUNT messages, the idle timeout, or Ctrl-C), 1 fewer than\n"
    "COUNT messages before the timeout, or the credentials/topic/pool failed (one line\n"
    "says why), 2 invalid command line.\n",
};

/* The group.id of a consumer without --group: librdkafka 2.0 wants one even to assign
 * partitions; it is never joined and nothing is committed under it. */
#define CONSUME_ASSIGN_GROUP_ID "kpool-consume"

/* Consumer configuration beyond the credentials. -1 with err. */
static int consume_conf(const kp_app_opts_t *o, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    if (kp_app_kafka_set(conf, "enable.partition.eof", "false", err, errlen) < 0) return -1;
    if (!o->group)
        return kp_app_kafka_set(conf, "group.id", CONSUME_ASSIGN_GROUP_ID, err, errlen) < 0 ||
                       kp_app_kafka_set(conf, "enable.auto.commit", "false", err, errlen) < 0
                   ? -1
                   : 0;
    return kp_app_kafka_set(conf, "group.id", o->group, err, errlen) < 0 ||
                   kp_app_kafka_set(conf, "auto.offset.reset",
                                    o->from_beginning ? "earliest" : "latest", err, errlen) < 0
               ? -1
               : 0;
}

/* Subscribes (group) or assigns every partition. -1 after printing. */
static int consume_start(const kp_app_opts_t *o, rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(
        o->group ? 1 : (partitions < CONSUME_PARTITIONS_MAX ? partitions : CONSUME_PARTITIONS_MAX));
    rd_kafka_resp_err_t e;
    if (o->group) {
        rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(rk, l);
    } else {
        for (int p = 0; p < partitions && p < CONSUME_PARTITIONS_MAX; p++)
            rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        e = rd_kafka_assign(rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        fprintf(stderr, "kpool consume: cannot %s %s: %s\n", o->group ? "subscribe to" : "assign",
                topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Errors a message can carry that end the command (anything else is retried by
 * librdkafka and only reported). Group errors only matter with --group. */
static int error_is_final(const kp_app_opts_t *o, rd_kafka_resp_err_t e)
{
    if (!o->group && (e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
                      e == RD_KAFKA_RESP_ERR_INVALID_GROUP_ID))
        return 0;
    return e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
           e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
           e == RD_KAFKA_RESP_ERR__FATAL || e == RD_KAFKA_RESP_ERR_INVALID_GROUP_ID;
}

/* The poll loop. The exit code. */
static int consume_loop(const kp_app_opts_t *o, rd_kafka_t *rk, const kp_app_kafka_state_t *st)
{
    const char *fmt = o->format ? o->format : "%s";
    rd_kafka_resp_err_t reported = RD_KAFKA_RESP_ERR_NO_ERROR; /* retried errors: once each */
    long received = 0;
    int64_t last = kp_mono_ms();
    int rc = 0;
    kp_buf_t out;
    kp_buf_init(&out);
    while (!consume_stop && (o->count < 0 || received < o->count)) {
        if (o->timeout_ms && kp_mono_ms() - last >= o->timeout_ms) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, CONSUME_POLL_MS);
        if (st->fatal || st->tls_failed) {
            fprintf(stderr, "kpool consume: %s\n", st->errstr);
            if (m) rd_kafka_message_destroy(m);
            rc = KP_APP_EXIT_FAIL;
            break;
        }
        if (!m) continue;
        if (m->err) {
            int final = error_is_final(o, m->err);
            if (final || m->err != reported)
                fprintf(stderr, "kpool consume: %s: %s\n",
                        m->rkt ? rd_kafka_topic_name(m->rkt) : "consumer",
                        rd_kafka_message_errstr(m));
            reported = m->err;
            rd_kafka_message_destroy(m);
            if (final) {
                rc = KP_APP_EXIT_FAIL;
                break;
            }
            continue;
        }
        rd_kafka_timestamp_type_t tstype;
        kp_app_record_t r = {
            .topic = rd_kafka_topic_name(m->rkt),
            .partition = m->partition,
            .offset = m->offset,
            .timestamp_ms = rd_kafka_message_timestamp(m, &tstype),
            .key = m->key,
            .key_len = m->key_len,
            .value = m->payload,
            .value_len = m->len,
        };
        kp_buf_reset(&out);
        kp_app_format_render(fmt, &r, &out);
        fwrite(out.data, 1, out.len, stdout);
        fflush(stdout);
        rd_kafka_message_destroy(m);
        received++;
        last = kp_mono_ms();
    }
    kp_buf_free(&out);
    if (!rc && o->count > 0 && received < o->count && !consume_stop) {
        fprintf(stderr, "kpool consume: %ld of %ld messages received before the timeout\n",
                received, o->count);
        rc = KP_APP_EXIT_FAIL;
    }
    return rc;
}

static int consume_run(const kp_app_opts_t *o, const kp_app_creds_t *cr, const char *topic)
{
    char err[2048];
    kp_app_kafka_state_t st;
    rd_kafka_conf_t *conf = kp_app_kafka_conf(&cr->data, "kpool-consume", &st, err, sizeof(err));
    if (!conf || consume_conf(o, conf, err, sizeof(err)) < 0) {
        if (conf) rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kpool consume: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kpool consume: cannot create a Kafka client: %s\n", err);
        return KP_APP_EXIT_FAIL;
    }
    int rc = 0, partitions = 0;
    int64_t deadline = kp_mono_ms() + (o->timeout_ms ? o->timeout_ms : CONSUME_CONNECT_TIMEOUT_MS);
    if (kp_app_kafka_connect(rk, &st, kp_app_secret_text(&cr->data, "KAFKA_BROKERS"), deadline, err,
                             sizeof(err)) < 0) {
        fprintf(stderr, "kpool consume: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    }
    rd_kafka_resp_err_t te = rc ? 0 : kp_app_kafka_topic(rk, topic, deadline, &partitions);
    if (te) {
        fprintf(stderr, "kpool consume: topic %s %s (see 'kpool doctor --app %s --topic %s')\n",
                topic, kp_app_kafka_topic_problem(te), o->app, topic);
        rc = KP_APP_EXIT_FAIL;
    }
    /* from here on errors reach error_cb through the consumer queue */
    rd_kafka_poll_set_consumer(rk);
    if (!rc && consume_start(o, rk, topic, partitions) < 0) rc = KP_APP_EXIT_FAIL;
    if (!rc) rc = consume_loop(o, rk, &st);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int kp_cmd_consume(int argc, char **argv)
{
    kp_app_opts_t o;
    char err[4096];
    int rc = kp_app_opts_parse(&o, &kp_consume_cmd, argc, argv);
    if (o.help)
        rc = 0; /* the parser printed it */
    else if (!rc && !o.app)
        rc = kp_app_usage_error(&o, "--app APP is required");
    else if (!rc && !o.topic)
        rc = kp_app_usage_error(&o, "--topic TOPIC is required");
    else if (!rc && o.nargs)
        rc = kp_app_usage_error(&o, "unexpected argument '%s'", o.args[0]);
    else if (!rc && o.format && kp_app_format_check(o.format, err, sizeof(err)) < 0)
        rc = kp_app_usage_error(&o, "-f: %s", err);
    if (rc || o.help) goto out;
    kp_client_t *c = kp_app_client_open(&o, &rc);
    if (!c) goto out;
    char topic[512];
    const char *ns = kp_app_namespace(&o, c);
    kp_app_creds_t cr;
    if (kp_app_creds_load(c, ns, o.app, &cr, err, sizeof(err)) < 0 ||
        kp_app_topic_name(c, ns, o.topic, topic, sizeof(topic), err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool consume: %s\n", err);
        rc = KP_APP_EXIT_FAIL;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = consume_run(&o, &cr, topic);
    }
    kp_app_creds_free(&cr);
    kp_client_free(c);
out:
    kp_app_opts_free(&o);
    return rc;
}
