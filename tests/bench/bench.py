"""
make bench: throughput and packet rate through the overlay, side by side with the same
measurement over plain loopback in the same run, plus one run over a network-namespace path with
50 ms RTT (root only; the delay is tests/bench/delaywire, a userspace TUN-to-TUN wire, since netem
may be missing). Prints numbers; asserts nothing about speed.

  TCP:  iperf3 through `shoal forward` (alice) -> `shoal expose` (bob)  vs  iperf3 on loopback
  UDP:  64-byte datagrams through alice's SOCKS5 UDP ASSOCIATE to bob's exposed UDP port
        vs the same sender straight to the sink
  Relay (root: the NAT lab): the same iperf3 and `shoal ping` between two nodes behind
        random-port NATs (relayed through the mediator's embedded relay) beside two behind
        port-restricted NATs (direct), in one lab; the relay's CPU time during the relayed run
        gives what one relay core carries.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integ"))
from harness import BUILD, Lab, binary, free_port, wait_until  # noqa: E402

SECS = float(os.environ.get("SHOAL_BENCH_SECONDS", "5"))
rows = []


def iperf_tcp(port, wrap_client=(), host="127.0.0.1", reverse=False, cc=None):
    argv = list(wrap_client) + ["iperf3", "-c", host, "-p", str(port), "-t", str(SECS), "-J"]
    if reverse:
        argv.append("-R")
    if cc:
        argv += ["-C", cc]      # the sender's congestion control (kernel TCP only)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=SECS + 60)
    if r.returncode != 0:
        return None, (r.stdout + r.stderr)[-400:]
    j = json.loads(r.stdout)
    return j["end"]["sum_received"]["bits_per_second"] / 1e6, None


def start_iperf_server(lab, port, wrap=(), host="127.0.0.1"):
    p = lab.spawn(list(wrap) + ["iperf3", "-s", "-B", host, "-p", str(port)],
                  os.path.join(lab.dir, f"iperf-{port}.log"))
    time.sleep(0.5)
    return p


def udp_rate(sink_port, target_host, target_port, socks_port=None):
    blast = os.path.join(BUILD, "tests", "bench", "udpblast")
    sink = subprocess.Popen([blast, "sink", str(sink_port), str(SECS)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    argv = [blast, "send", target_host, str(target_port), str(SECS + 1)]
    if socks_port:
        argv.append(str(socks_port))
    sent = subprocess.run(argv, capture_output=True, text=True, timeout=SECS + 30).stdout.strip()
    out, _ = sink.communicate(timeout=SECS + 30)
    got = int(out.split()[-1])
    return got / SECS / 1000.0, sent


def row(name, overlay, reference, unit):
    rows.append((name, overlay, reference, unit))
    fmt = lambda v: "fail" if v is None else f"{v:10.1f}"  # noqa: E731
    ratio = f"{overlay / reference * 100:5.1f}%" if overlay and reference else "   - "
    print(f"{name:44s} {fmt(overlay)} {fmt(reference)} {unit:8s} {ratio}", flush=True)


def bench_loopback():
    with Lab("bench") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        a.cli("create", "bench")
        b.cli("join", "bench")
        wait_until(lambda: (a.member("bench", "bob") or {}).get("online"), 3, what="bob online")
        port = free_port()
        start_iperf_server(lab, port)
        b.cli("expose", port)
        lport = free_port()
        a.cli("forward", lport, f"bob:{port}")
        ref, _ = iperf_tcp(port)
        ov, err = iperf_tcp(lport)
        row("TCP 1 stream, loopback (alice->bob)", ov, ref, "Mbit/s")
        if err:
            print("  overlay iperf3:", err)
        ref, _ = iperf_tcp(port, reverse=True)
        ov, err = iperf_tcp(lport, reverse=True)
        row("TCP 1 stream, loopback (bob->alice)", ov, ref, "Mbit/s")

        # lanproxy: iperf3 server and client both under `shoal run`, talking 5.x to 5.x.
        shim_port = free_port()
        shoal = binary("shoal")
        start_iperf_server(lab, shim_port, host="0.0.0.0",
                           wrap=(shoal, "--control", b.ctl, "run", "--"))
        time.sleep(0.5)
        ov, err = iperf_tcp(shim_port, host=b.address(),
                            wrap_client=(shoal, "--control", a.ctl, "run", "--"))
        ref, _ = iperf_tcp(port)
        row("TCP 1 stream, shoal run (alice->bob)", ov, ref, "Mbit/s")
        if err:
            print("  shoal run iperf3:", err)

        sport = free_port()
        b.cli("expose", f"{sport}/udp")
        ref, _ = udp_rate(sport, "127.0.0.1", sport)
        ov, _ = udp_rate(sport, b.address(), sport, socks_port=a.socks_port)
        row("UDP 64-byte packets received, loopback", ov, ref, "kpkt/s")


# --- the 50 ms namespace path (tests/integ/delaypath.py builds it) ---
from delaypath import NS_A, NS_B, ADDR_A, ADDR_B, DELAY_MS, DelayPath, netns_exec  # noqa: E402

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(64)
    s.sendto(d, a)
"""

