#!/usr/bin/env bash
# `make demo`: the local control plane, the CRDs, the operator, the sample data service, a backup
# and a restore whose phases are shown live. Leaves everything running; `make demo-down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PWD/.cache/bin:$PATH"
state=.cache/demo
pidfile=$state/operator.pid
port=18080

stop_operator() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    echo "operator stopped"
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = down ]; then
  stop_operator
  test/cluster/down.sh
  exit 0
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
mkdir -p "$state"

step "local control plane (built from Go modules on first use)"
test/cluster/up.sh
export KUBECONFIG="$PWD/.cache/cluster/kubeconfig"

step "Snapback CRDs"
kubectl apply --server-side -f crds/
kubectl wait --for condition=Established --timeout=60s \
  crd/backups.snapback.dev crd/restores.snapback.dev crd/restorabilitymatrices.snapback.dev \
  crd/backuplocations.snapback.dev crd/backupschedules.snapback.dev

step "operator"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "already running (pid $(cat "$pidfile"))"
else
  cat > "$state/operator.yaml" <<YAML
clusterName: demo
httpPort: $port
leaderElection:
  namespace: default
  leaseName: snapback-demo
YAML
  nohup tsx src/main.ts --config "$state/operator.yaml" > "$state/operator.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "the operator exited:"; tail -20 "$state/operator.log"; exit 1; }
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "the operator did not become ready"; tail -20 "$state/operator.log"; exit 1; }
  echo "running (pid $(cat "$pidfile")), logs in $state/operator.log, metrics on http://127.0.0.1:$port/metrics"
fi

step "sample data service: StatefulSet snapback-demo/pg with 3 replicas and a volume each"
kubectl apply -f examples/restorabilitymatrix.yaml -f examples/sample-dataservice.yaml
kubectl -n snapback-demo rollout status statefulset/pg --timeout=180s

step "backup"
kubectl apply -f examples/backup.yaml
kubectl -n snapback-demo wait backup/pg-backup --for=jsonpath='{.status.phase}'=Completed --timeout=180s
kubectl -n snapback-demo get backup pg-backup -o wide

step "restore into a new StatefulSet pg-restored"
kubectl apply -f examples/restore.yaml
tsx scripts/watch-restore.ts snapback-demo pg-restore

step "result"
kubectl -n snapback-demo get restores,backups,statefulsets,pvc
cat <<TEXT

Everything is still running. Look around:
  export KUBECONFIG=$KUBECONFIG
  kubectl get snapback -A                                  # Backups and Restores
  kubectl -n snapback-demo get restore pg-restore -o yaml   # status.phaseHistory, volumes, conditions
  kubectl -n snapback-demo describe restore pg-restore      # the phase-change events
  kubectl get pv -o custom-columns=NAME:.metadata.name,CLAIM:.spec.claimRef.name,CONTENT:.metadata.annotations.sim\\.snapback\\.dev/content-id
  kubectl apply -f examples/restore-other-namespace.yaml    # a restore into another namespace
  curl -s http://127.0.0.1:$port/metrics | grep ^snapback_
Stop it all with: make demo-down
TEXT
