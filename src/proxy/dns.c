/* proxy/dns: asynchronous name resolution with c-ares inside a worker's loop.
 *
 * How c-ares is wired into core/loop:
 *  - ARES_OPT_SOCK_STATE_CB tells us which sockets c-ares wants watched for
 *    reading/writing; each one gets a struct dns_sock with a loop_io
 *    (level-triggered). ares_set_socket_callback caps how many sockets one
 *    resolver may open (DNS_MAX_SOCKETS); a refused socket makes c-ares fail
 *    over or fail the query (-EIO).
 *  - One loop timer per resolver follows ares_timeout() and drives c-ares'
 *    retransmits; it is re-armed after every call into c-ares.
 *  - One loop timer per query is the overall bound (timeout_ms): when it
 *    fires the caller gets -ETIMEDOUT at once. c-ares has no per-query
 *    cancel, so the query object stays alive (marked finished) until c-ares
 *    completes it on its own (at most tries x per-try timeout later), then
 *    it is freed without a callback. dns_cancel() works the same way.
 *  - Results are delivered through loop_defer(), so a callback never runs
 *    inside dns_resolve() nor inside c-ares' own processing.
 *
 * Lookups: A and AAAA in parallel, as two ares_getaddrinfo() calls (AF_INET,
 * AF_INET6; no sorting). When one family has answered with addresses, the
 * other gets DNS_FAMILY_GRACE_MS more (RFC 8305 section 3), then the query
 * completes with what it has, so a resolver that drops AAAA queries costs
 * 50 ms, not a timeout.
 * Results: IPv4 first, then IPv6, duplicates removed, at most DNS_MAX_ADDRS.
 * When both families exist and there are more addresses than fit, IPv6 keeps
 * up to half of the slots so both families stay represented.
 *
 * Configuration:
 *  - server "ADDR:PORT": that server only (UDP, TCP on truncation); no
 *    /etc/hosts, and "localhost" / "*.localhost" answer -ENOENT at once
 *    (RFC 6761 section 6.3: never sent to DNS), so the configured resolver
 *    is the only source of answers.
 *  - server NULL: /etc/resolv.conf servers and the lookup order of the
 *    system (usually /etc/hosts first). c-ares reads /etc/hosts itself, with
 *    plain file reads, on every query; that is a small local file read on
 *    the loop thread, accepted here.
 *  - Both: search domains are never applied (ARES_FLAG_NOSEARCH, no
 *    domains): the proxy resolves exactly the name the policy approved.
 *    Per-try timeout and tries are ours (resolv.conf's options are
 *    overridden): per try timeout_ms/4 (50 ms..5 s), 3 tries.
 *
 * Host names are checked before any query (RFC 1123 letters, digits,
 * hyphen, plus underscore; labels 1..63; total <= 253; the last label is
 * not all-numeric, so "127.1" or "0x7f.1" never reach DNS). IP literals
 * are parsed strictly with inet_pton (dotted quad; IPv6 with or without
 * brackets; no zone ids). */
#include "proxy/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/parse.h"
#include "proxy/dnscache.h"
#include "core/banned.h"

#define DNS_DEFAULT_TIMEOUT_MS 5000u
#define DNS_TRIES 3
#define DNS_MAX_SOCKETS 64      /* c-ares sockets per resolver; more are refused */
#define DNS_MAX_INFLIGHT 4096   /* query objects per resolver (incl. finished ones
                                   c-ares still holds); more fail with EAGAIN */
#define DNS_MAX_NAME 253
#define DNS_FAMILY_GRACE_MS 50u /* RFC 8305 "Resolution Delay" */

/* Failure texts, defined once. */
static const char DNS_ERR_NOT_FOUND[] = "name not found";
static const char DNS_ERR_TIMEOUT[] = "DNS query timed out";
static const char DNS_ERR_SERVFAIL[] = "DNS server failure (SERVFAIL)";
static const char DNS_ERR_REFUSED[] = "DNS server refused the query";
/* c-ares 1.18 also reports SERVFAIL/REFUSED this way once every try failed */
static const char DNS_ERR_CONNREFUSED[] =
    "no usable answer from the DNS server (unreachable, SERVFAIL or REFUSED)";