UDP_PROBE = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))


def probe(seq, timeout):
    s.settimeout(timeout)
    t = time.monotonic()
    s.send(seq.to_bytes(4, "big"))
    try:
        while int.from_bytes(s.recv(64), "big") != seq:  # a late reply to an earlier probe
            pass
    except OSError:  # timeout, or ECONNREFUSED while the echo is still starting
        return None
    return (time.monotonic() - t) * 1000


seq = 0
while probe(seq, 0.5) is None:  # until the echo is up
    seq += 1
    if seq > 40:
        sys.exit("no echo")
rtts = []
for i in range(int(sys.argv[3])):
    seq += 1
    r = probe(seq, 2.0)
    if r is not None:
        rtts.append(r)
    time.sleep(0.05)
print(json.dumps(rtts))
"""


def measure_rtt(lab, samples=10):
    """Round trip across the wire, A -> B -> A: ping if installed, otherwise a UDP echo."""
    if shutil.which("ping"):
        r = subprocess.run(list(netns_exec(NS_A)) + ["ping", "-q", "-c", str(samples), "-i", "0.2", ADDR_B],
                           capture_output=True, text=True, timeout=30)
        for line in r.stdout.splitlines():
            if "min/avg/max" in line:
                mn, avg, mx = (float(x) for x in line.split("=")[1].split()[0].split("/")[:3])
                return mn, avg, mx, "ping"
    port = 7
    lab.spawn(list(netns_exec(NS_B)) + [sys.executable, "-c", UDP_ECHO, ADDR_B, str(port)],
              os.path.join(lab.dir, "udp-echo.log"))
    r = subprocess.run(list(netns_exec(NS_A)) + [sys.executable, "-c", UDP_PROBE, ADDR_B, str(port), str(samples)],
                       capture_output=True, text=True, timeout=60)
    rtts = json.loads(r.stdout) if r.returncode == 0 else []
    if not rtts:
        print("  UDP echo probe:", (r.stdout + r.stderr)[-400:])
        return None
    return min(rtts), sum(rtts) / len(rtts), max(rtts), "UDP echo (no ping installed)"


def in_flight(mbit, rtt_ms):
    """Bytes a sender must keep unacknowledged to reach mbit over rtt_ms, in MB."""
    return mbit * 1e6 / 8 * rtt_ms / 1e3 / 1e6 if mbit else 0.0


def bench_netns():
    wire_bin = os.path.join(BUILD, "tests", "bench", "delaywire")
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun") \
            or not os.access(wire_bin, os.X_OK):
        print(f"(skipped the {2 * DELAY_MS} ms namespace path: needs root, ip, /dev/net/tun and delaywire)")
        return
    path = DelayPath()
    try:
        # The lab closes first, so the daemons stop before their wire and namespaces go away.
        with path, Lab("bench-ns") as lab:
            netns_runs(path, lab)
    finally:
        for line in path.report():
            print("  wire:", line.replace("delaywire: ", ""))


def netns_runs(path, lab):
    """Mediator and alice in A, bob in B; RTT first, then plain TCP and the overlay each way."""
    wa, wb = netns_exec(NS_A), netns_exec(NS_B)
    rtt = measure_rtt(lab)
    if rtt is None:
        raise AssertionError("no round trip across the delay wire")
    print(f"  namespace path: {DELAY_MS} ms each way via delaywire; measured RTT "
          f"min/avg/max {rtt[0]:.1f}/{rtt[1]:.1f}/{rtt[2]:.1f} ms by {rtt[3]}", flush=True)
    if path.notes:
        # Some kernels keep net.core.*mem_max global. It matters little: kernel TCP autotuning
        # follows the per-namespace tcp_rmem/tcp_wmem, and shoald sizes with SO_*BUFFORCE.
        print("  note: not settable inside the namespaces:", ", ".join(path.notes))

    lab.start_server(host=ADDR_A, wrap=wa)
    a = lab.start_daemon("alice", wrap=wa)
    b = lab.start_daemon("bob", wrap=wb)
    a.cli("create", "bench")
    b.cli("join", "bench")
    wait_until(lambda: (a.member("bench", "bob") or {}).get("path") == "direct", 15, what="direct path")
    port, lport = 5201, 15201
    start_iperf_server(lab, port, wrap=wb, host="0.0.0.0")
    b.cli("expose", port)
    a.cli("forward", lport, f"bob:{port}")
    for reverse, label in ((False, "alice->bob"), (True, "bob->alice")):
        ref, rerr = iperf_tcp(port, wrap_client=wa, host=ADDR_B, reverse=reverse)
        ov, err = iperf_tcp(lport, wrap_client=wa, reverse=reverse)
        row(f"TCP 1 stream, {2 * DELAY_MS} ms RTT netns ({label})", ov, ref, "Mbit/s")
        print(f"    in flight at that rate: overlay {in_flight(ov, rtt[1]):.2f} MB, "
              f"plain {in_flight(ref, rtt[1]):.2f} MB", flush=True)
        if err:
            print("  overlay iperf3:", err)
        if rerr:
            print("  plain iperf3:", rerr)


def proc_cpu_s(pid):
    """utime + stime of a process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ping_avg(d, peer, n=10):
    r = d.cli("ping", peer, "-c", n)
    v = [x for x in r.get("rtt_ms", []) if x is not None]
    return sum(v) / len(v) if v else None


