/* cli/policy_init: `cordon policy init [--preset NAME[,NAME...]]... [--output FILE]`
 * writes a commented starter policy, and cordon run's built-in default.
 *
 * The presets name the hosts each service documents for its API or
 * package downloads (the source is cited above each entry). They allow
 * plain tunnels (no TLS inspection): the comments say how to narrow an
 * entry to HTTP rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_int.h"
#include "core/banned.h"

struct preset {
    const char *name;
    const char *text; /* one network_policies entry, indented by 2 */
};

static const struct preset presets[] = {
    {"github",
     "  # GitHub: git over HTTPS, the REST API, release and raw downloads\n"
     "  # (docs.github.com: \"About GitHub's IP addresses\", REST API quickstart).\n"
     "  github:\n"
     "    endpoints:\n"
     "      - {host: github.com, port: 443}\n"
     "      - {host: api.github.com, port: 443}\n"
     "      - {host: codeload.github.com, port: 443}\n"
     "      - {host: uploads.github.com, port: 443}\n"
     "      - {host: objects.githubusercontent.com, port: 443}\n"
     "      - {host: raw.githubusercontent.com, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/git\n"
     "      - path: /usr/lib/git-core/git-remote-http*\n"
     "      - path: /usr/bin/curl\n"
     "      - path: /usr/bin/gh\n"},
    {"pypi",
     "  # PyPI: the index and the file host (docs.pypi.org, \"Simple repository API\").\n"
     "  pypi:\n"
     "    endpoints:\n"
     "      - {host: pypi.org, port: 443}\n"
     "      - {host: files.pythonhosted.org, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/python3*\n"
     "      - path: /usr/local/bin/python3*\n"
     "      - path: /usr/bin/pip*\n"
     "      - path: /usr/local/bin/pip*\n"
     "      - path: /**/bin/uv\n"},
    {"npm",
     "  # npm: the public registry (docs.npmjs.com, \"npm registry\").\n"
     "  npm:\n"
     "    endpoints:\n"
     "      - {host: registry.npmjs.org, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"},
    {"crates",
     "  # crates.io: the sparse index, the API and the downloads\n"
     "  # (doc.rust-lang.org/cargo, \"Registries\" and \"Registry index\").\n"
     "  crates:\n"
     "    endpoints:\n"
     "      - {host: index.crates.io, port: 443}\n"
     "      - {host: crates.io, port: 443}\n"
     "      - {host: static.crates.io, port: 443}\n"
     "    binaries:\n"
     "      - path: /**/bin/cargo\n"
},
    {"goproxy",
     "  # Go modules: the module proxy and the checksum database (go.dev/ref/mod,\n"
     "  # GOPROXY and GOSUMDB defaults).\n"
     "  goproxy:\n"
     "    endpoints:\n"
     "      - {host: proxy.golang.org, port: 443}\n"
     "      - {host: sum.golang.org, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/lib/go*/bin/go\n"
     "      - path: /**/go/bin/go\n"
     "      - path: /usr/bin/go\n"},
    {"anthropic",
     "  # Anthropic API (docs.anthropic.com, \"API overview\"), e.g. Claude Code (node)\n"
     "  # or the Python SDK.\n"
     "  anthropic:\n"
     "    endpoints:\n"
     "      - {host: api.anthropic.com, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"
     "      - path: /**/bin/claude\n"
     "      - path: /usr/bin/python3*\n"},
    {"openai",
     "  # OpenAI API (platform.openai.com/docs/api-reference), e.g. Codex or the\n"
     "  # Python SDK.\n"
     "  openai:\n"
     "    endpoints:\n"
     "      - {host: api.openai.com, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"
     "      - path: /**/bin/codex\n"
     "      - path: /usr/bin/python3*\n"},
    {"slack",
     "  # Slack: the Web API (slack.com/api/...), Socket Mode WebSockets,\n"
     "  # incoming webhooks and files (api.slack.com/web, /apis/socket-mode,\n"
     "  # /messaging/webhooks).\n"
     "  slack:\n"
     "    endpoints:\n"
     "      - {host: slack.com, port: 443}\n"
     "      - {host: wss-primary.slack.com, port: 443}\n"
     "      - {host: wss-backup.slack.com, port: 443}\n"
     "      - {host: hooks.slack.com, port: 443}\n"
     "      - {host: files.slack.com, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"
     "      - path: /usr/bin/python3*\n"},
    {"discord",
     "  # Discord bots: the HTTP API, the Gateway WebSocket (the URL GET /gateway/bot\n"
     "  # returns, gateway.discord.gg and regional *.discord.gg for resumes) and the\n"
     "  # CDN (discord.com/developers/docs/reference, /topics/gateway).\n"
     "  discord:\n"
     "    endpoints:\n"
     "      - {host: discord.com, port: 443}\n"
     "      - {host: gateway.discord.gg, port: 443}\n"
     "      - {host: \"*.discord.gg\", port: 443}\n"
     "      - {host: cdn.discordapp.com, port: 443}\n"
     "      - {host: media.discordapp.net, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"
     "      - path: /usr/bin/python3*\n"},
    {"telegram",
     "  # Telegram Bot API (core.telegram.org/bots/api: https://api.telegram.org/bot<token>/...).\n"
     "  telegram:\n"
     "    endpoints:\n"
     "      - {host: api.telegram.org, port: 443}\n"
     "    binaries:\n"
     "      - path: /usr/bin/node\n"
     "      - path: /**/bin/node\n"
     "      - path: /usr/bin/python3*\n"},
};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

