#!/usr/bin/env python3
"""
NAT lab, relays (PROTOCOL.md 8; root, skipped with 77 otherwise). The mediator's embedded relay
(shoal-server's PORT+3, UDP and TCP) is the pool. Six nodes in one network:
  a, b   behind random-port NATs (no direct path possible)
  c      behind a router that blocks UDP (only TCP gets out)
  d, e, f behind port-restricted NATs (direct works)
1. a <-> b: path relay on both sides (with the relay's name and why), `shoal ping` says so in
   one line, and NATLAB_RELAY_MB (default 100) MB sent a -> b arrive byte-identical.
2. c <-> b: path relay over TCP (c's UDP is blocked); 8 MB arrive byte-identical; c ranks the
   pool by timed TCP connects (its UDP pings get no answer).
3. d <-> e: direct. A transfer d -> e runs; when a quarter of it is sent, d's router drops UDP
   between the sites (lab.block_udp): d moves to the relay (time printed), the transfer
   completes byte-identical (same session, the TCP connection survives). Unblocked: direct again.
4. d <-> f: punchable NATs, but UDP between the two sites dies before f arrives: the punch
   the mediator plans runs out, and the pair says why it is relayed: punch-failed.
Prints every time it measured; asserts none of them.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
from test_natlab_alive import log_time  # noqa: E402

XFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xfer.py")
MB = 1 << 20
SIZE = int(float(os.environ.get("NATLAB_RELAY_MB", "100")) * MB)
SVC_PORT = 5001
SOCKS = 1080


def member(d, nick):
    return d.member("lab", nick) or {}


def wait_path(d, nick, want, deadline):
    """Seconds until d's path to nick is `want` (polling `list`)."""
    t0 = time.monotonic()
    while True:
        m = member(d, nick)
        if m.get("path") == want:
            return time.monotonic() - t0, m
        if time.monotonic() > t0 + deadline:
            raise AssertionError(f"{d.name} -> {nick}: path {m.get('path')!r}, not {want!r} "
                                 f"within {deadline} s ({m})")
        time.sleep(0.1)


def wait_reason(d, nick, want, deadline):
    """Seconds until d's relay_reason for nick is one of `want` (the mediator's plan, or the
    daemon's own news once the punch it was sent is over)."""
    t0 = time.monotonic()
    while True:
        m = member(d, nick)
        if m.get("relay_reason") in want:
            return time.monotonic() - t0, m
        if time.monotonic() > t0 + deadline:
            raise AssertionError(f"{d.name} -> {nick}: relay_reason "
                                 f"{m.get('relay_reason')!r}, not one of {want} ({m})")
        time.sleep(0.1)


def serve(lab, host):
    p = lab.spawn(host.ns, ["python3", XFER, "serve", SVC_PORT],
                  os.path.join(lab.dir, f"xfer-{host.name}.log"))
    harness.wait_until(lambda: natlab.sh("python3", "-c", "import socket;socket.create_connection"
                                         f"(('127.0.0.1',{SVC_PORT}),1).close()", ns=host.ns,
                                         check=False).returncode == 0, 10, what="xfer server")
    return p


def start_send(lab, host, dst_addr, size, progress=None):
    argv = ["ip", "netns", "exec", host.ns, "python3", XFER, "send", SOCKS, dst_addr, SVC_PORT,
            size] + ([progress] if progress else [])
    return subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_send(p, timeout=600):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"transfer failed: {err.strip()[-400:]}")
    r = json.loads(out.strip().splitlines()[-1])
    if not r["ok"]:
        raise AssertionError(f"transfer corrupted: {r}")
    return r


def progress(path):
    try:
        return int(open(path).read() or 0)
    except (OSError, ValueError):
        return 0


