"""iPXE scripts the boot services serve over HTTP (pure).

Kea hands iPXE clients ``http://<services>/ipxe/boot.ipxe`` (provision.render.dhcp);
that script chains the node's own script by the hostname its DHCP reservation carries,
``ipxe/nodes/<host>.ipxe``. For an image with a disk image it boots the image's kernel with
the image's initrd plus the deploy ramdisk (:mod:`provision.image.ramdisk`: it writes
``disk.img``, verifies its sha256, points cloud-init at the node's seed); otherwise the image's
kernel and initrd with the node's NoCloud seed (``ds=nocloud;s=...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.image.observe import DISK_IMAGE, RAMDISK
from provision.image.ramdisk import kernel_args
from provision.image.seeds import seed_url


def boot_script(services: str) -> str:
    return ("#!ipxe\n"
            "# gpuctl: chain this node's script (hostname from its DHCP reservation)\n"
            f"chain --autofree http://{services}/ipxe/nodes/${{hostname}}.ipxe || "
            "goto unknown\n"
            ":unknown\n"
            "echo gpuctl: no boot script for ${hostname} (${net0/mac}); retrying in 30 s\n"
            "sleep 30\n"
            "reboot\n")


def node_script(services: str, host: str, image: str, digest: str,
                disk: Mapping[str, Any] | None = None) -> str:
    base = f"http://{services}/images/{image}"
    if disk:
        args = kernel_args(image_url=f"{base}/{DISK_IMAGE}", digest=str(disk["digest"]),
                           size=int(disk["size"]), report_url=f"http://{services}/deploy/{host}",
                           seed_url=seed_url(services, host))
        return ("#!ipxe\n"
                f"# gpuctl: {host} deploys image {image} {digest} (disk {disk['digest']})\n"
                f"kernel {base}/vmlinuz {args} console=ttyS0\n"
                f"initrd {base}/initrd.img\n"
                f"initrd {base}/{RAMDISK}\n"
                "boot\n")
    args = (f"ip=dhcp ds=nocloud;s={seed_url(services, host)} "
            f"gpuctl.image={base}/rootfs.tar gpuctl.digest={digest or 'none'} "
            "console=ttyS0")
    return ("#!ipxe\n"
            f"# gpuctl: {host} boots image {image} {digest or '(not built yet)'}\n"
            f"kernel {base}/vmlinuz {args}\n"
            f"initrd {base}/initrd.img\n"
            "boot\n")