static const char DNS_ERR_BADRESP[] = "malformed DNS response";
static const char DNS_ERR_NOMEM[] = "out of memory while resolving";
static const char DNS_ERR_NOFD[] =
    "the proxy is out of file descriptors (or resolver sockets) while resolving";

struct dns_sock {
    struct loop_io io;
    struct dns_resolver *r;
    struct dns_sock *next;
    int fd;                   /* c-ares' socket */
    bool registered;
    bool dead;                /* closed by c-ares; waiting for the reaper */
};

/* One address family of a query: its own ares_getaddrinfo() call. */
struct dns_half {
    struct dns_query *q;
    bool pending;                  /* c-ares still owns this half */
    int status;                    /* ARES_* once done */
    struct ares_addrinfo *ai;      /* answer, kept until delivery */
};

struct dns_query {
    struct dns_resolver *r;
    struct dns_query *prev, *next; /* r->queries */
    struct loop_timer timer;       /* overall bound, or the family grace */
    uint64_t deadline_ms;          /* overall bound (loop clock) */
    struct loop_deferred defer;    /* result delivery */
    dns_cb cb;
    void *data;
    uint16_t port;
    struct dns_half v4, v6;
    bool in_defer;                 /* queued on the loop's deferred list */
    bool finished;                 /* callback called, or cancelled */
    uint64_t pressure0;            /* r->pressure when the query started */
    char host[DNS_MAX_NAME + 2];   /* the name asked, for the cache */
    struct dns_result res;
};

struct dns_resolver {
    struct loop *l;
    ares_channel ch;
    uint32_t timeout_ms;
    struct loop_timer timer;       /* c-ares retransmits (ares_timeout) */
    struct dns_sock *socks;        /* live sockets */
    struct dns_sock *graveyard;    /* closed, freed after the current batch */
    struct loop_deferred reap;
    bool reap_armed;
    size_t nsocks;
    bool explicit_server;          /* server given: DNS is the only source */
    struct dns_query *queries;     /* every query object still allocated */
    size_t nqueries;
    bool closing;
    struct dnscache *cache;        /* NULL: every query goes to DNS */
    uint64_t pressure;             /* sockets c-ares could not get (EMFILE, cap) */
};

/* ---- process-wide c-ares init ---- */

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_SUCCESS;

static void dns_lib_init(void)
{
    dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- sockets ---- */

static void dns_update_timer(struct dns_resolver *r);

static struct dns_sock *dns_sock_find(struct dns_resolver *r, int fd)
{
    for (struct dns_sock *s = r->socks; s; s = s->next)
        if (s->fd == fd)
            return s;
    return NULL;
}

static struct dns_sock *dns_sock_alloc(struct dns_resolver *r, int fd)
{
    struct dns_sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->r = r;
    s->fd = fd;
    s->io.fd = -1;
    s->io.data = s;
    s->next = r->socks;
    r->socks = s;
    r->nsocks++;
    return s;
}

static void dns_reap(void *arg)
{
    struct dns_resolver *r = arg;
    r->reap_armed = false;
    while (r->graveyard) {
        struct dns_sock *s = r->graveyard;
        r->graveyard = s->next;
        free(s);
    }
}

static void dns_sock_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct dns_sock *s = io->data;
    struct dns_resolver *r = s->r;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    (void)l;

    if (s->dead)
        return; /* a stale event from this batch for a socket c-ares closed */
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (io->events & EPOLLIN))
        rfd = s->fd;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && (io->events & EPOLLOUT))
        wfd = s->fd;
    if (rfd == ARES_SOCKET_BAD && wfd == ARES_SOCKET_BAD)
        rfd = s->fd;
    ares_process_fd(r->ch, rfd, wfd);
    dns_update_timer(r);
}

/* c-ares' socket I/O, ours only to see why a socket could not be had:
 * c-ares reports a failed socket() as an unreachable server
 * (ARES_ECONNREFUSED), which would read as a DNS failure (502) when the
 * proxy is only short of descriptors (a retryable 503). */
