#!/bin/sh
# Entrypoint of the test cluster's postgres image (test/cluster/images/README.md).
#
# PGDATA (default /var/lib/postgresql/data/pgdata) is a subdirectory of the volume mounted at
# /var/lib/postgresql/data: the volume may be an empty directory owned by root and made writable
# through fsGroup, and initdb wants a directory of its own user with mode 0700, which this script
# creates. With no PG_VERSION there, it runs initdb (trust for every local and host connection:
# a test cluster only). A data directory restored from a crash-consistent snapshot keeps its
# postmaster.pid: no postgres can be running in this new container, so the file is removed. Then
# postgres replaces this shell, so the signals the kubelet sends reach it.
#
# Arguments: none, or postgres options (starting with "-"), added to the server's command line;
# any other command (psql, pg_isready, sh ...) is run instead of the server.
set -eu

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${PGHOST:=/tmp}"
export PGDATA PGHOST

if [ "$(id -u)" = 0 ]; then
  echo "entrypoint.sh: postgres does not run as root; set runAsUser (101 is the image's postgres)" >&2
  exit 1
fi

# initdb and postgres look the user up: a uid given by runAsUser may not be in /etc/passwd, which
# is read-only here, so nss_wrapper lends it an entry (as the official postgres image does).
if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  nss_dir=$(mktemp -d)
  echo "postgres:x:$(id -u):$(id -g):PostgreSQL:${PGDATA%/*}:/bin/sh" >"$nss_dir/passwd"
  cat /etc/group >"$nss_dir/group"
  getent group "$(id -g)" >/dev/null 2>&1 || echo "postgres:x:$(id -g):" >>"$nss_dir/group"
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
  NSS_WRAPPER_PASSWD=$nss_dir/passwd
  NSS_WRAPPER_GROUP=$nss_dir/group
  export LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if ! mkdir -p "$PGDATA" 2>/dev/null || [ ! -w "$PGDATA" ]; then
    echo "entrypoint.sh: cannot create $PGDATA as uid $(id -u): make its volume writable (fsGroup)" >&2
    exit 1
  fi
  chmod 0700 "$PGDATA"
  echo "entrypoint.sh: no cluster in $PGDATA: running initdb"
  initdb -D "$PGDATA" --username=postgres --auth-local=trust --auth-host=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDATA/pg_hba.conf" <<'HBA'

# test cluster image: trust every host (test/cluster/images/postgres/entrypoint.sh)
host    all             all             all                     trust
host    replication     all             all                     trust
HBA
  cat >>"$PGDATA/postgresql.conf" <<'CONF'

# test cluster image (test/cluster/images/postgres/entrypoint.sh)
listen_addresses = '*'
unix_socket_directories = '/tmp'
jit = off
CONF
elif [ -e "$PGDATA/postmaster.pid" ]; then
  echo "entrypoint.sh: removing the stale $PGDATA/postmaster.pid (restored data directory)"
  rm -f "$PGDATA/postmaster.pid"
fi

# The socket directory and listen address are set here too, for a data directory made elsewhere.
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGHOST" "$@"
