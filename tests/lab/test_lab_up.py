"""The lab end to end: 3 hosts up, SSH with verified host keys, private filesystems, a power
cycle through Redfish, ibnetdiscover from inside a host, idempotent up, clean down.

The tests share one lab (module fixture) and run in file order; the last one takes it down
and checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
import requests
from click.testing import CliRunner
from labspec import make_spec

from provision import lab
from provision.cli.main import cli
from provision.lab.proc import alive
from provision.lab.spec import LabSpec
from provision.lab.state import LabState

pytestmark = pytest.mark.lab


@dataclass
class Lab:
    spec: LabSpec
    state: LabState
    root: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    site = f"lt{os.getpid() % 100000}"
    root = tmp_path_factory.mktemp("lab") / site
    spec = make_spec(site, 3, seed=os.getpid())
    started = time.monotonic()
    state = lab.up(spec, root, host_setup=mark_host)
    print(f"lab up ({len(spec.hosts)} hosts): {time.monotonic() - started:.2f}s")
    try:
        yield Lab(spec, state, root)
    finally:
        lab.down(site, root)


SETUP_MARK = "opt/gpuctl-lab-setup"


def mark_host(host: lab.HostRoot) -> None:
    """A host_setup hook: leaves a file only that host sees."""
    path = host.root / SETUP_MARK
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{host.name} {host.catalog_type}\n")


def ssh(running: Lab, host: str) -> paramiko.SSHClient:
    """Log in as root, host key checked against the lab's known_hosts only."""
    addr = running.state.hosts[host].address.split("/")[0]
    client = paramiko.SSHClient()
    client.load_host_keys(str(running.state.paths.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(addr, username="root", key_filename=str(running.state.paths.admin_key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def sh(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, stdout, stderr = client.exec_command(command, timeout=30)
    out = stdout.read().decode() + stderr.read().decode()
    return stdout.channel.recv_exit_status(), out


def test_ssh_to_every_host_verifies_its_host_key(running: Lab) -> None:
    for host in running.spec.hosts:
        with ssh(running, host.name) as client:
            rc, out = sh(client, "hostname; cat /etc/hostname; id -u")
            assert rc == 0
            assert out.split() == [host.name, host.name, "0"]


def test_host_setup_hook_files_are_private(running: Lab) -> None:
    for host in running.spec.hosts:
        with ssh(running, host.name) as client:
            rc, out = sh(client, f"cat /{SETUP_MARK}")
            assert rc == 0 and out.split() == [host.name, host.catalog_type]
    assert not Path("/", SETUP_MARK).exists()


def test_unknown_host_key_is_rejected(running: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    client = paramiko.SSHClient()
    client.load_host_keys(str(empty))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    addr = running.spec.hosts[0].address.split("/")[0]
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(addr, username="root", key_filename=str(running.state.paths.admin_key),
                       look_for_keys=False, allow_agent=False, timeout=10)
    client.close()


def test_openssh_client_with_lab_ssh_config(running: Lab) -> None:
    host = running.spec.hosts[1].name
    result = subprocess.run(["ssh", "-F", str(running.state.paths.ssh_config), host, "hostname"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == host


def test_host_filesystems_are_private(running: Lab) -> None:
    a, b = running.spec.hosts[0].name, running.spec.hosts[1].name
    token = uuid.uuid4().hex
    probes = [f"/etc/gpuctl-probe-{token}", f"/usr/local/gpuctl-probe-{token}",
              f"/root/gpuctl-probe-{token}"]
    with ssh(running, a) as client:
        rc, out = sh(client, " && ".join(f"echo {token} > {p}" for p in probes)
                     + " && cat " + " ".join(probes))
        assert rc == 0, out
        assert out.split() == [token] * len(probes)
    with ssh(running, b) as client:
        for probe in probes:
            rc, _ = sh(client, f"test -e {probe}")
            assert rc == 1, f"{probe} written on {a} is visible on {b}"
    for probe in probes:
        assert not Path(probe).exists(), f"{probe} written on {a} is visible on the machine"


def _power(url: str, auth: tuple[str, str], system: str) -> str:
    resp = requests.get(f"{url}/redfish/v1/Systems/{system}", auth=auth, timeout=5)
    resp.raise_for_status()
    return str(resp.json()["PowerState"])


def _wait_power(url: str, auth: tuple[str, str], system: str, want: str) -> None:
    # the fake driver applies a pending power change 0-11 s after the request
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _power(url, auth, system) == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"{system} did not reach power state {want} within 15s")


def test_power_cycle_through_redfish(running: Lab) -> None:
    url, user, password = lab.bmc_endpoint(running.root)
    auth = (user, password)
    assert requests.get(f"{url}/redfish/v1/Systems", timeout=5).status_code == 401
    listing = requests.get(f"{url}/redfish/v1/Systems", auth=auth, timeout=5).json()
    assert listing["Members@odata.count"] == len(running.spec.hosts)
    system = running.spec.hosts[2].bmc_system_id
    others = [h.bmc_system_id for h in running.spec.hosts[:2]]
    assert _power(url, auth, system) == "On"
    reset = f"{url}/redfish/v1/Systems/{system}/Actions/ComputerSystem.Reset"

    def post(kind: str) -> None:
        resp = requests.post(reset, json={"ResetType": kind}, auth=auth, timeout=5)
        assert resp.status_code in (200, 202, 204), resp.text

    assert requests.post(reset, json={"ResetType": "ForceOff"}, timeout=5).status_code == 401
    # The fake driver applies a power change 0-11 s after the request (it rounds the time
    # down), so each state is waited for, not read once: a ForceRestart can be Off and On
    # again before the next GET. Off, then On, is the cycle that can be observed.
    post("ForceOff")
    _wait_power(url, auth, system, "Off")
    assert [_power(url, auth, s) for s in others] == ["On", "On"]
    post("On")
    _wait_power(url, auth, system, "On")
    post("ForceRestart")
    _wait_power(url, auth, system, "On")
    assert [_power(url, auth, s) for s in others] == ["On", "On"]


_SWITCH = re.compile(r'^Switch\s+\d+\s+"[^"]+"\s+# "([^"]+)"')
_PORT = re.compile(r'^\[(\d+)\]\s+"[^"]+"\[(\d+)\].*# "([^"]+)"')


def switch_links(topology: str) -> set[tuple[str, int, str, int]]:
    """(switch, port, peer, peer port) from ibnetdiscover's switch records."""
    links: set[tuple[str, int, str, int]] = set()
    switch = None
    for line in topology.splitlines():
        if m := _SWITCH.match(line):
            switch = m.group(1)
        elif not line.strip():
            switch = None
        elif switch and (m := _PORT.match(line)):
            links.add((switch, int(m.group(1)), m.group(3), int(m.group(2))))
    return links


def expected_links(spec: LabSpec) -> set[tuple[str, int, str, int]]:
    leaves = [f"{spec.site}-leaf-01", f"{spec.site}-leaf-02"]
    links = {(leaf, p, leaves[1 - r], p) for r, leaf in enumerate(leaves) for p in (39, 40)}
    for i, host in enumerate(spec.hosts):
        for rail, hca in enumerate(host.hca_ids):
            links.add((leaves[rail], i + 1, hca, 1))
    return links


def test_ibnetdiscover_inside_a_host(running: Lab) -> None:
    hca = running.spec.hosts[1].hca_ids[0]
    result = lab.run_ib_tool(running.root, hca, ["ibnetdiscover"])
    assert result.returncode == 0, result.stderr
    assert switch_links(result.stdout) == expected_links(running.spec)
    # plain tools over SSH go through the host's wrappers
    with ssh(running, running.spec.hosts[0].name) as client:
        rc, out = sh(client, "ibnetdiscover")
        assert rc == 0, out
        assert switch_links(out) == expected_links(running.spec)
        rc, out = sh(client, "ibstat")
        assert rc == 0, out
        cas = re.findall(r"^CA '([^']+)'", out, re.MULTILINE)
        assert cas == ["mlx5_0", "mlx5_1"]
        assert out.count("State: Active") == 2
        rc, out = sh(client, "sminfo")
        assert rc == 0 and "SMINFO_MASTER" in out, out


def test_status_reports_everything_ok(running: Lab) -> None:
    result = lab.status(running.spec.site, running.root)
    assert result.ok, result.to_dict()
    assert [h.name for h in result.hosts] == [h.name for h in running.spec.hosts]
    assert result.fabric is not None and len(result.fabric.subnets) == 1
    assert result.fabric.subnets[0].sm_state == "MASTER"
    assert "SMINFO_MASTER" in result.fabric.subnets[0].sminfo


def test_up_again_is_a_no_op(running: Lab) -> None:
    started = time.monotonic()
    again = lab.up(running.spec, running.root)
    assert time.monotonic() - started < 5
    assert again.processes() == running.state.processes()


def test_cli_up_is_idempotent_and_status_json(running: Lab,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("provision.lab.from_plan")
    fake.lab_spec_for_site = lambda site_path: running.spec  # type: ignore[attr-defined]
    fake.host_setup_for_site = lambda site_path: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "provision.lab.from_plan", fake)
    site_path = f"/nonexistent/{running.spec.site}/site.yaml"
    runner = CliRunner()
    result = runner.invoke(cli, ["lab", "up", site_path, "--lab-dir", str(running.root)])
    assert result.exit_code == 0, result.output
    assert f"ssh -F {running.state.paths.ssh_config}" in result.output
    result = runner.invoke(cli, ["lab", "status", site_path, "--lab-dir", str(running.root),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and len(report["hosts"]) == len(running.spec.hosts)
    result = runner.invoke(cli, ["lab", "status", site_path, "--lab-dir", str(running.root)])
    assert result.exit_code == 0, result.output
    assert running.spec.hosts[0].name in result.output


def test_down_leaves_nothing(running: Lab) -> None:
    state = running.state
    assert lab.down(state.site, running.root) is True
    assert_nothing_left(state.site, running.root, state)
    assert lab.down(state.site, running.root) is False  # idempotent


def assert_nothing_left(site: str, root: Path, state: LabState | None = None) -> None:
    prefix = f"gl-{site}-"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True, timeout=10).stdout
    assert prefix not in namespaces
    mounts = Path("/proc/mounts").read_text()
    assert str(root) not in mounts and prefix not in mounts
    assert not Path("/sys/class/net", f"gl-{site}").exists()
    assert not root.exists()
    assert not processes_mentioning(str(root))
    if state is not None:
        assert not any(alive(p) for p in state.processes())
        assert not any(Path("/sys/class/net", h.veth).exists() for h in state.hosts.values())


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found
