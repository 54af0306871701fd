#!/usr/bin/env bash
# Builds the local test cluster's binaries from the Go wrapper modules under test/cluster/modules/
# (and the project's own CSI driver under test/cluster/csi-driver/) into .cache/bin/: the control
# plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl,
# snapshot-controller), the real node (kubelet, kube-proxy, containerd, ctr, the runc shim, runc,
# CNI plugins in cni/, csi-provisioner, csi-snapshotter, snapback-csi-driver), helm and versitygw.
#
# A module's binaries are rebuilt only when its go.mod/go.sum (the pinned versions)
# or its build recipe below change (for the project's own module, its sources too): a stamp
# per module in .cache/bin/.stamps/ holds the sha256 of those. With everything current this returns in well under 2 s.
# Go's module and build caches stay in their default places, so a machine that
# already built once (or another work tree on it) rebuilds nothing.
#
# Usage: test/cluster/build.sh [--force] [module...]
#   With no module: the cluster's own (what up.sh needs). Argo CD is built only when named
#   (`build.sh argocd`, as scripts/test.sh does), so the demo does not wait for it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODULES="$ROOT/test/cluster/modules"
BIN="${SNAPBACK_BIN_DIR:-$ROOT/.cache/bin}"
STAMPS="$BIN/.stamps"

# Measured on the 2-core reference machine with empty Go module and build caches, downloads
# included (see test/cluster/README.md): 26 min for the control plane's 9 binaries on 2026-11-23,
# 15 min for all 23 on 2026-12-02 (the module proxy answered faster).
COLD_BUILD_MINUTES="15 to 30"

# The machine's Go, no toolchain download (but Argo CD, which needs Go 1.27: the module proxy
# serves that toolchain); static binaries without cgo (but runc, whose seccomp support is
# libseccomp through cgo).
export GOTOOLCHAIN=local CGO_ENABLED=0
toolchain() { if [[ "$1" == argocd ]]; then echo go1.27.3; else echo local; fi; }
GO="${GO:-go}"
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
FORCE=0
[[ "${1:-}" == "--force" ]] && { FORCE=1; shift; }

