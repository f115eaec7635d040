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
# Deleting a large tree on this ext4 (mounted with discard) makes small-file writes slow for a
# while afterwards: every run's data (skiff data folders, podman stores, untar trees) is kept
# until all runs on that file system are done, then removed, and each timed run starts after a sync.
settle() { sync; sleep 1; }

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
# pull_runs LABEL PARENT-DIR: RUNS runs of each, data folders / stores under PARENT-DIR
pull_runs() {
  local label=$1 parent=$2 r line t0 t1 trash=()
  : >"$BENCH_TMP/skiff.$label"; : >"$BENCH_TMP/skiff-server.$label"; : >"$BENCH_TMP/podman.$label"
  : >"$BENCH_TMP/layers.$label"; : >"$BENCH_TMP/untar.$label"
  for r in $(seq 1 "$RUNS"); do
    SKIFF_DATA_PARENT=$parent BENCH_SKIFF_DEBUG=1 skiffd_start
    settle
    log "[$label] skiff run $r: PUT $IMAGE on fresh data folder $SKIFF_DATA"
    line=$("$PY" "$PYHELP" pull-wait --image "$IMAGE" --cmd '["true"]' --poll-ms 5)
    log "  $line"
    echo "${line%% *}" >>"$BENCH_TMP/skiff.$label"
    case $line in *server_pull_s=*) echo "${line##*server_pull_s=}" >>"$BENCH_TMP/skiff-server.$label" ;; esac
    # skiffd's own per-layer timing (debug log): "layer sha256:xxx: N bytes unpacked in M ms"
    grep -o 'layer sha256:[0-9a-f]*: [0-9]* bytes unpacked in [0-9]* ms' "$SKIFF_LOG" |
      awk -v r="$r" '{printf "run %s %s %.1fMB %sms\n", r, substr($2,8,12), $3/1e6, $(NF-1)}' >>"$BENCH_TMP/layers.$label" || true
    skiffd_stop keep # groups deleted, skiffd stopped; the data folder goes at the end
    trash+=("$SKIFF_DATA")

    PODMAN_PARENT=$parent podman_private
    settle
    log "[$label] podman run $r: podman pull into fresh store $PODMAN_STORE"
    t0=$(now)
    "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null
    t1=$(now)
    log "  $(elapsed "$t0" "$t1") s"
    elapsed "$t0" "$t1" >>"$BENCH_TMP/podman.$label"
    trash+=("podman:$PODMAN_STORE")

    # the same three layers through igzip | tar into this file system: the unpack floor here
    local x
    x=$(mktemp -d "$parent/skiff-bench-untar.XXXXXX")
    settle
    t0=$(now)
    for f in "$blobs"/*; do igzip -d -c "$f" | tar -x -C "$x"; done
    t1=$(now)
    elapsed "$t0" "$t1" >>"$BENCH_TMP/untar.$label"
    trash+=("$x")
  done
  log "[$label] removing the runs' data"
  for x in "${trash[@]}"; do
    case $x in podman:*) podman_store_remove "${x#podman:}" ;; *) rm -rf "$x" ;; esac
  done
  settle
}

modes=()
case ${PULL_ON:-both} in
  disk | both) modes+=(disk) ;;
esac
case ${PULL_ON:-both} in
  tmpfs | both)
    mkdir -p "$BENCH_TMP/tmpfs"
    mount -t tmpfs -o size=6g,mode=0755 skiff-bench "$BENCH_TMP/tmpfs"
    on_exit "umount -l '$BENCH_TMP/tmpfs'"
    modes+=(tmpfs)
    ;;
esac
for m in "${modes[@]}"; do
  if [ "$m" = disk ]; then pull_runs disk "${TMPDIR:-/tmp}"; else pull_runs tmpfs "$BENCH_TMP/tmpfs"; fi
done

# ---- summary --------------------------------------------------------------------------------
med() { "$PY" -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in open(sys.argv[1]).read().split()))' "$1"; }
inf=$(med "$BENCH_TMP/inflate.s"); sha=$(med "$BENCH_TMP/sha.s")
lim=$("$PY" -c "print('%.3f' % ($inf + $sha))")
hr
echo "SUMMARY pull (seconds; median of $RUNS; values in order of the runs)"
for m in "${modes[@]}"; do
  s=$(med "$BENCH_TMP/skiff.$m"); p=$(med "$BENCH_TMP/podman.$m")
  echo "  [$m: data folder / podman store on $(df --output=fstype "$([ "$m" = disk ] && echo "${TMPDIR:-/tmp}" || echo "$BENCH_TMP/tmpfs")" | tail -1)]"
  printf '  %-44s %s s   [%s]\n' "skiff PUT -> Pulled (fresh data folder)" "$s" "$(paste -sd' ' "$BENCH_TMP/skiff.$m")"
  if [ -s "$BENCH_TMP/skiff-server.$m" ]; then
    printf '  %-44s %s s   [%s] (1 s event-timestamp resolution)\n' "skiff Pulling->Pulled events" "$(med "$BENCH_TMP/skiff-server.$m")" "$(paste -sd' ' "$BENCH_TMP/skiff-server.$m")"
  fi
  printf '  %-44s %s s   [%s]\n' "podman pull (fresh store)" "$p" "$(paste -sd' ' "$BENCH_TMP/podman.$m")"
  printf '  %-44s %s s   [%s]\n' "igzip -d | tar -x of the 3 big layers (here)" "$(med "$BENCH_TMP/untar.$m")" "$(paste -sd' ' "$BENCH_TMP/untar.$m")"
  echo "    ratio podman/skiff : $(ratio "$p" "$s")x   target >= 4x: $(verdict "$p / $s >= 4")"
  echo "    ratio skiff/limit  : $(ratio "$s" "$lim")x   target <= 1.5x: $(verdict "$s / $lim <= 1.5")   (limit = igzip + sha256 below)"
  echo "    ratio skiff/untar  : $(ratio "$s" "$(med "$BENCH_TMP/untar.$m")")x   (serial igzip|tar into the same file system)"
  if [ -s "$BENCH_TMP/layers.$m" ]; then
    echo "    skiffd per-layer unpack (debug log, layers run in parallel; last run):"
    tail -n "$(grep -c "^run $RUNS " "$BENCH_TMP/layers.$m")" "$BENCH_TMP/layers.$m" | sed 's/^/      /'
  fi
done
printf '  %-44s %s s   (%s MB gzip -> %s MB, %s MB/s out)\n' "igzip -d of the 3 big layers" "$inf" \
  "$((comp_bytes / 1000000))" "$((uncomp_bytes / 1000000))" "$("$PY" -c "print(int($uncomp_bytes/1e6/$inf))")"
printf '  %-44s %s s\n' "openssl sha256 of the 3 big layers" "$sha"
printf '  %-44s %s s\n' "decompression limit (igzip + sha256, 1 core)" "$lim"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hr
