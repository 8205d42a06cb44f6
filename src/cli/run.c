/* cli/run: `cordon run --policy FILE [options] -- COMMAND [ARGS...]`.
 *
 * The options, and the caller's side of the sandbox: the audit log's place
 * (run_log.c), the terminal lines (run_term.c), reload (reload.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/reload.h"
#include "cli/run_int.h"
#include "core/audit.h"
#include "core/log.h"
#include "core/parse.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"
#include "core/banned.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cordon run [--policy FILE] [options] -- COMMAND [ARGS...]\n"
        "\n"
        "Runs COMMAND in a sandbox whose only way to the network is cordon's egress\n"
        "proxy (HTTP_PROXY/HTTPS_PROXY/ALL_PROXY = http://127.0.0.1:3128 inside; clients\n"
        "that ignore them are captured transparently). Must be run as root;\n"
        "the command runs as process.run_as_user (default: the system user 'cordon').\n"
        "\n"
        "options:\n"
        "  --policy FILE        sandbox policy (default: built in: no network, read the\n"
        "                       system, write the workdir and /tmp; see cordon policy init)\n"
        "  --workdir DIR        the command's working directory (default: current)\n"
        "  --log FILE           audit log (default: " RUN_LOG_DIR "/NAME.log, 0640 root).\n"
        "                       Refused when the sandbox could write it or its directory;\n"
        "                       /dev/null discards. Audit events never go to the terminal.\n"
        "  --log-format FMT     json (one object per line, default) or text\n"
        "  --quiet              no denial lines and no exit summary on stderr\n"
        "  --watch-policy       reload the policy when its file changes (also SIGHUP\n"
        "                       and cordon policy reload --sandbox NAME)\n"
        "  --host-home          HOME = the sandbox user's own home (or the workdir) instead\n"
        "                       of a private, empty, writable " SANDBOX_HOME " (a tmpfs; with\n"
        "                       certutil installed it holds .pki/nssdb trusting the sandbox CA)\n"
        "  --no-revoke-on-reload  connections open at a reload keep the policy they\n"
        "                       started with. By default a reload closes the open\n"
        "                       connections and tunnels the new policy refuses (a\n"
        "                       `revoked` audit event each) and judges the next request\n"
        "                       of a kept connection by the new policy\n"
        "  --print-address      print the sandbox's IPv4 address (and the proxy's) on\n"
        "                       stderr before the command starts; the host reaches it\n"
        "  --publish [ADDR:]HOSTPORT:PORT  relay TCP connections to ADDR:HOSTPORT on the\n"
        "                       host (default 127.0.0.1; HOSTPORT 0 = any free port, printed)\n"
        "                       to PORT in the sandbox (e.g. an execd inside); at most 8\n"
        "  --env-keep NAME      pass only these host variables (repeatable; NAME or\n"
        "                       PREFIX*, e.g. ANTHROPIC_*) plus PATH, TERM, LANG, LC_*,\n"
        "                       TZ, SHELL, COLORTERM, LANGUAGE\n"
        "  --env-clear          pass none of the host environment but that base set\n"
        "                       (default: all of it, less proxy and CORDON_ variables)\n"
        "  --log-level LEVEL    error|warn|info|debug (default: warn)\n"
        "  --resolver ADDR:PORT DNS server the proxy uses (default: system resolver)\n"
        "  --ca-dir DIR         the proxy's CA (ca.pem, ca.key; default: a fresh one per\n"
        "                       sandbox). The command trusts it through SSL_CERT_FILE & co.\n"
        "  --upstream-ca FILE   extra CA certificates the proxy trusts upstream (read\n"
        "                       while the sandbox starts; inspected connections wait for\n"
        "                       it; a file that cannot be loaded stops the sandbox: 125)\n"
        "  --inference-routes FILE  route inference.local (http and https, any port) to\n"
        "                       model backends (YAML; doc/inference.md)\n"
        "  --proxy-port N       proxy port on the supervisor side (default 3128)\n"
        "  --subnet-pool CIDR   IPv4 range for per-sandbox /30s (default 10.200.0.0/16)\n"
        "  --name NAME          sandbox name in logs, audit events, the log file and the\n"
        "                       control socket (letters, digits, . _ -; default run-<pid>)\n"
        "  --learn              learning mode: what the policy would refuse is let through\n"
        "                       and recorded; at exit the policy that allows it is written\n"
        "                       (see --learn-output). Still refused: loopback, link-local/\n"
        "                       metadata and the proxy's own addresses, private addresses\n"
        "                       outside --learn-allowed-ips, unidentified programs, direct\n"
        "                       connections\n"
        "  --learn-output FILE  where --learn writes the proposed policy (default\n"
        "                       " RUN_LOG_DIR "/NAME.learned.yaml; refused like --log)\n"
        "  --learn-allowed-ips CIDR  private range --learn may reach (repeatable, at\n"
        "                       most 16); written as allowed_ips in the proposal\n"
        "  --require-fence      refuse to start without the nftables fence and the\n"
        "                       bypass monitor (default: warn and run isolated)\n"
        "  --tty | --no-tty     force or forbid a pty for the command (default: a pty\n"
        "                       when stdin and stdout are terminals)\n"
        "  --no-transparent     no policy DNS and no transparent capture: names do not\n"
        "                       resolve inside, only clients using the proxy work\n"
        "                       (default: the sandbox's resolver answers names the\n"
        "                       policy allows with addresses whose TCP is captured\n"
        "                       into the proxy, so clients ignoring HTTPS_PROXY work)\n"
        "  --pids-max N         processes+threads in the sandbox (default: the policy's\n"
        "                       limits.pids, else 1024)\n"
        "  --memory SIZE        memory limit, e.g. 512M, 2G (default: limits.memory, else\n"
        "                       none); past it the kernel's OOM killer acts in the sandbox\n"
        "  --cpus N             CPU time, in CPUs (0.5, 2; default: limits.cpu, else none)\n"
        "  --max-conns N        concurrent connections to the proxy (default:\n"
        "                       limits.max_conns, else 16384); refusals are 503 with\n"
        "                       a connection_limit audit event\n"
        "  --cgroup-inherit     stay in the cgroup cordon run was started in (the caller,\n"
        "                       e.g. cordon server, freezes, kills and limits it there);\n"
        "                       default: a cgroup of the sandbox's own\n"
        "\n"
        "On stderr: one line per denial or bypass attempt (what, which binary, the fix;\n"
        "at most 5 at once, then 30 a minute) and a summary at exit.\n"
        "Policy reload without a restart: SIGHUP to cordon run, or\n"
        "`cordon policy reload --sandbox NAME` (control socket " RUN_CTL_DIR "/NAME.ctl,\n"
        "root only). A policy with errors leaves the previous one in force.\n"
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

static const char *const run_options[] = {
    "--policy", "--workdir", "--log", "--log-format", "--log-level", "--resolver", "--ca-dir",
    "--upstream-ca", "--proxy-port", "--subnet-pool", "--name", "--require-fence", "--tty",
    "--no-tty", "--quiet", "--env-keep", "--env-clear", "--print-address", "--watch-policy", "--publish",
    "--no-transparent", "--inference-routes", "--pids-max", "--memory", "--cpus", "--max-conns",
    "--cgroup-inherit", "--learn", "--learn-output", "--learn-allowed-ips",
    "--revoke-on-reload", "--no-revoke-on-reload", "--host-home",
    "--help", NULL};

#define RUN_ENV_KEEP_MAX 64
#define RUN_PUBLISH_MAX 8

/* The caller's state across the sandbox's life (the hooks' data). */
struct run_state {
    const char *log_arg;     /* --log as given, or NULL */
    char log_path[4096];     /* the log in use */
    struct run_term *term;
    struct run_local *local;
    struct run_reload reload;
    bool reload_started;
    bool started;            /* the command was about to run */
    bool print_address;      /* --print-address */
    bool watch_policy;       /* --watch-policy */
    struct run_publish pub[RUN_PUBLISH_MAX];
    size_t n_pub;
    struct run_learn *learn;    /* --learn, or NULL */
    const char *learn_out;      /* --learn-output, or NULL */
};

