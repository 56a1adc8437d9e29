"""
Issue 9, defect 6: silent TCP connections must not lock nodes out of the mediator.

The mediator runs with 256 descriptors (soft and hard). 600 clients connect to its port and say
nothing. Before the fix they held every descriptor for the whole idle timeout: the mediator
logged accept_paused and no daemon could connect until they timed out (60 s).

Holds: a daemon started during the flood connects (the oldest silent connections are closed
for newcomers: per source address, past a quarter of the descriptors, and when descriptors run
out), a daemon connected before the flood keeps working, and the evictions are logged. Prints
how long the newcomer took.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import Lab, run, wait_until  # noqa: E402

LIMIT = 256
SILENT = 600


def main():
    with Lab("preauth-flood") as lab:
        lab.start_server(wrap=("prlimit", f"--nofile={LIMIT}:{LIMIT}"))
        a = lab.start_daemon("alice")
        a.cli("create", "lan")
        silent = []
        try:
            for _ in range(SILENT):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", lab.server.port))
                silent.append(s)
            log = os.path.join(lab.dir, "server.log")
            wait_until(lambda: "event=preauth_evicted" in open(log).read(), 10,
                       what="the mediator closes silent connections")
            t0 = time.monotonic()
            b = lab.start_daemon("bob")
            took = time.monotonic() - t0
            b.cli("join", "lan")
            wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 10,
                       what="alice sees bob")
            a.cli("set-access", "lan", "unlock")
            with open(log) as fh:
                ev = [line.strip() for line in fh if "event=preauth_evicted" in line]
            print(f"{SILENT} silent connections against {LIMIT} descriptors: a new daemon "
                  f"connected in {took:.2f} s; the connected one kept working; "
                  f"first eviction line: {ev[0] if ev else None}")
        finally:
            for s in silent:
                s.close()


if __name__ == "__main__":
    run(main)
