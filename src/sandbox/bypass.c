/* sandbox/bypass: the bypass monitor.
 *
 * Reads the fence's NFLOG group (libnetfilter_log; never dmesg or
 * /dev/kmsg) inside the sandbox namespace. For each packet the fence held
 * ("held" prefix) it finds the sending process while its socket still
 * exists (sockowner.c), answers with a reset / port unreachable so the
 * caller fails at once (refuse.c), and emits one `bypass_detect` audit
 * event: destination, protocol, pid, executable, ancestors and a hint an
 * agent can act on. Identical events (same process, destination, port,
 * protocol) within the dedup window are counted, and one summary event with
 * the count follows when the window ends; the first is never dropped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "core/loop.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define BYPASS_DEDUP_CAP 256
#define BYPASS_COPY_RANGE 256            /* headers are all we need */
#define BYPASS_RCVBUF (1u << 20)
#define BYPASS_MAX_PER_WAKEUP 64         /* bounded work per loop turn */

struct bypass {
    struct nflog_handle *h;
    struct nflog_g_handle *gh;
    int raw4, raw6;
    struct sockowner_ctx own;
    struct loop *loop;
    struct loop_io io;
    struct loop_timer timer;
    struct bypass_dedup dedup;
    char *sandbox_name;
    char *proxy_url;
    uint64_t n_packets, n_events, n_unresolved, n_overflows;
    uint64_t last_overflow_log_ms;
};

static const char REASON[] = "direct connection bypassed the egress proxy";

const char *bypass_hint(uint8_t proto, uint16_t dport)
{
    if (proto == IPPROTO_TCP)
        return "this program connected directly to an IP address that did not come from the "
               "sandbox's DNS. Connect by host name instead: names the policy allows resolve "
               "inside the sandbox and those connections reach the egress proxy without any "
               "proxy setting; to allow a host, add an endpoint {host: NAME, port: PORT} with "
               "this binary to a network_policies entry. Clients that honour HTTPS_PROXY "
               "(set, http://127.0.0.1:3128) also work; Node.js honours NODE_USE_ENV_PROXY "
               "only from v22.21/v24 (Node 20 ignores it). Direct connections to other "
               "addresses are never allowed, retrying will not help.";
    if (proto == IPPROTO_UDP && dport == 53)
        return "DNS queries cannot leave the sandbox: its only resolver is 127.0.0.1 (in "
               "/etc/resolv.conf), which answers the names the policy allows (or, with "
               "--no-transparent, the egress proxy resolves host names: send the request "
               "through HTTPS_PROXY with the host name). Use the system resolver; to allow a "
               "name, add an endpoint for it to a network_policies entry.";
    if (proto == IPPROTO_UDP && dport == 443)
        return "QUIC (HTTP/3) is not allowed out of the sandbox; it is refused at once so that "
               "clients fall back to TCP (HTTPS), which reaches the egress proxy.";
    if (proto == IPPROTO_UDP)
        return "UDP is not allowed out of the sandbox; only TCP to host names the policy allows "
               "(or through the egress proxy, HTTPS_PROXY) is.";
    return "this protocol (e.g. ICMP) is not allowed out of the sandbox; only TCP to host names "
           "the policy allows (or through the egress proxy, HTTPS_PROXY) is.";
}

static const char *proto_name(uint8_t proto, int family)
{
    switch (proto) {
    case IPPROTO_TCP:
        return "tcp";
    case IPPROTO_UDP:
        return "udp";
    case IPPROTO_ICMP:
        return "icmp";
    case IPPROTO_ICMPV6:
        return "icmpv6";
    default:
        return family == AF_INET6 ? "ipv6-other" : "ip-other";
    }
}

/* ---- dedup ---- */

static bool key_equal(const struct bypass_dedup_key *a, const struct bypass_dedup_key *b)
{
    return a->proto == b->proto && a->family == b->family && a->dport == b->dport &&
           a->pid == b->pid && memcmp(a->dst, b->dst, sizeof(a->dst)) == 0 &&
           strcmp(a->exe, b->exe) == 0;
}

