/*
 * bench.c — `kpool bench`: options and --help, running the chosen mode (produce, consume,
 * both at once, or one after the other), and the report (human lines or one JSON line).
 *
 * The measuring code lives in bench_produce.c and bench_consume.c; this file only wires
 * them: a metadata/admin client prepares the topic and reads watermarks, then the producer
 * runs on this thread and, in --mode both, the consumer on a second one. SIGINT asks both to
 * stop and still prints what was measured.
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/opts.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* 2^20: MB/s is reported the way Kafka's own perf tools do it. */
#define BYTES_PER_MB 1048576.0

static kp_bench_shared_t *g_shared; /* for the SIGINT handler only */

static int parse_num(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "kpool bench: %s: '%s' is not a number in %.0f..%.0f\n", opt, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int one_of(const char *opt, const char *s, const char *const *allowed)
{
    for (int i = 0; allowed[i]; i++)
        if (!strcmp(s, allowed[i])) return 0;
    fprintf(stderr, "kpool bench: %s: '%s' is not one of", opt, s);
    for (int i = 0; allowed[i]; i++) fprintf(stderr, " %s", allowed[i]);
    fprintf(stderr, "\n");
    return -1;
}

static const char *const k_modes[] = {"produce", "consume", "both", "sequential", NULL};
static const char *const k_acks[] = {"0", "1", "all", "-1", NULL};
static const char *const k_codecs[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};

/* Handles one option that takes a value. 0 ok, -1 bad value, 1 not a value option. */
static int parse_value_opt(kp_bench_opts_t *o, const char *a, const char *v, int *count_given)
{
    double d;
    if (!strcmp(a, "--bootstrap") || !strcmp(a, "-b")) {
        o->bootstrap = v;
    } else if (!strcmp(a, "--mock")) {
        if (parse_num(a, v, 1, 16, &d)) return -1;
        o->mock_brokers = (int)d;
    } else if (!strcmp(a, "--mode")) {
        if (one_of(a, v, k_modes)) return -1;
        for (int i = 0; k_modes[i]; i++)
            if (!strcmp(v, k_modes[i])) o->mode = (kp_bench_mode_t)i;
    } else if (!strcmp(a, "--topic")) {
        if (!*v || strlen(v) > KP_BENCH_NAME_MAX) {
            fprintf(stderr, "kpool bench: --topic: 1..%d characters\n", KP_BENCH_NAME_MAX);
            return -1;
        }
        o->topic = v;
    } else if (!strcmp(a, "--partitions")) {
        if (parse_num(a, v, 1, KP_BENCH_PARTITIONS_MAX, &d)) return -1;
        o->partitions = (int)d;
    } else if (!strcmp(a, "--replication")) {
        if (parse_num(a, v, 1, 16, &d)) return -1;
        o->replication = (int)d;
    } else if (!strcmp(a, "--message-size")) {
        if (parse_num(a, v, 1, 100 * 1024 * 1024, &d)) return -1;
        o->message_bytes = (int)d;
    } else if (!strcmp(a, "--count")) {
        if (parse_num(a, v, 1, 1e12, &d)) return -1;
        o->count = (int64_t)d;
        *count_given = 1;
    } else if (!strcmp(a, "--duration")) {
        if (parse_num(a, v, 0.001, 1e7, &d)) return -1;
        o->duration_s = d;
    } else if (!strcmp(a, "--rate")) {
        if (parse_num(a, v, 0.001, 1e9, &d)) return -1;
        o->rate = d;
    } else if (!strcmp(a, "--acks")) {
        if (one_of(a, v, k_acks)) return -1;
        o->acks = v;
    } else if (!strcmp(a, "--compression")) {
        if (one_of(a, v, k_codecs)) return -1;
        o->compression = v;
    } else if (!strcmp(a, "--linger-ms")) {
        if (parse_num(a, v, 0, 900000, &d)) return -1;
        o->linger_ms = v;
    } else if (!strcmp(a, "--batch-size")) {
        if (parse_num(a, v, 1, 2147483647, &d)) return -1;
        o->batch_bytes = v;
    } else if (!strcmp(a, "--timeout")) {
        if (parse_num(a, v, 1, 86400, &d)) return -1;
        o->timeout_s = d;
    } else if (!strcmp(a, "--security-protocol")) {
        o->security = v;
    } else if (!strcmp(a, "--ssl-ca")) {
        o->ssl_ca = v;
    } else if (!strcmp(a, "--ssl-cert")) {
        o->ssl_cert = v;
    } else if (!strcmp(a, "--ssl-key")) {
        o->ssl_key = v;
    } else if (!strcmp(a, "--set")) {
        if (!strchr(v, '=') || *v == '=') {
            fprintf(stderr, "kpool bench: --set '%s': expected key=value\n", v);
            return -1;
        }
        if (o->nsets == KP_BENCH_SETS_MAX) {
            fprintf(stderr, "kpool bench: more than %d --set options\n", KP_BENCH_SETS_MAX);
            return -1;
        }
        o->sets[o->nsets++] = v;
    } else {
        return 1;
    }
    return 0;
}

/* The value options: parse_value_opt under the option's long name. */
static int bench_value(void *base, const kp_option_t *opt, const char *value, const char *cmd)
{
    (void)cmd;
    kp_bench_opts_t *o = base;
    char name[64];
    snprintf(name, sizeof(name), "--%s", opt->long_name);
    return parse_value_opt(o, name, value, &o->count_given) ? KP_OPTS_EXIT_USAGE : 0;
}

#define VALUE(s, l, a, h) KP_OPT_CALLBACK(s, l, a, h, bench_value)
static const kp_option_t bench_options[] = {
    KP_OPT_GROUP("Target:"),
    VALUE('b', "bootstrap", "HOST:PORT", "the cluster (bootstrap.servers)"),
    VALUE(0, "mock", "N",
          "librdkafka's in-process mock cluster with N brokers\n"
          "instead of --bootstrap (test.mock.num.brokers; needs\n"
          "--mode produce, both or sequential)"),
    VALUE(0, "security-protocol", "P", "plaintext | ssl (security.protocol)"),
    VALUE(0, "ssl-ca", "FILE", "ssl.ca.location (PEM)"),
    VALUE(0, "ssl-cert", "FILE", "ssl.certificate.location (PEM)"),
    VALUE(0, "ssl-key", "FILE", "ssl.key.location (PEM)"),
    VALUE(0, "set", "key=value",
          "any librdkafka property (repeatable; applied last,\n"
          "to producer and consumer)"),
    KP_OPT_GROUP("Workload:"),
    VALUE(0, "mode", "M",
          "produce | consume | both | sequential   [produce]\n"
          "both: producer and consumer run concurrently; the consumer\n"
          "  reads from the end offsets taken before the first send and\n"
          "  reports end-to-end latency (send time is in the payload)\n"
          "sequential: produce, then consume those messages back from the\n"
          "  log (read throughput; no end-to-end latency)\n"
          "consume: read the topic from the beginning (throughput from\n"
          "  disk); --count limits it, default everything present"),
    VALUE(0, "topic", "NAME", "[kpool-bench]; created if missing (Admin API)"),
    VALUE(0, "partitions", "N", "partitions when creating the topic   [1]"),
    VALUE(0, "replication", "R",
          "replication factor when creating the topic (a replicated\n"
          "pool allows up to its broker count)   [1]"),
    VALUE(0, "message-size", "B",
          "payload bytes per message (>= 16 for end-to-end latency)\n"
          "[1024]"),
    VALUE(0, "count", "N", "messages to produce   [100000]"),
    VALUE(0, "duration", "S", "produce for S seconds instead of --count"),
    VALUE(0, "rate", "R",
          "fixed rate of R msgs/s; latency counts from each message's\n"
          "scheduled send time (no coordinated omission)  [max]"),
    VALUE(0, "acks", "A", "0 | 1 | all   [all]"),
    KP_OPT_BOOL(0, "idempotence", kp_bench_opts_t, idempotence,
                "enable.idempotence=true (needs --acks all)"),
    VALUE(0, "compression", "C", "none | gzip | snappy | lz4 | zstd   [none]"),
    VALUE(0, "linger-ms", "MS", "linger.ms   [librdkafka's default]"),
    VALUE(0, "batch-size", "B", "batch.size in bytes   [librdkafka's default]"),
    KP_OPT_GROUP("Output and limits:"),
    VALUE(0, "timeout", "S",
          "fail when no progress for S seconds (also the connect and\n"
          "metadata timeout)   [30]"),
    KP_OPT_BOOL(0, "json", kp_bench_opts_t, json,
                "print one JSON object instead of the human report"),
    KP_OPT_BOOL('q', "quiet", kp_bench_opts_t, quiet, "no progress lines on stderr"),
    KP_OPT_END(),
};
#undef VALUE

const kp_opts_cmd_t kp_bench_cmd = {
    .name = "bench",
    .usage = "bench (--bootstrap HOST:PORT | --mock N) [options]",
    .description =
        "Load generator built on librdkafka: produces and/or consumes and reports msg/s,\n"
        "MB/s (MB = 2^20 bytes of payload) and latency p50/p99/p99.9/max in microseconds.\n",
    .options = bench_options,
    .footer = "Messages go round-robin over the partitions. Produce latency is send -> delivery\n"
              "report. Exit status: 0 ok, 1 run failed (unreachable cluster, delivery or consume\n"
              "errors, timeout), 2 bad usage.\n"
              "\n"
              "Examples:\n"
              "  kpool bench -b 127.0.0.1:9092 --partitions 8 --acks all --idempotence\n"
              "  kpool bench -b 127.0.0.1:9092 --mode both --rate 20000 --duration 30\n"
              "  kpool bench --mock 1 --mode sequential --message-size 100 --json\n",
    .flags = KP_OPTS_NO_ARGS,
};

/* 0 ok, 1 after --help, -1 bad usage (message printed). */
static int parse_args(int argc, char **argv, kp_bench_opts_t *o)
{
    *o = (kp_bench_opts_t){.mode = KP_BENCH_PRODUCE,
                           .topic = "kpool-bench",
                           .partitions = 1,
                           .replication = 1,
                           .message_bytes = 1024,
                           .count = 100000,
                           .acks = "all",
                           .compression = "none",
                           .timeout_s = 30};
    int rc = kp_opts_parse(&kp_bench_cmd, o, argc, argv, NULL, NULL);
    if (rc) return rc == KP_OPTS_HELP ? 1 : -1;
    if (!o->bootstrap == !o->mock_brokers) {
        fprintf(stderr, "kpool bench: give exactly one of --bootstrap and --mock\n");
        return -1;
    }
    if (o->mock_brokers && o->mode == KP_BENCH_CONSUME) {
        fprintf(stderr, "kpool bench: --mock starts an empty cluster in this process; use "
                        "--mode produce, both or sequential\n");
        return -1;
    }
    if (o->idempotence && strcmp(o->acks, "all") && strcmp(o->acks, "-1")) {
        fprintf(stderr, "kpool bench: --idempotence needs --acks all\n");
        return -1;
    }
    if (o->mode == KP_BENCH_CONSUME && !o->count_given) o->count = 0; /* everything present */
    if (o->duration_s > 0 && o->mode != KP_BENCH_CONSUME) o->count = 0;
    return 0;
}

static void on_sigint(int sig)
{
    if (g_shared) atomic_store(&g_shared->stop, 1);
}

typedef struct consumer_thread {
    const kp_bench_opts_t *o;
    const char *bootstrap;
    const kp_bench_part_t *parts;
    int nparts;
    kp_bench_shared_t *shared;
    kp_bench_result_t *r;
} consumer_thread_t;

static void *consumer_main(void *arg)
{
    consumer_thread_t *t = arg;
    kp_bench_consume(t->o, t->bootstrap, t->parts, t->nparts, 0, t->shared, 1, t->r);
    return NULL;
}

static const char *mode_name(kp_bench_mode_t m)
{
    return k_modes[m];
}

static double per_second(int64_t n, int64_t elapsed_us)
{
    return elapsed_us > 0 ? (double)n * 1e6 / (double)elapsed_us : 0;
}

static void report_human(const char *side, const kp_bench_result_t *r, const char *lat_name)
{
    printf("%-8s %10lld msgs %8.3f s %10.0f msg/s %8.2f MB/s", side, (long long)r->msgs,
           (double)r->elapsed_us / 1e6, per_second(r->msgs, r->elapsed_us),
           per_second(r->bytes, r->elapsed_us) / BYTES_PER_MB);
    if (r->has_latency && r->lat->total) {
        printf("  %s us p50 %lld p99 %lld p99.9 %lld max %lld", lat_name,
               (long long)kp_bench_hist_percentile(r->lat, 50),
               (long long)kp_bench_hist_percentile(r->lat, 99),
               (long long)kp_bench_hist_percentile(r->lat, 99.9), (long long)r->lat->max_us);
    }
    printf("  errors %lld", (long long)r->errors);
    if (r->queue_full) printf("  queue-full retries %lld", (long long)r->queue_full);
    printf("\n");
}

static void report_json_side(const char *side, const kp_bench_result_t *r)
{
    printf(",\"%s\":{\"msgs\":%lld,\"bytes\":%lld,\"errors\":%lld,\"seconds\":%.6f,"
           "\"msg_per_s\":%.1f,\"mb_per_s\":%.3f",
           side, (long long)r->msgs, (long long)r->bytes, (long long)r->errors,
           (double)r->elapsed_us / 1e6, per_second(r->msgs, r->elapsed_us),
           per_second(r->bytes, r->elapsed_us) / BYTES_PER_MB);
    if (r->has_latency && r->lat->total) {
        printf(",\"latency_us\":{\"p50\":%lld,\"p99\":%lld,\"p999\":%lld,\"max\":%lld,"
               "\"mean\":%.1f}",
               (long long)kp_bench_hist_percentile(r->lat, 50),
               (long long)kp_bench_hist_percentile(r->lat, 99),
               (long long)kp_bench_hist_percentile(r->lat, 99.9), (long long)r->lat->max_us,
               r->lat->sum_us / (double)r->lat->total);
    }
    if (r->queue_full) printf(",\"queue_full\":%lld", (long long)r->queue_full);
    /* error strings come from librdkafka: keep them JSON-safe by dropping quotes/backslashes */
    printf(",\"error\":\"");
    for (const char *p = r->error; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) putchar(*p);
    printf("\"}");
}

/* The process's CPU time (user + system, every thread: the application's and librdkafka's). */
static double process_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0) return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* cpu_s: the client's CPU over the workload (its clients' creation, the run, their close), so
 * a run states what it cost this end next to the broker's CPU (bench/tls_ratio.py). */
