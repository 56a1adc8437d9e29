#!/usr/bin/env python3
"""
NAT lab, a pool of standalone relays (PROTOCOL.md 8; root, skipped with 77 otherwise). The
mediator's embedded relay is off; three shoal-relay processes register with it, each in its
own namespace behind a delay wire: near (NATLAB_RELAYS_DELAYS, default 1, 6 and 15 ms each
way). Nodes a and b behind random-port NATs (no direct path).
1. Both nodes measure the pool (`shoal status` shows three RTTs, ordered as the wires) and the
   pair ends up on the nearest relay (the mediator minimises rtt(a, r) + rtt(r, b)).
2. The relay in use is killed (SIGKILL) a quarter into a NATLAB_RELAY_MB (default 100) MB
   transfer a -> b: both move to another relay (times printed), the transfer completes
   byte-identical (the same session; the TCP connection survives).
3. The relay now in use stops answering UDP (its mediator connection stays up, so only the
   nodes can tell): both report it unreachable and the mediator moves the pair to another
   relay (times printed); pings pass.
Prints every time it measured; asserts none of them.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
from test_natlab_relay import (MB, SIZE, SOCKS, SVC_PORT, finish_send, member, progress,  # noqa: E402
                               serve, start_send)

DELAYS = [int(x) for x in os.environ.get("NATLAB_RELAYS_DELAYS", "1,6,15").split(",")]
NAMES = ["near", "mid", "far"]


def moved_off(a, b, gone, t0, what):
    """Polls both sides' `list` until each is on a relay not in gone; {name: (seconds since
    t0, relay)}; fails after 20 s."""
    seen = {}
    while len(seen) < 2:
        for d, peer in ((a, "b"), (b, "a")):
            r = relay_of(d, peer)
            if d.name not in seen and r not in (None,) + tuple(gone):
                seen[d.name] = (time.monotonic() - t0, r)
        if time.monotonic() > t0 + 20:
            raise AssertionError(f"not {what} within 20 s: {member(a, 'b')} / {member(b, 'a')}")
        time.sleep(0.05)
    return ", ".join(f"{k} on {v[1]} after {v[0]:.2f} s" for k, v in sorted(seen.items()))


def relay_of(d, nick):
    m = member(d, nick)
    return m.get("relay") if m.get("path") == "relay" else None


def main():
    with natlab.Lab("relays") as lab:
        sa, sb = lab.add_site("random"), lab.add_site("random")
        allow = []
        for n in NAMES:
            allow += ["--relay-allow", lab.relay_key(n)]
        lab.start_server(extra=["--relay-port", "off"] + allow)
        for n, ms in zip(NAMES, DELAYS):
            lab.start_relay(n, ms)
        a = lab.start_daemon(sa.hosts[0], "a", socks=SOCKS)
        b = lab.start_daemon(sb.hosts[0], "b", socks=SOCKS)
        a.cli("create", "lab")
        b.cli("join", "lab")
        # 1. the pool, measured; the pair on the nearest relay
        def pool_known(d):
            rs = d.status().get("relays") or []
            return len(rs) == 3 and all(r.get("rtt_ms") is not None for r in rs)
        harness.wait_until(lambda: pool_known(a) and pool_known(b), 40, interval=0.2,
                           what="both nodes measured the pool")
        for d in (a, b):
            print(f"1. {d.name}'s pool: " + ", ".join(
                f"{r['name']} {r['rtt_ms']} ms" for r in d.status()["relays"]))
        t0 = time.monotonic()
        harness.wait_until(lambda: relay_of(a, "b") == "near" and relay_of(b, "a") == "near",
                           40, interval=0.2, what="the pair on relay near")
        m = member(a, "b")
        print(f"   a <-> b on relay {m['relay']} ({m['relay_reason']}, rtt {m['rtt_ms']} ms) "
              f"{time.monotonic() - t0:.1f} s after the pool was measured")

        # 2. kill it mid-transfer
        b.cli("expose", SVC_PORT)
        serve(lab, sb.hosts[0])
        prog = os.path.join(lab.dir, "progress-a")
        p = start_send(lab, sa.hosts[0], b.address(), SIZE, prog)
        harness.wait_until(lambda: progress(prog) >= SIZE // 4 or p.poll() is not None,
                           300, interval=0.05, what="a quarter of the transfer")
        at = progress(prog)
        t0 = time.monotonic()
        lab.kill_relay("near")
        moved = moved_off(a, b, ("near",), t0, "on another relay")
        print(f"2. relay near killed at {at // MB} MB: {moved} (polling `list`)")
        res = finish_send(p)
        print(f"   {SIZE // MB} MB a -> b across the relay's death: byte-identical, "
              f"{res['seconds']} s")

        # 3. the relay in use goes silent without the mediator noticing
        cur = relay_of(a, "b")
        t0 = time.monotonic()
        with lab.block_relay_udp(cur):
            moved = moved_off(a, b, ("near", cur), t0, f"off the silent relay {cur}")
            print(f"3. relay {cur} silent (UDP dropped): {moved} (polling `list`)")
            if a.cli("ping", "b", "-c", "1", check=False).returncode != 0:
                raise AssertionError("a ping did not pass on the new relay")


if __name__ == "__main__":
    natlab.run_test(main)
