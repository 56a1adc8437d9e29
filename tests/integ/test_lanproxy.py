"""
`shoal run` across three real daemons and a mediator: unmodified programs on the virtual LAN.

Real programs: curl and wget to `python3 -m http.server` run under `shoal run` on another node,
nc TCP and UDP, socat UDP broadcast to receivers on two nodes, iperf3 TCP. tests/integ/shim_probe
(an ordinary C program) covers the matrix: blocking / poll / epoll connects over AF_INET and
v4-mapped AF_INET6, refused connects, UDP echo with recvmsg, the shoal0 interface, a LAN game's
broadcast server browser on three nodes, and multicast.

All nodes share one host here, so sockets of different "nodes" on one port also share the
kernel's port space: broadcast copies reach every node's socket and the sources of copies meant
for another node may show that node's alias. Checks therefore look at payloads (names), and
at addresses only where one node's program is alone on its port.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, binary, free_port, BUILD  # noqa: E402

PROBE = os.path.join(BUILD, "tests", "integ", "shim_probe")


def shoal_run(d, *argv, timeout=30, check=True):
    r = subprocess.run([binary("shoal"), "--control", d.ctl, "run", "--"] + [str(a) for a in argv],
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} exit {r.returncode}: {r.stdout} {r.stderr}")
    return r


def spawn_run(lab, d, name, *argv):
    log = os.path.join(lab.dir, f"{name}.log")
    return lab.spawn([binary("shoal"), "--control", d.ctl, "run", "--"] + [str(a) for a in argv], log), log


def read(log):
    with open(log, errors="replace") as f:
        return f.read()


def main():
    with Lab("lanproxy") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        c = lab.start_daemon("carol")
        a.cli("create", "lan")
        b.cli("join", "lan")
        c.cli("join", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online")
                   and (a.member("lan", "carol") or {}).get("online")
                   and (b.member("lan", "carol") or {}).get("online"), 10, what="all online")
        aa, ba = a.address(), b.address()

        # refusals: nothing to run, a static program, shoald not running
        r = subprocess.run([binary("shoal"), "--control", a.ctl, "run"], capture_output=True, text=True)
        assert r.returncode == 2 and "missing the command" in r.stderr, r.stderr
        # shoald not running: the program still runs; its shim says so once, when it needs shoald
        r = subprocess.run([binary("shoal"), "--control", os.path.join(lab.dir, "nope", "ctl.sock"), "run",
                            PROBE, "ifaces"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and "getifaddrs" not in r.stdout, (r.stdout, r.stderr)
        assert r.stderr.count("shoald not reachable at " + os.path.join(lab.dir, "nope", "shim.sock")) == 1, r.stderr
        r = shoal_run(a, "no-such-program-xyz", check=False)
        assert r.returncode == 127 and "command not found" in r.stderr, r.stderr
        static = shutil.which("ldconfig") or "/sbin/ldconfig"     # statically linked on Debian
        if os.path.exists(static):
            r = shoal_run(a, static, "--version", check=False)
            if "statically linked" in r.stderr:
                assert r.returncode == 126 and "SOCKS5" in r.stderr, r.stderr
        # the exit status is the program's
        assert shoal_run(a, "sh", "-c", "exit 7", check=False).returncode == 7

        # shoal0 as the program sees it
        out = shoal_run(a, PROBE, "ifaces").stdout
        assert f"getifaddrs addr={aa} " in out and "flags=0x1043" in out, out
        assert f"SIOCGIFADDR={aa}" in out and "SIOCGIFCONF shoal0=1" in out and "bindtodevice=0" in out, out
        assert "SIOCGIFMTU=" in out and "nametoindex=0" not in out, out

        # curl and wget to python's http.server under shoal run on bob (dual-stack bind)
        port = free_port()
        http, http_log = spawn_run(lab, b, "http", sys.executable, "-m", "http.server", port,
                                   "--directory", lab.dir)
        wait_until(lambda: "Serving HTTP" in read(http_log), 10, what="http.server up")
        if shutil.which("curl"):
            r = shoal_run(a, "curl", "-sS", "-m", "10", "-o", "/dev/null", "-w",
                          "%{http_code} %{remote_ip} %{local_ip}", f"http://{ba}:{port}/")
            assert r.stdout == f"200 {ba} {aa}", r.stdout
            wait_until(lambda: f"{aa} - -" in read(http_log), 5, what="server saw our 5.x address")
        if shutil.which("wget"):
            r = shoal_run(a, "wget", "-q", "-O", "-", f"http://{ba}:{port}/")
            assert "Directory listing" in r.stdout, r.stdout[:200]

        # the C matrix: TCP connects, every mode and family, and refusals
        sport = free_port()
        srv, srv_log = spawn_run(lab, b, "probe-tcp", PROBE, "serve-tcp", 6, sport)
        wait_until(lambda: "listening" in read(srv_log), 10, what="probe server")
        dead = free_port()
        for fam in (4, 6):
            for mode in ("block", "poll", "epoll"):
                out = shoal_run(a, PROBE, "connect", mode, fam, ba, sport).stdout
                assert out.startswith(f"ok local={aa}:") and f"peer={ba}:{sport} echo=echo-me" in out, \
                    (mode, fam, out)
                out = shoal_run(a, PROBE, "connect", mode, fam, ba, dead, check=False).stdout
                assert out.strip() == "err ECONNREFUSED", (mode, fam, out)
        wait_until(lambda: f"peer={aa}:" in read(srv_log) and f"local={ba}:{sport}" in read(srv_log), 5,
                   what="accept reports 5.x addresses")

        # UDP echo, AF_INET and v4-mapped AF_INET6, both ways of receiving
        for fam in (4, 6):
            uport = free_port(kind=2)
            _, ulog = spawn_run(lab, c, f"udp-echo{fam}", PROBE, "udp-echo", fam, uport)
            wait_until(lambda: "listening" in read(ulog), 10, what="udp echo")
            for cfam in (4, 6):
                out = shoal_run(a, PROBE, "udp-ping", cfam, c.address(), uport).stdout
                assert out.strip() == f"reply from={c.address()}:{uport}", out
            wait_until(lambda: f"from={aa}:" in read(ulog), 5, what="udp echo saw our 5.x")

        # nc: TCP and UDP
        if shutil.which("nc"):
            nport = free_port()
            _, nlog = spawn_run(lab, c, "nc-tcp", "nc", "-l", nport)
            time.sleep(0.5)
            r = subprocess.run([binary("shoal"), "--control", a.ctl, "run", "nc", "-N", c.address(), str(nport)],
                               input="hello over tcp\n", capture_output=True, text=True, timeout=15)
            wait_until(lambda: "hello over tcp" in read(nlog), 5, what="nc tcp data")
            uport = free_port(kind=2)
            _, ulog = spawn_run(lab, c, "nc-udp", "nc", "-u", "-l", uport)
            for _ in range(10):    # until nc is up on carol (UDP has no connect to wait on)
                time.sleep(0.3)
                subprocess.run([binary("shoal"), "--control", a.ctl, "run", "nc", "-u", "-q0", c.address(),
                                str(uport)], input="hello over udp\n", capture_output=True, text=True, timeout=15)
                if "hello over udp" in read(ulog):
                    break
            wait_until(lambda: "hello over udp" in read(ulog), 5, what="nc udp data")

        # socat: one broadcast sender, receivers on two other nodes
        if shutil.which("socat"):
            bport = free_port(kind=2)
            logs = []
            for d in (b, c):
                _, log = spawn_run(lab, d, f"socat-{d.name}", "socat", "-u",
                                   f"UDP4-RECVFROM:{bport},reuseaddr,fork", "-")
                logs.append(log)
            time.sleep(0.7)
            for dst in ("255.255.255.255", "5.255.255.255"):
                subprocess.run([binary("shoal"), "--control", a.ctl, "run", "socat", "-u", "-",
                                f"UDP4-DATAGRAM:{dst}:{bport},broadcast"],
                               input=f"probe to {dst}\n", capture_output=True, text=True, timeout=15)
            for log in logs:
                wait_until(lambda: "probe to 255.255.255.255" in read(log) and "probe to 5.255.255.255" in read(log),
                           5, what="broadcast at both receivers")

        # a LAN game's server browser on three nodes: each lists the other two within 2 s
        gport = free_port(kind=2)
        # (probes only on shoal0: the host's real broadcast would find the servers without us)
        procs = [(n, *spawn_run(lab, d, f"discover-{n}", PROBE, "discover", gport, n, 2, "shoal0"))
                 for n, d in (("bob", b), ("carol", c))]
        out = shoal_run(a, PROBE, "discover", gport, "alice", 2, "shoal0").stdout
        # names only: on one host a copy can reach another node's socket first (see the top)
        assert "server bob " in out and "server carol " in out, out
        for n, p, log in procs:
            p.wait(timeout=10)
            others = {"alice", "bob", "carol"} - {n}
            for o in others:
                assert f"server {o} " in read(log), (n, read(log))

        # multicast: a group joined on shoal0 reaches the other members
        mport = free_port(kind=2)
        procs = [(n, *spawn_run(lab, d, f"mcast-{n}", PROBE, "mcast", "239.255.42.7", mport, n, 2.5))
                 for n, d in (("bob", b), ("carol", c))]
        out = shoal_run(a, PROBE, "mcast", "239.255.42.7", mport, "alice", 2.5).stdout
        assert "member bob " in out and "member carol " in out, out

        # iperf3 TCP with the server under shoal run
        if shutil.which("iperf3"):
            iport = free_port()
            _, ilog = spawn_run(lab, b, "iperf3-s", "iperf3", "-s", "-1", "--forceflush", "-p", iport)
            wait_until(lambda: "Server listening" in read(ilog), 10, what="iperf3 server")
            r = shoal_run(a, "iperf3", "-c", ba, "-p", iport, "-t", "1", timeout=60)
            assert "receiver" in r.stdout, r.stdout

        # shoald gone: the program still runs, with one line on stderr
        env = dict(os.environ, LD_PRELOAD=os.path.join(BUILD, "lanproxy", "libshoal-preload.so"),
                   SHOAL_SHIM_SOCK=os.path.join(lab.dir, "nope.sock"))
        r = subprocess.run([PROBE, "ifaces"], capture_output=True, text=True, env=env, timeout=10)
        assert r.returncode == 0 and "getifaddrs" not in r.stdout, r.stdout
        assert r.stderr.count("shoald not reachable") == 1, r.stderr
        env["SHOAL_SHIM_QUIET"] = "1"
        r = subprocess.run([PROBE, "ifaces"], capture_output=True, text=True, env=env, timeout=10)
        assert r.stderr == "", r.stderr
        print("ok")


if __name__ == "__main__":
    run(main)