def bench_relay():
    """Relayed beside direct in one NAT lab: a <-> b (random vs random: the relay), c <-> d
    (port-restricted: direct). iperf3 through `shoal forward` inside the hosts' namespaces."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "natlab"))
    import natlab  # noqa: E402
    if natlab.require_root() or not shutil.which("iperf3"):
        print("(skipped the relay rows: needs root and iperf3)")
        return
    with natlab.Lab("bench-relay") as lab:
        sites = [lab.add_site(k) for k in ("random", "random", "portrestricted", "portrestricted")]
        lab.start_server()
        ds = [lab.start_daemon(st.hosts[0], n) for st, n in zip(sites, "abcd")]
        ds[0].cli("create", "bench")
        for d in ds[1:]:
            d.cli("join", "bench")
        want = (("a", "b", "relay"), ("c", "d", "direct"))
        by = {d.name: d for d in ds}
        for x, y, kind in want:
            wait_until(lambda: (by[x].member("bench", y) or {}).get("path") == kind and
                       (by[y].member("bench", x) or {}).get("path") == kind, 30,
                       what=f"{x} <-> {y} {kind}")
        res = {}
        for (x, y, kind), st_x, st_y in ((want[0], sites[0], sites[1]),
                                         (want[1], sites[2], sites[3])):
            port, lport = 5201, 15201
            lab.spawn(st_y.hosts[0].ns, ["iperf3", "-s", "-B", "127.0.0.1", "-p", port],
                      os.path.join(lab.dir, f"iperf-{y}.log"))
            time.sleep(0.5)
            by[y].cli("expose", port)
            by[x].cli("forward", lport, f"{y}:{port}")
            cpu0 = proc_cpu_s(lab.server.proc.pid)
            t0 = time.monotonic()
            mbit, err = iperf_tcp(lport, wrap_client=netns_exec(st_x.hosts[0].ns))
            cpu = (proc_cpu_s(lab.server.proc.pid) - cpu0) / (time.monotonic() - t0)
            res[kind] = (mbit, ping_avg(by[x], y), cpu)
            if err:
                print(f"  {kind} iperf3:", err)
        (rm, rp, rcpu), (dm, dp, _) = res["relay"], res["direct"]
        row("TCP 1 stream, NAT lab: relay vs direct", rm, dm, "Mbit/s")
        row("shoal ping RTT, NAT lab: relay vs direct", rp, dp, "ms")
        if rm and rcpu > 0:
            print(f"  relay (embedded in shoal-server, one thread) busy {rcpu * 100:.0f}% of one "
                  f"core at {rm:.0f} Mbit/s: about {rm / rcpu:.0f} Mbit/s per relay core",
                  flush=True)
        if rp is not None and dp is not None:
            print(f"  added latency through the relay: {rp - dp:+.2f} ms", flush=True)
# --- lossy WAN paths (issue 12): the same wire with random loss each way ---
LOSSY = [(25, 0), (25, 1000), (25, 10000), (5, 0), (5, 1000)]     # one-way delay ms, loss per million


def overlay_pair(lab, tag, wa, wb):
    """alice (namespace A) and bob (B) in one network, on a direct path."""
    lab.start_server(host=ADDR_A, wrap=wa)
    a = lab.start_daemon("alice", wrap=wa)
    b = lab.start_daemon("bob", wrap=wb)
    a.cli("create", tag)
    b.cli("join", tag)
    wait_until(lambda: (a.member(tag, "bob") or {}).get("path") == "direct", 30, what="direct path")
    return a, b


def sender_stats(d):
    """The last bulk sender's counters from a daemon's log (shoald logs them when a connection
    ends): recovery and controller behaviour behind a row's number."""
    keep = ("rexmits", "loss_episodes", "lost_bytes", "lossy_rounds", "probes", "rounds")
    time.sleep(0.5)     # the splice ends just after iperf3 does
    try:
        with open(os.path.join(d.state, "shoald.log"), errors="replace") as fh:
            lines = [ln for ln in fh if "event=tcp_sender_stats" in ln]
    except OSError:
        return ""
    if not lines:
        return ""
    kv = dict(f.split("=", 1) for f in lines[-1].split() if "=" in f)
    return " ".join(f"{k}={kv[k]}" for k in keep if k in kv)


