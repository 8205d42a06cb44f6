/* proxy/revoke: closing what a reloaded policy no longer allows (the
 * default of cordon run and cordon proxy; --no-revoke-on-reload turns it off).
 *
 * proxy_revoke() hands the new policy to every worker (under its ident_mu,
 * like finished identity lookups) and wakes its loop. On the worker's own
 * thread, revoke_run() walks that worker's connections and asks the new
 * policy the same L4 question DECIDE asked (host, port, binary and
 * ancestors); a connection it refuses gets a `revoked` audit event with the
 * new decision's reason and detail, and is closed (close reason "revoked"):
 * at once when it is a tunnel or idle, after the response when an HTTP
 * request the old policy allowed is in flight (no upgrade then, and no next
 * request). A connection still allowed stays; its next request is judged by
 * the policy in force (decide.c). Connections that never got a decision
 * (still reading the head, identifying), inference routes, cordon.local
 * answers and learning-mode connections are left alone. */
#include <jansson.h>

#include "core/audit.h"
#include "proxy/internal.h"
#include "core/banned.h"

void proxy_revoke(struct proxy *p, struct policy *pol)
{
    for (unsigned i = 0; i < p->n_workers; i++) {
        struct worker *w = &p->workers[i];
        pthread_mutex_lock(&w->ident_mu);
        struct policy *old = w->revoke_pol;
        w->revoke_pol = policy_ref(pol);
        pthread_mutex_unlock(&w->ident_mu);
        if (old)
            policy_unref(old);
        if (w->loop)
            loop_wake(w->loop);
    }
}

/* What a refusal by the reloaded policy does to a connection in this state:
 * nothing yet (no decision, or a request head still arriving, which DECIDE
 * will judge by the policy in force), close it now (tunnels, idle kept
 * connections, tunnels being set up), or let the HTTP request in flight,
 * which the old policy allowed, finish, then close (its response is its
 * answer; the client sees a complete message and then the close). */
enum revoke_action { REVOKE_SKIP, REVOKE_NOW, REVOKE_AT_END };

static enum revoke_action action_for(const struct conn *c)
{
    switch (c->state) {
    case CONN_TUNNEL:
    case CONN_KEEPALIVE:
    case CONN_PEEK:
    case CONN_TLS_ACCEPT:
        return REVOKE_NOW;
    case CONN_RESOLVE:
    case CONN_CONNECT:
    case CONN_TLS_CONNECT:
    case CONN_REQ_BODY:
    case CONN_EXCHANGE:
        /* a request on its way (forward, or inside an inspected tunnel) */
        return c->kind == KIND_FORWARD || c->head_parsed ? REVOKE_AT_END : REVOKE_NOW;
    case CONN_REQ_HEAD:
    case CONN_IDENTIFY:
    case CONN_DECIDE:
    case CONN_RESPONDING:
    case CONN_INFER:
    case CONN_CLOSED:
        return REVOKE_SKIP;
    }
    return REVOKE_SKIP;
}

static void audit_revoked(struct conn *c, unsigned gen, const struct policy_decision *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "reason_code", json_string(d->reason_code ? d->reason_code : ""));
    json_object_set_new(o, "detail", json_string(d->detail));
    json_object_set_new(o, "new_policy_generation", gen ? json_integer(gen) : json_null());
    json_object_set_new(o, "state", json_string(conn_state_name(c->state)));
    auditev_fill(c, o);
    audit_emit("revoked", o);
}

void revoke_run(struct worker *w)
{
    pthread_mutex_lock(&w->ident_mu);
    struct policy *pol = w->revoke_pol;
    w->revoke_pol = NULL;
    pthread_mutex_unlock(&w->ident_mu);
    if (!pol)
        return;
    unsigned gen = proxy_generation_of(w->proxy, pol);
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        enum revoke_action act = action_for(c);
        if (!c->pol || c->pol == pol || !c->target.host[0] || c->infer || c->learned ||
            c->ident.reason_code || c->revoke_at_end || act == REVOKE_SKIP)
            continue;
        struct policy_query q = decide_query(c);
        struct policy_decision d;
        policy_decide(pol, &q, &d);
        if (d.allow)
            continue;
        audit_revoked(c, gen, &d);
        if (act == REVOKE_AT_END)
            c->revoke_at_end = true;
        else
            conn_close(c, PROXY_REASON_REVOKED);
    }
    policy_unref(pol);
}

void revoke_drain(struct worker *w)
{
    if (w->revoke_pol)
        policy_unref(w->revoke_pol);
    w->revoke_pol = NULL;
}
