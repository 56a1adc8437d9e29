"""
lanproxy C test matrix (issue 3, "What a wrapped program must see") across two real daemons:
tests/lanproxy/shimtest runs under `shoal run` on bob as TCP/UDP servers (IPv4, dual-stack [::],
bound to bob's own 5.x address, and the _FORTIFY_SOURCE build) and on alice as clients: blocking
and non-blocking connect through poll, epoll and select, refused and unreachable peers,
getpeername/getsockname/accept addresses, UDP sendto/sendmsg/send/write with recvfrom/recvmsg/
recv/read, v4-mapped AF_INET6, the shoal0 interface in getifaddrs/if_nameindex/SIOCGIF*,
bind(5.our)/SO_BINDTODEVICE/multicast options, dup/dup2/dup3/fork/posix_spawn/close_range/
threads, nickname resolution and the reverse (getnameinfo, gethostbyaddr), AF_INET6 v4-mapped
names, shoal0 in an rtnetlink address dump. Runs in a private network namespace (lanproxy_util.isolate).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, free_port  # noqa: E402
from lanproxy_util import (Report, ShimProc, isolate, lan, on_node, parallel, run, shimtest)  # noqa: E402

UNASSIGNED = "5.254.254.253"   # inside 5.0.0.0/8, nobody has it

# run on bob's node, not under the shim: a local client still reaches the server as before
LOCAL_CHECK = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"local hello")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    c = s.recv(100)
    if not c:
        break
    got += c
assert got == b"local hello", got
print("local-ok")
"""


