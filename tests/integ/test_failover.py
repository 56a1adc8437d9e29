"""
Mediator failover (issue 13): two shoal-server instances with the same key and the same state
(the second one's store is an online copy of the first's), daemons given both addresses
(shoal://A,B/KEY). The instance the daemons are on dies with SIGKILL: they reconnect to the
other one by themselves, `shoal status --json` says which instance they are on, the log says
`event=mediator_connected server=HOST:PORT`, and a TCP conversation between the two daemons
over their P2P session keeps going through the switch (same connection, no error). A
standalone shoal-relay given the same list registers again with the surviving instance.

The instances share no live state (the PostgreSQL store that would let them is not needed
here): the copy is taken after the network was set up, and nothing changes afterwards.
"""
import os
import shutil
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, binary, run, wait_until, free_port  # noqa: E402
from services import EchoService  # noqa: E402
from test_relay_pool import make_identity  # noqa: E402


class Conversation(threading.Thread):
    """One TCP connection through `shoal forward`: a line every 20 ms, each echo checked."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.rounds = 0
        self.error = None
        self.max_gap = 0.0
        self.stop = threading.Event()

    def run(self):
        f = self.sock.makefile("rb")
        last = time.monotonic()
        try:
            while not self.stop.is_set():
                msg = f"round {self.rounds}\n".encode()
                self.sock.sendall(msg)
                if f.readline() != msg:
                    raise AssertionError(f"echo of round {self.rounds} wrong or missing")
                self.rounds += 1
                now = time.monotonic()
                self.max_gap = max(self.max_gap, now - last)
                last = now
                time.sleep(0.02)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.sock.close()


def copy_server_state(src, dst):
    """The key and everything else as files; the SQLite store with the online backup API, as
    the source instance is running."""
    os.makedirs(dst, mode=0o700)
    for name in os.listdir(src):
        if name.startswith("mediator.db") or name in ("url",) or name.endswith(".log"):
            continue
        p = os.path.join(src, name)
        if os.path.isfile(p):
            shutil.copy2(p, os.path.join(dst, name))
    with sqlite3.connect(os.path.join(src, "mediator.db")) as s, \
            sqlite3.connect(os.path.join(dst, "mediator.db")) as d:
        s.backup(d)


def main():
    echo = EchoService()
    with Lab("failover") as lab:
        relay_state = os.path.join(lab.dir, "relay")
        relay_key = make_identity(relay_state)
        allow = ["--relay-allow", relay_key, "--relay-port", "off"]
        a_srv = lab.start_server(extra=allow)
        pa, pb = a_srv.port, free_port()
        key = a_srv.url.rsplit("/", 1)[1]
        url = f"shoal://127.0.0.1:{pa},127.0.0.1:{pb}/{key}"
        # B is not running yet: a daemon whose random start picks it moves on to A.
        alice = lab.start_daemon("alice", server_url=url)
        bob = lab.start_daemon("bob", server_url=url)
        assert alice.status()["server_url"] == url
        assert alice.status()["mediator"] == f"127.0.0.1:{pa}"
        relay_log = os.path.join(relay_state, "relay.log")
        lab.spawn([binary("shoal-relay"), "--listen", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                   "--state", relay_state, "--server", url, "--name", "r1", "--tcp-port", "off", "-v"], relay_log)
        wait_until(lambda: f"name=r1 server=127.0.0.1:{pa}" in open(relay_log).read(), 10, what="relay on instance A")
        alice.cli("create", "lan", "--password", "pw")
        bob.cli("join", "lan", "--password", "pw")
        wait_until(lambda: (alice.member("lan", "bob") or {}).get("online"), 5, what="bob online")

        # The second instance: same key, a copy of the store that knows the network.
        b_state = os.path.join(lab.dir, "server-b")
        copy_server_state(a_srv.state, b_state)
        b_proc = lab.spawn([binary("shoal-server"), "--listen", f"127.0.0.1:{pb}", "--state", b_state,
                            "--pwhash-fast", "-v"] + allow, os.path.join(lab.dir, "server-b.log"))
        b_url = os.path.join(b_state, "url")
        wait_until(lambda: os.path.exists(b_url) and open(b_url).read().strip(), 10, what="instance B up")
        assert open(b_url).read().strip().endswith(key), "instance B has another key"

        bob.cli("expose", echo.port)
        lport = free_port()
        alice.cli("forward", lport, f"bob:{echo.port}")
        conv = Conversation(lport)
        conv.start()
        wait_until(lambda: conv.rounds >= 10 or conv.error, 10, what="conversation going")
        assert conv.error is None, conv.error

        t_kill = time.monotonic()
        lab.kill_server()  # SIGKILL instance A, which both daemons are on
        for d in (alice, bob):
            wait_until(lambda d=d: d.status().get("mediator") == f"127.0.0.1:{pb}", 15,
                       what=f"{d.name} on instance B")
        moved_s = time.monotonic() - t_kill
        log = open(os.path.join(alice.state, "shoald.log")).read()
        assert f"event=mediator_connected server=127.0.0.1:{pb} " in log, "no connected line for B"
        switched_at = conv.rounds
        wait_until(lambda: conv.rounds >= switched_at + 20 or conv.error, 10, what="conversation after the switch")
        assert conv.error is None, f"P2P conversation broke at the switch: {conv.error}"
        assert alice.cli("ping", "bob", "-c", "1")
        # B knows the network: the members see each other online through it.
        wait_until(lambda: (alice.member("lan", "bob") or {}).get("online"), 5, what="bob online via B")
        wait_until(lambda: (bob.member("lan", "alice") or {}).get("online"), 5, what="alice online via B")
        wait_until(lambda: f"name=r1 server=127.0.0.1:{pb}" in open(relay_log).read(), 15, what="relay on instance B")
        conv.stop.set()
        conv.join(10)
        assert conv.error is None, conv.error
        print(f"failover: both daemons on instance B {moved_s:.2f} s after the kill; {conv.rounds} echo rounds "
              f"on one connection, longest gap {conv.max_gap * 1000:.0f} ms")
        b_proc.kill()


if __name__ == "__main__":
    run(main)
