"""
50 MB through the overlay over a 50 ms RTT wire that drops 1% of packets at random in each
direction (delaywire --loss-ppm, tests/integ/delaypath.py): alice's `shoal forward` to a sink
that bob exposes, byte-identical by sha256. This is the path our lwIP's SACK recovery and
controller (netstack/tcp_sack.c, tcp_cc.c) exist for: lwIP's NewReno moved ~2 Mbit/s here,
which would take minutes. The bound (SHOAL_LOSSY_BOUND_S, 240 s) is generous enough never to
flake on a loaded machine; the achieved rate is printed.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Lab, free_port, wait_until  # noqa: E402
from delaypath import ADDR_A, ADDR_B, DelayPath, netns_exec  # noqa: E402

SIZE = 50 * 1024 * 1024
BOUND_S = float(os.environ.get("SHOAL_LOSSY_BOUND_S", "240"))
NAMES = ("shloss-a", "shloss-b", "shlw-a", "shlw-b")

# Both ends generate the same deterministic stream: 1 MiB blocks of a counter-seeded hash.
BLOCK = """
import hashlib
def block(i):
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return seed * (1048576 // 32)
"""

SINK = BLOCK + """
import hashlib, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), flush=True)
"""

SOURCE = BLOCK + """
import hashlib, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
h = hashlib.sha256()
t = time.monotonic()
for i in range(int(sys.argv[2]) // 1048576):
    b = block(i)
    h.update(b)
    c.sendall(b)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(h.hexdigest(), time.monotonic() - t, flush=True)
"""


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
        port, lport = free_port(), free_port()
        sink = subprocess.Popen(list(wb) + [sys.executable, "-c", SINK, str(port)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout.readline().strip() == "ready", "sink did not start"
            b.cli("expose", port)
            a.cli("forward", lport, f"bob:{port}")
            t = time.monotonic()
            src = subprocess.run(list(wa) + [sys.executable, "-c", SOURCE, str(lport), str(SIZE)],
                                 capture_output=True, text=True, timeout=BOUND_S)
            assert src.returncode == 0, f"source failed: {src.stderr[-400:]}"
            out, _ = sink.communicate(timeout=60)
            elapsed = time.monotonic() - t
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
        want = src.stdout.split()[0]
        n, got = out.split()[:2]
        assert int(n) == SIZE, f"sink got {n} bytes, want {SIZE}"
        assert got == want, f"sha256 differs: {got} != {want}"
    report = [ln.replace("delaywire: ", "") for ln in path.report() if "dropped" in ln]
    print(f"50 MB over 50 ms RTT, 1% loss: byte-identical in {elapsed:.1f} s "
          f"({SIZE * 8 / elapsed / 1e6:.0f} Mbit/s); wire: {'; '.join(report)}")
    print("PASS")


if __name__ == "__main__":
    main()
