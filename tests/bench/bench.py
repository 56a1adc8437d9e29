"""
make bench: throughput and packet rate through the overlay, side by side with the same
measurement over plain loopback in the same run, plus one run over a network-namespace path with
50 ms RTT (root only). Prints numbers; asserts nothing about speed.

  TCP:  iperf3 through `shoal forward` (alice) -> `shoal expose` (bob)  vs  iperf3 on loopback
  UDP:  64-byte datagrams through alice's SOCKS5 UDP ASSOCIATE to bob's exposed UDP port
        vs the same sender straight to the sink
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integ"))
from harness import BUILD, Lab, free_port, wait_until  # noqa: E402

SECS = float(os.environ.get("SHOAL_BENCH_SECONDS", "5"))
rows = []


def iperf_tcp(port, wrap_client=(), host="127.0.0.1", reverse=False):
    argv = list(wrap_client) + ["iperf3", "-c", host, "-p", str(port), "-t", str(SECS), "-J"]
    if reverse:
        argv.append("-R")
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

        sport = free_port()
        b.cli("expose", f"{sport}/udp")
        ref, _ = udp_rate(sport, "127.0.0.1", sport)
        ov, _ = udp_rate(sport, b.address(), sport, socks_port=a.socks_port)
        row("UDP 64-byte packets received, loopback", ov, ref, "kpkt/s")


def sh(*argv):
    subprocess.run(argv, check=True)


def bench_netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        print("(skipped the 50 ms namespace path: needs root, ip and tc)")
        return
    na, nb = "shbench-a", "shbench-b"
    for n in (na, nb):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
    try:
        sh("ip", "netns", "add", na)
        sh("ip", "netns", "add", nb)
        sh("ip", "link", "add", "shb0", "netns", na, "type", "veth", "peer", "name", "shb1", "netns", nb)
        for ns, dev, addr in ((na, "shb0", "10.250.0.1/24"), (nb, "shb1", "10.250.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "25ms",
               "limit", "100000")
            for k in ("rmem_max", "wmem_max"):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", f"net.core.{k}=16777216"])
        wa = ("ip", "netns", "exec", na)
        wb = ("ip", "netns", "exec", nb)
        with Lab("bench-ns") as lab:
            lab.start_server(host="10.250.0.1", wrap=wa)
            a = lab.start_daemon("alice", wrap=wa)
            b = lab.start_daemon("bob", wrap=wb)
            a.cli("create", "bench")
            b.cli("join", "bench")
            wait_until(lambda: (a.member("bench", "bob") or {}).get("path") == "direct", 10, what="direct")
            port = 5201
            start_iperf_server(lab, port, wrap=wb, host="0.0.0.0")
            b.cli("expose", port)
            a.cli("forward", 15201, f"bob:{port}")
            ref, _ = iperf_tcp(port, wrap_client=wa, host="10.250.0.2")
            ov, err = iperf_tcp(15201, wrap_client=wa)
            row("TCP 1 stream, 50 ms RTT namespace path", ov, ref, "Mbit/s")
            if err:
                print("  overlay iperf3:", err)
    finally:
        for n in (na, nb):
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)


def main():
    print(f"{'measurement':44s} {'overlay':>10s} {'reference':>10s} {'unit':8s} ratio")
    bench_loopback()
    bench_netns()


if __name__ == "__main__":
    main()
