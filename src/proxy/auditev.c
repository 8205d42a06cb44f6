/* proxy/auditev: the proxy's audit events — one "decision" per request and
 * one "close" per connection. */
#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/parse.h"
#include "proxy/internal.h"
#include "core/banned.h"

static void add_common(struct conn *c, json_t *o)
{
    char ip[INET6_ADDRSTRLEN];
    json_object_set_new(o, "conn", json_integer((json_int_t)c->id));
    if (c->w->proxy->sandbox_name)
        json_object_set_new(o, "sandbox", json_string(c->w->proxy->sandbox_name));
    json_object_set_new(o, "kind", json_string(c->kind == KIND_CONNECT ? "connect" : "forward"));
    if (c->transparent)
        json_object_set_new(o, "via", json_string("transparent"));
    json_object_set_new(o, "client", json_string(sockaddr_ip_str((struct sockaddr *)&c->peer, ip, sizeof(ip))));
    json_object_set_new(o, "client_port", json_integer(sockaddr_port((struct sockaddr *)&c->peer)));
    json_object_set_new(o, "host", c->target.host[0] ? json_string(c->target.host) : json_null());
    json_object_set_new(o, "port", c->target.port ? json_integer(c->target.port) : json_null());
    if (c->kind == KIND_FORWARD && c->method[0]) {
        json_object_set_new(o, "method", json_string(c->method));
        json_object_set_new(o, "path", json_string(c->path));
    }
    json_object_set_new(o, "policy", c->policy_key ? json_string(c->policy_key) : json_null());
    unsigned gen = c->pol ? proxy_generation_of(c->w->proxy, c->pol) : 0;
    if (gen)
        json_object_set_new(o, "policy_generation", json_integer(gen));
    json_object_set_new(o, "resolved", c->have_resolved
        ? json_string(sockaddr_ip_str((struct sockaddr *)&c->resolved, ip, sizeof(ip))) : json_null());
    json_object_set_new(o, "binary", c->ident.exe ? json_string(c->ident.exe) : json_null());
    json_object_set_new(o, "pid", c->ident.pid ? json_integer(c->ident.pid) : json_null());
    json_t *anc = json_array();
    for (size_t i = 0; i < c->ident.n_ancestors; i++)
        json_array_append_new(anc, json_string(c->ident.ancestors[i]));
    json_object_set_new(o, "ancestors", anc);
}

void auditev_decision(struct conn *c, bool allow, const char *reason_code, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "decision", json_string(allow ? "allow" : "deny"));
    json_object_set_new(o, "reason_code", reason_code ? json_string(reason_code) : json_null());
    add_common(c, o);
    if (detail && detail[0])
        json_object_set_new(o, "detail", json_string(detail));
    audit_emit("decision", o);
}

void auditev_fill(struct conn *c, json_t *o)
{
    add_common(c, o);
}

void auditev_tls_client_rejected(struct conn *c, int alert, char *detail, size_t cap)
{
    const char *desc = SSL_alert_desc_string_long(alert);
    const char *exe = c->ident.exe ? c->ident.exe : "";
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe[0] ? exe : "the client";
    bool trust = alert == SSL_AD_UNKNOWN_CA || alert == SSL_AD_BAD_CERTIFICATE ||
                 alert == SSL_AD_CERTIFICATE_UNKNOWN || alert == SSL_AD_UNSUPPORTED_CERTIFICATE;
    if (trust)
        snprintf(detail, cap, "%s: the client (%s) does not trust the sandbox CA - see doc/tls.md "
                 "for %s (it must read SSL_CERT_FILE, the Java truststore or the NSS db)",
                 desc, base, base);
    else
        snprintf(detail, cap, "%s: the client (%s) ended the TLS handshake with this alert", desc,
                 base);
    json_t *o = json_object();
    add_common(c, o);
    json_object_set_new(o, "alert", json_string(desc));
    json_object_set_new(o, "alert_code", json_integer(alert));
    json_object_set_new(o, "trust", json_boolean(trust));
    json_object_set_new(o, "detail", json_string(detail));
    audit_emit("tls_client_rejected", o);
}

void auditev_learn(struct conn *c, const char *reason_code, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "decision", json_string("would_deny"));
    json_object_set_new(o, "reason_code", json_string(reason_code));
    json_object_set_new(o, "learn", json_true());
    add_common(c, o);
    if (detail && detail[0])
        json_object_set_new(o, "detail", json_string(detail));
    audit_emit("decision", o);
}

void auditev_close(struct conn *c)
{
    if (!c->head_parsed && !c->target.host[0] && c->cin.len == 0 && !c->close_reason)
        return; /* a connection that never sent anything: nothing to say */
    json_t *o = json_object();
    add_common(c, o);
    uint64_t up = c->up.bytes + c->fwd_up, down = c->down.bytes + c->fwd_down;
    json_object_set_new(o, "bytes_up", json_integer((json_int_t)up));
    json_object_set_new(o, "bytes_down", json_integer((json_int_t)down));
    json_object_set_new(o, "duration_ms",
                        json_integer((json_int_t)(loop_now_ms(c->w->loop) - c->start_ms)));
    json_object_set_new(o, "reason", json_string(c->close_reason ? c->close_reason : "closed"));
    if (c->ws)
        wsrelay_audit(c, o);
    audit_emit("close", o);
}

void auditev_upgrade(struct conn *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "decision", json_string("allow"));
    json_object_set_new(o, "l7_decision", json_string("allow_upgrade"));
    add_common(c, o);
    json_object_set_new(o, "idle_timeout_ms", json_integer((json_int_t)c->idle_ms));
    audit_emit("upgrade", o);
}

void auditev_inference(struct conn *c, json_t *o)
{
    json_t *all = json_object();
    add_common(c, all);
    json_object_update(all, o); /* the event's own fields win (host: the intercepted name) */
    json_decref(o);
    audit_emit("inference", all);
}
