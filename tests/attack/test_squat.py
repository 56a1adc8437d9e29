"""
Issue 9, defect 7: another local user squats the /tmp fallback of the control socket.

Without XDG_RUNTIME_DIR, shoald and the CLI use /tmp/shoal-UID/shoald.sock. Another user can
create that directory first and put a socket of their own in it. Before the fix
`shoal join NET --password P` then handed P to that user.

Two unprivileged users (uids chosen unused; the test runs as root and switches with setresuid):
the attacker pre-creates /tmp/shoal-VICTIM/ (mode 0777) with a listening socket that records
what it receives. Holds:
  * the victim's `shoal join lan --password P` refuses with a clear message and exits non-zero;
    the attacker receives no byte;
  * the victim's shoald refuses to start on that directory and says why;
  * a control socket served by another user in a directory that is safe (root's, mode 0755)
    is refused after connecting (SO_PEERCRED), again before any byte is sent;
  * `shoal run`'s preload shim pointed at the attacker's shim socket sends it nothing.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import BUILD, binary, run, wait_until  # noqa: E402

VICTIM, ATTACKER = 64101, 64102
PASSWORD = "hunter2-secret"


def as_user(uid):
    def pre():
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    return pre


def attacker_server(path, kind, log):
    """Forks a process running as ATTACKER that listens on path and appends what it gets to
    log (the number of bytes of each connection). Returns its pid once it listens."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            as_user(ATTACKER)()
            s = socket.socket(socket.AF_UNIX, kind)
            if os.path.exists(path):
                os.unlink(path)
            s.bind(path)
            os.chmod(path, 0o777)
            s.listen(8)
            os.write(w, b"1")
            while True:
                c, _ = s.accept()
                c.settimeout(3)
                got = b""
                try:
                    while True:
                        d = c.recv(4096)
                        if not d:
                            break
                        got += d
                except OSError:
                    pass
                with open(log, "ab") as fh:
                    fh.write(b"conn %d %r\n" % (len(got), got[:200]))
                c.close()
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1", "attacker server did not start"
    os.close(r)
    return pid


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root to act as two users")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="shoal-squat-")
    os.chmod(work, 0o755)
    bins = os.path.join(work, "bin")
    os.mkdir(bins)
    for name in ("shoal", "shoald"):
        shutil.copy(binary(name), bins)
    preload = os.path.join(bins, "libshoal-preload.so")
    shutil.copy(os.path.join(BUILD, "lanproxy", "libshoal-preload.so"), preload)
    os.chmod(bins, 0o755)
    home = os.path.join(work, "victim")
    os.mkdir(home, 0o700)
    os.chown(home, VICTIM, VICTIM)
    log = os.path.join(work, "attacker.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    squat = f"/tmp/shoal-{VICTIM}"
    pids = []
    env = {"PATH": "/usr/bin:/bin", "HOME": home}
    try:
        shutil.rmtree(squat, ignore_errors=True)
        # The attacker's directory and socket, made before the victim ever runs shoal.
        pid = os.fork()
        if pid == 0:
            as_user(ATTACKER)()
            os.mkdir(squat, 0o777)
            os.chmod(squat, 0o777)
            os._exit(0)
        os.waitpid(pid, 0)
        pids.append(attacker_server(os.path.join(squat, "shoald.sock"), socket.SOCK_STREAM, log))

        r = subprocess.run([os.path.join(bins, "shoal"), "join", "lan", "--password", PASSWORD],
                           env=env, capture_output=True, text=True, timeout=20,
                           preexec_fn=as_user(VICTIM))
        print(f"victim's join: exit {r.returncode}: {r.stderr.strip()}")
        assert r.returncode != 0, "join went ahead through a squatted directory"
        assert "refusing" in r.stderr and squat in r.stderr, r.stderr

        state = os.path.join(home, "state")
        r = subprocess.run([os.path.join(bins, "shoald"), "--server", "shoal://127.0.0.1:9/" + "ab" * 32,
                            "--state", state], env=env, capture_output=True, text=True,
                           timeout=20, preexec_fn=as_user(VICTIM))
        print(f"victim's shoald: exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
        assert r.returncode != 0 and "refusing" in r.stderr, r.stderr

        # A directory that is fine (root's, 0755) holding a socket served by the attacker.
        safe = os.path.join(work, "rootdir")
        os.mkdir(safe, 0o755)
        pids.append(attacker_server(os.path.join(squat, "ctl.sock"), socket.SOCK_STREAM, log))
        os.rename(os.path.join(squat, "ctl.sock"), os.path.join(safe, "ctl.sock"))
        r = subprocess.run([os.path.join(bins, "shoal"), "--control", os.path.join(safe, "ctl.sock"),
                            "join", "lan", "--password", PASSWORD], env=env, capture_output=True,
                           text=True, timeout=20, preexec_fn=as_user(VICTIM))
        print(f"victim's join to a socket served by uid {ATTACKER}: exit {r.returncode}: "
              f"{r.stderr.strip()}")
        assert r.returncode != 0 and "another user" in r.stderr, r.stderr

        # The preload shim: a program run with the attacker's socket as its shim socket.
        pids.append(attacker_server(os.path.join(squat, "shim.sock"), socket.SOCK_SEQPACKET, log))
        penv = dict(env, LD_PRELOAD=preload, SHOAL_SHIM_SOCK=os.path.join(squat, "shim.sock"))
        r = subprocess.run(["/usr/bin/python3", "-c",
                            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                            " s.bind(('0.0.0.0', 0)); s.sendto(b'x', ('5.0.0.9', 9))"],
                           env=penv, capture_output=True, text=True, timeout=20,
                           preexec_fn=as_user(VICTIM))
        print(f"program under the shim: exit {r.returncode}")

        # The attacker's servers log each connection when it ends: one from the CLI that
        # checked who serves ctl.sock, one from the shim; none in the squatted directory.
        def conns():
            with open(log, "rb") as fh:
                return fh.read()
        wait_until(lambda: conns().count(b"conn ") >= 2, 10, what="the attacker's log")
        got = conns()
        print(f"attacker saw: {got!r}")
        assert PASSWORD.encode() not in got, "the password reached the attacker"
        for line in got.splitlines():
            assert line.startswith(b"conn 0 "), f"the attacker received bytes: {line!r}"
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
            except OSError:
                pass
        shutil.rmtree(squat, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run(main)
