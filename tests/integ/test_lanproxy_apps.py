"""
Real, unmodified programs under `shoal run` across two real daemons (issue 3):
- curl and wget download from `python3 -m http.server` run under `shoal run` on the other node
  (by 5.x address, and curl by nickname, also on port 80), byte-identical;
- nc (OpenBSD) TCP both ways, and UDP both ways (the UDP listener answers through the socket it
  connected to the sender's 5.x address);
- iperf3 TCP and UDP with the server under `shoal run`;
- an ssh session to an unprivileged sshd (own host key, config and authorized_keys in a temp
  dir) under `shoal run` on the other node; the session sees both 5.x addresses.
Runs in a private network namespace (lanproxy_util.isolate).
"""
import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, free_port  # noqa: E402
from lanproxy_util import Report, ShimProc, SkipCase, isolate, lan, need, run, wait_listening  # noqa: E402


def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def main():
    isolate()
    rep = Report("lanproxy real programs")
    with Lab("lpapps") as lab:
        try:
            a, b = lan(lab, ["alice", "bob"])
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        A, B = a.address(), b.address()
        http(rep, lab, a, b, A, B)
        nc_tcp(rep, lab, a, b, A, B)
        nc_udp(rep, lab, a, b, A, B)
        iperf(rep, lab, a, b, B)
        ssh(rep, lab, a, b, A, B)
        return rep.finish(lab)


def http(rep, lab, a, b, A, B):
    root = os.path.join(lab.dir, "www")
    os.makedirs(root)
    blob = os.path.join(root, "blob.bin")
    with open(blob, "wb") as fh:
        fh.write(os.urandom(3 << 20))
    want = sha(blob)
    port = free_port()
    # no --bind: http.server listens on [::] dual-stack, as it does by default
    srv = ShimProc(lab, b, [sys.executable, "-m", "http.server", port, "--directory", root], raw=True,
                   tag="bob-http-server")
    with rep.case("http/server-listening"):
        wait_listening(b, port, what="python3 -m http.server under shoal run")
    for name, argv_fn in (
        ("curl", lambda out, host: [need("curl"), "-sS", "-f", "--max-time", "30", "-o", out, f"http://{host}:{port}/blob.bin"]),
        ("wget", lambda out, host: [need("wget"), "-q", "-O", out, "-T", "30", "-t", "1", f"http://{host}:{port}/blob.bin"]),
    ):
        with rep.case(f"http/{name}-by-5x-address"):
            out = os.path.join(lab.dir, f"{name}.out")
            p = run(lab, a, argv_fn(out, B), timeout=60, tag=f"alice-{name}")
            assert p.rc == 0, f"{name} exit {p.rc}: {p.stderr_tail(400)!r}"
            assert sha(out) == want, f"{name} download differs ({os.path.getsize(out)} bytes)"
    with rep.case("http/curl-by-nickname"):
        out = os.path.join(lab.dir, "curl-nick.out")
        p = run(lab, a, [need("curl"), "-sS", "-f", "--max-time", "30", "-o", out, f"http://bob:{port}/blob.bin"],
                timeout=60, tag="alice-curl-nick")
        assert p.rc == 0, f"curl http://bob:{port}/ exit {p.rc}: {p.stderr_tail(400)!r}"
        assert sha(out) == want, "download by nickname differs"
    with rep.case("http/server-log-shows-alice-5x"):
        # http.server logs the client address of every request on stderr
        log = srv.stderr_tail(4000)
        assert A in log, f"http.server did not see {A}: {log[-400:]!r}"
    srv.stop()
    # port 80 as root: shoald binds alias:80 itself (no low-port alias), as before
    srv80 = ShimProc(lab, b, [sys.executable, "-m", "http.server", 80, "--directory", root], raw=True,
                     tag="bob-http-server-80")
    with rep.case("http/curl-port-80-as-root"):
        wait_listening(b, 80, what="python3 -m http.server 80 under shoal run")
        out = os.path.join(lab.dir, "curl-80.out")
        p = run(lab, a, [need("curl"), "-sS", "-f", "--max-time", "30", "-o", out, "http://bob/blob.bin"],
                timeout=60, tag="alice-curl-80")
        assert p.rc == 0, f"curl http://bob/ exit {p.rc}: {p.stderr_tail(400)!r}"
        assert sha(out) == want, "download from port 80 differs"
    srv80.stop()


def nc_bin():
    return shutil.which("nc.openbsd") or need("nc")


def nc_tcp(rep, lab, a, b, A, B):
    try:
        nc = nc_bin()
    except SkipCase as e:
        rep.skip("nc-tcp", str(e))
        return
    data = os.path.join(lab.dir, "nc.in")
    with open(data, "wb") as fh:
        fh.write(os.urandom(512 * 1024))
    for src, dst, dst_addr in ((a, b, B), (b, a, A)):
        name = f"nc-tcp/{src.name}-to-{dst.name}"
        with rep.case(name):
            port = free_port()
            out = os.path.join(lab.dir, f"nc-{dst.name}.out")
            srv = ShimProc(lab, dst, ["sh", "-c", f"exec {nc} -l {port} > {out}"], raw=True, tag=f"{dst.name}-nc-l")
            wait_listening(dst, port, what="nc -l")
            cli = run(lab, src, ["sh", "-c", f"exec {nc} -N -w 20 {dst_addr} {port} < {data}"], timeout=40,
                      tag=f"{src.name}-nc")
            assert cli.rc == 0, f"nc client exit {cli.rc}: {cli.stderr_tail(300)!r}"
            rc = srv.wait(20)
            assert rc == 0, f"nc -l exit {rc}: {srv.stderr_tail(300)!r}"
            assert sha(out) == sha(data), f"received {os.path.getsize(out)} bytes, differs"