static ares_socket_t dns_asocket(int domain, int type, int protocol, void *data)
{
    struct dns_resolver *r = data;
    /* c-ares configures no socket it did not open itself: non-blocking,
     * close-on-exec and TCP_NODELAY are ours to set */
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd >= 0 && type == SOCK_STREAM) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (fd < 0) {
        int e = errno;
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            r->pressure++;
            log_debug("dns: no socket for a query: %s", strerror(e));
        }
        errno = e;
        return ARES_SOCKET_BAD;
    }
    return fd;
}

static int dns_aclose(ares_socket_t fd, void *data)
{
    (void)data;
    return close(fd);
}

static int dns_aconnect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *data)
{
    (void)data;
    return connect(fd, sa, len);
}

static ares_ssize_t dns_arecvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                  struct sockaddr *from, ares_socklen_t *fromlen, void *data)
{
    (void)data;
    return recvfrom(fd, buf, len, flags, from, fromlen);
}

static ares_ssize_t dns_asendv(ares_socket_t fd, const struct iovec *iov, int n, void *data)
{
    (void)data;
    return writev(fd, iov, n);
}

static const struct ares_socket_functions dns_sock_funcs = {
    .asocket = dns_asocket,
    .aclose = dns_aclose,
    .aconnect = dns_aconnect,
    .arecvfrom = dns_arecvfrom,
    .asendv = dns_asendv,
};

/* c-ares: a socket was created (before connect). Refusing it makes c-ares
 * treat the server as failing for this query. */
static int dns_sock_create_cb(ares_socket_t fd, int type, void *data)
{
    struct dns_resolver *r = data;
    (void)type;
    if (r->nsocks >= DNS_MAX_SOCKETS) {
        log_warn("dns: refusing a new resolver socket: %d already open (cap)",
                 DNS_MAX_SOCKETS);
        r->pressure++;
        return -1;
    }
    if (dns_sock_find(r, fd))
        return 0;
    return dns_sock_alloc(r, fd) ? 0 : -1;
}

/* c-ares: watch fd for reading/writing; (0, 0) means it is about to close. */
static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_sock *s = dns_sock_find(r, fd);

    if (!readable && !writable) {
        if (!s)
            return;
        if (s->registered)
            loop_io_del(r->l, &s->io);
        s->registered = false;
        s->dead = true;
        /* unlink from the live list so a reused fd number finds a new entry */
        for (struct dns_sock **pp = &r->socks; *pp; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
        r->nsocks--;
        s->next = r->graveyard;
        r->graveyard = s;
        if (!r->reap_armed && !r->closing) {
            r->reap_armed = true;
            loop_defer(r->l, &r->reap, dns_reap, r);
        }
        return;
    }
    if (!s && !(s = dns_sock_alloc(r, fd))) {
        log_error("dns: cannot watch resolver socket %d: out of memory; "
                  "its queries will time out", fd);
        return;
    }
    uint32_t ev = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    int rc;
    if (s->registered) {
        rc = loop_io_mod(r->l, &s->io, ev);
    } else {
        s->io.cb = dns_sock_io;
        rc = loop_io_add(r->l, &s->io, fd, ev);
        if (rc == 0)
            s->registered = true;
    }
    if (rc < 0)
        log_error("dns: cannot watch resolver socket %d: %s; its queries will time out",
                  fd, strerror(-rc));
}

/* ---- timers ---- */

static void dns_timer_cb(struct loop *l, struct loop_timer *t)
{
    struct dns_resolver *r = t->data;
    (void)l;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_update_timer(r);
}

/* Re-arms the retransmit timer from ares_timeout(), or stops it when c-ares
 * has nothing pending. */
