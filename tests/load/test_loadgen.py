#!/usr/bin/env python3
"""Correctness pass of the mediator load generator: 500 real nodes (Noise handshake, HELLO,
create/join networks of 8, presence churn) against a real shoal-server. Asserts every node
connected and every join and presence change reached every member; no timing asserts."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab  # noqa: E402


def main():
    with Lab("loadgen") as h:
        srv = h.start_server()
        out = subprocess.run([os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url, "--nodes", "500",
                              "--churn", "100", "--seconds", "2", "--procs", "2",
                              "--server-pid", str(srv.proc.pid), "--json"],
                             check=True, capture_output=True, text=True, timeout=120)
        r = json.loads(out.stdout)
        print(json.dumps(r))
        assert r["nodes_connected"] == 500, r
        assert r["networks"] == (500 + 7) // 8 and r["joins_expected"] == 500 - r["networks"], r
        assert r["joins_visible"] == r["joins_expected"], r
        assert r["presence_sent"] > 0 and r["presence_visible"] == r["presence_sent"], r
        assert r["mediator_rss_kb"] > 0, r
    print("PASS")


if __name__ == "__main__":
    main()
