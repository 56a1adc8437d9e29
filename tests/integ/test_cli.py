"""
The CLI and daemon front door: usage errors and unreachable daemons give one clear line on
stderr and distinct non-zero exit codes; bad daemon arguments are refused before starting;
status --json carries what scripts need; `forward` to anything but another member is refused.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, run, binary  # noqa: E402


def one_line_error(r, code=None):
    assert r.returncode != 0, r
    if code is not None:
        assert r.returncode == code, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert err and "\n" not in err, f"not one line: {r.stderr!r}"
    assert err.startswith("shoal"), err
    return err


def main():
    shoal = binary("shoal")
    shoald = binary("shoald")
    with Lab("cli") as lab:
        missing = os.path.join(lab.dir, "nothing.sock")
        r = subprocess.run([shoal, "--control", missing, "status"], capture_output=True, text=True)
        err = one_line_error(r, 3)
        assert "shoald" in err, err
        r = subprocess.run([shoal, "--control", missing, "frobnicate"], capture_output=True, text=True)
        one_line_error(r, 2)
        r = subprocess.run([shoal, "--control", missing, "expose", "notaport"], capture_output=True, text=True)
        one_line_error(r, 2)
        r = subprocess.run([shoal, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "join" in r.stdout, r

        for argv in ([shoald, "--server", "garbage", "--state", lab.dir],
                     [shoald, "--bogus-flag"],
                     [shoald, "--server"]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            assert r.returncode != 0, argv
            assert r.stderr.strip(), argv

        lab.start_server()
        a = lab.start_daemon("alice")
        st = a.status()
        for k in ("address", "nick", "node_id", "server"):
            assert k in st, (k, st)
        assert st["nick"] == "alice" and st["server"] == "connected" and len(st["node_id"]) == 64, st
        r = a.cli("join", "nope", check=False)
        one_line_error(r, 1)
        r = a.cli("evict", "nope", "nobody", check=False)
        one_line_error(r, 1)
        human = a.cli("status", json_out=False)
        assert st["address"] in human, human
        a.cli("create", "lan")
        human = a.cli("list", json_out=False)
        assert "lan" in human and "alice" in human, human

        # forward reaches members only: loopback, the Internet, ourselves and the network's
        # own addresses are refused at once, with the reason.
        for dst, word in (("127.0.0.1:80", "outside"), ("8.8.8.8:53", "outside"),
                          (f"{st['address']}:80", "this node"), ("5.0.0.0:80", "network"),
                          ("5.255.255.255:80", "broadcast")):
            r = a.cli("forward", 40999, dst, check=False)
            err = one_line_error(r, 1)
            assert word in err, (dst, err)
        assert not a.status()["forwards"], a.status()["forwards"]


if __name__ == "__main__":
    run(main)
