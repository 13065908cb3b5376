"""Regenerate the golden captures of this folder from the real tools (root, ibsim needed).

Each case renders the planned fabric of one fixture site (``sites/<site>/site.yaml``), edits
the net file to inject faults, loads it into ibsim and keeps what the real ``ibnetdiscover``
(or ``iblinkinfo``) printed as ``<case>.txt``. ``<case>.json`` (site, scope and the expected
result) is written by ``GPUCTL_UPDATE_GOLDEN=1 pytest tests/test_fabric_golden.py`` and then
reviewed by hand. The hand-written cases (``garbage_*``, ``hw_*``) are not touched here.

    python tests/golden/ibnetdiscover/make_captures.py [CASE...]
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from provision.fabric.netedit import NetFile
from provision.plan.load import load_and_plan
from provision.render.ibsim import ibsim_net

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

_spec = importlib.util.spec_from_file_location(
    "fabric_sim", ROOT / "tests" / "integration" / "test_fabric_verify_ibsim.py")
assert _spec is not None and _spec.loader is not None
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

Edit = Callable[[NetFile], None]


def fat_faults(n: NetFile) -> None:
    n.swap(("lab-gpu-01 mlx5_0", 1), ("lab-gpu-02 mlx5_0", 1))
    n.drop(("ib-leaf001", 21))
    n.move(("lab-gpu-03 mlx5_1", 1), ("ib-leaf002", 15))
    n.set_rate(("lab-gpu-04 mlx5_2", 1), "1xHDR")
    n.set_rate(("lab-gpu-04 mlx5_3", 1), "4xEDR")


def rail_host_end_swap(n: NetFile) -> None:
    n.swap(("ib-su01-leaf01", 2), ("ib-su01-leaf02", 2))  # gpu-02 mlx5_0 <-> mlx5_1
    n.swap(("ufm", 3), ("ufm", 4))                         # UFM ib2 <-> ib3


def rail_misplaced(n: NetFile) -> None:
    n.move(("gpu-01 mlx5_3", 1), ("ib-su02-leaf04", 9))    # same rail, other SU's leaf
    n.move(("gpu-02 mlx5_5", 1), ("ib-su01-leaf06", 10))   # right leaf, other port
    n.move(("ib-su01-leaf01", 37), ("ib-spine02", 35))      # uplink on the other spine
    n.move(("gpu-06 mlx5_7", 1), ("ib-su02-leaf07", 11))   # rail 7 on the mlx5_6 leaf


def rail_inferred(n: NetFile) -> None:
    for name in list(n.records):
        if name.startswith("ib-"):
            n.describe(name, "Quantum Mellanox Technologies")
    n.swap(("ib-su02-leaf03", 37), ("ib-su02-leaf04", 37))  # two uplinks, at the leaf end


def rail_devices(n: NetFile) -> None:
    n.add_ca("rogue-01 mlx5_0", ("ib-su02-leaf08", 20), guid="0x0200000000000a00")
    n.describe("gpu-03 mlx5_6", "MT4123 ConnectX6   Mellanox Technologies")
    n.describe("gpu-05 mlx5_1", "gpu-05 mlx5_0")
    n.describe("ib-su02-leaf02", "ib-su02-leaf01")


def rail_partial(n: NetFile) -> None:
    for host in range(4, 8):
        for rail in range(8):
            n.drop((f"gpu-{host:02d} mlx5_{rail}", 1))


def rail_linkinfo(n: NetFile) -> None:
    n.swap(("gpu-04 mlx5_2", 1), ("gpu-05 mlx5_2", 1))
    n.set_rate(("gpu-07 mlx5_7", 1), "1xHDR")


def _hw_style(text: str) -> str:
    """Make a clean ibsim capture look like real hardware's: MF0 switch descriptions, FQDN
    host descriptions, extended port attributes, real-looking vendor/device ids."""
    text = re.sub(r'"(ib-[a-z0-9-]+)"', r'"MF0;\1:MQM8700/U1"', text)
    text = re.sub(r'"(gpu-\d\d) (mlx5_\d)"', r'"\1.rail.gpuctl.test \2"', text)
    text = re.sub(r"(4xHDR)$", r"\1 s=4 w=2 v=4 e=4", text, flags=re.M)
    # a real ConnectX port 1 has the node GUID as its port GUID (ibsim uses node GUID + 1)
    text = re.sub(r"\]\(([0-9a-f]+)\)", lambda m: f"]({int(m.group(1), 16) - 1:x})", text)
    text = text.replace(" base port 0 ", " enhanced port 0 ")
    return text.replace("vendid=0x0", "vendid=0x2c9").replace("devid=0x0", "devid=0xd2f0")


CASES: dict[str, tuple[str, Edit | None, str, str]] = {
    # case: (site, edits, SIM_HOST, tool)
    "fat_clean": ("fat", None, "lab-gpu-01 mlx5_0", "ibnetdiscover"),
    "fat_faults": ("fat", fat_faults, "lab-gpu-01 mlx5_1", "ibnetdiscover"),
    "rail_clean": ("rail", None, "gpu-01 mlx5_0", "ibnetdiscover"),
    "rail_host_end_swap": ("rail", rail_host_end_swap, "gpu-01 mlx5_0", "ibnetdiscover"),
    "rail_misplaced": ("rail", rail_misplaced, "gpu-03 mlx5_0", "ibnetdiscover"),
    "rail_inferred": ("rail", rail_inferred, "gpu-01 mlx5_0", "ibnetdiscover"),
    "rail_devices": ("rail", rail_devices, "gpu-01 mlx5_0", "ibnetdiscover"),
    "rail_partial": ("rail", rail_partial, "gpu-01 mlx5_0", "ibnetdiscover"),
    "rail_linkinfo": ("rail", rail_linkinfo, "gpu-01 mlx5_0", "iblinkinfo"),
    "hw_rail_clean": ("rail", None, "gpu-02 mlx5_4", "ibnetdiscover"),
}


def _stable(text: str) -> str:
    return re.sub(r"^# Topology file: generated on .*$", "# Topology file: generated on "
                  "(date removed)", text, flags=re.M)


def main(names: list[str]) -> None:
    for case in names or list(CASES):
        site, edit, host, tool = CASES[case]
        plan = load_and_plan(HERE / "sites" / site)[1]
        net = NetFile(ibsim_net(plan))
        if edit is not None:
            edit(net)
        with tempfile.TemporaryDirectory() as tmp:
            text = _stable(sim.capture(plan, net.text(), Path(tmp), host, tool))
        if case.startswith("hw_"):
            text = _hw_style(text)
        (HERE / f"{case}.txt").write_text(text)
        print(f"{case}: {len(text.splitlines())} lines")


if __name__ == "__main__":
    main(sys.argv[1:])
