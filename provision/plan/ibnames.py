"""How the nodes and ports of a planned InfiniBand fabric are named on the fabric itself.

The names are the ones the running fabric reports (ibnetdiscover, iblinkinfo), so the
renderers (ibsim net file, OpenSM files), the lab and ``gpuctl fabric verify`` all use these
and none of them defines its own:

* a host's HCA is ``"<hostname> mlx5_N"``, port 1: node id and node description both, as
  rdma-core sets the node description of a host's HCA;
* the UFM appliance is the CA ``"ufm"``; its interfaces ``ib0..ibN`` are CA ports 1..N+1;
* a switch is its plan name, its ports the plan's port numbers.
"""

from __future__ import annotations

from provision.errors import PlanError
from provision.plan.fabric import Link

End = tuple[str, int]
"""``(node name, port number)`` as the fabric names them."""

UFM = "ufm"
"""Node id / description of the UFM appliance's CA."""


def hca_id(host: str, device: str) -> str:
    """Node id / description of a host's HCA: ``"<host> mlx5_N"``."""
    return f"{host} {device}"


def port_number(text: str, what: str) -> int:
    """A planned port name as a port number; PlanError naming ``what`` when it is not one."""
    try:
        return int(text)
    except ValueError as exc:
        raise PlanError(f"InfiniBand fabric: {what} port {text!r} is not a port number") from exc


def lower_end(link: Link) -> End:
    """A planned link's lower end (host HCA, UFM or lower-tier switch) as the fabric names it."""
    if link.kind == "node-leaf":
        return hca_id(link.a, link.a_port), 1
    if link.kind == "ufm-leaf":
        return UFM, port_number(link.a_port.removeprefix("ib"), "UFM") + 1
    return link.a, port_number(link.a_port, link.a)


def ufm_interface(port: int) -> str:
    """The UFM appliance's interface name of its CA port ``port`` (``ib2`` is port 3)."""
    return f"ib{port - 1}"