def iperf_json(proc):
    out, _ = proc.communicate(timeout=SECS + 60)
    try:
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    except (ValueError, KeyError):
        return None


def bench_lossy():
    wire_bin = os.path.join(BUILD, "tests", "bench", "delaywire")
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun") \
            or not os.access(wire_bin, os.X_OK):
        print("(skipped the lossy paths: needs root, ip, /dev/net/tun and delaywire)")
        return
    ccs = open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()
    print(f"\nlossy paths, TCP 1 stream alice->bob, Mbit/s ({SECS:g} s each; kernel TCP straight "
          f"across the wire, shoal through the overlay):")
    print(f"{'path':30s} {'shoal':>10s} {'kernel BBR':>11s} {'kernel CUBIC':>13s} {'shoal/BBR':>10s} "
          f"{'shoal/CUBIC':>12s}")
    for delay, ppm in LOSSY:
        path = DelayPath(delay_ms=delay, wire_args=["--loss-ppm", str(ppm)])
        name = f"{2 * delay} ms RTT, {ppm / 10000:g}% loss"
        try:
            with path, Lab("bench-loss") as lab:
                wa, wb = netns_exec(NS_A), netns_exec(NS_B)
                a, b = overlay_pair(lab, "bench", wa, wb)
                port, lport = 5201, 15201
                start_iperf_server(lab, port, wrap=wb, host="0.0.0.0")
                b.cli("expose", port)
                a.cli("forward", lport, f"bob:{port}")
                bbr = iperf_tcp(port, wrap_client=wa, host=ADDR_B, cc="bbr")[0] if "bbr" in ccs else None
                cubic = iperf_tcp(port, wrap_client=wa, host=ADDR_B, cc="cubic")[0] if "cubic" in ccs else None
                ov = iperf_tcp(lport, wrap_client=wa)[0]
                stats = sender_stats(a)
        except Exception as e:
            print(f"{name:30s} failed: {e}")
            continue

        def fmt(v):
            return f"{v:10.1f}" if v is not None else f"{'-':>10s}"

        def ratio(x, y):
            return f"{x / y:.2f}x" if x and y else "-"
        print(f"{name:30s} {fmt(ov)} {fmt(bbr):>11s} {fmt(cubic):>13s} {ratio(ov, bbr):>10s} "
              f"{ratio(ov, cubic):>12s}", flush=True)
        if stats:
            print("   shoal sender:", stats)
        for line in path.report():
            if "dropped" in line and ppm:
                print("   wire:", line.replace("delaywire: ", ""))
    if os.environ.get("SHOAL_BENCH_ONLY") != "lossy-rows":
        bench_fairness()
        bench_shallow()