def main():
    with natlab.Lab("relay") as lab:
        sa, sb = lab.add_site("random"), lab.add_site("random")
        sc = lab.add_site("udpblock")
        sd, se = lab.add_site("portrestricted"), lab.add_site("portrestricted")
        sf = lab.add_site("portrestricted")
        lab.start_server()
        a = lab.start_daemon(sa.hosts[0], "a", socks=SOCKS)
        b = lab.start_daemon(sb.hosts[0], "b", socks=SOCKS)
        c = lab.start_daemon(sc.hosts[0], "c", socks=SOCKS)
        d = lab.start_daemon(sd.hosts[0], "d", socks=SOCKS)
        e = lab.start_daemon(se.hosts[0], "e", socks=SOCKS)
        a.cli("create", "lab")
        for x in (b, c, d, e):
            x.cli("join", "lab")
        # 1. random vs random
        ta, ma = wait_path(a, "b", "relay", 30)
        tb, _ = wait_path(b, "a", "relay", 30)
        print(f"1. random <-> random: relay after {ta:.1f} s / {tb:.1f} s: "
              f"relay={ma.get('relay')} transport={ma.get('transport')} "
              f"relay_reason={ma.get('relay_reason')} rtt_ms={ma.get('rtt_ms')}")
        if not ma.get("relay") or not ma.get("relay_reason"):
            raise AssertionError(f"a's list shows no relay name/reason: {ma}")
        # Once both NATs are classified the plan says why: no punch can work.
        tr, ma = wait_reason(a, "b", ("no-direct",), 20)
        print(f"   relay_reason={ma.get('relay_reason')} after {ta + tr:.1f} s")
        r = a.cli("ping", "b", "-c", "1", json_out=False)
        line = [x for x in r.splitlines() if "via relay" in x]
        if not line:
            raise AssertionError(f"shoal ping does not say relay: {r!r}")
        print(f"   shoal ping: {line[0]}")
        st = a.status()
        print(f"   a's pool: {st.get('relays')}")
        line = [x for x in a.cli("status", json_out=False).splitlines()
                if x.startswith("relays:")]
        if not line or "embedded" not in line[0]:
            raise AssertionError(f"shoal status shows no relay pool: {line}")
        print(f"   shoal status: {line[0]}")
        line = [x for x in a.cli("list", json_out=False).splitlines() if "via " in x]
        print(f"   shoal list: {line[0].strip() if line else '(no relay line)'}")
        b.cli("expose", SVC_PORT)
        serve(lab, sb.hosts[0])
        res = finish_send(start_send(lab, sa.hosts[0], b.address(), SIZE))
        print(f"   {SIZE // MB} MB a -> b through the relay: byte-identical, "
              f"{res['seconds']} s ({SIZE * 8 / res['seconds'] / 1e6:.0f} Mbit/s)")

        # 2. UDP blocked vs random: relay over TCP
        tc, mc = wait_path(c, "b", "relay", 40)
        print(f"2. udpblock <-> random: relay after {tc:.1f} s: relay={mc.get('relay')} "
              f"transport={mc.get('transport')} relay_reason={mc.get('relay_reason')}")
        tr, mc = wait_reason(c, "b", ("udp-blocked",), 20)
        print(f"   relay_reason={mc.get('relay_reason')} after {tc + tr:.1f} s")
        if mc.get("transport") != "tcp":
            raise AssertionError(f"c -> b should be relayed over TCP: {mc}")
        res = finish_send(start_send(lab, sc.hosts[0], b.address(), 8 * MB))
        print(f"   8 MB c -> b: byte-identical, {res['seconds']} s")
        # Without UDP, c still measures the pool: TCP connects to the relay, timed.
        harness.wait_until(lambda: any(r.get("reachable") and r.get("rtt_ms") is not None
                                       for r in c.status().get("relays") or []), 30,
                           what="c's pool measured over TCP")
        print(f"   c's pool without UDP: {c.status().get('relays')}")

        # 3. direct, blocked mid-transfer, unblocked
        wait_path(d, "e", "direct", 30)
        wait_path(e, "d", "direct", 30)
        e.cli("expose", SVC_PORT)
        serve(lab, se.hosts[0])
        prog = os.path.join(lab.dir, "progress-d")
        p = start_send(lab, sd.hosts[0], e.address(), SIZE, prog)
        harness.wait_until(lambda: progress(prog) >= SIZE // 4 or p.poll() is not None,
                           300, interval=0.05, what="a quarter of the transfer")
        t_wall = time.time()
        with lab.block_udp(sd, se.public_ip):
            t0 = time.monotonic()
            wait_path(d, "e", "relay", 15)
            t_d = time.monotonic() - t0
            wait_path(e, "d", "relay", 15)
            t_e = time.monotonic() - t0
            sw = [log_time(x, "to=relay", t_wall) for x in (d, e)]
            print(f"3. direct blocked mid-transfer at {progress(prog) // MB} MB: d on the "
                  f"relay after {t_d:.2f} s, e after {t_e:.2f} s (polling `list`); "
                  f"their logs: switched after "
                  + " / ".join("?" if x is None else f"{x:.2f} s" for x in sw))
            harness.wait_until(lambda: progress(prog) >= SIZE // 2 or p.poll() is not None,
                               300, interval=0.05, what="half of the transfer")
        t_back, _ = wait_path(d, "e", "direct", 30)
        print(f"   unblocked: d direct again after {t_back:.1f} s")
        res = finish_send(p)
        print(f"   {SIZE // MB} MB d -> e across both switches: byte-identical, "
              f"{res['seconds']} s")

        # 4. a punch that cannot work although the plan says it can
        with lab.block_udp(sd, sf.public_ip):
            f = lab.start_daemon(sf.hosts[0], "f", socks=SOCKS)
            f.cli("join", "lab")
            tf, mf = wait_path(d, "f", "relay", 30)
            tr, mf = wait_reason(d, "f", ("punch-failed",), 30)
            print(f"4. d <-> f with UDP between them dropped: relay after {tf:.1f} s, "
                  f"relay_reason={mf.get('relay_reason')} after {tf + tr:.1f} s")


if __name__ == "__main__":
    natlab.run_test(main)
