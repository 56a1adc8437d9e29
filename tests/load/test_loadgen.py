#!/usr/bin/env python3
"""Correctness pass of the mediator load generator: 1,000 real nodes (Noise handshake, HELLO,
create/join networks of 2 and 16 members in turn and one of 70, past the 64 a seen-set once
held; presence churn, PINGs) against a real shoal-server. Asserts every node connected and
every join and presence change reached every member; no timing asserts."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab  # noqa: E402


def main():
    with Lab("loadgen") as h:
        srv = h.start_server()
        out = subprocess.run([os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url,
                              "--nodes", "1000", "--network-size", "70x1", "--network-size", "2",
                              "--network-size", "16", "--churn", "100", "--seconds", "2", "--procs", "2",
                              "--server-pid", str(srv.proc.pid), "--json"],
                             check=True, capture_output=True, text=True, timeout=120)
        r = json.loads(out.stdout)
        print(json.dumps(r))
        # 70, then 2 and 16 in turn over the other 930: 51 pairs, a 2 and the last 10 (930 = 51 * 18 + 2 + 10).
        assert r["nodes_connected"] == 1000, r
        assert r["networks"] == 105 and r["network_max"] == 70, r
        assert r["joins_expected"] == 1000 - r["networks"] and r["joins_visible"] == r["joins_expected"], r
        assert r["presence_sent"] > 0 and r["presence_visible"] == r["presence_sent"], r
        # --churn is across the server, whatever the workers: 100/s for 2 s (each worker's timer
        # fires once at the start too); before session 13 each of the two made all of it
        assert r["presence_sent"] <= 100 * 2 + 2, r
        assert r["mediator_rss_kb"] > 0, r
    print("PASS")


if __name__ == "__main__":
    main()
