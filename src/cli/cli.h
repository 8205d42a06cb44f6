/* cli: one function per subcommand; each returns the process exit status. */
#ifndef CORDON_CLI_CLI_H
#define CORDON_CLI_CLI_H

int cli_proxy(int argc, char **argv);
int cli_policy(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_execd(int argc, char **argv);
int cli_ca(int argc, char **argv);
int cli_server(int argc, char **argv);

#endif
