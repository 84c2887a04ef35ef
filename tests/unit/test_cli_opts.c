/*
 * test_cli_opts.c — the CLI's option parser (src/cli/opts.c) and the command table
 * (src/cli/commands.c): every form of an option, bundled flags, "--", missing values,
 * unknown options, repeated lists, callbacks; every command's --help generated from its
 * table and listing each option; `kpool --help` listing every command.
 */
#include "unit.h"

#include "cli/cli.h"
#include "cli/opts.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct t_opts {
    int all, quiet;
    const char *ns;
    long count;
    long timeout_ms;
    kp_strlist_t files;
    const char *seen; /* the callback's value */
    kp_client_opts_t client;
} t_opts_t;

static int t_cb(void *base, const kp_option_t *opt, const char *value, const char *cmd)
{
    (void)opt;
    if (!strcmp(value, "bad")) return kp_opts_error(cmd, "--cb refuses '%s'", value);
    ((t_opts_t *)base)->seen = value;
    return 0;
}

static const kp_option_t t_options[] = {
    KP_OPT_NAMESPACE(t_opts_t, ns, "the namespace"),
    KP_OPT_BOOL('A', "all", t_opts_t, all, "everything"),
    KP_OPT_BOOL('q', "quiet", t_opts_t, quiet, "quiet"),
    KP_OPT_INT('c', "count", t_opts_t, count, "N", "how many", 1, 100, NULL),
    KP_OPT_SECONDS(0, "timeout", t_opts_t, timeout_ms, "SECS", "budget", 60),
    KP_OPT_LIST('f', "file", t_opts_t, files, "FILE", "a file (repeatable)", 3),
    KP_OPT_CALLBACK(0, "cb", "V", "a callback", t_cb),
    KP_OPT_CONNECTION(t_opts_t, client),
    KP_OPT_END(),
};

static const kp_opts_cmd_t t_cmd = {
    .name = "t",
    .usage = "t [options] ARG...",
    .description = "A test command.\n",
    .options = t_options,
    .footer = "Exit status: 0.\n",
};

/* Runs fn with stdout and stderr going to files; returns what each got (free them). */
typedef struct captured {
    int rc;
    char *out, *err;
} captured_t;

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *s = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static captured_t capture(int (*fn)(int, char **), int argc, char **argv)
{
    FILE *o = tmpfile(), *e = tmpfile();
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    captured_t c = {.rc = fn(argc, argv)};
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    fseek(o, 0, SEEK_END);
    fseek(e, 0, SEEK_END);
    c.out = slurp(o);
    c.err = slurp(e);
    return c;
}

static void captured_free(captured_t *c)
{
    free(c->out);
    free(c->err);
}

/* ---- the parser ---- */

static t_opts_t g_o;
static char **g_args;
static int g_nargs;
static const kp_opts_cmd_t *g_cmd = &t_cmd;

static int t_parse(int argc, char **argv)
{
    memset(&g_o, 0, sizeof(g_o));
    free(g_args);
    g_args = NULL;
    return kp_opts_parse(g_cmd, &g_o, argc, argv, &g_args, &g_nargs);
}

/* Parses the NULL-terminated arguments after "t"; returns the exit code and the output. */
#define PARSE(...)                                                                                 \
    ({                                                                                             \
        char *argv_[] = {"t", __VA_ARGS__, NULL};                                                  \
        capture(t_parse, (int)(sizeof(argv_) / sizeof(*argv_)) - 1, argv_);                        \
    })

static void expect_ok(captured_t c)
{
    if (c.rc) fprintf(stderr, "unexpected: %s", c.err);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.err, "");
    captured_free(&c);
}

static void expect_error(captured_t c, const char *msg)
{
    assert_int_equal(c.rc, KP_OPTS_EXIT_USAGE);
    char want[512];
    snprintf(want, sizeof(want), "kpool t: %s (see 'kpool t --help')\n", msg);
    assert_string_equal(c.err, want);
    assert_string_equal(c.out, "");
    captured_free(&c);
}