static void dns_update_timer(struct dns_resolver *r)
{
    struct timeval tv, *tvp;
    if (r->closing)
        return;
    tvp = ares_timeout(r->ch, NULL, &tv);
    if (!tvp) {
        loop_timer_stop(r->l, &r->timer);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    if (loop_timer_start(r->l, &r->timer, ms) < 0)
        log_warn("dns: timer heap full, resolver retransmits delayed; "
                 "raise the loop's timer cap");
}

/* ---- queries ---- */

static void dns_query_unlink_free(struct dns_query *q)
{
    struct dns_resolver *r = q->r;
    loop_timer_stop(r->l, &q->timer);
    if (q->v4.ai)
        ares_freeaddrinfo(q->v4.ai);
    if (q->v6.ai)
        ares_freeaddrinfo(q->v6.ai);
    if (q->prev)
        q->prev->next = q->next;
    else
        r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    r->nqueries--;
    free(q);
}

static void dns_query_maybe_free(struct dns_query *q)
{
    if (!q->v4.pending && !q->v6.pending && !q->in_defer)
        dns_query_unlink_free(q);
}

static void dns_deliver(void *arg)
{
    struct dns_query *q = arg;
    q->in_defer = false;
    if (!q->finished && !q->r->closing) {
        q->finished = true;
        loop_timer_stop(q->r->l, &q->timer);
        q->cb(&q->res, q->data);
    }
    dns_query_maybe_free(q);
}

static void dns_build(struct dns_query *q);
static void dns_note_pressure(struct dns_query *q);

/* The overall bound passed, or the grace for the second family after the
 * first one answered with addresses: deliver what there is. */
static void dns_query_timeout(struct loop *l, struct loop_timer *t)
{
    struct dns_query *q = t->data;
    (void)l;
    if (q->finished)
        return;
    q->finished = true;
    dns_build(q);
    if (q->res.n == 0) {
        q->res.status = -ETIMEDOUT;
        q->res.error = DNS_ERR_TIMEOUT;
        dns_note_pressure(q);
    }
    q->cb(&q->res, q->data);
    /* a half may still be held by c-ares; the query is freed from there */
}

static void dns_fail(struct dns_result *res, int ares_status)
{
    res->n = 0;
    switch (ares_status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        res->status = -ENOENT;
        res->error = DNS_ERR_NOT_FOUND;
        break;
    case ARES_ETIMEOUT:
        res->status = -ETIMEDOUT;
        res->error = DNS_ERR_TIMEOUT;
        break;
    case ARES_ESERVFAIL:
        res->status = -EIO;
        res->error = DNS_ERR_SERVFAIL;
        break;
    case ARES_EREFUSED:
        res->status = -EIO;
        res->error = DNS_ERR_REFUSED;
        break;
    case ARES_ECONNREFUSED:
        res->status = -EIO;
        res->error = DNS_ERR_CONNREFUSED;
        break;
    case ARES_EFORMERR:
    case ARES_EBADRESP:
        res->status = -EIO;
        res->error = DNS_ERR_BADRESP;
        break;
    case ARES_ENOMEM:
        res->status = -EIO;
        res->error = DNS_ERR_NOMEM;
        break;
    default:
        res->status = -EIO;
        res->error = ares_strerror(ares_status); /* static strings */
        break;
    }
}

static bool dns_addr_eq(const struct sockaddr_storage *a, const struct ares_addrinfo_node *n)
{
    if (a->ss_family != n->ai_family)
        return false;
    if (n->ai_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)(void *)n->ai_addr)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)(void *)n->ai_addr)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

/* Appends the addresses of one family from ai (deduplicated, at most
 * limit of them) to res. */
static void dns_take(struct dns_result *res, const struct ares_addrinfo *ai, int family,
                     size_t limit, uint16_t port)
{
    size_t taken = 0;
    if (!ai)
        return;
    for (const struct ares_addrinfo_node *n = ai->nodes; n && taken < limit; n = n->ai_next) {
        if (n->ai_family != family || res->n >= DNS_MAX_ADDRS)
            continue;
        if ((family == AF_INET && n->ai_addrlen < (int)sizeof(struct sockaddr_in)) ||
            (family == AF_INET6 && n->ai_addrlen < (int)sizeof(struct sockaddr_in6)))
            continue;
        bool dup = false;
        for (size_t i = 0; i < res->n && !dup; i++)
            dup = dns_addr_eq(&res->addrs[i], n);
        if (dup)
            continue;
        struct sockaddr_storage *ss = &res->addrs[res->n++];
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)ss;
            a->sin_family = AF_INET;
            a->sin_addr = ((const struct sockaddr_in *)(void *)n->ai_addr)->sin_addr;
            a->sin_port = htons(port);
        } else {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
            const struct sockaddr_in6 *src = (const struct sockaddr_in6 *)(void *)n->ai_addr;
            a->sin6_family = AF_INET6;
            a->sin6_addr = src->sin6_addr;
            a->sin6_scope_id = src->sin6_scope_id;
            a->sin6_port = htons(port);
        }
        taken++;
    }
}

