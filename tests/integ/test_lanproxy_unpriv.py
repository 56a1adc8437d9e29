"""
`shoal run` as an ordinary user (issue 3): both daemons and every program run as nobody, as
`shoal run` is meant to be used. Each node in its own network namespace (lanproxy_util).

- low ports: bob serves http on port 80, TCP and UDP echo on 22 and 53 (the servers run as
  nobody too, with only CAP_NET_BIND_SERVICE, standing in for system services); alice's curl
  reaches http://bob/ and http://5.x:80/, and a plain client sees the peer's real ports in
  getpeername / recvfrom although alice's unprivileged shoald may not bind alias:80 (it uses a
  low-port alias, lanproxy/shim_proto.h). A peer datagram from privileged port 137 reaches
  bob's program from 5.alice:137, and bob's answer to that port gets back.
- names: getaddrinfo with many hints, gethostbyname / gethostbyname2 / gethostbyname_r, nick,
  "nick.shoal", node id; IPv6-only questions, AI_NUMERICHOST and unknown names fail.
- errors: connect() to a 5.x address that is no peer fails at once with EHOSTUNREACH.
- registrations: a port announced twice by one process (two SO_REUSEPORT listeners), a dup'ed
  listener, a dup'ed UDP socket and close_range() release the overlay port exactly when the
  last socket goes (seen through `shoal expose`, which needs the port free).
"""
import hashlib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import CliError, Lab, binary, free_port, wait_until  # noqa: E402
from lanproxy_util import (BIND_CAP, UNPRIV, Report, ShimProc, isolate, lan, need, run,  # noqa: E402
                           unpriv_ids, unpriv_python, wait_listening)

UNASSIGNED = "5.254.254.253"

# bob, nobody + CAP_NET_BIND_SERVICE: TCP echo on argv[1], UDP echo on argv[2]; prints where
# every UDP datagram came from.
ECHO_SERVER = r"""
import json, socket, sys, threading
tcp = socket.socket(socket.AF_INET6)
tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
tcp.bind(("::", int(sys.argv[1])))
tcp.listen(16)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", int(sys.argv[2])))
def serve_tcp():
    while True:
        c, peer = tcp.accept()
        print(json.dumps({"event": "accept", "peer": peer[0].replace("::ffff:", ""), "port": peer[1]}), flush=True)
        data = c.recv(100)
        c.sendall(data)
        c.close()
threading.Thread(target=serve_tcp, daemon=True).start()
print(json.dumps({"event": "ready"}), flush=True)
while True:
    data, src = udp.recvfrom(2000)
    print(json.dumps({"event": "dgram", "from": src[0], "port": src[1]}), flush=True)
    udp.sendto(data, src)
"""

# alice: checks printed as JSON lines ({"check", "ok", "detail"}), as shimtest does.
CHECK_LIB = r"""
import errno, json, select, socket, sys, time
def check(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)
def attempt(name, fn):
    try:
        fn()
    except Exception as e:
        check(name, False, repr(e))
"""

# alice, nobody (+ CAP_NET_BIND_SERVICE for the datagram from port 137).
LOWPORT_CLIENT = CHECK_LIB + r"""
B, TCP, UDP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def tcp_peer():
    s = socket.create_connection((B, TCP), timeout=10)
    check("tcp-getpeername-real-port", s.getpeername() == (B, TCP), s.getpeername())
    s.sendall(b"ping")
    check("tcp-echo", s.recv(100) == b"ping")
    s.close()
    s6 = socket.socket(socket.AF_INET6)
    s6.settimeout(10)
    s6.connect(("::ffff:" + B, TCP))
    check("tcp-v6mapped-getpeername-real-port", s6.getpeername()[:2] == ("::ffff:" + B, TCP), s6.getpeername())
    s6.close()
attempt("tcp-peer", tcp_peer)
def udp_roundtrip(s, send, recv, name):
    for i in range(8):
        send(b"hello %d" % i)
        r, _, _ = select.select([s], [], [], 1.0)
        if r:
            return recv()
    raise AssertionError(name + ": no answer")
def udp_unconnected():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 137))
    data, src = udp_roundtrip(s, lambda d: s.sendto(d, (B, UDP)), lambda: s.recvfrom(2000), "udp")
    check("udp-recvfrom-real-port", src == (B, UDP), src)
    check("udp-from-privileged-source-port", s.getsockname()[1] == 137, s.getsockname())
    s.close()
attempt("udp-unconnected", udp_unconnected)
def udp_connected():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((B, UDP))
    check("udp-connected-getpeername-real-port", s.getpeername() == (B, UDP), s.getpeername())
    data = udp_roundtrip(s, s.send, lambda: s.recv(2000), "udp-connected")
    check("udp-connected-echo", data.startswith(b"hello"), data)
    s.close()
attempt("udp-connected", udp_connected)
"""

