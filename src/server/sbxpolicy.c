/* server/sbxpolicy: the policy a new sandbox runs under (see sbxpolicy.h). */
#include "server/sbxpolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "core/banned.h"

#define POLICY_TEXT_MAX (1u << 20) /* the loader's own limit */
#define NAME_MAX_LEN 64

/* Reads a whole policy file (at most POLICY_TEXT_MAX). 0 or -errno/-EFBIG. */
static int read_text(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    char *b = malloc(POLICY_TEXT_MAX + 1);
    size_t n = 0;
    int rc = 0;
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, b + n, POLICY_TEXT_MAX + 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > POLICY_TEXT_MAX) {
            rc = -EFBIG;
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

/* A policy name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64, no "..". */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

/* Loads text with the policy loader; on errors fills err with the first
 * ones (prefixed by what) and returns -EINVAL. rule_map: map diagnostics
 * about translated entries to networkPolicy.egress[i]. */
static int check(const char *label, const char *text, size_t len, const char *what,
                 int rule_map, char *err, size_t cap)
{
    struct policy *pol = NULL;
    struct policy_diag diag = {0};
    int rc = policy_load_buffer(label, text, len, &pol, &diag);
    if (rc == 0) {
        policy_unref(pol);
        policy_diag_free(&diag);
        return 0;
    }
    size_t w = (size_t)snprintf(err, cap, "%s", what);
    size_t shown = 0;
    for (size_t i = 0; i < diag.n && shown < 3 && w < cap; i++) {
        const char *line = diag.lines[i];
        if (!strstr(line, ": error: "))
            continue;
        int rule = rule_map ? netpolicy_rule_of(line) : -1;
        if (rule >= 0)
            w += (size_t)snprintf(err + w, cap - w, "%snetworkPolicy.egress[%d]: %s",
                                  shown ? "; " : "", rule, strstr(line, ": error: ") + 9);
        else
            w += (size_t)snprintf(err + w, cap - w, "%s%s", shown ? "; " : "", line);
        shown++;
    }
    if (shown == 0 && w < cap)
        snprintf(err + w, cap - w, "%s", strerror(-rc));
    policy_diag_free(&diag);
    return -EINVAL;
}

int sbxpolicy_for_request(const struct sbxpolicy_cfg *cfg, const json_t *body, char **out,
                          size_t *len, char *err, size_t cap)
{
    const json_t *ext = json_object_get(body, "extensions");
    const json_t *jname = NULL, *jinline = NULL;
    const json_t *np = json_object_get(body, "networkPolicy");
    char *base = NULL, *block = NULL, *res = NULL;
    size_t blen = 0, rlen = 0;
    int rc;
    *out = NULL;
    *len = 0;
    if (ext && !json_is_null(ext)) {
        if (!json_is_object(ext)) {
            snprintf(err, cap, "extensions: must be an object of name -> string");
            return -EINVAL;
        }
        jname = json_object_get(ext, SBXPOLICY_EXT_NAME);
        jinline = json_object_get(ext, SBXPOLICY_EXT_INLINE);
    }
    if (np && json_is_null(np))
        np = NULL;
    if (!jname && !jinline && !np)
        return 0;
    if (jname && jinline) {
        snprintf(err, cap, "extensions: give either \"" SBXPOLICY_EXT_NAME "\" (a policy name) "
                 "or \"" SBXPOLICY_EXT_INLINE "\" (a policy YAML), not both");
        return -EINVAL;
    }
    if (np && (rc = netpolicy_translate(np, &cfg->np, &block, err, cap)) < 0)
        return rc;
    if (jname) {
        const char *name = json_string_value(jname);
        char path[4200];
        if (!name || !name_ok(name)) {
            snprintf(err, cap, "extensions." SBXPOLICY_EXT_NAME ": a policy name (letters, "
                     "digits, '.', '_', '-'; at most %d characters)", NAME_MAX_LEN);
            rc = -EINVAL;
            goto out;
        }
        if (!cfg->dir) {
            snprintf(err, cap, "extensions." SBXPOLICY_EXT_NAME ": this server has no policy "
                     "directory (start it with --policy-dir DIR)");
            rc = -EINVAL;
            goto out;
        }
        snprintf(path, sizeof(path), "%s/%s.yaml", cfg->dir, name);
        if ((rc = read_text(path, &base, &blen)) < 0) {
            snprintf(err, cap, "extensions." SBXPOLICY_EXT_NAME ": policy '%s': %s", name,
                     rc == -ENOENT ? "no such policy in the server's policy directory (a file "
                                     "NAME.yaml there)" : strerror(-rc));
            rc = rc == -ENOENT || rc == -EFBIG || rc == -ELOOP ? -EINVAL : rc;
            goto out;
        }
        char what[160];
        snprintf(what, sizeof(what), "extensions." SBXPOLICY_EXT_NAME ": policy '%s' has errors: ",
                 name);
        if ((rc = check(path, base, blen, what, 0, err, cap)) < 0)
            goto out;
    } else if (jinline) {
        const char *text = json_string_value(jinline);
        if (!text) {
            snprintf(err, cap, "extensions." SBXPOLICY_EXT_INLINE ": must be a string (a cordon "
                     "policy YAML)");
            rc = -EINVAL;
            goto out;
        }
        blen = strlen(text);
        if (!(base = strdup(text))) {
            rc = -ENOMEM;
            snprintf(err, cap, "out of memory");
            goto out;
        }
        if ((rc = check("extensions." SBXPOLICY_EXT_INLINE, base, blen, "", 0, err, cap)) < 0)
            goto out;
    } else {
        if ((rc = read_text(cfg->base_path, &base, &blen)) < 0) {
            snprintf(err, cap, "cannot read the server's policy %s: %s", cfg->base_path,
                     strerror(-rc));
            goto out;
        }
    }
    if (!block) {
        *out = base;
        *len = blen;
        base = NULL;
        rc = 0;
        goto out;
    }
    if ((rc = netpolicy_splice(base, blen, block, &res, &rlen, err, cap)) < 0) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, cap, "networkPolicy: cannot be combined with the %s policy: %s",
                 jname ? "named" : jinline ? "inline" : "server's", tmp);
        goto out;
    }
    if ((rc = check("networkPolicy", res, rlen, "", 1, err, cap)) < 0)
        goto out;
    *out = res;
    *len = rlen;
    res = NULL;
    rc = 0;
out:
    free(base);
    free(block);
    free(res);
    return rc;
}
