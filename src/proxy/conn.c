/* proxy/conn: a client connection from accept to close — reading the request
 * head, identity, the policy decision, and dispatch to the tunnel or the
 * forward relay. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "identity/identity.h"
#include "tls/tls.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

#define CONN_CIN_CAP (HTTP_HEAD_MAX + 4096)
#define CONN_COUT_CAP 65536

static void conn_free_deferred(void *arg);
static void read_head_bytes(struct conn *c);
static void conn_timer_cb(struct loop *l, struct loop_timer *t);

static void set_sockopts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c || buf_init(&c->cin, CONN_CIN_CAP) < 0 || buf_init(&c->cout, CONN_COUT_CAP) < 0) {
        log_error("proxy: out of memory accepting a connection; closing it");
        if (c) {
            buf_free(&c->cin);
            free(c);
        }
        close(fd);
        atomic_fetch_sub(&w->proxy->active, 1);
        return;
    }
    c->w = w;
    c->id = atomic_fetch_add(&w->proxy->next_id, 1) + 1;
    c->cfd = fd;
    c->ufd = -1;
    c->up.pipe_r = c->up.pipe_w = c->down.pipe_r = c->down.pipe_w = -1;
    c->peer = *peer;
    socklen_t ll = sizeof(c->local);
    getsockname(fd, (struct sockaddr *)&c->local, &ll);
    c->start_ms = c->last_active_ms = loop_now_ms(w->loop);
    c->state = CONN_HEAD;
    http_parser_init(&c->req, HTTP_REQUEST_PARSER);
    set_sockopts(fd);
    c->cio.cb = conn_on_client;
    c->cio.data = c;
    c->uio.fd = -1;
    c->timer.cb = conn_timer_cb;
    c->timer.data = c;
    if (loop_io_add(w->loop, &c->cio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
        log_error("proxy: epoll add failed for a new connection; closing it");
        buf_free(&c->cin);
        buf_free(&c->cout);
        free(c);
        close(fd);
        atomic_fetch_sub(&w->proxy->active, 1);
        return;
    }
    w->n_conns++;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    if (loop_timer_start(w->loop, &c->timer, w->proxy->cfg.head_timeout_ms) < 0)
        log_warn("proxy: timer heap full; connection %llu has no head timeout",
                 (unsigned long long)c->id);
}

static void free_ident(struct conn_identity *id)
{
    free(id->exe);
    for (size_t i = 0; i < id->n_ancestors; i++)
        free(id->ancestors[i]);
    free(id->ancestors);
    free(id->detail);
    memset(id, 0, sizeof(*id));
}

static void conn_free_deferred(void *arg)
{
    struct conn *c = arg;
    if (c->ctls) {
        tls_conn_free(c->ctls);
        free(c->ctls);
    }
    buf_free(&c->cin);
    buf_free(&c->cout);
    buf_free(&c->uout);
    buf_free(&c->uin);
    free_ident(&c->ident);
    free(c->addrs);
    if (c->pol)
        policy_unref(c->pol);
    free(c);
}

void conn_close(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    if (!c->close_reason)
        c->close_reason = reason;
    auditev_close(c);
    c->state = CONN_CLOSED;
    struct loop *l = c->w->loop;
    loop_timer_stop(l, &c->timer);
    if (c->dnsq) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    upstream_close(c);
    tunnel_free(c);
    if (c->ctls && !c->ctls->fatal && tls_conn_shutdown(c->ctls) != 0)
        log_debug("proxy: conn %llu: close_notify not sent", (unsigned long long)c->id);
    /* close() drops the epoll registration: the fd is never shared */
    close(c->cfd);
    c->cfd = -1;
    c->w->n_conns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&c->w->proxy->active, 1);
    loop_defer(l, &c->free_node, conn_free_deferred, c);
}