NAMES_CLIENT = CHECK_LIB + r"""
import ctypes, ctypes.util
B, A, BOB_ID = sys.argv[1], sys.argv[2], sys.argv[3]
def gai(name, *a):
    return socket.getaddrinfo(name, *a)
def gai_err(name, *a):
    try:
        return ("ok", socket.getaddrinfo(name, *a))
    except socket.gaierror as e:
        return ("err", e.errno)
def one(name, fn):
    try:
        ok, detail = fn()
        check(name, ok, detail)
    except Exception as e:
        check(name, False, repr(e))
def no_hints():
    r = gai("bob", 80)
    kinds = sorted((x[1], x[2]) for x in r)
    return (all(x[0] == socket.AF_INET and x[4] == (B, 80) for x in r) and
            kinds == sorted([(socket.SOCK_STREAM, 6), (socket.SOCK_DGRAM, 17), (socket.SOCK_RAW, 0)])), r
one("gai-no-hints", no_hints)
one("gai-inet-stream-service-name", lambda: (lambda r: (r == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (B, 80))], r))(
    gai("bob", "http", socket.AF_INET, socket.SOCK_STREAM)))
one("gai-unspec-dgram", lambda: (lambda r: (r == [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", (B, 53))], r))(
    gai("bob", 53, socket.AF_UNSPEC, socket.SOCK_DGRAM)))
one("gai-protocol-only", lambda: (lambda r: ([x[1] for x in r] == [socket.SOCK_DGRAM], r))(
    gai("bob", 53, socket.AF_INET, 0, socket.IPPROTO_UDP)))
one("gai-raw-with-service-fails", lambda: (lambda r: (r == ("err", socket.EAI_SERVICE), r))(
    gai_err("bob", 53, socket.AF_INET, socket.SOCK_RAW)))
one("gai-raw-no-service", lambda: (lambda r: ([(x[1], x[2], x[4]) for x in r] == [(socket.SOCK_RAW, 17, (B, 0))], r))(
    gai("bob", None, socket.AF_INET, socket.SOCK_RAW, 17)))
one("gai-service-name-no-raw", lambda: (lambda r: (sorted(x[1] for x in r) == [socket.SOCK_STREAM, socket.SOCK_DGRAM], r))(
    gai("bob", "domain", socket.AF_INET)))
one("gai-no-service", lambda: (lambda r: (all(x[4] == (B, 0) for x in r) and r, r))(
    gai("bob", None, socket.AF_INET, socket.SOCK_STREAM)))
one("gai-v4mapped", lambda: (lambda r: (r and r[0][0] == socket.AF_INET6 and r[0][4][:2] == ("::ffff:" + B, 8080), r))(
    gai("bob", 8080, socket.AF_INET6, socket.SOCK_STREAM, 0, socket.AI_V4MAPPED)))
# AF_INET6 without AI_V4MAPPED: the v4-mapped address too (issue 10: DNS would only fail)
one("gai-inet6-v4mapped", lambda: (lambda r: (r and r[0][0] == socket.AF_INET6 and r[0][4][:2] == ("::ffff:" + B, 80), r))(
    gai("bob", 80, socket.AF_INET6, socket.SOCK_STREAM)))
one("gai-canonname", lambda: (lambda r: (r[0][3] == "bob", r))(
    gai("bob", 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)))
one("gai-numerichost-fails", lambda: (lambda r: (r == ("err", socket.EAI_NONAME), r))(
    gai_err("bob", 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)))
one("gai-numericserv-name-fails", lambda: (lambda r: (r == ("err", socket.EAI_NONAME), r))(
    gai_err("bob", "http", socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICSERV)))
one("gai-unknown-service-fails", lambda: (lambda r: (r == ("err", socket.EAI_SERVICE), r))(
    gai_err("bob", "no-such-service", socket.AF_INET, socket.SOCK_STREAM)))
one("gai-passive-with-name", lambda: (lambda r: (r[0][4] == (B, 80), r))(
    gai("bob", 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)))
# node ids: a prefix, and as much as a DNS label holds (63 characters; Python refuses more)
for name in ("bob.shoal", "BOB.Shoal.", "Bob", "bob.", BOB_ID[:12], BOB_ID[:63]):
    one("gai-name-" + name[:16], lambda name=name: (lambda r: (r[0][4] == (B, 80), r))(
        gai(name, 80, socket.AF_INET, socket.SOCK_STREAM)))
one("gai-self-by-nick", lambda: (lambda r: (r[0][4] == (A, 80), r))(gai("alice", 80, socket.AF_INET, socket.SOCK_STREAM)))
one("gai-unknown-peer-fails", lambda: (lambda r: (r[0] == "err", r))(gai_err("nosuchpeer", 80)))
one("gai-dns-name-goes-to-libc", lambda: (lambda r: (r[0] == "err", r))(gai_err("bob.example.com", 80)))
one("gai-localhost-untouched", lambda: (lambda r: (all(x[4][0] in ("127.0.0.1", "::1") for x in r), r))(
    gai("localhost", 80, socket.AF_UNSPEC, socket.SOCK_STREAM)))
one("gethostbyname", lambda: (lambda r: (r == B, r))(socket.gethostbyname("bob")))
one("gethostbyname_r", lambda: (lambda r: (r[0] == "bob.shoal" and r[2] == [B], r))(socket.gethostbyname_ex("bob.shoal")))
libc = ctypes.CDLL(None)   # the global scope: the preloaded shim's definitions first
class Hostent(ctypes.Structure):
    _fields_ = [("h_name", ctypes.c_char_p), ("h_aliases", ctypes.POINTER(ctypes.c_char_p)),
                ("h_addrtype", ctypes.c_int), ("h_length", ctypes.c_int),
                ("h_addr_list", ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)))]
libc.gethostbyname.restype = ctypes.POINTER(Hostent)
libc.gethostbyname2.restype = ctypes.POINTER(Hostent)
def host_addr(p):
    if not p:
        return None
    h = p.contents
    return (h.h_name, h.h_addrtype, socket.inet_ntoa(bytes(h.h_addr_list[0][:4])), bool(h.h_addr_list[1]))
one("c-gethostbyname", lambda: (lambda r: (r == (b"bob", socket.AF_INET, B, False), r))(host_addr(libc.gethostbyname(b"bob"))))
one("c-gethostbyname2-inet", lambda: (lambda r: (r == (b"bob", socket.AF_INET, B, False), r))(
    host_addr(libc.gethostbyname2(b"bob", socket.AF_INET))))
one("c-gethostbyname2-inet6-not-ours", lambda: (lambda r: (r is None, r))(host_addr(libc.gethostbyname2(b"bob", socket.AF_INET6))))
def r_small():
    h, res, herr = Hostent(), ctypes.POINTER(Hostent)(), ctypes.c_int(0)
    buf = ctypes.create_string_buffer(8)
    rc = libc.gethostbyname_r(b"bob", ctypes.byref(h), buf, 8, ctypes.byref(res), ctypes.byref(herr))
    return rc == errno.ERANGE and not res, (rc, bool(res))
one("c-gethostbyname_r-erange", r_small)
def r_ok():
    h, res, herr = Hostent(), ctypes.POINTER(Hostent)(), ctypes.c_int(0)
    buf = ctypes.create_string_buffer(1024)
    rc = libc.gethostbyname2_r(b"bob", socket.AF_INET, ctypes.byref(h), buf, 1024, ctypes.byref(res), ctypes.byref(herr))
    return rc == 0 and host_addr(res) == (b"bob", socket.AF_INET, B, False), (rc, host_addr(res))
one("c-gethostbyname2_r", r_ok)
"""

