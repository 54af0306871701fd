#!/usr/bin/env bash
# The local cluster's one real node (see README.md "The real node"): containerd, kubelet and
# kube-proxy on this machine, pods networked on a bridge of their own, and the project's CSI driver
# (test/cluster/csi-driver) behind the real csi-provisioner and csi-snapshotter.
#
#   test/cluster/node.sh up     start what is not running (idempotent); the control plane must be up
#   test/cluster/node.sh down   stop everything by PID and remove the bridge, rules, cgroups, state
#   test/cluster/node.sh check  exit 1, naming it, if anything of the node is left on the machine
#
# Only the default cluster has a real node: kubelet's ports, the bridge and the cgroups are the
# machine's, so there is one of each.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_NAME=snapback-node
# Short paths: unix socket paths must stay under 108 bytes wherever the clone lives.
NODE="$STATE/node"
CTRD="$NODE/ctrd"
KUBELET_ROOT="$NODE/kubelet"
CSI_DATA="$NODE/csi-data"
SOCK="$CTRD/containerd.sock"
DRIVER=csi.snapback.test
CSI_SOCK="$KUBELET_ROOT/plugins/$DRIVER/csi.sock"
BRIDGE=snapback0
POD_SUBNET=10.244.0.0/24
BRIDGE_IP=10.244.0.1
# The API server's default service range: pods reach the `kubernetes` Service through kube-proxy.
SERVICE_SUBNET=10.0.0.0/24
CGROUP_ROOT=snapback-node
TAINT_KEY=snapback.dev/real-node
IMAGES_DIR="$ROOT/.cache/images"
# The v1 hierarchies kubelet's cgroupfs driver writes to (the "unified" one holds only hugetlb here).
HIERARCHIES=(cpu cpuacct cpuset memory devices freezer blkio pids systemd)

ctr_() { "$BIN/ctr" --address "$SOCK" -n k8s.io "$@"; }
# in_node CMD...: runs CMD in the node's private mount namespace (held by the anchor process).
in_node() { nsenter -t "$(cat "$PIDS/node-anchor.pid")" -m -- "$@"; }
wait_for() { # wait_for SECONDS WHAT CMD...
  local seconds="$1" what="$2" i; shift 2
  for (( i = 0; i < seconds * 5; i++ )); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$what not ready after ${seconds}s"; return 1
}

