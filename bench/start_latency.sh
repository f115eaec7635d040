#!/bin/bash
# Create-to-running of a cached busybox image: skiff (API PUT -> container Running, polled every
# 1 ms on one keep-alive connection) vs `podman run --rm ... true` vs bare `crun run` of a bundle.
#   RUNS (default 20), WARMUP (default 2), POLL_MS (default 1)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-2}
POLL_MS=${POLL_MS:-1}
IMAGE=$REGISTRY/busybox:latest

need_common
need_podman
need hyperfine hyperfine
registry_up
cgroup_hybrid_apply

echo "== start_latency: busybox create-to-running, $RUNS runs after $WARMUP warm-ups (host: $(nproc) cores)"

# ---- skiff ----------------------------------------------------------------------------------
# debug log on: skiffd then logs its own per-group start breakdown. A network of the
# benchmark's own (bridge skbench), so a skiffd already running on this host is not touched.
NET_ARGS=(--network 10.239.0.0/24 --bridge skbench --public-ips 127.41.0.0/24 --dns-listen 127.0.0.1:0)
on_exit "ip link del skbench 2>/dev/null; nft delete table inet skbench 2>/dev/null; true"
BENCH_SKIFF_DEBUG=1 skiffd_start "${NET_ARGS[@]}"
log "skiffd $SKIFF_EP (data $SKIFF_DATA)"
log "skiff: PUT -> Running (sleep 100000), poll every ${POLL_MS} ms; the first warm-up pulls the image"
"$PY" "$PYHELP" start-latency --image "$IMAGE" --cmd '["sleep","100000"]' --until Running \
  --runs "$RUNS" --warmup "$WARMUP" --poll-ms "$POLL_MS" --prefix run \
  --out "$BENCH_TMP/skiff.ms" --put-out "$BENCH_TMP/skiff-put.ms" --breakdown-out "$BENCH_TMP/skiff-start.ms"
log "skiff: PUT -> Terminated for \`true\` (like podman run --rm true, which waits for the exit)"
"$PY" "$PYHELP" start-latency --image "$IMAGE" --cmd '["true"]' --until Terminated \
  --runs "$RUNS" --warmup "$WARMUP" --poll-ms "$POLL_MS" --prefix true \
  --out "$BENCH_TMP/skiff-true.ms"
# "group ID: images X ms, namespaces+rootfs+bundles Y ms, monitor ready Z ms", one per start;
# the first WARMUP+RUNS are the Running phase
grep -o 'images [0-9.]* ms, namespaces+rootfs+bundles [0-9.]* ms, monitor ready [0-9.]* ms' "$SKIFF_LOG" |
  sed -n "$((WARMUP + 1)),$((WARMUP + RUNS))p" | awk '{print $2, $5, $9}' >"$BENCH_TMP/skiff-breakdown" || true
# how often skiffd found the monitor of a `true` container already on its way out when it
# subscribed (it then folds in the final state from the monitor's files, or looks again in 5 ms)
retries=$(grep -c 'watch: connect to monitor' "$SKIFF_LOG" || true)
# the group network's share: veth pair, address, route (netlink), per group
grep -o 'network attach [0-9.]* ms' "$SKIFF_LOG" | sed -n "$((WARMUP + 1)),$((WARMUP + RUNS))p" |
  awk '{print $3}' >"$BENCH_TMP/skiff-net.ms" || true
skiffd_stop

# the same without group networking (each group has only its loopback)
BENCH_SKIFF_DEBUG=1 skiffd_start --network none
log "skiff --network none: PUT -> Running (sleep 100000)"
"$PY" "$PYHELP" start-latency --image "$IMAGE" --cmd '["sleep","100000"]' --until Running \
  --runs "$RUNS" --warmup "$WARMUP" --poll-ms "$POLL_MS" --prefix nonet \
  --out "$BENCH_TMP/skiff-nonet.ms"
skiffd_stop

# ---- podman ---------------------------------------------------------------------------------
podman_private
"${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null
log "podman: hyperfine podman run --rm ${PODMAN_RUN_FLAGS[*]} $IMAGE true"
hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$BENCH_TMP/podman.json" \
  "${PODMAN[*]} run --rm ${PODMAN_RUN_FLAGS[*]} $IMAGE true" >/dev/null
