"""
Chat through the mediator (issue 11), real mediator and daemons, the real CLI:
- a network message reaches the other member's `shoal chat --follow --json` with the sender's
  nick and a timestamp;
- a private message arrives opened at the peer, and neither the mediator's database nor its
  WAL ever holds its text (the mediator stores crypto_box ciphertext only);
- a member who is offline gets what was sent meanwhile when it returns, in order, exactly once,
  across a mediator restart in between (the mailbox is in the mediator's database; the daemon
  keeps the last number it processed);
- history per network and per pair, oldest first;
- someone who is not a member cannot post to the network: the mediator answers CHAT_REFUSED
  and the CLI says why at once (exit 1), not after its 10 s wait;
- over the per-sender rate the mediator refuses with that reason too.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, binary, run, wait_until  # noqa: E402  (run: the entry point)


class Follow:
    """`shoal chat --follow --json` on one daemon, its lines collected as they arrive."""

    def __init__(self, d):
        self.p = subprocess.Popen([binary("shoal"), "--control", d.ctl, "--json", "chat", "--follow"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.msgs = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.msgs.append(json.loads(line))
                self.cond.notify_all()

    def texts(self):
        with self.cond:
            return [m["text"] for m in self.msgs]

    def wait_text(self, text, timeout=15):
        wait_until(lambda: text in self.texts(), timeout, what=f"chat message {text!r}")
        return next(m for m in self.msgs if m["text"] == text)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(5)


def chat(d, *args, check=True):
    r = d.cli("chat", *args, check=False, json_out=True)
    if check:
        assert r.returncode == 0, f"shoal chat {args}: exit {r.returncode}: {r.stderr}"
    return r


def db_bytes(lab):
    url = os.environ.get("SHOAL_TEST_STORE")
    if url:
        # The PostgreSQL store (test_store_pg.py): the log's bodies, printable bytes as they are.
        import pgserver
        psql = os.path.join(pgserver.pg_bindir(), "psql")
        return subprocess.run([psql, "-X", "-A", "-t", "-d", url, "-c",
                               "SELECT encode(body, 'escape') FROM chat_log"],
                              check=True, capture_output=True).stdout
    data = b""
    for f in glob.glob(os.path.join(lab.server.state, "mediator.db*")):
        with open(f, "rb") as fh:
            data += fh.read()
    return data


def main():
    with Lab("chat") as lab:
        lab.start_server()
        alice = lab.start_daemon("alice")
        bob = lab.start_daemon("bob")
        carol = lab.start_daemon("carol")
        alice.cli("create", "lan")
        bob.cli("join", "lan")
        wait_until(lambda: (alice.member("lan", "bob") or {}).get("online"), 10, what="bob in lan")
        # (not chat, but this pair is at hand: list --json carries both sides' NAT classes)
        wait_until(lambda: (alice.member("lan", "bob") or {}).get("nat"), 10, what="the pair's NATs")
        nat = alice.member("lan", "bob")["nat"]
        assert re.fullmatch(r"[a-z]+/[a-z]+", nat["mine"]) and re.fullmatch(r"[a-z]+/[a-z]+", nat["peer"]) \
            and nat["peer_filtering"], nat

        # a network message, live
        fb = Follow(bob)
        chat(alice, "lan", "hello everyone")
        m = fb.wait_text("hello everyone")
        assert m["kind"] == "network" and m["network"] == "lan" and m["from"] == "alice", m
        assert m["ts_ms"] > 1.7e12 and not m["mine"], m
        print("network message: delivered live, with nick and time")

        # a private message: opened at the peer, never in the mediator's files as text
        secret = "the key is under the mat " + os.urandom(6).hex()
        chat(alice, "--to", "bob", secret)
        m = fb.wait_text(secret)
        assert m["kind"] == "private" and m["peer_nick"] == "alice" and m["from"] == "alice", m
        assert m["peer"] == alice.node_id(), m
        assert secret.encode() not in db_bytes(lab), "private text stored in clear"
        assert b"hello everyone" in db_bytes(lab), "network messages are kept for history"
        print("private message: opened by bob; the mediator's database holds no plaintext")

        # not a member: refused
        r = chat(carol, "lan", "let me in", check=False)
        assert r.returncode == 1 and "not sent: not a member of that network" in r.stderr, \
            (r.returncode, r.stderr)
        print("not a member: refused by the mediator with its reason:", r.stderr.strip())

        # offline delivery: bob away, the mediator restarted in between
        fb.stop()
        bob.proc.send_signal(signal.SIGTERM)
        bob.proc.wait(10)
        wait_until(lambda: not (alice.member("lan", "bob") or {}).get("online"), 10, what="bob offline")
        chat(alice, "lan", "while you were out 1")
        chat(alice, "--to", "bob", "while you were out 2")
        lab.kill_server()
        lab.start_server()
        wait_until(lambda: alice.status().get("server") == "connected", 15, what="alice reconnected")
        chat(alice, "lan", "while you were out 3")
        bob = lab.start_daemon("bob")
        fb = Follow(bob)
        want = ["while you were out 1", "while you were out 2", "while you were out 3"]
        wait_until(lambda: all(t in fb.texts() for t in want), 15, what="the mailbox")
        got = [t for t in fb.texts() if t.startswith("while you were out")]
        assert got == want, f"in order, exactly once: {got}"
        # a restart of bob repeats nothing: a marker sent afterwards comes alone
        fb.stop()
        bob.proc.send_signal(signal.SIGTERM)
        bob.proc.wait(10)
        bob = lab.start_daemon("bob")
        fb = Follow(bob)
        chat(alice, "lan", "marker")
        fb.wait_text("marker")
        assert fb.texts() == ["marker"], f"repeated after a restart: {fb.texts()}"
        fb.stop()
        print("offline delivery: 3 of 3 in order, exactly once, across a mediator restart")

        # history
        h = chat(alice, "--history", "lan")
        texts = [m["text"] for m in json.loads(h.stdout)["messages"]]
        assert texts == ["hello everyone", "while you were out 1", "while you were out 3", "marker"], texts
        h = chat(bob, "--history", "--to", "alice", "--limit", "10")
        texts = [m["text"] for m in json.loads(h.stdout)["messages"]]
        assert texts == [secret, "while you were out 2"], texts
        human = subprocess.run([binary("shoal"), "--control", alice.ctl, "chat", "--history", "lan"],
                               capture_output=True, text=True, timeout=20)
        assert "[lan] alice: marker" in human.stdout, human.stdout
        print("history: network and pair, oldest first")

        # the rate: bob posts on one control connection, 32 in flight at a time (the control
        # socket's bound), until the mediator refuses one; every answer is a confirmation or
        # that refusal, none is a timeout
        s = socket.socket(socket.AF_UNIX)
        s.connect(bob.ctl)
        f = s.makefile("rw")
        sent = refused = 0
        while refused == 0 and sent < 200:
            for i in range(32):
                f.write(json.dumps({"id": sent + i, "cmd": "chat", "network": "lan",
                                    "text": f"flood {sent + i}"}) + "\n")
            f.flush()
            for _ in range(32):
                a = json.loads(f.readline())
                if a.get("ok") is False:
                    assert "not sent: too many messages" in a.get("error", ""), a
                    refused += 1
            sent += 32
        s.close()
        assert refused > 0, f"{sent} messages and no refusal"
        print(f"rate: refused with its reason after {sent - refused} of {sent} messages")


if __name__ == "__main__":
    run(main)
