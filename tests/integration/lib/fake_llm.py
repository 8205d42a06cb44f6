"""A fake model server speaking OpenAI, Anthropic and Ollama (our own, stdlib).

Run:  /usr/bin/python3 fake_llm.py --key KEY [--host 127.0.0.1] [--port 0]
                                   [--tls-cert CERT --tls-key KEY]
It prints "READY <port>" once listening. Every request must carry the key
(Authorization: Bearer KEY, or x-api-key: KEY for /v1/messages*), else 401.

Behaviour is chosen by the requested model name:
  any name          answer at once; the reply text is "echo:<model>"
  slow-<ms>-<n>     stream n chunks, one every <ms> milliseconds
  kill-<n>          stream n chunks, then close the socket without ending
Streams follow each API's own format (SSE for OpenAI/Anthropic, NDJSON for
Ollama), chunked transfer encoding, one write per event.
GET /v1/responses with Upgrade: websocket answers 101 and echoes text
frames as {"type":"echo","data":...}.
GET /_seen (no key needed) returns the requests seen so far as JSON:
[{method, path, peer_port, headers:{lower-case name: value}, body}] — the tests read
it directly to check what reached the backend (credentials included).
"""
import argparse
import base64
import hashlib
import json
import struct
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []
LOCK = threading.Lock()
KEY = None


