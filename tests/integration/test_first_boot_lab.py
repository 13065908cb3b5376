"""A real first boot from disk that reaches SSH, under QEMU (TCG).

The lab site's first node gets its seed from ``gpuctl image seed`` (host key made before
imaging, planned address matched by the manifest MAC, admin key, image digest). A network
namespace plays the provisioning network: a bridge at the plan's services address, busybox
udhcpd reserving the node's planned address for its MAC, and an HTTP server with nginx's
gpuctl log format serving the image folder and the seeds. A QEMU machine with a blank virtio
disk boots the image's kernel + initrd + gpuctl's deploy ramdisk (what the node's iPXE script
loads), which writes the real ``disk.img`` (the cached mmdebstrap image), verifies its sha256
on the disk, fetches the node's seed into the written root and powers off. Started again from
its disk: SeaBIOS -> SYSLINUX -> the image's kernel with its root on the VM's disk, systemd,
cloud-init with the seed (hostname, address by MAC, the pre-generated host key, admin keys,
/etc/gpuctl/image.json), phone-home, sshd. The test then logs in with strict host key checking
against the known_hosts ``gpuctl image seed`` wrote and checks all of that on the node.
Times go to the output (``-s``): deploy (fetch + write + verify), boot to phone-home, to SSH.
"""

from __future__ import annotations

import ctypes
import http.server
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from provision_labspec import netns_run as _sh  # noqa: E402
from test_deploy_ramdisk_lab import CACHE, MIRROR, PACKAGES, _Handler  # noqa: E402

from provision.cli.main import cli  # noqa: E402
from provision.image import disk, observe, ramdisk  # noqa: E402
from provision.image.bootplan import read_nodes  # noqa: E402
from provision.image.store import list_images  # noqa: E402
from provision.plan.load import load_and_plan  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MAC = "52:54:00:f1:00:01"
CLONE_NEWNET = 0x40000000


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ["qemu-system-x86_64", "qemu-img", "mmdebstrap", "busybox", "ip", "ssh",
             "ssh-keygen", *disk.TOOLS]
    missing = [t for t in tools if shutil.which(t) is None]
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


def _site(tmp: Path) -> tuple[Path, str, str]:
    """The lab site booting the cached test image, with a manifest MAC for its first node and
    an admin key; returns (site dir, node, its in-band interface)."""
    data = yaml.safe_load((ROOT / "inventory/sites/lab/site.yaml").read_text())
    data["images"] = [{"name": "vmlab", "distribution": "debian", "suite": "bookworm",
                       "mirror": MIRROR, "variant": "minbase", "packages": PACKAGES}]
    data["node_groups"][0]["image"] = "vmlab"
    site = tmp / "site"
    (site / "admin_keys").mkdir(parents=True)
    (site / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "admin"))
    shutil.copy(tmp / "admin.pub", site / "admin_keys" / "admin.pub")
    _loaded, plan = load_and_plan(site)
    node = plan.nodes[0].name
    iface = next(a.interface for a in plan.addresses_of(node) if a.pool == "inband")
    (site / "macs.json").write_text(json.dumps({f"{node}/{iface}": MAC}))
    return site, node, iface


