"""The VM lab's pure parts: the lab-vm site -> LabSpec (VMs, routed rack, manifest MACs), the
spec's validation of VMs and routed racks (one line naming the host or rack and field), the
libvirt domain XML, the state record round trip and the access file for VM nodes."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from provision.errors import LabError
from provision.lab import libvirt, router
from provision.lab.access import access_spec
from provision.lab.from_plan import lab_spec_for_site, load_vm_groups
from provision.lab.spec import LabSpec, LabVm, RoutedRack, validate
from provision.lab.state import BmcRecord, FabricRecord, LabState, VmRecord, state_from_dict
from provision.plan.load import load_and_plan

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "sites" / "lab-vm"


@pytest.fixture(scope="module")
def spec() -> LabSpec:
    return lab_spec_for_site(str(SITE))


def test_lab_vm_site_gives_two_vms_in_two_racks_with_manifest_macs(spec: LabSpec) -> None:
    validate(spec)
    assert [h.name for h in spec.hosts] == ["labvm-head-01"]  # the services host, a namespace
    assert spec.hosts[0].address == "10.214.0.40/25"
    assert spec.gateway == "10.214.0.1/25"
    assert spec.racks == (RoutedRack(name="a02", gateway="10.214.0.129/25",
                                     uplink="10.214.0.3/25", relay_to="10.214.0.40"),)
    vms = {v.name: v for v in spec.vms}
    assert (vms["labvm-gpu-01"].rack, vms["labvm-gpu-01"].mac,
            vms["labvm-gpu-01"].address) == ("", "52:54:00:4c:01:01", "10.214.0.12/25")
    assert (vms["labvm-gpu-02"].rack, vms["labvm-gpu-02"].mac,
            vms["labvm-gpu-02"].address) == ("a02", "52:54:00:4c:02:01", "10.214.0.140/25")


def test_lab_yaml_names_only_known_groups(tmp_path: Path) -> None:
    _, plan = load_and_plan(SITE)
    (tmp_path / "lab.yaml").write_text("vm_groups: [gpu, nope]\n")
    with pytest.raises(LabError, match="'nope' is not a node group"):
        load_vm_groups(tmp_path, plan)
    (tmp_path / "lab.yaml").write_text("vm_group: [gpu]\n")
    with pytest.raises(LabError, match="one key vm_groups"):
        load_vm_groups(tmp_path, plan)
    assert load_vm_groups(tmp_path / "missing", plan) == ()


@pytest.mark.parametrize(("change", "message"), [
    ({"mac": "52:54:00:4C:01:01"}, "lab host labvm-gpu-01: mac '52:54:00:4C:01:01' is not"),
    ({"mac": "53:54:00:4c:01:01"}, "lab host labvm-gpu-01: mac .* multicast"),
    ({"rack": "a09"}, "lab host labvm-gpu-01: rack 'a09' is not a routed rack"),
    ({"address": "10.214.0.140/25"}, "lab host labvm-gpu-01: address '10.214.0.140/25' is "
                                     "not in its rack's subnet 10.214.0.0/25"),
    ({"address": "10.214.0.40/25"}, "lab host labvm-gpu-01: address .* already used"),
    ({"address": "10.214.0.3/25"}, "lab host labvm-gpu-01: address .* already used"),
    ({"bmc_system_id": "nope"}, "lab host labvm-gpu-01: bmc_system_id 'nope' is not a UUID"),
    ({"disk_gib": 0}, "lab host labvm-gpu-01: disk_gib 0"),
    ({"name": "labvm-head-01"}, "lab host labvm-head-01: duplicate name"),
    ({"mac": "52:54:00:4c:02:01"}, "lab host labvm-gpu-02: mac .* belongs to another VM"),
])
def test_vm_validation_names_host_and_field(spec: LabSpec, change: dict[str, object],
                                            message: str) -> None:
    first = dataclasses.replace(spec.vms[0], **change)  # type: ignore[arg-type]
    bad = dataclasses.replace(spec, vms=(first, *spec.vms[1:]))
    with pytest.raises(LabError, match=message):
        validate(bad)


@pytest.mark.parametrize(("change", "message"), [
    ({"uplink": "10.214.0.200/25"}, "rack 'a02': uplink '10.214.0.200/25' is not in the "
                                    "first rack's subnet"),
    ({"gateway": "10.214.0.66/26"}, "rack 'a02': gateway subnet 10.214.0.64/26 overlaps"),
    ({"relay_to": "10.214.0.200"}, "rack 'a02': relay_to 10.214.0.200 is not in the first"),
    ({"uplink": "10.214.0.40/25"}, "rack 'a02': uplink 10.214.0.40 is already used"),
    ({"name": "A_2"}, "rack 'A_2': name must be"),
])
def test_rack_validation_names_rack_and_field(spec: LabSpec, change: dict[str, str],
                                              message: str) -> None:
    bad = dataclasses.replace(spec, racks=(dataclasses.replace(spec.racks[0], **change),))
    with pytest.raises(LabError, match=message):
        validate(bad)


def _vm_record(vm: LabVm) -> VmRecord:
    return VmRecord(name=vm.name, address=vm.address, mac=vm.mac, rack=vm.rack,
                    domain=libvirt.domain_name("lab-vm", vm.name), uuid=vm.bmc_system_id,
                    bridge="gl-lab-vm", disk=f"/l/vms/{vm.name}/disk.qcow2",
                    console=f"/l/vms/{vm.name}/console.log")


def test_domain_xml_is_a_tcg_machine_with_blank_disk_manifest_mac_and_serial_log(
        spec: LabSpec) -> None:
    record = _vm_record(spec.vms[1])
    root = ET.fromstring(libvirt.domain_xml(record, memory_mib=1024))
    assert root.get("type") == "qemu"  # TCG: no KVM here
    assert root.findtext("name") == "gl-lab-vm-labvm-gpu-02"
    assert root.findtext("uuid") == spec.vms[1].bmc_system_id
    assert [b.get("dev") for b in root.findall("os/boot")] == ["network", "hd"]
    assert root.find("os/bios").get("useserial") == "yes"  # type: ignore[union-attr]
    disk = root.find("devices/disk")
    assert disk is not None and disk.find("driver").get("type") == "qcow2"  # type: ignore
    assert disk.find("source").get("file") == record.disk  # type: ignore[union-attr]
    assert disk.find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    nic = root.find("devices/interface")
    assert nic is not None and nic.get("type") == "bridge"
    assert nic.find("mac").get("address") == "52:54:00:4c:02:01"  # type: ignore[union-attr]
    assert nic.find("source").get("bridge") == "gl-lab-vm"  # type: ignore[union-attr]
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "file"
    assert serial.find("source").get("path") == record.console  # type: ignore[union-attr]


def test_domain_xml_quotes_paths() -> None:
    vm = LabVm(name="n1", address="10.0.0.2/24", mac="52:54:00:00:00:01", rack="",
               bmc_system_id="6c09a0bb-f7f1-5ad1-b5fb-38f71fbf9126")
    record = dataclasses.replace(_vm_record(vm), disk="/tmp/a'b&c/disk.qcow2")
    root = ET.fromstring(libvirt.domain_xml(record, memory_mib=512))
    assert root.find("devices/disk/source").get("file") == "/tmp/a'b&c/disk.qcow2"  # type: ignore


def test_rack_names_fit_ifnamsiz() -> None:
    bridge, ns, up, rk = router.rack_names("a-rather-long-site-name", "a02")
    assert all(len(n) <= 15 for n in (bridge, up, rk)) and len({bridge, up, rk}) == 3
    assert ns == "gl-a-rather-long-site-name-router-a02"


def test_state_round_trip_and_access_for_vm_nodes(spec: LabSpec, tmp_path: Path) -> None:
    from dataclasses import asdict

    state = LabState(site="lab-vm", lab_dir=str(tmp_path), spec_digest="x", bridge="gl-lab-vm",
                     gateway=spec.gateway,
                     bmc=BmcRecord(url="http://127.0.0.1:1", port=1, credentials="file"),
                     vm_bmc=BmcRecord(url="http://127.0.0.1:2", port=2, credentials="file"),
                     fabric=FabricRecord(server="10.214.0.1", port=3))
    for vm in spec.vms:
        state.vms[vm.name] = _vm_record(vm)
    assert state_from_dict(asdict(state)) == state
    access = access_spec(state)
    gpu2 = access.hosts["labvm-gpu-02"]
    assert gpu2.ssh.address == "10.214.0.140"  # planned: the image gets it from Kea
    assert (gpu2.bmc.url, gpu2.bmc.system) == ("http://127.0.0.1:2", spec.vms[1].bmc_system_id)
    assert access.network_boot is True and access.image_note == ""
    # the image phase deploys the boot services to the namespace services host: no init
    # system there, no apt
    assert access.boot_services.vars == {"boot_services_service_manager": "none",
                                         "boot_services_install_packages": False}


def test_libvirtd_runs_with_dev_kvm_unusable_where_it_exists(tmp_path: Path) -> None:
    """Where /dev/kvm exists, libvirtd's namespace has a device there that QEMU's user
    cannot open, so libvirt keeps its TCG capabilities instead of probing QEMU again on
    every call (lab up 59 s -> 1 s here); checked by running the real wrapper, probing as
    an unprivileged user the way libvirt checks for libvirt-qemu."""
    import os
    import shutil
    import stat
    import subprocess
    import tempfile

    pid = tmp_path / "libvirtd.pid"
    assert libvirt.libvirtd_argv(pid, kvm=tmp_path / "no-kvm") == [
        "libvirtd", "--pid-file", str(pid)]
    kvm = tmp_path / "kvm"
    kvm.write_text("a device\n")
    argv = libvirt.libvirtd_argv(pid, kvm=kvm)
    assert argv[-3:] == ["libvirtd", "--pid-file", str(pid)]
    if os.geteuid() != 0 or shutil.which("setpriv") is None \
            or not os.path.exists("/usr/bin/python3"):
        pytest.skip("mount namespaces need root (and util-linux setpriv)")
    # a folder the unprivileged probe can walk into (pytest's tmp root is root's only)
    walk = Path(tempfile.mkdtemp(prefix="gpuctl-kvm-", dir="/tmp"))
    try:
        walk.chmod(0o755)
        kvm = walk / "kvm"
        kvm.write_text("a device\n")
        # the system python: a checkout's venv may sit where nobody cannot reach
        probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "/usr/bin/python3", "-c", f"import os, stat; s = os.stat({str(kvm)!r}); "
                 f"print(os.access({str(kvm)!r}, os.R_OK | os.W_OK), stat.S_ISCHR(s.st_mode))"]
        res = subprocess.run(libvirt.without_kvm(probe, walk / "stand-in", kvm),
                             capture_output=True, text=True, timeout=30, check=False)
        assert (res.returncode, res.stdout.split()) == (0, ["False", "True"]), res.stderr
        made = (walk / "stand-in").stat()
        assert stat.S_ISCHR(made.st_mode) and stat.S_IMODE(made.st_mode) == 0o600
        assert kvm.read_text() == "a device\n"  # outside the namespace nothing changed
    finally:
        shutil.rmtree(walk)


def test_a_lab_daemon_does_not_inherit_the_callers_descriptors(tmp_path: Path) -> None:
    """A daemon keeping e.g. the lab lock's fd (``flock FILE cmd``) holds the lock while
    the lab is up: spawn closes every inheritable fd above stderr in the child."""
    import os

    from provision.lab.proc import inherited_fds, spawn, stop

    held = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    os.set_inheritable(held, True)
    try:
        assert held in inherited_fds()
        rec = spawn(["sleep", "30"], label="test sleeper", log=tmp_path / "sleep.log")
        try:
            target = str(tmp_path / "lock")
            links = [os.readlink(f"/proc/{rec.pid}/fd/{n}")
                     for n in os.listdir(f"/proc/{rec.pid}/fd")]
            assert target not in links
            assert str(tmp_path / "sleep.log") in links  # its stdout/stderr
        finally:
            stop(rec)
    finally:
        os.close(held)
