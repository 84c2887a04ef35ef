/*
 * opts.h — the CLI's one option parser (git's parse-options is the model).
 *
 * Each command declares a table of options, `static const kp_option_t opts[]`, whose entries
 * name a field of the command's options struct by offset (KP_OPT_STRING(s, l, T, field,
 * argh, help) and friends), and a kp_opts_cmd_t with its usage line(s), description and
 * footer. kp_opts_parse() fills the struct from argv; `--help` prints the help generated
 * from the same table, so the two cannot disagree. Adding an option is one table entry.
 *
 * The grammar, for every command: `-x VALUE`, `-xVALUE`, `-x=VALUE`, `--long VALUE`,
 * `--long=VALUE`; flags may be bundled (`-qA`); options and positional arguments may be
 * mixed (unless KP_OPTS_STOP_AT_ARG); `--` ends the options; `-` alone is an argument.
 * Usage errors are one line: "kpool CMD: MESSAGE (see 'kpool CMD --help')", exit status 2.
 */
#ifndef KP_CLI_OPTS_H
#define KP_CLI_OPTS_H

#include "cli/client.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define KP_OPTS_EXIT_USAGE 2
/* kp_opts_parse's answer after printing --help: the command exits 0. */
#define KP_OPTS_HELP (-1)

typedef enum kp_opt_type {
    KP_OPT_T_END = 0,
    KP_OPT_T_GROUP,    /* a heading in --help ("Connection:"), no option */
    KP_OPT_T_BOOL,     /* int field set to 1 */
    KP_OPT_T_STRING,   /* const char * field (borrowed from argv) */
    KP_OPT_T_INT,      /* long field, min..max */
    KP_OPT_T_SECONDS,  /* long field in milliseconds from "N" or "Ns", 1..max seconds */
    KP_OPT_T_LIST,     /* kp_strlist_t field: every occurrence, in order (-f, --set) */
    KP_OPT_T_CALLBACK, /* cb(base, opt, value) */
} kp_opt_type_t;

struct kp_option;
/* A callback option's action: 0, or an exit code after printing its own message (usually
 * through kp_opts_error). value is NULL for an option without a value. */
typedef int (*kp_opt_cb_t)(void *base, const struct kp_option *opt, const char *value,
                           const char *cmd);

typedef struct kp_option {
    kp_opt_type_t type;
    char short_name;       /* 0: none */
    const char *long_name; /* NULL: none (or the group's heading for KP_OPT_T_GROUP) */
    size_t offset;         /* of the field in the command's options struct */
    const char *argh;      /* the value's name in --help ("NS"); NULL: takes no value */
    const char *help;      /* may hold '\n' for more lines */
    long min, max;         /* INT range; SECONDS and LIST maximum (0: none) */
    const char *empty_msg; /* STRING: an empty value is an error with this message */
    const char *bad_msg;   /* INT: the message for a bad value ("%s" is the value) */
    kp_opt_cb_t cb;        /* CALLBACK */
} kp_option_t;

/* A repeated option's values (KP_OPT_LIST), borrowed from argv; free with kp_strlist_free. */
typedef struct kp_strlist {
    const char **v;
    int n;
} kp_strlist_t;
void kp_strlist_free(kp_strlist_t *l);

#define KP_OPT_FIELD(T, field) offsetof(T, field)

#define KP_OPT_END()                                                                               \
    {                                                                                              \
        .type = KP_OPT_T_END                                                                       \
    }
#define KP_OPT_GROUP(heading)                                                                      \
    {                                                                                              \
        .type = KP_OPT_T_GROUP, .long_name = (heading)                                             \
    }
#define KP_OPT_BOOL(s, l, T, field, h)                                                             \
    {                                                                                              \
        .type = KP_OPT_T_BOOL, .short_name = (s), .long_name = (l),                                \
        .offset = KP_OPT_FIELD(T, field), .help = (h)                                              \
    }
#define KP_OPT_STRING(s, l, T, field, a, h)                                                        \
    {                                                                                              \
        .type = KP_OPT_T_STRING, .short_name = (s), .long_name = (l),                              \
        .offset = KP_OPT_FIELD(T, field), .argh = (a), .help = (h)                                 \
    }
/* A string that may not be empty: msg is the whole error ("-n needs a namespace"). */
#define KP_OPT_NONEMPTY(s, l, T, field, a, h, msg)                                                 \
    {                                                                                              \
        .type = KP_OPT_T_STRING, .short_name = (s), .long_name = (l),                              \
        .offset = KP_OPT_FIELD(T, field), .argh = (a), .help = (h), .empty_msg = (msg)             \
    }