# module -> binaries it builds ("name=package" pairs).
declare -A BINARIES=(
  [kubernetes]="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kubectl=k8s.io/kubernetes/cmd/kubectl kubelet=k8s.io/kubernetes/cmd/kubelet kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"
  [etcd]="etcd=go.etcd.io/etcd/server/v3"
  [kwok]="kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl"
  [helm]="helm=helm.sh/helm/v4/cmd/helm"
  [snapshotter]="snapshot-controller=github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller csi-snapshotter=github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter"
  [versitygw]="versitygw=github.com/versity/versitygw/cmd/versitygw"
  [containerd]="containerd=github.com/containerd/containerd/v2/cmd/containerd ctr=github.com/containerd/containerd/v2/cmd/ctr containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
  [runc]="runc=github.com/opencontainers/runc"
  [cni]="cni/bridge=github.com/containernetworking/plugins/plugins/main/bridge cni/host-local=github.com/containernetworking/plugins/plugins/ipam/host-local cni/loopback=github.com/containernetworking/plugins/plugins/main/loopback cni/portmap=github.com/containernetworking/plugins/plugins/meta/portmap"
  [provisioner]="csi-provisioner=github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner"
  [csi-driver]="snapback-csi-driver=snapback.local/test-cluster/csi-driver/cmd/snapback-csi-driver"
  [argocd]="argocd=github.com/argoproj/argo-cd/v3/cmd"
)
ORDER=(etcd kubernetes kwok snapshotter helm versitygw containerd runc cni provisioner csi-driver)
if (( $# > 0 )); then
  for m in "$@"; do [[ -n "${BINARIES[$m]:-}" ]] || { echo "build.sh: no module $m" >&2; exit 2; }; done
  ORDER=("$@")
fi

# Files a module puts beside its binaries, copied from the module's own source ("dest=source"):
# Argo CD's CRDs (the tests install them as users do, from the release that runs) and the scripts
# its image puts on PATH (the repo server runs git-verify-wrapper.sh on every checkout).
declare -A EXTRAS=(
  [argocd]="argocd-crds/application-crd.yaml=manifests/crds/application-crd.yaml argocd-crds/applicationset-crd.yaml=manifests/crds/applicationset-crd.yaml argocd-crds/appproject-crd.yaml=manifests/crds/appproject-crd.yaml argocd-tools/git-verify-wrapper.sh=hack/git-verify-wrapper.sh argocd-tools/gpg-wrapper.sh=hack/gpg-wrapper.sh"
)
declare -A EXTRAS_MODULE=([argocd]=github.com/argoproj/argo-cd/v3)
extras() { local pair; for pair in ${EXTRAS[$1]:-}; do echo "${pair%%=*}"; done; }
copy_extras() {
  [[ -n "${EXTRAS[$1]:-}" ]] || return 0
  local dir pair
  dir="$("$GO" list -m -f '{{.Dir}}' "${EXTRAS_MODULE[$1]}")"
  for pair in ${EXTRAS[$1]}; do
    mkdir -p "$(dirname "$BIN/${pair%%=*}")"
    install -m "$([[ "$pair" == *.sh ]] && echo 0755 || echo 0644)" "$dir/${pair#*=}" "$BIN/${pair%%=*}"
  done
}

# The project's own module lives beside the wrappers' folder; its sources are part of its stamp.
moduledir() { if [[ "$1" == csi-driver ]]; then echo "$ROOT/test/cluster/csi-driver"; else echo "$MODULES/$1"; fi; }
sources() { if [[ "$1" == csi-driver ]]; then (cd "$(moduledir "$1")" && git ls-files -co --exclude-standard -- '*.go' | sort | xargs cat); fi; }

# Build tags per binary: containerd without the storage drivers and docs this node never uses
# (no cgo), the shim without its gRPC server, runc with seccomp (every sandbox needs it).
buildtags() {
  case "$1" in
    containerd|ctr) echo "urfave_cli_no_docs no_btrfs no_devmapper no_zfs" ;;
    containerd-shim-runc-v2) echo "no_grpc" ;;
    runc) echo "seccomp" ;;
  esac
}
cgo() { if [[ "$1" == runc ]]; then echo 1; else echo 0; fi; }

# Bump when the ldflags/flags below change, so every module is rebuilt.
RECIPE_VERSION=2

# Version of a module as pinned by the wrapper module in the current directory.
modversion() { "$GO" list -m -f '{{.Version}}' "$1"; }
# Release time of that version: a fixed, reproducible build date.
modtime() { "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$1"; }

# Prints the -ldflags for one module (run inside the module's directory).
ldflags() {
  local base="-s -w" v t
  case "$1" in
    kubernetes)
      # Without these /version and `kubectl version` say v0.0.0-master, and kwokctl
      # reads the version from `kube-apiserver --version` to choose its flags.
      v="$(modversion k8s.io/kubernetes)"; t="$(modtime k8s.io/kubernetes)"
      local major="${v#v}"; major="${major%%.*}"
      local minor="${v#v*.}"; minor="${minor%%.*}"
      local pkg x=""
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        x+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        x+=" -X $pkg.gitCommit=module-$v -X $pkg.gitTreeState=clean -X $pkg.buildDate=$t"
      done
      echo "$base$x" ;;
    etcd)
      echo "$base -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$(modversion go.etcd.io/etcd/server/v3)" ;;
    helm)
      echo "$base -X helm.sh/helm/v4/internal/version.version=$(modversion helm.sh/helm/v4) -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
    snapshotter)
      echo "$base -X main.version=$(modversion github.com/kubernetes-csi/external-snapshotter/v8)" ;;
    provisioner)
      echo "$base -X main.version=$(modversion github.com/kubernetes-csi/external-provisioner/v6)" ;;
    containerd)
      v="$(modversion github.com/containerd/containerd/v2)"
      echo "$base -X github.com/containerd/containerd/v2/version.Version=$v -X github.com/containerd/containerd/v2/version.Revision=module-$v" ;;
    runc)
      echo "$base -X main.version=$(modversion github.com/opencontainers/runc)" ;;
    cni)
      echo "$base -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$(modversion github.com/containernetworking/plugins)" ;;
    versitygw)
      echo "$base -X main.Version=$(modversion github.com/versity/versitygw)" ;;
    argocd)
      echo "$base -X github.com/argoproj/argo-cd/v3/common.version=$(modversion github.com/argoproj/argo-cd/v3 | sed 's/^v//')" ;;
    *)
      echo "$base" ;;
  esac
}

