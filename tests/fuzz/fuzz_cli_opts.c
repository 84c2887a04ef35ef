/*
 * fuzz_cli_opts.c — libFuzzer target for the CLI's option parser (cli/opts.c), which reads
 * every kpool command line (scripts pass it names and values from elsewhere).
 *
 * The input is an argv, one argument per line. It is parsed against a table holding every
 * kind of option (flag, string, non-empty string, number, seconds, list, callback, the shared
 * connection options) under each command flag (mixed, stop at the first argument, no
 * arguments). Checked: no crash or leak for any input; the answer is 0, KP_OPTS_HELP or 2;
 * on success every positional argument is an argv element that is "-", does not start with
 * '-', or came after "--" (or the first argument with STOP_AT_ARG); a number is in its range;
 * seconds are in 1..max; a list holds at most its maximum; a string that may not be empty is
 * not.
 */
#include "cli/opts.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGS_MAX 64

typedef struct f_opts {
    int flag_a, flag_b;
    const char *str, *nonempty;
    long num, secs_ms;
    kp_strlist_t list;
    int cb_calls;
    kp_client_opts_t client;
} f_opts_t;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_cli_opts: %s\n", what);
        abort();
    }
}

static int f_cb(void *base, const kp_option_t *opt, const char *value, const char *cmd)
{
    (void)opt;
    check(value != NULL, "a callback with a value got none");
    if (value[0] == 'x') return kp_opts_error(cmd, "refused");
    ((f_opts_t *)base)->cb_calls++;
    return 0;
}

static const kp_option_t f_options[] = {
    KP_OPT_BOOL('a', "alpha", f_opts_t, flag_a, "a flag"),
    KP_OPT_BOOL('b', "beta", f_opts_t, flag_b, "another"),
    KP_OPT_STRING('s', "str", f_opts_t, str, "S", "a string"),
    KP_OPT_NONEMPTY('n', "namespace", f_opts_t, nonempty, "NS", "not empty", "-n needs one"),
    KP_OPT_INT('c', "count", f_opts_t, num, "N", "a number", -5, 1000, NULL),
    KP_OPT_SECONDS(0, "timeout", f_opts_t, secs_ms, "SECS", "seconds", 3600),
    KP_OPT_LIST('f', "file", f_opts_t, list, "F", "repeatable", 4),
    KP_OPT_CALLBACK('k', "cb", "V", "a callback", f_cb),
    KP_OPT_CONNECTION(f_opts_t, client),
    KP_OPT_END(),
};

static const unsigned f_flags[] = {0, KP_OPTS_STOP_AT_ARG, KP_OPTS_NO_ARGS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[ARGS_MAX + 2] = {"fuzz"};
    int argc = 1;
    for (char *p = text, *nl; p && argc <= ARGS_MAX; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        argv[argc++] = p;
    }
    /* the parser reports on stdout (--help) and stderr (usage errors): not to the fuzzer's
     * output */
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    for (size_t i = 0; i < sizeof(f_flags) / sizeof(*f_flags); i++) {
        kp_opts_cmd_t cmd = {.name = "fuzz",
                             .usage = "fuzz [options] ARG...\n       continued",
                             .description = "d\n",
                             .options = f_options,
                             .footer = "f\n",
                             .flags = f_flags[i]};
        f_opts_t o;
        memset(&o, 0, sizeof(o));
        char **args = NULL;
        int nargs = 0;
        int rc = kp_opts_parse(&cmd, &o, argc, argv, &args, &nargs);
        check(rc == 0 || rc == KP_OPTS_HELP || rc == KP_OPTS_EXIT_USAGE, "unknown answer");
        check(args && nargs >= 0 && nargs < argc && !args[nargs], "positional arguments");
        if (rc == 0) {
            int after_dashdash = 0, stopped = 0, j = 0;
            for (int a = 1; a < argc && j < nargs; a++) {
                if (args[j] != argv[a]) {
                    if (!after_dashdash && !stopped && !strcmp(argv[a], "--")) after_dashdash = 1;
                    continue;
                }
                check(after_dashdash || stopped || argv[a][0] != '-' || !argv[a][1],
                      "an option taken as an argument");
                if (f_flags[i] & KP_OPTS_STOP_AT_ARG) stopped = 1;
                j++;
            }
            check(!(f_flags[i] & KP_OPTS_NO_ARGS) || nargs == 0, "an argument with NO_ARGS");
            check(o.num >= -5 && o.num <= 1000, "number out of range");
            check(o.secs_ms == 0 || (o.secs_ms >= 1000 && o.secs_ms <= 3600000),
                  "seconds out of range");
            check(o.client.timeout_ms == 0 ||
                      (o.client.timeout_ms >= 1000 && o.client.timeout_ms <= 86400000L),
                  "request timeout out of range");
            check(o.list.n <= 4, "list over its maximum");
            check(!o.nonempty || *o.nonempty, "an empty non-empty string");
        }
        free(args);
        kp_strlist_free(&o.list);
    }
    kp_opts_help(&(kp_opts_cmd_t){.name = "fuzz", .usage = "fuzz", .options = f_options}, stdout);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(null);
    free(text);
    return 0;
}
