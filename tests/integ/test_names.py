"""
One resolver for every front end: the same spellings of a peer (nick in any case, NICK.shoal,
either with a trailing dot, a node-id prefix, the 5.x address) reach the same peer through
SOCKS5, `shoal ping` and `shoal forward`; unknown and ambiguous names are refused everywhere.
(`shoal run`'s getaddrinfo takes the same path through the shim's RESOLVE: test_lanproxy_unpriv.)
"""
import os
import signal
import time
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, binary, run, wait_until, free_port, socks_connect, CliError  # noqa: E402
from services import HashService, upload  # noqa: E402


def main():
    svc = HashService()
    with Lab("names") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        c = lab.start_daemon("carol")
        d = lab.start_daemon("dave", nick="Carol")   # same nick, other case: ambiguous
        a.cli("create", "lan")
        for x in (b, c, d):
            x.cli("join", "lan")
        wait_until(lambda: all((a.member("lan", n) or {}).get("online") for n in ("bob", "carol")), 5,
                   what="members online")
        b.cli("expose", svc.port)
        spellings = ["bob", "BOB", "bob.", "bob.shoal", "Bob.Shoal.", b.node_id()[:16], b.address()]

        for name in spellings:
            s = socks_connect(a.socks_port, name, svc.port)
            sent, got = upload(s, 4096)
            assert sent == got, f"SOCKS5 to {name!r}"
            assert a.cli("ping", name, "-c", "1"), f"ping {name!r}"
        lport = free_port()
        a.cli("forward", lport, f"bob.shoal:{svc.port}")
        sent, got = upload(socket.create_connection(("127.0.0.1", lport)), 4096)
        assert sent == got, "forward to bob.shoal"

        for name in ("nobody", "nobody.shoal", "carol", "carol.shoal."):
            try:
                socks_connect(a.socks_port, name, svc.port)
                raise AssertionError(f"SOCKS5 to {name!r} must fail")
            except ConnectionError as e:
                assert str(e) == "SOCKS reply 4", (name, e)   # host unreachable
            try:
                a.cli("ping", name, "-c", "1")
                raise AssertionError(f"ping {name!r} must fail")
            except CliError:
                pass

        # More pings in flight to one peer than the daemon keeps: the rest are told "busy",
        # not that bob is no peer. bob is stopped so the pings stay unanswered (3 s timeout).
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            procs = [subprocess.Popen([binary("shoal"), "--control", a.ctl, "ping", "bob", "-c", "1"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(24)]
            errs = [p.communicate(timeout=30)[1] for p in procs]
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        busy = sum("busy" in e for e in errs)
        print(f"24 concurrent pings to a silent peer: {busy} told busy")
        assert busy >= 1, errs
        assert not any("not a connected peer" in e for e in errs), errs

        # Nobody there (an address no member has; a member switched offline): the connect is
        # refused at once with "host unreachable", not after the 10 s connect timeout.
        wait_until(lambda: (a.member("lan", "bob") or {}).get("path") == "direct", 10,
                   what="bob direct again")
        b_addr = b.address()
        b.cli("go-offline", "lan")
        wait_until(lambda: not (a.member("lan", "bob") or {}).get("online"), 5,
                   what="bob offline")
        for what, host in (("an address of nobody", "5.0.0.99"), ("an offline member", b_addr)):
            t0 = time.monotonic()
            try:
                socks_connect(a.socks_port, host, svc.port)
                raise AssertionError(f"SOCKS5 to {what} must fail")
            except ConnectionError as e:
                assert str(e) == "SOCKS reply 4", (what, e)
            took = time.monotonic() - t0
            print(f"connect to {what} ({host}): refused in {took:.2f} s")
            assert took < 3, f"{what}: refused only after {took:.1f} s"


if __name__ == "__main__":
    run(main)
