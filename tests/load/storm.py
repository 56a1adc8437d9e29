"""The reconnect-storm hook shared by loadtest.py and test_loadgen_storm.py: shoal-loadgen
--restart-cmd writes to a FIFO when every simulated node is connected and armed; on that the
driver kills the mediator with SIGKILL and starts it again on the same port and state, and the
load generator measures until every node is back ONLINE (reconnect_all_s).
SHOAL_LOAD_PERF=FILE records the restarted mediators with `perf record -g` until the storm ends;
with SHOAL_LOAD_PERF_ALL=1 the whole machine (load generator, PostgreSQL and kernel too: `perf
report --sort comm` splits it by process)."""
import json
import os
import select
import signal
import subprocess


def cpu_s(pid):
    """User + system CPU seconds of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_with_restart(lab, argv, timeout=600, restart=None, stderr=subprocess.DEVNULL):
    """argv: shoal-loadgen's command line without --restart-cmd. restart: what to do when every
    node is armed (default: kill lab's mediator and start it again; it then returns the new
    mediators' pids). Returns its JSON output, with "storm_server_cpu_s": the restarted
    mediators' CPU until the end of the storm."""
    fifo = os.path.join(lab.dir, "restart.fifo")
    os.mkfifo(fifo)
    p = subprocess.Popen(argv + ["--restart-cmd", f"echo restart > {fifo}"], stdout=subprocess.PIPE,
                         stderr=stderr, text=True)
    # Non-blocking: an open that waited for a writer would hang if the load generator died.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        got = b""
        while b"restart" not in got:
            if p.poll() is not None:
                raise RuntimeError(f"shoal-loadgen exited ({p.returncode}) before the restart")
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                got += os.read(fd, 64)
    finally:
        os.close(fd)
    if restart is None:
        lab.kill_server()
        pids = [lab.start_server().proc.pid]  # same port, same state dir
    else:
        pids = restart()
    perf = None
    if os.environ.get("SHOAL_LOAD_PERF"):
        scope = ["-a", "-F", "499"] if os.environ.get("SHOAL_LOAD_PERF_ALL") == "1" else \
            ["-p", ",".join(str(pid) for pid in pids)]
        perf = subprocess.Popen(["perf", "record", "-g", "-q", "-o", os.environ["SHOAL_LOAD_PERF"],
                                 *scope])
    out, _ = p.communicate(timeout=timeout)
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    if p.returncode != 0:
        raise RuntimeError(f"shoal-loadgen exited with {p.returncode}")
    r = json.loads(out)
    r["storm_server_cpu_s"] = sum(cpu_s(pid) for pid in pids)
    return r


def summary(r):
    """One line on the storm of shoal-loadgen's JSON r: attempts per node and why dials failed."""
    if r.get("reconnect_expected", 0) == 0:
        return "storm: not measured"
    fails = ", ".join(f"{k[len('reconnect_fail_'):].replace('_', ' ')} {v}" for k, v in r.items()
                      if k.startswith("reconnect_fail_"))
    return (f"storm: {r['reconnected']} of {r['reconnect_expected']} back, "
            f"{r['reconnect_attempts'] / r['reconnect_expected']:.2f} dials per node, mediator CPU "
            f"{r['storm_server_cpu_s']:.1f} s; failed dials: {fails}")
