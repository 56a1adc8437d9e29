"""
Data through the overlay between real daemons: 100 MB each way through SOCKS5 CONNECT (by
address and by nickname) and through `shoal forward`, byte-identical by sha256; SOCKS5 UDP
ASSOCIATE round trip to an exposed UDP port; SOCKS errors for non-overlay targets; a node that
is not a co-member cannot reach the exposed port.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, wait_until, socks_connect, socks_request, socks_read_reply, recv_exact, free_port, socks_udp_roundtrip  # noqa: E402
from services import HashService, UdpEcho, upload, download  # noqa: E402

SIZE = int(os.environ.get("SHOAL_TRANSFER_BYTES", 100 * 1024 * 1024))


def main():
    svc = HashService()
    echo = UdpEcho()
    with Lab("transfer") as lab:
        lab.start_server()
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        c = lab.start_daemon("carol")  # never joins: must not reach bob's services
        a.cli("create", "lan")
        b.cli("join", "lan")
        c.cli("create", "elsewhere")
        b_addr = b.address()
        wait_until(lambda: (a.member("lan", "bob") or {}).get("online"), 2, what="bob online")

        b.cli("expose", svc.port)
        b.cli("expose", f"{echo.port}/udp")

        # SOCKS5 CONNECT by address: upload and download
        sent, got = upload(socks_connect(a.socks_port, b_addr, svc.port), SIZE)
        assert sent == got, f"upload via SOCKS corrupted: {sent} != {got}"
        want, got, n = download(socks_connect(a.socks_port, b_addr, svc.port), SIZE)
        assert n == SIZE and want == got, f"download via SOCKS: {n} bytes, {got} != {want}"

        # SOCKS5 CONNECT by nickname
        sent, got = upload(socks_connect(a.socks_port, "bob", svc.port), 1 << 20)
        assert sent == got

        # shoal forward: a SOCKS-unaware client
        lport = free_port()
        a.cli("forward", lport, f"bob:{svc.port}")
        sent, got = upload(socket.create_connection(("127.0.0.1", lport)), SIZE)
        assert sent == got, "upload via forward corrupted"
        want, got, n = download(socket.create_connection(("127.0.0.1", lport)), SIZE)
        assert n == SIZE and want == got, "download via forward corrupted"

        # SOCKS5 errors: a non-overlay address is not allowed; BIND is not supported
        s = socket.create_connection(("127.0.0.1", a.socks_port))
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2) == b"\x05\x00"
        s.sendall(socks_request(1, "192.0.2.1", 80))
        assert socks_read_reply(s)[0] == 2, "non-overlay target must be refused by ruleset"
        s.close()
        s = socket.create_connection(("127.0.0.1", a.socks_port))
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(socks_request(2, b_addr, 80))
        assert socks_read_reply(s)[0] == 7, "BIND must be 'command not supported'"
        s.close()
        # a port nobody listens on: connection refused
        s = socket.create_connection(("127.0.0.1", a.socks_port))
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(socks_request(1, b_addr, 9))
        assert socks_read_reply(s)[0] == 5, "closed port must be 'connection refused'"
        s.close()

        # UDP ASSOCIATE round trip to bob's exposed UDP echo
        assert socks_udp_roundtrip(a.socks_port, b_addr, echo.port, b"hello over udp") == b"echo:hello over udp"

        # carol is not a co-member: bob's exposed port is unreachable for her
        before = svc.connections
        try:
            s = socks_connect(c.socks_port, b_addr, svc.port, timeout=15)
            s.sendall(b"UP\n")
            s.shutdown(socket.SHUT_WR)
            data = s.recv(100)
            raise AssertionError(f"non-member reached the exposed port: {data!r}")
        except (ConnectionError, OSError):
            pass
        assert svc.connections == before, "non-member connection reached the service"


if __name__ == "__main__":
    run(main)
