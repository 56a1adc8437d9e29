"""
Two mediator instances on one PostgreSQL serve the same networks (issue 13, "past one
machine"), in a private network namespace, with a real PostgreSQL (pgserver.py), two real
`shoal-server --store postgresql://...` sharing one server key, and one daemon on each:
- alice (on instance A) creates a network, bob (on instance B) joins it: each sees the other
  online, with endpoints, and they ping each other over the virtual network on a direct path;
- a lock and a new password set on A hold for a join through B (B's copy of the network row);
- a nick change on B reaches alice on A; a network chat message from A reaches bob on B live;
- bob stops: alice sees him offline (presence row deleted, NOTIFY);
- bob back on B; PostgreSQL restarts: both instances LISTEN again and events flow (a nick
  change); instance B freezes (SIGSTOP) past the grace: its nodes go offline for A, and come
  back when B resumes (it finds itself reaped and writes them again); then instance B is
  killed with SIGKILL: its presence rows outlive it until
  A's heartbeat check finds B silent and deletes them, and alice sees bob offline (A logs
  one event for B's nodes); bob on a third instance C that stops cleanly: offline for alice
  at once (C's own event, no heartbeat wait).
Presence travels by LISTEN/NOTIFY only (server/cluster.c). Skipped only when PostgreSQL is not
installed.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import json
import re

sys.path.insert(0, os.path.dirname(__file__))
from lanproxy_util import isolate  # noqa: E402
from harness import Lab, Server, binary, run, wait_until  # noqa: E402
import pgserver  # noqa: E402



def start_instance(lab, name, pg_url, key_from=None):
    state = os.path.join(lab.dir, name)
    os.makedirs(state, exist_ok=True)
    if key_from:
        # one mediator, several instances: they share the server key (one connection string key)
        shutil.copy(os.path.join(key_from.state, "server.key"), os.path.join(state, "server.key"))
    # SHOAL_SERVER_WRAP: e.g. "valgrind -q --leak-check=full --error-exitcode=99" (manual runs)
    p = lab.spawn(os.environ.get("SHOAL_SERVER_WRAP", "").split() + [binary("shoal-server"), "--listen", "127.0.0.1:0", "--state", state, "--pwhash-fast",
                   "--store", pg_url, "-v"], os.path.join(lab.dir, f"{name}.log"))
    url_file = os.path.join(state, "url")
    wait_until(lambda: os.path.exists(url_file) and open(url_file).read().strip(), 60, what=f"{name} url")
    url = open(url_file).read().strip()
    port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    return Server(p, url, port, state)


def daemon_on(lab, srv, name):
    lab.server = srv
    return lab.start_daemon(name)


def chat_reaches(sender, receiver, text, what, before=None):
    """sender writes text to "lan"; it must reach receiver's `shoal chat --follow` within 10 s.
    before: run first, once the receiver follows (e.g. cut a connection). Returns the ms from
    the send to the arrival."""
    p = subprocess.Popen([binary("shoal"), "--control", receiver.ctl, "--json", "chat", "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    got = []
    threading.Thread(target=lambda: [got.append(json.loads(l)) for l in p.stdout], daemon=True).start()
    try:
        if before:
            before()
        t0 = time.monotonic()
        r = sender.cli("chat", "lan", text, check=False)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: any(m.get("text") == text for m in got), 10, what=what)
        return (time.monotonic() - t0) * 1000
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(5)


def online(d, nick):
    return (d.member("lan", nick) or {}).get("online")


def main():
    isolate()
    pgserver.skip_unless_installed()
    with pgserver.PgServer(port=5441) as pg, Lab("cluster") as lab:
        a_srv = start_instance(lab, "medA", pg.url)
        b_srv = start_instance(lab, "medB", pg.url, key_from=a_srv)
        assert a_srv.url.rsplit("/", 1)[1] == b_srv.url.rsplit("/", 1)[1], "instances must share the key"
        alice = daemon_on(lab, a_srv, "alice")
        bob = daemon_on(lab, b_srv, "bob")
        assert alice.address() != bob.address(), "one address space across instances"

        carol = daemon_on(lab, a_srv, "carol")   # the reference: a member on alice's instance
        alice.cli("create", "lan")
        t0 = time.monotonic()
        carol.cli("join", "lan")
        wait_until(lambda: online(alice, "carol"), 5, what="alice (A) sees carol (A) online")
        same = time.monotonic() - t0
        t0 = time.monotonic()
        bob.cli("join", "lan")
        wait_until(lambda: online(alice, "bob"), 5, what="alice (A) sees bob (B) online")
        across = time.monotonic() - t0
        # CLI round trips included (list is polled): a comparison, not a measure of NOTIFY alone
        print(f"# join -> visible to alice: same instance {same * 1000:.0f} ms, across instances "
              f"{across * 1000:.0f} ms")
        wait_until(lambda: online(bob, "alice"), 5, what="bob (B) sees alice (A) online")
        wait_until(lambda: alice.member("lan", "bob")["path"] == "direct", 15, what="direct path alice->bob")
        wait_until(lambda: bob.member("lan", "alice")["path"] == "direct", 15, what="direct path bob->alice")
        assert alice.cli("ping", "bob"), "alice pings bob"
        assert bob.cli("ping", "alice"), "bob pings alice"
        print("# presence across instances: both online, direct path, ping both ways")

        # A setting changed on A holds on B, whose copy of the network's row (server/netcache.c)
        # was read for bob's join: locked, dave cannot join through B; a new password, only it
        # lets him in. Bob (on B) seeing the change means B applied its event.
        dave = daemon_on(lab, b_srv, "dave")
        alice.cli("set-access", "lan", "lock")
        wait_until(lambda: (bob.network("lan") or {}).get("locked") is True, 5,
                   what="bob (B) sees the lock made on A")
        r = dave.cli("join", "lan", check=False)
        assert r.returncode != 0 and "lock" in r.stderr, f"join through B of a network locked on A: {r}"
        # A's events reach B in order: once bob sees the unlock, B has the password too
        alice.cli("set-pass", "lan", "n3w")
        alice.cli("set-access", "lan", "unlock")
        wait_until(lambda: (bob.network("lan") or {}).get("locked") is False, 5,
                   what="bob (B) sees the unlock")
        r = dave.cli("join", "lan", check=False)
        assert r.returncode != 0, f"join through B without the password set on A: {r}"
        dave.cli("join", "lan", "--password", "n3w")
        wait_until(lambda: online(alice, "dave"), 5, what="alice (A) sees dave (B) join with the new password")
        dave.proc.send_signal(signal.SIGTERM)           # B's node count below is bob's alone
        dave.proc.wait(10)
        wait_until(lambda: online(alice, "dave") is False, 5, what="dave offline")
        print("# a lock and a password set on A hold on B")

        # an online switch on B reaches A through the event alone (its value rides along)
        bob.cli("go-offline", "lan")
        wait_until(lambda: online(alice, "bob") is False, 5, what="alice (A) sees bob (B) go offline")
        wait_until(lambda: online(carol, "bob") is False, 5, what="carol (A) sees bob (B) go offline")
        bob.cli("go-online", "lan")
        wait_until(lambda: online(alice, "bob"), 5, what="alice (A) sees bob (B) go online")
        print("# go-offline / go-online on B seen on A")

        # nick, chat
        bob.cli("set-nick", "bobby")
        wait_until(lambda: alice.member("lan", "bobby"), 5, what="nick change from B reaches A")
        chat_reaches(alice, bob, "across instances", "chat from A reaches bob on B")

        # bob stops: offline on A
        t0 = time.monotonic()
        bob.proc.send_signal(signal.SIGTERM)
        bob.proc.wait(10)
        wait_until(lambda: online(alice, "bobby") is False, 5, what="alice sees bob offline")
        print(f"# bob stopped -> offline for alice (A): {(time.monotonic() - t0) * 1000:.0f} ms")

        # bob back on B; then B dies without a word: A reaps its presence
        bob = daemon_on(lab, b_srv, "bob")       # same key, still a member; --nick bob again
        wait_until(lambda: online(alice, "bob"), 5, what="bob back online")
        # PostgreSQL restarts (every connection cut): both instances listen again, events flow
        pg.restart()
        for name in ("medA", "medB"):
            log = os.path.join(lab.dir, f"{name}.log")
            wait_until(lambda: "event=cluster_listen_back" in open(log).read(), 10,
                       what=f"{name} listening again")
        bob.cli("set-nick", "bob-again")
        wait_until(lambda: online(alice, "bob-again"), 5, what="an event after the restart")
        print("# postgresql restarted: both instances listen again, events flow")

        # Both instances' LISTEN connections cut: a chat sent while B cannot hear reaches bob
        # once B listens again (its next heartbeat), from table events
        def cut_listen():
            cut = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE query = 'LISTEN shoal'").strip()
            assert cut == "2", f"LISTEN connections cut: {cut}"
        chat_reaches(alice, bob, "while B was deaf", "chat sent while B's LISTEN was down reaches bob",
                     before=cut_listen)
        replayed = re.findall(r"event=cluster_events_replayed count=(\d+)",
                              open(os.path.join(lab.dir, "medB.log")).read())
        print(f"# LISTEN cut on both instances: the chat reached bob; B replayed {replayed[-1:]} event(s)")

        # B stands still past the 10 s grace (SIGSTOP): A takes it for dead and bob goes offline;
        # B resumes, finds itself reaped and writes its nodes again: bob is back for alice
        b_srv.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: online(alice, "bob-again") is False, 20, what="B taken for dead")
        finally:
            b_srv.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: online(alice, "bob-again"), 10, what="B's nodes back after B resumed")
        print("# instance B frozen past the grace, then resumed: its nodes offline, then back")

        t0 = time.monotonic()
        b_srv.proc.kill()
        b_srv.proc.wait()
        wait_until(lambda: online(alice, "bob-again") is False, 20, what="B's nodes offline after B died")
        print(f"# instance B killed: its nodes offline for A after {time.monotonic() - t0:.1f} s "
              f"(heartbeat check; B counts as dead after 10 s of silence)")
        a_log = os.path.join(lab.dir, "medA.log")
        assert re.search(r"event=cluster_instance_down instance=[0-9a-f]{16} nodes=1\b",
                         open(a_log).read()), "A's log: B's one node offline by one event"

        # a clean stop: instance C's nodes go offline for A at once (one `d` event), well
        # before a heartbeat check could notice
        bob.proc.send_signal(signal.SIGTERM)
        bob.proc.wait(10)
        c_srv = start_instance(lab, "medC", pg.url, key_from=a_srv)
        bob = daemon_on(lab, c_srv, "bob")
        wait_until(lambda: online(alice, "bob"), 10, what="bob online on instance C")
        t0 = time.monotonic()
        c_srv.proc.send_signal(signal.SIGTERM)
        assert c_srv.proc.wait(30) == 0, "instance C exit status"
        wait_until(lambda: online(alice, "bob") is False, 5, what="C's nodes offline after its clean stop")
        print(f"# instance C stopped cleanly: its nodes offline for A after {time.monotonic() - t0:.1f} s")

        # every instance killed (a whole cluster's restart): an instance started once the dead
        # ones' heartbeats are past the grace reaps them before it reads the presence rows, so
        # it takes on none of their nodes (at 100,000 it read them all, then forgot them)
        a_srv.proc.kill()
        a_srv.proc.wait()
        wait_until(lambda: pg.psql("SELECT count(*) FROM instances WHERE heartbeat < "
                                   "extract(epoch from now())::bigint - 10").strip() == "1", 20,
                   what="A's heartbeat past the grace")
        assert int(pg.psql("SELECT count(*) FROM presence").strip()) >= 2, "A's rows (alice, carol) left"
        d_srv = start_instance(lab, "medD", pg.url, key_from=a_srv)
        d_log = os.path.join(lab.dir, "medD.log")
        wait_until(lambda: "event=cluster_joined" in open(d_log).read(), 10, what="D joined")
        assert re.search(r"event=cluster_joined instance=[0-9a-f]{16} remote_nodes=0\b",
                         open(d_log).read()), "D read none of the dead A's presence rows"
        assert pg.psql("SELECT count(*) FROM presence").strip() == "0", "A's rows reaped"
        print("# every instance killed: the next one reaps them before reading presence")
        d_srv.proc.send_signal(signal.SIGTERM)
        d_srv.proc.wait(30)


if __name__ == "__main__":
    run(main)
