"""
A slow write to PostgreSQL no longer stalls the mediator's other sessions (issue 13): the
writes nobody waits for (last_seen, presence rows, cluster events) go through
server/pgasync.c, off the mediator's loop. In a private network namespace, a real PostgreSQL
(pgserver.py), one `shoal-server --store postgresql://...`, three daemons:
- alice, carol and bob in network lan; bob stops;
- a psql session locks tables nodes and presence (EXCLUSIVE: reads pass, writes wait) and
  holds the lock;
- bob starts again: his connection's writes (last_seen, his presence row) wait on the lock
  (seen in pg_locks: a mediator backend waiting);
- while they wait, a chat from alice reaches carol. With the writes on the loop (before
  pgasync) the whole mediator waits for the lock, and the chat arrives only after it is
  released: this test times out;
- the lock released, the queued writes land: bob is online for alice.
Prints the chat's delivery time while the write is blocked beside the same measure with no
lock, in the same run (numbers, not assertions). Skipped only when PostgreSQL is missing.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lanproxy_util import isolate  # noqa: E402
from harness import Lab, run, wait_until  # noqa: E402
from test_mediator_cluster import chat_reaches, online, start_instance, daemon_on  # noqa: E402
import pgserver  # noqa: E402

WAITING = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
           "WHERE NOT l.granted AND a.application_name = ''")


def chat_ms(alice, carol, text):
    return chat_reaches(alice, carol, text, f"chat {text!r} reaches carol")


def main():
    isolate()
    pgserver.skip_unless_installed()
    with pgserver.PgServer(port=5447) as pg, Lab("pgslow") as lab:
        srv = start_instance(lab, "med", pg.url)
        alice = daemon_on(lab, srv, "alice")
        carol = daemon_on(lab, srv, "carol")
        bob = daemon_on(lab, srv, "bob")
        alice.cli("create", "lan")
        carol.cli("join", "lan")
        bob.cli("join", "lan")
        wait_until(lambda: online(alice, "bob") and online(alice, "carol"), 5, what="all online")
        bob.proc.send_signal(signal.SIGTERM)
        bob.proc.wait(10)
        wait_until(lambda: online(alice, "bob") is False, 5, what="bob offline")

        lock = pg.session()
        try:
            ref = [chat_ms(alice, carol, f"reference {i}") for i in range(3)]
            lock.stdin.write("BEGIN; LOCK TABLE nodes, presence IN EXCLUSIVE MODE; SELECT 'locked';\n")
            lock.stdin.flush()
            assert lock.stdout.readline().strip() == "locked", "psql holds the lock"
            # bob connects: the mediator's writes for him wait on the lock
            lab.server = srv
            bob = lab.start_daemon("bob", wait_connected=False)
            wait_until(lambda: int(pg.psql(WAITING).strip()) > 0, 10,
                       what="a mediator write waiting on the lock")
            blocked = [chat_ms(alice, carol, f"while a write waits {i}") for i in range(3)]
            still = int(pg.psql(WAITING).strip())
            assert still > 0, "the write was still waiting while the chats went through"
            print(f"# chat alice -> carol: {min(ref):.0f}-{max(ref):.0f} ms with no lock, "
                  f"{min(blocked):.0f}-{max(blocked):.0f} ms while bob's writes wait on a lock "
                  f"({still} waiting)")
        finally:
            lock.stdin.write("COMMIT;\n")
            lock.stdin.close()
            lock.wait(10)
        t0 = time.monotonic()
        wait_until(lambda: online(alice, "bob"), 10, what="bob online once the lock is gone")
        print(f"# lock released: bob online for alice after {(time.monotonic() - t0) * 1000:.0f} ms")
        assert int(pg.psql(WAITING).strip()) == 0


if __name__ == "__main__":
    run(main)
