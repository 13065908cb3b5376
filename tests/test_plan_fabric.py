"""Fabric builders against published tables and fat-tree formulas."""

from __future__ import annotations

from collections import Counter

import pytest

from provision.errors import PlanError
from provision.loader import load_catalog, load_site
from provision.models.catalog import Catalog, SwitchType
from provision.models.site import ComputeFabric
from provision.plan.cabling import CableMaker, End
from provision.plan.fabric import Link, build_compute, upper_count
from provision.plan.layout import Node, Rack, layout_racks, place_nodes
from tests.conftest import SITES

SUPERPOD_TABLE = [  # SUs, nodes, leaf, spine, node+UFM cables, leaf-spine cables
    # (the published "cables" are links: a twin-port DAC carrying two is one physical cable)
    (1, 31, 8, 4, 252, 256),
    (2, 63, 16, 8, 508, 512),
    (3, 95, 24, 16, 764, 768),
    (4, 127, 32, 16, 1020, 1024),
]


def _nodes(ntype: str, count: int) -> list[Node]:
    return [Node(f"n{i:05d}", "g", ntype, "gpu", i + 1, i, "r", 1, 1, 1) for i in range(count)]


def _catalog_with(k: int, speed: str = "HDR") -> Catalog:
    cat = load_catalog()
    tiny = SwitchType(name=f"k{k}", vendor="T", model=f"{k}-port", technology="infiniband",
                      ports=k, cages=k, ports_per_cage=1, speed_gbps=200, ib_speed=speed,
                      max_power_kw=0.1, typical_power_kw=0.1, rack_units=1)
    return cat.model_copy(update={"switches": {**cat.switches, tiny.name: tiny}})


@pytest.mark.parametrize("sus,nodes,leaf,spine,node_cables,ls_cables", SUPERPOD_TABLE)
def test_superpod_h100_table(sus: int, nodes: int, leaf: int, spine: int, node_cables: int,
                             ls_cables: int) -> None:
    loaded = load_site(SITES / "superpod-h100-4su")
    all_nodes = place_nodes(loaded.site, loaded.catalog, layout_racks(loaded.site))
    cfg = loaded.site.fabrics.compute
    assert cfg is not None
    fab = build_compute(cfg, all_nodes[:nodes], loaded.catalog)
    tiers = Counter(s.tier for s in fab.switches)
    kinds = Counter(lk.kind for lk in fab.links)
    assert (tiers["leaf"], tiers["spine"]) == (leaf, spine)
    assert kinds["node-leaf"] + kinds["ufm-leaf"] == node_cables
    assert kinds["leaf-spine"] == ls_cables
    assert fab.tiers == 2


def test_rail_optimized_rails_land_on_their_leaf() -> None:
    loaded = load_site(SITES / "superpod-h100-4su")
    nodes = place_nodes(loaded.site, loaded.catalog, layout_racks(loaded.site))
    assert loaded.site.fabrics.compute is not None
    fab = build_compute(loaded.site.fabrics.compute, nodes, loaded.catalog)
    for lk in fab.links:
        if lk.kind == "node-leaf":
            assert lk.b.endswith(f"leaf{(lk.rail or 0) + 1:02d}")
            assert lk.a_port == loaded.catalog.nodes["dgx-h100"].compute_hcas[lk.rail or 0].device
    # every leaf reaches every spine the same number of times
    pairs = Counter((lk.a, lk.b) for lk in fab.links if lk.kind == "leaf-spine")
    assert set(pairs.values()) == {2}
    assert len(pairs) == 32 * 16


