"""
Failover between mediator instances that share one PostgreSQL (issue 13, "past one machine"),
in a private network namespace with a real PostgreSQL (pgserver.py) and two real
`shoal-server --store postgresql://...` instances sharing one key. Both daemons are given both
instances' addresses (shoal://A,B/KEY) and end up on different instances (a split pair: bob is
restarted until his random start picks the other instance than alice's).
- a TCP echo conversation runs from alice to bob over their P2P session (`shoal forward`);
- alice's instance is killed with SIGKILL: alice moves to the surviving instance (the time from
  the kill to `shoal status` naming it is printed), the conversation goes on on the same TCP
  connection (no error, the longest gap between two echoes printed; the socket's timeout bounds
  it), and both daemons see each other online;
- the survivor then reaps the dead instance (its `instances` row goes): alice's presence row,
  rewritten by the survivor when she arrived, is not reaped with it — both still online.
Skipped only when PostgreSQL is not installed.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lanproxy_util import isolate  # noqa: E402
from harness import Lab, wait_until, free_port  # noqa: E402
from test_failover import EchoService, Conversation  # noqa: E402
from test_mediator_cluster import start_instance  # noqa: E402
import pgserver  # noqa: E402

SKIP = 77


def online(d, nick):
    return (d.member("lan", nick) or {}).get("online")


def mediator_of(d):
    return d.status().get("mediator")


def main():
    isolate()
    if pgserver.pg_bindir() is None:
        print("SKIP: PostgreSQL not installed (Debian package `postgresql`; scripts/deps.sh installs it)")
        sys.exit(SKIP)
    echo = EchoService()
    with pgserver.PgServer(port=5443) as pg, Lab("clusterfo") as lab:
        srv = {"A": start_instance(lab, "medA", pg.url)}
        srv["B"] = start_instance(lab, "medB", pg.url, key_from=srv["A"])
        key = srv["A"].url.rsplit("/", 1)[1]
        addr = {n: f"127.0.0.1:{s.port}" for n, s in srv.items()}
        url = f"shoal://{addr['A']},{addr['B']}/{key}"
        alice = lab.start_daemon("alice", server_url=url)
        bob = lab.start_daemon("bob", server_url=url)
        tries = 1
        # the daemons start at a random address: restart bob until the pair is split
        while mediator_of(bob) == mediator_of(alice):
            assert tries < 20, "bob always starts on alice's instance"
            bob.proc.send_signal(signal.SIGTERM)
            bob.proc.wait(10)
            bob = lab.start_daemon("bob", server_url=url)
            tries += 1
        name_of = {a: n for n, a in addr.items()}
        a_inst, b_inst = name_of[mediator_of(alice)], name_of[mediator_of(bob)]
        print(f"# split pair: alice on instance {a_inst}, bob on {b_inst} ({tries} start(s) of bob)")

        alice.cli("create", "lan", "--password", "pw")
        bob.cli("join", "lan", "--password", "pw")
        wait_until(lambda: online(alice, "bob"), 5, what="alice sees bob online")
        wait_until(lambda: online(bob, "alice"), 5, what="bob sees alice online")
        wait_until(lambda: alice.member("lan", "bob")["path"] == "direct", 15, what="direct path alice->bob")

        bob.cli("expose", echo.port)
        lport = free_port()
        alice.cli("forward", lport, f"bob:{echo.port}")
        conv = Conversation(lport)
        conv.sock.settimeout(10)    # the bound on the gap: a longer silence fails the test
        conv.start()
        wait_until(lambda: conv.rounds >= 10 or conv.error, 10, what="conversation going")
        assert conv.error is None, conv.error
        before_gap = conv.max_gap

        t_kill = time.monotonic()
        srv[a_inst].proc.kill()         # SIGKILL alice's instance; bob's stays
        srv[a_inst].proc.wait()
        wait_until(lambda: mediator_of(alice) == addr[b_inst], 15, what="alice on the surviving instance")
        moved_s = time.monotonic() - t_kill
        assert mediator_of(bob) == addr[b_inst], "bob left the surviving instance"
        log = open(os.path.join(alice.state, "shoald.log")).read()
        assert f"event=mediator_connected server={addr[b_inst]} " in log, "no connected line for the survivor"
        switched_at = conv.rounds
        wait_until(lambda: conv.rounds >= switched_at + 20 or conv.error, 15, what="conversation after the move")
        assert conv.error is None, f"P2P conversation broke at the move: {conv.error}"
        wait_until(lambda: online(alice, "bob"), 5, what="alice sees bob online after the move")
        wait_until(lambda: online(bob, "alice"), 5, what="bob sees alice online after the move")
        t_online = time.monotonic() - t_kill

        # the survivor reaps the dead instance: alice's row now names the survivor, and stays
        wait_until(lambda: pg.psql("SELECT count(*) FROM instances").strip() == "1", 30,
                   what="the dead instance reaped")
        # both rows name the survivor (a third instance would otherwise see alice go offline)
        rows = pg.psql("SELECT count(*) FILTER (WHERE instance = (SELECT id FROM instances)), "
                       "count(*) FROM presence").strip()
        assert rows == "2|2", f"presence rows (on the survivor|all): {rows}, want 2|2"
        assert online(alice, "bob") and online(bob, "alice"), "a node went offline with the reaped instance"
        assert alice.cli("ping", "bob", "-c", "1")
        wait_until(lambda: conv.rounds >= switched_at + 40 or conv.error, 15, what="conversation after the reap")
        conv.stop.set()
        conv.join(10)
        assert conv.error is None, conv.error
        print(f"# instance {a_inst} killed: alice on {b_inst} after {moved_s:.2f} s, both online for each "
              f"other after {t_online:.2f} s; {conv.rounds} echo rounds on one TCP connection, longest "
              f"gap {conv.max_gap * 1000:.0f} ms (before the kill {before_gap * 1000:.0f} ms)")
        # a clean stop of the survivor (under SHOAL_SERVER_WRAP=valgrind... its errors and leaks
        # make the exit status non-zero)
        srv[b_inst].proc.send_signal(signal.SIGTERM)
        rc = srv[b_inst].proc.wait(30)
        assert rc == 0, f"surviving instance exited with {rc}"


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception:
        import traceback
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
    print("1 passed, 0 failed")
