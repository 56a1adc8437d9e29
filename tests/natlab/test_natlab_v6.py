#!/usr/bin/env python3
"""
NAT lab, global IPv6 beside IPv4 NAT (PROTOCOL.md 3.2; root, skipped with 77 otherwise).
A and B behind `random` IPv4 NATs (the pair no IPv4 punching reaches), both sites with a
routed 2001:db8:<i>::/64 behind a stateful IPv6 firewall (inbound only for established flows).
1. Both daemons put their global IPv6 address in HELLO; each learns the other's in MEMBER
   (`shoal list --json`'s "endpoints" has a "[2001:db8:...]:port").
2. The mediator plans `simultaneous` over IPv6 (both sides send at once, which opens both
   firewalls); the pair becomes direct over IPv6 (`endpoint` is "[v6]:port"), pings pass, and
   1 MiB goes through A's SOCKS to a service B exposes and back, byte for byte.
3. A third site, IPv4 only (portrestricted), still gets its IPv4 path to A as before.
4. D, behind a `random` NAT too, starts without its IPv6 address (relayed to A); the address
   arrives later: D's daemon sees it (rtnetlink) and tells the mediator (LOCALS, PROTOCOL.md
   3.5) without reconnecting, the pair is planned again and becomes direct over IPv6.
Prints how long each step took.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import harness  # noqa: E402
from test_natlab_alive import grep_log  # noqa: E402


def member(d, nick):
    return d.member("lab", nick) or {}


def v6_direct(d, nick):
    m = member(d, nick)
    return m.get("path") == "direct" and (m.get("endpoint") or "").startswith("[2001:db8:")


SVC_PORT, SOCKS_PORT = 7000, 1080

# An echo service on B's loopback (B exposes it to the network), ready once it prints.
ECHO = """
import socket, threading
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", %d)); ls.listen(4); print("ready", flush=True)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
""" % SVC_PORT

# In A's namespace: 1 MiB through A's SOCKS to B's virtual address, read back, compare.
CLIENT = """
import os, socket, struct, sys, time
host, n = sys.argv[1], 1 << 20
s = socket.create_connection(("127.0.0.1", %d), timeout=20)
s.sendall(b"\\x05\\x01\\x00"); assert s.recv(2) == b"\\x05\\x00"
s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton(host) + struct.pack(">H", %d))
rep = b""
while len(rep) < 10:
    rep += s.recv(10 - len(rep))
assert rep[1] == 0, rep
data, got, t0 = os.urandom(n), b"", time.monotonic()
s.sendall(data)
while len(got) < n:
    d = s.recv(65536)
    if not d:
        break
    got += d
print("ok" if got == data else "mismatch %%d of %%d" %% (len(got), n), "%%.2f" %% (time.monotonic() - t0))
""" % (SOCKS_PORT, SVC_PORT)


def socks_roundtrip(lab, a_host, b_daemon):
    """1 MiB from A's namespace through A's SOCKS to B's exposed echo service and back."""
    svc = subprocess.Popen(["ip", "netns", "exec", b_daemon.host.ns, "python3", "-u", "-c", ECHO],
                           stdout=subprocess.PIPE, text=True)
    lab.procs.append(svc)
    if svc.stdout.readline().strip() != "ready":
        raise AssertionError("the echo service did not start")
    b_daemon.cli("expose", str(SVC_PORT))
    r = subprocess.run(["ip", "netns", "exec", a_host.ns, "python3", "-c", CLIENT,
                        b_daemon.address()], capture_output=True, text=True, timeout=60)
    out = r.stdout.strip().split()
    if r.returncode != 0 or not out or out[0] != "ok":
        raise AssertionError(f"SOCKS round trip failed: {r.stdout} {r.stderr}")
    return float(out[1])


def main():
    t_start = time.monotonic()
    with natlab.Lab("v6") as lab:
        sa = lab.add_site("random", ipv6=True)
        sb = lab.add_site("random", ipv6=True)
        sc = lab.add_site("portrestricted")
        sd = lab.add_site("random", ipv6=True)
        lab.start_server()
        a = lab.start_daemon(sa.hosts[0], "a", socks=SOCKS_PORT)
        b = lab.start_daemon(sb.hosts[0], "b")
        b.host = sb.hosts[0]
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
            secs = socks_roundtrip(lab, sa.hosts[0], b)
            if not (v6_direct(a, "b") and v6_direct(b, "a")):
                raise AssertionError(f"left IPv6: {member(a, 'b')} / {member(b, 'a')}")
            print(f"2. pings a <-> b passed over IPv6; 1 MiB through a's SOCKS to b's "
                  f"service and back in {secs:.2f} s, still over IPv6")

            # 3. the IPv4-only site reaches a over IPv4 (random vs portrestricted: birthday)
            harness.wait_until(lambda: member(c, "a").get("path") == "direct"
                               and member(a, "c").get("path") == "direct", 40, interval=0.2,
                               what="direct IPv4 path between c and a")
            ep = member(c, "a").get("endpoint") or ""
            if ep.startswith("["):
                raise AssertionError(f"c has no IPv6, yet its path to a is {ep}")
            print(f"3. c (IPv4 only) <-> a direct over IPv4: {ep} "
                  f"[{member(c, 'a').get('strategy')}]")

            # 4. an IPv6 address that arrives after the daemon started
            hd = sd.hosts[0]
            natlab.sh("ip", "-n", hd.ns, "-6", "addr", "del", f"{hd.addr6}/64", "dev", "eth0")
            d = lab.start_daemon(hd, "d")
            d.cli("join", "lab")
            harness.wait_until(lambda: member(a, "d").get("path") == "relay", 30,
                               interval=0.1, what="a <-> d relayed (no IPv6 on d yet)")
            if any(e.startswith("[") for e in member(a, "d").get("endpoints") or []):
                raise AssertionError(f"d has no IPv6 yet: {member(a, 'd')}")
            t0, connects = time.monotonic(), grep_log(d, "event=mediator_connected")
            natlab.sh("ip", "-n", hd.ns, "-6", "addr", "add", f"{hd.addr6}/64", "dev", "eth0",
                      "nodad")
            natlab.sh("ip", "-n", hd.ns, "-6", "route", "replace", f"{natlab.V6_PREFIX}::/32",
                      "via", f"{natlab.v6_site_net(sd.index)}1")
            harness.wait_until(lambda: v6_direct(a, "d") and v6_direct(d, "a"), 30,
                               interval=0.1, what="a <-> d direct over IPv6 after d got it")
            t_v6 = time.monotonic() - t0
            if grep_log(d, "event=mediator_connected") != connects:
                raise AssertionError("d reconnected to the mediator to announce its address")
            if grep_log(d, "event=locals_sent") < 1:
                raise AssertionError("d did not send LOCALS")
            print(f"4. d got its IPv6 address while connected: a <-> d direct over IPv6 "
                  f"{t_v6:.1f} s later ({member(a, 'd').get('endpoint')}), same mediator "
                  f"connection")
        except AssertionError:
            lab.dump_logs(lines=40)
            raise
    print(f"({time.monotonic() - t_start:.1f} s)")


if __name__ == "__main__":
    natlab.run_test(main)
