#!/usr/bin/env python3
"""make loadtest-cluster: one box past one process. A single shoal-server holds at most as many
nodes as its descriptor limit allows (one per connection; 20,000 hard on the machines this was
measured on, and no CAP_SYS_RESOURCE to raise it), so SHOAL_LOAD_NODES nodes (default 100000)
are served by SHOAL_LOAD_INSTANCES instances (default 6) on one PostgreSQL (pgserver.py, Unix
socket), all on this machine. shoal-loadgen dials node i to instance i mod n, so every network
spans the instances and presence crosses them. Networks and churn as in loadtest.py. After the
measured phase every instance is killed (SIGKILL) and started again on its port and state:
"reconnect all s" is the time until every node is ONLINE again. Prints one table row; RSS is
the instances' sum, PostgreSQL's is printed apart. Not in make check."""
import os
import shutil
import sys
import json

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, Lab, binary, wait_until  # noqa: E402
import pgserver  # noqa: E402
from storm import run_with_restart, summary  # noqa: E402

PER_PROC = 15000   # nodes per loadgen process (one descriptor each)
BASE_PORT = 7300   # instance i listens on BASE_PORT + 10 i (TCP, and UDP up to + 3)


def spawn(lab, i, pg_url, base_port=BASE_PORT):
    """Starts instance i; wait_ready returns its URL once it listens."""
    state = os.path.join(lab.dir, f"med{i}")
    os.makedirs(state, exist_ok=True)
    if i > 0:  # one mediator: the instances share the server key
        shutil.copy(os.path.join(lab.dir, "med0", "server.key"), os.path.join(state, "server.key"))
    url_file = os.path.join(state, "url")
    if os.path.exists(url_file):
        os.unlink(url_file)
    return lab.spawn([binary("shoal-server"), "--listen", f"127.0.0.1:{base_port + 10 * i}", "--state", state,
                      "--pwhash-fast", "--store", pg_url], os.path.join(lab.dir, f"med{i}.log"))


def wait_ready(lab, i):
    url_file = os.path.join(lab.dir, f"med{i}", "url")
    wait_until(lambda: os.path.exists(url_file) and open(url_file).read().strip(), 60, what=f"instance {i}")
    return open(url_file).read().strip()


def pg_rss_kb(pg):
    """The PostgreSQL server's processes' RSS, summed."""
    total = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"postgres"):
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_cluster(lab, pg, n, k, sizes, churn, seconds, timeout, base_port=BASE_PORT):
    """n nodes over k instances on pg, then every instance killed and started again: the
    loadgen's JSON and {"pg_kb": PostgreSQL's RSS before the kill}."""
    procs = [None] * k
    urls = []
    procs[0] = spawn(lab, 0, pg.url, base_port)
    urls.append(wait_ready(lab, 0))  # its server.key is the others'
    for i in range(1, k):
        procs[i] = spawn(lab, i, pg.url, base_port)
        urls.append(wait_ready(lab, i))
    key = urls[0].rsplit("/", 1)[1]
    conn = "shoal://" + ",".join(u.split("://", 1)[1].split("/", 1)[0] for u in urls) + "/" + key
    argv = [os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", conn, "--nodes", str(n),
            *sizes, "--churn", str(churn), "--seconds", str(seconds),
            "--procs", str(max(2, -(-n // PER_PROC))), "--json"]
    for p in procs:
        argv += ["--server-pid", str(p.pid)]
    state = {}

    def restart():
        state["pg_kb"] = pg_rss_kb(pg)
        if "pg_stat_statements" in os.environ.get("SHOAL_PG_OPTS", ""):
            pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            print(pg.psql("SELECT calls, round(total_exec_time) AS ms, "
                          "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) "
                          "FROM pg_stat_statements ORDER BY calls DESC LIMIT 15"), file=sys.stderr)
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        # all at once, as after an outage: each instance comes back on its own
        for i in range(k):
            procs[i] = spawn(lab, i, pg.url, base_port)
        for i in range(k):
            wait_ready(lab, i)
        return [p.pid for p in procs]

    r = run_with_restart(lab, argv, timeout=timeout, restart=restart,
                         stderr=open(os.path.join(lab.dir, "loadgen.log"), "ab"))
    return r, state


def main():
    n = int(os.environ.get("SHOAL_LOAD_NODES", "100000"))
    k = int(os.environ.get("SHOAL_LOAD_INSTANCES", "6"))
    churn = int(os.environ.get("SHOAL_LOAD_CHURN", "100"))
    if pgserver.pg_bindir() is None:
        print("skipped: PostgreSQL not installed (Debian package `postgresql`)")
        return
    with pgserver.PgServer(port=5446) as pg, Lab(f"cload{n}") as lab:
        sizes = ["--network-size", "2", "--network-size", "4", "--network-size", "8", "--network-size", "16",
                 "--network-size", "1000x1", "--network-size", "256x2"]
        r, state = run_cluster(lab, pg, n, k, sizes, churn, 20, 900)
        pg_kb = state["pg_kb"]
        r["instances"] = k
        r["postgres_rss_kb"] = pg_kb
        print(json.dumps(r))
        print(f"{'nodes':>7} {'inst':>4} {'connected':>9} {'connect s':>9} {'join p50/p99 ms':>16} "
              f"{'presence p50/p99 ms':>19} {'big-net p50/p99 ms':>19} {'RSS MB':>7} {'kB/node':>7} "
              f"{'PG MB':>6} {'reconnect all s':>15}")
        print(f"{n:>7} {k:>4} {r['nodes_connected']:>9} {r['connect_all_s']:>9.1f} "
              f"{r['join_visible_p50_ms']:.0f} / {r['join_visible_p99_ms']:.0f}".rjust(0) +
              f" {r['presence_p50_ms']:>9.0f} / {r['presence_p99_ms']:<7.0f}"
              f" {r['presence_big_p50_ms']:>9.0f} / {r['presence_big_p99_ms']:<7.0f}"
              f" {r['mediator_rss_kb'] / 1024:>7.1f} {r['kb_per_node']:>7.1f} {pg_kb / 1024:>6.1f}"
              f" {r.get('reconnect_all_s', -1):>15.2f}")
        print(f"{'':>7} {summary(r)}")


if __name__ == "__main__":
    main()