UNREACH_CLIENT = CHECK_LIB + r"""
U = sys.argv[1]
t0 = time.monotonic()
s = socket.socket()
try:
    s.connect((U, 80))
    err = 0
except OSError as e:
    err = e.errno
dt = time.monotonic() - t0
check("blocking-connect-ehostunreach-fast", err == errno.EHOSTUNREACH and dt < 3, f"errno {err} after {dt:.2f}s")
s.close()
t0 = time.monotonic()
s = socket.socket()
s.setblocking(False)
rc = s.connect_ex((U, 80))
check("nonblocking-connect-einprogress", rc == errno.EINPROGRESS, rc)
p = select.poll()
p.register(s, select.POLLOUT)
ev = p.poll(5000)
err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
dt = time.monotonic() - t0
check("nonblocking-so-error-ehostunreach-fast", ev and err == errno.EHOSTUNREACH and dt < 3, f"{ev} SO_ERROR {err} after {dt:.2f}s")
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", (U, 9))
    err = 0
except OSError as e:
    err = e.errno
check("udp-sendto-ehostunreach", err == errno.EHOSTUNREACH, err)
"""

# bob: sockets opened and closed on command (stdin), so that the test can look at the overlay
# port between steps.
REGS_SERVER = r"""
import os, socket, sys
P, Q, R = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", P))
    s.listen(16)
    return s
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    return s
socks = {"l1": tcp(), "l2": tcp(), "u": udp(Q), "c": udp(R)}
fds = {}
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "close":
        socks.pop(cmd[1]).close()
    elif cmd[0] == "dup":
        fds[cmd[2]] = os.dup(socks[cmd[1]].fileno())
    elif cmd[0] == "closefd":
        os.close(fds.pop(cmd[1]))
    elif cmd[0] == "closerange":
        fd = socks.pop(cmd[1]).detach()
        os.closerange(fd, fd + 1)
    print("done " + line.strip(), flush=True)
"""


