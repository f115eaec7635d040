#!/bin/bash
# Per-group memory of skiff-monitor with COUNT idle groups (busybox `sleep 100000`), against
# conmon's per-container memory with CONMON_COUNT idle `podman run -d` containers.
#   COUNT (default 100), CONMON_COUNT (default 10; 0 skips podman and uses the 330 KiB reference)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-100}
CONMON_COUNT=${CONMON_COUNT:-10}
CONMON_REF_KIB=330 # conmon private dirty per container, 10 running (fixtures README baseline)
IMAGE=$REGISTRY/busybox:latest

need_common
[ "$CONMON_COUNT" -gt 0 ] && need_podman
registry_up
cgroup_hybrid_apply

# sum_smaps PID...: prints "n private_dirty_kib pss_kib rss_kib"
sum_smaps() {
  local p n=0 pd=0 pss=0 rss=0 a b c
  for p in "$@"; do
    read -r a b c < <(awk '/^Private_Dirty:/{pd+=$2} /^Pss:/{pss+=$2} /^Rss:/{rss+=$2} END{print pd+0, pss+0, rss+0}' \
      "/proc/$p/smaps_rollup" 2>/dev/null || echo "x")
    [ "$a" = x ] && continue
    n=$((n + 1)); pd=$((pd + a)); pss=$((pss + b)); rss=$((rss + c))
  done
  echo "$n $pd $pss $rss"
}
per() { "$PY" -c "import sys; print('%.1f' % (float(sys.argv[1])/float(sys.argv[2])) if float(sys.argv[2]) else 'nan')" "$1" "$2"; }

echo "== monitor_memory: $COUNT idle skiff groups vs $CONMON_COUNT idle podman containers (host: $(nproc) cores)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- skiff ----------------------------------------------------------------------------------
skiffd_start
log "skiffd $SKIFF_EP (data $SKIFF_DATA)"
# the smallest requests skiffd accepts
cpu=0.01 mem=0.01
res=$("$PY" "$PYHELP" create-many --image "$IMAGE" --count 1 --prefix probe --cpu $cpu --mem $mem --timeout 60)
if [ "${res%% *}" = REFUSED ]; then
  log "cpu 0.01 / memoryInGB 0.01 refused ($res); using 0.1 / 0.1"
  cpu=0.1 mem=0.1
fi
SKIFF_EP=$SKIFF_EP "$PY" "$PYHELP" delete-all
log "creating $COUNT groups (cpu $cpu, memoryInGB $mem, restartPolicy Always, sleep 100000)"
res=$("$PY" "$PYHELP" create-many --image "$IMAGE" --count "$COUNT" --prefix idle --cpu $cpu --mem $mem --timeout 300)
log "  $res"
read -r status _ t_put t_running <<<"$res"
[ "$status" = OK ] || {
  tail -30 "$SKIFF_LOG" >&2
  die "not all $COUNT groups got Running: $res"
}
sleep 2 # let the monitors settle after their start
mapfile -t mons < <(monitor_pids "$SKIFF_DATA")
read -r m_n m_pd m_pss m_rss <<<"$(sum_smaps "${mons[@]}")"
skiffd_rss=$(awk '/^VmRSS:/{print $2}' "/proc/$SKIFF_PID/status")
skiffd_pd=$(awk '/^Private_Dirty:/{print $2}' "/proc/$SKIFF_PID/smaps_rollup")
skiffd_threads=$(awk '/^Threads:/{print $2}' "/proc/$SKIFF_PID/status")
load_running=$(cut -d' ' -f1-3 /proc/loadavg)
# responsiveness with all of them running: sequential GETs of one group and of the list
get_one=$("$PY" "$PYHELP" get-seq "$(skiff_group_path bench idle-000)" -n 200)
get_list=$("$PY" "$PYHELP" get-seq "/subscriptions/$SKIFF_SUB/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01" -n 20)
# CPU used over 5 s while idle: skiffd, all monitors, and the whole host (/proc/stat)
hz=$(getconf CLK_TCK)
host_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
d0=$(cpu_ticks "$SKIFF_PID"); m0=$(cpu_ticks "${mons[@]}"); read -r hb0 ht0 <<<"$(host_busy)"
sleep 5
d1=$(cpu_ticks "$SKIFF_PID"); m1=$(cpu_ticks "${mons[@]}"); read -r hb1 ht1 <<<"$(host_busy)"
cpu_idle="skiffd $("$PY" -c "print('%.1f' % (($d1-$d0)/$hz/5*100))")% of a core, all monitors $("$PY" -c "print('%.1f' % (($m1-$m0)/$hz/5*100))")%, whole host busy $("$PY" -c "print('%.1f' % (($hb1-$hb0)*100/max(1,$ht1-$ht0)))")% (all cores)"
log "deleting $COUNT groups"
t0=$(date +%s.%N)
SKIFF_EP=$SKIFF_EP "$PY" "$PYHELP" delete-all
t_delete=$("$PY" -c "import time,sys; print('%.2f' % (time.time()-float(sys.argv[1])))" "$t0")
left=$(monitor_pids "$SKIFF_DATA" | wc -l)
skiffd_stop