/* Every audit event: the terminal's lines and cordon.local's memory. */
static void observe(const char *event, json_t *ev, const char *line, size_t len, void *data)
{
    struct run_state *st = data;
    if (run_is_selftest(event, ev))
        return;
    run_term_observe(event, ev, line, len, st->term);
    run_local_observe(event, ev, st->local);
    if (st->learn)
        run_learn_observe(event, ev, st->learn);
}

static int on_prepared(const struct sandbox_info *info, void *data)
{
    struct run_state *st = data;
    int rc;
    char err[1024];
    if (st->log_arg && strcmp(st->log_arg, "/dev/null") == 0) {
        snprintf(st->log_path, sizeof(st->log_path), "/dev/null");
        rc = audit_open(st->log_path);
    } else {
        if (st->log_arg)
            snprintf(st->log_path, sizeof(st->log_path), "%s", st->log_arg);
        else if ((rc = run_log_default_path(info->name, st->log_path, sizeof(st->log_path))) < 0) {
            fprintf(stderr, "cordon run: cannot create %s for the audit log: %s (or pass --log "
                    "FILE)\n", RUN_LOG_DIR, strerror(-rc));
            return rc;
        }
        if ((rc = run_log_check(st->log_path, info, err, sizeof(err))) < 0) {
            fprintf(stderr, "cordon run: %s\n", err);
            return rc;
        }
        rc = audit_open_private(st->log_path);
    }
    if (rc < 0) {
        fprintf(stderr, "cordon run: --log %s: %s\n", st->log_path,
                rc == -EPERM ? "not a regular file owned by root with one link (refusing a "
                               "file someone else created or linked)"
                             : strerror(-rc));
        return rc;
    }
    if (st->learn && (rc = run_learn_prepare(st->learn, st->learn_out, info, err,
                                             sizeof(err))) < 0) {
        fprintf(stderr, "cordon run: --learn-output: %s\n", err);
        return rc;
    }
    audit_set_observer(observe, st);
    const struct policy_fs *fs = info->policy ? policy_filesystem(info->policy) : NULL;
    if ((!fs || fs->include_workdir) && !run_dac_writable(info->workdir, info))
        fprintf(stderr, "cordon run: warning: the workdir %s is not writable by the sandbox's "
                "user (uid %u): the command can read it but not write there (chown it to that "
                "user, or choose --workdir)\n", info->workdir, info->uid);
    return 0;
}

