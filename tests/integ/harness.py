"""
Integration-test harness: starts real shoal-server and shoald processes on loopback, each with
its own state directory and control socket, and drives them through the real `shoal` CLI.
Nothing is mocked. Every process is killed when the test ends, and logs are printed on failure.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# Daemons started by tests ask no gateway for a port mapping (no UPnP multicast, no NAT-PMP out of
# the test machine); tests/natlab turns it back on inside its namespaces.
os.environ.setdefault("SHOAL_PORTMAP", "off")
BUILD = os.environ.get("SHOAL_BUILDDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def binary(name):
    for sub in ("", "server", "daemon", "cli"):
        p = os.path.join(BUILD, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(f"{name} not built in {BUILD}")


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the condition may throw while things come up
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class CliError(Exception):
    def __init__(self, code, stderr):
        super().__init__(f"exit {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


class Lab:
    """One test's world: a temp dir, a mediator, daemons. Use as a context manager."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"shoal-{name}-")
        self.procs = []
        self.server = None
        self.daemons = {}

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        failed = et is not None
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failed:
            self.dump_logs()
        elif os.environ.get("SHOAL_KEEP_LAB"):  # to read a passing run's logs (load runs)
            print(f"# lab kept: {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def dump_logs(self):
        for root, _, files in os.walk(self.dir):
            for f in files:
                if f.endswith(".log"):
                    path = os.path.join(root, f)
                    with open(path, errors="replace") as fh:
                        lines = fh.readlines()
                    print(f"----- {path} (last 80 lines)")
                    sys.stdout.writelines(lines[-80:])

    def spawn(self, argv, log, env=None):
        fh = open(log, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e)
        self.procs.append(p)
        return p

    # --- mediator ---
    def start_server(self, port=None, host="127.0.0.1", wrap=(), fast_passwords=True, extra=()):
        """fast_passwords: Argon2id at its cheapest (--pwhash-fast); False: the real cost."""
        state = os.path.join(self.dir, "server")
        os.makedirs(state, exist_ok=True)
        url_file = os.path.join(state, "url")
        if port is None:
            port = self.server.port if self.server else 0
        if os.path.exists(url_file) and port == 0:
            os.unlink(url_file)
        log = os.path.join(self.dir, "server.log")
        # SHOAL_TEST_STORE: the mediator keeps its state in that PostgreSQL database
        # (tests/integ/test_store_pg.py reruns scenarios that way).
        store = ["--store", os.environ["SHOAL_TEST_STORE"]] if os.environ.get("SHOAL_TEST_STORE") else []
        p = self.spawn(list(wrap) + [binary("shoal-server"), "--listen", f"{host}:{port}", "--state", state]
                       + (["--pwhash-fast"] if fast_passwords else [])
                       + (["-v"] if getattr(self, "server_verbose", True) else []) + store + list(extra), log)
        if port == 0:
            wait_until(lambda: os.path.exists(url_file) and open(url_file).read().strip(), 10, what="server url")
        else:
            wait_until(lambda: os.path.exists(url_file), 10, what="server url")
        url = open(url_file).read().strip()
        real_port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.server = Server(p, url, real_port, state)
        self.server.wrap = list(wrap)
        return self.server

    @staticmethod
    def _tcp_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill_server(self):
        self.server.proc.kill()
        self.server.proc.wait()

    # --- daemons ---
    def start_daemon(self, name, nick=None, wrap=(), wait_connected=True, cli_wrap=(), extra=(), server_url=None):
        """cli_wrap: prefix for the CLI's argv, e.g. to run it as the daemon's user (the CLI
        refuses a control socket served by another user, or in another user's directory).
        server_url: another connection string than the lab server's (e.g. several instances)."""
        state = os.path.join(self.dir, name)
        os.makedirs(state, exist_ok=True)
        ctl = os.path.join(self.dir, name, "ctl.sock")
        socks = free_port()
        argv = list(wrap) + [binary("shoald"), "--server", server_url or self.server.url, "--state", state, "--control", ctl,
                "--socks", f"127.0.0.1:{socks}", "--nick", nick or name, "-v"] + list(extra)
        p = self.spawn(argv, os.path.join(state, "shoald.log"))
        d = Daemon(self, name, p, ctl, socks, state)
        d.cli_wrap = list(cli_wrap)
        if wait_connected:
            wait_until(lambda: d.status().get("server") == "connected" and d.status().get("address"), 10,
                       what=f"{name} connected")
        else:
            wait_until(lambda: os.path.exists(ctl) and d.cli("status", check=False).returncode == 0, 10,
                       what=f"{name} control socket")
        self.daemons[name] = d
        return d


class Server:
    def __init__(self, proc, url, port, state):
        self.proc, self.url, self.port, self.state = proc, url, port, state


class Daemon:
    def __init__(self, lab, name, proc, ctl, socks_port, state):
        self.lab, self.name, self.proc, self.ctl, self.socks_port, self.state = lab, name, proc, ctl, socks_port, state
        self.cli_wrap = []

    def cli(self, *args, check=True, json_out=True, timeout=20):
        argv = self.cli_wrap + [binary("shoal"), "--control", self.ctl] + (["--json"] if json_out else []) + [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise CliError(r.returncode, r.stderr)
        if not check:
            return r
        return json.loads(r.stdout) if json_out and r.stdout.strip() else r.stdout

    def status(self):
        return self.cli("status")

    def address(self):
        return self.status()["address"]

    def node_id(self):
        return self.status()["node_id"]

    def network(self, name):
        for n in self.cli("list")["networks"]:
            if n["name"] == name:
                return n
        return None

    def member(self, net, nick):
        n = self.network(net)
        if not n:
            return None
        for m in n["members"]:
            if m["nick"] == nick:
                return m
        return None


# --- SOCKS5 client (RFC 1928), minimal and strict, for tests ---
def socks_connect(socks_port, host, port, timeout=15):
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise AssertionError("SOCKS greeting refused")
    s.sendall(socks_request(1, host, port))
    rep = socks_read_reply(s)
    if rep[0] != 0:
        s.close()
        raise ConnectionError(f"SOCKS reply {rep[0]}")
    return s


def socks_request(cmd, host, port):
    try:
        addr = b"\x01" + socket.inet_aton(host)
    except OSError:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    return bytes([5, cmd, 0]) + addr + struct.pack(">H", port)


def socks_read_reply(s):
    head = recv_exact(s, 4)
    if head[0] != 5:
        raise AssertionError(f"bad SOCKS reply version {head!r}")
    atyp = head[3]
    if atyp == 1:
        addr = socket.inet_ntoa(recv_exact(s, 4))
    elif atyp == 3:
        addr = recv_exact(s, recv_exact(s, 1)[0]).decode()
    elif atyp == 4:
        addr = socket.inet_ntop(socket.AF_INET6, recv_exact(s, 16))
    else:
        raise AssertionError(f"bad ATYP {atyp}")
    port = struct.unpack(">H", recv_exact(s, 2))[0]
    return head[1], addr, port


def socks_udp_roundtrip(socks_port, addr, port, payload, tries=5):
    """One datagram to addr:port (a dotted address) through SOCKS5 UDP ASSOCIATE; returns the
    reply's payload, checking that it comes from addr:port. Retries: the first datagram may be
    lost while the path warms up."""
    ctl = socket.create_connection(("127.0.0.1", socks_port))
    ctl.sendall(b"\x05\x01\x00")
    recv_exact(ctl, 2)
    ctl.sendall(socks_request(3, "0.0.0.0", 0))
    rep, relay_host, relay_port = socks_read_reply(ctl)
    assert rep == 0, rep
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1.0)
    header = b"\x00\x00\x00\x01" + socket.inet_aton(addr) + struct.pack(">H", port)
    got = None
    for _ in range(tries):
        u.sendto(header + payload, (relay_host, relay_port))
        try:
            got = u.recv(2048)
            break
        except socket.timeout:
            continue
    u.close()
    ctl.close()
    assert got is not None, "no UDP ASSOCIATE reply"
    assert got[:4] == b"\x00\x00\x00\x01" and socket.inet_ntoa(got[4:8]) == addr, got[:10]
    assert struct.unpack(">H", got[8:10])[0] == port
    return got[10:]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF")
        buf += chunk
    return buf


def pattern_stream(total, seed=b"shoal"):
    """Deterministic pseudo-random data in 64 KiB chunks, and its sha256."""
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    sent = 0
    i = 0
    while sent < total:
        n = min(len(block), total - sent)
        chunk = bytes([(i * 7) & 0xff]) + block[1:n] if n else b""
        yield chunk[:n]
        sent += n
        i += 1


def run(main):
    """Entry point for a test file: run main(), print a closing line, exit 0/1."""
    try:
        main()
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
    print("1 passed, 0 failed")
    sys.exit(0)