static bool dns_half_has_addrs(const struct dns_half *h)
{
    return h->status == ARES_SUCCESS && h->ai && h->ai->nodes;
}

/* A query that failed while the resolver could not get a socket failed
 * for want of descriptors, not because of DNS: say so (-EMFILE), so the
 * caller answers a retryable 503 rather than a DNS error. */
static void dns_note_pressure(struct dns_query *q)
{
    struct dns_result *res = &q->res;
    if (res->n == 0 && res->status != -ENOENT && q->r->pressure != q->pressure0) {
        res->status = -EMFILE;
        res->error = DNS_ERR_NOFD;
    }
}

/* The smallest TTL of the answer's records (addresses and CNAMEs of both
 * families), in seconds; 0 when there is none (e.g. /etc/hosts). */
static uint32_t dns_answer_ttl(const struct dns_query *q)
{
    int ttl = -1;
    const struct ares_addrinfo *ais[2] = {q->v4.ai, q->v6.ai};
    for (size_t i = 0; i < 2; i++) {
        if (!ais[i])
            continue;
        for (const struct ares_addrinfo_node *n = ais[i]->nodes; n; n = n->ai_next)
            if (ttl < 0 || n->ai_ttl < ttl)
                ttl = n->ai_ttl;
        for (const struct ares_addrinfo_cname *cn = ais[i]->cnames; cn; cn = cn->next)
            if (ttl < 0 || cn->ttl < ttl)
                ttl = cn->ttl;
    }
    return ttl > 0 ? (uint32_t)ttl : 0;
}

/* Builds q->res from the halves that answered: IPv4 first; if both families
 * overflow the slots, IPv6 keeps up to half of them. With no address, the
 * status says why (NXDOMAIN on either side, or NODATA on both, is "not
 * found"; otherwise the IPv4 side's error, then the IPv6 side's). */
static void dns_build(struct dns_query *q)
{
    struct dns_result *res = &q->res;
    size_t n6 = 0;
    if (q->v6.ai)
        for (const struct ares_addrinfo_node *n = q->v6.ai->nodes; n; n = n->ai_next)
            if (n->ai_family == AF_INET6)
                n6++;
    size_t keep6 = n6 < DNS_MAX_ADDRS / 2 ? n6 : DNS_MAX_ADDRS / 2;
    res->n = 0;
    dns_take(res, q->v4.ai, AF_INET, DNS_MAX_ADDRS - keep6, q->port);
    dns_take(res, q->v6.ai, AF_INET6, DNS_MAX_ADDRS - res->n, q->port);
    if (res->n > 0) {
        res->status = 0;
        res->error = NULL;
        return;
    }
    int s4 = q->v4.status == ARES_SUCCESS ? ARES_ENODATA : q->v4.status;
    int s6 = q->v6.status == ARES_SUCCESS ? ARES_ENODATA : q->v6.status;
    if (s4 == ARES_ENOTFOUND || s6 == ARES_ENOTFOUND)
        dns_fail(res, ARES_ENOTFOUND);
    else
        dns_fail(res, s4 != ARES_ENODATA ? s4 : s6);
}

