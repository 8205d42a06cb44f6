/* proxy/state: the owner of a connection's state.
 *
 * One table names, for each state, its entry action, its timer, what it
 * does with an event and a timeout, and the states it may go to. conn_go()
 * is the only writer of c->state; conn_run() is the only caller of
 * conn_go() (besides conn_close()), and it loops: a phase returns a step
 * (wait, next, again, respond, close), the owner picks the next state
 * (route(), one switch) and enters it, until the connection waits or is
 * closed. Pipelined requests, with denials between them, go round this
 * loop; nothing re-enters the read path recursively.
 *
 * Illegal transitions are bugs: they abort sanitizer builds (our debug
 * builds) and otherwise close the connection with
 * PROXY_REASON_ILLEGAL_TRANSITION and an error log line. */
#include <stdlib.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define BIT(s) (1u << (s))

typedef enum conn_step (*conn_enter_fn)(struct conn *c);
typedef enum conn_step (*conn_event_fn)(struct conn *c, enum conn_side s, uint32_t ev);
typedef enum conn_step (*conn_timer_fn)(struct conn *c);

struct conn_state_def {
    const char *name;
    enum conn_timer timer;  /* armed on entry (the previous one is stopped) */
    uint32_t next;          /* allowed next states (CLOSED is always allowed) */
    conn_enter_fn enter;    /* entry action; NULL = wait */
    conn_event_fn on_event; /* I/O on either side; NULL = ignore */
    conn_timer_fn on_timer; /* the state's timer fired */
};

static enum conn_step ignore_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)c, (void)s, (void)ev;
    return CONN_STEP_WAIT;
}

static enum conn_step connect_timeout(struct conn *c)
{
    return upstream_connect_timer(c);
}

static const struct conn_state_def states[CONN_N_STATES] = {
    /* REQ_HEAD -> REQ_HEAD: a captured cordon.local connection reads its request (local.c) */
    [CONN_REQ_HEAD] = {"REQ_HEAD", CONN_TIMER_HEAD,
                       BIT(CONN_IDENTIFY) | BIT(CONN_DECIDE) | BIT(CONN_RESPONDING) |
                           BIT(CONN_INFER) | BIT(CONN_PEEK) | BIT(CONN_REQ_HEAD),
                       conn_enter_req_head, conn_req_head_event, conn_req_head_timer},
    [CONN_IDENTIFY] = {"IDENTIFY", CONN_TIMER_NONE,
                       BIT(CONN_DECIDE) | BIT(CONN_RESPONDING) | BIT(CONN_INFER) | BIT(CONN_PEEK),
                       identify_enter, conn_waiting_event, NULL},
    [CONN_DECIDE] = {"DECIDE", CONN_TIMER_NONE,
                     BIT(CONN_RESOLVE) | BIT(CONN_EXCHANGE) | BIT(CONN_REQ_BODY) |
                         BIT(CONN_RESPONDING),
                     decide_enter, ignore_event, NULL},
    [CONN_REQ_BODY] = {"REQ_BODY", CONN_TIMER_HEAD,
                       BIT(CONN_RESOLVE) | BIT(CONN_EXCHANGE) | BIT(CONN_RESPONDING),
                       reqbody_enter, reqbody_event, reqbody_timer},
    [CONN_RESOLVE] = {"RESOLVE", CONN_TIMER_NONE, BIT(CONN_CONNECT) | BIT(CONN_RESPONDING),
                      upstream_resolve_enter, conn_waiting_event, NULL},
    [CONN_CONNECT] = {"CONNECT", CONN_TIMER_CONNECT,
                      BIT(CONN_CONNECT) | BIT(CONN_TUNNEL) | BIT(CONN_PEEK) |
                          BIT(CONN_TLS_CONNECT) | BIT(CONN_EXCHANGE) | BIT(CONN_RESPONDING),
                      upstream_connect_enter, upstream_connect_event, connect_timeout},
    [CONN_PEEK] = {"PEEK", CONN_TIMER_HEAD, BIT(CONN_TLS_ACCEPT) | BIT(CONN_REQ_HEAD),
                   inspect_peek_enter, inspect_peek_event, inspect_client_timer},
    [CONN_TLS_ACCEPT] = {"TLS_ACCEPT", CONN_TIMER_HEAD, BIT(CONN_TLS_CONNECT) | BIT(CONN_REQ_HEAD),
                         inspect_tls_accept_enter, inspect_tls_accept_event,
                         inspect_client_timer},
    [CONN_TLS_CONNECT] = {"TLS_CONNECT", CONN_TIMER_CONNECT,
                          BIT(CONN_REQ_HEAD) | BIT(CONN_EXCHANGE) | BIT(CONN_RESPONDING),
                          inspect_tls_connect_enter, inspect_tls_connect_event,
                          inspect_tls_connect_timer},
    [CONN_EXCHANGE] = {"EXCHANGE", CONN_TIMER_IDLE,
                       BIT(CONN_KEEPALIVE) | BIT(CONN_TUNNEL) | BIT(CONN_RESPONDING),
                       forward_enter, forward_event, conn_idle_timer},
    [CONN_TUNNEL] = {"TUNNEL", CONN_TIMER_IDLE, BIT(CONN_RESPONDING), tunnel_enter,
                     tunnel_event, conn_idle_timer},
    [CONN_RESPONDING] = {"RESPONDING", CONN_TIMER_HEAD, BIT(CONN_KEEPALIVE), respond_enter,
                         respond_event, respond_timer},
    [CONN_KEEPALIVE] = {"KEEPALIVE", CONN_TIMER_KEEPALIVE, BIT(CONN_REQ_HEAD),
                        conn_enter_keepalive, conn_keepalive_event, conn_keepalive_timer},
    [CONN_INFER] = {"INFER", CONN_TIMER_HEAD,
                    BIT(CONN_RESOLVE) | BIT(CONN_EXCHANGE) | BIT(CONN_RESPONDING),
                    infer_enter, infer_event, infer_timer},
    [CONN_CLOSED] = {"CLOSED", CONN_TIMER_NONE, 0, conn_enter_closed, NULL, NULL},
};

