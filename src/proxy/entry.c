/* proxy/entry: entry adapters — how a connection names what it wants.
 *
 * Every entry ends in the same pipeline (IDENTIFY → DECIDE → RESOLVE →
 * CONNECT → relay); an adapter only fills c->kind, c->target, c->method and
 * c->path from what arrived, or answers a request it cannot take. The
 * proxy's port (and the in-sandbox 127.0.0.1:3128, xlisten.c) has one entry
 * with two forms: explicit CONNECT (authority-form) and absolute-form
 * requests. Transparent capture is the other entry:
 *
 * entry_transparent: in a sandbox, nftables in the sandbox's namespace
 * redirects TCP to the addresses its policy DNS handed out to a socket
 * opened inside that namespace (xlisten.c). SO_ORIGINAL_DST on the accepted
 * connection answers from that namespace's connection tracking; the
 * address is mapped back to the name it stands for
 * (proxy_config.transparent_lookup) and the port is kept: from here the
 * connection is a CONNECT to name:port. Identity: the client's socket is
 * connected to the original destination, so that is c->local. Then the
 * same relays: inspected for `protocol: rest` (SNI must equal the name,
 * Host must agree, L7 rules, 101 upgrades), a raw splice relay otherwise.
 * No 200 is sent (inspect.c, tunnel.c); refusals before the client speaks
 * HTTP to us close the connection (respond.c); audit events carry
 * "via": "transparent" (auditev.c); the client leg gets TCP keepalive like
 * the upstream leg.
 *
 * Inference names (infer.c) are taken before the policy: one more adapter. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "proxy/internal.h"
#include "core/banned.h"

void entry_log_path(struct conn *c, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    if (q)
        n = (size_t)(q - p);
    if (n > sizeof(c->path) - 1)
        n = sizeof(c->path) - 1;
    memcpy(c->path, p, n);
    c->path[n] = '\0';
}

static void copy_method(struct conn *c)
{
    const struct http_head *h = &c->msg->head;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
}

static enum conn_step bad_target(struct conn *c, const char *why)
{
    char d[300];
    snprintf(d, sizeof(d), "bad request target: %s", why);
    return respond_error(c, 400, PROXY_REASON_BAD_TARGET, d);
}

/* CONNECT host:port (RFC 9110 §9.3.6): a tunnel. */
static enum conn_step entry_connect(struct conn *c)
{
    const char *why = NULL;
    c->kind = KIND_CONNECT;
    if (target_parse_authority(c->msg->head.target, c->msg->head.target_len, &c->target, &why) < 0)
        return bad_target(c, why);
    copy_method(c);
    c->path[0] = '\0';
    return CONN_STEP_NEXT;
}

/* A Connection option naming Content-Length or Transfer-Encoding: the
 * forward head drops the fields Connection names (hop-by-hop, RFC 9110
 * §7.6.1) while the proxy frames the body by them, so the upstream would
 * read the body as a request of its own that no rule saw. */
static bool connection_names_framing(const struct http_head *h)
{
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (x->name_len == 10 && strncasecmp(x->name, "connection", 10) == 0 &&
            (http_value_has_token(x->value, x->value_len, "content-length") ||
             http_value_has_token(x->value, x->value_len, "transfer-encoding")))
            return true;
    }
    return false;
}

/* GET http://host/path (RFC 9112 §3.2.2): one forwarded exchange. */
static enum conn_step entry_absolute(struct conn *c)
{
    const char *why = NULL;
    const struct http_head *h = &c->msg->head;
    c->kind = KIND_FORWARD;
    if (connection_names_framing(h))
        return respond_error(c, 400, PROXY_REASON_BAD_REQUEST,
                             "the Connection header names Content-Length or Transfer-Encoding: "
                             "the body's framing cannot be hop-by-hop; drop that option");
    if (h->target_len > 0 && h->target[0] == '/')
        return respond_error(c, 400, PROXY_REASON_NOT_A_PROXY_REQUEST,
                             "cordon is a proxy: send CONNECT host:port, or an absolute-form "
                             "request such as GET http://host/path");
    if (target_parse_absolute(h->target, h->target_len, &c->target, &why) < 0)
        return bad_target(c, why);
    copy_method(c);
    entry_log_path(c, c->target.path, c->target.path_len);
    if (local_wants(c)) /* http://cordon.local/: answered here, never dialled */
        return local_serve(c);
    return CONN_STEP_NEXT;
}

enum conn_step entry_explicit(struct conn *c)
{
    enum conn_step s = c->msg->head.method == HTTP_CONNECT ? entry_connect(c) : entry_absolute(c);
    if (s != CONN_STEP_NEXT)
        return s;
    bool intercepted = infer_intercepts(c);
    if (c->infer && !intercepted) { /* the last request was an inference call: its backend is not for this one */
        c->infer = false;
        upstream_close(c);
    }
    return intercepted ? infer_entry(c) : CONN_STEP_NEXT; /* inference.local: before the policy */
}

/* Refused before the pipeline: the audit event, then a closed socket. */
static enum conn_step refuse(struct conn *c, const char *reason, const char *detail)
{
    auditev_decision(c, false, reason, detail);
    return conn_fail(c, reason);
}

enum conn_step entry_transparent(struct conn *c)
{
    const struct proxy_config *cfg = &c->w->proxy->cfg;
    struct sockaddr_in orig;
    socklen_t ol = sizeof(orig);
    int one = 1, idle = 60, intvl = 15;
    setsockopt(c->cfd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(c->cfd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(c->cfd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    c->kind = KIND_CONNECT;
    c->method[0] = c->path[0] = '\0';
    memset(&orig, 0, sizeof(orig));
    if (getsockopt(c->cfd, SOL_IP, SO_ORIGINAL_DST, &orig, &ol) < 0 || orig.sin_family != AF_INET) {
        char d[200];
        snprintf(d, sizeof(d), "the original destination of a captured connection is unknown "
                               "(%s)", strerror(errno));
        return refuse(c, PROXY_REASON_NO_ORIGINAL_DESTINATION, d);
    }
    c->target.port = ntohs(orig.sin_port);
    memcpy(&c->local, &orig, sizeof(orig));
    char host[sizeof(c->target.host)];
    if (!cfg->transparent_lookup ||
        cfg->transparent_lookup(cfg->transparent_ctx, &orig, host, sizeof(host)) < 0) {
        char ip[INET_ADDRSTRLEN], d[300];
        inet_ntop(AF_INET, &orig.sin_addr, ip, sizeof(ip));
        snprintf(c->target.host, sizeof(c->target.host), "%s", ip);
        snprintf(d, sizeof(d), "%s:%u is not an address the sandbox's DNS handed out; connect "
                               "to host names the policy allows", ip, (unsigned)c->target.port);
        return refuse(c, PROXY_REASON_ADDRESS_NOT_HANDED_OUT, d);
    }
    snprintf(c->target.host, sizeof(c->target.host), "%s", host);
    if (local_wants_transparent(c)) /* cordon.local by address: its request follows */
        return c->local_plain ? CONN_STEP_AGAIN
                              : refuse(c, PROXY_REASON_CORDON_LOCAL,
                                       "cordon.local answers plain HTTP on port 80 only");
    if (infer_intercepts(c)) /* inference.local reached by address: the same interception */
        return infer_entry(c);
    return CONN_STEP_NEXT;
}

