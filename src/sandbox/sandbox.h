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
#define SANDBOX_LOOPBACK_PROXY_PORT 3128 /* 127.0.0.1:3128 inside the sandbox */
#define SANDBOX_CAPTURE_PORT 3129        /* 127.0.0.1:3129 inside: redirected TCP */
#define SANDBOX_HOME "/run/cordon-home" /* the private HOME inside (home.c) */
#define SANDBOX_DEFAULT_USER "cordon"
#define SANDBOX_FALLBACK_USER "nobody"
#define SANDBOX_FALLBACK_GROUP "nogroup"

enum sandbox_tty { SANDBOX_TTY_AUTO, SANDBOX_TTY_NEVER, SANDBOX_TTY_ALWAYS };

struct policy;
struct proxy;
struct proxy_local_reply;
struct loop;

/* What the supervisor tells its caller (the CLI) about the sandbox. */
struct sandbox_info {
    const char *name;
    const struct policy *policy; /* as loaded at start */
    unsigned uid, gid;           /* the command's user */
    const char *workdir;         /* resolved */
    const char *proxy_url;       /* NULL before the network exists */
    char address[48];            /* the sandbox's IPv4 address ("" before the network) */
    char proxy_addr[48];         /* the proxy's IPv4 address on the veth ("" before) */
    unsigned proxy_port;
    int netns_fd;                /* the sandbox's network namespace, or -1 */
};

/* Optional callbacks into the caller; all run on the supervisor's thread.
 * prepared_cb: the policy, the user and the workdir are known, nothing is
 *   built yet; a negative return refuses to start (SANDBOX_EXIT_SETUP; the
 *   callback has said why).
 * started_cb: the proxy accepts and the supervisor's loop exists; the
 *   command has not started. May add fds/timers to loop. Negative = refuse.
 * hup_cb: SIGHUP reached the supervisor (it is not forwarded when set).
 * exited_cb: after sandbox_exit was written, everything torn down except
 *   the caller's own state. */
struct sandbox_hooks {
    void *data;
    int (*prepared_cb)(const struct sandbox_info *info, void *data);
    int (*started_cb)(struct loop *loop, struct proxy *proxy, const struct sandbox_info *info,
                      void *data);
    void (*hup_cb)(void *data);
    void (*exited_cb)(int code, void *data);
};

struct sandbox_opts {
    const char *policy_path;  /* required */
    char *const *argv;        /* command + args; argv[0] is searched in PATH */
    const char *workdir;      /* NULL = the current directory */
    const char *name;         /* sandbox name in logs and audit events; NULL = "run-<pid>" */
    const char *resolver;     /* "ADDR:PORT" for the proxy's DNS; NULL = system */
    const char *ca_dir;       /* the proxy loads its CA from here; NULL = a fresh one */
    const char *upstream_ca;  /* extra trust anchors for the proxy's upstream TLS */
    const char *inference_routes; /* the proxy's --inference-routes file, or NULL */
    uint16_t proxy_port;      /* port of the proxy on the supervisor side */
    struct in_addr pool;      /* IPv4 pool the per-sandbox /30s come from */
    uint8_t pool_prefix;      /* its prefix length (8..28) */
    bool require_fence;       /* no nftables fence or bypass monitor = startup error */
    bool no_transparent;      /* no policy DNS, no transparent capture */
    bool host_home;           /* HOME = the user's own home (or the workdir), not SANDBOX_HOME */
    enum sandbox_tty tty;     /* AUTO: a pty when stdin and stdout are terminals */
    const struct sandbox_hooks *hooks; /* NULL = none */
    const char *const *env_keep; /* allowlist of host variables (NAME or PREFIX*), or NULL */
    bool env_clear;              /* pass no host variable but the base set and env_keep */
    /* http://cordon.local/ through the proxy (proxy.h proxy_local_cb), or NULL */
    void (*local_cb)(const char *path, const char *accept, struct proxy_local_reply *r,
                     void *data);
    void *local_data;
    /* Resource limits from flags; 0 = the policy's `limits:` (then the
     * defaults: pids 1024, no memory, cpu or connection limit). */
    uint32_t pids_max;
    uint64_t memory_max;      /* bytes */
    uint32_t cpu_millis;      /* thousandths of a CPU */
    uint32_t max_conns;       /* concurrent proxy connections */
    /* The caller put cordon run in a cgroup it controls (cordon server's
     * local driver): no cgroup of the sandbox's own; the caller freezes,
     * kills and limits. */
    bool cgroup_inherit;
};

/* Defaults: proxy_port 3128, pool 10.200.0.0/16, tty AUTO, the rest zero. */
void sandbox_opts_init(struct sandbox_opts *o);

/* Builds the sandbox, runs the command to completion and tears everything
 * down. Returns the process exit status to use: the command's exit code,
 * 128+N when it died from signal N, or SANDBOX_EXIT_* when it never ran
 * (the reason is logged). Must be called as root, from a single-threaded
 * process, at most once at a time per process. */
int sandbox_run(const struct sandbox_opts *o);

/* True when a sandbox whose filesystem policy lists paths gets its own
 * thing at exactly this path instead of the host's (/tmp, /dev/shm: private
 * tmpfs; /proc: its own procfs; /dev: a minimal tmpfs): a read_write grant
 * of it gives the sandbox nothing of the host's. */
bool sandbox_path_private(const char *path);

#endif