static void report(const kp_bench_opts_t *o, const char *bootstrap, int nparts,
                   const kp_bench_result_t *prod, const kp_bench_result_t *cons, int ok,
                   double cpu_s)
{
    if (o->json) {
        printf("{\"tool\":\"kpool-bench\",\"mode\":\"%s\",\"cluster\":\"%s\",\"mock_brokers\":%d,"
               "\"topic\":\"%s\",\"partitions\":%d,\"message_size\":%d,\"acks\":\"%s\","
               "\"idempotence\":%s,\"compression\":\"%s\",\"rate\":%.1f,\"ok\":%s,"
               "\"cpu_s\":%.3f",
               mode_name(o->mode), bootstrap, o->mock_brokers, o->topic, nparts, o->message_bytes,
               o->acks, o->idempotence ? "true" : "false", o->compression, o->rate,
               ok ? "true" : "false", cpu_s);
        if (prod->ran) report_json_side("produce", prod);
        if (cons->ran) report_json_side("consume", cons);
        printf("}\n");
    } else {
        printf("kpool bench: mode %s, cluster %s%s, topic %s (%d partition%s), %d B messages, "
               "acks=%s, idempotence %s, compression %s, rate %s\n",
               mode_name(o->mode), o->mock_brokers ? "mock " : "", bootstrap, o->topic, nparts,
               nparts == 1 ? "" : "s", o->message_bytes, o->acks, o->idempotence ? "on" : "off",
               o->compression, o->rate > 0 ? "fixed" : "max");
        if (prod->ran) report_human("produce", prod, "latency");
        if (cons->ran) report_human("consume", cons, "end-to-end latency");
        printf("  client CPU %.2f s (user + system, all threads)\n", cpu_s);
    }
    fflush(stdout);
    if (prod->error[0]) fprintf(stderr, "kpool bench: produce: %s\n", prod->error);
    if (cons->error[0]) fprintf(stderr, "kpool bench: consume: %s\n", cons->error);
    if (prod->errors)
        fprintf(stderr, "kpool bench: %lld deliveries failed\n", (long long)prod->errors);
}

