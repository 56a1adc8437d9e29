"""
lanproxy broadcast and multicast across three real daemons (issue 3): shimtest datagram senders
and listeners under `shoal run`:
- broadcast to the 5.x subnet broadcast and to 255.255.255.255 reaches every program bound to
  the port on both other nodes, two SO_REUSEADDR (or SO_REUSEPORT) sockets on one node each
  get their own copy, and the source is the sender's 5.x address;
- multicast to 239.255.255.250 (SSDP) and 224.0.0.251:5353 (mDNS) reaches sockets that joined
  with INADDR_ANY, with the 5.x interface address and with ip_mreqn(shoal0's index), and to
  239.255.255.251 sockets that joined with MCAST_JOIN_GROUP (any interface, shoal0's index); a
  socket on the port that joined no group gets nothing;
- socat UDP broadcast discovery: one sender, receivers on the two other nodes;
- a LAN game's server browser: three nodes each enumerate interfaces, broadcast a probe and
  must list the other two servers within 2 s.
Runs in a private network namespace whose only LAN is shoal0 (lanproxy_util.isolate), so a
datagram can reach another node only through the overlay.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Lab, free_port  # noqa: E402
from lanproxy_util import (Report, ShimProc, SkipCase, bcast_of, isolate, lan, need, run,  # noqa: E402
                           shimtest)

LISTEN_SECS = 8


def main():
    isolate()
    rep = Report("lanproxy broadcast/multicast/discovery")
    st = shimtest()
    with Lab("lpbcast") as lab:
        try:
            a, b, c = lan(lab, ["alice", "bob", "carol"])
        except Exception as e:
            rep.add("setup/lan", False, str(e))
            return rep.finish(lab)
        addr = {d.name: d.address() for d in (a, b, c)}
        A = addr["alice"]
        subnet_bcast = bcast_of(A, 8)

        # scenario -> (destination, port, listener specs [(daemon, extra args)])
        Q = {k: free_port(socket.SOCK_DGRAM) for k in ("b5", "b255", "ssdp", "greq", "nojoin")}
        scen = {
            "bcast-subnet": (subnet_bcast, Q["b5"], [
                (b, ["--reuse"]), (b, ["--reuse"]), (c, ["--reuse"])]),
            "bcast-255": ("255.255.255.255", Q["b255"], [
                (b, ["--reuseport"]), (b, ["--reuseport"]), (c, [])]),
            "mcast-ssdp": ("239.255.255.250", Q["ssdp"], [
                (b, ["--reuse", "--mcast", "239.255.255.250"]),
                (c, ["--reuse", "--mcast", "239.255.255.250", "--mcast-if", addr["carol"]]),
                (c, ["--reuse", "--mcast", "239.255.255.250", "--mcast-ifindex"])]),
            # the protocol-independent API (RFC 3678), as GLib/GIO and libuv use it; its own
            # port, so no other listener's join carries it
            "mcast-greq": ("239.255.255.251", Q["greq"], [
                (b, ["--reuse", "--mcast", "239.255.255.251", "--mcast-group-req"]),
                (c, ["--reuse", "--mcast", "239.255.255.251", "--mcast-group-req",
                     "--mcast-ifindex"])]),
            "mcast-mdns": ("224.0.0.251", 5353, [
                (b, ["--reuse", "--mcast", "224.0.0.251"]), (c, ["--reuse", "--mcast", "224.0.0.251"])]),
        }
        listeners = {}
        for name, (dst, port, specs) in scen.items():
            listeners[name] = []
            for i, (d, extra) in enumerate(specs):
                p = ShimProc(lab, d, [st, "dgram-listen", port, "--secs", LISTEN_SECS, "--timeout", 30] + extra,
                             tag=f"{d.name}-{name}-{i}")
                listeners[name].append((d, i, p))
        # a socket on bob on the port of group 239.1.2.3 that joined nothing must get nothing
        nojoin = ShimProc(lab, b, [st, "dgram-listen", Q["nojoin"], "--reuse", "--secs", LISTEN_SECS, "--timeout", 30],
                          tag="bob-nojoin")
        for name, ls in listeners.items():
            for d, i, p in ls:
                with rep.case(f"{name}/{d.name}-listener{i}-ready"):
                    p.ready(15)
        with rep.case("mcast-nojoin/ready"):
            nojoin.ready(15)

        senders = {}
        for name, (dst, port, _) in scen.items():
            extra = ["--mcast-if", A] if name == "mcast-ssdp" else []
            senders[name] = ShimProc(lab, a, [st, "dgram-send", dst, port, f"{name}-from-alice", "--repeat", 3,
                                              "--interval-ms", 200, "--timeout", 20] + extra, tag=f"alice-send-{name}")
        senders["mcast-nojoin"] = ShimProc(lab, a, [st, "dgram-send", "239.1.2.3", Q["nojoin"], "nojoin-from-alice",
                                                    "--repeat", 3, "--interval-ms", 200, "--timeout", 20],
                                           tag="alice-send-nojoin")
        for name, p in senders.items():
            p.rc = p.wait(30)
            rep.absorb(p, f"{name}/sender")

        # the game browser runs while the listeners finish
        game(rep, lab, st, (a, b, c))

        for name, ls in listeners.items():
            want = f"{name}-from-alice"
            for d, i, p in ls:
                p.rc = p.wait(LISTEN_SECS + 10)
                for ch in p.checks():
                    rep.add(f"{name}/{d.name}-listener{i}/{ch['check']}", ch["ok"], ch["detail"])
                with rep.case(f"{name}/{d.name}-listener{i}-got-copy"):
                    got = [e for e in p.events("dgram") if e["data"] == want]
                    assert got, f"nothing with payload {want!r}; got {p.events('dgram')[:4]} " \
                                f"stderr {p.stderr_tail(300)!r}"
                with rep.case(f"{name}/{d.name}-listener{i}-source-is-alice"):
                    got = [e for e in p.events("dgram") if e["data"] == want]
                    if not got:
                        raise AssertionError("nothing received")
                    assert any(e["from"] == A for e in got), f"sources {sorted(set(e['from'] for e in got))}, want {A}"
        nojoin.rc = nojoin.wait(LISTEN_SECS + 10)
        with rep.case("mcast-nojoin/not-delivered-without-membership"):
            got = [e for e in nojoin.events("dgram") if e["data"] == "nojoin-from-alice"]
            assert not got, f"a socket that joined no group received {got[:2]}"

        socat_discovery(rep, lab, (a, b, c), subnet_bcast)
        return rep.finish(lab)


def game(rep, lab, st, nodes):
    """Three game instances; each browses the LAN after 'go' and lists the other two."""
    port = free_port(socket.SOCK_DGRAM)
    names = {d.name: f"{d.name}-game" for d in nodes}
    ps = {d.name: ShimProc(lab, d, [st, "lan-game", names[d.name], port, "--secs", 25, "--timeout", 40], stdin=True,
                           tag=f"{d.name}-game") for d in nodes}
    try:
        for n, p in ps.items():
            p.ready(15)
    except AssertionError as e:
        rep.add("game/ready", False, str(e))
        return
    for p in ps.values():
        p.send(b"go\n")
    time.sleep(3.0)
    for n, p in ps.items():
        with rep.case(f"game/{n}-probed-via-shoal0"):
            ev = p.wait_for(lambda x: isinstance(x, dict) and x.get("event") == "probed", 5, "probed event")
            assert "shoal0=" in ev["interfaces"], f"broadcast interfaces seen by the game: {ev['interfaces']!r}"
        with rep.case(f"game/{n}-lists-other-two-within-2s"):
            others = {names[o] for o in names if o != n}
            found = {e["server"]: e["ms"] for e in p.events("found")}
            missing = others - set(found)
            assert not missing, f"found {found}, missing {sorted(missing)}"
            slow = {k: v for k, v in found.items() if k in others and v > 2000}
            assert not slow, f"found too late (ms): {slow}"
        with rep.case(f"game/{n}-reply-sources-are-5x"):
            srcs = {e["server"]: e["from"] for e in p.events("found")}
            bad = {k: v for k, v in srcs.items() if not v.startswith("5.")}
            assert srcs and not bad, f"server replies came from {srcs}"
    for p in ps.values():
        p.close_stdin()
        p.rc = p.wait(10)
        for ch in p.checks():
            rep.add(f"game/{p.tag}/{ch['check']}", ch["ok"], ch["detail"])


def socat_discovery(rep, lab, nodes, subnet_bcast):
    a, b, c = nodes
    try:
        socat = need("socat")
    except SkipCase as e:
        rep.skip("socat-discovery", str(e))
        return
    for dst in (subnet_bcast, "255.255.255.255"):
        port = free_port(socket.SOCK_DGRAM)
        recv = [ShimProc(lab, d, [socat, "-u", f"UDP4-RECV:{port},reuseaddr", "STDOUT"], raw=True,
                         tag=f"{d.name}-socat-recv-{dst}") for d in (b, c)]
        time.sleep(0.7)   # socat has no ready line: give the receivers a moment to bind
        msg = f"discover-shoal-{dst}"
        for _ in range(3):
            s = ShimProc(lab, a, ["sh", "-c", f"echo {msg} | {socat} -u STDIN UDP4-DATAGRAM:{dst}:{port},broadcast"],
                         raw=True, tag=f"alice-socat-send-{dst}")
            rc = s.wait(15)
            time.sleep(0.2)
        with rep.case(f"socat-discovery/{dst}/sender-exit-0"):
            assert rc == 0, f"socat sender exit {rc}: {s.stderr_tail(300)!r}"
        for d, r in zip((b, c), recv):
            with rep.case(f"socat-discovery/{dst}/{d.name}-received"):
                r.wait_for(lambda x: x == msg, 5, f"{msg!r} on {d.name}")
            r.stop()


if __name__ == "__main__":
    sys.exit(main())
