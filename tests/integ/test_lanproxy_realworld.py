"""
What real programs hit under `shoal run` (issue 10), each case reproducing one report, across
two real daemons in private network namespaces (lanproxy_util.isolate):
- restart: a TCP server that served a peer is stopped and started again on the same port and
  is reachable from the peer at once (lwIP held the port in TIME_WAIT for two minutes);
- iperf3 three times back to back (its second test failed the same way);
- expose: `shoal expose P --remove` then `shoal expose P` after traffic;
- a listen the overlay refuses (an expose holds the port) is reported by `shoal status` and
  on the program's stderr;
- names both ways: getnameinfo / gethostbyaddr of a peer's 5.x address give `bob.shoal`
  (went to DNS and failed), getaddrinfo(AF_INET6) of `bob` gives ::ffff:5.x without flags;
- bind, fork, parent exits (double-fork daemons, mosh-server): the child's inherited TCP
  listener and UDP port stay on the LAN (vanished with the parent before);
- a receiver bound to the group address (SSDP stacks bind 239.255.255.250:1900) gets a
  peer's group datagram, with the group as its destination (IP_PKTINFO) and the peer's 5.x
  as its source (delivered to 127.255.255.255 before: never seen);
- children started with a cleaned environment stay on the LAN: `env -i` (execvp),
  subprocess with env={} (execve), os.posix_spawn with an empty environment, each child
  reaching a peer's server by its 5.x address (left the LAN before);
- shoal0 over rtnetlink: `ip -br addr`, `ip -br link`, `ip addr show shoal0`, `ip route` and
  `ip route get` show it (they never call getifaddrs: shoal0 was invisible);
- libc's functions looked up through a handle (Python's ctypes, as the `ifaddr` module does)
  are ours: getifaddrs lists shoal0 with our 5.x address; and another interposer preloaded
  after ours still finds the next definition with dlsym(RTLD_NEXT) (no recursion);
- the SOCKS port by name: curl through SOCKS5 to `bob.shoal`, SOCKS4a to `bob` and
  `bob.shoal`, SOCKS4 to the 5.x address (SOCKS4 clients were reset before).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, free_port, wait_until  # noqa: E402
from lanproxy_util import Report, ShimProc, SkipCase, isolate, lan, need, run  # noqa: E402

# A one-connection-at-a-time echo server: prints {"event": "ready"} once listen() returned (the
# shim announces the listener inside listen(), so peers can connect from then on).
ECHO_SERVER = r"""
import json, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print(json.dumps({"event": "ready"}), flush=True)
for _ in range(int(sys.argv[2])):
    c, _ = s.accept()
    data = c.recv(65536)
    c.sendall(data)
    c.close()
"""

# Connects to HOST:PORT once, sends a line, prints what came back (exit 1 on any error).
ECHO_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.sendall(b"hello " + sys.argv[3].encode())
print(c.recv(65536).decode(), flush=True)
"""


def echo_once(lab, a, host, port, word):
    p = run(lab, a, [sys.executable, "-c", ECHO_CLIENT, host, port, word], timeout=30, raw=True,
            tag=f"alice-echo-{word}")
    assert p.rc == 0 and p.lines and p.lines[-1] == f"hello {word}", \
        f"echo {word} to {host}:{port}: exit {p.rc}, out {p.lines[-3:]!r}, err {p.stderr_tail(300)!r}"


def restart(rep, lab, a, b, B):
    port = free_port()
    with rep.case("restart/reachable-at-once"):
        for round_ in range(3):
            srv = ShimProc(lab, b, [sys.executable, "-c", ECHO_SERVER, port, 2], tag=f"bob-echo-{round_}")
            srv.ready()
            # two connections, closed by the server first: its side of each ends in TIME_WAIT
            echo_once(lab, a, B, port, f"r{round_}a")
            echo_once(lab, a, B, port, f"r{round_}b")
            assert srv.wait(15) == 0, f"echo server round {round_}: {srv.stderr_tail(300)!r}"
        print(f"   server restarted twice on port {port}: reachable at once each time", flush=True)


