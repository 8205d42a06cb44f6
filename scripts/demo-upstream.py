#!/usr/bin/python3
"""The demo's pretend internet: one tiny HTTP server that answers for every
host name the demo uses (the proxy decides who may reach it).

    demo-upstream.py ADDR PORT
Prints READY once listening."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        host = self.headers.get("Host", "?")
        if host.startswith("api.allowed.demo"):
            body = {"object": "list", "data": [{"id": "demo-model-1"}], "served_by": host}
        else:
            body = {"received": self.path, "served_by": host}
        data = json.dumps(body).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    def server_bind(self):
        # No reverse DNS lookup of our own address (HTTPServer does one).
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = self.server_address[:2]


if __name__ == "__main__":
    srv = Server((sys.argv[1], int(sys.argv[2])), Handler)
    print("READY", flush=True)
    srv.serve_forever()