static void conn_timer_cb(struct loop *l, struct loop_timer *t)
{
    struct conn *c = t->data;
    switch (c->state) {
    case CONN_HEAD:
        if (c->head_parsed || c->cin.len == 0) {
            conn_close(c, c->cin.len == 0 && c->ident_done ? "keepalive_idle" : "head_timeout");
            return;
        }
        respond_error(c, 408, "head_timeout", "the request head did not arrive in time");
        conn_close(c, "head_timeout");
        return;
    case CONN_RESOLVE:
        return; /* the resolver's own timeout fires */
    case CONN_CONNECT:
        upstream_begin(c); /* connect timed out: try the next address */
        return;
    case CONN_PEEK:
    case CONN_TLS_ACCEPT:
        auditev_decision(c, false, "client_timeout", "the client did not start or finish TLS in time");
        conn_close(c, "client_timeout");
        return;
    case CONN_TLS_CONNECT:
        respond_deny(c, 504, "upstream_tls_timeout", "the upstream did not finish the TLS handshake in time", NULL);
        return;
    case CONN_TUNNEL:
    case CONN_FORWARD: {
        uint64_t now = loop_now_ms(l), idle = now - c->last_active_ms;
        if (c->idle_ms && idle >= c->idle_ms) {
            conn_close(c, "idle_timeout");
            return;
        }
        if (c->idle_ms && loop_timer_start(l, &c->timer, c->idle_ms - idle) < 0)
            conn_close(c, "timer_full");
        return;
    }
    case CONN_CLOSED:
        return;
    }
}

int conn_flush_client(struct conn *c)
{
    while (c->cout.len) {
        long n = side_buf_write(&c->cout, c->cfd, c->ctls);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            conn_close(c, "client_write_error");
            return -1;
        }
        c->fwd_down += (uint64_t)n; /* our own answers count as bytes down */
    }
    if (c->close_after_flush) {
        conn_close(c, c->close_reason ? c->close_reason : "response_sent");
        return -1;
    }
    return 0;
}

/* ---- identity ---- */

static void copy_identity(struct conn *c, const struct identity *id, int rc)
{
    struct conn_identity *ci = &c->ident;
    ci->pid = id->pid;
    memcpy(ci->tainted_by, id->tainted_by, sizeof(ci->tainted_by));
    ci->exe = id->exe[0] ? strdup(id->exe) : NULL;
    ci->ancestors = calloc(id->n_ancestors ? id->n_ancestors : 1, sizeof(char *));
    for (size_t i = 0; ci->ancestors && i < id->n_ancestors; i++)
        ci->ancestors[ci->n_ancestors++] = strdup(id->ancestors[i]);
    if (rc < 0 || id->reason_code) {
        ci->reason_code = id->reason_code ? id->reason_code : IDENTITY_REASON_UNRESOLVED;
        ci->detail = strdup(id->detail[0] ? id->detail : "the calling process could not be identified");
    }
}

static void resolve_identity(struct conn *c)
{
    struct identity *scratch = c->w->ident_scratch;
    memset(scratch, 0, offsetof(struct identity, ancestors));
    scratch->exe[0] = '\0';
    scratch->detail[0] = '\0';
    scratch->reason_code = NULL;
    int rc = identity_resolve(c->w->proxy->ident, (struct sockaddr *)&c->peer,
                              (struct sockaddr *)&c->local, scratch);
    copy_identity(c, scratch, rc);
    c->ident_done = true;
}

/* ---- request dispatch ---- */

/* The path as logged and shown in deny bodies: without the query, which
 * often carries credentials (api_key=...). */
static void copy_log_path(struct conn *c, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    if (q)
        n = (size_t)(q - p);
    if (n > sizeof(c->path) - 1)
        n = sizeof(c->path) - 1;
    memcpy(c->path, p, n);
    c->path[n] = '\0';
}

