"""
Networks Hamachi style with a real mediator and three real daemons: create, join with right and
wrong password, lock, manual approval, approve/reject, eviction, go-offline, set-pass, delete,
and presence deltas reaching every member within a second.
"""
import sys
import os
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, CliError, run, wait_until  # noqa: E402


def expect_error(fn, *words):
    try:
        fn()
    except CliError as e:
        assert e.code != 0, e
        line = e.stderr.strip()
        assert "\n" not in line, f"error must be one line: {line!r}"
        for w in words:
            assert w in line.lower(), f"{w!r} not in {line!r}"
        return line
    raise AssertionError("expected an error")


def main():
    with Lab("networks") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        c = lab.start_daemon("carol")
        addrs = {d.name: d.address() for d in (a, b, c)}
        assert len(set(addrs.values())) == 3, addrs
        for v in addrs.values():
            assert v.startswith("5."), addrs

        # create / join with the right and the wrong password
        a.cli("create", "lan", "--password", "s3cret")
        expect_error(lambda: a.cli("create", "lan"), "exist")
        expect_error(lambda: b.cli("join", "lan", "--password", "wrong"), "password")
        expect_error(lambda: b.cli("join", "nosuchnet", "--password", "x"), "no such")
        b.cli("join", "lan", "--password", "s3cret")

        # both see each other online within a second, with a direct path soon after
        t0 = time.monotonic()
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 1.0, what="alice sees bob")
        wait_until(lambda: (b.member("lan", "alice") or {}).get("online"), 1.0, what="bob sees alice")
        assert time.monotonic() - t0 < 1.5
        net = a.network("lan")
        assert net["owner"] is True and net["online"] is True, net
        me = [m for m in net["members"] if m.get("self")]
        assert len(me) == 1 and me[0]["address"] == addrs["alice"], net
        bob = a.member("lan", "bob")
        assert bob["address"] == addrs["bob"] and bob["node_id"] == b.node_id(), bob
        wait_until(lambda: a.member("lan", "bob")["path"] == "direct", 5, what="direct path alice->bob")
        ping = a.cli("ping", "bob")
        assert ping, ping

        # lock: carol cannot join
        a.cli("set-access", "lan", "lock")
        assert a.network("lan")["locked"] is True
        expect_error(lambda: c.cli("join", "lan", "--password", "s3cret"), "lock")
        a.cli("set-access", "lan", "unlock")

        # manual approval: carol waits, then is rejected, then approved
        a.cli("set-access", "lan", "manual")
        r = c.cli("join", "lan", "--password", "s3cret", check=False)
        assert r.returncode in (0, 1), r
        wait_until(lambda: (c.network("lan") or {}).get("pending") is True, 2, what="carol pending")
        wait_until(lambda: (a.member("lan", "carol") or {}).get("pending") is True, 2, what="owner sees pending")
        expect_error(lambda: b.cli("approve", "lan", "carol"), "owner")
        a.cli("reject", "lan", "carol")
        wait_until(lambda: c.network("lan") is None, 2, what="carol rejected")
        c.cli("join", "lan", "--password", "s3cret", check=False)
        wait_until(lambda: (a.member("lan", "carol") or {}).get("pending") is True, 2, what="pending again")
        a.cli("approve", "lan", "carol")
        wait_until(lambda: (c.network("lan") or {}).get("pending") is False, 2, what="carol approved")
        wait_until(lambda: (b.member("lan", "carol") or {}).get("online"), 1.0, what="bob sees carol")
        a.cli("set-access", "lan", "auto")

        # go-offline is a delta others see within a second; go-online restores it
        b.cli("go-offline", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online") is False, 1.0, what="bob offline")
        wait_until(lambda: (c.member("lan", "bob") or {}).get("online") is False, 1.0, what="bob offline (carol)")
        b.cli("go-online", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 1.0, what="bob online")

        # non-owner cannot evict / delete / set-pass
        expect_error(lambda: b.cli("evict", "lan", "carol"), "owner")
        expect_error(lambda: b.cli("delete", "lan"), "owner")
        expect_error(lambda: b.cli("set-pass", "lan", "x"), "owner")

        # evict: carol is removed everywhere
        a.cli("evict", "lan", "carol")
        wait_until(lambda: c.network("lan") is None, 2, what="carol evicted")
        wait_until(lambda: b.member("lan", "carol") is None, 1.0, what="bob no longer sees carol")

        # set-pass: the old password stops working
        a.cli("set-pass", "lan", "newpass")
        expect_error(lambda: c.cli("join", "lan", "--password", "s3cret"), "password")
        c.cli("join", "lan", "--password", "newpass")
        wait_until(lambda: a.member("lan", "carol"), 2, what="carol back")

        # leave
        c.cli("leave", "lan")
        wait_until(lambda: a.member("lan", "carol") is None, 1.0, what="carol left")
        expect_error(lambda: a.cli("leave", "lan"), "delete")

        # set-nick reaches the others
        b.cli("set-nick", "bobby")
        wait_until(lambda: a.member("lan", "bobby"), 1.0, what="nick change")

        # delete: everyone loses the network
        a.cli("delete", "lan")
        wait_until(lambda: a.network("lan") is None and b.network("lan") is None, 2, what="deleted")

        # addresses never changed
        assert {d.name: d.address() for d in (a, b, c)} == addrs


if __name__ == "__main__":
    run(main)
