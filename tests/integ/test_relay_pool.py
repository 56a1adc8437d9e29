#!/usr/bin/env python3
"""
Relays registering with a real mediator (issue 8, PROTOCOL.md 8): two standalone shoal-relay
processes with keys the operator allowed (one by --relay-allow, one in STATE/relays.allow)
register and form the pool; a relay whose key is not allowed is refused, and both sides log
why; two daemons in one network get a relay picked for their pair; killing that relay moves
the pair to the other one (the mediator's relay_down, then a relay_pick away from it, timed);
and after a mediator restart the surviving relay registers again by itself.
"""
import ctypes
import ctypes.util
import os
import re
import socket
import time

from harness import Lab, binary, free_port, run, wait_until

_sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so")


def make_identity(state):
    """A relay's key file (crypto/identity.c's format) made here, so its public key can be
    allowed before the mediator starts."""
    os.makedirs(state, exist_ok=True)
    priv = os.urandom(32)
    pub = ctypes.create_string_buffer(32)
    assert _sodium.crypto_scalarmult_base(pub, priv) == 0
    path = os.path.join(state, "relay.key")
    with open(path, "w") as fh:
        fh.write(priv.hex() + "\n" + pub.raw.hex() + "\n")
    os.chmod(path, 0o600)
    return pub.raw.hex()


def lines(path, event):
    try:
        return [x for x in open(path) if f"event={event} " in x or x.rstrip().endswith(f"event={event}")]
    except FileNotFoundError:
        return []


def field(line, name):
    m = re.search(rf"\b{name}=(\S+)", line)
    return m.group(1) if m else None


def main():
    with Lab("relay_pool") as lab:
        ra_dir, rb_dir, rc_dir = (os.path.join(lab.dir, n) for n in ("ra", "rb", "rc"))
        ka, kb = make_identity(ra_dir), make_identity(rb_dir)
        kc = make_identity(rc_dir)                      # never allowed
        os.makedirs(os.path.join(lab.dir, "server"), exist_ok=True)
        with open(os.path.join(lab.dir, "server", "relays.allow"), "w") as fh:
            fh.write("# relays allowed by file\n" + kb + "\n")
        # No embedded relay: the pool is the standalone relays only.
        srv = lab.start_server(extra=["--relay-allow", ka, "--relay-port", "off"])
        slog = os.path.join(lab.dir, "server.log")

        def relay(name, state):
            port = free_port(socket.SOCK_DGRAM)
            log = os.path.join(state, "relay.log")
            p = lab.spawn([binary("shoal-relay"), "--listen", f"127.0.0.1:{port}", "--state", state,
                           "--server", srv.url, "--name", name, "--tcp-port", str(free_port()),
                           "--stats-interval", "0"], log)
            return p, log, port

        pa, la, porta = relay("ra", ra_dir)
        pb, lb, portb = relay("rb", rb_dir)
        wait_until(lambda: len(lines(slog, "relay_registered")) == 2, 10, what="two relays registered")
        ids = {field(x, "name"): int(field(x, "id")) for x in lines(slog, "relay_registered")}
        assert set(ids) == {"ra", "rb"}, ids
        for x in lines(slog, "relay_registered"):
            assert field(x, "udp") in (f"127.0.0.1:{porta}", f"127.0.0.1:{portb}"), x
        wait_until(lambda: lines(la, "relay_key_set") and lines(lb, "relay_key_set"), 10, what="relay keys")
        print(f"registered: {ids}")

        # A key nobody allowed: refused, with the reason on both sides.
        pc, lc, _ = relay("rc", rc_dir)
        wait_until(lambda: any(kc in x for x in lines(slog, "relay_refused")), 10, what="refusal logged")
        assert "reason=not_allowed" in [x for x in lines(slog, "relay_refused") if kc in x][0]
        wait_until(lambda: lines(lc, "relay_refused"), 10, what="relay told why")
        assert "not allowed" in lines(lc, "relay_refused")[0], lines(lc, "relay_refused")
        assert len(lines(slog, "relay_registered")) == 2
        pc.kill()
        print("unknown relay key refused:", lines(lc, "relay_refused")[0].strip())

        # Two nodes in one network: their pair gets a relay at once (before any punching).
        a = lab.start_daemon("alice")
        b = lab.start_daemon("bob")
        a.cli("create", "lan", "--password", "pw")
        b.cli("join", "lan", "--password", "pw")
        wait_until(lambda: lines(slog, "relay_pick"), 10, what="a relay picked for the pair")
        first = lines(slog, "relay_pick")[0]
        used = int(field(first, "relay"))
        assert used in ids.values() and field(first, "previous") == "0", first
        assert field(first, "reason") == "starting", first
        print("picked:", first.strip())

        # Kill the relay in use: the pool loses it and the pair moves to the other relay.
        victim, other = (pa, ids["rb"]) if used == ids["ra"] else (pb, ids["ra"])
        n_picks = len(lines(slog, "relay_pick"))
        t0 = time.monotonic()
        victim.kill()
        victim.wait()
        wait_until(lambda: lines(slog, "relay_down"), 10, what="relay_down")
        wait_until(lambda: len(lines(slog, "relay_pick")) > n_picks, 10, what="pair moved")
        moved = time.monotonic() - t0
        last = lines(slog, "relay_pick")[-1]
        assert int(field(last, "relay")) == other and int(field(last, "previous")) == used, last
        assert field(last, "why") == "pool", last
        print(f"relay {used} killed: pair on relay {other} after {moved:.2f}s: {last.strip()}")
        assert moved < 3.0, moved

        # Its counters reach the mediator's log (at most one line per relay per minute).
        wait_until(lambda: any(f"id={other} " in x for x in lines(slog, "relay_counters")), 10,
                   what="counters line")
        print([x.strip() for x in lines(slog, "relay_counters")][-1])

        # The mediator restarts: the surviving relay (still running, still forwarding its
        # pairs) registers again by itself.
        survivor_log = lb if other == ids["rb"] else la
        survivor_name = "rb" if other == ids["rb"] else "ra"
        before = len(lines(survivor_log, "relay_registered"))
        lab.kill_server()
        wait_until(lambda: lines(survivor_log, "mediator_disconnected"), 10, what="relay saw it")
        srv = lab.start_server(extra=["--relay-allow", ka, "--relay-port", "off"])
        wait_until(lambda: len(lines(survivor_log, "relay_registered")) > before, 15,
                   what="registered again")
        again = [x for x in lines(slog, "relay_registered") if f"name={survivor_name} " in x]
        assert len(again) == 2, again
        assert (pb if survivor_name == "rb" else pa).poll() is None
        print("after a mediator restart:", again[-1].strip())


if __name__ == "__main__":
    run(main)