def _in_netns(ns: str) -> None:
    """Move the calling thread into network namespace ``ns`` (setns is per thread)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[dict[str, object]]:
    """The site seeded, and its provisioning network in a namespace (DHCP + HTTP)."""
    site, node, iface = _site(tmp_path)
    res = CliRunner().invoke(cli, ["image", "build", str(site), "--images", str(CACHE)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["image", "seed", str(site), "--images", str(CACHE)])
    assert res.exit_code == 0, res.output
    entry = read_nodes(site / ".gpuctl")[node]
    [rec] = [r for r in list_images(CACHE) if r.recipe["packages"] == sorted(PACKAGES)][-1:]
    kea = json.loads((site / ".gpuctl" / "boot" / "kea-dhcp4.conf").read_text())
    subnet = next(s for s in kea["Dhcp4"]["subnet4"]
                  if any(r.get("ip-address") == entry.address for r in s.get("reservations", [])))
    svc, prefix = subnet["next-server"], subnet["subnet"].split("/")[1]
    router = next(o["data"] for o in subnet["option-data"] if o["name"] == "routers")
    # what the boot services serve: /images/vmlab/..., /seeds/<host>/...
    served = tmp_path / "http"
    (served / "images").mkdir(parents=True)
    (served / "images" / "vmlab").symlink_to(rec.path)
    shutil.copytree(site / ".gpuctl" / "seeds", served / "seeds")
    ns = f"fb{os.getpid() % 100000}"
    _sh("ip", "netns", "add", ns)
    udhcpd: subprocess.Popen[str] | None = None
    server: http.server.ThreadingHTTPServer | None = None
    try:
        _sh("ip", "link", "set", "lo", "up", ns=ns)
        _sh("ip", "link", "add", "br0", "type", "bridge", ns=ns)
        _sh("ip", "addr", "add", f"{svc}/{prefix}", "dev", "br0", ns=ns)
        _sh("ip", "link", "set", "br0", "up", ns=ns)
        _sh("ip", "tuntap", "add", "tap0", "mode", "tap", ns=ns)
        _sh("ip", "link", "set", "tap0", "master", "br0", "up", ns=ns)
        conf = tmp_path / "udhcpd.conf"
        conf.write_text(f"start {entry.address}\nend {entry.address}\ninterface br0\n"
                        f"lease_file {tmp_path / 'udhcpd.leases'}\n"
                        f"option subnet {_mask(int(prefix))}\noption router {router}\n"
                        f"static_lease {MAC} {entry.address}\n")
        (tmp_path / "udhcpd.leases").touch()
        udhcpd = subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "udhcpd", "-f",
                                   str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, text=True)
        log = tmp_path / "access.log"
        handler = type("H", (_Handler,), {"log_path": log})
        made: list[http.server.ThreadingHTTPServer] = []

        def serve() -> None:
            _in_netns(ns)
            srv = http.server.ThreadingHTTPServer(
                (svc, 80), lambda *a: handler(*a, directory=str(served)))
            made.append(srv)
            srv.serve_forever()

        threading.Thread(target=serve, daemon=True).start()
        for _ in range(50):
            if made:
                break
            time.sleep(0.1)
        server = made[0]
        yield {"site": site, "node": node, "iface": iface, "entry": entry, "rec": rec,
               "ns": ns, "svc": svc, "log": log, "prefix": prefix}
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if udhcpd is not None:
            udhcpd.terminate()
            udhcpd.wait(timeout=10)
        _sh("ip", "netns", "del", ns, check=False)


def _mask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((bits >> s) & 0xFF) for s in (24, 16, 8, 0))


def _qemu(ns: str, drive: Path, serial: Path, *extra: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "qemu-system-x86_64", "-accel", "tcg", "-m", "1024",
            "-display", "none", "-monitor", "none", "-no-reboot", "-serial", f"file:{serial}",
            "-drive", f"file={drive},if=virtio,format=qcow2",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={MAC}", *extra]


def _posted(log: Path, path: str) -> bool:
    return any(r.method == "POST" and r.path.split("?")[0] == path
               for r in observe.parse_access_log(log.read_text() if log.exists() else ""))


def test_first_boot_from_disk_reaches_ssh_with_the_seed(
        tmp_path: Path, network: dict[str, object]) -> None:
    ns, svc, log = str(network["ns"]), str(network["svc"]), Path(str(network["log"]))
    node, iface, site = str(network["node"]), str(network["iface"]), Path(str(network["site"]))
    entry, rec = network["entry"], network["rec"]
    folder = rec.path  # type: ignore[attr-defined]
    address = entry.address  # type: ignore[attr-defined]
    blank = tmp_path / "vm.qcow2"
    _sh("qemu-img", "create", "-q", "-f", "qcow2", str(blank), "4G")
    initrd = tmp_path / "initrd.all"  # what iPXE's two initrd lines make
    initrd.write_bytes((folder / "initrd.img").read_bytes()
                       + (folder / ramdisk.RAMDISK).read_bytes())
    size, digest = int(rec.disk["size"]), str(rec.disk["digest"])  # type: ignore[attr-defined]
    base = f"http://{svc}/images/vmlab"
    args = ramdisk.kernel_args(image_url=f"{base}/{disk.DISK}", digest=digest, size=size,
                               report_url=f"http://{svc}/deploy/{node}",
                               seed_url=f"http://{svc}/seeds/{node}/")
    t0 = time.monotonic()
    res = subprocess.run(_qemu(ns, blank, tmp_path / "deploy.log", "-kernel",
                               str(folder / "vmlinuz"), "-initrd", str(initrd),
                               "-append", f"console=ttyS0 {args}"),
                         capture_output=True, text=True, timeout=900)
    deployed = time.monotonic() - t0
    serial = (tmp_path / "deploy.log").read_text(errors="replace")
    assert res.returncode == 0, res.stderr + serial[-3000:]
    assert _posted(log, f"/deploy/{node}/done"), serial[-3000:]
    steps = [ln for ln in serial.splitlines() if "gpuctl-deploy:" in ln]

    t1 = time.monotonic()
    vm = subprocess.Popen(_qemu(ns, blank, tmp_path / "boot.log", "-boot", "order=c"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    known = site / ".gpuctl" / "known_hosts"
    ssh = ["ip", "netns", "exec", ns, "ssh", "-i", str(tmp_path / "admin"),
           "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
           "-o", "GlobalKnownHostsFile=/dev/null", f"root@{address}"]
    try:
        phoned = up = None
        deadline = t1 + 600
        while time.monotonic() < deadline and vm.poll() is None:
            if phoned is None and _posted(log, f"/phone-home/{node}"):
                phoned = time.monotonic() - t1
            if up is None:
                probe = subprocess.run([*ssh, "true"], capture_output=True, text=True,
                                       timeout=30)
                assert "REMOTE HOST IDENTIFICATION HAS CHANGED" not in probe.stderr
                assert "Host key verification failed" not in probe.stderr, probe.stderr
                if probe.returncode == 0:
                    up = time.monotonic() - t1
            if up is not None and phoned is not None:
                break
            text = (tmp_path / "boot.log").read_text(errors="replace")
            assert "Traceback" not in text and "Kernel panic" not in text, text[-3000:]
            time.sleep(2)
        boot = (tmp_path / "boot.log").read_text(errors="replace")
        assert up is not None, f"no SSH to {address}: " + boot[-3000:]
        assert phoned is not None, "no phone-home: " + boot[-3000:]

        def on(*cmd: str) -> str:
            out = subprocess.run([*ssh, shlex.join(cmd)], capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
            return out.stdout.strip()

        assert on("hostname") == node
        assert on("findmnt", "-n", "-o", "SOURCE", "/") == "/dev/vda2"
        assert f"inet {address}/{network['prefix']}" in on("ip", "-o", "-4", "addr", "show",
                                                           "dev", iface)
        assert json.loads(on("cat", "/etc/gpuctl/image.json"))["image_digest"] == \
            rec.digest  # type: ignore[attr-defined]
        status = subprocess.run([*ssh, "cloud-init", "status", "--wait", "--long"],
                                capture_output=True, text=True, timeout=120).stdout
        assert "status: done" in status, status + on(
            "grep", "-E", "-e", "WARNING|ERROR|Traceback", "-e", "^$", "/var/log/cloud-init.log")
        assert on("python3", "-c", "print(1 + 1)") == "2"
        root_kib = int(on("df", "--output=size", "-k", "/").split()[-1])
        assert root_kib > 2 * (size >> 10)  # grown to the 4 GiB disk on first boot
        served_key = known.read_text().split()[1:3]
        assert on("cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2] == served_key
        ci = on("cloud-init", "analyze", "show")
        stages = [ln for ln in ci.splitlines() if ln.startswith(("Finished", "Total Time"))]
    finally:
        vm.kill()
        vm.wait(timeout=30)
    print(f"\nfirst boot (TCG, disk.img {size / 1e6:.0f} MB):")
    for ln in steps:
        print("  " + ln.strip())
    print(f"  deploy (ramdisk boot, fetch + write + verify, seed, power off): {deployed:.0f} s")
    print(f"  boot from disk -> phone-home {phoned:.0f} s, -> SSH verified {up:.0f} s")
    for ln in stages[-6:]:
        print("  cloud-init: " + ln)
