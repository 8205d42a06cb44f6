/* server/serve: start-up and shutdown of `cordon server` (one loop). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/parse.h"
#include "server/server_int.h"
#include "core/banned.h"

struct serve_main {
    struct srv s;
    struct loop_io sig_io;
};

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct signalfd_siginfo si;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        /* Sandboxes keep running: a restarted server adopts them. */
        log_info("server: %s received; stopping (sandboxes keep running)",
                 strsignal((int)si.ssi_signo));
        loop_stop(l);
    }
}

int server_run(const struct server_cfg *cfg)
{
    int r;
    char err[512] = "";
    struct serve_main *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    struct srv *s = &m->s;
    s->cfg = *cfg;
    m->sig_io.fd = -1;
    s->loop = loop_new(8 * cfg->max_conns + 65536);
    if (!s->loop) {
        r = -errno;
        goto out;
    }
    if ((r = local_driver_new(s->loop, &cfg->local, &s->drv, err, sizeof(err))) < 0) {
        log_error("server: %s", err);
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    m->sig_io.cb = on_signal;
    m->sig_io.data = m;
    if ((r = loop_io_add(s->loop, &m->sig_io, fd, EPOLLIN)) < 0) {
        close(fd);
        goto out;
    }
    struct http_server_cfg hc = {.max_head = HTTP_HEAD_MAX,
                                 .max_body = cfg->max_body,
                                 .max_conns = cfg->max_conns,
                                 .max_out = 256 * 1024,
                                 .idle_ms = cfg->idle_ms,
                                 .on_head = server_on_head};
    r = http_server_start(s->loop, (const struct sockaddr *)&cfg->listen, cfg->listen_len, &hc,
                          server_on_request, s, &s->http);
    if (r < 0) {
        log_error("server: cannot listen: %s", strerror(-r));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    char ip[64];
    if (http_server_addr(s->http, &ss, &len) == 0) {
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        sockaddr_ip_str(sa, ip, sizeof(ip));
        printf(sa->sa_family == AF_INET6 ? "listening [%s]:%u\n" : "listening %s:%u\n", ip,
               sockaddr_port(sa));
        fflush(stdout);
        log_info("server: listening on %s port %u%s", ip, sockaddr_port(sa),
                 cfg->api_key ? "" : " WITHOUT authentication (--insecure)");
    }
    r = loop_run(s->loop);
out:
    if (s->http)
        http_server_free(s->http);
    if (s->loop)
        loop_run_deferred(s->loop);
    if (s->drv)
        s->drv->ops->free(s->drv);
    if (m->sig_io.fd >= 0) {
        loop_io_del(s->loop, &m->sig_io);
        close(m->sig_io.fd);
    }
    if (s->loop) {
        loop_run_deferred(s->loop);
        loop_free(s->loop);
    }
    free(m);
    return r;
}