def iperf_repeat(rep, lab, a, b, B):
    try:
        iperf3 = need("iperf3")
    except SkipCase as e:
        rep.skip("iperf3-repeat", str(e))
        return
    port = free_port()
    srv = ShimProc(lab, b, [iperf3, "-s", "-p", port, "--forceflush"], raw=True, tag="bob-iperf3-s")
    with rep.case("iperf3/three-in-a-row"):
        srv.wait_for(lambda x: "listening" in str(x).lower(), 15, "iperf3 listening")  # needs --forceflush
        for i in range(3):
            cli = run(lab, a, [iperf3, "-c", B, "-p", port, "-t", "1", "-J", "--connect-timeout", "10000"],
                      timeout=60, raw=True, tag=f"alice-iperf3-{i}")
            try:
                res = json.loads(cli.text())
            except ValueError:
                raise AssertionError(f"iperf3 run {i}: exit {cli.rc}, no JSON: {cli.stderr_tail(300)!r}")
            assert cli.rc == 0 and "error" not in res, f"iperf3 run {i}: {res.get('error')}"
            bps = res["end"]["sum_received"]["bits_per_second"]
            print(f"   iperf3 run {i + 1}: {bps / 1e6:.0f} Mbit/s", flush=True)
    srv.stop()


def expose_again(rep, lab, a, b, B):
    port = free_port()
    local = ShimProc(lab, None, b.wrap + [sys.executable, "-c", ECHO_SERVER, port, 3], tag="bob-local-echo")
    with rep.case("expose/remove-then-add-after-traffic"):
        local.ready()
        b.cli("expose", port)
        echo_once(lab, a, B, port, "e1")
        b.cli("expose", port, "--remove")
        b.cli("expose", port)        # failed with "Address already in use" before
        echo_once(lab, a, B, port, "e2")
    b.cli("expose", port, "--remove")
    local.stop()
    port = free_port()
    with rep.case("listen-failure/reported"):
        # an expose holds the virtual port: a program listening there is on the LAN only
        # locally, and both its stderr and `shoal status` say so
        b.cli("expose", port)
        srv = ShimProc(lab, b, [sys.executable, "-c", ECHO_SERVER, port, 1], tag="bob-echo-clash")
        srv.ready()
        fails = [f for f in b.status().get("listen_failures", []) if f["port"] == int(port)]
        assert fails and fails[0]["error"] and fails[0]["pid"] > 0, b.status().get("listen_failures")
        f = fails[0]
        text = b.cli("status", json_out=False)
        assert "not on the LAN:" in text and str(port) in text, text
        srv.stop()
        assert "is not on the virtual LAN" in srv.stderr_tail(2000), srv.stderr_tail(600)
        print(f"   clash on port {port}: {f['error']} (pid {f['pid']}), shown by status and the shim",
              flush=True)
    b.cli("expose", port, "--remove")


def socks(rep, lab, a, b, B):
    try:
        curl = need("curl")
    except SkipCase as e:
        rep.skip("socks", str(e))
        return
    port = free_port()
    srv = ShimProc(lab, b, [sys.executable, "-c", ECHO_SERVER, port, 4], tag="bob-echo-socks")
    srv.ready()
    proxy = f"127.0.0.1:{a.socks_port}"
    # curl's telnet:// sends stdin and prints what comes back: the echo server answers once
    for name, opt, host in (("socks5h-nick.shoal", "--socks5-hostname", "bob.shoal"),
                            ("socks4a-nick", "--socks4a", "bob"),
                            ("socks4a-nick.shoal", "--socks4a", "bob.shoal"),
                            ("socks4-address", "--socks4", B)):
        with rep.case(f"socks/{name}"):
            p = subprocess.run(a.nswrap + [curl, "-sS", "--max-time", "10", opt, proxy,
                                           f"telnet://{host}:{port}"],
                               input=f"hello {name}", capture_output=True, text=True, timeout=30)
            assert p.stdout == f"hello {name}", f"curl {opt} {host}: exit {p.returncode} {p.stdout!r} {p.stderr!r}"
    srv.stop()


