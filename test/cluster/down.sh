#!/usr/bin/env bash
# Stops everything test/cluster/up.sh started for CLUSTER_NAME (default snapback):
# the storage simulator, snapshot-controller and the kwokctl cluster (etcd,
# apiserver, controller-manager, scheduler, kwok), then removes the cluster's
# state (.cache/cluster/ or .cache/clusters/<name>/). Binaries in .cache/bin stay.
# Idempotent: exits 0 when nothing is running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$(now_ms)
if [[ ! -d "$STATE" ]]; then
  log "nothing to stop (no ${STATE#$ROOT/})"
  exit 0
fi

# Our own processes first, so they don't log errors while the API server goes away: the real
# node (if any) and the storage simulator.
if [[ -d "$STATE/node" ]]; then "$ROOT/test/cluster/node.sh" down; fi
stop_pid storage-simulator "storage-simulator/main.ts"
stop_pid snapshot-controller "$BIN/snapshot-controller"

# kwokctl stops its components (by its pid files) and deletes its workdir. It
# wants a kubeconfig to remove its context from: give it our copy, never ~/.kube.
KWOK_CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
if [[ -d "$KWOK_CLUSTER_DIR" ]]; then
  log "deleting kwok cluster"
  if [[ ! -x "$BIN/kwokctl" ]] ||
     ! "${KWOKCTL[@]}" delete cluster --kubeconfig "$KUBECONFIG_PATH" >"$STATE/kwokctl-delete.log" 2>&1; then
    # Fallback (kwokctl missing or failed): stop the components by kwok's pid
    # files, checking each pid still runs one of our binaries.
    log "kwokctl delete failed or unavailable; stopping components by pid file"
    for pidfile in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
      [[ -e "$pidfile" ]] || continue
      pid="$(cat "$pidfile")"
      if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$BIN/"; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done
    sleep 1
    for pidfile in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
      [[ -e "$pidfile" ]] || continue
      pid="$(cat "$pidfile")"
      if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$BIN/"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
fi

rm -rf "$STATE"
# Drop the parent of non-default clusters when it is empty.
rmdir "$ROOT/.cache/clusters" 2>/dev/null || true
log "stopped and removed ${STATE#$ROOT/} ($(since "$t0"))"