write_configs() {
  mkdir -p "$NODE/cni/net.d" "$NODE/sysctl" "$NODE/varlog" "$NODE/pod-logs" "$CSI_DATA" "$KUBELET_ROOT"
  # The values kubelet (protectKernelDefaults) insists on, bind-mounted over /proc/sys inside the
  # node's mount namespace only: the machine's own settings stay untouched.
  echo 1 > "$NODE/sysctl/vm.overcommit_memory"
  echo 10 > "$NODE/sysctl/kernel.panic"
  echo 1 > "$NODE/sysctl/kernel.panic_on_oops"

  # No masquerading and no default route: pods reach each other, this machine and the service
  # range, and nothing beyond it.
  cat > "$NODE/cni/net.d/10-snapback.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "snapback",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$BRIDGE_IP" }]],
        "routes": [{ "dst": "$SERVICE_SUBNET" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

  cat > "$CTRD/config.toml" <<EOF
version = 3
root = '$CTRD/root'
state = '$CTRD/state'
[grpc]
  address = '$SOCK'
[ttrpc]
  address = '$CTRD/ttrpc.sock'
[plugins.'io.containerd.internal.v1.opt']
  path = '$CTRD/opt'
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = 'registry.k8s.io/pause:3.10.2'
[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: runc may not lower oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '$BIN/runc'
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['$BIN/cni']
    conf_dir = '$NODE/cni/net.d'
EOF

  local ca="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki/ca.crt"
  cat > "$NODE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine has cgroup v1 only (kubelet 1.35+ refuses it unless told).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
protectKernelDefaults: true
oomScoreAdj: 0
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $NODE/pod-logs
# Served on the pod bridge only; clients need a certificate of the cluster's CA.
address: $BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: $ca }
authorization: { mode: AlwaysAllow }
registerWithTaints:
  - { key: $TAINT_KEY, value: 'true', effect: NoSchedule }
clusterDomain: cluster.local
maxPods: 60
serializeImagePulls: false
# The disk is shared with everything else on the machine: evict only when nearly full.
evictionHard: { memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2% }
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 97
EOF

  cat > "$NODE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $KUBECONFIG_PATH }
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUBNET
# Service traffic between pods on one bridge returns through this machine's conntrack.
iptables: { masqueradeAll: true, localhostNodePorts: false }
# Leave the machine's conntrack table size alone.
conntrack: { maxPerCore: 0 }
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

# Cgroups for kubelet's cgroupRoot in every v1 hierarchy (cpuset needs its cpus and mems set).
make_cgroups() {
  local h
  for h in "${HIERARCHIES[@]}"; do
    [[ -d "/sys/fs/cgroup/$h" ]] && mkdir -p "/sys/fs/cgroup/$h/$CGROUP_ROOT"
  done
  cat /sys/fs/cgroup/cpuset/cpuset.cpus > "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems > "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/cpuset.mems"
}

start_anchor() {
  pid_alive node-anchor "snapback-node-anchor" && return 0
  # A private mount namespace, then shared propagation inside it (kubelet and containerd need
  # rshared); the sysctl files and /var/log are bound there only. `unshare` execs bash, which
  # execs the named `sleep`: the recorded pid is the anchor throughout.
  start_bg node-anchor unshare -m --propagation private -- bash -c '
    set -e
    mount --make-rshared /
    for s in vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
      mount --bind "$1/sysctl/$s" "/proc/sys/${s//.//}"
    done
    mount --bind "$1/varlog" /var/log
    exec -a snapback-node-anchor sleep infinity' _ "$NODE"
  wait_for 10 "the node's mount namespace" grep -q snapback-node-anchor "/proc/$(cat "$PIDS/node-anchor.pid")/cmdline"
}

start_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

start_containerd() {
  pid_alive containerd "$CTRD/config.toml" && return 0
  PATH="$BIN:$PATH" start_bg containerd nsenter -t "$(cat "$PIDS/node-anchor.pid")" -m -- \
    "$BIN/containerd" --config "$CTRD/config.toml"
  wait_for 30 containerd ctr_ version
}

import_images() {
  local name archive ref stamp
  # The node image is only the operator image's base: it never runs here.
  for name in sandbox postgres snapback; do
    archive="$IMAGES_DIR/$name.tar"
    [[ -s "$archive" ]] || { log "$archive is missing: run test/cluster/images/build.sh"; return 1; }
    ref="$(cat "${archive%.tar}.ref")"
    stamp="$(sha256sum < "${archive%.tar}.ref" | cut -c1-12)-$(stat -c %Y "$archive")"
    # Imported already (same archive): containerd keeps images across node restarts.
    [[ "$(cat "$CTRD/imported-${archive##*/}" 2>/dev/null)" == "$stamp" ]] && continue
    ctr_ images import --all-platforms "$archive" >/dev/null 2>>"$LOGS/ctr.log"
    echo "$stamp" > "$CTRD/imported-${archive##*/}"
    log "imported $ref"
  done
}

start_kubelet() {
  pid_alive kubelet "$NODE/kubelet.yaml" && return 0
  start_bg kubelet nsenter -t "$(cat "$PIDS/node-anchor.pid")" -m -- "$BIN/kubelet" \
    --config "$NODE/kubelet.yaml" --kubeconfig "$KUBECONFIG_PATH" --root-dir "$KUBELET_ROOT" \
    --hostname-override "$NODE_NAME" --node-ip "$BRIDGE_IP" \
    --node-labels "$TAINT_KEY=true,topology.csi.snapback.test/node=$NODE_NAME" --v=1
}

start_kube_proxy() {
  pid_alive kube-proxy "$NODE/kube-proxy.yaml" && return 0
  start_bg kube-proxy "$BIN/kube-proxy" --config "$NODE/kube-proxy.yaml" --v=1
}

start_csi() {
  mkdir -p "$KUBELET_ROOT/plugins/$DRIVER" "$KUBELET_ROOT/plugins_registry"
  if ! pid_alive csi-driver "$CSI_DATA"; then
    start_bg csi-driver nsenter -t "$(cat "$PIDS/node-anchor.pid")" -m -- "$BIN/snapback-csi-driver" \
      --endpoint "unix://$CSI_SOCK" --driver-name "$DRIVER" --node-id "$NODE_NAME" \
      --data-dir "$CSI_DATA" --capacity 40Gi --registration-dir "$KUBELET_ROOT/plugins_registry"
    wait_for 20 "the CSI driver's socket" test -S "$CSI_SOCK"
  fi
  if ! pid_alive csi-provisioner "$CSI_SOCK"; then
    NAMESPACE=kube-system start_bg csi-provisioner "$BIN/csi-provisioner" \
      --csi-address "$CSI_SOCK" --kubeconfig "$KUBECONFIG_PATH" --leader-election=false \
      --feature-gates Topology=true --extra-create-metadata --timeout 60s \
      --enable-capacity --capacity-ownerref-level=-1 --capacity-poll-interval 10s --v=2
  fi
  if ! pid_alive csi-snapshotter "$CSI_SOCK"; then
    start_bg csi-snapshotter "$BIN/csi-snapshotter" \
      --csi-address "$CSI_SOCK" --kubeconfig "$KUBECONFIG_PATH" --leader-election=false \
      --extra-create-metadata --timeout 120s --v=2
  fi
}

apply_storage_objects() {
  kc apply --server-side --force-conflicts -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: { name: $DRIVER }
spec:
  attachRequired: false
  podInfoOnMount: false
  storageCapacity: true
  fsGroupPolicy: File
  volumeLifecycleModes: [Persistent]
---
# The class real drivers mostly use: volumes bind when their first pod is scheduled.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: snapback-csi }
provisioner: $DRIVER
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: snapback-csi-immediate }
provisioner: $DRIVER
volumeBindingMode: Immediate
reclaimPolicy: Delete
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: snapback-csi
  # The default for its driver: a Backup of these volumes needs no class named.
  annotations: { snapshot.storage.kubernetes.io/is-default-class: 'true' }
driver: $DRIVER
deletionPolicy: Delete
EOF
}

node_ready() {
  [[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
driver_registered() {
  kc get csinode "$NODE_NAME" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null | grep -qw "$DRIVER"
}

up() {
  api_ready || { log "the control plane is not up: run test/cluster/up.sh"; exit 1; }
  for b in kubelet kube-proxy containerd ctr containerd-shim-runc-v2 runc cni/bridge csi-provisioner csi-snapshotter snapback-csi-driver; do
    [[ -x "$BIN/$b" ]] || { log "$BIN/$b is missing: run test/cluster/build.sh"; exit 1; }
  done
  local t0 t; t0=$(now_ms)
  "$ROOT/test/cluster/install-debian-packages.sh"
  "$ROOT/test/cluster/images/build.sh"
  mkdir -p "$NODE" "$CTRD" "$LOGS" "$PIDS"
  write_configs
  make_cgroups
  start_bridge
  start_anchor
  t=$(now_ms); start_containerd; log "containerd up ($(since "$t"))"
  t=$(now_ms); import_images; log "images present ($(since "$t"))"
  start_csi
  start_kubelet
  start_kube_proxy
  apply_storage_objects
  wait_for 90 "node $NODE_NAME" node_ready || { tail -n 30 "$LOGS/kubelet.log" >&2; exit 1; }
  wait_for 60 "CSI driver registration on $NODE_NAME" driver_registered ||
    { tail -n 30 "$LOGS/kubelet.log" "$LOGS/csi-driver.log" >&2; exit 1; }
  log "real node $NODE_NAME Ready with CSI driver $DRIVER ($(since "$t0"))"
}

# kube-proxy's and kubelet's iptables chains (KUBE-*) and the rules that jump to them, in every
# table of both families: the machine's own rules stay.
remove_kube_rules() {
  local family table rule chain chains
  for family in iptables ip6tables; do
    command -v "$family-save" >/dev/null || continue
    for table in filter nat mangle; do
      while read -r rule; do
        [[ -n "$rule" ]] && eval "$family -w -t $table ${rule/#-A/-D}" 2>/dev/null || true
      done < <("$family-save" -t "$table" 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -v '^-A KUBE-' || true)
      mapfile -t chains < <("$family-save" -t "$table" 2>/dev/null | grep -oE '^:KUBE-[A-Za-z0-9-]+' | tr -d : || true)
      for chain in "${chains[@]}"; do "$family" -w -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in "${chains[@]}"; do "$family" -w -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
}

# Every process of the node: by the pid files, then whatever still runs in its cgroups or from
# its binaries (containers and shims are reparented away from the processes that started them).
node_pids() {
  local h f
  for h in "${HIERARCHIES[@]}"; do
    for f in "/sys/fs/cgroup/$h/$CGROUP_ROOT"/**/cgroup.procs "/sys/fs/cgroup/$h/$CGROUP_ROOT/cgroup.procs"; do
      [[ -r "$f" ]] && cat "$f"
    done
  done
  pgrep -f -- "$CTRD" || true
  pgrep -f -- "$KUBELET_ROOT" || true
  pgrep -f -- "$NODE/kube-proxy.yaml" || true
  pgrep -f -- "$CSI_SOCK" || true
  pgrep -f -- "snapback-node-anchor" || true
}

down() {
  local t0 name pids h i; t0=$(now_ms)
  shopt -s globstar nullglob
  # kubelet first, so that it does not restart the containers stopped next.
  for name in kubelet csi-provisioner csi-snapshotter kube-proxy; do
    stop_pid "$name" "$NODE"
  done
  remove_kube_rules
  for (( i = 0; i < 3; i++ )); do
    mapfile -t pids < <(node_pids | sort -u)
    (( ${#pids[@]} == 0 )) && break
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.5
  done
  rm -f "$PIDS"/{node-anchor,containerd,csi-driver}.pid
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  # Deepest first; a cgroup goes once its processes have.
  for h in "${HIERARCHIES[@]}"; do
    [[ -d "/sys/fs/cgroup/$h/$CGROUP_ROOT" ]] || continue
    for (( i = 0; i < 20; i++ )); do
      find "/sys/fs/cgroup/$h/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ -d "/sys/fs/cgroup/$h/$CGROUP_ROOT" ]] || break
      sleep 0.2
    done
  done
  rm -rf "$NODE"
  log "real node stopped and removed ($(since "$t0"))"
}

# Anything of the node still on the machine, one line each.
leftovers() {
  local h family
  node_pids | sort -u | sed 's/^/process /'
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
  ip -o link show type veth 2>/dev/null | grep -q "master $BRIDGE" && echo "veth on $BRIDGE"
  for h in "${HIERARCHIES[@]}"; do [[ -d "/sys/fs/cgroup/$h/$CGROUP_ROOT" ]] && echo "cgroup $h/$CGROUP_ROOT"; done
  grep -F -- "$NODE" /proc/self/mountinfo | awk '{print "mount " $5}'
  for family in iptables ip6tables; do
    "$family-save" 2>/dev/null | grep -qE '^:KUBE-' && echo "$family chains KUBE-* (kube-proxy, kubelet)"
  done
  [[ -d "$NODE" ]] && echo "state ${NODE#$ROOT/}"
  true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check)
    left="$(shopt -s globstar nullglob; leftovers)"
    if [[ -n "$left" ]]; then log "left behind:"; echo "$left" >&2; exit 1; fi
    log "nothing of the real node is left" ;;
  *) echo "usage: $0 up|down|check" >&2; exit 2 ;;
esac
