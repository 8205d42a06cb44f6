/* sandbox/nslisten: listening sockets opened inside the sandbox's network
 * namespace by the supervisor (the policy DNS, the in-sandbox proxy
 * address, the capture port). A socket keeps the namespace it was created
 * in, so the supervisor and the proxy serve it from the host side, and
 * everything the kernel keeps per namespace (connection tracking, the
 * original destination of a redirected connection) is the sandbox's. */
#ifndef CORDON_SANDBOX_NSLISTEN_H
#define CORDON_SANDBOX_NSLISTEN_H

#include <netinet/in.h>
#include <stdint.h>

/* Opens a non-blocking, close-on-exec socket of type (SOCK_STREAM: also
 * listening, backlog 4096; SOCK_DGRAM: bound) on addr:port inside the
 * namespace child_netns_fd. The calling thread enters the namespace and
 * comes back. Returns the fd or -errno. */
int nslisten_open(int child_netns_fd, int type, struct in_addr addr, uint16_t port)
    __attribute__((warn_unused_result));

#endif
