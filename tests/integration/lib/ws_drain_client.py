#!/usr/bin/python3
"""A raw WebSocket client of an execd session that records exactly what the
server sent, in order, and can stall (read nothing at the socket level).

    ws_drain_client.py HOST PORT PATH [--stall-after FRAMES:FILE]
                       [--rcvbuf BYTES] [--timeout SECONDS] [--token T]
                       [--send-big BYTES]

Prints one JSON object: "events" (in arrival order: ["data", channel,
replay offset or null, length], ["json", frame], ["close", code]),
"stdout"/"stderr" (the payload bytes as latin-1 strings), "close" (the
code), "eof" (the server closed the socket after the close exchange) and
"error" (what went wrong, or null). The caller checks every byte against
what the command printed, and the order: data, `exit`, close.

--stall-after N:FILE stops reading after the N-th frame until FILE exists
(the test creates it when the condition it waits for holds; the kernel
receive buffer fills meanwhile, and with --rcvbuf it is small). --send-big sends
one binary message of that many bytes (to trigger the 1009 path) right
after connecting, or after the stall if there is one.
"""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import time


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def masked(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
         ).to_bytes(n, "big")
    return head + key + body


def read_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    if b1 & 0x80:
        raise ValueError("the server masked a frame")
    return b0 & 0x80, b0 & 0x0F, recv_exact(sock, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--stall-after", default=None)
    ap.add_argument("--rcvbuf", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--token", default=None)
    ap.add_argument("--send-big", type=int, default=0)
    a = ap.parse_args()
    res = {"events": [], "stdout": "", "stderr": "", "close": None, "close_reason": None,
           "eof": False, "error": None}
    out, err = [], []
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    sock.settimeout(a.timeout)
    stall_n, stall_file = None, None
    if a.stall_after:
        n, stall_file = a.stall_after.split(":", 1)
        stall_n = int(n)
    try:
        sock.connect((a.host, a.port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (a.path, a.host, a.port, key))
        if a.token:
            req += "X-EXECD-ACCESS-TOKEN: %s\r\n" % a.token
        sock.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = sock.recv(1)
            if not c:
                raise EOFError("EOF in the handshake: %r" % head)
            head += c
        if not head.startswith(b"HTTP/1.1 101"):
            raise ValueError("handshake: %r" % head[:200])
        if a.send_big and stall_n is None:
            sock.sendall(masked(2, b"\x00" * a.send_big))
        nframes = 0
        partial_op, partial = None, b""
        while True:
            fin, op, payload = read_frame(sock)
            nframes += 1
            if op == 0:
                partial += payload
                if not fin:
                    continue
                op, payload, partial_op, partial = partial_op, partial + b"", None, b""
            elif not fin and op in (1, 2):
                partial_op, partial = op, payload
                continue
            if op == 9:
                sock.sendall(masked(10, payload))
            elif op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                res["close"], res["close_reason"] = code, payload[2:].decode(errors="replace")
                res["events"].append(["close", code])
                try:
                    sock.sendall(masked(8, payload[:2]))
                except OSError:
                    pass
                break
            elif op == 1:
                res["events"].append(["json", json.loads(payload)])
            elif op == 2:
                ch = payload[0]
                if ch == 3:
                    off = struct.unpack(">Q", payload[1:9])[0]
                    data = payload[9:]
                    res["events"].append(["data", 1, off, len(data)])
                    out.append(data)
                else:
                    data = payload[1:]
                    res["events"].append(["data", ch, None, len(data)])
                    (err if ch == 2 else out).append(data)
            if stall_n is not None and nframes == stall_n:
                deadline = time.monotonic() + a.timeout
                while not os.path.exists(stall_file):
                    if time.monotonic() > deadline:
                        raise EOFError("the test never released the stall (%s)" % stall_file)
                    time.sleep(0.01)
                if a.send_big:
                    sock.sendall(masked(2, b"\x00" * a.send_big))
        # after the close exchange the server closes the socket
        try:
            while sock.recv(65536):
                res["events"].append(["after-close-bytes"])
            res["eof"] = True
        except OSError as e:
            res["error"] = "after close: %s" % e
    except (OSError, EOFError, ValueError) as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    res["stdout"] = b"".join(out).decode("latin-1")
    res["stderr"] = b"".join(err).decode("latin-1")
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
