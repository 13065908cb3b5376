"""plan/feeds.py on small hand-made racks: PSUs alternate feeds, outlets by inlet type,
phase balance, and what cannot be spread."""

from __future__ import annotations

from provision.loader import load_catalog
from provision.models.catalog import Catalog, SwitchType
from provision.plan.fabric import Switch
from provision.plan.feeds import pdu_names, plan_feeds
from provision.plan.layout import Node, Rack

CATALOG = load_catalog()


def rack(pdus: int = 2, pdu: str = "pdu-3ph-415v-63a") -> Rack:
    return Rack("a01", "h1", "a", 1, 0, 0.0, 0.0, 48, 46.0, "air", pdus, pdu)


def node(i: int, ntype: str = "dgx-h100") -> Node:
    return Node(f"n{i}", "g", ntype, "gpu", i, i, "a01", i, 2 + 8 * i, 8)


def test_six_psus_go_three_to_each_feed_onto_c19_outlets() -> None:
    [f] = plan_feeds(CATALOG, [rack()], [node(0)], [], [])
    assert [(p.name, p.feed, p.c19, p.c13) for p in f.pdus] == [
        ("pdu-a01-a1", "A", 3, 0), ("pdu-a01-b1", "B", 3, 0)]
    assert [p.load_kw for p in f.pdus] == [5.1, 5.1]  # 10.2 kW shared by six PSUs
    assert all(len(p.phase_kw) == 3 for p in f.pdus)
    assert f.phase_imbalance_pct == 0.0  # one PSU per phase on each PDU
    assert f.load_kw == 10.2 and f.one_feed_kw == 45.28 and not f.one_feed


def test_odd_psu_counts_alternate_the_feed_they_start_on() -> None:
    cat = CATALOG.model_copy(deep=True)
    cat.switches["odd"] = replace_psus(cat, "sn4600c", 3)
    sws = [Switch(f"s{i}", "odd", "inband", "tor", rack="a01", u=40 + i) for i in range(2)]
    [f] = plan_feeds(cat, [rack()], [], sws, [])
    assert [p.c13 for p in f.pdus] == [3, 3]  # 2 on A + 1 on B, then 1 on A + 2 on B


def test_a_one_psu_device_and_a_one_pdu_rack_are_not_spread() -> None:
    cat = CATALOG.model_copy(deep=True)
    cat.switches["single"] = replace_psus(cat, "mgmt-1g-48", 1)
    sw = Switch("mgmt", "single", "oob", "tor", rack="a01", u=48)
    [f] = plan_feeds(cat, [rack()], [node(0)], [sw], [])
    assert f.one_feed == ["mgmt"]
    [f1] = plan_feeds(CATALOG, [rack(pdus=1)], [node(0)], [], [])
    assert [p.feed for p in f1.pdus] == ["A"] and f1.one_feed == ["n0"]
    assert f1.one_feed_kw == 0.0  # feed B delivers nothing: GPU108


def test_four_pdus_share_each_feed_and_count_outlets_per_pdu() -> None:
    r = rack(pdus=4)
    assert pdu_names(r) == ["pdu-a01-a1", "pdu-a01-b1", "pdu-a01-a2", "pdu-a01-b2"]
    [f] = plan_feeds(CATALOG, [r], [node(i) for i in range(4)], [], [])
    assert [p.c19 for p in f.pdus] == [6, 6, 6, 6]
    assert f.one_feed_kw == 2 * 45.28 and f.c19 == (24, 96)


def replace_psus(cat: Catalog, model: str, psus: int) -> SwitchType:
    return cat.switches[model].model_copy(update={"psus": psus})

