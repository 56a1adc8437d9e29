"""A throwaway PostgreSQL server for tests: initdb/pg_ctl from Debian's `postgresql` package in a
temporary directory owned by an unprivileged user (CI runs as root, and postgres refuses root),
listening only on a Unix socket in that directory, so nothing leaks onto the network.

    with PgServer() as pg:          # raises PgUnavailable when the package is absent
        url = pg.url                # postgresql:///shoal?host=DIR&port=PORT&user=USER

Used by test_store_pg.py and test_mediator_cluster.py (issue 13)."""

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile


class PgUnavailable(Exception):
    pass


def pg_bindir():
    """The newest /usr/lib/postgresql/*/bin holding initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    return None


def skip_unless_installed():
    """Ends the test as skipped (automake's 77) when PostgreSQL is not installed."""
    if pg_bindir() is None:
        print("SKIP: PostgreSQL not installed (Debian package `postgresql`; scripts/deps.sh installs it)")
        sys.exit(77)


class PgServer:
    def __init__(self, user="nobody", port=5433, dbname="shoal"):
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise PgUnavailable("PostgreSQL not installed (Debian package `postgresql`)")
        self.user, self.port, self.dbname = user, port, dbname
        self.dir = None

    def _run(self, *argv):
        cmd = list(argv)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)   # Debian's nobody is in group nogroup: ids, not names
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--clear-groups", "--"] + cmd
        env = dict(os.environ, HOME=self.dir, LC_ALL="C")
        r = subprocess.run(cmd, env=env, cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("pgserver: %s failed (%d): %s" % (os.path.basename(argv[0]),
                                                                r.returncode, r.stdout.strip()))
        return r

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="shoal-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        data = os.path.join(self.dir, "data")
        b = lambda name: os.path.join(self.bindir, name)
        self._run(b("initdb"), "-D", data, "-A", "trust", "-U", self.user, "--no-sync")
        # listen_addresses='': Unix socket only; fsync off: a test database need not survive.
        opts = "-c listen_addresses='' -c unix_socket_directories=%s -p %d -c fsync=off" % (
            self.dir, self.port)
        # e.g. SHOAL_PG_OPTS="-c shared_preload_libraries=pg_stat_statements" (profiling by hand)
        opts += " " + os.environ.get("SHOAL_PG_OPTS", "")
        # pg_ctl -w returns once the server accepts connections: an event, not a sleep.
        self._run(b("pg_ctl"), "-D", data, "-w", "-l", os.path.join(self.dir, "log"),
                  "-o", opts, "start")
        self._run(b("createdb"), "-h", self.dir, "-p", str(self.port), "-U", self.user,
                  self.dbname)
        self.url = "postgresql:///%s?host=%s&port=%d&user=%s" % (self.dbname, self.dir,
                                                                 self.port, self.user)
        return self

    def restart(self):
        """Fast restart: every client connection is cut (pg_ctl reuses the start options)."""
        # -l: without it the new server would keep our stdout pipe open, and run() would wait forever
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", "fast",
                  "-w", "-l", os.path.join(self.dir, "log"), "restart")

    def psql(self, sql):
        return self._run(os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-d", self.url,
                         "-c", sql).stdout

    def session(self):
        """An interactive psql (stdin/stdout pipes, one line per answer): a transaction the
        test holds open, e.g. a lock, while the code under test runs."""
        cmd = [os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-q", "-d", self.url]
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--clear-groups", "--"] + cmd
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=self.dir,
                                env=dict(os.environ, HOME=self.dir, LC_ALL="C"))

    def stop(self):
        if self.dir is None:
            return
        try:
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D",
                      os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