jq -r '.results[0].times[] * 1000' "$BENCH_TMP/podman.json" >"$BENCH_TMP/podman.ms"

# ---- bare crun ------------------------------------------------------------------------------
B=$BENCH_TMP/crun-bundle
mkdir -p "$B/rootfs"
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/busybox/manifests/latest")
for d in $(jq -r '.layers[].digest' <<<"$manifest"); do
  curl -fsS "http://$REGISTRY/v2/busybox/blobs/$d" | tar -xz -C "$B/rootfs"
done
(cd "$B" && crun spec)
jq '.process.args = ["true"] | .process.terminal = false' "$B/config.json" >"$B/config.json.new"
mv "$B/config.json.new" "$B/config.json"
cid=skiff-bench-crun-$$
on_exit "crun delete -f $cid"
log "crun: hyperfine crun run --bundle $B $cid"
hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$BENCH_TMP/crun.json" \
  "crun run --bundle $B $cid" >/dev/null
jq -r '.results[0].times[] * 1000' "$BENCH_TMP/crun.json" >"$BENCH_TMP/crun.ms"

# ---- summary --------------------------------------------------------------------------------
med() { "$PY" -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in open(sys.argv[1]).read().split()))' "$1"; }
s_med=$(med "$BENCH_TMP/skiff.ms"); p_med=$(med "$BENCH_TMP/podman.ms"); c_med=$(med "$BENCH_TMP/crun.ms")
st_med=$(med "$BENCH_TMP/skiff-true.ms"); sn_med=$(med "$BENCH_TMP/skiff-nonet.ms")
hr
echo "SUMMARY start_latency (ms; min / median / p90 / max over $RUNS runs)"
stats "  skiff  PUT -> Running (1 ms poll)      " <"$BENCH_TMP/skiff.ms"
stats "  skiff  PUT answered                    " <"$BENCH_TMP/skiff-put.ms"
if [ -s "$BENCH_TMP/skiff-start.ms" ]; then
  stats "  skiff  PUT sent -> startTime (server)  " <"$BENCH_TMP/skiff-start.ms"
fi
if [ -s "$BENCH_TMP/skiff-breakdown" ]; then
  stats "  skiffd: images (cached)                " < <(awk '{print $1}' "$BENCH_TMP/skiff-breakdown")
  stats "  skiffd: namespaces+rootfs+bundles      " < <(awk '{print $2}' "$BENCH_TMP/skiff-breakdown")
  stats "  skiffd: monitor ready                  " < <(awk '{print $3}' "$BENCH_TMP/skiff-breakdown")
fi
stats "  skiff  PUT -> Running, --network none  " <"$BENCH_TMP/skiff-nonet.ms"
if [ -s "$BENCH_TMP/skiff-net.ms" ]; then
  stats "  skiffd: network attach (netlink)       " <"$BENCH_TMP/skiff-net.ms"
fi
stats "  skiff  PUT -> Terminated (true)        " <"$BENCH_TMP/skiff-true.ms"
echo "    (skiffd found the monitor of a `true` container already exiting: $retries of $((WARMUP + RUNS)) true runs)"
stats "  podman run --rm true                   " <"$BENCH_TMP/podman.ms"
stats "  crun   run (prepared bundle, true)     " <"$BENCH_TMP/crun.ms"
echo "  ratio podman/skiff (medians, Running)    : $(ratio "$p_med" "$s_med")x"
echo "  ratio podman/skiff (medians, true->exit) : $(ratio "$p_med" "$st_med")x"
echo "  ratio skiff/crun   (medians)             : $(ratio "$s_med" "$c_med")x"
echo "  network's cost (median with - without)   : $("$PY" -c "print('%.2f' % ($s_med - $sn_med))") ms"
echo "  target p50 < 100 ms                      : $(verdict "$s_med < 100") (p50 $s_med ms)"
echo "  target >= 5x faster than podman run      : $(verdict "$p_med / $s_med >= 5")"
hr