NAMES = r'''
import json, socket, sys
peer = sys.argv[1]
out = {
    "nameinfo": socket.getnameinfo((peer, 80), 0)[0],
    "nameinfo_nofqdn": socket.getnameinfo((peer, 80), socket.NI_NOFQDN)[0],
    "nameinfo_v6": socket.getnameinfo(("::ffff:" + peer, 80, 0, 0), socket.NI_NAMEREQD)[0],
    "hostbyaddr": socket.gethostbyaddr(peer)[0],
    "v6": sorted({a[4][0] for a in socket.getaddrinfo("bob", 80, socket.AF_INET6)}),
    "v6_shoal": sorted({a[4][0] for a in socket.getaddrinfo("bob.shoal", 80, socket.AF_INET6,
                                                          socket.SOCK_STREAM)}),
    "self": socket.getnameinfo((sys.argv[2], 80), socket.NI_NAMEREQD)[0],
}
print(json.dumps(out), flush=True)
'''


def names(rep, lab, a, b, A, B):
    with rep.case("names/reverse-and-v6"):
        p = run(lab, a, [sys.executable, "-c", NAMES, B, A], timeout=30, tag="alice-names")
        assert p.rc == 0 and p.lines and isinstance(p.lines[-1], dict), \
            f"exit {p.rc}: {p.stderr_tail(600)!r}"
        got = p.lines[-1]
        want = {"nameinfo": "bob.shoal", "nameinfo_nofqdn": "bob", "nameinfo_v6": "bob.shoal",
                "hostbyaddr": "bob.shoal", "v6": [f"::ffff:{B}"], "v6_shoal": [f"::ffff:{B}"],
                "self": "alice.shoal"}
        assert got == want, f"got {got}, want {want}"


CLEAN_CHILDREN = r'''
import json, os, subprocess, sys
py, host, port = sys.executable, sys.argv[1], sys.argv[2]
child = ("import socket, sys; c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5); "
         "c.sendall(sys.argv[3].encode()); print(c.recv(100).decode())")
out = {}
for how in ("env-i", "subprocess-env", "posix_spawn"):
    argv = [py, "-c", child, host, port, how]
    try:
        if how == "env-i":
            r = subprocess.run(["env", "-i"] + argv, capture_output=True, text=True, timeout=20)
            out[how] = r.stdout.strip() or r.stderr.strip()[-200:]
        elif how == "subprocess-env":
            r = subprocess.run(argv, env={}, capture_output=True, text=True, timeout=20)
            out[how] = r.stdout.strip() or r.stderr.strip()[-200:]
        else:
            rfd, wfd = os.pipe()
            pid = os.posix_spawn(py, argv, {}, file_actions=[(os.POSIX_SPAWN_DUP2, wfd, 1)])
            os.close(wfd)
            os.waitpid(pid, 0)
            out[how] = os.read(rfd, 1000).decode().strip()
    except Exception as e:
        out[how] = repr(e)
print(json.dumps(out), flush=True)
'''


def clean_env(rep, lab, a, b, B):
    port = free_port()
    srv = ShimProc(lab, b, [sys.executable, "-c", ECHO_SERVER, port, 3], tag="bob-echo-env")
    with rep.case("exec/clean-environment-children"):
        srv.ready()
        p = run(lab, a, [sys.executable, "-c", CLEAN_CHILDREN, B, port], timeout=90, tag="alice-clean-env")
        assert p.rc == 0 and p.lines and isinstance(p.lines[-1], dict), f"exit {p.rc}: {p.stderr_tail(600)!r}"
        got = p.lines[-1]
        want = {k: k for k in ("env-i", "subprocess-env", "posix_spawn")}
        assert got == want, f"children's answers {got}"
    srv.stop()


FORK_SERVER = r'''
import json, os, socket, sys
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", int(sys.argv[1]))); t.listen(4)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", int(sys.argv[2])))
parent = os.getpid()
if os.fork() != 0:
    os._exit(0)                 # the parent goes at once, as a daemonising server's does
os.setsid()
print(json.dumps({"event": "ready", "parent": parent, "child": os.getpid()}), flush=True)
data, peer = u.recvfrom(100)
u.sendto(b"udp " + data, peer)
c, _ = t.accept()
c.sendall(b"tcp " + c.recv(100))
c.close()
'''

UDP_CLIENT = r'''
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
for _ in range(10):             # datagrams may be lost: ask again
    u.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    try:
        print(u.recvfrom(100)[0].decode(), flush=True)
        break
    except socket.timeout:
        pass
'''


