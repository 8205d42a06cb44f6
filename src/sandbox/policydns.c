/* sandbox/policydns: the policy DNS responder (see policydns.h). */
#include "sandbox/policydns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "core/loop.h"
#include "policy/policy.h"
#include "sandbox/addrmap.h"
#include "sandbox/dnsmsg.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

const char POLICYDNS_REASON_NOT_IN_POLICY[] = "name_not_in_policy";
const char POLICYDNS_REASON_TYPE[] = "record_type_not_served";
const char POLICYDNS_REASON_BAD_NAME[] = "name_not_nameable";
const char POLICYDNS_REASON_MAP_FULL[] = "address_range_full";

struct dns_tcp {
    struct policydns *d;
    int fd;
    struct loop_io io;
    struct loop_timer timer;
    uint8_t in[2 + POLICYDNS_TCP_MSG_MAX];
    size_t in_len;
    bool used;
};

/* Repeats of one denial (same name, type and process) within the window
 * are counted, not logged one by one: a client retrying a denied name in a
 * loop must not flood the audit log. The first is always logged; the count
 * follows when the window ends (or at exit). */
struct dns_repeat {
    char name[DNSMSG_NAME_MAX + 1];
    uint16_t qtype;
    pid_t pid;
    char exe[256];
    uint64_t first_ms;
    uint32_t repeats;
    bool used;
};

struct policydns {
    struct dns_repeat rep[POLICYDNS_REPEAT_CAP];
    size_t rep_n; /* used entries of rep (none: its pages are never touched) */
    struct loop_timer rep_timer;
    int udp_fd, tcp_fd;
    struct sockowner_ctx own;
    struct addrmap *map;
    struct policydns_extra extra;
    char *sandbox_name;
    struct loop *loop;
    struct loop_io udp_io, tcp_io;
    struct dns_tcp tcp[POLICYDNS_MAX_TCP];
    uint64_t n_queries, n_denied;
};

/* ---- the answer ---- */

static int build(const struct dnsmsg_query *q, enum dnsmsg_rcode rc, const struct in_addr *a,
                 size_t n, uint8_t *out, size_t cap)
{
    return dnsmsg_build_answer(q, rc, a, n, POLICYDNS_TTL, out, cap);
}

int policydns_answer(const struct policy *pol, const struct policydns_extra *extra,
                     struct addrmap *map, const uint8_t *msg,
                     size_t len, struct dnsmsg_query *q, const char **denied, uint8_t *out,
                     size_t cap)
{
    *denied = NULL;
    int rc = dnsmsg_parse_query(msg, len, q);
    if (rc == -EINVAL || rc == -EPROTO)
        return 0; /* nothing to answer to, or a response: never answer those */
    if (rc == -EOPNOTSUPP)
        return build(q, DNSMSG_NOTIMP, NULL, 0, out, cap);
    if (rc < 0)
        return build(q, DNSMSG_FORMERR, NULL, 0, out, cap);
    if (q->qclass != DNSMSG_C_IN)
        return build(q, DNSMSG_REFUSED, NULL, 0, out, cap);
    switch (q->qtype) {
    case DNSMSG_T_PTR:
    case DNSMSG_T_SRV:
    case DNSMSG_T_MX:
    case DNSMSG_T_TXT:
    case DNSMSG_T_ANY:
        *denied = POLICYDNS_REASON_TYPE;
        return build(q, DNSMSG_NXDOMAIN, NULL, 0, out, cap);
    default:
        break;
    }
    if (q->odd_name) {
        *denied = POLICYDNS_REASON_BAD_NAME;
        return build(q, DNSMSG_NXDOMAIN, NULL, 0, out, cap);
    }
    if (!policy_names_host(pol, q->name) &&
        !(extra && extra->names && extra->names(extra->ctx, q->name))) {
        *denied = POLICYDNS_REASON_NOT_IN_POLICY;
        return build(q, DNSMSG_NXDOMAIN, NULL, 0, out, cap);
    }
    if (q->qtype != DNSMSG_T_A)
        return build(q, DNSMSG_NOERROR, NULL, 0, out, cap); /* NODATA */
    struct in_addr a;
    if ((rc = addrmap_assign(map, q->name, &a)) < 0) {
        *denied = POLICYDNS_REASON_MAP_FULL;
        return build(q, DNSMSG_NXDOMAIN, NULL, 0, out, cap);
    }
    return build(q, DNSMSG_NOERROR, &a, 1, out, cap);
}

