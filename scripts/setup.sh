#!/usr/bin/env bash
# Install everything gpuctl, its lab and its tests need on a fresh Debian 12 machine (root).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(iproute2 openssh-server openssh-client ibsim-utils opensm infiniband-diags
      kea-dhcp4-server bind9utils bridge-utils procps util-linux dpkg-dev
      cloud-init)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install Debian packages: ${missing[*]}" >&2
    exit 2
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these services on install; gpuctl runs its own copies.
  for svc in ssh kea-dhcp4-server opensm; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e '.[dev,lab,platform]' 2>&1 \
  | grep -v -e '^WARNING: Running pip as' -e 'is ignored: it is neither' || true
gpuctl --version
