"""
The mediator dies with SIGKILL in the middle of a 100 MB transfer: the transfer completes over
the existing P2P session. After a restart the mediator has the same networks, members and
addresses, and the daemons reconnect by themselves.
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, free_port  # noqa: E402
from services import HashService, upload  # noqa: E402

SIZE = int(os.environ.get("SHOAL_TRANSFER_BYTES", 100 * 1024 * 1024))


def snapshot(d):
    nets = {}
    for n in d.cli("list")["networks"]:
        nets[n["name"]] = sorted((m["nick"], m["address"], m["node_id"], m["pending"]) for m in n["members"])
    return d.address(), nets


def main():
    svc = HashService()
    with Lab("mediator-down") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        c = lab.start_daemon("carol")
        a.cli("create", "lan", "--password", "pw")
        b.cli("join", "lan", "--password", "pw")
        c.cli("join", "lan", "--password", "pw")
        a.cli("set-access", "lan", "manual")
        b.cli("create", "second")
        c.cli("join", "second")
        wait_until(lambda: all((a.member("lan", n) or {}).get("online") for n in ("bob", "carol")), 2,
                   what="all online")
        before = {d.name: snapshot(d) for d in (a, b, c)}
        b.cli("expose", svc.port)
        lport = free_port()
        a.cli("forward", lport, f"bob:{svc.port}")

        result = {}

        def transfer():
            try:
                result["r"] = upload(socket.create_connection(("127.0.0.1", lport)), SIZE)
            except Exception as e:  # reported below
                result["e"] = e

        t = threading.Thread(target=transfer)
        t.start()
        wait_until(lambda: svc.connections >= 1, 10, what="transfer started")
        lab.kill_server()
        wait_until(lambda: a.status()["server"] == "disconnected", 10, what="alice notices")
        t.join(120)
        assert not t.is_alive(), "transfer hung after the mediator died"
        assert "e" not in result, result.get("e")
        sent, got = result["r"]
        assert sent == got, "transfer corrupted while the mediator was down"

        # peers still reachable while the mediator is down
        assert a.cli("ping", "bob")

        lab.start_server()  # same port, same state dir
        # Members reconnect one by one; whoever is back first must not lose its peers meanwhile.
        first = wait_until(lambda: next((d for d in (a, b, c) if d.status()["server"] == "connected"), None),
                           40, what="a daemon reconnects")
        for other in (a, b, c):
            if other is not first:
                assert first.cli("ping", other.address(), "-c", "1"), f"{first.name} lost {other.name}"
        for d in (a, b, c):
            wait_until(lambda d=d: d.status()["server"] == "connected", 40, what=f"{d.name} reconnects")
        for d in (a, b, c):
            wait_until(lambda d=d: snapshot(d) == before[d.name], 5, what=f"{d.name} state unchanged")
        assert a.network("lan")["approval"] == "manual"
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 2, what="bob online again")


if __name__ == "__main__":
    run(main)
