#!/usr/bin/python3
"""A tiny authoritative UDP DNS server for tests (stdlib only).

    dns = DnsServer({"allowed.test": "10.231.5.2", "v6.test": ["::1"]}).start()
    dns.port                      # 127.0.0.1:<port>, give the proxy --resolver
    dns.queries                   # [(name, qtype_str)], in arrival order
    dns.queried("allowed.test")   # True if any query for that name arrived
    dns.set("new.test", "10.0.0.1"); dns.clear_log(); dns.stop()
    dns.set("cached.test", "10.0.0.1", ttl=300)   # answers carry TTL 300
    dns.count("cached.test")      # how many queries (any type) arrived for it

A and AAAA are answered from the table (names are case-insensitive, a single
trailing dot is ignored); a known name without records of the asked type gets
an empty NOERROR answer; an unknown name gets NXDOMAIN. Special values:
"SERVFAIL" answers SERVFAIL, "DROP" never answers. Answers carry TTL 0
unless set() gave the name a TTL: the proxy caches answers by TTL, and TTL 0
keeps every test that changes a name's answer mid-test deterministic (the
proxy asks again on every connect). NXDOMAIN/NODATA answers carry no SOA;
the proxy keeps them at most 5 s whatever the server says.
Runs in a thread of the test process, or as a script:
    dnsserver.py --bind 127.0.0.1 --port 0 name=addr[,addr] ...
which prints "PORT <n>" and serves until killed.
"""
import ipaddress
import socket
import struct
import sys
import threading

QTYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS", 255: "ANY"}


def _parse_name(msg, off):
    labels = []
    jumps = 0
    end = None
    while True:
        if off >= len(msg):
            raise ValueError("name runs past message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or jumps > 16:
                raise ValueError("bad pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            continue
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise ValueError("label runs past message")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if end is not None else off)


class DnsServer:
    def __init__(self, records=None, bind="127.0.0.1", port=0):
        self._lock = threading.Lock()
        self._records = {}
        self._ttls = {}
        for k, v in (records or {}).items():
            self.set(k, v)
        self.queries = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((bind, port))
        self._sock.settimeout(0.2)
        self.addr, self.port = self._sock.getsockname()
        self._stop = threading.Event()
        self._thread = None

    @property
    def resolver(self):
        """"ADDR:PORT", the form `cordon proxy --resolver` takes."""
        return "%s:%d" % (self.addr, self.port)

    def set(self, name, addrs, ttl=0):
        """Maps name to one address or a list (A/AAAA by family), or to
        "SERVFAIL"/"DROP". addrs None removes the name (→ NXDOMAIN).
        ttl: the TTL (seconds) its answers carry."""
        key = name.lower().rstrip(".")
        with self._lock:
            self._ttls[key] = int(ttl)
            if addrs is None:
                self._records.pop(key, None)
            elif addrs in ("SERVFAIL", "DROP"):
                self._records[key] = addrs
            else:
                if isinstance(addrs, str):
                    addrs = [addrs]
                self._records[key] = [ipaddress.ip_address(a) for a in addrs]

    def clear_log(self):
        with self._lock:
            self.queries = []

    def count(self, name):
        """Queries (any type) that arrived for name."""
        key = name.lower().rstrip(".")
        with self._lock:
            return sum(1 for q in self.queries if q[0] == key)

    def queried(self, name):
        key = name.lower().rstrip(".")
        with self._lock:
            return any(q[0] == key for q in self.queries)

    def start(self):
        self._thread = threading.Thread(target=self._serve, name="ctest-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                resp = self.answer(msg)
            except Exception:
                continue      # malformed query: no answer
            if resp is not None:
                try:
                    self._sock.sendto(resp, peer)
                except OSError:
                    pass

    def answer(self, msg):
        """Builds the response to one query message (None = stay silent)."""
        if len(msg) < 12:
            return None
        qid, flags, qd, _an, _ns, _ar = struct.unpack("!6H", msg[:12])
        if flags & 0x8000 or qd != 1:
            return None
        name, off = _parse_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        key = name.lower().rstrip(".")
        with self._lock:
            self.queries.append((key, QTYPES.get(qtype, str(qtype))))
            rec = self._records.get(key)
            ttl = self._ttls.get(key, 0)
        rd = flags & 0x0100
        answers = []
        if rec == "DROP":
            return None
        if rec == "SERVFAIL":
            rcode = 2
        elif rec is None:
            rcode = 3
        else:
            rcode = 0
            for a in rec:
                if qtype == 1 and a.version == 4 or qtype == 28 and a.version == 6:
                    rtype = 1 if a.version == 4 else 28
                    answers.append(b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(a.packed)) + a.packed)
        hdr = struct.pack("!6H", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, len(answers), 0, 0)
        return hdr + question + b"".join(answers)


def query(server, name, qtype="A", timeout=2.0):
    """Minimal client (for self-tests): returns (rcode, [address strings])."""
    import random
    qt = {v: k for k, v in QTYPES.items()}[qtype]
    qid = random.randrange(65536)
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", qt, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, server)
        resp = s.recv(4096)
    rid, flags, qd, an, _, _ = struct.unpack("!6H", resp[:12])
    assert rid == qid
    off = 12
    for _ in range(qd):
        _, off = _parse_name(resp, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = _parse_name(resp, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[off:off + 10])
        off += 10
        out.append(str(ipaddress.ip_address(resp[off:off + rdlen])))
        off += rdlen
    return flags & 0xF, out


def main(argv):
    import argparse
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("records", nargs="*", help="name=addr[,addr]")
    a = ap.parse_args(argv)
    recs = {}
    for r in a.records:
        k, v = r.split("=", 1)
        recs[k] = v if v in ("SERVFAIL", "DROP") else v.split(",")
    srv = DnsServer(recs, a.bind, a.port).start()
    print("PORT %d" % srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
