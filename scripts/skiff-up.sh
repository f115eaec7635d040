#!/bin/bash
# Builds skiff and starts skiffd on this host, with SQLite and a local data folder.
#   SKIFF_DATA (default /var/lib/skiff), SKIFF_PORT (default 8780).
# Afterwards `build/skiff` finds the endpoint and token in the data folder by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${SKIFF_DATA:-/var/lib/skiff}
port=${SKIFF_PORT:-8780}
if [ "$(id -u)" != 0 ]; then echo "skiff-up: run as root (containers need it)" >&2; exit 1; fi
scripts/install-deps.sh
make -j"$(nproc)" build/skiffd build/skiff-monitor build/skiff >/dev/null
mkdir -p "$data"
if [ -f "$data/skiffd.pid" ] && kill -0 "$(cat "$data/skiffd.pid")" 2>/dev/null; then
  echo "skiffd already runs (pid $(cat "$data/skiffd.pid")); restarting it (containers keep running)"
  kill "$(cat "$data/skiffd.pid")"; sleep 0.5
fi
rm -f "$data/endpoint"
setsid build/skiffd --data "$data" --port "$port" "$@" >>"$data/skiffd.log" 2>&1 < /dev/null &
echo $! > "$data/skiffd.pid"
for _ in $(seq 1 100); do [ -s "$data/endpoint" ] && break; sleep 0.05; done
if [ ! -s "$data/endpoint" ]; then echo "skiffd did not start; see $data/skiffd.log" >&2; tail -5 "$data/skiffd.log" >&2; exit 1; fi
echo "skiffd is running: $(cat "$data/endpoint") (pid $(cat "$data/skiffd.pid"), data $data, log $data/skiffd.log)"
echo "HTTPS clients trust the local CA $data/pki/ca.pem (see docs/azure-clients.md); local HTTP: $data/api.sock"
echo "try: SKIFF_DATA=$data build/skiff group create -n demo && SKIFF_DATA=$data build/skiff container list -o table"
