#!/bin/bash
# Runs every unit-test binary in the given folder and prints a closing total.
dir=${1:-build/tests}
pass=0; fail=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  echo "$out" | tail -n 20
  p=$(echo "$out" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
  f=$(echo "$out" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  if [ $rc -ne 0 ] && [ "${f:-0}" = 0 ]; then echo "$t exited $rc"; fail=$((fail + 1)); fi
done
echo "unit tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
