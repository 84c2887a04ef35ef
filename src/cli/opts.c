/* opts.c — see opts.h. */
#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const kp_optdef_t *kp_opt_lookup(const kp_optdef_t *defs, size_t n, const char *arg,
                                 const char **inline_val)
{
    *inline_val = NULL;
    for (size_t i = 0; i < n; i++) {
        const kp_optdef_t *d = &defs[i];
        if (arg[1] == '-') {
            size_t len = strlen(d->long_name);
            if (strncmp(arg + 2, d->long_name, len)) continue;
            if (arg[2 + len] == '=' && d->has_arg)
                *inline_val = arg + 3 + len;
            else if (arg[2 + len])
                continue;
            return d;
        }
        if (d->short_name && arg[1] == d->short_name) {
            if (arg[2] && !d->has_arg) return NULL;
            if (arg[2]) *inline_val = arg + 2 + (arg[2] == '=');
            return d;
        }
    }
    return NULL;
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
