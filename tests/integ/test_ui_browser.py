"""
The window in Debian's chromium, driven by playwright-core (tests/ui/browser.mjs): against a
real mediator and two daemons, create (keyboard only) and join in the pages, both see the
other turn "direct" with both sides' NAT classes in the details, a chat message from one page
appears in the other; then with the keyboard alone (Tab, Enter, Space, arrows) the owner locks and
unlocks, switches the approval mode, goes offline and online (the focus staying on the control
across the re-render), sets its nick and the password, opens a private chat and sends,
evicts, rejects bob's next request and approves the one after (with the password), bob leaves,
alice deletes; bob's nick reaches alice's page by the event stream (no polling while it is up);
at 1280x800 a selected peer's details fit above the fold, at 480x800 nothing scrolls sideways
and Tab reaches every control; alice's daemon stops and starts again (same port), her page falls
back to polling and takes a new stream; a wrong token gets 403 from the API, the stream's ticket
and the stream; no console errors. Screenshots go to $SHOAL_BUILDDIR/tests/ui-artifacts/.

playwright-core comes from npm, pinned by tests/ui/package-lock.json, installed into the build
tree on first use (retried: the registry may be away for a while); chromium from Debian
(scripts/deps.sh). Nothing is downloaded at test time beyond that package.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Lab, free_port, run  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ui")
SKIP = 77


def node_modules():
    """tests/ui's package installed into the build tree; its directory."""
    dest = os.path.join(BUILD, "tests", "ui-node")
    if os.path.exists(os.path.join(dest, "node_modules", "playwright-core", "package.json")):
        return dest
    os.makedirs(dest, exist_ok=True)
    for f in ("package.json", "package-lock.json", "browser.mjs"):
        shutil.copy(os.path.join(SRC, f), dest)
    for attempt in range(5):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=dest, capture_output=True,
                           text=True, timeout=300)
        if r.returncode == 0:
            return dest
        print(f"npm ci failed (attempt {attempt + 1}): {r.stderr[-300:]}", flush=True)
        time.sleep(5 * (attempt + 1) ** 2)
    raise RuntimeError("could not install playwright-core from npm")


def main():
    chromium = shutil.which("chromium")
    if not chromium or not shutil.which("node") or not shutil.which("npm"):
        print("SKIP: needs Debian's chromium, node and npm (scripts/deps.sh installs them)")
        sys.exit(SKIP)
    dest = node_modules()
    shutil.copy(os.path.join(SRC, "browser.mjs"), dest)     # the source's, always
    shots = os.path.join(BUILD, "tests", "ui-artifacts")
    os.makedirs(shots, exist_ok=True)
    with Lab("uibrowser") as lab:
        lab.start_server()
        ui = ("--ui", f"127.0.0.1:{free_port()}")      # the same after a restart
        alice = lab.start_daemon("alice", extra=ui)
        bob = lab.start_daemon("bob")
        a_url = alice.cli("ui", "--url", json_out=False).strip()
        b_url = bob.cli("ui", "--url", json_out=False).strip()
        bad = re.sub(r"#.*", "#" + "0" * 64, a_url)
        env = dict(os.environ, ALICE_URL=a_url, BOB_URL=b_url, BAD_URL=bad, SHOTS=shots,
                   CHROMIUM=chromium)
        p = subprocess.Popen(["node", "browser.mjs"], cwd=dest, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        timer = threading.Timer(240, p.kill)
        timer.start()
        out = []
        for line in p.stdout:
            print(line, end="", flush=True)
            out.append(line)
            if line.startswith("ask: "):
                what = line[5:].strip()
                if what == "stop alice":
                    alice.proc.terminate()
                    alice.proc.wait(10)
                elif what == "start alice":
                    alice = lab.start_daemon("alice", extra=ui)
                p.stdin.write("done\n" if what in ("stop alice", "start alice") else "unknown\n")
                p.stdin.flush()
        err = p.stderr.read()
        p.wait()
        timer.cancel()
        assert p.returncode == 0, f"browser test failed (exit {p.returncode}): {''.join(out)[-2000:]}\n{err[-2000:]}"
        print(f"screenshots: {shots}")


if __name__ == "__main__":
    run(main)
