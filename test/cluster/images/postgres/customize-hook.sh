#!/bin/sh
# mmdebstrap --customize-hook for the postgres image: runs on the host with the finished rootfs as
# $1. It trims what a test database never uses and lays out the directories the image needs.
set -eu
root=$1
pgbin=/usr/lib/postgresql/15/bin

# JIT (libllvm14, libz3: about 130 MB) is a hard dependency of postgresql-15 but optional at run
# time: without llvmjit.so the server runs with JIT unavailable (jit=off is set as well). Perl is
# needed only by postgresql-common's wrapper scripts (pg_ctlcluster, pg_wrapper); the image runs
# the binaries in $pgbin directly. Their dependants stay installed, so dpkg's database notes them
# as broken: this rootfs is never upgraded in place, it is rebuilt. The locales package (locale
# sources and locale-gen) goes too: the clusters use C.UTF-8, which libc-bin ships compiled.
chroot "$root" dpkg --purge --force-depends \
  libllvm14 libz3-4 perl perl-modules-5.36 libperl5.36 libjson-perl locales >/dev/null 2>&1
rm -rf "$root/usr/lib/postgresql/15/lib/llvmjit.so" "$root/usr/lib/postgresql/15/lib/llvmjit_types.bc" \
  "$root/usr/lib/postgresql/15/lib/bitcode"

# postgresql-common's postinst made a "main" cluster; the entrypoint makes its own in $PGDATA.
rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15"

# The client tools in /usr/bin are links to the Perl pg_wrapper: point them at the binaries.
for link in "$root"/usr/bin/*; do
  [ -L "$link" ] || continue
  case "$(readlink "$link")" in
    */pg_wrapper)
      name=${link##*/}
      if [ -x "$root$pgbin/$name" ]; then ln -sfn "$pgbin/$name" "$link"; else rm -f "$link"; fi ;;
  esac
done

# The data volume's mount point, writable by any uid (the entrypoint makes the cluster in a 0700
# subdirectory of it); the default socket directory, for clients that do not read PGHOST.
install -d -m 1777 -o 101 -g 101 "$root/var/lib/postgresql/data"
install -d -m 3777 -o 101 -g 101 "$root/var/run/postgresql"
install -m 0755 "$(dirname "$0")/entrypoint.sh" "$root/usr/local/bin/entrypoint.sh"

# Caches and logs that only make the rootfs bigger and less reproducible.
rm -rf "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/* \
  "$root"/var/cache/ldconfig/aux-cache "$root/etc/resolv.conf" "$root/etc/hostname"
