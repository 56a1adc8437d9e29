"""
A daemon that has never reached its mediator (no saved address) still takes `shoal expose`:
the netstack exists from start-up, so the virtual listener is there at once and answers as
soon as the mediator comes up and a peer joins. Before the fix the expose said "exposing" and
never worked, because the netstack was only created by the first WELCOME.

Then both daemons restart (SIGTERM, same state directories): bob's exposes and alice's forward
come back by themselves from STATE_DIR/ports and carry traffic again (issue 9: exposes were lost
across restarts). A damaged ports file is moved aside with a reason, not half applied.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, free_port, socks_connect, socks_udp_roundtrip  # noqa: E402
from lanproxy_util import isolate  # noqa: E402
from services import HashService, UdpEcho, upload  # noqa: E402


def main():
    # Its own network namespace: the mediator's port is picked, freed and bound again three
    # times, and in the shared one a parallel test's connection took it in between.
    isolate()
    svc = HashService()
    echo = UdpEcho()
    with Lab("expose-offline") as lab:
        port = free_port()
        lab.start_server(port=port)
        lab.kill_server()          # the connection string stays valid: same key, same port
        b = lab.start_daemon("bob", wait_connected=False)
        st = b.status()
        assert st["server"] != "connected" and not st.get("address"), st
        b.cli("expose", svc.port)
        b.cli("expose", f"{echo.port}/udp")

        lab.start_server(port=port)
        wait_until(lambda: b.status()["server"] == "connected" and b.status().get("address"), 40,
                   what="bob reaches the mediator")
        a = lab.start_daemon("alice")
        a.cli("create", "lan")
        b.cli("join", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 5, what="bob online")

        # TCP through SOCKS5 by nick, and through a forward.
        s = socks_connect(a.socks_port, "bob", svc.port)
        sent, got = upload(s, 1 << 20)
        assert sent == got, "TCP to an expose made while the mediator was down"
        lport = free_port()
        a.cli("forward", lport, f"bob:{svc.port}")
        sent, got = upload(socket.create_connection(("127.0.0.1", lport)), 1 << 20)
        assert sent == got, "forward to an expose made while the mediator was down"
        # UDP through SOCKS5 UDP ASSOCIATE to the UDP expose made at the same time.
        assert socks_udp_roundtrip(a.socks_port, b.address(), echo.port, b"still there") == b"echo:still there"

        # Restarts keep what the user made.
        for d in (a, b):
            d.proc.terminate()
            d.proc.wait(10)
        b = lab.start_daemon("bob")
        a = lab.start_daemon("alice")
        exposes = sorted((e["port"], e["proto"]) for e in b.status()["exposes"])
        assert exposes == sorted([(svc.port, "tcp"), (echo.port, "udp")]), exposes
        assert [f["local_port"] for f in a.status()["forwards"]] == [lport], a.status()["forwards"]
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 10, what="bob online again")
        sent, got = upload(socket.create_connection(("127.0.0.1", lport)), 1 << 20)
        assert sent == got, "the restored forward to the restored expose"
        print(f"after restarts: bob exposes {exposes}, alice forwards {lport}: 1 MiB through")

        a.proc.terminate()
        a.proc.wait(10)
        with open(os.path.join(a.state, "ports"), "w") as fh:
            fh.write('{"version":1,"forwards":[{"local_port":0}]}')
        a = lab.start_daemon("alice")
        assert a.status()["forwards"] == [], a.status()["forwards"]
        assert os.path.exists(os.path.join(a.state, "ports.bad")), "damaged file kept aside"
        with open(os.path.join(a.state, "shoald.log")) as fh:
            assert "event=ports_file_bad" in fh.read()


if __name__ == "__main__":
    run(main)
