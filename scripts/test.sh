#!/bin/bash
# Installs the test dependencies and runs every test: C unit tests (gcc, clang, and an
# ASan+UBSan build; the live runtime test also with runc), the end-to-end tests against the real
# skiffd, crun and a local registry (with the normal and the sanitizer build), and the real-client
# conformance tests (az CLI and the Azure SDK for JavaScript against skiffd). Ends with one
# closing line.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/install-deps.sh --test || { echo "test run: dependency install failed"; exit 1; }
export SKIFF_FIXTURES=${SKIFF_FIXTURES:-$root/../shared/fixtures}
results=()
fail=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then results+=("PASS $name"); else results+=("FAIL $name"); fail=$((fail + 1)); fi
}
step "build (gcc)" make -j"$(nproc)" all
step "build (clang)" make -j"$(nproc)" CC=clang BUILD=build-clang all
step "build (asan+ubsan)" make -j"$(nproc)" SAN=1 all
step "format check" bash -c 'clang-format --dry-run --Werror $(git ls-files "src/*.c" "src/*.h") 2>&1 | head -20; exit ${PIPESTATUS[0]}'
# The registry the image and end-to-end tests pull from.
bash "$SKIFF_FIXTURES/registry.sh" status >/dev/null 2>&1 || bash "$SKIFF_FIXTURES/registry.sh" start >/dev/null
export SKIFF_TEST_REGISTRY=127.0.0.1:5000
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp
step "unit tests (gcc)" tests/unit/run.sh build/tests
step "unit tests (asan+ubsan)" tests/unit/run.sh build-san/tests
# The live runtime test once more with runc, the other runtime skiffd supports (--runtime).
step "runtime live test (runc)" env SKIFF_CRUN=/usr/sbin/runc build/tests/test_runtime_live
step "end-to-end (gcc)" env SKIFF_BUILD=$root/build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e
# Real Azure clients (az CLI, the JS SDK) against skiffd over HTTPS.
step "conformance (gcc)" env SKIFF_BUILD=$root/build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/conformance
step "end-to-end (asan+ubsan)" env SKIFF_BUILD=$root/build-san SKIFF_E2E_QUICK=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e
echo "=== summary"
printf '%s\n' "${results[@]}"
pass=$(( ${#results[@]} - fail ))
echo "test run: $pass passed, $fail failed"
[ $fail -eq 0 ]