static void test_value_forms(void **state)
{
    (void)state;
    const char *forms[][2] = {{"-n", "ns1"},
                              {"-nns1", NULL},
                              {"-n=ns1", NULL},
                              {"--namespace", "ns1"},
                              {"--namespace=ns1", NULL}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        char *argv[] = {"t", (char *)forms[i][0], (char *)forms[i][1], NULL};
        expect_ok(capture(t_parse, forms[i][1] ? 3 : 2, argv));
        assert_string_equal(g_o.ns, "ns1");
        assert_int_equal(g_nargs, 0);
    }
    expect_ok(PARSE("--count", "7", "--timeout=30s", "--server", "http://x", "--token=tk",
                    "--request-timeout", "5"));
    assert_int_equal(g_o.count, 7);
    assert_int_equal(g_o.timeout_ms, 30000);
    assert_string_equal(g_o.client.server, "http://x");
    assert_string_equal(g_o.client.token, "tk");
    assert_int_equal(g_o.client.timeout_ms, 5000);
    /* a value that starts with '-' is still the value */
    expect_ok(PARSE("--cb", "-x"));
    assert_string_equal(g_o.seen, "-x");
}

static void test_flags_bundled_and_positional(void **state)
{
    (void)state;
    expect_ok(PARSE("a", "-qA", "b"));
    assert_true(g_o.quiet && g_o.all);
    assert_int_equal(g_nargs, 2);
    assert_string_equal(g_args[0], "a");
    assert_string_equal(g_args[1], "b");
    /* flags, then one option taking the rest of the argument or the next one */
    expect_ok(PARSE("-qnteam"));
    assert_true(g_o.quiet);
    assert_string_equal(g_o.ns, "team");
    expect_ok(PARSE("-An", "team"));
    assert_true(g_o.all);
    assert_string_equal(g_o.ns, "team");
    /* "--" ends the options; "-" alone is an argument */
    expect_ok(PARSE("-q", "--", "-A", "--bogus", "-"));
    assert_false(g_o.all);
    assert_int_equal(g_nargs, 3);
    assert_string_equal(g_args[0], "-A");
    assert_string_equal(g_args[2], "-");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error(PARSE("--bogus"), "unknown option '--bogus'");
    expect_error(PARSE("-x"), "unknown option '-x'");
    expect_error(PARSE("-qx"), "unknown option '-x' in '-qx'");
    expect_error(PARSE("-n"), "option '-n' needs a value");
    expect_error(PARSE("--namespace"), "option '--namespace' needs a value");
    expect_error(PARSE("--all=yes"), "option '--all' takes no value");
    expect_error(PARSE("-n", ""), "-n needs a namespace");
    expect_error(PARSE("--count", "0"), "--count '0' is not a number in 1..100");
    expect_error(PARSE("--count", "7x"), "--count '7x' is not a number in 1..100");
    expect_error(PARSE("--timeout", "61"), "--timeout '61' is not a number of seconds (1-60)");
    expect_error(PARSE("--request-timeout", "soon"),
                 "--request-timeout 'soon' is not a number of seconds (1-86400)");
    expect_error(PARSE("--cb", "bad"), "--cb refuses 'bad'");
    /* an option's prefix is not the option */
    expect_error(PARSE("--name", "x"), "unknown option '--name'");
}

static void test_lists(void **state)
{
    (void)state;
    expect_ok(PARSE("-f", "a", "--file=b", "-fc"));
    assert_int_equal(g_o.files.n, 3);
    assert_string_equal(g_o.files.v[0], "a");
    assert_string_equal(g_o.files.v[1], "b");
    assert_string_equal(g_o.files.v[2], "c");
    kp_strlist_free(&g_o.files);
    expect_error(PARSE("-f", "a", "-f", "b", "-f", "c", "-f", "d"), "more than 3 -f options");
    kp_strlist_free(&g_o.files);
}

static void test_flags_of_the_command(void **state)
{
    (void)state;
    kp_opts_cmd_t stop = t_cmd, none = t_cmd;
    stop.flags = KP_OPTS_STOP_AT_ARG;
    none.flags = KP_OPTS_NO_ARGS;
    g_cmd = &stop;
    expect_ok(PARSE("-q", "cmd", "-A", "--bogus"));
    assert_true(g_o.quiet);
    assert_false(g_o.all);
    assert_int_equal(g_nargs, 3);
    g_cmd = &none;
    expect_error(PARSE("-q", "extra"), "unexpected argument 'extra'");
    g_cmd = &t_cmd;
}

