#!/usr/bin/env python3
"""Cluster correctness pass of the load generator: 1,000 real nodes over two shoal-server
instances on one real PostgreSQL (node i dials instance i mod 2, so every network spans both and
its presence crosses them as NOTIFYs, many of one loop turn in one payload), networks of 2 and 16
in turn and one of 70, presence churn; then both instances killed and started again. Asserts
every node connected, every join and presence change reached every member, and every node came
back; no timing asserts (make loadtest-cluster prints the numbers)."""
import os
import sys
import json

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
sys.path.insert(0, HERE)
from harness import Lab  # noqa: E402
import pgserver  # noqa: E402
from clusterload import run_cluster  # noqa: E402


def main():
    pgserver.skip_unless_installed()
    with pgserver.PgServer(port=5445) as pg, Lab("loadgen-cluster") as lab:
        r, _ = run_cluster(lab, pg, 1000, 2, ["--network-size", "70x1", "--network-size", "2",
                                              "--network-size", "16"], 100, 2, 300, base_port=7400)
        print(json.dumps(r))
        assert r["nodes_connected"] == 1000, r
        assert r["joins_expected"] == 1000 - r["networks"] and r["joins_visible"] == r["joins_expected"], r
        assert r["presence_sent"] > 0 and r["presence_visible"] == r["presence_sent"], r
        assert r["reconnect_expected"] == 1000 and r["reconnected"] == 1000, r
        # the batches crossed: an instance applied events of the other's loop turns
        logs = "".join(open(os.path.join(lab.dir, f"med{i}.log")).read() for i in range(2))
        assert "cluster_event_bad" not in logs, "an instance could not read a NOTIFY"
    print("PASS")


if __name__ == "__main__":
    main()