/* c-ares: one family ended (answer, failure, or ARES_EDESTRUCTION). */
static void dns_ares_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct dns_half *h = arg;
    struct dns_query *q = h->q;
    struct dns_resolver *r = q->r;
    (void)timeouts;

    h->pending = false;
    if (q->finished || r->closing) {
        if (ai)
            ares_freeaddrinfo(ai);
        dns_query_maybe_free(q);
        return;
    }
    h->status = status;
    if (ai && status == ARES_SUCCESS)
        h->ai = ai;
    else if (ai)
        ares_freeaddrinfo(ai);

    if (!q->v4.pending && !q->v6.pending) {
        loop_timer_stop(r->l, &q->timer);
        dns_build(q);
        dns_note_pressure(q);
        /* both families answered: a complete answer, worth keeping */
        if (r->cache) {
            int rc = dnscache_put(r->cache, q->host, &q->res, dns_answer_ttl(q), loop_now_ms(r->l));
            if (rc < 0)
                log_debug("dns: cannot cache the answer for %s: %s", q->host, strerror(-rc));
        }
        q->in_defer = true;
        loop_defer(r->l, &q->defer, dns_deliver, q);
        return;
    }
    /* RFC 8305 section 3: once one family has addresses, wait only a short
     * while for the other (a resolver that drops AAAA queries must not turn
     * a good answer into a timeout). */
    if (dns_half_has_addrs(h)) {
        uint64_t now = loop_now_ms(r->l);
        uint64_t left = q->deadline_ms > now ? q->deadline_ms - now : 0;
        if (left > DNS_FAMILY_GRACE_MS)
            (void)loop_timer_start(r->l, &q->timer, DNS_FAMILY_GRACE_MS);
    }
}

/* Parses an IP literal ("1.2.3.4", "::1", "[::1]") into res with port.
 * Returns 1 if host is a literal, 0 if it is not, -EINVAL if it looks like
 * one but is not valid (brackets without IPv6, a colon in a non-IPv6). */
static int dns_literal(const char *host, uint16_t port, struct dns_result *res)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(host);
    struct sockaddr_storage *ss = &res->addrs[0];
    memset(ss, 0, sizeof(*ss));

    if (host[0] == '[') {
        if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof(buf))
            return -EINVAL;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1)
            return -EINVAL;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
    } else if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -EINVAL;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return 0;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
    }
    res->status = 0;
    res->error = NULL;
    res->n = 1;
    return 1;
}

/* RFC 1123 host name (plus '_'), labels 1..63, total <= 253 without one
 * trailing dot, last label not all digits (RFC 3696 section 2). */
static bool dns_name_ok(const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_MAX_NAME)
        return false;
    size_t label = 0;
    bool all_digits = true;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            all_digits = true;
            continue;
        }
        bool digit = c >= '0' && c <= '9';
        if (!(digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
              c == '_'))
            return false;
        if (!digit)
            all_digits = false;
        if (++label > 63)
            return false;
    }
    return label > 0 && !all_digits;
}

/* "localhost" or a name under it (RFC 6761 section 6.3), trailing dot allowed. */
static bool dns_is_localhost(const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len < 9 || strncasecmp(host + len - 9, "localhost", 9) != 0)
        return false;
    return len == 9 || host[len - 10] == '.';
}

/* ---- public API ---- */

/* Creates a resolver bound to loop l (used only from l's thread).
 * server: "ADDR:PORT" (IPv4 or [IPv6]) or NULL for the system configuration.
 * timeout_ms: overall bound per query; 0 = 5000.
 * Returns NULL with errno set: EINVAL (bad server), ENOMEM, EIO (c-ares). */
struct dns_resolver *dns_resolver_new(struct loop *l, const char *server, uint32_t timeout_ms)
{
    struct dns_resolver *r = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct ares_options opts;
    int optmask, rc, err = 0;
    char lookups[] = "b";

    pthread_once(&dns_once, dns_lib_init);
    if (dns_lib_status != ARES_SUCCESS) {
        log_error("dns: c-ares library init failed: %s", ares_strerror(dns_lib_status));
        err = EIO;
        goto out;
    }
    if (server) {
        if (parse_sockaddr(server, &ss, &sslen) < 0 || sockaddr_port((struct sockaddr *)&ss) == 0) {
            log_error("dns: resolver \"%s\" is not ADDR:PORT (e.g. 10.0.0.1:53 or [::1]:53)",
                      server);
            err = EINVAL;
            goto out;
        }
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        err = ENOMEM;
        goto out;
    }
    r->l = l;
    r->explicit_server = server != NULL;
    r->timeout_ms = timeout_ms ? timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    r->timer.cb = dns_timer_cb;
    r->timer.data = r;

