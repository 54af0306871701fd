#!/usr/bin/env bash
# Installs the Debian packages in test/cluster/debian-packages.txt that are not installed yet.
# Returns at once when all are present; needs root (CI and the demo run as root here).
set -euo pipefail
LIST="$(dirname "${BASH_SOURCE[0]}")/debian-packages.txt"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
(( ${#missing[@]} == 0 )) && exit 0
echo "install-debian-packages.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
