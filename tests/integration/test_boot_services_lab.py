"""Boot services for real: Ansible applies playbooks/boot_services.yml (role boot_services)
to a lab host at the plan's services address; a client namespace on the same bridge then gets
its reserved address from kea-dhcp4 as a BIOS PXE client (boot file undionly.kpxe from the
services host) and as iPXE (boot file = the HTTP boot script), fetches undionly.kpxe over TFTP
and its iPXE script and seed over HTTP; Kea's lease file and nginx's access log record each
step. A second playbook run changes nothing. Rack a02 is a second subnet behind a router
namespace running isc-dhcp-relay: its client gets its a02 reservation (Kea picks the subnet by
the relay's giaddr) and fetches its seed through the router. Last, a QEMU (TCG) machine with a
blank disk network-boots as lab-gpu-02 through its NIC's iPXE ROM up to the kernel request.
The lab is always taken down.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from provision_labspec import netns_run as _run  # noqa: E402
from provision_labspec import provision_spec  # noqa: E402

from provision.cli.main import cli  # noqa: E402
from provision.image import observe  # noqa: E402
from provision.image.seeds import seed_url  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NODE = "lab-gpu-01"
VM_NODE, VM_MAC = "lab-gpu-02", "52:54:00:b0:07:02"
"""A QEMU machine with a blank disk network-boots as this node (its MAC in macs.json)."""
IMAGE = "ubuntu-2404"  # the lab site's default image (software.os); not built in this test


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ["ip", "ibsim", "opensm", "ansible-playbook", "busybox", "kea-dhcp4",
             "start-stop-daemon", "dhcrelay", "qemu-system-x86_64", "qemu-img"]
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [p for p in ("/usr/sbin/sshd", "/usr/sbin/nginx", "/usr/sbin/in.tftpd",
                            "/usr/lib/ipxe/undionly.kpxe") if not os.path.exists(p)]
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


def _site(tmp: Path, net: ipaddress.IPv4Network) -> Path:
    """The lab site on two racks (two in-band subnets: rack a02 comes through the relay),
    its pools moved to the free network ``net``."""
    data = yaml.safe_load((ROOT / "inventory/sites/lab/site.yaml").read_text())
    row = data["halls"][0]["rows"][0]
    row["racks"], row["rack"]["power_kw"] = 2, 25
    data["node_groups"][0]["placement"].update({"nodes_per_rack": 2, "u_positions": [2, 8]})
    for fabric, spine in (("oob", "sn2201"), ("inband", "sn4600c")):
        data["fabrics"][fabric].update({"spine_switch": spine, "network_racks": ["a01"],
                                        "pairs_in_one_rack": True})
    third = net.network_address.packed[2]
    data["addressing"].update({"inband": str(net), "oob": f"10.213.{third}.0/24",
                               "switch_mgmt": f"10.212.{third}.0/24",
                               "ipoib": ["10.211.0.0/18"]})
    site = tmp / "site"
    site.mkdir()
    (site / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return site


@pytest.fixture
def boot_lab(tmp_path: Path) -> Iterator[dict[str, object]]:
    from provision import lab as labmod
    from provision.lab import spec as labspec

    spec = provision_spec(f"bsvc{os.getpid() % 1000}", ["bootsrv"], seed=os.getpid() % 97)
    net = ipaddress.IPv4Interface(spec.gateway).network
    site = _site(tmp_path, net)
    runner = CliRunner()
    gen = tmp_path / "gen"
    assert runner.invoke(cli, ["plan", str(site), "-o", str(gen)]).exit_code == 0
    kea = json.loads((gen / "dhcp/kea-dhcp4.conf").read_text())
    subnet = next(s for s in kea["Dhcp4"]["subnet4"]
                  if s["user-context"] == {"pool": "inband", "name": "a01"})
    svc = subnet["next-server"]
    gateway = next(o["data"] for o in subnet["option-data"] if o["name"] == "routers")
    prefix = ipaddress.IPv4Network(subnet["subnet"]).prefixlen
    host = dataclasses.replace(spec.hosts[0], address=f"{svc}/{prefix}")
    # Rack a02: its own bridge, reached through the lab's router namespace that relays DHCP
    # (isc-dhcp-relay) to the services host, the way a ToR or router does.
    rack2 = next(s for s in kea["Dhcp4"]["subnet4"]
                 if s["user-context"] == {"pool": "inband", "name": "a02"})
    gw2 = next(o["data"] for o in rack2["option-data"] if o["name"] == "routers")
    net1 = ipaddress.IPv4Network(subnet["subnet"])
    r1 = str(net1.network_address + 3)  # in a01's reserved low range, next to services
    routed = labspec.RoutedRack(
        name="a02", gateway=f"{gw2}/{ipaddress.IPv4Network(rack2['subnet']).prefixlen}",
        uplink=f"{r1}/{net1.prefixlen}", relay_to=svc)
    spec = dataclasses.replace(spec, gateway=f"{gateway}/{prefix}", hosts=(host,),
                               racks=(routed,))
    lab_dir = tmp_path / "lab"
    tag = os.getpid() % 10000
    client_ns, veth = f"bcli{tag}", f"bcv{tag}"
    rack2_ns, veth2 = f"bcl2{tag}", f"brv{tag}c"
    state = labmod.up(spec, lab_dir)
    try:
        _run("ip", "netns", "add", client_ns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
        _run("ip", "link", "set", veth + "p", "netns", client_ns, "name", "eth0")
        _run("ip", "link", "set", veth, "master", state.bridge, "up")
        _run("ip", "link", "set", "eth0", "up", ns=client_ns)
        _run("ip", "link", "set", "lo", "up", ns=client_ns)
        _run("ip", "netns", "add", rack2_ns)
        _run("ip", "link", "add", veth2, "type", "veth", "peer", "name", veth2 + "p")
        _run("ip", "link", "set", veth2 + "p", "netns", rack2_ns, "name", "c0")
        _run("ip", "link", "set", veth2, "master", state.racks["a02"].bridge, "up")
        _run("ip", "link", "set", "c0", "up", ns=rack2_ns)
        yield {"site": site, "gen": gen, "svc": svc, "state": state, "ns": client_ns,
               "kea": kea, "tmp": tmp_path, "rack2_ns": rack2_ns, "relay_address": gw2}
    finally:
        for ns in (client_ns, rack2_ns):
            _run("ip", "netns", "del", ns, check=False)
        for link in (veth, veth2):
            _run("ip", "link", "del", link, check=False)
        labmod.down(spec.site, lab_dir)


def _playbook(lab: dict[str, object]) -> subprocess.CompletedProcess[str]:
    state = lab["state"]
    paths = state.paths  # type: ignore[attr-defined]
    site, tmp, svc = Path(str(lab["site"])), Path(str(lab["tmp"])), str(lab["svc"])
    inv = tmp / "inventory.yml"
    inv.write_text(yaml.safe_dump({"gpuctl_boot_services": {"hosts": {"bootsrv": {
        "ansible_host": svc, "ansible_user": "root",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": str(paths.admin_key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={paths.known_hosts} "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        "boot_services_service_manager": "none",
        "boot_services_install_packages": False}}}}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "1",
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
           "ANSIBLE_ROLES_PATH": str(ROOT / "playbooks/roles")}
    # the role's inputs as gpuctl image seed wrote them
    return subprocess.run(["ansible-playbook", "-i", str(inv), "-e",
                           f"@{site / '.gpuctl/boot_services.yml'}",
                           str(ROOT / "playbooks/boot_services.yml")],
                          capture_output=True, text=True, env=env, timeout=300)


def _dhcp(lab: dict[str, object], *options: str, node: str = NODE,
          ns: str = "") -> dict[str, str]:
    tmp = Path(str(lab["tmp"]))
    out = tmp / "lease.env"
    out.unlink(missing_ok=True)
    script = tmp / "udhcpc.sh"
    script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && env > {out}\nexit 0\n')
    script.chmod(0o755)
    cid = "00" + node.encode().hex()
    res = _run("busybox", "udhcpc", "-f", "-q", "-n", "-t", "4", "-T", "2",
               "-i", "c0" if ns else "eth0",
               "-s", str(script), "-x", f"0x3d:{cid}", *options, ns=ns or str(lab["ns"]),
               check=False)
    assert out.exists(), f"no DHCP lease for {node}: {res.stdout}{res.stderr}" + _ssh(
        lab, "tail", "-n", "20", "/srv/gpuctl-boot/log/kea-dhcp4.log")
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


def _ssh(lab: dict[str, object], *cmd: str) -> str:
    paths = lab["state"].paths  # type: ignore[attr-defined]
    return _run("ssh", "-F", str(paths.ssh_config), "bootsrv", *cmd).stdout


def test_boot_services_serve_dhcp_tftp_http(boot_lab: dict[str, object]) -> None:
    lab, svc = boot_lab, str(boot_lab["svc"])
    runner = CliRunner()
    (Path(str(lab["site"])) / "macs.json").write_text(json.dumps({f"{VM_NODE}/eno1": VM_MAC}))
    assert runner.invoke(cli, ["image", "seed", str(lab["site"])]).exit_code == 0
    first = _playbook(lab)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    second = _playbook(lab)
    assert second.returncode == 0, second.stdout[-3000:]
    recap = [ln for ln in second.stdout.splitlines() if ln.startswith("bootsrv ")]
    assert recap and "changed=0" in recap[-1], second.stdout[-3000:] + _ssh(
        lab, "cat", "/srv/gpuctl-boot/log/kea-dhcp4.log")

    planned = next(r["ip-address"] for s in lab["kea"]["Dhcp4"]["subnet4"]  # type: ignore
                   for r in s["reservations"] if r["hostname"] == NODE)
    pxe = _dhcp(lab, "-x", "0x5d:0000", "-V", "PXEClient")
    assert pxe["ip"] == planned and pxe["hostname"] == NODE
    assert pxe["boot_file"] == "undionly.kpxe" and pxe["siaddr"] == svc
    ipxe = _dhcp(lab, "-x", "0x4d:" + b"iPXE".hex())
    assert ipxe["boot_file"] == f"http://{svc}/ipxe/boot.ipxe"
    leases = _ssh(lab, "cat", "/var/lib/kea/kea-leases4.csv")
    assert any(ln.startswith(planned + ",") and NODE in ln for ln in leases.splitlines())

    ns, tmp = str(lab["ns"]), Path(str(lab["tmp"]))
    _run("ip", "addr", "add", f"{planned}/{pxe['mask']}", "dev", "eth0", ns=ns)
    _run("busybox", "tftp", "-g", "-r", "undionly.kpxe", "-l", str(tmp / "got.kpxe"), svc,
         ns=ns)
    assert (tmp / "got.kpxe").read_bytes() == Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    boot = _run("busybox", "wget", "-q", "-O", "-", f"http://{svc}/ipxe/boot.ipxe", ns=ns)
    assert "ipxe/nodes/${hostname}.ipxe" in boot.stdout
    script = _run("busybox", "wget", "-q", "-O", "-", f"http://{svc}/ipxe/nodes/{NODE}.ipxe",
                  ns=ns).stdout
    assert f"ds=nocloud;s={seed_url(svc, NODE)}" in script
    meta = _run("busybox", "wget", "-q", "-O", "-", f"{seed_url(svc, NODE)}meta-data",
                ns=ns).stdout
    assert yaml.safe_load(meta)["local-hostname"] == NODE
    missing = _run("busybox", "wget", "-q", "-O", "-", f"http://{svc}/seeds/nobody/user-data",
                   ns=ns, check=False)
    assert missing.returncode != 0
    log = _ssh(lab, "cat", "/srv/gpuctl-boot/log/access.log")
    assert f'{planned} ' in log and f'"GET /seeds/{NODE}/meta-data HTTP/1.1" 200' in log
    assert '"GET /seeds/nobody/user-data HTTP/1.1" 404' in log

    # rack a02 through the relay: its own subnet, chosen by the relay's giaddr
    node2 = "lab-gpu-03"
    planned2 = next(r["ip-address"] for s in lab["kea"]["Dhcp4"]["subnet4"]  # type: ignore
                    for r in s["reservations"] if r["hostname"] == node2)
    relayed = _dhcp(lab, "-x", "0x5d:0000", "-V", "PXEClient", node=node2,
                    ns=str(lab["rack2_ns"]))
    assert relayed["ip"] == planned2 and relayed["router"] == lab["relay_address"]
    assert relayed["boot_file"] == "undionly.kpxe" and relayed["siaddr"] == svc
    ns2 = str(lab["rack2_ns"])
    _run("ip", "addr", "add", f"{planned2}/{relayed['mask']}", "dev", "c0", ns=ns2)
    _run("ip", "route", "add", "default", "via", relayed["router"], ns=ns2)
    seed2 = _run("busybox", "wget", "-q", "-O", "-", f"{seed_url(svc, node2)}meta-data",
                 ns=ns2).stdout
    assert yaml.safe_load(seed2)["local-hostname"] == node2
    leases = _ssh(lab, "cat", "/var/lib/kea/kea-leases4.csv")
    assert any(ln.startswith(planned2 + ",") and node2 in ln for ln in leases.splitlines())

    # a machine with a blank disk: SeaBIOS -> its NIC's iPXE ROM -> DHCP (reserved by MAC)
    # -> boot.ipxe -> its own script by the hostname Kea gave it -> the image's kernel
    _vm_netboots(lab, svc)


def _vm_netboots(lab: dict[str, object], svc: str) -> None:
    import time

    tmp, state = Path(str(lab["tmp"])), lab["state"]
    tap = f"bvt{os.getpid() % 10000}"
    disk = tmp / "blank.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G")
    _run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
    vm = None
    try:
        _run("ip", "link", "set", tap, "master", state.bridge, "up")  # type: ignore[attr-defined]
        vm = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none",
             "-monitor", "none", "-serial", f"file:{tmp / 'vm-serial.log'}",
             "-drive", f"file={disk},if=virtio,format=qcow2", "-boot", "order=cn",
             "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
             "-device", f"virtio-net-pci,netdev=n0,mac={VM_MAC}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        address = _planned(lab, VM_NODE)
        steps: list[observe.Step] = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and vm.poll() is None:
            steps = observe.boot_progress(
                VM_NODE, address, VM_MAC, IMAGE,
                observe.parse_leases(_ssh(lab, "cat", "/var/lib/kea/kea-leases4.csv")),
                observe.parse_access_log(_ssh(lab, "cat", "/srv/gpuctl-boot/log/access.log")))
            if [s.name for s in steps if s.done] == ["dhcp", "boot-script", "node-script"] \
                    and "answered" in steps[3].detail:
                break
            time.sleep(3)
        # no image was built here, so the boot stops exactly at the kernel
        stop = observe.stopped_at(steps)
        assert stop is not None and stop.detail == f"GET /images/{IMAGE}/vmlinuz answered 404", \
            [f"{s.name}: {s.detail}" for s in steps]
        leases = _ssh(lab, "cat", "/var/lib/kea/kea-leases4.csv")
        assert any(ln.startswith(_planned(lab, VM_NODE) + f",{VM_MAC},") and VM_NODE in ln
                   for ln in leases.splitlines()), leases
    finally:
        if vm is not None:
            vm.kill()
            vm.wait(timeout=30)
        _run("ip", "link", "del", tap, check=False)


def _planned(lab: dict[str, object], node: str) -> str:
    return str(next(r["ip-address"] for s in lab["kea"]["Dhcp4"]["subnet4"]  # type: ignore
                    for r in s["reservations"] if r["hostname"] == node))
