"""The deploy ramdisk (image-based deploy, like Ironic's "direct" deploy or MAAS/curtin).

iPXE boots the image's own kernel with two initrds: the image's ``initrd.img`` (its kernel
modules and kmod) and ``deploy.cpio.gz`` from here, whose ``/init`` replaces the image's. That
``/init`` (busybox ash) loads the drivers of every device found, gets an address by DHCP,
streams ``gpuctl.image`` onto the disk, checks that the first ``gpuctl.size`` bytes of the disk
have the sha256 ``gpuctl.digest``, fetches the node's NoCloud seed (``gpuctl.seed``:
meta-data, user-data, network-config) from the boot services into the written root's
``/var/lib/cloud/seed/nocloud/`` (0600: it holds the node's host key), so cloud-init finds it
before any network is up and sets the planned addresses in its first stage, reports ``POST <gpuctl.report>/done`` (or ``/failed/<reason>``,
the reasons :data:`provision.image.observe.DEPLOY_FAILURES` names) and powers the node off.
The image phase then sets the boot device to disk through Redfish and powers it on.

:func:`cpio` writes the archive deterministically (newc, mtime 0, sorted): the same busybox
gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from provision.errors import ExecutionError
from provision.image.observe import RAMDISK

BUSYBOX = Path("/bin/busybox")

INIT = r"""#!/gpuctl/bin/sh
# gpuctl deploy ramdisk: fetch the image, write the disk, verify, point cloud-init at the
# node's seed, report, power off. Arguments come from the kernel command line (gpuctl.*).
export PATH=/gpuctl/bin:/usr/sbin:/usr/bin:/sbin:/bin
# the image initrd's kmod knows its modules (aliases, compression); busybox's is the fallback
MODPROBE=modprobe
for m in /usr/sbin/modprobe /sbin/modprobe; do [ -x "$m" ] && { MODPROBE=$m; break; }; done
set -o pipefail
mkdir -p /proc /sys /dev /tmp /run /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/console 2>&1
say() { read -r up _ < /proc/uptime; echo "gpuctl-deploy: [$up] $*"; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
IMAGE=$(arg gpuctl.image); DIGEST=$(arg gpuctl.digest); SIZE=$(arg gpuctl.size)
REPORT=$(arg gpuctl.report); SEED=$(arg gpuctl.seed); DISK=$(arg gpuctl.disk)
report() { wget -q -O /dev/null --post-data "" "$REPORT/$1" || say "report $1 not sent"; }
stop() {
  sync; say "powering off"; sleep 2; poweroff -f
  echo o > /proc/sysrq-trigger; while :; do sleep 60; done
}
fail() { say "failed: $1"; report "failed/$1"; stop; }
drivers() {
  for round in 1 2 3; do
    for a in $(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u); do
      $MODPROBE -q "$a" 2>/dev/null
    done
  done
}
say "starting (image $IMAGE)"
drivers
for m in ext4 af_packet; do $MODPROBE -q "$m" 2>/dev/null; done
say "interfaces:" /sys/class/net/*
up=""
for i in /sys/class/net/*; do
  n=${i##*/}; [ "$n" = lo ] && continue
  ip link set "$n" up
  if udhcpc -i "$n" -n -q -t 6 -T 2 -s /gpuctl/udhcpc.sh; then up=$n; break; fi
done
[ -n "$up" ] || { say "no DHCP lease on any interface"; stop; }
if [ -z "$DISK" ]; then
  for d in vda sda nvme0n1 xvda; do [ -b "/dev/$d" ] && { DISK=/dev/$d; break; }; done
fi
[ -n "$DISK" ] && [ -b "$DISK" ] || fail no-disk
say "writing $IMAGE to $DISK"
wget -q -O - "$IMAGE" | dd of="$DISK" bs=4M 2>/dev/null || fail fetch-failed
sync
echo 3 > /proc/sys/vm/drop_caches
got=$(head -c "$SIZE" "$DISK" | sha256sum) || fail write-failed
got="sha256:${got%% *}"
[ "$got" = "$DIGEST" ] || { say "disk has $got, expected $DIGEST"; fail checksum-mismatch; }
say "verified $got"
blockdev --rereadpt "$DISK" 2>/dev/null
part=""
for p in "${DISK}2" "${DISK}p2"; do [ -b "$p" ] && part=$p; done
[ -n "$part" ] && mount -t ext4 "$part" /mnt || fail write-failed
if [ -n "$SEED" ]; then
  seed=/mnt/var/lib/cloud/seed/nocloud
  mkdir -p "$seed" && chmod 0700 "$seed" || fail write-failed
  for f in meta-data user-data network-config; do
    (umask 077; wget -q -O "$seed/$f" "$SEED$f") || { umount /mnt; fail seed-failed; }
  done
  mkdir -p /mnt/etc/cloud/cloud.cfg.d
  printf '# gpuctl: the seed of %s (fetched by the deploy ramdisk)\n%s\n' "$SEED" \
    'datasource_list: [NoCloud, None]' > /mnt/etc/cloud/cloud.cfg.d/90-gpuctl-seed.cfg
  say "seed from $SEED in /var/lib/cloud/seed/nocloud"
