/* sandbox/nslisten: sockets bound inside the sandbox namespace (nslisten.h). */
#include "sandbox/nslisten.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

int nslisten_open(int child_netns_fd, int type, struct in_addr addr, uint16_t port)
{
    int host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_fd < 0)
        return -errno;
    int fd = -1, rc = netns_enter(child_netns_fd);
    if (rc < 0)
        goto out;
    fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto back;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = addr, .sin_port = htons(port)};
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        (type == SOCK_STREAM && listen(fd, 4096) < 0)) {
        rc = -errno;
        close(fd);
        fd = -1;
    }
back:
    if (netns_enter(host_fd) < 0) {
        log_error("run: cannot return to the original network namespace: %s", strerror(errno));
        abort();
    }
out:
    close(host_fd);
    return fd >= 0 ? fd : rc;
}
