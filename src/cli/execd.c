/* cli/execd: `cordon execd --listen ADDR:PORT [options]`. Each option is
 * declared once below with its type, bounds and default. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/parse.h"
#include "execd/execd.h"
#include "execd/proc.h"
#include "core/banned.h"

enum opt_type { OPT_SIZE, OPT_COUNT, OPT_MS };

struct num_opt {
    const char *name;
    enum opt_type type;
    size_t off; /* into struct execd_cfg */
    uint64_t def, min, max;
    const char *help;
};

#define CFG_OFF(f) offsetof(struct execd_cfg, f)
#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)

static const struct num_opt num_opts[] = {
    {"--ring-size", OPT_SIZE, CFG_OFF(ring_size), 1 * MiB, 4 * KiB, 1 * GiB,
     "replay buffer per session and per command"},
    {"--max-sessions", OPT_COUNT, CFG_OFF(max_sessions), 256, 1, 100000,
     "sessions kept (running or exited); more get 429 SESSION_LIMIT"},
    {"--max-commands", OPT_COUNT, CFG_OFF(max_commands), 256, 1, 100000,
     "command records kept; oldest finished evicted, else 429 COMMAND_LIMIT"},
    {"--max-frame", OPT_SIZE, CFG_OFF(max_frame), 1 * MiB, 1 * KiB, 64 * MiB,
     "largest client WebSocket message; bigger closes with 1009"},
    {"--max-body", OPT_SIZE, CFG_OFF(max_body), 1 * MiB, 1 * KiB, 64 * MiB,
     "largest buffered HTTP request body; bigger gets 413 (/files/upload streams, unbounded)"},
    {"--max-conns", OPT_COUNT, CFG_OFF(max_conns), 1024, 1, 100000,
     "open HTTP connections; more get 503"},
    {"--stdin-buffer", OPT_SIZE, CFG_OFF(stdin_max), 256 * KiB, 4 * KiB, 64 * MiB,
     "stdin queued per session before the client's frames are held back"},
    {"--ws-ping-interval", OPT_MS, CFG_OFF(ping_ms), 30000, 0, 3600000,
     "WebSocket ping every N ms; silent for 2N closes (0 = off)"},
    {"--sse-ping-interval", OPT_MS, CFG_OFF(sse_ping_ms), 10000, 0, 3600000,
     "ping event on /command streams every N ms (0 = off)"},
    {"--kill-grace", OPT_MS, CFG_OFF(kill_grace_ms), 3000, 0, 600000,
     "SIGTERM to SIGKILL delay for timeouts and DELETE /command"},
    {"--client-stall", OPT_MS, CFG_OFF(stall_ms), 2000, 0, 3600000,
     "how long a non-reading client may hold back a shell (0 = never)"},
    {"--idle-timeout", OPT_MS, CFG_OFF(idle_ms), 60000, 1000, 3600000,
     "close idle HTTP keep-alive connections after N ms"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon execd --listen ADDR:PORT [--token-file FILE] [options]\n\n"
               "  --listen ADDR:PORT   address to serve on (port 0 picks one; printed on stdout)\n"
               "  --token-file FILE    require header X-EXECD-ACCESS-TOKEN with this file's content\n"
               "  --shell PATH         shell for sessions and commands (default: bash, else sh)\n"
               "  --log-level LEVEL    error|warn|info|debug (default info)\n");
    for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
        const struct num_opt *o = &num_opts[i];
        fprintf(f, "  %-20s %s (default %llu%s)\n", o->name, o->help,
                (unsigned long long)o->def,
                o->type == OPT_SIZE ? " bytes" : o->type == OPT_MS ? " ms" : "");
    }
}

/* Digits with an optional K, M or G (binary) suffix. */
static int parse_size(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    uint64_t mult = 1;
    uint32_t v;
    if (len > 1 && strchr("kKmMgG", s[len - 1])) {
        char u = s[len - 1];
        mult = (u == 'k' || u == 'K') ? KiB : (u == 'm' || u == 'M') ? MiB : GiB;
        len--;
    }
    if (parse_u32(s, len, 0, UINT32_MAX, &v) < 0)
        return -EINVAL;
    *out = (uint64_t)v * mult;
    return 0;
}