/* Runs the mode against a prepared topic. 0 or -1 (a side failed; its error is set). */
static int run_mode(const kp_bench_opts_t *o, const char *bootstrap, kp_bench_part_t *parts,
                    int nparts, int64_t consume_target, kp_bench_shared_t *shared,
                    kp_bench_result_t *prod, kp_bench_result_t *cons)
{
    int rc = 0;
    switch (o->mode) {
    case KP_BENCH_PRODUCE:
        return kp_bench_produce(o, bootstrap, parts, nparts, shared, prod);
    case KP_BENCH_CONSUME:
        return kp_bench_consume(o, bootstrap, parts, nparts, consume_target, shared, 0, cons);
    case KP_BENCH_SEQUENTIAL:
        rc = kp_bench_produce(o, bootstrap, parts, nparts, shared, prod);
        if (prod->msgs > 0 && !atomic_load(&shared->stop)) {
            if (!o->quiet) fprintf(stderr, "kpool bench: produced, now consuming\n");
            rc |= kp_bench_consume(o, bootstrap, parts, nparts, prod->msgs, shared, 0, cons);
        }
        return rc;
    case KP_BENCH_BOTH: {
        consumer_thread_t t = {o, bootstrap, parts, nparts, shared, cons};
        shared->wait_for_consumer = 1;
        pthread_t tid;
        if (pthread_create(&tid, NULL, consumer_main, &t)) {
            snprintf(cons->error, sizeof(cons->error), "cannot start the consumer thread");
            return -1;
        }
        rc = kp_bench_produce(o, bootstrap, parts, nparts, shared, prod);
        pthread_join(tid, NULL);
        return rc < 0 || cons->error[0] || cons->errors ? -1 : 0;
    }
    }
    return -1;
}

