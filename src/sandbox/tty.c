/* sandbox/tty: an interactive terminal for the command.
 *
 * The command runs in a fresh session (so it can never push keystrokes into
 * the terminal of the shell that started cordon: TIOCSTI), with a pty of
 * its own as controlling terminal. Our terminal is put in raw mode and the
 * bytes are relayed both ways, so line editing, job control and Ctrl-C all
 * happen inside the sandbox, and `cordon run -- bash` behaves like bash.
 *
 * Buffers: one fixed 4 KiB buffer towards the pty; when the command does
 * not read, we stop reading our stdin (backpressure). Output towards our
 * terminal is written as it comes. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define TTY_BUF 4096

struct tty_relay {
    int master;
    struct termios saved;
    bool raw;
    struct loop *loop;
    struct loop_io in_io, master_io;
    bool in_on, in_eof, master_gone;
    char to_master[TTY_BUF];
    size_t tm_len;
};

static void write_out(const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* our terminal is gone: drop the output */
        p += n;
        len -= (size_t)n;
    }
}

static void update_events(struct tty_relay *t)
{
    if (!t->loop)
        return;
    bool want_in = !t->in_eof && !t->master_gone && t->tm_len < TTY_BUF;
    if (want_in != t->in_on) {
        if (loop_io_mod(t->loop, &t->in_io, want_in ? EPOLLIN : 0) == 0)
            t->in_on = want_in;
    }
    if (!t->master_gone)
        (void)loop_io_mod(t->loop, &t->master_io, EPOLLIN | (t->tm_len ? EPOLLOUT : 0));
}

static void flush_to_master(struct tty_relay *t)
{
    while (t->tm_len) {
        ssize_t n = write(t->master, t->to_master, t->tm_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                t->tm_len = 0; /* the pty is gone */
            break;
        }
        memmove(t->to_master, t->to_master + n, t->tm_len - (size_t)n);
        t->tm_len -= (size_t)n;
    }
}

/* Reads what the command printed; returns false at EOF/EIO. */
static bool pump_master(struct tty_relay *t)
{
    char buf[TTY_BUF];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(t->master, buf, sizeof(buf));
        if (n > 0) {
            write_out(buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        return false; /* EIO: every slave fd is closed */
    }
    return true;
}

static void master_cb(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct tty_relay *t = io->data;
    if (events & EPOLLOUT)
        flush_to_master(t);
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!pump_master(t)) {
            loop_io_del(l, &t->master_io);
            t->master_gone = true;
        }
    }
    update_events(t);
}

static void in_cb(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct tty_relay *t = io->data;
    if (t->tm_len < TTY_BUF) {
        ssize_t n = read(STDIN_FILENO, t->to_master + t->tm_len, TTY_BUF - t->tm_len);
        if (n > 0)
            t->tm_len += (size_t)n;
        else if (n == 0 || (errno != EINTR && errno != EAGAIN))
            t->in_eof = true;
    }
    flush_to_master(t);
    if (t->in_eof && t->in_on) {
        loop_io_del(l, &t->in_io);
        t->in_on = false;
    }
    update_events(t);
}

int tty_open(struct tty_relay **out, int *slave)
{
    struct tty_relay *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->master = -1;
    *slave = -1;
    struct winsize ws;
    struct winsize *wsp = ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ? &ws : NULL;
    int rc;
    if (tcgetattr(STDIN_FILENO, &t->saved) < 0) {
        rc = -errno;
        goto out;
    }
    if (openpty(&t->master, slave, NULL, &t->saved, wsp) < 0) {
        rc = -errno;
        goto out;
    }
    if (fcntl(t->master, F_SETFD, FD_CLOEXEC) < 0 || fcntl(*slave, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(t->master, F_SETFL, fcntl(t->master, F_GETFL) | O_NONBLOCK) < 0) {
        rc = -errno;
        goto out;
    }
    struct termios raw = t->saved;
    cfmakeraw(&raw);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
        rc = -errno;
        goto out;
    }
    t->raw = true;
    *out = t;
    return 0;
out:
    if (*slave >= 0)
        close(*slave);
    *slave = -1;
    if (t->master >= 0)
        close(t->master);
    free(t);
    return rc;
}

int tty_master_fd(const struct tty_relay *t) { return t->master; }

int tty_attach(struct tty_relay *t, struct loop *l)
{
    t->loop = l;
    t->in_io.cb = in_cb;
    t->in_io.data = t;
    t->master_io.cb = master_cb;
    t->master_io.data = t;
    int rc = loop_io_add(l, &t->master_io, t->master, EPOLLIN);
    if (rc < 0)
        return rc;
    rc = loop_io_add(l, &t->in_io, STDIN_FILENO, EPOLLIN);
    if (rc < 0) {
        loop_io_del(l, &t->master_io);
        return rc;
    }
    t->in_on = true;
    return 0;
}

void tty_resize(struct tty_relay *t)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        (void)ioctl(t->master, TIOCSWINSZ, &ws);
}

void tty_close(struct tty_relay *t)
{
    if (!t)
        return;
    if (t->loop) {
        if (t->in_on)
            loop_io_del(t->loop, &t->in_io);
        if (!t->master_gone)
            loop_io_del(t->loop, &t->master_io);
    }
    if (!t->master_gone)
        pump_master(t); /* what the command printed last */
    if (t->raw && tcsetattr(STDIN_FILENO, TCSADRAIN, &t->saved) < 0)
        log_warn("tty: cannot restore the terminal settings: %s (run `reset`)", strerror(errno));
    if (t->master >= 0)
        close(t->master);
    free(t);
}