# Fast path first: which modules need building? The stamp covers the pinned
# versions (go.mod, go.sum), the recipe and the Go version. `go env GOVERSION`
# is the only go call on this path; it is cheap.
GOVERSION_CACHED="$("$GO" env GOVERSION)"
stale=()
for m in "${ORDER[@]}"; do
  dir="$(moduledir "$m")"
  want="$( { echo "recipe=$RECIPE_VERSION go=$GOVERSION_CACHED toolchain=$(toolchain "$m")"; echo "${BINARIES[$m]}"; extras "$m"; cat "$dir/go.mod" "$dir/go.sum"; sources "$m"; } | sha256sum | cut -d' ' -f1)"
  have="$(cat "$STAMPS/$m" 2>/dev/null || true)"
  missing=0
  for pair in ${BINARIES[$m]}; do [[ -x "$BIN/${pair%%=*}" ]] || missing=1; done
  for extra in $(extras "$m"); do [[ -f "$BIN/$extra" ]] || missing=1; done
  if (( FORCE )) || [[ "$want" != "$have" ]] || (( missing )); then
    stale+=("$m:$want")
  fi
done

if (( ${#stale[@]} == 0 )); then
  echo "build.sh: all cluster binaries in ${BIN#$ROOT/} are current"
  exit 0
fi

total=0
for s in "${stale[@]}"; do set -- ${BINARIES[${s%%:*}]}; total=$(( total + $# )); done
echo "build.sh: building $total binaries into ${BIN#$ROOT/} (${GOVERSION_CACHED}, sequential, nice 10)."
echo "build.sh: a cold build (empty Go caches) takes about $COLD_BUILD_MINUTES minutes on 2 cores; later builds reuse Go's caches."

# runc's cgo needs libseccomp-dev and pkg-config: Debian packages a fresh machine lacks.
"$ROOT/test/cluster/install-debian-packages.sh"
mkdir -p "$BIN" "$STAMPS"
start_all=$SECONDS
n=0
for s in "${stale[@]}"; do
  m="${s%%:*}" want="${s#*:}"
  cd "$(moduledir "$m")"
  export GOTOOLCHAIN="$(toolchain "$m")"
  # Download (no-op when the module cache has it) before timing the compile.
  nice -n 10 "$GO" mod download
  flags="$(ldflags "$m")"
  for pair in ${BINARIES[$m]}; do
    name="${pair%%=*}" pkg="${pair#*=}"
    n=$(( n + 1 ))
    printf 'build.sh: [%d/%d] %-24s ' "$n" "$total" "$name"
    t0=$SECONDS
    # Build to a temp name and rename, so an interrupted build never leaves a
    # half-written binary that looks current.
    out="$BIN/$name" tmp="$BIN/${name%/*}/.${name##*/}.tmp"
    [[ "$name" == */* ]] || tmp="$BIN/.$name.tmp"
    mkdir -p "${out%/*}"
    CGO_ENABLED="$(cgo "$name")" nice -n 10 "$GO" build -trimpath -tags "$(buildtags "$name")" \
      -ldflags "$flags" -o "$tmp" "$pkg"
    mv -f "$tmp" "$out"
    echo "$(( SECONDS - t0 ))s"
  done
  copy_extras "$m"
  echo "$want" > "$STAMPS/$m"
done
echo "build.sh: done in $(( SECONDS - start_all ))s"