static int parse_target(struct conn *c)
{
    const char *why = NULL;
    struct http_head *h = &c->head;
    int r;
    if (h->method == HTTP_CONNECT) {
        c->kind = KIND_CONNECT;
        r = target_parse_authority(h->target, h->target_len, &c->target, &why);
    } else {
        c->kind = KIND_FORWARD;
        if (h->target_len > 0 && h->target[0] == '/') {
            respond_error(c, 400, "not_a_proxy_request",
                          "cordon is a proxy: send CONNECT host:port, or an absolute-form "
                          "request such as GET http://host/path");
            return -1;
        }
        r = target_parse_absolute(h->target, h->target_len, &c->target, &why);
    }
    if (r < 0) {
        char d[300];
        snprintf(d, sizeof(d), "bad request target: %s", why);
        respond_error(c, 400, "bad_target", d);
        return -1;
    }
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
    if (c->kind == KIND_FORWARD) {
        copy_log_path(c, c->target.path, c->target.path_len);
    } else {
        c->path[0] = '\0';
    }
    return 0;
}

static bool decide(struct conn *c)
{
    if (c->ident.reason_code) {
        respond_deny(c, 403, c->ident.reason_code, c->ident.detail ? c->ident.detail : "",
                     c->ident.reason_code == IDENTITY_REASON_BINARY_CHANGED
                         ? "the executable changed since it was first seen; restart the sandbox "
                           "if the change is legitimate"
                         : "the proxy could not tell which program opened this connection; "
                           "connect directly from the sandboxed process");
        return false;
    }
    struct policy_query q = {
        .host = c->target.host,
        .port = c->target.port,
        .exe = c->ident.exe ? c->ident.exe : "",
        .ancestors = (const char *const *)c->ident.ancestors,
        .n_ancestors = c->ident.n_ancestors,
        .tainted_by = c->ident.tainted_by,
    };
    struct policy_decision d;
    policy_decide(c->pol, &q, &d);
    c->policy_key = d.policy_key;
    if (!d.allow) {
        respond_deny(c, 403, d.reason_code, d.detail, d.hint);
        return false;
    }
    c->ep = d.endpoint;
    return true;
}

static bool same_upstream(const struct conn *c)
{
    return c->ufd >= 0 && !c->upstream_eof && c->upstream_port == c->target.port &&
           strcmp(c->upstream_host, c->target.host) == 0;
}

/* Host (RFC 9110 §7.2) of a request inside a tunnel must name the CONNECT
 * authority: otherwise a request could be fronted to another virtual host. */
static bool host_matches(struct conn *c)
{
    const struct http_hdr *h = http_head_find(&c->head, "host");
    char auth[TARGET_HOST_MAX + 16];
    struct proxy_target t;
    const char *why;
    if (!h || h->value_len == 0 || h->value_len >= sizeof(auth) - 8)
        return false;
    memcpy(auth, h->value, h->value_len);
    auth[h->value_len] = '\0';
    bool has_port = auth[0] == '[' ? strstr(auth, "]:") != NULL : strchr(auth, ':') != NULL;
    if (!has_port) /* no port: the default for the scheme, whatever the tunnel's */
        snprintf(auth + h->value_len, sizeof(auth) - h->value_len, ":%u", c->target.port);
    if (target_parse_authority(auth, strlen(auth), &t, &why) < 0)
        return false;
    return strcmp(t.host, c->target.host) == 0 && t.port == c->target.port;
}

static void process_inspected_head(struct conn *c)
{
    struct http_head *h = &c->head;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
    copy_log_path(c, h->target, h->target_len);
    if (h->method == HTTP_CONNECT || h->target_len == 0 || (h->target[0] != '/' && !(h->target_len == 1 && h->target[0] == '*'))) {
        respond_deny(c, 400, "bad_target", "requests inside a tunnel must use origin-form targets (/path)", NULL);
        return;
    }
    if (!host_matches(c)) {
        respond_deny(c, 403, "host_mismatch",
                     "the Host header does not name the CONNECT authority (domain fronting is refused)",
                     "send Host: <the host you connected to>");
        return;
    }
    if (!l7_check_request(c))
        return;
    if (c->ufd < 0 || c->upstream_eof) {
        /* the upstream closed its idle keep-alive connection: dial again
         * (same name, same fence, TLS again when terminated) */
        upstream_close(c);
        upstream_begin(c);
        return;
    }
    forward_start(c);
}

