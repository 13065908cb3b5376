"""The NVIDIA/fabric/Kubernetes roles run for real against lab hosts, from a local apt
repository of trivially-filled packages with the real names and versions (tests/testrepo).

Proves, on a lab host (own lab site name, always torn down; SSH host keys verified):
an impossible version combination stops the run before any host is touched; nvidia.yml,
fabric.yml and kubernetes.yml install the pinned versions (checked with testinfra over SSH:
package versions, apt pins, dpkg holds, nouveau blacklist, FM version == driver version);
a second run changes nothing; a Fabric Manager version that differs from the driver fails
with a clear message and changes nothing; the upgrade 580.95.05 -> 580.105.08 moves the
driver packages together, Fabric Manager follows, and the (simulated) reboot is requested
exactly once, inside a drain/uncordon of the node — and not again on a rerun.

Lab adaptations (variables, see docs/roles.md): services are not managed (no systemd as
PID 1; the unit files are checked instead), initramfs/netplan/sysctl are not applied, the
reboot is a command that appends to /var/lib/gpuctl/reboot-requested, kubectl is a fake
that logs its arguments on the controller.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from provision_labspec import provision_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "sites" / "lab"
PLAYBOOKS = ROOT / "playbooks"
HOSTS = ["lab-gpu-01"]  # one host keeps CI time down; the logic is per host
OLD, NEW, BAD_FM = "580.95.05", "580.105.08", "580.82.07"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.M)


def _unavailable() -> str | None:
    import importlib.util

    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ("ip", "ibsim", "opensm", "nsenter", "ansible-playbook", "dpkg-deb",
             "dpkg-scanpackages")
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.path.exists("/usr/sbin/sshd"):
        missing.append("sshd")
    for mod in ("sushy_tools", "testinfra"):
        if importlib.util.find_spec(mod) is None:
            missing.append(mod)
    return f"lab tools missing: {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


@dataclass
class Lab:
    root: Path
    tmp: Path
    inventory: Path
    labvars: Path
    kubectl_log: Path
    addresses: dict[str, str]


def _write_inventory(tmp: Path, paths: Any, addresses: dict[str, str]) -> Path:
    """The rendered plan's group_vars and per-host variables for the lab hosts, in group
    gpuctl_nodes and the stack groups the phase playbooks target (as gpuctl provision's
    inventory; every lab node is a GPU node), reached over SSH with verified keys."""
    from provision.plan.stacks import GROUPS

    out = tmp / "plan"
    subprocess.run([sys.executable, "-m", "provision.cli.main", "plan", str(SITE), "-o",
                    str(out)], check=True, capture_output=True, timeout=120, cwd=ROOT)
    gv = out / "ansible" / "group_vars"
    allvars: dict[str, Any] = {**yaml.safe_load((gv / "all.yml").read_text()),
                               **yaml.safe_load((gv / "gpu.yml").read_text())}
    for secret in ("gpuctl_bmc_username", "gpuctl_bmc_password"):
        allvars.pop(secret, None)
    planned = {name: yaml.safe_load((out / "ansible" / "host_vars" / f"{name}.yml").read_text())
               for name in HOSTS}
    ssh_args = " ".join(["-o", f"UserKnownHostsFile={paths.known_hosts}", "-o",
                         "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                         "-o", "IdentitiesOnly=yes"])
    hosts = {}
    for name in HOSTS:
        hv = {k: v for k, v in planned[name].items() if k != "ansible_host"}
        hv.update({"ansible_host": addresses[name], "ansible_ssh_common_args": ssh_args,
                   "ansible_ssh_private_key_file": str(paths.admin_key)})
        hosts[name] = hv
    inv = {"all": {"vars": {"ansible_user": "root",
                            "ansible_python_interpreter": "/usr/bin/python3", **allvars},
                   "children": {"gpuctl_nodes": {"hosts": hosts},
                                **{g: {"hosts": {h: {} for h in hosts}}
                                   for g in GROUPS.values()}}}}
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inv, sort_keys=True))
    return path


def _lab_vars(tmp: Path, repo: Path, kubectl: Path) -> Path:
    from testrepo import apt_source, nccl_tests_source

    src = [apt_source(repo)]
    keyring = next(repo.glob("cuda-keyring_*.deb"))
    v: dict[str, Any] = {
        **{f"{r}_apt_repositories": src for r in ("nvidia_driver", "cuda", "doca_ofed",
                                                   "container_toolkit", "kubernetes_node")},
        **{f"{r}_apt_keys": [] for r in ("doca_ofed", "container_toolkit", "kubernetes_node")},
        "cuda_keyring_deb": str(keyring),
        "nvidia_driver_manage_services": False, "fabricmanager_manage_services": False,
        "dcgm_manage_services": False, "peermem_manage_services": False,
        "kubernetes_node_manage_services": False, "kubernetes_node_apply_runtime": False,
        "nvidia_driver_update_initramfs": False, "ipoib_apply": False,
        "nvidia_driver_reboot_method": "command",
        "nvidia_driver_reboot_command": [
            "/bin/sh", "-c", "mkdir -p /var/lib/gpuctl && "
            "echo reboot >> /var/lib/gpuctl/reboot-requested"],
        "nvidia_driver_kubectl_host": "localhost",
        "nvidia_driver_kubectl": [str(kubectl)],
        "nccl_tests_source": str(nccl_tests_source(tmp / "src" / "nccl-tests.tar.gz")),
        "nccl_tests_source_remote": False,
        "nccl_tests_jobs": 1,
    }
    path = tmp / "lab-vars.yml"
    path.write_text(yaml.safe_dump(v, sort_keys=True))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from testrepo import build_repo, stack_packages

    from provision import lab as labmod

    tmp = tmp_path_factory.mktemp("nvroles")
    # apt reads the repository as its sandbox user (_apt): not under pytest's 0700 tree.
    public = Path(tempfile.mkdtemp(prefix="gpuctl-testrepo-"))
    public.chmod(0o755)
    repo = build_repo(public / "repo", stack_packages())
    log = tmp / "kubectl.log"
    kubectl = tmp / "kubectl"
    kubectl.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    kubectl.chmod(0o755)
    name = f"nv{os.getpid() % 100000}"
    root = tmp / name
    spec = provision_spec(name, HOSTS, seed=os.getpid() + 7)
    try:
        state = labmod.up(spec, root)
        addresses = {h.name: h.address.split("/")[0] for h in state.hosts.values()}
        yield Lab(root, tmp, _write_inventory(tmp, state.paths, addresses),
                  _lab_vars(tmp, repo, kubectl), log, addresses)
    finally:
        try:
            labmod.down(name, root)
        finally:
            shutil.rmtree(public, ignore_errors=True)


def play(lab: Lab, *books: str, extra: dict[str, Any] | None = None
         ) -> tuple[int, dict[str, tuple[int, int, int]], str]:
    """Run the playbooks in order (stopping at the first failure); returns rc, per host
    (changed, unreachable, failed) summed over the runs, and the output."""
    from provision.execute.ansible import ansible_playbook

    args = ["-e", f"@{lab.labvars}"]
    if extra:
        path = lab.tmp / "extra.json"
        path.write_text(json.dumps(extra))
        args += ["-e", f"@{path}"]
    totals: dict[str, tuple[int, int, int]] = {}
    text = ""
    for book in books:
        proc = ansible_playbook(args, inventory=lab.inventory, playbook=PLAYBOOKS / book,
                                timeout=600)
        text += proc.stdout + proc.stderr
        for host, _ok, changed, unreach, failed in RECAP.findall(proc.stdout):
            c, u, f = totals.get(host, (0, 0, 0))
            totals[host] = (c + int(changed), u + int(unreach), f + int(failed))
        if proc.returncode != 0:
            return proc.returncode, totals, text
    return 0, totals, text


def host(lab: Lab, name: str) -> Any:
    import testinfra

    return testinfra.get_host(f"ssh://root@{lab.addresses[name]}",
                              ssh_config=str(lab.root / "ssh_config"))


def version(h: Any, pkg: str) -> str:
    return str(h.check_output("dpkg-query -W -f='${Version}' %s", pkg))


def reboots(h: Any) -> int:
    f = h.file("/var/lib/gpuctl/reboot-requested")
    return len(f.content_string.splitlines()) if f.exists else 0


DRIVER_PKGS = ["nvidia-headless-580-server", "nvidia-utils-580-server",
               "libnvidia-compute-580-server", "nvidia-compute-utils-580-server"]


def test_impossible_combination_stops_before_any_host(lab: Lab) -> None:
    rc, _, out = play(lab, "nvidia.yml", extra={"gpuctl_cuda": "13.2"})
    assert rc != 0
    assert "impossible software combination" in out and "max CUDA 13.0" in out, out[-3000:]
    for name in HOSTS:
        assert not host(lab, name).file("/etc/apt/preferences.d/gpuctl-nvidia-driver").exists


def test_install_pins_holds_and_fabric_manager(lab: Lab) -> None:
    rc, totals, out = play(lab, "nvidia.yml", "fabric.yml", "kubernetes.yml")
    assert rc == 0, out[-4000:]
    assert set(totals) == set(HOSTS)
    for name in HOSTS:
        h = host(lab, name)
        for pkg in DRIVER_PKGS:
            assert version(h, pkg) == f"{OLD}-0ubuntu1", pkg
        assert not h.package("nvidia-headless-580-server-open").is_installed  # ampere: proprietary
        fm = version(h, "nvidia-fabricmanager-580")
        assert fm == f"{OLD}-1" and fm.split("-")[0] == version(h, DRIVER_PKGS[0]).split("-")[0]
        assert version(h, "cuda-toolkit-13-0") == "13.0.2-1"
        assert version(h, "libnccl2") == version(h, "libnccl-dev") == "2.28.3-1+cuda13.0"
        assert version(h, "datacenter-gpu-manager-4-cuda13") == "1:4.4.1-1"
        assert version(h, "doca-ofed").startswith("3.1.0-")
        assert version(h, "kubelet") == "1.33.5-1.1"
        held = h.check_output("dpkg --get-selections | grep -w hold")
        for pkg in [*DRIVER_PKGS, "nvidia-fabricmanager-580", "libnccl2", "libnccl-dev",
                    "cuda-toolkit-13-0", "kubelet", "kubeadm", "kubectl"]:
            assert re.search(rf"^{re.escape(pkg)}\s+hold$", held, re.M), pkg
        policy = h.check_output("apt-cache policy nvidia-utils-580-server libnccl2")
        assert f"Candidate: {OLD}-0ubuntu1" in policy  # the newer 580.105.08 is pinned out
        assert "Candidate: 2.28.3-1+cuda13.0" in policy and "1001" in policy
        nouveau = h.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string
        assert "blacklist nouveau" in nouveau and "modeset=0" in nouveau
        assert "libnvidia-" in h.file("/etc/apt/apt.conf.d/51gpuctl-nvidia-driver").content_string
        assert h.file("/lib/systemd/system/nvidia-fabricmanager.service").exists
        assert "After=openibd.service" in h.file(
            "/etc/systemd/system/gpuctl-nvidia-peermem.service").content_string
        ipoib = h.file("/etc/netplan/61-gpuctl-ipoib.yaml")
        assert ipoib.mode == 0o600 and "ib7:" in ipoib.content_string
        assert "gpuctl.io/rack=a01" in h.file("/etc/default/kubelet").content_string
        assert h.file("/opt/nccl-tests/current/build/all_reduce_perf").exists
        assert reboots(h) == 1  # the module package was installed: one reboot
    log = lab.kubectl_log.read_text().splitlines()
    for name in HOSTS:
        mine = [line for line in log if name in line]
        assert [m.split()[0] for m in mine] == ["get", "drain", "uncordon"], log


def test_second_run_changes_nothing(lab: Lab) -> None:
    rc, totals, out = play(lab, "nvidia.yml", "fabric.yml", "kubernetes.yml")
    assert rc == 0, out[-4000:]
    assert totals == dict.fromkeys(HOSTS, (0, 0, 0)), out[-4000:]
    assert all(reboots(host(lab, n)) == 1 for n in HOSTS)


def test_mismatched_fabric_manager_fails_clearly(lab: Lab) -> None:
    rc, totals, out = play(lab, "nvidia.yml", extra={"fabricmanager_version": BAD_FM})
    assert rc != 0
    assert f"Fabric Manager {BAD_FM} does not match driver {OLD}" in out, out[-3000:]
    assert all(c == 0 for c, _, _ in totals.values())
    assert version(host(lab, HOSTS[0]), "nvidia-fabricmanager-580") == f"{OLD}-1"


def test_upgrade_moves_driver_and_fabric_manager_together(lab: Lab) -> None:
    before = len(lab.kubectl_log.read_text().splitlines())
    new = {"gpuctl_driver_version": NEW, "gpuctl_fabric_manager_version": NEW}
    rc, _, out = play(lab, "nvidia.yml", extra=new)
    assert rc == 0, out[-4000:]
    for name in HOSTS:
        h = host(lab, name)
        assert {version(h, p) for p in DRIVER_PKGS} == {f"{NEW}-0ubuntu1"}
        assert version(h, "nvidia-fabricmanager-580") == f"{NEW}-1"
        assert f"Pin: version {NEW}-*" in h.file(
            "/etc/apt/preferences.d/gpuctl-nvidia-driver").content_string
        assert reboots(h) == 2
    log = lab.kubectl_log.read_text().splitlines()[before:]
    assert sorted(line.split()[0] for line in log) == sorted(["get", "drain", "uncordon"] * len(HOSTS))
