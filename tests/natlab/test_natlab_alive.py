#!/usr/bin/env python3
"""
NAT lab, dead paths and roaming (PROTOCOL.md 2.4 and 3.2; root, skipped with 77 otherwise).
A and B behind portrestricted routers (B's kind: NATLAB_ALIVE_PEER, e.g. seq1), one network,
a direct path. Nobody touches either node after the start; the test only watches
`shoal --json list` and runs `shoal ping`.
1. The path dies: A's router drops UDP between A and B's public address (the mediator still
   gets through). Both sides leave `direct` (for the mediator's relay within ~1.5 s; without
   a relay after 3 pings in a row without an answer). Unblocked, both come back (a lost path
   is probed every second and re-punched).
2. Roaming: A's site gets a new public address (site.renumber(): new WAN address, NAT rules,
   conntrack flushed). A's paths die, its mediator connection breaks and reconnects, the
   mediator classifies A again and plans the pair; both see `direct` again and pings pass.
Prints every time it measured.
"""
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402


def path(d, net, nick):
    return (d.member(net, nick) or {}).get("path")


def watch(pairs, want_direct, deadline):
    """Polls `list` on both sides until each side's path to the other is (or is not) direct.
    pairs: [(daemon, peer nick)]. Returns {daemon name: seconds from now until it was seen}."""
    t0 = time.monotonic()
    seen = {}
    while len(seen) < len(pairs):
        if time.monotonic() > t0 + deadline:
            left = [f"{d.name}->{p}: {path(d, 'lab', p)}" for d, p in pairs if d.name not in seen]
            raise AssertionError(f"not {'direct' if want_direct else 'gone from direct'} within "
                                 f"{deadline} s: {', '.join(left)}")
        for d, p in pairs:
            if d.name not in seen and (path(d, "lab", p) == "direct") == want_direct:
                seen[d.name] = time.monotonic() - t0
        time.sleep(0.1)
    return seen


def ping(src, dst):
    r = src.cli("ping", dst.name, "-c", "1", check=False)
    return r.returncode == 0


def fmt(seen):
    return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(seen.items()))


def log_time(d, what, since):
    """Seconds from wall time `since` to the first line of d's log at or after it that
    contains `what`; None if there is none."""
    with open(os.path.join(d.state, "shoald.log"), errors="replace") as f:
        for line in f:
            if what not in line or not line.startswith("ts="):
                continue
            t = datetime.datetime.strptime(line[3:27], "%Y-%m-%dT%H:%M:%S.%fZ")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            if t >= since - 0.002:
                return t - since
    return None


def grep_log(d, what):
    with open(os.path.join(d.state, "shoald.log"), errors="replace") as f:
        return sum(1 for line in f if what in line)


def main():
    peer_kind = os.environ.get("NATLAB_ALIVE_PEER", "portrestricted")
    with natlab.Lab("alive") as lab:
        sa = lab.add_site("portrestricted")
        sb = lab.add_site(peer_kind)
        lab.start_server()
        a = lab.start_daemon(sa.hosts[0], "a")
        b = lab.start_daemon(sb.hosts[0], "b")
        a.cli("create", "lab")
        b.cli("join", "lab")
        pairs = [(a, "b"), (b, "a")]
        up = watch(pairs, True, 20)
        print(f"0. portrestricted <-> {peer_kind}: direct ({fmt(up)})")
        if not ping(a, b) or not ping(b, a):
            raise AssertionError("direct, but a ping did not pass")

        # 1. the path dies in A's router, then heals
        with lab.block_udp(sa, sb.public_ip):
            gone = watch(pairs, False, 15)
            print(f"1. UDP between the sites blocked: left direct after {fmt(gone)}")
            why = ((a.member("lab", "b") or {}).get("reason") or {}).get("why", "")
            if not why.startswith("path lost"):
                raise AssertionError(f"a's reason for b while blocked: {why!r}")
        back = watch(pairs, True, 15)
        print(f"1. unblocked: direct again after {fmt(back)}")
        if not ping(a, b):
            raise AssertionError("path back, but a ping did not pass")
        # With the mediator's relay the pair falls back to it (path_direct_lost) instead of
        # losing its path altogether (path_lost); either way the mediator is asked to punch.
        if grep_log(a, "event=path_lost") + grep_log(a, "event=path_direct_lost") < 1 or \
                grep_log(a, "event=punch_request") < 1:
            raise AssertionError("a: no event=path_lost / event=punch_request in its log")

        # 2. A's site changes its public address. The pair may come back faster than `list`
        # is polled (B's handshake to A's new candidate answers within a round trip), so
        # the test waits for what must hold afterwards, and reads when it happened from
        # B's log (its first authenticated packet from A's new address).
        old = sa.public_ip
        t_wall, t0 = time.time(), time.monotonic()
        new = sa.renumber()
        while not (path(a, "lab", "b") == "direct" and path(b, "lab", "a") == "direct"
                   and ping(a, b) and ping(b, a)):
            if time.monotonic() > t0 + 40:
                raise AssertionError(f"no direct path and pings within 40 s of renumbering "
                                     f"A ({old} -> {new})")
            time.sleep(0.1)
        t_ok = time.monotonic() - t0
        # The path may be back before A's new classification is (B learns A's new
        # endpoint from A's UDP probe's MEMBER, or from the first packet), so wait for it.
        harness.wait_until(lambda: ((a.status().get("nat") or {}).get("public") or "")
                           .startswith(new + ":"), 20, interval=0.2,
                           what=f"a's nat.public on {new}")
        seen = log_time(b, f"endpoint={new}:", t_wall)
        med = log_time(a, "event=mediator_connected", t_wall)
        if seen is None:
            raise AssertionError(f"b's log never names a's new address {new}")
        print(f"2. {old} -> {new}: b heard a from its new address {seen:.1f} s after the "
              f"renumber; a's mediator connection was back after "
              f"{med if med is None else round(med, 1)} s; direct both ways and pings "
              f"passed at {t_ok:.1f} s (polling); a reclassified on {new}")


if __name__ == "__main__":
    natlab.run_test(main)
