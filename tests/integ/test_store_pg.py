"""
The PostgreSQL store (issue 13), against a real PostgreSQL (tests/integ/pgserver.py: initdb and
pg_ctl in a temporary directory, Unix socket only):
- the store and mediator unit tests (tests/unit/test_store, tests/unit/test_mediator) run again
  with SHOAL_TEST_STORE naming the database, so both backends pass the same tests;
- three real mediator scenarios run with `shoal-server --store postgresql://...`: networks
  (create, join, presence, evict: test_networks.py) and chat delivery with its mailbox across a
  mediator restart (test_chat.py), eviction cutting live traffic (test_evict.py), each on a
  fresh database;
- PostgreSQL restarts under a running mediator (every connection cut): the next request
  succeeds (the store reconnects and runs it again), and the LISTEN connection comes back.
Skipped only when PostgreSQL is not installed (scripts/deps.sh installs it).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Lab, wait_until  # noqa: E402
import pgserver  # noqa: E402


UNITS = ["tests/unit/test_store", "tests/unit/test_mediator"]
SCENARIOS = ["test_networks.py", "test_chat.py", "test_evict.py"]


def run_one(argv, url):
    env = dict(os.environ, SHOAL_TEST_STORE=url)
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    tail = [l for l in r.stdout.splitlines() if "passed" in l]
    print(f"# {os.path.basename(argv[-1])} on postgresql: exit {r.returncode} {tail[-1] if tail else ''}")
    if r.returncode != 0:
        print(r.stdout[-6000:])
    return r.returncode == 0


def pg_restart_scenario(pg, url):
    os.environ["SHOAL_TEST_STORE"] = url
    try:
        with Lab("pgrestart") as lab:
            lab.start_server()
            a = lab.start_daemon("alice")
            a.cli("create", "before")
            pg.restart()
            a.cli("create", "after")     # the first statement after the cut: reconnect, run again
            assert a.network("after") and a.network("before")
            log = os.path.join(lab.dir, "server.log")
            wait_until(lambda: "event=cluster_listen_back" in open(log).read(), 10,
                       what="the LISTEN connection back")
            assert "event=store_reconnect" in open(log).read()
        print("# postgresql restart under a running mediator: next request ok, LISTEN back")
        return True
    except Exception:
        import traceback
        traceback.print_exc()
        return False
    finally:
        del os.environ["SHOAL_TEST_STORE"]


def main():
    pgserver.skip_unless_installed()
    ok = True
    with pgserver.PgServer(port=5440) as pg:
        for u in UNITS:
            ok &= run_one([os.path.join(BUILD, u)], pg.url)
        here = os.path.dirname(os.path.abspath(__file__))
        for i, t in enumerate(SCENARIOS):
            db = f"scenario{i}"
            pg.psql(f"CREATE DATABASE {db}")
            ok &= run_one([sys.executable, os.path.join(here, t)], pg.url.replace("/shoal?", f"/{db}?", 1))
        pg.psql("CREATE DATABASE restart")
        ok &= pg_restart_scenario(pg, pg.url.replace("/shoal?", "/restart?", 1))
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
