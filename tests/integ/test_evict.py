"""
An evicted member is cut off within 2 s: an open connection through the overlay dies and new
ones fail, in both directions, while the remaining members keep talking.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, socks_connect, CliError  # noqa: E402
from services import HashService  # noqa: E402


def main():
    svc = HashService()
    with Lab("evict") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        m = lab.start_daemon("mallory")
        a.cli("create", "lan")
        b.cli("join", "lan")
        m.cli("join", "lan")
        a.cli("expose", svc.port)
        b.cli("expose", svc.port)
        wait_until(lambda: (m.member("lan", "alice") or {}).get("path") == "direct", 5, what="mallory direct")
        a_addr = a.address()

        # mallory holds an open connection to alice's service and streams into it
        s = socks_connect(m.socks_port, a_addr, svc.port)
        s.sendall(b"UP\n")
        s.settimeout(0.2)

        a.cli("evict", "lan", "mallory")
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < 2.0:
            try:
                s.send(b"x" * 65536)
            except socket.timeout:
                pass  # buffers full: not a verdict
            except OSError:
                cut = True
                break
            try:
                if s.recv(1) == b"":
                    cut = True
                    break
            except socket.timeout:
                pass
            except OSError:
                cut = True
                break
        assert cut, "evicted member's open connection still works after 2 s"

        # new connections fail both ways
        try:
            socks_connect(m.socks_port, a_addr, svc.port, timeout=5).close()
            raise AssertionError("evicted member can still connect")
        except (ConnectionError, OSError):
            pass
        try:
            m.cli("ping", a_addr)
            raise AssertionError("evicted member can still ping")
        except CliError:
            pass

        # the others are unaffected
        assert a.cli("ping", "bob")
        s2 = socks_connect(a.socks_port, b.address(), svc.port)
        s2.close()


if __name__ == "__main__":
    run(main)