/* ---- audit ---- */

static const char *reason_text(const char *r)
{
    if (r == POLICYDNS_REASON_TYPE)
        return "this record type is not served in the sandbox (only A, for names the policy "
               "allows)";
    if (r == POLICYDNS_REASON_BAD_NAME)
        return "the name has characters no policy host can have";
    if (r == POLICYDNS_REASON_MAP_FULL)
        return "the sandbox's synthetic address range is exhausted";
    return "no network_policies endpoint names this host";
}

static uint64_t now_ms(struct policydns *d)
{
    return d->loop ? loop_now_ms(d->loop) : loop_clock_ms();
}

static void emit_repeats(struct policydns *d, const struct dns_repeat *r)
{
    char tn[16];
    json_t *o = json_object();
    if (d->sandbox_name)
        json_object_set_new(o, "sandbox", json_string(d->sandbox_name));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "qtype", json_string(dnsmsg_type_name(r->qtype, tn, sizeof(tn))));
    json_object_set_new(o, "rcode", json_string("NXDOMAIN"));
    json_object_set_new(o, "pid", r->pid ? json_integer(r->pid) : json_null());
    json_object_set_new(o, "binary", r->exe[0] ? json_string(r->exe) : json_null());
    json_object_set_new(o, "repeated", json_true());
    json_object_set_new(o, "count", json_integer(r->repeats));
    json_object_set_new(o, "window_ms", json_integer(POLICYDNS_REPEAT_WINDOW_MS));
    audit_emit("dns_denied", o);
}

/* Flushes the counts of windows that ended (all: every one, at exit). */
static void expire_repeats(struct policydns *d, bool all)
{
    uint64_t now = now_ms(d);
    for (size_t i = 0; d->rep_n && i < POLICYDNS_REPEAT_CAP; i++) {
        struct dns_repeat *r = &d->rep[i];
        if (!r->used || (!all && now - r->first_ms < POLICYDNS_REPEAT_WINDOW_MS))
            continue;
        if (r->repeats)
            emit_repeats(d, r);
        r->used = false;
        d->rep_n--;
    }
}

static void repeat_timer(struct loop *l, struct loop_timer *t)
{
    struct policydns *d = t->data;
    expire_repeats(d, false);
    for (size_t i = 0; d->rep_n && i < POLICYDNS_REPEAT_CAP; i++)
        if (d->rep[i].used) {
            (void)loop_timer_start(l, &d->rep_timer, 1000);
            return;
        }
}

/* True when this denial is the first of its key in the window (log it);
 * false when it was counted. */
static bool repeat_first(struct policydns *d, const struct dnsmsg_query *q, pid_t pid,
                         const char *exe)
{
    uint64_t now = now_ms(d);
    struct dns_repeat *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < POLICYDNS_REPEAT_CAP; i++) {
        struct dns_repeat *r = &d->rep[i];
        if (!r->used) {
            if (!free_slot)
                free_slot = r;
            continue;
        }
        if (r->qtype == q->qtype && r->pid == pid && strcmp(r->name, q->name) == 0 &&
            strcmp(r->exe, exe) == 0) {
            if (now - r->first_ms < POLICYDNS_REPEAT_WINDOW_MS) {
                r->repeats++;
                return false;
            }
            if (r->repeats)
                emit_repeats(d, r);
            r->first_ms = now;
            r->repeats = 0;
            return true;
        }
        if (!oldest || r->first_ms < oldest->first_ms)
            oldest = r;
    }
    struct dns_repeat *r = free_slot;
    if (!r) { /* full: the oldest key makes room, its count is logged now */
        r = oldest;
        if (r->repeats)
            emit_repeats(d, r);
    } else {
        d->rep_n++;
    }
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", q->name);
    snprintf(r->exe, sizeof(r->exe), "%s", exe);
    r->qtype = q->qtype;
    r->pid = pid;
    r->first_ms = now;
    r->used = true;
    if (d->loop && !loop_timer_armed(&d->rep_timer))
        (void)loop_timer_start(d->loop, &d->rep_timer, 1000);
    return true;
}

