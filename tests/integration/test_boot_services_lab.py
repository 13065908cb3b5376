"""Boot services for real: Ansible applies playbooks/boot_services.yml (role boot_services)
to a lab host at the plan's services address; a client namespace on the same bridge then gets
its reserved address from kea-dhcp4 as a BIOS PXE client (boot file undionly.kpxe from the
services host) and as iPXE (boot file = the HTTP boot script), fetches undionly.kpxe over TFTP
and its iPXE script and seed over HTTP; Kea's lease file and nginx's access log record each
step. A second playbook run changes nothing. The lab is always taken down.
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
from provision_labspec import provision_spec  # noqa: E402

from provision.cli.main import cli  # noqa: E402
from provision.image.seeds import seed_url  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NODE = "lab-gpu-01"


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ["ip", "ibsim", "opensm", "ansible-playbook", "busybox", "kea-dhcp4",
             "start-stop-daemon"]
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [p for p in ("/usr/sbin/sshd", "/usr/sbin/nginx", "/usr/sbin/in.tftpd",
                            "/usr/lib/ipxe/undionly.kpxe") if not os.path.exists(p)]
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


def _site(tmp: Path, net: ipaddress.IPv4Network) -> Path:
    data = yaml.safe_load((ROOT / "inventory/sites/lab/site.yaml").read_text())
    third = net.network_address.packed[2]
    data["addressing"].update({"inband": str(net), "oob": f"10.213.{third}.0/24",
                               "switch_mgmt": f"10.212.{third}.0/24",
                               "ipoib": ["10.211.0.0/18"]})
    site = tmp / "site"
    site.mkdir()
    (site / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def _run(*argv: str, ns: str | None = None, timeout: float = 60,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res


@pytest.fixture
def boot_lab(tmp_path: Path) -> Iterator[dict[str, object]]:
    from provision import lab as labmod

    spec = provision_spec(f"bsvc{os.getpid() % 1000}", ["bootsrv"], seed=os.getpid() % 97)
    net = ipaddress.IPv4Interface(spec.gateway).network
    site = _site(tmp_path, net)
    runner = CliRunner()
    gen = tmp_path / "gen"
    assert runner.invoke(cli, ["plan", str(site), "-o", str(gen)]).exit_code == 0
    kea = json.loads((gen / "dhcp/kea-dhcp4.conf").read_text())
    subnet = next(s for s in kea["Dhcp4"]["subnet4"] if s["user-context"]["pool"] == "inband")
    svc = subnet["next-server"]
    gateway = next(o["data"] for o in subnet["option-data"] if o["name"] == "routers")
    prefix = ipaddress.IPv4Network(subnet["subnet"]).prefixlen
    host = dataclasses.replace(spec.hosts[0], address=f"{svc}/{prefix}")
    spec = dataclasses.replace(spec, gateway=f"{gateway}/{prefix}", hosts=(host,))
    lab_dir = tmp_path / "lab"
    client_ns, veth = f"bcli{os.getpid() % 10000}", f"bcv{os.getpid() % 10000}"
    state = labmod.up(spec, lab_dir)
    try:
        _run("ip", "netns", "add", client_ns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
        _run("ip", "link", "set", veth + "p", "netns", client_ns, "name", "eth0")
        _run("ip", "link", "set", veth, "master", state.bridge, "up")
        _run("ip", "link", "set", "eth0", "up", ns=client_ns)
        _run("ip", "link", "set", "lo", "up", ns=client_ns)
        yield {"site": site, "gen": gen, "svc": svc, "state": state, "ns": client_ns,
               "kea": kea, "tmp": tmp_path}
    finally:
        _run("ip", "netns", "del", client_ns, check=False)
        _run("ip", "link", "del", veth, check=False)
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
        "boot_services_install_packages": False,
        "boot_services_kea_config_src": str(Path(str(lab["gen"])) / "dhcp/kea-dhcp4.conf"),
        "boot_services_ipxe_src": str(site / ".gpuctl/ipxe"),
        "boot_services_seeds_src": str(site / ".gpuctl/seeds")}}}}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "1",
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
           "ANSIBLE_ROLES_PATH": str(ROOT / "playbooks/roles")}
    return subprocess.run(["ansible-playbook", "-i", str(inv),
                           str(ROOT / "playbooks/boot_services.yml")],
                          capture_output=True, text=True, env=env, timeout=300)


def _dhcp(lab: dict[str, object], *options: str) -> dict[str, str]:
    tmp = Path(str(lab["tmp"]))
    out = tmp / "lease.env"
    out.unlink(missing_ok=True)
    script = tmp / "udhcpc.sh"
    script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && env > {out}\nexit 0\n')
    script.chmod(0o755)
    cid = "00" + NODE.encode().hex()
    res = _run("busybox", "udhcpc", "-f", "-q", "-n", "-t", "4", "-T", "2", "-i", "eth0",
               "-s", str(script), "-x", f"0x3d:{cid}", *options, ns=str(lab["ns"]),
               check=False)
    assert out.exists(), f"no DHCP lease for {NODE}: {res.stdout}{res.stderr}" + _ssh(
        lab, "tail", "-n", "20", "/srv/gpuctl-boot/log/kea-dhcp4.log")
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


def _ssh(lab: dict[str, object], *cmd: str) -> str:
    paths = lab["state"].paths  # type: ignore[attr-defined]
    return _run("ssh", "-F", str(paths.ssh_config), "bootsrv", *cmd).stdout


def test_boot_services_serve_dhcp_tftp_http(boot_lab: dict[str, object]) -> None:
    lab, svc = boot_lab, str(boot_lab["svc"])
    runner = CliRunner()
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
