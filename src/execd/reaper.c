/* execd/reaper: signalfd(SIGCHLD) + waitpid(-1) in the loop. */
#include "execd/reaper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/banned.h"

struct reaper {
    struct loop *loop;
    struct loop_io io;
    struct reaper_watch *watches;
};

static void reap_all(struct reaper *r)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        struct reaper_watch *w = r->watches;
        while (w && w->pid != pid)
            w = w->next;
        if (!w) {
            log_debug("execd: reaped unwatched child %d (status 0x%x)", (int)pid, status);
            continue;
        }
        reaper_unwatch(r, w);
        w->cb(w, status);
    }
}

static void reaper_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct reaper *r = io->data;
    struct signalfd_siginfo si[16];
    (void)l;
    (void)events;
    while (read(io->fd, si, sizeof(si)) > 0) {
    }
    reap_all(r);
}

int reaper_new(struct loop *l, struct reaper **out)
{
    sigset_t set;
    int r;
    struct reaper *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return -ENOMEM;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        free(rp);
        return r;
    }
    rp->loop = l;
    rp->io.cb = reaper_io;
    rp->io.data = rp;
    r = loop_io_add(l, &rp->io, fd, EPOLLIN);
    if (r < 0) {
        close(fd);
        free(rp);
        return r;
    }
    *out = rp;
    reap_all(rp); /* children that exited before we listened */
    return 0;
}

void reaper_free(struct reaper *r)
{
    if (!r)
        return;
    loop_io_del(r->loop, &r->io);
    close(r->io.fd);
    free(r);
}

void reaper_watch(struct reaper *r, struct reaper_watch *w, pid_t pid, reaper_cb cb, void *data)
{
    w->pid = pid;
    w->cb = cb;
    w->data = data;
    w->prev = NULL;
    w->next = r->watches;
    if (r->watches)
        r->watches->prev = w;
    r->watches = w;
    w->active = 1;
}

void reaper_unwatch(struct reaper *r, struct reaper_watch *w)
{
    if (!w->active)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        r->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->active = 0;
    w->next = w->prev = NULL;
}