    memset(&opts, 0, sizeof(opts));
    optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
              ARES_OPT_DOMAINS;
    opts.flags = ARES_FLAG_NOSEARCH;
    uint32_t per_try = r->timeout_ms / 4;
    if (per_try < 50)
        per_try = 50;
    if (per_try > 5000)
        per_try = 5000;
    opts.timeout = (int)per_try;
    opts.tries = DNS_TRIES;
    opts.sock_state_cb = dns_sock_state_cb;
    opts.sock_state_cb_data = r;
    opts.domains = NULL;
    opts.ndomains = 0;
    if (server) {
        optmask |= ARES_OPT_LOOKUPS;
        opts.lookups = lookups;
    }
    rc = ares_init_options(&r->ch, &opts, optmask);
    if (rc != ARES_SUCCESS) {
        log_error("dns: cannot initialise c-ares: %s (check /etc/resolv.conf)",
                  ares_strerror(rc));
        r->ch = NULL;
        err = rc == ARES_ENOMEM ? ENOMEM : EIO;
        goto out;
    }
    ares_set_socket_callback(r->ch, dns_sock_create_cb, r);
    ares_set_socket_functions(r->ch, &dns_sock_funcs, r);
    if (server) {
        struct ares_addr_port_node node;
        memset(&node, 0, sizeof(node));
        node.family = ss.ss_family;
        if (ss.ss_family == AF_INET)
            memcpy(&node.addr.addr4, &((struct sockaddr_in *)&ss)->sin_addr,
                   sizeof(struct in_addr));
        else
            memcpy(&node.addr.addr6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
                   sizeof(struct ares_in6_addr));
        node.udp_port = sockaddr_port((struct sockaddr *)&ss);
        node.tcp_port = node.udp_port;
        rc = ares_set_servers_ports(r->ch, &node);
        if (rc != ARES_SUCCESS) {
            log_error("dns: cannot use resolver %s: %s", server, ares_strerror(rc));
            err = rc == ARES_ENOMEM ? ENOMEM : EIO;
            goto out;
        }
    }
out:
    if (err) {
        if (r) {
            if (r->ch)
                ares_destroy(r->ch);
            free(r);
        }
        errno = err;
        return NULL;
    }
    return r;
}

/* Frees the resolver. Call it when the loop is not dispatching (after
 * loop_run() returned, or before it ever ran), never from a loop callback:
 * it frees at once. Queries still outstanding are dropped without callbacks
 * and their handles become invalid. NULL is ignored. */
void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    r->closing = true;
    loop_timer_stop(r->l, &r->timer);
    /* Ends every c-ares query (ARES_EDESTRUCTION, no user callbacks since
     * closing) and closes its sockets (state callbacks move them to the
     * graveyard). */
    ares_destroy(r->ch);
    while (r->queries) {
        r->queries->v4.pending = false;
        r->queries->v6.pending = false;
        r->queries->in_defer = false;
        dns_query_unlink_free(r->queries);
    }
    while (r->socks) {
        struct dns_sock *s = r->socks;
        r->socks = s->next;
        if (s->registered)
            loop_io_del(r->l, &s->io);
        free(s);
    }
    r->reap_armed = false;
    dns_reap(r);
    dnscache_free(r->cache);
    free(r);
}

/* Keeps answers for up to max_ttl_s seconds (positive: the answer's TTL,
 * at most that; negative: at most DNSCACHE_NEG_TTL_S), in at most entries
 * names (0 = DNSCACHE_DEFAULT_ENTRIES). max_ttl_s 0 turns caching off (and
 * drops what was kept). Call before the loop runs or from its thread.
 * Returns 0, or -ENOMEM (caching stays as it was). */
