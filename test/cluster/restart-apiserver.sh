#!/usr/bin/env bash
# Restarts the local cluster's kube-apiserver alone, as a control-plane upgrade or a crash does,
# for the chaos tests: the process is stopped (SIGKILL with --kill, else SIGTERM), then kwokctl
# starts it again as it was. Waits until /readyz answers.
#
#   test/cluster/restart-apiserver.sh [--kill] [--down-seconds N] [--settle-seconds N]
#
# --down-seconds keeps it stopped that long first (default 0), so clients see connections refused;
# --settle-seconds watches the other components that long afterwards (see below).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

signal=TERM
down_seconds=0
settle_seconds=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kill) signal=KILL ;;
    --down-seconds) down_seconds="$2"; shift ;;
    --settle-seconds) settle_seconds="$2"; shift ;;
    *) echo "usage: $0 [--kill] [--down-seconds N] [--settle-seconds N]" >&2; exit 2 ;;
  esac
  shift
done

pidfile="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/kube-apiserver.pid"
pid="$(cat "$pidfile" 2>/dev/null || true)"
if [[ -z "$pid" || ! -r "/proc/$pid/cmdline" ]]; then
  echo "kube-apiserver of cluster $CLUSTER_NAME is not running (no live pid in $pidfile)" >&2
  exit 1
fi
started=$(now_ms)
kill "-$signal" "$pid"
for _ in $(seq 100); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
if [[ -e "/proc/$pid" ]]; then kill -KILL "$pid"; sleep 0.5; fi
log "kube-apiserver (pid $pid) stopped with SIG$signal in $(since "$started")"
sleep "$down_seconds"

# kwokctl starts the components that are down, the API server alone here, and records its pid.
"${KWOKCTL[@]}" start cluster >>"$LOGS/kwokctl.log" 2>&1 || { tail -n 20 "$LOGS/kwokctl.log" >&2; exit 1; }
until kc get --raw /readyz >/dev/null 2>&1; do
  if [[ ! -e "/proc/$(cat "$pidfile")" ]]; then echo "kube-apiserver exited; see its log under $KWOK_WORKDIR" >&2; exit 1; fi
  sleep 0.2
done
log "kube-apiserver (pid $(cat "$pidfile")) ready again $(since "$started") after the stop began"

# Afterwards the other control-plane processes must keep running. kube-scheduler exits on purpose
# when a bind it lost track of across the restart leaves its cache inconsistent ("Scheduler cache
# is corrupted"), expecting its supervisor to start it again, as kubelet does for a static pod. For
# --settle-seconds this script is that supervisor: a kwokctl component that exits is named and
# started again. One that cannot be started, or a process of ours that exited, fails the script.
exited_components() {
  local pidfile
  for pidfile in "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/"*.pid; do
    [[ -r "/proc/$(cat "$pidfile")/cmdline" ]] || basename "$pidfile" .pid
  done
}
for (( second = 0; second < settle_seconds; second++ )); do
  exited="$(exited_components | tr '\n' ' ')"
  if [[ -n "$exited" ]]; then
    log "exited after the restart: $exited(see $KWOK_WORKDIR/clusters/$CLUSTER_NAME/logs); starting it again"
    "${KWOKCTL[@]}" start cluster >>"$LOGS/kwokctl.log" 2>&1 || true
    exited="$(exited_components | tr '\n' ' ')"
    [[ -z "$exited" ]] || { log "could not start again: $exited" >&2; exit 1; }
  fi
  sleep 1
done
for name in snapshot-controller storage-simulator; do
  [[ -r "/proc/$(cat "$PIDS/$name.pid" 2>/dev/null)/cmdline" ]] || { log "$name exited; see $LOGS" >&2; exit 1; }
done