def parse_model(model):
    if model.startswith("slow-"):
        _, ms, n = model.split("-", 2)
        return int(ms) / 1000.0, int(n), False
    if model.startswith("kill-"):
        return 0.0, int(model.split("-", 1)[1]), True
    return 0.0, 3, False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        # one write per event reaches the wire at once (no Nagle delay)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _json(self, status, obj):
        b = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def _record(self, body):
        with LOCK:
            SEEN.append({"method": self.command, "path": self.path, "peer_port": self.client_address[1],
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body})

    def _authorized(self, anthropic):
        if anthropic:
            return self.headers.get("x-api-key") == KEY
        return self.headers.get("Authorization") == "Bearer " + KEY

    def do_GET(self):
        if self.path == "/_seen":
            with LOCK:
                return self._json(200, SEEN)
        self._record(None)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if not self._authorized(False):
            return self._json(401, {"error": {"message": "bad key", "type": "authentication_error"}})
        p = self.path.split("?")[0]
        if p in ("/v1/models", "/models"):
            return self._json(200, {"object": "list", "data": [{"id": "fake-1", "object": "model"}]})
        if p.startswith("/v1/models/"):
            return self._json(200, {"id": p.rsplit("/", 1)[1], "object": "model"})
        if p == "/api/tags":
            return self._json(200, {"models": [{"name": "fake-1"}]})
        return self._json(404, {"error": "not found: " + p})

    def _websocket(self):
        """GET /v1/responses with Upgrade (Codex-style): 101, then every text
        frame is answered with {"type":"echo","data":<text>} (RFC 6455)."""
        if self.path.split("?")[0] != "/v1/responses":
            return self._json(404, {"error": "no websocket here"})
        if not self._authorized(False):
            return self._json(401, {"error": {"message": "bad key", "type": "authentication_error"}})
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        r = self.rfile
        while True:
            h = r.read(2)
            if len(h) < 2:
                return
            op, n = h[0] & 0x0F, h[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", r.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", r.read(8))[0]
            mask = r.read(4) if h[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(r.read(n)))
            if op == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            if op == 1:
                out = json.dumps({"type": "echo", "data": data.decode()}).encode()
                hdr = bytes([0x81, len(out)]) if len(out) < 126 else bytes([0x81, 126]) + struct.pack("!H", len(out))
                self.wfile.write(hdr + out)
                self.wfile.flush()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("latin-1")}
        self._record(body)
        p = self.path.split("?")[0]
        anthropic = p.startswith("/v1/messages")
        if not self._authorized(anthropic):
            if anthropic:
                return self._json(401, {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
            return self._json(401, {"error": {"message": "bad key", "type": "authentication_error"}})
        model = body.get("model", "") if isinstance(body, dict) else ""
        stream = isinstance(body, dict) and body.get("stream") is True
        if p == "/v1/messages/count_tokens":
            return self._json(200, {"input_tokens": 11})
        if p == "/v1/embeddings":
            return self._json(200, {"object": "list", "model": model, "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                                    "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        if p not in ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages",
                     "/api/chat", "/api/generate"):
            return self._json(404, {"error": "not found: " + p})
        if p.startswith("/api/") and body.get("stream") is not False:
            stream = True  # Ollama streams unless told not to
        if not stream:
            return self._json(200, self._whole(p, model))
        self._stream(p, model)

    def _whole(self, p, model):
        text = "echo:" + model
        if p == "/v1/chat/completions":
            return {"id": "c1", "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
        if p == "/v1/completions":
            return {"id": "c1", "object": "text_completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
        if p == "/v1/responses":
            return {"id": "r1", "object": "response", "created_at": 0, "model": model, "status": "completed",
                    "output": [{"type": "message", "id": "m1", "role": "assistant", "status": "completed",
                                "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                    "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}
        if p == "/v1/messages":
            return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                    "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 2}}
        if p == "/api/chat":
            return {"model": model, "message": {"role": "assistant", "content": text}, "done": True,
                    "prompt_eval_count": 5, "eval_count": 2}
        return {"model": model, "response": text, "done": True, "prompt_eval_count": 5, "eval_count": 2}

    def _chunk(self, data):
        b = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
        self.wfile.flush()

    def _events(self, p, model, n):
        """(event text per piece, final text)"""
        if p in ("/v1/chat/completions", "/v1/completions"):
            def piece(i):
                if p == "/v1/completions":
                    c = {"index": 0, "text": "t%d " % i, "finish_reason": None}
                    obj = "text_completion"
                else:
                    c = {"index": 0, "delta": {"content": "t%d " % i}, "finish_reason": None}
                    obj = "chat.completion.chunk"
                return "data: " + json.dumps({"id": "c1", "object": obj, "created": 0, "model": model, "choices": [c]}) + "\n\n"
            end = "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}}) + "\n\ndata: [DONE]\n\n"
            return piece, "", end
        if p == "/v1/responses":
            def piece(i):
                return "event: response.output_text.delta\ndata: " + json.dumps(
                    {"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": 0,
                     "delta": "t%d " % i, "sequence_number": i + 1}) + "\n\n"
            whole = self._whole(p, model)
            start = "event: response.created\ndata: " + json.dumps({"type": "response.created", "sequence_number": 0,
                                                                     "response": dict(whole, status="in_progress", output=[])}) + "\n\n"
            end = "event: response.completed\ndata: " + json.dumps({"type": "response.completed", "sequence_number": n + 1,
                                                                      "response": whole}) + "\n\n"
            return piece, start, end
        if p == "/v1/messages":
            def piece(i):
                return "event: content_block_delta\ndata: " + json.dumps(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "t%d " % i}}) + "\n\n"
            start = ("event: message_start\ndata: " + json.dumps({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
                "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 0}}}) + "\n\n"
                     "event: content_block_start\ndata: " + json.dumps({"type": "content_block_start", "index": 0,
                                                                         "content_block": {"type": "text", "text": ""}}) + "\n\n")
            end = ("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                   "event: message_delta\ndata: " + json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                                                 "usage": {"output_tokens": n}}) + "\n\n"
                   "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
            return piece, start, end
        key = "message" if p == "/api/chat" else "response"

        def piece(i):
            v = {"role": "assistant", "content": "t%d " % i} if key == "message" else "t%d " % i
            return json.dumps({"model": model, key: v, "done": False}) + "\n"
        end = json.dumps({"model": model, "done": True, "prompt_eval_count": 5, "eval_count": n}) + "\n"
        return piece, "", end

    def _stream(self, p, model):
        interval, n, kill = parse_model(model)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if p.startswith("/api/") else "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece, start, end = self._events(p, model, n)
        if start:
            self._chunk(start)
        for i in range(n):
            if i and interval:
                time.sleep(interval)
            self._chunk(piece(i))
        if kill:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        self._chunk(end)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    global KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (and --tls-key)")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    KEY = a.key
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("READY %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
