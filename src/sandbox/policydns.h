/* sandbox/policydns: the policy DNS responder, the sandbox's only resolver.
 *
 * It listens on 127.0.0.1:53 inside the sandbox namespace, UDP and TCP
 * (sockets the supervisor opened there, served on the supervisor's loop),
 * and the sandbox's /etc/resolv.conf points at it (a bind mount in the
 * sandbox's own mount namespace; see init.c). Nothing is ever forwarded:
 *
 *   name named by the policy (any endpoint host, exact or wildcard, any
 *   port, any binary; policy_names_host() on the policy in force):
 *     A     → one synthetic address from the sandbox's addrmap, TTL
 *             POLICYDNS_TTL; the proxy maps it back to the name when the
 *             sandbox connects to it (transparent capture).
 *     AAAA  → NODATA (the sandbox has no IPv6 egress: the proxy is IPv4).
 *     other → NODATA (HTTPS/SVCB, CNAME...), except the types below.
 *   PTR, SRV, MX, TXT, ANY (any name) → NXDOMAIN and a dns_denied event.
 *   any other name → NXDOMAIN at once and a dns_denied event: name,
 *     query type, the asking process (pid, exe, ancestors) when its socket
 *     can still be found, and a hint naming the policy entry to add.
 *   Repeats (same name, type and process within POLICYDNS_REPEAT_WINDOW_MS)
 *   are counted: the first is logged at once, then one event with
 *   "repeated": true and the count when the window ends or at exit
 *   (POLICYDNS_REPEAT_CAP keys; when full the oldest is flushed).
 *   malformed query → FORMERR; opcode other than QUERY → NOTIMP; class
 *     other than IN → REFUSED; a response or a runt → dropped.
 *
 * NXDOMAIN, never SERVFAIL or a timeout: resolvers report NXDOMAIN as
 * "not found" at once; SERVFAIL and timeouts read as "temporary failure,
 * retry" (EAI_AGAIN), which makes agents and bots loop.
 *
 * Bounds: UDP answers fit 512 bytes (one A record); at most
 * POLICYDNS_MAX_TCP TCP clients, each idle at most POLICYDNS_TCP_IDLE_MS,
 * a query at most POLICYDNS_TCP_MSG_MAX bytes (more: the connection is
 * closed); at most POLICYDNS_MAX_PER_WAKEUP datagrams per loop turn. */
#ifndef CORDON_SANDBOX_POLICYDNS_H
#define CORDON_SANDBOX_POLICYDNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICYDNS_PORT 53
#define POLICYDNS_TTL 5u
#define POLICYDNS_MAX_TCP 32
#define POLICYDNS_TCP_IDLE_MS 10000u
#define POLICYDNS_TCP_MSG_MAX 1024u
#define POLICYDNS_MAX_PER_WAKEUP 64
#define POLICYDNS_REPEAT_CAP 256          /* denial keys counted at once */
#define POLICYDNS_REPEAT_WINDOW_MS 10000u

struct loop;
struct addrmap;
struct policydns;

/* Names answered besides those the policy names: the proxy's own
 * intercepted names (inference.local when inference routes are set), so
 * clients that ignore HTTPS_PROXY reach them through capture too. */
struct policydns_extra {
    bool (*names)(void *ctx, const char *name);
    void *ctx;
};

struct policydns_opts {
    int child_netns_fd;        /* the sockets are opened inside it */
    const char *sandbox_name;  /* in the audit events */
    struct addrmap *map;       /* not owned */
    struct policydns_extra extra; /* names.fn NULL = none */
};

/* Opens the UDP and TCP sockets on 127.0.0.1:53 inside the namespace.
 * Returns 0 or -errno (err says why). */
int policydns_open(const struct policydns_opts *o, struct policydns **out, char *err,
                   size_t errcap) __attribute__((warn_unused_result));
/* Starts serving on the loop; init_pid (host pid of the sandbox's init)
 * scopes the process lookup to the sandbox. Returns 0 or -errno. */
int policydns_attach(struct policydns *d, struct loop *l, pid_t init_pid)
    __attribute__((warn_unused_result));
/* Closes every socket and frees. NULL is fine. */
void policydns_close(struct policydns *d);

/* The answer to one query message (pure apart from the policy and the map;
 * exposed for the unit tests and the fuzzer). Writes the response into out
 * and returns its length, 0 when the message gets no answer, or -errno.
 * *denied is set when the query was refused by policy (the caller emits
 * the dns_denied event); name/qtype receive what was asked. */
struct policy;
struct dnsmsg_query;
int policydns_answer(const struct policy *pol, const struct policydns_extra *extra,
                     struct addrmap *map, const uint8_t *msg,
                     size_t len, struct dnsmsg_query *q, const char **denied_reason,
                     uint8_t *out, size_t cap) __attribute__((warn_unused_result));

extern const char POLICYDNS_REASON_NOT_IN_POLICY[]; /* "name_not_in_policy" */
extern const char POLICYDNS_REASON_TYPE[];          /* "record_type_not_served" */
extern const char POLICYDNS_REASON_BAD_NAME[];      /* "name_not_nameable" */
extern const char POLICYDNS_REASON_MAP_FULL[];      /* "address_range_full" */

#endif
