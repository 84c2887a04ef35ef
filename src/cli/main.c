/*
 * main.c — the `kpool` binary. The command table and its dispatch are in commands.c (part of
 * the library, so the unit tests walk the same table).
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return kp_cli_main(argc, argv);
}
