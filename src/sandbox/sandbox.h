/* sandbox: `cordon run` — runs one command so that its only way to the
 * network is the egress proxy.
 *
 * The supervisor (this process, root) builds the sandbox completely before
 * the command can run: a fresh network namespace joined to ours by a veth
 * pair, an nftables fence inside it, the bypass monitor, the proxy on the
 * supervisor side of the veth, Landlock, seccomp and an unprivileged user.
 * If any required step fails the command never runs (a half-built sandbox
 * never runs). Everything the sandbox creates dies with the supervisor, even
 * on SIGKILL: the namespaces are held only by processes and fds, never
 * bind-mounted, and the sandbox's PID namespace is killed with it.
 * See doc/sandbox.md for the boundary and SECURITY.md for what it is not. */
#ifndef CORDON_SANDBOX_SANDBOX_H
#define CORDON_SANDBOX_SANDBOX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit statuses of sandbox_run() besides the command's own. */
#define SANDBOX_EXIT_SETUP 125   /* cordon could not build the sandbox */
#define SANDBOX_EXIT_NOEXEC 126  /* the command exists but cannot run */
#define SANDBOX_EXIT_NOTFOUND 127 /* the command was not found */

#define SANDBOX_DEFAULT_PROXY_PORT 3128
#define SANDBOX_DEFAULT_USER "cordon"
#define SANDBOX_FALLBACK_USER "nobody"
#define SANDBOX_FALLBACK_GROUP "nogroup"

enum sandbox_tty { SANDBOX_TTY_AUTO, SANDBOX_TTY_NEVER, SANDBOX_TTY_ALWAYS };

struct sandbox_opts {
    const char *policy_path;  /* required */
    char *const *argv;        /* command + args; argv[0] is searched in PATH */
    const char *workdir;      /* NULL = the current directory */
    const char *name;         /* sandbox name in logs and audit events; NULL = "run-<pid>" */
    const char *resolver;     /* "ADDR:PORT" for the proxy's DNS; NULL = system */
    const char *ca_dir;       /* the proxy loads its CA from here; NULL = a fresh one */
    const char *upstream_ca;  /* extra trust anchors for the proxy's upstream TLS */
    uint16_t proxy_port;      /* port of the proxy on the supervisor side */
    struct in_addr pool;      /* IPv4 pool the per-sandbox /30s come from */
    uint8_t pool_prefix;      /* its prefix length (8..28) */
    bool require_fence;       /* no nftables fence or bypass monitor = startup error */
    enum sandbox_tty tty;     /* AUTO: a pty when stdin and stdout are terminals */
    /* Resource limits from flags; 0 = the policy's `limits:` (then the
     * defaults: pids 1024, no memory, cpu or connection limit). */
    uint32_t pids_max;
    uint64_t memory_max;      /* bytes */
    uint32_t cpu_millis;      /* thousandths of a CPU */
    uint32_t max_conns;       /* concurrent proxy connections */
};

/* Defaults: proxy_port 3128, pool 10.200.0.0/16, tty AUTO, the rest zero. */
void sandbox_opts_init(struct sandbox_opts *o);

/* Builds the sandbox, runs the command to completion and tears everything
 * down. Returns the process exit status to use: the command's exit code,
 * 128+N when it died from signal N, or SANDBOX_EXIT_* when it never ran
 * (the reason is logged). Must be called as root, from a single-threaded
 * process, at most once at a time per process. */
int sandbox_run(const struct sandbox_opts *o);

#endif
