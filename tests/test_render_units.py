"""Unit tests of the fabric renderers: GUIDs, net-file round trip, routing choice, OpenSM
files, host lists, templates, and the lab spec built from a plan."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jinja2
import pytest

from provision.lab.fabric import render_opensm_conf, subnets
from provision.lab.from_plan import lab_spec_for_site, lab_spec_from_plan
from provision.lab.spec import validate
from provision.render.ibsim import (
    IbFabric,
    IbNode,
    ib_fabric,
    ibsim_net,
    port_guid,
    synthetic_guids,
)
from provision.render.opensm import opensm_conf, opensm_files, opensm_tree, resolve_guids, routing
from provision.render.templating import render
from provision.render.topo import hostlist
from tests.render_support import ROOT, SITES, expand_hostlist, plan_of_text, site_plan

_REC = re.compile(r'^(Switch|Hca) (\d+) "([^"]+)"$')
_PORT = re.compile(r'^\[(\d+)\] "([^"]+)"\[(\d+)\] # lid 0 (4x[A-Z]+)$')


def test_synthetic_guids_are_stable_unique_and_spaced() -> None:
    plan = site_plan("superpod-h100-4su")
    g = synthetic_guids(plan)
    assert g == synthetic_guids(site_plan("superpod-h100-4su"))
    values = [int(v, 16) for v in g.values()]
    assert len(set(values)) == len(values) == len(ib_fabric(plan).nodes)
    for name, v in g.items():
        assert re.fullmatch(r"0x[0-9a-f]{16}", v), name
        assert int(v, 16) >> 56 == 0x02 and int(v, 16) & 0xF == 0
    assert "dgx-001 mlx5_0" in g and "ufm" in g and "ib-su01-leaf01" in g


def test_port_guids_follow_ibsim_unless_given() -> None:
    ca = IbNode("h1 mlx5_0", "Hca", 1)
    sw = IbNode("leaf", "Switch", 40)
    g = {"h1 mlx5_0": "0x0200000000000010", "leaf": "0x0200000000000020"}
    assert port_guid(g, ca) == "0x0200000000000011"
    assert port_guid(g, sw) == "0x0200000000000020"
    assert port_guid({**g, "h1 mlx5_0[1]": "0x0200000000000010"}, ca) == "0x0200000000000010"


@pytest.mark.parametrize("site", ["lab", "superpod-h100-4su", "fireflyer-pcie"])
def test_net_file_round_trips_to_the_planned_links(site: str) -> None:
    plan = site_plan(site)
    fabric = ib_fabric(plan)
    links: set[tuple[str, int, str, int]] = set()
    node: str | None = None
    guid_next = False
    nodes = []
    for line in ibsim_net(plan).splitlines():
        if line.startswith(("switchguid=", "caguid=")):
            guid_next = True
        elif m := _REC.match(line):
            assert guid_next, f"{line}: no GUID line before the record"
            guid_next = False
            node = m.group(3)
            nodes.append(node)
        elif m := _PORT.match(line):
            assert node is not None
            a, b = (node, int(m.group(1))), (m.group(2), int(m.group(3)))
            links.add((*a, *b) if a < b else (*b, *a))
            assert m.group(4) in ("4xHDR", "4xEDR")
        else:
            assert line == "" or line.startswith("#"), line
    assert links == fabric.links()
    assert nodes == [n.name for n in fabric.nodes]
    for lk in plan.node_fabric_links():
        assert f"{lk.a} {lk.a_port}" in nodes
    assert len(plan.node_fabric_links()) == sum(1 for n in nodes if " mlx5_" in n)


def test_multi_plane_files_one_subnet_per_plane() -> None:
    plan = site_plan("mpft-16k")
    parts = subnets(ibsim_net(plan))
    assert [p.sm_node for p in parts] == [f"ib-p{p}-spine01" for p in range(8)]
    tree = opensm_tree(plan)
    assert "opensm/plane7/opensm.conf" in tree and "opensm/opensm.conf" not in tree
    assert "root_guid_file /etc/opensm/plane3/root_guids.conf" in tree[
        "opensm/plane3/opensm.conf"]


def test_routing_is_ftree_for_fat_trees_and_updn_otherwise() -> None:
    for site in ("lab", "superpod-h100-4su", "fireflyer-pcie"):
        assert routing(ib_fabric(site_plan(site)))[0] == "ftree"
    spine = IbNode("s", "Switch", 8, tier="spine", links={1: ("l", 5), 2: ("h mlx5_0", 1)})
    leaf = IbNode("l", "Switch", 8, tier="leaf", links={5: ("s", 1)})
    ca = IbNode("h mlx5_0", "Hca", 1, links={1: ("s", 2)})
    engine, why = routing(IbFabric([spine, leaf, ca], "HDR", "HDR"))
    assert engine == "updn" and "not on a leaf" in why
    single = IbNode("l", "Switch", 8, tier="leaf", links={1: ("h mlx5_0", 1)})
    assert routing(IbFabric([single, IbNode("h mlx5_0", "Hca", 1, links={1: ("l", 1)})],
                            "HDR", "HDR"))[0] == "updn"


def test_opensm_files_use_discovered_guids_and_site_pkey(tmp_path: Path) -> None:
    text = (SITES / "lab" / "site.yaml").read_text()
    plan = plan_of_text(tmp_path, text.replace("    network_racks: [a01]\n",
                                               "    network_racks: [a01]\n"
                                               "    ipoib_pkey: \"0x8001\"\n", 1))
    discovered = {"ib-spine01": "0x0002c90300000001", "lab-gpu-01 mlx5_0": "0x0002c90300000100",
                  "lab-gpu-01 mlx5_0[1]": "0x0002c90300000100"}
    g = resolve_guids(plan, discovered)
    files = opensm_files(plan, g)
    assert files["root_guids.conf"].splitlines()[1:] == ["0x0002c90300000001"]
    assert "0x0002c90300000100" in files["cn_guids.conf"].splitlines()
    assert '0x0002c90300000001 "ib-spine01"' in files["node-name-map"]
    assert "compute=0x0001,ipoib,defmember=full:" in files["partitions.conf"]


def test_bare_file_names_are_rewritten_by_the_lab(tmp_path: Path) -> None:
    plan = site_plan("lab")
    files = opensm_files(plan)
    conf = opensm_conf(plan, file_dir=None)
    assert "root_guid_file root_guids.conf" in conf
    placed = render_opensm_conf(conf, files, tmp_path)
    assert f"root_guid_file {tmp_path}/root_guids.conf" in placed
    assert f"node_name_map_name {tmp_path}/node-name-map" in placed


def test_lab_spec_from_the_lab_site() -> None:
    spec = lab_spec_for_site(str(SITES / "lab"))
    validate(spec)
    plan = site_plan("lab")
    assert spec.gateway == "10.210.0.1/25"
    assert [h.name for h in spec.hosts] == [n.name for n in plan.nodes]
    assert spec.hosts[0].address == "10.210.0.12/25"  # U 2 of rack a01
    assert spec.hosts[0].hca_ids == tuple(f"lab-gpu-01 mlx5_{r}" for r in range(8))
    assert spec == lab_spec_from_plan(plan)  # stable, no randomness
    assert set(spec.opensm_files) == {"root_guids.conf", "cn_guids.conf", "partitions.conf",
                                      "node-name-map"}


def test_hostlist_round_trip() -> None:
    names = ["dgx-001", "dgx-002", "dgx-003", "dgx-005", "lab-gpu-01", "ib-leaf010"]
    text = hostlist(names)
    assert text == "dgx-[001-003,005],lab-gpu-01,ib-leaf010"
    assert expand_hostlist(text) == names


def test_templates_are_strict() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("opensm/opensm.conf.j2", site="x")


def test_renderers_stay_pure() -> None:
    banned = ("provision.execute", "provision.lab", "provision.cli")
    for path in sorted((ROOT / "provision" / "render").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
        text = path.read_text()
        assert "open(" not in text and "write_text" not in text or path.name == "files.py"


def test_group_vars_carry_the_version_matrix_of_the_catalog() -> None:
    import yaml

    from provision.render.ansible import group_vars

    allvars = yaml.safe_load(group_vars(site_plan("lab"))["ansible/group_vars/all.yml"])
    shipped = yaml.safe_load((ROOT / "provision" / "catalog" / "versions.yaml").read_text())
    m = allvars["gpuctl_version_matrix"]
    assert m["driver_branches"] == {str(k): v for k, v in shipped["driver_branches"].items()}
    assert m["gpu_generations"] == shipped["gpu_generations"]
    assert m["nccl_cuda"] == shipped["nccl_cuda"]
    assert m["dcgm_cuda_majors"] == shipped["dcgm_cuda_majors"]
    assert m["driver_branches"]["580"]["max_cuda"] == "13.0"


def test_netbox_cables_carry_the_physical_cable_label() -> None:
    import csv
    import io

    from provision.plan.load import load_and_plan
    from provision.render.netbox import netbox_tree
    from tests.conftest import SITES

    plan = load_and_plan(SITES / "superpod-h100-4su")[1]
    rows = list(csv.DictReader(io.StringIO(netbox_tree(plan)["netbox/cables.csv"])))
    assert len(rows) == len(plan.cables)
    label = {(r["side_a_device"], r["side_a_name"]): r["label"] for r in rows}
    assert label[("ib-su01-leaf01", "33")] == label[("ib-su01-leaf01", "34")] \
        == "IB:ib-su01-leaf01:33"  # one twin-port DAC
    assert label[("dgx-001", "mlx5_0")] != label[("dgx-001", "mlx5_5")]  # two fiber legs
