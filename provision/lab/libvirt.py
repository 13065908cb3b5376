"""The lab's VM nodes: libvirt QEMU (TCG) domains with blank virtio disks, and the libvirt
daemons they need.

There is no systemd where the lab runs, so ``up`` starts ``virtlogd`` and ``libvirtd`` itself
(foreground, in their own sessions, pid files in the lab dir) when ``qemu:///system`` does not
answer, and ``down`` stops only the daemons the lab started. Domains are driven through
``virsh`` (argv lists, bounded); the domain XML is pure (:func:`domain_xml`).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from xml.sax.saxutils import quoteattr

from provision.errors import LabError
from provision.lab.proc import alive, log_tail, run, spawn, stop_all, wait_for
from provision.lab.state import LabPaths, LibvirtRecord, ProcRecord, VmRecord

URI = "qemu:///system"
VIRSH = "virsh"
QEMU = "/usr/bin/qemu-system-x86_64"
REQUIRED_TOOLS = ("virsh", "libvirtd", "virtlogd", "qemu-img")
ROUTER_TOOLS = ("dhcrelay", "sysctl")


def domain_name(site: str, host: str) -> str:
    return f"gl-{site}-{host}"


def require_tools(*, vms: bool, racks: bool) -> None:
    """Fail before anything is made when a tool of the VM nodes or routed racks is missing."""
    missing = [t for t in (REQUIRED_TOOLS if vms else ()) + (ROUTER_TOOLS if racks else ())
               if shutil.which(t) is None]
    missing += [p for p in ((QEMU,) if vms else ()) if not Path(p).exists()]
    if missing:
        raise LabError(f"gpuctl lab (VM nodes): missing {', '.join(missing)} (Debian packages "
                       "libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-utils "
                       "qemu-system-x86 ipxe-qemu isc-dhcp-relay; scripts/setup.sh)")


def domain_xml(vm: VmRecord, *, memory_mib: int, emulator: str = QEMU) -> str:
    """A TCG domain (type ``qemu``: no KVM) that boots from the network, then its disk; its
    serial console (firmware output included) goes to ``vm.console``. QEMU runs as root
    (static DAC label): the lab dir is root's, mode 0700."""
    a = quoteattr
    return "\n".join([
        "<domain type='qemu'>",
        f"  <name>{vm.domain}</name>",
        f"  <uuid>{vm.uuid}</uuid>",
        f"  <title>gpuctl lab node {vm.name}</title>",
        f"  <memory unit='MiB'>{memory_mib}</memory>",
        "  <vcpu>1</vcpu>",
        "  <os>",
        "    <type arch='x86_64' machine='pc'>hvm</type>",
        "    <boot dev='network'/>",
        "    <boot dev='hd'/>",
        "    <bios useserial='yes'/>",
        "  </os>",
        "  <features><acpi/></features>",
        "  <on_poweroff>destroy</on_poweroff>",
        "  <on_reboot>restart</on_reboot>",
        "  <on_crash>destroy</on_crash>",
        "  <devices>",
        f"    <emulator>{emulator}</emulator>",
        "    <disk type='file' device='disk'>",
        "      <driver name='qemu' type='qcow2'/>",
        f"      <source file={a(vm.disk)}/>",
        "      <target dev='vda' bus='virtio'/>",
        "    </disk>",
        "    <interface type='bridge'>",
        f"      <source bridge={a(vm.bridge)}/>",
        f"      <mac address={a(vm.mac)}/>",
        "      <model type='virtio'/>",
        "    </interface>",
        "    <serial type='file'>",
        f"      <source path={a(vm.console)}/>",
        "      <target port='0'/>",
        "    </serial>",
        "    <video><model type='none'/></video>",
        "    <memballoon model='none'/>",
        "  </devices>",
        "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>",
        "</domain>",
        "",
    ])


def virsh(*args: str, what: str, timeout: float = 60.0, check: bool = True) -> str:
    return run([VIRSH, "-q", "-c", URI, *args], what=what, timeout=timeout,
               check=check).stdout


def libvirt_answers(timeout: float = 10.0) -> bool:
    """True when ``qemu:///system`` answers (a starting libvirtd probing QEMU may not yet)."""
    try:
        result = run([VIRSH, "-q", "-c", URI, "version"], what="lab: asking libvirtd",
                     timeout=timeout, check=False)
    except LabError:
        return False
    return result.returncode == 0


