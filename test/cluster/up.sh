#!/usr/bin/env bash
# Starts the local test cluster (a real control plane from Go modules, see DESIGN.md §5):
#   etcd, kube-apiserver (RBAC + admission), kube-controller-manager (default
#   controllers), kube-scheduler and the kwok controller, started by
#   `kwokctl create cluster --runtime binary` from the binaries in .cache/bin;
#   3 fake nodes that kwok keeps Ready and whose pods it makes Running/Ready;
#   the VolumeSnapshot CRDs and snapshot-controller;
#   the storage simulator (test/cluster/storage-simulator/main.ts);
#   for the default cluster, the real node (test/cluster/node.sh: containerd, kubelet, kube-proxy,
#   the project's CSI driver with csi-provisioner and csi-snapshotter). SNAPBACK_REAL_NODE=0 skips it.
# Builds missing binaries first (test/cluster/build.sh). Idempotent: when the
# cluster is already up it returns at once; when it is half up, it completes it.
#
# Usage: test/cluster/up.sh            (CLUSTER_NAME=<name> for a second cluster)
# Then:  export KUBECONFIG=$PWD/.cache/cluster/kubeconfig
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=3
# Per fake node; kwok pods cost nothing, so be generous: the benchmark keeps about 3200 (bench/run.ts).
NODE_CPU=64 NODE_MEMORY=256Gi NODE_PODS=2000
SIM_MAIN="test/cluster/storage-simulator/main.ts"
SIM_STORAGECLASS=snapback-sim
SIM_WAIT_SECONDS=60

t0=$(now_ms)
"$ROOT/test/cluster/build.sh"

# The real node needs this machine's ports, bridge and cgroups: the default cluster has it.
REAL_NODE=0
[[ "$CLUSTER_NAME" == snapback && "${SNAPBACK_REAL_NODE:-1}" != 0 ]] && REAL_NODE=1
node_running() { (( ! REAL_NODE )) || { pid_alive kubelet "$STATE/node/kubelet.yaml" && pid_alive containerd "$STATE/node/ctrd"; }; }

# Fast path: everything already running.
if api_ready && pid_alive snapshot-controller "$BIN/snapshot-controller" &&
   pid_alive storage-simulator "$SIM_MAIN" && node_running; then
  log "already running ($(since "$t0")); KUBECONFIG=$KUBECONFIG_PATH"
  exit 0
fi

mkdir -p "$STATE" "$LOGS" "$PIDS"

# 1. Control plane. kwokctl gets a local path for every binary it would otherwise
#    download, no extra components (prometheus, jaeger, ... stay off), and an
#    empty --kubeconfig so it leaves ~/.kube/config alone. It picks free ports, so
#    clusters with other names do not clash. "Already exists" is fine: it then
#    only restarts components that are down.
log "starting control plane (kwokctl, binary runtime; state in ${STATE#$ROOT/})"
# The committed configuration, plus the API server's client certificate for kubelets (logs, exec,
# port-forward on the real node), whose path is this cluster's.
PKI="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki"
{ cat "$ROOT/test/cluster/kwokctl.yaml"; cat <<EOF
  - name: kube-apiserver
    extraArgs:
      - key: kubelet-client-certificate
        value: $PKI/admin.crt
      - key: kubelet-client-key
        value: $PKI/admin.key
      # The real node's name is no DNS name here: reach its kubelet by address.
      - key: kubelet-preferred-address-types
        value: InternalIP,Hostname
EOF
} > "$STATE/kwokctl.yaml"
t=$(now_ms)
"${KWOKCTL[@]}" create cluster \
  --config "$STATE/kwokctl.yaml" \
  --runtime binary \
  --kubeconfig "" \
  --timeout 5m \
  --secure-port=true \
  --kube-authorization=true \
  --kube-admission=true \
  --etcd-binary "$BIN/etcd" \
  --kube-apiserver-binary "$BIN/kube-apiserver" \
  --kube-controller-manager-binary "$BIN/kube-controller-manager" \
  --kube-scheduler-binary "$BIN/kube-scheduler" \
  --kwok-controller-binary "$BIN/kwok" \
  >"$LOGS/kwokctl.log" 2>&1 || { tail -n 40 "$LOGS/kwokctl.log" >&2; exit 1; }
# A stable, repo-relative path for tests and people; kwokctl's own copy stays put.
cp -f "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/kubeconfig.yaml" "$KUBECONFIG_PATH"
for (( i = 0; i < 120; i++ )); do api_ready && break; sleep 0.5; done
api_ready || { log "API server not ready after 60 s"; tail -n 40 "$LOGS/kwokctl.log" >&2; exit 1; }
log "control plane up ($(since "$t"))"

# 2. Fake nodes (idempotent: scales to exactly $NODES) and the VolumeSnapshot CRDs,
#    then wait for both. The CRDs come from the module cache of the pinned
#    external-snapshotter client module, not from a copy in git. The
#    VolumeGroupSnapshot CRDs are installed too: snapshot-controller enables that
#    GA feature by default and waits 30 s at start when they are missing.
t=$(now_ms)
"${KWOKCTL[@]}" scale node --replicas "$NODES" \
  --param ".allocatable.cpu=$NODE_CPU" \
  --param ".allocatable.memory=\"$NODE_MEMORY\"" \
  --param ".allocatable.pods=$NODE_PODS" >>"$LOGS/kwokctl.log" 2>&1 ||
  { tail -n 20 "$LOGS/kwokctl.log" >&2; exit 1; }
