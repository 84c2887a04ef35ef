/* opts.c — the CLI's option parser and generated help; see opts.h. */
#include "cli/opts.h"

#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Where an option's help starts in --help ("  -x, --long ARG" is padded to it). */
#define HELP_COLUMN 31

int kp_opts_verror(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "kpool %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'kpool %s --help')\n", cmd);
    return KP_OPTS_EXIT_USAGE;
}

int kp_opts_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kp_opts_verror(cmd, fmt, ap);
    va_end(ap);
    return KP_OPTS_EXIT_USAGE;
}

void kp_strlist_free(kp_strlist_t *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int kp_opt_seconds(const char *s, long max_s, long *ms)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || (*end && strcmp(end, "s")) || v <= 0 || v > max_s) return -1;
    *ms = v * 1000;
    return 0;
}

static int is_option(const kp_option_t *o)
{
    return o->type != KP_OPT_T_END && o->type != KP_OPT_T_GROUP;
}

/* The option named by "--name" (name_len bytes), or NULL. */
static const kp_option_t *find_long(const kp_option_t *opts, const char *name, size_t name_len)
{
    for (const kp_option_t *o = opts; o->type != KP_OPT_T_END; o++)
        if (is_option(o) && o->long_name && strlen(o->long_name) == name_len &&
            !memcmp(o->long_name, name, name_len))
            return o;
    return NULL;
}

static const kp_option_t *find_short(const kp_option_t *opts, char c)
{
    for (const kp_option_t *o = opts; o->type != KP_OPT_T_END; o++)
        if (is_option(o) && o->short_name == c) return o;
    return NULL;
}

/* Stores value (NULL for a flag) into the option's field. 0 or an exit code (printed). */
static int apply(const kp_opts_cmd_t *cmd, void *base, const kp_option_t *o, const char *value)
{
    char *field = (char *)base + o->offset;
    switch (o->type) {
    case KP_OPT_T_BOOL:
        *(int *)field = 1;
        return 0;
    case KP_OPT_T_STRING:
        if (o->empty_msg && !*value) return kp_opts_error(cmd->name, "%s", o->empty_msg);
        *(const char **)field = value;
        return 0;
    case KP_OPT_T_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            if (o->bad_msg) {
                /* bad_msg comes from the option table: a literal with one %s */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                fprintf(stderr, "kpool %s: ", cmd->name);
                fprintf(stderr, o->bad_msg, value);
                fprintf(stderr, " (see 'kpool %s --help')\n", cmd->name);
#pragma GCC diagnostic pop
                return KP_OPTS_EXIT_USAGE;
            }
            return kp_opts_error(cmd->name, "--%s '%s' is not a number in %ld..%ld", o->long_name,
                                 value, o->min, o->max);
        }
        *(long *)field = v;
        return 0;
    }
    case KP_OPT_T_SECONDS:
        if (kp_opt_seconds(value, o->max, (long *)field) < 0)
            return kp_opts_error(cmd->name, "--%s '%s' is not a number of seconds (1-%ld)",
                                 o->long_name, value, o->max);
        return 0;
    case KP_OPT_T_LIST: {
        kp_strlist_t *l = (kp_strlist_t *)field;
        if (o->max && l->n == o->max) {
            if (o->short_name)
                return kp_opts_error(cmd->name, "more than %ld -%c options", o->max, o->short_name);
            return kp_opts_error(cmd->name, "more than %ld --%s options", o->max, o->long_name);
        }
        l->v = kp_xrealloc(l->v, sizeof(*l->v) * (size_t)(l->n + 1));
        l->v[l->n++] = value;
        return 0;
    }
    case KP_OPT_T_CALLBACK:
        return o->cb(base, o, value, cmd->name);
    default:
        return 0;
    }
}

/* One "-xyz" argument: flags, then possibly one option taking the rest or the next argument. */
static int parse_short(const kp_opts_cmd_t *cmd, void *base, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (const char *p = a + 1; *p; p++) {
        if (*p == 'h') {
            kp_opts_help(cmd, stdout);
            return KP_OPTS_HELP;
        }
        const kp_option_t *o = find_short(cmd->options, *p);
        if (!o) {
            if (p == a + 1) return kp_opts_error(cmd->name, "unknown option '%s'", a);
            return kp_opts_error(cmd->name, "unknown option '-%c' in '%s'", *p, a);
        }
        if (!o->argh) {
            int rc = apply(cmd, base, o, NULL);
            if (rc) return rc;
            continue;
        }
        const char *value = p[1] ? p + 1 + (p[1] == '=') : NULL;
        if (!value) {
            if (*i + 1 >= argc) return kp_opts_error(cmd->name, "option '-%c' needs a value", *p);
            value = argv[++*i];
        }
        return apply(cmd, base, o, value);
    }
    return 0;
}

