/* proxy/local: http://cordon.local/, answered by the proxy itself.
 *
 * Inside a sandbox the agent asks the proxy what was refused and why
 * (GET http://cordon.local/denials), what policy is in force (/policy) and
 * what is being enforced (/status). The proxy only routes: the content
 * comes from the embedder's callback (cordon run keeps it; the standalone
 * proxy has none, and cordon.local is then an ordinary, denied host).
 * Absolute-form requests through the proxy reach it (clients with
 * HTTP_PROXY set), and so do clients that ignore the proxy: the sandbox's
 * policy DNS answers cordon.local (proxy_intercepts_name), the captured
 * connection to port 80 is read as one origin-form request (entry.c,
 * conn.c), other ports are refused. The answer always closes the
 * connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define LOCAL_HOST "cordon.local"

bool local_wants(const struct conn *c)
{
    return c->kind == KIND_FORWARD && c->w->proxy->cfg.local_cb &&
           strcasecmp(c->target.host, LOCAL_HOST) == 0;
}

bool local_wants_transparent(struct conn *c)
{
    if (!c->w->proxy->cfg.local_cb || strcasecmp(c->target.host, LOCAL_HOST) != 0)
        return false;
    c->local_plain = c->target.port == 80;
    return true;
}

enum conn_step local_serve_plain(struct conn *c)
{
    const struct http_head *h = &c->msg->head;
    c->kind = KIND_FORWARD;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
    if (h->target_len == 0 || h->target[0] != '/')
        return respond_error(c, 400, PROXY_REASON_BAD_TARGET,
                             "cordon.local: send an origin-form request (GET /denials)");
    entry_log_path(c, h->target, h->target_len);
    return local_serve(c);
}

/* Answers the request from the embedder's callback; RESPONDING sends it
 * and the connection closes. */
enum conn_step local_serve(struct conn *c)
{
    const struct proxy_config *cfg = &c->w->proxy->cfg;
    const struct http_hdr *acc = http_head_find(&c->msg->head, "accept");
    char accept[256] = "";
    if (acc)
        snprintf(accept, sizeof(accept), "%.*s", (int)acc->value_len, acc->value);
    struct proxy_local_reply r = {.status = 404};
    if (strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0) {
        r.status = 405;
    } else {
        cfg->local_cb(c->path[0] ? c->path : "/", accept, &r, cfg->local_data);
    }
    const char *text = r.status == 200 ? "OK" : r.status == 405 ? "Method Not Allowed"
                                                                : "Not Found";
    if (!r.body) {
        r.body = strdup(r.status == 405 ? "cordon.local answers GET only\n"
                                        : "no such page; try http://cordon.local/\n");
        r.content_type = "text/plain; charset=utf-8";
    }
    size_t bl = r.body ? strlen(r.body) : 0;
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      r.status, text, r.content_type ? r.content_type : "text/plain", bl);
    auditev_decision(c, true, NULL, "answered by the proxy (cordon.local)");
    if (hl < 0 || (size_t)hl >= sizeof(head) || buf_append(&c->cout, head, (size_t)hl) < 0 ||
        (strcmp(c->method, "HEAD") != 0 && bl && buf_append(&c->cout, r.body, bl) < 0))
        log_warn("proxy: conn %llu: cordon.local answer does not fit the output buffer",
                 (unsigned long long)c->id);
    free(r.body);
    c->close_reason = PROXY_REASON_CORDON_LOCAL;
    c->respond_keep = false;
    return CONN_STEP_RESPOND;
}
