#!/usr/bin/env python3
"""
NAT lab, global IPv6 beside IPv4 NAT (PROTOCOL.md 3.2; root, skipped with 77 otherwise).
A and B behind `random` IPv4 NATs (the pair no IPv4 punching reaches), both sites with a
routed 2001:db8:<i>::/64 behind a stateful IPv6 firewall (inbound only for established flows).
1. Both daemons put their global IPv6 address in HELLO; each learns the other's in MEMBER
   (`shoal list --json`'s "endpoints" has a "[2001:db8:...]:port").
2. The mediator plans `simultaneous` over IPv6 (both sides send at once, which opens both
   firewalls); the pair becomes direct over IPv6 (`endpoint` is "[v6]:port") and pings pass.
3. A third site, IPv4 only (portrestricted), still gets its IPv4 path to A as before.
Prints how long each step took.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402


def member(d, nick):
    return d.member("lab", nick) or {}


def v6_direct(d, nick):
    m = member(d, nick)
    return m.get("path") == "direct" and (m.get("endpoint") or "").startswith("[2001:db8:")


def main():
    t_start = time.monotonic()
    with natlab.Lab("v6") as lab:
        sa = lab.add_site("random", ipv6=True)
        sb = lab.add_site("random", ipv6=True)
        sc = lab.add_site("portrestricted")
        lab.start_server()
        a = lab.start_daemon(sa.hosts[0], "a")
        b = lab.start_daemon(sb.hosts[0], "b")
        c = lab.start_daemon(sc.hosts[0], "c")
        try:
            a.cli("create", "lab")
            t0 = time.monotonic()
            b.cli("join", "lab")
            c.cli("join", "lab")

            # 1. each side learns the other's global IPv6 address
            want_a = f"[{sa.hosts[0].addr6}]:"
            harness.wait_until(lambda: any(e.startswith(want_a)
                                           for e in member(b, "a").get("endpoints") or []),
                               15, interval=0.1, what="a's IPv6 endpoint in b's list")
            print(f"1. b lists a's endpoints {member(b, 'a').get('endpoints')}")

            # 2. direct over IPv6 both ways, then traffic over it
            harness.wait_until(lambda: v6_direct(a, "b") and v6_direct(b, "a"), 30,
                               interval=0.1, what="a direct IPv6 path between a and b")
            t_direct = time.monotonic() - t0
            ma, mb = member(a, "b"), member(b, "a")
            print(f"2. a <-> b direct over IPv6 {t_direct:.1f} s after b joined: "
                  f"a->b {ma.get('endpoint')} [{ma.get('strategy')}], "
                  f"b->a {mb.get('endpoint')} [{mb.get('strategy')}]")
            for src, dst in ((a, b), (b, a)):
                r = src.cli("ping", dst.name, "-c", "5", check=False)
                if r.returncode != 0:
                    raise AssertionError(f"ping {src.name} -> {dst.name} failed: {r.stdout}")
            # Still IPv6 after the traffic (no roam to an IPv4 path).
            if not (v6_direct(a, "b") and v6_direct(b, "a")):
                raise AssertionError(f"left IPv6: {member(a, 'b')} / {member(b, 'a')}")
            print("2. pings a <-> b passed over IPv6")

            # 3. the IPv4-only site reaches a over IPv4 (random vs portrestricted: birthday)
            harness.wait_until(lambda: member(c, "a").get("path") == "direct"
                               and member(a, "c").get("path") == "direct", 40, interval=0.2,
                               what="direct IPv4 path between c and a")
            ep = member(c, "a").get("endpoint") or ""
            if ep.startswith("["):
                raise AssertionError(f"c has no IPv6, yet its path to a is {ep}")
            print(f"3. c (IPv4 only) <-> a direct over IPv4: {ep} "
                  f"[{member(c, 'a').get('strategy')}]")
        except AssertionError:
            lab.dump_logs(lines=40)
            raise
    print(f"({time.monotonic() - t_start:.1f} s)")


if __name__ == "__main__":
    why = natlab.require_root()
    if why:
        print(f"SKIP: {why}")
        sys.exit(77)
    harness.run(main)
