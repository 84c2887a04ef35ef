/* opts.h — the option table and lookup shared by the CLI's hand-written argument parsers
 * (resource commands and application commands). */
#ifndef KP_CLI_OPTS_H
#define KP_CLI_OPTS_H

#include <stddef.h>

typedef struct kp_optdef {
    char short_name; /* 0: none */
    const char *long_name;
    int has_arg;
    int id;
    unsigned cmds; /* commands that accept it */
} kp_optdef_t;

/* The option of arg ("-n", "-nteam", "--namespace", "--namespace=x") among defs[0..n), or
 * NULL; *inline_val points at a value given in the same argument. */
const kp_optdef_t *kp_opt_lookup(const kp_optdef_t *defs, size_t n, const char *arg,
                                 const char **inline_val);

/* "N" or "Ns" with 1 <= N <= max_s, as milliseconds; -1 otherwise. */
int kp_opt_seconds(const char *s, long max_s, long *ms);

#endif
