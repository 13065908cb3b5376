"""``up`` and ``down``: build a lab from a :class:`LabSpec`, tear it down from its state.

``up`` is idempotent (a healthy lab of the same spec is left alone; a broken or changed one is
rebuilt) and all-or-nothing (a failure half-way tears down what was made, then raises one
:class:`LabError`). Every kernel object is recorded in ``state.json`` before it is made and
every process right after it starts, so ``down`` cleans up after a crash at any point.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from provision import sshkeys
from provision.errors import LabError
from provision.lab import bmc, fabric, hostfs, keys, libvirt, names, netns, router, sshd
from provision.lab.access import access_path, write_access
from provision.lab.proc import alive, kill_pids, stop_all
from provision.lab.spec import LabSpec, spec_digest, validate
from provision.lab.state import (
    BmcRecord,
    FabricRecord,
    HostRecord,
    LabPaths,
    LabState,
    RackRecord,
    SmRecord,
    VmRecord,
    load_state,
    save_state,
)

REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "ibsim", "opensm")
_WORKERS = 4


def default_lab_dir(site: str) -> Path:
    """``<repo root>/.lab/<site>`` for a source checkout, else ``./.lab/<site>``."""
    checkout = Path(__file__).resolve().parents[2]
    base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
    return base / ".lab" / site


def resolve_lab_dir(site: str, lab_dir: str | Path | None) -> Path:
    return Path(os.path.abspath(lab_dir)) if lab_dir is not None else default_lab_dir(site)


def require_root() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError(f"gpuctl lab needs Linux (network namespaces, overlay mounts); this is "
                       f"{sys.platform!r}")
    if os.geteuid() != 0:
        raise LabError("gpuctl lab needs root (network namespaces, mounts, sshd); "
                       "run it with sudo")


def require_tools() -> None:
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    missing += [p for p in (sshd.SSHD, hostfs.UMAD2SIM) if not os.path.exists(p)]
    if missing:
        raise LabError(f"gpuctl lab: missing {', '.join(missing)} (Debian packages iproute2 "
                       "util-linux openssh-server ibsim-utils opensm infiniband-diags)")


@contextmanager
def lab_lock(lab_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the lab dir; a second command fails at once."""
    fd = os.open(lab_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LabError(f"lab dir {lab_dir}: another gpuctl lab command is using it") from exc
        yield
    finally:
        os.close(fd)


def up(spec: LabSpec, lab_dir: str | Path | None = None, *,
       host_setup: hostfs.HostSetup | None = None) -> LabState:
    """Bring the lab described by ``spec`` up under ``lab_dir``; return its state.

    ``host_setup`` is called for each host's private filesystem before the host starts (not
    when the lab is already up and healthy: then ``up`` changes nothing).
    """
    require_root()
    validate(spec)
    root = resolve_lab_dir(spec.site, lab_dir)
    hostfs.check_lab_dir(root)
    require_tools()
    bmc.require_emulator()
    if spec.vms or spec.racks:
        libvirt.require_tools(vms=bool(spec.vms), racks=bool(spec.racks))
    if spec.vms:
        bmc.require_libvirt_driver()
    created = not root.exists()
    _claim_dir(root)
    with lab_lock(root):
        digest = spec_digest(spec)
        existing = load_state(root)
        if existing is not None:
            if existing.complete and existing.spec_digest == digest and healthy(existing):
                write_access(existing)
                return existing
            teardown(existing, remove_dir=False)
        _clear_dir(root)
        try:
            state = _new_state(spec, root, digest)
        except LabError:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise
        try:
            _build(spec, state, host_setup)
        except BaseException as exc:
            try:
                teardown(state, remove_dir=True)
            except LabError as cleanup:
                exc.add_note(f"cleanup after the failure also failed: {cleanup}")
            if isinstance(exc, (LabError, KeyboardInterrupt, SystemExit)):
                raise
            raise LabError(f"lab site {spec.site}: up failed: {exc!r}") from exc
        write_access(state)  # last: a lab with an access file is completely up
        return state


def down(site: str, lab_dir: str | Path | None = None) -> bool:
    """Tear the lab down from its recorded state; True if a lab was recorded there."""
    require_root()
    root = resolve_lab_dir(site, lab_dir)
    if not root.is_dir():
        return False
    if not LabPaths(root).marker.exists() and any(root.iterdir()):
        raise LabError(f"lab dir {root}: not a gpuctl lab dir (no {LabPaths(root).marker.name})")
    with lab_lock(root):
        state = load_state(root)
        if state is not None:
            teardown(state, remove_dir=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return state is not None


def healthy(state: LabState) -> bool:
    """Cheap check that everything recorded still exists and runs."""
    if not netns.link_exists(state.bridge):
        return False
    if any(not netns.netns_exists(h.netns) for h in state.hosts.values()):
        return False
    if any(not netns.netns_exists(r.router_netns) or not netns.link_exists(r.bridge)
           for r in state.racks.values()):
        return False
    procs = state.processes() + state.daemons()
    sms = len(state.fabric.sms) if state.fabric is not None else 0
    # sshd per host, BMC emulator, ibsim, OpenSMs, a relay per routed rack, the VM emulator
    expected = (len(state.hosts) + 2 + sms + len(state.racks) + (state.vm_bmc is not None)
                + len(state.daemons()))
    if not (sms > 0 and len(procs) == expected and all(alive(p) for p in procs)):
        return False
    return all(libvirt.domain_exists(v.domain) for v in state.vms.values())


def teardown(state: LabState, *, remove_dir: bool) -> None:
    """Stop, delete and unmount everything recorded; keep going past errors, then raise.

    Besides the recorded processes, everything still running in a host's network namespace
    (SSH sessions, daemons started over SSH, a holder not yet recorded) is killed; the hosts'
    overlay mounts live in their holders' mount namespaces and vanish with them.
    """
    errors: list[str] = []

    def attempt(action: Callable[[], object]) -> None:
        try:
            action()
        except LabError as exc:
            errors.append(str(exc))

    access_path(state.paths).unlink(missing_ok=True)  # nothing reaches for a lab going down
    if state.vms:  # while libvirtd runs (started again for this when it died)
        attempt(lambda: _remove_domains(state))
    hosts = list(state.hosts.values())
    racks = list(state.racks.values())
    # ibsim last: umad2sim clients (OpenSM) talk to it while they shut down
    ibsim = state.fabric.ibsim if state.fabric is not None else None
    attempt(lambda: stop_all([p for p in state.processes() if p != ibsim]))
    attempt(lambda: stop_all([ibsim] if ibsim is not None else []))
    namespaces = [h.netns for h in hosts] + [r.router_netns for r in racks]
    leftover = netns.netns_pids(namespaces)
    pids = sorted({pid for found in leftover.values() for pid in found})
    what = f"lab site {state.site}: stopping processes in host namespaces"
    if pids:
        attempt(lambda: kill_pids(pids, what=what))
    attempt(lambda: netns.delete_namespaces(namespaces))
    rack_links = [n for r in racks for n in (r.uplink_veth, r.rack_veth, r.bridge)]
    attempt(lambda: netns.delete_links([h.veth for h in hosts] + rack_links + [state.bridge]))
    attempt(lambda: libvirt.stop_daemons(state.daemons()))
    paths = state.paths
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise LabError(f"{errors[0]}{more}; state kept in {paths.state} for another down")
    paths.state.unlink(missing_ok=True)
    _clear_dir(paths.root)
    if remove_dir:
        shutil.rmtree(paths.root, ignore_errors=True)


def _remove_domains(state: LabState) -> None:
    """Destroy and undefine the lab's domains; with libvirtd gone (the lab's own crashed),
    start it for this and stop it again."""
    vms = [v for v in state.vms.values() if v.defined]
    if not vms:
        return
    if libvirt.libvirt_answers():
        libvirt.remove_domains(vms)
        return
    if not state.daemons():
        return  # libvirtd was someone else's and is gone: nothing of ours to remove there
    temp = libvirt.ensure_daemons(state.paths)
    try:
        libvirt.wait_daemons(state.paths, temp)
        libvirt.remove_domains(vms)
    finally:
        libvirt.stop_daemons([p for p in (temp.libvirtd, temp.virtlogd) if p is not None])


def _claim_dir(root: Path) -> None:
    """Create the lab dir (0700) or check an existing one is a lab dir."""
    paths = LabPaths(root)
    if root.exists() and not paths.marker.exists() and any(root.iterdir()):
        raise LabError(f"lab dir {root}: exists and is not a gpuctl lab dir; pick another "
                       "--lab-dir or remove it")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.marker.touch()


def _clear_dir(root: Path) -> None:
    """Remove everything in the lab dir but the dir itself and its marker (host dirs in
    parallel: thousands of small overlay dirs are slow to remove one by one)."""
    if not root.is_dir():
        return
    hosts_dir = root / "hosts"
    if hosts_dir.is_dir():
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            list(pool.map(shutil.rmtree, list(hosts_dir.iterdir())))
    for child in root.iterdir():
        if child.name == LabPaths(root).marker.name:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _new_state(spec: LabSpec, root: Path, digest: str) -> LabState:
    """Check no kernel object of ours exists yet, then record them all (before making any)."""
    bridge = names.bridge_name(spec.site)
    if netns.link_exists(bridge):
        raise LabError(f"lab site {spec.site}: bridge {bridge} already exists (is this site "
                       "up under another lab dir?)")
    netns.check_subnet_free(spec.site, spec.gateway, bridge)
    state = LabState(site=spec.site, lab_dir=str(root), spec_digest=digest, bridge=bridge,
                     gateway=spec.gateway)
    for index, h in enumerate(spec.hosts):
        record = HostRecord(
            name=h.name, address=h.address, netns=names.netns_name(spec.site, h.name),
            veth=names.veth_name(spec.site, index), mac=names.host_mac(spec.site, h.name),
            bmc_system_id=h.bmc_system_id, hca_ids=tuple(h.hca_ids),
            catalog_type=h.catalog_type,
        )
        for taken, kind in ((netns.netns_exists(record.netns), "namespace"),
                            (netns.link_exists(record.veth), "link")):
            if taken:
                name = record.netns if kind == "namespace" else record.veth
                raise LabError(f"lab host {h.name}: {kind} {name} already exists")
        state.hosts[h.name] = record
    for r in spec.racks:
        br, ns, up_veth, rack_veth = router.rack_names(spec.site, r.name)
        for taken, name in ((netns.link_exists(br), br), (netns.netns_exists(ns), ns),
                            (netns.link_exists(up_veth), up_veth),
                            (netns.link_exists(rack_veth), rack_veth)):
            if taken:
                raise LabError(f"lab rack {r.name}: {name} already exists")
        netns.check_subnet_free(spec.site, r.gateway, br)
        state.racks[r.name] = RackRecord(
            name=r.name, bridge=br, router_netns=ns, uplink_veth=up_veth, rack_veth=rack_veth,
            gateway=r.gateway, uplink=r.uplink, relay_to=r.relay_to,
            relay_log=str(state.paths.rack_dir(r.name) / "dhcrelay.log"))
    answers = bool(spec.vms) and libvirt.libvirt_answers()
    for v in spec.vms:
        domain = libvirt.domain_name(spec.site, v.name)
        if answers and libvirt.domain_exists(domain):
            raise LabError(f"lab host {v.name}: libvirt domain {domain} already exists (is "
                           "this site up under another lab dir?)")
        vdir = state.paths.vm_dir(v.name)
        bridge_of = state.racks[v.rack].bridge if v.rack else bridge
        state.vms[v.name] = VmRecord(
            name=v.name, address=v.address, mac=v.mac, rack=v.rack, domain=domain,
            uuid=v.bmc_system_id, bridge=bridge_of, disk=str(vdir / "disk.qcow2"),
            console=str(vdir / "console.log"))
    save_state(state)
    return state


def _build_vms(spec: LabSpec, state: LabState, creds: bmc.Credentials) -> None:
    """libvirtd (started if needed), a blank disk and a defined (shut off) domain per VM,
    then the libvirt-driver Redfish emulator serving those domains."""
    paths = state.paths
    state.libvirt = libvirt.ensure_daemons(paths)
    save_state(state)
    libvirt.wait_daemons(paths, state.libvirt)
    memory = {v.name: v.memory_mib for v in spec.vms}
    disks = {v.name: v.disk_gib for v in spec.vms}
    for vm in state.vms.values():
        vdir = paths.vm_dir(vm.name)
        libvirt.create_disk(Path(vm.disk), disks[vm.name],
                            what=f"lab host {vm.name}: creating its blank disk")
        xml = vdir / "domain.xml"
        xml.write_text(libvirt.domain_xml(vm, memory_mib=memory[vm.name]))
        vm.defined = True
        save_state(state)
        libvirt.define(vm, xml)
    port = bmc.free_tcp_port()
    state.vm_bmc = BmcRecord(url=f"http://{bmc.LISTEN}:{port}", port=port,
                             credentials=creds.source)
    state.vm_bmc.proc = bmc.start_vm(paths, port=port, creds=creds,
                                     uuids=[v.uuid for v in state.vms.values()])
    save_state(state)


def _build(spec: LabSpec, state: LabState, host_setup: hostfs.HostSetup | None) -> None:
    paths = state.paths
    gateway_ip = str(ipaddress.IPv4Interface(spec.gateway).ip)
    creds = bmc.credentials_for_up(paths)
    admin_pub = sshkeys.generate_ed25519(paths.admin_key, comment=f"gpuctl-lab-{spec.site}-admin")
    # The slow starters first (the emulator imports Flask), so they overlap the host setup.
    state.fabric = FabricRecord(server=gateway_ip, port=fabric.free_udp_base())
    fabric.write_files(paths, net=spec.ibsim_net, opensm_conf=spec.opensm_conf,
                       opensm_files=spec.opensm_files)
    state.fabric.ibsim = fabric.start_ibsim(paths, state.fabric.port)
    save_state(state)
    port = bmc.free_tcp_port()
    state.bmc = BmcRecord(url=f"http://{bmc.LISTEN}:{port}", port=port,
                          credentials=creds.source)
    state.bmc.proc = bmc.start(paths, port=port, creds=creds, hosts=list(state.hosts.values()))
    save_state(state)

    hosts = list(state.hosts.values())
    netns.create_bridge(spec.site, state.bridge, spec.gateway)
    netns.create_hosts(spec.site, state.bridge, [
        netns.HostLink(host=h.name, ns=h.netns, veth=h.veth, address=h.address, mac=h.mac)
        for h in hosts])
    for rack in state.racks.values():
        router.create(spec.site, state.bridge, rack)
        router.add_routes(spec.site, rack, [h.netns for h in hosts])
        rack.relay = router.start_relay(rack)
        save_state(state)
    if state.vms:
        _build_vms(spec, state, creds)
    sshd.ensure_privsep_dir()
    ib = hostfs.IbSettings(server=gateway_ip, port=state.fabric.port)

    def prepare(host: HostRecord) -> tuple[sshkeys.KnownHost, Path]:
        hdir = paths.host_dir(host.name)
        addr = str(ipaddress.IPv4Interface(host.address).ip)
        host_key = hdir / "ssh_host_ed25519_key"
        pub = sshkeys.generate_ed25519(host_key, comment=f"root@{host.name}")
        config = hdir / "sshd_config"
        config.write_text(sshd.sshd_config_text(address=addr, host_key=host_key))
        holder = hostfs.prepare_host(hdir, host, all_hosts=hosts, admin_public_key=admin_pub,
                                     ib=ib, sshd_command=sshd.sshd_command(config))
        return sshkeys.KnownHost(host.name, addr, pub), holder

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        prepared = list(pool.map(prepare, hosts))
    for host in hosts:
        if host_setup is not None:
            host_setup(hostfs.HostRoot(name=host.name, catalog_type=host.catalog_type,
                                       hca_ids=host.hca_ids,
                                       root=paths.host_dir(host.name) / "upper",
                                       lab_dir=paths.root))
    # An sshd started but not yet recorded here still dies with its namespace in teardown.
    for host, (_, holder) in zip(hosts, prepared, strict=True):
        host.sshd = sshd.start_host(host, holder, paths.host_dir(host.name) / "sshd.log")
    save_state(state)
    known = [k for k, _ in prepared]
    sshkeys.write_private(paths.known_hosts, sshkeys.known_hosts_text(known), mode=0o644)
    sshkeys.write_private(paths.ssh_config, keys.ssh_config_text(
        known, admin_key=paths.admin_key, known_hosts=paths.known_hosts), mode=0o644)

    fabric.wait_ibsim(paths, state.fabric.ibsim)
    for index, subnet in enumerate(fabric.subnets(spec.ibsim_net)):
        sm = SmRecord(sm_node=subnet.sm_node, probe_node=subnet.probe_node,
                      log=str(fabric.sm_dir(paths, index) / "opensm.log"))
        state.fabric.sms.append(sm)
        sm.proc = fabric.start_opensm(paths, index, subnet, server=gateway_ip,
                                      port=state.fabric.port)
    save_state(state)
    for host in hosts:
        sshd.wait_ready(host, paths.host_dir(host.name) / "sshd.log")
    bmc.wait_ready(state.bmc.url, creds, state.bmc.proc, paths.bmc_dir / "emulator.log",
                   expected=len(hosts))
    for sm in state.fabric.sms:
        assert sm.proc is not None
        fabric.wait_subnet_up(Path(sm.log), sm.proc)
    for rack in state.racks.values():
        router.wait_relay(rack)
    if state.vm_bmc is not None:
        assert state.vm_bmc.proc is not None
        bmc.wait_ready(state.vm_bmc.url, creds, state.vm_bmc.proc,
                       paths.vm_bmc_dir / "emulator.log", expected=len(state.vms))
    state.complete = True
    save_state(state)
