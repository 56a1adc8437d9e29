"""
shoal-relay as a process (issue 8, first part): two clients that hold a grant's side secrets
(computed here as the mediator will, docs/PROTOCOL.md 8) bind one pair and exchange datagrams
through it byte for byte; a third client that names the pair is never forwarded to or from, a
BIND under another key is not answered, a replayed BIND changes nothing, PING gets a same-size
PONG, and SIGUSR1 logs the counters in one line. Over the TCP transport (framed datagrams) a
forged or expired BIND is refused too, a valid one binds the stream, and DATA crosses between a
UDP side and a TCP side. Also: shoal-server starts its embedded relay, on UDP and on TCP with the
same port number.
"""
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, binary, free_port, run, wait_until  # noqa: E402

CONTEXT = b"shoal-relay-side-v1"


def side_secret(key, pair, side, expiry):
    return hashlib.blake2b(CONTEXT + struct.pack(">QBI", pair, side, expiry), key=key,
                           digest_size=32).digest()


def bind_pkt(key, pair, side, expiry, counter):
    body = struct.pack(">B3xQB3xIQ", 24, pair, side, expiry, counter)
    return body + hashlib.blake2b(body, key=side_secret(key, pair, side, expiry),
                                  digest_size=16).digest()


def data_pkt(pair, payload):
    return struct.pack(">B3xQ", 26, pair) + payload


def frame(pkt):
    return struct.pack(">H", len(pkt)) + pkt


def read_frame(s):
    hdr = b""
    while len(hdr) < 2:
        c = s.recv(2 - len(hdr))
        assert c, "stream closed"
        hdr += c
    n = struct.unpack(">H", hdr)[0]
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        assert c, "stream closed"
        body += c
    return body


def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    return s


def recv_or_none(s, wait=0.3):
    s.settimeout(wait)
    try:
        return s.recv(2000)
    except socket.timeout:
        return None


def main():
    key = os.urandom(32)
    with Lab("relay") as lab:
        kf = os.path.join(lab.dir, "relay.key")
        with open(kf, "w") as fh:
            fh.write(key.hex() + "\n")
        port = free_port(socket.SOCK_DGRAM)
        tport = free_port()
        log = os.path.join(lab.dir, "relay.log")
        p = lab.spawn([binary("shoal-relay"), "--listen", f"127.0.0.1:{port}", "--key-file", kf,
                       "--tcp-port", str(tport), "--stats-interval", "0", "-v"], log)
        wait_until(lambda: "event=relay_listening" in open(log).read(), 10, what="relay up")
        relay = ("127.0.0.1", port)
        a, b, m = sock(), sock(), sock()
        pair, exp = 0x1122334455667788, int(time.time()) + 600

        a.sendto(bind_pkt(key, pair, 0, exp, 1), relay)
        ack = a.recv(100)
        assert len(ack) == 40 and ack[0] == 25 and ack[13] == 0, ack.hex()   # peer not bound
        b.sendto(bind_pkt(key, pair, 1, exp, 1), relay)
        ack = b.recv(100)
        assert ack[0] == 25 and ack[13] == 1, ack.hex()
        payload = os.urandom(1200)
        a.sendto(data_pkt(pair, payload), relay)
        assert b.recv(2000) == data_pkt(pair, payload)
        b.sendto(data_pkt(pair, b"back"), relay)
        assert a.recv(2000) == data_pkt(pair, b"back")

        # The third party: its data goes nowhere, its forged and replayed BINDs get nothing.
        m.sendto(data_pkt(pair, b"inject"), relay)
        assert recv_or_none(a) is None and recv_or_none(b) is None
        m.sendto(bind_pkt(os.urandom(32), pair, 0, exp, 9), relay)
        m.sendto(bind_pkt(key, pair, 0, exp, 1), relay)       # a's BIND, replayed
        assert recv_or_none(m) is None
        b.sendto(data_pkt(pair, b"still a"), relay)
        assert a.recv(2000) == data_pkt(pair, b"still a")

        a.sendto(struct.pack(">B3xQ", 27, 99), relay)
        assert a.recv(100) == struct.pack(">B3xQ", 28, 99)

        # Expired grant (its MAC is right): refused over UDP.
        old = int(time.time()) - 10
        m.sendto(bind_pkt(key, 0x55, 0, old, 1), relay)
        assert recv_or_none(m) is None

        # The TCP transport (PROTOCOL.md 8.5): frames of u16 length + one relay datagram. A
        # forged or expired BIND gets nothing; a valid one binds the TCP stream as a side, and
        # DATA crosses between a UDP side and a TCP side.
        t = socket.create_connection(("127.0.0.1", tport), timeout=5)
        t.sendall(frame(bind_pkt(os.urandom(32), 0x77, 1, exp, 1)))
        t.sendall(frame(bind_pkt(key, 0x77, 1, old, 1)))
        t.sendall(frame(struct.pack(">B3xQ", 27, 5)))          # PING: the stream is alive
        assert read_frame(t) == struct.pack(">B3xQ", 28, 5)    # ... and nothing came before
        t.sendall(frame(bind_pkt(key, 0x77, 1, exp, 1)))
        ack = read_frame(t)
        assert len(ack) == 40 and ack[0] == 25 and ack[13] == 0, ack.hex()
        u = sock()
        u.sendto(bind_pkt(key, 0x77, 0, exp, 1), relay)
        ack = u.recv(100)
        assert ack[0] == 25 and ack[13] == 1, ack.hex()
        u.sendto(data_pkt(0x77, b"udp to tcp"), relay)
        assert read_frame(t) == data_pkt(0x77, b"udp to tcp")
        t.sendall(frame(data_pkt(0x77, b"tcp to udp")))
        assert u.recv(2000) == data_pkt(0x77, b"tcp to udp")
        # The UDP socket with the TCP stream's own address and port is another source.
        print("TCP transport: forged and expired BINDs refused, UDP and TCP sides forward")
        t.close()

        p.send_signal(signal.SIGUSR1)
        wait_until(lambda: "event=relay_stats" in open(log).read(), 5, what="stats line")
        line = [x for x in open(log) if "event=relay_stats" in x][-1]
        print(line.strip())
        for want in ("pairs=2", "packets=5", "drop_auth=2", "drop_replay=1", "drop_unbound=1",
                     "drop_expired=2", "pings=2", "tcp_accepted=1"):
            assert want in line, (want, line)

        # shoal-server embeds a relay (its key is its own: only PING can be checked here).
        srv = lab.start_server()
        slog = os.path.join(lab.dir, "server.log")
        wait_until(lambda: "event=relay_listening" in open(slog).read(), 10, what="embedded")
        rport = int([x for x in open(slog) if "event=relay_listening" in x][0]
                    .split("port=")[1].split()[0])
        a.sendto(struct.pack(">B3xQ", 27, 7), ("127.0.0.1", rport))
        assert a.recv(100) == struct.pack(">B3xQ", 28, 7)
        t = socket.create_connection(("127.0.0.1", rport), timeout=5)
        t.sendall(frame(struct.pack(">B3xQ", 27, 8)))
        assert read_frame(t) == struct.pack(">B3xQ", 28, 8)
        t.close()
        print(f"embedded relay of shoal-server (port {srv.port}) on {rport} answers PING (UDP, TCP)")


if __name__ == "__main__":
    run(main)
