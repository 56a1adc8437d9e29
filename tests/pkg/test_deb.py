"""
The Debian packages as a new user meets them (issue 14). From the dist tarball of BUILDDIR:
dpkg-buildpackage -us -uc -b, lintian (no error or warning left unexplained), dpkg -i of both
packages on this machine, then the README's first run with installed paths only:

  - a mediator started the way shoal-server.service starts it (its ExecStart, its state
    directory under a user of its own, as DynamicUser would), or the unit itself when systemd
    is PID 1;
  - two new users, alice and bob, each on a "machine" of their own (a network namespace: no
    route anywhere but a veth between the two, so no 5.x packet can leak), each starting
    shoald as the user unit does (or `shoal up CONNECTION-STRING` once shoal has it);
  - alice creates a network, bob joins it, bob serves a page under `shoal run`, alice fetches it
    with `shoal run -- curl`, the preload library coming from the installed pkglibdir.

Root only (installs packages, adds users, makes namespaces): skipped otherwise. Everything it
installed or made is removed at the end (dpkg --purge, userdel), so a developer machine is left
as it was. Usage: test_deb.py BUILDDIR [SRCDIR]. Environment: SHOAL_LWIP_SRC (lwIP tree for the
package build; default SRCDIR/lwip-src when it exists, else configure fetches it).
"""
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from harness import wait_until  # noqa: E402

PACKAGES = ("shoal", "shoal-server")
USERS = {"alice": "shoalpkg-alice", "bob": "shoalpkg-bob", "server": "shoalpkg-server"}
MED_IP, BOB_IP = "192.0.2.1", "192.0.2.2"   # TEST-NET-1 on a veth between the two namespaces
MARK = "shoal-first-run-%d" % os.getpid()