void conn_process_head(struct conn *c)
{
    enum http_step st = http_parse_head(&c->req, buf_head(&c->cin), c->cin.len, &c->head);
    if (st == HTTP_NEED_MORE) {
        if (c->client_eof)
            conn_close(c, c->cin.len ? "client_closed_mid_head" : "client_closed");
        return;
    }
    if (st == HTTP_TOO_LARGE) {
        respond_error(c, 431, "head_too_large", "the request head exceeds 16384 bytes");
        return;
    }
    if (st == HTTP_ERROR) {
        char d[300];
        snprintf(d, sizeof(d), "malformed request: %s", http_parser_error(&c->req));
        respond_error(c, 400, "bad_request", d);
        return;
    }
    c->head_parsed = true;
    loop_timer_stop(c->w->loop, &c->timer);
    if (c->inspect) {
        process_inspected_head(c);
        return;
    }
    if (parse_target(c) < 0)
        return;
    if (!c->ident_done)
        resolve_identity(c);
    if (!c->pol)
        c->pol = policy_current();
    if (!c->pol) {
        respond_error(c, 503, "no_policy", "no policy is loaded");
        return;
    }
    if (!decide(c))
        return;
    if (c->kind == KIND_FORWARD && !l7_check_request(c))
        return;
    if (c->kind == KIND_FORWARD && same_upstream(c)) {
        forward_start(c);
        return;
    }
    upstream_close(c);
    upstream_begin(c);
}

/* A forward exchange finished: either wait for the next request head or close. */
void conn_request_done(struct conn *c)
{
    c->head_parsed = false;
    c->state = CONN_HEAD;
    http_parser_init(&c->req, HTTP_REQUEST_PARSER);
    if (loop_timer_start(c->w->loop, &c->timer, PROXY_KEEPALIVE_IDLE_MS) < 0) {
        conn_close(c, "timer_full");
        return;
    }
    /* Edge-triggered: bytes that arrived while the last exchange was in
     * flight raised no new event, so read now. */
    read_head_bytes(c);
}

static void read_head_bytes(struct conn *c)
{
    for (;;) {
        long n = side_buf_read(&c->cin, c->cfd, c->ctls);
        if (n > 0)
            continue;
        if (n == 0)
            c->client_eof = true;
        else if (n != -EAGAIN && n != -ENOBUFS) {
            conn_close(c, "client_read_error");
            return;
        }
        break;
    }
    if (c->cin.len == 0 && c->client_eof) {
        conn_close(c, "client_closed");
        return;
    }
    if (c->cin.len && !c->head_parsed) {
        if (!loop_timer_armed(&c->timer) ||
            c->timer.deadline_ms > loop_now_ms(c->w->loop) + c->w->proxy->cfg.head_timeout_ms)
            (void)loop_timer_start(c->w->loop, &c->timer, c->w->proxy->cfg.head_timeout_ms);
        conn_process_head(c);
    }
}

void conn_on_client(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct conn *c = io->data;
    (void)l;
    if (c->state == CONN_CLOSED)
        return;
    if (ev & EPOLLOUT) {
        if (c->cout.len && conn_flush_client(c) < 0)
            return;
    }
    switch (c->state) {
    case CONN_HEAD:
        if (c->close_after_flush) {
            if (ev & (EPOLLERR | EPOLLHUP))
                conn_close(c, "client_closed");
            return;
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            read_head_bytes(c);
        return;
    case CONN_RESOLVE:
    case CONN_CONNECT:
        if (ev & (EPOLLERR | EPOLLHUP)) {
            conn_close(c, "client_closed");
            return;
        }
        return; /* buffered by the kernel until the upstream is ready */
    case CONN_TUNNEL:
        tunnel_on_event(c);
        return;
    case CONN_FORWARD:
        forward_on_event(c);
        return;
    case CONN_PEEK:
    case CONN_TLS_ACCEPT:
    case CONN_TLS_CONNECT:
        inspect_on_event(c);
        return;
    case CONN_CLOSED:
        return;
    }
}
