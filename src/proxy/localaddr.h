/* proxy/localaddr: the addresses of the host the proxy runs on.
 *
 * The proxy never dials its own host: not the supervisor's side of a
 * sandbox's veth, not a public address of the machine, not its own
 * listeners, whatever an endpoint's allowed_ips say (a service bound to
 * 0.0.0.0 on the host would otherwise be one CONNECT away from the
 * sandbox). The set is read with an RTM_GETADDR dump at start and kept
 * current by a thread that listens to the kernel's address notifications
 * (RTMGRP_IPV4_IFADDR / RTMGRP_IPV6_IFADDR); any notification, and a lost
 * one (ENOBUFS), triggers a fresh dump.
 *
 * Thread-safe: lookups take a read lock; the watcher swaps the table under
 * the write lock. */
#ifndef CORDON_PROXY_LOCALADDR_H
#define CORDON_PROXY_LOCALADDR_H

#include <stdbool.h>
#include <sys/socket.h>

struct localaddr;

/* Dumps the current addresses and starts the watcher thread. Returns 0 or
 * -errno (netlink unavailable: the proxy refuses to start rather than run
 * without the check). */
int localaddr_start(struct localaddr **out) __attribute__((warn_unused_result));
/* Stops the watcher and frees the set. NULL is ignored. */
void localaddr_stop(struct localaddr *la);
/* True when sa (AF_INET or AF_INET6; IPv4-mapped IPv6 judged as IPv4) is an
 * address of one of the host's interfaces. ifname (may be NULL, size at
 * least 16) receives the interface's name. */
bool localaddr_contains(struct localaddr *la, const struct sockaddr *sa, char *ifname);

/* For tests: the number of addresses in the set. */
size_t localaddr_count(struct localaddr *la);

#endif
