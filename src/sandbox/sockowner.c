/* sandbox/sockowner: which process of the sandbox sent a fenced packet.
 *
 * The packet's tuple names a socket in the sandbox namespace; sock_diag
 * (NETLINK_SOCK_DIAG, exact lookup) gives its inode, which also covers a TCP
 * socket still in SYN_SENT (the fence holds the SYN until the monitor has
 * answered, see fence.c) and UDP sockets, connected or only bound. Then the
 * processes of the sandbox's PID namespace are scanned for that inode.
 *
 * This is the bypass monitor's own small lookup: identity/ resolves
 * accepted TCP connections for the proxy and keeps TOFU state we do not
 * need here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/parse.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

/* Exact lookup of one socket. swap: UDP's dump_one reads the request's
 * "src" as the remote end (kernel udp_diag.c, "for historical reasons"). */
static int diag_lookup(int fd, const struct pkt_info *pi, bool swap, uint64_t *inode)
{
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    static uint32_t seq;
    req.h.nlmsg_seq = ++seq;
    req.r.sdiag_family = (uint8_t)pi->family;
    req.r.sdiag_protocol = pi->proto;
    req.r.idiag_states = ~0u;
    size_t alen = pi->family == AF_INET ? 4 : 16;
    const uint8_t *local = pi->src, *remote = pi->dst;
    uint16_t lport = pi->sport, rport = pi->dport;
    if (swap) {
        local = pi->dst;
        remote = pi->src;
        lport = pi->dport;
        rport = pi->sport;
    }
    memcpy(req.r.id.idiag_src, local, alen);
    memcpy(req.r.id.idiag_dst, remote, alen);
    req.r.id.idiag_sport = htons(lport);
    req.r.id.idiag_dport = htons(rport);
    req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
        return -errno;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != req.h.nlmsg_seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                    return -EPROTO;
                return e->error ? e->error : -ENOENT;
            }
            if (h->nlmsg_type == NLMSG_DONE)
                return -ENOENT;
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->idiag_inode == 0)
                return -ENOENT; /* a request/timewait mini socket: no owner */
            *inode = m->idiag_inode;
            return 0;
        }
    }
}

static pid_t name_pid(const char *s)
{
    uint32_t v;
    if (parse_u32_str(s, 1, (uint32_t)INT32_MAX, &v) < 0)
        return 0;
    return (pid_t)v;
}

/* Reads /proc/PID/status fields PPid and the last NSpid. */
static int proc_status(int proc_fd, pid_t pid, pid_t *ppid, pid_t *ns_pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "%d/status", (int)pid);
    int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    *ppid = 0;
    *ns_pid = pid;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "PPid:", 5) == 0) {
            *ppid = name_pid(line + 5 + strspn(line + 5, " \t"));
        } else if (strncmp(line, "NSpid:", 6) == 0) {
            char *last = strrchr(line, '\t');
            if (!last)
                last = strrchr(line, ' ');
            if (last) {
                pid_t v = name_pid(last + 1);
                if (v > 0)
                    *ns_pid = v;
            }
        }
    }
    return 0;
}

static void proc_exe(int proc_fd, pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "%d/exe", (int)pid);
    ssize_t n = readlinkat(proc_fd, path, out, cap - 1);
    if (n < 0)
        n = 0;
    out[n] = '\0';
}

static bool in_sandbox(const struct sockowner_ctx *c, pid_t pid)
{
    if (!c->pidns_ino)
        return false;
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "%d/ns/pid", (int)pid);
    if (fstatat(c->proc_fd, path, &st, 0) < 0)
        return false;
    return st.st_ino == c->pidns_ino;
}

static bool holds_inode(int proc_fd, pid_t pid, uint64_t inode)
{
    char path[64], want[48], link[64];
    snprintf(path, sizeof(path), "%d/fd", (int)pid);
    int len = snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
    int dfd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return false;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return false;
    }
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
        if (n == len && memcmp(link, want, (size_t)len) == 0)
            found = true;
    }
    closedir(d);
    return found;
}

