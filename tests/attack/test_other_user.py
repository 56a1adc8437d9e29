"""
Issue 9, defect 8: another local user must not act as this node through its loopback listeners.

alice's shoald (run by the test's user) has a SOCKS5 port and a `shoal forward` port to bob.
Another user of the machine (a fresh uid; the test runs as root and switches with setresuid)
connects to both. Holds: the kernel's socket owner (sock_diag) tells them apart, the other
user's connections are closed before a byte is answered, ours are served, and the refusal is
logged with the uid; with `--allow-other-users` (a second daemon, carol) the other user is
served. A SOCKS5 UDP association opened by us cannot be taken over by the other user sending
the first datagram from 127.0.0.1 (it was: the first datagram from the client's IP fixed the
client). Prints what each side got.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import Lab, free_port, run, wait_until  # noqa: E402
from services import HashService  # noqa: E402

OTHER = 64103


def greet(port):
    """What a SOCKS5 greeting on 127.0.0.1:port gets back (b'' when closed unanswered)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"\x05\x01\x00")
            return s.recv(2)
    except OSError as e:  # reset, not connected: closed unanswered
        if isinstance(e, socket.timeout):
            raise
        return b""


def forward_reply(port):
    """What the forwarded service (HashService: the SHA-256 of what follows "UP") answers,
    or b'' when the connection is closed unanswered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"UP\nhello")
            s.shutdown(socket.SHUT_WR)
            return s.recv(100)
    except OSError as e:  # reset, not connected: closed unanswered
        if isinstance(e, socket.timeout):
            raise
        return b""


UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo " + d, a)
"""


def udp_associate(socks_port):
    """A UDP ASSOCIATE from our uid: (control connection, relay port)."""
    c = socket.create_connection(("127.0.0.1", socks_port), timeout=5)
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\x00"
    c.sendall(b"\x05\x03\x00\x01" + bytes(4) + bytes(2))
    rep = c.recv(10)
    assert rep[:2] == b"\x05\x00", rep
    return c, int.from_bytes(rep[8:10], "big")


def udp_via_relay(relay_port, dst_ip, dst_port, payload):
    """One SOCKS5 UDP datagram through the relay; what comes back within 2 s, or b''."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    hdr = b"\x00\x00\x00\x01" + socket.inet_aton(dst_ip) + dst_port.to_bytes(2, "big")
    try:
        for _ in range(3):
            s.sendto(hdr + payload, ("127.0.0.1", relay_port))
            try:
                return s.recvfrom(4096)[0][10:]
            except socket.timeout:
                continue
        return b""
    finally:
        s.close()


def as_other(fn, *args):
    """fn(*args) in a child running as uid OTHER; returns its bytes result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(OTHER, OTHER, OTHER)
            os.setresuid(OTHER, OTHER, OTHER)
            out = fn(*args)
            os.write(w, b"ok:" + out)
        except Exception as e:
            os.write(w, b"err:" + repr(e).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    assert data.startswith(b"ok:"), data
    return data[3:]


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root to act as a second user")
        sys.exit(77)
    svc = HashService()
    with Lab("other-user") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        a.cli("create", "lan")
        b.cli("join", "lan")
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 10, what="bob online")
        b.cli("expose", svc.port)
        lport = free_port()
        a.cli("forward", lport, f"bob:{svc.port}")

        mine, theirs = greet(a.socks_port), as_other(greet, a.socks_port)
        print(f"SOCKS5 greeting: ours -> {mine!r}, uid {OTHER} -> {theirs!r}")
        assert mine == b"\x05\x00", mine
        assert theirs == b"", theirs
        fmine, ftheirs = forward_reply(lport), as_other(forward_reply, lport)
        print(f"forward: ours -> {fmine[:20]!r}, uid {OTHER} -> {ftheirs!r}")
        assert fmine, "our own forward connection got nothing"
        assert ftheirs == b"", ftheirs
        log = os.path.join(a.state, "shoald.log")
        with open(log) as fh:
            lines = [line for line in fh if "event=connection_refused" in line]
        print(f"logged: {lines[0].strip() if lines else None}")
        assert any(f"uid={OTHER}" in line for line in lines), lines

        # A UDP association: the other user's datagram, sent first, is not relayed, and the
        # association is still ours afterwards.
        eport = free_port()
        lab.spawn([sys.executable, "-c", UDP_ECHO, str(eport)], os.path.join(lab.dir, "udp-echo.log"))
        b.cli("expose", f"{eport}/udp")
        ctl, relay = udp_associate(a.socks_port)
        theirs = as_other(udp_via_relay, relay, b.address(), eport, b"from the other user")
        mine = udp_via_relay(relay, b.address(), eport, b"from us")
        ctl.close()
        print(f"SOCKS5 UDP association: uid {OTHER} first -> {theirs!r}, then ours -> {mine!r}")
        assert theirs == b"", theirs
        assert mine == b"echo from us", mine

        # The explicit opt-in lets them in.
        c = lab.start_daemon("carol", extra=["--allow-other-users"])
        theirs = as_other(greet, c.socks_port)
        print(f"with --allow-other-users: uid {OTHER} -> {theirs!r}")
        assert theirs == b"\x05\x00", theirs


if __name__ == "__main__":
    run(main)
