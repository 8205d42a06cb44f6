/* cli/run_learn: `cordon run --learn` — run with egress let through and
 * recorded, and write the policy that allows what was seen.
 *
 * The proxy does the letting through (proxy_set_learn): a request the
 * policy in force refuses for lack of an endpoint or binary, or by an
 * endpoint's rules, goes on and is logged as a "would_deny" event with
 * "learn": true; the hard boundaries stay (identity, the address fence, the
 * nftables fence against direct connections). This file is the audit
 * observer that feeds those events to the policy suggestion engine
 * (policy_suggest.c, the one `cordon policy suggest` uses) and, when the
 * command has exited, writes the proposal:
 *
 * - the policy in force has no network_policies entry (the built-in
 *   default, a filesystem-only policy): its text with the learned
 *   `network_policies:` in place of its own, so the file runs as is;
 * - it has entries: the learned entries alone, as a policy of their own,
 *   with a comment saying to merge them into the policy in force. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "core/parse.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "core/banned.h"

#define LEARN_POLICY_MAX (1u << 20) /* the policy text copied into the proposal */

struct run_learn {
    pthread_mutex_t lock;
    struct psuggest *s;
    const char *policy_path;
    const char *policy_label; /* how the header names it */
    char out[4096];
    const char *ips[PROXY_LEARN_IPS_MAX];
    struct policy_cidr cidrs[PROXY_LEARN_IPS_MAX];
    size_t n_ips;
};

int run_learn_parse_cidr(const char *s, struct policy_cidr *out)
{
    char ip[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t il = slash ? (size_t)(slash - s) : strlen(s);
    if (il == 0 || il >= sizeof(ip) || strpbrk(s, "\"\\\n"))
        return -EINVAL;
    memcpy(ip, s, il);
    ip[il] = '\0';
    memset(out, 0, sizeof(*out));
    uint32_t max;
    if (inet_pton(AF_INET, ip, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -EINVAL;
    }
    uint32_t prefix = max;
    if (slash && parse_u32_str(slash + 1, 0, max, &prefix) < 0)
        return -EINVAL;
    out->prefix = (uint8_t)prefix;
    return 0;
}

struct run_learn *run_learn_new(const char *policy_path, const char *policy_label,
                                const char *const *ips, size_t n_ips)
{
    if (n_ips > PROXY_LEARN_IPS_MAX)
        return NULL;
    struct run_learn *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    for (size_t i = 0; i < n_ips; i++) {
        l->ips[i] = ips[i];
        if (run_learn_parse_cidr(ips[i], &l->cidrs[i]) < 0) {
            free(l);
            return NULL;
        }
    }
    l->n_ips = n_ips;
    l->s = psuggest_new(l->ips, n_ips);
    if (!l->s) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->policy_path = policy_path;
    l->policy_label = policy_label ? policy_label : policy_path;
    return l;
}

void run_learn_free(struct run_learn *l)
{
    if (!l)
        return;
    psuggest_free(l->s);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int run_learn_prepare(struct run_learn *l, const char *out_arg, const struct sandbox_info *info,
                      char *err, size_t cap)
{
    if (out_arg) {
        if (strlen(out_arg) >= sizeof(l->out))
            return -ENAMETOOLONG;
        snprintf(l->out, sizeof(l->out), "%s", out_arg);
    } else {
        char logp[4096];
        int rc = run_log_default_path(info->name, logp, sizeof(logp));
        if (rc < 0) {
            snprintf(err, cap, "cannot create %s for the learned policy: %s (or pass "
                     "--learn-output FILE)", RUN_LOG_DIR, strerror(-rc));
            return rc;
        }
        size_t n = strlen(logp);
        if (n > 4 && strcmp(logp + n - 4, ".log") == 0)
            logp[n - 4] = '\0';
        if (snprintf(l->out, sizeof(l->out), "%s.learned.yaml", logp) >= (int)sizeof(l->out))
            return -ENAMETOOLONG;
    }
    /* the same rule as the audit log: nothing the sandbox could plant */
    int rc = run_log_check(l->out, info, err, cap);
    if (rc < 0)
        return rc;
    return 0;
}

int run_learn_start(struct run_learn *l, struct proxy *p)
{
    return proxy_set_learn(p, l->cidrs, l->n_ips);
}

void run_learn_observe(const char *event, json_t *ev, void *data)
{
    struct run_learn *l = data;
    if (strcmp(event, "decision") != 0 && strcmp(event, "l7_request") != 0)
        return;
    pthread_mutex_lock(&l->lock);
    psuggest_take(l->s, ev);
    pthread_mutex_unlock(&l->lock);
}

/* Copies the policy text without its top-level network_policies block
 * (from a line starting "network_policies:" to the next top-level line)
 * and without its leading comment lines. */
static void copy_policy(FILE *out, const char *text)
{
    bool skipping = false, body = false;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        bool top = p[0] != ' ' && p[0] != '\t' && p[0] != '#' && p[0] != '\n' && p[0] != '\r';
        if (top)
            skipping = strncmp(p, "network_policies:", 17) == 0;
        if (!body && p[0] == '#' && !skipping) {
            p += n; /* the original's header comment: ours replaces it */
            continue;
        }
        body = true;
        if (!skipping)
            fwrite(p, 1, n, out);
        p += n;
    }
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(LEARN_POLICY_MAX + 1);
    size_t n = buf ? fread(buf, 1, LEARN_POLICY_MAX, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

int run_learn_write(struct run_learn *l, struct run_term *t)
{
    pthread_mutex_lock(&l->lock);
    size_t n_hosts, n_used = psuggest_count(l->s, &n_hosts);
    struct policy *cur = policy_current();
    bool merge = cur && policy_n_entries(cur) > 0;
    if (cur)
        policy_unref(cur);
    int rc = 0;
    int fd = open(l->out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_unlock(&l->lock);
        run_term_say(t, "cordon: --learn: cannot write %s: %s", l->out, strerror(-rc));
        return rc;
    }
    fprintf(f, "# Learned by `cordon run --learn` (policy in force: %s).\n"
               "# Allows the %zu request(s) it would have refused, to %zu host(s).\n"
               "# Hard boundaries were kept while\n"
               "# learning (loopback, link-local/metadata and the proxy's own addresses,\n"
               "# private addresses outside --learn-allowed-ips, unidentified programs,\n"
               "# direct connections), so nothing here needs them.\n"
               "# Review it, then: cordon policy check FILE; cordon run --policy FILE ...\n",
            l->policy_label, n_used, n_hosts);
    char *text = merge ? NULL : read_text(l->policy_path);
    if (merge) {
        fprintf(f, "# %s has network_policies of its own: merge these entries into it.\n"
                   "version: 1\n", l->policy_label);
    } else if (text) {
        copy_policy(f, text);
    } else {
        fprintf(f, "version: 1\n");
    }
    free(text);
    psuggest_print(l->s, f);
    if (fflush(f) != 0 || ferror(f))
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    pthread_mutex_unlock(&l->lock);
    if (rc < 0) {
        run_term_say(t, "cordon: --learn: writing %s failed: %s", l->out, strerror(-rc));
        return rc;
    }
    run_term_say(t, "cordon: learned %zu request(s) to %zu host(s); proposed policy: %s "
                 "(review it, then: cordon policy check %s)", n_used, n_hosts, l->out, l->out);
    return 0;
}
