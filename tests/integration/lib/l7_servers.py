"""Test upstreams for L7 body inspection, run inside a test namespace:

  --rpc-port  a JSON-RPC 2.0 / MCP Streamable HTTP server: POST answers each
              call (or batch) with a result naming the method; the tool
              "stream" answers with an SSE stream whose second event is sent
              only after GET /release arrives (so a proxy that buffered the
              response would never deliver the first event in time); GET /mcp
              opens an SSE stream with one event.
  --gql-port  a GraphQL-over-HTTP server: POST/GET answer {"data": {...}}.

Every request received is appended to --log as one JSON line
{"port", "method", "path", "body"}, so tests can assert that a denied
request never arrived. Prints READY when both listen."""
import argparse
import json
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

RELEASE = threading.Event()
LOG_LOCK = threading.Lock()


def log(path, rec):
    with LOG_LOCK, open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    logfile = None

    def log_message(self, *a):
        pass

    def body(self):
        """The request body, framing removed; a chunked one is decoded
        strictly and its bytes as received are kept in self.raw."""
        self.raw = None
        te = self.headers.get("Transfer-Encoding")
        if te is None:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""
        assert te.strip().lower() == "chunked", te
        raw, out = b"", b""
        while True:
            line = self.rfile.readline(4096)
            raw += line
            assert line.endswith(b"\r\n"), raw
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = self.rfile.read(size + 2)
            raw += data
            assert data.endswith(b"\r\n"), raw
            out += data[:-2]
        while True:  # trailers, then the empty line
            line = self.rfile.readline(4096)
            raw += line
            if line == b"\r\n":
                break
        self.raw = raw
        return out

    def send(self, status, obj, ctype="application/json"):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body):
        rec = {"port": self.server.server_address[1], "method": self.command,
               "path": self.path, "body": body.decode("utf-8", "replace")}
        if getattr(self, "raw", None) is not None:
            rec["raw_chunked"] = self.raw.decode("latin-1")
        log(self.logfile, rec)


class RpcHandler(Handler):
    def do_GET(self):
        self.record(b"")
        if self.path == "/release":
            RELEASE.set()
            return self.send(200, {"released": True})
        # the server's SSE stream (MCP Streamable HTTP GET)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n")
        self.wfile.flush()
        self.close_connection = True

    def do_DELETE(self):
        self.record(b"")
        self.send(200, {})

    def do_POST(self):
        raw = self.body()
        self.record(raw)
        msg = json.loads(raw)
        calls = msg if isinstance(msg, list) else [msg]
        if any(c.get("params", {}).get("name") == "stream" for c in calls):
            return self.stream(calls[0])
        out = [{"jsonrpc": "2.0", "id": c.get("id"), "result": {"method": c.get("method")}}
               for c in calls if "id" in c]
        self.send(200, out if isinstance(msg, list) else (out[0] if out else {}))

    def stream(self, call):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        ev = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
        self.wfile.write(b"event: message\ndata: " + json.dumps(ev).encode() + b"\n\n")
        self.wfile.flush()
        RELEASE.wait(60)
        RELEASE.clear()
        done = {"jsonrpc": "2.0", "id": call.get("id"), "result": {"content": "done"}}
        self.wfile.write(b"event: message\ndata: " + json.dumps(done).encode() + b"\n\n")
        self.wfile.flush()
        self.close_connection = True


class GqlHandler(Handler):
    def answer(self, doc):
        self.send(200, {"data": {"ok": True, "doc": doc}})

    def do_GET(self):
        self.record(b"")
        q = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
        self.answer(q)

    def do_POST(self):
        raw = self.body()
        self.record(raw)
        msg = json.loads(raw)
        self.answer(msg if isinstance(msg, list) else msg.get("query"))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind asks DNS for our name (getfqdn), which a test
        # namespace cannot answer: bind without it
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--rpc-port", type=int, required=True)
    ap.add_argument("--gql-port", type=int, required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    Handler.logfile = a.log
    servers = [Server((a.bind, a.rpc_port), RpcHandler), Server((a.bind, a.gql_port), GqlHandler)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
