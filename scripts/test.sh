#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: static checks and unit tests first (fast, no
# cluster), then one local control plane (with its real node) for all integration tests, always torn
# down after, and checked to leave nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PWD/.cache/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "type check, lint, format"
npm run -s typecheck
npm run -s lint
npm run -s format:check

step "unit tests"
npm run -s test:unit

step "the test CSI driver: csi-sanity (csi-test/v5) and its own tests"
(cd test/cluster/csi-driver && GOTOOLCHAIN=local go test -count=1 ./...)

step "Argo CD, for the GitOps tests (built from Go modules; Redis and git from Debian)"
test/cluster/install-debian-packages.sh
test/cluster/build.sh argocd

step "local control planes"
# A cluster someone started by hand (make cluster-up) is used and left running. The second one
# (peer) is for the cross-cluster tests; its storage simulator shares the first one's backend.
running() {
  local kubeconfig="$1"
  [ -f "$kubeconfig" ] && [ -x .cache/bin/kubectl ] &&
    kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}
started_here=1 peer_started_here=1
running .cache/cluster/kubeconfig && started_here=0
running .cache/clusters/peer/kubeconfig && peer_started_here=0
cleanup() {
  local status=$?
  [ -z "${SNAPBACK_KEEP_CLUSTER:-}" ] || return 0
  # The peer first: the storage backend it shares lives in the first cluster's state.
  if [ "$peer_started_here" = 1 ]; then
    step "stopping the peer control plane"
    CLUSTER_NAME=peer test/cluster/down.sh || true
  fi
  if [ "$started_here" = 1 ]; then
    step "stopping the local control plane and its real node"
    test/cluster/down.sh || true
    # Container processes, mounts, the bridge, iptables chains and cgroups outlive a careless
    # teardown: the run fails if any is left.
    test/cluster/node.sh check || status=1
  fi
  exit "$status"
}
trap cleanup EXIT
test/cluster/up.sh
CLUSTER_NAME=peer test/cluster/up.sh

step "integration tests"
if ! npm run -s test:integration; then
  step "the local cluster after the failure"
  test/cluster/report.sh 40 || true
  CLUSTER_NAME=peer test/cluster/report.sh 20 || true
  exit 1
fi
