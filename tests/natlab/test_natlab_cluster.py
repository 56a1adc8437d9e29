#!/usr/bin/env python3
"""
NAT lab, a pair split over two mediator instances (PROTOCOL.md 4.8; root and PostgreSQL,
skipped with 77 otherwise). Two shoal-server instances share one real PostgreSQL (pgserver.py)
and the server key; node a (behind a port-restricted cone NAT) is on instance 1, node s
(behind a sequential port-by-port NAT) and node r (random ports) on instance 2. Neither pair
can connect without a punch plan that knows both sides: portrestricted <-> seq1 needs the
predicted ports, portrestricted <-> random the birthday plan. Both must go direct, with the
strategy the single-instance lab gets, and a ping must pass. Node q (random ports too) on
instance 1 cannot reach r at all: the instance of the lower key grants the pair a relay (its
embedded one), r's half through instance 2 (its relay id marked as another instance's), and
a ping must pass through it. Prints how long each took; asserts no time.
"""
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
import pgserver  # noqa: E402

SKIP = 77
PORT_2 = natlab.MED_PORT + 10            # instance 2: its TCP/UDP ports clear of instance 1's


def direct_both(x, y):
    return ((x.member("lab", y.name) or {}).get("path") == "direct" and
            (y.member("lab", x.name) or {}).get("path") == "direct")


def main():
    if os.geteuid() != 0:
        print("SKIP: the NAT lab needs root (network namespaces, nftables)")
        sys.exit(SKIP)
    pgserver.skip_unless_installed()
    failures = []
    with pgserver.PgServer(port=5444) as pg, natlab.Lab("clusterpunch") as lab:
        sp, ss, sr = lab.add_site("portrestricted"), lab.add_site("seq1"), lab.add_site("random")
        sq = lab.add_site("random")
        one = lab.start_server(extra=["--store", pg.url])
        # the second instance of the same mediator: same key, so one connection string key
        state2 = os.path.join(lab.dir, "server2")
        os.makedirs(state2, exist_ok=True)
        shutil.copy(os.path.join(one.state, "server.key"), os.path.join(state2, "server.key"))
        two = lab.start_server(extra=["--store", pg.url], port=PORT_2, name="server2")
        assert one.url.rsplit("/", 1)[1] == two.url.rsplit("/", 1)[1], "instances must share the key"
        a = lab.start_daemon(sp.hosts[0], "a", server=one)
        s = lab.start_daemon(ss.hosts[0], "s", server=two)
        r = lab.start_daemon(sr.hosts[0], "r", server=two)
        q = lab.start_daemon(sq.hosts[0], "q", server=one)
        a.cli("create", "lab")
        # a and q classified before the others join: their own triggers find no peer yet, so
        # only the later nodes' triggers can plan the pairs (an order that once left them unplanned)
        for d in (a, q):
            harness.wait_until(lambda: ((d.status().get("nat") or {}).get("mapping") or "unknown") != "unknown",
                               15, interval=0.1, what=f"{d.name} classified")
        s.cli("join", "lab")
        r.cli("join", "lab")
        q.cli("join", "lab")
        t0 = time.monotonic()
        for peer, want in ((s, ["predict", "predict"]), (r, ["birthday", "birthday"])):
            pair = f"portrestricted (instance 1) <-> {'seq1' if peer is s else 'random'} (instance 2)"
            try:
                harness.wait_until(lambda: direct_both(a, peer), 30, interval=0.1,
                                   what=f"direct path {pair}")
            except AssertionError as e:
                failures.append(str(e))
                continue
            took = time.monotonic() - t0
            strat = [(x.member("lab", y.name) or {}).get("strategy") for x, y in ((a, peer), (peer, a))]
            if strat != want:
                failures.append(f"{pair}: direct, but strategies {strat}, want {want}")
                continue
            out = a.cli("ping", peer.name, "-c", "1", check=False)
            if out.returncode != 0:
                failures.append(f"{pair}: direct, but no ping: {out.stdout.strip()} {out.stderr.strip()}")
                continue
            print(f"{pair}: direct ({want[0]}) {took:.2f} s after the joins; ping ok")
        pair = "random (instance 1) <-> random (instance 2)"
        try:
            harness.wait_until(lambda: ((q.member("lab", r.name) or {}).get("path") == "relay" and
                                        (r.member("lab", q.name) or {}).get("path") == "relay"),
                               30, interval=0.1, what=f"relayed path {pair}")
            took = time.monotonic() - t0
            out = q.cli("ping", r.name, "-c", "1", check=False)
            if out.returncode != 0:
                failures.append(f"{pair}: relayed, but no ping: {out.stdout.strip()} {out.stderr.strip()}")
            else:
                print(f"{pair}: relayed via {(q.member('lab', r.name) or {}).get('relay')} "
                      f"{took:.2f} s after the joins; ping ok")
            # The planner's node names the relay from its pool; the other node's grant has
            # the id of another instance's pool (bit 0x8000), which its own pool must not name.
            mq, mr = q.member("lab", r.name) or {}, r.member("lab", q.name) or {}
            mine, other = (mq, mr) if q.node_id() < r.node_id() else (mr, mq)
            oname = str(other.get("relay"))
            if mine.get("relay") != "embedded" or not (oname.startswith("#") and
                                                         int(oname[1:]) & 0x8000):
                failures.append(f"{pair}: relays {mine.get('relay')!r} (planner's node) and "
                                f"{oname!r}: want 'embedded' and an id of another instance")
        except AssertionError as e:
            failures.append(str(e))
        if failures:
            lab.dump_logs()
    if failures:
        print("FAIL: " + " | ".join(failures))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
