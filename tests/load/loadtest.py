#!/usr/bin/env python3
"""make loadtest: shoal-loadgen against a freshly started shoal-server for each size in
SHOAL_LOAD_NODES (default "100 2000 10000 19000"; the 100-node row is the unloaded reference
measured in the same run) and prints one table. Networks: 2, 4, 8 and 16 members in turn,
plus two of 256 and one of 1,000 from 5,000 nodes up; presence churn SHOAL_LOAD_CHURN (default
100) changes a second for 20 s. After the measured phase the mediator is killed and restarted
(tests/load/storm.py): "reconnect all s" is the time until every node is ONLINE again, with the
daemons' backoff and jitter. Sizes above the fd hard limit (one descriptor per node in the
server) are skipped with a note. Not in make check."""
import os
import resource
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab  # noqa: E402
from storm import run_with_restart, summary  # noqa: E402

PER_PROC = 15000  # nodes per loadgen process (each needs one descriptor per node)


def run(n, churn):
    with Lab(f"load{n}") as h:
        h.server_verbose = False  # a debug line per message would be part of the measurement
        srv = h.start_server()
        sizes = ["--network-size", "2", "--network-size", "4", "--network-size", "8", "--network-size", "16"]
        if n >= 5000:
            sizes += ["--network-size", "1000x1", "--network-size", "256x2"]
        procs = max(2, -(-n // PER_PROC))
        return run_with_restart(h, [os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url,
                                    "--nodes", str(n), *sizes, "--churn", str(churn), "--seconds", "20",
                                    "--procs", str(procs), "--server-pid", str(srv.proc.pid), "--json"])


def ms(a, b):
    return "-" if a < 0 else f"{a:.0f} / {b:.0f}"


def main():
    sizes = [int(x) for x in os.environ.get("SHOAL_LOAD_NODES", "100 2000 10000 19000").split()]
    churn = int(os.environ.get("SHOAL_LOAD_CHURN", "100"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"{'nodes':>7} {'connected':>9} {'connect s':>9} {'join p50/p99 ms':>16} "
          f"{'presence p50/p99 ms':>19} {'big-net p50/p99 ms':>19} {'RSS MB':>7} {'kB/node':>7} "
          f"{'CPU s':>6} {'reconnect all s':>15}")
    for n in sizes:
        if hard != resource.RLIM_INFINITY and n + 200 > hard:
            print(f"{n:>7} skipped: the fd hard limit is {hard} (one descriptor per node in the server)")
            continue
        r = run(n, churn)
        print(f"{n:>7} {r['nodes_connected']:>9} {r['connect_all_s']:>9.1f} "
              f"{ms(r['join_visible_p50_ms'], r['join_visible_p99_ms']):>16} "
              f"{ms(r['presence_p50_ms'], r['presence_p99_ms']):>19} "
              f"{ms(r['presence_big_p50_ms'], r['presence_big_p99_ms']):>19} "
              f"{r['mediator_rss_kb'] / 1024:>7.1f} {r['kb_per_node']:>7.1f} {r['mediator_cpu_s']:>6.1f} "
              f"{r['reconnect_all_s']:>15.2f}", flush=True)
        print(f"{'':>7} {summary(r)}", flush=True)
    print(f"(churn {churn}/s for 20 s; big-net: presence in the networks of 256 and 1,000 alone; "
          "kB/node: RSS growth over the idle server per connected node; CPU: the mediator's, before the restart)")


if __name__ == "__main__":
    main()
