#!/usr/bin/env python3
"""
NAT lab, the mediator's relay-grant table full (PROTOCOL.md 8.4, 2.4, 3.2; root, skipped with 77
otherwise). shoal-server --relay-pairs 1; a, b and c behind random-port NATs, so no pair can go
direct and each needs a relay.
1. a and b in one network: their pair takes the table's one place; a <-> b relayed, and once
   classified the pair needs its relay (no-direct), so it is no standby a needier pair may
   replace.
2. c joins: its pairs with a and b are refused (the server logs relay_pair_refused) and c has
   no path to a.
3. b leaves the network: its pair ends, which makes room. Nobody introduces a <-> c again, but
   their initiations go unanswered, so their daemons ask the server for a punch
   (PUNCH_REQUEST), and that request gets the pair its relay: a <-> c relayed, and a transfer
   arrives byte-identical.
Prints how long each step took; asserts none of the times.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
from test_natlab_relay import finish_send, member, serve, start_send, wait_path, wait_reason  # noqa: E402,E501

SVC_PORT = 5001
SOCKS = 1080
MB = 1 << 20


def server_log(lab, what):
    with open(os.path.join(lab.dir, "server.log"), errors="replace") as f:
        return [line for line in f if what in line]


def main():
    with natlab.Lab("relayfull") as lab:
        sa, sb, sc = lab.add_site("random"), lab.add_site("random"), lab.add_site("random")
        lab.start_server(extra=("--relay-pairs", "1"))
        a = lab.start_daemon(sa.hosts[0], "a", socks=SOCKS)
        b = lab.start_daemon(sb.hosts[0], "b", socks=SOCKS)
        c = lab.start_daemon(sc.hosts[0], "c", socks=SOCKS)
        a.cli("create", "lab")
        b.cli("join", "lab")
        t_ab, _ = wait_path(a, "b", "relay", 30)
        # Classified, the pair needs its relay (no punch can work), so c's pairs, needing
        # theirs as much, cannot take its place (PROTOCOL.md 8.4).
        t_r, _ = wait_reason(a, "b", ("no-direct",), 20)
        print(f"1. a <-> b relayed after {t_ab:.1f} s (the table's one pair), no-direct after "
              f"{t_ab + t_r:.1f} s")

        c.cli("join", "lab")
        harness.wait_until(lambda: server_log(lab, "event=relay_pair_refused"), 20,
                           what="the server refusing c's pairs (table full)")
        harness.wait_until(lambda: member(a, "c").get("online"), 20, what="a sees c online")
        # Each node's classification introduces its pairs again: wait for it before b leaves
        # (the grant must come from a PUNCH_REQUEST, checked below).
        harness.wait_until(lambda: len(server_log(lab, "event=nat_classified")) >= 3, 30,
                           what="a, b and c classified")
        m = member(a, "c")
        if m.get("path") not in (None, "none"):
            raise AssertionError(f"a -> c has a path with the table full: {m}")
        print(f"2. c joined: {server_log(lab, 'event=relay_pair_refused')[0].split('event=')[1].strip()}; "
              f"a -> c path {m.get('path')!r}")

        b.cli("leave", "lab")
        t0 = time.monotonic()
        t_ac, m = wait_path(a, "c", "relay", 60)
        t_ca, _ = wait_path(c, "a", "relay", 60)
        lines = server_log(lab, "")
        ac = {a.node_id()[:12], c.node_id()[:12]}
        pick = next(i for i, x in enumerate(lines) if "event=relay_pick" in x and
                    {f.split("=")[1] for f in x.split() if f[:2] in ("a=", "b=")} == ac)
        # The request's own line follows the pick it made (relays first, then the punch).
        asked = [x for x in lines[pick + 1:pick + 4] if "event=punch_request" in x and
                 {f.split("=")[1] for f in x.split() if f[:5] in ("node=", "peer=")} == ac]
        print(f"3. b left: a -> c relayed after {t_ac:.1f} s, c -> a after "
              f"{time.monotonic() - t0:.1f} s (relay={m.get('relay')} "
              f"relay_reason={m.get('relay_reason')}), granted at "
              + (asked[0].split("event=")[1].strip() if asked else "no punch request"))
        if not asked:
            raise AssertionError("the pair got its relay without a PUNCH_REQUEST")
        c.cli("expose", SVC_PORT)
        serve(lab, sc.hosts[0])
        res = finish_send(start_send(lab, sa.hosts[0], c.address(), 4 * MB))
        print(f"   4 MB a -> c through the relay: byte-identical, {res['seconds']} s")


if __name__ == "__main__":
    natlab.run_test(main)