def ensure_daemons(paths: LabPaths) -> LibvirtRecord:
    """Start virtlogd and libvirtd unless ``qemu:///system`` already answers; record what
    was started (call ``save_state`` right after each start)."""
    record = LibvirtRecord()
    if libvirt_answers():
        return record
    d = paths.libvirt_dir
    d.mkdir(parents=True, exist_ok=True)
    record.virtlogd = spawn(["virtlogd", "--pid-file", str(d / "virtlogd.pid")],
                            label="lab virtlogd", log=d / "virtlogd.log")
    record.libvirtd = spawn(libvirtd_argv(d / "libvirtd.pid"), label="lab libvirtd",
                            log=d / "libvirtd.log")
    return record


KVM = Path("/dev/kvm")


def libvirtd_argv(pid_file: Path, kvm: Path = KVM) -> list[str]:
    """How the lab starts libvirtd. Lab domains are TCG (type qemu), never KVM. Where
    ``/dev/kvm`` exists but cannot run guests (this machine is itself a VM), libvirtd
    finds its cached QEMU capabilities stale on every domain change and probes QEMU again
    (2 s idle, 26 s under load, per ``virsh define``, domain start or Redfish boot change):
    it holds a usable-looking ``/dev/kvm`` against capabilities probed without KVM. So
    libvirtd runs with ``/dev/kvm`` unusable (:func:`without_kvm`)."""
    plain = ["libvirtd", "--pid-file", str(pid_file)]
    if not kvm.exists():
        return plain
    return without_kvm(plain, pid_file.parent / "no-kvm", kvm)


def without_kvm(argv: list[str], stand_in: Path, kvm: Path = KVM) -> list[str]:
    """``argv`` in its own mount namespace where ``kvm`` is ``stand_in``, a null device
    node (made here) that only root may open: libvirt checks KVM as the user QEMU runs as
    (libvirt-qemu), which cannot, so it probes and keeps TCG capabilities. A node, not a
    file: libvirt moves the mounts under /dev into each domain's own /dev, and a file
    mounted on a device path fails that ("Unable to move ... mount to /dev/kvm"). The same
    pid (unshare and sh exec), so the lab's record and ``down`` stay as they are."""
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.unlink(missing_ok=True)
    os.mknod(stand_in, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            f'mount --bind {stand_in} {kvm} && exec "$@"', argv[0], *argv]


def wait_daemons(paths: LabPaths, record: LibvirtRecord, timeout: float = 90.0) -> None:
    def died() -> str | None:
        for proc, log in ((record.libvirtd, "libvirtd.log"), (record.virtlogd, "virtlogd.log")):
            if proc is not None and not alive(proc):
                return f"{proc.label} exited: {log_tail(paths.libvirt_dir / log)}"
        return None

    wait_for(lambda: True if libvirt_answers(timeout=20.0) else None, timeout=timeout,
             interval=0.3,
             fail=died, what=f"lab: libvirtd did not answer on {URI}")


def create_disk(path: Path, gib: int, *, what: str) -> None:
    """A blank, sparse qcow2 disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{gib}G"], what=what)


def define(vm: VmRecord, xml_path: Path) -> None:
    virsh("define", str(xml_path), what=f"lab host {vm.name}: defining domain {vm.domain}")


def domain_exists(domain: str) -> bool:
    result = run([VIRSH, "-q", "-c", URI, "domuuid", domain], what="lab: looking up domain",
                 timeout=15, check=False)
    return result.returncode == 0


def domain_state(domain: str) -> str:
    """``running``, ``shut off``, ... or ``missing``."""
    result = run([VIRSH, "-q", "-c", URI, "domstate", domain], what="lab: domain state",
                 timeout=15, check=False)
    return result.stdout.strip() if result.returncode == 0 else "missing"


def remove_domains(vms: list[VmRecord]) -> None:
    """Destroy (power off) and undefine each recorded domain that exists; raise if one stays."""
    left: list[str] = []
    for vm in vms:
        if not domain_exists(vm.domain):
            continue
        if domain_state(vm.domain) != "shut off":
            virsh("destroy", vm.domain, what=f"lab host {vm.name}: destroying {vm.domain}",
                  check=False)
        virsh("undefine", vm.domain, "--nvram", what=f"lab host {vm.name}: undefining",
              check=False)
        if domain_exists(vm.domain):
            virsh("undefine", vm.domain, what=f"lab host {vm.name}: undefining", check=False)
        if domain_exists(vm.domain):
            left.append(vm.domain)
    if left:
        raise LabError(f"lab: domains {', '.join(left)} could not be removed")


def stop_daemons(records: list[ProcRecord]) -> None:
    """Stop libvirtd then virtlogd (only those the lab started)."""
    for rec in records:
        stop_all([rec], timeout=10.0)
