"""
`shoal run` at scale on one node (issue 9, defect 10): the daemon used to take at most 255
virtual UDP ports and 64 virtual TCP listeners in all (lwIP's pools), so the 256th socket of a
program (or of all programs together) silently heard nothing. Now one program binds 600 UDP
sockets, each of which gets an answer from a peer's echo, and listens on 200 TCP ports, each of
which a peer reaches. Runs in private network namespaces (lanproxy_util.isolate).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab  # noqa: E402
from lanproxy_util import Report, ShimProc, isolate, lan, run  # noqa: E402

N_UDP = 600
N_TCP = 200

UDP_ECHO = r"""
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(json.dumps({"event": "ready", "port": s.getsockname()[1]}), flush=True)
while True:
    d, a = s.recvfrom(100)
    s.sendto(d, a)
"""

UDP_MANY = r"""
import json, select, socket, sys, time
dst = (sys.argv[1], int(sys.argv[2]))
n = int(sys.argv[3])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
for s in socks:
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
answered = set()
deadline = time.time() + 20
rounds = 0
while len(answered) < n and time.time() < deadline:
    rounds += 1
    for i, s in enumerate(socks):
        if i not in answered:
            s.sendto(b"%d" % i, dst)
    end = time.time() + 1.0
    while time.time() < end and len(answered) < n:
        r, _, _ = select.select([s for i, s in enumerate(socks) if i not in answered], [], [], 0.2)
        for s in r:
            d, _ = s.recvfrom(100)
            answered.add(int(d))
missing = [socks[i].getsockname()[1] for i in range(n) if i not in answered]
print(json.dumps({"event": "done", "answered": len(answered), "rounds": rounds,
                  "missing_ports": missing[:20]}), flush=True)
"""

TCP_MANY = r"""
import json, socket, sys
n = int(sys.argv[1])
ls = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 0))
    s.listen(4)
    ls.append(s)
print(json.dumps({"event": "ready", "ports": [s.getsockname()[1] for s in ls]}), flush=True)
import select
while True:
    r, _, _ = select.select(ls, [], [])
    for s in r:
        c, _ = s.accept()
        c.sendall(b"hi")
        c.close()
"""

TCP_DIAL = r"""
import json, socket, sys
host = sys.argv[1]
ok = 0
for p in sys.argv[2].split(","):
    try:
        with socket.create_connection((host, int(p)), timeout=10) as c:
            ok += c.recv(2) == b"hi"
    except OSError:
        pass
print(json.dumps({"event": "done", "ok": ok}), flush=True)
"""


def main():
    isolate()
    rep = Report("lanproxy limits")
    with Lab("lplimits") as lab:
        try:
            a, b = lan(lab, ["alice", "bob"])
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        with rep.case(f"udp/{N_UDP}-sockets-each-answered"):
            echo = ShimProc(lab, b, ["python3", "-c", UDP_ECHO], tag="bob-echo")
            port = echo.ready(20)["port"]
            p = run(lab, a, ["python3", "-c", UDP_MANY, b.address(), port, N_UDP], timeout=90,
                    tag="alice-udp-many")
            done = p.events("done")
            assert done, p.stderr_tail(300)
            print(f"UDP: {done[0]['answered']} of {N_UDP} sockets answered in {done[0]['rounds']} rounds")
            assert done[0]["answered"] == N_UDP, done[0]
            echo.stop()
        with rep.case(f"tcp/{N_TCP}-listeners-each-reached"):
            srv = ShimProc(lab, a, ["python3", "-c", TCP_MANY, N_TCP], tag="alice-listeners")
            ports = srv.ready(30)["ports"]
            p = run(lab, b, ["python3", "-c", TCP_DIAL, a.address(), ",".join(map(str, ports))],
                    timeout=120, tag="bob-dial")
            done = p.events("done")
            assert done, p.stderr_tail(300)
            print(f"TCP: {done[0]['ok']} of {N_TCP} listeners reached")
            assert done[0]["ok"] == N_TCP, done[0]
            srv.stop()
        return rep.finish(lab)


if __name__ == "__main__":
    sys.exit(main())
