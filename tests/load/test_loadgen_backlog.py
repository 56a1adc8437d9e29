#!/usr/bin/env python3
"""A mediator behind on its handshakes closes none of them. The server runs with 256
descriptors (about 190 connections), so at most 64 may be waiting for their handshake (a quarter). It is
stopped (SIGSTOP) while 150 simulated nodes connect: the kernel completes their TCP handshakes
and holds their Noise message 1. Continued, the server finds more than 64 waiting, each with its
first message unread: work it owes, not silent clients. Holds: it holds its listener rather than
close them (event=accept_held, no preauth_evicted) and all 150 nodes get in on their first dial.
Before, it closed the oldest for each newcomer and those nodes had to dial again."""
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
from harness import BUILD, Lab, wait_until  # noqa: E402

NODES = 150


def waiting(port):
    """Server-side connections on port whose message 1 has arrived (bytes unread, accepted or
    not): a node whose connect completed may not have sent it yet on a loaded machine, and such
    an idle connection may rightly give way."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if int(line.split()[0]) > 0)


def main():
    with Lab("loadgen-backlog") as lab:
        lab.server_verbose = False
        srv = lab.start_server(wrap=("prlimit", "--nofile=256:256"))
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            gen = subprocess.Popen([os.path.join(BUILD, "tests", "load", "shoal-loadgen"), "--server", srv.url,
                                    "--nodes", str(NODES), "--network-size", "2", "--churn", "0",
                                    "--seconds", "0", "--procs", "1", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_until(lambda: waiting(srv.port) >= NODES, 20, what="every node's message 1")
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        log_path = os.path.join(lab.dir, "server.log")
        try:
            # a node closed before its handshake never dials again here: the run would not end
            wait_until(lambda: gen.poll() is not None or "event=preauth_evicted" in open(log_path).read(),
                       120, what="the load generator's end")
            log = open(log_path).read()
            assert "event=preauth_evicted" not in log, "a connection waiting for its handshake was closed"
            assert "event=accept_held" in log, "the server never found its backlog of handshakes"
            out, err = gen.communicate(timeout=10)
        finally:
            if gen.poll() is None:
                gen.kill()
                gen.wait()
        assert gen.returncode == 0, err
        r = json.loads(out)
        print(json.dumps(r))
        assert "node_closed" not in err, err
        assert r["nodes_connected"] == NODES, r
    print("PASS")


if __name__ == "__main__":
    main()