static void emit_denied(struct policydns *d, const struct dnsmsg_query *q, const char *reason,
                        const char *proto, const struct pkt_info *pi, struct policy *pol)
{
    struct sockowner ow;
    memset(&ow, 0, sizeof(ow));
    int why = sockowner_find(&d->own, pi, &ow);
    d->n_denied++;
    if (!repeat_first(d, q, why == 0 ? ow.pid : 0, why == 0 ? ow.exe : ""))
        return;
    char tn[16];
    json_t *o = json_object();
    if (d->sandbox_name)
        json_object_set_new(o, "sandbox", json_string(d->sandbox_name));
    json_object_set_new(o, "name", json_string(q->name));
    json_object_set_new(o, "qtype", json_string(dnsmsg_type_name(q->qtype, tn, sizeof(tn))));
    json_object_set_new(o, "proto", json_string(proto));
    json_object_set_new(o, "rcode", json_string("NXDOMAIN"));
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "detail", json_string(reason_text(reason)));
    json_object_set_new(o, "src_port", json_integer(pi->sport));
    if (why == 0) {
        json_object_set_new(o, "pid", json_integer(ow.pid));
        json_object_set_new(o, "sandbox_pid", json_integer(ow.ns_pid));
        json_object_set_new(o, "binary", json_string(ow.exe));
        json_t *anc = json_array(), *apids = json_array();
        for (size_t i = 0; i < ow.n_ancestors; i++) {
            json_array_append_new(anc, json_string(ow.ancestors[i]));
            json_array_append_new(apids, json_integer(ow.ancestor_pids[i]));
        }
        json_object_set_new(o, "ancestors", anc);
        json_object_set_new(o, "ancestor_pids", apids);
    } else {
        json_object_set_new(o, "pid", json_null());
        json_object_set_new(o, "binary", json_null());
        json_object_set_new(o, "ancestors", json_array());
        json_object_set_new(o, "identity", json_string(
            why == -ENOENT ? "the asking socket was gone before it could be identified"
                           : strerror(-why)));
    }
    char hint[640];
    if (reason == POLICYDNS_REASON_NOT_IN_POLICY) {
        /* The same advice the proxy gives for this host (port 443 as the
         * usual case), naming the binary when we know it. */
        struct policy_query pq = {.host = q->name, .port = 443, .exe = why == 0 ? ow.exe : NULL};
        struct policy_decision dec;
        policy_decide(pol, &pq, &dec);
        snprintf(hint, sizeof(hint), "names are answered only for hosts the policy allows; to "
                                     "allow this one: %s. Retrying will not help.",
                 dec.hint[0] ? dec.hint : "add an endpoint for it");
    } else if (reason == POLICYDNS_REASON_TYPE) {
        snprintf(hint, sizeof(hint), "only address (A) lookups are answered in the sandbox; "
                                     "connect to the host name instead");
    } else {
        snprintf(hint, sizeof(hint), "this name cannot be allowed; check the spelling");
    }
    json_object_set_new(o, "hint", json_string(hint));
    json_object_set_new(o, "count", json_integer(1));
    audit_emit("dns_denied", o);
}

/* One query in, one answer out (0 = none). */
static int handle(struct policydns *d, const uint8_t *msg, size_t len, const char *proto,
                  const struct pkt_info *pi, uint8_t *out, size_t cap)
{
    struct policy *pol = policy_current();
    struct dnsmsg_query q;
    const char *denied = NULL;
    int n = policydns_answer(pol, &d->extra, d->map, msg, len, &q, &denied, out, cap);
    d->n_queries++;
    if (n > 0 && denied) /* before the answer: the asker still holds its socket */
        emit_denied(d, &q, denied, proto, pi, pol);
    if (n > 0 && !denied) {
        char tn[16];
        log_debug("dns: %s %s -> answered", q.name, dnsmsg_type_name(q.qtype, tn, sizeof(tn)));
    }
    if (pol)
        policy_unref(pol);
    return n;
}

static void fill_pkt(struct pkt_info *pi, uint8_t proto, const struct sockaddr_in *peer)
{
    memset(pi, 0, sizeof(*pi));
    pi->family = AF_INET;
    pi->proto = proto;
    memcpy(pi->src, &peer->sin_addr, 4);
    pi->sport = ntohs(peer->sin_port);
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    memcpy(pi->dst, &lo, 4);
    pi->dport = POLICYDNS_PORT;
}

