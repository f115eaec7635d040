#!/bin/bash
# Runs every skiff benchmark in turn and prints their summaries together at the end.
# Full output of each goes to $BENCH_OUT (default bench/results/<date>/).
# Environment knobs of the single scripts (RUNS, COUNT, DURATION, PULL_ON...) pass through;
# BENCHES="start_latency pull" picks a subset.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
out=${BENCH_OUT:-$dir/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
benches=${BENCHES:-start_latency pull monitor_memory api_get}
failed=()
{
  echo "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "skiff: $(git -C "$dir/.." describe --always --dirty 2>/dev/null || echo unknown)"
  echo "podman: $(podman --version 2>/dev/null || echo none), crun: $(crun --version 2>/dev/null | head -1 || echo none)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/host.txt"
for b in $benches; do
  echo "=== $b ($(date +%H:%M:%S)) -> $out/$b.log"
  mkdir -p "$out/skiffd-logs-$b"
  if BENCH_KEEP_LOGS=$out/skiffd-logs-$b bash "$dir/$b.sh" >"$out/$b.log" 2>&1; then
    sed -n '/^SUMMARY/,/^-----/p' "$out/$b.log"
  else
    echo "$b FAILED (exit $?); last lines of $out/$b.log:"
    tail -20 "$out/$b.log"
  fi
done
echo
echo "################ skiff benchmark summary ($(date -Iseconds)) ################"
cat "$out/host.txt"
for b in $benches; do
  echo
  if grep -q '^SUMMARY' "$out/$b.log" 2>/dev/null; then
    sed -n '/^SUMMARY/,/^-----/p' "$out/$b.log" | sed '$d'
  else
    echo "$b: FAILED, no summary; see $out/$b.log"
    tail -15 "$out/$b.log" 2>/dev/null || true
    failed+=("$b")
  fi
done
echo
echo "full logs: $out"
echo "PASS/MISS lines: $(cat "$out"/*.log 2>/dev/null | grep -c ': PASS') PASS, $(cat "$out"/*.log 2>/dev/null | grep -c ': MISS') MISS"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
