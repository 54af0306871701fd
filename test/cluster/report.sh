#!/usr/bin/env bash
# Prints the state of the local cluster for a failed test run: which of its processes are alive
# and the last lines of every component's log, so that CI output alone says what broke.
#
#   test/cluster/report.sh [LINES]   (default 30 lines per log)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
lines="${1:-30}"

log "processes"
for pidfile in "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/"*.pid "$PIDS/"*.pid; do
  [[ -e "$pidfile" ]] || continue
  name="$(basename "$pidfile" .pid)" pid="$(cat "$pidfile")"
  if [[ -r "/proc/$pid/cmdline" ]]; then state="alive"; else state="EXITED"; fi
  printf '  %-26s pid %-8s %s\n' "$name" "$pid" "$state"
done
for file in "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/logs/"*.log "$LOGS/"*.log; do
  [[ -e "$file" ]] || continue
  log "last $lines lines of ${file#$ROOT/}"
  tail -n "$lines" "$file" | cut -c1-400
done
