#!/bin/sh
# Installs the Debian packages shoal needs to build and test, only those missing, retrying with
# backoff while the archive is unreachable. Needs root (or sudo) only when something is missing.
# miniupnpd-nftables is only for the NAT lab's `upnp` routers (tests/natlab), which skip without it.
# scdoc builds the manual pages; man-db and groff-base render them in make check; debhelper,
# dpkg-dev and lintian build and check the Debian packages (tests/pkg/test_deb.py).
# postgresql and libpq-dev: the mediator's PostgreSQL store (issue 13; tests/integ/pgserver.py).
set -eu
pkgs="build-essential autoconf automake pkg-config libev-dev libsodium-dev uthash-dev
libsqlite3-dev libjansson-dev libmicrohttpd-dev python3 clang iproute2 nftables iperf3 socat curl
tcpdump xz-utils ca-certificates valgrind patch wget netcat-openbsd openssh-server
openssh-client util-linux libc6-dev libminiupnpc-dev libnatpmp-dev miniupnpd-nftables chromium
scdoc man-db groff-base debhelper dpkg-dev lintian passwd postgresql libpq-dev"
[ "${1:-}" = "--print" ] && { echo $pkgs; exit 0; }
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
try=0
until $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends $missing; do
  try=$((try + 1))
  [ $try -ge 6 ] && { echo "deps: could not install:$missing" >&2; exit 1; }
  sleep $((try * try * 5))
done
