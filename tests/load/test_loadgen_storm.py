#!/usr/bin/env python3
"""Reconnect storm, correctness pass: 400 simulated nodes (real Noise handshakes, the daemon's
backoff and jitter from mproto/ctrldial.c) connected to a real shoal-server that is killed
with SIGKILL and started again on the same port and state. Asserts every node came back ONLINE
and that reconnect_all_s was measured; no timing asserts (make loadtest prints the numbers)."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
sys.path.insert(0, HERE)
from harness import BUILD, Lab  # noqa: E402
from storm import run_with_restart  # noqa: E402


def main():
    with Lab("loadgen-storm") as h:
        srv = h.start_server()
        r = run_with_restart(h, [os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url,
                                 "--nodes", "400", "--churn", "0", "--seconds", "0", "--procs", "2", "--json"],
                             timeout=400)
        print(json.dumps(r))
        assert r["nodes_connected"] == 400, r
        assert r["reconnect_expected"] == 400 and r["reconnected"] == 400, r
        assert r["reconnect_all_s"] > 0 and r["reconnect_attempts"] >= 400, r
    print("PASS")


if __name__ == "__main__":
    main()
