"""Escape attempts against `cordon execd`'s files API: a process that can
write the directories execd works in plants symlinks for execd to follow.

- replace on a path that is a symlink (to a file the attacker cannot read):
  refused (400 INVALID_PATH), the target is neither read nor copied into
  the attacker's directory, the link stays a link;
- list/search while a subdirectory is swapped for a symlink to /etc between
  execd's readdir and its descent (the old fstatat-then-opendir race): the
  walk never lists what lies behind the link. The swap runs for a bounded
  number of walks; the assertion holds for every one of them whatever the
  interleaving, so the test cannot fail by timing (before the fix, an
  interleaving that followed the link made it fail)."""
import json
import os
import threading

import pytest

from execd_fixtures import execd  # noqa: F401
from test_execd_files import call, err


@pytest.mark.timeout(60)
def test_replace_never_follows_a_symlink(execd, tmp_path):  # noqa: F811
    ed = execd()
    secret = tmp_path / "secret"
    secret.mkdir()
    target = secret / "shadow"
    target.write_text("root:SECRETHASH:19000::::::\n")
    os.chmod(target, 0o600)
    work = tmp_path / "work"
    work.mkdir()
    link = work / "notes.txt"
    os.symlink(str(target), link)
    msg = err(ed, "POST", "/files/replace", 400, "INVALID_PATH",
              {str(link): {"old": "root", "new": "toor"}})
    assert "symbolic link" in msg, msg
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_text() == "root:SECRETHASH:19000::::::\n"
    # nothing of the target's content landed in the attacker's directory
    for name in os.listdir(work):
        p = work / name
        if not os.path.islink(p):
            assert b"SECRETHASH" not in p.read_bytes(), name
    # a symlinked file inside a real directory through a parent path is the
    # same: only the final component is the link
    os.symlink(str(target), work / "x")
    err(ed, "POST", "/files/replace", 400, "INVALID_PATH", {str(work / "x"): {"old": "r"}})
    # an ordinary file still works, and leaves no temporary file behind
    (work / "real.txt").write_text("a b a\n")
    st, _, data = call(ed, "POST", "/files/replace", {str(work / "real.txt"): {"old": "a",
                                                                              "new": "c"}},
                       verbose="true")
    assert st == 200 and json.loads(data) == {str(work / "real.txt"): {"replacedCount": 2}}
    assert (work / "real.txt").read_text() == "c b c\n"
    assert sorted(os.listdir(work)) == ["notes.txt", "real.txt", "x"]


@pytest.mark.timeout(120)
def test_walk_never_descends_through_a_swapped_in_symlink(execd, tmp_path):  # noqa: F811
    ed = execd()
    d = tmp_path / "d"
    sub = d / "sub"
    sub.mkdir(parents=True)
    (sub / "mine.txt").write_text("x")
    stop = threading.Event()
    swaps = [0]

    def swapper():
        # sub flips between a real directory and a symlink to /etc
        real, link = str(d / "sub.real"), str(d / "sub.link")
        os.symlink("/etc", link)
        while not stop.is_set():
            os.rename(str(sub), real)
            os.rename(link, str(sub))           # sub -> /etc
            os.rename(str(sub), link)
            os.rename(real, str(sub))           # sub is a directory again
            swaps[0] += 1

    t = threading.Thread(target=swapper)
    t.start()
    try:
        for i in range(300):
            for route, q in (("/directories/list", {"depth": 3}), ("/files/search", {})):
                st, _, data = call(ed, "GET", route, path=str(d), **q)
                assert st == 200, (route, st, data)
                paths = [e["path"] for e in json.loads(data)]
                leaked = [p for p in paths if p.startswith(str(sub) + "/")
                          and not p.endswith("/mine.txt")]
                assert not leaked, (route, leaked[:5])
    finally:
        stop.set()
        t.join()
    assert swaps[0] > 0
