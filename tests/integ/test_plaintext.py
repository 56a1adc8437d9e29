"""
Captured UDP between daemons never contains the plaintext: a distinctive message sent through
the overlay (and the nicks, network name and password) do not appear in a packet capture of the
machine's interfaces, while the capture does see the daemons' UDP packets. Needs tcpdump and the
right to capture (CI runs as root); otherwise it reports SKIP (exit 77).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, socks_connect  # noqa: E402
from services import HashService  # noqa: E402

MARKER = b"PLAINTEXT-MARKER-" + b"7f3a9c" * 10


def main():
    if not shutil.which("tcpdump") or os.geteuid() != 0:
        print("SKIP: needs tcpdump and root to capture")
        sys.exit(77)
    svc = HashService()
    with Lab("plaintext") as lab:
        server = lab.start_server()
        pcap = os.path.join(lab.dir, "lo.pcap")
        # Daemon-to-daemon UDP and the control channel; local plaintext legs (test client to
        # SOCKS, daemon to the local service) are TCP on other ports and are left out on purpose.
        cap = subprocess.Popen(["tcpdump", "-Z", "root", "--immediate-mode", "-i", "any", "-U", "-s", "0", "-w", pcap,
                                f"udp or tcp port {server.port}"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(lab.dir, "tcpdump.log"), "w"))
        try:
            time.sleep(1.0)
            a = lab.start_daemon("alice", nick="alice-secret-nick")
            b = lab.start_daemon("bob", nick="bob-secret-nick")
            a.cli("create", "secretnetname", "--password", "hunter2password")
            b.cli("join", "secretnetname", "--password", "hunter2password")
            b.cli("expose", svc.port)
            wait_until(lambda: (a.member("secretnetname", "bob-secret-nick") or {}).get("online"), 2, what="online")
            s = socks_connect(a.socks_port, b.address(), svc.port)
            s.sendall(b"UP\n" + MARKER * 100)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100)
            s.close()
            time.sleep(0.5)
        finally:
            time.sleep(0.5)
            cap.send_signal(signal.SIGINT)
            cap.wait()
        data = open(pcap, "rb").read()
        udp = subprocess.run(["tcpdump", "-r", pcap, "-n", "udp"], capture_output=True, text=True).stdout
        assert udp.count("UDP") > 20, "no UDP traffic between daemons captured"
        for word in (b"PLAINTEXT-MARKER", b"hunter2password", b"secretnetname", b"alice-secret", b"bob-secret"):
            assert word not in data, f"{word!r} found in the capture"


if __name__ == "__main__":
    run(main)