def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


PY = None   # a python3 nobody can run (main sets it)


def py(*lines):
    return [PY, "-c"] + list(lines)


def main():
    global PY
    isolate()
    PY = unpriv_python()
    rep = Report("lanproxy as an ordinary user")
    with Lab("lpunpriv") as lab:
        try:
            a, b = lan(lab, ["alice", "bob"], unpriv=True)
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        A, B = a.address(), b.address()
        uid, gid = unpriv_ids()
        with rep.case("setup/daemons-run-as-nobody"):
            for d in (a, b):
                with open(f"/proc/{d.proc.pid}/status") as fh:
                    uids = [line.split()[1:] for line in fh if line.startswith("Uid:")][0]
                assert all(int(x) == uid for x in uids), f"{d.name}: Uid {uids}"
        out = os.path.join(lab.dir, "out")
        os.makedirs(out)
        os.chown(out, uid, gid)
        lowports(rep, lab, a, b, A, B, out)
        names(rep, lab, a, b, A, B)
        unreachable(rep, lab, a)
        registrations(rep, lab, a, b, B)
        return rep.finish(lab)


def cap_run(d, argv):
    """argv under `shoal run` on d's node, as nobody allowed to bind ports below 1024."""
    return d.nswrap + UNPRIV + BIND_CAP + [binary("shoal"), "--control", d.ctl, "run", "--"] + [str(x) for x in argv]