def fork_exit(rep, lab, a, b, B):
    tport, uport = free_port(), free_port()
    srv = ShimProc(lab, b, [sys.executable, "-c", FORK_SERVER, tport, uport], tag="bob-forked")
    with rep.case("fork/parent-exits-child-serves"):
        ev = srv.ready()
        # the daemon has seen the parent's connection go before anyone connects
        log = os.path.join(b.state, "shoald.log")
        want = f"event=shim_client_gone pid={ev['parent']}"
        wait_until(lambda: want in open(log, errors="replace").read(), 15, what="parent's shim gone")
        p = run(lab, a, [sys.executable, "-c", UDP_CLIENT, B, uport, "ping"], timeout=40, raw=True,
                tag="alice-udp-forked")
        assert p.rc == 0 and p.lines and p.lines[-1] == "udp ping", \
            f"UDP to the forked child: exit {p.rc} {p.lines[-3:]!r} {p.stderr_tail(300)!r}"
        p = run(lab, a, [sys.executable, "-c", ECHO_CLIENT, B, tport, "x"], timeout=30, raw=True,
                tag="alice-tcp-forked")
        assert p.rc == 0 and p.lines and p.lines[-1] == "tcp hello x", \
            f"TCP to the forked child: exit {p.rc} {p.lines[-3:]!r} {p.stderr_tail(300)!r}"
    with rep.case("fork/released-when-the-child-exits"):
        srv.wait(10)
        for kind, port in ((2, tport), (1, uport)):
            want = f"event=lanproxy_kept_released kind={kind} port={port}"
            wait_until(lambda: want in open(log, errors="replace").read(), 15, what=want)


GROUP_RECEIVER = r'''
import json, socket, struct, sys
G, P = sys.argv[1], int(sys.argv[2])
IP_PKTINFO = 8  # linux/in.h; python 3.11 lacks the name
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.bind((G, P))
r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton(G), socket.inet_aton("0.0.0.0")))
r.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
print(json.dumps({"event": "ready"}), flush=True)
data, anc, _, src = r.recvmsg(1000, 100)
dst = None
for level, kind, c in anc:
    if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
        dst = socket.inet_ntoa(struct.unpack("i4s4s", c)[2])
print(json.dumps({"event": "got", "data": data.decode(), "src": src[0], "dst": dst}), flush=True)
'''

GROUP_SENDER = r'''
import socket, sys, time
G, P = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
for i in range(int(sys.argv[3])):
    s.sendto(b"M-SEARCH", (G, P))
    time.sleep(0.2)     # a few copies: datagrams may be lost, the receiver stops at the first
'''


def group_bound(rep, lab, a, b, A):
    port = free_port()
    group = "239.255.255.250"
    recv = ShimProc(lab, b, [sys.executable, "-c", GROUP_RECEIVER, group, port], tag="bob-group-recv")
    with rep.case("mcast/receiver-bound-to-group"):
        recv.ready()
        run(lab, a, [sys.executable, "-c", GROUP_SENDER, group, port, 10], timeout=30, tag="alice-group-send")
        got = recv.wait_for(lambda x: isinstance(x, dict) and x.get("event") == "got", 10, "the datagram")
        assert got == {"event": "got", "data": "M-SEARCH", "src": A, "dst": group}, got
    recv.stop()


def netlink(rep, lab, a, A, B):
    try:
        ip = need("ip")
    except SkipCase as e:
        rep.skip("netlink", str(e))
        return
    cases = (
        ("ip-br-addr", ["-br", "addr"], lambda out: any(l.split()[:1] == ["shoal0"] and f"{A}/" in l
                                                        for l in out.splitlines())),
        ("ip-br-link", ["-br", "link"], lambda out: any(l.split()[:2] == ["shoal0", "UP"]
                                                        for l in out.splitlines())),
        ("ip-link-show-shoal0", ["link", "show", "shoal0"], lambda out: "shoal0" in out and "mtu" in out),
        ("ip-addr-show-shoal0", ["addr", "show", "shoal0"], lambda out: f"inet {A}/" in out),
        ("ip-route", ["route"], lambda out: any("dev shoal0" in l and l.startswith("5.") for l in out.splitlines())),
        ("ip-route-get", ["route", "get", B], lambda out: f"dev shoal0 src {A}" in out),
        ("ip-addr-eth0-still-there", ["-br", "addr"], lambda out: "eth0" in out),
    )
    for name, args, ok in cases:
        with rep.case(f"netlink/{name}"):
            p = run(lab, a, [ip] + args, timeout=20, raw=True, tag=f"alice-ip-{name}")
            out = p.text()
            assert p.rc == 0 and ok(out), f"ip {' '.join(args)}: exit {p.rc}\n{out}\n{p.stderr_tail(300)}"


