/* cli/run: `cordon run --policy FILE [options] -- COMMAND [ARGS...]`. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/audit.h"
#include "core/log.h"
#include "core/parse.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "core/banned.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cordon run --policy FILE [options] -- COMMAND [ARGS...]\n"
        "\n"
        "Runs COMMAND in a sandbox whose only way to the network is cordon's egress\n"
        "proxy (HTTP_PROXY/HTTPS_PROXY/ALL_PROXY are set for it). Must be run as root;\n"
        "the command runs as process.run_as_user (default: the system user 'cordon').\n"
        "\n"
        "options:\n"
        "  --policy FILE        sandbox policy (required)\n"
        "  --workdir DIR        the command's working directory (default: current)\n"
        "  --log FILE           audit log, one JSON event per line (default: stderr)\n"
        "  --log-level LEVEL    error|warn|info|debug (default: warn)\n"
        "  --resolver ADDR:PORT DNS server the proxy uses (default: system resolver)\n"
        "  --ca-dir DIR         the proxy's CA (ca.pem, ca.key; default: a fresh one per\n"
        "                       sandbox). The command trusts it through SSL_CERT_FILE & co.\n"
        "  --upstream-ca FILE   extra CA certificates the proxy trusts upstream\n"
        "  --proxy-port N       proxy port on the supervisor side (default 3128)\n"
        "  --subnet-pool CIDR   IPv4 range for per-sandbox /30s (default 10.200.0.0/16)\n"
        "  --name NAME          sandbox name in logs and audit events (default run-<pid>)\n"
        "  --require-fence      refuse to start without the nftables fence and the\n"
        "                       bypass monitor (default: warn and run isolated)\n"
        "  --tty | --no-tty     force or forbid a pty for the command (default: a pty\n"
        "                       when stdin and stdout are terminals)\n"
        "  --pids-max N         processes+threads in the sandbox (default: the policy's\n"
        "                       limits.pids, else 1024)\n"
        "  --memory SIZE        memory limit, e.g. 512M, 2G (default: limits.memory, else\n"
        "                       none); past it the kernel's OOM killer acts in the sandbox\n"
        "  --cpus N             CPU time, in CPUs (0.5, 2; default: limits.cpu, else none)\n"
        "  --max-conns N        concurrent connections to the proxy (default:\n"
        "                       limits.max_conns, else 16384); refusals are 503 with\n"
        "                       a connection_limit audit event\n"
        "\n"
        "Exit status: the command's; 128+N if it died from signal N; 125 if the sandbox\n"
        "could not be built (the command never ran); 126/127 if it could not be executed.\n");
}

static int parse_cidr(const char *s, struct in_addr *addr, uint8_t *prefix)
{
    const char *slash = strchr(s, '/');
    char ip[INET_ADDRSTRLEN];
    if (!slash || (size_t)(slash - s) >= sizeof(ip))
        return -EINVAL;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    uint32_t p;
    if (inet_pton(AF_INET, ip, addr) != 1 || parse_u32_str(slash + 1, 8, 28, &p) < 0)
        return -EINVAL;
    *prefix = (uint8_t)p;
    return 0;
}

int cli_run(int argc, char **argv)
{
    struct sandbox_opts o;
    sandbox_opts_init(&o);
    const char *audit_path = NULL;
    enum log_level lvl = LOG_WARN;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--require-fence") == 0) {
            o.require_fence = true;
            continue;
        }
        if (strcmp(a, "--tty") == 0) {
            o.tty = SANDBOX_TTY_ALWAYS;
            continue;
        }
        if (strcmp(a, "--no-tty") == 0) {
            o.tty = SANDBOX_TTY_NEVER;
            continue;
        }
        if (a[0] != '-')
            break; /* the command, without "--" */
        if (!v) {
            fprintf(stderr, "cordon run: %s needs a value\n", a);
            return SANDBOX_EXIT_SETUP;
        }
        i++;
        if (strcmp(a, "--policy") == 0) {
            o.policy_path = v;
        } else if (strcmp(a, "--workdir") == 0) {
            o.workdir = v;
        } else if (strcmp(a, "--log") == 0) {
            audit_path = v;
        } else if (strcmp(a, "--log-level") == 0) {
            if (log_parse_level(v, &lvl) < 0) {
                fprintf(stderr, "cordon run: --log-level: '%s' (use error|warn|info|debug)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
        } else if (strcmp(a, "--resolver") == 0) {
            o.resolver = v;
        } else if (strcmp(a, "--ca-dir") == 0) {
            o.ca_dir = v;
        } else if (strcmp(a, "--upstream-ca") == 0) {
            o.upstream_ca = v;
        } else if (strcmp(a, "--name") == 0) {
            o.name = v;
        } else if (strcmp(a, "--proxy-port") == 0) {
            uint32_t p;
            if (parse_u32_str(v, 1, 65535, &p) < 0) {
                fprintf(stderr, "cordon run: --proxy-port: '%s' (1..65535)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
            o.proxy_port = (uint16_t)p;
        } else if (strcmp(a, "--pids-max") == 0) {
            if (parse_u32_str(v, 1, 4194304, &o.pids_max) < 0) {
                fprintf(stderr, "cordon run: --pids-max: '%s' (1..4194304)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
        } else if (strcmp(a, "--memory") == 0) {
            if (policy_parse_size(v, &o.memory_max) < 0 || o.memory_max < POLICY_MIN_MEMORY) {
                fprintf(stderr, "cordon run: --memory: '%s' (a size of at least 4M: bytes, or "
                        "a number with K, M, G or T, e.g. 512M)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
        } else if (strcmp(a, "--max-conns") == 0) {
            if (parse_u32_str(v, 1, 1000000, &o.max_conns) < 0) {
                fprintf(stderr, "cordon run: --max-conns: '%s' (1..1000000)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
        } else if (strcmp(a, "--cpus") == 0) {
            if (policy_parse_cpus(v, &o.cpu_millis) < 0) {
                fprintf(stderr, "cordon run: --cpus: '%s' (a number of CPUs, 0.01..%d, e.g. "
                        "0.5 or 2)\n", v, POLICY_MAX_CPUS);
                return SANDBOX_EXIT_SETUP;
            }
        } else if (strcmp(a, "--subnet-pool") == 0) {
            if (parse_cidr(v, &o.pool, &o.pool_prefix) < 0) {
                fprintf(stderr, "cordon run: --subnet-pool: '%s' (an IPv4 CIDR, prefix 8..28, "
                        "e.g. 10.200.0.0/16)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
        } else {
            fprintf(stderr, "cordon run: unknown option %s\n", a);
            usage(stderr);
            return SANDBOX_EXIT_SETUP;
        }
    }
    if (!o.policy_path) {
        fprintf(stderr, "cordon run: --policy FILE is required\n");
        usage(stderr);
        return SANDBOX_EXIT_SETUP;
    }
    if (i >= argc) {
        fprintf(stderr, "cordon run: no command (cordon run --policy FILE -- COMMAND ...)\n");
        return SANDBOX_EXIT_SETUP;
    }
    o.argv = argv + i;
    log_set_level(lvl);
    int rc = audit_open(audit_path);
    if (rc < 0) {
        fprintf(stderr, "cordon run: --log %s: %s\n", audit_path, strerror(-rc));
        return SANDBOX_EXIT_SETUP;
    }
    int code = sandbox_run(&o);
    audit_close();
    return code;
}