#define KP_OPT_INT(s, l, T, field, a, h, lo, hi, msg)                                              \
    {                                                                                              \
        .type = KP_OPT_T_INT, .short_name = (s), .long_name = (l),                                 \
        .offset = KP_OPT_FIELD(T, field), .argh = (a), .help = (h), .min = (lo), .max = (hi),      \
        .bad_msg = (msg)                                                                           \
    }
#define KP_OPT_SECONDS(s, l, T, field, a, h, max_s)                                                \
    {                                                                                              \
        .type = KP_OPT_T_SECONDS, .short_name = (s), .long_name = (l),                             \
        .offset = KP_OPT_FIELD(T, field), .argh = (a), .help = (h), .max = (max_s)                 \
    }
#define KP_OPT_LIST(s, l, T, field, a, h, maxn)                                                    \
    {                                                                                              \
        .type = KP_OPT_T_LIST, .short_name = (s), .long_name = (l),                                \
        .offset = KP_OPT_FIELD(T, field), .argh = (a), .help = (h), .max = (maxn)                  \
    }
#define KP_OPT_CALLBACK(s, l, a, h, fn)                                                            \
    {                                                                                              \
        .type = KP_OPT_T_CALLBACK, .short_name = (s), .long_name = (l), .argh = (a), .help = (h),  \
        .cb = (fn)                                                                                 \
    }

/* --request-timeout ceiling: a day is already far beyond any sensible request. */
#define KP_OPT_REQUEST_TIMEOUT_S_MAX 86400

/* The connection to the control plane, declared once: every client of the API includes it
 * (field: the kp_client_opts_t member of its options struct). */
#define KP_OPT_CONNECTION(T, field)                                                                \
    KP_OPT_CONNECTION_T(T, field, "give up on a request after SECS seconds [30]")
/* The same with the --request-timeout help of a command whose default differs. */
#define KP_OPT_CONNECTION_T(T, field, timeout_help)                                                \
    KP_OPT_GROUP("Connection:"),                                                                   \
        KP_OPT_STRING(0, "server", T, field.server, "URL",                                         \
                      "control plane API [the config's 'server', else\n" KP_CLIENT_SERVER_DEFAULT  \
                      "]"),                                                                        \
        KP_OPT_STRING(0, "token", T, field.token, "TOKEN", "bearer token [the config's 'token']"), \
        KP_OPT_SECONDS(0, "request-timeout", T, field.timeout_ms, "SECS", timeout_help,            \
                       KP_OPT_REQUEST_TIMEOUT_S_MAX)
/* -n/--namespace, declared once. */
#define KP_OPT_NAMESPACE(T, field, h)                                                              \
    KP_OPT_NONEMPTY('n', "namespace", T, field, "NS", h, "-n needs a namespace")

/* What the config file is, for the help of the API's clients. */
#define KP_OPTS_CONFIG_HELP                                                                        \
    "The config file is $KPOOL_CONFIG, else ~/.config/kpool/config.yaml ('kpool up' writes\n"      \
    "it): server, token, ca (verifies https servers), namespace (the default -n).\n"

enum {
    KP_OPTS_STOP_AT_ARG = 1, /* the first positional argument ends the options (kpool run) */
    KP_OPTS_NO_ARGS = 2,     /* a positional argument is an error */
};

/* A command as its help shows it. */
typedef struct kp_opts_cmd {
    const char *name;           /* "get" */
    const char *usage;          /* after "Usage: kpool "; more forms on more lines */
    const char *description;    /* paragraphs after the usage */
    const kp_option_t *options; /* ends with KP_OPT_END() */
    void (*extra)(FILE *f);     /* printed after the options (the KIND list), or NULL */
    const char *footer;         /* last paragraphs, or NULL */
    unsigned flags;
} kp_opts_cmd_t;

/* Parses argv (argv[0], the command name, is skipped) into base. The positional arguments
 * go to *args (allocated, NULL-terminated, argv order; free() it) and *nargs; args may be
 * NULL with KP_OPTS_NO_ARGS. 0; KP_OPTS_HELP after printing the help on stdout (-h, --help:
 * at once); or KP_OPTS_EXIT_USAGE after printing one line on stderr. */
int kp_opts_parse(const kp_opts_cmd_t *cmd, void *base, int argc, char **argv, char ***args,
                  int *nargs);

/* The generated help of cmd. */
void kp_opts_help(const kp_opts_cmd_t *cmd, FILE *f);

/* Prints "kpool CMD: MESSAGE (see 'kpool CMD --help')"; returns KP_OPTS_EXIT_USAGE. */
int kp_opts_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kp_opts_verror(const char *cmd, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* "N" or "Ns" with 1 <= N <= max_s, as milliseconds; -1 otherwise. */
int kp_opt_seconds(const char *s, long max_s, long *ms);

#endif