static int on_started(struct loop *l, struct proxy *p, const struct sandbox_info *info,
                      void *data)
{
    struct run_state *st = data;
    /* the policy the proxy started with is generation 1 */
    struct policy *cur = policy_current();
    if (cur) {
        proxy_policy_generation(p, cur, 1);
        policy_unref(cur);
    }
    st->reload.proxy = p;
    if (st->reload.revoke)
        proxy_set_revoke(p);
    st->reload.log_path = st->log_path;
    snprintf(st->reload.address, sizeof(st->reload.address), "%s", info->address);
    st->reload.started_ms = loop_clock_ms();
    st->reload.learn = st->learn != NULL;
    int rc = run_selftest(info);
    if (rc < 0)
        return rc;
    if (st->learn && (rc = run_learn_start(st->learn, p)) < 0) {
        fprintf(stderr, "cordon run: --learn: the proxy refused learning mode: %s\n",
                strerror(-rc));
        return rc;
    }
    if (st->print_address)
        fprintf(stderr, "cordon: sandbox %s address %s (proxy %s:%u)\n", info->name,
                info->address, info->proxy_addr, info->proxy_port);
    rc = run_reload_start(&st->reload, l);
    if (rc < 0)
        return rc;
    st->reload_started = st->started = true;
    if (st->watch_policy && (rc = run_reload_watch(&st->reload, l)) < 0)
        return rc;
    for (size_t i = 0; i < st->n_pub; i++) {
        if ((rc = run_publish_start(&st->pub[i], info->address, l)) < 0)
            return rc;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &st->pub[i].listen.sin_addr, a, sizeof(a));
        if (st->term)
            run_term_say(st->term, "cordon: published %s:%u -> sandbox %s:%u", a,
                         (unsigned)ntohs(st->pub[i].listen.sin_port), info->address,
                         (unsigned)st->pub[i].port);
    }
    return 0;
}

static void on_hup(void *data)
{
    struct run_state *st = data;
    run_reload_signal(&st->reload);
}

static void on_exited(int code, void *data)
{
    struct run_state *st = data;
    if (st->reload_started)
        run_reload_stop(&st->reload);
    for (size_t i = 0; i < st->n_pub; i++)
        run_publish_stop(&st->pub[i]);
    st->reload_started = false;
    audit_set_observer(NULL, NULL);
    if (st->term && st->started) /* no summary for a sandbox that never ran */
        run_term_summary(st->term, code, st->log_path[0] ? st->log_path : NULL);
    if (st->learn && st->started)
        (void)run_learn_write(st->learn, st->term);
}

static bool name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 64 || n[0] == '.' || n[0] == '-')
        return false;
    for (size_t i = 0; i < l; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '.' || n[i] == '_' || n[i] == '-'))
            return false;
    return true;
}

