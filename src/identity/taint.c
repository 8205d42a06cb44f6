/* identity/taint: does a process's initial environment load foreign code
 * into its executable?
 *
 * Binary identity says which file the kernel executed; variables such as
 * LD_PRELOAD make that file run someone else's code first, so the
 * executable's name would vouch for code it never contained. The check
 * reads /proc/PID/environ: the environment the process was started with
 * (what it changes later is not there, and does not matter: injection
 * happens at start-up). PYTHONSTARTUP only affects interactive sessions
 * and is not counted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity/identity_int.h"
#include "core/banned.h"

#define TAINT_ENV_MAX (256 * 1024) /* larger environments are read this far */

struct taint_rule {
    const char *name;
    const char *const *flags; /* NULL: any non-empty value taints */
};

static const char *const node_flags[] = {"--require", "-r", "--import", "--loader",
                                         "--experimental-loader", NULL};
static const char *const bun_flags[] = {"--preload", "-r", NULL};
static const char *const java_flags[] = {"-javaagent", "-agentpath", "-agentlib", NULL};
static const char *const ruby_flags[] = {"-r", NULL};

static const struct taint_rule rules[] = {
    {"LD_PRELOAD", NULL},          {"LD_AUDIT", NULL},
    {"NODE_OPTIONS", node_flags},  {"BUN_OPTIONS", bun_flags},
    {"JAVA_TOOL_OPTIONS", java_flags}, {"JDK_JAVA_OPTIONS", java_flags},
    {"_JAVA_OPTIONS", java_flags}, {"PERL5OPT", NULL},
    {"RUBYOPT", ruby_flags},
};

/* True when one of the space-separated words of v starts with a flag
 * (exactly, or followed by '=' or ':' or, for short flags, anything). */
static bool has_flag(const char *v, size_t len, const char *const *flags)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t w = i;
        while (i < len && v[i] != ' ' && v[i] != '\t')
            i++;
        for (size_t f = 0; flags[f]; f++) {
            size_t fl = strlen(flags[f]);
            if (i - w < fl || memcmp(v + w, flags[f], fl) != 0)
                continue;
            bool short_flag = flags[f][1] != '-';
            if (i - w == fl || v[w + fl] == '=' || v[w + fl] == ':' || short_flag)
                return true;
        }
    }
    return false;
}

int identity_env_taint_check(const char *env, size_t len, char *out, size_t cap)
{
    size_t i = 0;
    while (i < len) {
        const char *e = env + i;
        const char *end = memchr(e, '\0', len - i);
        size_t el = end ? (size_t)(end - e) : len - i;
        const char *eq = memchr(e, '=', el);
        i += el + 1;
        if (!eq)
            continue;
        size_t nl = (size_t)(eq - e);
        const char *v = eq + 1;
        size_t vl = el - nl - 1;
        for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
            if (strlen(rules[r].name) != nl || memcmp(e, rules[r].name, nl) != 0 || vl == 0)
                continue;
            if (!rules[r].flags || has_flag(v, vl, rules[r].flags)) {
                snprintf(out, cap, "%s", rules[r].name);
                return 1;
            }
        }
    }
    return 0;
}

int identity_proc_env_taint(int proc_fd, pid_t pid, char *out, size_t cap)
{
    /* On the heap, not in TLS: every thread of the process would carry
     * 256 KiB of TLS (thread stacks are sized from RLIMIT_STACK). */
    char path[32];
    int rc;
    snprintf(path, sizeof(path), "%d/environ", (int)pid);
    int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(TAINT_ENV_MAX);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < TAINT_ENV_MAX) {
        ssize_t n = read(fd, buf + got, TAINT_ENV_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    out[0] = '\0';
    rc = identity_env_taint_check(buf, got, out, cap);
out:
    close(fd);
    free(buf);
    return rc;
}
