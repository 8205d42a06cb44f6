/* cli/proxy: `cordon proxy` — the egress proxy as a standalone process.
 * SIGHUP reloads the policy (and, unless --no-revoke-on-reload, re-judges
 * the open connections by it) and reopens the audit log; SIGTERM/SIGINT stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/audit.h"
#include "core/log.h"
#include "core/parse.h"
#include "policy/policy.h"
#include "proxy/proxy.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cordon proxy --policy FILE --listen ADDR:PORT [options]\n"
            "  --policy FILE          OpenShell-format policy (SIGHUP reloads it)\n"
            "  --no-revoke-on-reload  connections open at a reload keep the policy they\n"
            "                         started with (default: the ones the new policy\n"
            "                         refuses are closed, `revoked` events, and a kept\n"
            "                         connection's next request is judged by the new policy)\n"
            "  --listen ADDR:PORT     address to listen on, e.g. 127.0.0.1:3128 or [::1]:3128\n"
            "  --log FILE             audit log, one JSON object per line (default stderr)\n"
            "  --resolver ADDR:PORT   DNS server to use (default: /etc/resolv.conf)\n"
            "  --workers N            worker threads (default: one per CPU)\n"
            "  --max-conns N          concurrent connection limit (default: what the\n"
            "                         descriptor limit holds, 2 per tunnel, at most 16384)\n"
            "  --connect-timeout MS   upstream connect timeout (default 10000)\n"
            "  --head-timeout MS      time allowed for a request head (default 30000)\n"
            "  --dns-timeout MS       name resolution timeout (default 5000)\n"
            "  --dns-cache-ttl SECONDS  keep DNS answers for their TTL, at most this long\n"
            "                         (default 60; negative answers at most 5 s; 0 = no\n"
            "                         cache). The policy still decides before any lookup\n"
            "                         and every connect checks its addresses (fence)\n"
            "  --ca-dir DIR           load the inspection CA from DIR (default: a fresh CA per run)\n"
            "  --ca-cert-out FILE     write the CA certificate to FILE for clients to trust\n"
            "  --upstream-ca FILE     extra CA certificates trusted for upstream TLS\n"
            "  --inference-routes FILE  route requests for inference.local to model backends\n"
            "                         (YAML; doc/inference.md). Without it inference.local\n"
            "                         answers 503 inference_not_configured\n"
            "  --log-level LEVEL      error|warn|info|debug (default info)\n");
}

static int num_opt(const char *name, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    if (parse_u32_str(v, min, max, out) == 0)
        return 0;
    fprintf(stderr, "cordon proxy: %s: '%s' is not a number in %u..%u\n", name, v, min, max);
    return -1;
}

static int parse_args(int argc, char **argv, struct proxy_config *cfg, const char **log_path,
                      bool *revoke)
{
    static const struct option opts[] = {
        {"policy", required_argument, 0, 'p'},      {"listen", required_argument, 0, 'l'},
        {"log", required_argument, 0, 'L'},         {"resolver", required_argument, 0, 'r'},
        {"workers", required_argument, 0, 'w'},     {"max-conns", required_argument, 0, 'm'},
        {"connect-timeout", required_argument, 0, 'c'}, {"head-timeout", required_argument, 0, 'H'},
        {"dns-timeout", required_argument, 0, 'd'}, {"log-level", required_argument, 0, 'v'},
        {"ca-dir", required_argument, 0, 'C'},      {"ca-cert-out", required_argument, 0, 'O'},
        {"upstream-ca", required_argument, 0, 'U'}, {"inference-routes", required_argument, 0, 'I'},
        {"dns-cache-ttl", required_argument, 0, 'T'}, {"no-revoke-on-reload", no_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    int o;
    const char *listen = NULL;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint32_t v;
        enum log_level lvl;
        switch (o) {
        case 'p': cfg->policy_path = optarg; break;
        case 'l': listen = optarg; break;
        case 'L': *log_path = optarg; break;
        case 'r':
            if (parse_sockaddr(optarg, &(struct sockaddr_storage){0}, &(socklen_t){0}) < 0) {
                fprintf(stderr, "cordon proxy: --resolver: '%s' is not ADDR:PORT\n", optarg);
                return -1;
            }
            cfg->resolver = optarg;
            break;
        case 'w': if (num_opt("--workers", optarg, 1, 64, &v) < 0) return -1; cfg->workers = v; break;
        case 'm': if (num_opt("--max-conns", optarg, 1, 1000000, &v) < 0) return -1; cfg->max_conns = v; break;
        case 'c': if (num_opt("--connect-timeout", optarg, 1, 600000, &v) < 0) return -1; cfg->connect_timeout_ms = v; break;
        case 'H': if (num_opt("--head-timeout", optarg, 1, 600000, &v) < 0) return -1; cfg->head_timeout_ms = v; break;
        case 'd': if (num_opt("--dns-timeout", optarg, 1, 600000, &v) < 0) return -1; cfg->dns_timeout_ms = v; break;
        case 'T':
            if (num_opt("--dns-cache-ttl", optarg, 0, PROXY_DNS_CACHE_TTL_MAX, &v) < 0)
                return -1;
            cfg->dns_cache_ttl_s = v;
            break;
        case 'v':
            if (log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "cordon proxy: --log-level: expected error|warn|info|debug\n");
                return -1;
            }
            log_set_level(lvl);
            break;
        case 'C': cfg->ca_dir = optarg; break;
        case 'O': cfg->ca_cert_out = optarg; break;
        case 'U': cfg->upstream_ca = optarg; break;
        case 'I': cfg->inference_routes = optarg; break;
        case 'R': *revoke = false; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (!cfg->policy_path || !listen) {
        fprintf(stderr, "cordon proxy: --policy and --listen are required\n");
        usage(stderr);
        return -1;
    }
    if (parse_sockaddr(listen, &cfg->listen, &cfg->listen_len) < 0) {
        fprintf(stderr, "cordon proxy: --listen: '%s' is not ADDR:PORT (e.g. 127.0.0.1:3128)\n", listen);
        return -1;
    }
    return 0;
}

static int serve(struct proxy *p, bool revoke)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0 && errno == EINTR)
            continue;
        if (sig == SIGHUP) {
            log_info("proxy: SIGHUP: reloading policy");
            if (proxy_reload(p) == 0 && revoke) {
                struct policy *cur = policy_current();
                if (cur) {
                    proxy_revoke(p, cur);
                    policy_unref(cur);
                }
            }
            if (audit_reopen() < 0)
                log_error("proxy: cannot reopen the audit log");
            continue;
        }
        log_info("proxy: signal %d: stopping", sig);
        return 0;
    }
}

int cli_proxy(int argc, char **argv)
{
    struct proxy_config cfg;
    const char *log_path = NULL;
    proxy_config_init(&cfg);
    bool revoke = true;
    int r = parse_args(argc, argv, &cfg, &log_path, &revoke);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if ((r = audit_open(log_path)) < 0) {
        fprintf(stderr, "cordon proxy: --log %s: %s\n", log_path, strerror(-r));
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct proxy *p;
    if ((r = proxy_start(&cfg, &p)) < 0) {
        fprintf(stderr, "cordon proxy: failed to start: %s\n", strerror(-r));
        return 1;
    }
    struct sockaddr_storage a;
    socklen_t al;
    char ip[64];
    proxy_listen_addr(p, &a, &al);
    log_info("proxy: listening on %s port %u", sockaddr_ip_str((struct sockaddr *)&a, ip, sizeof(ip)),
             sockaddr_port((struct sockaddr *)&a));
    if (revoke)
        proxy_set_revoke(p);
    r = serve(p, revoke);
    proxy_stop(p);
    audit_close();
    return r;
}
