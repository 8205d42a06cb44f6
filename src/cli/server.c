/* cli/server: `cordon server --data DIR --policy FILE [options]`. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/parse.h"
#include "server/server.h"
#include "core/banned.h"

#define MAX_IMAGES 32
#define MAX_EGRESS_PORTS 64
#define MAX_EGRESS_IPS 64

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cordon server --data DIR --policy FILE [options]\n"
        "\n"
        "Serves OpenSandbox's lifecycle API (under / and /v1) and proxies HTTP and\n"
        "WebSocket traffic into sandboxes. Each sandbox is a `cordon run` with\n"
        "`cordon execd` inside on the execd port and the entrypoint beside it. Must\n"
        "be run as root. See doc/server.md.\n"
        "\n"
        "options:\n"
        "  --listen ADDR:PORT     address to serve on (default 127.0.0.1:8080; port 0 picks\n"
        "                         one, printed on stdout)\n"
        "  --data DIR             state directory: sandboxes.db and per-sandbox logs (required)\n"
        "  --policy FILE          sandbox policy for every sandbox (required; its\n"
        "                         filesystem_policy must let the sandbox run this binary)\n"
        "  --policy-dir DIR       policies a create may name: extensions\n"
        "                         {\"cordon.io/policy\": \"NAME\"} runs the sandbox under\n"
        "                         DIR/NAME.yaml (an inline policy: \"cordon.io/policy-inline\")\n"
        "  --egress-ports LIST    ports a networkPolicy allow rule opens on its host\n"
        "                         (comma-separated; default 80,443)\n"
        "  --egress-allowed-ips CIDR  allowed_ips for every networkPolicy allow rule\n"
        "                         (repeatable; hosts on private addresses need it; then\n"
        "                         every address of an allowed host must be in one)\n"
        "  --api-key-file FILE    the API key (else $OPEN_SANDBOX_API_KEY); clients send it\n"
        "                         in header OPEN-SANDBOX-API-KEY\n"
        "  --insecure             serve without an API key (refused otherwise)\n"
        "  --image NAME           an image name that maps to the host filesystem under the\n"
        "                         policy (repeatable; default: cordon-host); others get 400\n"
        "  --execd-port N         execd's port in each sandbox (default 44772)\n"
        "  --public-host HOST     host[:port][/path] for use_server_proxy and signed\n"
        "                         endpoints (default: the request's Host header)\n"
        "  --min-timeout S        smallest sandbox timeout in seconds (default 60)\n"
        "  --max-timeout S        largest sandbox timeout in seconds (default 86400)\n"
        "  --create-timeout MS    how long a sandbox may take to start (default 30000)\n"
        "  --pool N               keep N sandboxes started ahead (default 0): a create\n"
        "                         without env, resourceLimits, networkPolicy or a policy\n"
        "                         of its own takes one at once; the pool refills behind it\n"
        "  --proxy-timeout MS     connect + response head through the proxy routes\n"
        "                         (default 180000; 504 after it)\n"
        "  --ws-max-message N     largest WebSocket message relayed (default 16777216;\n"
        "                         bigger closes with 1009)\n"
        "  --ws-ping-interval MS  pings on both ends of a relayed WebSocket; 2x silence\n"
        "                         closes (default 30000; 0 = off)\n"
        "  --max-body N           largest buffered request body (default 67108864; 413\n"
        "                         above); bodies proxied into a running sandbox are\n"
        "                         streamed and not limited\n"
        "  --max-conns N          open connections (default 4096; 503 above)\n"
        "  --subnet-pool CIDR     passed to cordon run\n"
        "  --resolver ADDR:PORT   passed to cordon run\n"
        "  --log-level LEVEL      error|warn|info|debug (default info)\n");
}

static int read_key(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "cordon server: --api-key-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    if (n < 16) {
        fprintf(stderr, "cordon server: --api-key-file %s: the key must be at least 16 "
                "characters\n", path);
        return -1;
    }
    return 0;
}

static int num(const char *opt, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    if (parse_u32_str(v, min, max, out) < 0) {
        fprintf(stderr, "cordon server: %s '%s': a number %u..%u\n", opt, v, min, max);
        return -1;
    }
    return 0;
}

/* The server's --policy, and the egress options applied to it the way a
 * networkPolicy would be: refused at start rather than at every create. */
