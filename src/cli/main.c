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
int cli_status(int argc, char **argv) __attribute__((weak));

static const struct subcommand commands[] = {
    {"run", cli_run, "run a command in a sandbox: cordon run --policy FILE -- CMD..."},
    {"status", cli_status, "list running sandboxes: cordon status [--json] [NAME...]"},
    {"policy", cli_policy, "check, evaluate or reload a policy: cordon policy check|eval|reload"},
    {"proxy", cli_proxy, "run the egress proxy: cordon proxy --policy FILE --listen ADDR:PORT"},
    {"execd", cli_execd, "serve shells and commands: cordon execd --listen ADDR:PORT"},
    {"ca", cli_ca, "manage the sandbox CA: cordon ca init|show"},
    {"server", cli_server, "OpenSandbox-compatible lifecycle API: cordon server --data DIR --policy FILE"},
    {"help", NULL, "help on a command: cordon help [COMMAND]"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char *const command_names[] = {"run", "status", "policy", "proxy", "execd", "ca", "help",
                                            "--help", "--version", NULL};

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon <command> [options]\n       cordon --version\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`cordon help COMMAND` (or `cordon COMMAND --help`) describes a command.\n");
}

static const struct subcommand *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

static int unknown(const char *what)
{
    const char *sug = cli_suggest(what, command_names);
    if (sug)
        fprintf(stderr, "cordon: unknown command '%s' (did you mean '%s'? see cordon help)\n",
                what, sug);
    else
        fprintf(stderr, "cordon: unknown command '%s' (see cordon help)\n", what);
    return 2;
}

static int call(const struct subcommand *c, int argc, char **argv)
{
    if (!c->fn) {
        fprintf(stderr, "cordon: '%s' is not built into this binary yet\n", c->name);
        return 2;
    }
    return c->fn(argc, argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("cordon %s\n", CORDON_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const struct subcommand *c = find(argv[2]);
        if (!c)
            return unknown(argv[2]);
        if (!c->fn) {
            usage(stdout);
            return 0;
        }
        char *hargv[] = {argv[2], "--help", NULL};
        return call(c, 2, hargv);
    }
    const struct subcommand *c = find(argv[1]);
    if (!c || !c->fn)
        return c ? call(c, argc - 1, argv + 1) : unknown(argv[1]);
    return call(c, argc - 1, argv + 1);
}
