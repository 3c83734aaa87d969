#!/usr/bin/env python3
"""cut-proxy.py - a TCP proxy on loopback that drops one connection part-way, for the
resume tests of tests/image-net.sh: the first connection that carries the byte number
--cut-up of all client-to-server traffic (or --cut-down of server-to-client traffic) is
closed on both sides, once; everything else is forwarded untouched.

    cut-proxy.py --target PORT --port-file FILE [--cut-up N] [--cut-down N] [--log FILE]

--log gets one line "cut up|down" when it cuts, so the test can check that it did, and one
line "req METHOD PATH" for every request the client starts (requests are framed by their
Content-Length: the client under test never sends chunked bodies), so the test can count
what was sent, including what libcurl re-sends by itself on a fresh connection.
"""
import argparse
import os
import socket
import sys
import threading

state = {"up": 0, "down": 0, "cut": False}
lock = threading.Lock()


class Requests:
    """Follows the client's requests through the byte stream and logs each one's start."""

    def __init__(self, log):
        self.log, self.buf, self.body = log, b"", 0

    def feed(self, data):
        while data:
            if self.body:
                n = min(self.body, len(data))
                self.body -= n
                data = data[n:]
                continue
            self.buf += data
            data = b""
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            self.buf = b""
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if self.log and len(parts) >= 2:
                with lock, open(self.log, "a") as f:
                    f.write("req %s %s\n" % (parts[0], parts[1]))
            for l in lines[1:]:
                k, _, v = l.partition(":")
                if k.strip().lower() == "content-length":
                    self.body = int(v.strip())
            data = rest


def pump(src, dst, direction, limit, pair, log):
    reqs = Requests(log) if direction == "up" else None
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if reqs:
                reqs.feed(data)
            cut = False
            with lock:
                state[direction] += len(data)
                if limit and not state["cut"] and state[direction] >= limit:
                    state["cut"] = True
                    cut = True
            if cut:
                # Forward part of what crossed the limit, then drop both sides.
                dst.sendall(data[: len(data) // 2])
                if log:
                    with lock, open(log, "a") as f:
                        f.write("cut %s\n" % direction)
                for s in pair:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, a):
    try:
        up = socket.create_connection(("127.0.0.1", a.target))
    except OSError:
        client.close()
        return
    pair = (client, up)
    t = threading.Thread(target=pump, args=(client, up, "up", a.cut_up, pair, a.log), daemon=True)
    t.start()
    pump(up, client, "down", a.cut_down, pair, a.log)
    t.join()
    client.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cut-up", type=int, default=0)
    ap.add_argument("--cut-down", type=int, default=0)
    ap.add_argument("--log")
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, a.port_file)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, a), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