CTYPES_IFADDRS = r'''
import ctypes, ctypes.util, json, socket
libc = ctypes.CDLL(ctypes.util.find_library("c"))      # dlopen + dlsym, as ifaddr does
libc.if_nametoindex.argtypes = [ctypes.c_char_p]
class sockaddr(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("data", ctypes.c_ubyte * 14)]
class ifaddrs(ctypes.Structure):
    pass
ifaddrs._fields_ = [("next", ctypes.POINTER(ifaddrs)), ("name", ctypes.c_char_p),
                    ("flags", ctypes.c_uint), ("addr", ctypes.POINTER(sockaddr))]
p = ctypes.POINTER(ifaddrs)()
assert libc.getifaddrs(ctypes.byref(p)) == 0
addrs, q = {}, p
while q:
    a = q.contents.addr
    if a and a.contents.family == socket.AF_INET:
        addrs[q.contents.name.decode()] = socket.inet_ntoa(bytes(a.contents.data[2:6]))
    q = q.contents.next
libc.freeifaddrs(p)
print(json.dumps({"index": libc.if_nametoindex(b"shoal0"), "shoal0": addrs.get("shoal0")}))
'''

SECOND_INTERPOSER = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <sys/socket.h>
int connect(int fd, const struct sockaddr *a, socklen_t l)
{
	static int (*next)(int, const struct sockaddr *, socklen_t);
	if (!next)
		next = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	if (next == connect)
		return fprintf(stderr, "RTLD_NEXT found itself\n"), -1;
	return next(fd, a, l);
}
'''


def dlsym_cases(rep, lab, a, b, A, B):
    with rep.case("dlsym/ctypes-getifaddrs"):
        p = run(lab, a, [sys.executable, "-c", CTYPES_IFADDRS], timeout=30, tag="alice-ctypes")
        got = p.lines[-1] if p.lines else None
        assert p.rc == 0 and isinstance(got, dict) and got["index"] > 0 and got["shoal0"] == A, \
            f"exit {p.rc}: {got} {p.stderr_tail(400)!r}"
    try:
        cc = need("cc")
    except SkipCase as e:
        rep.skip("dlsym/second-interposer", str(e))
        return
    src = os.path.join(lab.dir, "second.c")
    lib = os.path.join(lab.dir, "libsecond.so")
    with open(src, "w") as fh:
        fh.write(SECOND_INTERPOSER)
    subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True)
    port = free_port()
    srv = ShimProc(lab, b, [sys.executable, "-c", ECHO_SERVER, port, 1], tag="bob-echo-dlsym")
    with rep.case("dlsym/second-interposer"):
        srv.ready()
        p = run(lab, a, [sys.executable, "-c", ECHO_CLIENT, B, port, "second"], timeout=30, raw=True,
                tag="alice-second", env={"LD_PRELOAD": lib})
        assert p.rc == 0 and p.lines and p.lines[-1] == "hello second", \
            f"exit {p.rc} {p.lines[-3:]!r} {p.stderr_tail(400)!r}"
    srv.stop()


def main():
    isolate()
    rep = Report("lanproxy: what real programs hit")
    with Lab("lpreal") as lab:
        try:
            a, b = lan(lab, ["alice", "bob"])
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        A, B = a.address(), b.address()
        names(rep, lab, a, b, A, B)
        clean_env(rep, lab, a, b, B)
        group_bound(rep, lab, a, b, A)
        netlink(rep, lab, a, A, B)
        dlsym_cases(rep, lab, a, b, A, B)
        fork_exit(rep, lab, a, b, B)
        restart(rep, lab, a, b, B)
        iperf_repeat(rep, lab, a, b, B)
        expose_again(rep, lab, a, b, B)
        socks(rep, lab, a, b, B)
        return rep.finish(lab)


if __name__ == "__main__":
    sys.exit(main())
