"""
shoald's side of `shoal run`, spoken to directly: a tiny Python client plays the LD_PRELOAD
shim over the shim socket (SOCK_SEQPACKET, docs/PROTOCOL.md section 7) against two real
daemons, and real sockets carry the data through the aliases the daemons hand out.

  HELLO (address, prefix, MTU; wrong version refused), status --json names the socket;
  RESOLVE (nick, ".shoal", node id; unknown names ENOENT; malformed names EPROTO); per-client
  counting of TCP_LISTEN (seen through `shoal expose`); EHOSTUNREACH for 5.x that is no peer
  TCP_LISTEN on bob for a local server; TCP_CONNECT on alice, a real connect to the alias,
    TCP_RESULT(wait) = 0, data both ways, bob's server sees alice's alias (UNALIAS -> alice)
  TCP_CONNECT to a closed port: TCP_RESULT(wait) = ECONNREFUSED; unknown lport: ENOENT
  UDP_BIND + UDP_ALIAS: a datagram each way, sources are the senders' aliases
  DGRAM_OUT broadcast: both SO_REUSEADDR sockets on bob's port get a copy (127.255.255.255)
  MCAST: a group datagram arrives only while joined; DGRAM_OUT is rate limited
  a malformed request gets EPROTO; a client that goes releases its listens
"""
import errno
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, free_port, recv_exact  # noqa: E402

HELLO, ALIAS, UNALIAS, UDP_BIND, UDP_ALIAS, TCP_CONNECT, TCP_RESULT, TCP_LISTEN, MCAST, \
    DGRAM_OUT, CLOSE, RESOLVE, NAME_OF, REPLY = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64
VERSION = 3


def ip_int(s):
    return struct.unpack(">I", socket.inet_aton(s))[0]


def ip_str(n):
    return socket.inet_ntoa(struct.pack(">I", n))


class Shim:
    """The shim's half of the protocol: one request at a time, replies in order."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(20)
        self.s.connect(path)
        self.next_id = 0

    def request(self, mtype, body=b""):
        self.next_id += 1
        self.s.send(struct.pack(">BI", mtype, self.next_id) + body)
        return self.reply(self.next_id)

    def reply(self, want_id):
        rep = self.s.recv(512)
        assert len(rep) >= 19 and len(rep) == 19 + rep[18], f"reply of {len(rep)} bytes"
        t, rid, err, raddr, prefix, mtu, self.r_port = struct.unpack(">BIiIBHH", rep[:18])
        self.r_name = rep[19:].decode()
        assert t == REPLY and rid == want_id, f"reply type {t} id {rid}, want id {want_id}"
        return err, raddr, prefix, mtu

    def oneway(self, mtype, body):
        self.s.send(struct.pack(">BI", mtype, 0) + body)

    def hello(self, version=VERSION):
        return self.request(HELLO, struct.pack(">HI", version, os.getpid()))

    def tcp_listen(self, port):
        return self.request(TCP_LISTEN, struct.pack(">H", port))[0]

    def tcp_connect(self, lport, vaddr, port):
        """(err, address, port) the program's kernel socket must connect to."""
        err, alias, _, _ = self.request(TCP_CONNECT, struct.pack(">HIH", lport, vaddr, port))
        return err, alias, self.r_port

    def tcp_result(self, lport, wait=1):
        return self.request(TCP_RESULT, struct.pack(">HB", lport, wait))[0]

    def unalias(self, alias, port=1):
        return self.request(UNALIAS, struct.pack(">IH", alias, port))[1]

    def unalias_port(self, alias, port):
        return self.request(UNALIAS, struct.pack(">IH", alias, port))[1], self.r_port

    def name_of(self, vaddr):
        """(err, name) of the member at vaddr."""
        err = self.request(NAME_OF, struct.pack(">I", vaddr))[0]
        return err, self.r_name

    def resolve(self, name):
        raw = name.encode()
        return self.request(RESOLVE, struct.pack(">B", len(raw)) + raw)[:2]

    def udp_bind(self, port):
        return self.request(UDP_BIND, struct.pack(">H", port))[0]

    def udp_alias(self, vaddr, port):
        err, alias, _, _ = self.request(UDP_ALIAS, struct.pack(">IH", vaddr, port))
        assert err or self.r_port == port, f"UDP_ALIAS moved port {port} to {self.r_port} as root"
        return err, alias

    def mcast(self, group, port, join):
        return self.request(MCAST, struct.pack(">IHB", group, port, 1 if join else 0))[0]

    def dgram_out(self, dst, port, lport, data):
        self.oneway(DGRAM_OUT, struct.pack(">IHHH", dst, port, lport, len(data)) + data)

    def close(self):
        self.s.close()