const char *conn_state_name(enum conn_state s)
{
    return (unsigned)s < CONN_N_STATES ? states[s].name : "?";
}

bool conn_state_allows(enum conn_state from, enum conn_state to)
{
    if ((unsigned)from >= CONN_N_STATES || (unsigned)to >= CONN_N_STATES)
        return false;
    if (from == CONN_CLOSED)
        return false;
    return to == CONN_CLOSED || (states[from].next & BIT(to)) != 0;
}

enum conn_timer conn_state_timer(enum conn_state s)
{
    return (unsigned)s < CONN_N_STATES ? states[s].timer : CONN_TIMER_NONE;
}

enum conn_step conn_fail(struct conn *c, const char *reason)
{
    if (!c->close_reason)
        c->close_reason = reason;
    return CONN_STEP_CLOSE;
}

static uint64_t timer_ms(const struct conn *c, enum conn_timer t)
{
    const struct proxy_config *cfg = &c->w->proxy->cfg;
    switch (t) {
    case CONN_TIMER_NONE:
        return 0;
    case CONN_TIMER_HEAD:
        return cfg->head_timeout_ms;
    case CONN_TIMER_CONNECT:
        return c->infer ? infer_connect_timeout_ms(c) : cfg->connect_timeout_ms;
    case CONN_TIMER_IDLE:
        return c->idle_ms;
    case CONN_TIMER_KEEPALIVE:
        return PROXY_KEEPALIVE_IDLE_MS;
    }
    return 0;
}

enum conn_step conn_timer_rearm(struct conn *c, uint64_t ms)
{
    if (loop_timer_start(c->w->loop, &c->timer, ms) < 0)
        return conn_fail(c, PROXY_REASON_TIMER_FULL);
    return CONN_STEP_WAIT;
}

static enum conn_step illegal(struct conn *c, enum conn_state next)
{
    log_error("proxy: conn %llu: internal invariant: illegal transition %s -> %s; closing",
              (unsigned long long)c->id, conn_state_name(c->state), conn_state_name(next));
#if defined(__SANITIZE_ADDRESS__)
    abort();
#endif
    c->close_reason = PROXY_REASON_ILLEGAL_TRANSITION;
    return CONN_STEP_CLOSE;
}

enum conn_step conn_go(struct conn *c, enum conn_state next)
{
    enum conn_state from = c->state;
    if (!conn_state_allows(from, next))
        return illegal(c, next);
    log_debug("proxy: conn %llu: %s -> %s", (unsigned long long)c->id, states[from].name,
              states[next].name);
    loop_timer_stop(c->w->loop, &c->timer);
    c->state = next;
    uint64_t ms = timer_ms(c, states[next].timer);
    if (ms && loop_timer_start(c->w->loop, &c->timer, ms) < 0 && next != CONN_CLOSED)
        return conn_fail(c, PROXY_REASON_TIMER_FULL);
    return states[next].enter ? states[next].enter(c) : CONN_STEP_WAIT;
}

/* Where a state that finished its work goes next: the pipeline's routing,
 * from what the phases recorded on c. */
