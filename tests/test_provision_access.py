"""Access as data: ``access.yaml`` read, checked and joined with the plan into targets; the
lab's own access file; which file the command line picks."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import yaml

from provision.cli.access import find_access
from provision.errors import ExecutionError, UsageError
from provision.execute import access, steps
from provision.execute.inventory import inventory_text
from provision.lab.access import ANSIBLE_VARS, IMAGE_NOTE, access_spec
from provision.lab.state import BmcRecord, FabricRecord, HostRecord, LabState
from provision.plan.build import Plan
from provision.plan.load import load_and_plan

ROOT = Path(__file__).resolve().parents[1]
LAB_SITE = ROOT / "inventory" / "sites" / "lab"
HOSTS = [f"lab-gpu-0{i}" for i in range(1, 5)]


@functools.cache
def _plan() -> Plan:
    return load_and_plan(LAB_SITE)[1]


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_without_an_access_file_hosts_are_reached_at_the_plan_addresses() -> None:
    plan = _plan()
    t = access.resolve(plan)
    inband = {a.device: a.address for n in plan.nodes for a in plan.addresses_of(n.name)
              if a.pool == "inband"}
    h = t.by_name()["lab-gpu-01"]
    assert (h.ssh.address, h.ssh.user, h.ssh.key_file, h.ssh.known_hosts) == (
        inband["lab-gpu-01"], "root", None, None)
    assert h.bmc.url.startswith("https://") and h.bmc.system == ""
    assert t.access.source is None and steps.settings_for(t.access, {}).boot_timeout == 600.0


def test_access_file_overrides_hosts_and_adds_site_wide_settings(tmp_path: Path) -> None:
    (tmp_path / "admin.pub").write_text("ssh-ed25519 AAAAC3Nz admin@site\n")
    path = _write(tmp_path, {
        "ssh": {"user": "ops", "key": "id_ops", "known_hosts": "kh"},
        "hosts": {"lab-gpu-02": {"ssh": {"address": "192.0.2.2", "port": 2222},
                                 "bmc": {"url": "http://127.0.0.1:9", "system": "sys-2"}}},
        "credential_files": ["bmc.env"], "admin_keys": ["admin.pub"],
        "ansible_vars": {"netplan_apply": False},
        "timeouts": {"boot_s": 45, "boot_interval_s": 2},
        "infiniband_env": {"SIM_HOST": "{node} {hca}", "X": "1"},
        "image_note": "test rig: nothing reinstalled"})
    acc = access.load(path)
    t = access.resolve(_plan(), acc, credential_files=[Path("/etc/own.env")])
    two, one = t.by_name()["lab-gpu-02"], t.by_name()["lab-gpu-01"]
    assert (two.ssh.address, two.ssh.port, two.ssh.user) == ("192.0.2.2", 2222, "ops")
    assert two.ssh.key_file == tmp_path / "id_ops" and one.ssh.known_hosts == tmp_path / "kh"
    assert (two.bmc.url, two.bmc.system) == ("http://127.0.0.1:9", "sys-2")
    assert one.bmc.url.startswith("https://")  # not listed: the plan's BMC address
    assert t.credential_files == (Path("/etc/own.env"), tmp_path / "bmc.env")
    assert t.admin_keys == ("ssh-ed25519 AAAAC3Nz admin@site",)
    s = steps.settings_for(acc, {})
    assert (s.boot_timeout, s.boot_interval, s.image_note) == (45, 2, "test rig: nothing "
                                                                     "reinstalled")
    assert steps.settings_for(acc, {}, boot_timeout=7).boot_timeout == 7
    assert acc.infiniband_env("n1", "mlx5_0") == {"SIM_HOST": "n1 mlx5_0", "X": "1"}
    allvars = json.loads(inventory_text(_plan(), t))["all"]["vars"]
    assert allvars["netplan_apply"] is False and allvars["ansible_user"] == "root"


def test_command_line_ssh_settings_win_over_the_file(tmp_path: Path) -> None:
    acc = access.load(_write(tmp_path, {"hosts": {"lab-gpu-01": {"ssh": {"user": "a"}}}}))
    over = acc.with_ssh(user="b", known_hosts=Path("kh"))
    target = over.ssh_target("lab-gpu-01", "10.0.0.1")
    assert target.user == "b" and target.known_hosts == Path("kh").absolute()
    assert acc.with_ssh() is acc


@pytest.mark.parametrize(("data", "message"), [
    ({"hosts": {"lab-gpu-01": {"ssh": {"adress": "x"}}}},
     "hosts.lab-gpu-01.ssh.adress: Extra inputs are not permitted"),
    ({"timeouts": {"boot_s": -1}}, "timeouts.boot_s: Input should be greater than 0"),
    ({"hosts": {"gpu-99": {}}}, "hosts: 'gpu-99' is not a host of site lab"),
    ({"exclusive": True, "hosts": {"lab-gpu-01": {}}}, "host lab-gpu-02: not in "),
    ({"admin_keys": ["missing.pub"]}, "admin_keys: cannot read"),
])
def test_a_bad_access_file_is_one_line_naming_file_and_field(
        tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises((UsageError, ExecutionError)) as err:
        access.resolve(_plan(), access.load(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_unreadable_or_invalid_yaml_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        access.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("hosts: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        access.load(tmp_path / "bad.yaml")


def _lab_state(root: Path, credentials: str = "file") -> LabState:
    state = LabState(site="lab", lab_dir=str(root), spec_digest="d", bridge="br",
                     gateway="10.99.0.1/24",
                     bmc=BmcRecord(url="http://127.0.0.1:8123", port=8123,
                                   credentials=credentials),
                     fabric=FabricRecord(server="10.99.0.1", port=7000), complete=True)
    for i, name in enumerate(HOSTS):
        state.hosts[name] = HostRecord(name, f"10.99.0.{11 + i}/24", f"ns{i}", f"v{i}",
                                       "02:00:00:00:00:00", f"uuid-{i}", (f"{name} mlx5_0",),
                                       "gpu")
    return state


def test_the_lab_access_file_reaches_its_hosts_and_changes_nothing_here(
        tmp_path: Path) -> None:
    (tmp_path / "admin_ed25519.pub").write_text("ssh-ed25519 AAAAlab gpuctl-lab-admin\n")
    path = tmp_path / access.FILE_NAME
    path.write_text(access.dump(access_spec(_lab_state(tmp_path))))
    assert access.dump(access.load(path).spec) == path.read_text()  # round trip
    t = access.resolve(_plan(), access.load(path))
    h = t.by_name()["lab-gpu-03"]
    assert (h.ssh.address, h.ssh.key_file, h.ssh.known_hosts) == (
        "10.99.0.13", tmp_path / "admin_ed25519", tmp_path / "known_hosts")
    assert (h.bmc.url, h.bmc.system) == ("http://127.0.0.1:8123", "uuid-2")
    assert t.credential_files == (tmp_path / "secrets.env",)
    allvars = json.loads(inventory_text(_plan(), t))["all"]["vars"]
    assert {k: allvars[k] for k in ANSIBLE_VARS} == ANSIBLE_VARS
    assert steps.settings_for(t.access, {}).image_note == IMAGE_NOTE
    assert not t.access.network_boot and access.Access().network_boot
    assert t.access.infiniband_env("lab-gpu-01", "mlx5_0")["SIM_HOST"] == "lab-gpu-01 mlx5_0"
    env_lab = access_spec(_lab_state(tmp_path, credentials="env"))
    assert env_lab.credential_files == []


def test_command_line_picks_the_access_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr("provision.cli.lab.lab_dir_of", lambda _s: tmp_path / "nolab")
    assert find_access(site, site, None, None, False).source is None
    own = _write(site, {"ssh": {"user": "ops"}})
    assert find_access(site, site, None, None, False).source == own.resolve()
    lab = tmp_path / "lab"
    lab.mkdir()
    with pytest.raises(UsageError, match="no lab is up there"):
        find_access(site, site, None, lab, False)
    (lab / "state.json").write_text("{}")
    with pytest.raises(UsageError, match="run `gpuctl lab up` again"):
        find_access(site, site, None, lab, False)
    labfile = _write(lab, {"description": "a lab"})
    assert find_access(site, site, None, lab, False).source == labfile.resolve()
    monkeypatch.setattr("provision.cli.lab.lab_dir_of", lambda _s: lab)
    assert find_access(site, site, None, None, False).source == labfile.resolve()
    assert find_access(site, site, None, None, True).source == own.resolve()  # --no-lab
    assert find_access(site, site, own, None, False).source == own.resolve()
    with pytest.raises(UsageError, match="give one of them"):
        find_access(site, site, own, lab, False)


def test_a_network_booted_node_is_verified_against_its_pre_generated_key(
        tmp_path: Path) -> None:
    """gpuctl image seed's known_hosts (the keys made before imaging) verifies the nodes it
    keyed, over the access file's site-wide known_hosts, where the nodes network-boot; a
    host's own known_hosts in the file still wins; other hosts keep the file's."""
    seeded = tmp_path / "seeded_known_hosts"
    seeded.write_text("lab-gpu-01,10.99.0.11 ssh-ed25519 AAAAone\n"
                      "# a comment\nlab-gpu-02,10.99.0.12 ssh-ed25519 AAAAtwo\n")
    assert access.keyed_hosts(seeded) == {"lab-gpu-01", "10.99.0.11", "lab-gpu-02",
                                          "10.99.0.12"}
    assert access.keyed_hosts(tmp_path / "none") == frozenset()
    spec = {"ssh": {"known_hosts": "lab_kh"},
            "hosts": {"lab-gpu-02": {"ssh": {"known_hosts": "own_kh"}}}}
    booted = access.load(_write(tmp_path, {**spec, "network_boot": True}))
    kh = {h.name: h.ssh.known_hosts for h in access.resolve(
        _plan(), booted, known_hosts=seeded).hosts}
    assert (kh["lab-gpu-01"], kh["lab-gpu-02"], kh["lab-gpu-03"]) == (
        seeded, tmp_path / "own_kh", tmp_path / "lab_kh")
    # a namespace lab (no network boot): its hosts keep their own keys, whatever was seeded
    static = access.load(_write(tmp_path, {**spec, "network_boot": False}))
    kh = {h.name: h.ssh.known_hosts for h in access.resolve(
        _plan(), static, known_hosts=seeded).hosts}
    assert kh["lab-gpu-01"] == tmp_path / "lab_kh"


def test_the_dhcp_bound_comes_from_the_access_file(tmp_path: Path) -> None:
    from provision.image.bootplan import BootEntry, write_nodes
    from provision.image.phase import site_imaging

    write_nodes(tmp_path, {"lab-gpu-01": BootEntry("lab-gpu-01", "10.99.0.11",
                                                   "52:54:00:00:00:01", "img", "sha256:x")})
    acc = access.load(_write(tmp_path, {"timeouts": {"dhcp_s": 40}}))
    im = site_imaging(tmp_path, _plan(), access=acc)
    assert im is not None and im.bounds.dhcp == 40 and im.bounds.fetch == 60
    im = site_imaging(tmp_path, _plan(), access=access.Access())
    assert im is not None and im.bounds.dhcp == 120