def udp_socket(port, addr="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.settimeout(5)
    return s


def recv_none(s, wait=0.7):
    s.settimeout(wait)
    try:
        data = s.recvfrom(65536)
    except socket.timeout:
        return True
    finally:
        s.settimeout(5)
    raise AssertionError(f"unexpected datagram {data!r}")


def check_tcp(sa, sb, a_addr, b_addr):
    port_b = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # as the shim binds 5.our:P; a 0.0.0.0:P listener would need SO_REUSEPORT to coexist
    # with alice's alias listener on this one host (see docs/PROTOCOL.md 7.4)
    srv.bind(("127.0.0.1", port_b))
    srv.listen(8)
    srv.settimeout(15)
    assert sb.tcp_listen(port_b) == 0
    assert sb.tcp_listen(port_b) == 0, "a second listen on the same port shares it"

    cs = socket.socket()
    cs.bind(("127.0.0.1", 0))
    lport = cs.getsockname()[1]
    err, alias, kport = sa.tcp_connect(lport, b_addr, port_b)
    assert err == 0, f"TCP_CONNECT: {os.strerror(err)}"
    assert alias >> 16 == 0x7f42, f"alias {ip_str(alias)} not in 127.66/16"
    assert kport == port_b, f"TCP_CONNECT moved port {port_b} to {kport} as root"
    assert sa.unalias(alias) == b_addr
    assert sa.unalias_port(alias, port_b) == (b_addr, port_b)
    # the low-port alias of the same index: port k stands for k - 64512
    assert sa.unalias_port(alias | 0x10000, 64512 + 22) == (b_addr, 22)
    assert sa.unalias_port(alias | 0x10000, 8080) == (0, 0), "nothing else is bound on 127.67"
    cs.settimeout(15)
    cs.connect((ip_str(alias), port_b))
    assert sa.tcp_result(lport, wait=1) == 0
    assert sa.tcp_result(lport, wait=0) == 0, "the outcome stays known"
    conn, peer = srv.accept()
    assert ip_int(peer[0]) >> 16 == 0x7f42, f"server sees {peer}, not an alias"
    assert sb.unalias(ip_int(peer[0])) == a_addr, "bob's alias for the client is not alice"
    conn.settimeout(15)
    cs.sendall(b"hello bob" * 1000)
    assert recv_exact(conn, 9000) == b"hello bob" * 1000
    conn.sendall(b"hello alice")
    assert recv_exact(cs, 11) == b"hello alice"
    cs.close()
    assert conn.recv(10) == b"", "close is carried across"
    conn.close()

    # nobody listens there: refused, reported through TCP_RESULT
    closed = free_port()
    cs = socket.socket()
    cs.bind(("127.0.0.1", 0))
    lport = cs.getsockname()[1]
    err, alias, _ = sa.tcp_connect(lport, b_addr, closed)
    assert err == 0
    cs.connect((ip_str(alias), closed))
    err = sa.tcp_result(lport, wait=1)
    assert err == errno.ECONNREFUSED, f"closed port: {err}"
    cs.close()

    # an address in our network that is no peer: EHOSTUNREACH at once, through TCP_RESULT
    cs = socket.socket()
    cs.bind(("127.0.0.1", 0))
    lport = cs.getsockname()[1]
    t0 = time.monotonic()
    err, alias, kport = sa.tcp_connect(lport, ip_int("5.254.254.253"), 80)
    assert err == 0
    cs.settimeout(5)
    try:
        cs.connect((ip_str(alias), kport))
    except OSError:
        pass    # reset before the accept was seen: the outcome still comes from TCP_RESULT
    err = sa.tcp_result(lport, wait=1)
    assert err == errno.EHOSTUNREACH and time.monotonic() - t0 < 3, f"no peer: {err}"
    cs.close()
    assert sa.tcp_result(65000 if lport != 65000 else 64999, wait=1) == errno.ENOENT
    assert sa.tcp_connect(lport, a_addr, 80)[0] == errno.EINVAL, "ourselves is not a peer"
    assert sa.tcp_connect(lport, ip_int("10.0.0.1"), 80)[0] == errno.ENETUNREACH
    return srv, port_b


def check_udp(sa, sb, a_addr, b_addr):
    pa, pb = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    ua = udp_socket(pa)
    ub = udp_socket(pb)
    assert sa.udp_bind(pa) == 0
    assert sb.udp_bind(pb) == 0

    err, alias_b = sa.udp_alias(b_addr, pb)
    assert err == 0 and alias_b >> 16 == 0x7f42
    assert sa.udp_alias(ip_int("5.254.254.253"), pb)[0] == errno.EHOSTUNREACH, "no peer"
    # the overlay path may need a moment the first time (handshake): retry a few times
    got = None
    for _ in range(20):
        ua.sendto(b"ping", (ip_str(alias_b), pb))
        try:
            ub.settimeout(0.5)
            got = ub.recvfrom(100)
            break
        except socket.timeout:
            continue
    ub.settimeout(5)
    assert got is not None, "unicast datagram alice -> bob never arrived"
    data, (src, sport) = got
    assert data == b"ping" and sport == pa, got
    assert sb.unalias(ip_int(src)) == a_addr
    err, alias_a = sb.udp_alias(a_addr, pa)
    assert err == 0 and ip_str(alias_a) == src, "bob's alias for alice differs from the source"
    ub.sendto(b"pong", (src, pa))
    data, (src2, sport2) = ua.recvfrom(100)
    assert data == b"pong" and ip_str(alias_b) == src2 and sport2 == pb, (data, src2, sport2)
    # (a second socket on the port now: unicast would reach only one of the two)
    ub2 = udp_socket(pb)

    # broadcast: every socket on bob's port gets a copy, from alice's alias
    sa.dgram_out(0xffffffff, pb, pa, b"hello all")
    for s in (ub, ub2):
        data, (src3, sport3) = s.recvfrom(100)
        assert data == b"hello all" and src3 == src and sport3 == pa, (data, src3, sport3)
    subnet_bcast = b_addr | 0x00ffffff      # the test network is a /8
    sa.dgram_out(subnet_bcast, pb, pa, b"subnet")
    assert ub.recvfrom(100)[0] == b"subnet"
    assert ub2.recvfrom(100)[0] == b"subnet"

    # multicast: only while joined
    group = ip_int("239.1.2.3")
    sa.dgram_out(group, pb, pa, b"not joined")
    recv_none(ub)
    assert sb.mcast(group, pb, True) == 0
    # the shim also joins the group on lo, where shoald delivers peers' group datagrams
    lo_join = struct.pack("4s4si", socket.inet_aton("239.1.2.3"), b"\0" * 4, socket.if_nametoindex("lo"))
    ub.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, lo_join)
    sa.dgram_out(group, pb, pa, b"joined")
    assert ub.recvfrom(100)[0] == b"joined"
    assert ub2.recvfrom(100)[0] == b"joined"
    assert sb.mcast(group, pb, False) == 0
    assert sb.mcast(group, pb, False) == errno.EADDRNOTAVAIL
    sa.dgram_out(group, pb, pa, b"left")
    recv_none(ub)

    # rate limit: a burst of 400 copies is cut to about the bucket (100) plus refill
    ub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    recv_none(ub2, 0.3)
    time.sleep(0.6)                         # refill the bucket
    for i in range(400):
        sa.dgram_out(0xffffffff, pb, pa, b"storm %d" % i)
    n = 0
    ub.settimeout(1.0)
    try:
        while True:
            ub.recvfrom(100)
            n += 1
    except socket.timeout:
        pass
    assert 50 <= n <= 250, f"{n} of 400 broadcast copies arrived; want about 100"
    for s in (ua, ub, ub2):
        s.close()