static int set_num(struct execd_cfg *cfg, const struct num_opt *o, const char *val)
{
    uint64_t v;
    uint32_t u;
    if (o->type == OPT_SIZE) {
        if (parse_size(val, &v) < 0)
            goto bad;
    } else {
        if (parse_u32_str(val, 0, UINT32_MAX, &u) < 0)
            goto bad;
        v = u;
    }
    if (v < o->min || v > o->max)
        goto bad;
    if (o->type == OPT_MS)
        *(uint64_t *)((char *)cfg + o->off) = v;
    else
        *(size_t *)((char *)cfg + o->off) = (size_t)v;
    return 0;
bad:
    fprintf(stderr, "cordon execd: %s %s: expected %s in %llu..%llu\n", o->name, val,
            o->type == OPT_SIZE ? "a size (e.g. 4M)" : "a number",
            (unsigned long long)o->min, (unsigned long long)o->max);
    return -EINVAL;
}

static int read_token(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "cordon execd: --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        n = 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
    if (n == 0 || (size_t)n >= cap - 1 || strlen(out) != (size_t)n) {
        fprintf(stderr, "cordon execd: --token-file %s: expected one line of 1..%zu bytes\n",
                path, cap - 2);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct execd_cfg *cfg)
{
    const char *listen = NULL, *token_file = NULL, *shell = NULL;
    for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
        const struct num_opt *o = &num_opts[i];
        if (o->type == OPT_MS)
            *(uint64_t *)((char *)cfg + o->off) = o->def;
        else
            *(size_t *)((char *)cfg + o->off) = (size_t)o->def;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cordon execd: %s needs a value (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--token-file") == 0) {
            token_file = v;
        } else if (strcmp(a, "--shell") == 0) {
            shell = v;
        } else if (strcmp(a, "--log-level") == 0) {
            enum log_level lvl;
            if (log_parse_level(v, &lvl) < 0) {
                fprintf(stderr, "cordon execd: --log-level %s: use error|warn|info|debug\n", v);
                return -1;
            }
            log_set_level(lvl);
        } else {
            size_t k = 0, n = sizeof(num_opts) / sizeof(num_opts[0]);
            while (k < n && strcmp(a, num_opts[k].name) != 0)
                k++;
            if (k == n) {
                fprintf(stderr, "cordon execd: unknown option %s (see --help)\n", a);
                return -1;
            }
            if (set_num(cfg, &num_opts[k], v) < 0)
                return -1;
        }
    }
    if (!listen || parse_sockaddr(listen, &cfg->listen, &cfg->listen_len) < 0) {
        fprintf(stderr, "cordon execd: --listen ADDR:PORT is required (e.g. 127.0.0.1:44772)\n");
        return -1;
    }
    if (token_file && read_token(token_file, cfg->token, sizeof(cfg->token)) < 0)
        return -1;
    const char *env_tok = getenv("EXECD_ACCESS_TOKEN"); /* OpenSandbox's variable */
    if (!token_file && env_tok && *env_tok)
        snprintf(cfg->token, sizeof(cfg->token), "%s", env_tok);
    unsetenv("EXECD_ACCESS_TOKEN"); /* never hand the token to the shells */
    if (proc_find_exe(shell ? shell : "bash", cfg->shell, sizeof(cfg->shell)) < 0 &&
        (shell || proc_find_exe("sh", cfg->shell, sizeof(cfg->shell)) < 0)) {
        fprintf(stderr, "cordon execd: no shell found (%s); pass --shell PATH\n",
                shell ? shell : "bash or sh in $PATH");
        return -1;
    }
    return 0;
}

int cli_execd(int argc, char **argv)
{
    struct execd_cfg *cfg = calloc(1, sizeof(*cfg));
    sigset_t set;
    if (!cfg)
        return 1;
    if (parse_args(argc, argv, cfg) < 0) {
        free(cfg);
        return 2;
    }
    /* Sessions cost up to four fds each: raise our soft limit, give
     * children the usual one back. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t orig = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (rl.rlim_cur > orig && setrlimit(RLIMIT_NOFILE, &rl) == 0)
            proc_set_child_nofile((unsigned long)orig);
    }
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int r = execd_run(cfg);
    free(cfg);
    if (r < 0) {
        fprintf(stderr, "cordon execd: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
