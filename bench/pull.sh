#!/bin/bash
# Pull-and-unpack of big:latest (207 MB uncompressed, 164 MB gzip, 4 layers) with nothing cached:
# skiff (fresh data folder each run; PUT -> "Pulled" event) vs `podman pull` (fresh store each
# run), plus the machine's limit: igzip -d of the three big layer blobs + OpenSSL sha256 of them.
#   RUNS (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
IMAGE=$REGISTRY/big:latest

need_common
need_podman
need igzip isal
need openssl openssl
registry_up
cgroup_hybrid_apply

now() { date +%s.%N; }
elapsed() { "$PY" -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
settle() { sync; sleep 1; } # keep the previous run's deletes (ext4 discard) out of the next timed run

echo "== pull: big:latest from $REGISTRY, nothing cached, $RUNS runs each (host: $(nproc) cores)"

# ---- the machine's decompression limit --------------------------------------------------------
blobs=$BENCH_TMP/blobs
mkdir -p "$blobs"
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/big/manifests/latest")
mapfile -t layers < <(jq -r '.layers[].digest' <<<"$manifest")
[ ${#layers[@]} -ge 4 ] || die "big:latest has ${#layers[@]} layers, expected 4"
big_layers=("${layers[@]:1}") # the base layer is busybox's; the three after it are the big ones
for d in "${big_layers[@]}"; do
  curl -fsS -o "$blobs/${d#sha256:}" "http://$REGISTRY/v2/big/blobs/$d"
done
comp_bytes=$(cat "$blobs"/* | wc -c)
: >"$BENCH_TMP/inflate.s"; : >"$BENCH_TMP/sha.s"
for r in $(seq 1 "$RUNS"); do
  cat "$blobs"/* >/dev/null # page cache
  t0=$(now)
  for f in "$blobs"/*; do igzip -d -c "$f" >/dev/null; done
  t1=$(now)
  for f in "$blobs"/*; do openssl dgst -sha256 "$f" >/dev/null; done
  t2=$(now)
  elapsed "$t0" "$t1" >>"$BENCH_TMP/inflate.s"
  elapsed "$t1" "$t2" >>"$BENCH_TMP/sha.s"
done
uncomp_bytes=0
for f in "$blobs"/*; do uncomp_bytes=$((uncomp_bytes + $(igzip -d -c "$f" | wc -c))); done

# ---- skiff and podman, interleaved ----------------------------------------------------------
: >"$BENCH_TMP/skiff.s"; : >"$BENCH_TMP/skiff-server.s"; : >"$BENCH_TMP/podman.s"
for r in $(seq 1 "$RUNS"); do
  skiffd_start
  settle
  log "skiff run $r: PUT $IMAGE on fresh data folder $SKIFF_DATA"
  line=$("$PY" "$PYHELP" pull-wait --image "$IMAGE" --cmd '["true"]' --poll-ms 5)
  log "  $line"
  echo "${line%% *}" >>"$BENCH_TMP/skiff.s"
  case $line in *server_pull_s=*) echo "${line##*server_pull_s=}" >>"$BENCH_TMP/skiff-server.s" ;; esac
  du -sb "$SKIFF_DATA/layers" 2>/dev/null | awk '{printf "  skiff layers on disk: %.1f MB\n", $1/1e6}' >&2 || true
  skiffd_stop

  podman_private
  settle
  log "podman run $r: podman pull into fresh store $PODMAN_STORE"
  t0=$(now)
  "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null
  t1=$(now)
  log "  $(elapsed "$t0" "$t1") s"
  elapsed "$t0" "$t1" >>"$BENCH_TMP/podman.s"
  podman_store_remove "$PODMAN_STORE"
done

# ---- summary --------------------------------------------------------------------------------
med() { "$PY" -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in open(sys.argv[1]).read().split()))' "$1"; }
s=$(med "$BENCH_TMP/skiff.s"); p=$(med "$BENCH_TMP/podman.s")
inf=$(med "$BENCH_TMP/inflate.s"); sha=$(med "$BENCH_TMP/sha.s")
lim=$("$PY" -c "print('%.3f' % ($inf + $sha))")
hr
echo "SUMMARY pull (seconds; median of $RUNS; values in order of the runs)"
printf '  %-44s %s s   [%s]\n' "skiff PUT -> Pulled (fresh data folder)" "$s" "$(paste -sd' ' "$BENCH_TMP/skiff.s")"
if [ -s "$BENCH_TMP/skiff-server.s" ]; then
  printf '  %-44s %s s   [%s] (1 s event-timestamp resolution)\n' "skiff Pulling->Pulled events" "$(med "$BENCH_TMP/skiff-server.s")" "$(paste -sd' ' "$BENCH_TMP/skiff-server.s")"
fi
printf '  %-44s %s s   [%s]\n' "podman pull (fresh store)" "$p" "$(paste -sd' ' "$BENCH_TMP/podman.s")"
printf '  %-44s %s s   (%s MB gzip -> %s MB, %s MB/s out)\n' "igzip -d of the 3 big layers" "$inf" \
  "$((comp_bytes / 1000000))" "$((uncomp_bytes / 1000000))" "$("$PY" -c "print(int($uncomp_bytes/1e6/$inf))")"
printf '  %-44s %s s\n' "openssl sha256 of the 3 big layers" "$sha"
printf '  %-44s %s s\n' "decompression limit (igzip + sha256, 1 core)" "$lim"
echo "  ratio podman/skiff          : $(ratio "$p" "$s")x"
echo "  ratio skiff/limit           : $(ratio "$s" "$lim")x"
echo "  target >= 4x faster than podman pull : $(verdict "$p / $s >= 4")"
echo "  target within 1.5x of the limit      : $(verdict "$s / $lim <= 1.5")"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hr
