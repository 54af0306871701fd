#!/usr/bin/env bash
# `make bench`: builds the control plane (cached) and the Go baseline, starts a cluster of its own
# (CLUSTER_NAME=bench, beside any test cluster), runs bench/run.ts and always tears the cluster
# down. Arguments go to bench/run.ts, e.g. scripts/bench.sh --restores 100 --cached 10000; then
# bench/sync-run.ts and bench/data-path.ts run. `scripts/bench.sh sync [--records N]` runs the
# backup sync benchmark alone, `scripts/bench.sh data [--pg-scale N] [--file-mib N]` the data path
# alone (it needs no cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PWD/.cache/bin:$PATH"
export GOTOOLCHAIN=local CGO_ENABLED=0
export CLUSTER_NAME=bench

step() { printf '\n==> %s\n' "$*"; }

step "Go baseline (bench/go) into .cache/bin"
(cd bench/go && go build -trimpath -ldflags='-s -w' -o ../../.cache/bin/snapback-bench-go .)

step "restic v0.18.1 (bench/restic) into .cache/bin"
(cd bench/restic && go build -trimpath -ldflags='-s -w' -o ../../.cache/bin/restic github.com/restic/restic/cmd/restic)

step "operator build (dist/): the benchmarks run the compiled operator, as the image does"
npm run -s build
export SNAPBACK_OPERATOR_ENTRY=dist/src/main.js

if [ "${1:-}" = data ]; then
  shift
  step "data path benchmark"
  test/cluster/install-debian-packages.sh
  exec node --import tsx bench/data-path.ts "$@"
fi

step "bench cluster"
test/cluster/up.sh
cleanup() {
  if [ -z "${SNAPBACK_KEEP_CLUSTER:-}" ]; then
    step "stopping the bench cluster"
    test/cluster/down.sh || true
  fi
}
trap cleanup EXIT

step "benchmarks"
export SNAPBACK_TEST_KUBECONFIG="$PWD/.cache/clusters/bench/kubeconfig"
if [ "${1:-}" = sync ]; then
  shift
  node --import tsx bench/sync-run.ts "$@"
else
  node --import tsx bench/run.ts "$@"
  node --import tsx bench/sync-run.ts
  node --import tsx bench/data-path.ts
fi
