"""Ethernet oversubscription per network and tier: the ratios the plan reports, the
core_uplinks knob that sets the aggregation tier's, and GPU155 past the limit."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.plan.build import summary
from provision.plan.load import load_and_plan
from provision.plan.oversubscription import limit, ratio_text, ratios
from tests.conftest import EXAMPLE_SITES, SITES


def test_two_hall_storage_reads_as_an_engineer_sizes_it() -> None:
    plan = load_and_plan(SITES / "two-hall-storage")[1]
    got = {(r.fabric, r.tier): (r.down_gbps, r.up_gbps) for r in
           ratios(plan.site, plan.catalog, plan.fabrics, plan.nodes)}
    # storage ToR: 8 DGX ports x 400G mode down, 2 x 800G up; agg: 32 ToR uplinks x 800G
    # down, 8 core uplinks x 800G up (storage servers are in the other hall)
    assert got[("storage", "tor")] == (6400, 1600)
    assert got[("storage", "agg")] == (25600, 6400)
    assert got[("inband", "tor")] == (1600, 200)
    assert got[("inband", "agg")] == (3200, 400)
    over = summary(plan)["oversubscription"]
    assert over["storage"] == {"tor": 4.0, "agg": 4.0}
    assert over["inband"] == {"tor": 8.0, "agg": 8.0}
    assert ratio_text(5.75) == "5.75:1" and ratio_text(4.0) == "4:1"


def test_core_uplinks_take_the_top_agg_ports_half_to_each_core() -> None:
    plan = load_and_plan(SITES / "two-hall-storage")[1]
    fab = plan.fabrics["storage"]
    ports = plan.catalog.switches["sn5600"].ports
    ups = [lk for lk in fab.links if lk.kind == "agg-core"]
    per_agg = Counter(lk.a for lk in ups)
    assert set(per_agg.values()) == {8}
    for agg in per_agg:
        mine = [lk for lk in ups if lk.a == agg]
        assert sorted(int(lk.a_port) for lk in mine) == list(range(ports - 7, ports + 1))
        assert Counter(lk.b for lk in mine) == {"st-core-1": 4, "st-core-2": 4}
    core_ports = [(lk.b, lk.b_port) for lk in ups]
    assert len(core_ports) == len(set(core_ports))  # no core port taken twice


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_sites_are_within_their_limits(site: str) -> None:
    plan = load_and_plan(SITES / site)[1]
    for r in ratios(plan.site, plan.catalog, plan.fabrics, plan.nodes):
        most = limit(plan.site, r.fabric)
        assert most is None or r.ratio <= most, (r, most)


def test_past_the_limit_is_gpu155_at_the_network(runner: CliRunner, tmp_path: Path) -> None:
    text = (SITES / "two-hall-storage" / "site.yaml").read_text()
    assert "    core_uplinks: 8  #" in text
    site = tmp_path / "site.yaml"
    site.write_text(text.replace("    core_uplinks: 8  #", "    core_uplinks: 2  #"))
    res = runner.invoke(cli, ["lint", str(site)])
    assert res.exit_code == 0, res.output  # a warning
    assert re.search(r"site\.yaml:59:3: GPU155 warning: storage network: agg tier "
                     r"oversubscribed 16:1 toward the core .*\(st-agg01-1: 25,600 Gb/s down, "
                     r"1,600 Gb/s up\), over the 4:1 limit.*raise "
                     r"fabrics\.storage\.core_uplinks \(now 2\) to 8", res.output), res.output
    # the network's own limit replaces the default
    site.write_text(site.read_text().replace("  storage:\n    switch: sn5600\n",
                                             "  storage:\n    switch: sn5600\n"
                                             "    max_oversubscription: 16\n"))
    data = json.loads(runner.invoke(cli, ["lint", str(site), "--format", "json"]).stdout)
    assert "GPU155" not in [f["code"] for f in data]
