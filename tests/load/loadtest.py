#!/usr/bin/env python3
"""make loadtest: shoal-loadgen against a freshly started shoal-server for each size in
SHOAL_LOAD_NODES (default "2000 10000"); prints one table line per size. Not in make check.
After the measured phase the mediator is killed and restarted (tests/load/storm.py): "reconnect
all s" is the time until every node is ONLINE again, with the daemons' backoff and jitter."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab  # noqa: E402
from storm import run_with_restart  # noqa: E402


def main():
    sizes = [int(x) for x in os.environ.get("SHOAL_LOAD_NODES", "2000 10000").split()]
    procs = os.environ.get("SHOAL_LOAD_PROCS", "2")
    print(f"{'nodes':>7} {'connected':>9} {'join p50/p99 ms':>17} {'presence p50/p99 ms':>21} "
          f"{'mediator RSS kB':>15} {'kB/node':>7} {'reconnect all s':>15}")
    for n in sizes:
        with Lab(f"load{n}") as h:
            srv = h.start_server()
            r = run_with_restart(h, [os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url,
                                     "--nodes", str(n), "--churn", "200", "--seconds", "5", "--procs", procs,
                                     "--server-pid", str(srv.proc.pid), "--json"])
            print(f"{n:>7} {r['nodes_connected']:>9} "
                  f"{r['join_visible_p50_ms']:>8.1f}/{r['join_visible_p99_ms']:<8.1f} "
                  f"{r['presence_p50_ms']:>10.1f}/{r['presence_p99_ms']:<10.1f} "
                  f"{r['mediator_rss_kb']:>15} {r['mediator_rss_kb'] / max(1, r['nodes_connected']):>7.2f} "
                  f"{r['reconnect_all_s']:>15.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
