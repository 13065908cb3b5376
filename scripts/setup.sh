#!/usr/bin/env bash
# Install everything gpuctl, its lab and its tests need on a fresh Debian 12 / Ubuntu 24.04
# machine (root for the Debian packages). Python packages go into a virtual environment,
# .venv/ at the repository root (the system Python is externally managed: PEP 668), created
# with the system `python3 -m venv`. Afterwards put gpuctl on PATH with:
#     . .venv/bin/activate        (or: export PATH="$PWD/.venv/bin:$PATH")
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(iproute2 openssh-server openssh-client ibsim-utils opensm infiniband-diags
      kea-dhcp4-server bind9utils bridge-utils procps util-linux dpkg-dev
      cloud-init python3-venv python3-dev gcc librsvg2-bin mmdebstrap
      ipxe nginx tftpd-hpa busybox isc-dhcp-relay qemu-system-x86 ipxe-qemu qemu-utils
      syslinux syslinux-common mtools dosfstools fdisk e2fsprogs
      libvirt-daemon-system libvirt-clients libvirt-dev pkg-config)
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
  for svc in ssh kea-dhcp4-server opensm nginx tftpd-hpa isc-dhcp-relay libvirtd virtlogd; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
  # Without systemd the packages' init scripts started the boot servers: stop them too.
  for svc in nginx tftpd-hpa isc-dhcp-relay libvirtd virtlogd; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

VENV=${GPUCTL_VENV:-.venv}
# A venv whose pip does not run (made before python3-venv was installed, or its Python
# removed) is made again.
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "setup: $VENV exists and is not a virtual environment; move it or set GPUCTL_VENV" >&2
    exit 2
  fi
  echo "setup: creating the virtual environment $VENV with $(command -v "${PYTHON:-python3}")"
  "${PYTHON:-python3}" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev,lab,platform]'
"$VENV/bin/gpuctl" --version
case ":$PATH:" in
  *":$PWD/$VENV/bin:"*) ;;
  *) echo "setup: gpuctl is in $VENV/bin; put it on PATH with: . $VENV/bin/activate" ;;
esac