static int parse_long(const kp_opts_cmd_t *cmd, void *base, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len == 4 && !memcmp(name, "help", 4) && !eq) {
        kp_opts_help(cmd, stdout);
        return KP_OPTS_HELP;
    }
    const kp_option_t *o = find_long(cmd->options, name, len);
    if (!o) return kp_opts_error(cmd->name, "unknown option '%s'", a);
    if (!o->argh) {
        if (eq) return kp_opts_error(cmd->name, "option '--%s' takes no value", o->long_name);
        return apply(cmd, base, o, NULL);
    }
    const char *value = eq ? eq + 1 : NULL;
    if (!value) {
        if (*i + 1 >= argc) return kp_opts_error(cmd->name, "option '%s' needs a value", a);
        value = argv[++*i];
    }
    return apply(cmd, base, o, value);
}

int kp_opts_parse(const kp_opts_cmd_t *cmd, void *base, int argc, char **argv, char ***args,
                  int *nargs)
{
    char **pos = kp_xcalloc((size_t)argc + 1, sizeof(char *));
    int n = 0, only_args = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            if ((cmd->flags & KP_OPTS_NO_ARGS) || !args) {
                rc = kp_opts_error(cmd->name, "unexpected argument '%s'", a);
                break;
            }
            pos[n++] = argv[i];
            if (cmd->flags & KP_OPTS_STOP_AT_ARG) only_args = 1;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (a[1] == '-') {
            rc = parse_long(cmd, base, argc, argv, &i);
        } else {
            rc = parse_short(cmd, base, argc, argv, &i);
        }
    }
    if (args) {
        *args = pos;
        *nargs = n;
    } else {
        free(pos);
    }
    return rc;
}

/* ---- help ---- */

/* Prints text with every line after the first indented to the help column. */
static void print_indented(FILE *f, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (p != text) fprintf(f, "%*s", HELP_COLUMN, "");
        fprintf(f, "%.*s\n", (int)len, p);
        p += len + (nl != NULL);
    }
}

static void print_option(FILE *f, char s, const char *l, const char *argh, const char *help)
{
    int col;
    if (s && l)
        col = fprintf(f, "  -%c, --%s", s, l);
    else if (s)
        col = fprintf(f, "  -%c", s);
    else
        col = fprintf(f, "      --%s", l);
    if (argh) col += fprintf(f, " %s", argh);
    if (col >= HELP_COLUMN - 1) {
        fprintf(f, "\n");
        col = 0;
    }
    fprintf(f, "%*s", HELP_COLUMN - col, "");
    print_indented(f, help ? help : "");
}

void kp_opts_help(const kp_opts_cmd_t *cmd, FILE *f)
{
    const char *u = cmd->usage;
    for (int first = 1; u && *u; first = 0) {
        const char *nl = strchr(u, '\n');
        size_t len = nl ? (size_t)(nl - u) : strlen(u);
        if (*u == ' ') /* the previous form, continued */
            fprintf(f, "       %.*s\n", (int)len, u);
        else
            fprintf(f, "%s kpool %.*s\n", first ? "Usage:" : "      ", (int)len, u);
        u += len + (nl != NULL);
    }
    if (cmd->description) fprintf(f, "\n%s", cmd->description);
    const kp_option_t *o = cmd->options;
    if (o->type != KP_OPT_T_GROUP) fprintf(f, "\nOptions:\n");
    for (; o->type != KP_OPT_T_END; o++) {
        if (o->type == KP_OPT_T_GROUP)
            fprintf(f, "\n%s\n", o->long_name);
        else
            print_option(f, o->short_name, o->long_name, o->argh, o->help);
    }
    print_option(f, 'h', "help", NULL, "this help");
    if (cmd->extra) cmd->extra(f);
    if (cmd->footer) fprintf(f, "\n%s", cmd->footer);
}
