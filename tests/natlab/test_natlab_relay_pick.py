#!/usr/bin/env python3
"""
NAT lab, the relay per pair (PROTOCOL.md 8.3; root, skipped with 77 otherwise). Four nodes behind
random-port NATs (no direct path): a and b share network "west", c and d network "east". The
mediator's embedded relay is off; three shoal-relay processes, with per-site delay wires (ms each
way, NATLAB_PICK_NEAR / NATLAB_PICK_FAR, default 2 and 20):
    west   near a and b, far from c and d
    east   near c and d, far from a and b
    middle half-way from everyone (the best single relay for all four on average)
Each pair must end up on its own best relay (minimal rtt(x, r) + rtt(r, y)): a <-> b on west,
c <-> d on east, not both on middle as a one-relay-for-everyone or a destination's-home-relay
scheme would. Pings pass on both. Prints the pools and how long the picks took; asserts no time.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
from test_natlab_relay import SOCKS  # noqa: E402

NEAR = int(os.environ.get("NATLAB_PICK_NEAR", "2"))
FAR = int(os.environ.get("NATLAB_PICK_FAR", "20"))


def relay_of(d, net, nick):
    m = d.member(net, nick) or {}
    return m.get("relay") if m.get("path") == "relay" else None


def main():
    with natlab.Lab("pick") as lab:
        sa, sb, sc, sd = (lab.add_site("random") for _ in range(4))
        names = ("west", "east", "middle")
        allow = []
        for n in names:
            allow += ["--relay-allow", lab.relay_key(n)]
        lab.start_server(extra=["--relay-port", "off"] + allow)
        mid = (NEAR + FAR) // 2
        lab.start_relay("west", FAR, site_delays={sa: NEAR, sb: NEAR})
        lab.start_relay("east", FAR, site_delays={sc: NEAR, sd: NEAR})
        lab.start_relay("middle", mid)
        a = lab.start_daemon(sa.hosts[0], "a", socks=SOCKS)
        b = lab.start_daemon(sb.hosts[0], "b", socks=SOCKS)
        c = lab.start_daemon(sc.hosts[0], "c", socks=SOCKS)
        d = lab.start_daemon(sd.hosts[0], "d", socks=SOCKS)
        a.cli("create", "west")
        b.cli("join", "west")
        c.cli("create", "east")
        d.cli("join", "east")
        def pool_known(x):
            rs = x.status().get("relays") or []
            return len(rs) == 3 and all(r.get("rtt_ms") is not None for r in rs)
        harness.wait_until(lambda: all(pool_known(x) for x in (a, b, c, d)), 40,
                           interval=0.2, what="every node measured the pool")
        for x in (a, b, c, d):
            print(f"{x.name}'s pool: " + ", ".join(
                f"{r['name']} {r['rtt_ms']} ms" for r in x.status()["relays"]))
        t0 = time.monotonic()
        harness.wait_until(lambda: (relay_of(a, "west", "b"), relay_of(b, "west", "a"),
                                    relay_of(c, "east", "d"), relay_of(d, "east", "c")) ==
                           ("west", "west", "east", "east"), 30, interval=0.2,
                           what="a <-> b on west and c <-> d on east")
        t_pick = time.monotonic() - t0
        rtts = []
        for x, peer in ((a, "b"), (c, "d")):
            r = x.cli("ping", peer, "-c", "1", json_out=False, check=False)
            if r.returncode != 0:
                raise AssertionError(f"{x.name} -> {peer}: ping did not pass")
            rtts.append(" | ".join(r.stdout.strip().splitlines()))
        print(f"a <-> b on {relay_of(a, 'west', 'b')}, c <-> d on {relay_of(c, 'east', 'd')} "
              f"{t_pick:.1f} s after the pools were measured")
        for line in rtts:
            print(f"   {line}")


if __name__ == "__main__":
    natlab.run_test(main)