/* Scans every pid in /proc that is in the sandbox's PID namespace. */
static int find_holder_scan(const struct sockowner_ctx *c, uint64_t inode, pid_t *out)
{
    int dfd = openat(c->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = -errno;
        close(dfd);
        return e;
    }
    int rc = -ENOENT;
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t pid = name_pid(de->d_name);
        if (pid <= 0 || pid == c->init_pid || !in_sandbox(c, pid))
            continue;
        if (holds_inode(c->proc_fd, pid, inode)) {
            *out = pid;
            rc = 0;
            break;
        }
    }
    closedir(d);
    return rc;
}

#define SOCKOWNER_MAX_WALK 4096

/* Appends the children of every thread of pid (/proc/PID/task/TID/children)
 * to q. Returns 0, -E2BIG when q is full, -ENOENT without the children
 * files (CONFIG_PROC_CHILDREN off). */
static int children_of(int proc_fd, pid_t pid, pid_t *q, size_t *n)
{
    char path[64];
    snprintf(path, sizeof(path), "%d/task", (int)pid);
    int tfd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0)
        return errno == ENOENT ? 0 : -errno; /* gone meanwhile */
    DIR *d = fdopendir(tfd);
    if (!d) {
        close(tfd);
        return -errno;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char cpath[300], buf[4096];
        snprintf(cpath, sizeof(cpath), "%s/children", de->d_name);
        int fd = openat(tfd, cpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = errno == ENOENT ? -ENOENT : 0;
            break;
        }
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        if ((size_t)len == sizeof(buf) - 1) {
            rc = -E2BIG; /* more children than we can read at once */
            break;
        }
        buf[len] = '\0';
        char *save = NULL;
        for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
            pid_t child = name_pid(t);
            if (child <= 0)
                continue;
            if (*n >= SOCKOWNER_MAX_WALK) {
                rc = -E2BIG;
                break;
            }
            q[(*n)++] = child;
        }
    }
    closedir(d);
    return rc;
}

/* Walks the process tree below init (only the sandbox's processes, however
 * many the host has); falls back to the full scan when the tree cannot be
 * read or is very large. */
static int find_holder(const struct sockowner_ctx *c, uint64_t inode, pid_t *out)
{
    pid_t q[SOCKOWNER_MAX_WALK]; /* on the supervisor loop's stack, not __thread (zeroed per thread) */
    size_t n = 0, i = 0;
    int rc = children_of(c->proc_fd, c->init_pid, q, &n);
    while (rc == 0 && i < n) {
        pid_t pid = q[i++];
        if (holds_inode(c->proc_fd, pid, inode)) {
            *out = pid;
            return 0;
        }
        rc = children_of(c->proc_fd, pid, q, &n);
    }
    if (rc == 0)
        return -ENOENT;
    return find_holder_scan(c, inode, out);
}

int sockowner_find(const struct sockowner_ctx *c, const struct pkt_info *pi,
                   struct sockowner *out)
{
    memset(out, 0, sizeof(*out));
    if (pi->proto != IPPROTO_TCP && pi->proto != IPPROTO_UDP)
        return -ENOENT;
    uint64_t inode = 0;
    int rc;
    if (pi->proto == IPPROTO_TCP) {
        rc = diag_lookup(c->diag_fd, pi, false, &inode);
    } else {
        rc = diag_lookup(c->diag_fd, pi, true, &inode);
        if (rc < 0)
            rc = diag_lookup(c->diag_fd, pi, false, &inode);
    }
    if (rc < 0)
        return rc;
    pid_t pid = 0;
    if ((rc = find_holder(c, inode, &pid)) < 0)
        return rc;
    out->pid = pid;
    pid_t ppid = 0;
    if (proc_status(c->proc_fd, pid, &ppid, &out->ns_pid) < 0)
        return -ENOENT; /* gone meanwhile */
    proc_exe(c->proc_fd, pid, out->exe, sizeof(out->exe));
    while (ppid > 0 && ppid != c->init_pid && out->n_ancestors < SOCKOWNER_MAX_ANCESTORS &&
           in_sandbox(c, ppid)) {
        size_t i = out->n_ancestors++;
        out->ancestor_pids[i] = ppid;
        proc_exe(c->proc_fd, ppid, out->ancestors[i], sizeof(out->ancestors[i]));
        pid_t next = 0, ignored;
        if (proc_status(c->proc_fd, ppid, &next, &ignored) < 0)
            break;
        ppid = next;
    }
    return 0;
}
