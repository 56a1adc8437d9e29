#!/bin/sh
# Sets up, builds and runs the whole test suite: unit and integration tests in a normal build,
# again under ASan+UBSan, and every libFuzzer target for a short run over its seed corpus.
# Ends with one line "check: N passed, N failed".
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/deps.sh
[ -f lwip-src/src/core/tcp_in.c ] || sh scripts/fetch-lwip.sh lwip-src
[ -x configure ] || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0

summarize() {  # builddir
  p=$(sed -n 's/^# PASS: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
  f=$(sed -n 's/^# FAIL: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
  e=$(sed -n 's/^# ERROR: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
  total_pass=$((total_pass + ${p:-0}))
  total_fail=$((total_fail + ${f:-0} + ${e:-0}))
}

run_build() {  # name, configure args...
  name=$1; shift
  dir="$top/build-$name"
  mkdir -p "$dir"
  (cd "$dir" && { [ -f Makefile ] || "$top/configure" -q "$@"; } && make -s -j"$jobs")
  status=0
  (cd "$dir" && make -s -j"$jobs" check) || status=$?
  summarize "$dir"
  if [ $status -ne 0 ]; then
    for log in $(grep -l -E '^(FAIL|ERROR)' "$dir"/tests/*/*.log "$dir"/tests/*.log 2>/dev/null); do
      echo "----- $log"; tail -n 60 "$log"
      # A Python test's summary of failed checks sits above its dumped logs: repeat it last.
      grep -E '^(FAIL |   failed: )' "$log" | head -n 20 | sed "s|^|$(basename "$log"): |"
    done
  fi
  return $status
}

valgrind_units() {  # every C unit test of the plain build under valgrind's memcheck
  command -v valgrind >/dev/null || { echo "valgrind: not installed, skipped"; return 0; }
  vfail=0
  for t in "$top"/build-plain/tests/unit/test_*; do
    [ -x "$t" ] || continue
    # From the build directory, as `make check` runs them (some start ./shoal-server).
    if (cd "$top/build-plain" && valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite "$t") >"$t.valgrind.log" 2>&1; then
      total_pass=$((total_pass + 1))
    else
      echo "valgrind: $(basename "$t") FAILED"; tail -n 40 "$t.valgrind.log"
      total_fail=$((total_fail + 1)); vfail=1
    fi
  done
  return $vfail
}

package_checks() {  # the tarball and the Debian packages, from the plain build
  log="$top/build-plain/distcheck.log"
  # The tarball configures, builds, installs and uninstalls on its own; its make check runs a
  # few quick tests only (the whole suite ran above in this build).
  if (cd "$top/build-plain" && make -j"$jobs" distcheck \
      TESTS='tests/integ/test_manpages.py tests/unit/test_cli_args tests/unit/test_wire') \
      >"$log" 2>&1; then
    echo "distcheck: passed"; total_pass=$((total_pass + 1))
  else
    echo "distcheck: FAILED"; tail -n 60 "$log"; total_fail=$((total_fail + 1)); prc=1
  fi
  # Build the .debs, lint, install them here and run the README's first run from them.
  log="$top/build-plain/test_deb.log"
  if python3 tests/pkg/test_deb.py "$top/build-plain" "$top" >"$log" 2>&1; then
    grep -E '^\[|^SKIP|^test_deb' "$log"; total_pass=$((total_pass + 1))
  else
    echo "test_deb: FAILED"; tail -n 80 "$log"; total_fail=$((total_fail + 1)); prc=1
  fi
  return ${prc:-0}
}

rc=0
run_build plain || rc=1
[ "${SHOAL_SKIP_VALGRIND:-0}" = 1 ] || valgrind_units || rc=1
[ "${SHOAL_SKIP_PACKAGE:-0}" = 1 ] || package_checks || rc=1
if [ "${SHOAL_SKIP_SANITIZERS:-0}" != 1 ]; then
  NATLAB_RELAY_MB=20 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_build asan --enable-sanitizers CC=clang || rc=1
fi
if [ "${SHOAL_SKIP_FUZZ:-0}" != 1 ]; then
  sh scripts/fuzz.sh "${SHOAL_FUZZ_SECONDS:-15}" && total_pass=$((total_pass + 1)) || { rc=1; total_fail=$((total_fail + 1)); }
fi
echo "check: $total_pass passed, $total_fail failed"
exit $rc
