"""
Zero-conf first run (issue 14), as a new user would do it, with a fresh HOME and XDG
directories of its own and no flags:
- `shoal status` with no daemon says how to start one (exit 3, one line naming `shoal up`);
- `shoal up CONNSTR` starts shoald (detached, state in $XDG_STATE_HOME/shoal, control socket
  in $XDG_RUNTIME_DIR/shoal) and returns once it is connected; `shoal status` then works
  without flags; the node keeps its key and address;
- ~/.config/shoal/shoald.conf is honoured (nick, SOCKS port), and a flag wins over it;
- `shoal down` stops it and waits until it is gone; `shoal up` alone starts it again with the
  remembered mediator, with the same node id;
- `shoal up --wait 2` with a mediator that never answers gives up after 2 s, saying so, with
  the end of shoald's log;
- a bad line in the file is refused by shoald with FILE:LINE, and `shoal up` shows why;
- state and control socket named in the file: `shoal up` writes the log into that state
  directory and every command finds the daemon's socket without --control;
- `shoal completion bash`, loaded into bash, completes every command `shoal --help` lists and
  each command's options (from the parser's own table).
Nothing reaches a peer here (one node), so no network namespace is needed.
"""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, binary, free_port, run, wait_until  # noqa: E402


def main():
    shoal, shoald = binary("shoal"), binary("shoald")
    with Lab("zeroconf") as lab:
        lab.start_server()
        url = lab.server.url
        home = os.path.join(lab.dir, "home")
        env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=os.path.join(lab.dir, "run"),
                   XDG_STATE_HOME=os.path.join(home, "state"),
                   XDG_CONFIG_HOME=os.path.join(home, "config"))
        env.pop("SHOAL_CONTROL", None)
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
        conf = os.path.join(env["XDG_CONFIG_HOME"], "shoal", "shoald.conf")
        os.makedirs(os.path.dirname(conf))
        socks = free_port()
        with open(conf, "w") as f:
            f.write(f"# written by test_zeroconf\nnick = zero conf\nsocks = 127.0.0.1:{socks}\n"
                    "ui = off\nportmap = no\n")

        def sh(*args, check=True, timeout=40):
            r = subprocess.run([shoal] + list(args), capture_output=True, text=True, env=env,
                               timeout=timeout)
            if check and r.returncode != 0:
                raise AssertionError(f"shoal {' '.join(args)}: {r.returncode} {r.stderr}")
            return r

        # 0. completion, checked by bash itself
        script = sh("completion", "bash").stdout
        verbs = [ln.split()[0] for ln in sh("--help").stdout.split("commands:")[1]
                 .split("options:")[0].strip().splitlines()]

        def complete(*words):
            prog = (script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
                    f"COMP_CWORD={len(words) - 1}\n_shoal\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
            return subprocess.run(["bash", "-c", prog], capture_output=True, text=True,
                                  check=True).stdout.split()
        got = complete("shoal", "")
        assert all(v in got for v in verbs), (verbs, got)
        assert complete("shoal", "jo") == ["join"], complete("shoal", "jo")
        assert complete("shoal", "join", "games", "--pa") == ["--password"]
        assert complete("shoal", "--control", "/x", "pi") == ["ping"]
        assert "--follow" in complete("shoal", "chat", "--")
        assert complete("shoal", "up", "--wa") == ["--wait"], complete("shoal", "up", "--wa")
        assert "--wait" not in complete("shoal", "down", "--")
        print(f"0. bash completes all {len(verbs)} commands and their options")

        try:
            # 1. no daemon yet: the hint
            r = sh("status", check=False)
            assert r.returncode == 3 and "shoal up" in r.stderr, r
            print(f"1. no daemon: {r.stderr.strip()}")

            # 2. up with the connection string
            r = sh("up", url)
            print(f"2. {r.stdout.strip()}")
            st = json.loads(sh("--json", "status").stdout)
            assert st["server"] == "connected" and st["nick"] == "zero conf", st
            assert st["socks"].endswith(f":{socks}"), st
            state = os.path.join(env["XDG_STATE_HOME"], "shoal")
            for f in ("node.key", "server", "shoald.log"):
                assert os.path.exists(os.path.join(state, f)), f
            assert open(os.path.join(state, "server")).read().strip() == url
            node, addr = st["node_id"], st["address"]
            r = sh("up")            # already up: says so, exit 0
            assert "running" in r.stdout, r.stdout

            # 3. down, then up alone: the remembered mediator, the same node
            r = sh("down")
            print(f"3. {r.stdout.strip()}")
            r = sh("status", check=False)
            assert r.returncode == 3, r
            r = sh("up")
            st = json.loads(sh("--json", "status").stdout)
            assert st["node_id"] == node and st["address"] == addr, (st, node, addr)
            print(f"   up again without arguments: {r.stdout.strip()}")
            sh("down")

            # 4. a flag wins over the file (shoald run by hand, as a unit would)
            ctl = os.path.join(lab.dir, "flag.sock")
            p = subprocess.Popen([shoald, "--nick", "flagged", "--control", ctl],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                wait_until(lambda: subprocess.run([shoal, "--control", ctl, "status"],
                                                  capture_output=True, env=env).returncode == 0,
                           15, what="shoald with a flag")
                st = json.loads(subprocess.run([shoal, "--control", ctl, "--json", "status"],
                                               capture_output=True, text=True, env=env).stdout)
                assert st["nick"] == "flagged", st
                print(f"4. --nick wins over the file: {st['nick']!r}")
            finally:
                p.terminate()
                p.wait(timeout=10)

            # 4b. a mediator that never answers: a clear timeout with the log's last lines
            host, rest = url.split("://", 1)[1].split("/", 1)
            dead = f"shoal://127.0.0.1:{free_port(socket.SOCK_DGRAM)}/{rest}"
            r = sh("up", "--wait", "2", dead, check=False)
            assert r.returncode == 1, r
            assert "not connected to its mediator after 2 s" in r.stderr, r.stderr
            assert "keeps trying in the background; `shoal down` stops it" in r.stderr, r.stderr
            assert "shoald.log:" in r.stderr and "shoald" in r.stderr.split("shoald.log:")[1], r.stderr
            print(f"4b. {r.stderr.strip().splitlines()[0]} (then {len(r.stderr.splitlines()) - 3} log lines)")
            sh("down")

            # 5. a bad line: refused with FILE:LINE, and `shoal up` shows it
            with open(conf, "a") as f:
                f.write("sock = 127.0.0.1:1\n")
            r = subprocess.run([shoald], capture_output=True, text=True, env=env, timeout=10)
            assert r.returncode == 2 and f"{conf}:6: unknown key: sock" in r.stderr, r
            r = sh("up", check=False)
            assert r.returncode == 1 and "unknown key" in r.stderr, r
            print(f"5. a bad line: {r.stderr.strip().splitlines()[-1]}")

            # 6. the file moves the state and the control socket: `shoal up` logs there and
            # every command finds the daemon without flags
            state2, ctl2 = os.path.join(lab.dir, "state2"), os.path.join(lab.dir, "ctl2", "s.sock")
            with open(conf, "w") as f:
                f.write(f"state = {state2}\ncontrol = {ctl2}\nsocks = off\nui = off\nportmap = no\n")
            sh("up", url)
            assert os.path.exists(os.path.join(state2, "shoald.log")), os.listdir(state2)
            assert os.path.exists(ctl2), ctl2
            st = json.loads(sh("--json", "status").stdout)
            assert st["server"] == "connected", st
            sh("down")
            print(f"6. state and control from the file: log in {state2}, status without flags")
        finally:
            sh("down", check=False)


if __name__ == "__main__":
    run(main)