static enum conn_state route(struct conn *c)
{
    switch (c->state) {
    case CONN_REQ_HEAD:
        if (c->infer && !c->ident_done)
            return CONN_IDENTIFY; /* for the audit only: which program called the model */
        if (c->infer)
            return c->kind == KIND_CONNECT && !c->inspect ? CONN_PEEK : CONN_INFER;
        return c->inspect || c->ident_done ? CONN_DECIDE : CONN_IDENTIFY;
    case CONN_IDENTIFY:
        if (c->infer)
            return c->kind == KIND_CONNECT && !c->inspect ? CONN_PEEK : CONN_INFER;
        return CONN_DECIDE;
    case CONN_INFER:
        return infer_reuses_upstream(c) ? CONN_EXCHANGE : CONN_RESOLVE;
    case CONN_DECIDE:
        if (reqbody_wanted(c)) /* the body (or its first chunk size) is needed first */
            return CONN_REQ_BODY;
        return decide_reuses_upstream(c) ? CONN_EXCHANGE : CONN_RESOLVE;
    case CONN_REQ_BODY:
        return decide_reuses_upstream(c) ? CONN_EXCHANGE : CONN_RESOLVE;
    case CONN_RESOLVE:
        return CONN_CONNECT;
    case CONN_CONNECT:
        if (c->infer) /* a route's backend: TLS per the route, whatever the client side is */
            return infer_route_tls(c) ? CONN_TLS_CONNECT : CONN_EXCHANGE;
        if (c->inspect) /* re-dialled for the next request of an inspected tunnel */
            return c->ctls ? CONN_TLS_CONNECT : CONN_EXCHANGE;
        if (c->kind == KIND_CONNECT)
            return c->ep && policy_endpoint_is_rest(c->ep) &&
                           policy_endpoint_tls(c->ep) != POLICY_TLS_SKIP
                       ? CONN_PEEK
                       : CONN_TUNNEL;
        return c->target.scheme == TARGET_HTTPS || c->target.scheme == TARGET_WSS
                   ? CONN_TLS_CONNECT
                   : CONN_EXCHANGE;
    case CONN_PEEK:
        return c->ctls ? CONN_TLS_ACCEPT : CONN_REQ_HEAD;
    case CONN_TLS_ACCEPT:
        return c->infer ? CONN_REQ_HEAD : CONN_TLS_CONNECT; /* inference: backends per request */
    case CONN_TLS_CONNECT:
        /* a request is waiting for this upstream, or the tunnel opens */
        return c->infer || c->kind == KIND_FORWARD || c->head_parsed ? CONN_EXCHANGE : CONN_REQ_HEAD;
    case CONN_EXCHANGE:
        switch (c->xend) {
        case CONN_XEND_UPGRADED:
            return CONN_TUNNEL;
        case CONN_XEND_CONSUMED:
            (void)conn_fail(c, PROXY_REASON_EXCHANGE_DONE);
            return CONN_CLOSED;
        case CONN_XEND_REUSABLE:
            return CONN_KEEPALIVE;
        }
        return CONN_CLOSED;
    case CONN_RESPONDING:
        if (c->respond_keep)
            return CONN_KEEPALIVE;
        (void)conn_fail(c, PROXY_REASON_RESPONSE_SENT);
        return CONN_CLOSED;
    case CONN_KEEPALIVE:
        return CONN_REQ_HEAD;
    case CONN_TUNNEL:
        return CONN_CLOSED; /* both directions are done; the reason is set */
    case CONN_CLOSED:
        return CONN_CLOSED;
    }
    return CONN_CLOSED;
}

void conn_run(struct conn *c, enum conn_step s)
{
    if (c->running) { /* a phase called back into the owner: a bug */
        log_error("proxy: conn %llu: internal invariant: re-entered in %s", (unsigned long long)c->id,
                  conn_state_name(c->state));
#if defined(__SANITIZE_ADDRESS__)
        abort();
#endif
        return;
    }
    c->running = true;
    while (c->state != CONN_CLOSED) {
        switch (s) {
        case CONN_STEP_WAIT:
            c->running = false;
            return;
        case CONN_STEP_NEXT:
            s = conn_go(c, route(c));
            continue;
        case CONN_STEP_AGAIN:
            s = conn_go(c, c->state);
            continue;
        case CONN_STEP_RESPOND:
            s = conn_go(c, CONN_RESPONDING);
            continue;
        case CONN_STEP_CLOSE:
            s = conn_go(c, CONN_CLOSED);
            continue;
        }
    }
    c->running = false;
}

void conn_close(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    (void)conn_fail(c, reason);
    (void)conn_go(c, CONN_CLOSED);
}

/* ---- event and timer dispatch ---- */

void conn_dispatch_event(struct conn *c, enum conn_side side, uint32_t ev)
{
    if (c->state == CONN_CLOSED || !states[c->state].on_event)
        return;
    conn_run(c, states[c->state].on_event(c, side, ev));
}

void conn_dispatch_timer(struct conn *c)
{
    if (c->state == CONN_CLOSED || !states[c->state].on_timer)
        return;
    conn_run(c, states[c->state].on_timer(c));
}

void conn_start(struct conn *c)
{
    enum conn_state s = c->state; /* the initial state, from conn_accept's calloc */
    log_debug("proxy: conn %llu: accepted -> %s", (unsigned long long)c->id, states[s].name);
    uint64_t ms = timer_ms(c, states[s].timer);
    if (ms && loop_timer_start(c->w->loop, &c->timer, ms) < 0) {
        conn_close(c, PROXY_REASON_TIMER_FULL);
        return;
    }
    conn_run(c, states[s].enter(c));
}