/* ---- UDP ---- */

static void on_udp(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct policydns *d = io->data;
    (void)l;
    (void)ev;
    for (int i = 0; i < POLICYDNS_MAX_PER_WAKEUP; i++) {
        uint8_t msg[DNSMSG_UDP_MAX + 1], out[DNSMSG_UDP_MAX];
        struct sockaddr_in peer;
        socklen_t pl = sizeof(peer);
        ssize_t n = recvfrom(d->udp_fd, msg, sizeof(msg), 0, (struct sockaddr *)&peer, &pl);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error for an earlier answer */
        if (peer.sin_family != AF_INET || (size_t)n > DNSMSG_UDP_MAX)
            continue; /* RFC 1035 section 4.2.1: UDP messages are 512 bytes at most */
        struct pkt_info pi;
        fill_pkt(&pi, IPPROTO_UDP, &peer);
        int m = handle(d, msg, (size_t)n, "udp", &pi, out, sizeof(out));
        if (m > 0 && sendto(d->udp_fd, out, (size_t)m, MSG_DONTWAIT, (struct sockaddr *)&peer,
                            pl) < 0)
            log_debug("dns: cannot answer %s:%u: %s", inet_ntoa(peer.sin_addr),
                      (unsigned)ntohs(peer.sin_port), strerror(errno));
    }
}

/* ---- TCP (RFC 1035 section 4.2.2: two-byte length, then the message) ---- */

static void tcp_close(struct dns_tcp *t)
{
    if (!t->used)
        return;
    loop_timer_stop(t->d->loop, &t->timer);
    loop_io_del(t->d->loop, &t->io);
    close(t->fd);
    t->fd = -1;
    t->used = false;
}

static void tcp_idle(struct loop *l, struct loop_timer *tm)
{
    (void)l;
    tcp_close(tm->data);
}

static void tcp_answer(struct dns_tcp *t, size_t mlen)
{
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    uint8_t out[2 + DNSMSG_UDP_MAX];
    struct pkt_info pi;
    if (getpeername(t->fd, (struct sockaddr *)&peer, &pl) < 0 || peer.sin_family != AF_INET) {
        tcp_close(t);
        return;
    }
    fill_pkt(&pi, IPPROTO_TCP, &peer);
    int m = handle(t->d, t->in + 2, mlen, "tcp", &pi, out + 2, sizeof(out) - 2);
    if (m <= 0) {
        tcp_close(t);
        return;
    }
    out[0] = (uint8_t)(m >> 8);
    out[1] = (uint8_t)m;
    /* An answer is at most 514 bytes: it fits an empty socket buffer; a
     * client that does not read its answers is dropped. */
    ssize_t w = send(t->fd, out, (size_t)m + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w != m + 2)
        tcp_close(t);
}

static void on_tcp_conn(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct dns_tcp *t = io->data;
    if (ev & (EPOLLERR | EPOLLHUP)) {
        tcp_close(t);
        return;
    }
    for (;;) {
        ssize_t n = recv(t->fd, t->in + t->in_len, sizeof(t->in) - t->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            tcp_close(t);
            return;
        }
        if (n < 0)
            break;
        t->in_len += (size_t)n;
        while (t->in_len >= 2) {
            size_t mlen = ((size_t)t->in[0] << 8) | t->in[1];
            if (mlen > POLICYDNS_TCP_MSG_MAX || mlen < DNSMSG_HEADER_LEN) {
                tcp_close(t);
                return;
            }
            if (t->in_len < 2 + mlen)
                break;
            tcp_answer(t, mlen);
            if (!t->used)
                return;
            memmove(t->in, t->in + 2 + mlen, t->in_len - 2 - mlen);
            t->in_len -= 2 + mlen;
        }
        if (t->in_len == sizeof(t->in)) {
            tcp_close(t);
            return;
        }
    }
    (void)loop_timer_start(l, &t->timer, POLICYDNS_TCP_IDLE_MS);
}