bool bypass_dedup_hit(struct bypass_dedup *d, const struct bypass_dedup_key *k, uint64_t now_ms,
                      struct bypass_dedup_entry *evicted, bool *did_evict)
{
    *did_evict = false;
    struct bypass_dedup_entry *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < d->cap; i++) {
        struct bypass_dedup_entry *e = &d->e[i];
        if (!e->used) {
            if (!free_slot)
                free_slot = e;
            continue;
        }
        if (now_ms - e->first_ms >= d->window_ms) {
            /* Expired but not yet flushed: the caller's timer flushes it;
             * a new event for the key starts a new window below. */
            if (key_equal(&e->key, k)) {
                *evicted = *e;
                *did_evict = e->repeats > 0;
                e->key = *k;
                e->first_ms = now_ms;
                e->repeats = 0;
                return true;
            }
            continue;
        }
        if (key_equal(&e->key, k)) {
            e->repeats++;
            return false;
        }
        if (!oldest || e->first_ms < oldest->first_ms)
            oldest = e;
    }
    struct bypass_dedup_entry *slot = free_slot;
    if (!slot) {
        /* Full: flush the oldest (its count goes out now) and reuse it. */
        slot = oldest ? oldest : &d->e[0];
        *evicted = *slot;
        *did_evict = slot->repeats > 0;
    }
    memset(slot, 0, sizeof(*slot));
    slot->key = *k;
    slot->first_ms = now_ms;
    slot->used = true;
    return true;
}

void bypass_dedup_expire(struct bypass_dedup *d, uint64_t now_ms, bool all, bypass_dedup_cb cb,
                         void *data)
{
    for (size_t i = 0; i < d->cap; i++) {
        struct bypass_dedup_entry *e = &d->e[i];
        if (!e->used || (!all && now_ms - e->first_ms < d->window_ms))
            continue;
        if (e->repeats > 0 && cb)
            cb(e, data);
        e->used = false;
    }
}

static bool dedup_busy(const struct bypass_dedup *d)
{
    for (size_t i = 0; i < d->cap; i++)
        if (d->e[i].used)
            return true;
    return false;
}

/* ---- events ---- */

static void add_addr(json_t *o, const char *field, int family, const uint8_t *a)
{
    char s[INET6_ADDRSTRLEN];
    inet_ntop(family, a, s, sizeof(s));
    json_object_set_new(o, field, json_string(s));
}

static json_t *event_base(struct bypass *b, int family, uint8_t proto, const uint8_t *dst,
                          uint16_t dport)
{
    json_t *o = json_object();
    if (b->sandbox_name)
        json_object_set_new(o, "sandbox", json_string(b->sandbox_name));
    json_object_set_new(o, "proto", json_string(proto_name(proto, family)));
    add_addr(o, "dst_addr", family, dst);
    json_object_set_new(o, "dst_port", dport ? json_integer(dport) : json_null());
    json_object_set_new(o, "action", json_string("refused"));
    json_object_set_new(o, "reason", json_string(REASON));
    json_object_set_new(o, "hint", json_string(bypass_hint(proto, dport)));
    if (b->proxy_url)
        json_object_set_new(o, "proxy", json_string(b->proxy_url));
    return o;
}

static void emit_repeats(const struct bypass_dedup_entry *e, void *data)
{
    struct bypass *b = data;
    const struct bypass_dedup_key *k = &e->key;
    json_t *o = event_base(b, k->family, k->proto, k->dst, k->dport);
    json_object_set_new(o, "pid", k->pid ? json_integer(k->pid) : json_null());
    json_object_set_new(o, "binary", k->exe[0] ? json_string(k->exe) : json_null());
    json_object_set_new(o, "count", json_integer(e->repeats));
    json_object_set_new(o, "repeated", json_true());
    json_object_set_new(o, "window_ms", json_integer(b->dedup.window_ms));
    audit_emit("bypass_detect", o);
}

static void timer_cb(struct loop *l, struct loop_timer *t)
{
    struct bypass *b = t->data;
    bypass_dedup_expire(&b->dedup, loop_now_ms(l), false, emit_repeats, b);
    if (dedup_busy(&b->dedup) && loop_timer_start(l, &b->timer, 1000) < 0)
        log_warn("bypass: cannot re-arm the repeat timer; counts will show at exit");
}