static int check_policy(const struct sbxpolicy_cfg *pc)
{
    char err[768], *text = NULL;
    size_t len = 0;
    json_t *body = json_pack("{s:{s:[{s:s,s:s}]}}", "networkPolicy", "egress", "action",
                             "allow", "target", "example.com");
    int r = body ? sbxpolicy_for_request(pc, body, &text, &len, err, sizeof(err)) : -ENOMEM;
    json_decref(body);
    free(text);
    if (r < 0) {
        fprintf(stderr, "cordon server: --policy with --egress-ports/--egress-allowed-ips: %s\n",
                r == -ENOMEM ? "out of memory" : err);
        return -1;
    }
    return 0;
}

int cli_server(int argc, char **argv)
{
    static char key[512], exe[PATH_MAX], policy[PATH_MAX], data[PATH_MAX];
    static const char *images[MAX_IMAGES];
    static uint16_t eports[MAX_EGRESS_PORTS];
    static const char *eips[MAX_EGRESS_IPS];
    static char pdir[PATH_MAX];
    const char *pdir_arg = NULL, *eports_arg = "80,443";
    size_t nimages = 0, neips = 0;
    struct server_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *listen = "127.0.0.1:8080", *key_file = NULL, *data_arg = NULL, *pol = NULL;
    uint32_t v;
    cfg.local.execd_port = 44772;
    cfg.local.create_timeout_ms = 30000;
    cfg.min_timeout_s = 60;
    cfg.max_timeout_s = 86400;
    cfg.proxy_timeout_ms = 180000;
    cfg.ws_max_msg = 16 * 1024 * 1024;
    cfg.ws_ping_ms = 30000;
    cfg.max_body = 64 * 1024 * 1024;
    cfg.max_conns = 4096;
    cfg.idle_ms = 60000;
    enum log_level lvl = LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--insecure") == 0) {
            cfg.insecure = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cordon server: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *val = argv[++i];
        int bad = 0;
        if (strcmp(a, "--listen") == 0)
            listen = val;
        else if (strcmp(a, "--data") == 0)
            data_arg = val;
        else if (strcmp(a, "--policy") == 0)
            pol = val;
        else if (strcmp(a, "--api-key-file") == 0)
            key_file = val;
        else if (strcmp(a, "--policy-dir") == 0)
            pdir_arg = val;
        else if (strcmp(a, "--egress-ports") == 0)
            eports_arg = val;
        else if (strcmp(a, "--egress-allowed-ips") == 0) {
            if (neips == MAX_EGRESS_IPS) {
                fprintf(stderr, "cordon server: at most %d --egress-allowed-ips\n", MAX_EGRESS_IPS);
                return 2;
            }
            eips[neips++] = val;
        }
        else if (strcmp(a, "--image") == 0) {
            if (nimages == MAX_IMAGES) {
                fprintf(stderr, "cordon server: at most %d --image\n", MAX_IMAGES);
                return 2;
            }
            images[nimages++] = val;
        } else if (strcmp(a, "--public-host") == 0)
            cfg.public_host = val;
        else if (strcmp(a, "--subnet-pool") == 0)
            cfg.local.subnet_pool = val;
        else if (strcmp(a, "--resolver") == 0)
            cfg.local.resolver = val;
        else if (strcmp(a, "--execd-port") == 0)
            bad = num(a, val, 1, 65535, &v) || (cfg.local.execd_port = (uint16_t)v, 0);
        else if (strcmp(a, "--min-timeout") == 0)
            bad = num(a, val, 1, 31536000, &v) || (cfg.min_timeout_s = v, 0);
        else if (strcmp(a, "--max-timeout") == 0)
            bad = num(a, val, 1, 31536000, &v) || (cfg.max_timeout_s = v, 0);
        else if (strcmp(a, "--pool") == 0)
            bad = num(a, val, 0, 64, &v) || (cfg.local.pool = v, 0);
        else if (strcmp(a, "--create-timeout") == 0)
            bad = num(a, val, 100, 600000, &v) || (cfg.local.create_timeout_ms = v, 0);
        else if (strcmp(a, "--proxy-timeout") == 0)
            bad = num(a, val, 100, 3600000, &v) || (cfg.proxy_timeout_ms = v, 0);
        else if (strcmp(a, "--ws-max-message") == 0)
            bad = num(a, val, 1024, 1u << 30, &v) || (cfg.ws_max_msg = v, 0);
        else if (strcmp(a, "--ws-ping-interval") == 0)
            bad = num(a, val, 0, 3600000, &v) || (cfg.ws_ping_ms = v, 0);
        else if (strcmp(a, "--max-body") == 0)
            bad = num(a, val, 1024, 1u << 30, &v) || (cfg.max_body = v, 0);
        else if (strcmp(a, "--max-conns") == 0)
            bad = num(a, val, 1, 100000, &v) || (cfg.max_conns = v, 0);
        else if (strcmp(a, "--log-level") == 0) {
            if (log_parse_level(val, &lvl) < 0) {
                fprintf(stderr, "cordon server: --log-level %s: use error|warn|info|debug\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "cordon server: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
    log_set_level(lvl);
    if (!data_arg || !pol) {
        fprintf(stderr, "cordon server: --data DIR and --policy FILE are required (see --help)\n");
        return 2;
    }
    if (cfg.min_timeout_s > cfg.max_timeout_s) {
        fprintf(stderr, "cordon server: --min-timeout is above --max-timeout\n");
        return 2;
    }
    if (parse_sockaddr(listen, &cfg.listen, &cfg.listen_len) < 0) {
        fprintf(stderr, "cordon server: --listen '%s': use ADDR:PORT (e.g. 127.0.0.1:8080)\n",
                listen);
        return 2;
    }
    if (key_file) {
        if (read_key(key_file, key, sizeof(key)) < 0)
            return 2;
    } else if (getenv("OPEN_SANDBOX_API_KEY") && getenv("OPEN_SANDBOX_API_KEY")[0]) {
        snprintf(key, sizeof(key), "%s", getenv("OPEN_SANDBOX_API_KEY"));
    }
    unsetenv("OPEN_SANDBOX_API_KEY"); /* never handed to sandboxes */
    if (key[0]) {
        cfg.api_key = key;
    } else if (!cfg.insecure) {
        fprintf(stderr, "cordon server: no API key: give --api-key-file FILE (or set "
                "OPEN_SANDBOX_API_KEY), or --insecure to serve without authentication\n");
        return 2;
    }
    if (!realpath(pol, policy)) {
        fprintf(stderr, "cordon server: --policy %s: %s\n", pol, strerror(errno));
        return 2;
    }
    if (pdir_arg && !realpath(pdir_arg, pdir)) {
        fprintf(stderr, "cordon server: --policy-dir %s: %s\n", pdir_arg, strerror(errno));
        return 2;
    }
    size_t neports = 0;
    for (const char *p = eports_arg; *p;) {
        size_t n = strcspn(p, ",");
        uint32_t port;
        if (neports == MAX_EGRESS_PORTS || parse_u32(p, n, 1, 65535, &port) < 0) {
            fprintf(stderr, "cordon server: --egress-ports '%s': up to %d ports 1..65535, "
                    "comma-separated (e.g. 80,443)\n", eports_arg, MAX_EGRESS_PORTS);
            return 2;
        }
        eports[neports++] = (uint16_t)port;
        p += n + (p[n] == ',');
    }
    if (neports == 0) {
        fprintf(stderr, "cordon server: --egress-ports: at least one port\n");
        return 2;
    }
    cfg.policy.base_path = policy;
    cfg.policy.dir = pdir_arg ? pdir : NULL;
    cfg.policy.np.ports = eports;
    cfg.policy.np.nports = neports;
    cfg.policy.np.allowed_ips = eips;
    cfg.policy.np.n_allowed_ips = neips;
    if (check_policy(&cfg.policy) < 0)
        return 2;
    if (mkdir(data_arg, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "cordon server: --data %s: %s\n", data_arg, strerror(errno));
        return 2;
    }
    if (!realpath(data_arg, data)) {
        fprintf(stderr, "cordon server: --data %s: %s\n", data_arg, strerror(errno));
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "cordon server: cannot find its own binary: %s\n", strerror(errno));
        return 2;
    }
    exe[n] = '\0';
    if (nimages == 0)
        images[nimages++] = "cordon-host";
    cfg.local.data_dir = data;
    cfg.local.policy = policy;
    cfg.local.cordon_exe = exe;
    cfg.local.images = images;
    cfg.local.nimages = nimages;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    int r = server_run(&cfg);
    if (r < 0) {
        fprintf(stderr, "cordon server: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
