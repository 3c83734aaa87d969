#!/usr/bin/env python3
"""imaging-standin.py - a stand-in for the imaging plugin's HTTP API (doc/imaging-api.md,
version 1) over a directory, for preboot-img's tests only: it lets tests/image-net.sh run
before and without prebootd's imaging plugin, and checks the client against the text of
the spec rather than against the plugin's reading of it. Not a server to deploy: one
process, no access control beyond the bearer token, no limits.

    imaging-standin.py --dir DIR --port-file FILE [--port N] [--token TOKEN] [--log FILE]
                       [--refer NAME=PORT]...

DIR/chunks/HASH (+ HASH.codec), DIR/images/NAME, DIR/work/MAC.json (work to hand out,
written by the test), DIR/results.jsonl (reports). --log appends "METHOD PATH STATUS" per
request so a test can count what the client sent.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/imaging/v1"
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
CHUNK_MAX = 64 * 1024 * 1024
lock = threading.Lock()


def manifest_hashes(text):
    return {m.group(1) for m in re.finditer(r"^c ([0-9a-f]{64}) ", text, re.M)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "imaging-standin/1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status):
        if self.server.logfile:
            with lock, open(self.server.logfile, "a") as f:
                f.write("%s %s %d\n" % (self.command, self.path.split("?")[0], status))

    def reply(self, status, body=b"", ctype="text/plain", headers=None):
        self.note(status)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) != n:
            # The connection broke mid-body: nothing to answer, nothing kept.
            raise ConnectionError("short body")
        return data

    def authorized(self):
        tok = self.server.token
        if tok is None:
            return True
        if self.headers.get("Authorization") != "Bearer " + tok:
            self.body()
            self.reply(401, "no or wrong credential\n")
            return False
        return True

    def path_parts(self):
        u = urllib.parse.urlsplit(self.path)
        if not u.path.startswith(PREFIX + "/"):
            return None, None
        return u.path[len(PREFIX) + 1:].split("/"), urllib.parse.parse_qs(u.query)

    def d(self, *p):
        return os.path.join(self.server.dir, *p)

    # ---- GET / HEAD
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts, q = self.path_parts()
        if parts is None:
            return self.reply(404, "not here\n")
        if parts == ["images"]:
            out = []
            for n in sorted(os.listdir(self.d("images"))):
                if n.startswith("."):
                    continue
                text = open(self.d("images", n)).read()
                seal = re.search(r"^seal sha256 ([0-9a-f]{64})", text, re.M)
                size = re.search(r"^disk-size (\d+)", text, re.M)
                out.append({"name": n, "disk_size": int(size.group(1)),
                            "chunks": len(manifest_hashes(text)), "seal": seal.group(1)})
            return self.reply(200, json.dumps({"images": out}), "application/json")
        if len(parts) == 2 and parts[0] == "images" and parts[1] in self.server.refer:
            loc = "http://127.0.0.1:%d%s/images/%s" % (self.server.refer[parts[1]], PREFIX,
                                                       parts[1])
            return self.reply(307, "elsewhere\n", headers={"Location": loc})
        if len(parts) in (2, 3) and parts[0] == "images" and NAME_RE.match(parts[1]):
            p = self.d("images", parts[1])
            if not os.path.exists(p):
                return self.reply(404, "no such image\n")
            text = open(p).read()
            if len(parts) == 3:
                return self.reply(200, json.dumps({"name": parts[1]}), "application/json")
            seal = re.search(r"^seal sha256 ([0-9a-f]{64})", text, re.M).group(1)
            return self.reply(200, text, headers={"ETag": '"%s"' % seal})
        if len(parts) == 2 and parts[0] == "chunks" and HASH_RE.match(parts[1]):
            p = self.d("chunks", parts[1])
            if not os.path.exists(p):
                return self.reply(404, "no such chunk\n")
            data = open(p, "rb").read()
            codec, length = open(p + ".codec").read().split()
            return self.reply(200, data, "application/octet-stream",
                              {"X-Preboot-Codec": codec, "X-Preboot-Length": length,
                               "ETag": '"%s"' % parts[1],
                               "Cache-Control": "public, max-age=31536000, immutable"})
        if parts == ["work"]:
            mac = (q.get("mac") or [""])[0].lower()
            p = self.d("work", mac.replace(":", "-") + ".json")
            if re.match(r"^[0-9a-f:]{17}$", mac) and os.path.exists(p):
                return self.reply(200, open(p).read(), "application/json")
            return self.reply(200, json.dumps({"action": "none"}), "application/json")
        if parts == ["log"]:
            lines = []
            if os.path.exists(self.d("results.jsonl")):
                lines = [json.loads(l) for l in open(self.d("results.jsonl"))]
            return self.reply(200, json.dumps({"log": lines[::-1]}), "application/json")
        return self.reply(404, "no such route\n")

    # ---- PUT
    def do_PUT(self):
        parts, _ = self.path_parts()
        if parts is None:
            self.body()
            return self.reply(404, "not here\n")
        if not self.authorized():
            return
        if len(parts) == 2 and parts[0] == "chunks" and HASH_RE.match(parts[1]):
            return self.put_chunk(parts[1])
        if len(parts) == 2 and parts[0] == "images" and NAME_RE.match(parts[1]):
            return self.put_image(parts[1])
        self.body()
        return self.reply(404, "no such route\n")

    def put_chunk(self, h):
        data = self.body()
        codec = self.headers.get("X-Preboot-Codec", "")
        try:
            length = int(self.headers.get("X-Preboot-Length", ""))
        except ValueError:
            return self.reply(400, "no X-Preboot-Length\n")
        if codec not in ("zstd", "none") or length > CHUNK_MAX:
            return self.reply(400, "bad codec or length\n")
        raw = data
        if codec == "zstd":
            r = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True)
            if r.returncode != 0:
                return self.reply(422, "does not decode\n")
            raw = r.stdout
        if len(raw) != length or hashlib.sha256(raw).hexdigest() != h:
            return self.reply(422, "hash or length mismatch\n")
        p = self.d("chunks", h)
        if os.path.exists(p):
            return self.reply(200, "already had\n")
        tmp = self.d("tmp", "%s.%d" % (h, threading.get_ident()))
        with open(tmp + ".codec", "w") as f:
            f.write("%s %d\n" % (codec, length))
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp + ".codec", p + ".codec")
        os.rename(tmp, p)
        return self.reply(201, "stored\n")

    def put_image(self, name):
        text = self.body().decode("ascii", "replace")
        if not text.startswith("preboot-image 1\n") or "\nseal sha256 " not in text:
            return self.reply(400, "not a manifest\n")
        p = self.d("images", name)
        with lock:
            if self.headers.get("If-None-Match") == "*" and os.path.exists(p):
                return self.reply(412, "exists\n")
            lack = sorted(h for h in manifest_hashes(text)
                          if not os.path.exists(self.d("chunks", h)))
            if lack:
                return self.reply(409, "".join(x + "\n" for x in lack))
            existed = os.path.exists(p)
            tmp = self.d("tmp", name + ".pbm")
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, p)
        return self.reply(200 if existed else 201, "committed\n")

    # ---- POST
    def do_POST(self):
        parts, _ = self.path_parts()
        if parts == ["chunks", "missing"]:
            lines = self.body().decode("ascii", "replace").split("\n")
            lines = [l.strip() for l in lines if l.strip()]
            if len(lines) > 65536:
                return self.reply(413, "too many\n")
            if any(not HASH_RE.match(l) for l in lines):
                return self.reply(400, "not a hash\n")
            lack = [l for l in lines if not os.path.exists(self.d("chunks", l))]
            return self.reply(200, "".join(x + "\n" for x in lack))
        if parts == ["results"]:
            if not self.authorized():
                return
            try:
                r = json.loads(self.body())
            except ValueError:
                return self.reply(400, "not JSON\n")
            if r.get("type") not in ("capture", "restore", "session", "verify") or \
                    r.get("result") not in ("ok", "failed"):
                return self.reply(400, "bad type or result\n")
            r["source"] = self.client_address[0]
            r["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            with lock:
                with open(self.d("results.jsonl"), "a") as f:
                    f.write(json.dumps(r) + "\n")
                # One-shot work is used up by the report of its result.
                mac = str(r.get("mac", "")).lower().replace(":", "-")
                p = self.d("work", mac + ".json")
                if re.match(r"^[0-9a-f-]{17}$", mac) and os.path.exists(p):
                    w = json.load(open(p))
                    if w.get("work_id") == r.get("work_id"):
                        os.unlink(p)
            return self.reply(204)
        self.body()
        return self.reply(404, "no such route\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--token")
    ap.add_argument("--log")
    ap.add_argument("--refer", action="append", default=[],
                    help="NAME=PORT: answer GET images/NAME with a 307 to that port")
    a = ap.parse_args()
    for sub in ("chunks", "images", "work", "tmp"):
        os.makedirs(os.path.join(a.dir, sub), exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # broken connections are the tests' point
    srv.dir, srv.token, srv.logfile = a.dir, a.token, a.log
    srv.refer = {n: int(p) for n, p in (r.split("=", 1) for r in a.refer)}
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