int cli_run(int argc, char **argv)
{
    /* The process ends right after the sandbox: no OpenSSL teardown at
     * exit (it only frees memory, after the command has finished). */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    struct sandbox_opts o;
    sandbox_opts_init(&o);
    const char *audit_path = NULL;
    enum log_level lvl = LOG_WARN;
    enum audit_format fmt = AUDIT_FORMAT_JSON;
    bool quiet = false, print_address = false, watch_policy = false, learn = false;
    bool revoke = true; /* --no-revoke-on-reload; --revoke-on-reload is the default */
    const char *learn_out = NULL;
    const char *learn_ips[PROXY_LEARN_IPS_MAX];
    size_t n_learn_ips = 0;
    const char *keep[RUN_ENV_KEEP_MAX];
    struct run_publish pubs[RUN_PUBLISH_MAX];
    size_t n_pub = 0;
    size_t n_keep = 0;
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
        if (strcmp(a, "--no-transparent") == 0) {
            o.no_transparent = true;
            continue;
        }
        if (strcmp(a, "--cgroup-inherit") == 0) {
            o.cgroup_inherit = true;
            continue;
        }
        if (strcmp(a, "--no-tty") == 0) {
            o.tty = SANDBOX_TTY_NEVER;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            quiet = true;
            continue;
        }
        if (strcmp(a, "--watch-policy") == 0) {
            watch_policy = true;
            continue;
        }
        if (strcmp(a, "--host-home") == 0) {
            o.host_home = true;
            continue;
        }
        if (strcmp(a, "--revoke-on-reload") == 0 || strcmp(a, "--no-revoke-on-reload") == 0) {
            revoke = a[2] != 'n';
            continue;
        }
        if (strcmp(a, "--learn") == 0) {
            learn = true;
            continue;
        }
        if (strcmp(a, "--print-address") == 0) {
            print_address = true;
            continue;
        }
        if (strcmp(a, "--env-clear") == 0) {
            o.env_clear = true;
            continue;
        }
        if (a[0] != '-')
            break; /* the command, without "--" */
        if (!cli_known_option(a, run_options)) {
            cli_unknown_option("run", a, run_options);
            return SANDBOX_EXIT_SETUP;
        }
        if (!v) {
            fprintf(stderr, "cordon run: %s needs a value\n", a);
            return SANDBOX_EXIT_SETUP;
        }
        i++;
        if (strcmp(a, "--policy") == 0) {
            o.policy_path = v;
        } else if (strcmp(a, "--workdir") == 0) {
            o.workdir = v;
        } else if (strcmp(a, "--publish") == 0) {
            if (n_pub == RUN_PUBLISH_MAX || run_publish_parse(v, &pubs[n_pub]) < 0) {
                fprintf(stderr, "cordon run: --publish '%s': [ADDR:]HOSTPORT:PORT, e.g. "
                        "44772:44772 (at most %d)\n", v, RUN_PUBLISH_MAX);
                return SANDBOX_EXIT_SETUP;
            }
            n_pub++;
        } else if (strcmp(a, "--env-keep") == 0) {
            if (n_keep + 1 >= RUN_ENV_KEEP_MAX || !v[0] || strchr(v, '=')) {
                fprintf(stderr, "cordon run: --env-keep '%s': a variable name or PREFIX* "
                        "(at most %d)\n", v, RUN_ENV_KEEP_MAX - 1);
                return SANDBOX_EXIT_SETUP;
            }
            keep[n_keep++] = v;
            keep[n_keep] = NULL;
            o.env_keep = keep;
        } else if (strcmp(a, "--log") == 0) {
            audit_path = v;
        } else if (strcmp(a, "--learn-output") == 0) {
            learn_out = v;
        } else if (strcmp(a, "--learn-allowed-ips") == 0) {
            struct policy_cidr cidr;
            if (n_learn_ips == PROXY_LEARN_IPS_MAX || run_learn_parse_cidr(v, &cidr) < 0) {
                fprintf(stderr, "cordon run: --learn-allowed-ips '%s': an IPv4 or IPv6 CIDR, "
                        "e.g. 10.0.0.0/8 (at most %d)\n", v, PROXY_LEARN_IPS_MAX);
                return SANDBOX_EXIT_SETUP;
            }
            learn_ips[n_learn_ips++] = v;
        } else if (strcmp(a, "--log-format") == 0) {
            if (audit_parse_format(v, &fmt) < 0) {
                fprintf(stderr, "cordon run: --log-format: '%s' (use json|text)\n", v);
                return SANDBOX_EXIT_SETUP;
            }
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
        } else if (strcmp(a, "--inference-routes") == 0) {
            o.inference_routes = v;
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
            fprintf(stderr, "cordon run: %s takes no value\n", a);
            return SANDBOX_EXIT_SETUP;
        }
    }
    if (o.policy_path) {
        int pfd = open(o.policy_path, O_RDONLY | O_CLOEXEC);
        if (pfd < 0) {
            fprintf(stderr, "cordon run: --policy %s: %s\n", o.policy_path, strerror(errno));
            return SANDBOX_EXIT_SETUP;
        }
        close(pfd);
    }
    if (!learn && (learn_out || n_learn_ips)) {
        fprintf(stderr, "cordon run: --learn-output and --learn-allowed-ips need --learn\n");
        return SANDBOX_EXIT_SETUP;
    }
    if (i >= argc) {
        fprintf(stderr, "cordon run: no command (cordon run --policy FILE -- COMMAND ...)\n");
        return SANDBOX_EXIT_SETUP;
    }
    o.argv = argv + i;
    log_set_level(lvl);
    char defname[32];
    if (!o.name) {
        snprintf(defname, sizeof(defname), "run-%d", (int)getpid());
        o.name = defname;
    } else if (!name_ok(o.name)) {
        fprintf(stderr, "cordon run: --name '%s': use 1-64 letters, digits, '.', '_' or '-' "
                "(not starting with '.' or '-')\n", o.name);
        return SANDBOX_EXIT_SETUP;
    }
    char default_policy[256] = "";
    if (!o.policy_path) {
        int rc = run_default_policy_write(o.name, default_policy, sizeof(default_policy));
        if (rc < 0) {
            fprintf(stderr, "cordon run: cannot write the default policy %s: %s (or pass "
                    "--policy FILE)\n", default_policy, strerror(-rc));
            return SANDBOX_EXIT_SETUP;
        }
        o.policy_path = default_policy;
        if (!quiet)
            fprintf(stderr, "cordon run: no --policy: built-in default (no network; read the "
                    "system, write the workdir and /tmp). Start one: cordon policy init "
                    "--preset ...\n");
    }
    struct run_state st;
    memset(&st, 0, sizeof(st));
    st.log_arg = audit_path;
    st.print_address = print_address;
    st.watch_policy = watch_policy;
    memcpy(st.pub, pubs, n_pub * sizeof(pubs[0]));
    st.n_pub = n_pub;
    st.reload.name = o.name;
    st.reload.policy_path = o.policy_path;
    st.reload.generation = 1;
    st.reload.revoke = revoke;
    st.reload.lfd = -1;
    st.reload.wfd = -1;
    struct run_term_opts to = {.fd = STDERR_FILENO, .quiet = quiet, .sandbox = o.name};
    st.term = run_term_new(&to);
    if (!st.term) {
        fprintf(stderr, "cordon run: out of memory\n");
        return SANDBOX_EXIT_SETUP;
    }
    st.reload.term = st.term;
    st.local = run_local_new(o.name, o.policy_path, &st.reload.generation);
    if (!st.local) {
        fprintf(stderr, "cordon run: out of memory\n");
        run_term_free(st.term);
        return SANDBOX_EXIT_SETUP;
    }
    if (learn) {
        st.learn = run_learn_new(o.policy_path, default_policy[0] ? "the built-in default policy"
                                                                  : o.policy_path,
                                 learn_ips, n_learn_ips);
        if (!st.learn) {
            fprintf(stderr, "cordon run: out of memory\n");
            run_term_free(st.term);
            run_local_free(st.local);
            return SANDBOX_EXIT_SETUP;
        }
        st.learn_out = learn_out;
        fprintf(stderr, "cordon run: --learn: what the policy would refuse is let through and "
                "recorded (the policy is written at exit). Still refused: loopback, "
                "link-local/metadata and this host's addresses, private addresses outside "
                "--learn-allowed-ips, unidentified programs, direct connections.\n");
    }
    o.local_cb = run_local_answer;
    o.local_data = st.local;
    audit_set_format(fmt);
    struct sandbox_hooks hooks = {.data = &st, .prepared_cb = on_prepared,
                                  .started_cb = on_started, .hup_cb = on_hup,
                                  .exited_cb = on_exited};
    o.hooks = &hooks;
    int code = sandbox_run(&o);
    audit_close();
    run_term_free(st.term);
    run_local_free(st.local);
    run_learn_free(st.learn);
    if (default_policy[0])
        unlink(default_policy);
    return code;
}