CRD_DIR="$(cd "$ROOT/test/cluster/modules/snapshotter" && export GOTOOLCHAIN=local &&
  m=github.com/kubernetes-csi/external-snapshotter/client/v8 &&
  { [[ -n "$("$GO" list -m -f '{{.Dir}}' $m)" ]] || "$GO" mod download $m; } && "$GO" list -m -f '{{.Dir}}' $m)/config/crd"
CRD_FILES=("$CRD_DIR"/snapshot.storage.k8s.io_*.yaml "$CRD_DIR"/groupsnapshot.storage.k8s.io_*.yaml)
kc apply --server-side --force-conflicts "${CRD_FILES[@]/#/-f}" >/dev/null
kc wait --for=condition=Ready node -l type=kwok --timeout=90s >/dev/null
[[ "$(kc get nodes -l type=kwok --no-headers | wc -l)" -eq "$NODES" ]] || { log "expected $NODES nodes"; kc get nodes >&2; exit 1; }
kc wait --for=condition=Established --timeout=60s \
  crd/volumesnapshotclasses.snapshot.storage.k8s.io \
  crd/volumesnapshotcontents.snapshot.storage.k8s.io \
  crd/volumesnapshots.snapshot.storage.k8s.io \
  crd/volumegroupsnapshotclasses.groupsnapshot.storage.k8s.io \
  crd/volumegroupsnapshotcontents.groupsnapshot.storage.k8s.io \
  crd/volumegroupsnapshots.groupsnapshot.storage.k8s.io >/dev/null
# The serviceaccount controller creates default/default once kcm is working;
# pods (and TokenRequest for test ServiceAccounts) need it.
for (( i = 0; i < 120; i++ )); do kc -n default get sa default >/dev/null 2>&1 && break; sleep 0.5; done
kc -n default get sa default >/dev/null
log "$NODES nodes Ready, VolumeSnapshot CRDs Established ($(since "$t"))"

# 3. snapshot-controller: a plain background process against our kubeconfig. Its client defaults
#    to 5 requests/s, about 0.6 snapshots/s (seen): the benchmark's 1000 backups would measure that limit.
if ! pid_alive snapshot-controller "$BIN/snapshot-controller"; then
  t=$(now_ms)
  start_bg snapshot-controller "$BIN/snapshot-controller" \
    --kubeconfig="$KUBECONFIG_PATH" --leader-election=false --v=2 \
    --kube-api-qps=200 --kube-api-burst=400
  for (( i = 0; i < 150; i++ )); do
    grep -q 'Starting snapshot controller' "$LOGS/snapshot-controller.log" && break
    started_alive snapshot-controller || break
    sleep 0.2
  done
  if ! grep -q 'Starting snapshot controller' "$LOGS/snapshot-controller.log"; then
    log "snapshot-controller did not start; log tail:"; tail -n 30 "$LOGS/snapshot-controller.log" >&2; exit 1
  fi
  log "snapshot-controller started, pid $(cat "$PIDS/snapshot-controller.pid") ($(since "$t"))"
fi

# 4. Storage simulator (plays the CSI driver).
if ! pid_alive storage-simulator "$SIM_MAIN"; then
  if [[ ! -x "$ROOT/node_modules/.bin/tsx" ]]; then
    log "node_modules/.bin/tsx is missing: run 'make deps' in $ROOT first" >&2
    exit 1
  fi
  t=$(now_ms)
  # From the repo root, with the project's Node (node_modules/.bin) first on PATH.
  (cd "$ROOT" && export KUBECONFIG="$KUBECONFIG_PATH" PATH="$ROOT/node_modules/.bin:$PATH" &&
    start_bg storage-simulator node_modules/.bin/tsx "$SIM_MAIN")
  for (( i = 0; i < SIM_WAIT_SECONDS * 2; i++ )); do
    kc get storageclass "$SIM_STORAGECLASS" >/dev/null 2>&1 && break
    started_alive storage-simulator || break
    sleep 0.5
  done
  if ! kc get storageclass "$SIM_STORAGECLASS" >/dev/null 2>&1; then
    log "storage simulator did not create StorageClass $SIM_STORAGECLASS within ${SIM_WAIT_SECONDS}s; log tail:" >&2
    tail -n 40 "$LOGS/storage-simulator.log" >&2
    exit 1
  fi
  log "storage simulator started, pid $(cat "$PIDS/storage-simulator.pid"), StorageClass $SIM_STORAGECLASS present ($(since "$t"))"
fi

# 5. The real node.
if (( REAL_NODE )); then "$ROOT/test/cluster/node.sh" up; fi

server_version="$(kc get --raw=/version | grep -o '"gitVersion": *"[^"]*"' | cut -d'"' -f4)"
log "cluster '$CLUSTER_NAME' (Kubernetes $server_version) ready in $(since "$t0")"
log "export KUBECONFIG=$KUBECONFIG_PATH"
