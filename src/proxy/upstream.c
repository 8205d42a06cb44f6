/* proxy/upstream: resolve (c-ares), apply the address fence to every
 * resolved address, connect with a timeout, try the next address on
 * failure. Decide on the resolved address and connect to exactly that
 * address (no second lookup: no DNS-rebinding gap). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/addrclass.h"
#include "core/log.h"
#include "core/parse.h"
#include "proxy/internal.h"
#include "proxy/localaddr.h"
#include "proxy/side.h"
#include "tls/tls.h"
#include "core/banned.h"

static void upstream_on_event(struct loop *l, struct loop_io *io, uint32_t ev)
{
    (void)l;
    conn_dispatch_event(io->data, CONN_SIDE_UPSTREAM, ev);
}

void upstream_close(struct conn *c)
{
    if (c->ufd < 0)
        return;
    if (c->utls) {
        tls_conn_free(c->utls);
        free(c->utls);
        c->utls = NULL;
    }
    loop_io_del(c->w->loop, &c->uio); /* see conn_enter_closed: fds can be shared */
    close(c->ufd);
    c->ufd = -1;
    c->uio.fd = -1;
    c->upstream_host[0] = '\0';
    c->upstream_port = 0;
    c->upstream_eof = false;
}

static bool in_allowed_ips(const struct policy_endpoint *ep, const struct sockaddr *sa)
{
    const struct policy_cidr *cidrs;
    size_t n = ep ? policy_endpoint_allowed_ips(ep, &cidrs) : 0;
    for (size_t i = 0; i < n; i++)
        if (policy_cidr_contains(&cidrs[i], sa))
            return true;
    return false;
}

static bool learn_allows(const struct proxy *p, const struct sockaddr *sa)
{
    for (size_t i = 0; i < p->n_learn_ips; i++)
        if (policy_cidr_contains(&p->learn_ips[i], sa))
            return true;
    return false;
}

/* Returns NULL when the address may be dialled, else why not (tmp holds
 * the text when it is built). */
static const char *fence_check(struct conn *c, const struct sockaddr *sa, char *tmp, size_t tmpsz)
{
    const struct policy_cidr *cidrs;
    if (c->infer)
        return NULL; /* an inference route: the operator chose this address (the sandbox never names it) */
    size_t n = c->ep ? policy_endpoint_allowed_ips(c->ep, &cidrs) : 0;
    char ifname[16];
    if (localaddr_contains(c->w->proxy->local, sa, ifname)) {
        snprintf(tmp, tmpsz,
                 "is an address of the proxy's own host (interface %s): the proxy never connects "
                 "to its own host or its listeners, whatever allowed_ips say",
                 ifname);
        return tmp;
    }
    switch (addr_classify(sa)) {
    case ADDR_ALWAYS_BLOCKED:
        return "is always blocked";
    case ADDR_PRIVATE:
        if (c->learned) /* learning mode: only the ranges cordon run --learn-allowed-ips names */
            return learn_allows(c->w->proxy, sa) ? NULL
                   : "is private and not in --learn-allowed-ips";
        return in_allowed_ips(c->ep, sa) ? NULL : "is private and not covered by the endpoint's allowed_ips";
    case ADDR_PUBLIC:
        return n == 0 || in_allowed_ips(c->ep, sa) ? NULL : "is not in the endpoint's allowed_ips";
    }
    return "is unclassifiable";
}

/* Keeps the addresses the fence allows; detail says why the first refused
 * one was refused. */
static void apply_fence(struct conn *c, struct dns_result *r, char *detail, size_t dsz)
{
    size_t keep = 0;
    detail[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&r->addrs[i];
        char tmp[200];
        const char *why = fence_check(c, sa, tmp, sizeof(tmp));
        if (!why) {
            r->addrs[keep++] = r->addrs[i];
            continue;
        }
        if (!detail[0]) {
            char ip[64];
            snprintf(detail, dsz, "%s resolves to %s (%s), which %s",
                     c->target.host, sockaddr_ip_str(sa, ip, sizeof(ip)), addr_class_range_name(sa), why);
        }
    }
    r->n = keep;
}

