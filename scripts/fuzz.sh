#!/usr/bin/env bash
# Runs every libFuzzer target in build/fuzz/fuzz (built by `make VARIANT=fuzz B=build/fuzz
# fuzz-bins`) for N seconds each (default 20), starting from the committed seed corpus in
# tests/fuzz/corpus/<target>. With FUZZ_SEED set (make test's smoke run) each target's
# exploration is fixed: that seed and at most FUZZ_RUNS inputs, so a machine slower than
# ours explores a prefix of what `scripts/fuzz.sh --verify` checked here, and CI never
# turns red on a new random path; `make fuzz` leaves the seed random to find new ones.
# Any sanitizer report (UBSan included) or failed check is a
# crash: the run fails and leaves the reproducer in build/fuzz/artifacts/.
set -euo pipefail
verify=0
if [ "${1:-}" = "--verify" ]; then verify=1; shift; fi
secs=${1:-20}
# --verify: the fixed exploration from an empty corpus, as a clean clone starts, no time cap
if [ $verify = 1 ]; then secs=100000; fi
extra=()
if [ -n "${FUZZ_SEED:-}" ]; then extra+=(-seed="$FUZZ_SEED" -runs="${FUZZ_RUNS:-30000}"); fi
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mkdir -p build/fuzz/artifacts
# UBSan findings are recoverable in the fuzz build; make them fatal so they count.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
shopt -s nullglob
targets=()
for t in build/fuzz/fuzz/fuzz_*; do
  [ -x "$t" ] && [ -f "$t" ] && targets+=("$t")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets built"; exit 0
fi
for t in "${targets[@]}"; do
  name=$(basename "$t")
  seeds="tests/fuzz/corpus/$name"
  work="build/fuzz/corpus-$name"
  if [ $verify = 1 ]; then work="build/fuzz/verify-$name"; rm -rf "$work"; fi
  mkdir -p "$work"
  echo "== fuzz $name for ${secs}s"
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  if ! "$t" -max_total_time="$secs" -print_final_stats=0 -timeout=10 -rss_limit_mb=2048 "${extra[@]}" \
       -artifact_prefix=build/fuzz/artifacts/"$name"- "${dirs[@]}" > "build/fuzz/$name.log" 2>&1; then
    tail -n 60 "build/fuzz/$name.log"
    echo "fuzz: $name found a failure (reproducer in build/fuzz/artifacts/)"
    exit 1
  fi
  tail -n 2 "build/fuzz/$name.log"
done