def test_multi_plane_formulas() -> None:
    """P planes of a full two-tier k=64 tree: P*k^2/2 endpoints, 3k/2 switches per plane."""
    cat = load_catalog()
    k, planes = 64, 8
    cfg = ComputeFabric(topology="multi-plane", switch="qm9700", speed="NDR", planes=planes,
                        node_groups=["g"])
    fab = build_compute(cfg, _nodes("dgx-h100", k * k // 2), cat)
    assert fab.endpoints == planes * k * k // 2 == fab.max_endpoints
    per_plane = Counter((s.plane, s.tier) for s in fab.switches)
    for p in range(planes):
        assert per_plane[(p, "leaf")] == k and per_plane[(p, "spine")] == k // 2
    # NIC p of every node is on plane p, and planes never meet
    leaf_plane = {s.name: s.plane for s in fab.switches}
    for lk in fab.links:
        if lk.kind == "node-leaf":
            assert leaf_plane[lk.b] == lk.rail
        else:
            assert leaf_plane[lk.a] == leaf_plane[lk.b]


@pytest.mark.parametrize("k", [4, 8, 12])
def test_three_tier_fat_tree_formulas(k: int) -> None:
    """Full 3-tier fat tree: k^3/4 endpoints, 5k^2/4 switches, (k/2)^2 cores."""
    cat = _catalog_with(k)
    cfg = ComputeFabric(topology="fat-tree", switch=f"k{k}", speed="HDR", tiers=3,
                        node_groups=["g"])
    fab = build_compute(cfg, _nodes("pcie-a100-1hca", k ** 3 // 4), cat)
    tiers = Counter(s.tier for s in fab.switches)
    assert len(fab.switches) == 5 * k * k // 4
    assert tiers["core"] == (k // 2) ** 2
    assert tiers["leaf"] == tiers["spine"] == k * k // 2
    assert fab.max_endpoints == k ** 3 // 4
    used = Counter((lk.b, lk.b_port) for lk in fab.links)
    used.update((lk.a, lk.a_port) for lk in fab.links)
    assert max(used.values()) == 1
    assert all(1 <= int(p) <= k for (_, p) in used if p.isdigit())


def test_two_tier_fat_tree_with_oversubscription() -> None:
    cat = load_catalog()
    cfg = ComputeFabric(topology="fat-tree", switch="qm8700", speed="HDR", tiers=2,
                        oversubscription=3.0, node_groups=["g"])
    fab = build_compute(cfg, _nodes("pcie-a100-1hca", 300), cat)
    leaves = [s for s in fab.switches if s.tier == "leaf"]
    assert len(leaves) == 10  # 30 down / 10 up on 40 ports
    ups = Counter(lk.a for lk in fab.links if lk.kind == "leaf-spine")
    assert set(ups.values()) == {10}


def test_two_tiers_too_small_is_an_error_not_a_smaller_fabric() -> None:
    cat = _catalog_with(8)
    cfg = ComputeFabric(topology="fat-tree", switch="k8", speed="HDR", tiers=2,
                        node_groups=["g"])
    with pytest.raises(PlanError, match="cannot be joined by two tiers"):
        build_compute(cfg, _nodes("pcie-a100-1hca", 33), cat)
    auto = cfg.model_copy(update={"tiers": "auto"})
    assert build_compute(auto, _nodes("pcie-a100-1hca", 33), cat).tiers == 3
    with pytest.raises(PlanError, match="pods"):
        build_compute(auto, _nodes("pcie-a100-1hca", 8 ** 3 // 4 + 1), cat)


def test_upper_count_rounds_to_even_spread() -> None:
    assert upper_count(24, 32, 64) == 16  # the 3-SU SuperPOD row
    assert upper_count(8, 32, 64) == 4
    with pytest.raises(ValueError):
        upper_count(65, 32, 64)


def _rack(name: str, x: float) -> Rack:
    return Rack(name, "h1", "a", 1, 0, x, 0.0, 48, 40.0, "air", 2)


def test_cables_pick_per_cage_and_name_the_link_that_no_cable_reaches() -> None:
    cat = load_catalog()
    racks = {"near": _rack("near", 0.0), "mid": _rack("mid", 12.0), "far": _rack("far", 5000.0)}
    maker = CableMaker(cat, "infiniband", racks)
    ends = {f"n{i}": End("near", 10, True) for i in range(3)}
    ends |= {"leaf1": End("mid", 40, False, 2), "leaf2": End("near", 40, False, 2),
             "spine1": End("near", 44, False, 2), "leaf3": End("far", 40, False, 2)}
    links = [Link("compute", "node-leaf", f"n{i}", "mlx5_0", "leaf1", str(i + 1))
             for i in range(3)]
    cables = maker.cables(links, ends, [400] * 3)
    assert {c.sku for c in cables} == {cables[0].sku} and cables[0].length_m >= cables[0].run_m
    assert [c.id for c in cables] == ["IB:n0:mlx5_0", "IB:n1:mlx5_0", "IB:n2:mlx5_0"]
    assert [c.b_cage for c in cables] == ["1/1", "1/2", "2/1"]
    # cage 1 reaches two nodes: fiber legs, one twin-port module there, one label per leg
    assert all(c.medium.startswith("fiber") for c in cables)
    assert [c.cable for c in cables] == [c.id for c in cables]
    assert {c.b_optic for c in cables} == {"osfp-2x400g-sr8"}
    assert {c.a_optic for c in cables} == {"osfp-400g-sr4"}
    # single-port hosts next to a twin-port cage: no straight DAC fits, a 1:2 splitter does
    near_ends = {**ends, "leaf1": End("near", 40, False, 2)}
    near = maker.cables(links[:2], near_ends, [400, 400])
    assert near[0].run_m < cables[0].run_m
    assert [(c.sku, c.cable) for c in near] == [("dac-ndr-osfp-split2", "IB:n0:mlx5_0")] * 2
    assert not near[0].a_optic and not near[0].b_optic
    # a cage reaching one near and one far host: fiber for both legs, never a split medium
    mixed = maker.cables(links[:2], {**near_ends, "n1": End("mid", 10, True)}, [400, 400])
    assert {c.medium for c in mixed} == {"fiber-mm"} and len({c.cable for c in mixed}) == 2
    # both ports of a leaf cage to one spine cage in the same rack: one twin-port DAC
    up = [Link("compute", "leaf-spine", "leaf2", str(p), "spine1", str(p - 32))
          for p in (33, 34)]
    dac = maker.cables(up, ends, [400, 400])
    assert [c.medium for c in dac] == ["dac", "dac"]
    assert [c.cable for c in dac] == ["IB:leaf2:33", "IB:leaf2:33"]
    assert [c.a_cage for c in dac] == ["17/1", "17/2"] and not dac[0].a_optic
    # the same cage split across two spines: both legs fiber, never copper
    split = [Link("compute", "leaf-spine", "leaf2", "33", "spine1", "1"),
             Link("compute", "leaf-spine", "leaf2", "34", "leaf1", "64")]
    assert {c.medium for c in maker.cables(split, ends, [400, 400])} == {"fiber-mm"}
    with pytest.raises(PlanError, match=r"compute link n0:mlx5_0 -> leaf3:1 needs a \d+\.\d m run"):
        maker.cables([Link("compute", "node-leaf", "n0", "mlx5_0", "leaf3", "1")], ends, [400])
