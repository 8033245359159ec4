#!/usr/bin/env bash
# Runs ktm's libFuzzer targets (clang 14, ASan+UBSan).
#   tools/fuzz.sh --short        each target for $KTM_FUZZ_RUNS runs (default 20000), seed 1: CI
#   tools/fuzz.sh --runs N       each target for N executions (10000000 for the long run)
#   tools/fuzz.sh --time S       each target for S seconds
# Exits non-zero when a target finds a crash; the reproducer is kept under
# $KTM_FUZZ_OUT (default /tmp/ktm-fuzz), with the executions counted in its log.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${KTM_FUZZ_RUNS:-20000}
extra=()
case "${1:---short}" in
  --short) ;;
  --runs) runs=$2 ;;
  --time) runs=-1; extra+=("-max_total_time=$2") ;;
  *) echo "usage: $0 [--short | --runs N | --time S]" >&2; exit 2 ;;
esac

out=${KTM_FUZZ_OUT:-/tmp/ktm-fuzz}
mkdir -p "$out"
targets=$(bazel query 'attr(tags, "fuzzer", //tests/fuzz:*)' 2>/dev/null)
[[ -z $targets ]] && { echo "no fuzz targets"; exit 0; }
bazel build --config=fuzz $targets >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
bin=$(readlink -f bazel-bin)
status=0
for t in $targets; do
  name=${t##*:}
  corpus="$out/$name-corpus"
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$name
  args=(-runs="$runs" -seed=1 -max_len=65536 -artifact_prefix="$out/$name-" -print_final_stats=1 "${extra[@]}" "$corpus")
  [[ -d $seeds ]] && args+=("$seeds")
  echo "fuzz $name: ${args[*]}"
  if "$bin/tests/fuzz/$name" "${args[@]}" >"$out/$name.log" 2>&1; then
    echo "fuzz $name: clean, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$out/$name.log" | grep -o '[0-9]*$') executions"
  else
    echo "fuzz $name: FAILED (see $out/$name.log)"; tail -30 "$out/$name.log"; status=1
  fi
done
exit $status