FAIR_RATE_MBIT = int(os.environ.get("SHOAL_BENCH_FAIR_MBIT", "100"))
FAIR_QUEUE_KB = int(os.environ.get("SHOAL_BENCH_FAIR_QUEUE_KB", "610"))    # ~1 BDP at 50 ms
FAIR_SECS = float(os.environ.get("SHOAL_BENCH_FAIR_SECONDS", str(max(SECS, 15))))


def two_flows(wa, first, second):
    """Two iperf3 flows started together from namespace A; each is (host, port, cc or None)."""
    procs = []
    for host, port, cc in (first, second):
        argv = list(wa) + ["iperf3", "-t", str(FAIR_SECS), "-J", "-c", host, "-p", str(port)]
        if cc:
            argv += ["-C", cc]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True))
    return [iperf_json(p) for p in procs]


def bench_fairness():
    """A shoal flow and a kernel CUBIC flow through one bottleneck (delaywire --rate-mbit, a
    tail-drop buffer of about one BDP) at the same time, and kernel BBR beside kernel CUBIC on
    the same wire in the same run as the reference. A rate-limited wire, because without one the
    bottleneck is the wire process's CPU and the shares say more about the scheduler."""
    delay = 25
    name = f"{2 * delay} ms RTT, {FAIR_RATE_MBIT} Mbit/s, {FAIR_QUEUE_KB} KB buffer"
    wire = ["--rate-mbit", str(FAIR_RATE_MBIT), "--queue-kb", str(FAIR_QUEUE_KB)]
    path = DelayPath(delay_ms=delay, wire_args=wire)
    try:
        with path, Lab("bench-fair") as lab:
            wa, wb = netns_exec(NS_A), netns_exec(NS_B)
            a, b = overlay_pair(lab, "fair", wa, wb)
            sport, kport, kport2, lport = 5201, 5202, 5203, 15201
            for p in (sport, kport, kport2):
                start_iperf_server(lab, p, wrap=wb, host="0.0.0.0")
            b.cli("expose", sport)
            a.cli("forward", lport, f"bob:{sport}")
            shoal, cubic1 = two_flows(wa, ("127.0.0.1", lport, None), (ADDR_B, kport, "cubic"))
            stats = sender_stats(a)
            bbr, cubic2 = two_flows(wa, (ADDR_B, kport2, "bbr"), (ADDR_B, kport, "cubic"))
    except Exception as e:
        print(f"fairness, {name}: failed: {e}")
        return

    def fmt(v):
        return f"{v:.1f}" if v is not None else "-"

    def share(x, y):
        return f"{x / (x + y) * 100:.0f}%" if x and y else "-"
    print(f"\nfairness, {name}, {FAIR_SECS:g} s, two flows at once (Mbit/s):", flush=True)
    print(f"  shoal {fmt(shoal)} + kernel CUBIC {fmt(cubic1)}: shoal's share "
          f"{share(shoal, cubic1)}", flush=True)
    if stats:
        print("   shoal sender:", stats)
    print(f"  kernel BBR {fmt(bbr)} + kernel CUBIC {fmt(cubic2)}: BBR's share "
          f"{share(bbr, cubic2)}  (the reference, same wire, same run)", flush=True)
    for line in path.report():
        print("   wire:", line.replace("delaywire: ", ""))


