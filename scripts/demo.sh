#!/usr/bin/env bash
# `make demo`: the local control plane with its real node, the CRDs, the operator, a real
# PostgreSQL with rows, a backup and a restore whose phases are shown live, then the restored rows
# compared with the backed-up ones. Leaves everything running; `make demo-down` stops it.
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

step "sample data service: a real PostgreSQL 15 StatefulSet snapback-demo/pg (2 replicas) on the real node"
kubectl apply -f examples/restorabilitymatrix.yaml -f examples/sample-dataservice.yaml
kubectl -n snapback-demo rollout status statefulset/pg --timeout=180s

# psql from this machine, straight to a pod's address on the node's pod bridge.
pod_ip() { kubectl -n snapback-demo get pod "$1" -o jsonpath='{.status.podIP}'; }
sql() { psql --host "$(pod_ip "$1")" --username postgres --no-psqlrc -v ON_ERROR_STOP=1 -At -c "$2"; }
digest() { sql "$1" "SELECT count(*) || ' rows, md5 ' || md5(string_agg(id || ':' || item, ',' ORDER BY id)) FROM orders"; }
for _ in $(seq 1 60); do sql pg-0 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done

step "rows: 10000 orders written to pg-0"
sql pg-0 "DROP TABLE IF EXISTS orders;
  CREATE TABLE orders (id integer PRIMARY KEY, item text NOT NULL, placed timestamptz NOT NULL);
  INSERT INTO orders SELECT i, 'item-' || md5(i::text), now() - i * interval '1 minute' FROM generate_series(1, 10000) AS i;
  CHECKPOINT;" >/dev/null
source_digest="$(digest pg-0)"
echo "pg-0:          $source_digest"

step "backup (CSI snapshots through csi-snapshotter, taken by the project's CSI driver)"
kubectl apply -f examples/backup.yaml
kubectl -n snapback-demo wait backup/pg-backup --for=jsonpath='{.status.phase}'=Completed --timeout=180s
kubectl -n snapback-demo get backup pg-backup -o wide
sql pg-0 "INSERT INTO orders VALUES (10001, 'written after the backup', now())" >/dev/null
echo "pg-0 after the backup: $(digest pg-0)"

step "restore into a new StatefulSet pg-restored"
kubectl apply -f examples/restore.yaml
tsx scripts/watch-restore.ts snapback-demo pg-restore

step "rows of the restored database, pg-restored-0 (as pg-0 was at the backup)"
for _ in $(seq 1 60); do sql pg-restored-0 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
restored_digest="$(digest pg-restored-0)"
echo "pg-0 at backup: $source_digest"
echo "pg-restored-0:  $restored_digest"
sql pg-restored-0 "SELECT id, item, placed FROM orders ORDER BY id LIMIT 3"
if [ "$restored_digest" != "$source_digest" ]; then
  echo "the restored rows differ from the backed-up ones" >&2
  exit 1
fi
echo "same rows, same checksum"

step "result"
kubectl -n snapback-demo get restores,backups,statefulsets,pvc
cat <<TEXT

Everything is still running. Look around:
  export KUBECONFIG=$KUBECONFIG
  kubectl get snapback -A                                  # Backups and Restores
  kubectl -n snapback-demo get restore pg-restore -o yaml   # status.phaseHistory, volumes, conditions
  kubectl -n snapback-demo describe restore pg-restore      # the phase-change events
  kubectl -n snapback-demo get volumesnapshots,pvc          # the snapshots and the restored volumes
  psql -h \$(kubectl -n snapback-demo get pod pg-restored-0 -o jsonpath='{.status.podIP}') -U postgres -c 'SELECT count(*) FROM orders'
  kubectl apply -f examples/restore-other-namespace.yaml    # a restore into another namespace
  curl -s http://127.0.0.1:$port/metrics | grep ^snapback_
Stop it all with: make demo-down
TEXT
