"""
Issue 9, defect 1: a dead peer's TCP connections must not hang.

alice downloads an endless stream from bob's exposed service through SOCKS5; bob's shoald is
killed with SIGKILL mid-transfer. Before the fix alice's client stalled until its own timeout
(minutes: lwIP only retransmits, and alice, receiving, sends nothing that could fail). Now the
periodic ping finds the path dead (3 unanswered, PROTOCOL.md 2.4) and, lost for 10 s, its
connections are reset: the client sees the end well within 30 s. Prints how long it took.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import Lab, run, socks_connect, wait_until  # noqa: E402


def streamer():
    """A local service that sends 64 KiB chunks to whoever connects, until they go."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            chunk = os.urandom(65536)

            def pump(c=c):
                try:
                    while True:
                        c.sendall(chunk)
                except OSError:
                    c.close()
            threading.Thread(target=pump, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def main():
    port = streamer()
    with Lab("dead-peer") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        a.cli("create", "lan")
        b.cli("join", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("path") == "direct", 10,
                   what="bob direct")
        b.cli("expose", port)
        s = socks_connect(a.socks_port, "bob", port)
        s.settimeout(120)
        got = 0
        while got < 4 << 20:
            d = s.recv(1 << 16)
            assert d, "the stream ended before the kill"
            got += len(d)
        b.proc.kill()
        b.proc.wait()
        t0 = time.monotonic()
        ended = "eof"
        try:
            while s.recv(1 << 16):
                pass
        except ConnectionResetError:
            ended = "reset"
        except socket.timeout:
            ended = "timeout"
        took = time.monotonic() - t0
        s.close()
        print(f"bob killed after {got >> 20} MiB: alice's client saw {ended} after {took:.1f} s")
        assert ended != "timeout", "the connection hung for 120 s"
        assert took < 30, f"the dead peer's connection took {took:.1f} s to end"


if __name__ == "__main__":
    run(main)