def sh(argv, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(argv, **kw)
    return r


def step(t0, what):
    print(f"[{time.monotonic() - t0:6.1f} s] {what}", flush=True)


def build_debs(builddir, srcdir, work, t0):
    sh(["make", "-C", builddir, "-s", "dist"])
    tarball = max(glob.glob(os.path.join(builddir, "shoal-*.tar.gz")), key=os.path.getmtime)
    sh(["tar", "-xzf", tarball, "-C", work])
    top = os.path.join(work, os.path.basename(tarball)[:-len(".tar.gz")])
    env = dict(os.environ)
    lwip = env.get("SHOAL_LWIP_SRC") or os.path.join(srcdir, "lwip-src")
    if os.path.isfile(os.path.join(lwip, "src/core/tcp_in.c")):
        env["SHOAL_LWIP_SRC"] = os.path.abspath(lwip)
    # make check ran in the build this tarball came from: the package build skips it.
    env["DEB_BUILD_OPTIONS"] = "nocheck parallel=%d" % (os.cpu_count() or 2)
    r = sh(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=top, env=env, check=False)
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-4000:])
        raise AssertionError("dpkg-buildpackage failed")
    debs = {p: glob.glob(os.path.join(work, f"{p}_*.deb"))[0] for p in PACKAGES}
    step(t0, "built " + ", ".join(os.path.basename(d) for d in debs.values()))
    changes = glob.glob(os.path.join(work, "*.changes"))[0]
    if shutil.which("lintian"):
        r = sh(["lintian", "--fail-on", "error,warning", "--pedantic", "--info", changes],
               check=False)
        tags = [ln for ln in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", ln)]
        for ln in tags:
            print("  lintian " + ln)
        assert r.returncode == 0, "lintian: errors or warnings (debian/*.lintian-overrides " \
            "explains the accepted ones)\n" + r.stdout + r.stderr
        step(t0, f"lintian: no error or warning ({len(tags)} other tags shown; the accepted ones "
             "are explained in debian/*.lintian-overrides)")
    else:
        step(t0, "lintian: not installed, skipped")
    return debs


def unit_exec(path, subst, env):
    """The ExecStart of an installed unit as argv, with its Environment= defaults, the given
    environment on top (what EnvironmentFile= would add) and the given specifiers filled in:
    what systemd would run."""
    envs, execs = {}, None
    with open(path) as fh:
        for ln in fh:
            ln = ln.strip()
            if ln.startswith("Environment="):
                for kv in shlex.split(ln[len("Environment="):]):
                    k, _, v = kv.partition("=")
                    envs[k] = v
            elif ln.startswith("ExecStart="):
                execs = ln[len("ExecStart="):]
    assert execs, f"{path}: no ExecStart"
    envs.update(env)
    argv = []
    for word in execs.split():
        for spec, val in subst.items():
            word = word.replace(spec, val)
        m = re.fullmatch(r"\$\{(\w+)\}", word)
        if m:                      # ${VAR}: one word, as is
            argv.append(envs.get(m.group(1), ""))
            continue
        m = re.fullmatch(r"\$(\w+)", word)
        if m:                      # $VAR: split on white space, empty gives nothing
            argv.extend(envs.get(m.group(1), "").split())
            continue
        argv.append(word)
    return argv


class Story:
    def __init__(self, work, t0):
        self.work, self.t0 = work, t0
        self.procs, self.users, self.ns, self.up = [], [], {}, []
        self.homes = tempfile.mkdtemp(prefix="shoal-pkg-homes-")
        os.chmod(self.homes, 0o755)

    # --- the two machines ------------------------------------------------------------------
    def machines(self):
        for name in ("a", "b"):
            holder = subprocess.Popen(["unshare", "-n", "sleep", "600"], stdin=subprocess.DEVNULL)
            self.procs.append(holder)
            mine = os.readlink("/proc/self/ns/net")
            wait_until(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != mine, 5,
                       what="a network namespace")
            self.ns[name] = holder.pid
        a, b = self.ns["a"], self.ns["b"]
        veth_a, veth_b = f"spa{os.getpid() % 10000}", f"spb{os.getpid() % 10000}"
        sh(["ip", "link", "add", veth_a, "netns", str(a), "type", "veth", "peer", "name", veth_b,
            "netns", str(b)])
        for pid, dev, ip in ((a, veth_a, MED_IP), (b, veth_b, BOB_IP)):
            pre = ["nsenter", f"--net=/proc/{pid}/ns/net"]
            sh(pre + ["ip", "link", "set", "lo", "up"])
            sh(pre + ["ip", "addr", "add", f"{ip}/24", "dev", dev])
            sh(pre + ["ip", "link", "set", dev, "up"])
            routes = sh(pre + ["ip", "-4", "route", "show"]).stdout
            assert "default" not in routes, routes
        step(self.t0, f"two machines: network namespaces {a} and {b}, a veth between them, "
             "no other route")

    def add_user(self, key):
        name = USERS[key]
        home = os.path.join(self.homes, key)
        sh(["useradd", "--system", "--no-create-home", "--home-dir", home, "--shell",
            "/usr/sbin/nologin", "--user-group", name])
        self.users.append(name)
        pw = pwd.getpwnam(name)
        os.makedirs(home, mode=0o700)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        run = os.path.join(home, "run")
        os.makedirs(run, mode=0o700)
        os.chown(run, pw.pw_uid, pw.pw_gid)
        return pw

    def as_user(self, machine, pw, argv, env=None):
        e = {"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name,
             "PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR": os.path.join(pw.pw_dir, "run"),
             "LANG": "C.UTF-8"}
        e.update(env or {})
        return (["nsenter", f"--net=/proc/{self.ns[machine]}/ns/net", "setpriv",
                 f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--",
                 "env", "-i"] + [f"{k}={v}" for k, v in e.items()] + argv)

    def spawn(self, argv, log):
        fh = open(os.path.join(self.work, log), "w")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def logtail(self, log, n=30):
        try:
            with open(os.path.join(self.work, log)) as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return ""

    # --- the mediator ----------------------------------------------------------------------
    def mediator(self):
        pw = self.add_user("server")
        unit = "/lib/systemd/system/shoal-server.service"
        if not os.path.exists(unit):
            unit = "/usr/lib/systemd/system/shoal-server.service"
        state_root = os.path.join(self.homes, "var-lib")   # %S; StateDirectory= made 0700
        os.makedirs(os.path.join(state_root, "shoal-server"), mode=0o700)
        os.chown(os.path.join(state_root, "shoal-server"), pw.pw_uid, pw.pw_gid)
        # What an operator puts in /etc/default/shoal-server.
        argv = unit_exec(unit, {"%S": state_root},
                         {"SHOAL_SERVER_OPTS": f"--listen {MED_IP}:7777"})
        assert argv[0] == "/usr/bin/shoal-server", argv
        self.spawn(self.as_user("a", pw, argv), "shoal-server.log")
        url_file = os.path.join(state_root, "shoal-server", "url")
        url = wait_until(lambda: open(url_file).read().strip(), 15,
                         what="the mediator's url file (" + self.logtail("shoal-server.log") + ")")
        assert url.startswith(f"shoal://{MED_IP}:7777/"), url
        step(self.t0, f"mediator: {' '.join(argv)} as {pw.pw_name} -> {url}")
        return url

    # --- a user and their daemon -----------------------------------------------------------
    def shoal(self, machine, pw, *args, check=True, timeout=30):
        r = subprocess.run(self.as_user(machine, pw, ["/usr/bin/shoal"] + list(args)),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{pw.pw_name}: shoal {' '.join(args)}: rc={r.returncode} "
                                 f"{r.stdout} {r.stderr}")
        return r

    def daemon(self, key, machine, url):
        pw = self.add_user(key)
        # The README's first run: `shoal up` starts the daemon (detached, zero-conf) and
        # remembers the mediator; the user unit would start the same binary with no flags.
        unit = unit_exec("/usr/lib/systemd/user/shoald.service", {"%h": pw.pw_dir}, {})
        assert unit == ["/usr/bin/shoald"], unit
        self.shoal(machine, pw, "up", url, timeout=60)
        self.up.append((machine, pw))
        how = f"shoal up {url}"

        def connected():
            r = self.shoal(machine, pw, "--json", "status", check=False)
            return r.returncode == 0 and json.loads(r.stdout).get("server") == "connected"
        wait_until(connected, 30, interval=0.1,
                   what=f"{key}'s daemon connected ({self.logtail(f'shoald-{key}.log')})")
        self.shoal(machine, pw, "set-nick", key)
        step(self.t0, f"{key}: shoald started by {how} (the user unit runs {unit[0]} alone), "
                          "connected")
        return pw

    def cleanup(self):
        for machine, pw in self.up:
            self.shoal(machine, pw, "down", check=False)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for u in self.users:
            sh(["userdel", u], check=False)
        shutil.rmtree(self.homes, ignore_errors=True)


def first_run(work, t0):
    st = Story(work, t0)
    try:
        st.machines()
        url = st.mediator()
        alice = st.daemon("alice", "a", url)
        bob = st.daemon("bob", "b", url)
        st.shoal("a", alice, "create", "games", "--password", "fish")
        st.shoal("b", bob, "join", "games", "--password", "fish")

        def direct():
            nets = json.loads(st.shoal("a", alice, "--json", "list").stdout)["networks"]
            return any(m.get("nick") == "bob" and m.get("path") == "direct"
                       for n in nets if n["name"] == "games" for m in n["members"])
        wait_until(direct, 20, interval=0.1, what="alice seeing bob direct")
        step(t0, "alice created games, bob joined, alice sees bob direct")

        www = os.path.join(bob.pw_dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as fh:
            fh.write(MARK + "\n")
        os.chown(www, bob.pw_uid, bob.pw_gid)
        st.spawn(st.as_user("b", bob, ["/usr/bin/shoal", "run", "--", "python3", "-m",
                                       "http.server", "8000", "--directory", www]), "www.log")
        # The program's own environment shows which preload library shoal run gave it.
        pre = st.shoal("a", alice, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"').stdout.strip()
        assert re.fullmatch(r"/usr/lib/([\w-]+/)?shoal/libshoal-preload\.so", pre), pre

        def fetched():
            r = st.shoal("a", alice, "run", "--", "curl", "-sf", "--max-time", "5",
                         "http://bob:8000/", check=False, timeout=20)
            return r.returncode == 0 and r.stdout.strip() == MARK and r.stdout
        wait_until(fetched, 30, interval=0.2,
                   what="alice fetching bob's page (" + st.logtail("www.log") + ")")
        step(t0, f"alice: shoal run -- curl http://bob:8000/ -> {MARK!r} (preload {pre})")
    finally:
        st.cleanup()


def main():
    if os.geteuid() != 0:
        print("SKIP: test_deb installs packages, adds users and makes network namespaces: "
              "run it as root (CI does)")
        return 0
    for tool in ("dpkg-buildpackage", "dh", "nsenter", "unshare", "setpriv", "curl"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} not installed (scripts/deps.sh installs it)")
            return 0
    builddir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-plain")
    srcdir = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else ".")
    installed = [p for p in PACKAGES
                 if "install ok installed" in sh(["dpkg-query", "-W", "-f=${Status}", p],
                                                 check=False).stdout]
    if installed:
        print(f"SKIP: {', '.join(installed)} already installed here; this test installs and "
              "purges its own build")
        return 0
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="shoal-pkg-")
    try:
        debs = build_debs(builddir, srcdir, work, t0)
        r = sh(["dpkg", "-i"] + list(debs.values()), check=False)
        assert r.returncode == 0, "dpkg -i failed (missing run-time libraries?)\n" + r.stdout + r.stderr
        try:
            for path in ("/usr/bin/shoal", "/usr/bin/shoald", "/usr/bin/shoal-server",
                         "/usr/bin/shoal-relay", "/usr/lib/systemd/user/shoald.service",
                         "/etc/default/shoal-server", "/etc/default/shoal-relay"):
                assert os.path.exists(path), path
            assert glob.glob("/usr/lib/*/shoal/libshoal-preload.so"), "no preload library"
            for page in ("shoal", "shoald", "shoal-server", "shoal-relay", "libshoal-preload"):
                r = sh(["man", "-w", page], check=False)
                assert r.returncode == 0, f"man -w {page}: {r.stderr}"
            if shutil.which("systemd-analyze"):
                units = glob.glob("/lib/systemd/system/shoal-*.service") + \
                    ["/usr/lib/systemd/user/shoald.service"]
                r = sh(["systemd-analyze", "verify", "--man=no"] + units, check=False)
                assert r.returncode == 0 and not r.stderr.strip(), r.stderr
            step(t0, "installed: binaries in /usr/bin, preload library in pkglibdir, units, "
                 "/etc/default files, manual pages (man -w finds each), units verified")
            first_run(work, t0)
        finally:
            sh(["dpkg", "--purge"] + list(PACKAGES), check=False)
        step(t0, "purged")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"test_deb: packages built, installed and the first run done in "
          f"{time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except Exception:
        import traceback
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
    print("1 passed, 0 failed")
    sys.exit(rc)
