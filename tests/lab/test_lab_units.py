"""Lab pieces that need no root: spec checks, names, state round trip, config rendering,
the host-side InfiniBand wrapper's argument handling."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest
from labspec import make_spec_offline

from provision.errors import LabError
from provision.lab import bmc, ibwrap, names
from provision.lab.bmc import emulator_config
from provision.lab.fabric import Subnet, render_opensm_conf, sm_state, subnets
from provision.lab.hostfs import check_lab_dir, hosts_file
from provision.lab.keys import ssh_config_text
from provision.lab.spec import LabSpec, ibsim_node_ids, spec_digest, validate
from provision.lab.state import (
    FabricRecord,
    HostRecord,
    LabPaths,
    LabState,
    ProcRecord,
    SmRecord,
    load_state,
    save_state,
)
from provision.sshkeys import KnownHost, known_hosts_text


@pytest.fixture
def spec() -> LabSpec:
    return make_spec_offline("unit", 3)


def test_hand_made_spec_validates(spec: LabSpec) -> None:
    validate(spec)
    assert len(ibsim_node_ids(spec.ibsim_net)) == 2 + 3 * 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"site": "Bad_Site"}, "name must be lowercase"),
        ({"gateway": "10.0.0.1"}, "is not a usable host address"),
        ({"gateway": "nonsense/24"}, "not an IPv4 address"),
        ({"hosts": ()}, "no hosts"),
        ({"ibsim_net": "# empty\n"}, "no Switch/Hca records"),
        ({"opensm_files": {"../etc/passwd": ""}}, "must be a bare file name"),
    ],
)
def test_bad_site_fields_are_named(spec: LabSpec, change: dict[str, object],
                                   message: str) -> None:
    with pytest.raises(LabError, match=message):
        validate(dataclasses.replace(spec, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Bad Host", "not a valid hostname"),
        ("address", "10.99.0.5/24", "not in the gateway's subnet"),
        ("address", "10.213.0.1/24", "already used"),
        ("bmc_system_id", "not-a-uuid", "not a UUID"),
        ("hca_ids", ("nowhere mlx5_0",), "not a node of the ibsim net file"),
    ],
)
def test_bad_host_fields_name_the_host(spec: LabSpec, field: str, value: object,
                                       message: str) -> None:
    hosts = list(spec.hosts)
    hosts[1] = dataclasses.replace(hosts[1], **{field: value})  # type: ignore[arg-type]
    with pytest.raises(LabError, match=message):
        validate(dataclasses.replace(spec, hosts=tuple(hosts)))


def test_duplicates_are_refused(spec: LabSpec) -> None:
    hosts = list(spec.hosts)
    hosts[2] = dataclasses.replace(hosts[2], bmc_system_id=hosts[0].bmc_system_id)
    with pytest.raises(LabError, match=f"lab host {hosts[2].name}: duplicate bmc_system_id"):
        validate(dataclasses.replace(spec, hosts=tuple(hosts)))
    hosts = list(spec.hosts)
    hosts[2] = dataclasses.replace(hosts[2], hca_ids=hosts[0].hca_ids)
    with pytest.raises(LabError, match="belongs to another host"):
        validate(dataclasses.replace(spec, hosts=tuple(hosts)))


def test_spec_digest_is_stable_and_sensitive(spec: LabSpec) -> None:
    assert spec_digest(spec) == spec_digest(make_spec_offline("unit", 3))
    assert spec_digest(spec) != spec_digest(dataclasses.replace(spec, opensm_conf=""))


@pytest.mark.parametrize("site", ["lab", "a-very-long-site-name-indeed", "x" * 40])
def test_interface_names_fit_ifnamsiz(site: str) -> None:
    assert len(names.bridge_name(site)) <= names.IFNAMSIZ
    assert len(names.veth_name(site, 9999)) <= names.IFNAMSIZ
    assert names.bridge_name(site) != names.bridge_name(site + "2")


def test_mac_is_locally_administered_unicast() -> None:
    first = int(names.host_mac("lab", "lab-gpu-01").split(":")[0], 16)
    assert first & 0b10 and not first & 0b01
    assert names.host_mac("lab", "a") != names.host_mac("lab", "b")


def test_state_round_trip(tmp_path: Path) -> None:
    proc = ProcRecord(label="lab host h: sshd", pid=123, start_time=456, argv=("sshd", "-D"))
    state = LabState(site="s", lab_dir=str(tmp_path), spec_digest="d", bridge="gl-s",
                     gateway="10.0.0.1/24")
    state.hosts["h"] = HostRecord(name="h", address="10.0.0.2/24", netns="gl-s-h",
                                  veth="gvabc-0", mac="02:00:00:00:00:01",
                                  bmc_system_id="u", hca_ids=("h mlx5_0",),
                                  catalog_type="t", sshd=proc)
    state.fabric = FabricRecord(server="10.0.0.1", port=7070, ibsim=proc, sms=[
        SmRecord(sm_node="leaf", probe_node="h mlx5_0", log="/x/opensm.log", proc=proc)])
    save_state(state)
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600
    assert load_state(tmp_path) == state
    assert load_state(tmp_path / "missing") is None


def test_opensm_conf_points_at_written_files(tmp_path: Path) -> None:
    conf = "routing_engine ftree\nroot_guid_file roots.txt\n# cn_guid_file roots.txt\n"
    out = render_opensm_conf(conf, {"roots.txt": "0x1\n"}, tmp_path)
    assert f"root_guid_file {tmp_path / 'roots.txt'}" in out
    assert "# cn_guid_file roots.txt" in out


def test_sm_state_from_log(tmp_path: Path) -> None:
    log = tmp_path / "opensm.log"
    log.write_text("Entering DISCOVERING state\nEntering MASTER state\n... 0x02 -> SUBNET UP\n")
    assert sm_state(log) == ("MASTER", True)
    assert sm_state(tmp_path / "none") == (None, False)


def test_lab_dir_may_not_be_overlaid() -> None:
    for bad in ("/etc/lab", "/root/.lab/x", "/usr", "/tmp/a,b"):
        with pytest.raises(LabError):
            check_lab_dir(Path(bad))
    check_lab_dir(Path("/work/main/.lab/lab"))


def test_known_hosts_and_ssh_config_check_host_keys(tmp_path: Path) -> None:
    hosts = [KnownHost("h1", "10.0.0.2", "ssh-ed25519 AAAA")]
    assert known_hosts_text(hosts) == "h1,10.0.0.2 ssh-ed25519 AAAA\n"
    config = ssh_config_text(hosts, admin_key=tmp_path / "k", known_hosts=tmp_path / "kh")
    assert "StrictHostKeyChecking yes" in config
    assert "StrictHostKeyChecking no" not in config


def test_hosts_file_and_emulator_config(spec: LabSpec, tmp_path: Path) -> None:
    records = [HostRecord(name=h.name, address=h.address, netns="n", veth="v",
                          mac=names.host_mac(spec.site, h.name), bmc_system_id=h.bmc_system_id,
                          hca_ids=h.hca_ids, catalog_type=h.catalog_type) for h in spec.hosts]
    assert "10.213.0.11\tunit-gpu-01\n" in hosts_file(records)
    text = emulator_config(port=8000, auth_file=tmp_path / "htpasswd",
                           state_dir=tmp_path / "state", hosts=records)
    scope = {node.targets[0].id: ast.literal_eval(node.value)  # type: ignore[attr-defined]
             for node in ast.parse(text).body if isinstance(node, ast.Assign)}
    systems = scope["SUSHY_EMULATOR_FAKE_SYSTEMS"]
    assert isinstance(systems, list)
    assert [s["uuid"] for s in systems] == [h.bmc_system_id for h in spec.hosts]
    assert scope["SUSHY_EMULATOR_LISTEN_IP"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("args", "ca", "rest"),
    [
        (["-C", "mlx5_1", "-P", "1"], "mlx5_1", ["-P", "1"]),
        (["-Cmlx5_2", "-s"], "mlx5_2", ["-s"]),
        (["--Ca=mlx5_3"], "mlx5_3", []),
        (["-p"], None, ["-p"]),
    ],
)
def test_wrapper_takes_the_ca_option(args: list[str], ca: str | None, rest: list[str]) -> None:
    assert ibwrap.split_ca_option(args) == (ca, rest)


def test_wrapper_names_devices_after_the_hca_id() -> None:
    hcas = ["lab-gpu-01 mlx5_0", "lab-gpu-01 mlx5_1"]
    assert ibwrap.device_name(hcas[1]) == "mlx5_1"
    assert ibwrap.find_hca(hcas, "mlx5_1") == hcas[1]
    assert ibwrap.find_hca(hcas, hcas[0]) == hcas[0]
    assert ibwrap.find_hca(hcas, "mlx5_9") is None


def test_holder_and_wrapper_need_only_the_standard_library() -> None:
    for name in ("holder.py", "ibwrap.py"):
        text = (Path(ibwrap.__file__).parent / name).read_text()
        assert "from provision" not in text and "import provision" not in text
    assert sys.version_info >= (3, 11)


def test_bmc_credentials_from_env_are_never_written(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bmc.USER_ENV, "ops")
    monkeypatch.setenv(bmc.PASSWORD_ENV, "s3cret")
    paths = LabPaths(tmp_path)
    creds = bmc.credentials_for_up(paths)
    assert (creds.user, creds.password, creds.source) == ("ops", "s3cret", "env")
    assert not paths.secrets.exists()
    assert bmc.credentials_for_use(paths, "env") == creds
    monkeypatch.delenv(bmc.PASSWORD_ENV)
    with pytest.raises(LabError, match="set them again"):
        bmc.credentials_for_use(paths, "env")


def test_bmc_credentials_generated_into_a_private_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bmc.USER_ENV, raising=False)
    monkeypatch.delenv(bmc.PASSWORD_ENV, raising=False)
    paths = LabPaths(tmp_path)
    creds = bmc.credentials_for_up(paths)
    assert creds.source == "file" and len(creds.password) >= 20
    assert paths.secrets.stat().st_mode & 0o777 == 0o600
    assert bmc.credentials_for_up(paths) == creds  # reused, not regenerated
    assert bmc.credentials_for_use(paths, "file") == creds
    line = bmc.htpasswd_line(creds)
    assert line.startswith(f"{creds.user}:$2b$")


def test_cli_says_root_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from provision.cli.main import cli

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for args in (["up", "x"], ["down", "x"], ["status", "x"]):
        result = CliRunner().invoke(cli, ["lab", *args], obj={})
        assert result.exit_code == 1
        assert result.output.strip() == ("gpuctl: error: gpuctl lab needs root (network "
                                         "namespaces, mounts, sshd); run it with sudo")


def test_one_subnet_per_connected_part_of_the_net_file(spec: LabSpec) -> None:
    assert subnets(spec.ibsim_net) == [Subnet("unit-leaf-01", "unit-gpu-01 mlx5_0", 8)]
    two_planes = make_spec_offline("unit", 3, planes=True).ibsim_net
    assert subnets(two_planes) == [Subnet("unit-leaf-01", "unit-gpu-01 mlx5_0", 4),
                                   Subnet("unit-leaf-02", "unit-gpu-01 mlx5_1", 4)]


def test_wrapper_honours_sim_host_of_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    hcas = ["lab-gpu-01 mlx5_0", "lab-gpu-01 mlx5_1"]
    monkeypatch.delenv("SIM_HOST", raising=False)
    assert ibwrap.env_hca(hcas) is None
    monkeypatch.setenv("SIM_HOST", "lab-gpu-01 mlx5_1")
    assert ibwrap.env_hca(hcas) == hcas[1]
    monkeypatch.setenv("SIM_HOST", "lab-gpu-02 mlx5_1")
    assert ibwrap.env_hca(hcas) is None
