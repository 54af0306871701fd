#!/bin/sh
# mmdebstrap --essential-hook for the postgres image: runs on the host with the rootfs as $1,
# after the Essential packages are in and before postgresql-common's postinst creates its user.
# It creates the postgres user and group with the fixed id 101 (what the test cluster's manifests
# use for runAsUser and fsGroup), so the id does not depend on the order packages made theirs.
set -eu
root=$1
if ! grep -q '^postgres:' "$root/etc/group"; then
  ! grep -q '^[^:]*:[^:]*:101:' "$root/etc/group" || { echo "gid 101 is taken" >&2; exit 1; }
  echo 'postgres:x:101:' >>"$root/etc/group"
fi
if ! grep -q '^postgres:' "$root/etc/passwd"; then
  ! grep -q '^[^:]*:[^:]*:101:' "$root/etc/passwd" || { echo "uid 101 is taken" >&2; exit 1; }
  echo 'postgres:x:101:101:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash' >>"$root/etc/passwd"
fi
