/* bench.c — `kpool bench` (placeholder until the load generator lands). */
#include "cli/cli.h"

#include <stdio.h>

int kp_cmd_bench(int argc, char **argv)
{
    fprintf(stderr, "kpool bench: not built yet\n");
    return 2;
}
