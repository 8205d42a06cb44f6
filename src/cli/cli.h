/* cli: one function per subcommand; each returns the process exit status. */
#ifndef CORDON_CLI_CLI_H
#define CORDON_CLI_CLI_H

#include <stdbool.h>

#define CORDON_VERSION "0.1.0"

int cli_proxy(int argc, char **argv);
int cli_policy(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_execd(int argc, char **argv);
int cli_ca(int argc, char **argv);
int cli_server(int argc, char **argv);
/* `cordon status [--json] [NAME...]` (status.c). */
int cli_status(int argc, char **argv);
/* `cordon policy init` (argv[0] = "init"). */
int cli_policy_init(int argc, char **argv);
/* `cordon policy suggest LOG` (argv[0] = "suggest"). */
int cli_policy_suggest(int argc, char **argv);

/* The candidate (NULL-terminated list) closest to s by edit distance, or
 * NULL when none is close enough to be a likely typo. "--x=v" compares
 * "--x". */
const char *cli_suggest(const char *s, const char *const *cands);
/* a is one of opts (NULL-terminated). */
bool cli_known_option(const char *a, const char *const *opts);
/* One line on stderr: "cordon CMD: unknown option 'A' (did you mean 'B'? ...)". */
void cli_unknown_option(const char *cmd, const char *a, const char *const *opts);

#endif