static void report(struct bypass *b, const struct pkt_info *pi, uint32_t uid, bool have_owner,
                   const struct sockowner *ow, int why)
{
    struct bypass_dedup_key k;
    memset(&k, 0, sizeof(k));
    k.proto = pi->proto;
    k.family = (uint8_t)pi->family;
    k.dport = pi->dport;
    memcpy(k.dst, pi->dst, sizeof(k.dst));
    if (have_owner) {
        k.pid = ow->pid;
        snprintf(k.exe, sizeof(k.exe), "%s", ow->exe);
    }
    uint64_t now = b->loop ? loop_now_ms(b->loop) : loop_clock_ms();
    struct bypass_dedup_entry ev;
    bool evicted = false;
    bool emit = bypass_dedup_hit(&b->dedup, &k, now, &ev, &evicted);
    if (evicted)
        emit_repeats(&ev, b);
    if (b->loop && !loop_timer_armed(&b->timer) &&
        loop_timer_start(b->loop, &b->timer, 1000) < 0)
        log_warn("bypass: cannot arm the repeat timer");
    if (!emit)
        return;
    json_t *o = event_base(b, pi->family, pi->proto, pi->dst, pi->dport);
    json_object_set_new(o, "src_port", pi->sport ? json_integer(pi->sport) : json_null());
    json_object_set_new(o, "uid", json_integer(uid));
    if (have_owner) {
        json_object_set_new(o, "pid", json_integer(ow->pid));
        json_object_set_new(o, "sandbox_pid", json_integer(ow->ns_pid));
        json_object_set_new(o, "binary", json_string(ow->exe));
        json_t *anc = json_array(), *apids = json_array();
        for (size_t i = 0; i < ow->n_ancestors; i++) {
            json_array_append_new(anc, json_string(ow->ancestors[i]));
            json_array_append_new(apids, json_integer(ow->ancestor_pids[i]));
        }
        json_object_set_new(o, "ancestors", anc);
        json_object_set_new(o, "ancestor_pids", apids);
    } else {
        b->n_unresolved++;
        json_object_set_new(o, "pid", json_null());
        json_object_set_new(o, "binary", json_null());
        json_object_set_new(o, "ancestors", json_array());
        json_object_set_new(o, "identity", json_string(why == -ENOENT
                                                           ? "the sender was gone before it could be identified"
                                                           : strerror(-why)));
    }
    json_object_set_new(o, "count", json_integer(1));
    b->n_events++;
    audit_emit("bypass_detect", o);
}

static void send_refusal(struct bypass *b, const uint8_t *pkt, size_t len,
                         const struct pkt_info *pi)
{
    uint8_t out[512];
    int n = refuse_build(pkt, len, pi, out, sizeof(out));
    if (n < 0)
        return;
    int fd = pi->family == AF_INET ? b->raw4 : b->raw6;
    struct sockaddr_storage to;
    socklen_t tolen;
    memset(&to, 0, sizeof(to));
    if (pi->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, pi->src, 4);
        tolen = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, pi->src, 16);
        tolen = sizeof(*s6);
    }
    if (fd < 0 || sendto(fd, out, (size_t)n, 0, (struct sockaddr *)&to, tolen) < 0)
        log_warn("bypass: cannot send the refusal (%s); the kernel refuses the retransmission",
                 fd < 0 ? "no raw socket" : strerror(errno));
}

static int packet_cb(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfa,
                     void *data)
{
    struct bypass *b = data;
    char *payload = NULL;
    int len = nflog_get_payload(nfa, &payload);
    if (len <= 0 || !payload)
        return 0;
    b->n_packets++;
    uint32_t uid = 0;
    if (nflog_get_uid(nfa, &uid) < 0)
        return 0; /* no socket behind it: the kernel's own packet */
    const char *prefix = nflog_get_prefix(nfa);
    bool held = prefix && strcmp(prefix, FENCE_PREFIX_HELD) == 0;
    struct pkt_info pi;
    if (pkt_parse((const uint8_t *)payload, (size_t)len, &pi) < 0) {
        log_debug("bypass: unparsable packet of %d bytes", len);
        return 0;
    }
    struct sockowner ow;
    int why = -ENOENT;
    bool have = false;
    if (pi.proto == IPPROTO_TCP || pi.proto == IPPROTO_UDP) {
        why = sockowner_find(&b->own, &pi, &ow);
        have = why == 0;
    }
    /* Answer only after the lookup: the socket must exist while we look. */
    if (held)
        send_refusal(b, (const uint8_t *)payload, (size_t)len, &pi);
    report(b, &pi, uid, have, &ow, why);
    return 0;
}

static void io_cb(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct bypass *b = io->data;
    char buf[8192] __attribute__((aligned(8)));
    for (int i = 0; i < BYPASS_MAX_PER_WAKEUP; i++) {
        ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS) {
                uint64_t now = loop_now_ms(l);
                b->n_overflows++;
                if (now - b->last_overflow_log_ms >= 1000) {
                    log_warn("bypass: the kernel dropped log messages (%llu overflow(s) so far: "
                             "too many attempts at once); those are refused without an event",
                             (unsigned long long)b->n_overflows);
                    b->last_overflow_log_ms = now;
                }
                continue;
            }
            return; /* EAGAIN */
        }
        if (n == 0)
            return;
        nflog_handle_packet(b->h, buf, (int)n);
    }
    /* More may be queued: level-triggered epoll wakes us again. */
}