int dns_resolver_set_cache(struct dns_resolver *r, uint32_t max_ttl_s, size_t entries)
{
    struct dnscache *c = NULL;
    if (max_ttl_s > 0) {
        c = dnscache_new(entries ? entries : DNSCACHE_DEFAULT_ENTRIES, max_ttl_s);
        if (!c)
            return -ENOMEM;
    }
    dnscache_free(r->cache);
    r->cache = c;
    return 0;
}

/* The cache's counters (all zero when caching is off). */
void dns_resolver_cache_stats(const struct dns_resolver *r, struct dnscache_stats *out)
{
    if (!r->cache) {
        memset(out, 0, sizeof(*out));
        return;
    }
    dnscache_stats(r->cache, out);
}

/* Starts resolving host (A and AAAA, or an IP literal) for port. The
 * callback runs exactly once on the loop's thread, later (never inside this
 * call), unless dns_cancel() is called first. The handle is valid until the
 * callback returns or dns_cancel() is called. Returns NULL with errno:
 * EINVAL (not a valid host name or IP literal), EAGAIN (too many queries in
 * flight), ENOSPC (loop timer heap full), ENOMEM. */
struct dns_query *dns_resolve(struct dns_resolver *r, const char *host, uint16_t port,
                              dns_cb cb, void *data)
{
    struct dns_query *q = NULL;
    int lit;

    if (!r || !host || !cb || r->closing) {
        errno = EINVAL;
        return NULL;
    }
    if (r->nqueries >= DNS_MAX_INFLIGHT) {
        errno = EAGAIN;
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    q->r = r;
    q->cb = cb;
    q->data = data;
    q->port = port;
    q->timer.cb = dns_query_timeout;
    q->timer.data = q;

    lit = dns_literal(host, port, &q->res);
    if (lit == 0 && !dns_name_ok(host))
        lit = -EINVAL;
    if (lit == 0 && r->explicit_server && dns_is_localhost(host)) {
        /* never asked to the server; c-ares 1.18 would report it as a
         * server failure, so answer "not found" here */
        dns_fail(&q->res, ARES_ENOTFOUND);
        lit = 1;
    }
    if (lit < 0) {
        free(q);
        errno = -lit;
        return NULL;
    }
    if (lit == 0) {
        snprintf(q->host, sizeof(q->host), "%s", host);
        q->pressure0 = r->pressure;
        if (r->cache && dnscache_get(r->cache, host, port, loop_now_ms(r->l), &q->res)) {
            log_debug("dns: %s answered from the cache (%zu addresses)", host, q->res.n);
            lit = 1;
        }
    }
    q->v4.q = q;
    q->v6.q = q;
    if (lit == 0) {
        q->deadline_ms = loop_now_ms(r->l) + r->timeout_ms;
        int rc = loop_timer_start(r->l, &q->timer, r->timeout_ms);
        if (rc < 0) {
            free(q);
            errno = -rc;
            return NULL;
        }
    }
    q->next = r->queries;
    if (r->queries)
        r->queries->prev = q;
    r->queries = q;
    r->nqueries++;

    if (lit == 1) { /* literal or local answer: no traffic */
        q->in_defer = true;
        loop_defer(r->l, &q->defer, dns_deliver, q);
        return q;
    }

    /* One call per family, so each can finish on its own. Both are marked
     * pending first: a call may complete synchronously (/etc/hosts, errors)
     * and the first must not look like the last. dns_ares_cb defers. */
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = ARES_AI_NOSORT;
    q->v4.pending = true;
    q->v6.pending = true;
    hints.ai_family = AF_INET;
    ares_getaddrinfo(r->ch, host, NULL, &hints, dns_ares_cb, &q->v4);
    hints.ai_family = AF_INET6;
    ares_getaddrinfo(r->ch, host, NULL, &hints, dns_ares_cb, &q->v6);
    dns_update_timer(r);
    return q;
}

/* Cancels a query: its callback will not be called. q must be a handle whose
 * callback has not yet run; NULL is ignored. The object itself is freed
 * later, when c-ares or the loop lets go of it. */
void dns_cancel(struct dns_query *q)
{
    if (!q || q->finished)
        return;
    q->finished = true;
    loop_timer_stop(q->r->l, &q->timer);
}