def main():
    isolate()
    rep = Report("lanproxy matrix")
    st, stf = shimtest(), shimtest(fortify=True)
    with Lab("lpmatrix") as lab:
        try:
            a, b = lan(lab, ["alice", "bob"])
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        A, B = a.address(), b.address()
        P = {k: free_port() for k in ("tcp4", "tcp6", "tcpself", "tcpf", "closed", "same")}
        U = {k: free_port(socket.SOCK_DGRAM) for k in ("udp4", "udp6", "udpf")}

        servers = {
            "tcp4": ShimProc(lab, b, [st, "tcp-server", P["tcp4"], "--timeout", 170], tag="bob-tcp4"),
            "tcp6": ShimProc(lab, b, [st, "tcp-server", P["tcp6"], "--v6", "--bind", "::", "--timeout", 170], tag="bob-tcp6"),
            "tcpself": ShimProc(lab, b, [st, "tcp-server", P["tcpself"], "--bind", B, "--timeout", 170], tag="bob-tcpself"),
            "tcpf": ShimProc(lab, b, [stf, "tcp-server", P["tcpf"], "--timeout", 170], tag="bob-tcpf"),
            # both nodes serve the same port (two web servers on 8080 that talk to each other)
            "same": ShimProc(lab, b, [st, "tcp-server", P["same"], "--timeout", 170], tag="bob-same"),
            "same-alice": ShimProc(lab, a, [st, "tcp-server", P["same"], "--timeout", 170], tag="alice-same"),
            "udp4": ShimProc(lab, b, [st, "udp-echo", U["udp4"], "--timeout", 170], tag="bob-udp4"),
            "udp6": ShimProc(lab, b, [st, "udp-echo", U["udp6"], "--v6", "--bind", "::", "--timeout", 170], tag="bob-udp6"),
            "udpf": ShimProc(lab, b, [stf, "udp-echo", U["udpf"], "--timeout", 170], tag="bob-udpf"),
        }
        ok_servers = {}
        for k, p in servers.items():
            with rep.case(f"server/{k}-ready"):
                p.ready(20)
                ok_servers[k] = p

        # client runs on alice, a few at a time
        T = ["--timeout", "30"]
        clients = [
            ("tcp-blocking", [st, "tcp-client", B, P["tcp4"], "--self", A] + T),
            ("tcp-nonblock-poll", [st, "tcp-client", B, P["tcp4"], "--nonblock", "--poll", "--self", A] + T),
            ("tcp-nonblock-epoll", [st, "tcp-client", B, P["tcp4"], "--nonblock", "--epoll", "--self", A] + T),
            ("tcp-nonblock-select", [st, "tcp-client", B, P["tcp4"], "--nonblock", "--select", "--self", A,
                                     "--bytes", 1 << 20] + T),
            ("tcp-v6mapped-to-v4-server", [st, "tcp-client", B, P["tcp4"], "--v6", "--self", A] + T),
            ("tcp-v6mapped-to-dualstack-server", [st, "tcp-client", B, P["tcp6"], "--v6", "--nonblock", "--epoll",
                                                  "--self", A] + T),
            ("tcp-to-server-bound-to-5x", [st, "tcp-client", B, P["tcpself"], "--self", A] + T),
            ("tcp-peer-port-also-served-locally", [st, "tcp-client", B, P["same"], "--self", A] + T),
            ("tcp-fortify", [stf, "tcp-client", B, P["tcpf"], "--nonblock", "--poll", "--self", A] + T),
            ("tcp-refused-blocking", [st, "tcp-client", B, P["closed"], "--expect", "refused"] + T),
            ("tcp-refused-nonblock-epoll", [st, "tcp-client", B, P["closed"], "--nonblock", "--epoll",
                                            "--expect", "refused"] + T),
            ("tcp-refused-nonblock-poll-v6", [st, "tcp-client", B, P["closed"], "--nonblock", "--poll", "--v6",
                                              "--expect", "refused"] + T),
            ("tcp-unreachable-blocking", [st, "tcp-client", UNASSIGNED, 80, "--expect", "unreach", "--timeout", 40]),
            ("tcp-unreachable-nonblock-epoll", [st, "tcp-client", UNASSIGNED, 80, "--nonblock", "--epoll",
                                                "--expect", "unreach", "--timeout", 40]),
            ("udp", [st, "udp-client", B, U["udp4"]] + T),
            ("udp-v6mapped-dualstack", [st, "udp-client", B, U["udp6"], "--v6"] + T),
            ("udp-v6mapped-to-v4-server", [st, "udp-client", B, U["udp4"], "--v6"] + T),
            ("udp-fortify", [stf, "udp-client", B, U["udpf"]] + T),
            ("ifaces", [st, "ifaces", "--self", A, "--prefix", 8] + T),
            ("local", [st, "local", "--self", A] + T),
            ("lifecycle", [st, "lifecycle", B, P["tcp4"], "--bytes", 4096, "--timeout", 60]),
            ("names", [st, "resolve", "bob", "--peer", B] + T),
        ]
        ran = []
        for i in range(0, len(clients), 4):
            batch = clients[i:i + 4]
            procs = parallel([lambda argv=argv, name=name: run(lab, a, argv, timeout=70, tag=f"alice-{name}")
                              for name, argv in batch])
            for (name, _), p in zip(batch, procs):
                if isinstance(p, BaseException):
                    rep.add(f"{name}/run", False, repr(p))
                    continue
                rep.absorb(p, name)
                ran.append((name, p))

        # bob's side of the same connections: the accepting program saw alice's 5.x address and
        # its own on the accepted socket
        for k in ("tcp4", "tcp6", "tcpself", "tcpf", "same"):
            p = ok_servers.get(k)
            if not p:
                continue
            acc = p.events("accept")
            with rep.case(f"server/{k}-accept-peer-is-alice"):
                assert acc, "no connection accepted"
                bad = [e for e in acc if e["peer"] != A]
                assert not bad, f"accept() peers {sorted(set(e['peer'] for e in bad))}, want {A}"
            with rep.case(f"server/{k}-getsockname-is-bob"):
                assert acc, "no connection accepted"
                bad = [e for e in acc if e["sockname"] != B or e["sock_port"] != P[k]]
                assert not bad, f"accepted getsockname {[(e['sockname'], e['sock_port']) for e in bad][:3]}, " \
                                f"want {B}:{P[k]}"
            for c in p.checks():
                if not c["ok"]:
                    rep.add(f"server/{k}/{c['check']}", False, c["detail"])

        # a program listening on 0.0.0.0 stays reachable locally as before
        with rep.case("server/tcp4-still-reachable-on-127.0.0.1"):
            r = on_node(b, [sys.executable, "-c", LOCAL_CHECK, "127.0.0.1", P["tcp4"]])
            assert r.returncode == 0 and "local-ok" in r.stdout, (r.stdout + r.stderr)[-400:]
        with rep.case("server/tcp6-still-reachable-on-::1"):
            r = on_node(b, [sys.executable, "-c", LOCAL_CHECK, "::1", P["tcp6"]])
            assert r.returncode == 0 and "local-ok" in r.stdout, (r.stdout + r.stderr)[-400:]

        for k in ("udp4", "udp6", "udpf"):
            p = ok_servers.get(k)
            if not p:
                continue
            with rep.case(f"server/{k}-datagram-source-is-alice"):
                dg = p.events("dgram")
                assert dg, "no datagram received"
                bad = [e for e in dg if e["from"] != A]
                assert not bad, f"sources {sorted(set(e['from'] for e in bad))}, want {A}"
            with rep.case(f"server/{k}-recvmsg-used"):
                assert {e["via"] for e in p.events("dgram")} >= {"recvfrom", "recvmsg"}, p.events("dgram")

        for p in servers.values():
            p.stop()
        return rep.finish(lab)


if __name__ == "__main__":
    sys.exit(main())
