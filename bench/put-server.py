#!/usr/bin/env python3
"""put-server.py - the plain HTTP server of bench/imaging.sh's network baseline: PUT streams
a body to a file (curl -T -, chunked or not), GET streams a file back. One directory, no
checks: the practical pipeline limit `zstd | curl -T -` / `curl | zstd -d` is measured
against it (python3 -m http.server cannot take PUT). Not for anything but the benchmark.

    put-server.py DIR PORT_FILE
"""
import os
import shutil
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUF = 1 << 20


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def path_of(self):
        return os.path.join(self.server.dir, os.path.basename(self.path.split("?")[0]))

    def do_PUT(self):
        p = self.path_of()
        with open(p + ".part", "wb") as f:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    n = int(self.rfile.readline().split(b";")[0], 16)
                    if n == 0:
                        self.rfile.readline()
                        break
                    left = n
                    while left:
                        b = self.rfile.read(min(left, BUF))
                        f.write(b)
                        left -= len(b)
                    self.rfile.readline()
            else:
                left = int(self.headers.get("Content-Length", "0"))
                while left:
                    b = self.rfile.read(min(left, BUF))
                    f.write(b)
                    left -= len(b)
        os.rename(p + ".part", p)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        p = self.path_of()
        if not os.path.exists(p):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(p)))
        self.end_headers()
        with open(p, "rb") as f:
            shutil.copyfileobj(f, self.wfile, BUF)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
srv.dir = sys.argv[1]
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