static enum conn_step resolved(struct conn *c, struct dns_result *res)
{
    if (res->status == -EMFILE) /* fd pressure, as when dialling: retryable */
        return respond_error(c, 503, PROXY_REASON_OUT_OF_RESOURCES,
                             "the proxy is out of file descriptors; retry shortly");
    if (res->status < 0 || res->n == 0) {
        char d[400];
        snprintf(d, sizeof(d), "could not resolve %s: %s", c->target.host,
                 res->error ? res->error : "no addresses");
        return respond_deny(c, 502, PROXY_REASON_RESOLVE_FAILED, d,
                            "check the host name; names are resolved by the proxy");
    }
    struct dns_result *copy = malloc(sizeof(*copy));
    if (!copy)
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    *copy = *res;
    free(c->addrs);
    c->addrs = copy;
    c->addr_next = 0;
    char blocked[768];
    apply_fence(c, copy, blocked, sizeof(blocked));
    if (copy->n == 0)
        return respond_deny(c, 403, PROXY_REASON_ADDRESS_BLOCKED, blocked,
                            "loopback, link-local, multicast and unspecified addresses are never "
                            "reachable; for a private address add its CIDR to the endpoint's "
                            "allowed_ips");
    return CONN_STEP_NEXT;
}

/* The resolver's callback: always from the loop, never inside a step. */
static void on_dns(struct dns_result *res, void *data)
{
    struct conn *c = data;
    c->dnsq = NULL;
    conn_run(c, resolved(c, res));
}

static void set_upstream_opts(int fd)
{
    /* keepalive probes after 60 s idle, every 15 s (the kernel's count: 9) */
    int one = 1, idle = 60, intvl = 15;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
}

