/* cordon: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

/* Subcommands not built yet are resolved weakly so the binary links while
 * modules land one by one; calling one that is missing says so. */
int cli_proxy(int argc, char **argv) __attribute__((weak));
int cli_policy(int argc, char **argv) __attribute__((weak));
int cli_run(int argc, char **argv) __attribute__((weak));
int cli_execd(int argc, char **argv) __attribute__((weak));
int cli_ca(int argc, char **argv) __attribute__((weak));
int cli_server(int argc, char **argv) __attribute__((weak));

static const struct subcommand commands[] = {
    {"proxy", cli_proxy, "run the egress proxy: cordon proxy --policy FILE --listen ADDR:PORT"},
    {"policy", cli_policy, "check or evaluate a policy: cordon policy check|eval FILE ..."},
    {"run", cli_run, "run a command in a sandbox: cordon run --policy FILE -- CMD..."},
    {"execd", cli_execd, "serve shells and commands: cordon execd --listen ADDR:PORT"},
    {"ca", cli_ca, "manage the sandbox CA: cordon ca init|show"},
    {"server", cli_server, "OpenSandbox-compatible lifecycle API: cordon server --data DIR --policy FILE"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!commands[i].fn) {
            fprintf(stderr, "cordon: '%s' is not built into this binary yet\n", argv[1]);
            return 2;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "cordon: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
