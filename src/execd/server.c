/* execd/server: start-up, the signal watch, and an orderly shutdown.
 *
 * Shutdown (SIGTERM/SIGINT): stop listening and close HTTP connections,
 * SIGKILL every shell and command, give clients EXECD_SHUTDOWN_MS to see
 * the exits, drop whoever is left, stop the loop, free everything. */
#include "execd/execd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/parse.h"
#include "execd/api.h"
#include "execd/attach.h"
#include "execd/bash_session.h"
#include "execd/command.h"
#include "execd/reaper.h"
#include "execd/session.h"
#include "http/server.h"
#include "core/banned.h"

#define EXECD_SHUTDOWN_MS 300

void execd_new_id(char *out, int dashed)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (errno != EINTR)
            abort(); /* no entropy at all: nothing safe to hand out */
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 9562 version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10))
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

uint64_t execd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct execd_main {
    struct execd ed;
    struct loop_io sig_io;
    struct loop_timer final;
};

static void on_final(struct loop *l, struct loop_timer *t)
{
    struct execd_main *m = t->data;
    attach_abort_all(&m->ed);
    loop_stop(l);
}

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct execd_main *m = io->data;
    struct signalfd_siginfo si;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (m->ed.stopping)
            continue;
        log_info("execd: %s received; shutting down", strsignal((int)si.ssi_signo));
        m->ed.stopping = 1;
        http_server_free(m->ed.http);
        m->ed.http = NULL;
        session_kill_all(&m->ed);
        command_kill_all(&m->ed);
        if (loop_timer_start(l, &m->final, EXECD_SHUTDOWN_MS) < 0)
            on_final(l, &m->final);
    }
}

static int start_signals(struct execd_main *m)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    m->sig_io.cb = on_signal;
    m->sig_io.data = m;
    int r = loop_io_add(m->ed.loop, &m->sig_io, fd, EPOLLIN);
    if (r < 0)
        close(fd);
    return r;
}

static void announce(struct execd *ed)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char ip[64];
    if (http_server_addr(ed->http, &ss, &len) < 0)
        return;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    sockaddr_ip_str(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6)
        printf("listening [%s]:%u\n", ip, sockaddr_port(sa));
    else
        printf("listening %s:%u\n", ip, sockaddr_port(sa));
    fflush(stdout);
    log_info("execd: listening on %s port %u (shell %s, ring %zu bytes, max %zu sessions)", ip,
             sockaddr_port(sa), ed->cfg.shell, ed->cfg.ring_size, ed->cfg.max_sessions);
}

int execd_run(const struct execd_cfg *cfg)
{
    int r;
    struct execd_main *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    struct execd *ed = &m->ed;
    ed->cfg = *cfg;
    size_t timers = 8 * (cfg->max_conns + cfg->max_sessions + cfg->max_commands) + 1024;
    ed->loop = loop_new(timers);
    if (!ed->loop) {
        r = -errno;
        goto out;
    }
    metrics_init(ed);
    m->final.cb = on_final;
    m->final.data = m;
    m->sig_io.fd = -1;
    struct http_server_cfg hc = {.max_head = 16384,
                                 .max_body = cfg->max_body,
                                 .max_conns = cfg->max_conns,
                                 .max_out = 256 * 1024,
                                 .idle_ms = cfg->idle_ms,
                                 .on_head = api_on_head};
    if ((r = reaper_new(ed->loop, &ed->reaper)) < 0 || (r = start_signals(m)) < 0)
        goto out;
    r = http_server_start(ed->loop, (const struct sockaddr *)&cfg->listen, cfg->listen_len, &hc,
                          api_on_request, ed, &ed->http);
    if (r < 0) {
        log_error("execd: cannot listen: %s", strerror(-r));
        goto out;
    }
    announce(ed);
    r = loop_run(ed->loop);
out:
    if (ed->http)
        http_server_free(ed->http);
    command_free_all(ed);
    session_free_all(ed);
    bash_session_free_all(ed);
    reaper_free(ed->reaper);
    if (m->sig_io.fd >= 0) {
        loop_io_del(ed->loop, &m->sig_io);
        close(m->sig_io.fd);
    }
    loop_free(ed->loop);
    free(m);
    return r;
}