static const char HEADER[] =
    "# cordon sandbox policy (OpenShell format). Check it with\n"
    "#   cordon policy check FILE\n"
    "# run with it:\n"
    "#   cordon run --policy FILE -- COMMAND\n"
    "# and after an edit, apply it to a running sandbox without a restart:\n"
    "#   cordon policy reload --sandbox NAME     (or SIGHUP to cordon run)\n"
    "# Reference: doc/policy.md. Denials tell you the entry that would allow them.\n"
    "version: 1\n"
    "\n"
    "# filesystem_policy: without this section the command may read the system\n"
    "# (/usr /bin /sbin /lib /lib64 /etc, parts of /dev, /proc) and write the\n"
    "# workdir and /tmp. A section replaces that default entirely:\n"
    "# filesystem_policy:\n"
    "#   include_workdir: true\n"
    "#   read_only: [/usr, /lib, /lib64, /bin, /sbin, /etc, /proc, /dev/urandom]\n"
    "#   read_write: [/tmp, /dev/null]\n"
    "\n"
    "# process:\n"
    "#   run_as_user: cordon        # never root\n"
    "\n";

static const char NO_NETWORK[] =
    "# network_policies: which binaries may reach which host:port. Nothing is\n"
    "# allowed unless an entry allows it. Example:\n"
    "#\n"
    "# network_policies:\n"
    "#   example:\n"
    "#     endpoints:\n"
    "#       - host: api.example.com\n"
    "#         port: 443\n"
    "#         # protocol: rest      # inspect TLS and check each HTTP request:\n"
    "#         # access: read-only   # GET/HEAD/OPTIONS only (or rules: [...])\n"
    "#     binaries:\n"
    "#       - path: /usr/bin/curl\n"
    "#\n"
    "# Presets for common services: cordon policy init --preset github,pypi,...\n";

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon policy init [--preset NAME[,NAME...]]... [--output FILE [--force]]\n"
               "\n"
               "Writes a commented starter policy to stdout (or FILE, which is not\n"
               "overwritten without --force). Presets allow the documented hosts of:\n");
    for (size_t i = 0; i < N_PRESETS; i++)
        fprintf(f, "%s%s", i ? ", " : "  ", presets[i].name);
    fprintf(f, "\n");
}

static const struct preset *find_preset(const char *name)
{
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* The starter policy with the chosen presets (chosen[i] for presets[i]). */
static void write_policy(FILE *f, const bool *chosen)
{
    fputs(HEADER, f);
    bool any = false;
    for (size_t i = 0; i < N_PRESETS; i++)
        any |= chosen[i];
    if (!any) {
        fputs(NO_NETWORK, f);
        return;
    }
    fputs("network_policies:\n", f);
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (!chosen[i])
            continue;
        fputs(presets[i].text, f);
        fputs("\n", f);
    }
}

int cli_policy_init(int argc, char **argv)
{
    bool chosen[N_PRESETS] = {false};
    const char *output = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--force") == 0) {
            force = true;
            continue;
        }
        if (strncmp(a, "--preset=", 9) == 0)
            v = a + 9;
        else if (strncmp(a, "--output=", 9) == 0)
            output = a + 9;
        else if ((strcmp(a, "--preset") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc)
            (a[2] == 'p' ? (void)(v = argv[++i]) : (void)(output = argv[++i]));
        else {
            static const char *const opts[] = {"--preset", "--output", "--force", "--help", NULL};
            cli_unknown_option("policy init", a, opts);
            return 2;
        }
        if (!v)
            continue;
        char list[512];
        snprintf(list, sizeof(list), "%s", v);
        char *save = NULL;
        for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
            const struct preset *p = find_preset(n);
            if (!p) {
                const char *names[N_PRESETS + 1];
                for (size_t k = 0; k < N_PRESETS; k++)
                    names[k] = presets[k].name;
                names[N_PRESETS] = NULL;
                const char *sug = cli_suggest(n, names);
                fprintf(stderr, "cordon policy init: unknown preset '%s' (%s%s%sknown: github, "
                        "pypi, npm, crates, goproxy, anthropic, openai, slack, discord, "
                        "telegram)\n", n, sug ? "did you mean '" : "", sug ? sug : "",
                        sug ? "'? " : "");
                return 2;
            }
            chosen[p - presets] = true;
        }
    }
    if (!output) {
        write_policy(stdout, chosen);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    int fd = open(output, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "cordon policy init: %s: %s%s\n", output, strerror(errno),
                errno == EEXIST ? " (use --force to overwrite)" : "");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    write_policy(f, chosen);
    if (fclose(f) != 0) {
        fprintf(stderr, "cordon policy init: %s: %s\n", output, strerror(errno));
        return 1;
    }
    fprintf(stderr, "cordon policy init: wrote %s; check it with: cordon policy check %s\n",
            output, output);
    return 0;
}

int run_default_policy_write(const char *name, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/%s.default-policy.yaml", RUN_CTL_DIR, name);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    if ((mkdir("/run/cordon", 0755) < 0 && errno != EEXIST) ||
        (mkdir(RUN_CTL_DIR, 0700) < 0 && errno != EEXIST))
        return -errno;
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    bool none[N_PRESETS] = {false};
    fputs("# cordon run's built-in default: no network, the standard filesystem policy.\n", f);
    write_policy(f, none);
    return fclose(f) == 0 ? 0 : -EIO;
}
