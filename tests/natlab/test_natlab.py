#!/usr/bin/env python3
"""
NAT lab, make-check subset (root; skipped with 77 otherwise): sites behind portrestricted,
fullcone, seq1, random and udpblock routers (tests/natlab/natlab.py).
1. The lab's own self-test (plain sockets against a UDP reflector, no shoal): each router
   behaves as its NAT type.
2. With a real shoal-server (two addresses) and one shoald per site:
   a. two portrestricted sites reach a direct path;
   b. each daemon's `nat` in `shoal --json status` matches its site's type (mapping, filtering,
      ports; step for seq1). A missing `nat` is a failure, not a skip;
   c. the udpblock site's nat.udp is "blocked";
   d. server-driven punching: seq1 (sequential ports) reaches portrestricted directly with
      strategy "predict" (it gets no path without it);
   e. birthday punching: random (random ports) reaches portrestricted directly with strategy
      "birthday" (256 sockets on the random side, probes at random ports from the other);
   f. random facing seq1 has no direct path, and `shoal list --json` says why (strategy
      "none" and a reason naming both NATs);
   g. TCP hole punching: udpblock (UDP dropped, TCP masqueraded) reaches portrestricted
      directly over a punched TCP connection (strategy "tcp", transport "tcp") and a ping
      through it is answered.
   h. a node behind `upnp` (portrestricted plus a real miniupnpd) gets a NAT-PMP port mapping
      (`portmap` in `shoal --json status`: mapped, nat-pmp, the router's public address), the
      mediator gets it (MSG_CANDIDATES, its log), and the random node reaches it directly; a
      node behind `upnp-igd` (the same, NAT-PMP off) gets its mapping through UPnP-IGD
      (miniupnpc) and the random node reaches it too. Skipped with a message when miniupnpd is
      not installed.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402

KINDS = ("portrestricted", "fullcone", "seq1", "random", "udpblock")


def wait_nat(d, deadline):
    """The `nat` object once the mediator has classified (or found UDP blocked)."""
    nat = None
    while time.monotonic() < deadline:
        st = d.status()
        nat = st.get("nat")
        if nat and (nat.get("udp") == "blocked" or nat.get("mapping") not in (None, "unknown")):
            return nat
        time.sleep(0.2)
    if "nat" not in d.status():
        raise AssertionError(f"{d.name}: `shoal --json status` has no `nat` field (PROTOCOL.md 3.1 not landed?)")
    raise AssertionError(f"{d.name}: no NAT classification in time (nat: {nat!r})")


def main():
    t0 = time.monotonic()
    failures = []
    with natlab.Lab("check") as lab:
        sites = {k: lab.add_site(k) for k in KINDS}
        sites["portrestricted2"] = lab.add_site("portrestricted")
        no_upnp = natlab.kind_unavailable("upnp")
        if no_upnp:
            print(f"SKIP h: {no_upnp}")
        else:
            sites["upnp"] = lab.add_site("upnp")
            sites["upnp-igd"] = lab.add_site("upnp-igd")

        # 1. the lab itself
        checked = KINDS + (("upnp", "upnp-igd") if "upnp" in sites else ())
        rows = natlab.selftest_sites(lab, [sites[k] for k in checked])
        # Open issue: now and then (more often under load) the plain-socket probe behind the
        # first upnp router gets no answer at all, for seconds: its datagrams cross the router
        # and reach the internet's bridge, and the reflector never answers them (no ARP
        # problem: a fixed neighbour entry does not help). Never seen with shoald (part h and
        # the matrix). Until it is understood it is reported, not failed; h still checks the
        # port mapping end to end.
        flaky = [r for r in rows if r[3] and r[0].kind in natlab.UPNP_KINDS and
                 r[2].get("udp") == "blocked"]
        for r in flaky:
            print(f"note: selftest {r[1]}: no answer to the plain probe (open lab issue)")
        rows = [r for r in rows if r not in flaky]
        natlab.print_selftest(rows)
        for site, label, _, problems in rows:
            if problems:
                failures.append(f"selftest {label}: {'; '.join(problems)}")
        if failures:
            raise AssertionError("the lab does not behave as natlab-notes.md says: " + " | ".join(failures))

        # 2. shoal in it
        lab.start_server()
        if not lab.multi_listen:
            print("note: shoal-server took one --listen only; adm/eim and eif/adf cannot be told apart")
        daemons = {k: lab.start_daemon(s.hosts[0], k.replace("-", "")) for k, s in sites.items()}
        # classification: about 1 s to phase 2, UDP blocked declared 3 s after it
        nat_deadline = time.monotonic() + 12
        a, b = daemons["portrestricted"], daemons["portrestricted2"]
        a.cli("create", "lab")
        b.cli("join", "lab")
        try:
            harness.wait_until(lambda: (a.member("lab", b.name) or {}).get("path") == "direct"
                               and (b.member("lab", a.name) or {}).get("path") == "direct",
                               10, what="direct path between two portrestricted sites")
            print("a. portrestricted <-> portrestricted: direct")
        except AssertionError as e:
            failures.append(f"a. {e}")

        for k in KINDS:
            d = daemons[k]
            try:
                nat = wait_nat(d, nat_deadline)
            except AssertionError as e:
                failures.append(f"b. {e}")
                continue
            bad = natlab.nat_mismatches(k, nat, lab.multi_listen)
            pub = nat.get("public")
            if k != "udpblock" and pub and pub.split(":")[0] != sites[k].public_ip:
                bad.append(f"public={pub} (want {sites[k].public_ip}:*)")
            print(f"{'c' if k == 'udpblock' else 'b'}. {k}: nat {natlab.nat_summary(nat)} "
                  f"{'ok' if not bad else 'MISMATCH ' + ', '.join(bad)}")
            if bad:
                failures.append(f"{'c' if k == 'udpblock' else 'b'}. {k}: {', '.join(bad)}")
        # d, e: punching, once every side is classified (the plans need both NAT profiles)
        s, r = daemons["seq1"], daemons["random"]
        s.cli("join", "lab")
        r.cli("join", "lab")
        try:
            harness.wait_until(lambda: (a.member("lab", s.name) or {}).get("path") == "direct"
                               and (s.member("lab", a.name) or {}).get("path") == "direct",
                               10, what="direct path between portrestricted and seq1")
            strat = (a.member("lab", s.name) or {}).get("strategy")
            if strat != "predict":
                failures.append(f"d. portrestricted <-> seq1 direct, but strategy {strat!r}, want 'predict'")
            else:
                print("d. portrestricted <-> seq1: direct (predict)")
        except AssertionError as e:
            failures.append(f"d. {e}")
        try:
            harness.wait_until(lambda: (a.member("lab", r.name) or {}).get("path") == "direct"
                               and (r.member("lab", a.name) or {}).get("path") == "direct",
                               10, what="direct path between portrestricted and random (birthday)")
            strat = [(x.member("lab", y.name) or {}).get("strategy") for x, y in ((a, r), (r, a))]
            if strat != ["birthday", "birthday"]:
                failures.append(f"e. portrestricted <-> random direct, but strategy {strat!r}, want birthday")
            else:
                print("e. portrestricted <-> random: direct (birthday)")
        except AssertionError as e:
            failures.append(f"e. {e}")
        try:
            m = harness.wait_until(lambda: (lambda m: m if m and m.get("strategy") == "none" else None)(
                s.member("lab", r.name)), 10, what="strategy none for seq1 <-> random")
            reason = m.get("reason") or {}
            if m.get("path") == "direct" or "random" not in str(reason.get("peer_nat")) \
                    or not reason.get("why"):
                failures.append(f"f. seq1 <-> random: {m!r}")
            else:
                print(f"f. seq1 <-> random: {m['path']}, why: {reason['why']}")
        except AssertionError as e:
            failures.append(f"f. {e}")
        u = daemons["udpblock"]
        u.cli("join", "lab")
        try:
            m = harness.wait_until(lambda: (lambda m: m if m and m.get("path") == "direct" else None)(
                u.member("lab", a.name)), 10, what="direct path between udpblock and portrestricted")
            back = harness.wait_until(lambda: (lambda m: m if m and m.get("path") == "direct" else None)(
                a.member("lab", u.name)), 10, what="direct path between portrestricted and udpblock")
            if (m.get("strategy"), m.get("transport"), back.get("transport")) != ("tcp", "tcp", "tcp"):
                failures.append(f"g. udpblock <-> portrestricted direct, but {m!r} / {back!r}")
            else:
                pr = u.cli("ping", "-c", "1", a.name)
                if pr.get("received") != 1:
                    failures.append(f"g. ping udpblock -> portrestricted over TCP: {pr!r}")
                else:
                    print(f"g. udpblock <-> portrestricted: direct over TCP, ping {pr['rtt_ms'][0]:.2f} ms")
        except (AssertionError, harness.CliError) as e:
            failures.append(f"g. {e}")
        for kind, proto in (("upnp", "nat-pmp"), ("upnp-igd", "upnp")):
            if kind not in sites:
                break
            u = daemons[kind]
            try:
                def settled():
                    p = u.status().get("portmap")
                    return p if p and p.get("state") != "trying" else None
                pm = harness.wait_until(settled, 10, what=f"{kind} node's portmap result")
                ext = pm.get("external") or ""
                if pm.get("state") != "mapped" or pm.get("protocol") != proto or \
                        ext.split(":")[0] != sites[kind].public_ip:
                    raise AssertionError(f"portmap {pm!r} (want mapped by {proto} on "
                                         f"{sites[kind].public_ip})")
                with open(os.path.join(lab.dir, "server.log"), errors="replace") as f:
                    u_id = u.node_id()[:12]         # key_short in the server's logs
                    if f"event=candidates node={u_id} mapped=1 first={ext}" not in f.read():
                        raise AssertionError(f"the mediator logged no CANDIDATES {ext} from {u.name}")
                u.cli("join", "lab")
                harness.wait_until(lambda: (r.member("lab", u.name) or {}).get("path") == "direct"
                                   and (u.member("lab", r.name) or {}).get("path") == "direct",
                                   10, what=f"direct path between random and {kind}")
                print(f"h. {kind}: mapped {ext} by {proto}; random <-> {kind}: direct "
                      f"({(r.member('lab', u.name) or {}).get('strategy')})")
            except AssertionError as e:
                failures.append(f"h. {kind}: {e}")
        if failures:
            lab.dump_logs(lines=30)
    print(f"({time.monotonic() - t0:.1f} s)")
    if failures:
        raise AssertionError("\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    natlab.run_test(main)
