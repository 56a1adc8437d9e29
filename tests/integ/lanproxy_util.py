"""
Helpers for the lanproxy (issue 3) integration tests, on top of harness.py (which stays as is):

- isolate(): re-runs the calling test inside a private network namespace that has only a
  loopback interface and no route beyond 127/8, so nothing a wrapped program does (broadcasts
  to 255.255.255.255, multicast, a 5.x packet the shim failed to catch) can leave the machine.
  In that namespace shoal0 is the only LAN a program has, as on a machine whose only LAN is
  shoal, and a datagram can only reach another "node" through the overlay.
- start_nodes() / lan(): a mediator plus N daemons, each daemon (and the programs run on its
  node) in its own network namespace, as on separate machines: nodes never share a port
  space, so "every node runs the game on port P" works as it does on a real LAN; lan() also
  puts them in one network, all online to each other. unpriv=True runs the daemons and the
  programs on their nodes as nobody (UNPRIV), as an ordinary user would.
- ShimProc / run(): a program under `shoal --control CTL run --`, its stdout parsed as JSON
  lines (shimtest) or kept as text, stderr kept for diagnosis.
- Report: named checks that all run; prints PASS/FAIL per check and the closing
  "N passed, M failed" line; exit 0, 1, or 77 (skipped, with the reason).
"""
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, binary, free_port, wait_until  # noqa: E402,F401

SKIP = 77
NETNS_ENV = "SHOAL_LANPROXY_NETNS"

# An ordinary user: what `shoal run` is for. BIND_CAP lets one program (a server standing in
# for a system service on port 22/80) bind low ports while staying that user; ambient
# capabilities do not make the exec "secure", so LD_PRELOAD still applies.
UNPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
BIND_CAP = ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"]


def unpriv_ids():
    import grp
    import pwd
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def unpriv_python():
    """A python3 that nobody may run (the test's own may live under a private home)."""
    uid, gid = unpriv_ids()
    for p in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")):
        # through sh: a process that already is nobody must be able to exec it (setpriv
        # itself may still reach paths nobody cannot)
        r = subprocess.run(UNPRIV + ["sh", "-c", 'exec "$0" -c "print(42)"', p], capture_output=True, text=True) \
            if p else None
        if r and r.returncode == 0 and r.stdout.strip() == "42":
            return p
    print("SKIP: no python3 that the user nobody can run")
    sys.exit(SKIP)


def shimtest(fortify=False):
    p = os.path.join(BUILD, "tests", "lanproxy", "shimtest_fortify" if fortify else "shimtest")
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        raise FileNotFoundError(f"{p} not built (make check builds it; or make tests/lanproxy/shimtest)")
    return p


