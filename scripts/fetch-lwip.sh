#!/bin/sh
# Fetch lwIP's source from Debian's `lwip` source package into DEST (default: lwip-src).
# Needs no root: apt runs with a private state directory and deb-src entries derived from the
# Debian archives this machine's apt already uses, so the system configuration is not touched.
# Our own fixes (netstack/patches) are applied at build time, not here: DEST stays pristine.
set -eu
dest=${1:-lwip-src}
[ -f "$dest/src/core/tcp_in.c" ] && { echo "lwip: source already at $dest"; exit 0; }
command -v apt-get >/dev/null || { echo "lwip: apt-get not found; pass --with-lwip-src=DIR to configure" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-lwip.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/src"

# Turn every Debian main archive (a URI whose path ends in /debian) into a deb-src entry.
n=0
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  awk -v RS= -v ORS='\n\n' '/URIs:[^\n]*\/debian\/?(\n|$)/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f" \
    > "$work/parts/$n.sources"
  n=$((n + 1))
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  sed -n 's#^deb \(.*/debian/\{0,1\} .*\)$#deb-src \1#p' "$f" > "$work/parts/$n.list"
  n=$((n + 1))
done
: > "$work/sources.list"

apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts" \
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Debug::NoLocking=1 \
    -o APT::Sandbox::User="$(id -un)" "$@"
}

# Archives can be briefly unreachable: retry with backoff.
try=0
until apt_private update >"$work/update.log" 2>&1 && (cd "$work/src" && apt_private source --download-only lwip >"$work/source.log" 2>&1); do
  try=$((try + 1))
  if [ $try -ge 5 ]; then
    cat "$work/update.log" "$work/source.log" 2>/dev/null >&2
    echo "lwip: could not download Debian's lwip source package" >&2
    exit 1
  fi
  sleep $((try * try * 3))
done

orig=$(ls "$work/src"/lwip_*.orig.tar.* | head -n 1)
mkdir -p "$work/x"
tar -xf "$orig" -C "$work/x"
top=$(ls "$work/x" | head -n 1)
rm -rf "$dest"
mv "$work/x/$top" "$dest"
echo "lwip: $(basename "$orig") extracted to $dest"
