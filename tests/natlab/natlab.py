#!/usr/bin/env python3
"""
NAT lab: real shoal-server and shoald processes behind Linux routers that behave as the RFC 4787
NAT types of /work/shared/natlab-notes.md (nftables in network namespaces).

Everything lives in network namespaces this module creates and deletes; nothing is added to
the host's namespace (veth pairs are created directly inside the lab namespaces with
`ip -n NS link add ... peer ... netns NS2`), no host interface or host sysctl is touched, and no
namespace has a route that leaves the lab. Namespaces are named snl<PID>.<N>-<role>; the ones
left by a process that no longer runs are removed when the next Lab starts.

Topology (site i = 1, 2, ...):

  snl*-inet   the "internet": bridge br0, 198.18.0.0/15, no route anywhere else
              198.18.0.1, 198.18.0.2   mediator (shoal-server --listen A:7777 --listen B:7777)
              198.18.0.3, 198.18.0.4   UDP reflector (ports 3478, 3479) for the self-test
  snl*-r<i>   site i's router: wan 198.18.1.i/15 (veth w<i> on br0), LAN bridge lan 10.i.0.1/24,
              nftables table ip snl (the NAT type), input policy drop except established
  snl*-h<i><x> hosts behind it: eth0 10.i.0.(10+k)/24, default via 10.i.0.1 (x = a, b, ...)
  cgnat:      snl*-c<i> carrier router: wan 198.18.1.i/15, lan 100.64.i.1/24 (masquerade);
              snl*-r<i> home router: wan 100.64.i.2/24 (default via 100.64.i.1), LAN as above
  public:     no router; hosts on br0 with 198.18.(2+k).i/15
  ipv6:       add_site(kind, ipv6=True): global IPv6 beside the IPv4 NAT, from 2001:db8::/32
              (documentation prefix; routes only for 2001:db8::/32, nothing else):
              inet br0 2001:db8::1/64, routes each site's /64 to its router;
              router wan 2001:db8::1:<i>/64, LAN 2001:db8:<i>::1/64 routed without NAT;
              hosts 2001:db8:<i>::(10+k)/64 (host.addr6). With v6_firewall (the default) the
              router's `table ip6 snl6` forwards inbound only for established/related
              flows, like a home router's stateful IPv6 firewall
  renumbered: site.renumber() moves a site's public address to 198.18.1.(200+n), n = 1, 2, ...
              (so sites are limited to 199)
  upnp, upnp-igd: a portrestricted router that also runs a real miniupnpd (Debian's
              miniupnpd-nftables) on its LAN bridge: NAT-PMP/PCP and UPnP-IGD (upnp-igd: UPnP-IGD
              only), DNAT rules in its own `table inet miniupnpd`; its WAN address is "reserved"
              to miniupnpd, which maps only after a STUN check against the reflector passes

  snl*-y<k>   standalone relay k (lab.start_relay): 198.18.8.k, UDP and TCP on 7000, behind a
              delaywire (tests/bench/delaywire) from the internet namespace (which forwards and
              answers ARP for it on br0), or on br0 itself when its delay is 0; site_delays
              adds a wire per named site (policy routing by the site's public address), so
              different sites can be near different relays

Library use:
    with Lab() as lab:
        a = lab.add_site("portrestricted")
        b = lab.add_site("seq1", hosts=2)
        lab.start_server()
        da = lab.start_daemon(a.hosts[0], "alice")   # harness.Daemon: da.cli("status"), ...
        a.renumber()                                  # the ISP gives the site a new address
        with lab.block_udp(a, b.public_ip):           # the path between the sites dies
            ...

Command line:
    natlab.py selftest [KIND ...]     check each NAT type with plain sockets (no shoal)
    natlab.py cleanup                 remove namespaces left by dead runs
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402  (binary(), wait_until, Daemon, CliError)

PREFIX = "snl"
NS_RE = re.compile(r"^snl(\d+)\.(\d+)-")

MED_A, MED_B = "198.18.0.1", "198.18.0.2"
MED_PORT = 7777
REFL_A, REFL_B = "198.18.0.3", "198.18.0.4"
REFL_PORTS = (3478, 3479)
INET_PLEN = 15
EIM_RANGE = (20000, 29999)       # outside every namespace's ephemeral range (32768-60999)
SEQ_BASE, SEQ_N = 50000, 1000    # seq1: ports 50000.. in order, one shared counter
SEQL_OFFSET, SEQL_N = 0x2010, 200  # seq-large: port = (v & 0xff) << 8 | v >> 8: 4128 + 256 k
SHORT_TIMEOUT = 5
RENUMBER_BASE = 200              # renumbered sites get 198.18.1.(200+n); sites stay below
RELAY_NET, RELAY_PORT = "198.18.8.", 7000   # standalone relays (start_relay)


def x25519_public(priv):
    """RFC 7748 X25519(priv, 9): a static key's public half, so a relay's key can be allowed on the
    mediator before the relay first starts."""
    p, a24 = 2 ** 255 - 19, 121665
    k = bytearray(priv)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    n = int.from_bytes(bytes(k), "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % p, b * b % p
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a % p, c * b % p
        x3, z3 = (da + cb) ** 2 % p, x1 * (da - cb) ** 2 % p
        x2, z2 = aa * bb % p, e * (aa + a24 * e) % p
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, p - 2, p) % p).to_bytes(32, "little")

KINDS = ("fullcone", "restricted", "portrestricted", "eim-range", "seq1", "seq-large", "random",
         "udpblock", "short", "cgnat", "public", "upnp", "upnp-igd")

MINIUPNPD = "/usr/sbin/miniupnpd"   # Debian's miniupnpd-nftables (scripts/deps.sh)
UPNP_HTTP_PORT = 5000

# What each type is, in PROTOCOL.md 3.1's words, measured from two server addresses.
EXPECT = {
    "fullcone":       dict(udp="ok", mapping="eim", ports="preserved", filtering="eif"),
    "restricted":     dict(udp="ok", mapping="eim", ports="preserved", filtering="adf"),
    "portrestricted": dict(udp="ok", mapping="eim", ports="preserved", filtering="apdf"),
    "eim-range":      dict(udp="ok", mapping="eim", ports="fixed", filtering="apdf"),
    "seq1":           dict(udp="ok", mapping="apdm", ports="sequential", step=1, filtering="apdf"),
    "seq-large":      dict(udp="ok", mapping="apdm", ports="sequential", step=256, filtering="apdf"),
    "random":         dict(udp="ok", mapping="apdm", ports="random", filtering="apdf"),
    "udpblock":       dict(udp="blocked"),
    "short":          dict(udp="ok", mapping="eim", ports="preserved", filtering="apdf"),
    "cgnat":          dict(udp="ok", mapping="eim", ports="preserved", filtering="apdf"),
    "public":         dict(udp="ok", mapping="eim", ports="preserved", filtering="eif"),
    # portrestricted plus a real miniupnpd (UPnP-IGD and NAT-PMP on the LAN side; upnp-igd:
    # UPnP-IGD only). The NAT itself is portrestricted; a daemon whose port is already mapped
    # when the classification's filtering tests arrive sees them all come in: eif.
    "upnp":           dict(udp="ok", mapping="eim", ports="preserved", filtering=("apdf", "eif")),
    "upnp-igd":       dict(udp="ok", mapping="eim", ports="preserved", filtering=("apdf", "eif")),
}
UPNP_KINDS = ("upnp", "upnp-igd")


class KindUnavailable(RuntimeError):
    """A NAT type this machine cannot build (e.g. `upnp` without miniupnpd)."""


def kind_unavailable(kind):
    """Why `kind` cannot be built here, or None."""
    if kind in UPNP_KINDS and not os.access(MINIUPNPD, os.X_OK):
        return f"{kind} needs {MINIUPNPD} (apt-get install miniupnpd-nftables)"
    return None


def expected(kind, two_addresses=True):
    """EXPECT[kind]; with one server address adm reads as eim and eif as adf (PROTOCOL.md 3.1)."""
    e = dict(EXPECT[kind])
    if not two_addresses and isinstance(e.get("filtering"), tuple):
        e["filtering"] = tuple("adf" if f == "eif" else f for f in e["filtering"])
    if not two_addresses:
        if e.get("mapping") == "adm":
            e["mapping"] = "eim"
        if e.get("filtering") == "eif":
            e["filtering"] = "adf"
    return e


def nat_mismatches(kind, nat, two_addresses=True):
    """Differences between a `nat` object (status --json or the self-test's) and the type."""
    out = []
    for k, v in expected(kind, two_addresses).items():
        if nat.get(k) not in (v if isinstance(v, tuple) else (v,)):
            out.append(f"{k}={nat.get(k)!r} (want {v!r})")
    return out


def nat_summary(nat):
    if not nat:
        return "-"
    if nat.get("udp") == "blocked":
        return "udp-blocked"
    s = f"{nat.get('mapping')}/{nat.get('filtering')}/{nat.get('ports')}"
    if nat.get("ports") == "sequential":
        s += f"+{nat.get('step')}"
    return s


# --- processes and namespaces ------------------------------------------------------------

def _pdeathsig():
    """Child dies with the thread that spawned it: spawn long-lived processes from the main
    thread only."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def sh(*argv, ns=None, check=True, timeout=15, input=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def _netns_list():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _ns_destroy(ns):
    """Kill what still runs inside one of the lab's namespaces (processes the lab started), then
    delete it."""
    for _ in range(3):
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
        pids = [int(p) for p in r.stdout.split() if p.isdigit() and int(p) != os.getpid()]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def cleanup_stale(everything=False):
    """Delete snl* namespaces whose creating process is gone (or all of them)."""
    gone = []
    for ns in _netns_list():
        m = NS_RE.match(ns)
        if not m:
            continue
        if everything or not _alive(int(m.group(1))):
            _ns_destroy(ns)
            gone.append(ns)
    return gone


class Host:
    """One machine: a namespace and its address, behind `site`'s router (or on the internet)."""

    def __init__(self, site, ns, addr, letter):
        self.site, self.ns, self.addr, self.letter = site, ns, addr, letter
        self.addr6 = None       # a global IPv6 address when the site has IPv6

    @property
    def name(self):
        return f"{self.site.index}{self.letter}"

    def run(self, *argv, **kw):
        return sh(*argv, ns=self.ns, **kw)

    def __repr__(self):
        return f"Host({self.ns}, {self.addr})"


class Site:
    def __init__(self, lab, index, kind, hairpin):
        self.lab, self.index, self.kind, self.hairpin = lab, index, kind, hairpin
        self.router = None      # namespace of the NAT in front of the hosts (home router for cgnat)
        self.carrier = None     # cgnat only
        self.public_ip = None   # the address the internet sees
        self.hosts = []
        self.miniupnpd = None   # upnp only: the process
        self.ipv6 = None        # "2001:db8:<i>::/64" when the site has global IPv6

    @property
    def wan_router(self):
        """The namespace that holds the public address (the carrier for cgnat)."""
        return self.carrier or self.router

    def renumber(self):
        """A new public address, as when an ISP renumbers the line or a laptop changes networks:
        the WAN interface gets 198.18.1.(200+n), the NAT rules are rewritten for it, and every
        tracked connection is forgotten (as masquerade does when its address goes), so flows
        through the old address break rather than leak out with it. Returns the new address."""
        return self.lab.renumber(self)

    def __repr__(self):
        return f"Site({self.index}, {self.kind}{'+hairpin' if self.hairpin else ''}, {self.public_ip})"


# --- nftables rulesets --------------------------------------------------------------------

V6_PREFIX = "2001:db8"            # documentation prefix (RFC 3849): the lab's IPv6 internet
V6_INET = f"{V6_PREFIX}::1"


def v6_site_net(i):
    return f"{V6_PREFIX}:{i:x}::"


# A home router's stateful IPv6 firewall: the LAN may open flows, the internet only answer them.
RULESET_V6_FIREWALL = """table ip6 snl6 {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" accept
  }
}
"""


def ruleset(kind, pub, lan_net, hairpin=False):
    """The router's `table ip snl` for one NAT type. `pub` is its WAN address."""
    learn = kind in ("fullcone", "restricted") or hairpin
    maps, learn_rules, pre, post = [], [], [], []
    fwd = ["ct state established,related accept"]
    if kind == "udpblock":
        fwd.append('iifname "lan" meta l4proto udp udp dport != 53 drop')
    fwd.append('iifname "lan" oifname "wan" accept')
    inp = []
    if kind in UPNP_KINDS:
        # miniupnpd's DNAT rules (its own table, below) let mapped flows in; SSDP, NAT-PMP/PCP
        # and the IGD's HTTP from the LAN; chain `stun` lets its STUN check's answers in while
        # it starts (then it is flushed: left in, it would also take the self-test's filtering
        # tests, whose conntrack entries would then spoil the next mappings).
        fwd.append('iifname "wan" oifname "lan" ct status dnat accept')
        inp += ['iifname "lan" udp dport { 1900, 5351 } accept',
                f'iifname "lan" tcp dport {UPNP_HTTP_PORT} accept', "jump stun"]

    if learn:
        maps.append("map fc { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; "
                    "timeout 120s; }")
        learn_rules.append('oifname "wan" meta l4proto udp update @fc { ct reply proto-dst : '
                           'ct original ip saddr . ct original proto-src }')
    if kind == "fullcone":
        pre.append('iifname "wan" dnat ip to udp dport map @fc')
        fwd.append('iifname "wan" oifname "lan" ct status dnat accept')
    if kind == "restricted":
        maps.append("set adf { type inet_service . ipv4_addr; flags dynamic,timeout; timeout 120s; }")
        learn_rules.append('oifname "wan" meta l4proto udp update @adf { ct reply proto-dst . ip daddr }')
        pre.append('iifname "wan" udp dport . ip saddr @adf dnat ip to udp dport map @fc')
        fwd.append('iifname "wan" oifname "lan" ct status dnat accept')
    if hairpin:
        # The router's own public address seen from the LAN: back to whoever holds the mapping,
        # from the public address (RFC 4787 REQ-9), so the reply returns the same way.
        pre.append(f'iifname "lan" ip daddr {pub} dnat ip to udp dport map @fc')
        post.append(f'oifname "lan" ip saddr {lan_net} ct status dnat snat ip to {pub}')
        fwd.append('iifname "lan" oifname "lan" ct status dnat accept')

    if kind == "eim-range":
        post.append(f'oifname "wan" meta l4proto udp snat ip to {pub}:{EIM_RANGE[0]}-{EIM_RANGE[1]}')
    elif kind == "seq1":
        elems = ", ".join(f"{i} : {SEQ_BASE + i}" for i in range(SEQ_N))
        maps.append(f"map seq {{ typeof numgen inc mod {SEQ_N} : udp sport; elements = {{ {elems} }} }}")
        post.append(f'oifname "wan" meta l4proto udp snat ip to {pub} : numgen inc mod {SEQ_N} map @seq')
    elif kind == "seq-large":
        post.append(f'oifname "wan" meta l4proto udp snat ip to {pub} : numgen inc mod {SEQL_N} '
                    f'offset {SEQL_OFFSET}')
    elif kind == "random":
        post.append('oifname "wan" masquerade fully-random')
    post.append('oifname "wan" masquerade')

    def chain(name, ctype, hook, prio, policy, rules):
        return (f"  chain {name} {{\n    type {ctype} hook {hook} priority {prio}; policy {policy};\n"
                + "".join(f"    {r}\n" for r in rules) + "  }\n")

    text = "table ip snl {\n" + "".join(f"  {m}\n" for m in maps)
    text += chain("input", "filter", "input", "0", "drop",
                  ["ct state established,related accept", 'iifname "lo" accept',
                   'iifname "lan" icmp type echo-request accept'] + inp)
    text += chain("forward", "filter", "forward", "0", "drop", fwd)
    if kind in UPNP_KINDS:
        text += ("  chain stun {\n    iifname \"wan\" ip saddr { %s, %s } udp sport { 3478, 3479 } "
                 "accept\n  }\n" % (REFL_A, REFL_B))
    if pre:
        text += chain("prerouting", "nat", "prerouting", "dstnat", "accept", pre)
    text += chain("postrouting", "nat", "postrouting", "srcnat", "accept", post)
    if learn_rules:
        text += chain("learn", "filter", "postrouting", "srcnat + 10", "accept", learn_rules)
    text += "}\n"
    if kind in UPNP_KINDS:
        text += MINIUPNPD_TABLES
    return text


# The chains miniupnpd's nftables backend fills (Debian's nft_init.sh layout, policy accept: the
# router's own `table ip snl` decides what passes; these only add miniupnpd's DNAT rules).
MINIUPNPD_TABLES = """table inet miniupnpd {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
"""


def miniupnpd_conf(site):
    """UPnP-IGD and NAT-PMP on the LAN bridge, mappings only for the asking host (secure mode).
    Its WAN address is in 198.18.0.0/15, which miniupnpd treats as reserved ("port forwarding
    is impossible") unless a STUN check shows nothing filters it: the lab's reflector answers."""
    i = site.index
    return "\n".join([
        "ext_ifname=wan", "listening_ip=lan", f"http_port={UPNP_HTTP_PORT}",
        f"enable_natpmp={'no' if site.kind == 'upnp-igd' else 'yes'}", "enable_upnp=yes",
        "secure_mode=yes", "system_uptime=no",
        "ext_perform_stun=yes", f"ext_stun_host={REFL_A}", "ext_stun_port=3478",
        f"uuid=5ba1c0de-0000-4000-8000-{i:012x}",
        "upnp_table_name=miniupnpd", "upnp_nat_table_name=miniupnpd",
        "upnp_forward_chain=miniupnpd", "upnp_nat_chain=prerouting_miniupnpd",
        "upnp_nat_postrouting_chain=postrouting_miniupnpd",
        f"allow 1024-65535 10.{i}.0.0/24 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535", ""])


# --- the lab -----------------------------------------------------------------------------

class Lab:
    """Namespaces, the mediator, the daemons. A context manager: everything goes on exit."""
    _seq = 0

    def __init__(self, name="lab", keep_dir_on_failure=True, verbose=False):
        cleanup_stale()
        Lab._seq += 1
        self.prefix = f"{PREFIX}{os.getpid()}.{Lab._seq}-"
        self.dir = tempfile.mkdtemp(prefix=f"snl-{name}-")
        self.keep = keep_dir_on_failure
        self.verbose = verbose
        self.namespaces = []
        self.procs = []
        self.sites = []
        self.server = None
        self.daemons = {}
        self.multi_listen = False
        self.reflector = None
        self._inet_ports = 0
        self._renumbered = 0
        self.relays = {}        # name -> dict(index, addr, state, key, proc, wire)
        try:
            self._make_inet()
        except BaseException:
            self.close(failed=True)
            raise

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(failed=et is not None)
        return False

    # namespaces
    def _ns(self, role):
        ns = self.prefix + role
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def _sysctl(self, ns, key, value):
        sh("sysctl", "-q", "-w", f"{key}={value}", ns=ns)
        got = sh("sysctl", "-n", key, ns=ns).stdout.split()
        if " ".join(got) != str(value):
            raise RuntimeError(f"{ns}: {key} is {got}, wanted {value}")

    def _bridge_plain(self, ns):
        """This kernel has br_netfilter built in and on by default in every namespace: bridged
        frames would go through the router's ip hooks (forward policy drop, NAT). A LAN switch
        does not; switch it off in this namespace only (per-namespace sysctl)."""
        for k in ("iptables", "ip6tables", "arptables"):
            key = f"net.bridge.bridge-nf-call-{k}"
            if os.path.exists("/proc/sys/" + key.replace(".", "/")):
                self._sysctl(ns, key, 0)

    def _veth(self, ns1, if1, ns2, if2):
        sh("ip", "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)

    def _make_inet(self):
        self.inet = self._ns("inet")
        n = self.inet
        sh("ip", "-n", n, "link", "add", "br0", "type", "bridge")
        self._bridge_plain(n)
        for a in (MED_A, MED_B, REFL_A, REFL_B):
            sh("ip", "-n", n, "addr", "add", f"{a}/{INET_PLEN}", "dev", "br0")
        sh("ip", "-n", n, "link", "set", "br0", "up")

    def _inet_port(self, ifname, other_ns, other_if, addr, plen=INET_PLEN):
        """A veth from br0 in the internet to `other_ns` with address `addr`."""
        self._veth(self.inet, ifname, other_ns, other_if)
        sh("ip", "-n", self.inet, "link", "set", ifname, "master", "br0", "up")
        sh("ip", "-n", other_ns, "addr", "add", f"{addr}/{plen}", "dev", other_if)
        sh("ip", "-n", other_ns, "link", "set", other_if, "up")

    def _router(self, role, lan_addr, lan_plen):
        ns = self._ns(role)
        self._sysctl(ns, "net.ipv4.ip_forward", 1)
        self._sysctl(ns, "net.ipv4.conf.all.send_redirects", 0)
        self._sysctl(ns, "net.ipv4.conf.default.send_redirects", 0)
        sh("ip", "-n", ns, "link", "add", "lan", "type", "bridge")
        self._bridge_plain(ns)
        sh("ip", "-n", ns, "addr", "add", f"{lan_addr}/{lan_plen}", "dev", "lan")
        sh("ip", "-n", ns, "link", "set", "lan", "up")
        return ns

    def _load(self, ns, text):
        path = os.path.join(self.dir, f"{ns}.nft")
        with open(path, "w") as f:
            f.write(text)
        sh("nft", "-f", path, ns=ns)

    def _inet_v6(self):
        """The internet's IPv6 side, once: 2001:db8::1/64 on br0, forwarding between sites."""
        if getattr(self, "_v6_ready", False):
            return
        n = self.inet
        self._sysctl(n, "net.ipv6.conf.all.forwarding", 1)
        sh("ip", "-n", n, "-6", "addr", "add", f"{V6_INET}/64", "dev", "br0", "nodad")
        self._v6_ready = True

    def _site_v6(self, site, firewall):
        """Global IPv6 for a routed site: wan 2001:db8::1:<i>, LAN 2001:db8:<i>::/64 without
        NAT. Every route names 2001:db8::/32 only: nothing leads out of the lab."""
        self._inet_v6()
        i, r = site.index, site.router
        wan6, net = f"{V6_PREFIX}::1:{i:x}", v6_site_net(site.index)
        self._sysctl(r, "net.ipv6.conf.all.forwarding", 1)
        sh("ip", "-n", r, "-6", "addr", "add", f"{wan6}/64", "dev", "wan", "nodad")
        sh("ip", "-n", r, "-6", "addr", "add", f"{net}1/64", "dev", "lan", "nodad")
        sh("ip", "-n", r, "-6", "route", "add", f"{V6_PREFIX}::/32", "via", V6_INET)
        sh("ip", "-n", self.inet, "-6", "route", "add", f"{net}/64", "via", wan6)
        if firewall:
            self._load(r, RULESET_V6_FIREWALL)
        site.ipv6 = f"{net}/64"

    def _host_v6(self, site, host, k):
        net = v6_site_net(site.index)
        host.addr6 = f"{net}{10 + k:x}"
        sh("ip", "-n", host.ns, "-6", "addr", "add", f"{host.addr6}/64", "dev", "eth0", "nodad")
        sh("ip", "-n", host.ns, "-6", "route", "add", f"{V6_PREFIX}::/32", "via", f"{net}1")

    def add_site(self, kind, hosts=1, hairpin=False, ipv6=False, v6_firewall=True):
        """A NAT of type `kind` with `hosts` machines behind it (public: hosts on the internet).
        ipv6: the site also gets a routed global IPv6 /64 (module docstring), behind a stateful
        firewall unless v6_firewall is False."""
        if kind not in KINDS:
            raise ValueError(f"unknown NAT type {kind!r} (one of {', '.join(KINDS)})")
        why = kind_unavailable(kind)
        if why:
            raise KindUnavailable(why)
        if hairpin and kind in ("cgnat", "public"):
            raise ValueError(f"hairpin is not modelled for {kind}")
        if ipv6 and kind in ("cgnat", "public"):
            raise ValueError(f"ipv6 is not modelled for {kind}")
        i = len(self.sites) + 1
        if i >= RENUMBER_BASE or hosts > 20:
            raise ValueError("too many sites or hosts")
        site = Site(self, i, kind, hairpin)
        self.sites.append(site)
        letters = "abcdefghijklmnopqrst"
        if kind == "public":
            for k in range(hosts):
                ns = self._ns(f"h{i}{letters[k]}")
                addr = f"198.18.{2 + k}.{i}"
                self._inet_port(f"p{i}{letters[k]}", ns, "eth0", addr)
                site.hosts.append(Host(site, ns, addr, letters[k]))
            site.public_ip = None
            return site
        lan_net = f"10.{i}.0.0/24"
        if kind == "cgnat":
            site.carrier = self._router(f"c{i}", f"100.64.{i}.1", 24)
            self._inet_port(f"w{i}", site.carrier, "wan", f"198.18.1.{i}")
            site.public_ip = f"198.18.1.{i}"
            self._load(site.carrier, ruleset("portrestricted", site.public_ip, f"100.64.{i}.0/24"))
            site.router = self._router(f"r{i}", f"10.{i}.0.1", 24)
            self._veth(site.carrier, f"r{i}", site.router, "wan")
            sh("ip", "-n", site.carrier, "link", "set", f"r{i}", "master", "lan", "up")
            sh("ip", "-n", site.router, "addr", "add", f"100.64.{i}.2/24", "dev", "wan")
            sh("ip", "-n", site.router, "link", "set", "wan", "up")
            sh("ip", "-n", site.router, "route", "add", "default", "via", f"100.64.{i}.1")
            self._load(site.router, ruleset("portrestricted", f"100.64.{i}.2", lan_net))
        else:
            site.router = self._router(f"r{i}", f"10.{i}.0.1", 24)
            site.public_ip = f"198.18.1.{i}"
            self._inet_port(f"w{i}", site.router, "wan", site.public_ip)
            self._load(site.router, ruleset(kind, site.public_ip, lan_net, hairpin))
            if kind == "short":
                self._sysctl(site.router, "net.netfilter.nf_conntrack_udp_timeout", SHORT_TIMEOUT)
                self._sysctl(site.router, "net.netfilter.nf_conntrack_udp_timeout_stream", SHORT_TIMEOUT)
        for k in range(hosts):
            ns = self._ns(f"h{i}{letters[k]}")
            addr = f"10.{i}.0.{10 + k}"
            self._veth(site.router, f"h{letters[k]}", ns, "eth0")
            sh("ip", "-n", site.router, "link", "set", f"h{letters[k]}", "master", "lan", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.{i}.0.1")
            site.hosts.append(Host(site, ns, addr, letters[k]))
            if ipv6:
                if k == 0:
                    self._site_v6(site, v6_firewall)
                self._host_v6(site, site.hosts[-1], k)
        if kind in UPNP_KINDS:
            self._start_miniupnpd(site)
        return site

    def renumber(self, site):
        """Site.renumber(): see there."""
        if site.kind == "public":
            raise ValueError("a public site has no router to renumber")
        self._renumbered += 1
        if RENUMBER_BASE + self._renumbered > 254:
            raise ValueError("too many renumbers")
        old, new = site.public_ip, f"198.18.1.{RENUMBER_BASE + self._renumbered}"
        ns = site.wan_router
        # Old address first: the new one would otherwise be a secondary of the same subnet and
        # go with it. Removing it also makes masquerade drop the flows it translated.
        sh("ip", "-n", ns, "addr", "del", f"{old}/{INET_PLEN}", "dev", "wan")
        sh("ip", "-n", ns, "addr", "add", f"{new}/{INET_PLEN}", "dev", "wan")
        sh("nft", "delete", "table", "ip", "snl", ns=ns)
        if site.kind == "cgnat":
            self._load(ns, ruleset("portrestricted", new, f"100.64.{site.index}.0/24"))
        else:
            self._load(ns, ruleset(site.kind, new, f"10.{site.index}.0.0/24", site.hairpin))
        # snat rules (seq1, eim-range) keep old translations in conntrack: flush them all.
        sh("python3", "-c", CT_FLUSH, ns=ns)
        site.public_ip = new
        return new

    def block_udp(self, site, peer_ip):
        """Context manager: the site's WAN router drops UDP to and from peer_ip (a path that dies
        on the way; the mediator and everything else still get through)."""
        lab = self

        class _Block:
            def __enter__(self):
                ns = site.wan_router
                text = ("table ip snlblock {\n  chain drops {\n"
                        "    type filter hook forward priority -10; policy accept;\n"
                        f"    ip daddr {peer_ip} meta l4proto udp drop\n"
                        f"    ip saddr {peer_ip} meta l4proto udp drop\n  }}\n}}\n")
                sh("nft", "-f", "-", ns=ns, input=text)
                return self

            def __exit__(self, et, ev, tb):
                sh("nft", "delete", "table", "ip", "snlblock", ns=site.wan_router, check=False)
                return False

        return _Block()

    def _start_miniupnpd(self, site):
        """miniupnpd in the router, once its STUN check passed and its HTTP port answers."""
        self.start_reflector()
        conf = os.path.join(self.dir, f"miniupnpd-{site.index}.conf")
        with open(conf, "w") as f:
            f.write(miniupnpd_conf(site))
        log = os.path.join(self.dir, f"miniupnpd-{site.index}.log")
        p = self.spawn(site.router, [MINIUPNPD, "-d", "-f", conf, "-P",
                                     os.path.join(self.dir, f"miniupnpd-{site.index}.pid")], log)
        code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1],int(sys.argv[2])),1).close()\n"
                "except OSError: sys.exit(1)")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and p.poll() is None:
            if sh("python3", "-c", code, f"10.{site.index}.0.1", UPNP_HTTP_PORT, ns=site.hosts[0].ns,
                  check=False).returncode == 0:
                # HTTP listens after the STUN check: its answers need no way in any more.
                sh("nft", "flush", "chain", "ip", "snl", "stun", ns=site.router)
                site.miniupnpd = p
                return
            time.sleep(0.1)
        raise RuntimeError(f"miniupnpd did not start in site {site.index} (see {log})")

    # processes
    def spawn(self, ns, argv, log):
        fh = open(log, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + [str(a) for a in argv], stdout=fh,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        fh.close()
        self.procs.append(p)
        return p

    def _tcp_ok(self, host, port):
        code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1],int(sys.argv[2])),1).close()\n"
                "except OSError: sys.exit(1)")
        return sh("python3", "-c", code, host, port, ns=self.inet, check=False).returncode == 0

    def relay_key(self, name):
        """Makes standalone relay `name`'s static key (its STATE/relay.key) and returns the public
        half in hex, for the mediator's --relay-allow (call before start_server)."""
        if name not in self.relays:
            state = os.path.join(self.dir, f"relay-{name}")
            os.makedirs(state, exist_ok=True)
            priv = os.urandom(32)
            with open(os.path.join(state, "relay.key"), "w") as f:
                f.write(priv.hex() + "\n")
            os.chmod(os.path.join(state, "relay.key"), 0o600)
            k = len(self.relays) + 1
            self.relays[name] = dict(index=k, addr=f"{RELAY_NET}{k}", state=state,
                                     key=x25519_public(priv).hex(), proc=None, wire=None)
        return self.relays[name]["key"]

    def _delaywire(self, ta, tb, delay_ms, ns):
        """A delaywire of delay_ms each way between TUN ta (left in the internet) and tb (moved
        into ns); returns its process."""
        wire = subprocess.Popen(["ip", "netns", "exec", self.inet,
                                 harness.binary(os.path.join("tests", "bench", "delaywire")),
                                 "--delay-ms", str(delay_ms), ta, tb],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                preexec_fn=_pdeathsig)
        self.procs.append(wire)
        if wire.stdout.readline().strip() != b"ready":
            raise RuntimeError("delaywire did not start")
        sh("ip", "-n", self.inet, "link", "set", tb, "netns", ns)
        return wire

    def start_relay(self, name, delay_ms=0, site_delays=None):
        """shoal-relay `name` registered with the mediator (whose --relay-allow must hold
        relay_key(name)), at RELAY_NET.k:RELAY_PORT (UDP and TCP) in its own namespace, behind a
        delaywire of delay_ms each way (0: a veth on br0). site_delays ({site: ms}) gives those
        sites a wire of their own to this relay (the internet routes by source address, the
        relay routes its answers back the same way), so the best relay can differ between
        pairs of sites. Returns the relay's address; kill it with kill_relay."""
        self.relay_key(name)
        r = self.relays[name]
        k, addr = r["index"], r["addr"]
        ns = r["ns"] = self._ns(f"y{k}")
        if delay_ms <= 0 and not site_delays:
            self._inet_port(f"y{k}", ns, "eth0", addr)
        else:
            # The wire's two TUN ends start in the internet, one moves to the relay; the
            # internet routes the relay's address to its end and answers ARP for it on br0.
            ta, tb = f"yw{k}a", f"yw{k}b"
            r["wire"] = self._delaywire(ta, tb, delay_ms, ns)
            self._sysctl(self.inet, "net.ipv4.ip_forward", 1)
            self._sysctl(self.inet, "net.ipv4.conf.br0.proxy_arp", 1)
            # Proxy ARP answers after up to 0.8 s by default: that would be the first RTTs.
            self._sysctl(self.inet, "net.ipv4.neigh.br0.proxy_delay", 0)
            sh("ip", "-n", self.inet, "link", "set", ta, "up")
            sh("ip", "-n", self.inet, "route", "add", f"{addr}/32", "dev", ta)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/32", "dev", tb)
            sh("ip", "-n", ns, "link", "set", tb, "up")
            sh("ip", "-n", ns, "route", "add", "default", "dev", tb)
            # Per-site wires: in the internet a rule per site's public address picks a table
            # routing the relay over that site's wire; in the relay a host route sends the
            # answers back over it. Paths are asymmetric to the routers' reverse-path checks.
            for ns_ in (self.inet, ns):
                self._sysctl(ns_, "net.ipv4.conf.all.rp_filter", 0)
                self._sysctl(ns_, "net.ipv4.conf.default.rp_filter", 0)
            for j, (site, ms) in enumerate((site_delays or {}).items(), 1):
                sa_, sb_ = f"yw{k}s{j}a", f"yw{k}s{j}b"
                self._delaywire(sa_, sb_, ms, ns)
                table = str(1000 + 32 * k + j)
                sh("ip", "-n", self.inet, "link", "set", sa_, "up")
                sh("ip", "-n", self.inet, "route", "add", f"{addr}/32", "dev", sa_, "table", table)
                sh("ip", "-n", self.inet, "rule", "add", "from", site.public_ip, "lookup", table)
                sh("ip", "-n", ns, "link", "set", sb_, "up")
                sh("ip", "-n", ns, "route", "add", f"{site.public_ip}/32", "dev", sb_)
        log = os.path.join(self.dir, f"relay-{name}.log")
        r["proc"] = self.spawn(ns, [harness.binary("shoal-relay"), "--listen",
                                    f"{addr}:{RELAY_PORT}", "--state", r["state"], "--server",
                                    self.server.url, "--name", name, "-v"], log)
        return addr

    def block_relay_udp(self, name):
        """Context manager: relay `name` gets no UDP (its mediator connection stays up): a relay
        that stops answering without the mediator noticing."""
        ns = self.relays[name]["ns"]

        class _Block:
            def __enter__(self):
                sh("nft", "-f", "-", ns=ns, input="table ip snlrelayblock {\n  chain in {\n"
                   "    type filter hook input priority -10; policy accept;\n"
                   "    meta l4proto udp drop\n  }\n}\n")
                return self

            def __exit__(self, et, ev, tb):
                sh("nft", "delete", "table", "ip", "snlrelayblock", ns=ns, check=False)
                return False

        return _Block()

    def kill_relay(self, name):
        """The relay dies at once (SIGKILL: no goodbye to the mediator or the nodes)."""
        p = self.relays[name]["proc"]
        p.kill()
        p.wait(timeout=5)

    def start_server(self, two_addresses=True, extra=(), port=MED_PORT, name="server"):
        """shoal-server in the internet on MED_A:port and (when the build has multi-listen)
        MED_B:port (UDP on port..port+3 too). Sets self.multi_listen and self.server (the
        daemons' default). extra: more options (e.g. --relay-allow KEY). name: its state
        directory and log, for a second instance."""
        state = os.path.join(self.dir, name)
        os.makedirs(state, exist_ok=True)
        url_file = os.path.join(state, "url")
        log = os.path.join(self.dir, name + ".log")
        attempts = [[MED_A, MED_B], [MED_A]] if two_addresses else [[MED_A]]
        for addrs in attempts:
            if os.path.exists(url_file):
                os.unlink(url_file)
            argv = [harness.binary("shoal-server")]
            for a in addrs:
                argv += ["--listen", f"{a}:{port}"]
            argv += ["--state", state, "--pwhash-fast", "-v"] + [str(x) for x in extra]
            p = self.spawn(self.inet, argv, log)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None and not (
                    os.path.exists(url_file) and open(url_file).read().strip()):
                time.sleep(0.05)
            if p.poll() is None and os.path.exists(url_file):
                if all(self._tcp_ok(a, port) for a in addrs):
                    break
            self._stop(p)
        else:
            raise RuntimeError(f"shoal-server did not start (see {log})")
        url = open(url_file).read().strip()
        self.multi_listen = len(addrs) == 2
        self.server = harness.Server(p, url, port, state)
        return self.server

    def start_daemon(self, host, nick, socks="off", wait_connected=True, extra=(), server=None):
        """shoald on `host` (a Host), as harness.Daemon. socks: "off" or a port on the host's
        own 127.0.0.1. server: the harness.Server to use (default: the last one started)."""
        name = nick
        state = os.path.join(self.dir, name)
        os.makedirs(state, exist_ok=True)
        ctl = os.path.join(state, "ctl.sock")
        sock_arg = "off" if socks == "off" else f"127.0.0.1:{socks}"
        # Port mapping is on (the harness turns it off for tests outside the lab).
        argv = ["env", "SHOAL_PORTMAP=on",
                harness.binary("shoald"), "--server", (server or self.server).url, "--state", state,
                "--control", ctl, "--socks", sock_arg, "--nick", nick, "-v"] + list(extra)
        p = self.spawn(host.ns, argv, os.path.join(state, "shoald.log"))
        d = harness.Daemon(self, name, p, ctl, None if socks == "off" else socks, state)
        d.host = host
        self.daemons[name] = d
        if wait_connected:
            harness.wait_until(lambda: d.status().get("server") == "connected" and d.status().get("address"),
                               15, what=f"{name} connected")
        else:
            harness.wait_until(lambda: os.path.exists(ctl) and d.cli("status", check=False).returncode == 0,
                               10, what=f"{name} control socket")
        return d

    def start_reflector(self):
        if self.reflector:
            return
        specs = [f"{a}:{p}" for a in (REFL_A, REFL_B) for p in REFL_PORTS]
        log = os.path.join(self.dir, "reflector.log")
        p = subprocess.Popen(["ip", "netns", "exec", self.inet, "python3", "-u", "-c", REFLECTOR] + specs,
                             stdout=subprocess.PIPE, stderr=open(log, "ab"), stdin=subprocess.DEVNULL,
                             preexec_fn=_pdeathsig)
        self.procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 10)
        if not ready or p.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"reflector did not start (see {log})")
        self.reflector = p

    def probe(self, host, lifetime=(), hairpin=True, peer=None, listen=0.0, timeout=40):
        """Run the plain-socket NAT probe on `host`; returns its JSON result."""
        self.start_reflector()
        cfg = dict(targets=[[REFL_A, 3478], [REFL_A, 3479], [REFL_B, 3478], [REFL_B, 3479]],
                   lifetime=list(lifetime), hairpin=hairpin, peer=peer, listen=listen)
        r = sh("python3", "-c", PROBE, json.dumps(cfg), ns=host.ns, timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"probe on {host}: {r.stderr.strip()}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def _stop(self, p, grace=3):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def stop_daemon(self, d):
        self._stop(d.proc)

    def dump_logs(self, lines=60):
        for root, _, files in os.walk(self.dir):
            for f in sorted(files):
                if f.endswith(".log"):
                    path = os.path.join(root, f)
                    with open(path, errors="replace") as fh:
                        tail = fh.readlines()[-lines:]
                    print(f"----- {path} (last {lines} lines)")
                    sys.stdout.writelines(tail)

    def close(self, failed=False):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 4
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
            if p.stdout:
                p.stdout.close()
        self.procs = []
        for ns in reversed(self.namespaces):
            _ns_destroy(ns)
        self.namespaces = []
        if failed and self.keep:
            self.dump_logs()
            print(f"natlab: logs kept in {self.dir}")
        elif os.environ.get("NATLAB_KEEP"):
            print(f"natlab: logs kept in {self.dir} (NATLAB_KEEP)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# Deletes every IPv4 conntrack entry of the namespace it runs in: one ctnetlink
# IPCTNL_MSG_CT_DELETE without attributes (what `conntrack -F` sends; the tool is not needed).
CT_FLUSH = r"""
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)      # NETLINK_NETFILTER
s.bind((0, 0))
body = struct.pack("=BBH", socket.AF_INET, 0, 0)                # nfgenmsg
hdr = struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 1 | 4, 1, 0)  # CTNETLINK DELETE, ack
s.send(hdr + body)
data = s.recv(4096)
if struct.unpack("=H", data[4:6])[0] == 2 and struct.unpack("=i", data[16:20])[0] != 0:
    sys.exit("conntrack flush failed: %d" % struct.unpack("=i", data[16:20])[0])
"""

# --- the plain-socket probe (no shoal) ----------------------------------------------------

REFLECTOR = r"""
import json, select, socket, struct, sys, threading
socks = []
for spec in sys.argv[1:]:
    h, p = spec.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((h, int(p)))
    socks.append(s)
print("ready", flush=True)
# socks: A:3478 A:3479 B:3478 B:3479. Every datagram is answered from the socket it reached with
# the source it came from. op "test" (on A:3478) also sends kind 1 from A:3479 (same address,
# other port) and kind 2 from B:3478 (other address); op "later" answers again after a delay.
# It is also a STUN server (RFC 5389 Binding with RFC 3489's CHANGE-REQUEST), for the miniupnpd of
# `upnp` routers, which checks with STUN that its WAN address takes packets from anyone.
def stun(i, data, addr):
    flags = 0
    off = 20
    while off + 4 <= len(data):
        t, n = struct.unpack("!HH", data[off:off + 4])
        if t == 3 and n == 4:
            flags = data[off + 7]
        off += 4 + n + (-n % 4)
    j = i ^ (2 if flags & 4 else 0) ^ (1 if flags & 2 else 0)
    ip = struct.unpack("!I", socket.inet_aton(addr[0]))[0]
    xma = struct.pack("!HHBBHI", 0x20, 8, 0, 1, addr[1] ^ 0x2112, ip ^ 0x2112A442)
    socks[j].sendto(struct.pack("!HH", 0x0101, len(xma)) + data[4:20] + xma, addr)

while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        try:
            data, addr = s.recvfrom(2048)
            if len(data) >= 20 and data[:2] == b"\x00\x01" and data[4:8] == b"\x21\x12\xa4\x42":
                stun(socks.index(s), data, addr)
                continue
            m = json.loads(data)
        except (OSError, ValueError):
            continue
        ep = "%s:%d" % addr
        s.sendto(json.dumps({"seen": ep, "id": m.get("id")}).encode(), addr)
        if m.get("op") == "test":
            socks[1].sendto(json.dumps({"kind": 1, "id": m.get("id")}).encode(), addr)
            socks[2].sendto(json.dumps({"kind": 2, "id": m.get("id")}).encode(), addr)
        elif m.get("op") == "later":
            d = min(float(m.get("delay", 1)), 60)
            threading.Timer(d, s.sendto, (json.dumps({"kind": 3, "id": m.get("id")}).encode(), addr)).start()
"""

PROBE = r"""
import json, socket, sys, time, os
cfg = json.loads(sys.argv[1])
T = [tuple(t) for t in cfg["targets"]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
local = s.getsockname()[1]
res = {"local_port": local}
inbox = []

def recv_until(deadline, want=None):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            data, addr = s.recvfrom(2048)
        except (socket.timeout, OSError):
            continue
        try:
            m = json.loads(data)
        except ValueError:
            continue
        m["_from"] = "%s:%d" % addr
        inbox.append(m)
        if want and want(m):
            return m

def ask(target, op, ident, tries=3, wait=0.4):
    for _ in range(tries):
        s.sendto(json.dumps({"op": op, "id": ident}).encode(), target)
        m = recv_until(time.monotonic() + wait, lambda m: m.get("id") == ident and "seen" in m)
        if m:
            return m["seen"]
    return None

o0 = ask(T[0], "test", "t0", tries=4)
if o0 is None:
    res["udp"] = "blocked"
    print(json.dumps(res))
    sys.exit(0)
res["udp"] = "ok"
recv_until(time.monotonic() + 0.5)
kinds = sorted({m["kind"] for m in inbox if m.get("id") == "t0" and "kind" in m})
res["filter_kinds"] = kinds
res["filtering"] = "eif" if 2 in kinds else "adf" if 1 in kinds else "apdf"
obs = [o0]
for i in range(1, len(T)):
    obs.append(ask(T[i], "probe", "p%d" % i))
res["observed"] = obs
ips = [o.split(":")[0] if o else None for o in obs]
ports = [int(o.split(":")[1]) if o else None for o in obs]
res["public"] = o0
if None in obs:
    res["mapping"] = "lost"
elif len(set(obs)) == 1:
    res["mapping"] = "eim"
    res["ports"] = "preserved" if ports[0] == local else "fixed"
else:
    same_addr = obs[0] == obs[1] and obs[2] == obs[3]
    res["mapping"] = "adm" if same_addr and obs[0] != obs[2] else "apdm"
    news = [ports[0]] + [ports[i] for i in range(1, len(ports)) if obs[i] not in obs[:i]]
    deltas = [(b - a) % 65536 for a, b in zip(news, news[1:])]
    res["deltas"] = deltas
    if deltas and all(1 <= d <= 1024 for d in deltas):
        res["ports"] = "sequential"
        res["step"] = min(deltas)
    else:
        res["ports"] = "random"
if cfg.get("hairpin"):
    h, p = o0.rsplit(":", 1)
    got = None
    for _ in range(3):
        s.sendto(json.dumps({"op": "hairpin", "id": "hp"}).encode(), (h, int(p)))
        got = recv_until(time.monotonic() + 0.3, lambda m: m.get("id") == "hp" and m.get("op") == "hairpin")
        if got:
            break
    res["hairpin"] = "yes" if got else "no"
if cfg.get("peer"):
    h, p = cfg["peer"].rsplit(":", 1)
    for _ in range(5):
        s.sendto(json.dumps({"op": "hello", "id": "peer", "from_local": local}).encode(), (h, int(p)))
        time.sleep(0.05)
life = {}
for d in cfg.get("lifetime", []):
    ident = "l%s" % d
    s.sendto(json.dumps({"op": "later", "id": ident, "delay": d}).encode(), T[0])
    got = recv_until(time.monotonic() + d + 1.5, lambda m: m.get("id") == ident and m.get("kind") == 3)
    life[str(d)] = bool(got)
res["lifetime"] = life
if cfg.get("listen"):
    print(json.dumps(res), flush=True)
    got = recv_until(time.monotonic() + cfg["listen"], lambda m: m.get("id") == "peer")
    res["peer_from"] = got["_from"] if got else None
print(json.dumps(res), flush=True)
"""


# The gateway of an upnp / upnp-igd site answers on the LAN: NAT-PMP's public address (RFC 6886
# 3.2), or an SSDP M-SEARCH for an IGD. Prints the public address or "igd", else nothing.
GATEWAY_PROBE = r"""
import socket, struct, sys
gw, kind = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for _ in range(4):
    try:
        if kind == "upnp":
            s.sendto(b"\x00\x00", (gw, 5351))
            d = s.recv(64)
            if len(d) == 12 and d[1] == 128 and d[2:4] == b"\x00\x00":
                print(socket.inet_ntoa(d[8:12]))
                break
        else:
            s.sendto(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
                     b"MX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n",
                     ("239.255.255.250", 1900))
            if b"InternetGatewayDevice" in s.recv(2048):
                print("igd")
                break
    except OSError:
        pass
"""


# --- self-test ----------------------------------------------------------------------------

def _check_site(lab, site, out):
    """Probe one site's hosts; append (site label, result, problems) to out."""
    kind = site.kind
    label = kind + ("+hairpin" if site.hairpin else "") + (f" x{len(site.hosts)}" if len(site.hosts) > 1 else "")
    problems = []
    try:
        life = (2, SHORT_TIMEOUT + 2) if kind == "short" else ()
        two = len(site.hosts) >= 2
        if two and kind != "udpblock":
            # host a probes, then listens; host b probes and sends to a's public endpoint
            cfg = dict(targets=[[REFL_A, 3478], [REFL_A, 3479], [REFL_B, 3478], [REFL_B, 3479]],
                       lifetime=[], hairpin=True, peer=None, listen=3.0)
            pa = subprocess.Popen(["ip", "netns", "exec", site.hosts[0].ns, "python3", "-c", PROBE,
                                   json.dumps(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                first = pa.stdout.readline()
                ra = json.loads(first)
                rb = lab.probe(site.hosts[1], peer=ra.get("public"))
                out_a, _ = pa.communicate(timeout=10)
                ra = json.loads(out_a.strip().splitlines()[-1])
            finally:
                if pa.poll() is None:
                    pa.kill()
                    pa.wait()
            res = ra
            res["peer_hairpin"] = "yes" if ra.get("peer_from") else "no"
            if rb.get("observed") and ra.get("observed") and rb["public"] == ra["public"]:
                problems.append("two hosts got the same public endpoint")
        else:
            res = lab.probe(site.hosts[0], lifetime=life)
        if res.get("udp") != "blocked" and kind != "public":
            ip = res["public"].split(":")[0]
            if ip != site.public_ip:
                problems.append(f"public address {ip}, want {site.public_ip}")
        if kind == "public" and res.get("udp") == "ok" and res["public"].split(":")[0] != site.hosts[0].addr:
            problems.append("public host is translated")
        problems += nat_mismatches(kind, res)
        if kind in UPNP_KINDS:
            got = site.hosts[0].run("python3", "-c", GATEWAY_PROBE, f"10.{site.index}.0.1", kind,
                                    check=False).stdout.strip()
            want = site.public_ip if kind == "upnp" else "igd"
            res["gateway"] = got or "-"
            if got != want:
                problems.append(f"gateway answered {got or 'nothing'!r} (want {want!r})")
        if kind == "short":
            if not res["lifetime"].get("2"):
                problems.append("binding gone after 2 s")
            if res["lifetime"].get(str(SHORT_TIMEOUT + 2)):
                problems.append(f"binding alive after {SHORT_TIMEOUT + 2} s")
        if res.get("udp") == "ok" and kind != "public":
            want_hp = "yes" if site.hairpin else "no"
            if res.get("hairpin") != want_hp:
                problems.append(f"hairpin={res.get('hairpin')} (want {want_hp})")
            if "peer_hairpin" in res and res["peer_hairpin"] != want_hp:
                problems.append(f"host-to-host hairpin={res['peer_hairpin']} (want {want_hp})")
    except Exception as e:  # noqa: BLE001 - reported as the site's failure
        res = {}
        problems.append(f"probe failed: {e}")
    out.append((site, label, res, problems))


def selftest_sites(lab, sites):
    """Probe every site in parallel; returns [(site, label, result, problems)]."""
    lab.start_reflector()
    out = []
    threads = [threading.Thread(target=_check_site, args=(lab, s, out), daemon=True) for s in sites]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if any(t.is_alive() for t in threads):
        raise RuntimeError("self-test probes did not finish in 60 s")
    return sorted(out, key=lambda x: x[0].index)


def print_selftest(rows):
    print(f"{'site':<26} {'udp':<8} {'mapping':<8} {'ports':<14} {'filter':<7} {'hp self/lan':<11} "
          f"{'public':<22} result")
    for site, label, r, problems in rows:
        ports = r.get("ports", "-") + (f"+{r['step']}" if r.get("ports") == "sequential" else "")
        hp = r.get("hairpin", "-") + ("/" + r["peer_hairpin"] if "peer_hairpin" in r else "")
        extra = ""
        if r.get("gateway"):
            extra = f" gateway {r['gateway']}"
        if site.kind == "short" and r.get("lifetime"):
            extra = " lifetime " + ",".join(f"{k}s:{'up' if v else 'gone'}" for k, v in r["lifetime"].items())
        print(f"{label:<26} {r.get('udp', '-'):<8} {r.get('mapping', '-'):<8} {ports:<14} "
              f"{r.get('filtering', '-'):<7} {hp:<11} {str(r.get('public', '-')):<22} "
              f"{'ok' if not problems else 'FAIL: ' + '; '.join(problems)}{extra}")
    sys.stdout.flush()


def selftest(kinds=None):
    kinds = kinds or list(KINDS)
    for k in [k for k in kinds if kind_unavailable(k)]:
        print(f"natlab selftest: {k} skipped: {kind_unavailable(k)}")
        kinds.remove(k)
    t0 = time.monotonic()
    with Lab("selftest") as lab:
        sites = [lab.add_site(k) for k in kinds]
        if "portrestricted" in kinds:
            sites.append(lab.add_site("portrestricted", hosts=2))
            sites.append(lab.add_site("portrestricted", hosts=2, hairpin=True))
        rows = selftest_sites(lab, sites)
        print_selftest(rows)
    bad = [r for r in rows if r[3]]
    print(f"natlab selftest: {len(rows) - len(bad)} of {len(rows)} sites behave as natlab-notes.md says "
          f"({time.monotonic() - t0:.1f} s)")
    return not bad


def require_root():
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft", "sysctl"):
        if not shutil.which(tool):
            return f"needs {tool}"
    return None


def run_test(main):
    """A lab test's entry point: skipped (exit 77) without root or the tools, else harness.run,
    with the test's wall time printed at its end. A failing test's lab dumps its logs as it
    closes (Lab.close)."""
    why = require_root()
    if why:
        print(f"SKIP: {why}")
        sys.exit(77)

    def timed():
        t0 = time.monotonic()
        main()
        print(f"({time.monotonic() - t0:.1f} s)")
    harness.run(timed)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv):
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    why = require_root()
    if why:
        print(f"natlab: {why}")
        return 77
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "selftest":
        bad = [k for k in argv[1:] if k not in KINDS]
        if bad:
            print(f"unknown NAT type(s): {', '.join(bad)}; known: {', '.join(KINDS)}")
            return 2
        return 0 if selftest(argv[1:]) else 1
    if argv[0] == "cleanup":
        for ns in cleanup_stale(everything="--all" in argv):
            print(f"removed {ns}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