static void on_tcp_listen(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct policydns *d = io->data;
    (void)ev;
    for (int i = 0; i < POLICYDNS_MAX_PER_WAKEUP; i++) {
        int fd = accept4(d->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct dns_tcp *t = NULL;
        for (size_t k = 0; k < POLICYDNS_MAX_TCP && !t; k++)
            if (!d->tcp[k].used)
                t = &d->tcp[k];
        if (!t) { /* full: the client falls back or retries */
            log_warn("dns: %d TCP clients already; refusing another", POLICYDNS_MAX_TCP);
            close(fd);
            continue;
        }
        memset(t, 0, sizeof(*t));
        t->d = d;
        t->fd = fd;
        t->io.cb = on_tcp_conn;
        t->io.data = t;
        t->timer.cb = tcp_idle;
        t->timer.data = t;
        if (loop_io_add(l, &t->io, fd, EPOLLIN | EPOLLRDHUP) < 0) {
            close(fd);
            continue;
        }
        t->used = true;
        (void)loop_timer_start(l, &t->timer, POLICYDNS_TCP_IDLE_MS);
    }
}

/* ---- life cycle ---- */

int policydns_open(const struct policydns_opts *o, struct policydns **out, char *err,
                   size_t errcap)
{
    struct policydns *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->udp_fd = d->tcp_fd = d->own.diag_fd = d->own.proc_fd = -1;
    d->map = o->map;
    d->extra = o->extra;
    d->sandbox_name = o->sandbox_name ? strdup(o->sandbox_name) : NULL;
    int rc = 0, host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    d->own.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (host_fd < 0 || d->own.proc_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open /proc: %s", strerror(-rc));
        goto out;
    }
    if ((rc = netns_enter(o->child_netns_fd)) < 0) {
        snprintf(err, errcap, "cannot enter the sandbox namespace: %s", strerror(-rc));
        goto out;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(POLICYDNS_PORT),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    d->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    d->tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    d->own.diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (d->udp_fd < 0 || d->tcp_fd < 0 || d->own.diag_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open the DNS sockets: %s", strerror(-rc));
    } else if (setsockopt(d->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
               bind(d->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
               bind(d->tcp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
               listen(d->tcp_fd, 64) < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot listen on 127.0.0.1:53 in the sandbox: %s", strerror(-rc));
    }
    if (netns_enter(host_fd) < 0) {
        log_error("dns: cannot return to the original network namespace: %s", strerror(errno));
        abort();
    }
out:
    if (host_fd >= 0)
        close(host_fd);
    if (rc < 0) {
        policydns_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

int policydns_attach(struct policydns *d, struct loop *l, pid_t init_pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "%d/ns/pid", (int)init_pid);
    if (fstatat(d->own.proc_fd, path, &st, 0) < 0)
        return -errno;
    d->own.pidns_ino = st.st_ino;
    d->own.init_pid = init_pid;
    d->loop = l;
    d->rep_timer.cb = repeat_timer;
    d->rep_timer.data = d;
    d->udp_io.cb = on_udp;
    d->udp_io.data = d;
    d->tcp_io.cb = on_tcp_listen;
    d->tcp_io.data = d;
    int rc = loop_io_add(l, &d->udp_io, d->udp_fd, EPOLLIN);
    if (rc == 0 && (rc = loop_io_add(l, &d->tcp_io, d->tcp_fd, EPOLLIN)) < 0)
        loop_io_del(l, &d->udp_io);
    if (rc < 0)
        d->loop = NULL;
    return rc;
}

void policydns_close(struct policydns *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < POLICYDNS_MAX_TCP; i++)
        if (d->loop)
            tcp_close(&d->tcp[i]);
    expire_repeats(d, true); /* pending counts go out before we do */
    if (d->loop) {
        loop_timer_stop(d->loop, &d->rep_timer);
        loop_io_del(d->loop, &d->udp_io);
        loop_io_del(d->loop, &d->tcp_io);
        log_debug("dns: %llu queries, %llu denied", (unsigned long long)d->n_queries,
                  (unsigned long long)d->n_denied);
    }
    if (d->udp_fd >= 0)
        close(d->udp_fd);
    if (d->tcp_fd >= 0)
        close(d->tcp_fd);
    if (d->own.diag_fd >= 0)
        close(d->own.diag_fd);
    if (d->own.proc_fd >= 0)
        close(d->own.proc_fd);
    free(d->sandbox_name);
    free(d);
}
