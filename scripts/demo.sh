#!/bin/sh
# Sets up and builds shoal, then runs the main job on this machine with embedded defaults: a
# mediator with its SQLite store and three unprivileged daemons (alice, bob, carol), joins them
# into one network and shows them talking: membership, paths, pings, and a web page served by bob
# fetched by alice over the encrypted overlay. Pass --keep to leave everything running.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
keep=0
[ "${1:-}" = "--keep" ] && keep=1
sh scripts/deps.sh
[ -f lwip-src/src/core/tcp_in.c ] || sh scripts/fetch-lwip.sh lwip-src
[ -x configure ] || autoreconf -fi
b="$top/build-plain"
mkdir -p "$b"
(cd "$b" && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)")
bin() { for d in "$b" "$b/server" "$b/daemon" "$b/cli"; do [ -x "$d/$1" ] && { echo "$d/$1"; return; }; done; }
SERVER=$(bin shoal-server); SHOALD=$(bin shoald); SHOAL=$(bin shoal)

run=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo.XXXXXX")
pids=""
cleanup() { [ $keep = 1 ] || { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$run"; }; }
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$SERVER" --listen "127.0.0.1:$port" --state "$run/mediator" >"$run/mediator.log" 2>&1 &
pids="$pids $!"
i=0; while [ ! -s "$run/mediator/url" ]; do i=$((i+1)); [ $i -gt 100 ] && { cat "$run/mediator.log"; exit 1; }; sleep 0.1; done
url=$(cat "$run/mediator/url")
echo "== mediator listening: $url (state: $run/mediator)"

# The three daemons talk over loopback: no need to ask this machine's router for port mappings.
export SHOAL_PORTMAP=off
n=0
for who in alice bob carol; do
  n=$((n+1))
  sp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$SHOALD" --server "$url" --state "$run/$who" --control "$run/$who.sock" --socks "127.0.0.1:$sp" \
    --nick "$who" >"$run/$who.log" 2>&1 &
  pids="$pids $!"
  echo "$sp" > "$run/$who.socks"
done
sh_() { who=$1; shift; "$SHOAL" --control "$run/$who.sock" "$@"; }
for who in alice bob carol; do
  i=0; until sh_ "$who" status >/dev/null 2>&1 && sh_ "$who" --json status | grep -q '"connected"'; do
    i=$((i+1)); [ $i -gt 100 ] && { cat "$run/$who.log"; exit 1; }; sleep 0.1; done
done
echo "== three daemons up"
sh_ alice create demo-lan --password fish
sh_ bob join demo-lan --password fish
sh_ carol join demo-lan --password fish
sleep 1.5
echo "== alice's view"
sh_ alice list
echo "== alice pings bob and carol"
sh_ alice ping bob
sh_ alice ping carol

www=$(mktemp -d "$run/www.XXXXXX")
echo "hello from bob's web server, over shoal" > "$www/index.html"
hp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$www" && exec python3 -m http.server "$hp" --bind 127.0.0.1 >"$run/http.log" 2>&1) &
pids="$pids $!"
sleep 0.5
sh_ bob expose "$hp"
lp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sh_ alice forward "$lp" "bob:$hp"
echo "== alice fetches http://bob:$hp/ through 127.0.0.1:$lp (shoal forward)"
curl -s "http://127.0.0.1:$lp/"
echo "== carol fetches it through her SOCKS5 port, naming the peer by nick (curl --socks5-hostname)"
curl -s --socks5-hostname "127.0.0.1:$(cat "$run/carol.socks")" "http://bob:$hp/"
hp2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$www" && exec "$SHOAL" --control "$run/bob.sock" run -- python3 -m http.server "$hp2" >"$run/http2.log" 2>&1) &
pids="$pids $!"
sleep 1
echo "== unmodified programs on the virtual LAN: bob runs 'shoal run -- python3 -m http.server $hp2',"
echo "   carol runs 'shoal run -- curl http://bob:$hp2/' (the shim resolves the nick, connects to 5.x)"
sh_ carol run -- curl -s "http://bob:$hp2/"
tail -n 1 "$run/http2.log"
echo "== bob's status"
sh_ bob status
if [ $keep = 1 ]; then
  echo "== still running; control sockets in $run (shoal --control $run/alice.sock list)"
fi
