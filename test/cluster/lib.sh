# Shared paths and helpers for test/cluster/{up,down}.sh. Source it; don't run it.
#
# CLUSTER_NAME (default "snapback") selects the cluster. The default cluster keeps
# its state in .cache/cluster/, any other in .cache/clusters/<name>/, so two
# clusters can run side by side: kwokctl picks free ports for each one.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.cache/bin"
CLUSTER_NAME="${CLUSTER_NAME:-snapback}"
if [[ ! "$CLUSTER_NAME" =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]]; then
  echo "CLUSTER_NAME must be a short DNS label (a-z, 0-9, -), got '$CLUSTER_NAME'" >&2
  exit 2
fi
if [[ "$CLUSTER_NAME" == snapback ]]; then
  STATE="$ROOT/.cache/cluster"
else
  STATE="$ROOT/.cache/clusters/$CLUSTER_NAME"
fi
KUBECONFIG_PATH="$STATE/kubeconfig"
LOGS="$STATE/logs"
PIDS="$STATE/pids"

# kwokctl keeps its config, PKI, etcd data, component logs and pid files under
# $KWOK_WORKDIR/clusters/<name>/ instead of ~/.kwok.
export KWOK_WORKDIR="$STATE/kwok"

GO="$(command -v go || echo /usr/local/go/bin/go)"
KUBECTL="$BIN/kubectl"   # ours, never /usr/bin/kubectl (an unrelated gcloud wrapper)
KWOKCTL=("$BIN/kwokctl" --name "$CLUSTER_NAME")

log() { printf '[%s %s] %s\n' "${0##*/}" "$CLUSTER_NAME" "$*"; }
now_ms() { date +%s%3N; }
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $(( d / 1000 )) $(( d % 1000 / 100 )); }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# pid_alive NAME: true when $PIDS/NAME.pid names a live process whose command line
# still mentions NAME's marker (guards against a recycled pid).
pid_alive() {
  local pidfile="$PIDS/$1.pid" marker="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# started_alive NAME: true while the process start_bg recorded for NAME exists. Unlike pid_alive it
# does not look at the command line, which is the caller's until the fork has exec'd.
started_alive() { [[ -s "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# start_bg NAME CMD...: runs CMD detached in its own session (so it outlives the
# calling shell and its process group can be stopped whole), output to
# $LOGS/NAME.log (the previous one kept as .prev), pid to $PIDS/NAME.pid.
start_bg() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$PIDS"
  if [[ -f "$LOGS/$name.log" ]]; then mv -f "$LOGS/$name.log" "$LOGS/$name.log.prev"; fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! > "$PIDS/$name.pid"
}

# stop_pid NAME MARKER: TERM to the process group (tsx runs node as a child),
# wait up to 10 s, then KILL; removes the pid file.
stop_pid() {
  local name="$1" marker="$2" pid target i
  if pid_alive "$name" "$marker"; then
    pid="$(cat "$PIDS/$name.pid")"
    target="$pid"
    [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] && target="-$pid"
    log "stopping $name (pid $pid)"
    kill -TERM -- "$target" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do
      kill -0 -- "$target" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "$target" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
}

# api_ready: the API server answers /readyz with our kubeconfig (bounded: 5 s).
api_ready() {
  [[ -s "$KUBECONFIG_PATH" && -x "$KUBECTL" ]] &&
    kc get --raw=/readyz --request-timeout=5s >/dev/null 2>&1
}
