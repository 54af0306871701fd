#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: static checks and unit tests first (fast, no
# cluster), then one local control plane for all integration tests, always torn down after.
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
  [ -z "${SNAPBACK_KEEP_CLUSTER:-}" ] || return 0
  # The peer first: the storage backend it shares lives in the first cluster's state.
  if [ "$peer_started_here" = 1 ]; then
    step "stopping the peer control plane"
    CLUSTER_NAME=peer test/cluster/down.sh || true
  fi
  if [ "$started_here" = 1 ]; then
    step "stopping the local control plane"
    test/cluster/down.sh || true
  fi
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