def _lo_up():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl_ioctl(s, SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl_ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    finally:
        s.close()


def fcntl_ioctl(s, req, arg):
    import fcntl
    return fcntl.ioctl(s.fileno(), req, arg + b"\0" * (40 - len(arg)))


def isolate():
    """Call first in a test's main module: re-execs it in a private network namespace."""
    if os.environ.get(NETNS_ENV) == "1":
        _lo_up()
        return
    unshare = shutil.which("unshare")
    if not unshare:
        print("SKIP: unshare(1) not found: the lanproxy tests need a private network namespace so that "
              "broadcasts and 5.x traffic never leave loopback")
        sys.exit(SKIP)
    env = dict(os.environ)
    env[NETNS_ENV] = "1"
    tried = []
    for flags in (["-n"], ["-rn"]) if os.geteuid() == 0 else (["-rn"],):
        probe = subprocess.run([unshare] + flags + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            tried.append(f"unshare {' '.join(flags)}: {probe.stderr.strip()}")
            continue
        sys.stdout.flush()
        os.execve(unshare, [unshare] + flags + ["--", sys.executable] + sys.argv, env)
    print("SKIP: cannot create a private network namespace (" + "; ".join(tried) + "); the lanproxy tests "
          "refuse to run without one because broadcasts and 5.x traffic would reach the real network")
    sys.exit(SKIP)


def sh(argv, ns_pid=None):
    if ns_pid is not None:
        argv = ["nsenter", f"--net=/proc/{ns_pid}/ns/net"] + argv
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: {r.stderr.strip()}")
    return r.stdout


HUB = "10.199.0.1"   # the mediator's address, on the hub namespace's loopback


def _hub_setup():
    if not shutil.which("ip") or not shutil.which("nsenter"):
        print("SKIP: ip(8) and nsenter(1) are needed to give each node its own network namespace "
              "(scripts/deps.sh installs iproute2 and util-linux)")
        sys.exit(SKIP)
    if os.path.exists("/proc/sys/net/ipv4/ip_forward"):
        with open("/proc/sys/net/ipv4/ip_forward", "w") as fh:
            fh.write("1")
    out = sh(["ip", "-4", "addr", "show", "dev", "lo"])
    if HUB not in out:
        sh(["ip", "addr", "add", f"{HUB}/32", "dev", "lo"])


def node_ns(lab, index):
    """A network namespace for one node: its own loopback (so nodes never share ports, as on
    separate machines) and a point-to-point link to the hub namespace, which routes between
    nodes and holds the mediator. The hub forwards no broadcast or multicast, so a program's
    datagrams reach other nodes only through the overlay, and the link's own broadcast address
    leads nowhere, as on a LAN where no other player sits."""
    holder = subprocess.Popen(["unshare", "-n", "sleep", "100000"], stdin=subprocess.DEVNULL)
    lab.procs.append(holder)
    mine = os.readlink("/proc/self/ns/net")
    wait_until(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != mine, 5, what="node namespace")
    pid = holder.pid
    hub_if, hub_ip, node_ip = f"h{index}", f"10.199.{index}.1", f"10.199.{index}.2"
    sh(["ip", "link", "add", hub_if, "type", "veth", "peer", "name", "eth0", "netns", pid])
    sh(["ip", "addr", "add", f"{hub_ip}/24", "dev", hub_if])
    sh(["ip", "link", "set", hub_if, "up"])
    sh(["ip", "link", "set", "lo", "up"], pid)
    sh(["ip", "addr", "add", f"{node_ip}/24", "dev", "eth0"], pid)
    sh(["ip", "link", "set", "eth0", "up"], pid)
    sh(["ip", "route", "add", "default", "via", hub_ip], pid)
    return pid


def start_nodes(lab, names, unpriv=False):
    """A mediator in the hub namespace and one daemon per name, each in its own namespace;
    each Daemon gets .ns_pid, .nswrap (the nsenter prefix that puts a program on that node) and
    .wrap (the same plus, with unpriv, the switch to nobody: daemon and programs alike)."""
    if unpriv:
        if not shutil.which("setpriv") or os.geteuid() != 0:
            print("SKIP: running as an unprivileged user needs root and setpriv(1) (util-linux)")
            sys.exit(SKIP)
        uid, gid = unpriv_ids()
        os.chmod(lab.dir, 0o755)
    _hub_setup()
    lab.start_server(host=HUB)
    ds = []
    for i, n in enumerate(names, 1):
        pid = node_ns(lab, i)
        nswrap = ["nsenter", f"--net=/proc/{pid}/ns/net"]
        wrap = nswrap + (UNPRIV if unpriv else [])
        if unpriv:
            state = os.path.join(lab.dir, n)
            os.makedirs(state, exist_ok=True)
            os.chown(state, uid, gid)
        d = lab.start_daemon(n, wrap=wrap, cli_wrap=UNPRIV if unpriv else ())
        d.ns_pid, d.wrap, d.nswrap = pid, wrap, nswrap
        ds.append(d)
    return ds


def lan(lab, names, net="lan", unpriv=False):
    """start_nodes(), then all in network `net`, each seeing every other online."""
    ds = start_nodes(lab, names, unpriv=unpriv)
    ds[0].cli("create", net)
    for d in ds[1:]:
        d.cli("join", net)
    for d in ds:
        for o in ds:
            if o is not d:
                wait_until(lambda d=d, o=o: (d.member(net, o.name) or {}).get("online"), 10,
                           what=f"{d.name} sees {o.name} online")
    return ds


def listening(daemon, port, proto="tcp"):
    """Is some socket on daemon's node bound to port (TCP: in LISTEN)? Read from /proc so that
    no test connection is spent on a one-shot server."""
    for f in (f"/proc/{daemon.ns_pid}/net/{proto}", f"/proc/{daemon.ns_pid}/net/{proto}6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    lport = int(parts[1].rsplit(":", 1)[1], 16)
                    if lport == port and (proto == "udp" or parts[3] == "0A"):
                        return True
        except OSError:
            continue
    return False


def wait_listening(daemon, port, proto="tcp", timeout=15, what="server"):
    wait_until(lambda: listening(daemon, port, proto), timeout,
               what=f"{what} bound to port {port}/{proto} on {daemon.name}")


def on_node(daemon, argv, timeout=30, **kw):
    """Runs argv (not under the shim) on daemon's node; returns CompletedProcess."""
    return subprocess.run(getattr(daemon, "wrap", []) + [str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)


def shoal_run_argv(daemon, argv):
    wrap = list(getattr(daemon, "wrap", []))
    if os.environ.get("SHOAL_LANPROXY_DIRECT") == "1":
        return wrap + [str(a) for a in argv]
    return wrap + [binary("shoal"), "--control", daemon.ctl, "run", "--"] + [str(a) for a in argv]


def direct_env(daemon, env):
    """SHOAL_LANPROXY_DIRECT=1 (a debugging switch): bypass `shoal run` and set what it would
    set (the preload library from the build tree, the daemon's shim socket beside its control
    socket), to tell shim and daemon problems from CLI ones."""
    e = dict(env)
    lib = os.path.join(BUILD, "lanproxy", "libshoal-preload.so")
    e["LD_PRELOAD"] = (e["LD_PRELOAD"] + ":" + lib) if e.get("LD_PRELOAD") else lib
    e["SHOAL_SHIM_SOCK"] = os.path.join(os.path.dirname(daemon.ctl), "shim.sock")
    return e


class ShimProc:
    """A program under `shoal run` on one daemon. stdout lines are collected (JSON parsed when
    they are JSON); stderr goes to a log file in the lab directory."""

    _seq = 0

    def __init__(self, lab, daemon, argv, stdin=False, env=None, tag=None, raw=False):
        ShimProc._seq += 1
        self.tag = tag or f"{daemon.name}-{os.path.basename(str(argv[0]))}-{ShimProc._seq}"
        self.log = os.path.join(lab.dir, f"run-{self.tag}.log")
        self.argv = shoal_run_argv(daemon, argv) if daemon is not None else [str(a) for a in argv]
        e = dict(os.environ)
        if env:
            e.update(env)
        if daemon is not None and os.environ.get("SHOAL_LANPROXY_DIRECT") == "1":
            e = direct_env(daemon, e)
        self.errfh = open(self.log, "wb")
        self.errfh.write(("$ " + json.dumps(self.argv) + "\n").encode())
        self.errfh.flush()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.errfh,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=e)
        lab.procs.append(self.proc)
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.raw = raw
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            text = line.decode(errors="replace").rstrip("\n")
            item = text
            if not self.raw:
                try:
                    item = json.loads(text)
                except ValueError:
                    item = text
            with self.cond:
                self.lines.append(item)
                self.cond.notify_all()
            self.errfh.write(b"out: " + line)
            self.errfh.flush()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pred, timeout, what="output"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for x in self.lines:
                    if pred(x):
                        return x
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    break
                self.cond.wait(left)
        raise AssertionError(f"{self.tag}: no {what} within {timeout}s (exit={self.proc.poll()}); "
                             f"stderr: {self.stderr_tail()!r}; stdout: {self.lines[-5:]!r}")

    def ready(self, timeout=15):
        return self.wait_for(lambda x: isinstance(x, dict) and x.get("event") == "ready", timeout, "ready event")

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.t.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(5)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def checks(self):
        return [x for x in self.lines if isinstance(x, dict) and "check" in x]

    def events(self, name):
        return [x for x in self.lines if isinstance(x, dict) and x.get("event") == name]

    def text(self):
        return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in self.lines)

    def stderr_tail(self, n=600):
        self.errfh.flush()
        try:
            with open(self.log, "rb") as fh:
                data = fh.read().decode(errors="replace")
        except OSError:
            return ""
        data = "\n".join(line for line in data.splitlines() if not line.startswith("out: ") and not line.startswith("$ "))
        return data[-n:]


def run(lab, daemon, argv, timeout=60, **kw):
    """Runs a program under `shoal run` to completion; returns the ShimProc (rc in .rc)."""
    p = ShimProc(lab, daemon, argv, **kw)
    p.rc = p.wait(timeout)
    return p


class Report:
    """Named checks; every check runs, the file fails if any failed."""

    def __init__(self, title):
        self.title = title
        self.results = []   # (name, ok, detail)
        self.skipped = []
        self.lock = threading.Lock()
        print(f"== {title}", flush=True)

    def add(self, name, ok, detail=""):
        with self.lock:
            self.results.append((name, bool(ok), detail))
            print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)

    def skip(self, name, why):
        with self.lock:
            self.skipped.append((name, why))
            print(f"SKIP {name}: {why}", flush=True)

    def case(self, name):
        rep = self

        class _Case:
            def __enter__(self):
                return self

            def __exit__(self, et, ev, tb):
                if et is None:
                    rep.add(name, True)
                elif et is SkipCase:
                    rep.skip(name, str(ev))
                else:
                    detail = f"{et.__name__}: {ev}"
                    if et is not AssertionError:
                        detail += " | " + "".join(traceback.format_exception(et, ev, tb))[-800:]
                    rep.add(name, False, detail)
                return True   # keep going with the next check
        return _Case()

    def absorb(self, p, prefix, expect_rc=0):
        """Every JSON check line of shimtest run p becomes a check named prefix/NAME; then the
        exit status itself."""
        seen = set()
        for c in p.checks():
            name = f"{prefix}/{c['check']}"
            n, k = name, 2
            while n in seen:
                n, k = f"{name}#{k}", k + 1
            seen.add(n)
            self.add(n, c.get("ok"), c.get("detail", ""))
        rc = getattr(p, "rc", p.proc.poll())
        if not p.checks() or rc != expect_rc:
            self.add(f"{prefix}/exit", rc == expect_rc and p.checks(),
                     f"exit {rc}, {len(p.checks())} checks; stderr: {p.stderr_tail(400)!r}")

    def finish(self, lab=None):
        """Prints the summary (and the logs when something failed); returns the exit status.
        Call it inside the Lab block, exit with its value after the block."""
        failed = [r for r in self.results if not r[1]]
        passed = len(self.results) - len(failed)
        print(f"== {self.title}: {passed} checks passed, {len(failed)} failed, {len(self.skipped)} skipped")
        for r in failed:
            print(f"   failed: {r[0]}: {r[2][:300]}")
        if failed and lab is not None:
            lab.dump_logs()
            for f in sorted(os.listdir(lab.dir)):
                if f.startswith("run-"):
                    with open(os.path.join(lab.dir, f), errors="replace") as fh:
                        lines = fh.readlines()
                    print(f"----- {f} (last 30 lines)")
                    sys.stdout.writelines(lines[-30:])
        if not self.results and self.skipped:
            print("0 passed, 0 failed, %d skipped" % len(self.skipped))
            return SKIP
        print(f"{passed} passed, {len(failed)} failed" + (f", {len(self.skipped)} skipped" if self.skipped else ""))
        return 1 if failed else 0


class SkipCase(Exception):
    """Raise inside Report.case() when a needed program is genuinely unavailable."""


def need(prog):
    p = shutil.which(prog) or (os.path.exists(prog) and prog)
    if not p:
        raise SkipCase(f"{prog} not installed (scripts/deps.sh installs it)")
    return p


def parallel(fns):
    """Runs callables concurrently, returns their results (exceptions re-raised by the caller)."""
    out = [None] * len(fns)

    def one(i, f):
        try:
            out[i] = f()
        except BaseException as e:  # handed back to the caller
            out[i] = e
    ts = [threading.Thread(target=one, args=(i, f), daemon=True) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def bcast_of(addr, prefix=8):
    a = struct.unpack(">I", socket.inet_aton(addr))[0]
    mask = (0xffffffff << (32 - prefix)) & 0xffffffff
    return socket.inet_ntoa(struct.pack(">I", a | (~mask & 0xffffffff)))
