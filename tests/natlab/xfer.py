#!/usr/bin/env python3
"""
A byte-exact TCP transfer for lab tests, run inside a host's namespace (ip netns exec).
  xfer.py serve PORT            accepts one connection at a time on 127.0.0.1:PORT, reads to EOF,
                                answers with the sha256 hex of what it read and its length
  xfer.py send SOCKSPORT ADDR PORT BYTES [PROGRESS_FILE]
                                SOCKS5 CONNECT to ADDR:PORT through 127.0.0.1:SOCKSPORT, sends BYTES
                                of a deterministic stream, reads the answer; prints one JSON line
                                {"sent", "sha256", "got", "got_len", "ok", "seconds"}. The byte
                                count sent so far goes to PROGRESS_FILE (rewritten every MB), so
                                a test can act mid-transfer on an event rather than a sleep.
"""
import hashlib
import json
import os
import socket
import struct
import sys
import time


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        h, n = hashlib.sha256(), 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        c.sendall(f"{h.hexdigest()} {n}\n".encode())
        c.close()


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise OSError("eof")
        b += x
    return b


def send(socks_port, addr, port, total, progress=None):
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=120)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(addr) + struct.pack("!H", port))
    r = recv_exact(s, 10)
    if r[1] != 0:
        raise SystemExit(f"socks connect failed: {r[1]}")
    h, sent, t0 = hashlib.sha256(), 0, time.monotonic()
    block = hashlib.sha256(b"shoal").digest() * 2048          # 64 KiB
    i = 0
    next_mark = 0
    while sent < total:
        chunk = (block[i % 251:] + block[:i % 251])[:min(len(block), total - sent)]
        i += 1
        s.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
        if progress and sent >= next_mark:
            with open(progress + ".tmp", "w") as f:
                f.write(str(sent))
            os.replace(progress + ".tmp", progress)
            next_mark = sent + (1 << 20)
    s.shutdown(socket.SHUT_WR)
    ans = b""
    while not ans.endswith(b"\n"):
        x = s.recv(256)
        if not x:
            break
        ans += x
    dt = time.monotonic() - t0
    got, _, got_len = ans.decode().strip().partition(" ")
    print(json.dumps({"sent": sent, "sha256": h.hexdigest(), "got": got,
                      "got_len": int(got_len or -1), "ok": got == h.hexdigest() and
                      int(got_len or -1) == sent, "seconds": round(dt, 2)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        send(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
             sys.argv[6] if len(sys.argv) > 6 else None)
