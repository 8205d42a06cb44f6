"""Small bounded-time helpers shared by the integration suites."""
import os
import subprocess
import time

# Environment variables that would make a client bypass or double-proxy.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def clean_env(extra=None):
    """The current environment without any *_proxy variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    if extra:
        env.update(extra)
    return env


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout
    seconds pass (raises AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def run(argv, timeout=10, check=True, **kw):
    """subprocess.run with a timeout, captured text output, and a clean error."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(argv, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d\nstdout: %s\nstderr: %s"
                           % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def kill_tree(proc, timeout=3.0):
    """Stops a Popen started with start_new_session=True: SIGTERM to its process
    group, then SIGKILL after timeout. Never raises for already-dead processes."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    for sig, wait in ((15, timeout), (9, timeout)):
        if proc.poll() is not None and pgid is None:
            break
        try:
            if pgid is not None and pgid == proc.pid:
                os.killpg(pgid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            # the group may still hold children; SIGKILL them too
            if pgid is not None and pgid == proc.pid:
                try:
                    os.killpg(pgid, 9)
                except ProcessLookupError:
                    pass
            break
        except subprocess.TimeoutExpired:
            continue