def main():
    with Lab("shimproto") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        a.cli("create", "lan")
        b.cli("join", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 5, what="bob online")
        wait_until(lambda: (b.member("lan", "alice") or {}).get("online"), 5, what="alice online")
        sta, stb = a.status(), b.status()
        a_addr, b_addr = ip_int(sta["address"]), ip_int(stb["address"])
        assert sta["shim_socket"] == os.path.join(os.path.dirname(a.ctl), "shim.sock"), sta
        assert os.stat(sta["shim_socket"]).st_mode & 0o777 == 0o600

        sa, sb = Shim(sta["shim_socket"]), Shim(stb["shim_socket"])
        err, addr, prefix, mtu = sa.hello()
        assert err == 0 and addr == a_addr and prefix == 8 and mtu == 1400, (err, addr, prefix, mtu)
        assert sb.hello()[1] == b_addr
        assert sa.hello(version=99)[0] == errno.EPROTONOSUPPORT
        assert sa.unalias(ip_int("127.66.255.255")) == 0, "unknown alias"

        # a truncated TCP_CONNECT: answered EPROTO with its id, the connection stays usable
        sa.s.send(struct.pack(">BIH", TCP_CONNECT, 4242, 1))
        assert sa.reply(4242)[0] == errno.EPROTO
        err, alias = sa.request(ALIAS, struct.pack(">I", b_addr))[:2]
        assert err == 0 and sa.unalias(alias) == b_addr

        # peer names: nick (any case, ".shoal", trailing dot), node id prefix, ourselves
        for name in ("bob", "BOB", "bob.shoal", "Bob.Shoal.", "bob.", stb["node_id"][:10]):
            assert sa.resolve(name) == (0, b_addr), (name, sa.resolve(name))
        assert sa.resolve("alice") == (0, a_addr)
        for name in ("nobody-here", "bob.example", ".shoal", "."):
            assert sa.resolve(name)[0] == errno.ENOENT, (name, sa.resolve(name))
        # an empty name and a NUL inside are malformed: EPROTO, the connection stays usable
        sa.s.send(struct.pack(">BIB", RESOLVE, 4343, 0))
        assert sa.reply(4343)[0] == errno.EPROTO
        sa.s.send(struct.pack(">BIB", RESOLVE, 4344, 3) + b"b\0b")
        assert sa.reply(4344)[0] == errno.EPROTO
        assert sa.resolve("bob") == (0, b_addr)
        # the reverse: NAME_OF answers NICK.shoal, which resolves back; nobody there: ENOENT
        assert sa.name_of(b_addr) == (0, "bob.shoal"), sa.name_of(b_addr)
        assert sa.name_of(a_addr) == (0, "alice.shoal"), sa.name_of(a_addr)
        assert sa.name_of(b_addr + 1000)[0] == errno.ENOENT
        assert sa.resolve(sa.name_of(b_addr)[1]) == (0, b_addr)

        # registrations are counted per client: two listens, one CLOSE keeps the port
        pc = free_port()
        assert sb.tcp_listen(pc) == 0 and sb.tcp_listen(pc) == 0
        sb.oneway(CLOSE, struct.pack(">BH", 6, pc))
        time.sleep(0.2)
        assert b.cli("expose", pc, check=False).returncode != 0, "released after one of two CLOSEs"
        sb.oneway(CLOSE, struct.pack(">BH", 6, pc))
        wait_until(lambda: b.cli("expose", pc, check=False).returncode == 0, 5, what="port released")
        b.cli("expose", pc, "--remove")

        srv, port_b = check_tcp(sa, sb, a_addr, b_addr)
        check_udp(sa, sb, a_addr, b_addr)

        # bob's shim goes away while its listening socket lives on (another process may hold
        # it: fork, exec): the listen is kept; once the socket is closed too, it is released
        sb.close()
        time.sleep(0.3)
        assert b.cli("expose", port_b, check=False).returncode != 0, "kept while the socket lives"
        srv.close()
        wait_until(lambda: b.cli("expose", port_b, check=False).returncode == 0, 8,
                   what="listen released after its socket closed")
        b.cli("expose", port_b, "--remove")
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port_b))
        srv.listen(8)
        cs = socket.socket()
        cs.bind(("127.0.0.1", 0))
        lport = cs.getsockname()[1]
        err, alias, kport = sa.tcp_connect(lport, b_addr, port_b)
        assert err == 0
        cs.connect((ip_str(alias), kport))
        assert sa.tcp_result(lport, wait=1) == errno.ECONNREFUSED, "listen outlived its client"
        cs.close()
        sb = Shim(stb["shim_socket"])
        assert sb.tcp_listen(port_b) == 0
        sa.close()
        sb.close()
        srv.close()


if __name__ == "__main__":
    run(main)
