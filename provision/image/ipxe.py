"""iPXE scripts the boot services serve over HTTP (pure).

Kea hands iPXE clients ``http://<services>/ipxe/boot.ipxe`` (provision.render.dhcp);
that script chains the node's own script by the hostname its DHCP reservation carries,
``ipxe/nodes/<host>.ipxe``, which boots the image's kernel and initrd with the node's NoCloud
seed (``ds=nocloud;s=...``) and the image URL and digest for the deploy ramdisk.
"""

from __future__ import annotations

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


def node_script(services: str, host: str, image: str, digest: str) -> str:
    base = f"http://{services}/images/{image}"
    args = (f"ip=dhcp ds=nocloud;s={seed_url(services, host)} "
            f"gpuctl.image={base}/rootfs.tar gpuctl.digest={digest or 'none'} "
            "console=ttyS0")
    return ("#!ipxe\n"
            f"# gpuctl: {host} boots image {image} {digest or '(not built yet)'}\n"
            f"kernel {base}/vmlinuz {args}\n"
            f"initrd {base}/initrd.img\n"
            "boot\n")