int bypass_open(const struct bypass_opts *o, struct bypass **out, char *err, size_t errcap)
{
    struct bypass *b = calloc(1, sizeof(*b));
    int host_fd = -1, rc = 0;
    bool entered = false;
    if (!b)
        return -ENOMEM;
    b->raw4 = b->raw6 = b->own.diag_fd = b->own.proc_fd = -1;
    b->dedup.cap = BYPASS_DEDUP_CAP;
    b->dedup.window_ms = o->dedup_window_ms ? o->dedup_window_ms : 10000;
    b->dedup.e = calloc(b->dedup.cap, sizeof(*b->dedup.e));
    b->sandbox_name = o->sandbox_name ? strdup(o->sandbox_name) : NULL;
    b->proxy_url = o->proxy_url ? strdup(o->proxy_url) : NULL;
    if (!b->dedup.e || (o->sandbox_name && !b->sandbox_name) || (o->proxy_url && !b->proxy_url)) {
        rc = -ENOMEM;
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    b->own.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (b->own.proc_fd < 0 || host_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open /proc: %s", strerror(-rc));
        goto out;
    }
    if ((rc = netns_enter(o->child_netns_fd)) < 0) {
        snprintf(err, errcap, "cannot enter the sandbox namespace: %s", strerror(-rc));
        goto out;
    }
    entered = true;
    b->h = nflog_open();
    if (!b->h) {
        rc = errno ? -errno : -EPROTONOSUPPORT;
        snprintf(err, errcap, "cannot open NFLOG (nfnetlink_log): %s", strerror(-rc));
        goto out;
    }
    b->gh = nflog_bind_group(b->h, o->group);
    if (!b->gh) {
        rc = errno ? -errno : -EPROTONOSUPPORT;
        snprintf(err, errcap, "cannot bind NFLOG group %u (is nfnetlink_log available?): %s",
                 (unsigned)o->group, strerror(-rc));
        goto out;
    }
    if (nflog_set_mode(b->gh, NFULNL_COPY_PACKET, BYPASS_COPY_RANGE) < 0 ||
        nflog_set_qthresh(b->gh, 1) < 0 || nflog_set_timeout(b->gh, 0) < 0) {
        rc = errno ? -errno : -EIO;
        snprintf(err, errcap, "cannot configure NFLOG group %u: %s", (unsigned)o->group,
                 strerror(-rc));
        goto out;
    }
    int rcvbuf = BYPASS_RCVBUF;
    if (setsockopt(nflog_fd(b->h), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        log_debug("bypass: cannot enlarge the NFLOG socket buffer: %s", strerror(errno));
    nflog_callback_register(b->gh, packet_cb, b);
    b->own.diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (b->own.diag_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open a sock_diag socket: %s", strerror(-rc));
        goto out;
    }
    b->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (b->raw4 < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open a raw socket: %s", strerror(-rc));
        goto out;
    }
    b->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (b->raw6 < 0)
        log_debug("bypass: no IPv6 raw socket (%s); IPv6 attempts are refused by the kernel "
                  "on retransmission", strerror(errno));
    rc = 0;
out:
    if (entered && netns_enter(host_fd) < 0) {
        log_error("bypass: cannot return to the original network namespace: %s",
                  strerror(errno));
        abort();
    }
    if (host_fd >= 0)
        close(host_fd);
    if (rc < 0) {
        bypass_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

int bypass_attach(struct bypass *b, struct loop *l, pid_t init_pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "%d/ns/pid", (int)init_pid);
    if (fstatat(b->own.proc_fd, path, &st, 0) < 0)
        return -errno;
    b->own.pidns_ino = st.st_ino;
    b->own.init_pid = init_pid;
    int fd = nflog_fd(b->h);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    b->loop = l;
    b->io.cb = io_cb;
    b->io.data = b;
    b->timer.cb = timer_cb;
    b->timer.data = b;
    return loop_io_add(l, &b->io, fd, EPOLLIN);
}

void bypass_close(struct bypass *b)
{
    if (!b)
        return;
    if (b->loop) {
        loop_io_del(b->loop, &b->io);
        loop_timer_stop(b->loop, &b->timer);
    }
    if (b->dedup.e)
        bypass_dedup_expire(&b->dedup, 0, true, emit_repeats, b);
    if (b->n_events || b->n_unresolved)
        log_info("bypass: %llu attempt(s) reported, %llu without a process",
                 (unsigned long long)b->n_events, (unsigned long long)b->n_unresolved);
    if (b->gh)
        nflog_unbind_group(b->gh);
    if (b->h)
        nflog_close(b->h);
    if (b->raw4 >= 0)
        close(b->raw4);
    if (b->raw6 >= 0)
        close(b->raw6);
    if (b->own.diag_fd >= 0)
        close(b->own.diag_fd);
    if (b->own.proc_fd >= 0)
        close(b->own.proc_fd);
    free(b->dedup.e);
    free(b->sandbox_name);
    free(b->proxy_url);
    free(b);
}