static int dial(struct conn *c, const struct sockaddr_storage *ss)
{
    socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    set_upstream_opts(fd);
    if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->uio.cb = upstream_on_event;
    c->uio.data = c;
    int r = loop_io_add(c->w->loop, &c->uio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    if (r < 0) {
        close(fd);
        return r;
    }
    c->ufd = fd;
    return 0;
}

/* Ports of cluster control planes: etcd client and peer, the Kubernetes API
 * server, the kubelet API and its read-only port. OpenShell refuses them
 * whenever private or named addresses could be reached: for an endpoint
 * with allowed_ips (an IP literal host implies them) or an exact host name,
 * whatever the address. Only a wildcard host without allowed_ips, which
 * reaches public addresses alone, may use them. */
static const uint16_t control_plane_ports[] = {2379, 2380, 6443, 10250, 10255};

static bool control_plane_port_refused(const struct conn *c)
{
    bool listed = false;
    for (size_t i = 0; i < sizeof(control_plane_ports) / sizeof(control_plane_ports[0]); i++)
        if (c->target.port == control_plane_ports[i])
            listed = true;
    if (!listed || c->infer)
        return false; /* an inference route: the operator chose the backend */
    if (c->learned) /* learning mode reaches private ranges only through --learn-allowed-ips */
        return c->w->proxy->n_learn_ips > 0;
    if (!c->ep)
        return true; /* fail closed */
    const struct policy_cidr *cidrs;
    return policy_endpoint_allowed_ips(c->ep, &cidrs) > 0 ||
           !strchr(policy_endpoint_host(c->ep), '*');
}

/* RESOLVE: a fresh upstream for this request; the answer comes to on_dns. */
enum conn_step upstream_resolve_enter(struct conn *c)
{
    upstream_close(c);
    if (control_plane_port_refused(c)) {
        char d[600];
        snprintf(d, sizeof(d),
                 "port %u of %s is a cluster control-plane port (etcd, Kubernetes API, kubelet), "
                 "refused for endpoints with allowed_ips or an exact host",
                 c->target.port, c->target.host);
        return respond_deny(c, 403, PROXY_REASON_ADDRESS_BLOCKED, d,
                            "ports 2379, 2380, 6443, 10250 and 10255 are reachable only through "
                            "a wildcard host without allowed_ips (public addresses)");
    }
    free(c->addrs);
    c->addrs = NULL;
    c->have_resolved = false;
    c->dnsq = dns_resolve(c->w->dns, c->target.host, c->target.port, on_dns, c);
    if (!c->dnsq && (errno == EAGAIN || errno == ENOMEM || errno == ENOSPC))
        return respond_error(c, 503, PROXY_REASON_OUT_OF_RESOURCES,
                             "the proxy has too many name lookups in flight; retry shortly");
    if (!c->dnsq)
        return respond_deny(c, 502, PROXY_REASON_RESOLVE_FAILED, "the resolver refused the query",
                            NULL);
    return CONN_STEP_WAIT;
}

/* CONNECT: dial the next approved address (entered again after a failure
 * or a timeout); none left → 502. */
enum conn_step upstream_connect_enter(struct conn *c)
{
    upstream_close(c);
    while (c->addrs && c->addr_next < c->addrs->n) {
        const struct sockaddr_storage *ss = &c->addrs->addrs[c->addr_next++];
        int r = dial(c, ss);
        if (r == -EMFILE || r == -ENFILE) { /* the spare pipes go first, then once more */
            tunnel_pool_release(c->w);
            r = dial(c, ss);
        }
        if (r == 0) {
            c->resolved = *ss;
            c->have_resolved = true;
            return CONN_STEP_WAIT;
        }
        if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM)
            return respond_error(c, 503, PROXY_REASON_OUT_OF_RESOURCES,
                                 "the proxy is out of file descriptors or memory; retry shortly");
    }
    char d[400], ip[64];
    snprintf(d, sizeof(d), "could not connect to %s:%u%s%s%s", c->target.host, c->target.port,
             c->have_resolved ? " (last tried " : "",
             c->have_resolved ? sockaddr_ip_str((struct sockaddr *)&c->resolved, ip, sizeof(ip)) : "",
             c->have_resolved ? ")" : "");
    return respond_deny(c, 502, PROXY_REASON_CONNECT_FAILED, d,
                        "the upstream is down or refused the connection; this is not a policy denial");
}

enum conn_step upstream_connect_timer(struct conn *c)
{
    return CONN_STEP_AGAIN; /* timed out: the next address */
}

static enum conn_step connected(struct conn *c)
{
    free(c->addrs); /* the address in use stays in c->resolved; a new upstream resolves again */
    c->addrs = NULL;
    snprintf(c->upstream_host, sizeof(c->upstream_host), "%s", c->target.host);
    c->upstream_port = c->target.port;
    c->idle_ms = c->infer ? infer_idle_ms(c) : c->ep ? policy_endpoint_idle_timeout_ms(c->ep) : 0;
    return CONN_STEP_NEXT;
}

enum conn_step upstream_connect_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_CLIENT)
        return conn_waiting_event(c, s, ev);
    int err = 0;
    socklen_t el = sizeof(err);
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return CONN_STEP_WAIT;
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err == 0 && (ev & EPOLLOUT))
        return connected(c);
    log_debug("proxy: conn %llu: connect to %s failed: %s", (unsigned long long)c->id,
              c->target.host, strerror(err));
    return CONN_STEP_AGAIN; /* next address */
}

/* Between exchanges the upstream should be silent. TLS post-handshake
 * messages (TLS 1.3 session tickets) are consumed by the TLS layer and are
 * not application bytes; EOF, errors or unsolicited bytes drop it. */
void upstream_idle_event(struct conn *c)
{
    char tmp[512];
    if (c->ufd < 0)
        return;
    long n = side_recv(c->ufd, c->utls, tmp, sizeof(tmp));
    if (n != -EAGAIN)
        upstream_close(c);
}
