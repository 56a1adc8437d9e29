"""
delaypath: two network namespaces joined by tests/bench/delaywire, a userspace TUN-to-TUN wire
with a fixed one-way delay and optional random loss (--loss-ppm). Shared by the bench
(tests/bench/bench.py: the 50 ms and lossy paths) and tests that need a long, lossy path
(test_lossy_transfer.py).
"""
import os
import select
import subprocess
import tempfile
import signal

from harness import BUILD

# The kernel may lack the netem qdisc, so the delay comes from tests/bench/delaywire: two TUN
# devices, one moved into each namespace, and a userspace loop that hands every packet across
# after DELAY_MS. Namespace A holds the mediator, alice and the iperf3 clients; B holds bob and
# the iperf3 server. Only the two namespaces and the two TUNs are created; host interfaces and
# host sysctls are never touched.
NS_A, NS_B = "shbench-a", "shbench-b"
TUN_A, TUN_B = "shbw-a", "shbw-b"
ADDR_A, ADDR_B = "10.250.0.1", "10.250.0.2"
DELAY_MS = 25
BUF_MAX = 32 * 1024 * 1024


def netns_exec(ns):
    return ("ip", "netns", "exec", ns)


def sh(*argv):
    subprocess.run(argv, check=True)


class DelayPath:
    """Namespaces NS_A and NS_B joined by delaywire. Tears everything down on exit, always.
    A test gives its own names (names=(ns_a, ns_b, tun_a, tun_b)) so that it never touches a
    bench that runs at the same time; the addresses are the same inside every pair."""

    def __init__(self, delay_ms=DELAY_MS, wire_args=(), names=(NS_A, NS_B, TUN_A, TUN_B)):
        self.ns_a, self.ns_b, self.tun_a, self.tun_b = names
        self.delay_ms = delay_ms
        self.wire_args = list(wire_args)
        fd, self.log = tempfile.mkstemp(prefix="shoal-delaywire-", suffix=".log")
        os.close(fd)
        self.wire = None
        self.notes = []

    def __enter__(self):
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, et, ev, tb):
        self._teardown()
        return False

    def _setup(self):
        for n in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
        sh("ip", "netns", "add", self.ns_a)
        sh("ip", "netns", "add", self.ns_b)
        with open(self.log, "wb") as log:
            self.wire = subprocess.Popen([os.path.join(BUILD, "tests", "bench", "delaywire"),
                                          "--delay-ms", str(self.delay_ms)] + self.wire_args + [self.tun_a, self.tun_b],
                                         stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        ready, _, _ = select.select([self.wire.stdout], [], [], 5)
        if not ready or self.wire.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"delaywire did not start (see {self.log})")
        for ns, dev, addr, peer in ((self.ns_a, self.tun_a, ADDR_A, ADDR_B), (self.ns_b, self.tun_b, ADDR_B, ADDR_A)):
            # The fd delaywire holds keeps working after the device changes namespace.
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/30", "peer", peer, "dev", dev)
            # A long queue in the TUN itself, so bursts wait for delaywire instead of dropping.
            sh("ip", "-n", ns, "link", "set", dev, "txqueuelen", "10000", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            self._sysctls(ns)

    def _sysctls(self, ns):
        """Room for a 50 ms window in the kernel's TCP (the reference) and the daemons' sockets."""
        wanted = {"net.core.rmem_max": str(BUF_MAX), "net.core.wmem_max": str(BUF_MAX),
                  "net.ipv4.tcp_rmem": f"4096 131072 {BUF_MAX}", "net.ipv4.tcp_wmem": f"4096 16384 {BUF_MAX}"}
        for k, v in wanted.items():
            # sysctl(8) exits 0 even when the write fails, so read the value back.
            subprocess.run(list(netns_exec(ns)) + ["sysctl", "-q", "-w", f"{k}={v}"], capture_output=True)
            cur = " ".join(subprocess.run(list(netns_exec(ns)) + ["sysctl", "-n", k],
                                          capture_output=True, text=True).stdout.split())
            if cur != v and ns == self.ns_a:
                self.notes.append(f"{k}={cur}")

    def _teardown(self):
        if self.wire and self.wire.poll() is None:
            self.wire.send_signal(signal.SIGTERM)
            try:
                self.wire.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.wire.kill()
                self.wire.wait()
        if self.wire:
            self.wire.stdout.close()
        for n in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)

    def report(self):
        """delaywire's stderr: errors, and per-direction counters at SIGTERM. Call after exit."""
        try:
            with open(self.log) as fh:
                lines = [ln.strip() for ln in fh if ln.strip()]
            os.unlink(self.log)
            return lines
        except OSError:
            return []


