#!/bin/sh
# Builds every libFuzzer target (tests/fuzz/fuzz_*.c) with clang and runs each for SECONDS over
# its seed corpus (tests/fuzz/corpus/NAME). Any crash, leak or sanitizer report fails.
set -eu
secs=${1:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build-fuzz"
mkdir -p "$dir"
(cd "$dir" && { [ -f Makefile ] || "$top/configure" -q --enable-fuzzing CC=clang; } && make -s -j"$(nproc)" fuzz)
fail=0
for bin in "$dir"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="$top/tests/fuzz/corpus/$name"
  work="$dir/corpus-$name"
  mkdir -p "$work"
  if "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 "$work" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} >"$dir/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/$name.log" | tail -n 1 || true))"
  else
    echo "fuzz: $name FAILED"; tail -n 40 "$dir/$name.log"; fail=1
  fi
done
exit $fail
