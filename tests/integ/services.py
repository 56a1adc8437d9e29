"""
Small real services for integration tests, run in threads on 127.0.0.1:
- HashService (TCP): a client sends "UP\n" then data until it half-closes; the service replies with
  the sha256 hex of what it got. "DOWN <n>\n": the service sends n bytes of pattern_stream and
  closes. Each connection in its own thread.
- UdpEcho: echoes every datagram back to its sender, prefixed with b"echo:".
"""
import hashlib
import socket
import threading

from harness import pattern_stream


class TcpService:
    """A loopback TCP server, one thread per connection; subclasses define _serve(c)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.sock.close()


class EchoService(TcpService):
    """Echoes every line back."""

    @staticmethod
    def _serve(c):
        with c:
            for line in c.makefile("rb"):
                c.sendall(line)


class HashService(TcpService):
    """UP: sha256 of what follows; DOWN N: N bytes of the pattern stream."""

    def _serve(self, c):
        try:
            f = c.makefile("rb")
            line = f.readline().decode().split()
            if line and line[0] == "UP":
                h = hashlib.sha256()
                while True:
                    chunk = f.read1(1 << 16)
                    if not chunk:
                        break
                    h.update(chunk)
                c.sendall(h.hexdigest().encode() + b"\n")
            elif line and line[0] == "DOWN":
                for chunk in pattern_stream(int(line[1])):
                    c.sendall(chunk)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()


class UdpEcho:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
                self.sock.sendto(b"echo:" + data, addr)
            except OSError:
                return


def upload(sock, total):
    """Sends "UP", total bytes, half-closes; returns (sha256 sent, sha256 the service got)."""
    h = hashlib.sha256()
    sock.sendall(b"UP\n")
    for chunk in pattern_stream(total):
        h.update(chunk)
        sock.sendall(chunk)
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(128)
        if not chunk:
            break
        reply += chunk
    sock.close()
    return h.hexdigest(), reply.decode().strip()


def download(sock, total):
    """Asks for total bytes; returns (sha256 expected, sha256 received, bytes received)."""
    sock.sendall(b"DOWN %d\n" % total)
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    sock.close()
    want = hashlib.sha256()
    for chunk in pattern_stream(total):
        want.update(chunk)
    return want.hexdigest(), h.hexdigest(), n