fi
umount /mnt || fail write-failed
report "done?digest=$got"
stop
"""

UDHCPC = r"""#!/gpuctl/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


def kernel_args(*, image_url: str, digest: str, size: int, report_url: str,
                seed_url: str) -> str:
    """The ``gpuctl.*`` kernel arguments of the ramdisk (pure)."""
    return (f"gpuctl.image={image_url} gpuctl.digest={digest} gpuctl.size={size} "
            f"gpuctl.report={report_url} gpuctl.seed={seed_url}")


def _ldd(binary: Path, run: Callable[..., subprocess.CompletedProcess[str]]) -> list[Path]:
    res = run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if "not a dynamic executable" in res.stdout + res.stderr:
        return []
    if res.returncode != 0:
        raise ExecutionError(f"deploy ramdisk: ldd {binary} failed: {res.stderr.strip()}")
    libs = []
    for line in res.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts else ""
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def _applets(busybox: Path, run: Callable[..., subprocess.CompletedProcess[str]]) -> list[str]:
    res = run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    names = sorted({a for a in res.stdout.split() if a.isidentifier() or "." not in a}
                   - {"busybox", ""})
    missing = {"sh", "wget", "udhcpc", "sha256sum", "dd", "ip", "mount", "poweroff"} - set(names)
    if res.returncode != 0 or missing:
        raise ExecutionError(f"deploy ramdisk: {busybox} lacks applets "
                             f"{', '.join(sorted(missing)) or '(--list failed)'}")
    return [a for a in names if "/" not in a]


def cpio(entries: Sequence[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries; directories have mode 0o040xxx,
    symlinks 0o120777 with the target as data. mtime 0, uid/gid 0: deterministic."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * (-n % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        nlink = 2 if mode & 0o040000 and not mode & 0o100000 else 1
        fields = [ino if name != "TRAILER!!!" else 0, mode, 0, 0, nlink, 0, len(data),
                  0, 0, 0, 0, len(raw), 0]
        out.write(b"070701" + b"".join(f"{v:08X}".encode() for v in fields))
        out.write(raw)
        pad(110 + len(raw))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def ramdisk_bytes(busybox: Path = BUSYBOX, *,
                  run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
                  ) -> bytes:
    """``deploy.cpio.gz``: /init, busybox (with the libraries it links) under /gpuctl."""
    if not busybox.is_file():
        raise ExecutionError(f"deploy ramdisk needs busybox at {busybox} (Debian package "
                             "busybox; scripts/setup.sh installs it)")
    files: dict[str, tuple[int, bytes]] = {
        "init": (0o100755, INIT.encode()),
        "gpuctl/udhcpc.sh": (0o100755, UDHCPC.encode()),
        "gpuctl/bin/busybox": (0o100755, busybox.read_bytes()),
    }
    for applet in _applets(busybox, run):
        files[f"gpuctl/bin/{applet}"] = (0o120777, b"busybox")
    # At their real paths (/usr/lib/...): an entry named lib/... would replace the image
    # initrd's /lib -> usr/lib link (the kernel's unpacker removes what has another type),
    # and with it /lib/modules.
    for lib in _ldd(busybox, run):
        real = lib.resolve()
        files[str(real).lstrip("/")] = (0o100755, real.read_bytes())
    dirs: set[str] = set()
    for path in files:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    entries = [(d, 0o040755, b"") for d in sorted(dirs)]
    entries += [(p, mode, data) for p, (mode, data) in sorted(files.items())]
    return gzip.compress(cpio(entries), mtime=0)


def write_ramdisk(folder: Path, busybox: Path = BUSYBOX) -> Path:
    path = folder / RAMDISK
    path.write_bytes(ramdisk_bytes(busybox))
    return path
