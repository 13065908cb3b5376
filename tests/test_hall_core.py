"""``core: hall``: a core pair per hall joining that hall's aggregation blocks, a site core
pair joining the hall cores, the way sites of many halls are built (one core pair has too
few ports for every block of a GW-scale site)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.errors import PlanError
from provision.plan.build import Plan, summary
from provision.plan.load import load_and_plan
from provision.plan.oversubscription import ratios
from tests.test_site_devices import devices

HALLS = 3


def _site(core: str = "hall", **oob: Any) -> dict[str, Any]:
    """Three halls 150 m apart, each 60 storage servers (one a rack, two OOB aggregation
    blocks of 46 ToRs) and a network row of three racks."""
    halls, groups = [], []
    for h in range(HALLS):
        name = f"h{h + 1}"
        rack = {"size_u": 48, "power_kw": 20, "cooling": "air"}
        halls.append({"name": name, "power_capacity_kw": 3000, "x_m": h * 150, "rows": [
            *({"name": r, "racks": 30, "y_m": i * 3, "rack_names": "{hall}{row}{index:02d}",
               "rack": rack} for i, r in enumerate("ab")),
            {"name": "n", "racks": 3, "y_m": 6, "rack_names": "{hall}{row}{index:02d}",
             "rack": {**rack, "pdu": "pdu-3ph-415v-63a-net"}}]})
        groups.append({"name": f"st{h + 1}", "type": "storage-2u-nvme", "role": "storage",
                       "count": 60, "hostname": f"{name}-st-{{index:03d}}",
                       "placement": {"hall": name, "rows": ["a", "b"], "nodes_per_rack": 1,
                                     "u_positions": [3]}})
    return {
        "site": {"name": "three-hall", "location": "test", "climate": "cold",
                 "power_capacity_mw": 20, "pue_target": 1.2, "electricity_price_per_kwh": 0.1},
        "halls": halls, "node_groups": groups,
        "fabrics": {"oob": {"switch": "mgmt-1g-48", "spine_switch": "sn2201", "core": core,
                            "network_racks": [f"h{h + 1}/n" for h in range(HALLS)], **oob}},
        "addressing": {"inband": "10.0.0.0/16", "oob": "10.1.0.0/16",
                       "switch_mgmt": "10.2.0.0/20", "pod_cidr": "172.16.0.0/14",
                       "service_cidr": "172.20.0.0/16",
                       "capacity": {"rows_per_hall": 3, "racks_per_row": 32}},
        "software": {"os": "ubuntu-24.04", "driver_branch": 580, "driver_version": "580.95.05",
                     "cuda": "13.0", "nccl": "2.28.3", "doca_ofed": "3.1.0", "dcgm": "4.4.1"},
        "burnin": {"profile": "b200-ndr"},
    }


def _plan(tmp_path: Path, site: dict[str, Any]) -> Plan:
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    return load_and_plan(tmp_path)[1]


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return _plan(tmp_path_factory.mktemp("three-hall"), _site())


def test_each_agg_uplinks_to_its_halls_cores_and_hall_cores_to_the_site_core(
        plan: Plan) -> None:
    fab = plan.fabrics["oob"]
    hall = {r.name: r.hall for r in plan.racks}
    sw = {s.name: s for s in fab.switches}
    tiers = Counter(s.tier for s in fab.switches)
    assert (tiers["agg"], tiers["core"], tiers["site-core"]) == (4 * HALLS, 2 * HALLS, 2)
    up: dict[str, set[str]] = {}
    for lk in fab.links:
        if lk.kind in ("agg-core", "core-site"):
            up.setdefault(lk.a, set()).add(lk.b)
    cores_of = {hall[s.rack]: {c.name for c in fab.switches if c.tier == "core"
                               and hall[c.rack] == hall[s.rack]}
                for s in fab.switches if s.tier == "core"}
    assert all(len(c) == 2 for c in cores_of.values()) and len(cores_of) == HALLS
    for s in fab.switches:
        if s.tier == "agg":
            assert up[s.name] == cores_of[hall[s.rack]], s.name
        elif s.tier == "core":
            assert up[s.name] == {"oob-core-1", "oob-core-2"}, s.name
        elif s.tier == "site-core":
            assert s.name not in up and hall[s.rack] == "h1", s
    # every hall core is in its hall's network racks, the pairs in two racks
    for s in fab.switches:
        if s.tier in ("core", "site-core"):
            assert s.rack.startswith(f"{hall[s.rack]}n"), s
    pairs: dict[tuple[str, int | None], list[str]] = {}
    for s in fab.switches:
        if s.tier != "tor":
            pairs.setdefault((s.tier, s.pod), []).append(s.rack)
    assert all(len(set(r)) == 2 for r in pairs.values()), pairs
    ends = Counter(e for lk in fab.links for e in ((lk.a, lk.a_port), (lk.b, lk.b_port)))
    assert not [e for e, n in ends.items() if n > 1], "a port used twice"
    assert all(int(lk.b_port) <= plan.catalog.switches[sw[lk.b].model].ports
               for lk in fab.links if lk.b in sw)


def test_every_new_switch_is_placed_powered_addressed_and_cabled(plan: Plan) -> None:
    racks = {r.name: r for r in plan.racks}
    rows = {r.rack: r for r in plan.power.racks}
    held: dict[tuple[str, int], str] = {}
    by_end = {(c.a, c.a_port): c for c in plan.cables}
    oob = {s.name for s in plan.switches if s.fabric == "oob"}
    count: Counter[str] = Counter()
    for d in devices(plan):
        count[d.rack] += 1
        assert d.rack in racks and racks[d.rack].pdus > 0, d
        assert d.u >= 1 and d.u + d.units - 1 <= racks[d.rack].size_u, d
        for u in range(d.u, d.u + d.units):
            assert held.setdefault((d.rack, u), d.name) == d.name, d
        assert len([a for a in plan.addresses_of(d.name) if a.interface == d.mgmt_port
                    and a.pool == d.mgmt_pool]) == 1, d
        c = by_end.get((d.name, d.mgmt_port))
        assert c is not None and c.b in oob, d
    for rack, n in count.items():
        row = rows[rack]
        assert row.nodes + row.switches + row.appliances == n, rack
    mgmt = Counter(a.address for a in plan.addresses if a.pool == "switch_mgmt")
    assert not [a for a, n in mgmt.items() if n > 1], "duplicate management address"


def test_cross_hall_runs_are_single_mode_and_the_tiers_report_oversubscription(
        plan: Plan) -> None:
    hall = {r.name: r.hall for r in plan.racks}
    cross = [c for c in plan.cables if hall[c.a_rack] != hall[c.b_rack]]
    # halls 2 and 3: each of their two hall cores to each site core
    assert len(cross) == 2 * 2 * (HALLS - 1)
    assert {c.kind for c in cross} == {"core-site"}
    assert {c.medium for c in cross} == {"fiber-sm"}
    got = {r.tier: (r.down_gbps, r.up_gbps) for r in
           ratios(plan.site, plan.catalog, plan.fabrics, plan.nodes)}
    # a hall core: 2 blocks x 2 aggs x 1 link down, one link to each site core
    speed = plan.catalog.switches["sn2201"].speed_gbps
    assert got["core"] == (4 * speed, 2 * speed)
    assert summary(plan)["oversubscription"]["oob"]["core"] == 2.0


def test_core_uplinks_widen_the_hall_core_uplinks(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _site(core_uplinks=4))
    ups = [lk for lk in plan.fabrics["oob"].links if lk.kind == "core-site"]
    assert set(Counter(lk.a for lk in ups).values()) == {4}
    ports = plan.catalog.switches["sn2201"].ports
    assert {int(lk.a_port) for lk in ups} == set(range(ports - 3, ports + 1))


def test_default_is_one_site_core_pair(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _site(core="site"))
    fab = plan.fabrics["oob"]
    assert Counter(s.tier for s in fab.switches)["core"] == 2
    assert {s.name for s in fab.switches if s.tier == "core"} == {"oob-core-1", "oob-core-2"}
    assert not [lk for lk in fab.links if lk.kind == "core-site"]


def test_a_core_too_small_names_the_knobs(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"oob fabric: hall core switch sn2201 has 48 ports "
                       r"\(24 to the site core\), too few for aggregation switch oob-agg03-1 "
                       r"\(block 3\); set a larger fabrics\.oob\.core_switch"):
        _plan(tmp_path, _site(core_uplinks=24))
    with pytest.raises(PlanError, match=r"oob fabric: core switch sn2201 has 48 ports, too few "
                       r"for aggregation switch .*; set fabrics\.oob\.core: hall \(a core pair "
                       r"per hall\) or a larger fabrics\.oob\.core_switch"):
        _plan(tmp_path, _site(core="site", core_uplinks=16))


@pytest.mark.parametrize("core", ["site", "hall"])
def test_a_larger_core_model_keeps_the_aggregation_uplinks_on_the_aggs_own_top_ports(
        tmp_path: Path, core: str) -> None:
    # 64-port cores above 48-port aggregation switches: an aggregation switch's uplinks
    # are its own top ports (47, 48), not the core model's (63, 64, which it lacks).
    plan = _plan(tmp_path, _site(core=core, core_switch="sn5600"))
    fab = plan.fabrics["oob"]
    assert {s.model for s in fab.switches if s.tier == "agg"} == {"sn2201"}
    ups = [lk for lk in fab.links if lk.kind == "agg-core"]
    assert ups and {int(lk.a_port) for lk in ups} == {47, 48}
    assert max(int(lk.b_port) for lk in ups) <= 64