/* Connects, prepares the topic and the start offsets, runs. Returns the exit code. */
static int bench_run(const kp_bench_opts_t *o, const char *bootstrap, kp_bench_shared_t *shared,
                     kp_bench_result_t *prod, kp_bench_result_t *cons)
{
    char err[512];
    kp_bench_part_t *parts = NULL;
    int nparts = 0, rc = 1;
    rd_kafka_conf_t *conf = kp_bench_conf_new(o, bootstrap, NULL, 0, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "kpool bench: %s\n", err);
        return 2;
    }
    rd_kafka_t *admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!admin) {
        fprintf(stderr, "kpool bench: cannot create client: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int timeout_ms = (int)(o->timeout_s * 1000);
    int64_t target = o->count;
    if (kp_bench_topic_prepare(admin, o, o->mode != KP_BENCH_CONSUME, &parts, &nparts, err,
                               sizeof(err)) < 0 ||
        kp_bench_watermarks(admin, o->topic, parts, nparts, o->mode != KP_BENCH_CONSUME, timeout_ms,
                            err, sizeof(err)) < 0) {
        fprintf(stderr, "kpool bench: %s\n", err);
        goto out;
    }
    if (o->mode == KP_BENCH_CONSUME) {
        int64_t available = 0;
        for (int i = 0; i < nparts; i++) available += parts[i].available;
        if (target == 0) target = available;
        if (target == 0) {
            fprintf(stderr, "kpool bench: topic %s is empty: nothing to consume\n", o->topic);
            goto out;
        }
    }
    if (!o->quiet)
        fprintf(stderr, "kpool bench: %s on %s, topic %s with %d partitions\n", mode_name(o->mode),
                bootstrap, o->topic, nparts);
    double cpu0 = process_cpu_s();
    int failed = run_mode(o, bootstrap, parts, nparts, target, shared, prod, cons) < 0;
    report(o, bootstrap, nparts, prod, cons, !failed, process_cpu_s() - cpu0);
    rc = failed ? 1 : 0;
out:
    free(parts);
    rd_kafka_destroy(admin);
    return rc;
}

int kp_cmd_bench(int argc, char **argv)
{
    kp_bench_opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc == 1) return 0; /* the help was printed */
    if (rc < 0) return 2;

    char bootstrap[1024];
    rd_kafka_t *mock = NULL;
    if (o.mock_brokers) {
        char err[512];
        mock = kp_bench_mock_start(&o, bootstrap, sizeof(bootstrap), err, sizeof(err));
        if (!mock) {
            fprintf(stderr, "kpool bench: %s\n", err);
            return 1;
        }
    } else {
        snprintf(bootstrap, sizeof(bootstrap), "%s", o.bootstrap);
    }

    static kp_bench_shared_t shared; /* static: the signal handler reaches it */
    kp_bench_hist_t *hists = calloc(2, sizeof(*hists));
    kp_bench_hist_reset(&hists[0]);
    kp_bench_hist_reset(&hists[1]);
    kp_bench_result_t prod = {.lat = &hists[0]}, cons = {.lat = &hists[1]};
    g_shared = &shared;
    signal(SIGINT, on_sigint);
    signal(SIGPIPE, SIG_IGN);

    rc = bench_run(&o, bootstrap, &shared, &prod, &cons);

    signal(SIGINT, SIG_DFL);
    g_shared = NULL;
    free(hists);
    if (mock) rd_kafka_destroy(mock);
    return rc;
}