static void test_help_from_the_table(void **state)
{
    (void)state;
    captured_t c = PARSE("-q", "--help", "--bogus");
    assert_int_equal(c.rc, KP_OPTS_HELP);
    assert_string_equal(c.err, "");
    assert_true(!strncmp(c.out, "Usage: kpool t [options] ARG...\n\nA test command.\n", 48));
    assert_non_null(strstr(c.out, "\n  -n, --namespace NS           the namespace\n"));
    assert_non_null(strstr(c.out, "\n      --cb V                   a callback\n"));
    assert_non_null(strstr(c.out, "\nConnection:\n      --server URL"));
    assert_non_null(strstr(c.out, "  -h, --help                   this help\n\nExit status: 0.\n"));
    captured_free(&c);
    c = PARSE("-h");
    assert_int_equal(c.rc, KP_OPTS_HELP);
    captured_free(&c);
}

/* ---- the command table ---- */

static void test_every_command_help(void **state)
{
    (void)state;
    int n = 0;
    for (const kp_command_t *cmd = kp_commands; cmd->name; cmd++, n++) {
        assert_non_null(cmd->opts);
        assert_string_equal(cmd->opts->name, cmd->name);
        char *argv[] = {(char *)cmd->name, "--help", NULL};
        captured_t c = capture(cmd->run, 2, argv);
        char usage[128];
        snprintf(usage, sizeof(usage), "Usage: kpool %s", cmd->name);
        if (c.rc || strncmp(c.out, usage, strlen(usage)))
            fprintf(stderr, "kpool %s --help: rc %d\n%s%s", cmd->name, c.rc, c.out, c.err);
        assert_int_equal(c.rc, 0);
        assert_true(!strncmp(c.out, usage, strlen(usage)));
        assert_string_equal(c.err, "");
        for (const kp_option_t *o = cmd->opts->options; o->type != KP_OPT_T_END; o++) {
            char want[128];
            if (o->type == KP_OPT_T_GROUP) {
                snprintf(want, sizeof(want), "\n%s\n", o->long_name);
            } else if (o->short_name) {
                snprintf(want, sizeof(want), "  -%c, --%s%s%s", o->short_name, o->long_name,
                         o->argh ? " " : "", o->argh ? o->argh : "");
            } else {
                snprintf(want, sizeof(want), "      --%s%s%s", o->long_name, o->argh ? " " : "",
                         o->argh ? o->argh : "");
            }
            if (!strstr(c.out, want))
                fprintf(stderr, "kpool %s --help: no '%s'\n", cmd->name, want);
            assert_non_null(strstr(c.out, want));
        }
        assert_non_null(strstr(c.out, "  -h, --help "));
        captured_free(&c);
        /* and an unknown option is a one-line usage error naming the command */
        char *bad[] = {(char *)cmd->name, "--no-such-option", NULL};
        c = capture(cmd->run, 2, bad);
        char want[160];
        snprintf(want, sizeof(want),
                 "kpool %s: unknown option '--no-such-option' (see 'kpool %s --help')\n", cmd->name,
                 cmd->name);
        assert_int_equal(c.rc, 2);
        assert_string_equal(c.err, want);
        captured_free(&c);
    }
    assert_true(n >= 19); /* every command of today, pki-selftest included */
}

static int top_help(int argc, char **argv)
{
    return kp_cli_main(argc, argv);
}

static void test_top_help_lists_every_command(void **state)
{
    (void)state;
    char *argv[] = {"kpool", "--help", NULL};
    captured_t c = capture(top_help, 2, argv);
    assert_int_equal(c.rc, 0);
    for (const kp_command_t *cmd = kp_commands; cmd->name; cmd++) {
        char want[64];
        snprintf(want, sizeof(want), "\n  %s ", cmd->name);
        if (cmd->hidden)
            assert_null(strstr(c.out, want));
        else
            assert_non_null(strstr(c.out, want));
    }
    assert_non_null(strstr(c.out, "\n  control "));
    captured_free(&c);
    char *unknown[] = {"kpool", "frobnicate", NULL};
    c = capture(top_help, 2, unknown);
    assert_int_equal(c.rc, 2);
    assert_true(!strncmp(c.err, "kpool: unknown command 'frobnicate'\n", 36));
    captured_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_forms),
        cmocka_unit_test(test_flags_bundled_and_positional),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_flags_of_the_command),
        cmocka_unit_test(test_help_from_the_table),
        cmocka_unit_test(test_every_command_help),
        cmocka_unit_test(test_top_help_lists_every_command),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_args);
    return rc;
}