# ---- podman / conmon ------------------------------------------------------------------------
c_n=0 c_pd=0 c_pss=0 c_rss=0 podman_rate=
if [ "$CONMON_COUNT" -gt 0 ]; then
  podman_private
  "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null
  log "starting $CONMON_COUNT podman containers (sleep 100000)"
  pt0=$(date +%s.%N)
  for i in $(seq 1 "$CONMON_COUNT"); do
    "${PODMAN[@]}" run -d --name "skiff-bench-idle-$i" "${PODMAN_RUN_FLAGS[@]}" "$IMAGE" sleep 100000 >/dev/null
  done
  pt1=$(date +%s.%N)
  podman_rate=$("$PY" -c "import sys; print('%.1f' % ($CONMON_COUNT/(float(sys.argv[2])-float(sys.argv[1]))))" "$pt0" "$pt1")
  sleep 2
  # conmon processes of our store only (their command line names our --root)
  mapfile -t cmons < <(pgrep -f "conmon .*$PODMAN_STORE/" || true)
  read -r c_n c_pd c_pss c_rss <<<"$(sum_smaps "${cmons[@]}")"
  "${PODMAN[@]}" rm -f -t 0 -a >/dev/null
  podman_store_remove "$PODMAN_STORE"
fi

# ---- summary --------------------------------------------------------------------------------
m_avg=$(per "$m_pd" "$m_n")
hr
echo "SUMMARY monitor_memory ($COUNT groups, cpu $cpu memoryInGB $mem)"
echo "  groups Running                     : $m_n monitors; all Running ${t_running} s after the first PUT (PUTs took ${t_put} s)"
echo "  start rate                         : skiff $("$PY" -c "print('%.1f' % ($m_n/$t_running))") groups/s (PUT all, then wait)${podman_rate:+; podman run -d, one after another: $podman_rate containers/s}"
echo "  skiff-monitor Private_Dirty        : total $m_pd KiB, per group $m_avg KiB"
echo "  skiff-monitor Pss / Rss per group  : $(per "$m_pss" "$m_n") / $(per "$m_rss" "$m_n") KiB"
if [ "$c_n" -gt 0 ]; then
  c_avg=$(per "$c_pd" "$c_n")
  echo "  conmon Private_Dirty (measured)    : $c_n conmons, per container $c_avg KiB (Pss $(per "$c_pss" "$c_n"), Rss $(per "$c_rss" "$c_n") KiB)"
else
  c_avg=$CONMON_REF_KIB
fi
echo "  conmon reference (fixtures README) : $CONMON_REF_KIB KiB private dirty per container"
echo "  ratio conmon/skiff-monitor         : $(ratio "$c_avg" "$m_avg")x (measured)   $(ratio "$CONMON_REF_KIB" "$m_avg")x (reference)"
echo "  target < 256 KiB per group         : $(verdict "$m_avg < 256")"
echo "  skiffd with the groups running     : VmRSS $skiffd_rss KiB, Private_Dirty $skiffd_pd KiB, $skiffd_threads threads"
echo "  load avg before / all Running      : $load_before / $load_running"
echo "  CPU over 5 s, groups idle          : $cpu_idle"
echo "  GET one group, sequential          : $get_one ms"
echo "  GET list of groups, sequential     : $get_list ms"
echo "  delete of all groups               : $t_delete s; monitors left afterwards: $left"
hr
