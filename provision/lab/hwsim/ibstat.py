"""Simulated ``ibstat`` (gpuctl lab hardware simulator: not real hardware). Optional.

The lab normally runs the real ``ibstat`` against ibsim; this one exists for hosts where
the HCA faults (``hca-down``: State Down, Physical state Disabled or Polling, Rate 40;
``hca-200g``: half rate) should show in ibstat too. Supports ``ibstat [CA]``, ``-l``
(list CAs), ``-p`` (port GUIDs) and ``-V`` (which carries the label; the tool's
wrapper script does too). Nothing goes to stderr but errors, as with the real tool.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from provision.lab.hwsim.personality import LABEL, hca_guid, rng
from provision.lab.hwsim.state import HostState, SimExit, load_current, run_tool


def port_guid(node_guid: str) -> str:
    return "0x" + f"{int(node_guid, 16) ^ (0x02 << 56):016x}"


def render_ca(state: HostState, n: int) -> str:
    facts = state.facts
    guid = hca_guid(state.host, n)
    up = state.hca_state(n) == "Active"
    phys = "LinkUp" if up else ("Polling" if state.hca_state(n) == "Polling" else "Disabled")
    lid = rng(state.host, "lid", n).randint(2, 4000) if up else 0
    return (
        f"CA 'mlx5_{n}'\n\tCA type: {facts.hca_ca_type}\n\tNumber of ports: 1\n"
        f"\tFirmware version: {facts.hca_fw_version}\n\tHardware version: 0\n"
        f"\tNode GUID: {guid}\n\tSystem image GUID: {guid}\n\tPort 1:\n"
        f"\t\tState: {'Active' if up else 'Down'}\n\t\tPhysical state: {phys}\n"
        f"\t\tRate: {state.hca_rate(n) if up else 40}\n\t\tBase lid: {lid}\n\t\tLMC: 0\n"
        f"\t\tSM lid: {1 if up else 0}\n\t\tCapability mask: 0xa651e848\n"
        f"\t\tPort GUID: {port_guid(guid)}\n\t\tLink layer: InfiniBand\n"
    )


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] in (["-V"], ["--version"]):
        sys.stdout.write(f"ibstat BUILD VERSION: 1.0 ({LABEL})\n")
        return 0
    state = load_current()
    cas = sorted(range(state.facts.hca_count), key=lambda n: f"mlx5_{n}")
    if args[:1] in (["-l"], ["--list_of_cas"]):
        sys.stdout.write("".join(f"mlx5_{n}\n" for n in cas))
        return 0
    if args[:1] in (["-p"], ["--port_list"]):
        sys.stdout.write("".join(port_guid(hca_guid(state.host, n)) + "\n" for n in cas))
        return 0
    if args and args[0].startswith("-"):
        raise SimExit(255, f"ibstat: unknown option {args[0]!r}")
    if args:
        name = args[0]
        if not name.startswith("mlx5_") or not name[5:].isdigit() or int(name[5:]) not in cas:
            raise SimExit(
                255,
                f"ibpanic: [{state.host}] main: '{name}' IB device can't be "
                "found: No such file or directory",
            )
        cas = [int(name[5:])]
    sys.stdout.write("".join(render_ca(state, n) for n in cas))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
