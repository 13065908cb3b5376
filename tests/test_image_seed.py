"""gpuctl image seed: per-node host keys (secrets), NoCloud seeds, known_hosts for verified
first SSH."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from tests.test_image_build import TINY, make_site


def seeded_site(tmp_path: Path, runner: CliRunner) -> tuple[Path, Path, str]:
    site = make_site(tmp_path, [TINY], "tiny")
    (site / "admin_keys").mkdir()
    adm = tmp_path / "adm"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "adm", "-f", str(adm)],
                   check=True)
    (site / "admin_keys" / "adm.pub").write_text(adm.with_suffix(".pub").read_text())
    res = runner.invoke(cli, ["image", "seed", str(site)])
    assert res.exit_code == 0, res.output
    return site, adm, res.output


def test_seeds_hold_plan_data_and_secrets_stay_private(tmp_path: Path,
                                                        runner: CliRunner) -> None:
    site, adm, out = seeded_site(tmp_path, runner)
    state = site / ".gpuctl"
    assert "PRIVATE KEY" not in out and "seeded 4 nodes" in out
    assert "no image built yet for gpu" in out
    key = state / "secrets" / "hostkeys" / "lab-gpu-02"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    seed = state / "seeds" / "lab-gpu-02"
    for name in ("meta-data", "user-data", "network-config"):
        assert stat.S_IMODE((seed / name).stat().st_mode) == 0o600
    user = yaml.safe_load((seed / "user-data").read_text())
    assert (seed / "user-data").read_text().startswith("#cloud-config\n")
    assert user["hostname"] == "lab-gpu-02" and user["fqdn"] == "lab-gpu-02.lab.gpuctl.internal"
    assert user["ssh_keys"]["ed25519_private"] == key.read_text()
    admin_pub = adm.with_suffix(".pub").read_text().strip()
    assert all(u["ssh_authorized_keys"] == [admin_pub] for u in user["users"])
    from provision.plan.load import load_and_plan

    _, plan = load_and_plan(site)
    [a] = [a for a in plan.addresses_of("lab-gpu-02") if a.pool == "inband"]
    net = yaml.safe_load((seed / "network-config").read_text())
    assert net["ethernets"]["eno1"]["addresses"] == [f"{a.address}/{a.prefix}"]
    assert net["ethernets"]["eno1"]["gateway4"] == a.gateway
    assert yaml.safe_load((seed / "meta-data").read_text()) == {
        "instance-id": "lab-lab-gpu-02", "local-hostname": "lab-gpu-02"}
    known = (state / "known_hosts").read_text().splitlines()
    assert f"lab-gpu-02,{a.address} {user['ssh_keys']['ed25519_public']}" in known
    from provision.render.topo import services_address

    svc = services_address(plan)
    assert user["phone_home"]["url"] == f"http://{svc}/phone-home/lab-gpu-02"
    assert len(known) == 4
    # cloud-init itself accepts the user-data
    if shutil.which("cloud-init"):
        res = subprocess.run(["cloud-init", "schema", "--config-file", str(seed / "user-data")],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "Valid cloud-config" in res.stdout, res.stdout + res.stderr


def test_reseed_keeps_keys_rotate_replaces_them(tmp_path: Path, runner: CliRunner) -> None:
    site, _adm, _ = seeded_site(tmp_path, runner)
    known = site / ".gpuctl" / "known_hosts"
    before = known.read_text()
    assert runner.invoke(cli, ["image", "seed", str(site)]).exit_code == 0
    assert known.read_text() == before
    res = runner.invoke(cli, ["image", "seed", str(site), "--group", "gpu", "--rotate-keys"])
    assert res.exit_code == 0
    after = known.read_text()
    assert after != before and len(after.splitlines()) == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd") and
                    not Path("/usr/sbin/sshd").exists(), reason="needs root and sshd")
def test_first_ssh_verifies_the_seeded_host_key(tmp_path: Path, runner: CliRunner) -> None:
    """A real sshd with the host key from the node's seed (what cloud-init installs) is
    accepted with gpuctl's known_hosts and StrictHostKeyChecking=yes; after a key rotation the
    same server is refused."""
    site, adm, _ = seeded_site(tmp_path, runner)
    user = yaml.safe_load((site / ".gpuctl/seeds/lab-gpu-01/user-data").read_text())
    hostkey = tmp_path / "node_host_key"
    hostkey.write_text(user["ssh_keys"]["ed25519_private"])
    hostkey.chmod(0o600)
    auth = tmp_path / "authorized_keys"
    auth.write_text("\n".join(user["users"][0]["ssh_authorized_keys"]) + "\n")
    auth.chmod(0o600)
    port = _free_port()
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null", "-p", str(port),
         "-o", "ListenAddress=127.0.0.1", "-o", f"HostKey={hostkey}",
         "-o", f"AuthorizedKeysFile={auth}", "-o", "StrictModes=no",
         "-o", f"PidFile={tmp_path / 'sshd.pid'}", "-o", "UsePAM=no"],
        stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)

        def ssh_with(known_text: str) -> subprocess.CompletedProcess[str]:
            kh = tmp_path / "kh"
            # the node answers on loopback:PORT here; the key is gpuctl's line for the node
            line = next(ln for ln in known_text.splitlines() if ln.startswith("lab-gpu-01,"))
            kh.write_text(f"[127.0.0.1]:{port} {line.split(' ', 1)[1]}\n")
            return subprocess.run(
                ["ssh", "-p", str(port), "-i", str(adm), "-o", "IdentitiesOnly=yes",
                 "-o", f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null",
                 "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                 "root@127.0.0.1", "echo", "verified"], capture_output=True, text=True,
                timeout=30)

        known = site / ".gpuctl" / "known_hosts"
        ok = ssh_with(known.read_text())
        assert ok.returncode == 0 and ok.stdout.strip() == "verified", ok.stderr
        assert runner.invoke(cli, ["image", "seed", str(site), "--rotate-keys"]).exit_code == 0
        bad = ssh_with(known.read_text())
        assert bad.returncode != 0 and "HOST IDENTIFICATION HAS CHANGED" in bad.stderr
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


def test_provision_targets_verify_against_the_seeded_known_hosts(tmp_path: Path,
                                                                 runner: CliRunner) -> None:
    from provision.execute.session import SessionOptions, build_targets
    from provision.plan.load import load_and_plan

    site, _adm, _ = seeded_site(tmp_path, runner)
    loaded, plan = load_and_plan(site)
    t = build_targets(loaded, plan, SessionOptions())
    assert {h.ssh.known_hosts for h in t.hosts} == {site / ".gpuctl" / "known_hosts"}
    fresh = make_site(tmp_path / "fresh", [TINY], "tiny")
    loaded, plan = load_and_plan(fresh)
    assert {h.ssh.known_hosts for h in build_targets(loaded, plan,
                                                     SessionOptions()).hosts} == {None}


def test_boot_services_inputs_written_for_the_playbook(tmp_path: Path, runner: CliRunner) -> None:
    site, _adm, out = seeded_site(tmp_path, runner)
    state = site / ".gpuctl"
    assert f"-e @{state / 'boot_services.yml'}" in out
    data = yaml.safe_load((state / "boot_services.yml").read_text())
    assert data["boot_services_seeds_src"] == str(state / "seeds")
    assert (Path(data["boot_services_ipxe_src"]) / "nodes" / "lab-gpu-03.ipxe").is_file()
    assert data["boot_services_images"] == []  # nothing built yet
    if shutil.which("kea-dhcp4"):
        res = subprocess.run(["kea-dhcp4", "-t", data["boot_services_kea_config_src"]],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_macs_manifest_reserves_by_hw_address(tmp_path: Path, runner: CliRunner) -> None:
    import json

    site, _adm, _ = seeded_site(tmp_path, runner)
    (site / "macs.json").write_text(json.dumps({"lab-gpu-01/eno1": "52:54:00:AA:00:01"}))
    assert runner.invoke(cli, ["image", "seed", str(site)]).exit_code == 0
    kea = json.loads((site / ".gpuctl/boot/kea-dhcp4.conf").read_text())
    res = {r["hostname"]: r for s in kea["Dhcp4"]["subnet4"] for r in s["reservations"]}
    assert res["lab-gpu-01"]["hw-address"] == "52:54:00:aa:00:01"
    assert "client-id" in res["lab-gpu-02"] and "hw-address" not in res["lab-gpu-02"]
    # the image phase's boot plan: what each node is served, its MAC where known
    from provision.image.bootplan import read_nodes
    from provision.image.phase import site_imaging
    from provision.image.watch import SharedRecords, SshRecords
    from provision.plan.load import load_and_plan

    net = yaml.safe_load((site / ".gpuctl/seeds/lab-gpu-01/network-config").read_text())
    assert net["ethernets"]["eno1"]["match"] == {"macaddress": "52:54:00:aa:00:01"}
    assert net["ethernets"]["eno1"]["set-name"] == "eno1"
    other = yaml.safe_load((site / ".gpuctl/seeds/lab-gpu-02/network-config").read_text())
    assert "match" not in other["ethernets"]["eno1"]
    nodes = read_nodes(site / ".gpuctl")
    assert nodes["lab-gpu-01"].mac == "52:54:00:aa:00:01" and nodes["lab-gpu-02"].mac == ""
    assert nodes["lab-gpu-01"].address == res["lab-gpu-01"]["ip-address"]
    assert nodes["lab-gpu-01"].image == "tiny" and nodes["lab-gpu-01"].digest == ""
    _, plan = load_and_plan(site)
    imaging = site_imaging(site / ".gpuctl", plan)
    assert imaging is not None and isinstance(imaging.records, SharedRecords)
    assert isinstance(imaging.records.inner, SshRecords)
    assert imaging.records.inner.target.address == yaml.safe_load(
        (site / ".gpuctl/boot_services.yml").read_text())["boot_services_address"]
    assert site_imaging(tmp_path, plan) is None  # nothing seeded: PXE + wait for SSH only
    for bad, why in (({"lab-gpu-09/eno1": "52:54:00:aa:00:01"}, "no such device/interface"),
                     ({"lab-gpu-01/eno1": "52:54:00:aa:00"}, "is not a MAC address")):
        (site / "macs.json").write_text(json.dumps(bad))
        out = runner.invoke(cli, ["image", "seed", str(site)])
        assert out.exit_code != 0 and why in out.output and "macs.json" in out.output
        assert out.output.count("\n") == 1
