/* server/server: `cordon server`, the OpenSandbox-compatible lifecycle API
 * with HTTP and WebSocket proxy routes into sandboxes (doc/server.md).
 *
 * Layers: http/server (the strict front door) -> server/routes (routing, auth,
 * JSON shapes) -> a sandbox driver (server/driver.h; server/local today)
 * and the proxy routes (server/hproxy, server/wsproxy), all on one loop. */
#ifndef CORDON_SERVER_SERVER_H
#define CORDON_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/local.h"
#include "server/sbxpolicy.h"

struct server_cfg {
    struct sockaddr_storage listen;
    socklen_t listen_len;
    const char *api_key;     /* NULL only with insecure */
    int insecure;
    const char *public_host; /* host[:port][/path] for use_server_proxy; NULL: request Host */
    struct local_cfg local;
    struct sbxpolicy_cfg policy; /* base_path, --policy-dir, --egress-ports/-allowed-ips */
    int64_t min_timeout_s, max_timeout_s;
    size_t max_body, max_conns, ws_max_msg;
    uint64_t ws_ping_ms, proxy_timeout_ms, idle_ms;
};

/* Runs until SIGINT/SIGTERM. Returns 0 or -errno (reason logged). */
int server_run(const struct server_cfg *cfg);

#endif