def lowports(rep, lab, a, b, A, B, out):
    www = os.path.join(lab.dir, "www")
    os.makedirs(www)
    blob = os.path.join(www, "blob.bin")
    with open(blob, "wb") as fh:
        fh.write(os.urandom(1 << 20))
    os.chmod(www, 0o755)
    os.chmod(blob, 0o644)
    want = sha(blob)
    http = ShimProc(lab, None, cap_run(b, [PY, "-m", "http.server", 80, "--directory", www]), raw=True,
                    tag="bob-http80")
    echo = ShimProc(lab, None, cap_run(b, [PY, "-c", ECHO_SERVER, 22, 53]), tag="bob-echo-22-53")
    with rep.case("lowport/servers-listening"):
        wait_listening(b, 80, what="http.server on port 80")
        echo.ready(20)
    for name, url in (("by-nickname", "http://bob/blob.bin"), ("by-5x-address", f"http://{B}:80/blob.bin")):
        with rep.case(f"lowport/curl-port-80-{name}"):
            dst = os.path.join(out, f"curl-{name}.out")
            p = run(lab, a, [need("curl"), "-sS", "-f", "--max-time", "30", "-o", dst, url], timeout=60,
                    tag=f"alice-curl-80-{name}")
            assert p.rc == 0, f"curl {url} exit {p.rc}: {p.stderr_tail(400)!r}"
            assert sha(dst) == want, "download differs"
    with rep.case("lowport/http-server-saw-alice"):
        assert A in http.stderr_tail(4000), http.stderr_tail(400)
    cli = ShimProc(lab, None, cap_run(a, [PY, "-c", LOWPORT_CLIENT, B, 22, 53]), tag="alice-lowport-client")
    cli.rc = cli.wait(60)
    rep.absorb(cli, "lowport")
    # bob's echo prints an event before it answers, but its line reaches us through a reader
    # thread: wait for it rather than look once.
    with rep.case("lowport/peer-source-port-137-seen-by-bob"):
        echo.wait_for(lambda e: isinstance(e, dict) and e.get("event") == "dgram", 10, "datagram at bob")
        dg = echo.events("dgram")
        assert any(e["from"] == A and e["port"] == 137 for e in dg), dg
    with rep.case("lowport/tcp-accept-sees-alice"):
        echo.wait_for(lambda e: isinstance(e, dict) and e.get("event") == "accept", 10, "accept at bob")
        acc = echo.events("accept")
        assert all(e["peer"] == A for e in acc), acc
    http.stop()
    echo.stop()


def names(rep, lab, a, b, A, B):
    p = run(lab, a, py(NAMES_CLIENT, B, A, b.node_id()), timeout=60, tag="alice-names")
    rep.absorb(p, "names")


def unreachable(rep, lab, a):
    p = run(lab, a, py(UNREACH_CLIENT, UNASSIGNED), timeout=60, tag="alice-unreachable")
    rep.absorb(p, "unreachable")


def registrations(rep, lab, a, b, B):
    P, Q, R = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    srv = ShimProc(lab, b, py(REGS_SERVER, P, Q, R), raw=True, stdin=True, tag="bob-regs")

    def port_free(port, udp=False):
        """`shoal expose` takes the overlay port only when no program under `shoal run` holds it."""
        spec = f"{port}/udp" if udp else str(port)
        try:
            b.cli("expose", spec)
        except CliError:
            return False
        b.cli("expose", spec, "--remove")
        return True

    def step(cmd):
        srv.send((cmd + "\n").encode())
        srv.wait_for(lambda x: x == "done " + cmd, 10, f"{cmd!r} done")

    def held(port, udp=False, what=""):
        time.sleep(0.3)   # CLOSE is one-way: give it time to arrive before saying it did not
        assert not port_free(port, udp), f"overlay port {port} released too early ({what})"

    def released(port, udp=False, what=""):
        wait_until(lambda: port_free(port, udp), 5, what=f"overlay port {port} released ({what})")

    with rep.case("regs/ready"):
        srv.wait_for(lambda x: x == "ready", 20, "ready")
        wait_listening(b, P, what="two SO_REUSEPORT listeners")
    with rep.case("regs/two-listeners-one-port-close-one-keeps-it"):
        held(P, what="both listening")
        step("close l1")
        held(P, what="l2 still listening")
        r = run(lab, a, py("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)"
                           "; print('connected')", B, P), timeout=30, raw=True, tag="alice-regs-connect")
        assert r.rc == 0 and "connected" in r.lines, f"connect to the remaining listener: {r.stderr_tail(300)!r}"
    with rep.case("regs/duped-listener-released-with-last-fd"):
        step("dup l2 d2")
        step("close l2")
        held(P, what="dup of l2 still open")
        step("closefd d2")
        released(P, what="last fd of the listener closed")
    with rep.case("regs/duped-udp-socket-released-with-last-fd"):
        step("dup u du")
        step("close u")
        held(Q, udp=True, what="dup of the UDP socket still open")
        step("closefd du")
        released(Q, udp=True, what="last fd of the UDP socket closed")
    with rep.case("regs/close-range-releases"):
        held(R, udp=True, what="UDP socket open")
        step("closerange c")
        released(R, udp=True, what="close_range")
    srv.close_stdin()
    srv.stop()


if __name__ == "__main__":
    sys.exit(main())
