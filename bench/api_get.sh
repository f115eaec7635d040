#!/bin/bash
# GET throughput: one container group's GET on skiffd vs podman's
# GET /v4.0.0/libpod/containers/json?all=true (one container) on `podman system service`,
# wrk -t2 -c32 (keep-alive) for DURATION. wrk cannot dial a unix socket, so podman is measured
# through socat (TCP -> unix socket); skiff is measured directly over HTTPS and through the same
# kind of socat hop to its own plain-HTTP unix socket, so that the socat ratio is like for like.
#   DURATION (default 10s), CONNS (default 32), THREADS (default 2)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
IMAGE=$REGISTRY/busybox:latest
PSOCK=/tmp/skiff-bench-podman.sock

need_common
need_podman
need wrk wrk
need socat socat
registry_up
cgroup_hybrid_apply

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run_wrk LABEL URL [wrk header args...]: prints "LABEL req_s p50_ms p99_ms errors"
run_wrk() {
  local label=$1 url=$2 out
  shift 2
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency "$@" "$url")
  echo "$out" >"$BENCH_TMP/wrk.$label.txt"
  "$PY" - "$label" "$BENCH_TMP/wrk.$label.txt" <<'EOF'
import re, sys
txt = open(sys.argv[2]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    x, u = float(m.group(1)), m.group(2)
    return x / 1000 if u == "us" else x if u == "ms" else x * 1000 if u == "s" else x * 60000
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", txt).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", txt, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", txt, re.M).group(1))
errs = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", txt)
if m: errs += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
if m: errs += sum(int(g) for g in m.groups())
print(f"{sys.argv[1]} {rps:.0f} {p50:.3f} {p99:.3f} {errs}")
EOF
}

echo "== api_get: wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive (host: $(nproc) cores; wrk shares them)"

# ---- skiff: one running group -----------------------------------------------------------------
skiffd_start
log "skiffd $SKIFF_EP (data $SKIFF_DATA)"
"$PY" "$PYHELP" start-latency --image "$IMAGE" --cmd '["sleep","100000"]' --runs 1 --warmup 0 \
  --prefix get --keep --out "$BENCH_TMP/create.ms" 2>/dev/null
gpath=$(skiff_group_path bench get-0)
gurl=$SKIFF_EP$gpath
skiff_bytes=$(skiff_api GET "$gpath" | wc -c)
auth=(-H "Authorization: Bearer $SKIFF_TOKEN")

log "skiff direct: $gurl"
r_sd=$(run_wrk skiff-direct "$gurl" "${auth[@]}")
sport=$(free_port)
socat TCP-LISTEN:"$sport",bind=127.0.0.1,reuseaddr,fork,backlog=512 UNIX-CONNECT:"$SKIFF_DATA/api.sock" &
socat_s=$!
on_exit "kill $socat_s"
sleep 0.3
log "skiff unix socket via socat :$sport"
r_ss=$(run_wrk skiff-socat "http://127.0.0.1:$sport$gpath" "${auth[@]}")
kill "$socat_s" 2>/dev/null || true
seq_s=$("$PY" "$PYHELP" get-seq "$gpath" -n 300)
skiffd_rss=$(awk '/^VmRSS:/{print $2}' "/proc/$SKIFF_PID/status")
skiffd_stop

# ---- podman service ---------------------------------------------------------------------------
podman_private
"${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null
"${PODMAN[@]}" create -q --name skiff-bench-c1 "${PODMAN_RUN_FLAGS[@]}" "$IMAGE" true >/dev/null
rm -f "$PSOCK"
"${PODMAN[@]}" system service --time=0 "unix://$PSOCK" >"$BENCH_TMP/podman-service.log" 2>&1 &
psvc=$!
on_exit "kill $psvc; rm -f $PSOCK"
for _ in $(seq 1 100); do
  curl -fsS --unix-socket "$PSOCK" http://d/_ping >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS --unix-socket "$PSOCK" http://d/_ping >/dev/null || die "podman service did not come up"
ppath='/v4.0.0/libpod/containers/json?all=true'
podman_bytes=$(curl -fsS --unix-socket "$PSOCK" "http://d$ppath" | wc -c)
pport=$(free_port)
socat TCP-LISTEN:"$pport",bind=127.0.0.1,reuseaddr,fork,backlog=512 UNIX-CONNECT:"$PSOCK" &
socat_p=$!
on_exit "kill $socat_p"
sleep 0.3
log "podman via socat :$pport -> $PSOCK"
r_ps=$(run_wrk podman-socat "http://127.0.0.1:$pport$ppath")
podman_rss=$(awk '/^VmRSS:/{print $2}' "/proc/$psvc/status")
kill "$socat_p" 2>/dev/null || true
kill "$psvc" 2>/dev/null || true
wait "$psvc" 2>/dev/null || true
"${PODMAN[@]}" rm -f skiff-bench-c1 >/dev/null 2>&1 || true

# ---- summary ----------------------------------------------------------------------------------
read -r _ sd_rps sd_p50 sd_p99 sd_err <<<"$r_sd"
read -r _ ss_rps ss_p50 ss_p99 ss_err <<<"$r_ss"
read -r _ ps_rps ps_p50 ps_p99 ps_err <<<"$r_ps"
hr
echo "SUMMARY api_get (wrk -t$THREADS -c$CONNS -d$DURATION --latency; p50/p99 in ms)"
printf '  %-52s %9s %8s %8s %6s\n' "" "req/s" "p50" "p99" "errors"
printf '  %-52s %9s %8s %8s %6s\n' "skiff GET group, direct HTTPS ($skiff_bytes B)" "$sd_rps" "$sd_p50" "$sd_p99" "$sd_err"
printf '  %-52s %9s %8s %8s %6s\n' "skiff GET group, via socat TCP->unix (HTTP)" "$ss_rps" "$ss_p50" "$ss_p99" "$ss_err"
printf '  %-52s %9s %8s %8s %6s\n' "podman containers/json, via socat TCP->unix ($podman_bytes B)" "$ps_rps" "$ps_p50" "$ps_p99" "$ps_err"
echo "  skiff sequential keep-alive GET (python, 300)      : $seq_s ms"
echo "  RSS after the run: skiffd $skiffd_rss KiB, podman service $podman_rss KiB"
echo "  ratio skiff/podman req/s, both via socat (like for like) : $(ratio "$ss_rps" "$ps_rps")x"
echo "  ratio skiff direct / podman via socat                    : $(ratio "$sd_rps" "$ps_rps")x"
echo "  (socat forks a process per connection and adds a hop: it caps skiff's socat row well below direct)"
echo "  target >= 10x podman req/s (socat vs socat) : $(verdict "$ss_rps / $ps_rps >= 10")"
echo "  target p99 < 5 ms (direct)                  : $(verdict "$sd_p99 < 5") (p99 $sd_p99 ms)"
hr
