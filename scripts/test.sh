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

step "local control plane"
# A cluster someone started by hand (make cluster-up) is used and left running.
started_here=1
if [ -f .cache/cluster/kubeconfig ] && [ -x .cache/bin/kubectl ] &&
  kubectl --kubeconfig .cache/cluster/kubeconfig get --raw /readyz >/dev/null 2>&1; then
  started_here=0
fi
test/cluster/up.sh
cleanup() {
  if [ "$started_here" = 1 ] && [ -z "${SNAPBACK_KEEP_CLUSTER:-}" ]; then
    step "stopping the local control plane"
    test/cluster/down.sh || true
  fi
}
trap cleanup EXIT

step "integration tests"
if ! npm run -s test:integration; then
  step "the local cluster after the failure"
  test/cluster/report.sh 40 || true
  exit 1
fi