def nc_udp(rep, lab, a, b, A, B):
    try:
        nc = nc_bin()
    except SkipCase as e:
        rep.skip("nc-udp", str(e))
        return
    for src, dst, dst_addr in ((a, b, B), (b, a, A)):
        name = f"nc-udp/{src.name}-to-{dst.name}-and-back"
        with rep.case(name):
            port = free_port(socket.SOCK_DGRAM)
            srv = ShimProc(lab, dst, [nc, "-u", "-l", port], raw=True, stdin=True, tag=f"{dst.name}-nc-ul")
            wait_listening(dst, port, "udp", what="nc -u -l")
            cli = ShimProc(lab, src, [nc, "-u", dst_addr, port], raw=True, stdin=True, tag=f"{src.name}-nc-u")
            fwd = f"hello-from-{src.name}"
            for _ in range(5):   # UDP: a datagram may be lost while the path warms up
                cli.send(fwd.encode() + b"\n")
                try:
                    srv.wait_for(lambda x: x == fwd, 1.5, f"{fwd!r} at {dst.name}")
                    break
                except AssertionError:
                    continue
            srv.wait_for(lambda x: x == fwd, 0.1, f"{fwd!r} at {dst.name}")
            back = f"reply-from-{dst.name}"
            for _ in range(5):
                srv.send(back.encode() + b"\n")
                try:
                    cli.wait_for(lambda x: x == back, 1.5, f"{back!r} at {src.name}")
                    break
                except AssertionError:
                    continue
            cli.wait_for(lambda x: x == back, 0.1, f"{back!r} at {src.name}")
            cli.stop()
            srv.stop()


def iperf(rep, lab, a, b, B):
    try:
        iperf3 = need("iperf3")
    except SkipCase as e:
        rep.skip("iperf3", str(e))
        return
    for mode in ("tcp", "udp"):
        with rep.case(f"iperf3/{mode}"):
            port = free_port()
            srv = ShimProc(lab, b, [iperf3, "-s", "-1", "-p", port], raw=True, tag=f"bob-iperf3-s-{mode}")
            wait_listening(b, port, what="iperf3 -s")
            argv = [iperf3, "-c", B, "-p", port, "-t", "2", "-J", "--connect-timeout", "15000"]
            if mode == "udp":
                argv += ["-u", "-b", "20M"]
            cli = run(lab, a, argv, timeout=60, raw=True, tag=f"alice-iperf3-c-{mode}")
            try:
                res = json.loads(cli.text())
            except ValueError:
                raise AssertionError(f"iperf3 client exit {cli.rc}, no JSON: {cli.text()[-300:]!r} "
                                     f"{cli.stderr_tail(300)!r}")
            assert cli.rc == 0 and "error" not in res, f"iperf3 exit {cli.rc}: {res.get('error')}"
            end = res["end"]
            if mode == "tcp":
                got = end["sum_received"]["bytes"]
                bps = end["sum_received"]["bits_per_second"]
            else:
                s = end["sum"]
                got = s["bytes"] * (1 - s.get("lost_percent", 0) / 100.0)
                bps = s["bits_per_second"]
                assert s.get("packets", 0) > s.get("lost_packets", 0), f"no UDP packet arrived: {s}"
            assert got > 0, f"nothing received: {end}"
            print(f"   iperf3 {mode} through the shim: {bps / 1e6:.1f} Mbit/s", flush=True)
            srv.wait(15)


def ssh(rep, lab, a, b, A, B):
    try:
        sshd = need("/usr/sbin/sshd")
        ssh_bin = need("ssh")
        keygen = need("ssh-keygen")
    except SkipCase as e:
        rep.skip("ssh", str(e))
        return
    d = os.path.join(lab.dir, "ssh")
    os.makedirs(d)
    os.chmod(d, 0o700)
    for key in ("hostkey", "id"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key)], check=True)
    shutil.copy(os.path.join(d, "id.pub"), os.path.join(d, "authorized_keys"))
    port = free_port()
    user = getpass.getuser()
    with open(os.path.join(d, "sshd_config"), "w") as fh:
        fh.write(f"""Port {port}
ListenAddress 0.0.0.0
HostKey {d}/hostkey
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {user}
UseDNS no
LogLevel VERBOSE
""")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)   # privilege separation directory sshd insists on
    srv = ShimProc(lab, b, [sshd, "-D", "-e", "-f", os.path.join(d, "sshd_config")], raw=True, tag="bob-sshd")
    with rep.case("ssh/sshd-listening"):
        wait_listening(b, port, what="sshd under shoal run")
    argv = [ssh_bin, "-F", "/dev/null", "-p", port, "-i", os.path.join(d, "id"), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
            "-o", "LogLevel=ERROR", f"{user}@{B}", "echo shoal-ssh-ok; echo $SSH_CONNECTION"]
    cli = run(lab, a, argv, timeout=60, raw=True, tag="alice-ssh")
    with rep.case("ssh/session"):
        assert cli.rc == 0, f"ssh exit {cli.rc}: {cli.stderr_tail(400)!r} sshd: {srv.stderr_tail(600)!r}"
        assert "shoal-ssh-ok" in cli.lines, cli.lines
    with rep.case("ssh/session-sees-5x-addresses"):
        conn = [line for line in cli.lines if line.count(" ") == 3]
        assert conn, f"no SSH_CONNECTION line: {cli.lines}"
        f = conn[0].split()
        assert f[0] == A and f[2] == B and f[3] == str(port), f"SSH_CONNECTION={conn[0]!r}, want {A} * {B} {port}"
    srv.stop()


if __name__ == "__main__":
    sys.exit(main())
