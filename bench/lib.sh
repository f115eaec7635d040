# shellcheck shell=bash
# Shared helpers for the skiff benchmarks. Source it from a bench script:
#   . "$(dirname "$0")/lib.sh"
# It sets `set -euo pipefail`, installs missing tools with apt-get, makes sure the fixture
# registry runs, starts private skiffd instances on free ports in temp data folders, and
# installs one EXIT trap that deletes every group those instances hold, stops them, kills
# leftover monitors (by pid, only those of our own data folders) and removes temp folders.
#
# Everything talks to 127.0.0.1 only.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIFF_ROOT=$(cd "$BENCH_DIR/.." && pwd)
SKIFF_BUILD=${SKIFF_BUILD:-$SKIFF_ROOT/build}
FIXTURES=${SKIFF_FIXTURES:-$(cd "$SKIFF_ROOT/.." && pwd)/shared/fixtures}
REGISTRY=${SKIFF_BENCH_REGISTRY:-127.0.0.1:5000}
OCIFIX_IMAGES=${OCIFIX_IMAGES:-${TMPDIR:-/tmp}/ocifix-images}
PY=/usr/bin/python3
PYHELP="$BENCH_DIR/skiffbench.py"
# podman flags this host needs (no CAP_SYS_RESOURCE, nofile hard limit 20000; see fixtures README)
PODMAN_RUN_FLAGS=(--network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- tools -------------------------------------------------------------------------------
_apt_updated=0
# need CMD [DEBIAN-PACKAGE]: installs the package quietly when CMD is missing
need() {
  local cmd=$1 pkg=${2:-$1}
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$cmd missing and not root: apt-get install $pkg"
  log "installing $pkg (for $cmd)"
  if [ $_apt_updated = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
    die "apt-get install $pkg failed"
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $pkg"
}

need_common() {
  [ "$(id -u)" = 0 ] || die "run as root (containers need it)"
  need curl curl
  need jq jq
  need python3 python3
  [ -x "$PY" ] || die "$PY missing"
  if [ ! -x "$SKIFF_BUILD/skiffd" ] || [ ! -x "$SKIFF_BUILD/skiff-monitor" ]; then
    log "building skiffd and skiff-monitor"
    make -C "$SKIFF_ROOT" -j"$(nproc)" build/skiffd build/skiff-monitor >/dev/null
  fi
}

need_podman() {
  need podman podman
  need crun crun
  need conmon conmon
  need catatonit catatonit
}

# ---- fixture registry --------------------------------------------------------------------
registry_up() {
  need skopeo skopeo
  need docker-registry docker-registry
  need openssl openssl
  need busybox busybox-static
  if ! bash "$FIXTURES/registry.sh" status >/dev/null 2>&1; then
    log "starting the fixture registry (builds the images first if needed)"
    bash "$FIXTURES/registry.sh" start >/dev/null
  fi
  curl -fsS "http://$REGISTRY/v2/" >/dev/null || die "registry $REGISTRY does not answer"
}

cgroup_hybrid_apply() {
  bash "$FIXTURES/cgroup-hybrid.sh" apply >/dev/null 2>&1 || true
}

# ---- cleanup -----------------------------------------------------------------------------
_cleanups=()
# on_exit 'shell code': run at exit, last registered first
on_exit() { _cleanups+=("$1"); }
_run_cleanups() {
  local rc=$? i
  set +e
  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_cleanups[$i]}" >/dev/null 2>&1
  done
  return $rc
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")
on_exit 'rm -rf "$BENCH_TMP"'

# ---- private skiffd ------------------------------------------------------------------------
# skiffd_start [extra skiffd args]: starts skiffd on a fresh data folder (under
# $SKIFF_DATA_PARENT, default $TMPDIR or /tmp) and a free port.
# Sets SKIFF_DATA SKIFF_PID SKIFF_EP SKIFF_PORT SKIFF_TOKEN SKIFF_SUB SKIFF_LOG.
# One instance at a time per script (call skiffd_stop before starting the next).
skiffd_start() {
  SKIFF_DATA=$(mktemp -d "${SKIFF_DATA_PARENT:-${TMPDIR:-/tmp}}/skiff-bench-data.XXXXXX")
  SKIFF_LOG=$BENCH_TMP/skiffd.$(basename "$SKIFF_DATA").log
  SKIFF_DEBUG=${BENCH_SKIFF_DEBUG:-0} setsid "$SKIFF_BUILD/skiffd" --data "$SKIFF_DATA" --port 0 --insecure-registry "$REGISTRY" \
    --backoff-initial-ms 200 --stop-grace 1 "$@" >"$SKIFF_LOG" 2>&1 </dev/null &
  SKIFF_PID=$!
  on_exit "skiffd_stop_one '$SKIFF_DATA' '$SKIFF_PID'"
  local i
  for i in $(seq 1 400); do
    [ -s "$SKIFF_DATA/endpoint" ] && [ -s "$SKIFF_DATA/admin.token" ] && break
    kill -0 "$SKIFF_PID" 2>/dev/null || { tail -20 "$SKIFF_LOG" >&2; die "skiffd exited at start"; }
    sleep 0.05
  done
  [ -s "$SKIFF_DATA/endpoint" ] || { tail -20 "$SKIFF_LOG" >&2; die "skiffd did not start"; }
  SKIFF_EP=$(cat "$SKIFF_DATA/endpoint")
  SKIFF_EP=${SKIFF_EP%/}
  SKIFF_PORT=${SKIFF_EP##*:}
  SKIFF_TOKEN=$(cat "$SKIFF_DATA/admin.token")
  SKIFF_CA="$SKIFF_DATA/pki/ca.pem"
  SKIFF_SUB=$(curl --cacert "$SKIFF_CA" -fsS -H "Authorization: Bearer $SKIFF_TOKEN" \
    "$SKIFF_EP/subscriptions?api-version=2022-12-01" | jq -r '.value[0].subscriptionId')
  [ -n "$SKIFF_SUB" ] && [ "$SKIFF_SUB" != null ] || die "no subscription id from $SKIFF_EP"
  export SKIFF_DATA SKIFF_PID SKIFF_EP SKIFF_PORT SKIFF_TOKEN SKIFF_SUB SKIFF_LOG SKIFF_CA
}

# skiff_api METHOD PATH [JSON-BODY]: prints the body; fails on HTTP >= 400
skiff_api() {
  local m=$1 p=$2
  if [ $# -ge 3 ]; then
    curl -fsS --cacert "$SKIFF_CA" -X "$m" -H "Authorization: Bearer $SKIFF_TOKEN" -H 'Content-Type: application/json' \
      --data-binary "$3" "$SKIFF_EP$p"
  else
    curl -fsS --cacert "$SKIFF_CA" -X "$m" -H "Authorization: Bearer $SKIFF_TOKEN" "$SKIFF_EP$p"
  fi
}

skiff_rg() { # skiff_rg NAME
  skiff_api PUT "/subscriptions/$SKIFF_SUB/resourcegroups/$1?api-version=2021-04-01" '{"location":"local"}' >/dev/null
}
skiff_group_path() { # skiff_group_path RG NAME
  echo "/subscriptions/$SKIFF_SUB/resourceGroups/$1/providers/Microsoft.ContainerInstance/containerGroups/$2?api-version=2023-05-01"
}

# monitor pids whose group folder (argv[1]) lies under data folder $1
monitor_pids() {
  local data=$1 p arg
  for p in $(pgrep -f skiff-monitor || true); do
    arg=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | sed -n 2p) || continue
    case $arg in "$data"/*) echo "$p" ;; esac
  done
}

# skiffd_stop_one DATA PID [keep]: deletes every group of that instance (waits until gone),
# stops it, kills monitors it left behind, unmounts what is left under DATA and removes DATA
# (unless the third argument is "keep": then the caller removes DATA later)
skiffd_stop_one() {
  local data=$1 pid=$2 keep=${3:-}
  [ -d "$data" ] || return 0
  if kill -0 "$pid" 2>/dev/null && [ -s "$data/admin.token" ]; then
    local ep tok
    ep=$(cat "$data/endpoint"); ep=${ep%/}; tok=$(cat "$data/admin.token")
    SKIFF_EP=$ep SKIFF_TOKEN=$tok SKIFF_CA=$data/pki/ca.pem timeout 300 "$PY" "$PYHELP" delete-all 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local m
  for m in $(monitor_pids "$data"); do
    log "leftover monitor $m under $data: killing it"
    kill -KILL "$m" 2>/dev/null || true
  done
  # anything still mounted under the data folder (deepest first)
  awk -v d="$data/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP_LOGS:-}" ] && [ -d "$BENCH_KEEP_LOGS" ]; then
    cp "$BENCH_TMP/skiffd.$(basename "$data").log" "$BENCH_KEEP_LOGS/" 2>/dev/null || true
  fi
  [ "$keep" = keep ] || rm -rf "$data"
}

skiffd_stop() { skiffd_stop_one "$SKIFF_DATA" "$SKIFF_PID" "${1:-}"; }

# ---- podman with a private store -----------------------------------------------------------
# podman_private: sets PODMAN=(podman --root ... --runroot ...) on a fresh store under
# $PODMAN_PARENT (default BENCH_TMP)
podman_private() {
  local d
  d=$(mktemp -d "${PODMAN_PARENT:-$BENCH_TMP}/podman.XXXXXX")
  PODMAN=(podman --root "$d/root" --runroot "$d/run" --tmpdir "$d/tmp" --cgroup-manager=cgroupfs
    --events-backend=file)
  mkdir -p "$d/tmp"
  on_exit "podman_store_remove '$d'"
  PODMAN_STORE=$d
}
podman_store_remove() {
  local d=$1
  [ -d "$d" ] || return 0
  podman --root "$d/root" --runroot "$d/run" --tmpdir "$d/tmp" rm -af -t 0 >/dev/null 2>&1 || true
  podman --root "$d/root" --runroot "$d/run" --tmpdir "$d/tmp" rmi -af >/dev/null 2>&1 || true
  # (not `system reset`: that would also drop the host's podman networks)
  awk -v d="$d/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
  rm -rf "$d"
}

# cpu_ticks PID...: summed utime+stime (clock ticks) of those processes
cpu_ticks() {
  local p t=0 v
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' 2>/dev/null <"/proc/$p/stat") || continue
    t=$((t + v))
  done
  echo $t
}

# ---- output helpers ------------------------------------------------------------------------
# stats NAME < values-in-ms: one line "NAME n= min= median= p90= max=" (ms)
stats() { "$PY" "$PYHELP" stats "$1"; }
# ratio A B: A/B with 2 decimals
ratio() { "$PY" -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b else 'inf')" "$1" "$2"; }
# verdict COND-PYTHON-EXPR: PASS or MISS
verdict() { "$PY" -c "import sys; print('PASS' if eval(sys.argv[1]) else 'MISS')" "$1"; }
hr() { printf '%s\n' "------------------------------------------------------------------------"; }
