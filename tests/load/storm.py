"""The reconnect-storm hook shared by loadtest.py and test_loadgen_storm.py: shoal-loadgen
--restart-cmd writes to a FIFO when every simulated node is connected and armed; on that the
driver kills the mediator with SIGKILL and starts it again on the same port and state, and the
load generator measures until every node is back ONLINE (reconnect_all_s)."""
import json
import os
import select
import subprocess


def run_with_restart(lab, argv, timeout=600, restart=None, stderr=subprocess.DEVNULL):
    """argv: shoal-loadgen's command line without --restart-cmd. restart: what to do when every
    node is armed (default: kill lab's mediator and start it again). Returns its JSON output."""
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
        lab.start_server()  # same port, same state dir
    else:
        restart()
    out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"shoal-loadgen exited with {p.returncode}")
    return json.loads(out)
