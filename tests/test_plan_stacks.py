"""Node roles: what a node has decides what it gets (provision/plan/stacks.py), and the
inventory ``gpuctl plan`` renders groups the nodes the same way the phases pick them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.plan import stacks
from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.ansible import group_vars, inventory
from tests.mixed_site import write_mixed_site


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return load_and_plan(write_mixed_site(tmp_path_factory.mktemp("mixed")))[1]


def test_storage_servers_get_no_gpu_fabric_or_kubernetes_stack(mixed: Plan) -> None:
    have = stacks.node_stacks(mixed)
    assert len(have) == 191
    assert have["dgx-001"] == {"gpu", "fabric", "kubernetes"}
    assert have["stor-001"] == frozenset() and have["stor-064"] == frozenset()
    assert {n.name for n in mixed.nodes if n.role == "storage"} == {
        h for h, s in have.items() if not s}
    todo, skip = stacks.split("nvidia", ["stor-001", "dgx-002"], have)
    assert todo == ["dgx-002"] and skip == {"stor-001": "no GPUs"}
    assert stacks.split("fabric", ["stor-002"], have)[1] == {"stor-002": "no compute-fabric HCAs"}
    assert stacks.why_not("base", "stor-001", have) is None  # base and imaging: every node
    assert stacks.why_not("burnin", "nope", have) == "not a node of the plan"


def test_rendered_inventory_groups_are_the_phase_scopes(mixed: Plan) -> None:
    inv = yaml.safe_load(inventory(mixed))["all"]["children"]
    have = stacks.node_stacks(mixed)
    for stack, group in stacks.GROUPS.items():
        assert list(inv[group]["hosts"]) == [h for h, s in have.items() if stack in s]
    assert len(inv["gpuctl_gpu_nodes"]["hosts"]) == 127
    assert "stor-001" in inv["role_storage"]["hosts"]
    stor = yaml.safe_load(group_vars(mixed)["ansible/group_vars/stor.yml"])
    assert stor["gpuctl_gpus"] == 0 and stor["gpuctl_compute_hcas"] == []
    assert stor["gpuctl_kernel_modules"] is None and stor["gpuctl_gpu_model"] is None


def test_lab_site_nodes_get_every_stack() -> None:
    _, plan = load_and_plan(Path(__file__).parents[1] / "inventory" / "sites" / "lab")
    assert set(stacks.node_stacks(plan).values()) == {frozenset(stacks.STACKS)}
