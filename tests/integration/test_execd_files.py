"""cordon execd: the files and directories API (OpenSandbox's shapes), driven
by curl, /usr/bin/python3 urllib / http.client and OpenSandbox's official
JavaScript SDK (its filesystem adapter, directly against execd and through
`cordon server`'s proxy route)."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from execd_fixtures import execd  # noqa: F401
from lib import util
from server_fixtures import KEY, cordon_server  # noqa: F401

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
INFO_KEYS = {"path", "type", "size", "modified_at", "created_at", "owner", "group", "mode"}


def url(ed, route, **query):
    q = urllib.parse.urlencode(query, doseq=True)
    return "http://127.0.0.1:%d%s%s" % (ed.port, route, "?" + q if q else "")


def call(ed, method, route, body=None, headers=None, **query):
    """urllib request; returns (status, headers, body bytes) for 2xx and errors alike."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url(ed, route, **query), data=data, method=method,
                                 headers=ed.headers(headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def err(ed, method, route, status, code, body=None, **query):
    st, _, data = call(ed, method, route, body, **query)
    assert st == status, (method, route, query, st, data)
    e = json.loads(data)
    assert e["code"] == code and e["message"], e
    return e["message"]


def multipart(parts, boundary="cordon-test-boundary"):
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--%s\r\n" % boundary.encode()
        out += b'Content-Disposition: form-data; name="%s"' % name.encode()
        if filename:
            out += b'; filename="%s"' % filename.encode()
        out += b"\r\n"
        if ctype:
            out += b"Content-Type: %s\r\n" % ctype.encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"--%s--\r\n" % boundary.encode()
    return out, "multipart/form-data; boundary=" + boundary


def meta(path, **kw):
    return ("metadata", "metadata", "application/json", json.dumps(dict(path=path, **kw)).encode())


def test_upload_download_with_curl(execd, tmp_path):  # noqa: F811
    ed = execd()
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    m = tmp_path / "meta.json"
    dest = tmp_path / "deep" / "er" / "dest.bin"
    m.write_text(json.dumps({"path": str(dest), "mode": 640}))
    p = subprocess.run(["curl", "-sS", "-w", "%{http_code}", "-F",
                        "metadata=@%s;type=application/json" % m, "-F", "file=@%s" % src,
                        url(ed, "/files/upload")], capture_output=True, text=True, timeout=60)
    assert p.stdout.endswith("200"), p
    assert dest.read_bytes() == src.read_bytes()
    assert oct(dest.stat().st_mode & 0o7777) == "0o640"
    # download whole, then a range, then a suffix range
    out = tmp_path / "dl.bin"
    p = subprocess.run(["curl", "-sS", "-D", "-", "-o", str(out), url(ed, "/files/download",
                        path=str(dest))], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and out.read_bytes() == src.read_bytes()
    head = p.stdout.lower()
    assert "content-length: %d" % src.stat().st_size in head
    assert 'content-disposition: attachment; filename="dest.bin"' in head
    assert "accept-ranges: bytes" in head
    p = subprocess.run(["curl", "-sS", "-D", "-", "-o", str(out), "-r", "100-199",
                        url(ed, "/files/download", path=str(dest))],
                       capture_output=True, text=True, timeout=30)
    assert " 206 " in p.stdout.splitlines()[0]
    assert "content-range: bytes 100-199/%d" % src.stat().st_size in p.stdout.lower()
    assert out.read_bytes() == src.read_bytes()[100:200]
    # curl resumes a download from where the partial file ends
    part = tmp_path / "resume.bin"
    part.write_bytes(src.read_bytes()[:1000])
    p = subprocess.run(["curl", "-sS", "-C", "-", "-o", str(part),
                        url(ed, "/files/download", path=str(dest))], capture_output=True,
                       timeout=30)
    assert p.returncode == 0 and part.read_bytes() == src.read_bytes()


def test_range_answers(execd, tmp_path):  # noqa: F811
    ed = execd()
    f = tmp_path / "r.txt"
    f.write_bytes(b"0123456789")
    for rng, status, body, crange in [("bytes=2-4", 206, b"234", "bytes 2-4/10"),
                                      ("bytes=7-", 206, b"789", "bytes 7-9/10"),
                                      ("bytes=-3", 206, b"789", "bytes 7-9/10"),
                                      ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
                                      ("bytes=20-30, 1-1", 206, b"1", "bytes 1-1/10")]:
        st, h, data = call(ed, "GET", "/files/download", headers={"Range": rng}, path=str(f))
        assert (st, data, h["Content-Range"]) == (status, body, crange), rng
    for rng in ["bytes=10-", "bytes=4-2", "items=1-2", "bytes=x-1", "bytes=-"]:
        st, h, data = call(ed, "GET", "/files/download", headers={"Range": rng}, path=str(f))
        assert st == 416, (rng, st)
        assert h["Content-Range"] == "bytes */10"
        assert json.loads(data)["code"] == "RANGE_NOT_SATISFIABLE"
    # HEAD: the head only, with the length
    conn = http.client.HTTPConnection("127.0.0.1", ed.port, timeout=10)
    conn.request("HEAD", "/files/download?path=" + urllib.parse.quote(str(f)))
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "10" and r.read() == b""
    # keep-alive after HEAD and after a file body
    conn.request("GET", "/files/download?path=" + urllib.parse.quote(str(f)))
    r = conn.getresponse()
    assert r.read() == b"0123456789"
    conn.request("GET", "/ping")
    assert conn.getresponse().status == 200
    conn.close()


def test_upload_pairs_in_any_order_and_errors(execd, tmp_path):  # noqa: F811
    ed = execd()
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    # file before its metadata (spooled, then moved in), then the usual order
    body, ctype = multipart([("file", "a.txt", "text/plain", b"AAA"), meta(str(a), mode=600),
                             meta(str(b)), ("file", "b.txt", None, b"B" * 100000),
                             ("other", None, None, b"ignored")])
    st, _, data = call(ed, "POST", "/files/upload", body, {"Content-Type": ctype})
    assert st == 200, data
    assert a.read_bytes() == b"AAA" and oct(a.stat().st_mode & 0o777) == "0o600"
    assert b.read_bytes() == b"B" * 100000
    # an upload replaces a file whole and keeps its mode
    b.chmod(0o604)
    body, ctype = multipart([meta(str(b)), ("file", "b", None, b"new")])
    assert call(ed, "POST", "/files/upload", body, {"Content-Type": ctype})[0] == 200
    assert b.read_bytes() == b"new" and oct(b.stat().st_mode & 0o777) == "0o604"
    cases = [
        ([meta(str(a))], "INVALID_FILE_CONTENT"),                      # no file
        ([("file", "x", None, b"x")], "INVALID_FILE_METADATA"),         # no metadata
        ([meta(str(a)), meta(str(b)), ("file", "x", None, b"x")], "INVALID_FILE"),  # mismatch
        ([("metadata", "m", None, b"{not json"), ("file", "x", None, b"x")],
         "INVALID_FILE_METADATA"),
        ([("metadata", "m", None, b'{"path": ""}'), ("file", "x", None, b"x")],
         "INVALID_FILE_METADATA"),
        ([("metadata", "m", None, b'{"path": "/tmp/x", "mode": 999}'), ("file", "x", None, b"")],
         "INVALID_FILE_METADATA"),
        ([("metadata", "m", None, b'{"path": "/tmp/x", "owner": "no-such-user-xyz"}'),
          ("file", "x", None, b"")], "INVALID_FILE_METADATA"),
    ]
    for parts, code in cases:
        body, ctype = multipart(parts)
        st, _, data = call(ed, "POST", "/files/upload", body, {"Content-Type": ctype})
        assert (st, json.loads(data)["code"]) == (400, code), (parts, data)
    # malformed multipart bodies and content types: 400 INVALID_FILE, the worker keeps serving
    body, ctype = multipart([meta(str(a)), ("file", "x", None, b"x")])
    for raw, ct in [(body[:-10], ctype), (body, "multipart/form-data"),
                    (body, "application/json"), (body.replace(b"\r\n", b"\n"), ctype),
                    (b"no delimiter here", ctype)]:
        st, _, data = call(ed, "POST", "/files/upload", raw, {"Content-Type": ct})
        assert st == 400 and json.loads(data)["code"] == "INVALID_FILE", (ct, data)
    assert a.read_bytes() == b"AAA"  # untouched by every failed upload
    # an upload into a directory that is a file
    body, ctype = multipart([meta(str(a) + "/under-a-file"), ("file", "x", None, b"x")])
    st, _, data = call(ed, "POST", "/files/upload", body, {"Content-Type": ctype})
    assert st == 400 and json.loads(data)["code"] == "INVALID_PATH", data
    # nothing but the files written is left behind (no temporary files)
    left = sorted(p.name for p in tmp_path.rglob("*") if "cordon-upload" in p.name)
    assert left == []


def test_upload_broken_off_leaves_the_old_file(execd, tmp_path):  # noqa: F811
    ed = execd()
    f = tmp_path / "keep.txt"
    f.write_bytes(b"old content")
    body, ctype = multipart([meta(str(f)), ("file", "k", None, b"N" * 200000)])
    s = socket.create_connection(("127.0.0.1", ed.port), timeout=10)
    s.sendall(b"POST /files/upload HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
              b"Content-Length: %d\r\n\r\n" % (ctype.encode(), len(body)) + body[:150000])
    # execd has written part of it into a temporary file beside keep.txt
    def tmp_present():
        return any("cordon-upload" in p.name for p in tmp_path.iterdir())
    util.wait_until(tmp_present, 10, what="the upload's temporary file")
    s.close()
    util.wait_until(lambda: not tmp_present(), 10, what="the temporary file removed")
    assert f.read_bytes() == b"old content"
    assert ed.request("GET", "/ping")[0] == 200


def test_big_transfers_bounded_memory(execd, tmp_path):  # noqa: F811
    """128 MiB up and down (chunked upload from http.client, sendfile down):
    execd's peak RSS stays far below the file size."""
    ed = execd()
    dest = tmp_path / "huge.bin"
    size, chunk = 128 << 20, 1 << 20
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    boundary = "b0undary"
    head = (b"--%s\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n%s\r\n"
            b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"h\"\r\n\r\n"
            % (boundary.encode(), json.dumps({"path": str(dest)}).encode(), boundary.encode()))
    tail = b"\r\n--%s--\r\n" % boundary.encode()

    def gen():
        yield head
        for _ in range(size // chunk):
            yield block
        yield tail
    conn = http.client.HTTPConnection("127.0.0.1", ed.port, timeout=120)
    conn.request("POST", "/files/upload", body=gen(), encode_chunked=True,
                 headers={"Content-Type": "multipart/form-data; boundary=" + boundary,
                          "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    r.read()
    assert dest.stat().st_size == size
    conn.request("GET", "/files/download?path=" + urllib.parse.quote(str(dest)))
    r = conn.getresponse()
    h = hashlib.sha256()
    n = 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    want = hashlib.sha256()
    for _ in range(size // chunk):
        want.update(block)
    assert n == size and h.hexdigest() == want.hexdigest()
    conn.close()
    with open("/proc/%d/status" % ed.proc.pid) as f:
        hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
    assert hwm < 48 * 1024, "execd's peak RSS was %d KiB for a 128 MiB transfer" % hwm


def test_info_list_search_and_changes(execd, tmp_path):  # noqa: F811
    ed = execd()
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "one.py").write_text("x = 1\n")
    (tmp_path / "d" / "e" / "two.py").write_text("y = 2\n")
    (tmp_path / "d" / "e" / "three.txt").write_text("z\n")
    os.symlink("/etc", tmp_path / "d" / "etc-link")
    d = str(tmp_path / "d")
    st, _, data = call(ed, "GET", "/files/info", path=[d + "/one.py", d + "/etc-link", d])
    info = json.loads(data)
    assert st == 200 and set(info) == {d + "/one.py", d + "/etc-link", d}
    assert set(info[d + "/one.py"]) == INFO_KEYS
    assert info[d + "/one.py"]["size"] == 6 and info[d + "/one.py"]["type"] == "file"
    assert info[d + "/etc-link"]["type"] == "symlink"
    assert info[d]["type"] == "directory"
    assert info[d + "/one.py"]["mode"] == int(oct((tmp_path / "d" / "one.py").stat().st_mode
                                                  & 0o777)[2:])
    # relative paths and ~ resolve against execd's cwd and $HOME
    st, _, data = call(ed, "GET", "/files/info", path=["~"])
    assert json.loads(data)["~"]["path"] == os.path.realpath(os.environ.get("HOME", "/"))
    listing = json.loads(call(ed, "GET", "/directories/list", path=d)[2])
    assert sorted(e["path"][len(d):] for e in listing) == ["/e", "/etc-link", "/one.py"]
    listing = json.loads(call(ed, "GET", "/directories/list", path=d, depth=2)[2])
    assert len(listing) == 5
    assert json.loads(call(ed, "GET", "/directories/list", path=d, depth=0)[2]) == []
    found = json.loads(call(ed, "GET", "/files/search", path=d, pattern="*.py")[2])
    assert sorted(e["path"][len(d):] for e in found) == ["/e/two.py", "/one.py"]
    found = json.loads(call(ed, "GET", "/files/search", path=d)[2])  # default **: all files
    assert sorted(e["path"][len(d):] for e in found) == ["/e/three.txt", "/e/two.py",
                                                         "/etc-link", "/one.py"]
    # the walk never follows the link into /etc
    assert not any(e["path"].startswith(d + "/etc-link/") for e in found)
    # replace, move, permissions, directories
    st, _, data = call(ed, "POST", "/files/replace", {d + "/one.py": {"old": "1", "new": "42"}},
                       verbose="true")
    assert json.loads(data) == {d + "/one.py": {"replacedCount": 1}}
    assert (tmp_path / "d" / "one.py").read_text() == "x = 42\n"
    st, _, data = call(ed, "POST", "/files/replace", {d + "/one.py": {"old": "42", "new": ""}})
    assert st == 200 and data == b"" and (tmp_path / "d" / "one.py").read_text() == "x = \n"
    assert call(ed, "POST", "/files/mv", [{"src": d + "/one.py", "dest": d + "/n/m/o.py"}])[0] \
        == 200
    assert (tmp_path / "d" / "n" / "m" / "o.py").exists()
    assert call(ed, "POST", "/files/permissions", {d + "/n/m/o.py": {"mode": 711}})[0] == 200
    assert oct((tmp_path / "d" / "n" / "m" / "o.py").stat().st_mode & 0o777) == "0o711"
    assert call(ed, "POST", "/directories", {d + "/x/y": {"mode": 700}, d + "/z": {}})[0] == 200
    assert oct((tmp_path / "d" / "x" / "y").stat().st_mode & 0o777) == "0o700"
    assert (tmp_path / "d" / "z").is_dir()
    assert call(ed, "DELETE", "/directories", path=[d + "/x", d + "/never-was"])[0] == 200
    assert not (tmp_path / "d" / "x").exists()
    assert call(ed, "DELETE", "/files", path=[d + "/n/m/o.py", d + "/never-was"])[0] == 200
    assert not (tmp_path / "d" / "n" / "m" / "o.py").exists()


def test_path_and_request_errors(execd, tmp_path):  # noqa: F811
    ed = execd()
    (tmp_path / "f").write_text("f")
    (tmp_path / "g").write_text("g")
    os.mkfifo(tmp_path / "fifo")
    f, g = str(tmp_path / "f"), str(tmp_path / "g")
    assert "NUL" in err(ed, "GET", "/files/info", 400, "INVALID_PATH", path="/tmp/a\x00b")
    assert "empty" in err(ed, "GET", "/files/info", 400, "INVALID_PATH", path="")
    err(ed, "GET", "/files/info", 400, "INVALID_QUERY", path="x" * 5000)
    assert str(tmp_path / "nope") in err(ed, "GET", "/files/info", 404, "FILE_NOT_FOUND",
                                         path=str(tmp_path / "nope"))
    err(ed, "GET", "/files/download", 400, "MISSING_QUERY")
    err(ed, "GET", "/files/download", 404, "FILE_NOT_FOUND", path=str(tmp_path / "nope"))
    err(ed, "GET", "/files/download", 400, "IS_A_DIRECTORY", path=str(tmp_path))
    err(ed, "GET", "/files/download", 400, "NOT_A_FILE", path=str(tmp_path / "fifo"))  # no hang
    err(ed, "GET", "/directories/list", 400, "MISSING_QUERY")
    err(ed, "GET", "/directories/list", 400, "NOT_A_DIRECTORY", path=f)
    err(ed, "GET", "/directories/list", 400, "INVALID_QUERY", path=str(tmp_path), depth="x")
    err(ed, "GET", "/files/search", 404, "FILE_NOT_FOUND", path=str(tmp_path / "nope"))
    err(ed, "DELETE", "/files", 400, "IS_A_DIRECTORY", path=str(tmp_path))
    err(ed, "DELETE", "/directories", 400, "INVALID_PATH", path="/")
    err(ed, "DELETE", "/directories", 400, "INVALID_PATH", path="/tmp/../")
    err(ed, "POST", "/files/mv", 409, "ALREADY_EXISTS", [{"src": f, "dest": g}])
    err(ed, "POST", "/files/mv", 404, "FILE_NOT_FOUND", [{"src": f + "x", "dest": g + "y"}])
    err(ed, "POST", "/files/mv", 400, "INVALID_REQUEST_BODY", {"src": f})
    err(ed, "POST", "/files/mv", 400, "INVALID_REQUEST_BODY", b"[{")
    err(ed, "POST", "/files/permissions", 400, "INVALID_REQUEST_BODY", {f: {"mode": 8}})
    err(ed, "POST", "/files/permissions", 400, "INVALID_REQUEST_BODY", {f: {"owner": 3}})
    err(ed, "POST", "/files/permissions", 404, "FILE_NOT_FOUND", {f + "x": {"mode": 644}})
    err(ed, "POST", "/files/replace", 400, "INVALID_REQUEST_BODY", {f: {"old": "", "new": "x"}})
    err(ed, "POST", "/files/replace", 400, "NOT_A_FILE", {str(tmp_path): {"old": "a"}})
    err(ed, "POST", "/directories", 400, "INVALID_PATH", {f + "/sub": {}})
    err(ed, "GET", "/files/upload", 405, "METHOD_NOT_ALLOWED")
    err(ed, "PUT", "/directories", 405, "METHOD_NOT_ALLOWED")
    err(ed, "GET", "/files/nothing", 404, "NOT_FOUND")
    # the files are untouched by all of it
    assert (tmp_path / "f").read_text() == "f" and (tmp_path / "g").read_text() == "g"


def test_token_guards_the_files_api(execd, tmp_path):  # noqa: F811
    ed = execd(token="s3cret")
    target = tmp_path / "t.txt"
    body, ctype = multipart([meta(str(target)), ("file", "t", None, b"data")])
    st, _, data = ed.request("POST", "/files/upload", body, {"Content-Type": ctype}, auth=False)
    assert st == 401 and json.loads(data)["code"] == "UNAUTHORIZED"
    assert not target.exists()
    st, _, _ = ed.request("GET", "/files/download?path=/etc/hostname", auth=False)
    assert st == 401
    st, _, _ = ed.request("POST", "/files/upload", body, {"Content-Type": ctype})
    assert st == 200 and target.read_bytes() == b"data"


def sdk_files(base_url, d, *headers):
    assert os.path.isdir(os.path.join(JS, "node_modules", "@alibaba-group", "opensandbox")), \
        "the OpenSandbox JS SDK is not installed: run scripts/setup"
    p = subprocess.run(["node", "sdk_files.mjs", base_url, d] + list(headers), cwd=JS,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, "node failed:\n%s\n%s" % (p.stdout, p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_sdk(out, d):
    assert out["text"] == "hello from the sdk\nsecond line\n"
    assert out["bytes"] == [0, 1, 2, 255, 254, 13, 10]
    assert out["range"] == " from the "
    assert out["bigGot"] == out["bigSent"] and out["bigLen"] == 24 << 20
    hello = out["info"][d + "/a/b/hello.txt"]
    assert hello["type"] == "file" and hello["size"] == 31 and hello["mode"] == 640
    assert hello["modified"] and hello["created"]
    assert out["info"][d + "/big/big.bin"]["mode"] == 600
    assert out["dirMode"] == 750
    assert out["list"] == sorted([[d + p, t] for p, t in [
        ("/a", "directory"), ("/a/b", "directory"), ("/a/b/hello.txt", "file"),
        ("/big", "directory"), ("/big/big.bin", "file"), ("/bytes.bin", "file")]])
    assert out["search"] == [d + "/a/b/hello.txt"]
    assert out["chmod"] == 604
    assert out["moved"] == [0, 1, 2, 255, 254, 13, 10]
    assert out["replaced"] == [{"path": d + "/a/b/hello.txt", "replacedCount": 1}]
    assert out["afterReplace"] == "hello from the sdk\nsecond LINE!\n"
    assert out["afterDelete"] == [d + "/big", d + "/moved"]
    assert out["missing"] == 404 and out["missingInfo"] == 404


@pytest.mark.timeout(180)
def test_official_js_sdk_files_direct(execd, tmp_path):  # noqa: F811
    ed = execd()
    d = str(tmp_path / "sdk")
    os.mkdir(d)
    check_sdk(sdk_files("http://127.0.0.1:%d" % ed.port, d), d)


@pytest.mark.timeout(240)
def test_official_js_sdk_files_through_the_server(cordon_server):  # noqa: F811
    srv = cordon_server()
    sid = srv.create()["id"]
    base = "/sandboxes/%s/proxy/44772" % sid
    # the sandbox's own working directory (what its filesystem policy lets it write)
    st, _, raw = srv.request("POST", base + "/command", {"command": "mkdir sdk && cd sdk && pwd"})
    assert st == 200, raw
    events = [json.loads(b[6:]) for b in raw.decode().split("\n\n") if b.strip()]
    d = [e["text"] for e in events if e["type"] == "stdout"][0]
    out = sdk_files("http://127.0.0.1:%d%s" % (srv.port, base), d, "OPEN-SANDBOX-API-KEY=" + KEY)
    check_sdk(out, d)
    # without the key the server refuses before execd sees anything
    st, _, _ = srv.request("GET", base + "/files/info?path=" + d, auth=False)
    assert st == 401
