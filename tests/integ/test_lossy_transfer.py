"""
50 MB through the overlay over a 50 ms RTT wire that drops 1% of packets at random in each
direction (delaywire --loss-ppm, tests/integ/delaypath.py): from alice through her SOCKS5 port
to a sink that bob exposes (tests/natlab/xfer.py), byte-identical by sha256. This is the path our lwIP's SACK recovery and
controller (netstack/tcp_sack.c, tcp_cc.c) exist for: lwIP's NewReno moved ~2 Mbit/s here,
which would take minutes. The bound (SHOAL_LOSSY_BOUND_S, 240 s) is generous enough never to
flake on a loaded machine; the achieved rate is printed.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Lab, free_port, wait_until  # noqa: E402
from delaypath import ADDR_A, ADDR_B, DelayPath, netns_exec  # noqa: E402

SIZE = 50 * 1024 * 1024
BOUND_S = float(os.environ.get("SHOAL_LOSSY_BOUND_S", "240"))
NAMES = ("shloss-a", "shloss-b", "shlw-a", "shlw-b")

# The byte-exact transfer every lab test uses: serve PORT / send SOCKSPORT ADDR PORT BYTES.
XFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "natlab", "xfer.py")


def main():
    wire = os.path.join(BUILD, "tests", "bench", "delaywire")
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        print("SKIP: needs root, ip(8) and /dev/net/tun for the namespaces and the wire")
        sys.exit(77)
    assert os.access(wire, os.X_OK), f"{wire} not built"
    with DelayPath(delay_ms=25, wire_args=["--loss-ppm", "10000"], names=NAMES) as path, \
            Lab("lossy") as lab:
        wa, wb = netns_exec(path.ns_a), netns_exec(path.ns_b)
        lab.start_server(host=ADDR_A, wrap=wa)
        a = lab.start_daemon("alice", wrap=wa)
        b = lab.start_daemon("bob", wrap=wb)
        a.cli("create", "lossy")
        b.cli("join", "lossy")
        # Over a lossy wire the hole punch may need a retry or two: a bound, not a sleep.
        wait_until(lambda: (a.member("lossy", "bob") or {}).get("path") == "direct", 60,
                   what="direct path")
        port = free_port()
        sink = subprocess.Popen(list(wb) + [sys.executable, XFER, "serve", str(port)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout.readline().strip() == "listening", "sink did not start"
            b.cli("expose", port)
            src = subprocess.run(list(wa) + [sys.executable, XFER, "send", str(a.socks_port),
                                             b.address(), str(port), str(SIZE)],
                                 capture_output=True, text=True, timeout=BOUND_S)
            assert src.returncode == 0, f"source failed: {src.stderr[-400:]}"
        finally:
            sink.kill()
            sink.wait()
        r = json.loads(src.stdout.strip().splitlines()[-1])
        assert r["got_len"] == SIZE, f"sink got {r['got_len']} bytes, want {SIZE}"
        assert r["ok"], f"sha256 differs: {r['got']} != {r['sha256']}"
        elapsed = r["seconds"]
    report = [ln.replace("delaywire: ", "") for ln in path.report() if "dropped" in ln]
    print(f"50 MB over 50 ms RTT, 1% loss: byte-identical in {elapsed:.1f} s "
          f"({SIZE * 8 / elapsed / 1e6:.0f} Mbit/s); wire: {'; '.join(report)}")
    print("PASS")


if __name__ == "__main__":
    main()
