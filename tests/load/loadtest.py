#!/usr/bin/env python3
"""make loadtest: shoal-loadgen against a freshly started shoal-server for each size in
SHOAL_LOAD_NODES (default "100 2000 10000 19000"; the 100-node row is the unloaded reference
measured in the same run) and prints one table. Networks: 2, 4, 8 and 16 members in turn,
plus two of 256 and one of 1,000 from 5,000 nodes up; presence churn SHOAL_LOAD_CHURN (default
100) changes a second for 20 s. Sizes above the fd hard limit (one descriptor per node in the
server) are skipped with a note. Not in make check."""
import json
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab, binary, wait_until  # noqa: E402

PER_PROC = 15000  # nodes per loadgen process (each needs one descriptor per node)


def run(n, churn):
    with Lab(f"load{n}") as h:
        state = os.path.join(h.dir, "server")
        os.makedirs(state)
        url_file = os.path.join(state, "url")
        # Not Lab.start_server: its -v would put a debug line per message into the measurement.
        srv = h.spawn([binary("shoal-server"), "--listen", "127.0.0.1:0", "--state", state,
                       "--pwhash-fast"], os.path.join(h.dir, "server.log"))
        wait_until(lambda: os.path.exists(url_file) and open(url_file).read().strip(), 10, what="server url")
        sizes = ["--network-size", "2", "--network-size", "4", "--network-size", "8", "--network-size", "16"]
        if n >= 5000:
            sizes += ["--network-size", "1000x1", "--network-size", "256x2"]
        procs = max(2, -(-n // PER_PROC))
        out = subprocess.run([os.path.join(BUILD, "tests", "load", "shoal-loadgen"),
                              "--server", open(url_file).read().strip(), "--nodes", str(n), *sizes,
                              "--churn", str(churn), "--seconds", "20", "--procs", str(procs),
                              "--server-pid", str(srv.pid), "--json"],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return json.loads(out.stdout)


def ms(a, b):
    return "-" if a < 0 else f"{a:.0f} / {b:.0f}"


def main():
    sizes = [int(x) for x in os.environ.get("SHOAL_LOAD_NODES", "100 2000 10000 19000").split()]
    churn = int(os.environ.get("SHOAL_LOAD_CHURN", "100"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"{'nodes':>7} {'connected':>9} {'connect s':>9} {'join p50/p99 ms':>16} "
          f"{'presence p50/p99 ms':>19} {'big-net p50/p99 ms':>19} {'RSS MB':>7} {'kB/node':>7} "
          f"{'CPU s':>6}")
    for n in sizes:
        if hard != resource.RLIM_INFINITY and n + 200 > hard:
            print(f"{n:>7} skipped: the fd hard limit is {hard} (one descriptor per node in the server)")
            continue
        r = run(n, churn)
        print(f"{n:>7} {r['nodes_connected']:>9} {r['connect_all_s']:>9.1f} "
              f"{ms(r['join_visible_p50_ms'], r['join_visible_p99_ms']):>16} "
              f"{ms(r['presence_p50_ms'], r['presence_p99_ms']):>19} "
              f"{ms(r['presence_big_p50_ms'], r['presence_big_p99_ms']):>19} "
              f"{r['mediator_rss_kb'] / 1024:>7.1f} {r['kb_per_node']:>7.1f} {r['mediator_cpu_s']:>6.1f}",
              flush=True)
    print(f"(churn {churn}/s for 20 s; big-net: presence in the networks of 256 and 1,000 alone; "
          "kB/node: RSS growth over the idle server per connected node; CPU: the mediator's, whole run)")


if __name__ == "__main__":
    main()
