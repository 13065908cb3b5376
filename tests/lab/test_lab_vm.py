"""The VM lab for real: ``lab up`` on inventory/sites/lab-vm defines two libvirt TCG domains
with blank qcow2 disks and the delivery manifest's MACs, one per rack; sushy-emulator's libvirt
driver lists them as Redfish systems; Redfish Boot {Pxe, Once} + Reset On starts each VM, whose
iPXE ROM sends DHCP: a BOOTP listener on the services host (the namespace host at the plan's
services address) receives rack a01's request as a broadcast on the lab bridge and rack a02's
relayed by the router namespace's dhcrelay (giaddr = a02's gateway). ``lab down`` leaves no
domain, disk, bridge, namespace or process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "sites" / "lab-vm"


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    missing = [t for t in ("virsh", "libvirtd", "virtlogd", "qemu-img", "dhcrelay",
                           "qemu-system-x86_64") if shutil.which(t) is None]
    if importlib.util.find_spec("libvirt") is None:
        missing.append("libvirt-python")
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]

# Prints "<chaddr> <giaddr>" per BOOTREQUEST received on UDP 67 (run inside the services host).
LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", 67))
while True:
    data, _ = s.recvfrom(4096)
    if len(data) >= 240 and data[0] == 1:
        mac = ":".join(f"{b:02x}" for b in data[28:34])
        print(mac, socket.inet_ntoa(data[24:28]), flush=True)
"""


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_vm_lab_up_pxe_through_relay_and_down(tmp_path: Path) -> None:
    from provision import lab as labmod
    from provision.lab import bmc, netns
    from provision.lab.from_plan import lab_spec_for_site

    spec = lab_spec_for_site(str(SITE))
    lab_dir = tmp_path / "lab"
    started = time.monotonic()
    state = labmod.up(spec, lab_dir)
    up_s = time.monotonic() - started
    listener: subprocess.Popen[str] | None = None
    recorded = state.processes() + state.daemons()
    try:
        # domains: defined, shut off, blank disks, the manifest's MACs on the rack bridges
        for vm in spec.vms:
            record = state.vms[vm.name]
            xml = _virsh("dumpxml", record.domain).stdout
            assert f"<mac address='{vm.mac}'/>" in xml
            bridge = state.racks[vm.rack].bridge if vm.rack else state.bridge
            assert f"<source bridge='{bridge}'/>" in xml
            assert _virsh("domstate", record.domain).stdout.strip() == "shut off"
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "--output=json", "-U", record.disk], capture_output=True,
                text=True, timeout=30, check=True).stdout)
            assert info["virtual-size"] == 4 * 2**30 and info["actual-size"] < 2**20  # blank

        # the libvirt driver's Redfish systems are the domains (UUID = system id)
        assert state.vm_bmc is not None
        creds = bmc.credentials_for_use(state.paths, state.vm_bmc.credentials)
        auth, url = (creds.user, creds.password), state.vm_bmc.url
        members = requests.get(f"{url}/redfish/v1/Systems", auth=auth, timeout=60).json()
        assert sorted(m["@odata.id"].rsplit("/", 1)[1] for m in members["Members"]) == \
            sorted(v.bmc_system_id for v in spec.vms)

        head = state.hosts["labvm-head-01"]
        out = tmp_path / "bootp.txt"
        with out.open("w") as fh:
            listener = subprocess.Popen(["ip", "netns", "exec", head.netns, sys.executable,
                                         "-c", LISTENER], stdout=fh, stderr=subprocess.STDOUT,
                                        text=True)
        time.sleep(1.0)
        boot_started = time.monotonic()
        for vm in spec.vms:
            system = f"{url}/redfish/v1/Systems/{vm.bmc_system_id}"
            resp = requests.patch(system, auth=auth, timeout=300, json={
                "Boot": {"BootSourceOverrideTarget": "Pxe",
                         "BootSourceOverrideEnabled": "Once"}})
            assert resp.status_code in (200, 204), resp.text
            resp = requests.post(f"{system}/Actions/ComputerSystem.Reset", auth=auth,
                                 timeout=120, json={"ResetType": "On"})
            assert resp.status_code in (200, 204), resp.text
        want = {(spec.vms[0].mac, "0.0.0.0"), (spec.vms[1].mac, "10.214.0.129")}
        seen: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not want <= seen:
            seen = {tuple(line.split()) for line in out.read_text().splitlines()  # type: ignore
                    if len(line.split()) == 2}
            time.sleep(1.0)
        dhcp_s = time.monotonic() - boot_started
        assert want <= seen, (seen, out.read_text())
        relay_log = Path(state.racks["a02"].relay_log).read_text()
        assert f"Forwarded BOOTREQUEST for {spec.vms[1].mac} to 10.214.0.40" in relay_log
        for vm in spec.vms:
            assert _virsh("domstate", state.vms[vm.name].domain).stdout.strip() == "running"
        print(f"\nlab up {up_s:.1f} s, Redfish PXE+On to both DHCP requests {dhcp_s:.1f} s")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
        labmod.down(spec.site, lab_dir)

    # nothing left: domains (their definitions), disks, links, namespaces, processes
    assert not lab_dir.exists()
    for rec in state.vms.values():
        assert not Path(f"/etc/libvirt/qemu/{rec.domain}.xml").exists()
        if _virsh("version").returncode == 0:  # libvirtd was someone else's and still runs
            assert _virsh("domuuid", rec.domain).returncode != 0
    links = [state.bridge] + [h.veth for h in state.hosts.values()] + [
        n for r in state.racks.values() for n in (r.bridge, r.uplink_veth, r.rack_veth)]
    assert not any(netns.link_exists(n) for n in links)
    namespaces = [h.netns for h in state.hosts.values()] + [
        r.router_netns for r in state.racks.values()]
    assert not any(netns.netns_exists(n) for n in namespaces)
    from provision.lab.proc import alive

    assert not any(alive(p) for p in recorded)
    qemus = subprocess.run(["pgrep", "-f", "guest=gl-lab-vm-"], capture_output=True,
                           text=True, check=False).stdout
    assert qemus.strip() == ""