SHALLOW_QUEUE_KB = int(os.environ.get("SHOAL_BENCH_SHALLOW_QUEUE_KB", "64"))    # ~0.1 BDP


def bench_shallow():
    """Pacing at a shallow buffer: the fairness row's 100 Mbit/s, 50 ms bottleneck with a
    buffer of a tenth of its BDP, shoal alone with pacing off and on (SHOAL_TCP_PACING, read by
    shoald at start, so one pair of daemons each), beside kernel BBR (which paces) and CUBIC
    over the same wire in the same lab. The wire's tail drops show what the bursts cost."""
    delay = 25
    name = f"{2 * delay} ms RTT, {FAIR_RATE_MBIT} Mbit/s, {SHALLOW_QUEUE_KB} KB buffer"
    print(f"\nshallow buffer, {name}, one flow at a time, {SECS:g} s each (Mbit/s):", flush=True)
    for pacing in ("0", "1"):
        wire = ["--rate-mbit", str(FAIR_RATE_MBIT), "--queue-kb", str(SHALLOW_QUEUE_KB)]
        path = DelayPath(delay_ms=delay, wire_args=wire)
        old = os.environ.get("SHOAL_TCP_PACING")
        os.environ["SHOAL_TCP_PACING"] = pacing
        try:
            with path, Lab("bench-shallow") as lab:
                wa, wb = netns_exec(NS_A), netns_exec(NS_B)
                a, b = overlay_pair(lab, "shallow", wa, wb)
                port, lport = 5201, 15201
                start_iperf_server(lab, port, wrap=wb, host="0.0.0.0")
                b.cli("expose", port)
                a.cli("forward", lport, f"bob:{port}")
                bbr = iperf_tcp(port, wrap_client=wa, host=ADDR_B, cc="bbr")[0]
                cubic = iperf_tcp(port, wrap_client=wa, host=ADDR_B, cc="cubic")[0]
                ov = iperf_tcp(lport, wrap_client=wa)[0]
                stats = sender_stats(a)
        except Exception as e:
            print(f"  pacing {pacing}: failed: {e}")
            continue
        finally:
            if old is None:
                os.environ.pop("SHOAL_TCP_PACING", None)
            else:
                os.environ["SHOAL_TCP_PACING"] = old
        ratio = f"{ov / bbr:.2f}x" if ov and bbr else "-"
        print(f"  shoal, pacing {'on ' if pacing == '1' else 'off'}: {ov or 0:.1f}  kernel BBR "
              f"{bbr or 0:.1f}  kernel CUBIC {cubic or 0:.1f}  shoal/BBR {ratio}", flush=True)
        if stats:
            print("   shoal sender:", stats)
        for line in path.report():
            print("   wire (all three flows):", line.replace("delaywire: ", ""))


def main():
    # SHOAL_BENCH_ONLY=lossy runs just the lossy-path section (it is the slow one to iterate on),
    # =lossy-rows without the fairness and shallow-buffer rows, =fair only its fairness row,
    # =shallow only the shallow-buffer pacing rows.
    only = os.environ.get("SHOAL_BENCH_ONLY")
    if only == "fair":
        bench_fairness()
        return
    if only == "shallow":
        bench_shallow()
        return
    if only not in ("lossy", "lossy-rows"):
        print(f"{'measurement':44s} {'overlay':>10s} {'reference':>10s} {'unit':8s} ratio")
        bench_loopback()
        bench_netns()
        bench_relay()
    if os.environ.get("SHOAL_BENCH_LOSSY", "1") != "0":
        bench_lossy()


if __name__ == "__main__":
    main()
