"""
`shoal run` edge cases (issue 3):
- LD_PRELOAD gets the shim appended to an existing LD_PRELOAD and stays set for children;
- shoald not running: the program runs normally and the shim says so once on stderr
  (SHOAL_SHIM_QUIET=1 silences it);
- programs the shim cannot work in are refused with a clear message pointing to SOCKS5 and
  `shoal forward`: a statically linked binary (built here with `cc -static`, skipped when the
  static libc is missing) and a setuid binary; a missing program is a clear error.
Runs in a private network namespace (lanproxy_util.isolate).
"""
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab  # noqa: E402
from lanproxy_util import Report, SkipCase, isolate, run, start_nodes  # noqa: E402

HELLO_C = r"""
#include <stdio.h>
int main(void) { puts("hello-ran"); return 0; }
"""

CLIENT_PY = r"""
import socket, sys, threading
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
port = ls.getsockname()[1]
def serve():
    while True:
        c, _ = ls.accept()
        c.sendall(c.recv(100))
        c.close()
threading.Thread(target=serve, daemon=True).start()
for i in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"ping%d" % i)
    assert s.recv(100) == b"ping%d" % i
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"x", ("127.0.0.1", 9))
u.close()
# things the shim needs shoald for, twice each: the notice must still come only once
for i in range(2):
    socket.if_nameindex()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        t = socket.socket(socket.AF_INET, kind)
        t.settimeout(3)
        try:
            if kind == socket.SOCK_DGRAM:
                t.sendto(b"x", ("5.1.2.3", 9))
            else:
                t.connect(("5.1.2.3", 9))
        except OSError:
            pass   # no overlay: whatever the kernel says, quickly
        t.close()
print("normal-ok")
"""


def build(lab, name, flags):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SkipCase("no C compiler")
    src = os.path.join(lab.dir, "hello.c")
    with open(src, "w") as fh:
        fh.write(HELLO_C)
    out = os.path.join(lab.dir, name)
    r = subprocess.run([cc] + flags + ["-o", out, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise SkipCase(f"cc {' '.join(flags)} failed: {r.stderr.strip()[:200]}")
    return out


def shim_lines(text):
    return [line for line in text.splitlines() if "shoal" in line.lower() or "shim" in line.lower()]


def main():
    isolate()
    rep = Report("lanproxy shoal run edge cases")
    with Lab("lpmisc") as lab:
        try:
            a, gone = start_nodes(lab, ["alice", "gone"])
        except Exception as e:
            rep.add("setup/daemons", False, str(e))
            return rep.finish(lab)

        with rep.case("env/ld-preload-appended-and-inherited"):
            libm = "/lib/x86_64-linux-gnu/libm.so.6"
            pre = libm if os.path.exists(libm) else ""
            p = run(lab, a, ["sh", "-c", "sh -c 'echo PRELOAD=$LD_PRELOAD'"], env={"LD_PRELOAD": pre} if pre else None,
                    raw=True, tag="alice-env")
            assert p.rc == 0, f"exit {p.rc}: {p.stderr_tail(300)!r}"
            line = [x for x in p.lines if x.startswith("PRELOAD=")]
            assert line and "libshoal-preload.so" in line[0], p.lines
            if pre:
                assert pre in line[0], f"existing LD_PRELOAD lost: {line[0]!r}"

        # shoald stopped: programs still run, with one notice
        gone.proc.terminate()
        gone.proc.wait(10)
        with rep.case("no-daemon/program-runs-normally"):
            p = run(lab, gone, [sys.executable, "-c", CLIENT_PY], raw=True, timeout=30, tag="gone-client")
            assert p.rc == 0 and "normal-ok" in p.lines, f"exit {p.rc} out {p.lines} err {p.stderr_tail(400)!r}"
        normal = p
        with rep.case("no-daemon/notice-once-on-stderr"):
            lines = shim_lines(normal.stderr_tail(4000))
            assert lines, "no notice on stderr that shoald is not running"
            assert len(lines) == len(set(lines)) and len(lines) <= 2, f"notice repeated: {lines}"
        with rep.case("no-daemon/quiet"):
            q = run(lab, gone, [sys.executable, "-c", CLIENT_PY], raw=True, timeout=30,
                    env={"SHOAL_SHIM_QUIET": "1"}, tag="gone-client-quiet")
            assert q.rc == 0 and "normal-ok" in q.lines, f"exit {q.rc} err {q.stderr_tail(300)!r}"
            assert len(shim_lines(q.stderr_tail(4000))) < len(shim_lines(normal.stderr_tail(4000))), \
                f"SHOAL_SHIM_QUIET=1 still prints {shim_lines(q.stderr_tail(4000))}"

        def refused(name, prog, words):
            with rep.case(name):
                p = run(lab, a, [prog], raw=True, timeout=30, tag=f"alice-{os.path.basename(prog)}")
                err = p.stderr_tail(2000)
                assert "hello-ran" not in p.lines, f"shoal run started it anyway: {err!r}"
                assert p.rc not in (0, None), f"exit {p.rc}"
                low = err.lower()
                for w in words:
                    assert any(x in low for x in w), f"message lacks {w}: {err!r}"

        try:
            static = build(lab, "hello-static", ["-static"])
            refused("refuse/static-binary", static, [("static",), ("socks",), ("forward",)])
        except SkipCase as e:
            rep.skip("refuse/static-binary", str(e))
        try:
            dyn = build(lab, "hello-dyn", [])
            with rep.case("refuse/control-dynamic-binary-runs"):
                p = run(lab, a, [dyn], raw=True, timeout=30, tag="alice-hello-dyn")
                assert p.rc == 0 and "hello-ran" in p.lines, f"exit {p.rc}: {p.stderr_tail(300)!r}"
            suid = os.path.join(lab.dir, "hello-suid")
            shutil.copy(dyn, suid)
            os.chmod(suid, 0o755 | stat.S_ISUID)
            refused("refuse/setuid-binary", suid, [("setuid", "set-user-id", "set-uid"), ("socks",), ("forward",)])
        except SkipCase as e:
            rep.skip("refuse/setuid-binary", str(e))
        with rep.case("refuse/missing-program"):
            p = run(lab, a, [os.path.join(lab.dir, "no-such-program")], raw=True, timeout=30, tag="alice-missing")
            assert p.rc not in (0, None), f"exit {p.rc}"
            assert "no-such-program" in p.stderr_tail(1000), p.stderr_tail(300)
        return rep.finish(lab)


if __name__ == "__main__":
    sys.exit(main())
